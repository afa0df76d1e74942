//! The command-line client's HTTP side: a small typed wrapper over the
//! node's API (`docs/API.md`), and local signing. Answers are read into
//! the same [`crate::api_types`] the API writes them from.
//!
//! The client never trusts the node with a key: it fetches the network id
//! and the account's pending nonce, signs locally, and submits the
//! transaction's canonical bytes.

use std::path::{Path, PathBuf};

use chain_core::{BlockHash, TxId};
use escrow::{Address, Contract, ContractId, Keypair, Payload, SignedTx};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api_types::{
    AccountAnswer, BlockAnswer, ErrorAnswer, MineAnswer, MineRequest, StatusAnswer, SubmitAnswer,
    SubmitTx, TxLookupAnswer,
};

/// The API's token file in a node's data directory (as bitcoind's cookie).
pub const COOKIE_FILE: &str = "api.cookie";

/// A failed API call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The node could not be reached.
    #[error("cannot reach the node at {url}: {source}")]
    Unreachable {
        /// The node's API address.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The node refused the request.
    #[error("{message} ({code})")]
    Refused {
        /// The API's stable error code.
        code: String,
        /// The API's message.
        message: String,
    },
    /// The answer was not what the API documents.
    #[error("unexpected answer from the node: {0}")]
    Unexpected(String),
    /// The token file could not be read.
    #[error("cannot read the API token {path}: {source} (pass --token, or --data-dir of the node)")]
    Token {
        /// The cookie file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A client of one node's API.
pub struct Client {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
}

impl Client {
    /// A client of the API at `base` (`http://127.0.0.1:8000`).
    pub fn new(base: &str, token: Option<String>) -> Client {
        Client {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
            token,
        }
    }

    /// Reads the node's token from its data directory.
    ///
    /// # Errors
    ///
    /// [`ClientError::Token`].
    pub fn read_token(data_dir: &Path) -> Result<String, ClientError> {
        let path = data_dir.join(COOKIE_FILE);
        std::fs::read_to_string(&path)
            .map(|t| t.trim().to_string())
            .map_err(|source| ClientError::Token { path, source })
    }

    /// Sends `req` and returns the answer's body, or the node's refusal.
    async fn send(&self, req: reqwest::RequestBuilder) -> Result<String, ClientError> {
        let resp = req
            .send()
            .await
            .map_err(|source| ClientError::Unreachable {
                url: self.base.clone(),
                source,
            })?;
        let status = resp.status();
        let body = resp
            .text()
            .await
            .map_err(|source| ClientError::Unreachable {
                url: self.base.clone(),
                source,
            })?;
        if status.is_success() {
            return Ok(body);
        }
        // A refusal from something other than the API (a proxy, another
        // server on the port) has no error body: say the HTTP status.
        Err(match serde_json::from_str::<ErrorAnswer>(&body) {
            Ok(e) => ClientError::Refused {
                code: e.code,
                message: e.message,
            },
            Err(_) => ClientError::Refused {
                code: "http_error".to_string(),
                message: format!("HTTP {status}"),
            },
        })
    }

    /// Reads an answer as `T`: a shape other than the API's is
    /// [`ClientError::Unexpected`], naming the request.
    fn decode<T: DeserializeOwned>(what: &str, body: &str) -> Result<T, ClientError> {
        serde_json::from_str(body).map_err(|e| ClientError::Unexpected(format!("{what}: {e}")))
    }

    /// `GET path`, its answer read as `T`.
    ///
    /// # Errors
    ///
    /// [`ClientError`].
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let body = self
            .send(self.http.get(format!("{}{path}", self.base)))
            .await?;
        Self::decode(&format!("GET {path}"), &body)
    }

    /// `POST path` with a JSON body (and the token, if any), its answer
    /// read as `T`.
    ///
    /// # Errors
    ///
    /// [`ClientError`].
    pub async fn post_json<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, ClientError> {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let body = self.send(req).await?;
        Self::decode(&format!("POST {path}"), &body)
    }

    /// `GET /status`.
    ///
    /// # Errors
    ///
    /// [`ClientError`].
    pub async fn status(&self) -> Result<StatusAnswer, ClientError> {
        self.get_json("/status").await
    }

    /// `GET /accounts/{account}`: `account` is a dev account name or a hex
    /// address.
    ///
    /// # Errors
    ///
    /// [`ClientError`].
    pub async fn account(&self, account: &str) -> Result<AccountAnswer, ClientError> {
        self.get_json(&format!("/accounts/{account}")).await
    }

    /// `GET /blocks?last=N`: the last `last` best-chain blocks, oldest
    /// first.
    ///
    /// # Errors
    ///
    /// [`ClientError`].
    pub async fn blocks(&self, last: u64) -> Result<Vec<BlockAnswer>, ClientError> {
        self.get_json(&format!("/blocks?last={last}")).await
    }

    /// `GET /blocks/{hash}`.
    ///
    /// # Errors
    ///
    /// [`ClientError`].
    pub async fn block(&self, hash: &BlockHash) -> Result<BlockAnswer, ClientError> {
        self.get_json(&format!("/blocks/{hash}")).await
    }

    /// `GET /blocks/height/{height}`.
    ///
    /// # Errors
    ///
    /// [`ClientError`].
    pub async fn block_at_height(&self, height: u64) -> Result<BlockAnswer, ClientError> {
        self.get_json(&format!("/blocks/height/{height}")).await
    }

    /// `GET /txs/{id}`.
    ///
    /// # Errors
    ///
    /// [`ClientError`].
    pub async fn tx(&self, id: &TxId) -> Result<TxLookupAnswer, ClientError> {
        self.get_json(&format!("/txs/{id}")).await
    }

    /// `GET /contracts`.
    ///
    /// # Errors
    ///
    /// [`ClientError`].
    pub async fn contracts(&self) -> Result<Vec<Contract>, ClientError> {
        self.get_json("/contracts").await
    }

    /// `GET /contracts/{id}`.
    ///
    /// # Errors
    ///
    /// [`ClientError`].
    pub async fn contract(&self, id: &ContractId) -> Result<Contract, ClientError> {
        self.get_json(&format!("/contracts/{id}")).await
    }

    /// `POST /mine`: mines `blocks` blocks now (needs the token).
    ///
    /// # Errors
    ///
    /// [`ClientError`].
    pub async fn mine(&self, blocks: u64) -> Result<MineAnswer, ClientError> {
        self.post_json("/mine", &MineRequest { blocks, to: None })
            .await
    }

    /// Signs `payload` as `key` with the account's next nonce (counting its
    /// pending transactions) and submits it. Returns the API's answer.
    ///
    /// # Errors
    ///
    /// [`ClientError`], with the rule broken if the node refuses it.
    pub async fn sign_and_submit(
        &self,
        key: &Keypair,
        payload: Payload,
    ) -> Result<SubmitAnswer, ClientError> {
        let network = self.status().await?.network;
        let address: Address = key.address();
        let nonce = self.account(&address.to_string()).await?.pending_nonce;
        let tx = SignedTx::sign(key, nonce, network, payload);
        let body = SubmitTx {
            tx: hex::encode(tx.to_bytes()),
        };
        self.post_json("/txs", &body).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use escrow::{Amount, Genesis, dev};

    use super::*;
    use crate::api_types::TxStatus;
    use crate::{NodeConfig, Seams, Service};

    /// Every typed call reads the real API's answer, and a refusal keeps
    /// the API's code.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_typed_calls_read_a_real_nodes_answers() {
        let mut genesis = Genesis::dev();
        // An easy target: blocks in microseconds.
        genesis.params = chain_core::ChainParams::with_target_bits(10);
        let network = genesis.network_id();
        let mut config = NodeConfig::new(genesis);
        config.api = Some("127.0.0.1:0".parse().unwrap());
        config.api_token = Some("t".to_string());
        let node = Service::start(config, Seams::default()).await.unwrap();
        let base = format!("http://{}", node.api_addr().unwrap());
        let client = Client::new(&base, Some("t".to_string()));

        let status = client.status().await.unwrap();
        assert_eq!((status.network, status.height), (network, 0));
        let alice = client.account("alice").await.unwrap();
        assert_eq!(alice.name.as_deref(), Some("alice"));

        let key = dev::keypair("alice").unwrap();
        let payload = Payload::EscrowCreate {
            seller: dev::address("bob").unwrap(),
            arbiter: dev::address("eve").unwrap(),
            amount: Amount::new(5),
            delivery_deadline: 10,
            dispute_window: 5,
        };
        let submitted = client.sign_and_submit(&key, payload).await.unwrap();
        let contract = submitted.contract.expect("an escrow names its contract");
        let pending = client.tx(&submitted.id).await.unwrap();
        assert_eq!((pending.status, pending.block), (TxStatus::Pending, None));

        let mined = client.mine(1).await.unwrap();
        assert_eq!(mined.blocks.len(), 1);
        let confirmed = client.tx(&submitted.id).await.unwrap();
        assert_eq!(confirmed.status, TxStatus::Confirmed);
        assert_eq!(confirmed.block, Some(mined.blocks[0]));
        assert_eq!(confirmed.tx.id(), submitted.id);
        let block = client.block(&mined.blocks[0]).await.unwrap();
        assert_eq!(block, client.block_at_height(1).await.unwrap());
        assert_eq!(client.blocks(2).await.unwrap().len(), 2);
        assert_eq!(client.contracts().await.unwrap()[0].id, contract);
        assert_eq!(
            client.contract(&contract).await.unwrap().amount,
            Amount::new(5)
        );

        let refused = Client::new(&base, None).mine(1).await;
        assert!(
            matches!(&refused, Err(ClientError::Refused { code, .. }) if code == "unauthorized"),
            "{refused:?}"
        );
        node.shutdown().await;
    }
}

//! The command-line client's HTTP side: a small typed wrapper over the
//! node's API (`docs/API.md`), and local signing. Answers are read into
//! the same [`crate::api_types`] the API writes them from.
//!
//! The client never trusts the node with a key: it fetches the network id
//! and the account's pending nonce, signs locally, and submits the
//! transaction's canonical bytes.

use std::path::Path;
use std::time::Duration;

use chain_core::{BlockHash, TxId};
use escrow::{Address, Amount, Contract, ContractId, FeeRate, Keypair, Payload, SignedTx};
use serde::Serialize;
use serde::de::DeserializeOwned;

mod error;
use error::innermost;
pub use error::{COOKIE_FILE, ClientError};

use crate::api_types::{
    AccountAnswer, BlockAnswer, FeeEstimateAnswer, MempoolFeesAnswer, MineAnswer, MineRequest,
    PeerAnswer, StatusAnswer, SubmitAnswer, SubmitTx, TxAnswer, TxLookupAnswer,
};

/// How long a request may take, answer included, unless the client is
/// given another limit ([`Client::with_timeout`]): a node that accepts the
/// connection but never answers (stopped with SIGSTOP, wedged) is given
/// up on, not waited for forever.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long `POST /mine` may take at least: the node answers once it has
/// mined every block (up to 1,000), which takes long on a hard target.
pub const MINE_TIMEOUT: Duration = Duration::from_secs(600);

/// The fewest hex digits an id prefix may have (`GET /blocks/{id}`,
/// `/txs/{id}`, `/contracts/{id}` accept any unique prefix this long).
pub const MIN_PREFIX: usize = 8;

/// Checks that `id` is an id or an id prefix: at least [`MIN_PREFIX`] hex
/// digits, at most 64, with dashes only where `dashes` allows them (a
/// contract id is a UUID). So what goes into a URL path is only hex digits
/// and dashes.
///
/// # Errors
///
/// [`ClientError::BadId`].
pub fn check_id(id: &str, what: &'static str, dashes: bool) -> Result<(), ClientError> {
    let digits = id.chars().filter(char::is_ascii_hexdigit).count();
    let others_ok = id
        .chars()
        .all(|c| c.is_ascii_hexdigit() || (dashes && c == '-'));
    if others_ok && (MIN_PREFIX..=64).contains(&digits) {
        Ok(())
    } else {
        Err(ClientError::BadId {
            id: id.to_string(),
            what,
        })
    }
}

/// An error answer's body: every error has `code` and `message`; some
/// carry more (`matches` for an ambiguous prefix, `tx` for a pending
/// contract).
#[derive(serde::Deserialize)]
struct RefusalBody {
    code: String,
    message: String,
    #[serde(default)]
    matches: Vec<serde_json::Value>,
    #[serde(default)]
    tx: Option<String>,
}

/// A client of one node's API.
pub struct Client {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
    timeout: Duration,
}

impl Client {
    /// A client of the API at `base` (`http://127.0.0.1:8000`), whose
    /// requests each take at most [`REQUEST_TIMEOUT`] (`POST /mine` at
    /// least [`MINE_TIMEOUT`]).
    pub fn new(base: &str, token: Option<String>) -> Client {
        // A node that does not accept a connection in 5 s is as good as
        // down; the answer has the request's whole limit. An idle
        // kept-alive connection is given up after 5 s, before the node
        // closes it (`ApiLimits::header_timeout`, 10 s by default), so a
        // request is never sent on a connection the node is closing.
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .pool_idle_timeout(std::time::Duration::from_secs(5))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Client {
            base: base.trim_end_matches('/').to_string(),
            http,
            token,
            timeout: REQUEST_TIMEOUT,
        }
    }

    /// The same client with requests limited to `timeout` each (`POST
    /// /mine` to [`MINE_TIMEOUT`] if that is longer).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self
    }

    /// The API's base URL, as given.
    pub fn base(&self) -> &str {
        &self.base
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
            .map_err(|cause| ClientError::Token { path, cause })
    }

    /// Sends `req`, waiting at most `limit` for the whole answer, and
    /// returns the answer's body, or the node's refusal.
    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        limit: Duration,
    ) -> Result<String, ClientError> {
        let unreachable = |e: reqwest::Error| {
            if e.is_timeout() && !e.is_connect() {
                ClientError::NoAnswer {
                    url: self.base.clone(),
                    secs: limit.as_secs(),
                }
            } else {
                let reason = innermost(&e);
                let not_http = [
                    "connection closed before message completed",
                    "invalid HTTP",
                    "HTTP/0.9",
                ]
                .iter()
                .any(|sign| reason.contains(sign));
                if not_http {
                    ClientError::NotHttp {
                        url: self.base.clone(),
                        reason,
                    }
                } else {
                    ClientError::Unreachable {
                        url: self.base.clone(),
                        reason,
                    }
                }
            }
        };
        let resp = req.timeout(limit).send().await.map_err(unreachable)?;
        let status = resp.status();
        let body = resp.text().await.map_err(unreachable)?;
        if status.is_success() {
            return Ok(body);
        }
        // A refusal from something other than the API (a proxy, another
        // server on the port) has no error body: say the HTTP status.
        Err(match serde_json::from_str::<RefusalBody>(&body) {
            Ok(e) => ClientError::Refused {
                status: status.as_u16(),
                code: e.code,
                message: e.message,
                matches: e
                    .matches
                    .into_iter()
                    .map(|m| match m {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    })
                    .collect(),
                tx: e.tx,
            },
            Err(_) => ClientError::Unexpected {
                url: self.base.clone(),
                what: format!("HTTP {status} without the API's error body"),
            },
        })
    }

    /// Reads an answer as `T`: a shape other than the API's is
    /// [`ClientError::Unexpected`], naming the request.
    fn decode<T: DeserializeOwned>(&self, what: &str, body: &str) -> Result<T, ClientError> {
        serde_json::from_str(body).map_err(|e| ClientError::Unexpected {
            url: self.base.clone(),
            what: format!("{what}: {e}"),
        })
    }

    /// `GET path`, its answer read as `T`.
    ///
    /// # Errors
    ///
    /// [`ClientError`].
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let body = self
            .send(self.http.get(format!("{}{path}", self.base)), self.timeout)
            .await?;
        self.decode(&format!("GET {path}"), &body)
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
        let limit = if path == "/mine" {
            self.timeout.max(MINE_TIMEOUT)
        } else {
            self.timeout
        };
        let body = self.send(req, limit).await?;
        self.decode(&format!("POST {path}"), &body)
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

    /// `POST /mine`: mines `blocks` blocks now (needs the token), paying
    /// their rewards to `to` if given (the node's `--miner` otherwise).
    ///
    /// # Errors
    ///
    /// [`ClientError`].
    pub async fn mine(&self, blocks: u64) -> Result<MineAnswer, ClientError> {
        self.post_json("/mine", &MineRequest { blocks, to: None })
            .await
    }

    /// `POST /mine` with `{"blocks": N, "to": "<address>"}`: the blocks'
    /// rewards go to `to`.
    ///
    /// # Errors
    ///
    /// [`ClientError`].
    pub async fn mine_to(&self, blocks: u64, to: &Address) -> Result<MineAnswer, ClientError> {
        let body = MineRequest {
            blocks,
            to: Some(to.to_string()),
        };
        self.post_json("/mine", &body).await
    }

    /// `GET /blocks?from=A&to=B`: best-chain blocks from height `from` to
    /// `to`, oldest first (at most 100 a request).
    ///
    /// # Errors
    ///
    /// [`ClientError`].
    pub async fn blocks_range(&self, from: u64, to: u64) -> Result<Vec<BlockAnswer>, ClientError> {
        self.get_json(&format!("/blocks?from={from}&to={to}")).await
    }

    /// `GET /blocks/{id}`: a block by hash or unique hash prefix.
    ///
    /// # Errors
    ///
    /// [`ClientError::BadId`] before asking, or the node's answer.
    pub async fn block_by_id(&self, id: &str) -> Result<BlockAnswer, ClientError> {
        check_id(id, "a block", false)?;
        self.get_json(&format!("/blocks/{id}")).await
    }

    /// `GET /txs/{id}`: a transaction by id or unique id prefix.
    ///
    /// # Errors
    ///
    /// [`ClientError::BadId`] before asking, or the node's answer.
    pub async fn tx_by_id(&self, id: &str) -> Result<TxLookupAnswer, ClientError> {
        check_id(id, "a transaction", false)?;
        self.get_json(&format!("/txs/{id}")).await
    }

    /// `GET /contracts/{id}`: a contract by id or unique id prefix.
    ///
    /// # Errors
    ///
    /// [`ClientError::BadId`] before asking, or the node's answer
    /// (`contract_pending` with the creating transaction in
    /// [`ClientError::Refused`]'s `tx`).
    pub async fn contract_by_id(&self, id: &str) -> Result<Contract, ClientError> {
        check_id(id, "a contract", true)?;
        self.get_json(&format!("/contracts/{id}")).await
    }

    /// `GET /peers`.
    ///
    /// # Errors
    ///
    /// [`ClientError`].
    pub async fn peers(&self) -> Result<Vec<PeerAnswer>, ClientError> {
        self.get_json("/peers").await
    }

    /// `GET /mempool`: the pending transactions, in the order a block takes
    /// them.
    ///
    /// # Errors
    ///
    /// [`ClientError`].
    pub async fn mempool(&self) -> Result<Vec<TxAnswer>, ClientError> {
        self.get_json("/mempool").await
    }

    /// The fee rate for confirmation within `blocks` blocks
    /// (`GET /fees/estimate`).
    ///
    /// # Errors
    ///
    /// [`ClientError`].
    pub async fn fee_estimate(&self, blocks: u64) -> Result<FeeEstimateAnswer, ClientError> {
        self.get_json(&format!("/fees/estimate?blocks={blocks}"))
            .await
    }

    /// The mempool by fee rate (`GET /mempool/fees`).
    ///
    /// # Errors
    ///
    /// [`ClientError`].
    pub async fn mempool_fees(&self) -> Result<MempoolFeesAnswer, ClientError> {
        self.get_json("/mempool/fees").await
    }

    /// Signs `payload` as `key` with the account's next nonce (counting its
    /// pending transactions), paying `fee`, and submits it. Returns the
    /// API's answer.
    ///
    /// # Errors
    ///
    /// [`ClientError`], with the rule broken if the node refuses it.
    pub async fn sign_and_submit(
        &self,
        key: &Keypair,
        payload: Payload,
        fee: Fee,
    ) -> Result<SubmitAnswer, ClientError> {
        let network = self.status().await?.network;
        let address: Address = key.address();
        let nonce = self.account(&address.to_string()).await?.pending_nonce;
        let tx = match fee {
            Fee::Fixed(fee) => SignedTx::sign(key, nonce, fee, network, payload),
            Fee::Estimate { blocks } => {
                let rate = FeeRate::per_kb(self.fee_estimate(blocks).await?.fee_rate);
                SignedTx::sign_at_rate(key, nonce, rate, network, payload)
            }
        };
        let body = SubmitTx {
            tx: hex::encode(tx.to_bytes()),
        };
        self.post_json("/txs", &body).await
    }
}

/// What a transaction the client signs pays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fee {
    /// This many coins.
    Fixed(Amount),
    /// The node's estimate for confirmation within this many blocks
    /// (`GET /fees/estimate`), for the transaction's size.
    Estimate {
        /// The blocks.
        blocks: u64,
    },
}

impl Default for Fee {
    /// The node's estimate for confirmation within 2 blocks.
    fn default() -> Fee {
        Fee::Estimate { blocks: 2 }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use escrow::{Amount, Genesis, dev};

    use super::*;
    use crate::api_types::TxStatus;
    use crate::{NodeConfig, Seams, Service};

    #[test]
    fn ids_are_8_to_64_hex_digits_and_dashes_only_in_contract_ids() {
        for ok in ["abcdef01", &"0".repeat(64), "ABCDEF0123"] {
            assert!(check_id(ok, "a block", false).is_ok(), "{ok}");
        }
        assert!(check_id("5cadb75c-9b7f", "a contract", true).is_ok());
        for bad in [
            "abcdef0",
            "5cadb75c-9b7f",
            "../status",
            "abcdefgh",
            &"0".repeat(65),
            "",
        ] {
            assert!(
                matches!(
                    check_id(bad, "a block", false),
                    Err(ClientError::BadId { .. })
                ),
                "{bad}"
            );
        }
    }

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
        let submitted = client
            .sign_and_submit(&key, payload, Fee::default())
            .await
            .unwrap();
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
            matches!(&refused, Err(ClientError::Refused { code, status: 401, .. }) if code == "unauthorized"),
            "{refused:?}"
        );
        node.shutdown().await;
    }
}

//! The command-line client's HTTP side: a small typed wrapper over the
//! node's API (`docs/API.md`), and local signing.
//!
//! The client never trusts the node with a key: it fetches the network id
//! and the account's pending nonce, signs locally, and submits the
//! transaction's canonical bytes.

use std::path::{Path, PathBuf};

use escrow::{Address, Keypair, Payload, SignedTx};
use serde_json::{Value, json};

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

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Value, ClientError> {
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
        let json: Value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&body).unwrap_or(Value::String(body))
        };
        if status.is_success() {
            Ok(json)
        } else {
            Err(ClientError::Refused {
                code: json["code"].as_str().unwrap_or("http_error").to_string(),
                message: json["message"]
                    .as_str()
                    .map_or_else(|| format!("HTTP {status}"), str::to_string),
            })
        }
    }

    /// `GET path`.
    ///
    /// # Errors
    ///
    /// [`ClientError`].
    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    /// `POST path` with a JSON body (and the token, if any).
    ///
    /// # Errors
    ///
    /// [`ClientError`].
    pub async fn post(&self, path: &str, body: Value) -> Result<Value, ClientError> {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        self.send(req).await
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
    ) -> Result<Value, ClientError> {
        let status = self.get("/status").await?;
        let network = status["network"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| ClientError::Unexpected("status without a network id".into()))?;
        let address: Address = key.address();
        let account = self.get(&format!("/accounts/{address}")).await?;
        let nonce = account["pending_nonce"]
            .as_u64()
            .ok_or_else(|| ClientError::Unexpected("account without a pending nonce".into()))?;
        let tx = SignedTx::sign(key, nonce, network, payload);
        self.post("/txs", json!({"tx": hex::encode(tx.to_bytes())}))
            .await
    }
}

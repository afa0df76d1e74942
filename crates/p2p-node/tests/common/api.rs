//! A node with its HTTP API on 127.0.0.1:0, and plain JSON requests to it.

use p2p_node::api::ApiLimits;
use p2p_node::{Seams, Service};
use reqwest::StatusCode;
use serde_json::Value;

use super::{config, init_logs};

/// The token of [`api_node`]'s control endpoints.
pub const TOKEN: &str = "test-token";

/// A node serving its API on an OS-chosen port, and the API's base URL.
pub async fn api_node() -> (Service, String) {
    api_node_with(ApiLimits::default()).await
}

/// [`api_node`] with the server's limits set to `limits`.
pub async fn api_node_with(limits: ApiLimits) -> (Service, String) {
    init_logs();
    let mut c = config();
    c.api = Some("127.0.0.1:0".parse().unwrap());
    c.api_token = Some(TOKEN.to_string());
    c.api_limits = limits;
    let node = Service::start(c, Seams::default()).await.unwrap();
    let url = format!("http://{}", node.api_addr().unwrap());
    (node, url)
}

/// `GET url`: the status and the JSON body (null if none).
pub async fn get(url: &str) -> (StatusCode, Value) {
    let r = reqwest::get(url).await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// `POST url` with a JSON body and, if given, the bearer token.
pub async fn post(url: &str, body: Value, token: Option<&str>) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new().post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

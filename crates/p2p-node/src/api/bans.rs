//! `GET /bans`: the node's active bans (`docs/API.md`, "Peers and bans").

use axum::Json;
use axum::extract::State;

use super::error::ApiError;
use super::state::Api;
use crate::api_types::BanAnswer;
use crate::penalty::BanKey;

/// `GET /bans`: every active ban, what it names and the seconds left.
pub(super) async fn bans(State(api): State<Api>) -> Result<Json<Vec<BanAnswer>>, ApiError> {
    let bans = api.node.query(|v| v.bans.clone()).await?;
    Ok(Json(
        bans.into_iter()
            .map(|(key, left)| {
                let (kind, value) = match key {
                    BanKey::Node(id) => ("node", hex::encode(id.0)),
                    BanKey::Addr(addr) => ("addr", addr.to_string()),
                    BanKey::Ip(ip) => ("ip", ip.to_string()),
                };
                BanAnswer {
                    kind: kind.to_string(),
                    value,
                    seconds_left: left.as_secs_f64().ceil() as u64,
                }
            })
            .collect(),
    ))
}

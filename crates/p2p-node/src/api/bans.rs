//! `GET /bans`: the node's active bans (`docs/API.md`, "Peers and bans").

use axum::Json;
use axum::extract::State;

use super::state::Api;
use crate::api_types::BanAnswer;
use crate::penalty::BanKey;

/// `GET /bans`: every active ban, what it names and the seconds left,
/// from the snapshot.
pub(super) async fn bans(State(api): State<Api>) -> Json<Vec<BanAnswer>> {
    let snap = api.node.snapshot();
    let now = tokio::time::Instant::now();
    Json(
        snap.ban_list
            .iter()
            .filter(|(_, until)| *until > now)
            .map(|(key, until)| {
                let left = until.saturating_duration_since(now);
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
    )
}

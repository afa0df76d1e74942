//! `snapshot`, `revert ID` and `reset`: a `--dev` node's snapshots
//! (`POST /dev/...`, with the node's token). A revert or a reset restarts
//! the node; the command waits until a new node answers at the state asked
//! for.

use std::time::Duration;

use p2p_node::api_types::{DevAnswer, RevertRequest, StatusAnswer};
use serde_json::json;

use super::ctx::Ctx;
use super::errors::{Exit, Failure};

/// How long `revert` and `reset` wait for the restarted node.
const RESTART_WAIT: Duration = Duration::from_secs(60);

/// `snapshot`: prints the new snapshot's id, height and tip.
pub(super) async fn snapshot(ctx: &Ctx) -> anyhow::Result<()> {
    let (client, _) = ctx.authed_client()?;
    let saved: DevAnswer = client.post_json("/dev/snapshot", &json!({})).await?;
    ctx.print(&saved, || {
        format!(
            "snapshot {} at height {} (tip {}): `p2p-node revert {}` comes back to it",
            saved.id, saved.height, saved.tip, saved.id
        )
    })
}

/// `revert ID` (`Some`) or `reset` (`None`): asks, then waits until a node
/// started after the request answers at the snapshot's tip (or genesis).
pub(super) async fn revert(ctx: &Ctx, id: Option<u64>) -> anyhow::Result<()> {
    let (client, _) = ctx.authed_client()?;
    let before: StatusAnswer = client.status().await?;
    let target = match id {
        Some(id) => {
            let at: DevAnswer = client
                .post_json("/dev/revert", &RevertRequest { id })
                .await?;
            Some(at)
        }
        None => {
            let at: DevAnswer = client.post_json("/dev/reset", &json!({})).await?;
            Some(at)
        }
    };
    let quick =
        p2p_node::client::Client::new(&ctx.global.node, None).with_timeout(Duration::from_secs(2));
    let deadline = tokio::time::Instant::now() + RESTART_WAIT;
    let now: StatusAnswer = loop {
        // A new node, whose best chain holds the snapshot's tip at its
        // height (it may have mined on top already: the pending
        // transactions were submitted again).
        if let Ok(s) = quick.status().await
            && s.started_at_ms != before.started_at_ms
            && let Some(at) = &target
        {
            let there = match quick.block_at_height(at.height).await {
                Ok(b) => b.hash == at.tip,
                Err(_) => false,
            };
            if there {
                break s;
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Failure {
                exit: Exit::Unreachable,
                code: "unreachable",
                message: format!(
                    "the node at {} did not come back within {} s of the {}",
                    ctx.global.node,
                    RESTART_WAIT.as_secs(),
                    if id.is_some() { "revert" } else { "reset" }
                ),
            }
            .into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let at = target.as_ref().map_or(now.height, |a| a.height);
    let answer = json!({"id": id, "height": at, "tip": target.as_ref().map(|a| a.tip), "best_height": now.height});
    ctx.print(&answer, || match id {
        Some(id) => format!(
            "reverted to snapshot {id}: height {}, tip {}",
            now.height, now.tip
        ),
        None => format!("reset to genesis: height {}, tip {}", now.height, now.tip),
    })
}

//! The accept loop, and the budget of connections still in their
//! handshake.
//!
//! Every inbound connection gets a task at once; while it is in its
//! handshake it holds a [`PendingSlot`](pending::PendingSlot). At most
//! [`NodeConfig::max_pending`] connections are pending: a newcomer past
//! that closes a pending connection whose task has tried to read and has
//! not received its handshake (failing that, one not heard from; failing
//! that, any): of those, the oldest from the IP address that holds the most
//! places in the budget. An honest dialler sends its handshake as soon as
//! it connects, so its task finds it on its first read and it is never the
//! one closed: a flood of silent sockets, however fast it reconnects, only
//! evicts itself, and an honest peer is admitted at once. Among silent
//! connections, a host that opens many makes room before one that opened
//! few. Established peers are counted apart, by the peer table
//! (`max_inbound`, with its eviction rule).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::warn;

use crate::config::NodeConfig;
use crate::core::{CoreMsg, Direction};
use crate::peer::PeerTask;
use crate::transport::Listener;

pub(crate) mod pending;

use self::pending::Pending;

/// Accepts connections until the node stops; each gets a task, in the
/// handshake budget until its handshake is over.
pub(crate) async fn accept_loop(
    mut listener: Box<dyn Listener>,
    core: mpsc::Sender<CoreMsg>,
    config: Arc<NodeConfig>,
    cancel: CancellationToken,
    (tracker, traffic): (TaskTracker, Arc<crate::traffic::Traffic>),
    next_conn: Arc<AtomicU64>,
) {
    let pending = Pending::default();
    loop {
        let accepted = tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, remote)) => {
                let conn = next_conn.fetch_add(1, Ordering::Relaxed);
                let token = cancel.child_token();
                let slot = pending.enter(conn, remote.ip(), token.clone(), config.max_pending);
                let task = PeerTask {
                    conn,
                    remote,
                    direction: Direction::Inbound,
                    core: core.clone(),
                    config: config.clone(),
                    cancel: token,
                    pending: Some(slot),
                    traffic: traffic.clone(),
                };
                // Every log line of the connection carries these fields
                // (`--log-format json` writes them as the span's).
                let span = tracing::info_span!("peer", conn, remote = %remote, direction = "in");
                tracker.spawn(tracing::Instrument::instrument(task.run(stream), span));
            }
            Err(e) => {
                // Out of file descriptors and the like: wait, do not spin.
                warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    // Dropping the listener closes the listening socket.
    drop(listener);
}

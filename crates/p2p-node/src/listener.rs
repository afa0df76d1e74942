//! The accept loop, and the budget of connections still in their
//! handshake.
//!
//! Every inbound connection gets a task at once; while it is in its
//! handshake it holds a [`PendingSlot`]. At most
//! [`NodeConfig::max_pending`] connections are pending: a newcomer past
//! that closes the oldest pending one. An honest dialler sends its
//! handshake as soon as it connects and leaves the budget within
//! milliseconds, so the oldest pending connections are the ones that never
//! spoke: a flood of silent sockets only evicts itself, and an honest peer
//! is admitted at once. Established peers are counted apart, by the peer
//! table (`max_inbound`, with its eviction rule).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use crate::config::NodeConfig;
use crate::core::{ConnId, CoreMsg, Direction};
use crate::peer::PeerTask;
use crate::transport::Listener;

/// The connections in their handshake, oldest first, each with the token
/// that closes it.
#[derive(Clone, Default)]
pub(crate) struct Pending {
    queue: Arc<Mutex<VecDeque<(ConnId, CancellationToken)>>>,
}

impl Pending {
    /// Enters `conn`; if that makes more than `max`, closes the oldest
    /// pending connection.
    fn enter(&self, conn: ConnId, token: CancellationToken, max: usize) -> PendingSlot {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        queue.push_back((conn, token));
        while queue.len() > max.max(1) {
            if let Some((old, token)) = queue.pop_front() {
                debug!(
                    conn = old,
                    "closing the oldest connection still in its handshake"
                );
                token.cancel();
            }
        }
        PendingSlot {
            pending: self.clone(),
            conn,
        }
    }

    /// How many connections are in their handshake.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// A connection's place in the handshake budget, given back when dropped.
pub(crate) struct PendingSlot {
    pending: Pending,
    conn: ConnId,
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        let mut queue = self
            .pending
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        queue.retain(|(c, _)| *c != self.conn);
    }
}

/// Accepts connections until the node stops; each gets a task, in the
/// handshake budget until its handshake is over.
pub(crate) async fn accept_loop(
    mut listener: Box<dyn Listener>,
    core: mpsc::Sender<CoreMsg>,
    config: Arc<NodeConfig>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    next_conn: Arc<AtomicU64>,
) {
    let pending = Pending::default();
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => break,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, remote)) => {
                let conn = next_conn.fetch_add(1, Ordering::Relaxed);
                let token = cancel.child_token();
                let slot = pending.enter(conn, token.clone(), config.max_pending);
                let task = PeerTask {
                    conn,
                    remote,
                    direction: Direction::Inbound,
                    core: core.clone(),
                    config: config.clone(),
                    cancel: token,
                    pending: Some(slot),
                };
                tracker.spawn(task.run(stream));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_pending_connection_is_closed_past_the_budget() {
        let pending = Pending::default();
        let tokens: Vec<CancellationToken> = (0..4).map(|_| CancellationToken::new()).collect();
        let mut slots: Vec<PendingSlot> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| pending.enter(i as ConnId, t.clone(), 3))
            .collect();
        assert!(tokens[0].is_cancelled(), "the oldest went");
        assert!(!tokens[1].is_cancelled() && !tokens[3].is_cancelled());
        assert_eq!(pending.len(), 3);
        // A handshake that completes leaves the budget.
        slots.remove(2);
        assert_eq!(pending.len(), 2);
        let late = CancellationToken::new();
        let _slot = pending.enter(9, late.clone(), 3);
        assert!(
            !tokens[1].is_cancelled(),
            "room was made by the finished handshake"
        );
        assert_eq!(pending.len(), 3);
    }
}

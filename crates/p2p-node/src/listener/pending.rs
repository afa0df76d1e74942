//! The budget of connections still in their handshake.
//!
//! Every inbound connection holds a [`PendingSlot`] while it is in its
//! handshake; the accept loop (`listener.rs`) enters each newcomer, and the
//! connection's task (`peer.rs`) reports through its slot when it first
//! reads and when its handshake arrives. Past the budget the oldest silent
//! connection is closed (see `listener.rs` for the rule and why).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::core::ConnId;

/// The connections in their handshake, oldest first, each with the token
/// that closes it.
#[derive(Clone, Default)]
pub(crate) struct Pending {
    queue: Arc<Mutex<VecDeque<Entry>>>,
}

/// A connection in its handshake.
struct Entry {
    conn: ConnId,
    token: CancellationToken,
    /// Whether its handshake has arrived.
    spoke: Arc<AtomicBool>,
    /// Whether its task has tried to read yet: a connection whose task has
    /// not run cannot be told silent.
    started: Arc<AtomicBool>,
}

impl Pending {
    /// Enters `conn`; if that makes more than `max`, closes the oldest
    /// pending connection that has not sent its handshake (the oldest of
    /// all if every one has).
    pub(crate) fn enter(&self, conn: ConnId, token: CancellationToken, max: usize) -> PendingSlot {
        let spoke = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicBool::new(false));
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        queue.push_back(Entry {
            conn,
            token,
            spoke: spoke.clone(),
            started: started.clone(),
        });
        while queue.len() > max.max(1) {
            // The oldest that tried to read and had nothing to say; else
            // the oldest not heard from; else the oldest.
            let silent = |started: bool| {
                queue.iter().position(|e| {
                    !e.spoke.load(Ordering::Relaxed)
                        && (!started || e.started.load(Ordering::Relaxed))
                })
            };
            let silent = silent(true).or_else(|| silent(false)).unwrap_or(0);
            if let Some(old) = queue.remove(silent) {
                debug!(
                    conn = old.conn,
                    "closing a connection still in its handshake"
                );
                old.token.cancel();
            }
        }
        PendingSlot {
            pending: self.clone(),
            conn,
            spoke,
            started,
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
    spoke: Arc<AtomicBool>,
    started: Arc<AtomicBool>,
}

impl PendingSlot {
    /// The connection's task is about to read its first bytes.
    pub fn started(&self) {
        self.started.store(true, Ordering::Relaxed);
    }

    /// The connection's handshake arrived: it is no longer closed to make
    /// room while a silent one is pending.
    pub fn spoke(&self) {
        self.spoke.store(true, Ordering::Relaxed);
    }
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        let mut queue = self
            .pending
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        queue.retain(|e| e.conn != self.conn);
    }
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

    #[test]
    fn a_silent_connection_goes_before_one_that_spoke_or_has_not_read_yet() {
        let pending = Pending::default();
        let honest = CancellationToken::new();
        let honest_slot = pending.enter(1, honest.clone(), 3);
        honest_slot.started();
        honest_slot.spoke();
        let unread = CancellationToken::new();
        let _unread_slot = pending.enter(2, unread.clone(), 3);
        // Silent sockets whose tasks read and found nothing evict each
        // other, however many come.
        let mut silent = Vec::new();
        for conn in 3..100 {
            let t = CancellationToken::new();
            let slot = pending.enter(conn, t.clone(), 3);
            slot.started();
            silent.push((slot, t));
        }
        assert!(!honest.is_cancelled(), "it sent its handshake");
        assert!(!unread.is_cancelled(), "its task had not read yet");
        assert_eq!(pending.len(), 3);
        let closed = silent.iter().filter(|(_, t)| t.is_cancelled()).count();
        assert_eq!(closed, silent.len() - 1, "all but the newest silent one");
    }
}

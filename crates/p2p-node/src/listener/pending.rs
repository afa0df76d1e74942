//! The budget of connections still in their handshake.
//!
//! Every inbound connection holds a [`PendingSlot`] while it is in its
//! handshake; the accept loop (`listener.rs`) enters each newcomer, and the
//! connection's task (`peer.rs`) reports through its slot when it first
//! reads and when its handshake arrives. Past the budget the oldest silent
//! connection of the IP address holding the most places is closed (see
//! `listener.rs` for the rule and why).

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
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
    /// The IP address it came from.
    ip: IpAddr,
    token: CancellationToken,
    /// Whether its handshake has arrived.
    spoke: Arc<AtomicBool>,
    /// Whether its task has tried to read yet: a connection whose task has
    /// not run cannot be told silent.
    started: Arc<AtomicBool>,
}

impl Pending {
    /// Enters `conn`, from `ip`; if that makes more than `max`, closes one
    /// pending connection: of those whose task read and found no handshake
    /// (failing that, those not heard from; failing that, all), the oldest
    /// from the IP address that holds the most places in the budget.
    pub(crate) fn enter(
        &self,
        conn: ConnId,
        ip: IpAddr,
        token: CancellationToken,
        max: usize,
    ) -> PendingSlot {
        let spoke = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicBool::new(false));
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        queue.push_back(Entry {
            conn,
            ip: crate::penalty::host_of(ip),
            token,
            spoke: spoke.clone(),
            started: started.clone(),
        });
        while queue.len() > max.max(1) {
            // Those that tried to read and had nothing to say; else those
            // not heard from; else all. Of them, the oldest of the IP
            // address holding the most places.
            let mut places: BTreeMap<IpAddr, usize> = BTreeMap::new();
            for e in queue.iter() {
                *places.entry(e.ip).or_insert(0) += 1;
            }
            let pick = |class: fn(&Entry) -> bool| {
                queue
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| class(e))
                    .min_by_key(|(i, e)| (std::cmp::Reverse(places[&e.ip]), *i))
                    .map(|(i, _)| i)
            };
            let silent =
                pick(|e| !e.spoke.load(Ordering::Relaxed) && e.started.load(Ordering::Relaxed))
                    .or_else(|| pick(|e| !e.spoke.load(Ordering::Relaxed)))
                    .or_else(|| pick(|_| true))
                    .unwrap_or(0);
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

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn the_oldest_pending_connection_is_closed_past_the_budget() {
        let pending = Pending::default();
        let tokens: Vec<CancellationToken> = (0..4).map(|_| CancellationToken::new()).collect();
        let mut slots: Vec<PendingSlot> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| pending.enter(i as ConnId, LOCAL, t.clone(), 3))
            .collect();
        assert!(tokens[0].is_cancelled(), "the oldest went");
        assert!(!tokens[1].is_cancelled() && !tokens[3].is_cancelled());
        assert_eq!(pending.len(), 3);
        // A handshake that completes leaves the budget.
        slots.remove(2);
        assert_eq!(pending.len(), 2);
        let late = CancellationToken::new();
        let _slot = pending.enter(9, LOCAL, late.clone(), 3);
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
        let honest_slot = pending.enter(1, LOCAL, honest.clone(), 3);
        honest_slot.started();
        honest_slot.spoke();
        let unread = CancellationToken::new();
        let _unread_slot = pending.enter(2, LOCAL, unread.clone(), 3);
        // Silent sockets whose tasks read and found nothing evict each
        // other, however many come.
        let mut silent = Vec::new();
        for conn in 3..100 {
            let t = CancellationToken::new();
            let slot = pending.enter(conn, LOCAL, t.clone(), 3);
            slot.started();
            silent.push((slot, t));
        }
        assert!(!honest.is_cancelled(), "it sent its handshake");
        assert!(!unread.is_cancelled(), "its task had not read yet");
        assert_eq!(pending.len(), 3);
        let closed = silent.iter().filter(|(_, t)| t.is_cancelled()).count();
        assert_eq!(closed, silent.len() - 1, "all but the newest silent one");
    }

    #[test]
    fn past_the_budget_the_most_crowded_address_makes_room() {
        let pending = Pending::default();
        let host = |n: u8| IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, n));
        // Three hosts each hold a place with a silent connection, then one
        // host floods silent sockets: only its own are closed, the oldest
        // first, though the others are older.
        let mut others = Vec::new();
        for n in 1..=3 {
            let t = CancellationToken::new();
            let slot = pending.enter(u64::from(n), host(n), t.clone(), 8);
            slot.started();
            others.push((slot, t));
        }
        let mut flood = Vec::new();
        for conn in 10..40 {
            let t = CancellationToken::new();
            let slot = pending.enter(conn, host(9), t.clone(), 8);
            slot.started();
            flood.push((slot, t));
        }
        assert!(
            others.iter().all(|(_, t)| !t.is_cancelled()),
            "each lone host keeps its place"
        );
        let open: Vec<usize> = (0..flood.len())
            .filter(|i| !flood[*i].1.is_cancelled())
            .collect();
        assert_eq!(
            open,
            (25..30).collect::<Vec<_>>(),
            "the flooder's newest five"
        );
        assert_eq!(pending.len(), 8);
    }
}

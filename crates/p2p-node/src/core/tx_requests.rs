//! Which announced transactions the node asks of whom, bounded per peer
//! (the shape of Bitcoin Core's `TxRequestTracker`, simpler).
//!
//! A peer's announced ids wait in its queue (at most
//! [`MAX_PEER_ANNOUNCEMENTS`]; more are ignored) and are asked of it in the
//! order announced, at most [`MAX_IN_FLIGHT`] at a time: a peer that
//! announces ten thousand ids and never delivers is asked for a hundred,
//! and holds no more of the node's memory than its queue. A slot frees when
//! the transaction arrives (from anyone), when the peer answers `NotFound`,
//! when the request times out, or when the peer goes; the peer is then
//! asked for the next ids of its queue. An id asked of one peer and
//! announced by others meanwhile remembers up to [`MAX_OTHERS`] of them;
//! when its request fails it goes to the front of their queues (in the
//! order it was asked), so it is asked of the next one that has room.
//!
//! Nothing here sends: [`TxRequests::requests`] hands back what to ask of
//! whom, and the core sends it once per event, so the slots an event's
//! transactions freed are refilled by one `GetTxs` per peer.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use chain_core::TxId;
use tokio::time::Instant;

use crate::core::view::ConnId;

/// Most transactions asked of one peer and not yet answered (Bitcoin
/// Core's `MAX_PEER_TX_REQUEST_IN_FLIGHT`).
pub(crate) const MAX_IN_FLIGHT: usize = 100;
/// Most announced ids a peer may have waiting to be asked (Bitcoin Core's
/// `MAX_PEER_TX_ANNOUNCEMENTS`); more are ignored.
pub(crate) const MAX_PEER_ANNOUNCEMENTS: usize = 5_000;
/// Most other announcers remembered per id asked.
pub(crate) const MAX_OTHERS: usize = 8;

/// A transaction asked of a peer.
struct Asked {
    at: Instant,
    /// Its place in the order requests were made.
    seq: u64,
    of: ConnId,
    /// Peers that announced it meanwhile, in order.
    others: Vec<ConnId>,
}

/// One peer's side.
#[derive(Default)]
struct Peer {
    /// Announced ids not asked of it yet, in order. An id may have been
    /// asked of another peer, or have arrived, since: it is skipped then.
    queue: VecDeque<TxId>,
    /// The ids in `queue`.
    queued: BTreeSet<TxId>,
    /// How many asked of it wait for an answer.
    in_flight: usize,
}

/// Transaction requests (see the module docs).
#[derive(Default)]
pub(crate) struct TxRequests {
    asked: BTreeMap<TxId, Asked>,
    peers: BTreeMap<ConnId, Peer>,
    /// Peers that may have room and ids waiting.
    ready: BTreeSet<ConnId>,
    next_seq: u64,
}

impl TxRequests {
    /// `conn` announced `ids`: those neither `known` nor asked of anyone
    /// join its queue (up to [`MAX_PEER_ANNOUNCEMENTS`]); for those asked of
    /// another peer, `conn` is remembered as one to ask next.
    pub fn announced(&mut self, conn: ConnId, ids: &[TxId], known: impl Fn(&TxId) -> bool) {
        let peer = self.peers.entry(conn).or_default();
        for id in ids {
            if known(id) {
                continue;
            }
            if let Some(a) = self.asked.get_mut(id) {
                remember_other(a, conn);
                continue;
            }
            if peer.queue.len() >= MAX_PEER_ANNOUNCEMENTS || !peer.queued.insert(*id) {
                continue;
            }
            peer.queue.push_back(*id);
        }
        self.ready.insert(conn);
    }

    /// What to ask of whom now: for each peer that has room and ids
    /// waiting, the next of them (in its queue's order), recorded as asked
    /// at `now`. Ids that became `known` or were asked of another peer
    /// meanwhile are skipped.
    pub fn requests(
        &mut self,
        known: impl Fn(&TxId) -> bool,
        now: Instant,
    ) -> Vec<(ConnId, Vec<TxId>)> {
        let mut out = Vec::new();
        for conn in std::mem::take(&mut self.ready) {
            let Some(peer) = self.peers.get_mut(&conn) else {
                continue;
            };
            let mut ids = Vec::new();
            while peer.in_flight < MAX_IN_FLIGHT {
                let Some(id) = peer.queue.pop_front() else {
                    break;
                };
                peer.queued.remove(&id);
                if known(&id) {
                    continue;
                }
                if let Some(a) = self.asked.get_mut(&id) {
                    remember_other(a, conn);
                    continue;
                }
                self.asked.insert(
                    id,
                    Asked {
                        at: now,
                        seq: self.next_seq,
                        of: conn,
                        others: Vec::new(),
                    },
                );
                self.next_seq += 1;
                peer.in_flight += 1;
                ids.push(id);
            }
            if !ids.is_empty() {
                out.push((conn, ids));
            }
        }
        out
    }

    /// The transaction arrived (from whichever peer): its request is done.
    pub fn arrived(&mut self, id: &TxId) {
        if let Some(a) = self.asked.remove(id) {
            self.release(a.of);
        }
    }

    /// `conn` does not have `ids`: those asked of it go to the next
    /// announcer.
    pub fn not_found(&mut self, conn: ConnId, ids: &[TxId]) {
        let failed: BTreeSet<TxId> = ids
            .iter()
            .filter(|id| self.asked.get(id).is_some_and(|a| a.of == conn))
            .copied()
            .collect();
        self.fail(|id, _| failed.contains(id));
    }

    /// Whether no transaction is asked of anyone.
    pub fn is_idle(&self) -> bool {
        self.asked.is_empty()
    }

    /// Requests asked `timeout` or longer before `now` go to the next
    /// announcer (or are forgotten, to be asked of whoever announces the
    /// id next).
    pub fn expire(&mut self, now: Instant, timeout: Duration) {
        self.fail(|_, a| now.saturating_duration_since(a.at) >= timeout);
    }

    /// The connection ended: its queue goes, it is no announcer any more,
    /// and what was asked of it goes to the next announcer.
    pub fn forget_peer(&mut self, conn: ConnId) {
        self.peers.remove(&conn);
        self.ready.remove(&conn);
        for a in self.asked.values_mut() {
            a.others.retain(|c| *c != conn);
        }
        self.fail(|_, a| a.of == conn);
    }

    /// Ends the requests `failed` picks: each asker's slot frees, and each
    /// id goes to the front of its other announcers' queues, in the order
    /// the ids were asked (a sender's nonces stay in order).
    fn fail(&mut self, failed: impl Fn(&TxId, &Asked) -> bool) {
        let mut ended: Vec<(u64, TxId)> = self
            .asked
            .iter()
            .filter(|(id, a)| failed(id, a))
            .map(|(id, a)| (a.seq, *id))
            .collect();
        if ended.is_empty() {
            return;
        }
        ended.sort_unstable();
        let mut requeue: BTreeMap<ConnId, Vec<TxId>> = BTreeMap::new();
        for (_, id) in ended {
            let Some(a) = self.asked.remove(&id) else {
                continue;
            };
            self.release(a.of);
            for other in a.others {
                requeue.entry(other).or_default().push(id);
            }
        }
        // Past the queue's bound if need be: an id comes back only to a
        // peer that announced it while it was asked of another, so a queue
        // grows by at most the requests outstanding.
        for (conn, ids) in requeue {
            let Some(peer) = self.peers.get_mut(&conn) else {
                continue;
            };
            for id in ids.into_iter().rev() {
                if peer.queued.insert(id) {
                    peer.queue.push_front(id);
                }
            }
            self.ready.insert(conn);
        }
    }

    /// A request of `conn` ended: it has room again.
    fn release(&mut self, conn: ConnId) {
        if let Some(peer) = self.peers.get_mut(&conn) {
            peer.in_flight = peer.in_flight.saturating_sub(1);
            if !peer.queue.is_empty() {
                self.ready.insert(conn);
            }
        }
    }

    /// How many transactions asked of `conn` wait for an answer.
    #[cfg(test)]
    pub fn in_flight(&self, conn: ConnId) -> usize {
        self.peers.get(&conn).map_or(0, |p| p.in_flight)
    }
}

/// Remembers `conn` as a peer to ask for `a`'s id if its request fails.
fn remember_other(a: &mut Asked, conn: ConnId) {
    if a.of != conn && !a.others.contains(&conn) && a.others.len() < MAX_OTHERS {
        a.others.push(conn);
    }
}

#[cfg(test)]
#[path = "tx_requests_tests.rs"]
mod tests;

//! What the node asked of whom, and when: blocks and transactions by hash
//! (so each is asked once at a time). Every peer that announces an item while it is asked of another is
//! remembered: if the asked peer times out, answers `NotFound` or goes
//! away, the item is asked of the next announcer, so a transaction does not
//! go missing because the first peer to announce it left. Transactions
//! are asked of each peer a bounded number at a time (`tx_requests.rs`).
//!
//! A block that arrives after its request timed out was still asked for: a
//! busy honest peer answers late during fork races. Timed-out block
//! requests are remembered (a bounded number, oldest forgotten first) so
//! that such a block is not taken for unsolicited junk and its sender is
//! not penalised.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use chain_core::{BlockHash, TxId};
use tokio::time::Instant;
use wire::{Bounded, Message};

use crate::core::tx_requests::{MAX_OTHERS, TxRequests};
use crate::core::view::ConnId;

/// One outstanding request: when and of whom it was asked, and the other
/// peers that announced the item meanwhile (asked next if this one does not
/// answer).
struct Asked {
    at: Instant,
    of: ConnId,
    others: Vec<ConnId>,
}

/// Outstanding requests (see the module docs).
#[derive(Default)]
pub(crate) struct Requests {
    blocks: BTreeMap<BlockHash, Asked>,
    txs: TxRequests,
    /// Block requests that timed out, oldest first.
    late_blocks: VecDeque<BlockHash>,
    late_set: BTreeSet<BlockHash>,
}

/// Block requests to send again, to another peer that announced the
/// block: what [`Requests::expire`], [`Requests::forget_peer`] and
/// [`Requests::not_found`] hand back. (Transactions to ask again wait in
/// their next announcer's queue: see [`Requests::tx_requests`].)
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Retries {
    /// Blocks to ask of these peers.
    pub blocks: Vec<(ConnId, BlockHash)>,
}

impl Retries {
    /// The requests to send: one `GetBlocks` per peer, peers in order.
    pub fn into_messages(self) -> Vec<(ConnId, Message)> {
        let mut by_peer: BTreeMap<ConnId, Vec<BlockHash>> = BTreeMap::new();
        for (conn, hash) in self.blocks {
            by_peer.entry(conn).or_default().push(hash);
        }
        by_peer
            .into_iter()
            .map(|(conn, blocks)| (conn, Message::GetBlocks(Bounded::truncating(blocks))))
            .collect()
    }
}

/// How many timed-out block requests are remembered.
const MAX_LATE: usize = 4_096;

/// The items `conn` announced that are neither known nor already asked
/// for; they are recorded as asked of `conn` at `now`. An item already
/// asked of another peer records `conn` as one to ask next.
fn want<K: Ord + Copy>(
    asked: &mut BTreeMap<K, Asked>,
    conn: ConnId,
    announced: &[K],
    known: impl Fn(&K) -> bool,
    now: Instant,
) -> Vec<K> {
    let mut wanted = Vec::new();
    for item in announced {
        if known(item) {
            continue;
        }
        match asked.get_mut(item) {
            Some(a) => {
                if a.of != conn && !a.others.contains(&conn) && a.others.len() < MAX_OTHERS {
                    a.others.push(conn);
                }
            }
            None => {
                asked.insert(
                    *item,
                    Asked {
                        at: now,
                        of: conn,
                        others: Vec::new(),
                    },
                );
                wanted.push(*item);
            }
        }
    }
    wanted
}

/// Moves the requests that `fails` picks to the next announcer (returned as
/// retries), or drops them if nobody else announced them (returned in
/// `gone`).
fn reassign<K: Ord + Copy>(
    asked: &mut BTreeMap<K, Asked>,
    now: Instant,
    fails: impl Fn(&K, &Asked) -> bool,
    retries: &mut Vec<(ConnId, K)>,
    gone: &mut Vec<K>,
) {
    let failed: Vec<K> = asked
        .iter()
        .filter(|(k, a)| fails(k, a))
        .map(|(k, _)| *k)
        .collect();
    for item in failed {
        let Some(a) = asked.get_mut(&item) else {
            continue;
        };
        if a.others.is_empty() {
            asked.remove(&item);
            gone.push(item);
        } else {
            let next = a.others.remove(0);
            a.of = next;
            a.at = now;
            retries.push((next, item));
        }
    }
}

impl Requests {
    /// The blocks `conn` announced to ask it for (see [`want`]).
    pub fn want_blocks(
        &mut self,
        conn: ConnId,
        announced: &[BlockHash],
        known: impl Fn(&BlockHash) -> bool,
        now: Instant,
    ) -> Vec<BlockHash> {
        want(&mut self.blocks, conn, announced, known, now)
    }

    /// `conn` announced these transactions; they are asked of it by
    /// [`Requests::tx_requests`], a bounded number at a time.
    pub fn announced_txs(
        &mut self,
        conn: ConnId,
        announced: &[TxId],
        known: impl Fn(&TxId) -> bool,
    ) {
        self.txs.announced(conn, announced, known);
    }

    /// The transactions to ask of each peer now (see
    /// [`TxRequests::requests`]).
    pub fn tx_requests(
        &mut self,
        known: impl Fn(&TxId) -> bool,
        now: Instant,
    ) -> Vec<(ConnId, Vec<TxId>)> {
        self.txs.requests(known, now)
    }

    /// A block arrived; returns whether it had been asked for (even if the
    /// request timed out since).
    pub fn block_arrived(&mut self, hash: &BlockHash) -> bool {
        let late = self.late_set.remove(hash);
        self.blocks.remove(hash).is_some() || late
    }

    /// Whether a request for the block waits for its answer (not arrived,
    /// not timed out, not answered `NotFound`, its peer not gone).
    pub fn is_block_asked(&self, hash: &BlockHash) -> bool {
        self.blocks.contains_key(hash)
    }

    /// A transaction arrived.
    pub fn tx_arrived(&mut self, id: &TxId) {
        self.txs.arrived(id);
    }

    /// `conn` had none of these: they are asked of the next announcer.
    pub fn not_found(
        &mut self,
        conn: ConnId,
        txs: &[TxId],
        blocks: &[BlockHash],
        now: Instant,
    ) -> Retries {
        let mut retries = Retries::default();
        let mut gone_blocks = Vec::new();
        self.txs.not_found(conn, txs);
        reassign(
            &mut self.blocks,
            now,
            |k, a| a.of == conn && blocks.contains(k),
            &mut retries.blocks,
            &mut gone_blocks,
        );
        retries
    }

    /// Requests older than `timeout` are asked of the next peer that
    /// announced the item, or freed to be asked again by whoever announces
    /// it next.
    pub fn expire(&mut self, now: Instant, timeout: Duration) -> Retries {
        let mut retries = Retries::default();
        let old = |a: &Asked| now.saturating_duration_since(a.at) >= timeout;
        let mut expired_blocks = Vec::new();
        self.txs.expire(now, timeout);
        reassign(
            &mut self.blocks,
            now,
            |_, a| old(a),
            &mut retries.blocks,
            &mut expired_blocks,
        );
        // A late answer to a request that timed out still counts as asked.
        for hash in expired_blocks {
            if self.late_set.insert(hash) {
                self.late_blocks.push_back(hash);
            }
        }
        while self.late_blocks.len() > MAX_LATE {
            if let Some(old) = self.late_blocks.pop_front() {
                self.late_set.remove(&old);
            }
        }
        retries
    }

    /// Whether nothing is asked of anyone (nothing can time out).
    pub fn is_idle(&self) -> bool {
        self.blocks.is_empty() && self.txs.is_idle()
    }

    /// The connection ended: what was asked of it goes to the next
    /// announcer now (returned), and it is no announcer any more.
    pub fn forget_peer(&mut self, conn: ConnId, now: Instant) -> Retries {
        self.txs.forget_peer(conn);
        for a in self.blocks.values_mut() {
            a.others.retain(|c| *c != conn);
        }
        let mut retries = Retries::default();
        reassign(
            &mut self.blocks,
            now,
            |_, a| a.of == conn,
            &mut retries.blocks,
            &mut Vec::new(),
        );
        retries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(b: u8) -> BlockHash {
        BlockHash::from_bytes([b; 32])
    }

    #[test]
    fn each_item_is_asked_once_until_it_arrives_or_times_out() {
        let mut r = Requests::default();
        let now = Instant::now();
        let known = |h: &BlockHash| *h == hash(1);
        assert_eq!(
            r.want_blocks(1, &[hash(1), hash(2), hash(3)], known, now),
            vec![hash(2), hash(3)]
        );
        assert!(
            r.want_blocks(1, &[hash(2)], known, now).is_empty(),
            "already asked"
        );
        assert!(r.block_arrived(&hash(2)), "it was asked for");
        assert!(!r.block_arrived(&hash(9)), "never asked for");
        assert_eq!(r.want_blocks(1, &[hash(2)], known, now), vec![hash(2)]);
        let timeout = Duration::from_secs(5);
        r.expire(now + Duration::from_secs(4), timeout);
        assert!(
            r.want_blocks(1, &[hash(3)], known, now).is_empty(),
            "not expired yet"
        );
        r.expire(now + timeout, timeout);
        assert_eq!(r.want_blocks(1, &[hash(3)], known, now), vec![hash(3)]);
    }

    #[test]
    fn a_block_that_arrives_after_its_request_timed_out_was_still_asked_for() {
        let mut r = Requests::default();
        let now = Instant::now();
        let timeout = Duration::from_secs(5);
        assert_eq!(r.want_blocks(1, &[hash(8)], |_| false, now), vec![hash(8)]);
        r.expire(now + timeout, timeout);
        // Free to be asked of another peer ...
        assert_eq!(
            r.want_blocks(1, &[hash(8)], |_| false, now + timeout),
            vec![hash(8)]
        );
        // ... and when the first peer's late answer comes, it was asked for.
        assert!(r.block_arrived(&hash(8)));
        assert!(!r.block_arrived(&hash(8)), "once");
        // The memory of late requests is bounded.
        for i in 0..(MAX_LATE + 10) {
            let mut b = [0u8; 32];
            b[..8].copy_from_slice(&(i as u64).to_le_bytes());
            r.want_blocks(1, &[BlockHash::from_bytes(b)], |_| false, now);
        }
        r.expire(now + timeout, timeout);
        assert!(r.late_blocks.len() <= MAX_LATE);
        assert_eq!(r.late_blocks.len(), r.late_set.len());
    }

    #[test]
    fn not_found_frees_both_kinds() {
        let mut r = Requests::default();
        let now = Instant::now();
        let id = TxId::from_bytes([4; 32]);
        r.announced_txs(1, &[id], |_| false);
        assert_eq!(r.tx_requests(|_| false, now), vec![(1, vec![id])]);
        assert_eq!(r.want_blocks(1, &[hash(4)], |_| false, now), vec![hash(4)]);
        r.not_found(1, &[id], &[hash(4)], now);
        r.announced_txs(1, &[id], |_| false);
        assert_eq!(r.tx_requests(|_| false, now), vec![(1, vec![id])]);
        assert_eq!(r.want_blocks(1, &[hash(4)], |_| false, now), vec![hash(4)]);
        r.tx_arrived(&id);
        r.announced_txs(1, &[id], |_| false);
        assert_eq!(r.tx_requests(|_| false, now), vec![(1, vec![id])]);
    }

    #[test]
    fn retries_become_one_get_blocks_per_peer() {
        let retries = Retries {
            blocks: vec![(2, hash(1)), (1, hash(2)), (2, hash(3))],
        };
        let sent = retries.into_messages();
        assert_eq!(sent.len(), 2);
        assert!(matches!(&sent[0], (1, Message::GetBlocks(h)) if h.to_vec() == vec![hash(2)]));
        assert!(
            matches!(&sent[1], (2, Message::GetBlocks(h)) if h.to_vec() == vec![hash(1), hash(3)])
        );
        assert!(Retries::default().into_messages().is_empty());
    }

    #[test]
    fn an_item_goes_to_the_next_announcer_when_the_first_times_out_leaves_or_lacks_it() {
        let mut r = Requests::default();
        let now = Instant::now();
        let timeout = Duration::from_secs(5);
        let id = TxId::from_bytes([6; 32]);
        let none = |_: &TxId| false;
        r.announced_txs(1, &[id], none);
        assert_eq!(r.tx_requests(none, now), vec![(1, vec![id])]);
        // Peers 2 and 3 announce it too: not asked now, remembered.
        r.announced_txs(2, &[id], none);
        r.announced_txs(3, &[id], none);
        assert!(r.tx_requests(none, now).is_empty());
        // Peer 1 goes away: peer 2 is asked at once.
        r.forget_peer(1, now);
        assert_eq!(r.tx_requests(none, now), vec![(2, vec![id])]);
        // Peer 2 does not answer in time: peer 3 is asked.
        r.expire(now + timeout, timeout);
        assert_eq!(r.tx_requests(none, now), vec![(3, vec![id])]);
        // Peer 3 lacks it: nobody is left; the next announcer is asked.
        r.not_found(3, &[id], &[], now + timeout);
        assert!(r.tx_requests(none, now).is_empty());
        r.announced_txs(4, &[id], none);
        assert_eq!(r.tx_requests(none, now), vec![(4, vec![id])]);
        // Blocks the same way.
        assert_eq!(r.want_blocks(1, &[hash(7)], |_| false, now), vec![hash(7)]);
        assert!(r.want_blocks(2, &[hash(7)], |_| false, now).is_empty());
        assert_eq!(r.forget_peer(1, now).blocks, vec![(2, hash(7))]);
    }
}

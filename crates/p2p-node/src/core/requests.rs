//! What the node asked of whom, and when: blocks and transactions by hash
//! (so each is asked once, and a timeout frees it to be asked again) and the
//! peers a sync request is out to.
//!
//! A block that arrives after its request timed out was still asked for: a
//! busy honest peer answers late during fork races. Timed-out block
//! requests are remembered (a bounded number, oldest forgotten first) so
//! that such a block is not taken for unsolicited junk and its sender is
//! not penalised.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::time::Duration;

use chain_core::{BlockHash, TxId};
use tokio::time::Instant;

use crate::core::view::ConnId;

/// Outstanding requests (see the module docs).
#[derive(Default)]
pub(crate) struct Requests {
    blocks: HashMap<BlockHash, Instant>,
    txs: HashMap<TxId, Instant>,
    /// Block requests that timed out, oldest first.
    late_blocks: VecDeque<BlockHash>,
    late_set: HashSet<BlockHash>,
    syncing: HashSet<ConnId>,
}

/// How many timed-out block requests are remembered.
const MAX_LATE: usize = 4_096;

/// The announced items that are neither known nor already asked for; they
/// are recorded as asked for at `now`.
fn want<K: Hash + Eq + Copy>(
    asked: &mut HashMap<K, Instant>,
    announced: &[K],
    known: impl Fn(&K) -> bool,
    now: Instant,
) -> Vec<K> {
    let mut wanted = Vec::new();
    for item in announced {
        if !known(item) && !asked.contains_key(item) {
            asked.insert(*item, now);
            wanted.push(*item);
        }
    }
    wanted
}

impl Requests {
    /// The announced blocks to ask for (see [`want`]).
    pub fn want_blocks(
        &mut self,
        announced: &[BlockHash],
        known: impl Fn(&BlockHash) -> bool,
        now: Instant,
    ) -> Vec<BlockHash> {
        want(&mut self.blocks, announced, known, now)
    }

    /// The announced transactions to ask for (see [`want`]).
    pub fn want_txs(
        &mut self,
        announced: &[TxId],
        known: impl Fn(&TxId) -> bool,
        now: Instant,
    ) -> Vec<TxId> {
        want(&mut self.txs, announced, known, now)
    }

    /// A block arrived; returns whether it had been asked for (even if the
    /// request timed out since).
    pub fn block_arrived(&mut self, hash: &BlockHash) -> bool {
        let late = self.late_set.remove(hash);
        self.blocks.remove(hash).is_some() || late
    }

    /// A transaction arrived.
    pub fn tx_arrived(&mut self, id: &TxId) {
        self.txs.remove(id);
    }

    /// The peer had none of these: they may be asked of another.
    pub fn not_found(&mut self, txs: &[TxId], blocks: &[BlockHash]) {
        for id in txs {
            self.txs.remove(id);
        }
        for hash in blocks {
            self.blocks.remove(hash);
        }
    }

    /// Frees requests older than `timeout` to be asked again.
    pub fn expire(&mut self, now: Instant, timeout: Duration) {
        let expired: Vec<BlockHash> = self
            .blocks
            .iter()
            .filter(|(_, t)| now.saturating_duration_since(**t) >= timeout)
            .map(|(h, _)| *h)
            .collect();
        for hash in expired {
            self.blocks.remove(&hash);
            if self.late_set.insert(hash) {
                self.late_blocks.push_back(hash);
            }
        }
        while self.late_blocks.len() > MAX_LATE {
            if let Some(old) = self.late_blocks.pop_front() {
                self.late_set.remove(&old);
            }
        }
        self.txs
            .retain(|_, t| now.saturating_duration_since(*t) < timeout);
    }

    /// A `GetSync` went to `conn`.
    pub fn sync_sent(&mut self, conn: ConnId) {
        self.syncing.insert(conn);
    }

    /// `conn` answered its `GetSync`.
    pub fn sync_answered(&mut self, conn: ConnId) {
        self.syncing.remove(&conn);
    }

    /// Whether a `GetSync` to `conn` awaits its answer.
    pub fn is_syncing(&self, conn: ConnId) -> bool {
        self.syncing.contains(&conn)
    }

    /// The connection ended.
    pub fn forget_peer(&mut self, conn: ConnId) {
        self.syncing.remove(&conn);
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
            r.want_blocks(&[hash(1), hash(2), hash(3)], known, now),
            vec![hash(2), hash(3)]
        );
        assert!(
            r.want_blocks(&[hash(2)], known, now).is_empty(),
            "already asked"
        );
        assert!(r.block_arrived(&hash(2)), "it was asked for");
        assert!(!r.block_arrived(&hash(9)), "never asked for");
        assert_eq!(r.want_blocks(&[hash(2)], known, now), vec![hash(2)]);
        let timeout = Duration::from_secs(5);
        r.expire(now + Duration::from_secs(4), timeout);
        assert!(
            r.want_blocks(&[hash(3)], known, now).is_empty(),
            "not expired yet"
        );
        r.expire(now + timeout, timeout);
        assert_eq!(r.want_blocks(&[hash(3)], known, now), vec![hash(3)]);
    }

    #[test]
    fn a_block_that_arrives_after_its_request_timed_out_was_still_asked_for() {
        let mut r = Requests::default();
        let now = Instant::now();
        let timeout = Duration::from_secs(5);
        assert_eq!(r.want_blocks(&[hash(8)], |_| false, now), vec![hash(8)]);
        r.expire(now + timeout, timeout);
        // Free to be asked of another peer ...
        assert_eq!(
            r.want_blocks(&[hash(8)], |_| false, now + timeout),
            vec![hash(8)]
        );
        // ... and when the first peer's late answer comes, it was asked for.
        assert!(r.block_arrived(&hash(8)));
        assert!(!r.block_arrived(&hash(8)), "once");
        // The memory of late requests is bounded.
        for i in 0..(MAX_LATE + 10) {
            let mut b = [0u8; 32];
            b[..8].copy_from_slice(&(i as u64).to_le_bytes());
            r.want_blocks(&[BlockHash::from_bytes(b)], |_| false, now);
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
        assert_eq!(r.want_txs(&[id], |_| false, now), vec![id]);
        assert_eq!(r.want_blocks(&[hash(4)], |_| false, now), vec![hash(4)]);
        r.not_found(&[id], &[hash(4)]);
        assert_eq!(r.want_txs(&[id], |_| false, now), vec![id]);
        assert_eq!(r.want_blocks(&[hash(4)], |_| false, now), vec![hash(4)]);
        r.tx_arrived(&id);
        assert_eq!(r.want_txs(&[id], |_| false, now), vec![id]);
    }

    #[test]
    fn sync_requests_are_tracked_per_peer() {
        let mut r = Requests::default();
        r.sync_sent(3);
        assert!(r.is_syncing(3));
        assert!(!r.is_syncing(4));
        r.sync_answered(3);
        assert!(!r.is_syncing(3));
        r.sync_sent(4);
        r.forget_peer(4);
        assert!(!r.is_syncing(4));
    }
}

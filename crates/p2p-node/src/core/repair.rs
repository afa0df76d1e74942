//! Repairing damaged blocks from peers.
//!
//! Two kinds of block are repaired:
//!
//! - a block the tree holds whose stored body a read found damaged (the
//!   chain's archive records it, [`crate::store::DamagedBlocks`]; the core
//!   takes the record after every event);
//! - a block a start could not apply because its body is damaged, and the
//!   blocks above it: the restore left them out of the tree
//!   ([`chain_core::Unrestored`]), so the best chain ends below them.
//!
//! [`Repairs`] owns what is wanted. The core asks **one peer at a time**
//! for at most [`MAX_PER_REQUEST`] of them (the lowest first), with
//! `GetBlocks` through the block-request machinery (`requests.rs`), so the
//! answer counts as asked for and a peer that does not answer within the
//! request timeout, answers `NotFound` or leaves frees the request; the
//! next request goes to the next live peer in turn, and a peer is asked
//! at most once every [`ASK_AGAIN_AFTER`] (an answer of 16 blocks then
//! stays well within an honest peer's upload allowance).
//!
//! A copy of a block the tree holds is checked against its header (its
//! hash is the one asked for, so only the body needs checking: merkle
//! root, limits; a copy that does not match is the sender's offence) and
//! goes into the next commit (`durable.rs`), like any block; a left-out
//! block is offered to the chain as any block from a peer, and saved with
//! the next commit as any new block. Either counts as repaired only once
//! that commit's result comes back.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chain_core::{Block, BlockHash, validate};
use escrow::Tx;
use tokio::time::Instant;
use tracing::{error, info};

use crate::core::requests::Requests;
use crate::core::view::{ConnId, NodeChain};
use crate::penalty::Offence;
use crate::store::{DamagedBlocks, REMEDY};

/// The most hashes one repair request carries.
pub(super) const MAX_PER_REQUEST: usize = 16;

/// A peer is asked for damaged blocks at most once in this long.
pub(super) const ASK_AGAIN_AFTER: Duration = Duration::from_secs(5);

/// One block wanted.
#[derive(Debug)]
struct Wanted {
    height: u64,
    /// A good copy is in a commit being saved, or waits for the next.
    writing: bool,
}

/// The damaged blocks the core repairs (see the module docs).
#[derive(Debug, Default)]
pub(super) struct Repairs {
    wanted: BTreeMap<BlockHash, Wanted>,
    /// Good copies of blocks the tree holds, for the next commit.
    to_write: Vec<Arc<Block<Tx>>>,
    /// The repair request out: to whom, for which blocks.
    out: Option<(ConnId, Vec<BlockHash>)>,
    /// When each peer was last asked.
    asked_at: BTreeMap<ConnId, Instant>,
    /// The peer asked last: the next request goes to the one after it.
    last: Option<ConnId>,
    /// Where the chain's archive records the stored blocks it finds
    /// damaged.
    found: Arc<DamagedBlocks>,
}

impl Repairs {
    /// Nothing wanted yet; the damaged blocks the archive records in
    /// `found` are wanted once taken ([`Repairs::take_found`]).
    pub fn new(found: Arc<DamagedBlocks>) -> Repairs {
        Repairs {
            found,
            ..Repairs::default()
        }
    }

    /// Whether no block is wanted.
    pub fn is_empty(&self) -> bool {
        self.wanted.is_empty()
    }

    /// Whether `hash` is wanted.
    pub fn contains(&self, hash: &BlockHash) -> bool {
        self.wanted.contains_key(hash)
    }

    /// How many blocks are wanted.
    pub fn len(&self) -> usize {
        self.wanted.len()
    }

    /// Wants `hash` (at `height`); false if it was wanted already.
    pub fn want(&mut self, hash: BlockHash, height: u64) -> bool {
        if self.wanted.contains_key(&hash) {
            return false;
        }
        self.wanted.insert(
            hash,
            Wanted {
                height,
                writing: false,
            },
        );
        true
    }

    /// The next request to send, if one is due: none while the last one
    /// is still out (`still_asked` says which of its blocks the request
    /// machinery still waits for), else to the next of `live` (in turn)
    /// not asked in the last [`ASK_AGAIN_AFTER`], for the lowest
    /// [`MAX_PER_REQUEST`] blocks wanted that no copy is being written of.
    pub fn next_request(
        &mut self,
        live: &[ConnId],
        now: Instant,
        still_asked: impl Fn(&BlockHash) -> bool,
    ) -> Option<(ConnId, Vec<BlockHash>)> {
        if let Some((conn, hashes)) = &self.out {
            let waiting = live.contains(conn)
                && hashes
                    .iter()
                    .any(|h| still_asked(h) && self.wanted.get(h).is_some_and(|w| !w.writing));
            if waiting {
                return None;
            }
            self.out = None;
        }
        self.asked_at.retain(|c, _| live.contains(c));
        let mut peers = live.to_vec();
        peers.sort_unstable();
        let start = self
            .last
            .map_or(0, |last| peers.partition_point(|c| *c <= last));
        let conn = (0..peers.len())
            .map(|i| peers[(start + i) % peers.len()])
            .find(|c| {
                self.asked_at
                    .get(c)
                    .is_none_or(|t| now.saturating_duration_since(*t) >= ASK_AGAIN_AFTER)
            })?;
        let mut due: Vec<(u64, BlockHash)> = self
            .wanted
            .iter()
            .filter(|(_, w)| !w.writing)
            .map(|(h, w)| (w.height, *h))
            .collect();
        if due.is_empty() {
            return None;
        }
        due.sort_unstable();
        let hashes: Vec<BlockHash> = due
            .into_iter()
            .take(MAX_PER_REQUEST)
            .map(|(_, h)| h)
            .collect();
        self.asked_at.insert(conn, now);
        self.last = Some(conn);
        self.out = Some((conn, hashes.clone()));
        Some((conn, hashes))
    }

    /// A good copy of a wanted block the tree holds: written with the next
    /// commit. False if it is not wanted, or a copy is being written.
    pub fn copy(&mut self, block: Arc<Block<Tx>>) -> bool {
        match self.wanted.get_mut(&block.hash()) {
            Some(w) if !w.writing => {
                w.writing = true;
                self.to_write.push(block);
                true
            }
            _ => false,
        }
    }

    /// Adds to a commit's blocks the good copies waiting, and returns the
    /// wanted blocks the commit now saves (copies, and left-out blocks the
    /// chain took in again): repaired once it is durable.
    pub fn add_to_commit(&mut self, blocks: &mut Vec<Arc<Block<Tx>>>) -> Vec<BlockHash> {
        blocks.append(&mut self.to_write);
        let mut saving = Vec::new();
        for block in blocks.iter() {
            let hash = block.hash();
            if let Some(w) = self.wanted.get_mut(&hash) {
                w.writing = true;
                saving.push(hash);
            }
        }
        saving
    }

    /// The commit that saved `hashes` is durable: they are repaired.
    /// Returns each with its height.
    pub fn saved(&mut self, hashes: &[BlockHash]) -> Vec<(BlockHash, u64)> {
        hashes
            .iter()
            .filter_map(|h| self.wanted.remove(h).map(|w| (*h, w.height)))
            .collect()
    }
}

/// What became of a block offered as a repair ([`Repairs::offer`]).
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Offered {
    /// Not a damaged block the tree holds: the chain takes it in as any
    /// block (a left-out one included).
    NotWanted,
    /// A good copy: it is written back with the next commit.
    Copied,
    /// A good copy of a block already being written back.
    Again,
    /// A copy whose body does not match its header: the sender's offence.
    Bad(Offence),
}

impl Repairs {
    /// Wants again the blocks the restore left out because a body was
    /// damaged (logged here, once each, with what the node does about it).
    pub fn want_unrestored(&mut self, unrestored: Vec<chain_core::Unrestored>) {
        for cut in unrestored {
            error!(
                block = %cut.block,
                height = cut.height,
                "a stored block after the last ledger snapshot is damaged: {}; the chain was \
                 restored up to height {}, and this block and the {} stored above it are \
                 fetched again from peers",
                cut.reason,
                cut.height.saturating_sub(1),
                cut.left_out.len().saturating_sub(1)
            );
            for (hash, height) in cut.left_out {
                self.want(hash, height);
            }
        }
    }

    /// Takes the damaged blocks the chain's archive found since the last
    /// call (those of `chain`'s tree), logging each once.
    pub fn take_found(&mut self, chain: &NodeChain) {
        for (hash, why) in self.found.take() {
            let Some(height) = chain.header(&hash).map(|h| h.height) else {
                continue;
            };
            if self.want(hash, height) {
                error!(block = %hash, height, "a stored block is damaged: {why}; {REMEDY}");
            }
        }
    }

    /// The next repair request, if one is due at `now`: the peer of `live`
    /// to ask and the hashes to ask it for, recorded in `requests` as
    /// asked (so the answer counts as asked for, and a peer that does not
    /// answer frees it).
    pub fn request(
        &mut self,
        live: &[ConnId],
        requests: &mut Requests,
        now: Instant,
    ) -> Option<(ConnId, Vec<BlockHash>)> {
        if self.is_empty() {
            return None;
        }
        let (conn, hashes) = self.next_request(live, now, |h| requests.is_block_asked(h))?;
        let wanted = requests.want_blocks(conn, &hashes, |_| false, now);
        // Debug: a block no peer has is asked for again and again; it was
        // logged at error level once, when it was found.
        tracing::debug!(
            conn,
            blocks = hashes.len(),
            first = ?hashes.first(),
            damaged = self.len(),
            "asking a peer for good copies of damaged blocks"
        );
        (!wanted.is_empty()).then_some((conn, wanted))
    }

    /// A block from `conn`: if it is a damaged block `chain`'s tree holds,
    /// and its body matches its header, it is kept to be written back with
    /// the next commit.
    pub fn offer(&mut self, chain: &NodeChain, conn: ConnId, block: &Block<Tx>) -> Offered {
        let hash = block.hash();
        if !self.contains(&hash) || !chain.contains(&hash) {
            return Offered::NotWanted;
        }
        if let Err(e) = validate::check_block(block, chain.params()) {
            return Offered::Bad(Offence::InvalidBlock(format!(
                "a copy of block {hash} that fails its header: {e}"
            )));
        }
        if self.copy(Arc::new(block.clone())) {
            info!(block = %hash, height = block.header.height, conn, "a good copy of a damaged block came; writing it back");
            Offered::Copied
        } else {
            Offered::Again
        }
    }

    /// The commit that saved `hashes` is durable: the repaired blocks are
    /// no longer wanted (logged).
    pub fn repaired(&mut self, hashes: &[BlockHash]) {
        for (hash, height) in self.saved(hashes) {
            info!(block = %hash, height, "repaired a damaged block with a peer's copy");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(i: u64) -> BlockHash {
        let mut b = [0u8; 32];
        b[..8].copy_from_slice(&i.to_be_bytes());
        BlockHash::from_bytes(b)
    }

    #[test]
    fn one_peer_at_a_time_in_turn_at_most_sixteen_lowest_first() {
        let mut r = Repairs::default();
        // 40 damaged blocks, wanted in no particular order.
        for i in (1..=40).rev() {
            assert!(r.want(hash(i), 100 + i));
        }
        assert!(!r.want(hash(3), 103), "once");
        let live = [7, 3, 5];
        let now = Instant::now();
        let (conn, first) = r.next_request(&live, now, |_| false).unwrap();
        assert_eq!(conn, 3, "the lowest connection first");
        assert_eq!(first, (1..=16).map(hash).collect::<Vec<_>>());
        // While it is out, nobody else is asked.
        assert_eq!(r.next_request(&live, now, |_| true), None);
        // It timed out (or came back NotFound): the next peer in turn.
        let (conn, again) = r.next_request(&live, now, |_| false).unwrap();
        assert_eq!((conn, again.len()), (5, MAX_PER_REQUEST));
        let (conn, _) = r.next_request(&live, now, |_| false).unwrap();
        assert_eq!(conn, 7);
        // Every peer asked in the last ASK_AGAIN_AFTER: nobody is.
        assert_eq!(r.next_request(&live, now, |_| false), None);
        let later = now + ASK_AGAIN_AFTER;
        assert_eq!(r.next_request(&live, later, |_| false).unwrap().0, 3);
        // A peer that leaves while asked frees the request.
        assert_eq!(r.next_request(&[5, 7], later, |_| true).unwrap().0, 5);
    }

    #[test]
    fn a_block_counts_as_repaired_only_once_its_commit_is_saved() {
        let mut r = Repairs::default();
        let block = Arc::new(Block::<Tx> {
            header: chain_core::Header {
                version: chain_core::HEADER_VERSION,
                height: 3,
                parent: hash(2),
                merkle_root: chain_core::merkle_root(&[]),
                timestamp_ms: 1,
                target: chain_core::CompactTarget::from_u32(0x2000_ffff),
                nonce: 0,
            },
            transactions: Vec::new(),
        });
        let h = block.hash();
        let other = hash(9);
        r.want(h, 3);
        r.want(other, 4);
        assert!(r.copy(block.clone()));
        assert!(!r.copy(block.clone()), "one copy at a time");
        // A copy being written is not asked for again.
        let (_, asked) = r.next_request(&[1], Instant::now(), |_| false).unwrap();
        assert_eq!(asked, vec![other]);
        let mut blocks = Vec::new();
        assert_eq!(r.add_to_commit(&mut blocks), vec![h]);
        assert_eq!(blocks.len(), 1);
        assert!(r.contains(&h), "still wanted until the commit is saved");
        assert_eq!(r.saved(&[h]), vec![(h, 3)]);
        assert!(!r.contains(&h));
        assert_eq!(r.len(), 1);
    }
}

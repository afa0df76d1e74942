//! Restoring a tree from an archive (the node's store), and the window of
//! recent blocks whose bodies and undo records stay in memory.
//!
//! A restore costs one pass over the stored headers (hash, parent, height
//! and work of each: no proof of work, no transactions) plus applying the
//! blocks above the state snapshot, if the snapshot is behind the stored
//! best chain. It never replays the chain from genesis unless there is no
//! snapshot.

use std::cmp::Reverse;
use std::collections::HashSet;
use std::sync::Arc;

use super::archive::{Archive, RestoreError, Unrestored};
use super::chain::{Chain, Entry};
use super::outcome::InsertError;
use crate::hash::BlockHash;
use crate::header::{Block, Header};
use crate::params::ChainParams;
use crate::state::StateMachine;

/// The state at one block, as a store saved it.
#[derive(Debug)]
pub struct Snapshot<S> {
    /// The block the state is at.
    pub block: BlockHash,
    /// That block's height.
    pub height: u64,
    /// The state after applying that block.
    pub state: S,
}

/// What [`Chain::restore`] brought back.
#[derive(Debug)]
pub struct Restored<S: StateMachine> {
    /// The tree, at the best stored branch that applied.
    pub chain: Chain<S>,
    /// A stored block whose transactions were refused (marked invalid as
    /// [`Chain::insert`] would), for the caller to report.
    pub refused: Option<InsertError<S::Error>>,
    /// The stored blocks whose body is damaged in the archive, each with
    /// the blocks above it that were left out of the tree with it (empty
    /// when every body the restore needed was read back).
    pub unrestored: Vec<Unrestored>,
}

impl<S: StateMachine> Chain<S> {
    /// Restores a tree from what a store holds: the headers of every stored
    /// block with their hashes (genesis aside, in any order; the caller
    /// checked that each hash is its header's, as the store does when it
    /// reads them), the state at one of them (or
    /// none: the state is then built from genesis, reading every body), and
    /// the archive to read bodies and undo records from.
    ///
    /// `empty` is the state before genesis (as for [`Chain::new`]). The
    /// tree then moves to the best stored branch, reading what it needs
    /// from the archive; a stored block whose transactions are refused
    /// then is marked invalid as [`Chain::insert`] would, and returned in
    /// [`Restored::refused`] (for the caller to report), not as an error.
    ///
    /// A block to apply whose body the archive holds damaged
    /// ([`Archive::is_damaged`]: a crash or a disk flipped it) does not
    /// fail the restore: the replay stops just below it, and it and every
    /// block above it are left out of the tree (not remembered as invalid:
    /// a good copy is welcome), listed in [`Restored::unrestored`]. The
    /// best chain then ends at the last block that applied, and inserting
    /// the left-out blocks again (fetched from peers) moves it forward by
    /// the normal path.
    ///
    /// # Errors
    ///
    /// [`RestoreError`] naming what in the store disagrees: a header whose
    /// parent is not stored, a height that does not follow its parent's, a
    /// snapshot at a block not stored or at another height, an archive
    /// that cannot be read (an undo record included: those are not
    /// fetched from peers).
    pub fn restore(
        params: ChainParams,
        genesis: Block<S::Tx>,
        empty: S,
        mut headers: Vec<(BlockHash, Header)>,
        snapshot: Option<Snapshot<S>>,
        archive: Arc<dyn Archive<S>>,
    ) -> Result<Restored<S>, RestoreError> {
        let mut chain =
            Chain::new(params, genesis, empty).map_err(|e| RestoreError::Genesis(e.to_string()))?;
        let genesis_hash = chain.genesis_hash();
        headers.sort_unstable_by_key(|(_, h)| h.height);
        let mut parents = HashSet::new();
        for (hash, header) in headers {
            if header.height == 0 {
                if hash == genesis_hash {
                    continue;
                }
                return Err(RestoreError::SecondGenesis(hash));
            }
            if chain.blocks.contains_key(&hash) {
                continue;
            }
            let parent = chain
                .blocks
                .get(&header.parent)
                .ok_or(RestoreError::MissingParent {
                    block: hash,
                    height: header.height,
                    parent: header.parent,
                })?;
            if parent.header.height + 1 != header.height {
                return Err(RestoreError::WrongHeight {
                    block: hash,
                    height: header.height,
                    parent_height: parent.header.height,
                });
            }
            let work = header
                .target
                .to_target()
                .map_err(|e| RestoreError::BadTarget {
                    block: hash,
                    reason: e.to_string(),
                })?
                .work();
            let cumulative_work = parent.cumulative_work.saturating_add(work);
            parents.insert(header.parent);
            chain.blocks.insert(
                hash,
                Entry {
                    header,
                    cumulative_work,
                    body: None,
                },
            );
        }
        // The tips: every block that is no block's parent.
        chain.candidates = chain
            .blocks
            .iter()
            .filter(|(hash, _)| !parents.contains(*hash))
            .map(|(hash, e)| (e.cumulative_work, Reverse(*hash)))
            .collect();
        if let Some(snapshot) = snapshot {
            let entry = chain
                .blocks
                .get(&snapshot.block)
                .ok_or(RestoreError::SnapshotUnknown(snapshot.block))?;
            if entry.header.height != snapshot.height {
                return Err(RestoreError::SnapshotHeight {
                    block: snapshot.block,
                    claimed: snapshot.height,
                    actual: entry.header.height,
                });
            }
            let mut best = Vec::with_capacity(usize::try_from(snapshot.height).unwrap_or(0) + 1);
            let mut cursor = snapshot.block;
            loop {
                best.push(cursor);
                match chain.blocks.get(&cursor) {
                    Some(e) if e.header.height > 0 => cursor = e.header.parent,
                    _ => break,
                }
            }
            best.reverse();
            chain.best = best;
            chain.state = snapshot.state;
        }
        chain.archive = Some(archive);
        let mut unrestored = Vec::new();
        let refused = chain.activate(Some(&mut unrestored))?;
        // What the store holds needs no saving again.
        chain.new_blocks.clear();
        Ok(Restored {
            chain,
            refused,
            unrestored,
        })
    }

    /// How many of the most recent blocks keep their body and undo record
    /// in memory (with an archive; without one, every block does).
    pub fn memory_window(&self) -> u64 {
        self.window
    }

    /// Sets [`Chain::memory_window`] (at least 1).
    pub fn set_memory_window(&mut self, blocks: u64) {
        self.window = blocks.max(1);
    }

    /// Whether the chain reads old bodies and undo records from an archive.
    pub fn has_archive(&self) -> bool {
        self.archive.is_some()
    }

    /// The blocks that joined the tree (best chain or side branch) since
    /// the last call, in the order they joined: what the caller must
    /// archive before [`Chain::forget_old`].
    pub fn take_new_blocks(&mut self) -> Vec<Arc<Block<S::Tx>>> {
        std::mem::take(&mut self.new_blocks)
    }

    /// How many blocks joined the tree since [`Chain::take_new_blocks`]
    /// last took them.
    pub fn new_block_count(&self) -> usize {
        self.new_blocks.len()
    }

    /// The undo records of the blocks applied since the last call that are
    /// still on the best chain, oldest first: what the caller must archive
    /// before [`Chain::forget_old`].
    pub fn take_new_undo(&mut self) -> Vec<(BlockHash, S::Undo)>
    where
        S::Undo: Clone,
    {
        let applied = std::mem::take(&mut self.new_applied);
        let height = self.height();
        let first_in_memory = height + 1 - self.undo.len() as u64;
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for hash in applied {
            let Some(entry) = self.blocks.get(&hash) else {
                continue;
            };
            let h = entry.header.height;
            if !self.is_on_best_chain(&hash) || h < first_in_memory || !seen.insert(hash) {
                continue;
            }
            if let Some(undo) = usize::try_from(h - first_in_memory)
                .ok()
                .and_then(|i| self.undo.get(i))
            {
                out.push((hash, undo.clone()));
            }
        }
        out
    }

    /// Drops from memory the bodies and undo records older than the
    /// window. Call it only once everything [`Chain::take_new_blocks`] and
    /// [`Chain::take_new_undo`] handed out is in the archive; what joined
    /// the tree since they last took it is kept whatever its height (it is
    /// not archived yet), so a caller whose saves run in the background may
    /// call it when a save completes while newer blocks wait for the next
    /// one. Without an archive it does nothing.
    pub fn forget_old(&mut self) {
        if self.archive.is_none() {
            return;
        }
        // The lowest height not yet handed out: a side block that joined
        // deep below the tip, or the first of a run applied since.
        let pending = self
            .new_blocks
            .iter()
            .map(|b| b.header.height)
            .chain(
                self.new_applied
                    .iter()
                    .filter_map(|h| self.blocks.get(h).map(|e| e.header.height)),
            )
            .min();
        let mut keep_from = self.height().saturating_sub(self.window);
        let mut keep_undo = self.window;
        if let Some(pending) = pending {
            keep_from = keep_from.min(pending);
            // The undo deque ends at the tip: keep every height from the
            // first one not yet handed out.
            keep_undo = keep_undo.max((self.height() + 1).saturating_sub(pending));
        }
        while let Some(&(height, hash)) = self.resident.first() {
            if height >= keep_from {
                break;
            }
            self.resident.pop_first();
            if let Some(entry) = self.blocks.get_mut(&hash) {
                entry.body = None;
            }
        }
        while self.undo.len() as u64 > keep_undo {
            self.undo.pop_front();
        }
    }

    /// The number of block bodies kept in memory (genesis included).
    pub fn resident_bodies(&self) -> usize {
        self.resident.len() + 1
    }
}

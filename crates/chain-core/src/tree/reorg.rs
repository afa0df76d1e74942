//! Moving the state to the best branch: undoing to the fork point and
//! applying the new branch (reading from the archive what is no longer in
//! memory), invalidating a branch whose transactions are refused, and
//! reporting the net change as a [`Reorg`].

use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};

use super::archive::{ArchiveError, Unrestored};
use super::chain::{Chain, MAX_REMEMBERED_INVALID};
use super::outcome::{InsertError, Reorg};
use crate::hash::BlockHash;
use crate::state::{BlockContext, StateMachine};

impl<S: StateMachine> Chain<S> {
    /// Moves the state to the best candidate, invalidating blocks whose
    /// transactions are refused and choosing again until a chain applies.
    /// Returns the last refusal, if any.
    ///
    /// Everything a step needs from the archive (undo records of the blocks
    /// to undo, bodies of the blocks to apply) is read before the state is
    /// touched, so an archive that fails leaves the state as that step found it.
    ///
    /// # Errors
    ///
    /// [`ArchiveError`] if the archive cannot be read.
    pub(super) fn activate_best(&mut self) -> Result<Option<InsertError<S::Error>>, ArchiveError> {
        self.activate(None)
    }

    /// [`Chain::activate_best`]; with `unrestored` (a restore), a body the
    /// archive holds damaged ([`super::Archive::is_damaged`]) is not an
    /// error: the blocks before it on the path are applied, and it and its
    /// descendants leave the tree (listed in `unrestored`), so that fork
    /// choice runs again without them.
    pub(super) fn activate(
        &mut self,
        mut unrestored: Option<&mut Vec<Unrestored>>,
    ) -> Result<Option<InsertError<S::Error>>, ArchiveError> {
        let mut last_error = None;
        loop {
            let Some(&(_, Reverse(best))) = self.candidates.last() else {
                return Ok(last_error);
            };
            if best == self.tip() {
                return Ok(last_error);
            }
            let (fork, path) = self.path_from_best_chain(best);
            let fork_height = self.blocks.get(&fork).map_or(0, |e| e.header.height);
            // Undo records no longer in memory, the newest first.
            let to_undo = self.height().saturating_sub(fork_height);
            let missing = to_undo.saturating_sub(self.undo.len() as u64);
            let mut archived_undo = Vec::new();
            for height in (fork_height + 1..fork_height + 1 + missing).rev() {
                let hash = self
                    .hash_at_height(height)
                    .ok_or_else(|| ArchiveError(format!("no best block at height {height}")))?;
                let record = self
                    .archive
                    .as_ref()
                    .ok_or_else(|| {
                        ArchiveError(format!("no undo record for block {hash} and no archive"))
                    })?
                    .undo(&hash)?
                    .ok_or_else(|| ArchiveError(format!("no undo record for block {hash}")))?;
                archived_undo.push(record);
            }
            let mut bodies = Vec::with_capacity(path.len());
            let mut damaged = None;
            for hash in &path {
                match self.try_block(hash) {
                    Ok(Some(body)) => bodies.push(body),
                    Ok(None) => {
                        return Err(ArchiveError(format!("block {hash} is not in the tree")));
                    }
                    Err(e) => {
                        let is_damaged = self.archive.as_ref().is_some_and(|a| a.is_damaged(hash));
                        if unrestored.is_none() || !is_damaged {
                            return Err(e);
                        }
                        damaged = Some((*hash, e));
                        break;
                    }
                }
            }
            if bodies.is_empty()
                && let Some((hash, reason)) = damaged.take()
            {
                // Nothing of the path applies: the state stays where it is.
                if let Some(list) = unrestored.as_deref_mut() {
                    list.push(self.leave_out(hash, reason));
                }
                continue;
            }
            // Undo down to the fork point: the records in memory (the
            // newest), then the archived ones.
            let mut archived = archived_undo.into_iter();
            while self.height() > fork_height {
                let Some(undo) = self.undo.pop_back().or_else(|| archived.next()) else {
                    break;
                };
                self.state.undo_block(undo);
                self.best.pop();
            }
            // Apply the new branch, oldest first.
            for block in bodies {
                let hash = block.hash();
                let ctx = BlockContext {
                    hash,
                    height: block.header.height,
                    timestamp_ms: block.header.timestamp_ms,
                };
                match self.state.apply_block(&ctx, &block.transactions) {
                    Ok(undo) => {
                        self.undo.push_back(undo);
                        self.best.push(hash);
                        if self.archive.is_some() {
                            self.new_applied.push(hash);
                        }
                    }
                    Err(source) => {
                        self.invalidate(hash);
                        last_error = Some(InsertError::State {
                            block: hash,
                            source,
                        });
                        break;
                    }
                }
            }
            // A damaged body that an invalid block before it did not take
            // out of the tree already.
            if let Some((hash, reason)) = damaged
                && self.blocks.contains_key(&hash)
                && let Some(list) = unrestored.as_deref_mut()
            {
                list.push(self.leave_out(hash, reason));
            }
        }
    }

    /// Takes `hash` and its descendants out of the tree without
    /// remembering them as invalid (their bodies are damaged in the
    /// archive, not wrong): what [`Chain::restore`] reports of them.
    fn leave_out(&mut self, hash: BlockHash, reason: ArchiveError) -> Unrestored {
        let height = self.blocks.get(&hash).map_or(0, |e| e.header.height);
        let mut left_out: Vec<(BlockHash, u64)> = self
            .remove_subtree(hash)
            .into_iter()
            .map(|(h, header)| (h, header.height))
            .collect();
        left_out.sort_unstable_by_key(|&(h, height)| (height, h));
        Unrestored {
            block: hash,
            height,
            reason,
            left_out,
        }
    }

    /// The fork point of `target` with the best chain, and the blocks from
    /// just after it up to `target`, oldest first.
    pub(super) fn path_from_best_chain(&self, target: BlockHash) -> (BlockHash, Vec<BlockHash>) {
        let mut path = Vec::new();
        let mut cursor = target;
        while !self.is_on_best_chain(&cursor) {
            path.push(cursor);
            match self.blocks.get(&cursor) {
                Some(e) => cursor = e.header.parent,
                None => break,
            }
        }
        path.reverse();
        (cursor, path)
    }

    /// Removes `hash` and all its descendants from the tree and remembers
    /// them as invalid. Its parent may be a tip again.
    fn invalidate(&mut self, hash: BlockHash) {
        if !self.blocks.contains_key(&hash) {
            self.remember_invalid(hash);
            return;
        }
        for (h, _) in self.remove_subtree(hash) {
            self.remember_invalid(h);
        }
    }

    /// Removes `hash` and all its descendants from the tree (and from what
    /// waits to be saved) and returns them with their headers. Its parent
    /// may be a tip again.
    ///
    /// The tree keeps no child lists (they would cost memory on every
    /// block for a rare event): the descendants are found by one pass over
    /// the blocks from `hash`'s height up.
    fn remove_subtree(&mut self, hash: BlockHash) -> Vec<(BlockHash, crate::header::Header)> {
        let Some(root) = self.blocks.get(&hash).map(|e| e.header) else {
            return Vec::new();
        };
        let mut children: HashMap<BlockHash, Vec<BlockHash>> = HashMap::new();
        for (h, e) in &self.blocks {
            if e.header.height >= root.height {
                children.entry(e.header.parent).or_default().push(*h);
            }
        }
        let siblings = children.remove(&root.parent).unwrap_or_default();
        let mut removed = HashSet::new();
        let mut out = Vec::new();
        let mut stack = vec![hash];
        while let Some(h) = stack.pop() {
            if let Some(entry) = self.blocks.remove(&h) {
                self.candidates.remove(&(entry.cumulative_work, Reverse(h)));
                self.resident.remove(&(entry.header.height, h));
                stack.extend(children.remove(&h).unwrap_or_default());
                out.push((h, entry.header));
            }
            removed.insert(h);
        }
        // A block no longer in the tree is not saved.
        self.new_blocks.retain(|b| !removed.contains(&b.hash()));
        // The parent is a tip again if the invalid block was its only child.
        if siblings.iter().all(|s| removed.contains(s))
            && let Some(parent) = self.blocks.get(&root.parent)
        {
            self.candidates
                .insert((parent.cumulative_work, Reverse(root.parent)));
        }
        out
    }

    /// Remembers `hash` as invalid, and every orphan waiting on it, and on
    /// those, in turn: they can never connect.
    pub(super) fn reject_with_orphans(&mut self, hash: BlockHash) {
        let mut stack = vec![hash];
        while let Some(h) = stack.pop() {
            self.remember_invalid(h);
            stack.extend(self.orphans.take_children(&h).iter().map(|b| b.hash()));
        }
    }

    fn remember_invalid(&mut self, hash: BlockHash) {
        if self.invalid.insert(hash) {
            self.invalid_order.push_back(hash);
            if self.invalid_order.len() > MAX_REMEMBERED_INVALID
                && let Some(old) = self.invalid_order.pop_front()
            {
                self.invalid.remove(&old);
            }
        }
    }

    /// The net change of best chain from `old` to the current tip: what an
    /// insert that failed after moving the tip (a branch applied up to an
    /// invalid block) changed.
    ///
    /// # Errors
    ///
    /// [`ArchiveError`] if a body the change includes cannot be read back.
    pub fn change_since(&self, old: BlockHash) -> Result<Reorg<S::Tx>, ArchiveError> {
        self.reorg_between(old, self.tip())
    }

    /// The net change of best chain from `old` to `new`: blocks of `old`'s
    /// chain back to the fork point, and blocks of `new`'s chain after it.
    pub(super) fn reorg_between(
        &self,
        old: BlockHash,
        new: BlockHash,
    ) -> Result<Reorg<S::Tx>, ArchiveError> {
        // `new` is the current tip; `old` may have been invalidated since, so
        // the undone blocks are what the old tip's branch had above the fork.
        let mut undone = Vec::new();
        let mut cursor = old;
        // Walk the old branch down until it meets the current best chain.
        while !self.is_on_best_chain(&cursor) {
            let Some(parent) = self.blocks.get(&cursor).map(|e| e.header.parent) else {
                break;
            };
            if let Some(block) = self.try_block(&cursor)? {
                undone.push(block);
            }
            cursor = parent;
        }
        let fork_point = cursor;
        let fork_height = self
            .blocks
            .get(&fork_point)
            .map(|e| e.header.height)
            .unwrap_or(0);
        let mut applied = Vec::new();
        for hash in self.best.iter().skip(fork_height as usize + 1) {
            if let Some(block) = self.try_block(hash)? {
                applied.push(block);
            }
        }
        Ok(Reorg {
            old_tip: old,
            new_tip: new,
            fork_point,
            undone,
            applied,
        })
    }
}

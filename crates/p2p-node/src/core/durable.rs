//! The durability part: a block is durable before anyone hears of it.
//!
//! [`Durable`] owns everything that lies between the chain accepting a
//! block and the node telling anyone of it: the store that commits go
//! through, the best-chain changes not yet in the transaction index, the
//! tip waiting to be announced, the "mine N" answers waiting for their
//! blocks, the handles waiting for everything to be saved, the snapshot
//! counters, and whether the store failed. No other part writes them.
//!
//! The core tells it what it accepted ([`Durable::accepted`],
//! [`Durable::note_unsaved`], [`Durable::announce`],
//! [`Durable::reply_when_saved`]); after each event
//! ([`Durable::after_event`]), or when it is about to serve or tell the
//! tip ([`Durable::flush`]), it gets back what a commit released, as a
//! value ([`Released`]: the tip to announce, the answers to send, the
//! damaged blocks now repaired), and only routes it; or [`Stopped`]: the
//! commit failed, nothing is announced or answered, and the node must
//! stop. The blocks themselves and their undo records wait in the chain
//! ([`chain_core::Chain::take_new_blocks`]), which the core lends for each
//! commit, with the good copies of damaged blocks waiting in
//! [`Repairs`].
//!
//! Commits run on the core, one at a time, so they reach the store in
//! order. While more events wait (a burst of blocks, a "mine N" request)
//! saving waits too, so that the burst is one commit; but never longer
//! than [`MAX_SAVE_DELAY`], nor for more than [`MAX_UNSAVED_BLOCKS`]
//! blocks. The mempool and the bans are saved through it too: kept for
//! the next start, not promised.

use std::sync::Arc;
use std::time::Duration;

use chain_core::{BlockHash, Reorg};
use escrow::{SignedTx, Tx};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::miner_driver::MinedReply;
use super::repair::Repairs;
use super::view::NodeChain;
use crate::penalty::BanKey;
use crate::store::{BlockStore, Commit, IndexChange, StateSnapshot};

/// While more events wait, saving waits too, but never longer than this
/// since the oldest change not yet saved...
const MAX_SAVE_DELAY: Duration = Duration::from_millis(50);
/// ... nor for more blocks than this.
const MAX_UNSAVED_BLOCKS: usize = 1_000;
/// [`MAX_SAVE_DELAY`] while a sync downloads blocks: nobody waits for
/// them to be announced, and fewer, larger commits write the transaction
/// index's pages fewer times.
const SYNC_SAVE_DELAY: Duration = Duration::from_millis(500);

/// The node must stop: a commit failed (or the store cannot be read
/// back), so nothing more is saved, announced or answered, and the store
/// keeps its last whole commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Stopped;

/// What a commit made durable releases, for the core to route: nothing of
/// it may be told or answered before the commit.
#[derive(Default)]
#[must_use]
pub(super) struct Released {
    /// The new tip, to announce to every live peer (if it is still on the
    /// best chain).
    pub announce: Option<BlockHash>,
    /// "Mine N" answers whose blocks are now saved.
    pub replies: Vec<MinedReply>,
    /// Damaged blocks whose good copies the commit wrote back.
    pub repaired: Vec<BlockHash>,
    /// Blocks submitted through the handle to be relayed whether or not
    /// they are on the best chain ([`crate::core::BlockRelay::Always`]).
    pub relay: Vec<BlockHash>,
}

/// The durability part (see the module docs).
pub(super) struct Durable {
    store: Arc<dyn BlockStore>,
    /// A ledger snapshot is saved after this many blocks (or ten times as
    /// many transactions) since the last one.
    snapshot_every: u64,
    /// Best-chain changes not yet saved to the transaction index.
    unsaved_index: Vec<IndexChange>,
    /// When the oldest change not yet saved was made.
    unsaved_since: Option<Instant>,
    /// Whether a sync is downloading blocks.
    syncing: bool,
    /// The tip to announce to every peer once it is saved.
    to_announce: Option<BlockHash>,
    /// Blocks to announce once saved, on the best chain or not.
    to_relay: Vec<BlockHash>,
    /// "Mine N" answers to send once their blocks are saved.
    mined_replies: Vec<MinedReply>,
    /// Handles waiting for a publication of everything saved.
    saved_waiters: Vec<oneshot::Sender<()>>,
    /// Blocks and transactions applied since the last state snapshot, and
    /// whether the store has one.
    since_snapshot: (u64, u64),
    has_snapshot: bool,
    /// A save failed, or the store could not be read back.
    failed: bool,
    /// When the mempool was last saved, and whether it changed since.
    mempool_saved: Instant,
    mempool_dirty: bool,
}

/// How often a changed mempool is saved (it is also saved at shutdown).
const MEMPOOL_SAVE_EVERY: Duration = Duration::from_secs(10);

impl Durable {
    /// The durability part of a node whose `chain` was restored from
    /// `store`, from a ledger snapshot at `snapshot_height` if it had one,
    /// started at `now` (the mempool counts as saved then).
    pub fn new(
        store: Arc<dyn BlockStore>,
        snapshot_every: u64,
        chain: &NodeChain,
        snapshot_height: Option<u64>,
        now: Instant,
    ) -> Durable {
        Durable {
            store,
            snapshot_every,
            unsaved_index: Vec::new(),
            unsaved_since: None,
            syncing: false,
            to_announce: None,
            to_relay: Vec::new(),
            mined_replies: Vec::new(),
            saved_waiters: Vec::new(),
            since_snapshot: (
                snapshot_height.map_or(chain.height(), |h| chain.height().saturating_sub(h)),
                0,
            ),
            has_snapshot: snapshot_height.is_some(),
            failed: false,
            mempool_saved: now,
            mempool_dirty: false,
        }
    }

    /// The store, for reads (queries, the saved mempool and bans).
    pub fn store(&self) -> &dyn BlockStore {
        &*self.store
    }

    /// Whether the store failed (the node is stopping).
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// The store cannot be read back: the chain may have moved without
    /// the change reported, so nothing more is saved.
    pub fn store_unreadable(&mut self) {
        self.failed = true;
    }

    // ---- what the core accepted -----------------------------------------

    /// The best chain changed: its changes go to the transaction index with
    /// the next commit, and count toward the next ledger snapshot.
    pub fn accepted(&mut self, reorg: &Reorg<Tx>) {
        self.note_unsaved();
        for block in &reorg.undone {
            self.unsaved_index
                .push(IndexChange::Undone(Arc::clone(block)));
        }
        for block in &reorg.applied {
            self.unsaved_index
                .push(IndexChange::Applied(Arc::clone(block)));
            self.since_snapshot.0 += 1;
            self.since_snapshot.1 += block.transactions.len() as u64;
        }
    }

    /// Something new waits for the next commit (a block the chain took
    /// in, a good copy of a damaged block): the save delay counts from the
    /// oldest such change.
    pub fn note_unsaved(&mut self) {
        self.unsaved_since.get_or_insert_with(Instant::now);
    }

    /// Announces `tip` to every peer once it is saved (announcing the tip
    /// is enough: a peer missing its ancestors syncs). A later tip
    /// replaces it.
    pub fn announce(&mut self, tip: BlockHash) {
        self.to_announce = Some(tip);
    }

    /// Announces `hash` to every peer once it is saved, whether or not it
    /// is on the best chain then (a block submitted to be relayed).
    pub fn relay(&mut self, hash: BlockHash) {
        self.to_relay.push(hash);
    }

    /// Answers a "mine N" request once its blocks are saved.
    pub fn reply_when_saved(&mut self, reply: MinedReply) {
        self.mined_replies.push(reply);
    }

    /// Answers `reply` at the next publication of everything saved
    /// ([`Durable::answer_saved_waiters`]).
    pub fn wait_saved(&mut self, reply: oneshot::Sender<()>) {
        self.saved_waiters.push(reply);
    }

    /// Everything is saved and published: answers the handles waiting for
    /// it.
    pub fn answer_saved_waiters(&mut self) {
        for waiter in self.saved_waiters.drain(..) {
            let _ = waiter.send(());
        }
    }

    // ---- saving ---------------------------------------------------------

    /// Whether everything `chain` accepted is saved.
    pub fn is_saved(&self, chain: &NodeChain) -> bool {
        chain.new_block_count() == 0 && self.unsaved_index.is_empty()
    }

    /// Whether a sync is downloading blocks (saves wait longer).
    pub fn set_syncing(&mut self, syncing: bool) {
        self.syncing = syncing;
    }

    /// What follows every event: saves what was accepted, unless
    /// `more_coming` (more events wait, a "mine N" request is open, or a
    /// sync downloads) and it is neither [`MAX_SAVE_DELAY`] old
    /// ([`SYNC_SAVE_DELAY`] while syncing) nor [`MAX_UNSAVED_BLOCKS`]
    /// blocks (see [`Durable::flush`]).
    pub fn after_event(
        &mut self,
        chain: &mut NodeChain,
        repairs: &mut Repairs,
        more_coming: bool,
    ) -> Result<Released, Stopped> {
        if self.unsaved_since.is_none()
            && (chain.new_block_count() > 0 || !self.unsaved_index.is_empty())
        {
            self.unsaved_since = Some(Instant::now());
        }
        let delay = if self.syncing {
            SYNC_SAVE_DELAY
        } else {
            MAX_SAVE_DELAY
        };
        let overdue = self.unsaved_since.is_some_and(|t| t.elapsed() >= delay)
            || chain.new_block_count() >= MAX_UNSAVED_BLOCKS;
        if more_coming && !overdue {
            return Ok(Released::default());
        }
        self.flush(chain, repairs, false)
    }

    /// Saves what was accepted since the last save in one commit: the
    /// chain's new blocks and undo records, the good copies of damaged
    /// blocks, the transaction index, and a ledger snapshot when due (or
    /// whatever the counters say, with `snapshot`: at a clean stop, which
    /// the store is then told of, [`BlockStore::clean_stop`]). Then
    /// releases what waited for it; with nothing to save, at once (its
    /// blocks are saved). [`Stopped`] if the commit fails, or failed
    /// before: nothing is released, and the node must stop (it cannot
    /// promise that what it would announce survives a crash).
    pub fn flush(
        &mut self,
        chain: &mut NodeChain,
        repairs: &mut Repairs,
        snapshot: bool,
    ) -> Result<Released, Stopped> {
        if self.failed {
            return Err(Stopped);
        }
        // Only the stop's flush asks for a snapshot.
        let stopping = snapshot;
        let (blocks, txs) = self.since_snapshot;
        let snapshot = snapshot
            || !self.has_snapshot
            || blocks >= self.snapshot_every
            || txs >= self.snapshot_every.saturating_mul(10);
        let mut new_blocks = chain.take_new_blocks();
        // Good copies of damaged blocks go with the blocks accepted, in
        // order, as any save.
        let repaired = repairs.add_to_commit(&mut new_blocks);
        let commit = Commit {
            blocks: new_blocks,
            undo: chain.take_new_undo(),
            index: std::mem::take(&mut self.unsaved_index),
            snapshot: (snapshot && (blocks > 0 || !self.has_snapshot)).then(|| StateSnapshot {
                block: chain.tip(),
                height: chain.height(),
                ledger: chain.state().clone(),
            }),
        };
        self.unsaved_since = None;
        let replies = std::mem::take(&mut self.mined_replies);
        let announce = self.to_announce.take();
        let relay = std::mem::take(&mut self.to_relay);
        if !commit.is_empty() {
            if commit.snapshot.is_some() {
                // The counters start again at the snapshot's block; if the
                // commit fails, the node stops anyway.
                self.has_snapshot = true;
                self.since_snapshot = (0, 0);
            }
            let start = tokio::time::Instant::now();
            let result = self.store.commit(&commit);
            crate::timings::observe(&crate::timings::COMMIT, start);
            drop(commit);
            if let Err(e) = result {
                tracing::error!("cannot save blocks, stopping the node: {e}");
                self.failed = true;
                return Err(Stopped);
            }
            // The tree may forget what is now in the store.
            chain.forget_old();
        }
        if stopping {
            // The stop's last commit is saved: the store may tidy up when
            // it is dropped.
            self.store.clean_stop();
        }
        Ok(Released {
            // A tip that a later change of the best chain replaced is not
            // worth a peer's request; the new one is announced in turn.
            announce: announce.filter(|t| chain.is_on_best_chain(t)),
            replies,
            repaired,
            relay: relay.into_iter().filter(|h| chain.contains(h)).collect(),
        })
    }

    // ---- what is kept for the next start, not promised -------------------

    /// The mempool changed: it is saved at the next due save.
    pub fn mempool_changed(&mut self) {
        self.mempool_dirty = true;
    }

    /// Whether nothing waits for a time to pass: no block is unsaved and
    /// the mempool has not changed since it was last saved.
    pub fn settled(&self) -> bool {
        self.unsaved_since.is_none() && !self.mempool_dirty
    }

    /// Whether the mempool's periodic save is due at `now`.
    pub fn mempool_save_due(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.mempool_saved) >= MEMPOOL_SAVE_EVERY
    }

    /// Saves the pending transactions `txs` if they changed since the last
    /// save (or whatever, with `force`), and notes when.
    pub fn save_changed_mempool(&mut self, txs: &[SignedTx], force: bool) {
        if (!self.mempool_dirty && !force) || self.failed {
            return;
        }
        self.mempool_dirty = false;
        self.mempool_saved = Instant::now();
        self.save_mempool(txs);
    }

    /// Saves the pending transactions (nothing once the store failed; a
    /// failure is logged).
    pub fn save_mempool(&self, txs: &[SignedTx]) {
        if self.failed {
            return;
        }
        if let Err(e) = self.store.put_mempool(txs) {
            tracing::warn!("cannot save the mempool: {e}");
        }
    }

    /// Saves the active bans, each with the time it has left, as expiries
    /// in wall-clock time from `now_ms` (nothing once the store failed; a
    /// failure is logged).
    pub fn save_bans(&self, bans: Vec<(BanKey, Duration)>, now_ms: u64) {
        if self.failed {
            return;
        }
        let bans: Vec<_> = bans
            .into_iter()
            .map(|(key, left)| {
                let left = u64::try_from(left.as_millis()).unwrap_or(u64::MAX);
                (key, now_ms.saturating_add(left))
            })
            .collect();
        if let Err(e) = self.store.put_bans(&bans) {
            tracing::warn!("cannot save the bans: {e}");
        }
    }

    /// The transactions the previous run saved (none if they cannot be
    /// read: logged).
    pub fn load_mempool(&self) -> Vec<SignedTx> {
        self.store.load_mempool().unwrap_or_else(|e| {
            tracing::error!("the saved mempool cannot be read, starting empty: {e}");
            Vec::new()
        })
    }

    /// The bans the previous run saved, each with the time it has left at
    /// `now_ms`; `None` if they cannot be read (logged: a cache, not the
    /// chain, written whole again at the next save, which repairs it).
    pub fn load_bans(&self, now_ms: u64) -> Option<Vec<(BanKey, Duration)>> {
        match self.store.load_bans() {
            Ok(saved) => Some(
                saved
                    .into_iter()
                    .map(|(key, until)| (key, Duration::from_millis(until.saturating_sub(now_ms))))
                    .collect(),
            ),
            Err(e) => {
                tracing::error!("the saved bans cannot be read, starting without: {e}");
                None
            }
        }
    }
}

#[cfg(test)]
#[path = "durable_tests.rs"]
mod tests;

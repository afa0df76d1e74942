//! The core's saving: one commit of what the chain accepted (blocks, undo
//! records, the transaction index, a ledger snapshot when due), run by the
//! [`Saver`](super::saver::Saver) while the core goes on serving, then what
//! waited for it (announcements, "mine N" answers); and the mempool and
//! bans, saved with the store and reloaded at start.

use std::time::Duration;

use tokio::time::Instant;
use tracing::info;

use chain_core::BlockHash;

use crate::core::Core;
use crate::core::inbox::QueryFn;
use crate::core::mining::MinedReply;
use crate::core::saver::Side;
use crate::core::view::NodeView;
use crate::store::{Commit, StateSnapshot, StoreError};

impl Core {
    /// Bans again what the store says a previous run banned, for the time
    /// left (bans persist across restarts until they expire).
    pub(super) fn reload_bans(&mut self) {
        match self.store.load_bans() {
            Ok(saved) => {
                let now_ms = self.clock.now_ms();
                let left: Vec<_> = saved
                    .into_iter()
                    .map(|(key, until)| (key, Duration::from_millis(until.saturating_sub(now_ms))))
                    .collect();
                self.peers.restore_bans(left, Instant::now());
            }
            // A cache, not the chain: it is written whole again at the next
            // save, which repairs it.
            Err(e) => tracing::error!("the saved bans cannot be read, starting without: {e}"),
        }
    }

    /// Saves the active bans with their expiries in wall-clock time (after
    /// the commits started before; nothing once the store failed).
    pub(super) fn save_bans(&mut self) {
        self.bans_dirty = false;
        if self.store_failed {
            return;
        }
        let now_ms = self.clock.now_ms();
        let bans: Vec<_> = self
            .peers
            .bans(Instant::now())
            .into_iter()
            .map(|(key, left)| {
                let left = u64::try_from(left.as_millis()).unwrap_or(u64::MAX);
                (key, now_ms.saturating_add(left))
            })
            .collect();
        self.saver.save_side(Side::Bans(bans));
    }

    /// Re-admits the transactions saved with the store (checked again
    /// against the current tip; those that no longer apply are let go).
    pub(super) fn reload_mempool(&mut self) {
        match self.store.load_mempool() {
            Ok(saved) => {
                let count = saved.len();
                let kept = saved
                    .into_iter()
                    .filter(|tx| self.mempool.add(tx.clone(), None).is_ok())
                    .count();
                if count > 0 {
                    info!(kept, of = count, "reloaded the saved mempool");
                }
            }
            Err(e) => tracing::error!("the saved mempool cannot be read, starting empty: {e}"),
        }
    }

    /// Saves the mempool if it changed (or always, with `force`), after
    /// the commits started before; nothing once the store failed.
    pub(super) fn save_mempool(&mut self, force: bool) {
        if (!self.mempool_dirty && !force) || self.store_failed {
            return;
        }
        self.mempool_dirty = false;
        self.mempool_saved = Instant::now();
        self.saver
            .save_side(Side::Mempool(self.mempool.txs().to_vec()));
    }

    /// Saves what was accepted since the last save (blocks, undo records,
    /// the transaction index, a snapshot when due) in one commit, waits for
    /// it (and for a commit already in flight), then announces the new tip
    /// and answers "mine N" requests: what a caller that serves or tells
    /// the tip needs. `false` if the node cannot save (a failing store
    /// stops it: it cannot promise that what it announces survives a
    /// crash).
    pub(super) fn flush(&mut self) -> bool {
        self.flush_with(false)
    }

    /// [`Core::flush`], with a snapshot whatever the counters say if
    /// `snapshot` (at a clean stop).
    pub(super) fn flush_with(&mut self, snapshot: bool) -> bool {
        if self.saving.is_some() && !self.wait_saved() {
            return false;
        }
        if !self.start_save(snapshot) {
            return false;
        }
        if self.saving.is_some() {
            return self.wait_saved();
        }
        !self.store_failed
    }

    /// Starts saving what was accepted since the last save, unless a
    /// commit is in flight (its completion starts the next, see
    /// [`Core::on_saved`]). With nothing to save, answers and announces
    /// at once what waited (its blocks are saved). `false` if the node
    /// cannot save.
    pub(super) fn start_save(&mut self, snapshot: bool) -> bool {
        if self.store_failed {
            return false;
        }
        if self.saving.is_some() {
            return true;
        }
        let (blocks, txs) = self.since_snapshot;
        let snapshot = snapshot
            || !self.has_snapshot
            || blocks >= self.config.snapshot_every
            || txs >= self.config.snapshot_every.saturating_mul(10);
        let mut new_blocks = self.chain.take_new_blocks();
        // Good copies of damaged blocks go with the blocks accepted: one
        // commit in flight, in order, as any save.
        let repairing = self.repairs.add_to_commit(&mut new_blocks);
        let commit = Commit {
            blocks: new_blocks,
            undo: self.chain.take_new_undo(),
            index: std::mem::take(&mut self.unsaved_index),
            snapshot: (snapshot && (blocks > 0 || !self.has_snapshot)).then(|| StateSnapshot {
                block: self.chain.tip(),
                height: self.chain.height(),
                ledger: self.chain.state().clone(),
            }),
        };
        self.unsaved_since = None;
        let waiting = InFlight {
            replies: std::mem::take(&mut self.mined_replies),
            announce: self.to_announce.take(),
            repairing,
        };
        if commit.is_empty() {
            self.release(waiting);
            return true;
        }
        if commit.snapshot.is_some() {
            // The counters start again at the snapshot's block; if the
            // commit fails, the node stops anyway.
            self.has_snapshot = true;
            self.since_snapshot = (0, 0);
        }
        self.saving = Some(waiting);
        self.saver.start(commit);
        match self.saver.done() {
            Some(result) => self.on_saved(result),
            None => true,
        }
    }

    /// Waits for the commit in flight and handles its result.
    fn wait_saved(&mut self) -> bool {
        let result = self.saver.wait();
        self.on_saved(result)
    }

    /// Handles the result of the commit in flight if it has completed
    /// (the saver raised its waker).
    pub(super) fn poll_saved(&mut self) {
        if self.saving.is_some()
            && let Some(result) = self.saver.done()
        {
            self.on_saved(result);
        }
    }

    /// The commit in flight completed: on success the tree may forget what
    /// is now in the store, and what waited for the commit is answered and
    /// announced; a failure stops the node with nothing more saved,
    /// answered, announced or published.
    fn on_saved(&mut self, result: Result<(), StoreError>) -> bool {
        let Some(waiting) = self.saving.take() else {
            return !self.store_failed;
        };
        if let Err(e) = result {
            tracing::error!("cannot save blocks, stopping the node: {e}");
            self.store_failed = true;
            self.cancel.cancel();
            return false;
        }
        self.chain.forget_old();
        self.release(waiting);
        true
    }

    /// Answers and announces what waited for a commit that is now durable
    /// (and counts the damaged blocks it wrote back as repaired).
    fn release(&mut self, waiting: InFlight) {
        self.repairs.repaired(&waiting.repairing);
        for reply in waiting.replies {
            reply.send();
        }
        // A tip that a reorganisation replaced during the commit is not
        // worth a peer's request; the new one follows its own commit.
        if let Some(tip) = waiting.announce.filter(|t| self.chain.is_on_best_chain(t)) {
            for conn in self.peers.live_conns() {
                self.announce_saved_block_to(conn, tip);
            }
        }
    }
}

impl Core {
    /// Whether everything the chain accepted is saved (nothing new, no
    /// commit in flight).
    pub(super) fn is_saved(&self) -> bool {
        self.saving.is_none() && self.chain.new_block_count() == 0 && self.unsaved_index.is_empty()
    }

    /// Runs a query of the node's handle on what is saved: at once if
    /// everything is; otherwise, with saving in the background, once the
    /// commits catch up (the core goes on serving meanwhile), or after
    /// [`MAX_QUERY_WAIT`] by saving on the spot; inline, by saving on the
    /// spot. A node whose store failed answers nothing (the caller sees
    /// it stopped).
    pub(super) fn query(&mut self, f: QueryFn) {
        if self.config.background_saving && !self.is_saved() {
            self.unsaved_wait_since.get_or_insert_with(Instant::now);
            self.deferred_queries.push(f);
            self.start_save(false);
            return;
        }
        if self.flush() {
            self.run_query(f);
        }
    }

    /// Runs the deferred queries (everything is saved; the caller then
    /// publishes and answers the handles waiting for a saved snapshot).
    pub(super) fn run_deferred_queries(&mut self) {
        self.unsaved_wait_since = None;
        for f in std::mem::take(&mut self.deferred_queries) {
            self.run_query(f);
        }
    }

    /// Saves on the spot if something (a deferred query, a handle, the
    /// snapshot's chain part) has waited [`MAX_QUERY_WAIT`] for everything
    /// to be saved (blocks that keep coming would otherwise starve it);
    /// the caller then finds everything saved. Never while a commit is in
    /// flight: its completion comes back here, so the wait is at most that
    /// commit and one more, and the core never sits waiting for the disk.
    pub(super) fn run_overdue_queries(&mut self) {
        if self.saving.is_none()
            && self
                .unsaved_wait_since
                .is_some_and(|t| t.elapsed() >= MAX_QUERY_WAIT)
            && !self.flush()
        {
            // The node is stopping: the callers see it stopped.
            self.deferred_queries.clear();
            self.saved_waiters.clear();
            self.unsaved_wait_since = None;
        }
    }

    fn run_query(&mut self, f: QueryFn) {
        let now = Instant::now();
        let view = NodeView {
            store: &*self.store,
            metrics: &self.metrics,
            chain: &self.chain,
            mempool: &self.mempool,
            peers: self.peers.infos(now),
            bans: self.peers.bans(now),
            node_id: self.node_id,
            mining: self.miner.mode(),
        };
        f(&view);
    }
}

/// How long a query waits for background commits to catch up before the
/// core saves on the spot to answer it.
const MAX_QUERY_WAIT: Duration = Duration::from_millis(100);

/// What waits for the commit in flight: the "mine N" answers and the tip
/// announcement of the blocks it saves, and the damaged blocks it writes
/// back.
pub(super) struct InFlight {
    replies: Vec<MinedReply>,
    announce: Option<BlockHash>,
    repairing: Vec<BlockHash>,
}

//! The core's saving: one commit of what the chain accepted (blocks, undo
//! records, the transaction index, a ledger snapshot when due), then what
//! waited for it (announcements, "mine N" answers); and the mempool and
//! bans, saved with the store and reloaded at start.

use std::time::Duration;

use tokio::time::Instant;
use tracing::info;

use crate::core::Core;
use crate::store::{Commit, StateSnapshot};

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
            Err(e) => tracing::warn!("the saved bans cannot be read: {e}"),
        }
    }

    /// Saves the active bans with their expiries in wall-clock time.
    pub(super) fn save_bans(&mut self) {
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
        match self.store.put_bans(&bans) {
            Ok(()) => self.bans_dirty = false,
            Err(e) => tracing::warn!("cannot save the bans: {e}"),
        }
    }

    /// Re-admits the transactions saved with the store (checked again
    /// against the current tip; those that no longer apply are let go).
    pub(super) fn reload_mempool(&mut self) {
        match self.store.load_mempool() {
            Ok(saved) => {
                let count = saved.len();
                let kept = saved
                    .into_iter()
                    .filter(|tx| self.mempool.add(tx.clone()).is_ok())
                    .count();
                if count > 0 {
                    info!(kept, of = count, "reloaded the saved mempool");
                }
            }
            Err(e) => tracing::warn!("the saved mempool cannot be read, starting empty: {e}"),
        }
    }

    /// Saves the mempool if it changed (or always, with `force`).
    pub(super) fn save_mempool(&mut self, force: bool) {
        if !self.mempool_dirty && !force {
            return;
        }
        match self.store.put_mempool(self.mempool.txs()) {
            Ok(()) => {
                self.mempool_dirty = false;
                self.mempool_saved = Instant::now();
            }
            Err(e) => tracing::warn!("cannot save the mempool: {e}"),
        }
    }

    /// Saves what was accepted since the last save (blocks, undo records,
    /// the transaction index, a snapshot when due) in one commit, then
    /// announces the new tip and answers "mine N" requests. A node that
    /// cannot save cannot promise that what it announces survives a crash,
    /// so a failing store stops it.
    pub(super) fn flush(&mut self) -> bool {
        self.flush_with(false)
    }

    /// [`Core::flush`], with a snapshot whatever the counters say if
    /// `snapshot` (at a clean stop).
    pub(super) fn flush_with(&mut self, snapshot: bool) -> bool {
        if self.store_failed {
            return false;
        }
        let (blocks, txs) = self.since_snapshot;
        let snapshot = snapshot
            || !self.has_snapshot
            || blocks >= self.config.snapshot_every
            || txs >= self.config.snapshot_every.saturating_mul(10);
        let commit = Commit {
            blocks: self.chain.take_new_blocks(),
            undo: self.chain.take_new_undo(),
            index: std::mem::take(&mut self.unsaved_index),
            snapshot: (snapshot && (blocks > 0 || !self.has_snapshot)).then(|| StateSnapshot {
                block: self.chain.tip(),
                height: self.chain.height(),
                ledger: self.chain.state().clone(),
            }),
        };
        self.unsaved_since = None;
        if !commit.is_empty() {
            if let Err(e) = self.store.commit(&commit) {
                tracing::error!("cannot save blocks, stopping the node: {e}");
                self.store_failed = true;
                self.cancel.cancel();
                return false;
            }
            if commit.snapshot.is_some() {
                self.has_snapshot = true;
                self.since_snapshot = (0, 0);
            }
            self.chain.forget_old();
        }
        for reply in self.mined_replies.drain(..) {
            reply.send();
        }
        if let Some(tip) = self.to_announce.take() {
            for conn in self.peers.live_conns() {
                self.announce_block_to(conn, tip);
            }
        }
        true
    }
}

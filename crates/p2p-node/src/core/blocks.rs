//! The core's handling of blocks: offering one to the chain (from a peer
//! or the miner), following the best tip when it moves (the transaction
//! index, the metrics, the mempool, the events, the stale mining job), and
//! building the miner's template.

use std::collections::HashSet;

use chain_core::{Block, InsertError, Inserted, Reorg, Transaction, TxId};
use escrow::{LedgerError, SignedTx, Tx};
use tokio::time::Instant;
use tracing::{debug, info};

use crate::core::Core;
use crate::core::view::{ConnId, NodeEvent};
use crate::penalty::Offence;

impl Core {
    /// Offers a block to the chain. Returns the new best-chain change, if
    /// the block moved the tip. `from` is the peer that sent it and whether
    /// we had asked for it by hash.
    pub(super) fn accept_block(
        &mut self,
        block: Block<Tx>,
        from: Option<(ConnId, bool)>,
    ) -> Option<Reorg<Tx>> {
        let hash = block.hash();
        let now = self.clock.now_ms();
        let old_tip = self.chain.tip();
        match self.chain.insert(block, now) {
            Ok(Inserted::NewBest(reorg)) => {
                self.on_new_best(&reorg);
                Some(reorg)
            }
            Ok(Inserted::SideBranch) => {
                self.durable.note_unsaved();
                if let Some(header) = self.chain.header(&hash) {
                    self.emit(NodeEvent::Fork {
                        height: header.height,
                        hash,
                    });
                }
                self.metrics.blocks_accepted += 1;
                debug!(%hash, "block on a side branch");
                None
            }
            Ok(Inserted::Orphan { missing_parent }) => {
                self.published.orphan(missing_parent, hash);
                if let Some((conn, solicited)) = from {
                    if !solicited {
                        self.punish(conn, Offence::Orphan(missing_parent.to_string()));
                    }
                    if self.peers.is_connected(conn) && !self.requests.is_syncing(conn) {
                        self.request_sync(conn);
                    }
                }
                None
            }
            Ok(Inserted::Duplicate) => None,
            Err(InsertError::Archive(e)) => {
                // Not the block's fault: the store cannot be read back.
                tracing::error!("the block store cannot be read, stopping the node: {e}");
                // The state may have moved without the change reported:
                // save nothing more, so the store keeps its last whole
                // commit.
                self.durable.store_unreadable();
                self.cancel.cancel();
                None
            }
            Err(e) => {
                debug!(%hash, "block refused: {e}");
                // A branch can apply up to an invalid block: the tip moved
                // all the same, and what follows the tip must follow it.
                if self.chain.tip() != old_tip {
                    match self.chain.change_since(old_tip) {
                        Ok(reorg) => {
                            self.on_new_best(&reorg);
                            self.announce_new_best(&reorg);
                        }
                        Err(e) => {
                            tracing::error!(
                                "the block store cannot be read, stopping the node: {e}"
                            );
                            self.durable.store_unreadable();
                            self.cancel.cancel();
                        }
                    }
                }
                *self
                    .metrics
                    .blocks_rejected
                    .entry(reject_reason(&e))
                    .or_insert(0) += 1;
                if let Some((conn, _)) = from {
                    let offence = match &e {
                        InsertError::Invalid(v) if !v.is_permanent() => {
                            Offence::FutureBlock(v.to_string())
                        }
                        other => Offence::InvalidBlock(other.to_string()),
                    };
                    self.punish(conn, offence);
                }
                None
            }
        }
    }

    /// The best tip moved: index the new blocks, count the reorg, bring
    /// back what undone blocks held, tell watchers, and stop the miner,
    /// whose template now has a stale parent.
    pub(super) fn on_new_best(&mut self, reorg: &Reorg<Tx>) {
        self.durable.accepted(reorg);
        self.metrics.blocks_accepted += reorg.applied.len() as u64;
        if reorg.is_reorg() {
            self.metrics.reorgs += 1;
            self.metrics.max_reorg_depth =
                self.metrics.max_reorg_depth.max(reorg.undone.len() as u64);
            info!(
                undone = reorg.undone.len(),
                applied = reorg.applied.len(),
                tip = %reorg.new_tip,
                "reorg"
            );
        } else {
            debug!(height = self.chain.height(), tip = %reorg.new_tip, "new tip");
        }
        self.return_undone_txs(reorg);
        for id in self.mempool.admit_waiting() {
            self.announce_tx(id);
        }
        self.emit(NodeEvent::Tip {
            height: self.chain.height(),
            hash: reorg.new_tip,
            undone: reorg.undone.len(),
        });
        self.emit_mempool();
        self.miner.tip_moved(Instant::now());
    }

    /// Moves the mempool to the new tip: incrementally when the tip only
    /// moved forward, else rebuilt with the transactions of undone blocks
    /// (oldest block first) back in front, and re-announces those:
    /// they are news to peers that dropped them when they saw them mined.
    fn return_undone_txs(&mut self, reorg: &Reorg<Tx>) {
        let returned: Vec<SignedTx> = reorg
            .undone
            .iter()
            .rev()
            .flat_map(|b| b.transactions.iter())
            .filter_map(|t| match t {
                Tx::Signed(s) => Some(s.clone()),
                _ => None,
            })
            .collect();
        let returned_ids: Vec<TxId> = returned.iter().map(SignedTx::id).collect();
        // A transaction is on the best chain now, and out of the pool, only
        // if a block this change applied holds it (an undone block's
        // transactions were not on the chain twice).
        let mined: HashSet<TxId> = reorg
            .applied
            .iter()
            .flat_map(|b| b.transactions.iter().map(Transaction::id))
            .collect();
        let included = |id: &TxId| mined.contains(id);
        let dropped = if reorg.undone.is_empty() {
            // The tip moved forward: only what the new blocks touched is
            // checked again.
            self.mempool.extend(
                self.chain.state(),
                self.chain.height() + 1,
                reorg.applied.iter().flat_map(|b| b.transactions.iter()),
                included,
            )
        } else {
            self.mempool.rebuild(
                self.chain.state(),
                self.chain.height() + 1,
                returned,
                included,
            )
        };
        for id in dropped {
            if let Some(d) = self.mempool.dropped(&id) {
                debug!(%id, "dropped from the mempool: {}", d.reason);
            }
        }
        for id in returned_ids {
            if self.mempool.contains(&id) {
                self.peers.forget_tx(&id);
                self.announce_tx(id);
            }
        }
    }

    /// Announces the new tip to every peer once it is saved (the next
    /// flush). Announcing the tip is enough: a peer missing its ancestors
    /// syncs.
    pub(super) fn announce_new_best(&mut self, reorg: &Reorg<Tx>) {
        self.durable.announce(reorg.new_tip);
    }

    /// Starts a job on a fresh template if the node should mine, no job
    /// runs and the block interval has passed (`core/mining.rs`).
    pub(super) fn maybe_mine(&mut self) {
        if self.cancel.is_cancelled() {
            return;
        }
        self.miner
            .maybe_start(&self.chain, &self.mempool, &*self.clock, Instant::now());
    }

    /// The miner found a block paying `paid_to`: accept it and, if it
    /// joined the best chain, count it toward the open requests before any
    /// new job starts.
    pub(super) fn on_mined(&mut self, block: Block<Tx>, paid_to: escrow::Address) {
        let hash = block.hash();
        let header = block.header;
        self.miner.log_found(&block, Instant::now());
        let work = header.target.to_target().map_or(0.0, |t| t.work().as_f64());
        if let Some(reorg) = self.accept_block(block, None) {
            self.metrics.blocks_mined += 1;
            self.metrics.work_mined += work;
            if let Some(reply) = self.miner.count_mined(hash, paid_to) {
                self.durable.reply_when_saved(reply);
            }
            self.announce_new_best(&reorg);
        }
        if !self.miner.should_mine(self.mempool.is_empty()) {
            self.miner.stop();
        }
    }
}

/// A short, stable name for why a block was refused (a metrics label).
fn reject_reason(e: &InsertError<LedgerError>) -> String {
    match e {
        InsertError::Invalid(v) => {
            let debug = format!("{v:?}");
            debug
                .split(|c: char| !c.is_alphanumeric())
                .next()
                .unwrap_or("invalid")
                .to_string()
        }
        InsertError::KnownInvalid(_) => "KnownInvalid".to_string(),
        InsertError::State { .. } => "State".to_string(),
        InsertError::Archive(_) => "Archive".to_string(),
    }
}

//! The core's handling of blocks: offering one to the chain (from a peer
//! or the miner), following the best tip when it moves (the transaction
//! index, the metrics, the mempool, the events, the stale mining job), and
//! building the miner's template.

use chain_core::{Block, Header, InsertError, Inserted, Reorg, TxId};
use escrow::{LedgerError, SignedTx, Tx};
use tracing::{debug, info};

use crate::core::Core;
use crate::core::view::{ConnId, NodeEvent};
use crate::penalty::Offence;

impl Core {
    pub(super) fn index_block(&mut self, block: &Block<Tx>) {
        let hash = block.hash();
        for tx in &block.transactions {
            self.tx_index.insert(chain_core::Transaction::id(tx), hash);
        }
    }

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
        match self.chain.insert(block, now) {
            Ok(Inserted::NewBest(reorg)) => {
                self.unsaved.extend(reorg.applied.iter().cloned());
                self.on_new_best(&reorg);
                Some(reorg)
            }
            Ok(Inserted::SideBranch) => {
                if let Some(b) = self.chain.block(&hash).cloned() {
                    self.emit(NodeEvent::Fork {
                        height: b.header.height,
                        hash,
                    });
                    self.unsaved.push(b);
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
            Err(e) => {
                debug!(%hash, "block refused: {e}");
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
        for block in &reorg.undone {
            for tx in &block.transactions {
                self.tx_index.remove(&chain_core::Transaction::id(tx));
            }
        }
        for block in &reorg.applied {
            self.index_block(block);
        }
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
        self.admit_orphans();
        self.emit(NodeEvent::Tip {
            height: self.chain.height(),
            hash: reorg.new_tip,
            undone: reorg.undone.len(),
        });
        self.emit_mempool();
        self.miner.stop();
    }

    /// Rebuilds the mempool on the new tip with the transactions of undone
    /// blocks (oldest block first) back in front, and re-announces those:
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
        let index = &self.tx_index;
        let dropped = self.mempool.rebuild(
            self.chain.state(),
            self.chain.height() + 1,
            returned,
            |id| index.contains_key(id),
        );
        for id in dropped {
            if let Some(d) = self.mempool.dropped(&id) {
                debug!(%id, "dropped from the mempool: {}", d.reason);
            }
        }
        for id in returned_ids {
            if self.mempool.contains(&id) {
                for conn in self.peers.live_conns() {
                    if let Some(p) = self.peers.get_mut(conn) {
                        p.known_txs.forget(&id);
                    }
                }
                self.announce_tx(id);
            }
        }
    }

    pub(super) fn announce_new_best(&mut self, reorg: &Reorg<Tx>) {
        // Announcing the tip is enough: a peer missing its ancestors syncs.
        for conn in self.peers.live_conns() {
            self.announce_block_to(conn, reorg.new_tip);
        }
    }

    /// Starts a job on a fresh template if the node should mine and no job
    /// runs.
    pub(super) fn maybe_mine(&mut self) {
        if !self.miner.wants_job(self.mempool.is_empty()) || self.cancel.is_cancelled() {
            return;
        }
        let params = self.chain.params();
        let mut transactions = vec![Tx::Coinbase {
            to: self.config.miner_account,
            height: self.chain.height() + 1,
        }];
        let mut size = Header::SIZE + 64;
        for tx in self.mempool.txs() {
            let tx = Tx::Signed(tx.clone());
            let len = chain_core::Transaction::encoded_len(&tx);
            if transactions.len() >= params.max_block_txs || size + len > params.max_block_bytes {
                break;
            }
            size += len;
            transactions.push(tx);
        }
        let header = self.chain.template(&transactions, self.clock.now_ms());
        let block = Block {
            header,
            transactions,
        };
        self.miner.start(block, self.inbox.clone(), &self.tracker);
    }

    /// The miner found a block: accept it and, if it joined the best chain,
    /// count it toward the open requests before any new job starts.
    pub(super) fn on_mined(&mut self, block: Block<Tx>) {
        let hash = block.hash();
        let header = block.header;
        info!(height = header.height, %hash, txs = block.transactions.len(), "mined a block");
        let work = header.target.to_target().map_or(0.0, |t| t.work().as_f64());
        if let Some(reorg) = self.accept_block(block, None) {
            self.metrics.blocks_mined += 1;
            self.metrics.work_mined += work;
            self.miner.count_mined(hash);
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
    }
}

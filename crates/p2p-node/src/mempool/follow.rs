//! The pool following the chain: moving to a new best tip
//! ([`Mempool::follow_tip`]) and taking back, at start, what the previous
//! run saved ([`Mempool::reload`]).

use std::collections::HashSet;

use chain_core::{Reorg, Transaction, TxId};
use escrow::{Ledger, PendingState, SignedTx, Tx};
use tracing::{debug, info};

use super::Mempool;

impl Mempool {
    /// Moves the pool to the new tip `reorg` led to (`ledger` at
    /// `next_height`): incrementally when the tip only moved forward, else
    /// rebuilt with the transactions of undone blocks (oldest block first)
    /// back in front. Returns the undone blocks' transactions that are
    /// pending again, in that order: news to peers that dropped them when
    /// they saw them mined, to be announced again.
    pub fn follow_tip(
        &mut self,
        ledger: &Ledger,
        next_height: u64,
        reorg: &Reorg<Tx>,
    ) -> Vec<TxId> {
        if reorg.undone.is_empty() && self.is_empty() {
            // Nothing pending to check again (a sync, mostly): the pool only
            // moves to the new tip, as a rebuild of nothing would.
            self.changes += 1;
            self.base = ledger.clone();
            self.state = PendingState::new(ledger, next_height);
            return Vec::new();
        }
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
        let mut returned_ids: Vec<TxId> = returned.iter().map(SignedTx::id).collect();
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
            self.extend(
                ledger,
                next_height,
                reorg.applied.iter().flat_map(|b| b.transactions.iter()),
                included,
            )
        } else {
            self.rebuild(ledger, next_height, returned, included)
        };
        for id in dropped {
            if let Some(d) = self.dropped(&id) {
                debug!(%id, "dropped from the mempool: {}", d.reason);
            }
        }
        returned_ids.retain(|id| self.contains(id));
        returned_ids
    }

    /// Re-admits the transactions a previous run saved (checked again
    /// against the current tip; those that no longer apply are let go).
    /// Returns how many were kept.
    pub fn reload(&mut self, saved: Vec<SignedTx>) -> usize {
        let count = saved.len();
        let kept = saved
            .into_iter()
            .filter(|tx| self.add(tx.clone(), None).is_ok())
            .count();
        if count > 0 {
            info!(kept, of = count, "reloaded the saved mempool");
        }
        kept
    }
}

#[cfg(test)]
#[path = "follow_tests.rs"]
mod tests;

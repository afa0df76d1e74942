//! [`PoolView`]: what readers see of the pool without asking the core
//! (published in every [`crate::Snapshot`]): the pending transactions in
//! admission order, by id, and the dropped ones remembered with why.
//!
//! Persistent maps and vectors, so a publication clones it in O(1) and the
//! previous snapshot keeps its own version. An admission updates it in
//! place (O(log n)); any other change (a new tip, an eviction, a
//! replacement: each already O(pool) in the pool itself) has it built
//! again from the pool at the next read, once.

use chain_core::TxId;
use escrow::SignedTx;

use super::outcome::Dropped;

/// The pending and dropped transactions, as of one change of the pool.
#[derive(Clone, Debug, Default)]
pub struct PoolView {
    /// Pending transactions in admission order.
    txs: imbl::Vector<SignedTx>,
    /// Each one's position in `txs`.
    ids: imbl::HashMap<TxId, usize>,
    /// Accepted transactions let go, with why (at most
    /// [`super::MAX_DROPPED`]).
    dropped: imbl::HashMap<TxId, Dropped>,
}

impl PoolView {
    /// Pending transactions in admission order.
    pub fn txs(&self) -> impl Iterator<Item = &SignedTx> + '_ {
        self.txs.iter()
    }

    /// The pending transaction `id`.
    pub fn get(&self, id: &TxId) -> Option<&SignedTx> {
        self.ids.get(id).and_then(|&i| self.txs.get(i))
    }

    /// How many are pending.
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    /// The pending ids (in no order).
    pub fn ids(&self) -> impl Iterator<Item = &TxId> + '_ {
        self.ids.keys()
    }

    /// Why transaction `id` was let go, if it was and is remembered.
    pub fn dropped(&self, id: &TxId) -> Option<&Dropped> {
        self.dropped.get(id)
    }

    /// The dropped ids remembered (in no order).
    pub fn dropped_ids(&self) -> impl Iterator<Item = &TxId> + '_ {
        self.dropped.keys()
    }
}

/// The pool's copy of its view, and the change count it shows.
#[derive(Clone, Debug, Default)]
pub(super) struct Kept {
    view: PoolView,
    /// The pool's change count this view shows; `None`: never built.
    at: Option<u64>,
}

impl Kept {
    /// Admission `changes` appended `tx` (`id`) to a pool that was at
    /// `changes - 1`: the view follows in place if it showed that, else it
    /// stays stale until the next read.
    pub(super) fn admitted(&mut self, changes: u64, id: TxId, tx: &SignedTx) {
        if self.at == Some(changes.wrapping_sub(1)) {
            self.view.ids.insert(id, self.view.txs.len());
            self.view.txs.push_back(tx.clone());
            self.at = Some(changes);
        }
    }

    /// The view of a pool at `changes` holding `txs` (with `ids`), and
    /// `dropped`: built again from them if stale.
    pub(super) fn read(
        &mut self,
        changes: u64,
        txs: &[SignedTx],
        ids: impl Iterator<Item = (TxId, usize)>,
        dropped: &imbl::HashMap<TxId, Dropped>,
    ) -> PoolView {
        if self.at != Some(changes) {
            self.view.txs = txs.iter().cloned().collect();
            self.view.ids = ids.collect();
            self.at = Some(changes);
        }
        PoolView {
            dropped: dropped.clone(),
            ..self.view.clone()
        }
    }
}

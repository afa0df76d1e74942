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
use escrow::{Package, SignedTx};

use super::outcome::Dropped;

/// The pending and dropped transactions, as of one change of the pool.
#[derive(Clone, Debug, Default)]
pub struct PoolView {
    /// Pending transactions in admission order.
    txs: imbl::Vector<SignedTx>,
    /// Each one's fee and size, in the same order.
    packages: imbl::Vector<Package>,
    /// Each one's position in `txs`.
    ids: imbl::HashMap<TxId, usize>,
    /// Accepted transactions let go, with why (at most
    /// [`super::MAX_DROPPED`]).
    dropped: imbl::HashMap<TxId, Dropped>,
    /// The pool's byte bound.
    max_bytes: usize,
}

impl PoolView {
    /// Each pending transaction's fee and size, in admission order: what
    /// fee estimates read ([`super::estimate::Pool`]).
    pub fn packages(&self) -> impl Iterator<Item = Package> + '_ {
        self.packages.iter().copied()
    }

    /// The pool's byte bound.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

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
    pub(super) fn admitted(&mut self, changes: u64, id: TxId, tx: &SignedTx, package: Package) {
        if self.at == Some(changes.wrapping_sub(1)) {
            self.view.ids.insert(id, self.view.txs.len());
            self.view.txs.push_back(tx.clone());
            self.view.packages.push_back(package);
            self.at = Some(changes);
        }
    }

    /// The view of the pool `from` shows: built again from it if stale.
    pub(super) fn read<'a>(
        &mut self,
        from: Source<
            'a,
            impl Iterator<Item = Package>,
            impl Iterator<Item = (&'a TxId, &'a usize)>,
        >,
    ) -> PoolView {
        if self.at != Some(from.changes) {
            self.view.txs = from.txs.iter().cloned().collect();
            self.view.packages = from.packages.collect();
            self.view.ids = from.ids.map(|(id, &i)| (*id, i)).collect();
            self.at = Some(from.changes);
        }
        PoolView {
            dropped: from.dropped.clone(),
            max_bytes: from.max_bytes,
            ..self.view.clone()
        }
    }
}

/// What [`Kept::read`] reads of the pool.
pub(super) struct Source<'a, P, I> {
    /// The pool's change count.
    pub changes: u64,
    /// Its pending transactions in order.
    pub txs: &'a [SignedTx],
    /// Their packages in the same order.
    pub packages: P,
    /// Their positions by id.
    pub ids: I,
    /// The dropped ones remembered.
    pub dropped: &'a imbl::HashMap<TxId, Dropped>,
    /// The byte bound.
    pub max_bytes: usize,
}

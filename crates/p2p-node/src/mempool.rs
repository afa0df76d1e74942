//! The mempool: signed transactions waiting for a block.
//!
//! Admission goes through escrow's [`PendingState`]: a transaction enters
//! only if it applies to the best tip's ledger after every transaction
//! already pending (nonces in order, pending spends counted). The pool is
//! bounded in total and per account. When the best tip changes, the pool is
//! rebuilt against the new state: included transactions leave, and
//! transactions from blocks a reorg undid come back if they still apply.
//!
//! # The pool keeps its word
//!
//! The limits apply to admission only. A transaction the node accepted
//! stays until it is mined or no longer applies (its nonce was taken by
//! another transaction, its funds spent, a contract moved on); then it is
//! *dropped*, and the pool remembers why (the last [`MAX_DROPPED`] drops),
//! so `GET /txs/{id}` can say so. Nothing expires by age. A rebuild after a
//! reorg re-admits the undone blocks' transactions and the pool whatever
//! the limits, so a reorg never drops a transaction for lack of room.

use std::collections::{HashMap, VecDeque};

use chain_core::TxId;
use escrow::{Address, AdmissionError, Ledger, PendingState, SignedTx};

/// Why a transaction was not added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    /// It is already pending.
    #[error("transaction {0} is already pending")]
    Duplicate(TxId),
    /// The pool holds its maximum.
    #[error("the mempool is full ({max} transactions)")]
    Full {
        /// The limit.
        max: usize,
    },
    /// The sender has its maximum of pending transactions.
    #[error("account {account} has {max} pending transactions already")]
    AccountFull {
        /// The sender.
        account: Address,
        /// The limit.
        max: usize,
    },
    /// It does not apply after the pending transactions.
    #[error(transparent)]
    Invalid(#[from] AdmissionError),
}

/// How many dropped transactions are remembered with their reason.
pub const MAX_DROPPED: usize = 10_000;

/// A transaction the pool had accepted and let go, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dropped {
    /// The transaction.
    pub tx: SignedTx,
    /// The rule it broke on the new best chain.
    pub reason: String,
}

/// Pending transactions in admission order (which keeps each sender's
/// nonces in order).
pub struct Mempool {
    txs: Vec<SignedTx>,
    /// Each pending transaction's position in `txs`.
    ids: HashMap<TxId, usize>,
    per_account: HashMap<Address, usize>,
    state: PendingState,
    max: usize,
    max_per_account: usize,
    /// Accepted transactions let go, by id, oldest first in `dropped_order`.
    dropped: HashMap<TxId, Dropped>,
    dropped_order: VecDeque<TxId>,
    /// How many times the pool changed (see [`Mempool::changes`]).
    changes: u64,
}

impl Mempool {
    /// An empty pool over `ledger` (the best tip's state), for the block at
    /// `next_height`.
    pub fn new(ledger: &Ledger, next_height: u64, max: usize, max_per_account: usize) -> Mempool {
        Mempool {
            changes: 0,
            txs: Vec::new(),
            ids: HashMap::new(),
            per_account: HashMap::new(),
            state: PendingState::new(ledger, next_height),
            max,
            max_per_account,
            dropped: HashMap::new(),
            dropped_order: VecDeque::new(),
        }
    }

    /// Adds `tx` if it applies after everything pending.
    ///
    /// # Errors
    ///
    /// [`MempoolError`] naming why not; the pool is unchanged then.
    pub fn add(&mut self, tx: SignedTx) -> Result<TxId, MempoolError> {
        self.insert(tx, true)
    }

    /// Adds `tx`, with the pool's limits and a signature check (a new
    /// transaction), or without either (one re-admitted by a rebuild,
    /// whose signature was verified when it first entered the pool or
    /// when its block was validated).
    fn insert(&mut self, tx: SignedTx, new: bool) -> Result<TxId, MempoolError> {
        let limits = new;
        let id = tx.id();
        if self.ids.contains_key(&id) {
            return Err(MempoolError::Duplicate(id));
        }
        let sender = tx.sender();
        if limits {
            if self.txs.len() >= self.max {
                return Err(MempoolError::Full { max: self.max });
            }
            if self.per_account.get(&sender).copied().unwrap_or(0) >= self.max_per_account {
                return Err(MempoolError::AccountFull {
                    account: sender,
                    max: self.max_per_account,
                });
            }
        }
        if new {
            self.state.admit(&tx)?;
        } else {
            self.state.admit_verified(&tx)?;
        }
        self.forget_dropped(&id);
        *self.per_account.entry(sender).or_insert(0) += 1;
        self.ids.insert(id, self.txs.len());
        self.txs.push(tx);
        self.changes += 1;
        Ok(id)
    }

    /// Rebuilds the pool over a new best state: `returned` (transactions of
    /// blocks a reorg undid, oldest first) and then the current pool are
    /// re-admitted in order, the limits aside; whatever no longer applies is
    /// let go. `included` tells which ids the new best chain holds: those
    /// left because they were mined; the others are remembered as dropped,
    /// with the rule they broke. Returns the dropped ones.
    pub fn rebuild(
        &mut self,
        ledger: &Ledger,
        next_height: u64,
        returned: Vec<SignedTx>,
        included: impl Fn(&TxId) -> bool,
    ) -> Vec<TxId> {
        self.changes += 1;
        let old = std::mem::take(&mut self.txs);
        self.ids.clear();
        self.per_account.clear();
        self.state = PendingState::new(ledger, next_height);
        let mut dropped = Vec::new();
        for tx in returned.into_iter().chain(old) {
            let id = tx.id();
            match self.insert(tx.clone(), false) {
                Ok(_) | Err(MempoolError::Duplicate(_)) => {}
                Err(_) if included(&id) => {}
                Err(e) => {
                    self.remember_dropped(id, tx, e.to_string());
                    dropped.push(id);
                }
            }
        }
        dropped
    }

    /// A count that grows whenever the pool or its pending state changes
    /// (a transaction added, a rebuild on a new tip): equal counts mean an
    /// unchanged pool, so a reader can tell whether to copy it again.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// Why an accepted transaction was let go, if it was (and is still
    /// remembered).
    pub fn dropped(&self, id: &TxId) -> Option<&Dropped> {
        self.dropped.get(id)
    }

    fn remember_dropped(&mut self, id: TxId, tx: SignedTx, reason: String) {
        if self.dropped.insert(id, Dropped { tx, reason }).is_none() {
            self.dropped_order.push_back(id);
        }
        while self.dropped_order.len() > MAX_DROPPED {
            if let Some(old) = self.dropped_order.pop_front() {
                self.dropped.remove(&old);
            }
        }
    }

    fn forget_dropped(&mut self, id: &TxId) {
        // Its slot in the order ages out on its own.
        self.dropped.remove(id);
    }

    /// Pending transactions, in the order a block takes them.
    pub fn txs(&self) -> &[SignedTx] {
        &self.txs
    }

    /// The ids of the pending transactions in block order (each sender's
    /// nonces in order, so a peer that fetches them in this order can
    /// admit each one), without hashing them again.
    pub fn ids(&self) -> Vec<TxId> {
        let mut ids: Vec<(usize, TxId)> = self.ids.iter().map(|(id, &i)| (i, *id)).collect();
        ids.sort_unstable_by_key(|(i, _)| *i);
        ids.into_iter().map(|(_, id)| id).collect()
    }

    /// A pending transaction by id.
    pub fn get(&self, id: &TxId) -> Option<&SignedTx> {
        self.ids.get(id).and_then(|&i| self.txs.get(i))
    }

    /// Where `id` stands in the pool's order (the order its transactions
    /// apply in), if it is pending.
    pub fn position(&self, id: &TxId) -> Option<usize> {
        self.ids.get(id).copied()
    }

    /// Whether `id` is pending.
    pub fn contains(&self, id: &TxId) -> bool {
        self.ids.contains_key(id)
    }

    /// How many are pending.
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    /// Whether none are pending.
    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    /// The ledger with every pending transaction applied: balances and
    /// nonces as they will be once the pool is mined.
    pub fn pending_ledger(&self) -> &Ledger {
        self.state.ledger()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use escrow::{Amount, Genesis, Payload, dev};

    fn pay(ledger: &Ledger, who: &str, nonce: u64, amount: u64) -> SignedTx {
        SignedTx::sign(
            &dev::keypair(who).unwrap(),
            nonce,
            ledger.network(),
            Payload::Transfer {
                to: dev::address("bob").unwrap(),
                amount: Amount::new(amount),
            },
        )
    }

    #[test]
    fn bounded_in_total_and_per_account() {
        let chain = Genesis::dev().chain().unwrap();
        let ledger = chain.state();
        let mut pool = Mempool::new(ledger, 1, 3, 2);
        pool.add(pay(ledger, "alice", 0, 1)).unwrap();
        let again = pay(ledger, "alice", 0, 1);
        assert!(matches!(pool.add(again), Err(MempoolError::Duplicate(_))));
        pool.add(pay(ledger, "alice", 1, 1)).unwrap();
        assert!(matches!(
            pool.add(pay(ledger, "alice", 2, 1)),
            Err(MempoolError::AccountFull { max: 2, .. })
        ));
        pool.add(pay(ledger, "charlie", 0, 1)).unwrap();
        assert!(matches!(
            pool.add(pay(ledger, "dave", 0, 1)),
            Err(MempoolError::Full { max: 3 })
        ));
        assert!(matches!(
            pool.add(pay(ledger, "dave", 5, 1)),
            Err(MempoolError::Full { .. })
        ));
        assert_eq!(pool.len(), 3);
    }

    #[test]
    fn rebuild_keeps_what_still_applies_in_order() {
        let chain = Genesis::dev().chain().unwrap();
        let ledger = chain.state();
        let mut pool = Mempool::new(ledger, 1, 100, 100);
        let a0 = pay(ledger, "alice", 0, 1);
        let a1 = pay(ledger, "alice", 1, 1);
        pool.add(a1.clone()).unwrap_err();
        pool.add(a0.clone()).unwrap();
        pool.add(a1.clone()).unwrap();
        // a0 comes back from an undone block ahead of the pool: order kept,
        // no duplicates.
        let dropped = pool.rebuild(ledger, 1, vec![a0.clone()], |_| false);
        assert!(dropped.is_empty(), "a duplicate is not a drop");
        assert_eq!(pool.get(&a1.id()), Some(&a1));
        assert_eq!(pool.ids(), vec![a0.id(), a1.id()], "ids in block order");
        assert_eq!(pool.txs(), &[a0, a1][..]);
    }

    #[test]
    fn a_rebuild_keeps_every_accepted_transaction_whatever_the_limits() {
        let chain = Genesis::dev().chain().unwrap();
        let ledger = chain.state();
        let mut pool = Mempool::new(ledger, 1, 4, 2);
        pool.add(pay(ledger, "alice", 3, 1)).unwrap_err();
        // Five of alice's transactions come back from undone blocks; the
        // pool allows two per account and four in all on admission.
        let returned: Vec<SignedTx> = (0..5).map(|n| pay(ledger, "alice", n, 1)).collect();
        let dropped = pool.rebuild(ledger, 1, returned, |_| false);
        assert!(dropped.is_empty());
        assert_eq!(pool.len(), 5);
        // New admissions still meet the limits.
        assert!(matches!(
            pool.add(pay(ledger, "charlie", 0, 1)),
            Err(MempoolError::Full { max: 4 })
        ));
    }

    #[test]
    fn a_transaction_that_no_longer_applies_is_dropped_with_its_reason() {
        let chain = Genesis::dev().chain().unwrap();
        let ledger = chain.state();
        let mut pool = Mempool::new(ledger, 1, 100, 100);
        let spend = pay(ledger, "alice", 0, 999_000);
        let id = pool.add(spend).unwrap();
        // A new tip where alice's balance is gone (another transaction of
        // hers, with the same nonce, was mined): pretend by a ledger where
        // her nonce 0 is taken.
        let mut taken = ledger.clone();
        let mut pending = PendingState::new(&taken, 1);
        pending.admit(&pay(ledger, "alice", 0, 5)).unwrap();
        taken = pending.ledger().clone();
        let dropped = pool.rebuild(&taken, 2, Vec::new(), |_| false);
        assert_eq!(dropped, vec![id]);
        assert!(pool.is_empty());
        let why = pool.dropped(&id).unwrap();
        assert!(why.reason.contains("nonce"), "{}", why.reason);
        // Mined instead of dropped: not remembered as dropped.
        let mut pool = Mempool::new(ledger, 1, 100, 100);
        let id = pool.add(pay(ledger, "alice", 0, 5)).unwrap();
        assert!(pool.rebuild(&taken, 2, Vec::new(), |t| *t == id).is_empty());
        assert!(pool.dropped(&id).is_none());
    }
}

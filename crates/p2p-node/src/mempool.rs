//! The mempool: signed transactions waiting for a block.
//!
//! Admission goes through escrow's [`PendingState`]: a transaction enters
//! only if it applies to the best tip's ledger after every transaction
//! already pending (nonces in order, pending spends counted). The pool is
//! bounded in total and per account. When the best tip changes, the pool is
//! rebuilt against the new state: included transactions leave, and
//! transactions from blocks a reorg undid come back if they still apply.

use std::collections::HashMap;

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
}

impl Mempool {
    /// An empty pool over `ledger` (the best tip's state), for the block at
    /// `next_height`.
    pub fn new(ledger: &Ledger, next_height: u64, max: usize, max_per_account: usize) -> Mempool {
        Mempool {
            txs: Vec::new(),
            ids: HashMap::new(),
            per_account: HashMap::new(),
            state: PendingState::new(ledger, next_height),
            max,
            max_per_account,
        }
    }

    /// Adds `tx` if it applies after everything pending.
    ///
    /// # Errors
    ///
    /// [`MempoolError`] naming why not; the pool is unchanged then.
    pub fn add(&mut self, tx: SignedTx) -> Result<TxId, MempoolError> {
        let id = tx.id();
        if self.ids.contains_key(&id) {
            return Err(MempoolError::Duplicate(id));
        }
        if self.txs.len() >= self.max {
            return Err(MempoolError::Full { max: self.max });
        }
        let sender = tx.sender();
        if self.per_account.get(&sender).copied().unwrap_or(0) >= self.max_per_account {
            return Err(MempoolError::AccountFull {
                account: sender,
                max: self.max_per_account,
            });
        }
        self.state.admit(&tx)?;
        *self.per_account.entry(sender).or_insert(0) += 1;
        self.ids.insert(id, self.txs.len());
        self.txs.push(tx);
        Ok(id)
    }

    /// Rebuilds the pool over a new best state: `returned` (transactions of
    /// blocks a reorg undid, oldest first) and then the current pool are
    /// re-admitted in order; whatever no longer applies (included in the
    /// new chain, spent, nonce taken) is dropped. Returns how many were
    /// dropped.
    pub fn rebuild(&mut self, ledger: &Ledger, next_height: u64, returned: Vec<SignedTx>) -> usize {
        let old = std::mem::take(&mut self.txs);
        let offered = returned.len() + old.len();
        self.ids.clear();
        self.per_account.clear();
        self.state = PendingState::new(ledger, next_height);
        for tx in returned.into_iter().chain(old) {
            // Errors here are expected: included or conflicting transactions.
            let _ = self.add(tx);
        }
        offered - self.txs.len()
    }

    /// Pending transactions, in the order a block takes them.
    pub fn txs(&self) -> &[SignedTx] {
        &self.txs
    }

    /// A pending transaction by id.
    pub fn get(&self, id: &TxId) -> Option<&SignedTx> {
        self.ids.get(id).and_then(|&i| self.txs.get(i))
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
        let dropped = pool.rebuild(ledger, 1, vec![a0.clone()]);
        assert_eq!(dropped, 1);
        assert_eq!(pool.get(&a1.id()), Some(&a1));
        assert_eq!(pool.txs(), &[a0, a1][..]);
    }
}

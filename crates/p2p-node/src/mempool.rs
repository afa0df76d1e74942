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
//!
//! # Following the tip incrementally
//!
//! When the tip moves forward (no block undone), [`Mempool::extend`]
//! re-checks only what the new blocks can have changed, with the same
//! outcome as [`Mempool::rebuild`]. Each pending transaction *touches*
//! some entries of the state: its sender's account, a transfer's
//! recipient, the contract it creates or acts on and that contract's buyer
//! and seller (who may be paid). The entries the new blocks touched are
//! dirty; so is every entry of a contract transaction (its outcome depends
//! on the height, which moved); and dirtiness spreads through the pool:
//! every entry of a transaction that touches a dirty entry is dirty. The
//! transactions that touch only clean entries read and write exactly the
//! values they did before, so they stay, unchecked; the others are
//! re-admitted in pool order over the new tip, and the new pending state
//! is the old one with the dirty entries taken from that re-admission.

use std::collections::{HashMap, VecDeque};

use std::collections::HashSet;

use chain_core::TxId;
use escrow::{Address, AdmissionError, ContractId, Ledger, Payload, PendingState, SignedTx, Tx};

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

/// An entry of the state a transaction reads or writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Entry {
    /// A balance and nonce.
    Account(Address),
    /// A contract.
    Contract(ContractId),
}

/// What the pool knows of a pending transaction without hashing it again.
#[derive(Clone, Debug)]
struct Meta {
    id: TxId,
    sender: Address,
    /// The entries it touches (see the module docs).
    entries: Vec<Entry>,
    /// Whether it creates or acts on a contract: its outcome depends on
    /// the height.
    contract: bool,
}

impl Meta {
    /// The entries `tx` from `sender` touches; a contract's parties are
    /// read from `ledger` (where the contract is, if `tx` applied).
    fn of(tx: &SignedTx, id: TxId, sender: Address, ledger: &Ledger) -> Meta {
        let mut entries = vec![Entry::Account(sender)];
        let party = |entries: &mut Vec<Entry>, c: &ContractId| {
            entries.push(Entry::Contract(*c));
            if let Some(contract) = ledger.contract(c) {
                entries.push(Entry::Account(contract.buyer));
                entries.push(Entry::Account(contract.seller));
            }
        };
        let contract = match &tx.body.payload {
            Payload::Transfer { to, .. } => {
                entries.push(Entry::Account(*to));
                false
            }
            Payload::EscrowCreate { .. } => {
                entries.push(Entry::Contract(ContractId::from_tx(&id)));
                true
            }
            Payload::ConfirmDelivery { contract }
            | Payload::RaiseDispute { contract }
            | Payload::Resolve { contract, .. }
            | Payload::RefundBuyer { contract } => {
                party(&mut entries, contract);
                true
            }
        };
        Meta {
            id,
            sender,
            entries,
            contract,
        }
    }
}

/// Pending transactions in admission order (which keeps each sender's
/// nonces in order).
#[cfg_attr(test, derive(Clone))]
pub struct Mempool {
    txs: Vec<SignedTx>,
    /// Beside each of `txs`: its id, sender and entries.
    meta: Vec<Meta>,
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
            meta: Vec::new(),
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
        self.meta
            .push(Meta::of(&tx, id, sender, self.state.ledger()));
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
        self.meta.clear();
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

    /// Moves the pool to a new best state that extends the old one by
    /// blocks holding `mined` (their transactions, oldest block first; no
    /// block undone): the same pool, drops and reasons as
    /// [`Mempool::rebuild`] with nothing returned, but only the pending
    /// transactions whose entries the new blocks can have changed are
    /// re-checked (see the module docs). `included` is as for
    /// [`Mempool::rebuild`]. Returns the dropped ones.
    pub fn extend<'a>(
        &mut self,
        ledger: &Ledger,
        next_height: u64,
        mined: impl IntoIterator<Item = &'a Tx>,
        included: impl Fn(&TxId) -> bool,
    ) -> Vec<TxId> {
        self.changes += 1;
        // The entries the blocks changed.
        let mut queue: Vec<Entry> = Vec::new();
        for tx in mined {
            match tx {
                Tx::Coinbase { to, .. } => queue.push(Entry::Account(*to)),
                Tx::Signed(s) => {
                    let meta = Meta::of(s, s.id(), s.sender(), ledger);
                    queue.extend(meta.entries);
                }
                // Genesis kinds change the rules: start over.
                Tx::Network { .. } | Tx::Allocation { .. } => {
                    return self.rebuild(ledger, next_height, Vec::new(), included);
                }
            }
        }
        // Contract transactions depend on the height: their entries are
        // dirty whatever the blocks held.
        for m in self.meta.iter().filter(|m| m.contract) {
            queue.extend(m.entries.iter().copied());
        }
        // Dirtiness spreads through the pool's transactions.
        let mut by_entry: HashMap<Entry, Vec<usize>> = HashMap::new();
        for (i, m) in self.meta.iter().enumerate() {
            for e in &m.entries {
                by_entry.entry(*e).or_default().push(i);
            }
        }
        let mut dirty = vec![false; self.meta.len()];
        let mut dirty_entries: HashSet<Entry> = HashSet::new();
        while let Some(entry) = queue.pop() {
            if !dirty_entries.insert(entry) {
                continue;
            }
            for &i in by_entry.get(&entry).map_or(&[][..], Vec::as_slice) {
                if let (Some(d), Some(m)) = (dirty.get_mut(i), self.meta.get(i))
                    && !*d
                {
                    *d = true;
                    queue.extend(m.entries.iter().copied());
                }
            }
        }
        // The dirty transactions, re-admitted in order over the new tip;
        // the clean ones stay.
        let mut scratch = PendingState::new(ledger, next_height);
        let old_txs = std::mem::take(&mut self.txs);
        let old_meta = std::mem::take(&mut self.meta);
        let mut dropped = Vec::new();
        for ((tx, meta), dirty) in old_txs.into_iter().zip(old_meta).zip(dirty) {
            if dirty && let Err(e) = scratch.admit_verified(&tx) {
                if let Some(n) = self.per_account.get_mut(&meta.sender) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.per_account.remove(&meta.sender);
                    }
                }
                if !included(&meta.id) {
                    let reason = MempoolError::from(e).to_string();
                    self.remember_dropped(meta.id, tx, reason);
                    dropped.push(meta.id);
                }
                continue;
            }
            self.txs.push(tx);
            self.meta.push(meta);
        }
        self.ids = self
            .meta
            .iter()
            .enumerate()
            .map(|(i, m)| (m.id, i))
            .collect();
        // The pending state: the old one, with the dirty entries as the
        // re-admission left them (the clean ones are unchanged).
        let mut state = self.state.ledger().clone();
        let (mut accounts, mut contracts) = (Vec::new(), Vec::new());
        for e in dirty_entries {
            match e {
                Entry::Account(a) => accounts.push(a),
                Entry::Contract(c) => contracts.push(c),
            }
        }
        state.overlay(scratch.ledger(), accounts, contracts);
        self.state = PendingState::new(&state, next_height);
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
    use escrow::{Amount, Genesis, dev};

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

    /// A seeded stream of choices.
    struct Dice(rand_chacha::ChaCha8Rng);

    impl Dice {
        fn below(&mut self, n: u64) -> u64 {
            use rand_chacha::rand_core::Rng;
            self.0.next_u64() % n.max(1)
        }
        fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
            &items[self.below(items.len() as u64) as usize]
        }
        fn name(&mut self) -> &'static str {
            NAMES[self.below(NAMES.len() as u64) as usize]
        }
    }

    const NAMES: [&str; 6] = ["alice", "bob", "charlie", "dave", "eve", "ferdie"];

    /// A random transaction from a dev account: a transfer (small, or
    /// large enough to overspend), an escrow, or an action on a known
    /// contract by any of its parties; its nonce is the sender's next by
    /// `state`, now and then one past it.
    fn random_tx(
        dice: &mut Dice,
        state: &Ledger,
        height: u64,
        contracts: &[ContractId],
    ) -> SignedTx {
        let name = dice.name();
        let key = dev::keypair(name).unwrap();
        let mut nonce = state.nonce(&key.address());
        if dice.below(10) == 0 {
            nonce += 1;
        }
        let to = dev::address(dice.name()).unwrap();
        let payload = match dice.below(10) {
            0..=5 => Payload::Transfer {
                to,
                amount: Amount::new(if dice.below(4) == 0 {
                    300_000 + dice.below(400_000)
                } else {
                    1 + dice.below(1_000)
                }),
            },
            6 => Payload::EscrowCreate {
                seller: to,
                arbiter: dev::address(dice.name()).unwrap(),
                amount: Amount::new(1 + dice.below(500_000)),
                delivery_deadline: height + dice.below(4),
                dispute_window: dice.below(3),
            },
            _ if contracts.is_empty() => Payload::Transfer {
                to,
                amount: Amount::new(1),
            },
            _ => {
                let contract = *dice.pick(contracts);
                match dice.below(4) {
                    0 => Payload::ConfirmDelivery { contract },
                    1 => Payload::RaiseDispute { contract },
                    2 => Payload::Resolve {
                        contract,
                        to: *dice.pick(&[escrow::Party::Buyer, escrow::Party::Seller]),
                    },
                    _ => Payload::RefundBuyer { contract },
                }
            }
        };
        SignedTx::sign(&key, nonce, state.network(), payload)
    }

    fn assert_same(inc: &Mempool, full: &Mempool, dropped: (&[TxId], &[TxId]), what: &str) {
        assert_eq!(dropped.0, dropped.1, "{what}: the same drops");
        for id in dropped.0 {
            assert_eq!(inc.dropped(id), full.dropped(id), "{what}: the same reason");
        }
        assert_eq!(
            inc.txs(),
            full.txs(),
            "{what}: the same pool in the same order"
        );
        assert_eq!(inc.ids(), full.ids(), "{what}");
        assert_eq!(inc.per_account, full.per_account, "{what}");
        assert_eq!(
            inc.pending_ledger(),
            full.pending_ledger(),
            "{what}: the same pending state"
        );
        assert_eq!(inc.state.next_height(), full.state.next_height(), "{what}");
        let ids = |p: &Mempool| p.meta.iter().map(|m| m.id).collect::<Vec<_>>();
        assert_eq!(ids(inc), inc.ids(), "{what}: meta beside the txs");
    }

    /// Over random pools and random chains of blocks (pool transactions
    /// mined or not, conflicting ones from the same senders, payments to
    /// pending senders, contract actions whose outcome turns on the
    /// height), following the tip with `extend` gives exactly what a full
    /// `rebuild` gives.
    #[test]
    fn extending_is_the_same_as_rebuilding() {
        use chain_core::{BlockContext, BlockHash, StateMachine};
        use rand_chacha::rand_core::SeedableRng;

        let mut drops = 0;
        let mut kept_unchecked = 0;
        for seed in 0..12u64 {
            let mut dice = Dice(rand_chacha::ChaCha8Rng::seed_from_u64(seed));
            let mut ledger = Genesis::dev().chain().unwrap().state().clone();
            let mut height = 0;
            let mut inc = Mempool::new(&ledger, 1, 1_000, 1_000);
            let mut contracts: Vec<ContractId> = Vec::new();
            let mut mined: HashSet<TxId> = HashSet::new();
            for round in 0..10 {
                // New transactions, admitted (or not) alike.
                let mut full = inc.clone();
                for _ in 0..(4 + dice.below(12)) {
                    let tx = random_tx(&mut dice, inc.pending_ledger(), height + 1, &contracts);
                    let (a, b) = (inc.add(tx.clone()), full.add(tx.clone()));
                    assert_eq!(a, b);
                    if a.is_ok() && matches!(tx.body.payload, Payload::EscrowCreate { .. }) {
                        contracts.push(ContractId::from_tx(&tx.id()));
                    }
                }
                // One or two blocks: some pool transactions in order, and
                // others made against the chain (conflicting nonces,
                // payments, contract actions).
                let mut block_txs: Vec<Tx> = Vec::new();
                for _ in 0..(1 + dice.below(2)) {
                    height += 1;
                    let mut filter = PendingState::new(&ledger, height);
                    let mut txs = vec![Tx::Coinbase {
                        to: dev::address(dice.name()).unwrap(),
                        height,
                    }];
                    let pool: Vec<SignedTx> = inc.txs().to_vec();
                    for tx in pool {
                        if dice.below(3) == 0 {
                            let fresh = random_tx(&mut dice, filter.ledger(), height, &contracts);
                            if filter.admit_verified(&fresh).is_ok() {
                                if matches!(fresh.body.payload, Payload::EscrowCreate { .. }) {
                                    contracts.push(ContractId::from_tx(&fresh.id()));
                                }
                                txs.push(Tx::Signed(fresh));
                            }
                        }
                        if dice.below(2) == 0 && filter.admit_verified(&tx).is_ok() {
                            txs.push(Tx::Signed(tx));
                        }
                    }
                    let ctx = BlockContext {
                        hash: BlockHash::from_bytes([height as u8; 32]),
                        height,
                        timestamp_ms: height * 1_000,
                    };
                    ledger.apply_block(&ctx, &txs).unwrap();
                    mined.extend(txs.iter().map(chain_core::Transaction::id));
                    block_txs.extend(txs);
                }
                let before = inc.len();
                let included = |id: &TxId| mined.contains(id);
                let a = inc.extend(&ledger, height + 1, &block_txs, included);
                let b = full.rebuild(&ledger, height + 1, Vec::new(), included);
                assert_same(&inc, &full, (&a, &b), &format!("seed {seed} round {round}"));
                drops += a.len();
                kept_unchecked += before.min(inc.len());
            }
        }
        assert!(drops > 20, "the scenarios drop transactions ({drops})");
        assert!(kept_unchecked > 100, "and keep some ({kept_unchecked})");
    }

    #[test]
    fn extending_rechecks_only_what_the_block_touched() {
        let chain = Genesis::dev().chain().unwrap();
        let ledger = chain.state();
        let mut pool = Mempool::new(ledger, 1, 100, 100);
        let alice = pay(ledger, "alice", 0, 1);
        let charlie = pay(ledger, "charlie", 0, 1);
        pool.add(alice.clone()).unwrap();
        pool.add(charlie.clone()).unwrap();
        // A block with another transaction of dave's, to eve: neither
        // alice, nor charlie, nor bob (their payee) is touched.
        let mut next = PendingState::new(ledger, 1);
        let dave = SignedTx::sign(
            &dev::keypair("dave").unwrap(),
            0,
            ledger.network(),
            Payload::Transfer {
                to: dev::address("eve").unwrap(),
                amount: Amount::new(5),
            },
        );
        next.admit(&dave).unwrap();
        let mined = [
            Tx::Coinbase {
                to: dev::address("ferdie").unwrap(),
                height: 1,
            },
            Tx::Signed(dave),
        ];
        let tip = next.ledger().clone();
        let dropped = pool.extend(&tip, 2, &mined, |_| false);
        assert!(dropped.is_empty());
        assert_eq!(pool.txs(), &[alice.clone(), charlie.clone()][..]);
        assert_eq!(
            pool.pending_ledger().balance(&dev::address("eve").unwrap()),
            tip.balance(&dev::address("eve").unwrap()),
            "the block's changes are in the pending state"
        );
        // A block that mines alice's transaction: it leaves, not dropped.
        let mut next = PendingState::new(&tip, 2);
        next.admit(&alice).unwrap();
        let mined = [
            Tx::Coinbase {
                to: dev::address("ferdie").unwrap(),
                height: 2,
            },
            Tx::Signed(alice.clone()),
        ];
        let dropped = pool.extend(next.ledger(), 3, &mined, |id| *id == alice.id());
        assert!(dropped.is_empty());
        assert_eq!(pool.txs(), &[charlie][..]);
        assert!(pool.dropped(&alice.id()).is_none());
        assert_eq!(pool.ids().len(), 1);
    }
}

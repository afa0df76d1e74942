//! The mempool: signed transactions waiting for a block.
//!
//! Admission goes through escrow's [`PendingState`]: a transaction enters
//! only if it applies to the best tip's ledger after every transaction
//! already pending (nonces in order, pending spends counted). The pool is
//! bounded in total and per account. When the best tip changes, the pool is
//! moved to the new state: included transactions leave, and transactions
//! from blocks a reorg undid come back if they still apply. A reorg
//! rebuilds the pool ([`Mempool::rebuild`]); a tip that only moves forward
//! re-checks just what the new blocks touched ([`Mempool::extend`]), with
//! the same outcome.
//!
//! # The pool keeps its word
//!
//! The limits apply to admission only. A transaction the node accepted
//! stays until it is mined, no longer applies (its nonce was taken by
//! another transaction, its funds spent, a contract moved on), is
//! replaced by one that pays more, or is evicted from a full pool by
//! better-paying ones (`fees.rs`); then it is *dropped*, and the pool
//! remembers why (the last [`MAX_DROPPED`] drops), so `GET /txs/{id}` can
//! say so. Nothing expires by age. A rebuild after a
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
//!
//! # What else the pool owns
//!
//! - The orphan transactions ([`orphans`]): gossiped transactions that came
//!   before an earlier nonce of their sender, admitted once the gap closes.
//!   [`Mempool::offer`] is the one entry for a transaction from anywhere:
//!   it admits, keeps a peer's nonce-gap transaction waiting, and admits
//!   the waiting ones an admission let in.
//! - The trickle queue ([`announce`]): admitted ids waiting to be
//!   announced to each peer.
//! - Following the chain (`follow.rs`): [`Mempool::follow_tip`] moves the
//!   pool to a new best tip and names the undone blocks' transactions to
//!   announce again; [`Mempool::reload`] takes back a saved pool.

pub mod announce;
pub mod estimate;
mod fees;
mod follow;
pub mod orphans;
mod outcome;
pub mod policy;
mod select;
#[cfg(test)]
mod test_txs;
mod touch;
mod view;

use std::collections::{HashMap, HashSet, VecDeque};

use chain_core::TxId;
use escrow::{
    Address, AdmissionError, FeeRate, Ledger, LedgerError, PendingState, SigCheck, SignedTx, Tx,
};
use tokio::time::Instant;

use announce::Announcements;
use orphans::{OrphanPool, PeerId, SenderState};
use policy::{FeePolicy, RollingMin};
use touch::{Entry, Meta};

pub use outcome::{Dropped, MempoolError, Offered};
pub use view::PoolView;

/// How many of the latest dropped transactions a compact block is also
/// rebuilt from (Bitcoin Core's `-blockreconstructionextratxn` default).
pub const EXTRA_CANDIDATES: usize = 100;

/// How many dropped transactions are remembered with their reason.
pub const MAX_DROPPED: usize = 10_000;

/// Pending transactions in admission order (which keeps each sender's
/// nonces in order), with the orphan transactions waiting for an earlier
/// nonce and the trickle queue of announcements.
#[derive(Clone)]
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
    dropped: imbl::HashMap<TxId, Dropped>,
    dropped_order: VecDeque<TxId>,
    /// How many times the pool changed (see [`Mempool::changes`]).
    changes: u64,
    /// What readers are shown ([`Mempool::view`]).
    view: std::cell::RefCell<view::Kept>,
    /// Peers' transactions waiting for an earlier nonce of their sender.
    orphans: OrphanPool,
    /// Admitted ids waiting to be announced to each peer.
    announcements: Announcements,
    /// The bytes of `txs`.
    bytes: usize,
    /// What fees the pool asks, and its byte bound.
    policy: FeePolicy,
    /// The minimum fee rate raised by evictions.
    rolling: RollingMin,
    /// The best tip's state, which the pending state starts from.
    base: Ledger,
    /// The two cheapest senders' chains as of change number `.0` (see
    /// `fees.rs`, `cheapest_chains`).
    cheapest: std::cell::Cell<Option<(u64, fees::Cheapest)>>,
    /// Offered transactions admitted (with the waiting ones they let in),
    /// and refused by code, since the node started: for the metrics.
    admitted: u64,
    refused: std::collections::BTreeMap<&'static str, u64>,
}

impl Mempool {
    /// An empty pool over `ledger` (the best tip's state), for the block at
    /// `next_height`.
    pub fn new(ledger: &Ledger, next_height: u64, max: usize, max_per_account: usize) -> Mempool {
        Mempool {
            changes: 0,
            view: std::cell::RefCell::default(),
            txs: Vec::new(),
            meta: Vec::new(),
            ids: HashMap::new(),
            per_account: HashMap::new(),
            state: PendingState::new(ledger, next_height),
            max,
            max_per_account,
            dropped: imbl::HashMap::new(),
            dropped_order: VecDeque::new(),
            orphans: OrphanPool::new(),
            announcements: Announcements::default(),
            bytes: 0,
            policy: FeePolicy::default(),
            rolling: RollingMin::default(),
            base: ledger.clone(),
            cheapest: std::cell::Cell::new(None),
            admitted: 0,
            refused: std::collections::BTreeMap::new(),
        }
    }

    /// Adds `tx` if it applies after everything pending; `check` is its
    /// signature's verdict if reached before, on another thread
    /// ([`escrow::SigCache::precheck`]): the same results without the
    /// signature check's cost here. Waiting transactions stay waiting
    /// (see [`Mempool::offer`]).
    ///
    /// # Errors
    ///
    /// [`MempoolError`] naming why not; the pool is unchanged then.
    pub fn add(&mut self, tx: SignedTx, check: Option<SigCheck>) -> Result<TxId, MempoolError> {
        self.add_at(tx, check, Instant::now())
    }

    /// [`Mempool::add`] at `now` (for the pool's minimum fee rate, which
    /// decays with time).
    ///
    /// # Errors
    ///
    /// As [`Mempool::add`].
    pub fn add_at(
        &mut self,
        tx: SignedTx,
        check: Option<SigCheck>,
        now: Instant,
    ) -> Result<TxId, MempoolError> {
        self.insert(tx, true, check, now)
    }

    /// Offers `tx` (with its signature's verdict, if reached), from peer
    /// `from` or, if `None`, from this node's own user: admitted if it
    /// applies, and then the sender's waiting transactions it lets in; a
    /// peer's transaction whose nonce is ahead of its sender's next waits
    /// for its predecessors if the orphan pool's rules let it (a user's is
    /// refused: the user is told at once). `now` dates a kept orphan.
    pub fn offer(
        &mut self,
        tx: SignedTx,
        check: Option<SigCheck>,
        from: Option<PeerId>,
        now: Instant,
    ) -> Offered {
        let sender = tx.sender();
        // Kept with the transaction if it has to wait for an earlier
        // nonce, so that its admission then need not check it again.
        let kept = from.map(|_| (tx.clone(), check.clone()));
        match self.add_at(tx, check, now) {
            Ok(id) => {
                let freed = self.admit_waiting_of(sender, now);
                self.admitted += 1 + freed.len() as u64;
                Offered::Added { id, freed }
            }
            Err(e) => {
                let gap = match &e {
                    MempoolError::Invalid(AdmissionError::Invalid(LedgerError::BadNonce {
                        expected,
                        got,
                        ..
                    })) if got > expected => Some(*expected),
                    _ => None,
                };
                let (Some(next_nonce), Some(peer), Some((tx, check))) = (gap, from, kept) else {
                    *self.refused.entry(e.code()).or_insert(0) += 1;
                    return Offered::Refused(e);
                };
                let state = SenderState {
                    next_nonce,
                    funded: !self.pending_ledger().balance(&sender).is_zero()
                        || self.pending_of(&sender) > 0,
                };
                match self.orphans.offer(tx, check, peer, state, now) {
                    Ok(evicted) => Offered::Waiting { evicted },
                    Err(why) => Offered::NotKept(why),
                }
            }
        }
    }

    /// Admits every sender's waiting transactions whose earlier nonces are
    /// now pending (after a new tip), and forgets those a block passed.
    /// Returns the admitted ids, in admission order.
    pub fn admit_waiting(&mut self) -> Vec<TxId> {
        let mut ids = Vec::new();
        let now = Instant::now();
        for sender in self.orphans.senders() {
            ids.extend(self.admit_waiting_of(sender, now));
        }
        ids
    }

    /// Admits `sender`'s waiting transactions, in nonce order, as long as
    /// the next one waits; returns their ids.
    fn admit_waiting_of(&mut self, sender: Address, now: Instant) -> Vec<TxId> {
        let mut ids = Vec::new();
        loop {
            let next = self.pending_ledger().nonce(&sender);
            let Some((tx, check)) = self.orphans.take_next(&sender, next) else {
                return ids;
            };
            let id = tx.id();
            match self.add_at(tx, check, now) {
                Ok(id) => ids.push(id),
                Err(e) => {
                    tracing::debug!(%id, "waiting transaction not pooled: {e}");
                    return ids;
                }
            }
        }
    }

    /// How many offered transactions were admitted (with those they let
    /// in), and how many were refused, by code ([`MempoolError::code`]).
    pub fn admissions(&self) -> (u64, &std::collections::BTreeMap<&'static str, u64>) {
        (self.admitted, &self.refused)
    }

    /// Whether `id` is pending or waits for an earlier nonce: an announced
    /// id the pool knows is not asked for.
    pub fn knows(&self, id: &TxId) -> bool {
        self.contains(id) || self.orphans.contains_id(id)
    }

    /// The orphan transactions waiting for an earlier nonce.
    pub fn orphans(&self) -> &OrphanPool {
        &self.orphans
    }

    /// Drops the orphans past their expiry at `now`; returns how many.
    pub fn expire_orphans(&mut self, now: Instant) -> usize {
        self.orphans.expire(now)
    }

    /// Drops the orphans that came from `peer` (it disconnected); returns
    /// how many.
    pub fn forget_peer(&mut self, peer: PeerId) -> usize {
        self.orphans.forget_peer(peer)
    }

    /// Queues `id` to be announced to each of `peers` (those the peer
    /// table says do not know it), at `now`.
    pub fn queue_announcement(
        &mut self,
        peers: impl IntoIterator<Item = PeerId>,
        id: TxId,
        now: Instant,
    ) {
        self.announcements.queue(peers, id, now);
    }

    /// When the queued announcements are due, if any are queued.
    pub fn announcements_due(&self) -> Option<Instant> {
        self.announcements.due()
    }

    /// The queued announcements if they are due at `now` (else none), by
    /// peer, less the ids no longer pending (mined or dropped meanwhile:
    /// not worth the peer's request).
    pub fn take_due_announcements(&mut self, now: Instant) -> Vec<(PeerId, Vec<TxId>)> {
        let mut due = self.announcements.take_due(now);
        for (_, ids) in &mut due {
            ids.retain(|id| self.ids.contains_key(id));
        }
        due
    }

    /// Adds `tx`, with the pool's limits, fee policy and a signature check
    /// (a new transaction, at `now`), or without them (one re-admitted by
    /// a rebuild, whose signature was verified when it first entered the
    /// pool or when its block was validated).
    fn insert(
        &mut self,
        tx: SignedTx,
        new: bool,
        check: Option<escrow::SigCheck>,
        now: Instant,
    ) -> Result<TxId, MempoolError> {
        let id = tx.id();
        if self.ids.contains_key(&id) {
            return Err(MempoolError::Duplicate(id));
        }
        let sender = tx.sender();
        let mut victims = (Vec::new(), FeeRate::ZERO);
        if new {
            self.check_fee(&tx, now)?;
            if let Some(old) = self.position_of_nonce(&sender, tx.body.nonce) {
                return self.replace(old, tx, check);
            }
            if self.per_account.get(&sender).copied().unwrap_or(0) >= self.max_per_account {
                return Err(MempoolError::AccountFull {
                    account: sender,
                    max: self.max_per_account,
                });
            }
            victims = self.victims_for(sender, tx.package())?;
        }
        if let (true, Some(check)) = (new, check) {
            self.state.admit_prechecked(&tx, check)?;
        } else if new {
            self.state.admit(&tx)?;
        } else {
            self.state.admit_verified(&tx)?;
        }
        self.forget_dropped(&id);
        *self.per_account.entry(sender).or_insert(0) += 1;
        self.ids.insert(id, self.txs.len());
        let meta = Meta::of(&tx, id, sender, self.state.ledger());
        self.bytes += usize::try_from(meta.package.size).unwrap_or(0);
        self.meta.push(meta);
        self.txs.push(tx);
        self.changes += 1;
        if let (Some(tx), Some(m)) = (self.txs.last(), self.meta.last()) {
            self.view
                .get_mut()
                .admitted(self.changes, id, tx, m.package);
        }
        if !victims.0.is_empty() {
            self.evict(&victims.0, victims.1, now);
            if !self.contains(&id) {
                // It needed what was evicted (another sender's transfer).
                return Err(MempoolError::Full { max: self.max });
            }
        }
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
        self.bytes = 0;
        self.base = ledger.clone();
        self.state = PendingState::new(ledger, next_height);
        let mut dropped = Vec::new();
        let now = Instant::now();
        for tx in returned.into_iter().chain(old) {
            let id = tx.id();
            match self.insert(tx.clone(), false, None, now) {
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
        self.base = ledger.clone();
        for ((tx, meta), dirty) in old_txs.into_iter().zip(old_meta).zip(dirty) {
            if dirty && let Err(e) = scratch.admit_verified(&tx) {
                self.bytes = self
                    .bytes
                    .saturating_sub(usize::try_from(meta.package.size).unwrap_or(0));
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

    /// What readers see of the pool, as it is now: O(1), or O(pool) once
    /// after a change other than an admission.
    pub fn view(&self) -> PoolView {
        self.view.borrow_mut().read(view::Source {
            changes: self.changes,
            txs: &self.txs,
            packages: self.meta.iter().map(|m| m.package),
            ids: self.ids.iter(),
            dropped: &self.dropped,
            max_bytes: self.policy.max_bytes,
        })
    }

    /// Why an accepted transaction was let go, if it was (and is still
    /// remembered).
    pub fn dropped(&self, id: &TxId) -> Option<&Dropped> {
        self.dropped.get(id)
    }

    /// The ids of the dropped transactions remembered (in no order).
    pub fn dropped_ids(&self) -> impl Iterator<Item = &TxId> {
        self.dropped.keys()
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

    /// Pending transactions in admission order: each sender's nonces in
    /// order, and each valid after those before it (a block takes them by
    /// fee rate instead: [`Mempool::select`]).
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

    /// The pending and the orphan transactions, and the last
    /// [`EXTRA_CANDIDATES`] dropped ones, with their ids, in no particular
    /// order: what a compact block is rebuilt from.
    pub fn candidates(&self) -> impl Iterator<Item = (TxId, &SignedTx)> {
        let pending = self
            .ids
            .iter()
            .filter_map(|(id, &i)| self.txs.get(i).map(|tx| (*id, tx)));
        let orphans = self.orphans.txs().map(|tx| (tx.id(), tx));
        let dropped = self.dropped_order.iter().rev().take(EXTRA_CANDIDATES);
        let dropped = dropped.filter_map(|id| self.dropped.get(id).map(|d| (*id, &d.tx)));
        pending.chain(orphans).chain(dropped)
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

    /// How many of `sender`'s transactions are pending.
    pub fn pending_of(&self, sender: &Address) -> usize {
        self.per_account.get(sender).copied().unwrap_or(0)
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
mod tests;

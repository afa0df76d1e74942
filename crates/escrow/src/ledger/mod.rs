//! The ledger: balances, nonces and contracts, driven by blocks.
//!
//! [`Ledger`] implements chain-core's [`StateMachine`]: `apply_block` checks
//! every signature of the block (batch verification), then applies the
//! transactions in order, recording the previous value of everything it
//! touches. If a transaction is refused, the record is played back and the
//! ledger is exactly as before: all or nothing. The same record is the
//! block's undo record for a reorg.
//!
//! # Invariant
//!
//! The sum of all balances plus the funds held in contracts that are not
//! final equals [`Ledger::issued`]: the genesis allocations plus every
//! coinbase reward. Nothing else creates or destroys coins: a fee moves
//! from its sender to the block's miner (the coinbase's address).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use chain_core::{BlockContext, BlockHash, ChainParams, StateMachine, TxId};

use crate::account::Address;
use crate::amount::Amount;
use crate::contract::{Contract, ContractId};
use crate::signature::cache::SigCache;
use crate::signature::{self, Item, SignatureError, Signed};
use crate::tx::{SignedTx, Tx};

/// The maps of a ledger: persistent (imbl), so a clone shares every node
/// with the original and costs O(1); a change copies only the path to
/// the entry it changes.
pub type Map<K, V> = imbl::OrdMap<K, V>;

mod apply;
mod genesis_state;
mod rules;
pub mod undo_codec;

pub use rules::{LedgerError, VerifyMode};

/// One change to the ledger, with the value before it: enough to undo it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Change {
    Balance(Address, Option<Amount>),
    Nonce(Address, Option<u64>),
    Contract(ContractId, Option<Box<Contract>>),
    Issued(Amount),
    Reward(Amount),
    Params(Option<Box<ChainParams>>),
}

/// What [`Ledger::undo_block`] needs: the changes a block made, oldest
/// first.
///
/// It is serializable (serde; the node stores it with postcard beside its
/// block), so a restarted node can still undo the blocks it applied.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Undo(Vec<Change>);

/// Balances, nonces and contracts at one point of the chain.
///
/// Cloning is O(1): the maps are persistent and share their nodes until
/// one side changes them, so the node can hand a snapshot to readers (and
/// the mempool its own copy) on every change.
///
/// It is serializable (serde), so the node can store a snapshot and
/// restart from it: the consensus state is encoded, while how signatures
/// are checked (the [`VerifyMode`] and the [`SigCache`]) is a property of
/// the process, not of the state, and is not: a decoded ledger has
/// [`Ledger::new`]'s defaults. Equality likewise compares the consensus
/// state only.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ledger {
    network: BlockHash,
    reward: Amount,
    params: Option<Box<ChainParams>>,
    balances: Map<Address, Amount>,
    nonces: Map<Address, u64>,
    contracts: Map<ContractId, Contract>,
    issued: Amount,
    #[serde(skip, default = "VerifyMode::default_for_machine")]
    verify: VerifyMode,
    /// Signatures known to pass the rule; shared by the ledger's clones.
    #[serde(skip, default = "shared_sig_cache")]
    sig_cache: Option<Arc<SigCache>>,
}

/// The cache a new or decoded ledger uses: the process's shared one.
fn shared_sig_cache() -> Option<Arc<SigCache>> {
    Some(SigCache::shared())
}

impl Ledger {
    /// An empty ledger for the network with this id (the genesis hash). The
    /// genesis block's transactions set the reward and the balances.
    pub fn new(network: BlockHash) -> Ledger {
        Ledger {
            network,
            reward: Amount::ZERO,
            params: None,
            balances: Map::new(),
            nonces: Map::new(),
            contracts: Map::new(),
            issued: Amount::ZERO,
            verify: VerifyMode::default_for_machine(),
            sig_cache: shared_sig_cache(),
        }
    }

    /// Uses `cache` for signature checks: `apply_block` skips the checks
    /// of signatures it remembers passing, and admissions through a
    /// [`crate::PendingState`] made from this ledger (or its clones)
    /// remember theirs. A new ledger uses [`SigCache::shared`]. The verdict
    /// is the same with any cache or none.
    pub fn set_sig_cache(&mut self, cache: Arc<SigCache>) {
        self.sig_cache = Some(cache);
    }

    /// Checks every signature by the rule, remembering nothing.
    pub fn remove_sig_cache(&mut self) {
        self.sig_cache = None;
    }

    /// The signature cache in use, if any.
    pub fn sig_cache(&self) -> Option<&Arc<SigCache>> {
        self.sig_cache.as_ref()
    }

    /// The signature rule for one transaction, through the cache (a
    /// success is remembered).
    /// The signature rule through the cache, remembering a new success only
    /// when the caller calls [`Ledger::remember_signature`] (admission,
    /// once the transaction is admitted).
    pub(crate) fn check_signature_unremembered(
        &self,
        tx: &SignedTx,
    ) -> Result<Option<crate::signature::cache::Verified>, SignatureError> {
        match &self.sig_cache {
            Some(cache) => cache.check_unremembered(tx),
            None => tx.check_signature().map(|()| None),
        }
    }

    /// The verdict of a precheck made by this ledger's cache for `tx`
    /// (see [`SigCache::take_precheck`]); `None` without a cache, or if
    /// the check was made by another cache or for another transaction.
    pub(crate) fn take_precheck(
        &self,
        tx: &SignedTx,
        check: crate::signature::cache::SigCheck,
    ) -> Option<Result<Option<crate::signature::cache::Verified>, SignatureError>> {
        self.sig_cache.as_ref()?.take_precheck(tx, check)
    }

    /// Remembers a success of [`Ledger::check_signature_unremembered`].
    pub(crate) fn remember_signature(&self, verified: Option<crate::signature::cache::Verified>) {
        if let (Some(cache), Some(v)) = (&self.sig_cache, verified) {
            cache.remember(v);
        }
    }

    /// Chooses how signatures are checked (batch across all cores by default).
    pub fn set_verify_mode(&mut self, mode: VerifyMode) {
        self.verify = mode;
    }

    /// How signatures are checked.
    pub fn verify_mode(&self) -> VerifyMode {
        self.verify
    }

    /// The network id.
    pub fn network(&self) -> BlockHash {
        self.network
    }

    /// The coinbase reward.
    pub fn coinbase_reward(&self) -> Amount {
        self.reward
    }

    /// An account's balance (zero if never seen).
    pub fn balance(&self, account: &Address) -> Amount {
        self.balances.get(account).copied().unwrap_or_default()
    }

    /// An account's next nonce.
    pub fn nonce(&self, account: &Address) -> u64 {
        self.nonces.get(account).copied().unwrap_or(0)
    }

    /// Every account with a balance, by address.
    pub fn balances(&self) -> &Map<Address, Amount> {
        &self.balances
    }

    /// A contract by id.
    pub fn contract(&self, id: &ContractId) -> Option<&Contract> {
        self.contracts.get(id)
    }

    /// Every contract, by id.
    pub fn contracts(&self) -> &Map<ContractId, Contract> {
        &self.contracts
    }

    /// Takes from `other` the balance and nonce of each of `accounts`, each
    /// of `contracts` (or their absence), and its network, reward, rules
    /// and issued coins; every other entry stays as it is.
    ///
    /// For a mempool that moves its pending state to a new tip: when only
    /// these entries can differ between the old pending state and the new
    /// one (`other`, which holds them right), the result is the new
    /// pending state at the cost of the entries named. It is not a
    /// consensus operation: the caller answers for the invariants.
    pub fn overlay(
        &mut self,
        other: &Ledger,
        accounts: impl IntoIterator<Item = Address>,
        contracts: impl IntoIterator<Item = ContractId>,
    ) {
        fn copy<K: Ord + Clone, V: Clone>(to: &mut Map<K, V>, from: &Map<K, V>, key: K) {
            match from.get(&key) {
                Some(v) => {
                    to.insert(key, v.clone());
                }
                None => {
                    to.remove(&key);
                }
            }
        }
        for a in accounts {
            copy(&mut self.balances, &other.balances, a);
            copy(&mut self.nonces, &other.nonces, a);
        }
        for c in contracts {
            copy(&mut self.contracts, &other.contracts, c);
        }
        self.network = other.network;
        self.reward = other.reward;
        self.params.clone_from(&other.params);
        self.issued = other.issued;
    }

    /// All coins ever created: genesis allocations plus coinbase rewards.
    pub fn issued(&self) -> Amount {
        self.issued
    }

    /// The sum of balances plus funds locked in contracts that are not
    /// final, or `None` on overflow. Equals [`Ledger::issued`] always.
    pub fn total_supply(&self) -> Option<Amount> {
        let held = self
            .contracts
            .values()
            .filter(|c| !c.state.is_final())
            .try_fold(Amount::ZERO, |acc, c| acc.checked_add(c.amount))?;
        self.balances
            .values()
            .try_fold(held, |acc, b| acc.checked_add(*b))
    }

    fn set_balance(&mut self, account: Address, value: Amount, undo: &mut Vec<Change>) {
        let old = if value.is_zero() {
            self.balances.remove(&account)
        } else {
            self.balances.insert(account, value)
        };
        undo.push(Change::Balance(account, old));
    }

    fn debit(
        &mut self,
        account: Address,
        amount: Amount,
        undo: &mut Vec<Change>,
    ) -> Result<(), LedgerError> {
        let balance = self.balance(&account);
        let left = balance
            .checked_sub(amount)
            .ok_or(LedgerError::InsufficientFunds {
                account,
                balance,
                needed: amount,
            })?;
        self.set_balance(account, left, undo);
        Ok(())
    }

    fn credit(
        &mut self,
        account: Address,
        amount: Amount,
        undo: &mut Vec<Change>,
    ) -> Result<(), LedgerError> {
        let total = self
            .balance(&account)
            .checked_add(amount)
            .ok_or(LedgerError::AmountOverflow { account })?;
        self.set_balance(account, total, undo);
        Ok(())
    }

    fn issue(
        &mut self,
        amount: Amount,
        to: Address,
        undo: &mut Vec<Change>,
    ) -> Result<(), LedgerError> {
        let issued = self
            .issued
            .checked_add(amount)
            .ok_or(LedgerError::AmountOverflow { account: to })?;
        self.credit(to, amount, undo)?;
        undo.push(Change::Issued(self.issued));
        self.issued = issued;
        Ok(())
    }

    /// Checks a signed transaction's network and nonce (not its signature).
    fn check_envelope(&self, tx: &SignedTx, id: TxId, sender: &Address) -> Result<(), LedgerError> {
        if tx.body.network != self.network {
            return Err(LedgerError::WrongNetwork {
                tx: id,
                got: tx.body.network,
                expected: self.network,
            });
        }
        let expected = self.nonce(sender);
        if tx.body.nonce != expected {
            return Err(LedgerError::BadNonce {
                tx: id,
                expected,
                got: tx.body.nonce,
            });
        }
        Ok(())
    }

    /// Undoes the changes recorded after `mark`, leaving those before.
    pub(crate) fn rollback_to(&mut self, changes: &mut Vec<Change>, mark: usize) {
        let tail = changes.split_off(mark.min(changes.len()));
        self.rollback(tail);
    }

    fn rollback(&mut self, changes: Vec<Change>) {
        for change in changes.into_iter().rev() {
            match change {
                Change::Balance(a, Some(v)) => {
                    self.balances.insert(a, v);
                }
                Change::Balance(a, None) => {
                    self.balances.remove(&a);
                }
                Change::Nonce(a, Some(v)) => {
                    self.nonces.insert(a, v);
                }
                Change::Nonce(a, None) => {
                    self.nonces.remove(&a);
                }
                Change::Contract(id, Some(c)) => {
                    self.contracts.insert(id, *c);
                }
                Change::Contract(id, None) => {
                    self.contracts.remove(&id);
                }
                Change::Issued(v) => self.issued = v,
                Change::Reward(v) => self.reward = v,
                Change::Params(p) => self.params = p,
            }
        }
    }

    /// Checks the signatures of `items` (the verify mode's way) and applies
    /// `txs` at `height`: the state changes only if every signature
    /// passes. A bad signature is the index in `items` of the first one
    /// and why (the state unchanged); otherwise, what applying gave.
    fn check_and_apply<T: Signed>(
        &mut self,
        items: &[T],
        txs: &[Tx],
        height: u64,
    ) -> Result<Result<Undo, LedgerError>, (usize, SignatureError)> {
        match self.verify {
            VerifyMode::Single => {
                // Signatures first, one by one; the state only if they pass.
                items
                    .iter()
                    .enumerate()
                    .try_for_each(|(i, item)| item.check().map_err(|e| (i, e)))?;
                Ok(self.apply_txs(txs, height))
            }
            VerifyMode::Batch { threads } => {
                // The state is applied on this thread while the pool checks
                // the signatures: applying is sequential, so overlapping it
                // with the checks is what lets a block use every core. The
                // outcome is as if the signatures came first: a bad one
                // rolls the state back and is the block's error.
                let (verdict, applied) =
                    signature::verify_alongside(items, threads, || self.apply_txs(txs, height));
                match (verdict, applied) {
                    (Ok(()), Some(applied)) => Ok(applied),
                    // The work runs whenever the checks pass; were it
                    // skipped, apply now.
                    (Ok(()), None) => Ok(self.apply_txs(txs, height)),
                    (Err(bad), applied) => {
                        if let Some(Ok(undo)) = applied {
                            self.rollback(undo.0);
                        }
                        Err(bad)
                    }
                }
            }
        }
    }

    /// Applies a block's transactions in order, signatures not checked:
    /// all or nothing.
    fn apply_txs(&mut self, txs: &[Tx], height: u64) -> Result<Undo, LedgerError> {
        let mut changes = Vec::new();
        // Fees go to the coinbase's address (a block without a coinbase
        // is refused before any signed transaction applies).
        let miner = match txs.first() {
            Some(Tx::Coinbase { to, .. }) => Some(*to),
            _ => None,
        };
        for (index, tx) in txs.iter().enumerate() {
            if let Err(e) = self.apply_tx(tx, index, height, miner, &mut changes) {
                self.rollback(changes);
                return Err(e);
            }
        }
        Ok(Undo(changes))
    }
}

/// The error for the signed transaction at `index` of a block.
fn bad_signature(signed: &[&SignedTx], index: usize, reason: SignatureError) -> LedgerError {
    LedgerError::BadSignature {
        tx: signed.get(index).map(|tx| tx.id()).unwrap_or_default(),
        reason,
    }
}

impl StateMachine for Ledger {
    type Tx = Tx;
    type Undo = Undo;
    type Error = LedgerError;

    fn apply_block(&mut self, ctx: &BlockContext, txs: &[Tx]) -> Result<Undo, LedgerError> {
        if ctx.height == 0 {
            return self.apply_genesis(ctx, txs);
        }
        self.apply_any(ctx, txs)
    }

    fn undo_block(&mut self, undo: Undo) {
        self.rollback(undo.0);
    }
}

impl Ledger {
    /// [`StateMachine::apply_block`] itself, for any block.
    fn apply_any(&mut self, ctx: &BlockContext, txs: &[Tx]) -> Result<Undo, LedgerError> {
        if ctx.height > 0 && !matches!(txs.first(), Some(Tx::Coinbase { .. })) {
            return Err(LedgerError::MissingCoinbase { height: ctx.height });
        }
        if ctx.height == 0 && txs.iter().any(|t| matches!(t, Tx::Signed(_))) {
            return Err(LedgerError::NotAllowedHere {
                kind: "signed",
                height: 0,
            });
        }
        let signed: Vec<&SignedTx> = txs
            .iter()
            .filter_map(|t| match t {
                Tx::Signed(s) => Some(s),
                _ => None,
            })
            .collect();
        let cache = self.sig_cache.clone().filter(|c| !c.is_empty());
        let Some(cache) = cache else {
            return match self.check_and_apply(&signed, txs, ctx.height) {
                Ok(applied) => applied,
                Err((index, reason)) => Err(bad_signature(&signed, index, reason)),
            };
        };
        // Signatures the cache remembers passing are not checked again;
        // the others are checked as the whole block's would be. A cached
        // verdict is a pass, so the first bad signature among the others
        // is the block's first bad one.
        let (positions, unchecked): (Vec<usize>, Vec<Item>) = signed
            .iter()
            .enumerate()
            .filter_map(|(i, tx)| {
                let item = Item::of(tx);
                let known = cache.contains(&item.key, &item.signature, &item.message);
                (!known).then_some((i, item))
            })
            .unzip();
        match self.check_and_apply(&unchecked, txs, ctx.height) {
            Ok(applied) => applied,
            Err((index, reason)) => {
                let index = positions.get(index).copied().unwrap_or(index);
                Err(bad_signature(&signed, index, reason))
            }
        }
    }
}

/// The id a contract created by `tx` gets (see [`ContractId::from_tx`]).
pub fn contract_id_of(tx: &SignedTx) -> ContractId {
    ContractId::from_tx(&tx.id())
}

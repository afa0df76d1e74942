//! A network's genesis state, built once per process: every ledger that
//! applies the same genesis block to a fresh ledger takes a clone of the
//! state the first one built. The maps are persistent, so the clones share
//! every account until one of them changes it: a simulation of thousands
//! of nodes keeps one copy of the genesis allocations, not thousands.
//! Also the ledger's equality (its consensus state), which the sharing
//! relies on to know a fresh ledger.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, PoisonError};

use chain_core::BlockContext;

use super::{Ledger, LedgerError, Undo};
use crate::tx::Tx;

impl PartialEq for Ledger {
    /// The consensus state only: not how signatures are checked.
    fn eq(&self, other: &Ledger) -> bool {
        self.network == other.network
            && self.reward == other.reward
            && self.params == other.params
            && self.balances == other.balances
            && self.nonces == other.nonces
            && self.contracts == other.contracts
            && self.issued == other.issued
    }
}

impl Eq for Ledger {}

/// The genesis states built so far, by network and the BLAKE3 hash of the
/// genesis transactions' encoding, with the undo record of each.
static STATES: LazyLock<Mutex<States>> = LazyLock::new(Mutex::default);

/// A genesis state and its undo record, by key (see [`key`]).
type States = HashMap<[u8; 32], (Ledger, Undo)>;

/// What a genesis state is known by: the ledger's network and the exact
/// transactions applied to it.
/// `None` if a transaction does not encode (then nothing is shared).
fn key(network: &chain_core::BlockHash, txs: &[Tx]) -> Option<[u8; 32]> {
    let mut hasher = blake3::Hasher::new();
    hasher.update(network.as_bytes());
    for tx in txs {
        hasher.update(&postcard::to_stdvec(tx).ok()?);
    }
    Some(*hasher.finalize().as_bytes())
}

impl Ledger {
    /// Applies a genesis block (height 0): to a fresh ledger, the state the
    /// process built for these transactions before, if any (the result is
    /// the same, the maps shared); otherwise as any block, remembering the
    /// result when it started fresh. How signatures are checked stays this
    /// ledger's own.
    pub(super) fn apply_genesis(
        &mut self,
        ctx: &BlockContext,
        txs: &[Tx],
    ) -> Result<Undo, LedgerError> {
        let key = key(&self.network, txs);
        let Some(key) = key.filter(|_| *self == Ledger::new(self.network)) else {
            return self.apply_any(ctx, txs);
        };
        let states = || STATES.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((state, undo)) = states().get(&key) {
            let (verify, sig_cache) = (self.verify, self.sig_cache.take());
            *self = state.clone();
            (self.verify, self.sig_cache) = (verify, sig_cache);
            return Ok(undo.clone());
        }
        let undo = self.apply_any(ctx, txs)?;
        states().insert(key, (self.clone(), undo.clone()));
        Ok(undo)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chain_core::StateMachine;

    use super::*;
    use crate::Genesis;

    #[test]
    fn a_genesis_applied_twice_gives_the_same_state_sharing_its_maps() {
        let genesis = Genesis::dev();
        let block = genesis.block();
        let ctx = BlockContext {
            hash: block.hash(),
            height: 0,
            timestamp_ms: genesis.timestamp_ms,
        };
        let mut first = genesis.ledger();
        let undo = first.apply_block(&ctx, &block.transactions).unwrap();
        let mut second = genesis.ledger();
        let again = second.apply_block(&ctx, &block.transactions).unwrap();
        assert_eq!(first, second);
        assert_eq!(undo, again);
        assert!(first.balances.ptr_eq(&second.balances), "one map, shared");
        // Another network's ledger builds its own.
        let mut other = Ledger::new(chain_core::BlockHash::from_bytes([9; 32]));
        other.apply_block(&ctx, &block.transactions).unwrap();
        assert!(!other.balances.ptr_eq(&first.balances));
        assert_ne!(other, first);
        // The shared state is not changed by a change to one ledger.
        let alice = crate::dev::address("alice").unwrap();
        let before = first.balance(&alice);
        second.balances.insert(alice, crate::Amount::new(1));
        assert_eq!(first.balance(&alice), before);
        let mut third = genesis.ledger();
        third.apply_block(&ctx, &block.transactions).unwrap();
        assert_eq!(third.balance(&alice), before);
    }
}

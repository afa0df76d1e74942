//! A throwaway dev chain's snapshots (`p2p-node --dev`): save the chain,
//! the ledger, the contracts and the mempool under an id, and go back to
//! them, or to genesis, as anvil's `evm_snapshot`, `evm_revert` and
//! `anvil_reset` do.
//!
//! A dev node keeps its blocks in a [`MemoryStore`]. A snapshot is a deep
//! copy of that store, taken between two commits and once it holds the tip
//! the caller saw, with the pending transactions. Going back is a restart:
//! [`DevChain`] hands the process that runs the node (the binary's `--dev`
//! loop) a copy of the snapshot's store and its transactions; it stops the
//! node and starts a new one on them, on the same addresses, and submits
//! the transactions again. The node restores its chain from the store as
//! after any restart, so a revert is as exact as a restart is. Peers are
//! dropped, and the node's id changes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use chain_core::BlockHash;
use escrow::SignedTx;
use tokio::sync::mpsc;

use crate::store::MemoryStore;

/// What the node's process is asked to do: restart on this store and
/// submit these transactions.
#[derive(Debug)]
pub struct Restart {
    /// The store to start on (a copy: the snapshot keeps its own).
    pub store: MemoryStore,
    /// The pending transactions to submit again.
    pub mempool: Vec<SignedTx>,
    /// Why, for the log: "reverted to snapshot 2", "reset to genesis".
    pub reason: String,
}

/// A saved state.
#[derive(Debug)]
struct Saved {
    store: MemoryStore,
    mempool: Vec<SignedTx>,
    height: u64,
    tip: BlockHash,
}

#[derive(Debug, Default)]
struct State {
    /// The store the running node writes to.
    live: MemoryStore,
    next_id: u64,
    saved: BTreeMap<u64, Saved>,
}

/// The snapshots of a dev node, and the channel to the process that
/// restarts it. Clones share them.
#[derive(Clone, Debug)]
pub struct DevChain {
    state: Arc<Mutex<State>>,
    restarts: mpsc::UnboundedSender<Restart>,
}

/// Why a snapshot or a revert cannot be done.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DevError {
    /// No snapshot has this id.
    #[error("no snapshot {0}: `POST /dev/snapshot` returns the ids")]
    UnknownSnapshot(u64),
    /// The process that runs the node is gone.
    #[error("the node's process no longer restarts it")]
    Gone,
}

impl DevChain {
    /// A dev chain on an empty store, and the restarts its process must
    /// carry out.
    pub fn new() -> (DevChain, mpsc::UnboundedReceiver<Restart>) {
        let (restarts, rx) = mpsc::unbounded_channel();
        let chain = DevChain {
            state: Arc::new(Mutex::new(State::default())),
            restarts,
        };
        (chain, rx)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The store the node runs on (shared: the node's commits are seen
    /// here).
    pub fn live_store(&self) -> MemoryStore {
        self.lock().live.clone()
    }

    /// Saves the live store as it is now with `mempool`, if it holds `tip`
    /// (the node commits a block before it shows it, so a caller that saw
    /// `tip` may have to wait a moment for it); returns the new id, or
    /// `None` if the store does not hold `tip` yet.
    pub fn snapshot(&self, mempool: Vec<SignedTx>, height: u64, tip: BlockHash) -> Option<u64> {
        let mut state = self.lock();
        if height > 0 && !state.live.has_block(&tip) {
            return None;
        }
        let store = state.live.deep_copy();
        state.next_id += 1;
        let id = state.next_id;
        state.saved.insert(
            id,
            Saved {
                store,
                mempool,
                height,
                tip,
            },
        );
        Some(id)
    }

    /// Asks for a restart on snapshot `id` (which stays: a later revert to
    /// it goes back again); returns its height and tip.
    ///
    /// # Errors
    ///
    /// [`DevError`].
    pub fn revert(&self, id: u64) -> Result<(u64, BlockHash), DevError> {
        let mut state = self.lock();
        let saved = state.saved.get(&id).ok_or(DevError::UnknownSnapshot(id))?;
        let (store, mempool) = (saved.store.deep_copy(), saved.mempool.clone());
        let at = (saved.height, saved.tip);
        state.live = store.clone();
        self.restarts
            .send(Restart {
                store,
                mempool,
                reason: format!("reverted to snapshot {id} (height {})", at.0),
            })
            .map_err(|_| DevError::Gone)?;
        Ok(at)
    }

    /// Asks for a restart at genesis, on an empty store. Snapshots stay.
    ///
    /// # Errors
    ///
    /// [`DevError::Gone`].
    pub fn reset(&self) -> Result<(), DevError> {
        let mut state = self.lock();
        let store = MemoryStore::default();
        state.live = store.clone();
        self.restarts
            .send(Restart {
                store,
                mempool: Vec::new(),
                reason: "reset to genesis".to_string(),
            })
            .map_err(|_| DevError::Gone)
    }
}

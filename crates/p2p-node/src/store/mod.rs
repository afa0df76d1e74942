//! The store seam: where accepted blocks, the state and the node's lists
//! are kept across restarts.
//!
//! The node saves every block it accepts before announcing it or serving
//! it. With each batch of blocks it saves, in the same atomic commit, the
//! undo record of every block it applied, the transaction index (which
//! best-chain block holds each transaction) and, from time to time, a
//! snapshot of the ledger at the tip. A start reads the headers and the
//! snapshot only, and applies again just the blocks saved after the
//! snapshot: its cost grows with the number of blocks (a header each) and
//! the state's size, not with the blocks' contents. Bodies and undo
//! records are read back one at a time when something needs them (a
//! reorg, a peer syncing, the API).
//!
//! The seam is [`BlockStore`] (in `block_store.rs`, with what crosses it);
//! every store fails with a [`StoreError`] (`error.rs`).
//! [`MemoryStore`] keeps everything in memory (tests, benchmarks);
//! [`RedbStore`] (in `redb.rs`, its tables in `redb_tables.rs`) keeps it in
//! a redb database in the node's data directory, crash-safe.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use chain_core::{Block, BlockHash, Transaction, TxId};
use escrow::{Ledger, SignedTx, Tx, Undo};

use crate::penalty::BanKey;

mod block_store;
mod check;
mod chunks;
mod compaction;
mod damage;
mod error;
pub(crate) mod redb;
pub(crate) mod redb_read;
mod redb_tables;
mod tx_index;

pub use self::block_store::{BlockStore, Commit, IndexChange, StateSnapshot, Stored};
pub use self::check::{CheckReport, Damage, check};
pub use self::damage::{DamagedBlocks, REMEDY, UNDO_REMEDY};
pub use self::error::StoreError;
pub use self::redb::{BEFORE_REPAIR_SUFFIX, RedbStore, STORE_FILE};
pub use self::redb_tables::FORMAT_VERSION;

/// What a [`MemoryStore`] holds.
#[derive(Clone, Debug, Default)]
struct Memory {
    blocks: HashMap<BlockHash, Block<Tx>>,
    undo: HashMap<BlockHash, Undo>,
    txs: HashMap<TxId, BlockHash>,
    snapshot: Option<StateSnapshot>,
    mempool: Vec<SignedTx>,
    bans: Vec<(BanKey, u64)>,
}

/// Everything in memory, lost when the process ends (a clone shares the
/// contents: a node restarted on a clone sees what the first one saved).
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Memory>>,
}

impl MemoryStore {
    /// A store of its own with a copy of this one's contents as they are
    /// now (between two commits: each commit holds the lock throughout).
    pub fn deep_copy(&self) -> MemoryStore {
        MemoryStore {
            inner: Arc::new(Mutex::new(self.lock().clone())),
        }
    }

    /// Whether the store holds block `hash`.
    pub fn has_block(&self, hash: &BlockHash) -> bool {
        self.lock().blocks.contains_key(hash)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Applies one best-chain change to a transaction index.
fn index_change(index: &mut HashMap<TxId, BlockHash>, change: &IndexChange) {
    match change {
        IndexChange::Applied(block) => {
            let hash = block.hash();
            for tx in &block.transactions {
                index.insert(tx.id(), hash);
            }
        }
        IndexChange::Undone(block) => {
            let hash = block.hash();
            for tx in &block.transactions {
                if index.get(&tx.id()) == Some(&hash) {
                    index.remove(&tx.id());
                }
            }
        }
    }
}

impl BlockStore for MemoryStore {
    fn commit(&self, commit: &Commit) -> Result<(), StoreError> {
        let mut m = self.lock();
        for block in &commit.blocks {
            m.blocks.insert(block.hash(), (**block).clone());
        }
        for (hash, undo) in &commit.undo {
            m.undo.insert(*hash, undo.clone());
        }
        for change in &commit.index {
            index_change(&mut m.txs, change);
        }
        if let Some(snapshot) = &commit.snapshot {
            m.snapshot = Some(snapshot.clone());
        }
        Ok(())
    }

    fn load(&self) -> Result<Stored, StoreError> {
        let m = self.lock();
        Ok(Stored {
            headers: m.blocks.iter().map(|(h, b)| (*h, b.header)).collect(),
            snapshot: m.snapshot.clone(),
        })
    }

    fn block(&self, hash: &BlockHash) -> Result<Option<Block<Tx>>, StoreError> {
        Ok(self.lock().blocks.get(hash).cloned())
    }

    fn undo(&self, hash: &BlockHash) -> Result<Option<Undo>, StoreError> {
        Ok(self.lock().undo.get(hash).cloned())
    }

    fn tx_block(&self, id: &TxId) -> Result<Option<BlockHash>, StoreError> {
        Ok(self.lock().txs.get(id).copied())
    }

    fn txs_in_range(&self, low: &TxId, high: &TxId, limit: usize) -> Result<Vec<TxId>, StoreError> {
        // A scan of the whole index: this store is for tests and the
        // simulator, whose indexes are small.
        let mut ids: Vec<TxId> = self
            .lock()
            .txs
            .keys()
            .filter(|id| low <= *id && *id <= high)
            .copied()
            .collect();
        ids.sort();
        ids.truncate(limit);
        Ok(ids)
    }

    fn put_mempool(&self, txs: &[SignedTx]) -> Result<(), StoreError> {
        self.lock().mempool = txs.to_vec();
        Ok(())
    }

    fn load_mempool(&self) -> Result<Vec<SignedTx>, StoreError> {
        Ok(self.lock().mempool.clone())
    }

    fn put_bans(&self, bans: &[(BanKey, u64)]) -> Result<(), StoreError> {
        self.lock().bans = bans.to_vec();
        Ok(())
    }

    fn load_bans(&self) -> Result<Vec<(BanKey, u64)>, StoreError> {
        Ok(self.lock().bans.clone())
    }
}

/// The store as the block tree's archive: bodies and undo records read
/// back by hash. The tree only asks for blocks it holds, so a body that is
/// missing is as damaged as one that fails its checksum: both are errors,
/// recorded in `damaged` for the core, which logs and repairs them.
pub(crate) struct StoreArchive {
    /// The store.
    pub store: Arc<dyn BlockStore>,
    /// Where the damaged blocks found are recorded (the core takes them).
    pub damaged: Arc<DamagedBlocks>,
}

/// Whether a read of a block body failed because the record is damaged
/// (missing, or failing its checks), not because the store cannot be
/// read: a good copy of the block repairs the first, not the second.
fn is_damaged_body(read: &Result<Option<Block<Tx>>, StoreError>) -> bool {
    matches!(read, Ok(None) | Err(StoreError::Corrupt { .. }))
}

impl chain_core::Archive<Ledger> for StoreArchive {
    fn block(&self, hash: &BlockHash) -> Result<Option<Block<Tx>>, chain_core::ArchiveError> {
        let read = self.store.block(hash);
        let damaged = is_damaged_body(&read);
        let why = match read {
            Ok(Some(block)) => return Ok(Some(block)),
            Ok(None) => format!("the body of block {hash} is not in the store"),
            Err(e) => e.to_string(),
        };
        // A store that cannot be read is not the record's fault: not a
        // repair's business either.
        if damaged {
            self.damaged.found(*hash, &why);
        }
        Err(chain_core::ArchiveError(why))
    }

    fn undo(&self, hash: &BlockHash) -> Result<Option<Undo>, chain_core::ArchiveError> {
        self.store.undo(hash).map_err(|e| {
            tracing::error!(block = %hash, "a stored undo record cannot be read: {e}; {UNDO_REMEDY}");
            chain_core::ArchiveError(e.to_string())
        })
    }

    fn is_damaged(&self, hash: &BlockHash) -> bool {
        // Read again rather than remember: the answer is the store's, and
        // this is asked only after a read failed.
        is_damaged_body(&self.store.block(hash))
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod size_tests;

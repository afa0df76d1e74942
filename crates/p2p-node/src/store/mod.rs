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
//! [`MemoryStore`] keeps everything in memory (tests, benchmarks);
//! [`RedbStore`] (in `redb.rs`) keeps it in a redb database in the node's
//! data directory, crash-safe.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use chain_core::{Block, BlockHash, Header, Transaction, TxId};
use escrow::{Ledger, SignedTx, Tx, Undo};

use crate::penalty::BanKey;

mod check;
mod damage;
pub(crate) mod redb;
pub(crate) mod redb_read;

pub use self::check::{CheckReport, Damage, check};
pub use self::damage::{DamagedBlocks, REMEDY, UNDO_REMEDY};

pub use self::redb::{BEFORE_REPAIR_SUFFIX, FORMAT_VERSION, RedbStore, STORE_FILE};

/// A store failed. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or created.
    #[error("cannot open the store {path}: {reason}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Another process (a node running on the same data directory) has
    /// the database open: redb locks the file while it is open.
    #[error(
        "another node is using {} (its store is locked): stop that node, or give this one \
         another data directory",
        dir.display()
    )]
    Locked {
        /// The data directory.
        dir: PathBuf,
    },
    /// The database was written by an incompatible version of the node.
    #[error(
        "the store {path} has format version {found}; this node reads version {expected} \
         (move it aside to start afresh: nothing was changed)"
    )]
    Version {
        /// The database file.
        path: PathBuf,
        /// The version in the file.
        found: u64,
        /// The version this node writes.
        expected: u64,
    },
    /// The database holds data this node cannot read, or data that
    /// disagrees with itself.
    #[error("the store {path} is corrupt: {reason} (nothing was changed)")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A read or a write failed.
    #[error("store {path}: {reason}")]
    Backend {
        /// The database file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
}

/// The ledger at one block, as saved.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StateSnapshot {
    /// The block the ledger is at.
    pub block: BlockHash,
    /// Its height.
    pub height: u64,
    /// The ledger after that block.
    pub ledger: Ledger,
}

/// One change of the best chain, for the transaction index.
#[derive(Clone, Debug)]
pub enum IndexChange {
    /// The block joined the best chain: its transactions point to it.
    Applied(Arc<Block<Tx>>),
    /// The block left the best chain: its transactions no longer point to
    /// it.
    Undone(Arc<Block<Tx>>),
}

/// What one atomic commit saves: all of it or none of it survives a
/// crash.
#[derive(Clone, Debug, Default)]
pub struct Commit {
    /// Blocks that joined the tree (best chain or side branch).
    pub blocks: Vec<Arc<Block<Tx>>>,
    /// The undo record of each block applied to the ledger.
    pub undo: Vec<(BlockHash, Undo)>,
    /// Best-chain changes, in the order they happened.
    pub index: Vec<IndexChange>,
    /// The ledger at the tip, when it is time for a new snapshot.
    pub snapshot: Option<StateSnapshot>,
}

impl Commit {
    /// Whether there is nothing to save.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
            && self.undo.is_empty()
            && self.index.is_empty()
            && self.snapshot.is_none()
    }
}

/// What a start reads: every stored header and the latest snapshot.
#[derive(Clone, Debug, Default)]
pub struct Stored {
    /// The hash and header of every stored block, in no particular order
    /// (each hash checked against its header).
    pub headers: Vec<(BlockHash, Header)>,
    /// The ledger saved last, if any.
    pub snapshot: Option<StateSnapshot>,
}

/// Keeps accepted blocks, the state and the node's lists. Shared: the
/// core writes, the block tree and the API read.
pub trait BlockStore: Send + Sync + 'static {
    /// Saves a commit durably and atomically: when this returns, all of it
    /// survives a crash; a crash before leaves none of it.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if it cannot be saved.
    fn commit(&self, commit: &Commit) -> Result<(), StoreError>;

    /// Every stored header and the latest snapshot: what a start needs.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the store cannot be read.
    fn load(&self) -> Result<Stored, StoreError>;

    /// A stored block by hash.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the store cannot be read or the block is damaged.
    fn block(&self, hash: &BlockHash) -> Result<Option<Block<Tx>>, StoreError>;

    /// A stored undo record by block hash.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the store cannot be read or the record is damaged.
    fn undo(&self, hash: &BlockHash) -> Result<Option<Undo>, StoreError>;

    /// The best-chain block holding a transaction, by the index.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the store cannot be read.
    fn tx_block(&self, id: &TxId) -> Result<Option<BlockHash>, StoreError>;

    /// The ids in the transaction index from `low` to `high` (both
    /// included, in byte order), lowest first, at most `limit`: the
    /// confirmed transactions whose ids start with a prefix
    /// (`crate::api::prefix`) are those between the prefix padded with
    /// zeros and with `ff`s.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the store cannot be read.
    fn txs_in_range(&self, low: &TxId, high: &TxId, limit: usize) -> Result<Vec<TxId>, StoreError>;

    /// Saves the pending transactions, replacing those saved before (as
    /// bitcoind's `mempool.dat`).
    ///
    /// # Errors
    ///
    /// [`StoreError`] if they cannot be saved.
    fn put_mempool(&self, txs: &[SignedTx]) -> Result<(), StoreError>;

    /// The pending transactions saved last (none if never saved).
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the store cannot be read.
    fn load_mempool(&self) -> Result<Vec<SignedTx>, StoreError>;

    /// Saves the active bans, each with its expiry in milliseconds since
    /// the Unix epoch, replacing those saved before.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if they cannot be saved.
    fn put_bans(&self, bans: &[(BanKey, u64)]) -> Result<(), StoreError>;

    /// The bans saved last, with their expiries (none if never saved).
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the store cannot be read.
    fn load_bans(&self) -> Result<Vec<(BanKey, u64)>, StoreError>;
}

/// What a [`MemoryStore`] holds.
#[derive(Debug, Default)]
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

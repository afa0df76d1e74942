//! The [`BlockStore`] trait, the seam itself, and what crosses it: a
//! [`Commit`] saved at once, the [`Stored`] headers and snapshot a start
//! reads back.

use std::sync::Arc;

use chain_core::{Block, BlockHash, Header, TxId};
use escrow::{Ledger, SignedTx, Tx, Undo};

use super::error::StoreError;
use crate::penalty::BanKey;

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

    /// The node stops cleanly: its last commit is saved, and only the
    /// mempool and the bans may still be written before the store is
    /// dropped. A store may tidy its files when it is dropped after this
    /// (`RedbStore` compacts its file, within bounds); never after a
    /// failure, where it is dropped without this call. Nothing by default.
    fn clean_stop(&self) {}

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

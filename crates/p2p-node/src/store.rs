//! The store seam: where accepted blocks are kept across restarts.
//!
//! The node saves every block it accepts before announcing it, and loads
//! them at start. [`MemoryStore`] keeps them in memory only (tests, and the
//! simulator); a durable store (redb) implements the same trait.

use chain_core::Block;
use escrow::Tx;

/// A store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend reported an error.
    #[error("store backend: {0}")]
    Backend(String),
    /// The store holds data it cannot read.
    #[error("store is corrupt: {0}")]
    Corrupt(String),
}

/// Keeps accepted blocks.
pub trait BlockStore: Send + 'static {
    /// Saves a block durably (returns once it would survive a crash).
    ///
    /// # Errors
    ///
    /// [`StoreError`] if it cannot be saved.
    fn put_block(&mut self, block: &Block<Tx>) -> Result<(), StoreError>;

    /// Every saved block, each after its parent.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the store cannot be read.
    fn load_blocks(&self) -> Result<Vec<Block<Tx>>, StoreError>;
}

/// Blocks in memory, lost when the node stops.
#[derive(Debug, Default)]
pub struct MemoryStore {
    blocks: Vec<Block<Tx>>,
}

impl BlockStore for MemoryStore {
    fn put_block(&mut self, block: &Block<Tx>) -> Result<(), StoreError> {
        self.blocks.push(block.clone());
        Ok(())
    }

    fn load_blocks(&self) -> Result<Vec<Block<Tx>>, StoreError> {
        Ok(self.blocks.clone())
    }
}

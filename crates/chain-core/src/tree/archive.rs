//! What the tree keeps on disk rather than in memory, and how a tree is
//! restored from it.
//!
//! A [`Chain`](super::Chain) started with [`Chain::new`](super::Chain::new)
//! keeps every block body and every undo record in memory. A chain
//! restored with [`Chain::restore`](super::Chain::restore) is given an
//! [`Archive`] (the node's store): it keeps only the headers, the block
//! index, the best chain's hashes, and the bodies and undo records of a
//! window of recent blocks; older bodies and undo records are read back
//! from the archive when a reorganisation or a reader needs them. Memory
//! then grows with the number of headers (about 200 bytes a block), not
//! with the blocks' contents.

use crate::hash::BlockHash;
use crate::header::Block;
use crate::state::StateMachine;

/// Reading the archive failed: the store is unreadable or damaged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the block archive cannot be read: {0}")]
pub struct ArchiveError(pub String);

/// Where a tree reads the block bodies and undo records it no longer keeps
/// in memory (the node's store).
///
/// # Contract
///
/// The tree drops a body or an undo record from memory only after its
/// caller said, by calling [`Chain::forget_old`](super::Chain::forget_old),
/// that everything [`Chain::take_new_blocks`](super::Chain::take_new_blocks)
/// and [`Chain::take_new_undo`](super::Chain::take_new_undo) handed out is
/// in the archive. Answering `None` for such a block is a damaged archive.
pub trait Archive<S: StateMachine>: Send + Sync {
    /// The block with this hash, if the archive has it.
    ///
    /// # Errors
    ///
    /// [`ArchiveError`] if the archive cannot be read.
    fn block(&self, hash: &BlockHash) -> Result<Option<Block<S::Tx>>, ArchiveError>;

    /// The undo record of the block with this hash, as it was when the
    /// block was applied on top of its parent.
    ///
    /// # Errors
    ///
    /// [`ArchiveError`] if the archive cannot be read.
    fn undo(&self, hash: &BlockHash) -> Result<Option<S::Undo>, ArchiveError>;

    /// Whether the body of block `hash` is damaged in the archive (missing,
    /// or failing its checks), as opposed to the archive failing to read
    /// at all: a good copy of the block, from wherever, would repair it.
    /// [`Chain::restore`](super::Chain::restore) stops its replay just
    /// below such a block instead of failing. The default: never (every
    /// failure is the archive's).
    fn is_damaged(&self, hash: &BlockHash) -> bool {
        let _ = hash;
        false
    }
}

/// A block [`Chain::restore`](super::Chain::restore) could not apply
/// because its body is damaged in the archive ([`Archive::is_damaged`]):
/// it and every block above it were left out of the tree, so that the
/// best chain ends at the last block that applied. Fetching the blocks
/// again (from peers) and inserting them brings the chain forward by the
/// normal path.
#[derive(Debug, Clone)]
pub struct Unrestored {
    /// The damaged block.
    pub block: BlockHash,
    /// Its height.
    pub height: u64,
    /// Why its body cannot be read.
    pub reason: ArchiveError,
    /// The block and every stored block above it (its descendants, on any
    /// branch) that were left out with it, lowest first.
    pub left_out: Vec<(BlockHash, u64)>,
}

/// Why a tree cannot be restored from what a store holds: the store
/// disagrees with itself. Each variant names what disagrees.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The genesis block is not a genesis block.
    #[error("invalid genesis: {0}")]
    Genesis(String),
    /// A stored header claims height 0 but is not this network's genesis.
    #[error("stored block {0} claims height 0 but is not this network's genesis")]
    SecondGenesis(BlockHash),
    /// A stored header's parent is neither genesis nor another stored
    /// header.
    #[error("stored block {block} at height {height}: its parent {parent} is not stored")]
    MissingParent {
        /// The block.
        block: BlockHash,
        /// Its height.
        height: u64,
        /// The parent it names.
        parent: BlockHash,
    },
    /// A stored header's height is not its parent's plus one.
    #[error("stored block {block} has height {height}, its parent has height {parent_height}")]
    WrongHeight {
        /// The block.
        block: BlockHash,
        /// Its height.
        height: u64,
        /// The parent's height.
        parent_height: u64,
    },
    /// A stored header's target field is not a target.
    #[error("stored block {block} has an invalid target: {reason}")]
    BadTarget {
        /// The block.
        block: BlockHash,
        /// Why.
        reason: String,
    },
    /// The state snapshot names a block the store does not hold.
    #[error("the state snapshot is at block {0}, which is not stored")]
    SnapshotUnknown(BlockHash),
    /// The state snapshot's height is not its block's.
    #[error(
        "the state snapshot says height {claimed} for block {block}, which has height {actual}"
    )]
    SnapshotHeight {
        /// The block.
        block: BlockHash,
        /// The height the snapshot records.
        claimed: u64,
        /// The block's height.
        actual: u64,
    },
    /// A body or undo record the restore needs is missing or unreadable.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
}

//! The block tree: every valid block known, fork choice, reorgs and orphans.
//!
//! [`Chain`] owns the tree and the application state at the best tip.
//!
//! - Every block that passed the header and context rules is kept by hash,
//!   with its cumulative work (its own plus all its ancestors').
//! - The best tip is the block with the most cumulative work; on a tie the
//!   block with the smaller hash (its 32 bytes compared in order, as its hex
//!   reads) wins. Fork choice is then a function of the set of blocks a node
//!   holds, not of the order they arrived in: two nodes that hold the same
//!   blocks follow the same tip, so an idle network agrees without anyone
//!   mining another block.
//! - The state machine only ever holds the state of the best chain. A block
//!   on a side branch is checked up to its header and context; its
//!   transactions are applied when its branch becomes the most-work branch.
//!   If they are refused then, the block and its descendants are marked
//!   invalid and fork choice runs again: the best tip is always a block
//!   whose whole chain applied.
//! - A block whose parent is unknown is an orphan: after the context-free
//!   checks (including its proof of work) it waits in a bounded pool, and is
//!   connected when its parent arrives.
//!
//! [`Chain::insert`] reports what happened as a value: [`Inserted::NewBest`]
//! carries the [`Reorg`] (blocks undone, blocks applied) the caller needs to
//! fix its mempool; rejections are [`InsertError`]s naming the rule.
//!
//! # Memory
//!
//! A chain from [`Chain::new`] keeps every body and undo record in memory.
//! A chain from [`Chain::restore`] has an [`Archive`] (the node's store)
//! and keeps, besides the headers and the best chain's hashes, only the
//! bodies and undo records of the last [`Chain::memory_window`] blocks;
//! the rest are read back from the archive when needed (`archive.rs`,
//! `restore.rs`).

mod archive;
mod chain;
mod headers;
mod orphans;
mod outcome;
mod reorg;
mod restore;

pub use archive::{Archive, ArchiveError, RestoreError, Unrestored};
pub use chain::{Chain, DEFAULT_MAX_ORPHANS, DEFAULT_MEMORY_WINDOW};
pub use headers::{HeaderBranch, HeadersAdded, HeadersError};
pub use outcome::{GenesisError, InsertError, Inserted, Reorg};
pub use restore::{Restored, Snapshot};

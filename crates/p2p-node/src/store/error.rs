//! [`StoreError`]: how a store fails, for every store and every reader of
//! one.

use std::path::PathBuf;

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

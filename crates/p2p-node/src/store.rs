//! The store seam: where accepted blocks are kept across restarts.
//!
//! The node saves every block it accepts before announcing it or serving
//! it, and rebuilds its block tree, best tip and ledger from the saved
//! blocks at start. [`MemoryStore`] keeps them in memory only (tests, the
//! benchmarks, a simulator); [`RedbStore`] keeps them in a redb database in
//! the node's data directory, crash-safe.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chain_core::Block;
use escrow::Tx;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

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
    /// The database holds data this node cannot read.
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

/// Keeps accepted blocks.
pub trait BlockStore: Send + 'static {
    /// Saves blocks durably, in order: when this returns, they survive a
    /// crash.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if they cannot be saved.
    fn put_blocks(&mut self, blocks: &[Arc<Block<Tx>>]) -> Result<(), StoreError>;

    /// Every saved block, in the order saved (each after its parent).
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
    fn put_blocks(&mut self, blocks: &[Arc<Block<Tx>>]) -> Result<(), StoreError> {
        self.blocks.extend(blocks.iter().map(|b| (**b).clone()));
        Ok(())
    }

    fn load_blocks(&self) -> Result<Vec<Block<Tx>>, StoreError> {
        Ok(self.blocks.clone())
    }
}

/// Saved blocks: key = save order, value = the block's postcard bytes.
const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
/// Store metadata: `format` = [`FORMAT_VERSION`].
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// The format this node writes. A store of another format is refused.
pub const FORMAT_VERSION: u64 = 1;
/// The database file's name in the data directory.
pub const STORE_FILE: &str = "chain.redb";

/// Blocks in a redb database (`chain.redb` in the data directory).
///
/// Each save is one write transaction with two-phase commit and immediate
/// durability: when `put_blocks` returns, the blocks are on disk, and a
/// crash at any moment leaves either the state before or after it. (Two-
/// phase commit because the blocks come from untrusted peers: redb's
/// default one-phase commit trusts a checksum that an adversary choosing
/// the data could in principle collide.)
pub struct RedbStore {
    db: redb::Database,
    path: PathBuf,
    next: u64,
    repaired: bool,
}

impl RedbStore {
    /// Opens the store in `dir` (creating the directory and the database if
    /// needed).
    ///
    /// # Errors
    ///
    /// [`StoreError`] naming the file: it cannot be opened, it is of another
    /// format version, or it is corrupt. Nothing is rewritten.
    pub fn open(dir: &Path) -> Result<RedbStore, StoreError> {
        let path = dir.join(STORE_FILE);
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
            path: path.clone(),
            reason: format!("cannot create the data directory: {e}"),
        })?;
        let repaired = Arc::new(AtomicBool::new(false));
        let flag = repaired.clone();
        let mut builder = redb::Builder::new();
        builder.set_repair_callback(move |_| flag.store(true, Ordering::Relaxed));
        let open = |reason: String| StoreError::Open {
            path: path.clone(),
            reason,
        };
        let db = if path.exists() {
            builder.open(&path).map_err(|e| match e {
                redb::DatabaseError::Storage(redb::StorageError::Corrupted(msg)) => {
                    StoreError::Corrupt {
                        path: path.clone(),
                        reason: msg,
                    }
                }
                other => open(other.to_string()),
            })?
        } else {
            builder.create(&path).map_err(|e| open(e.to_string()))?
        };
        let repaired = repaired.load(Ordering::Relaxed);
        if repaired {
            tracing::warn!(
                path = %path.display(),
                "the store was not closed cleanly and redb repaired it on open"
            );
        }
        let mut store = RedbStore {
            db,
            path,
            next: 0,
            repaired,
        };
        store.check_format()?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether redb had to repair the file when it was opened (the node
    /// was killed or the machine crashed while it was open).
    pub fn was_repaired(&self) -> bool {
        self.repaired
    }

    fn backend(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Backend {
            path: self.path.clone(),
            reason: e.to_string(),
        }
    }

    /// Checks (or, in a new database, writes) the format version, and finds
    /// the next key.
    fn check_format(&mut self) -> Result<(), StoreError> {
        let read = self.db.begin_read().map_err(|e| self.backend(e))?;
        let version = match read.open_table(META) {
            Ok(meta) => meta
                .get("format")
                .map_err(|e| self.backend(e))?
                .map(|v| v.value()),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => {
                return Err(StoreError::Corrupt {
                    path: self.path.clone(),
                    reason: format!("metadata table: {e}"),
                });
            }
        };
        let blocks = match read.open_table(BLOCKS) {
            Ok(t) => Some(
                t.last()
                    .map_err(|e| self.backend(e))?
                    .map(|(k, _)| k.value()),
            ),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => {
                return Err(StoreError::Corrupt {
                    path: self.path.clone(),
                    reason: format!("blocks table: {e}"),
                });
            }
        };
        drop(read);
        match (version, blocks) {
            (Some(found), _) if found != FORMAT_VERSION => Err(StoreError::Version {
                path: self.path.clone(),
                found,
                expected: FORMAT_VERSION,
            }),
            (Some(_), last) => {
                self.next = last.flatten().map_or(0, |k| k + 1);
                Ok(())
            }
            (None, Some(_)) => Err(StoreError::Corrupt {
                path: self.path.clone(),
                reason: "blocks without a format version".into(),
            }),
            (None, None) => {
                let mut write = self.db.begin_write().map_err(|e| self.backend(e))?;
                write.set_two_phase_commit(true);
                {
                    let mut meta = write.open_table(META).map_err(|e| self.backend(e))?;
                    meta.insert("format", FORMAT_VERSION)
                        .map_err(|e| self.backend(e))?;
                    write.open_table(BLOCKS).map_err(|e| self.backend(e))?;
                }
                write.commit().map_err(|e| self.backend(e))?;
                Ok(())
            }
        }
    }
}

impl BlockStore for RedbStore {
    fn put_blocks(&mut self, blocks: &[Arc<Block<Tx>>]) -> Result<(), StoreError> {
        if blocks.is_empty() {
            return Ok(());
        }
        let mut write = self.db.begin_write().map_err(|e| self.backend(e))?;
        write.set_two_phase_commit(true);
        let mut key = self.next;
        {
            let mut table = write.open_table(BLOCKS).map_err(|e| self.backend(e))?;
            for block in blocks {
                let bytes = postcard::to_stdvec(&**block).map_err(|e| self.backend(e))?;
                table
                    .insert(key, bytes.as_slice())
                    .map_err(|e| self.backend(e))?;
                key += 1;
            }
        }
        write.commit().map_err(|e| self.backend(e))?;
        self.next = key;
        Ok(())
    }

    fn load_blocks(&self) -> Result<Vec<Block<Tx>>, StoreError> {
        let read = self.db.begin_read().map_err(|e| self.backend(e))?;
        let table = read.open_table(BLOCKS).map_err(|e| self.backend(e))?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(|e| self.backend(e))? {
            let (key, value) = entry.map_err(|e| self.backend(e))?;
            let block: Block<Tx> =
                postcard::from_bytes(value.value()).map_err(|e| StoreError::Corrupt {
                    path: self.path.clone(),
                    reason: format!("saved block #{} does not decode: {e}", key.value()),
                })?;
            out.push(block);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use escrow::Genesis;

    fn some_blocks() -> Vec<Arc<Block<Tx>>> {
        vec![Arc::new(Genesis::dev().block())]
    }

    #[test]
    fn blocks_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = RedbStore::open(dir.path()).unwrap();
        store.put_blocks(&some_blocks()).unwrap();
        store.put_blocks(&some_blocks()).unwrap();
        drop(store);
        let store = RedbStore::open(dir.path()).unwrap();
        assert_eq!(store.load_blocks().unwrap().len(), 2);
        assert!(!store.was_repaired());
    }

    #[test]
    fn another_format_version_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        drop(RedbStore::open(dir.path()).unwrap());
        {
            let db = redb::Database::open(dir.path().join(STORE_FILE)).unwrap();
            let write = db.begin_write().unwrap();
            write
                .open_table(META)
                .unwrap()
                .insert("format", 99)
                .unwrap();
            write.commit().unwrap();
        }
        let err = RedbStore::open(dir.path()).err().unwrap();
        assert!(matches!(
            err,
            StoreError::Version {
                found: 99,
                expected: FORMAT_VERSION,
                ..
            }
        ));
        assert!(err.to_string().contains(STORE_FILE));
    }

    #[test]
    fn an_undecodable_block_is_reported_not_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = RedbStore::open(dir.path()).unwrap();
        store.put_blocks(&some_blocks()).unwrap();
        drop(store);
        {
            let db = redb::Database::open(dir.path().join(STORE_FILE)).unwrap();
            let write = db.begin_write().unwrap();
            write
                .open_table(BLOCKS)
                .unwrap()
                .insert(1, &[1u8, 2, 3][..])
                .unwrap();
            write.commit().unwrap();
        }
        let store = RedbStore::open(dir.path()).unwrap();
        let err = store.load_blocks().err().unwrap();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("#1"));
    }

    #[test]
    fn a_file_that_is_not_a_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(STORE_FILE),
            b"not a redb file at all, really",
        )
        .unwrap();
        let err = RedbStore::open(dir.path()).err().unwrap();
        assert!(err.to_string().contains(STORE_FILE), "{err}");
        // Nothing was rewritten.
        assert_eq!(
            std::fs::read(dir.path().join(STORE_FILE)).unwrap(),
            b"not a redb file at all, really"
        );
    }
}

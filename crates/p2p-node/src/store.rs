//! The store seam: where accepted blocks are kept across restarts.
//!
//! The node saves every block it accepts before announcing it or serving
//! it, and rebuilds its block tree, best tip and ledger from the saved
//! blocks at start. [`MemoryStore`] keeps them in memory only (tests, the
//! benchmarks, a simulator); [`RedbStore`] keeps them in a redb database in
//! the node's data directory, crash-safe.
//!
//! # A damaged file
//!
//! Whatever `chain.redb` holds, opening and loading it end either with the
//! blocks that were saved, exactly, or with a [`StoreError`] that names the
//! file; never with a panic, and never with blocks silently dropped:
//!
//! - Each saved block carries a BLAKE3 checksum of its bytes, checked when
//!   it is loaded.
//! - An existing file is first opened read-only and read through (format,
//!   every block and its checksum) without a byte written; only then is it
//!   opened for writing. A file that needs redb's crash recovery (the node
//!   was killed) is copied to `chain.redb.before-repair` before redb
//!   repairs it, so the repair never destroys the only copy.
//! - Every call into redb runs inside `catch_unwind`: a panic in its b-tree
//!   code on corrupt pages becomes [`StoreError::Corrupt`].

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once};

use chain_core::Block;
use escrow::{SignedTx, Tx};

use crate::penalty::BanKey;
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

    /// Saves the pending transactions, replacing those saved before (as
    /// bitcoind's `mempool.dat`).
    ///
    /// # Errors
    ///
    /// [`StoreError`] if they cannot be saved.
    fn put_mempool(&mut self, txs: &[SignedTx]) -> Result<(), StoreError>;

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
    fn put_bans(&mut self, bans: &[(BanKey, u64)]) -> Result<(), StoreError>;

    /// The bans saved last, with their expiries (none if never saved).
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the store cannot be read.
    fn load_bans(&self) -> Result<Vec<(BanKey, u64)>, StoreError>;
}

/// Blocks in memory, lost when the node stops.
#[derive(Debug, Default)]
pub struct MemoryStore {
    blocks: Vec<Block<Tx>>,
    mempool: Vec<SignedTx>,
    bans: Vec<(BanKey, u64)>,
}

impl BlockStore for MemoryStore {
    fn put_blocks(&mut self, blocks: &[Arc<Block<Tx>>]) -> Result<(), StoreError> {
        self.blocks.extend(blocks.iter().map(|b| (**b).clone()));
        Ok(())
    }

    fn load_blocks(&self) -> Result<Vec<Block<Tx>>, StoreError> {
        Ok(self.blocks.clone())
    }

    fn put_mempool(&mut self, txs: &[SignedTx]) -> Result<(), StoreError> {
        self.mempool = txs.to_vec();
        Ok(())
    }

    fn load_mempool(&self) -> Result<Vec<SignedTx>, StoreError> {
        Ok(self.mempool.clone())
    }

    fn put_bans(&mut self, bans: &[(BanKey, u64)]) -> Result<(), StoreError> {
        self.bans = bans.to_vec();
        Ok(())
    }

    fn load_bans(&self) -> Result<Vec<(BanKey, u64)>, StoreError> {
        Ok(self.bans.clone())
    }
}

/// Saved blocks: key = save order, value = the block's postcard bytes.
const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
/// Store metadata: `format` = [`FORMAT_VERSION`].
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Saved lists: key `pending` = the mempool's transactions in order, key
/// `bans` = the active bans with their expiries; each value a 32-byte
/// BLAKE3 checksum, then the postcard bytes.
const MEMPOOL: TableDefinition<&str, &[u8]> = TableDefinition::new("mempool");
/// The format this node writes. A store of another format is refused.
/// Version 2: each block's value is a 32-byte BLAKE3 checksum of its
/// postcard bytes, then those bytes (and the blocks follow protocol 2's
/// rules, so a version 1 store could not replay anyway).
pub const FORMAT_VERSION: u64 = 2;

/// The copy of a store kept before redb's crash recovery rewrites it.
pub const BEFORE_REPAIR_SUFFIX: &str = "before-repair";

thread_local! {
    /// Whether this thread is inside [`contain`] (its panics are reported
    /// as errors, not printed).
    static CONTAINED: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`, turning a panic inside it (redb's b-tree code on corrupt
/// pages) into [`StoreError::Corrupt`] naming `path`.
fn contain<T>(path: &Path, f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !CONTAINED.with(Cell::get) {
                previous(info);
            }
        }));
    });
    CONTAINED.with(|c| c.set(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    CONTAINED.with(|c| c.set(false));
    result.unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".to_string());
        Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("the database could not be read ({what})"),
        })
    })
}

/// A block's value in the table: its checksum, then its bytes.
fn encode_value(block: &Block<Tx>) -> Result<Vec<u8>, postcard::Error> {
    let bytes = postcard::to_stdvec(block)?;
    let mut value = blake3::hash(&bytes).as_bytes().to_vec();
    value.extend_from_slice(&bytes);
    Ok(value)
}

/// The block in a table value, checksum checked.
fn decode_value(path: &Path, key: u64, value: &[u8]) -> Result<Block<Tx>, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let (sum, bytes) = value.split_first_chunk::<32>().ok_or_else(|| {
        corrupt(format!(
            "saved block #{key} is {} bytes, too short",
            value.len()
        ))
    })?;
    if blake3::hash(bytes).as_bytes() != sum {
        return Err(corrupt(format!("saved block #{key} fails its checksum")));
    }
    postcard::from_bytes(bytes)
        .map_err(|e| corrupt(format!("saved block #{key} does not decode: {e}")))
}

/// What the read-only pass found.
enum Validation {
    /// Readable throughout, every block intact.
    Intact,
    /// Not closed cleanly: redb must repair it before it can be read.
    NeedsRepair,
}

/// Reads an existing store through without writing a byte: the format,
/// every block and its checksum.
fn validate_read_only(path: &Path) -> Result<Validation, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let db = match redb::ReadOnlyDatabase::open(path) {
        Ok(db) => db,
        Err(redb::DatabaseError::RepairAborted) => return Ok(Validation::NeedsRepair),
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
            return Err(StoreError::Open {
                path: path.to_path_buf(),
                reason: "another node is using this data directory".into(),
            });
        }
        Err(redb::DatabaseError::Storage(redb::StorageError::Io(e))) => {
            return Err(StoreError::Open {
                path: path.to_path_buf(),
                reason: e.to_string(),
            });
        }
        Err(e) => return Err(corrupt(e.to_string())),
    };
    let read = db.begin_read().map_err(|e| corrupt(e.to_string()))?;
    let format = match read.open_table(META) {
        Ok(meta) => meta
            .get("format")
            .map_err(|e| corrupt(e.to_string()))?
            .map(|v| v.value()),
        Err(redb::TableError::TableDoesNotExist(_)) => None,
        Err(e) => return Err(corrupt(format!("metadata table: {e}"))),
    };
    match format {
        Some(FORMAT_VERSION) => {}
        Some(found) => {
            return Err(StoreError::Version {
                path: path.to_path_buf(),
                found,
                expected: FORMAT_VERSION,
            });
        }
        // A store created but never written to; `check_format` decides.
        None => return Ok(Validation::Intact),
    }
    let table = match read.open_table(BLOCKS) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Validation::Intact),
        Err(e) => return Err(corrupt(format!("blocks table: {e}"))),
    };
    for entry in table.iter().map_err(|e| corrupt(e.to_string()))? {
        let (key, value) = entry.map_err(|e| corrupt(e.to_string()))?;
        decode_value(path, key.value(), value.value())?;
    }
    Ok(Validation::Intact)
}
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
            if let Validation::NeedsRepair = contain(&path, || validate_read_only(&path))? {
                let mut backup = path.clone().into_os_string();
                backup.push(".");
                backup.push(BEFORE_REPAIR_SUFFIX);
                std::fs::copy(&path, &backup).map_err(|e| {
                    open(format!(
                        "cannot keep a copy before repairing it ({}): {e}",
                        PathBuf::from(&backup).display()
                    ))
                })?;
            }
            contain(&path, || {
                builder.open(&path).map_err(|e| match e {
                    redb::DatabaseError::Storage(redb::StorageError::Corrupted(msg)) => {
                        StoreError::Corrupt {
                            path: path.clone(),
                            reason: msg,
                        }
                    }
                    other => open(other.to_string()),
                })
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
        let checked_path = store.path.clone();
        contain(&checked_path, || store.check_format())?;
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

impl RedbStore {
    /// Saves a list under `key` of the `mempool` table, checksummed.
    fn put_list<T: serde::Serialize + ?Sized>(
        &mut self,
        key: &str,
        list: &T,
    ) -> Result<(), StoreError> {
        let bytes = postcard::to_stdvec(list).map_err(|e| self.backend(e))?;
        let mut value = blake3::hash(&bytes).as_bytes().to_vec();
        value.extend_from_slice(&bytes);
        let path = self.path.clone();
        contain(&path, || {
            let mut write = self.db.begin_write().map_err(|e| self.backend(e))?;
            write.set_two_phase_commit(true);
            {
                let mut table = write.open_table(MEMPOOL).map_err(|e| self.backend(e))?;
                table
                    .insert(key, value.as_slice())
                    .map_err(|e| self.backend(e))?;
            }
            write.commit().map_err(|e| self.backend(e))
        })
    }

    /// The list saved under `key` (empty if none), checksum checked.
    fn load_list<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
        what: &str,
    ) -> Result<Vec<T>, StoreError> {
        contain(&self.path, || {
            let read = self.db.begin_read().map_err(|e| self.backend(e))?;
            let table = match read.open_table(MEMPOOL) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(e) => return Err(self.backend(e)),
            };
            let Some(value) = table.get(key).map_err(|e| self.backend(e))? else {
                return Ok(Vec::new());
            };
            let corrupt = |reason: &str| StoreError::Corrupt {
                path: self.path.clone(),
                reason: format!("{what} {reason}"),
            };
            let value = value.value();
            let (sum, bytes) = value
                .split_first_chunk::<32>()
                .ok_or_else(|| corrupt("is too short"))?;
            if blake3::hash(bytes).as_bytes() != sum {
                return Err(corrupt("fails its checksum"));
            }
            postcard::from_bytes(bytes).map_err(|_| corrupt("does not decode"))
        })
    }
}

impl BlockStore for RedbStore {
    fn put_mempool(&mut self, txs: &[SignedTx]) -> Result<(), StoreError> {
        self.put_list("pending", txs)
    }

    fn load_mempool(&self) -> Result<Vec<SignedTx>, StoreError> {
        self.load_list("pending", "the saved mempool")
    }

    fn put_bans(&mut self, bans: &[(BanKey, u64)]) -> Result<(), StoreError> {
        self.put_list("bans", bans)
    }

    fn load_bans(&self) -> Result<Vec<(BanKey, u64)>, StoreError> {
        self.load_list("bans", "the saved bans")
    }

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
                let bytes = encode_value(block).map_err(|e| self.backend(e))?;
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
        contain(&self.path, || {
            let read = self.db.begin_read().map_err(|e| self.backend(e))?;
            let table = read.open_table(BLOCKS).map_err(|e| self.backend(e))?;
            let mut out = Vec::new();
            for entry in table.iter().map_err(|e| self.backend(e))? {
                let (key, value) = entry.map_err(|e| self.backend(e))?;
                out.push(decode_value(&self.path, key.value(), value.value())?);
            }
            Ok(out)
        })
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
        // Found by the read-through at open, before anything is written.
        let err = RedbStore::open(dir.path())
            .and_then(|s| s.load_blocks())
            .err()
            .unwrap();
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

    /// Thirty distinct blocks.
    fn many_blocks() -> Vec<Arc<Block<Tx>>> {
        (0..30u64)
            .map(|i| {
                let mut b = Genesis::dev().block();
                b.header.nonce = i;
                Arc::new(b)
            })
            .collect()
    }

    #[test]
    fn a_byte_flipped_anywhere_gives_the_saved_blocks_or_an_error_never_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let saved = many_blocks();
        {
            let mut store = RedbStore::open(dir.path()).unwrap();
            for chunk in saved.chunks(3) {
                store.put_blocks(chunk).unwrap();
            }
        }
        let original = std::fs::read(dir.path().join(STORE_FILE)).unwrap();
        let expected: Vec<Block<Tx>> = saved.iter().map(|b| (**b).clone()).collect();
        let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
        let (mut refused, mut intact) = (0, 0);
        for trial in 0..50 {
            rng = rng
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            // Half the trials hit the middle of the file, where the data
            // pages are; the rest anywhere.
            let len = original.len() as u64;
            let offset = if trial % 2 == 0 {
                (len / 4 + (rng >> 33) % (len / 2)) as usize
            } else {
                ((rng >> 33) % len) as usize
            };
            let mut damaged = original.clone();
            damaged[offset] ^= 0xff;
            let trial_dir = tempfile::tempdir().unwrap();
            let file = trial_dir.path().join(STORE_FILE);
            std::fs::write(&file, &damaged).unwrap();
            let outcome = RedbStore::open(trial_dir.path()).and_then(|s| s.load_blocks());
            match outcome {
                // A flip in bytes redb never reads (free space): the store
                // is whole, and every block is exactly as saved.
                Ok(blocks) => {
                    assert_eq!(
                        blocks, expected,
                        "flip at {offset}: blocks changed silently"
                    );
                    intact += 1;
                }
                Err(e) => {
                    assert!(e.to_string().contains(STORE_FILE), "flip at {offset}: {e}");
                    refused += 1;
                    // Refused: the file is as it was, or kept beside a
                    // repaired one.
                    let now = std::fs::read(&file).unwrap();
                    let backup = trial_dir
                        .path()
                        .join(format!("{STORE_FILE}.{BEFORE_REPAIR_SUFFIX}"));
                    assert!(
                        now == damaged
                            || std::fs::read(&backup).ok().as_deref() == Some(&damaged[..]),
                        "flip at {offset}: the damaged file was changed and not kept"
                    );
                }
            }
        }
        assert!(refused > 0, "some flips must be detected ({intact} intact)");
    }

    #[test]
    fn two_hundred_bytes_flipped_in_the_middle_are_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut store = RedbStore::open(dir.path()).unwrap();
            store.put_blocks(&many_blocks()).unwrap();
        }
        let file = dir.path().join(STORE_FILE);
        let mut bytes = std::fs::read(&file).unwrap();
        let middle = bytes.len() / 2;
        for b in &mut bytes[middle - 100..middle + 100] {
            *b ^= 0xa5;
        }
        std::fs::write(&file, &bytes).unwrap();
        let outcome = RedbStore::open(dir.path()).and_then(|s| s.load_blocks());
        let err = outcome.expect_err("the damage is found");
        assert!(err.to_string().contains(STORE_FILE), "{err}");
        assert!(err.to_string().contains("corrupt"), "{err}");
        assert_eq!(std::fs::read(&file).unwrap(), bytes, "nothing rewritten");
    }

    #[test]
    fn the_mempool_is_saved_and_loaded_across_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let genesis = Genesis::dev();
        let tx = SignedTx::sign(
            &escrow::dev::keypair("alice").unwrap(),
            0,
            genesis.network_id(),
            escrow::Payload::Transfer {
                to: escrow::dev::address("bob").unwrap(),
                amount: escrow::Amount::new(7),
            },
        );
        {
            let mut store = RedbStore::open(dir.path()).unwrap();
            assert!(store.load_mempool().unwrap().is_empty());
            store.put_mempool(std::slice::from_ref(&tx)).unwrap();
            store.put_mempool(&[tx.clone(), tx.clone()]).unwrap();
        }
        let store = RedbStore::open(dir.path()).unwrap();
        assert_eq!(store.load_mempool().unwrap(), vec![tx.clone(), tx]);
    }
}

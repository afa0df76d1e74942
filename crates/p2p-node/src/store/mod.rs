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
    /// Readable throughout, every block intact: here they are, so that
    /// loading them does not read the file a second time.
    Intact(Vec<Block<Tx>>),
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
        None => return Ok(Validation::Intact(Vec::new())),
    }
    let table = match read.open_table(BLOCKS) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Validation::Intact(Vec::new())),
        Err(e) => return Err(corrupt(format!("blocks table: {e}"))),
    };
    let mut blocks = Vec::new();
    for entry in table.iter().map_err(|e| corrupt(e.to_string()))? {
        let (key, value) = entry.map_err(|e| corrupt(e.to_string()))?;
        blocks.push(decode_value(path, key.value(), value.value())?);
    }
    Ok(Validation::Intact(blocks))
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
    /// The blocks the read-only pass at open already decoded, handed to
    /// the first `load_blocks` instead of reading the file again.
    preloaded: std::sync::Mutex<Option<Vec<Block<Tx>>>>,
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
        let mut preloaded = None;
        let db = if path.exists() {
            let validation = contain(&path, || validate_read_only(&path))?;
            if let Validation::Intact(blocks) = validation {
                preloaded = Some(blocks);
            } else {
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
            preloaded: std::sync::Mutex::new(preloaded),
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
        // What the open decoded is stale once anything is added.
        *self
            .preloaded
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
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
        // The read-only pass at open decoded them already (nothing was
        // written in between: the store is ours since then).
        let preloaded = self
            .preloaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(blocks) = preloaded {
            return Ok(blocks);
        }
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
mod tests;

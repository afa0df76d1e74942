//! [`RedbStore`]: the store in a redb database (`chain.redb` in the data
//! directory).
//!
//! The tables and the format version are defined in `redb_tables.rs`.
//!
//! # A damaged file
//!
//! Whatever `chain.redb` holds, opening and reading it end either with what
//! was saved, exactly, or with a [`StoreError`] that names the file; never
//! with a panic, and never with data silently dropped:
//!
//! - Every value is checked when it is read: headers against their hash,
//!   index entries against the block they name (by the API), everything
//!   else against its checksum. A body that fails is a damaged block
//!   (`damage.rs`): an error wherever it is read, and repaired from peers.
//!   `check.rs` reads every record at once (`p2p-node check`).
//! - An existing file is first opened read-only and what a start needs
//!   (format, every header, the snapshot) is read and checked without a
//!   byte written; only then is it opened for writing. A file that needs
//!   redb's crash recovery (the node was killed) is copied to
//!   `chain.redb.before-repair` before redb repairs it, so the repair never
//!   destroys the only copy.
//! - Every call into redb runs inside `catch_unwind`: a panic in its b-tree
//!   code on corrupt pages becomes [`StoreError::Corrupt`].

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once, PoisonError};

use ::redb::{ReadableDatabase, ReadableTable, TableDefinition};
use chain_core::{Block, BlockHash, TxId};
use escrow::{SignedTx, Tx, Undo};

use super::block_store::{BlockStore, Commit, Stored};
use super::compaction::{Compaction, compact_at_close};
use super::error::StoreError;
use super::redb_read::{
    Validation, checked_bytes, decode_checked, locked, open_optional, read_stored,
    validate_read_only,
};
use super::redb_tables::{BEST, BODIES, FORMAT_VERSION, HEADERS, MEMPOOL, META, STATE, TXS, UNDO};
use super::{chunks, tx_index};
use crate::penalty::BanKey;

/// The copy of a store kept before redb's crash recovery rewrites it.
pub const BEFORE_REPAIR_SUFFIX: &str = "before-repair";

/// The database file's name in the data directory.
pub const STORE_FILE: &str = "chain.redb";

/// redb's page cache (its default is 1 GiB): the node reads headers once
/// at start and bodies one at a time after, so a small cache serves it, and
/// the node's memory stays bounded by its own index.
const CACHE_BYTES: usize = 8 << 20;

thread_local! {
    /// Whether this thread is inside [`contain`] (its panics are reported
    /// as errors, not printed).
    static CONTAINED: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`, turning a panic inside it (redb's b-tree code on corrupt
/// pages) into [`StoreError::Corrupt`] naming `path`.
pub(super) fn contain<T>(
    path: &Path,
    f: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !CONTAINED.with(Cell::get) {
                previous(info);
            }
        }));
    });
    let outer = CONTAINED.with(|c| c.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    CONTAINED.with(|c| c.set(outer));
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

/// A value with its checksum in front.
pub(crate) fn checksummed(bytes: &[u8]) -> Vec<u8> {
    let mut value = blake3::hash(bytes).as_bytes().to_vec();
    value.extend_from_slice(bytes);
    value
}

/// Everything in a redb database (`chain.redb` in the data directory).
///
/// Each commit is one write transaction with two-phase commit and
/// immediate durability: when it returns, everything in it is on disk, and
/// a crash at any moment leaves either the state before or after it. (Two-
/// phase commit because the blocks come from untrusted peers: redb's
/// default one-phase commit trusts a checksum that an adversary choosing
/// the data could in principle collide.)
pub struct RedbStore {
    db: ::redb::Database,
    path: PathBuf,
    repaired: bool,
    /// What the read-only pass at open already read, handed to the first
    /// `load` instead of reading the file again.
    preloaded: Mutex<Option<Stored>>,
    /// The node stops cleanly ([`BlockStore::clean_stop`]): the close
    /// compacts the file.
    stopping: AtomicBool,
    /// A write failed since the store was opened: the close leaves the
    /// file alone.
    failed: AtomicBool,
    /// What a clean close may spend compacting.
    compaction: Compaction,
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
        let mut builder = ::redb::Builder::new();
        builder.set_cache_size(CACHE_BYTES);
        builder.set_repair_callback(move |_| flag.store(true, Ordering::Relaxed));
        let open = |reason: String| StoreError::Open {
            path: path.clone(),
            reason,
        };
        let mut preloaded = None;
        let db = if path.exists() {
            let validation = contain(&path, || validate_read_only(&path))?;
            if let Validation::Intact(stored) = validation {
                preloaded = stored.map(|s| *s);
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
                    ::redb::DatabaseError::DatabaseAlreadyOpen => locked(&path),
                    ::redb::DatabaseError::Storage(::redb::StorageError::Corrupted(msg)) => {
                        StoreError::Corrupt {
                            path: path.clone(),
                            reason: msg,
                        }
                    }
                    other => open(other.to_string()),
                })
            })?
        } else {
            builder.create(&path).map_err(|e| match e {
                ::redb::DatabaseError::DatabaseAlreadyOpen => locked(&path),
                other => open(other.to_string()),
            })?
        };
        let repaired = repaired.load(Ordering::Relaxed);
        if repaired {
            tracing::warn!(
                path = %path.display(),
                "the store was not closed cleanly and redb repaired it on open"
            );
        }
        let store = RedbStore {
            db,
            path,
            repaired,
            preloaded: Mutex::new(preloaded),
            stopping: AtomicBool::new(false),
            failed: AtomicBool::new(false),
            compaction: Compaction::default(),
        };
        contain(&store.path, || store.check_format())?;
        Ok(store)
    }

    /// Bounds a clean close's compaction otherwise (tests).
    #[cfg(test)]
    pub(crate) fn set_compaction(&mut self, compaction: Compaction) {
        self.compaction = compaction;
    }

    /// Notes the outcome of a write: a failure keeps the close from
    /// compacting.
    fn noting<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if result.is_err() {
            self.failed.store(true, Ordering::Relaxed);
        }
        result
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

    fn corrupt(&self, reason: String) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            reason,
        }
    }

    /// Checks (or, in a new database, writes) the format version.
    fn check_format(&self) -> Result<(), StoreError> {
        let read = self.db.begin_read().map_err(|e| self.backend(e))?;
        let version = match open_optional(&read, META, &self.path)? {
            Some(meta) => meta
                .get("format")
                .map_err(|e| self.backend(e))?
                .map(|v| v.value()),
            None => None,
        };
        let has_headers = open_optional(&read, HEADERS, &self.path)?
            .map(|t| t.first().map(|f| f.is_some()))
            .transpose()
            .map_err(|e| self.backend(e))?
            .unwrap_or(false);
        drop(read);
        match (version, has_headers) {
            (Some(found), _) if found != FORMAT_VERSION => Err(StoreError::Version {
                path: self.path.clone(),
                found,
                expected: FORMAT_VERSION,
            }),
            (Some(_), _) => Ok(()),
            (None, true) => Err(self.corrupt("blocks without a format version".into())),
            (None, false) => {
                let mut write = self.db.begin_write().map_err(|e| self.backend(e))?;
                write.set_two_phase_commit(true);
                {
                    let mut meta = write.open_table(META).map_err(|e| self.backend(e))?;
                    meta.insert("format", FORMAT_VERSION)
                        .map_err(|e| self.backend(e))?;
                    for table in [HEADERS, BODIES, UNDO] {
                        write.open_table(table).map_err(|e| self.backend(e))?;
                    }
                    write.open_table(TXS).map_err(|e| self.backend(e))?;
                    write.open_table(BEST).map_err(|e| self.backend(e))?;
                    write.open_table(STATE).map_err(|e| self.backend(e))?;
                }
                write.commit().map_err(|e| self.backend(e))?;
                Ok(())
            }
        }
    }

    /// Saves a list under `key` of the `mempool` table, checksummed.
    fn put_list<T: serde::Serialize + ?Sized>(
        &self,
        key: &str,
        list: &T,
    ) -> Result<(), StoreError> {
        let bytes = postcard::to_stdvec(list).map_err(|e| self.backend(e))?;
        let value = checksummed(&bytes);
        let written = contain(&self.path, || {
            let mut write = self.db.begin_write().map_err(|e| self.backend(e))?;
            write.set_two_phase_commit(true);
            {
                let mut table = write.open_table(MEMPOOL).map_err(|e| self.backend(e))?;
                table
                    .insert(key, value.as_slice())
                    .map_err(|e| self.backend(e))?;
            }
            write.commit().map_err(|e| self.backend(e))
        });
        self.noting(written)
    }

    /// The list saved under `key` (empty if none), checksum checked.
    fn load_list<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
        what: &str,
    ) -> Result<Vec<T>, StoreError> {
        contain(&self.path, || {
            let read = self.db.begin_read().map_err(|e| self.backend(e))?;
            let Some(table) = open_optional(&read, MEMPOOL, &self.path)? else {
                return Ok(Vec::new());
            };
            let Some(value) = table.get(key).map_err(|e| self.backend(e))? else {
                return Ok(Vec::new());
            };
            decode_checked(&self.path, what, value.value())
        })
    }

    /// One checksummed value by hash from a chunked `table`
    /// (`chunks.rs`), its checksum checked.
    fn get_by_hash(
        &self,
        table: TableDefinition<&[u8], &[u8]>,
        hash: &BlockHash,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        contain(&self.path, || {
            let read = self.db.begin_read().map_err(|e| self.backend(e))?;
            let Some(table) = open_optional(&read, table, &self.path)? else {
                return Ok(None);
            };
            chunks::get(&table, hash.as_bytes()).map_err(|e| self.backend(e))
        })
    }

    /// The block saved under `hash`, or the blocks of this commit.
    fn block_for_undo(
        &self,
        commit: &Commit,
        bodies: &::redb::Table<&[u8], &[u8]>,
        hash: &BlockHash,
    ) -> Result<Arc<Block<Tx>>, StoreError> {
        if let Some(block) = commit.blocks.iter().find(|b| b.hash() == *hash) {
            return Ok(Arc::clone(block));
        }
        let value = chunks::get(bodies, hash.as_bytes())
            .map_err(|e| self.backend(e))?
            .ok_or_else(|| {
                self.backend(format!(
                    "the undo record of block {hash} is saved without its block"
                ))
            })?;
        let block: Block<Tx> = decode_checked(&self.path, &format!("saved block {hash}"), &value)?;
        Ok(Arc::new(block))
    }

    fn write_commit(&self, commit: &Commit) -> Result<(), StoreError> {
        let mut write = self.db.begin_write().map_err(|e| self.backend(e))?;
        write.set_two_phase_commit(true);
        {
            let mut headers = write.open_table(HEADERS).map_err(|e| self.backend(e))?;
            let mut bodies = write.open_table(BODIES).map_err(|e| self.backend(e))?;
            for block in &commit.blocks {
                let hash = block.hash();
                let bytes = postcard::to_stdvec(&**block).map_err(|e| self.backend(e))?;
                headers
                    .insert(
                        hash.as_bytes().as_slice(),
                        block.header.to_bytes().as_slice(),
                    )
                    .map_err(|e| self.backend(e))?;
                chunks::put(&mut bodies, hash.as_bytes(), &checksummed(&bytes))
                    .map_err(|e| self.backend(e))?;
            }
            let mut undo = write.open_table(UNDO).map_err(|e| self.backend(e))?;
            for (hash, record) in &commit.undo {
                let block = self.block_for_undo(commit, &bodies, hash)?;
                let bytes = record.encode_against(&block.transactions);
                chunks::put(&mut undo, hash.as_bytes(), &checksummed(&bytes))
                    .map_err(|e| self.backend(e))?;
            }
            let mut txs = write.open_table(TXS).map_err(|e| self.backend(e))?;
            let mut best = write.open_table(BEST).map_err(|e| self.backend(e))?;
            for change in &commit.index {
                tx_index::write(&mut txs, &mut best, change).map_err(|e| self.backend(e))?;
            }
            if let Some(snapshot) = &commit.snapshot {
                let bytes = postcard::to_stdvec(snapshot).map_err(|e| self.backend(e))?;
                let mut state = write.open_table(STATE).map_err(|e| self.backend(e))?;
                state
                    .insert("snapshot", checksummed(&bytes).as_slice())
                    .map_err(|e| self.backend(e))?;
            }
        }
        write.commit().map_err(|e| self.backend(e))
    }
}

/// A clean close compacts the file, within bounds (`compaction.rs`).
impl Drop for RedbStore {
    fn drop(&mut self) {
        if *self.stopping.get_mut() && !*self.failed.get_mut() && !std::thread::panicking() {
            let (db, path, compaction) = (&mut self.db, &self.path, self.compaction);
            if let Err(e) = contain(path, || compact_at_close(db, path, compaction)) {
                tracing::warn!("the store could not be compacted at close: {e}");
            }
        }
    }
}

impl BlockStore for RedbStore {
    fn commit(&self, commit: &Commit) -> Result<(), StoreError> {
        if commit.is_empty() {
            return Ok(());
        }
        // What the open read is stale once anything is added.
        *self
            .preloaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        self.noting(contain(&self.path, || self.write_commit(commit)))
    }

    fn clean_stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    fn load(&self) -> Result<Stored, StoreError> {
        // The read-only pass at open read it already (nothing was written
        // in between: the store is ours since then).
        let preloaded = self
            .preloaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(stored) = preloaded {
            return Ok(stored);
        }
        contain(&self.path, || {
            let read = self.db.begin_read().map_err(|e| self.backend(e))?;
            read_stored(&read, &self.path)
        })
    }

    fn block(&self, hash: &BlockHash) -> Result<Option<Block<Tx>>, StoreError> {
        let block: Option<Block<Tx>> = self
            .get_by_hash(BODIES, hash)?
            .map(|value| decode_checked(&self.path, &format!("saved block {hash}"), &value))
            .transpose()?;
        match block {
            Some(b) if b.hash() != *hash => Err(self.corrupt(format!(
                "the block saved under {hash} is block {}",
                b.hash()
            ))),
            other => Ok(other),
        }
    }

    fn undo(&self, hash: &BlockHash) -> Result<Option<Undo>, StoreError> {
        let Some(value) = self.get_by_hash(UNDO, hash)? else {
            return Ok(None);
        };
        let what = format!("the undo record of block {hash}");
        let bytes: &[u8] = checked_bytes(&self.path, &what, &value)?;
        // Written against its block, which must be stored and intact.
        let block = self
            .block(hash)?
            .ok_or_else(|| self.corrupt(format!("{what} is saved without its block")))?;
        Undo::decode_against(bytes, &block.transactions)
            .map(Some)
            .map_err(|e| self.corrupt(format!("{what} does not decode: {e}")))
    }

    fn tx_block(&self, id: &TxId) -> Result<Option<BlockHash>, StoreError> {
        contain(&self.path, || {
            let read = self.db.begin_read().map_err(|e| self.backend(e))?;
            tx_index::Reader {
                read: &read,
                path: &self.path,
                block: |hash: &BlockHash| self.block(hash),
            }
            .tx_block(id)
        })
    }

    fn txs_in_range(&self, low: &TxId, high: &TxId, limit: usize) -> Result<Vec<TxId>, StoreError> {
        contain(&self.path, || {
            let read = self.db.begin_read().map_err(|e| self.backend(e))?;
            tx_index::Reader {
                read: &read,
                path: &self.path,
                block: |hash: &BlockHash| self.block(hash),
            }
            .txs_in_range(low, high, limit)
        })
    }

    fn put_mempool(&self, txs: &[SignedTx]) -> Result<(), StoreError> {
        self.put_list("pending", txs)
    }

    fn load_mempool(&self) -> Result<Vec<SignedTx>, StoreError> {
        self.load_list("pending", "the saved mempool")
    }

    fn put_bans(&self, bans: &[(BanKey, u64)]) -> Result<(), StoreError> {
        self.put_list("bans", bans)
    }

    fn load_bans(&self) -> Result<Vec<(BanKey, u64)>, StoreError> {
        self.load_list("bans", "the saved bans")
    }
}

//! The compaction at a clean close: bounded, and only after a clean stop.

use std::path::Path;
use std::time::{Duration, Instant};

use super::error::StoreError;

/// How long a clean close may spend compacting: calls of
/// `Database::compact` stop once this much time has passed (between calls,
/// as one cannot be interrupted).
const COMPACT_BUDGET: Duration = Duration::from_secs(1);

/// The largest file a clean close compacts. One call of redb 4.6's
/// `Database::compact` runs until nothing more moves (passes of up to a
/// million pages each, every pass a two-phase commit), so the time budget
/// alone cannot bound it: a longer file is left as it is, its free pages
/// reused by the next run's commits (`docs/ARCHITECTURE.md`, "The store's
/// format"). On the 2-core machine of `docs/PERFORMANCE.md` (release
/// build) an open file of 285 MB took 1.3 s to compact, one of 143 MB 0.8
/// to 1.1 s (the time follows what moves more than the length): 512 MiB
/// is a few seconds there, far inside a service manager's 90 s.
const COMPACT_MAX_FILE_BYTES: u64 = 512 << 20;

/// The bounds of a clean close's compaction.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Compaction {
    /// No call of `Database::compact` starts after this much time.
    pub budget: Duration,
    /// A longer file is not compacted.
    pub max_file_bytes: u64,
}

impl Default for Compaction {
    fn default() -> Self {
        Compaction {
            budget: COMPACT_BUDGET,
            max_file_bytes: COMPACT_MAX_FILE_BYTES,
        }
    }
}

/// Calls `Database::compact` until it has nothing left to do or `budget`
/// has passed (checked between calls; at least one call is made).
/// Returns the number of calls.
pub(crate) fn compact_within(
    db: &mut ::redb::Database,
    budget: Duration,
) -> Result<usize, ::redb::CompactionError> {
    let started = Instant::now();
    let mut calls = 0;
    loop {
        let more = db.compact()?;
        calls += 1;
        if !more || started.elapsed() >= budget {
            return Ok(calls);
        }
    }
}

/// Compacts `db` (the file at `path`) at a clean close. It gives back the room redb left free: the pages that
/// copy-on-write commits freed (the index's leaves are rewritten by every
/// commit that adds to them) and the tail redb keeps when it grows the
/// file (it doubles it). `Database::compact` moves the last pages into
/// the free ones and cuts the file after them.
///
/// Only at a clean stop ([`clean_stop`](super::BlockStore::clean_stop), with no write failed
/// since the open, and not while a panic unwinds), and bounded
/// ([`Compaction`]): a service manager's kill timer must not meet a stop
/// that compacts a file of many GB. A store left uncompacted loses
/// nothing: its free pages are reused by the next run's commits
/// (`docs/ARCHITECTURE.md`, "The store's format").
///
/// # Errors
///
/// [`StoreError::Backend`] if redb fails to compact (the caller logs it:
/// the file is as before, or compacted in part, and whole either way).
pub(super) fn compact_at_close(
    db: &mut ::redb::Database,
    path: &Path,
    compaction: Compaction,
) -> Result<(), StoreError> {
    let length = std::fs::metadata(path).map_or(u64::MAX, |m| m.len());
    if length > compaction.max_file_bytes {
        tracing::info!(
            path = %path.display(),
            "the store ({length} bytes) is not compacted at close: longer than {} bytes",
            compaction.max_file_bytes
        );
        return Ok(());
    }
    compact_within(db, compaction.budget)
        .map(drop)
        .map_err(|e| StoreError::Backend {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
}

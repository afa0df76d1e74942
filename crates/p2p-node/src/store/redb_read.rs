//! Reading a redb store without writing: the read-only pass at open that
//! checks an existing file before anything is written (see `redb.rs`,
//! "A damaged file"), and the checked reads it shares with the store.

use std::path::Path;

use ::redb::{ReadableDatabase, ReadableTable, TableDefinition};
use chain_core::Header;

use super::block_store::Stored;
use super::error::StoreError;
use super::redb_tables::{FORMAT_VERSION, HEADERS, META, STATE};

/// The read-only pass at open reads each page once: it needs no cache.
const READ_ONLY_CACHE_BYTES: usize = 256 << 10;

/// The payload of a checksummed value, its checksum checked; `what`
/// names it in errors.
pub(crate) fn checked_bytes<'a>(
    path: &Path,
    what: &str,
    value: &'a [u8],
) -> Result<&'a [u8], StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let (sum, bytes) = value
        .split_first_chunk::<32>()
        .ok_or_else(|| corrupt(format!("{what} is {} bytes, too short", value.len())))?;
    if blake3::hash(bytes).as_bytes() != sum {
        return Err(corrupt(format!("{what} fails its checksum")));
    }
    Ok(bytes)
}

/// Checks and decodes a checksummed value; `what` names it in errors.
pub(crate) fn decode_checked<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &str,
    value: &[u8],
) -> Result<T, StoreError> {
    let bytes = checked_bytes(path, what, value)?;
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("{what} does not decode: {e}"),
    })
}

/// Reads a table that may not exist yet; `None` if it does not.
pub(super) fn open_optional<K: ::redb::Key + 'static, V: ::redb::Value + 'static>(
    read: &::redb::ReadTransaction,
    table: TableDefinition<K, V>,
    path: &Path,
) -> Result<Option<::redb::ReadOnlyTable<K, V>>, StoreError> {
    match read.open_table(table) {
        Ok(t) => Ok(Some(t)),
        Err(::redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("table {table}: {e}"),
        }),
    }
}

/// Reads what a start needs (every header, the snapshot) from a read
/// transaction, checking each.
pub(super) fn read_stored(
    read: &::redb::ReadTransaction,
    path: &Path,
) -> Result<Stored, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let mut stored = Stored::default();
    if let Some(table) = open_optional(read, HEADERS, path)? {
        for entry in table.iter().map_err(|e| corrupt(e.to_string()))? {
            let (key, value) = entry.map_err(|e| corrupt(e.to_string()))?;
            let header = Header::from_bytes(value.value())
                .map_err(|e| corrupt(format!("a saved header does not decode: {e}")))?;
            let hash = header.hash();
            if hash.as_bytes()[..] != *key.value() {
                return Err(corrupt(format!(
                    "the header saved under {} hashes to {hash}",
                    hex::encode(key.value())
                )));
            }
            stored.headers.push((hash, header));
        }
    }
    if let Some(table) = open_optional(read, STATE, path)?
        && let Some(value) = table.get("snapshot").map_err(|e| corrupt(e.to_string()))?
    {
        stored.snapshot = Some(decode_checked(path, "the state snapshot", value.value())?);
    }
    Ok(stored)
}

/// The error of a database another process holds open: names the data
/// directory (the database file's).
pub(super) fn locked(path: &Path) -> StoreError {
    StoreError::Locked {
        dir: path.parent().unwrap_or(path).to_path_buf(),
    }
}

/// What the read-only pass found.
pub(super) enum Validation {
    /// Readable, what a start needs intact: here it is, so that loading it
    /// does not read the file a second time.
    Intact(Option<Box<Stored>>),
    /// Not closed cleanly: redb must repair it before it can be read.
    NeedsRepair,
}

/// An existing store opened for reading only, with the format it records
/// (`None`: created but never written to); `None` if it was not closed
/// cleanly and redb must repair it before it can be read.
pub(super) fn open_read_only(
    path: &Path,
) -> Result<Option<(::redb::ReadOnlyDatabase, Option<u64>)>, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let db = match ::redb::Builder::new()
        .set_cache_size(READ_ONLY_CACHE_BYTES)
        .open_read_only(path)
    {
        Ok(db) => db,
        Err(::redb::DatabaseError::RepairAborted) => return Ok(None),
        Err(::redb::DatabaseError::DatabaseAlreadyOpen) => return Err(locked(path)),
        Err(::redb::DatabaseError::Storage(::redb::StorageError::Io(e))) => {
            return Err(StoreError::Open {
                path: path.to_path_buf(),
                reason: e.to_string(),
            });
        }
        Err(e) => return Err(corrupt(e.to_string())),
    };
    let format = {
        let read = db.begin_read().map_err(|e| corrupt(e.to_string()))?;
        match open_optional(&read, META, path)? {
            Some(meta) => meta
                .get("format")
                .map_err(|e| corrupt(e.to_string()))?
                .map(|v| v.value()),
            None => None,
        }
    };
    Ok(Some((db, format)))
}

/// Reads an existing store's format, headers and snapshot without writing
/// a byte.
pub(super) fn validate_read_only(path: &Path) -> Result<Validation, StoreError> {
    let Some((db, format)) = open_read_only(path)? else {
        return Ok(Validation::NeedsRepair);
    };
    match format {
        Some(FORMAT_VERSION) => {
            let read = db.begin_read().map_err(|e| StoreError::Corrupt {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
            Ok(Validation::Intact(Some(Box::new(read_stored(
                &read, path,
            )?))))
        }
        Some(found) => Err(StoreError::Version {
            path: path.to_path_buf(),
            found,
            expected: FORMAT_VERSION,
        }),
        // A store created but never written to; `check_format` decides.
        None => Ok(Validation::Intact(None)),
    }
}

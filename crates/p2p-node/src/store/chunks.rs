//! Values kept in page-sized chunks: the `bodies` and `undo` tables.
//!
//! redb keeps a value in the leaf page that holds its key, and a leaf of
//! more than one 4 KiB page is allocated as a power of two of pages: a
//! 164 kB block in one value took 256 KiB, a third of it empty. So each
//! body and undo record is split into chunks that fill exactly one page
//! each (the last one less), under the key `block hash (32 bytes) ||
//! chunk number (u32, big-endian)`: the chunks of a value are adjacent,
//! in order, and a value reads back as their concatenation. A chunk lost
//! or added shows as a value that fails its checksum, like any other
//! damage.

use ::redb::{ReadableTable, StorageError};

/// A leaf page of one chunk: the page (4 KiB) less redb's leaf header
/// (4 bytes), the key's and the value's end offsets (4 bytes each) and
/// the key.
pub(crate) const CHUNK_BYTES: usize = 4096 - 4 - 4 - 4 - KEY_BYTES;

/// A chunk's key: the block hash, then the chunk's number.
const KEY_BYTES: usize = 32 + 4;

/// The key of chunk `i` of the value under `hash`.
pub(crate) fn key(hash: &[u8; 32], i: u32) -> [u8; KEY_BYTES] {
    let mut key = [0u8; KEY_BYTES];
    key[..32].copy_from_slice(hash);
    key[32..].copy_from_slice(&i.to_be_bytes());
    key
}

/// Replaces the value under `hash` with `value`, in chunks.
pub(crate) fn put(
    table: &mut ::redb::Table<&[u8], &[u8]>,
    hash: &[u8; 32],
    value: &[u8],
) -> Result<(), StorageError> {
    remove(table, hash)?;
    for (i, chunk) in value.chunks(CHUNK_BYTES).enumerate() {
        let i = u32::try_from(i).unwrap_or(u32::MAX);
        table.insert(key(hash, i).as_slice(), chunk)?;
    }
    Ok(())
}

/// Removes every chunk of the value under `hash`.
pub(crate) fn remove(
    table: &mut ::redb::Table<&[u8], &[u8]>,
    hash: &[u8; 32],
) -> Result<(), StorageError> {
    let (low, high) = (key(hash, 0), key(hash, u32::MAX));
    let keys = table
        .range(low.as_slice()..=high.as_slice())?
        .map(|entry| entry.map(|(k, _)| k.value().to_vec()))
        .collect::<Result<Vec<_>, _>>()?;
    for k in keys {
        table.remove(k.as_slice())?;
    }
    Ok(())
}

/// The value under `hash`: its chunks in order, concatenated; `None` if
/// there is none.
pub(crate) fn get(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    hash: &[u8; 32],
) -> Result<Option<Vec<u8>>, StorageError> {
    let (low, high) = (key(hash, 0), key(hash, u32::MAX));
    let mut value: Option<Vec<u8>> = None;
    for entry in table.range(low.as_slice()..=high.as_slice())? {
        let (_, chunk) = entry?;
        value
            .get_or_insert_with(Vec::new)
            .extend_from_slice(chunk.value());
    }
    Ok(value)
}

/// Calls `f` with each value of the table, whole, in key order: the
/// 32-byte hash it is under (or, for a key that is not a chunk's, that
/// key) and its bytes.
pub(crate) fn for_each<E>(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    err: impl Fn(StorageError) -> E,
    mut f: impl FnMut(&[u8], &[u8]) -> Result<(), E>,
) -> Result<(), E> {
    let mut current: Option<(Vec<u8>, Vec<u8>)> = None;
    for entry in table.iter().map_err(&err)? {
        let (k, chunk) = entry.map_err(&err)?;
        let k = k.value();
        let owner = if k.len() == KEY_BYTES { &k[..32] } else { k };
        match &mut current {
            Some((key, value)) if key.as_slice() == owner && k.len() == KEY_BYTES => {
                value.extend_from_slice(chunk.value());
            }
            _ => {
                if let Some((key, value)) = current.take() {
                    f(&key, &value)?;
                }
                current = Some((owner.to_vec(), chunk.value().to_vec()));
            }
        }
    }
    if let Some((key, value)) = current {
        f(&key, &value)?;
    }
    Ok(())
}

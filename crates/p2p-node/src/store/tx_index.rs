//! The transaction index (table `txs`): a key for each transaction of
//! the best chain, the first 8 bytes of its id then the height of its
//! block (`best` names the block), with no value.
//!
//! Twelve bytes a transaction, where the whole id and a height took 36:
//! the index was a fifth of the file (`docs/PERFORMANCE.md`, "The store's
//! size"). The rest of the id is in the block, so a lookup reads the
//! block: a whole id's is a range scan of the few keys with its 8 bytes
//! (almost always one), each checked against its block; a prefix search
//! reads the block of each key in its range, once per block.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::Path;

use ::redb::{ReadableTable, Table};
use chain_core::{Block, BlockHash, Transaction, TxId};
use escrow::Tx;

use super::block_store::IndexChange;
use super::error::StoreError;
use super::redb_read::open_optional;
use super::redb_tables::{BEST, TXS};

/// A key of the index.
pub(super) type Key = [u8; 12];

/// The key of transaction `id` in the block at `height`.
pub(super) fn key(id: &TxId, height: u32) -> Key {
    let mut key = [0; 12];
    key[..8].copy_from_slice(&id.as_bytes()[..8]);
    key[8..].copy_from_slice(&height.to_be_bytes());
    key
}

/// A key's id prefix and height.
pub(super) fn parts(key: &Key) -> ([u8; 8], u32) {
    let (prefix, height) = key.split_at(8);
    let mut p = [0; 8];
    p.copy_from_slice(prefix);
    let mut h = [0; 4];
    h.copy_from_slice(height);
    (p, u32::from_be_bytes(h))
}

/// The first 8 bytes of an id.
fn prefix_of(id: &TxId) -> [u8; 8] {
    parts(&key(id, 0)).0
}

/// Records one change of the best chain: `best` and the index follow it.
pub(super) fn write(
    txs: &mut Table<&Key, ()>,
    best: &mut Table<u32, &[u8; 32]>,
    change: &IndexChange,
) -> Result<(), String> {
    let (block, applied) = match change {
        IndexChange::Applied(block) => (block, true),
        IndexChange::Undone(block) => (block, false),
    };
    let hash = block.hash();
    let height =
        u32::try_from(block.header.height).map_err(|_| "a height beyond u32::MAX".to_string())?;
    let err = |e: ::redb::StorageError| e.to_string();
    if applied {
        best.insert(height, hash.as_bytes()).map_err(err)?;
        for tx in &block.transactions {
            txs.insert(&key(&tx.id(), height), ()).map_err(err)?;
        }
        return Ok(());
    }
    // Another block of this height that took its place keeps it.
    let here = best
        .get(height)
        .map_err(err)?
        .is_some_and(|v| v.value() == hash.as_bytes());
    if here {
        best.remove(height).map_err(err)?;
        for tx in &block.transactions {
            txs.remove(&key(&tx.id(), height)).map_err(err)?;
        }
    }
    Ok(())
}

/// Reads the index for one lookup, blocks through `block`.
pub(super) struct Reader<'a, B> {
    /// The read transaction.
    pub read: &'a ::redb::ReadTransaction,
    /// The file, for errors.
    pub path: &'a Path,
    /// A stored block by hash.
    pub block: B,
}

impl<B> Reader<'_, B>
where
    B: FnMut(&BlockHash) -> Result<Option<Block<Tx>>, StoreError>,
{
    fn backend(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Backend {
            path: self.path.to_path_buf(),
            reason: e.to_string(),
        }
    }

    /// The best chain's block at `height`, named by a key.
    fn best_at(&self, height: u32, what: &str) -> Result<BlockHash, StoreError> {
        let best = open_optional(self.read, BEST, self.path)?;
        let hash = match &best {
            Some(best) => best.get(height).map_err(|e| self.backend(e))?,
            None => None,
        };
        hash.map(|h| BlockHash::from_bytes(*h.value()))
            .ok_or_else(|| StoreError::Corrupt {
                path: self.path.to_path_buf(),
                reason: format!(
                    "the index entry of {what} names height {height}, where the best chain has no block"
                ),
            })
    }

    /// The keys from `low` to `high` (their first 8 bytes), as those 8
    /// bytes and a height, in key order, read as they are taken.
    fn keys(
        &self,
        low: &TxId,
        high: &TxId,
    ) -> Result<impl Iterator<Item = Result<([u8; 8], u32), StoreError>> + use<B>, StoreError> {
        let table = open_optional(self.read, TXS, self.path)?;
        let (from, to) = (key(low, 0), key(high, u32::MAX));
        let range = match &table {
            Some(table) => Some(
                table
                    .range::<&Key>(&from..=&to)
                    .map_err(|e| self.backend(e))?,
            ),
            None => None,
        };
        let path = self.path.to_path_buf();
        Ok(range.into_iter().flatten().map(move |entry| {
            entry
                .map(|(k, _)| parts(k.value()))
                .map_err(|e| StoreError::Backend {
                    path: path.clone(),
                    reason: e.to_string(),
                })
        }))
    }

    /// The best-chain block holding transaction `id`. A candidate block
    /// that cannot be read (damaged) is the answer if no other holds it:
    /// the caller reads it and meets the damage. A key whose block holds
    /// no id of its 8 bytes is damaged: an error, if no block holds `id`.
    pub fn tx_block(&mut self, id: &TxId) -> Result<Option<BlockHash>, StoreError> {
        let mut unread = None;
        let mut wrong = None;
        let prefix = prefix_of(id);
        for entry in self.keys(id, id)? {
            let (_, height) = entry?;
            let hash = self.best_at(height, &format!("transaction {id}"))?;
            match (self.block)(&hash) {
                Ok(Some(block)) => {
                    let ids: Vec<TxId> = block.transactions.iter().map(Tx::id).collect();
                    if ids.contains(id) {
                        return Ok(Some(hash));
                    }
                    if !ids.iter().any(|other| prefix_of(other) == prefix) {
                        wrong.get_or_insert(hash);
                    }
                }
                Ok(None) | Err(StoreError::Corrupt { .. }) => {
                    unread.get_or_insert(hash);
                }
                Err(e) => return Err(e),
            }
        }
        match (unread, wrong) {
            (Some(hash), _) => Ok(Some(hash)),
            (None, Some(hash)) => Err(StoreError::Corrupt {
                path: self.path.to_path_buf(),
                reason: format!(
                    "the index entry of transaction {id} names block {hash}, which holds no transaction of its first 8 bytes"
                ),
            }),
            (None, None) => Ok(None),
        }
    }

    /// The ids from `low` to `high` (both included), lowest first, at most
    /// `limit`; each block read once. A block that cannot be read
    /// (damaged) gives none.
    pub fn txs_in_range(
        &mut self,
        low: &TxId,
        high: &TxId,
        limit: usize,
    ) -> Result<Vec<TxId>, StoreError> {
        let mut ids_at: HashMap<u32, Vec<TxId>> = HashMap::new();
        let mut out: Vec<TxId> = Vec::new();
        let mut group: Vec<TxId> = Vec::new();
        let mut current = None;
        for entry in self.keys(low, high)? {
            let (prefix, height) = entry?;
            if current != Some(prefix) {
                // Keys of one prefix are in height order, not id order:
                // a prefix's ids are sorted once all are in.
                group.sort_unstable();
                group.dedup();
                out.append(&mut group);
                if out.len() >= limit {
                    break;
                }
                current = Some(prefix);
            }
            let ids = match ids_at.entry(height) {
                Entry::Occupied(ids) => ids.into_mut(),
                Entry::Vacant(slot) => {
                    let hash = self.best_at(height, "a transaction")?;
                    slot.insert(match (self.block)(&hash) {
                        Ok(Some(block)) => block.transactions.iter().map(Tx::id).collect(),
                        Ok(None) | Err(StoreError::Corrupt { .. }) => Vec::new(),
                        Err(e) => return Err(e),
                    })
                }
            };
            group.extend(
                ids.iter()
                    .filter(|id| prefix_of(id) == prefix && *id >= low && *id <= high),
            );
        }
        group.sort_unstable();
        group.dedup();
        out.append(&mut group);
        out.truncate(limit);
        Ok(out)
    }
}

//! `p2p-node check`: every record of a stopped node's store read back and
//! checked, as bitcoind's `-checkblocks` does, without a byte written.
//!
//! A start reads and checks only the headers and the snapshot (its cost
//! must not grow with the blocks' contents); this pass reads everything:
//! each header against its hash, each body against its checksum, its hash
//! and its header's merkle root, each undo record, the transaction index
//! against the blocks it names, the snapshot against the headers, and the
//! saved mempool and bans. Every damaged record is listed, not just the
//! first.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use ::redb::{ReadableDatabase, ReadableTable};
use chain_core::{Block, BlockHash, Header, Transaction};
use escrow::{SignedTx, Tx, Undo};

use super::block_store::StateSnapshot;
use super::error::StoreError;
use super::redb::{STORE_FILE, contain};
use super::redb_read::{checked_bytes, decode_checked, open_optional, open_read_only};
use super::redb_tables::{BEST, BODIES, FORMAT_VERSION, HEADERS, MEMPOOL, STATE, TXS, UNDO};
use super::{chunks, tx_index};
use crate::penalty::BanKey;

/// One damaged record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// The table (`headers`, `bodies`, `undo`, `txs`, `state`, `mempool`).
    pub table: &'static str,
    /// The record's key, as text (hex for hashes and ids).
    pub key: String,
    /// What is wrong with it.
    pub problem: String,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.table, self.key, self.problem)
    }
}

/// What [`check`] found: how many records each table holds, and every
/// damaged one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Records read, by table.
    pub records: BTreeMap<&'static str, u64>,
    /// The damaged records, table by table.
    pub damage: Vec<Damage>,
}

impl CheckReport {
    /// Whether every record is intact.
    pub fn is_intact(&self) -> bool {
        self.damage.is_empty()
    }

    fn count(&mut self, table: &'static str) {
        *self.records.entry(table).or_insert(0) += 1;
    }

    fn damaged(&mut self, table: &'static str, key: impl Into<String>, problem: impl Into<String>) {
        self.damage.push(Damage {
            table,
            key: key.into(),
            problem: problem.into(),
        });
    }
}

/// Reads every record of the store in `dir` (`chain.redb`) and checks it.
/// The node must be stopped: redb locks the file while a node has it open.
///
/// # Errors
///
/// [`StoreError`] if the file cannot be opened at all (missing, locked,
/// another format, not a redb file, or not closed cleanly: a node's start
/// repairs that); damaged records are in the report, not errors.
pub fn check(dir: &Path) -> Result<CheckReport, StoreError> {
    let path = dir.join(STORE_FILE);
    if !path.exists() {
        return Err(StoreError::Open {
            path,
            reason: "there is no store here (check --data-dir)".to_string(),
        });
    }
    contain(&path, || check_file(&path))
}

fn check_file(path: &Path) -> Result<CheckReport, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let Some((db, format)) = open_read_only(path)? else {
        return Err(corrupt(
            "it was not closed cleanly: start the node once (redb repairs it), stop it, \
             and check again"
                .to_string(),
        ));
    };
    let read = db.begin_read().map_err(|e| corrupt(e.to_string()))?;
    if let Some(found) = format
        && found != FORMAT_VERSION
    {
        return Err(StoreError::Version {
            path: path.to_path_buf(),
            found,
            expected: FORMAT_VERSION,
        });
    }
    let mut report = CheckReport::default();
    let headers = check_headers(&read, path, &mut report)?;
    let bodies = check_bodies(&read, path, &headers, &mut report)?;
    check_undo(&read, path, &headers, &bodies, &mut report)?;
    check_index(&read, path, &headers, &bodies, &mut report)?;
    check_lists(&read, path, &headers, &mut report)?;
    Ok(report)
}

/// The readable hash of a key, or the damage of one that is not 32 bytes.
fn hash_key(key: &[u8]) -> Option<[u8; 32]> {
    key.try_into().ok()
}

/// Every header: decodes, hashes to its key. Returns the intact ones.
fn check_headers(
    read: &::redb::ReadTransaction,
    path: &Path,
    report: &mut CheckReport,
) -> Result<BTreeMap<BlockHash, Header>, StoreError> {
    let mut headers = BTreeMap::new();
    let Some(table) = open_optional(read, HEADERS, path)? else {
        return Ok(headers);
    };
    for entry in table.iter().map_err(|e| backend(path, e))? {
        let (key, value) = entry.map_err(|e| backend(path, e))?;
        report.count("headers");
        let key_hex = hex::encode(key.value());
        match Header::from_bytes(value.value()) {
            Ok(header) if header.hash().as_bytes()[..] == *key.value() => {
                headers.insert(header.hash(), header);
            }
            Ok(header) => {
                report.damaged("headers", key_hex, format!("hashes to {}", header.hash()));
            }
            Err(e) => report.damaged("headers", key_hex, format!("does not decode: {e}")),
        }
    }
    Ok(headers)
}

/// What the check of one stored body found.
#[derive(Clone, Copy, Debug, Default)]
struct BodyCheck {
    /// Whether it decodes, checks and is its header's block.
    intact: bool,
    /// How many of its transactions the index names it for (when it is
    /// the best chain's block at its height).
    indexed: u64,
}

/// Each body (chunks whole, checksum, decodes, its hash, its merkle
/// root), and every header's body is there; counts, for each intact body,
/// the index entries that name it.
fn check_bodies(
    read: &::redb::ReadTransaction,
    path: &Path,
    headers: &BTreeMap<BlockHash, Header>,
    report: &mut CheckReport,
) -> Result<BTreeMap<BlockHash, BodyCheck>, StoreError> {
    let mut bodies = BTreeMap::new();
    let index = open_optional(read, TXS, path)?;
    let best = open_optional(read, BEST, path)?;
    if let Some(table) = open_optional(read, BODIES, path)? {
        chunks::for_each(
            &table,
            |e| backend(path, e),
            |key, value| {
                report.count("bodies");
                let Some(hash) = hash_key(key).map(BlockHash::from_bytes) else {
                    report.damaged("bodies", hex::encode(key), "the key is not a chunk's");
                    return Ok(());
                };
                bodies.insert(hash, BodyCheck::default());
                let Some(block) = intact_body(path, &hash, value, report) else {
                    return Ok(());
                };
                let height = u32::try_from(block.header.height).unwrap_or(u32::MAX);
                let on_best = match &best {
                    Some(best) => best
                        .get(height)
                        .map_err(|e| backend(path, e))?
                        .is_some_and(|v| v.value() == hash.as_bytes()),
                    None => false,
                };
                let mut indexed = 0;
                if let Some(index) = &index
                    && on_best
                {
                    // Two ids of the block may share a key (their first
                    // 8 bytes): one entry for both.
                    let keys: HashSet<tx_index::Key> = block
                        .transactions
                        .iter()
                        .map(|tx| tx_index::key(&tx.id(), height))
                        .collect();
                    for key in keys {
                        if index.get(&key).map_err(|e| backend(path, e))?.is_some() {
                            indexed += 1;
                        }
                    }
                }
                bodies.insert(
                    hash,
                    BodyCheck {
                        intact: true,
                        indexed,
                    },
                );
                Ok(())
            },
        )?;
    }
    for (hash, header) in headers {
        if !bodies.contains_key(hash) {
            report.damaged(
                "bodies",
                hash.to_string(),
                format!(
                    "missing: the header at height {} has no body",
                    header.height
                ),
            );
        }
    }
    Ok(bodies)
}

/// The block a body holds, if it checks (checksum, decodes, its hash,
/// its merkle root); its damage reported if not.
fn intact_body(
    path: &Path,
    hash: &BlockHash,
    value: &[u8],
    report: &mut CheckReport,
) -> Option<Block<Tx>> {
    let key_hex = hash.to_string();
    let block: Block<Tx> = match decode_checked(path, "the body", value) {
        Ok(b) => b,
        Err(e) => {
            report.damaged("bodies", key_hex, reason(e));
            return None;
        }
    };
    if block.hash() != *hash {
        report.damaged("bodies", key_hex, format!("holds block {}", block.hash()));
        return None;
    }
    if chain_core::merkle_root(&block.commitments()) != block.header.merkle_root {
        report.damaged(
            "bodies",
            key_hex,
            "its transactions do not match its header",
        );
        return None;
    }
    Some(block)
}

/// Each undo record: its checksum, a stored header for its hash, and,
/// when its block is intact (a damaged block is reported as such, and
/// its record checked once the block is repaired), that it decodes
/// against the block.
fn check_undo(
    read: &::redb::ReadTransaction,
    path: &Path,
    headers: &BTreeMap<BlockHash, Header>,
    bodies: &BTreeMap<BlockHash, BodyCheck>,
    report: &mut CheckReport,
) -> Result<(), StoreError> {
    let Some(table) = open_optional(read, UNDO, path)? else {
        return Ok(());
    };
    let stored = open_optional(read, BODIES, path)?;
    chunks::for_each(
        &table,
        |e| backend(path, e),
        |key, value| {
            report.count("undo");
            let key_hex = hex::encode(key);
            let bytes = match checked_bytes(path, "the undo record", value) {
                Ok(bytes) => bytes,
                Err(e) => {
                    report.damaged("undo", key_hex, reason(e));
                    return Ok(());
                }
            };
            let Some(hash) = hash_key(key)
                .map(BlockHash::from_bytes)
                .filter(|h| headers.contains_key(h))
            else {
                report.damaged("undo", key_hex, "no stored header has this hash");
                return Ok(());
            };
            if !bodies.get(&hash).is_some_and(|b| b.intact) {
                return Ok(());
            }
            let body = match &stored {
                Some(t) => chunks::get(t, hash.as_bytes()).map_err(|e| backend(path, e))?,
                None => None,
            };
            let block: Option<Block<Tx>> =
                body.and_then(|v| decode_checked(path, "the body", &v).ok());
            if let Some(block) = block
                && let Err(e) = Undo::decode_against(bytes, &block.transactions)
            {
                report.damaged("undo", key_hex, format!("does not decode: {e}"));
            }
            Ok(())
        },
    )
}

/// The best chain's table (each entry a stored header of that height) and
/// the transaction index: each key names a height of the best chain,
/// whose block is stored and holds a transaction of the key's 8 bytes.
fn check_index(
    read: &::redb::ReadTransaction,
    path: &Path,
    headers: &BTreeMap<BlockHash, Header>,
    bodies: &BTreeMap<BlockHash, BodyCheck>,
    report: &mut CheckReport,
) -> Result<(), StoreError> {
    let mut best_chain: BTreeMap<u32, BlockHash> = BTreeMap::new();
    if let Some(best) = open_optional(read, BEST, path)? {
        for entry in best.iter().map_err(|e| backend(path, e))? {
            let (height, hash) = entry.map_err(|e| backend(path, e))?;
            report.count("best");
            let (height, hash) = (height.value(), BlockHash::from_bytes(*hash.value()));
            if headers
                .get(&hash)
                .is_some_and(|h| h.height == u64::from(height))
            {
                best_chain.insert(height, hash);
            } else {
                report.damaged(
                    "best",
                    height.to_string(),
                    format!("names block {hash}, not a stored header of this height"),
                );
            }
        }
    }
    let Some(table) = open_optional(read, TXS, path)? else {
        return Ok(());
    };
    let mut named: BTreeMap<BlockHash, u64> = BTreeMap::new();
    for entry in table.iter().map_err(|e| backend(path, e))? {
        let (key, _) = entry.map_err(|e| backend(path, e))?;
        report.count("txs");
        let key_hex = hex::encode(key.value());
        let (_, height) = tx_index::parts(key.value());
        let Some(&block) = best_chain.get(&height) else {
            report.damaged(
                "txs",
                key_hex,
                format!("names height {height}, where the best chain has no stored block"),
            );
            continue;
        };
        match bodies.get(&block) {
            Some(b) if b.intact => *named.entry(block).or_insert(0) += 1,
            Some(_) => {}
            None => report.damaged(
                "txs",
                key_hex,
                format!("names block {block}, which is not stored"),
            ),
        }
    }
    // The blocks some entry wrongly names, with the keys of the ids each
    // holds.
    let mut wrong: BTreeMap<BlockHash, HashSet<tx_index::Key>> = BTreeMap::new();
    if let Some(stored) = open_optional(read, BODIES, path)? {
        for (block, count) in named {
            if bodies.get(&block).is_some_and(|b| b.indexed >= count) {
                continue;
            }
            let value = chunks::get(&stored, block.as_bytes()).map_err(|e| backend(path, e))?;
            let body: Option<Block<Tx>> =
                value.and_then(|v| decode_checked(path, "the body", &v).ok());
            let ids = body.map_or_else(HashSet::new, |b| {
                let height = u32::try_from(b.header.height).unwrap_or(u32::MAX);
                b.transactions
                    .iter()
                    .map(|tx| tx_index::key(&tx.id(), height))
                    .collect()
            });
            wrong.insert(block, ids);
        }
    }
    if wrong.is_empty() {
        return Ok(());
    }
    for entry in table.iter().map_err(|e| backend(path, e))? {
        let (key, _) = entry.map_err(|e| backend(path, e))?;
        let Some(&block) = best_chain.get(&tx_index::parts(key.value()).1) else {
            continue;
        };
        if let Some(ids) = wrong.get(&block)
            && !ids.contains(key.value())
        {
            report.damaged(
                "txs",
                hex::encode(key.value()),
                format!("block {block} does not hold it"),
            );
        }
    }
    Ok(())
}

/// The snapshot (checksum, decodes, at a stored header of its height, or at
/// height 0: genesis) and
/// the saved mempool and bans (checksum, decode).
fn check_lists(
    read: &::redb::ReadTransaction,
    path: &Path,
    headers: &BTreeMap<BlockHash, Header>,
    report: &mut CheckReport,
) -> Result<(), StoreError> {
    if let Some(table) = open_optional(read, STATE, path)? {
        for entry in table.iter().map_err(|e| backend(path, e))? {
            let (key, value) = entry.map_err(|e| backend(path, e))?;
            report.count("state");
            let key = key.value().to_string();
            if key != "snapshot" {
                report.damaged("state", key, "an unknown key");
                continue;
            }
            match decode_checked::<StateSnapshot>(path, "the snapshot", value.value()) {
                Ok(s) if headers.get(&s.block).is_some_and(|h| h.height == s.height) => {}
                // At genesis, which is not stored (every node has it from
                // its genesis file; the start checks the network): what a
                // node's first commit writes.
                Ok(s) if s.height == 0 && !headers.contains_key(&s.block) => {}
                Ok(s) => report.damaged(
                    "state",
                    key,
                    format!(
                        "it is at block {} (height {}), not a stored header",
                        s.block, s.height
                    ),
                ),
                Err(e) => report.damaged("state", key, reason(e)),
            }
        }
    }
    if let Some(table) = open_optional(read, MEMPOOL, path)? {
        for entry in table.iter().map_err(|e| backend(path, e))? {
            let (key, value) = entry.map_err(|e| backend(path, e))?;
            report.count("mempool");
            let key = key.value().to_string();
            let decoded = match key.as_str() {
                "pending" => {
                    decode_checked::<Vec<SignedTx>>(path, "the list", value.value()).map(drop)
                }
                "bans" => {
                    decode_checked::<Vec<(BanKey, u64)>>(path, "the list", value.value()).map(drop)
                }
                _ => {
                    report.damaged("mempool", key, "an unknown key");
                    continue;
                }
            };
            if let Err(e) = decoded {
                report.damaged("mempool", key, reason(e));
            }
        }
    }
    Ok(())
}

/// A read that failed inside redb: the file itself is unreadable there.
fn backend(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// The reason of a record's error, without the file's name (the report
/// names it once).
fn reason(e: StoreError) -> String {
    match e {
        StoreError::Corrupt { reason, .. } | StoreError::Backend { reason, .. } => reason,
        other => other.to_string(),
    }
}

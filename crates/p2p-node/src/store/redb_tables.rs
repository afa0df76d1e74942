//! The redb store's tables and its format version: what `redb.rs` writes
//! and `redb_read.rs` and `check.rs` read.
//!
//! # Tables (format 3)
//!
//! | table | key | value |
//! |---|---|---|
//! | `meta` | `"format"` | [`FORMAT_VERSION`] |
//! | `headers` | block hash (32 bytes) | the 96-byte header |
//! | `bodies` | block hash | checksum, then the block's postcard bytes |
//! | `undo` | block hash | checksum, then the undo record's postcard bytes |
//! | `txs` | transaction id | the best-chain block holding it (no checksum) |
//! | `state` | `"snapshot"` | checksum, then the [`StateSnapshot`](super::StateSnapshot)'s postcard bytes |
//! | `mempool` | `"pending"`, `"bans"` | checksum, then the list's postcard bytes |
//!
//! Each checksum is the 32-byte BLAKE3 hash of the bytes after it; a
//! header is checked by its hash, which is its key.

use ::redb::TableDefinition;

/// Store metadata: `format` = [`FORMAT_VERSION`].
pub(super) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Block headers by hash.
pub(super) const HEADERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("headers");
/// Block bodies by hash, checksummed.
pub(super) const BODIES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("bodies");
/// Undo records by block hash, checksummed.
pub(super) const UNDO: TableDefinition<&[u8], &[u8]> = TableDefinition::new("undo");
/// The transaction index: id to best-chain block hash.
pub(super) const TXS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("txs");
/// The ledger snapshot, checksummed.
pub(super) const STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("state");
/// Saved lists: key `pending` = the mempool's transactions in order, key
/// `bans` = the active bans with their expiries; checksummed.
pub(super) const MEMPOOL: TableDefinition<&str, &[u8]> = TableDefinition::new("mempool");
/// The format this node writes. A store of another format is refused.
/// Version 3: headers, bodies, undo records, the transaction index and a
/// ledger snapshot in tables of their own (version 2 kept only blocks, in
/// save order, and replayed them all at every start). Version 4: the same
/// tables, but signed transactions carry a fee (`escrow::TxBody::fee`), so
/// a version 3 store's blocks no longer decode.
pub const FORMAT_VERSION: u64 = 4;

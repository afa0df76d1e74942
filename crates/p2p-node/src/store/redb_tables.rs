//! The redb store's tables and its format version: what `redb.rs` writes
//! and `redb_read.rs` and `check.rs` read.
//!
//! # Tables (format 5)
//!
//! | table | key | value |
//! |---|---|---|
//! | `meta` | `"format"` | [`FORMAT_VERSION`] |
//! | `headers` | block hash (32 bytes) | the 96-byte header |
//! | `bodies` | block hash, chunk number | a chunk of: checksum, then the block's postcard bytes |
//! | `undo` | block hash, chunk number | a chunk of: checksum, then the undo record against its block |
//! | `txs` | transaction id | the height (`u32`) of the best-chain block holding it (no checksum) |
//! | `best` | height (`u32`) | the best chain's block hash there (no checksum) |
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
/// Block bodies by hash, checksummed, in page-sized chunks (`chunks.rs`).
pub(super) const BODIES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("bodies");
/// Undo records by block hash, checksummed, written against their block
/// (`Undo::encode_against`, escrow's `ledger/undo_codec.rs`), in page-sized chunks.
pub(super) const UNDO: TableDefinition<&[u8], &[u8]> = TableDefinition::new("undo");
/// The transaction index: a key for each transaction of the best chain,
/// the first 8 bytes of its id then its block's height, big-endian; no
/// value (`tx_index.rs`).
pub(super) const TXS: TableDefinition<&[u8; 12], ()> = TableDefinition::new("txs");
/// The best chain: height to block hash.
pub(super) const BEST: TableDefinition<u32, &[u8; 32]> = TableDefinition::new("best");
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
/// a version 3 store's blocks no longer decode. Version 5: the same
/// records in less room (`docs/ARCHITECTURE.md`, "The store's format"):
/// bodies and undo records in page-sized chunks, undo records written
/// against their block, the index naming a height of the new `best`
/// table rather than a block hash. Version 6: the index's keys are the
/// first 8 bytes of the id and the height, with no value (`tx_index.rs`),
/// where they were the whole id with the height as value.
pub const FORMAT_VERSION: u64 = 6;

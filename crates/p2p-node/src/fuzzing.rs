//! Entry points for the cargo-fuzz targets (`fuzz/`), and nothing else.
//!
//! Most doors that outside bytes reach are public already: the wire codec,
//! `Node::start_with` with its `Transport` and `BlockStore` seams (a
//! connection's handshake and message loop, what a start reads back), and
//! [`crate::api::router`] (every JSON body of the API). The store's record
//! decoders are private to `store/`; these functions call them unchanged,
//! so a fuzz target decodes a stored value exactly as `RedbStore` does
//! when it reads one back. Not part of the node's API: hidden from the
//! docs and free to change with the fuzz targets.

use std::path::Path;

use chain_core::Block;
use escrow::{SignedTx, Tx, Undo};

use crate::penalty::BanKey;
use crate::store::StateSnapshot;
use crate::store::StoreError;
use crate::store::redb::checksummed;
use crate::store::redb_read::{checked_bytes, decode_checked};

/// The path the decoders name in their errors (no file is read).
const FUZZ_PATH: &str = "fuzz-input";

/// A stored value as `RedbStore` writes it: the 32-byte BLAKE3 checksum
/// of `bytes`, then `bytes`. A fuzz target wraps its input in this to get
/// past the checksum to the record decoder.
pub fn with_checksum(bytes: &[u8]) -> Vec<u8> {
    checksummed(bytes)
}

/// Decodes a stored block body (table `bodies`).
///
/// # Errors
///
/// [`StoreError::Corrupt`], as the store reports a damaged value.
pub fn decode_block(value: &[u8]) -> Result<Block<Tx>, StoreError> {
    decode_checked(Path::new(FUZZ_PATH), "a fuzzed block", value)
}

/// Decodes a stored undo record (table `undo`) of `block`: written
/// against the block (`Undo::encode_against`), as the store writes it.
///
/// # Errors
///
/// [`StoreError::Corrupt`], as the store reports a damaged value.
pub fn decode_undo(value: &[u8], block: &Block<Tx>) -> Result<Undo, StoreError> {
    let path = Path::new(FUZZ_PATH);
    let bytes = checked_bytes(path, "a fuzzed undo record", value)?;
    Undo::decode_against(bytes, &block.transactions).map_err(|e| StoreError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("a fuzzed undo record does not decode: {e}"),
    })
}

/// Decodes a stored ledger snapshot (table `state`).
///
/// # Errors
///
/// [`StoreError::Corrupt`], as the store reports a damaged value.
pub fn decode_snapshot(value: &[u8]) -> Result<StateSnapshot, StoreError> {
    decode_checked(Path::new(FUZZ_PATH), "a fuzzed snapshot", value)
}

/// Decodes the stored mempool (table `mempool`, key `pending`).
///
/// # Errors
///
/// [`StoreError::Corrupt`], as the store reports a damaged value.
pub fn decode_mempool(value: &[u8]) -> Result<Vec<SignedTx>, StoreError> {
    decode_checked(Path::new(FUZZ_PATH), "a fuzzed mempool", value)
}

/// Decodes the stored bans (table `mempool`, key `bans`).
///
/// # Errors
///
/// [`StoreError::Corrupt`], as the store reports a damaged value.
pub fn decode_bans(value: &[u8]) -> Result<Vec<(BanKey, u64)>, StoreError> {
    decode_checked(Path::new(FUZZ_PATH), "a fuzzed ban list", value)
}

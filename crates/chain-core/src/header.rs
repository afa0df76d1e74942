//! The block header and its canonical byte layout, and the block.
//!
//! # Layout
//!
//! A header is exactly [`Header::SIZE`] = 96 bytes. Integers are little-endian
//! and fixed width (never varints), so every header has one encoding:
//!
//! | offset | size | field          | type                                     |
//! |-------:|-----:|----------------|------------------------------------------|
//! |      0 |    4 | `version`      | `u32` LE                                 |
//! |      4 |    8 | `height`       | `u64` LE                                 |
//! |     12 |   32 | `parent`       | [`BlockHash`] bytes                      |
//! |     44 |   32 | `merkle_root`  | [`MerkleRoot`] bytes                     |
//! |     76 |    8 | `timestamp_ms` | `u64` LE, milliseconds since Unix epoch  |
//! |     84 |    4 | `target`       | [`CompactTarget`] as `u32` LE            |
//! |     88 |    8 | `nonce`        | `u64` LE                                 |
//!
//! The block hash is SHA-256 of these 96 bytes. SHA-256 works on 64-byte
//! blocks and pads a message with one `0x80` byte and an 8-byte length, so a
//! message of up to 119 bytes fits in two blocks. The first 64 bytes
//! (version, height, parent, 20 bytes of the merkle root) never change while
//! mining: the miner compresses them once (the *midstate*) and then runs one
//! compression per nonce on the second block, where the nonce sits at offset
//! 24. A header of 120 bytes or more would need a third block and halve the
//! hash rate; a test pins the size.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::hash::{BlockHash, MerkleRoot, TxId};
use crate::pow::CompactTarget;

/// The header version this code writes and accepts.
pub const HEADER_VERSION: u32 = 1;

/// Why bytes are not a header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// A header is exactly [`Header::SIZE`] bytes.
    #[error("a header is {expected} bytes, got {got}")]
    Length {
        /// Always [`Header::SIZE`].
        expected: usize,
        /// The length handed in.
        got: usize,
    },
}

/// A block header: everything the proof of work commits to.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Header format version; [`HEADER_VERSION`].
    pub version: u32,
    /// Height in the chain: genesis is 0, each block its parent's plus one.
    pub height: u64,
    /// Hash of the parent block ([`BlockHash::GENESIS_PARENT`] for genesis).
    pub parent: BlockHash,
    /// Merkle root of the block's transaction commitments (see
    /// [`crate::merkle`] and [`Transaction::commitment`]).
    pub merkle_root: MerkleRoot,
    /// When the miner says the block was made, in milliseconds since the
    /// Unix epoch.
    pub timestamp_ms: u64,
    /// The target this block's hash meets, in compact form.
    pub target: CompactTarget,
    /// The value the miner varies to find a hash at or below the target.
    pub nonce: u64,
}

impl Header {
    /// Offset of `version` in the canonical bytes.
    pub const VERSION_OFFSET: usize = 0;
    /// Offset of `height`.
    pub const HEIGHT_OFFSET: usize = Self::VERSION_OFFSET + 4;
    /// Offset of `parent`.
    pub const PARENT_OFFSET: usize = Self::HEIGHT_OFFSET + 8;
    /// Offset of `merkle_root`.
    pub const MERKLE_OFFSET: usize = Self::PARENT_OFFSET + 32;
    /// Offset of `timestamp_ms`.
    pub const TIMESTAMP_OFFSET: usize = Self::MERKLE_OFFSET + 32;
    /// Offset of `target`.
    pub const TARGET_OFFSET: usize = Self::TIMESTAMP_OFFSET + 8;
    /// Offset of `nonce`: last, so only the final SHA-256 block changes.
    pub const NONCE_OFFSET: usize = Self::TARGET_OFFSET + 4;
    /// The size of the canonical encoding: the sum of the field sizes.
    pub const SIZE: usize = Self::NONCE_OFFSET + 8;

    /// The canonical bytes (see the module docs for the layout).
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut out = [0u8; Self::SIZE];
        out[Self::VERSION_OFFSET..Self::HEIGHT_OFFSET].copy_from_slice(&self.version.to_le_bytes());
        out[Self::HEIGHT_OFFSET..Self::PARENT_OFFSET].copy_from_slice(&self.height.to_le_bytes());
        out[Self::PARENT_OFFSET..Self::MERKLE_OFFSET].copy_from_slice(self.parent.as_bytes());
        out[Self::MERKLE_OFFSET..Self::TIMESTAMP_OFFSET]
            .copy_from_slice(self.merkle_root.as_bytes());
        out[Self::TIMESTAMP_OFFSET..Self::TARGET_OFFSET]
            .copy_from_slice(&self.timestamp_ms.to_le_bytes());
        out[Self::TARGET_OFFSET..Self::NONCE_OFFSET]
            .copy_from_slice(&self.target.to_u32().to_le_bytes());
        out[Self::NONCE_OFFSET..Self::SIZE].copy_from_slice(&self.nonce.to_le_bytes());
        out
    }

    /// Parses the canonical bytes.
    ///
    /// Every 96-byte string is a header (a bad target or version is a
    /// validation matter, not a parsing one), so only the length can be wrong.
    ///
    /// # Errors
    ///
    /// [`HeaderError::Length`] unless `bytes` is exactly [`Header::SIZE`] long.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, HeaderError> {
        let bytes: &[u8; Self::SIZE] = bytes.try_into().map_err(|_| HeaderError::Length {
            expected: Self::SIZE,
            got: bytes.len(),
        })?;
        Ok(Self::from_array(bytes))
    }

    fn from_array(b: &[u8; Self::SIZE]) -> Self {
        fn array<const N: usize>(slice: &[u8]) -> [u8; N] {
            let mut out = [0u8; N];
            out.copy_from_slice(slice);
            out
        }
        Self {
            version: u32::from_le_bytes(array(&b[Self::VERSION_OFFSET..Self::HEIGHT_OFFSET])),
            height: u64::from_le_bytes(array(&b[Self::HEIGHT_OFFSET..Self::PARENT_OFFSET])),
            parent: BlockHash::from_bytes(array(&b[Self::PARENT_OFFSET..Self::MERKLE_OFFSET])),
            merkle_root: MerkleRoot::from_bytes(array(
                &b[Self::MERKLE_OFFSET..Self::TIMESTAMP_OFFSET],
            )),
            timestamp_ms: u64::from_le_bytes(array(
                &b[Self::TIMESTAMP_OFFSET..Self::TARGET_OFFSET],
            )),
            target: CompactTarget::from_u32(u32::from_le_bytes(array(
                &b[Self::TARGET_OFFSET..Self::NONCE_OFFSET],
            ))),
            nonce: u64::from_le_bytes(array(&b[Self::NONCE_OFFSET..Self::SIZE])),
        }
    }

    /// The block hash: SHA-256 of the canonical bytes.
    pub fn hash(&self) -> BlockHash {
        BlockHash::from_bytes(Sha256::digest(self.to_bytes()).into())
    }
}

// One 0x80 byte and an 8-byte length must fit after the header in the
// second 64-byte block (at most 119 bytes), and the nonce must lie wholly in
// that block, or each nonce would cost more than one compression.
const _: () = assert!(Header::SIZE + 1 + 8 <= 128);
const _: () = assert!(Header::NONCE_OFFSET >= 64);

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Header")
            .field("version", &self.version)
            .field("height", &self.height)
            .field("parent", &self.parent.short())
            .field("merkle_root", &self.merkle_root.short())
            .field("timestamp_ms", &self.timestamp_ms)
            .field("target", &self.target)
            .field("nonce", &self.nonce)
            .finish()
    }
}

/// In binary formats a header is its 96 canonical bytes with no length
/// prefix (a fixed-size tuple); in human-readable ones, those bytes in hex.
impl Serialize for Header {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let bytes = self.to_bytes();
        if serializer.is_human_readable() {
            serializer.serialize_str(&hex::encode(bytes))
        } else {
            let mut tuple = serializer.serialize_tuple(Self::SIZE)?;
            for b in &bytes {
                tuple.serialize_element(b)?;
            }
            tuple.end()
        }
    }
}

impl<'de> Deserialize<'de> for Header {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TupleVisitor;
        impl<'de> Visitor<'de> for TupleVisitor {
            type Value = Header;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{} header bytes", Header::SIZE)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Header, A::Error> {
                let mut bytes = [0u8; Header::SIZE];
                for (i, b) in bytes.iter_mut().enumerate() {
                    *b = seq
                        .next_element()?
                        .ok_or_else(|| de::Error::invalid_length(i, &self))?;
                }
                Ok(Header::from_array(&bytes))
            }
        }
        if deserializer.is_human_readable() {
            let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
            let bytes = hex::decode(s.as_ref()).map_err(de::Error::custom)?;
            Header::from_bytes(&bytes).map_err(de::Error::custom)
        } else {
            deserializer.deserialize_tuple(Self::SIZE, TupleVisitor)
        }
    }
}

/// What chain-core needs to know of a transaction: its id, what the block
/// commits to, and its size.
///
/// chain-core is generic over the transaction type; the application (the
/// escrow ledger) defines it.
pub trait Transaction {
    /// The transaction's id.
    fn id(&self) -> TxId;
    /// What the block's merkle root commits to for this transaction: the id
    /// and everything outside it that the block's validity depends on, such
    /// as a signature the id leaves out. Two encodings that differ in
    /// anything a validator checks must have different commitments;
    /// otherwise a copy of a valid block with one signature spoiled would
    /// have the valid block's hash and get that hash remembered as invalid.
    /// The id by default.
    fn commitment(&self) -> TxId {
        self.id()
    }
    /// The transaction's encoded size in bytes, counted against the block
    /// size limit.
    fn encoded_len(&self) -> usize;
}

/// A block: a header and the transactions it commits to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block<T> {
    /// The header; its merkle root commits to `transactions`.
    pub header: Header,
    /// The transactions, in the order the state machine applies them.
    pub transactions: Vec<T>,
}

impl<T: Transaction> Block<T> {
    /// The block hash (the header's).
    pub fn hash(&self) -> BlockHash {
        self.header.hash()
    }

    /// The transaction ids in block order.
    pub fn tx_ids(&self) -> Vec<TxId> {
        self.transactions.iter().map(Transaction::id).collect()
    }

    /// The transactions' commitments in block order: the merkle root's
    /// leaves.
    pub fn commitments(&self) -> Vec<TxId> {
        self.transactions
            .iter()
            .map(Transaction::commitment)
            .collect()
    }

    /// The block's size as the size limit counts it: the header plus each
    /// transaction's encoded length.
    pub fn size(&self) -> usize {
        self.transactions
            .iter()
            .fold(Header::SIZE, |acc, tx| acc.saturating_add(tx.encoded_len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        Header {
            version: 1,
            height: 0x0102_0304_0506_0708,
            parent: BlockHash::from_bytes([0x11; 32]),
            merkle_root: MerkleRoot::from_bytes([0x22; 32]),
            timestamp_ms: 1_700_000_000_000,
            target: CompactTarget::from_u32(0x1eff_ffff),
            nonce: 0xdead_beef_cafe_f00d,
        }
    }

    #[test]
    fn size_is_pinned_and_fits_two_sha256_blocks() {
        assert_eq!(Header::SIZE, 4 + 8 + 32 + 32 + 8 + 4 + 8);
        assert_eq!(Header::SIZE, 96);
        assert_eq!(Header::NONCE_OFFSET, 88);
        // The compile-time checks after `Header`'s impl pin the two-block
        // bound and the nonce's place in the second block.
    }

    #[test]
    fn golden_bytes() {
        let bytes = sample().to_bytes();
        let expected = concat!(
            "01000000",                                                         // version
            "0807060504030201",                                                 // height
            "1111111111111111111111111111111111111111111111111111111111111111", // parent
            "2222222222222222222222222222222222222222222222222222222222222222", // merkle
            "0068e5cf8b010000",                                                 // timestamp
            "ffffff1e",                                                         // target
            "0df0fecaefbeadde",                                                 // nonce
        );
        assert_eq!(hex::encode(bytes), expected);
        assert_eq!(
            sample().hash().to_string(),
            hex::encode(Sha256::digest(bytes))
        );
    }

    #[test]
    fn bytes_round_trip_and_length_is_checked() {
        let h = sample();
        assert_eq!(Header::from_bytes(&h.to_bytes()).unwrap(), h);
        assert_eq!(
            Header::from_bytes(&[0u8; 95]),
            Err(HeaderError::Length {
                expected: 96,
                got: 95
            })
        );
        assert!(Header::from_bytes(&[0u8; 97]).is_err());
        assert!(Header::from_bytes(&[]).is_err());
    }

    #[test]
    fn serde_is_the_canonical_bytes() {
        let h = sample();
        let bin = postcard::to_stdvec(&h).unwrap();
        assert_eq!(bin, h.to_bytes().to_vec());
        assert_eq!(postcard::from_bytes::<Header>(&bin).unwrap(), h);
        assert!(postcard::from_bytes::<Header>(&bin[..95]).is_err());
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<Header>(&json).unwrap(), h);
        assert!(serde_json::from_str::<Header>("\"00\"").is_err());
    }
}

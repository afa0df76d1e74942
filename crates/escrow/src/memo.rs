//! [`Memo`]: the bytes a [`Payload::TransferMemo`](crate::Payload) carries.
//!
//! A memo is at most [`MAX_MEMO_BYTES`] bytes of anything (an invoice
//! number, a hash, a document). Consensus gives it no meaning: it is signed,
//! hashed into the transaction id, carried, stored and counted against the
//! block's size like every other byte.
//!
//! # Encoding
//!
//! In postcard (the signed bytes, the wire, the store) a memo is a byte
//! string: its length as a varint, then the bytes. In JSON (the HTTP API)
//! it is a lowercase hex string. Decoding refuses a memo longer than
//! [`MAX_MEMO_BYTES`].
//!
//! # One copy of the same bytes
//!
//! The same memo reaches a node several times: gossiped by each peer, held
//! in the mempool, then inside its block, in the store and in the blocks a
//! node serves. Every decoded memo of at least [`SHARED_FROM`] bytes is
//! looked up by its BLAKE3 hash in one process-wide table of the memos
//! alive, and shares their allocation when the bytes are the same. A node
//! keeps one copy of each memo however often it arrives; a simulation of
//! thousands of nodes in one process (`cargo xtask sim --block-size`) keeps
//! one copy for all of them. Sharing changes no behaviour: a memo is
//! immutable, compared and hashed by its bytes.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest memo, in bytes (64 KiB).
pub const MAX_MEMO_BYTES: usize = 64 * 1024;

/// Memos shorter than this are not looked up in the shared table: a copy
/// costs less than the lookup.
pub const SHARED_FROM: usize = 256;

/// Bytes carried by a transaction (see the module docs).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Memo(Arc<Box<[u8]>>);

/// Why bytes cannot be a memo.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a memo of {len} bytes is longer than the {max} allowed")]
pub struct MemoTooLong {
    /// The bytes given.
    pub len: usize,
    /// [`MAX_MEMO_BYTES`].
    pub max: usize,
}

impl Memo {
    /// A memo of `bytes`, at most [`MAX_MEMO_BYTES`] long.
    pub fn new(bytes: &[u8]) -> Result<Memo, MemoTooLong> {
        if bytes.len() > MAX_MEMO_BYTES {
            return Err(MemoTooLong {
                len: bytes.len(),
                max: MAX_MEMO_BYTES,
            });
        }
        Ok(Memo(share(bytes)))
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// How many bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it has no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `self` and `other` are one allocation (for tests of the
    /// sharing).
    pub fn shares_with(&self, other: &Memo) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for Memo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let head = &self.0[..self.0.len().min(8)];
        write!(f, "Memo({} bytes: {}…)", self.0.len(), hex::encode(head))
    }
}

/// The memos alive, by hash. An entry whose memo is gone holds only the
/// `Arc`'s header (the bytes are a `Box` inside it, freed with the last
/// strong reference); such entries are swept when the table has doubled.
struct Table {
    memos: HashMap<[u8; 32], Weak<Box<[u8]>>>,
    sweep_at: usize,
}

static TABLE: LazyLock<Mutex<Table>> = LazyLock::new(|| {
    Mutex::new(Table {
        memos: HashMap::new(),
        sweep_at: 1024,
    })
});

/// One allocation for `bytes`, shared with the live memo of the same bytes
/// if there is one.
fn share(bytes: &[u8]) -> Arc<Box<[u8]>> {
    if bytes.len() < SHARED_FROM {
        return Arc::new(bytes.into());
    }
    let key = *blake3::hash(bytes).as_bytes();
    let mut table = TABLE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(live) = table.memos.get(&key).and_then(Weak::upgrade)
        && live[..] == *bytes
    {
        return live;
    }
    let fresh = Arc::new(Box::<[u8]>::from(bytes));
    table.memos.insert(key, Arc::downgrade(&fresh));
    if table.memos.len() >= table.sweep_at {
        table.memos.retain(|_, memo| memo.strong_count() > 0);
        table.sweep_at = (table.memos.len() * 2).max(1024);
    }
    fresh
}

impl Serialize for Memo {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&hex::encode(&self.0[..]))
        } else {
            serializer.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Memo {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MemoVisitor;
        impl<'de> Visitor<'de> for MemoVisitor {
            type Value = Memo;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a memo of at most {MAX_MEMO_BYTES} bytes")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Memo, E> {
                Memo::new(v).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Memo, E> {
                if v.len() > 2 * MAX_MEMO_BYTES {
                    return Err(E::custom(MemoTooLong {
                        len: v.len() / 2,
                        max: MAX_MEMO_BYTES,
                    }));
                }
                let bytes = hex::decode(v).map_err(|e| E::custom(format!("memo hex: {e}")))?;
                Memo::new(&bytes).map_err(E::custom)
            }
        }
        if deserializer.is_human_readable() {
            deserializer.deserialize_str(MemoVisitor)
        } else {
            deserializer.deserialize_bytes(MemoVisitor)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_memo_is_bytes_in_postcard_and_hex_in_json() {
        let memo = Memo::new(b"invoice 42").unwrap();
        let bytes = postcard::to_stdvec(&memo).unwrap();
        assert_eq!(bytes[0], 10, "the length, as a varint");
        assert_eq!(&bytes[1..], b"invoice 42");
        assert_eq!(postcard::from_bytes::<Memo>(&bytes).unwrap(), memo);
        let json = serde_json::to_string(&memo).unwrap();
        assert_eq!(json, format!("\"{}\"", hex::encode("invoice 42")));
        assert_eq!(serde_json::from_str::<Memo>(&json).unwrap(), memo);
        assert!(serde_json::from_str::<Memo>("\"zz\"").is_err());
    }

    #[test]
    fn a_memo_longer_than_the_limit_is_refused_when_made_and_when_decoded() {
        let most = vec![7u8; MAX_MEMO_BYTES];
        assert_eq!(Memo::new(&most).unwrap().len(), MAX_MEMO_BYTES);
        let over = vec![7u8; MAX_MEMO_BYTES + 1];
        assert_eq!(
            Memo::new(&over).unwrap_err(),
            MemoTooLong {
                len: MAX_MEMO_BYTES + 1,
                max: MAX_MEMO_BYTES
            }
        );
        let encoded = postcard::to_stdvec(&serde_bytes_of(&over)).unwrap();
        let err = postcard::from_bytes::<Memo>(&encoded).unwrap_err();
        assert!(matches!(err, postcard::Error::SerdeDeCustom), "{err:?}");
        let json = serde_json::to_string(&hex::encode(&over)).unwrap();
        let err = serde_json::from_str::<Memo>(&json).unwrap_err();
        assert!(err.to_string().contains("longer than"), "{err}");
    }

    /// `bytes` serialized as a byte string (what a longer memo would be).
    fn serde_bytes_of(bytes: &[u8]) -> impl Serialize + '_ {
        struct B<'a>(&'a [u8]);
        impl Serialize for B<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(self.0)
            }
        }
        B(bytes)
    }

    #[test]
    fn the_same_bytes_decoded_twice_share_one_allocation_while_alive() {
        let bytes: Vec<u8> = (0..SHARED_FROM + 10).map(|i| (i * 31 + 5) as u8).collect();
        let encoded = postcard::to_stdvec(&serde_bytes_of(&bytes)).unwrap();
        let a: Memo = postcard::from_bytes(&encoded).unwrap();
        let b: Memo = postcard::from_bytes(&encoded).unwrap();
        assert!(a.shares_with(&b));
        assert_eq!(a.as_bytes(), &bytes[..]);
        let mut other = bytes.clone();
        other[0] ^= 1;
        let c = Memo::new(&other).unwrap();
        assert!(!a.shares_with(&c));
        assert_ne!(a, c);
        // Short memos are copied, not looked up.
        let d = Memo::new(b"short").unwrap();
        assert!(!d.shares_with(&Memo::new(b"short").unwrap()));
        assert_eq!(d, Memo::new(b"short").unwrap());
    }
}

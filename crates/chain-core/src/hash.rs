//! 32-byte hash newtypes: [`BlockHash`], [`TxId`] and [`MerkleRoot`].
//!
//! Each kind of hash is its own type so that a transaction id can never be
//! passed where a block hash is expected. All three print as 64 lower-case
//! hex digits in byte order (no byte reversal, unlike Bitcoin), parse from the
//! same form, and serialize as a hex string in human-readable formats (JSON)
//! and as 32 raw bytes in binary formats (postcard).

/// Why a string is not a 32-byte hash in hex.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseHashError {
    /// The string does not have exactly 64 hex digits.
    #[error("a hash has 64 hex digits, got {0} characters")]
    Length(usize),
    /// A character is not a hex digit.
    #[error("not a hex digit in hash: {0}")]
    Hex(#[from] hex::FromHexError),
}

/// Defines a 32-byte newtype with the same hex `Display`/`FromStr`, serde
/// forms and helpers as [`BlockHash`]; escrow's `Address` uses it too.
#[macro_export]
macro_rules! hash_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name([u8; 32]);

        impl $name {
            /// The all-zero value.
            pub const ZERO: Self = Self([0; 32]);

            /// Wraps 32 bytes.
            pub const fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }

            /// The 32 bytes, in the order they are hashed and sent.
            pub const fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// The 32 bytes by value.
            pub const fn to_bytes(self) -> [u8; 32] {
                self.0
            }

            /// The first four bytes in hex: enough to tell blocks apart in logs.
            pub fn short(&self) -> String {
                $crate::__private::hex::encode(&self.0[..4])
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                let mut buf = [0u8; 64];
                // Encoding 32 bytes into a 64-byte buffer cannot fail.
                if $crate::__private::hex::encode_to_slice(self.0, &mut buf).is_err() {
                    return Err(::std::fmt::Error);
                }
                // Hex digits are ASCII, so this is valid UTF-8.
                f.write_str(std::str::from_utf8(&buf).map_err(|_| ::std::fmt::Error)?)
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::ParseHashError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                if s.len() != 64 {
                    return Err($crate::ParseHashError::Length(s.len()));
                }
                let mut bytes = [0u8; 32];
                $crate::__private::hex::decode_to_slice(s, &mut bytes)
                    .map_err($crate::ParseHashError::Hex)?;
                Ok(Self(bytes))
            }
        }

        impl From<[u8; 32]> for $name {
            fn from(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        impl $crate::__private::serde::Serialize for $name {
            fn serialize<S: $crate::__private::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                if serializer.is_human_readable() {
                    serializer.collect_str(self)
                } else {
                    $crate::__private::serde::Serialize::serialize(&self.0, serializer)
                }
            }
        }

        impl<'de> $crate::__private::serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::__private::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                if deserializer.is_human_readable() {
                    let s = <::std::borrow::Cow<'de, str> as $crate::__private::serde::Deserialize>::deserialize(deserializer)?;
                    s.parse().map_err(<D::Error as $crate::__private::serde::de::Error>::custom)
                } else {
                    <[u8; 32] as $crate::__private::serde::Deserialize>::deserialize(deserializer).map(Self)
                }
            }
        }
    };
}

hash_newtype!(
    /// The SHA-256 hash of a block header's canonical bytes; identifies a block.
    BlockHash
);
hash_newtype!(
    /// The id of a transaction: blake3 of its canonical bytes (chosen by the
    /// transaction type; chain-core only carries it).
    TxId
);
hash_newtype!(
    /// The root of the merkle tree over a block's transaction ids.
    MerkleRoot
);

impl BlockHash {
    /// The parent hash written into a genesis header: there is no parent.
    pub const GENESIS_PARENT: Self = Self::ZERO;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = i as u8;
        }
        let h = BlockHash::from_bytes(bytes);
        let s = h.to_string();
        assert_eq!(
            s,
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
        );
        assert_eq!(s.parse::<BlockHash>().unwrap(), h);
        assert_eq!(h.short(), "00010203");
    }

    #[test]
    fn parse_rejects_bad_input() {
        assert_eq!("abc".parse::<TxId>(), Err(ParseHashError::Length(3)));
        let bad = "z".repeat(64);
        assert!(matches!(bad.parse::<TxId>(), Err(ParseHashError::Hex(_))));
        // A multi-byte character must not slice a string in the middle.
        let wide = "é".repeat(32);
        assert!(wide.parse::<TxId>().is_err());
    }

    #[test]
    fn serde_forms() {
        let h = TxId::from_bytes([0xab; 32]);
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(json, format!("\"{}\"", "ab".repeat(32)));
        assert_eq!(serde_json::from_str::<TxId>(&json).unwrap(), h);
        let bin = postcard::to_stdvec(&h).unwrap();
        assert_eq!(bin, vec![0xab; 32]);
        assert_eq!(postcard::from_bytes::<TxId>(&bin).unwrap(), h);
    }
}

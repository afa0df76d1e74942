//! Accounts: an ed25519 public key, and the [`Address`] derived from it.
//!
//! **Address rule:** `address = blake3::derive_key("escrow-chain 2026 address",
//! public_key_bytes)`: 32 bytes, shown as 64 hex digits. Balances and
//! contract parties are keyed by address; a transaction carries its
//! sender's public key, so the ledger can check the signature and derive the
//! address itself.

use serde::{Deserialize, Serialize};

chain_core::hash_newtype!(
    /// An account's address: derived from its public key (see the module
    /// docs), shown in hex.
    Address
);

/// The context string of the address derivation.
const ADDRESS_CONTEXT: &str = "escrow-chain 2026 address";

/// [`ADDRESS_CONTEXT`] hashed once (what `blake3::derive_key` does on
/// every call): an address costs one compression, not two.
static ADDRESS_KEY: std::sync::LazyLock<blake3::hazmat::ContextKey> =
    std::sync::LazyLock::new(|| blake3::hazmat::hash_derive_key_context(ADDRESS_CONTEXT));

impl Address {
    /// The address of a public key: `blake3::derive_key(ADDRESS_CONTEXT,
    /// key)`, with the context's key computed once.
    pub fn of(key: &PublicKey) -> Address {
        use blake3::hazmat::HasherExt;
        let mut hasher = blake3::Hasher::new_from_context_key(&ADDRESS_KEY);
        hasher.update(&key.0);
        Address::from_bytes(*hasher.finalize().as_bytes())
    }
}

/// An ed25519 public key as 32 bytes. Whether the bytes may send
/// transactions (a canonically encoded point, not of small order) is checked
/// with the signature: see [`crate::signature`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// The address of this key.
    pub fn address(&self) -> Address {
        Address::of(self)
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", hex::encode(self.0))
    }
}

impl std::fmt::Display for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_the_derive_key_of_its_key_whatever_the_key() {
        for seed in 0..=255u8 {
            let key = PublicKey([seed; 32]);
            assert_eq!(
                Address::of(&key),
                Address::from_bytes(blake3::derive_key(ADDRESS_CONTEXT, &key.0)),
                "key {key}"
            );
        }
    }
}

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

impl Address {
    /// The address of a public key.
    pub fn of(key: &PublicKey) -> Address {
        Address::from_bytes(blake3::derive_key(ADDRESS_CONTEXT, &key.0))
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

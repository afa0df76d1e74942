//! The well-known dev accounts: `alice`, `bob`, `charlie`, `dave`, `eve`,
//! `ferdie`.
//!
//! **Insecure, for dev networks only.** Each secret key is derived from the
//! account's *name* (`blake3::derive_key("escrow-chain 2026 INSECURE dev
//! account", name)`), so anyone who has read this file can sign as Alice.
//! That is the point on a dev network (the demo, the tests, a classroom:
//! everyone can act as everyone), and the reason never to give these
//! addresses anything of value. Real keys come from [`crate::Keypair::generate`]
//! and live in key files.

use crate::account::Address;
use crate::key_file::Keypair;

/// The dev account names, in the notebook's order.
pub const DEV_ACCOUNTS: [&str; 6] = ["alice", "bob", "charlie", "dave", "eve", "ferdie"];

const DEV_CONTEXT: &str = "escrow-chain 2026 INSECURE dev account";

/// The key pair of a dev account, or `None` if `name` is not one.
pub fn keypair(name: &str) -> Option<Keypair> {
    DEV_ACCOUNTS
        .contains(&name)
        .then(|| Keypair::from_seed(blake3::derive_key(DEV_CONTEXT, name.as_bytes())))
}

/// The address of a dev account, or `None` if `name` is not one.
pub fn address(name: &str) -> Option<Address> {
    let i = DEV_ACCOUNTS.iter().position(|n| *n == name)?;
    addresses().get(i).copied()
}

/// The dev accounts' addresses, in [`DEV_ACCOUNTS`] order, derived once:
/// explorers and clients look names up per block and per row.
fn addresses() -> &'static [Address; 6] {
    static ADDRESSES: std::sync::OnceLock<[Address; 6]> = std::sync::OnceLock::new();
    ADDRESSES.get_or_init(|| {
        DEV_ACCOUNTS
            .map(|n| Keypair::from_seed(blake3::derive_key(DEV_CONTEXT, n.as_bytes())).address())
    })
}

/// An account named the way users name them: a dev account name, or an
/// address in hex. `None` if `s` is neither.
pub fn account(s: &str) -> Option<Address> {
    address(s).or_else(|| s.parse().ok())
}

/// The dev account name of an address, if it is one.
pub fn name_of(address: &Address) -> Option<&'static str> {
    let i = addresses().iter().position(|a| a == address)?;
    DEV_ACCOUNTS.get(i).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_accounts_are_distinct_and_stable() {
        let addrs: Vec<_> = DEV_ACCOUNTS.iter().map(|n| address(n).unwrap()).collect();
        for (i, a) in addrs.iter().enumerate() {
            assert_eq!(name_of(a), Some(DEV_ACCOUNTS[i]));
            assert_eq!(keypair(DEV_ACCOUNTS[i]).map(|k| k.address()), Some(*a));
            assert!(!addrs[..i].contains(a));
        }
        assert_eq!(keypair("mallory").map(|k| k.address()), None);
        assert_eq!(account("bob"), address("bob"));
        let hex = addrs[1].to_string();
        assert_eq!(account(&hex), Some(addrs[1]));
        assert_eq!(account("mallory"), None);
        // Golden: the same name gives the same address everywhere.
        assert_eq!(address("alice"), address("alice"));
    }
}

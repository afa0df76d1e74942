//! Named keys: key files the client keeps under a name of the user's
//! (`p2p-node keygen --name carol`), so that `--as carol`, `balance carol`
//! and `transfer ... carol 5` work for them as for the dev accounts. They
//! live in `P2P_NODE_KEYS`, else `~/.p2p-node/keys`, one file `NAME.key`
//! each (the key file format of `docs/ESCROW.md`, owner-only).

use std::path::PathBuf;

use escrow::{Address, Keypair, dev};

/// The directory of named keys.
pub(crate) fn dir() -> PathBuf {
    if let Some(d) = std::env::var_os("P2P_NODE_KEYS").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".p2p-node").join("keys")
}

/// Whether `name` may name a key: 1 to 32 of `a-z`, `0-9`, `-`, `_`,
/// starting with a letter, and not a dev account's name (those are taken).
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    let ok = (1..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !ok {
        return Err(format!(
            "`{name}` is not a key name: 1 to 32 of a-z, 0-9, - and _, starting with a letter"
        ));
    }
    if dev::DEV_ACCOUNTS.contains(&name) {
        return Err(format!("`{name}` is a dev account's name: choose another"));
    }
    Ok(())
}

/// Where the key named `name` is (or would be) kept.
pub(crate) fn path_of(name: &str) -> PathBuf {
    dir().join(format!("{name}.key"))
}

/// The key named `name`, if there is one.
pub(crate) fn load(name: &str) -> Option<Result<Keypair, escrow::KeyFileError>> {
    if check_name(name).is_err() {
        return None;
    }
    let path = path_of(name);
    path.exists().then(|| Keypair::load(&path))
}

/// Every named key, by name: (name, address); a file that is no key file is
/// left out.
pub(crate) fn list() -> Vec<(String, Address)> {
    let Ok(entries) = std::fs::read_dir(dir()) else {
        return Vec::new();
    };
    let mut keys: Vec<(String, Address)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_str()?.strip_suffix(".key")?.to_string();
            let key = load(&name)?.ok()?;
            Some((name, key.address()))
        })
        .collect();
    keys.sort();
    keys
}

/// The name of the named key whose address is `address`, if any (the
/// directory is read once per run).
pub(crate) fn name_of(address: &Address) -> Option<String> {
    static NAMES: std::sync::OnceLock<Vec<(String, Address)>> = std::sync::OnceLock::new();
    NAMES
        .get_or_init(list)
        .iter()
        .find(|(_, a)| a == address)
        .map(|(n, _)| n.clone())
}

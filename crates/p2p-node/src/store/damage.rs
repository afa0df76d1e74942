//! Damaged blocks: the best-chain blocks whose stored body could not be
//! read back (it fails its checksum, does not decode, or is missing), as
//! the chain's archive found them.
//!
//! The archive ([`super::StoreArchive`]) records each one the first time a
//! read of it fails and logs it then, at error level, once; every read of
//! it fails the same way, so no reader serves, hides or skips it silently.
//! The core asks its peers for a good copy ([`DamagedBlocks::due`]): the
//! hash is known from the header chain, so a copy is good if its body
//! matches that header, and the core writes it back into the store
//! ([`DamagedBlocks::repaired`]).

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chain_core::BlockHash;
use tokio::time::Instant;

/// What the operator can do about a damaged block, in every error that
/// names one.
pub const REMEDY: &str = "the node asks its peers for a good copy and repairs its store; \
     if none has it, stop the node, list the damage with `p2p-node check --data-dir DIR`, \
     and move chain.redb aside to sync the chain again from peers";

/// How long the core waits for a good copy before asking its peers again.
pub const ASK_AGAIN_AFTER: Duration = Duration::from_secs(5);

/// The damaged blocks found so far, each with when peers were last asked
/// for a copy (`None`: not yet). Shared by the archive, which finds them,
/// and the core, which repairs them.
#[derive(Debug, Default)]
pub struct DamagedBlocks {
    blocks: Mutex<BTreeMap<BlockHash, Option<Instant>>>,
}

impl DamagedBlocks {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<BlockHash, Option<Instant>>> {
        self.blocks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records that `hash` cannot be read back; logs it at error level the
    /// first time (`why` is the store's error).
    pub fn found(&self, hash: BlockHash, why: &str) {
        let new = self.lock().insert(hash, None).is_none();
        if new {
            tracing::error!(block = %hash, "a stored block is damaged: {why}; {REMEDY}");
        }
    }

    /// Whether `hash` is known to be damaged.
    pub fn contains(&self, hash: &BlockHash) -> bool {
        self.lock().contains_key(hash)
    }

    /// Whether no damaged block is known.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// The damaged blocks to ask peers for now: those never asked for, and
    /// those asked for at least [`ASK_AGAIN_AFTER`] ago. Each is marked as
    /// asked at `now`.
    pub fn due(&self, now: Instant) -> Vec<BlockHash> {
        let mut blocks = self.lock();
        let mut due = Vec::new();
        for (hash, asked) in blocks.iter_mut() {
            if asked.is_none_or(|t| now.saturating_duration_since(t) >= ASK_AGAIN_AFTER) {
                *asked = Some(now);
                due.push(*hash);
            }
        }
        due
    }

    /// Forgets `hash`: a good copy was written back.
    pub fn repaired(&self, hash: &BlockHash) {
        self.lock().remove(hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_block_is_asked_for_once_per_interval_until_repaired() {
        let damaged = DamagedBlocks::default();
        let hash = BlockHash::from_bytes([3; 32]);
        assert!(damaged.is_empty());
        damaged.found(hash, "fails its checksum");
        damaged.found(hash, "fails its checksum");
        assert!(damaged.contains(&hash));
        let now = Instant::now();
        assert_eq!(damaged.due(now), vec![hash]);
        assert!(damaged.due(now + Duration::from_secs(1)).is_empty());
        assert_eq!(damaged.due(now + ASK_AGAIN_AFTER), vec![hash]);
        damaged.repaired(&hash);
        assert!(!damaged.contains(&hash));
        assert!(damaged.due(now + ASK_AGAIN_AFTER * 2).is_empty());
    }
}

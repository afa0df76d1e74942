//! Damaged blocks as the chain's archive finds them: the blocks whose
//! stored body could not be read back (it fails its checksum, does not
//! decode, or is missing).
//!
//! The archive ([`super::StoreArchive`]) only records each one here when a
//! read of it fails; every read of it fails the same way, so no reader
//! serves, hides or skips it silently. The core takes what was recorded
//! after every event ([`DamagedBlocks::take`]) and owns the repair from
//! there (`core/repair.rs`): it logs the block once, asks its peers for a
//! good copy (the hash is known from the header chain, so a copy is good
//! if its body matches that header) and writes it back with its next
//! commit.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use chain_core::BlockHash;

/// What the operator can do about a damaged block body, in every error
/// that names one.
pub const REMEDY: &str = "a running node with peers fetches a good copy of a damaged block it \
     has read and writes it back (and a start that finds one after the last snapshot restores \
     the chain below it and fetches it and the blocks above again); if no peer has it, stop the \
     node, list the damage with `p2p-node check --data-dir DIR`, and move chain.redb aside to \
     sync the chain again from peers";

/// What the operator can do about a damaged undo record: peers do not
/// have it (it is this node's own record of how to take a block back off
/// its ledger).
pub const UNDO_REMEDY: &str = "undo records are not fetched from peers: the node cannot \
     reorganise below that block; stop the node, list the damage with `p2p-node check \
     --data-dir DIR`, and move chain.redb aside to sync the chain again from peers";

/// The damaged blocks the archive found since the core last took them,
/// each with the store's error. Written by the archive (whichever task
/// reads), taken by the core, which owns the repair.
#[derive(Debug, Default)]
pub struct DamagedBlocks {
    found: Mutex<BTreeMap<BlockHash, String>>,
}

impl DamagedBlocks {
    /// Records that `hash` cannot be read back (`why` is the store's
    /// error). A block found again before the core took it is recorded
    /// once, so the record stays as small as the set of damaged blocks.
    pub fn found(&self, hash: BlockHash, why: &str) {
        self.found
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(hash)
            .or_insert_with(|| why.to_string());
    }

    /// The blocks found damaged since the last call, each with why.
    pub fn take(&self) -> Vec<(BlockHash, String)> {
        std::mem::take(&mut *self.found.lock().unwrap_or_else(PoisonError::into_inner))
            .into_iter()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_found_twice_before_it_is_taken_is_recorded_once() {
        let damaged = DamagedBlocks::default();
        let hash = BlockHash::from_bytes([3; 32]);
        assert!(damaged.take().is_empty());
        damaged.found(hash, "fails its checksum");
        damaged.found(hash, "fails its checksum again");
        assert_eq!(
            damaged.take(),
            vec![(hash, "fails its checksum".to_string())]
        );
        assert!(damaged.take().is_empty(), "taken");
    }
}

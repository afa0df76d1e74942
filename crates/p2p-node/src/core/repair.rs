//! Repairing damaged blocks from peers. The chain's archive records every
//! best-chain block whose stored body cannot be read back
//! ([`crate::store::DamagedBlocks`]); the core asks its live peers for each
//! with `GetBlocks` (again every few seconds until a good copy
//! comes), and writes back a copy whose body matches the header the
//! tree holds (its hash is the one asked for, so only the body needs
//! checking: merkle root, limits). A copy that does not match is the
//! sender's offence, as any block whose body lies about its header.

use std::sync::Arc;

use chain_core::{Block, validate};
use escrow::Tx;
use tokio::time::Instant;
use tracing::{error, info};
use wire::{Bounded, Message};

use crate::core::Core;
use crate::core::view::ConnId;
use crate::penalty::Offence;
use crate::store::Commit;

impl Core {
    /// Asks every live peer for the damaged blocks that are due (none
    /// asked yet, or asked long enough ago with no good copy since).
    pub(super) fn ask_for_damaged(&mut self) {
        if self.damaged.is_empty() || self.store_failed {
            return;
        }
        let peers = self.peers.live_conns();
        if peers.is_empty() {
            return;
        }
        let due = self.damaged.due(Instant::now());
        if due.is_empty() {
            return;
        }
        for hash in &due {
            let height = self.chain.header(hash).map(|h| h.height);
            info!(block = %hash, ?height, peers = peers.len(), "asking peers for a good copy of a damaged block");
        }
        for conn in peers {
            self.send(conn, Message::GetBlocks(Bounded::truncating(due.clone())));
        }
    }

    /// A block from `conn`: if it is one the store holds damaged, writes it
    /// back when its body matches its header, and returns true (the block
    /// is handled); false if it is not one we wait for.
    pub(super) fn repair(&mut self, conn: ConnId, block: &Block<Tx>) -> bool {
        let hash = block.hash();
        if !self.damaged.contains(&hash) {
            return false;
        }
        if let Err(e) = validate::check_block(block, self.chain.params()) {
            self.punish(
                conn,
                Offence::InvalidBlock(format!("a copy of block {hash} that fails its header: {e}")),
            );
            return true;
        }
        let height = block.header.height;
        let commit = Commit {
            blocks: vec![Arc::new(block.clone())],
            ..Commit::default()
        };
        // Read back, so that a repair is reported only once the store
        // serves the block again.
        match self
            .store
            .commit(&commit)
            .and_then(|()| self.store.block(&hash))
        {
            Ok(Some(_)) => {
                self.damaged.repaired(&hash);
                info!(block = %hash, height, conn, "repaired a damaged block with a peer's copy");
            }
            Ok(None) => error!(block = %hash, "the repaired block is still not in the store"),
            Err(e) => error!(block = %hash, "the damaged block cannot be written back: {e}"),
        }
        true
    }
}

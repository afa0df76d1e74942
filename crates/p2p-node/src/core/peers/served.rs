//! What each peer was already sent of the best chain, so that a peer
//! downloading the chain once is not charged for it (`docs/PROTOCOL.md`,
//! "Connection limits", the upload allowance): a best-chain block is free
//! the first time a peer is sent it, and headers are free above the
//! highest a peer was sent. What it asks again is charged.

use crate::core::peers::PeerTable;
use crate::core::view::ConnId;

/// The best-chain heights sent to one peer (one bit a height) and how far
/// its headers were sent.
#[derive(Default)]
pub(super) struct Served {
    blocks: Vec<u64>,
    headers_to: u64,
}

impl Served {
    fn has(&self, height: u64) -> bool {
        let (word, bit) = ((height / 64) as usize, height % 64);
        self.blocks.get(word).is_some_and(|w| w & (1 << bit) != 0)
    }

    fn mark(&mut self, height: u64) {
        let (word, bit) = ((height / 64) as usize, height % 64);
        if self.blocks.len() <= word {
            self.blocks.resize(word + 1, 0);
        }
        self.blocks[word] |= 1 << bit;
    }
}

impl PeerTable {
    /// Whether `conn` was sent the best-chain block at `height` before
    /// (a peer the table does not know counts as sent).
    pub fn was_sent(&self, conn: ConnId, height: u64) -> bool {
        self.peers.get(&conn).is_none_or(|p| p.served.has(height))
    }

    /// `conn` is sent the best-chain block at `height`.
    pub fn mark_sent(&mut self, conn: ConnId, height: u64) {
        if let Some(p) = self.peers.get_mut(&conn) {
            p.served.mark(height);
        }
    }

    /// Of the headers from `from` to `to` (heights) about to be sent to
    /// `conn`, how many it was sent before (and is charged for); they
    /// count as sent from now.
    pub fn headers_sent_again(&mut self, conn: ConnId, from: u64, to: u64) -> u64 {
        let Some(p) = self.peers.get_mut(&conn) else {
            return to.saturating_sub(from) + 1;
        };
        let again = p
            .served
            .headers_to
            .min(to)
            .saturating_add(1)
            .saturating_sub(from);
        p.served.headers_to = p.served.headers_to.max(to);
        again
    }
}

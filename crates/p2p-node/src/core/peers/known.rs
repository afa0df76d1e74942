//! What each peer has or was told of (the blocks and transactions it
//! knows, its best height and work, when it last sent something new), as
//! the peer table's answers: whom to tell of a block or a transaction.
//! The sets (`known_set.rs`) forget their oldest entries past a bound, so
//! a peer's memory stays bounded however long it stays connected.

use chain_core::{BlockHash, TxId, Work};
use tokio::time::Instant;

use super::PeerTable;
use crate::core::view::ConnId;

impl PeerTable {
    /// `conn` has, or was told of, the transactions `ids`.
    pub fn knows_txs<'a>(&mut self, conn: ConnId, ids: impl IntoIterator<Item = &'a TxId>) {
        if let Some(p) = self.peers.get_mut(&conn) {
            ids.into_iter().for_each(|id| p.known_txs.insert(*id));
        }
    }

    /// `conn` has, or was told of, the blocks `hashes`.
    pub fn knows_blocks<'a>(
        &mut self,
        conn: ConnId,
        hashes: impl IntoIterator<Item = &'a BlockHash>,
    ) {
        if let Some(p) = self.peers.get_mut(&conn) {
            hashes.into_iter().for_each(|h| p.known_blocks.insert(*h));
        }
    }

    /// `conn` sent a block at `height`: its best height is at least that.
    pub fn saw_height(&mut self, conn: ConnId, height: u64) {
        if let Some(p) = self.peers.get_mut(&conn) {
            p.best_height = p.best_height.max(height);
        }
    }

    /// Whether `conn` is to be told of the block `hash`: not if it has it
    /// or was told already (nor if the table does not know `conn`). Once
    /// the answer is yes, the peer counts as told.
    pub fn tell_block(&mut self, conn: ConnId, hash: BlockHash) -> bool {
        let Some(p) = self.peers.get_mut(&conn) else {
            return false;
        };
        if p.known_blocks.contains(&hash) {
            return false;
        }
        p.known_blocks.insert(hash);
        true
    }

    /// Of `ids`, in order, those `conn` is to be told of: the ones it does
    /// not have and was not told of. They count as told from now.
    pub fn tell_txs(&mut self, conn: ConnId, ids: impl IntoIterator<Item = TxId>) -> Vec<TxId> {
        let Some(p) = self.peers.get_mut(&conn) else {
            return Vec::new();
        };
        ids.into_iter()
            .filter(|id| {
                let fresh = !p.known_txs.contains(id);
                if fresh {
                    p.known_txs.insert(*id);
                }
                fresh
            })
            .collect()
    }

    /// The live peers, in order, to be told of the transaction `id`: those
    /// that do not have it and were not told of it. They count as told
    /// from now.
    pub fn tell_tx(&mut self, id: TxId) -> Vec<ConnId> {
        self.peers
            .iter_mut()
            .filter(|(_, p)| p.live())
            .filter(|(_, p)| !p.known_txs.contains(&id))
            .map(|(conn, p)| {
                p.known_txs.insert(id);
                *conn
            })
            .collect()
    }

    /// Forgets that live peers have the transaction `id` (a reorg returned
    /// it to the pool: it is news to peers that dropped it when they saw
    /// it mined).
    pub fn forget_tx(&mut self, id: &TxId) {
        self.peers
            .values_mut()
            .filter(|p| p.live())
            .for_each(|p| p.known_txs.forget(id));
    }

    /// The height and work `conn` is known to have, if it is live.
    pub fn tip_of(&self, conn: ConnId) -> Option<(u64, Work)> {
        self.peers
            .get(&conn)
            .filter(|p| p.live())
            .map(|p| (p.best_height, p.best_work))
    }

    /// `conn` has the block at `height` with `work` cumulative work (it
    /// announced or sent it): what `/peers` shows and sync decisions use
    /// follow the peer's announcements, not only its handshake.
    pub fn saw_tip(&mut self, conn: ConnId, height: u64, work: Work) {
        if let Some(p) = self.peers.get_mut(&conn) {
            p.best_height = p.best_height.max(height);
            if work > p.best_work {
                p.best_work = work;
            }
        }
    }

    /// `conn` sent a block that was new to us (protects it from eviction).
    /// Its address, if the book has it, is proved: dialled before the
    /// addresses only told (`addrs.rs`).
    pub fn note_block(&mut self, conn: ConnId, now: Instant) {
        let Some(p) = self.peers.get_mut(&conn) else {
            return;
        };
        p.last_block = Some(now);
        let addr = match p.direction {
            crate::core::view::Direction::Outbound => Some(p.remote),
            crate::core::view::Direction::Inbound => p.listen_addr,
        };
        if let Some(entry) = addr.and_then(|a| self.addrs.get_mut(&a)) {
            entry.proved = true;
        }
    }

    /// `conn` sent a transaction we admitted (protects it from eviction).
    pub fn note_tx(&mut self, conn: ConnId, now: Instant) {
        if let Some(p) = self.peers.get_mut(&conn) {
            p.last_tx = Some(now);
        }
    }
}

//! What the outside reads of the core: the [`NodeView`] a query sees, the
//! [`NodeEvent`]s watchers receive, the [`Metrics`], and the small types
//! that name connections.

use std::net::SocketAddr;
use std::time::Duration;

use chain_core::{BlockHash, Chain, TxId};
use escrow::Ledger;
use tokio::time::Instant;
use wire::NodeId;

use crate::config::MiningMode;
use crate::mempool::Mempool;
use crate::penalty::BanKey;
use crate::store::BlockStore;

/// A connection's number, unique within one node's run.
pub type ConnId = u64;

/// The chain type the node runs.
pub type NodeChain = Chain<Ledger>;

/// Which side dialled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// We dialled.
    Outbound,
    /// They dialled.
    Inbound,
}

/// Something changed that a watcher (the explorer) may want to redraw.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum NodeEvent {
    /// The best tip moved.
    Tip {
        /// Its height.
        height: u64,
        /// Its hash.
        hash: BlockHash,
        /// Blocks undone on the way (0 for an extension).
        undone: usize,
    },
    /// A block joined a side branch (a fork the node does not follow).
    Fork {
        /// Its height.
        height: u64,
        /// Its hash.
        hash: BlockHash,
    },
    /// The mempool changed.
    Mempool {
        /// Pending transactions now.
        size: usize,
    },
    /// A peer connected or left.
    Peers {
        /// Live peers now.
        count: usize,
    },
}

impl NodeEvent {
    /// The event's name in the event stream.
    pub fn name(&self) -> &'static str {
        match self {
            NodeEvent::Tip { .. } => "tip",
            NodeEvent::Fork { .. } => "fork",
            NodeEvent::Mempool { .. } => "mempool",
            NodeEvent::Peers { .. } => "peers",
        }
    }
}

/// A read-only view of the node's state, handed to a query.
pub struct NodeView<'a> {
    /// The block tree and the ledger at the best tip.
    pub chain: &'a NodeChain,
    /// The store: block bodies, and the transaction index.
    pub store: &'a dyn BlockStore,
    /// Monitoring counters.
    pub metrics: &'a Metrics,
    /// Pending transactions, and those waiting for an earlier nonce of
    /// their sender ([`Mempool::orphans`]).
    pub mempool: &'a Mempool,
    /// Live peers.
    pub peers: Vec<PeerInfo>,
    /// Active bans and the time left on each.
    pub bans: Vec<(BanKey, Duration)>,
    /// This node's id.
    pub node_id: NodeId,
    /// The current mining mode.
    pub mining: MiningMode,
    /// Outbound connections being made (dialled, not yet admitted or
    /// failed).
    pub dials_in_flight: usize,
}

impl NodeView<'_> {
    /// The best-chain block holding a transaction (`None` if none does, or
    /// the store cannot be read: that is logged).
    pub fn tx_block(&self, id: &TxId) -> Option<BlockHash> {
        self.store
            .tx_block(id)
            .inspect_err(|e| tracing::warn!("transaction index: {e}"))
            .ok()
            .flatten()
    }
}

/// How far a headers-first sync is (`core/download.rs`): present while
/// the node knows headers whose blocks it has not validated yet.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SyncProgress {
    /// The height of the most-work header chain known.
    pub headers: u64,
    /// The height of the best validated chain.
    pub blocks: u64,
    /// The time left at the rate of this sync so far, once a block of it
    /// has been validated.
    pub seconds_left: Option<f64>,
}

/// What the node knows about a live peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// The connection's number.
    pub conn: ConnId,
    /// The peer's socket address.
    pub remote: SocketAddr,
    /// Where the peer listens, as it said.
    pub listen_addr: Option<SocketAddr>,
    /// Who dialled.
    pub direction: Direction,
    /// The peer's node id.
    pub node_id: NodeId,
    /// The peer's best height as last known.
    pub best_height: u64,
    /// Penalty points.
    pub score: u32,
    /// Bytes queued for the peer and not yet written to its socket.
    pub queued_bytes: usize,
}

/// Counters the node keeps for monitoring.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metrics {
    /// Blocks that joined the tree (best chain or side branch).
    pub blocks_accepted: u64,
    /// Blocks refused, by reason.
    pub blocks_rejected: std::collections::BTreeMap<String, u64>,
    /// Reorganisations (best-chain changes that undid blocks).
    pub reorgs: u64,
    /// The deepest reorganisation, in blocks undone.
    pub max_reorg_depth: u64,
    /// Blocks this node mined that joined its best chain.
    pub blocks_mined: u64,
    /// The expected hashes behind the blocks this node mined.
    pub work_mined: f64,
    /// When the node started.
    pub started: Option<Instant>,
    /// Compact block relay.
    pub compact: CompactCounts,
}

/// Compact block counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactCounts {
    /// Compact blocks received.
    pub received: u64,
    /// Rebuilt at once, with no round trip.
    pub rebuilt_at_once: u64,
    /// Rebuilt after asking for missing transactions.
    pub rebuilt_after_asking: u64,
    /// Given up on: the whole block was asked for instead.
    pub failed: u64,
    /// Compact blocks sent.
    pub sent: u64,
    /// Encoded bytes of the compact blocks sent.
    pub bytes_sent: u64,
    /// Encoded bytes of the compact blocks received.
    pub bytes_received: u64,
}

impl Metrics {
    /// Counters from zero, for a node started at `now`.
    pub(crate) fn started_at(now: Instant) -> Metrics {
        Metrics {
            started: Some(now),
            ..Metrics::default()
        }
    }

    /// Counts a move of the best tip: the blocks it applied, and whether
    /// (and how deep) it undid any.
    pub(crate) fn count_best_move(&mut self, applied: usize, undone: usize) {
        self.blocks_accepted += applied as u64;
        if undone > 0 {
            self.reorgs += 1;
            self.max_reorg_depth = self.max_reorg_depth.max(undone as u64);
        }
    }

    /// Counts a block refused for `reason`.
    pub(crate) fn count_refused(&mut self, reason: String) {
        *self.blocks_rejected.entry(reason).or_insert(0) += 1;
    }

    /// Counts a block this node mined that joined its best chain, and the
    /// expected hashes (`work`) behind it.
    pub(crate) fn count_mined(&mut self, work: f64) {
        self.blocks_mined += 1;
        self.work_mined += work;
    }
}

/// `n` blocks, each a coinbase paying `[to; 32]`, mined on `chain`'s tip
/// one after another and inserted (for the core's tests: a chain needs
/// an easy target, as `ChainParams::with_target_bits(4)` gives).
#[cfg(test)]
pub(crate) fn mine_on(chain: &mut NodeChain, n: u64, to: u8) -> Vec<chain_core::Block<escrow::Tx>> {
    let mut blocks = Vec::new();
    for _ in 0..n {
        let height = chain.height() + 1;
        let txs = vec![escrow::Tx::Coinbase {
            to: escrow::Address::from_bytes([to; 32]),
            height,
        }];
        let mut header = chain.template(&txs, 1_800_000_000_000 + height * 1_000);
        while !header.target.to_target().unwrap().is_met_by(&header.hash()) {
            header.nonce += 1;
        }
        let block = chain_core::Block {
            header,
            transactions: txs,
        };
        chain.insert(block.clone(), u64::MAX / 2).unwrap();
        blocks.push(block);
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_count_moves_reorgs_refusals_and_mined_blocks() {
        let mut m = Metrics::default();
        m.count_best_move(2, 0);
        assert_eq!((m.blocks_accepted, m.reorgs, m.max_reorg_depth), (2, 0, 0));
        m.count_best_move(3, 2);
        m.count_best_move(1, 1);
        assert_eq!((m.blocks_accepted, m.reorgs, m.max_reorg_depth), (6, 2, 2));
        m.count_refused("State".to_string());
        m.count_refused("State".to_string());
        m.count_refused("KnownInvalid".to_string());
        assert_eq!(m.blocks_rejected.get("State"), Some(&2));
        assert_eq!(m.blocks_rejected.get("KnownInvalid"), Some(&1));
        m.count_mined(4.0);
        m.count_mined(0.5);
        assert_eq!((m.blocks_mined, m.work_mined), (2, 4.5));
    }
}

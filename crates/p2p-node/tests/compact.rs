//! Compact block relay between live nodes over real sockets: nodes that
//! relay compact blocks beside a node that does not, every block reaching
//! every node, and blocks rebuilt from mempools rather than sent whole.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;

use common::*;
use p2p_node::{MiningMode, Node, NodeHandle, Relay};

/// Starts a node that dials `peers` and relays blocks as `relay` says.
async fn start_relay(peers: &[SocketAddr], relay: Relay) -> NodeHandle {
    init_logs();
    let mut c = config();
    c.peers = peers.to_vec();
    c.mining = MiningMode::Off;
    c.relay = relay;
    Node::start(c).await.unwrap()
}

/// The compact counters of `node`.
async fn counts(node: &NodeHandle) -> p2p_node::core::Metrics {
    node.query(|v| v.metrics.clone()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_network_agrees_and_compact_peers_rebuild_blocks_from_their_mempools() {
    // a and b relay compact blocks; c (legacy) takes whole blocks only.
    let a = start_relay(&[], Relay::Compact).await;
    let b = start_relay(&[a.local_addr()], Relay::Compact).await;
    let c = start_relay(&[a.local_addr(), b.local_addr()], Relay::Legacy).await;
    let nodes = [&a, &b, &c];
    wait_full_mesh(&nodes).await;
    let mut nonce = 0;
    for round in 0..4u64 {
        // Transactions gossiped first, as real blocks' are; then a block.
        for _ in 0..3 {
            a.submit(alice_pays_bob(nonce)).await.unwrap();
            nonce += 1;
        }
        wait_for("the transactions in every pool", || async {
            for n in nodes {
                if n.query(|v| v.mempool.len()).await.unwrap() < 3 {
                    return false;
                }
            }
            true
        })
        .await;
        let miner = if round % 2 == 0 { &a } else { &b };
        miner.mine_blocks(1).await.unwrap();
        wait_same_tip(&nodes).await;
        assert_eq!(tip(&c).await.1, round + 1);
    }
    // Between a and b, blocks went as compact blocks and were rebuilt
    // from the mempool; c never got one (it did not ask).
    let (ca, cb) = (counts(&a).await.compact, counts(&b).await.compact);
    let cc = counts(&c).await.compact;
    assert!(ca.sent + cb.sent > 0, "{ca:?} {cb:?}");
    assert!(
        ca.rebuilt_at_once + cb.rebuilt_at_once + ca.rebuilt_after_asking + cb.rebuilt_after_asking
            > 0,
        "{ca:?} {cb:?}"
    );
    assert_eq!(cc.received, 0, "a legacy node is sent no compact block");
    assert_eq!((ca.failed, cb.failed), (0, 0));
    // Every node holds the same ledger.
    let l = ledger(&a).await;
    assert_eq!(ledger(&b).await, l);
    assert_eq!(ledger(&c).await, l);
}

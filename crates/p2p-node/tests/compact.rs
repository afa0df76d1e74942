//! Compact block relay between live nodes over real sockets: nodes that
//! relay compact blocks beside a node that does not, every block reaching
//! every node, and blocks rebuilt from mempools rather than sent whole.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;

use common::*;
use futures::SinkExt;
use p2p_node::{MiningMode, Node, NodeHandle, Relay};
use wire::{CompactBlock, Message};

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

/// A node for raw peers: patient (raw peers do not ping), with a short
/// request timeout.
async fn patient_node() -> NodeHandle {
    init_logs();
    let mut c = patient_config();
    c.mining = MiningMode::Off;
    c.request_timeout = std::time::Duration::from_millis(500);
    Node::start(c).await.unwrap()
}

/// A block at height 2 on `first`, holding a transfer whose nonce the
/// ledger refuses (its signature is good, its proof of work valid).
fn invalid_second_block(first: &chain_core::Block<escrow::Tx>) -> chain_core::Block<escrow::Tx> {
    let mut chain = genesis().chain().unwrap();
    chain.insert(first.clone(), now_ms()).unwrap();
    let transactions = vec![
        escrow::Tx::Coinbase {
            to: addr("eve"),
            height: 2,
        },
        escrow::Tx::Signed(alice_pays_bob(7)),
    ];
    child_of_tip(&chain, transactions, meets_target)
}

/// `raw`'s penalty score at `node` (`None`: not connected).
async fn score_of(node: &NodeHandle, raw: &RawPeer) -> Option<u32> {
    let id = raw.node_id;
    node.query(move |v| v.peers.iter().find(|p| p.node_id == id).map(|p| p.score))
        .await
        .unwrap()
}

/// Reads `raw`'s messages until one that `pick` accepts.
async fn until(raw: &mut RawPeer, pick: impl Fn(&Message) -> bool) -> Message {
    loop {
        match raw.next().await {
            Some(m) if pick(&m) => return m,
            Some(_) => {}
            None => panic!("the connection closed first"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_block_whose_transactions_fail_costs_its_pusher_nothing() {
    let a = patient_node().await;
    let mut pusher = live_raw_peer(&a).await;
    pusher
        .framed
        .send(Message::SendCompact {
            high_bandwidth: true,
        })
        .await
        .unwrap();
    // It gives `a` a new block first: `a` asks it to push.
    let first = child_of_genesis(coinbase_only(), meets_target);
    pusher
        .framed
        .send(Message::Block(first.clone()))
        .await
        .unwrap();
    until(&mut pusher, |m| {
        matches!(
            m,
            Message::SendCompact {
                high_bandwidth: true
            }
        )
    })
    .await;
    wait_for("the first block", || async { tip(&a).await.1 == 1 }).await;
    // Its push: valid proof of work, a transaction the ledger refuses.
    let bad = invalid_second_block(&first);
    let hash = bad.hash();
    let compact = CompactBlock::new(&bad, 3, &[1]);
    pusher
        .framed
        .send(Message::CompactBlock(compact.clone()))
        .await
        .unwrap();
    wait_for("the block known invalid", || async {
        a.query(move |v| v.chain.is_known_invalid(&hash))
            .await
            .unwrap()
    })
    .await;
    assert_eq!(
        score_of(&a, &pusher).await,
        Some(0),
        "no penalty for the push"
    );
    assert_eq!(tip(&a).await.1, 1, "the tip did not move");
    // The same block from a peer that was not asked to push: its fault.
    let mut other = live_raw_peer(&a).await;
    other
        .framed
        .send(Message::CompactBlock(compact))
        .await
        .unwrap();
    // Known invalid now: refused again, at the sender's cost.
    let _ = other.framed.send(Message::Block(bad)).await;
    wait_for("the other sender penalised", || async {
        score_of(&a, &other).await != Some(0)
    })
    .await;
    // A compact block whose proof of work fails is penalised, pusher or not.
    let mut spoiled = CompactBlock::new(
        &child_of_genesis(coinbase_only(), |h| !meets_target(h)),
        1,
        &[],
    );
    spoiled.salt = 2;
    pusher
        .framed
        .send(Message::CompactBlock(spoiled))
        .await
        .unwrap();
    wait_for("the pusher penalised for bad work", || async {
        score_of(&a, &pusher).await != Some(0)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_transactions_never_sent_are_asked_whole_of_another_peer() {
    let a = patient_node().await;
    let mut silent = live_raw_peer(&a).await;
    let mut other = live_raw_peer(&a).await;
    // A block whose transfer `a` has never seen.
    let transactions = vec![
        escrow::Tx::Coinbase {
            to: addr("eve"),
            height: 1,
        },
        escrow::Tx::Signed(alice_pays_bob(0)),
    ];
    let block = child_of_genesis(transactions, meets_target);
    let hash = block.hash();
    silent
        .framed
        .send(Message::CompactBlock(CompactBlock::new(&block, 4, &[])))
        .await
        .unwrap();
    let asked = until(&mut silent, |m| matches!(m, Message::GetBlockTxn { .. })).await;
    assert!(
        matches!(&asked, Message::GetBlockTxn { block, indexes } if *block == hash && indexes.to_vec() == vec![1]),
        "{asked:?}"
    );
    // It never answers; another peer announces the block, and gets the
    // request once the first one times out.
    let hashes = wire::Bounded::truncating(vec![hash]);
    other
        .framed
        .send(Message::AnnounceBlocks(hashes))
        .await
        .unwrap();
    let again = until(&mut other, |m| matches!(m, Message::GetBlocks(_))).await;
    assert!(matches!(&again, Message::GetBlocks(h) if h.to_vec() == vec![hash]));
    other.framed.send(Message::Block(block)).await.unwrap();
    wait_for("the block taken in", || async { tip(&a).await.1 == 1 }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_that_competes_with_the_tip_is_rebuilt_from_the_tips_transactions() {
    let a = patient_node().await;
    let mut raw = live_raw_peer(&a).await;
    // `a` mines the transfer: it leaves the mempool for the tip's block.
    let transfer = alice_pays_bob(0);
    a.submit(transfer.clone()).await.unwrap();
    a.mine_blocks(1).await.unwrap();
    assert_eq!(a.query(|v| v.mempool.len()).await.unwrap(), 0);
    // A rival block at the same height holding the same transfer.
    let rival = child_of_genesis(
        vec![
            escrow::Tx::Coinbase {
                to: addr("dave"),
                height: 1,
            },
            escrow::Tx::Signed(transfer),
        ],
        meets_target,
    );
    let hash = rival.hash();
    raw.framed
        .send(Message::CompactBlock(CompactBlock::new(&rival, 8, &[])))
        .await
        .unwrap();
    wait_for("the rival in the tree", || async {
        a.query(move |v| v.chain.contains(&hash)).await.unwrap()
    })
    .await;
    let c = counts(&a).await.compact;
    assert_eq!(
        (c.rebuilt_at_once, c.rebuilt_after_asking, c.failed),
        (1, 0, 0),
        "{c:?}"
    );
}

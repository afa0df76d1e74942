//! `NodeConfig::block_interval`: a node's own mining waits that long after
//! it adopts a new tip, on its own clock; "mine N" requests do not wait.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use p2p_node::{MiningMode, Node, NodeHandle};

async fn start_with_interval(interval: Duration, mining: MiningMode) -> NodeHandle {
    init_logs();
    let mut c = config();
    c.mining = mining;
    c.block_interval = interval;
    Node::start(c).await.unwrap()
}

/// The timestamps of the best chain's blocks from height 1 to the tip.
async fn timestamps(node: &NodeHandle) -> Vec<u64> {
    node.query(|v| {
        let tip = v.chain.tip();
        let mut out = Vec::new();
        let mut at = v.chain.header(&tip);
        while let Some(h) = at {
            if h.height == 0 {
                break;
            }
            out.push(h.timestamp_ms);
            at = v.chain.header(&h.parent);
        }
        out.reverse();
        out
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_mining_on_its_own_leaves_the_interval_between_blocks() {
    let interval = Duration::from_millis(300);
    let node = start_with_interval(interval, MiningMode::Continuous).await;
    wait_for("four blocks", || async { tip(&node).await.1 >= 4 }).await;
    let times = timestamps(&node).await;
    for pair in times.windows(2) {
        assert!(
            pair[1] >= pair[0] + 300,
            "a block {} ms after its parent: {times:?}",
            pair[1].saturating_sub(pair[0])
        );
    }
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requested_blocks_do_not_wait_for_the_interval() {
    // An hour: the node's own mining makes its first block (genesis is
    // old) and then waits; requested blocks come at once.
    let node = start_with_interval(Duration::from_secs(3_600), MiningMode::Continuous).await;
    wait_for("the first block", || async { tip(&node).await.1 >= 1 }).await;
    let before = tip(&node).await.1;
    let mined = node.mine_blocks(3).await.unwrap();
    assert_eq!(mined.len(), 3);
    assert_eq!(tip(&node).await.1, before + 3);
    let times = timestamps(&node).await;
    let last = times.len() - 1;
    assert!(
        times[last] < times[last - 3] + 3_600_000,
        "requested blocks waited for the interval: {times:?}"
    );
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tip_stamped_in_the_future_does_not_stall_mining() {
    // A peer's block stamped an hour ahead (within the two hours consensus
    // allows): the interval runs from its adoption, not from its stamp.
    let node = start_with_interval(Duration::from_millis(200), MiningMode::Off).await;
    let mut raw = live_raw_peer(&node).await;
    let chain = genesis().chain().unwrap();
    let mut header = chain.template(&coinbase_only(), now_ms() + 3_600_000);
    while !meets_target(&header) {
        header.nonce += 1;
    }
    let block = chain_core::Block {
        header,
        transactions: coinbase_only(),
    };
    let ahead = block.hash();
    futures::SinkExt::send(&mut raw.framed, wire::Message::Block(block))
        .await
        .unwrap();
    wait_for("the future block adopted", || async {
        tip(&node).await.0 == ahead
    })
    .await;
    node.set_mining(MiningMode::Continuous).await.unwrap();
    wait_for("a block mined on it", || async { tip(&node).await.1 >= 2 }).await;
    node.shutdown().await;
}

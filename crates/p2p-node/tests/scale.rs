//! Many nodes in one process, each told only two earlier ones: they find
//! the rest through address gossip, fill their outbound slots without
//! trying to reach everyone, and all agree on one tip. And a flood of
//! silent sockets cannot keep an honest peer out.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use p2p_node::{Direction, MiningMode, Node, NodeHandle};

/// Starts `n` nodes; node `i` is told two earlier ones (chosen by a fixed
/// rule, so the run is the same each time).
async fn network(n: usize) -> Vec<NodeHandle> {
    init_logs();
    let mut nodes: Vec<NodeHandle> = Vec::new();
    for i in 0..n {
        let mut peers = Vec::new();
        if i > 0 {
            peers.push(nodes[(i * 7 + 3) % i].local_addr());
            let second = nodes[(i * 13 + 5) % i].local_addr();
            if !peers.contains(&second) {
                peers.push(second);
            }
        }
        let mut c = config();
        c.peers = peers;
        c.mining = MiningMode::Off;
        nodes.push(Node::start(c).await.unwrap());
    }
    nodes
}

async fn outbound(node: &NodeHandle) -> usize {
    node.query(|v| {
        v.peers
            .iter()
            .filter(|p| p.direction == Direction::Outbound)
            .count()
    })
    .await
    .unwrap()
}

async fn run(n: usize) {
    let nodes = network(n).await;
    let quota = config().max_outbound;
    wait_for("every node has its outbound quota", || async {
        for node in &nodes {
            if outbound(node).await < quota {
                return false;
            }
        }
        true
    })
    .await;
    // Nobody tried to connect to everyone.
    for node in &nodes {
        let peers = peer_count(node).await;
        assert!(peers <= quota + config().max_inbound, "{peers} peers");
        assert!(outbound(node).await <= quota);
    }
    // A block mined anywhere reaches everyone.
    nodes[n / 2].mine_blocks(1).await.unwrap();
    nodes[n - 1].mine_blocks(1).await.unwrap();
    let refs: Vec<&NodeHandle> = nodes.iter().collect();
    wait_same_tip(&refs).await;
    for node in nodes {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_eight_nodes_told_two_peers_each_fill_their_slots_and_agree() {
    run(48).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_nodes_told_two_peers_each_fill_their_slots_and_agree() {
    run(100).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_silent_sockets_do_not_keep_an_honest_peer_out() {
    init_logs();
    // A handshake timeout longer than the test: no silent socket is closed
    // by its timeout, so an honest peer gets in only because sockets in
    // their handshake have a budget of their own (256), apart from the
    // peers' slots. No assertion on how long that takes: on a busy machine
    // it may take longer, and without the budget it never happens.
    let mut c = config();
    c.handshake_timeout = Duration::from_secs(600);
    let node = Node::start(c).await.unwrap();
    let addr = node.local_addr();
    let stop = tokio_util::sync::CancellationToken::new();
    // 200 sockets that never speak, each reopened as soon as it closes;
    // each says when it first got through.
    let opened = Arc::new(AtomicUsize::new(0));
    let mut flood = Vec::new();
    for _ in 0..200 {
        let stop = stop.clone();
        let opened = opened.clone();
        flood.push(tokio::spawn(async move {
            let mut first = true;
            while !stop.is_cancelled() {
                let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
                    // The flood's own pace when the node's backlog is
                    // full: part of the attack, not a wait.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                if std::mem::take(&mut first) {
                    opened.fetch_add(1, Ordering::Relaxed);
                }
                let mut buf = [0u8; 64];
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = tokio::io::AsyncReadExt::read(&mut s, &mut buf) => {}
                }
            }
        }));
    }
    wait_for("every flood socket connected", || async {
        opened.load(Ordering::Relaxed) == 200
    })
    .await;
    // Honest peers come and go during the flood; each is admitted (the
    // handshake's answer comes within `RawPeer::next`'s 10-second guard,
    // far less than the 600-second timeout that is the only other way a
    // slot could free) and stays.
    for _ in 0..10 {
        let mut honest = RawPeer::connect(addr).await;
        honest
            .handshake(genesis().network_id())
            .await
            .expect("an honest handshake during the flood");
        let id = honest.node_id;
        let is_live = || {
            let node = node.clone();
            async move {
                node.query(move |v| v.peers.iter().any(|p| p.node_id == id))
                    .await
                    .unwrap()
            }
        };
        wait_for("the honest peer is live", is_live).await;
        // It stays past the node's next ping to it (sent after
        // `ping_interval` of silence, on the connection it kept open).
        while let Some(m) = honest.next().await {
            if matches!(m, wire::Message::Ping { .. }) {
                break;
            }
        }
        assert!(is_live().await, "and stays");
        drop(honest);
    }
    stop.cancel();
    for task in flood {
        let _ = task.await;
    }
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_evicts_an_idle_inbound_peer_not_the_one_that_relays_blocks() {
    use futures::SinkExt;
    use wire::Message;
    init_logs();
    let mut c = config();
    c.max_inbound = 6;
    let node = Node::start(c).await.unwrap();
    // Five idle peers, then one more, the newest, that relays a block.
    let mut idle = Vec::new();
    // Each is admitted before its handshake is answered, so each is newer
    // than the one before.
    for _ in 0..5 {
        idle.push(live_raw_peer(&node).await);
    }
    let mut relayer = live_raw_peer(&node).await;
    let block = child_of_genesis(coinbase_only(), meets_target);
    let hash = block.hash();
    relayer.framed.send(Message::Block(block)).await.unwrap();
    wait_for("the block is accepted", || async {
        tip(&node).await.0 == hash
    })
    .await;
    wait_for("six inbound peers", || async {
        peer_count(&node).await == 6
    })
    .await;
    // A newcomer: inbound is full; the newest peer that relayed nothing
    // (the fifth idle one) makes room, the relayer stays.
    let _newcomer = live_raw_peer(&node).await;
    let gone = idle[4].node_id;
    wait_for("the newest idle peer evicted", || async {
        node.query(move |v| !v.peers.iter().any(|p| p.node_id == gone))
            .await
            .unwrap()
    })
    .await;
    let kept = relayer.node_id;
    let first = idle[0].node_id;
    let (relayer_kept, oldest_kept) = node
        .query(move |v| {
            (
                v.peers.iter().any(|p| p.node_id == kept),
                v.peers.iter().any(|p| p.node_id == first),
            )
        })
        .await
        .unwrap();
    assert!(relayer_kept, "the block relayer is protected");
    assert!(oldest_kept, "the longest connected are protected");
    node.shutdown().await;
}

//! Timeouts, limits, reconnection and the clock: what keeps a node's peer
//! set healthy.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use p2p_node::{MiningMode, Node};
use wire::{Message, Reason};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_is_dropped_at_the_handshake_timeout() {
    init_logs();
    let mut c = config();
    c.handshake_timeout = Duration::from_millis(300);
    let a = Node::start(c).await.unwrap();
    let mut raw = RawPeer::connect(a.local_addr()).await;
    match raw.until_notice().await {
        Some(Message::Notice { reason, .. }) => assert_eq!(reason, Reason::HandshakeTimeout),
        other => panic!("expected a handshake timeout notice, got {other:?}"),
    }
    assert!(raw.next().await.is_none(), "then the connection closes");
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_stops_answering_pings_is_dropped() {
    init_logs();
    let mut c = config();
    c.ping_interval = Duration::from_millis(200);
    c.idle_timeout = Duration::from_millis(700);
    let a = Node::start(c).await.unwrap();
    let mut raw = RawPeer::connect(a.local_addr()).await;
    raw.handshake(genesis().network_id()).await.unwrap();
    // Read without ever answering: as a partitioned peer would.
    let mut pinged = false;
    let reason = loop {
        match raw.next().await {
            Some(Message::Ping { .. }) => pinged = true,
            Some(Message::Notice { reason, .. }) => break Some(reason),
            Some(_) => {}
            None => break None,
        }
    };
    assert!(pinged, "the node pinged the silent peer first");
    assert_eq!(reason, Some(Reason::IdleTimeout));
    wait_for("the peer forgotten", || async { peer_count(&a).await == 0 }).await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_limit_are_refused_with_a_notice() {
    init_logs();
    let mut c = config();
    c.max_inbound = 1;
    let a = Node::start(c).await.unwrap();
    let network = genesis().network_id();
    let mut first = RawPeer::connect(a.local_addr()).await;
    first.handshake(network).await.unwrap();
    let mut second = RawPeer::connect(a.local_addr()).await;
    match second.handshake(network).await {
        Err(Message::Notice { reason, .. }) => assert_eq!(reason, Reason::TooManyPeers),
        other => panic!("a second peer was admitted: {other:?}"),
    }
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_peer_is_redialled_when_it_comes_back() {
    let a = start(&[], MiningMode::Off).await;
    let addr = a.local_addr();
    let b = start(&[addr], MiningMode::Off).await;
    wait_for("b connected", || async { peer_count(&b).await == 1 }).await;
    a.shutdown().await;
    wait_for("b noticed", || async { peer_count(&b).await == 0 }).await;
    // The same address, a new node.
    let mut c = config();
    c.listen = addr;
    let a2 = Node::start(c).await.unwrap();
    wait_for("b redialled", || async { peer_count(&b).await == 1 }).await;
    let a2_id = a2.node_id();
    let connected_to_a2 = b
        .query(move |v| v.peers.iter().any(|p| p.node_id == a2_id))
        .await
        .unwrap();
    assert!(connected_to_a2);
    a2.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_from_the_future_is_accepted_once_the_clock_catches_up() {
    // a's clock runs three hours ahead: its blocks are too far in the
    // future for b (the limit is two hours).
    let ahead = Arc::new(OffsetClock::default());
    ahead.offset_ms.store(3 * 3_600_000, Ordering::Relaxed);
    let a = start_with_clock(&[], ahead).await;
    let b_clock = Arc::new(OffsetClock::default());
    let b = start_with_clock(&[a.local_addr()], b_clock.clone()).await;
    wait_for("b connected", || async { peer_count(&b).await == 1 }).await;
    let first = a.mine_blocks(1).await.unwrap()[0];
    // b fetches it and refuses it, without remembering it as invalid and
    // without banning a.
    wait_for("b scored the future block", || async {
        b.query(|v| v.peers.first().is_some_and(|p| p.score > 0))
            .await
            .unwrap()
    })
    .await;
    let (known, invalid) = b
        .query(move |v| (v.chain.contains(&first), v.chain.is_known_invalid(&first)))
        .await
        .unwrap();
    assert!(!known && !invalid);
    // b's clock catches up; a's next block brings the first with it.
    b_clock.offset_ms.store(3 * 3_600_000, Ordering::Relaxed);
    a.mine_blocks(1).await.unwrap();
    wait_same_tip(&[&a, &b]).await;
    assert_eq!(tip(&b).await.1, 2);
    assert_eq!(peer_count(&b).await, 1, "a was never banned");
    a.shutdown().await;
    b.shutdown().await;
}

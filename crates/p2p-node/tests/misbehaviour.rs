//! Peers that break the protocol are penalised and, past the threshold,
//! disconnected and banned, while the node keeps serving its honest peers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::AtomicBool;

use bytes::BufMut;
use chain_core::BlockHash;
use chain_core::miner::{MineOutcome, Miner};
use common::*;
use escrow::{Amount, Payload, Signature, SignedTx, dev};
use futures::SinkExt;
use p2p_node::{BanKey, MiningMode};
use tokio::io::AsyncWriteExt;
use wire::{Message, Reason};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_bytes_get_a_peer_banned() {
    let (a, b) = honest_pair().await;
    let mut raw = live_raw_peer(&a).await;
    // A frame whose body is no message.
    raw.framed.get_mut().write_all(GARBAGE_FRAME).await.unwrap();
    assert_banned(&a, raw).await;
    still_serving(&a, &b).await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_before_the_handshake_bans_the_socket_address() {
    let (a, b) = honest_pair().await;
    let mut stream = tokio::net::TcpStream::connect(a.local_addr())
        .await
        .unwrap();
    let local = stream.local_addr().unwrap();
    // "GET " read as a length is a frame of about 1.2 GB.
    stream.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    wait_for("the socket address banned", || async {
        a.query(move |v| v.bans.iter().any(|(k, _)| *k == BanKey::Addr(local)))
            .await
            .unwrap()
    })
    .await;
    still_serving(&a, &b).await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_frame_gets_a_peer_banned() {
    let (a, b) = honest_pair().await;
    let mut raw = live_raw_peer(&a).await;
    let mut prefix = Vec::new();
    prefix.put_u32(64 * 1024 * 1024);
    raw.framed.get_mut().write_all(&prefix).await.unwrap();
    assert_banned(&a, raw).await;
    still_serving(&a, &b).await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_with_bad_proof_of_work_get_a_peer_banned() {
    let (a, b) = honest_pair().await;
    let mut raw = live_raw_peer(&a).await;
    let first = child_of_genesis(coinbase_only(), |h| !meets_target(h));
    let mut second = first.clone();
    second.header.nonce += 1;
    while meets_target(&second.header) {
        second.header.nonce += 1;
    }
    raw.framed.send(Message::Block(first)).await.unwrap();
    raw.framed.send(Message::Block(second)).await.unwrap();
    assert_banned(&a, raw).await;
    still_serving(&a, &b).await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_whose_parent_never_arrives_get_a_peer_banned() {
    let (a, b) = honest_pair().await;
    let mut raw = live_raw_peer(&a).await;
    let miner = Miner::new(1);
    for i in 0..10u8 {
        // Valid work on a parent nobody has.
        let mut block = child_of_genesis(coinbase_only(), |_| true);
        block.header.parent = BlockHash::from_bytes([i + 1; 32]);
        block.header.height = 7;
        let MineOutcome::Found(header) =
            miner.mine(&block.header, &AtomicBool::new(false)).unwrap()
        else {
            panic!("an easy target is always found")
        };
        block.header = header;
        raw.framed.send(Message::Block(block)).await.unwrap();
    }
    assert_banned(&a, raw).await;
    still_serving(&a, &b).await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_with_bad_signatures_get_a_peer_banned() {
    let (a, b) = honest_pair().await;
    let mut raw = live_raw_peer(&a).await;
    let network = genesis().network_id();
    for nonce in 0..5 {
        let mut tx = SignedTx::sign(
            &dev::keypair("alice").unwrap(),
            nonce,
            escrow::Amount::new(1),
            network,
            Payload::Transfer {
                to: dev::address("bob").unwrap(),
                amount: Amount::new(1),
            },
        );
        tx.signature = Signature([7; 64]);
        raw.framed.send(Message::Tx(tx)).await.unwrap();
    }
    assert_banned(&a, raw).await;
    let pending = a.query(|v| v.mempool.len()).await.unwrap();
    assert_eq!(pending, 0, "nothing forged was pooled");
    still_serving(&a, &b).await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_of_another_network_is_refused_with_a_notice_not_banned() {
    let a = start(&[], MiningMode::Off).await;
    let mut raw = RawPeer::connect(a.local_addr()).await;
    match raw.handshake(BlockHash::from_bytes([9; 32])).await {
        Err(Message::Notice { reason, .. }) => assert_eq!(reason, Reason::WrongNetwork),
        other => panic!("another network was accepted: {other:?}"),
    }
    let bans = a.query(|v| v.bans.len()).await.unwrap();
    assert_eq!(bans, 0);
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_of_another_protocol_version_is_refused_with_a_notice() {
    let a = start(&[], MiningMode::Off).await;
    let mut raw = RawPeer::connect(a.local_addr()).await;
    let mut hello = raw.hello(genesis().network_id());
    hello.version = wire::PROTOCOL_VERSION + 1;
    raw.framed.send(Message::Handshake(hello)).await.unwrap();
    match raw.next().await {
        Some(Message::Notice { reason, .. }) => assert_eq!(reason, Reason::UnsupportedVersion),
        other => panic!("another version was accepted: {other:?}"),
    }
    assert!(raw.next().await.is_none(), "then the connection closes");
    let bans = a.query(|v| v.bans.len()).await.unwrap();
    assert_eq!(bans, 0, "not an offence");
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_survives_a_restart_until_it_expires() {
    use p2p_node::store::RedbStore;
    use p2p_node::{Node, Seams};
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let start_on_store = |c: p2p_node::NodeConfig| {
        let store = RedbStore::open(dir.path()).unwrap();
        Node::start_with(
            c,
            Seams {
                store: Box::new(store),
                ..Seams::default()
            },
        )
    };
    let a = start_on_store(config()).await.unwrap();
    let mut raw = live_raw_peer(&a).await;
    // A frame whose body is no message: banned at once.
    raw.framed.get_mut().write_all(GARBAGE_FRAME).await.unwrap();
    let id = raw.node_id;
    wait_for("the ban", || async {
        a.query(move |v| v.bans.iter().any(|(k, _)| *k == BanKey::Node(id)))
            .await
            .unwrap()
    })
    .await;
    a.shutdown().await;
    drop(raw);
    // A new run on the same store still refuses that node.
    let mut c = config();
    c.listen = "127.0.0.1:0".parse().unwrap();
    let a = start_on_store(c).await.unwrap();
    let banned = a
        .query(move |v| v.bans.iter().any(|(k, _)| *k == BanKey::Node(id)))
        .await
        .unwrap();
    assert!(banned, "the ban is back after the restart");
    let mut again = RawPeer::connect(a.local_addr()).await;
    again.node_id = id;
    match again.handshake(genesis().network_id()).await {
        Err(Message::Notice { reason, .. }) => assert_eq!(reason, Reason::Banned),
        other => panic!("a banned peer came back after a restart: {other:?}"),
    }
    a.shutdown().await;
    // Ten minutes later (by the node's clock), the ban has expired: it is
    // not restored.
    let later = std::sync::Arc::new(OffsetClock::default());
    later
        .offset_ms
        .store(601_000, std::sync::atomic::Ordering::Relaxed);
    let a = Node::start_with(
        config(),
        Seams {
            store: Box::new(RedbStore::open(dir.path()).unwrap()),
            clock: later,
            ..Seams::default()
        },
    )
    .await
    .unwrap();
    let bans = a.query(|v| v.bans.len()).await.unwrap();
    assert_eq!(bans, 0, "an expired ban is not restored");
    a.shutdown().await;
}

//! The download's decisions, without sockets: each peer is a channel
//! whose messages the test reads back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use chain_core::{ChainParams, Work};
use escrow::Genesis;
use tokio::sync::mpsc;
use wire::{Handshake, NodeId};

use super::*;
use crate::config::NodeConfig;
use crate::core::view::Direction;

fn genesis() -> Genesis {
    let mut g = Genesis::dev();
    g.params = ChainParams::with_target_bits(4);
    g
}

/// `n` blocks on `genesis()`, each with a coinbase only, and the chain
/// that holds them.
fn source(n: u64) -> (Vec<Block<Tx>>, NodeChain) {
    let mut chain = genesis().chain().unwrap();
    let blocks = crate::core::view::mine_on(&mut chain, n, 7);
    (blocks, chain)
}

/// A peer table with live peers `conns`, each claiming `height`; their
/// queues.
fn peers(conns: &[ConnId], height: u64) -> (PeerTable, Vec<mpsc::Receiver<Message>>) {
    let config = NodeConfig::new(genesis());
    let addr = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    let now = Instant::now();
    let mut table = PeerTable::new(
        Arc::new(config),
        NodeId([1; 32]),
        Some(addr(1)),
        now,
        [7; 32],
    );
    let mut queues = Vec::new();
    for &conn in conns {
        let (tx, rx) = mpsc::channel(1_024);
        let id = u8::try_from(conn).unwrap() + 10;
        let hello = Handshake {
            version: wire::PROTOCOL_VERSION,
            network: genesis().network_id(),
            node_id: NodeId([id; 32]),
            listen_addr: None,
            best_tip: BlockHash::ZERO,
            best_height: height,
            total_work: Work::from_u128(1 << 40),
            user_agent: wire::BoundedString::truncating("test"),
        };
        let remote = addr(20_000 + u16::from(id));
        let queue = (tx, Arc::new(AtomicUsize::new(0)));
        table
            .admit(conn, remote, Direction::Inbound, &hello, queue, now)
            .unwrap();
        table.on_live(conn);
        queues.push(rx);
    }
    (table, queues)
}

/// The hashes of every `GetBlocks` in `rx` now.
fn asked(rx: &mut mpsc::Receiver<Message>) -> Vec<BlockHash> {
    std::iter::from_fn(|| rx.try_recv().ok())
        .filter_map(|m| match m {
            Message::GetBlocks(h) => Some(h.to_vec()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// A download that holds the headers of `blocks` (the node has none of
/// the blocks), asked of no one yet.
fn with_headers(blocks: &[Block<Tx>], node: &NodeChain, table: &mut PeerTable) -> Download {
    let mut d = Download::new(Duration::from_secs(5));
    let headers: Vec<Header> = blocks.iter().map(|b| b.header).collect();
    let now = (Instant::now(), u64::MAX / 2);
    d.on_headers(table, 1, &headers, node, now).unwrap();
    d
}

#[test]
fn bodies_are_shared_between_peers_asked_once_each_and_inserted_in_order() {
    let (blocks, _) = source(40);
    let node = genesis().chain().unwrap();
    let (mut table, mut queues) = peers(&[1, 2], 40);
    let mut d = with_headers(&blocks, &node, &mut table);
    let first = asked(&mut queues[0]);
    let second = asked(&mut queues[1]);
    assert_eq!(first.len(), CHUNK, "each peer gets its first allowance");
    assert_eq!(second.len(), CHUNK);
    assert!(first.iter().all(|h| !second.contains(h)), "no height twice");
    // The bodies arrive last first: none is ready before the lowest.
    let now = Instant::now();
    for b in blocks[..2 * CHUNK].iter().rev() {
        let from = if first.contains(&b.hash()) { 1 } else { 2 };
        d.on_block(&mut table, from, b.clone(), &node, now).unwrap();
        if b.header.height > 1 {
            assert!(d.next_block(&node, true).is_none());
        }
    }
    let mut node = node;
    while let Some((_, b)) = d.next_block(&node, true) {
        node.insert(b, u64::MAX / 2).unwrap();
    }
    assert_eq!(node.height(), 2 * CHUNK as u64, "inserted in height order");
    let progress = d.progress(&node, Instant::now()).unwrap();
    assert_eq!((progress.headers, progress.blocks), (40, 32));
}

#[test]
fn a_body_that_does_not_match_its_header_is_an_offence_and_asked_of_another() {
    let (blocks, _) = source(4);
    let node = genesis().chain().unwrap();
    let (mut table, mut queues) = peers(&[1], 4);
    let mut d = with_headers(&blocks, &node, &mut table);
    assert_eq!(asked(&mut queues[0]).len(), 4);
    let mut wrong = blocks[0].clone();
    wrong.transactions.clear();
    let offence = d.on_block(&mut table, 1, wrong, &node, Instant::now());
    assert!(
        matches!(offence, Err(Offence::InvalidBlock(_))),
        "{offence:?}"
    );
    assert!(
        d.next_block(&node, true).is_none(),
        "the wrong body is not kept"
    );
    // Peer 2 comes: the height the liar failed goes to it, not back to 1.
    let (mut more, mut queue) = peers(&[2], 4);
    d.fill(&mut more, &node, Instant::now());
    assert_eq!(asked(&mut queue[0]), vec![blocks[0].hash()]);
    // Its body is the one taken.
    d.on_block(&mut more, 2, blocks[0].clone(), &node, Instant::now())
        .unwrap();
    assert_eq!(
        d.next_block(&node, true).unwrap().1.hash(),
        blocks[0].hash()
    );
}

#[test]
fn a_body_not_delivered_in_time_is_asked_of_another_peer_and_the_late_one_still_counts() {
    let (blocks, _) = source(3);
    let node = genesis().chain().unwrap();
    let (mut table, mut queues) = peers(&[1], 3);
    let mut d = with_headers(&blocks, &node, &mut table);
    assert_eq!(asked(&mut queues[0]).len(), 3);
    // A second peer, with nothing to do yet: everything is asked.
    let (mut both, mut qs) = peers(&[1, 2], 3);
    d.fill(&mut both, &node, Instant::now());
    assert!(asked(&mut qs[1]).is_empty());
    // The timeout passes: peer 2 is asked for all three, peer 1 is not
    // asked again.
    let later = Instant::now() + Duration::from_secs(6);
    d.on_tick(&mut both, &node, later);
    assert!(asked(&mut qs[0]).is_empty());
    assert_eq!(asked(&mut qs[1]).len(), 3);
    assert_eq!(d.state(1).limit, CHUNK / 2, "its allowance halved");
    // Peer 1's answer arrives late: it is taken all the same, no offence.
    d.on_block(&mut both, 1, blocks[0].clone(), &node, later)
        .unwrap();
    assert_eq!(d.next_block(&node, true).unwrap().0, 1);
    assert!(!d.is_idle(), "the other two are still asked");
}

//! The network part's decisions, without sockets: each peer is a channel
//! whose messages the test reads back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize};

use chain_core::Work;
use escrow::Genesis;
use tokio::sync::mpsc;
use wire::NodeId;

use super::*;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A network part that records what it dials, a dev chain and an empty
/// mempool.
/// These tests are of legacy relay; compact relay is `compact.rs`'s and
/// `tests/compact.rs`'s.
fn parts() -> (Network, NodeChain, Mempool) {
    let mut config = NodeConfig::new(Genesis::dev());
    config.relay = crate::config::Relay::Legacy;
    parts_with(config)
}

/// [`parts`] with `config`.
fn parts_with(config: NodeConfig) -> (Network, NodeChain, Mempool) {
    let peers = PeerTable::new(
        Arc::new(config.clone()),
        NodeId([1; 32]),
        Some(addr(1)),
        Instant::now(),
        [7; 32],
    );
    let dialing = Dialing::new(Arc::new(AtomicU64::new(100)), Box::new(|_, _| {}));
    let chain = Genesis::dev().chain().unwrap();
    let mempool = Mempool::new(chain.state(), 1, 100, 10);
    (Network::new(peers, dialing, &config), chain, mempool)
}

fn hello(id: u8, network: BlockHash, work: Work) -> Handshake {
    Handshake {
        version: wire::PROTOCOL_VERSION,
        network,
        node_id: NodeId([id; 32]),
        listen_addr: Some(addr(9000 + u16::from(id))),
        best_tip: BlockHash::ZERO,
        best_height: 0,
        total_work: work,
        user_agent: wire::BoundedString::truncating("test"),
    }
}

/// Admits peer `id` as `conn` with `work` and makes it live (nothing
/// announced: the tip is taken as not saved); returns its queue.
fn live_peer(
    net: &mut Network,
    (chain, mempool): (&NodeChain, &Mempool),
    (conn, id): (ConnId, u8),
    work: Work,
) -> mpsc::Receiver<Message> {
    live_peer_queued(net, (chain, mempool), (conn, id), work).0
}

/// [`live_peer`], with the count of bytes queued for the peer (a writer
/// takes off what it wrote).
fn live_peer_queued(
    net: &mut Network,
    (chain, mempool): (&NodeChain, &Mempool),
    (conn, id): (ConnId, u8),
    work: Work,
) -> (mpsc::Receiver<Message>, Arc<AtomicUsize>) {
    let (tx, rx) = mpsc::channel(64);
    let queued = Arc::new(AtomicUsize::new(0));
    let queue = (tx, Arc::clone(&queued));
    let who = (conn, addr(20_000 + u16::from(id)), Direction::Inbound);
    let genesis = chain.genesis_hash();
    net.admit(
        who,
        &hello(id, genesis, work),
        queue,
        genesis,
        Instant::now(),
    )
    .unwrap();
    net.on_live(conn, Lent::new(chain, mempool), false);
    (rx, queued)
}

/// What `rx` holds now, by kind.
fn kinds(rx: &mut mpsc::Receiver<Message>) -> Vec<&'static str> {
    std::iter::from_fn(|| rx.try_recv().ok())
        .map(|m| m.kind())
        .collect()
}

/// `conn`'s penalty points at `now` (they decay with time: the tests
/// read them at the instant they punished, whatever the machine's speed).
fn score(net: &Network, conn: ConnId, now: Instant) -> u32 {
    let infos = net.peers().infos(now);
    infos.iter().find(|p| p.conn == conn).unwrap().score
}

#[test]
fn admit_refuses_a_handshake_of_another_network() {
    let (mut net, chain, _) = parts();
    let (tx, _rx) = mpsc::channel(4);
    let queue = (tx, Arc::new(AtomicUsize::new(0)));
    let other = BlockHash::from_bytes([3; 32]);
    let who = (5, addr(7000), Direction::Inbound);
    let genesis = chain.genesis_hash();
    let refused = net.admit(
        who,
        &hello(2, other, Work::ZERO),
        queue,
        genesis,
        Instant::now(),
    );
    assert_eq!(refused.unwrap_err().0, Reason::WrongNetwork);
    assert!(!net.is_connected(5));
}

#[test]
fn a_live_peer_is_asked_for_addresses_synced_from_if_ahead_and_told_the_saved_tip() {
    let (mut net, chain, mempool) = parts();
    let lent = (&chain, &mempool);
    // Not ahead, the tip not saved: only asked for addresses.
    let mut behind = live_peer(&mut net, lent, (1, 2), Work::ZERO);
    assert_eq!(kinds(&mut behind), ["get-addrs"]);
    // Ahead: synced from. Told the tip once it is saved.
    let (tx, mut ahead) = mpsc::channel(64);
    let queue = (tx, Arc::new(AtomicUsize::new(0)));
    let genesis = chain.genesis_hash();
    let more = Work::from_u128(u128::MAX);
    let who = (2, addr(20_003), Direction::Outbound);
    net.admit(
        who,
        &hello(3, genesis, more),
        queue,
        genesis,
        Instant::now(),
    )
    .unwrap();
    net.on_live(2, Lent::new(&chain, &mempool), true);
    assert_eq!(
        kinds(&mut ahead),
        ["get-addrs", "get-headers", "announce-blocks"]
    );
    // Told once: the tip is known to it now.
    net.announce_block_to_all(chain.tip(), &chain);
    assert!(kinds(&mut ahead).is_empty());
    assert_eq!(kinds(&mut behind), ["announce-blocks"]);
}

#[test]
fn announced_blocks_are_asked_once_and_sent_ones_tell_the_height() {
    let (mut net, chain, mempool) = parts();
    let mut rx = live_peer(&mut net, (&chain, &mempool), (3, 2), Work::ZERO);
    kinds(&mut rx);
    let unknown = BlockHash::from_bytes([9; 32]);
    let now = Instant::now();
    let announce = |hashes: Vec<BlockHash>| Message::AnnounceBlocks(Bounded::truncating(hashes));
    let lent = Lent::new(&chain, &mempool);
    net.on_message(3, announce(vec![chain.tip(), unknown]), lent, now);
    match rx.try_recv().unwrap() {
        Message::GetBlocks(h) => assert_eq!(h.to_vec(), vec![unknown]),
        other => panic!("not a request: {other:?}"),
    }
    // Asked already: not again.
    net.on_message(3, announce(vec![unknown]), lent, now);
    assert!(kinds(&mut rx).is_empty());
    // The block arrives: it was asked for (an orphan is no fault).
    assert!(net.block_from(3, &unknown, None));
    assert!(!net.block_from(3, &unknown, None), "asked once");
    // A block we have tells the peer's height (genesis: 0).
    net.sent_block((3, &chain.tip(), false), &chain, Instant::now);
    assert_eq!(net.peers().infos(now)[0].best_height, 0);
}

#[test]
fn an_unasked_orphan_is_punished_and_asks_for_headers_once() {
    let (mut net, chain, mempool) = parts();
    let mut rx = live_peer(&mut net, (&chain, &mempool), (4, 2), Work::ZERO);
    kinds(&mut rx);
    let missing = BlockHash::from_bytes([8; 32]);
    let now = Instant::now();
    net.orphan_from(4, (true, missing), &chain, now);
    assert_eq!(score(&net, 4, now), 0, "asked for: no fault");
    assert_eq!(kinds(&mut rx), ["get-headers"]);
    net.orphan_from(4, (false, missing), &chain, now);
    assert!(score(&net, 4, now) > 0);
    assert!(kinds(&mut rx).is_empty(), "one headers request at a time");
    net.on_headers(4, &[], &chain, 0);
    net.orphan_from(4, (true, missing), &chain, now);
    assert_eq!(kinds(&mut rx), ["get-headers"]);
}

#[test]
fn a_second_handshake_is_punished_and_addresses_are_answered() {
    let (mut net, chain, mempool) = parts();
    let mut rx = live_peer(&mut net, (&chain, &mempool), (6, 2), Work::ZERO);
    kinds(&mut rx);
    let lent = Lent::new(&chain, &mempool);
    let now = Instant::now();
    net.on_message(6, Message::GetAddrs, lent, now);
    assert_eq!(kinds(&mut rx), ["addrs"]);
    assert_eq!(score(&net, 6, now), 0);
    net.on_message(6, Message::HandshakeAck, lent, now);
    assert!(score(&net, 6, now) > 0);
}

#[test]
fn what_was_asked_of_a_peer_that_left_is_asked_of_another() {
    let (mut net, chain, mempool) = parts();
    let lent = (&chain, &mempool);
    let mut first = live_peer(&mut net, lent, (1, 2), Work::ZERO);
    let mut second = live_peer(&mut net, lent, (2, 3), Work::ZERO);
    kinds(&mut first);
    kinds(&mut second);
    let unknown = BlockHash::from_bytes([9; 32]);
    let announce = || Message::AnnounceBlocks(Bounded::truncating(vec![unknown]));
    let now = Instant::now();
    net.on_message(1, announce(), Lent::new(&chain, &mempool), now);
    net.on_message(2, announce(), Lent::new(&chain, &mempool), now);
    assert_eq!(kinds(&mut first), ["get-blocks"]);
    assert!(kinds(&mut second).is_empty(), "asked of one peer at a time");
    net.on_gone(1, &chain, now);
    assert_eq!(kinds(&mut second), ["get-blocks"]);
    assert!(!net.is_connected(1));
}

#[test]
fn the_network_is_settled_only_while_a_tick_would_do_nothing() {
    // Free outbound slots: a tick dials or asks for addresses.
    let (net, _, _) = parts();
    assert!(!net.settled(Instant::now()));
    // No outbound slot to fill (all taken, here none wanted).
    let mut config = NodeConfig::new(Genesis::dev());
    config.relay = crate::config::Relay::Legacy;
    config.max_outbound = 0;
    let (mut net, chain, mempool) = parts_with(config);
    let (mut rx, queued) = live_peer_queued(&mut net, (&chain, &mempool), (3, 2), Work::ZERO);
    kinds(&mut rx);
    let now = Instant::now();
    // What it was told on going live is still queued: it drains without
    // an event, so the published figure must be refreshed.
    assert!(!net.settled(now));
    queued.store(0, std::sync::atomic::Ordering::Relaxed);
    assert!(net.settled(now));
    // A block asked of a peer can time out: a tick is needed.
    let unknown = BlockHash::from_bytes([9; 32]);
    let announce = Message::AnnounceBlocks(Bounded::truncating(vec![unknown]));
    net.on_message(3, announce, Lent::new(&chain, &mempool), now);
    assert_eq!(kinds(&mut rx), ["get-blocks"]);
    queued.store(0, std::sync::atomic::Ordering::Relaxed);
    assert!(!net.settled(now));
    assert!(net.block_from(3, &unknown, None));
    assert!(net.settled(now));
    // Penalty points decay on the published figures, a point a second.
    net.on_message(3, Message::HandshakeAck, Lent::new(&chain, &mempool), now);
    let points = score(&net, 3, now);
    assert!(points > 0);
    assert!(!net.settled(now));
    assert!(net.settled(now + Duration::from_secs(u64::from(points))));
    // Bytes queued for a peer drain without an event.
    net.peers.send(3, Message::GetAddrs);
    assert!(!net.settled(now + Duration::from_secs(u64::from(points))));
}

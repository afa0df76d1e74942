//! The peer table's decisions, without sockets.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::penalty::Offence;
use chain_core::BlockHash;
use escrow::Genesis;

pub(super) fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn table_with(config: NodeConfig) -> PeerTable {
    PeerTable::new(
        Arc::new(config),
        NodeId([1; 32]),
        Some(addr(1)),
        Instant::now(),
        [7; 32],
    )
}

pub(super) fn table() -> PeerTable {
    table_with(NodeConfig::new(Genesis::dev()))
}

pub(super) fn hello(id: u8, listen: Option<u16>) -> Handshake {
    Handshake {
        version: wire::PROTOCOL_VERSION,
        network: BlockHash::ZERO,
        node_id: NodeId([id; 32]),
        listen_addr: listen.map(addr),
        best_tip: BlockHash::ZERO,
        best_height: 7,
        total_work: Work::ZERO,
        user_agent: wire::BoundedString::truncating("test"),
    }
}

pub(super) type Queue = (mpsc::Sender<Message>, Arc<AtomicUsize>);

fn queue_of(size: usize) -> (Queue, mpsc::Receiver<Message>) {
    let (tx, rx) = mpsc::channel(size);
    ((tx, Arc::new(AtomicUsize::new(0))), rx)
}

pub(super) fn queue() -> (Queue, mpsc::Receiver<Message>) {
    queue_of(4)
}

#[test]
fn admits_then_goes_live_and_refuses_itself() {
    let mut t = table();
    let now = Instant::now();
    let (tx, _rx) = queue();
    assert_eq!(
        t.admit(
            1,
            addr(9000),
            Direction::Inbound,
            &hello(1, None),
            tx.clone(),
            now
        ),
        Err((Reason::DuplicateConnection, "that is this node".into()))
    );
    assert!(
        t.admit(
            2,
            addr(9000),
            Direction::Inbound,
            &hello(2, Some(2)),
            tx,
            now
        )
        .is_ok()
    );
    assert_eq!(t.live_count(), 0, "not live before the handshake completes");
    assert_eq!(t.on_live(2), Some(Work::ZERO));
    assert_eq!(t.live_count(), 1);
    assert_eq!(t.infos(now)[0].best_height, 7);
}

#[test]
fn of_two_connections_the_one_dialled_by_the_smaller_id_stays() {
    let mut t = table(); // our id is [1; 32]
    let now = Instant::now();
    let (tx, mut first_rx) = queue();
    // Node 5 dialled us first; then we dialled node 5. Our id is
    // smaller, so our outbound connection wins and replaces the first.
    t.admit(
        1,
        addr(9001),
        Direction::Inbound,
        &hello(5, Some(5)),
        tx.clone(),
        now,
    )
    .unwrap();
    t.admit(
        2,
        addr(5),
        Direction::Outbound,
        &hello(5, Some(5)),
        tx.clone(),
        now,
    )
    .unwrap();
    assert!(!t.is_connected(1));
    assert!(t.is_connected(2));
    assert!(matches!(
        first_rx.try_recv(),
        Ok(Message::Notice {
            reason: Reason::DuplicateConnection,
            ..
        })
    ));
    // A third connection from node 5 (inbound) loses to ours.
    assert!(matches!(
        t.admit(
            3,
            addr(9002),
            Direction::Inbound,
            &hello(5, Some(5)),
            tx,
            now
        ),
        Err((Reason::DuplicateConnection, _))
    ));
}

#[test]
fn inbound_past_its_limit_is_refused_when_every_peer_is_protected() {
    let mut config = NodeConfig::new(Genesis::dev());
    config.max_inbound = 2;
    let mut t = table_with(config);
    let now = Instant::now();
    let (tx, _rx) = queue();
    for id in 2..4 {
        t.admit(
            u64::from(id),
            addr(9000 + u16::from(id)),
            Direction::Inbound,
            &hello(id, None),
            tx.clone(),
            now,
        )
        .unwrap();
    }
    // Both are among the longest connected: protected.
    assert!(matches!(
        t.admit(9, addr(9009), Direction::Inbound, &hello(9, None), tx, now),
        Err((Reason::TooManyPeers, _))
    ));
}

#[test]
fn a_newcomer_evicts_the_newest_unprotected_inbound_peer_never_a_relayer() {
    let mut config = NodeConfig::new(Genesis::dev());
    config.max_inbound = 12;
    let mut t = table_with(config);
    let start = Instant::now();
    let (tx, _rx) = queue();
    for id in 0..12u8 {
        let at = start + Duration::from_secs(u64::from(id));
        t.admit(
            u64::from(id),
            addr(9000 + u16::from(id)),
            Direction::Inbound,
            &hello(id + 10, None),
            tx.clone(),
            at,
        )
        .unwrap();
    }
    // The newest relays blocks, the second newest transactions.
    let later = start + Duration::from_secs(100);
    t.note_block(11, later);
    t.note_tx(10, later);
    t.admit(
        50,
        addr(9500),
        Direction::Inbound,
        &hello(60, None),
        tx.clone(),
        later,
    )
    .unwrap();
    // Protected: 11 (blocks), 10 (transactions), 0..=3 (longest
    // connected). The newest of the rest, 9, went.
    assert!(
        !t.is_connected(9),
        "the newest unprotected peer was evicted"
    );
    for kept in [0, 1, 2, 3, 10, 11] {
        assert!(t.is_connected(kept), "{kept} is protected");
    }
    assert!(t.is_connected(50));
    // Outbound peers are never candidates: a full inbound side with only
    // protected peers refuses.
    let mut config = NodeConfig::new(Genesis::dev());
    config.max_inbound = 1;
    let mut t = table_with(config);
    t.admit(
        1,
        addr(9001),
        Direction::Outbound,
        &hello(5, Some(9001)),
        tx.clone(),
        start,
    )
    .unwrap();
    t.admit(
        2,
        addr(9002),
        Direction::Inbound,
        &hello(6, None),
        tx.clone(),
        start,
    )
    .unwrap();
    assert!(
        t.admit(
            3,
            addr(9003),
            Direction::Inbound,
            &hello(7, None),
            tx,
            start
        )
        .is_err()
    );
    assert!(t.is_connected(1) && t.is_connected(2));
}

#[test]
fn dialling_fills_the_outbound_quota_and_no_more() {
    let mut config = NodeConfig::new(Genesis::dev());
    config.max_outbound = 3;
    config.peers = vec![addr(7000)];
    let mut t = table_with(config);
    let now = Instant::now();
    for port in 7001..7020 {
        t.learn_addr(addr(port), now);
    }
    let plan = t.dial_plan(now);
    assert_eq!(plan.len(), 3, "only the outbound quota");
    assert_eq!(plan[0], addr(7000), "configured peers first");
    assert!(t.dial_plan(now).is_empty(), "dials in flight count");
    // One dial fails: one more is planned.
    t.dial_failed(0, plan[1], now);
    assert_eq!(t.dial_plan(now).len(), 1);
    // Connected outbound peers count the same.
    let (tx, _rx) = queue();
    t.admit(
        1,
        plan[0],
        Direction::Outbound,
        &hello(5, Some(plan[0].port())),
        tx,
        now,
    )
    .unwrap();
    assert!(t.dial_plan(now).is_empty());
}

#[test]
fn a_node_short_of_outbound_peers_and_addresses_asks_for_more() {
    let mut t = table();
    let now = Instant::now();
    assert_eq!(t.addr_request(now), None, "nobody to ask");
    let (tx, _rx) = queue();
    t.admit(
        1,
        addr(9000),
        Direction::Inbound,
        &hello(2, Some(2)),
        tx,
        now,
    )
    .unwrap();
    t.on_live(1);
    // Its listening address is known and connected: nothing to dial.
    assert_eq!(t.dial_plan(now), Vec::<SocketAddr>::new());
    assert_eq!(t.addr_request(now), Some(1));
    assert_eq!(t.addr_request(now), None, "not again at once");
    assert_eq!(t.addr_request(now + Duration::from_secs(5)), Some(1));
    // Addresses answered include the book's, not the asker's own.
    t.learn_addr(addr(7777), now);
    let answer = t.addrs_for(1, 10, now);
    assert!(answer.contains(&addr(7777)));
    assert!(!answer.contains(&addr(2)));
}

#[test]
fn announcements_move_a_peers_height() {
    let mut t = table();
    let now = Instant::now();
    let (tx, _rx) = queue();
    t.admit(1, addr(9000), Direction::Inbound, &hello(2, None), tx, now)
        .unwrap();
    t.on_live(1);
    assert_eq!(t.infos(now)[0].best_height, 7);
    t.saw_tip(1, 137, Work::ZERO);
    assert_eq!(t.infos(now)[0].best_height, 137);
    t.saw_tip(1, 5, Work::ZERO);
    assert_eq!(t.infos(now)[0].best_height, 137, "never backwards");
}

#[test]
fn penalties_add_up_to_a_ban_that_refuses_the_node_again() {
    let mut t = table();
    let now = Instant::now();
    let (tx, mut rx) = queue();
    t.admit(
        1,
        addr(9000),
        Direction::Inbound,
        &hello(2, Some(2)),
        tx.clone(),
        now,
    )
    .unwrap();
    let small = Offence::InvalidTx("bad".into());
    assert!(matches!(
        t.punish(1, None, &small, now),
        Punished::Warned { .. }
    ));
    let heavy = Offence::Protocol("a second handshake");
    let mut outcome = Punished::Nobody;
    for _ in 0..10 {
        outcome = t.punish(1, None, &heavy, now);
        if outcome == Punished::Banned {
            break;
        }
    }
    assert_eq!(outcome, Punished::Banned);
    assert!(!t.is_connected(1));
    let mut notice = None;
    while let Ok(m) = rx.try_recv() {
        notice = Some(m);
    }
    assert!(matches!(
        notice,
        Some(Message::Notice {
            reason: Reason::Banned,
            ..
        })
    ));
    // Back under the same node id, or from its listening address.
    assert!(matches!(
        t.admit(
            2,
            addr(9100),
            Direction::Inbound,
            &hello(2, None),
            tx.clone(),
            now
        ),
        Err((Reason::Banned, _))
    ));
    assert!(matches!(
        t.admit(
            3,
            addr(9101),
            Direction::Inbound,
            &hello(3, Some(2)),
            tx,
            now
        ),
        Err((Reason::Banned, _))
    ));
    assert!(
        t.bans(now)
            .iter()
            .any(|(k, _)| *k == BanKey::Node(NodeId([2; 32])))
    );
}

#[test]
fn garbage_before_a_handshake_bans_the_socket_address_only_when_heavy() {
    let mut t = table();
    let now = Instant::now();
    let light = Offence::InvalidTx("x".into());
    assert_eq!(t.punish(7, Some(addr(9000)), &light, now), Punished::Nobody);
    let heavy = Offence::Frame("garbage".into());
    assert_eq!(
        t.punish(7, Some(addr(9000)), &heavy, now),
        Punished::BannedBeforeHandshake
    );
    assert_eq!(
        t.bans(now),
        vec![(BanKey::Addr(addr(9000)), t.config.ban_duration)]
    );
}

#[test]
fn one_backoff_rule_doubles_to_the_maximum_for_gone_peers_and_failed_dials() {
    let mut config = NodeConfig::new(Genesis::dev());
    config.peers = vec![addr(7000)];
    config.min_backoff = Duration::from_secs(1);
    config.max_backoff = Duration::from_secs(3);
    let mut t = table_with(config);
    let now = Instant::now();
    assert_eq!(t.dial_plan(now), vec![addr(7000)]);
    assert!(t.dial_plan(now).is_empty(), "busy while being dialled");
    t.dial_failed(0, addr(7000), now);
    assert!(t.dial_plan(now).is_empty(), "not before the backoff");
    assert_eq!(t.dial_plan(now + Duration::from_secs(1)), vec![addr(7000)]);
    // The dial succeeded this time; the connection ends later.
    let (tx, _rx) = queue();
    let at = now + Duration::from_secs(1);
    t.admit(
        4,
        addr(7000),
        Direction::Outbound,
        &hello(4, Some(7000)),
        tx,
        at,
    )
    .unwrap();
    t.on_gone(4, at);
    assert!(
        t.dial_plan(at + Duration::from_secs(1)).is_empty(),
        "backoff doubled to 2 s"
    );
    assert_eq!(t.dial_plan(at + Duration::from_secs(2)), vec![addr(7000)]);
    t.dial_failed(0, addr(7000), at);
    t.dial_failed(0, addr(7000), at);
    // Capped at 3 s.
    assert_eq!(t.dial_plan(at + Duration::from_secs(3)), vec![addr(7000)]);
}

#[test]
fn partitions_drop_and_refuse_until_healed() {
    let mut t = table();
    let now = Instant::now();
    let (tx, _rx) = queue();
    t.admit(
        1,
        addr(9000),
        Direction::Inbound,
        &hello(2, Some(2)),
        tx.clone(),
        now,
    )
    .unwrap();
    t.on_gone(1, now);
    t.admit(
        1,
        addr(9000),
        Direction::Inbound,
        &hello(2, Some(2)),
        tx.clone(),
        now,
    )
    .unwrap();
    assert_eq!(t.partition(&[addr(2)]), 1);
    assert!(!t.is_connected(1));
    assert!(matches!(
        t.admit(
            2,
            addr(9001),
            Direction::Inbound,
            &hello(2, Some(2)),
            tx,
            now
        ),
        Err((Reason::Other, _))
    ));
    t.on_gone(1, now);
    assert!(
        t.dial_plan(now + Duration::from_secs(600)).is_empty(),
        "partitioned"
    );
    t.heal(now);
    assert_eq!(t.dial_plan(now), vec![addr(2)]);
}

#[test]
fn a_peer_with_a_full_queue_is_dropped() {
    let mut t = table();
    let now = Instant::now();
    let (tx, _rx) = queue_of(1);
    t.admit(1, addr(9000), Direction::Inbound, &hello(2, None), tx, now)
        .unwrap();
    t.on_live(1);
    assert!(t.send(1, Message::GetAddrs));
    assert!(!t.send(1, Message::GetAddrs), "the queue is full");
    assert!(!t.is_connected(1));
    assert_eq!(t.live_count(), 0);
}

#[test]
fn the_address_book_skips_our_own_address() {
    let mut t = table();
    let now = Instant::now();
    t.learn_addr(addr(1), now);
    t.learn_addr(addr(2), now);
    assert_eq!(t.dial_plan(now), vec![addr(2)]);
}

#[test]
fn a_peer_past_its_byte_budget_is_dropped_and_the_budget_counts_what_is_written() {
    let mut config = NodeConfig::new(Genesis::dev());
    config.peer_queue_bytes = 100;
    let mut t = table_with(config);
    let now = Instant::now();
    let (q, mut rx) = queue_of(64);
    let queued = q.1.clone();
    t.admit(1, addr(9000), Direction::Inbound, &hello(2, None), q, now)
        .unwrap();
    t.on_live(1);
    let ping = Message::Ping { nonce: u64::MAX };
    let size = wire::frame_len(&ping);
    let mut sent = 0;
    while t.send(1, ping.clone()) {
        sent += 1;
    }
    assert_eq!(sent, 100 / size, "as many as fit in the budget");
    assert_eq!(queued.load(Ordering::Relaxed), sent * size);
    assert!(!t.is_connected(1), "the next one would pass the budget");
    // What the writer took off the queue no longer counts.
    let (q, _rx2) = queue_of(64);
    let queued = q.1.clone();
    t.admit(2, addr(9001), Direction::Inbound, &hello(3, None), q, now)
        .unwrap();
    for _ in 0..10 {
        assert!(t.send(2, ping.clone()));
        queued.fetch_sub(size, Ordering::Relaxed); // the writer wrote it
    }
    assert!(t.is_connected(2));
    while rx.try_recv().is_ok() {}
}

#[test]
fn uploads_fit_a_token_bucket_and_a_refused_request_takes_nothing() {
    let mut config = NodeConfig::new(Genesis::dev());
    config.upload_burst = 1_000;
    config.upload_rate = 100;
    let mut t = table_with(config);
    let now = Instant::now();
    let (q, _rx) = queue();
    t.admit(1, addr(9000), Direction::Inbound, &hello(2, None), q, now)
        .unwrap();
    assert!(t.charge_upload(1, 600, now));
    assert!(!t.charge_upload(1, 500, now), "400 left");
    assert!(t.charge_upload(1, 400, now), "the refusal took nothing");
    assert!(!t.charge_upload(1, 1, now));
    // 100 bytes a second come back, up to the burst.
    assert!(t.charge_upload(1, 200, now + Duration::from_secs(2)));
    assert!(!t.charge_upload(1, 1_001, now + Duration::from_secs(3_600)));
    assert!(t.charge_upload(1, 1_000, now + Duration::from_secs(3_600)));
    assert!(
        !t.charge_upload(9, 1, now),
        "an unknown connection gets nothing"
    );
}

#[test]
fn a_named_peer_is_reported_unreachable_once_per_change_not_per_retry() {
    let mut config = NodeConfig::new(Genesis::dev());
    config.peers = vec![addr(7000)];
    config.min_backoff = Duration::from_secs(1);
    let mut t = table_with(config);
    let now = Instant::now();
    assert_eq!(t.dial_plan(now), vec![addr(7000)]);
    assert!(t.dial_failed(0, addr(7000), now), "the first failure");
    for retry in 1..5 {
        assert!(!t.dial_failed(retry, addr(7000), now), "retry {retry}");
    }
    // Reached, then lost: worth saying again, once.
    let (tx, _rx) = queue();
    t.admit(
        9,
        addr(7000),
        Direction::Outbound,
        &hello(9, Some(7000)),
        tx,
        now,
    )
    .unwrap();
    t.on_gone(9, now);
    assert!(t.dial_failed(10, addr(7000), now), "unreachable again");
    assert!(!t.dial_failed(11, addr(7000), now));
    // Addresses learnt from peers fail quietly; one the operator added
    // (`POST /peers`) is watched like a configured one.
    assert!(!t.dial_failed(12, addr(7001), now));
    t.watch(addr(7002));
    assert!(t.dial_failed(13, addr(7002), now));
    assert!(!t.dial_failed(14, addr(7002), now));
}

#[test]
fn the_published_peers_are_rebuilt_only_when_they_changed() {
    let mut t = table();
    let now = Instant::now();
    assert_eq!(t.infos_unless(&[], now), None, "no peers, none before");
    let (tx, _rx) = queue();
    t.admit(
        3,
        addr(9000),
        Direction::Inbound,
        &hello(3, Some(3)),
        tx,
        now,
    )
    .unwrap();
    assert_eq!(t.infos_unless(&[], now), None, "not live yet");
    t.on_live(3);
    let infos = t.infos_unless(&[], now).expect("a new live peer");
    assert_eq!(infos, t.infos(now));
    assert_eq!(t.infos_unless(&infos, now), None, "unchanged");
    t.saw_height(3, 90);
    let moved = t.infos_unless(&infos, now).expect("its height moved");
    assert_eq!(moved[0].best_height, 90);
    t.punish(3, None, &Offence::Protocol("test"), now);
    assert!(t.infos_unless(&moved, now).is_some(), "its score moved");
}

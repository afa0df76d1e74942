//! The address book's defences against an attacker that tells a node many
//! addresses to be chosen as its outbound peers (an eclipse): at most
//! `MAX_PER_SOURCE` addresses from one host, a full book that makes room
//! by forgetting from the largest source, dial turns by source, and one
//! outbound connection per host.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use escrow::Genesis;
use std::net::IpAddr;

fn at(a: u8, b: u8, port: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, a, b], port))
}

fn table(max_outbound: usize, peers: Vec<SocketAddr>) -> PeerTable {
    let mut config = NodeConfig::new(Genesis::dev());
    config.max_outbound = max_outbound;
    config.peers = peers;
    PeerTable::new(
        Arc::new(config),
        NodeId([1; 32]),
        Some(at(0, 1, 5000)),
        Instant::now(),
        [7; 32],
    )
}

fn ip(a: u8, b: u8) -> Option<IpAddr> {
    Some(IpAddr::from([10, 0, a, b]))
}

#[test]
fn one_host_tells_at_most_its_share_of_the_book() {
    let mut t = table(8, Vec::new());
    let now = Instant::now();
    for port in 0..1_000 {
        t.learn_addr_from(at(9, 9, 10_000 + port), ip(9, 9), now);
    }
    assert_eq!(t.addrs.len(), MAX_PER_SOURCE);
    // An IPv6 source is its /64: other addresses of it are the same source.
    let v6 = |last: u16| Some(IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, last]));
    for port in 0..100 {
        t.learn_addr_from(at(8, 8, port + 1), v6(port + 1), now);
    }
    assert_eq!(t.addrs.len(), 2 * MAX_PER_SOURCE);
}

#[test]
fn a_full_book_makes_room_from_the_largest_source() {
    let mut t = table(8, Vec::new());
    let now = Instant::now();
    // Sixteen sources of 62 addresses each, and 8 from a seventeenth.
    for src in 0..16u8 {
        for port in 0..62 {
            t.learn_addr_from(at(src, 1, 20_000 + port), ip(src, 200), now);
        }
    }
    for port in 0..8 {
        t.learn_addr_from(at(50, 1, port + 1), ip(50, 200), now);
    }
    assert_eq!(t.addrs.len(), MAX_ADDR_BOOK);
    let from = |t: &PeerTable, src| t.addrs.values().filter(|e| e.source == src).count();
    // A new source still gets in; the largest sources pay for it.
    for port in 0..5 {
        t.learn_addr_from(at(99, 1, port + 1), ip(99, 99), now);
    }
    assert_eq!(t.addrs.len(), MAX_ADDR_BOOK);
    assert_eq!(from(&t, ip(99, 99)), 5);
    assert_eq!(from(&t, ip(50, 200)), 8);
    let big: usize = (0..16u8).map(|s| from(&t, ip(s, 200))).sum();
    assert_eq!(big, 16 * 62 - 5);
    // A source already among the largest cannot push the others out.
    for port in 0..10 {
        t.learn_addr_from(at(15, 2, port + 1), ip(15, 200), now);
    }
    assert!(from(&t, ip(15, 200)) <= 62);
    assert_eq!(t.addrs.len(), MAX_ADDR_BOOK);
}

#[test]
fn dials_take_turns_by_source_and_one_host_gets_one_outbound_slot() {
    let mut t = table(8, Vec::new());
    let now = Instant::now();
    // One source tells 64 addresses, on only 4 hosts; eight other sources
    // tell one address each, each on its own host.
    for port in 0..64u16 {
        let host = (port % 4) as u8;
        t.learn_addr_from(at(66, host, 1_000 + port), ip(66, 66), now);
    }
    for n in 0..8u8 {
        t.learn_addr_from(at(1, n, 8333), ip(2, n), now);
    }
    for _ in 0..20 {
        let plan = t.dial_plan(now);
        assert_eq!(plan.len(), 8);
        let hosts: BTreeSet<IpAddr> = plan.iter().map(|a| a.ip()).collect();
        assert_eq!(hosts.len(), 8, "one outbound connection per host: {plan:?}");
        let attacker = plan
            .iter()
            .filter(|a| a.ip().to_string().starts_with("10.0.66."))
            .count();
        // Nine sources take turns: the flooding one gets one of eight.
        assert!(attacker <= 1, "{attacker} of 8 from one source");
        for a in plan {
            t.retry_later(a, now);
            t.addrs.get_mut(&a).unwrap().next_attempt = now;
        }
    }
}

#[test]
fn the_rule_of_one_per_host_spares_loopback_and_named_peers() {
    // Every node on one machine is 127.0.0.1.
    let mut t = table(8, Vec::new());
    let now = Instant::now();
    for port in 0..8 {
        t.learn_addr_from(
            SocketAddr::from(([127, 0, 0, 1], 6000 + port)),
            ip(5, 5),
            now,
        );
    }
    assert_eq!(t.dial_plan(now).len(), 8);
    // Two peers the operator named on one host are both dialled.
    let named = vec![at(4, 4, 1), at(4, 4, 2)];
    let mut t = table(8, named.clone());
    let now = Instant::now();
    t.learn_addr_from(at(4, 4, 3), ip(5, 5), now);
    let plan = t.dial_plan(now);
    assert!(named.iter().all(|a| plan.contains(a)), "{plan:?}");
    assert!(
        !plan.contains(&at(4, 4, 3)),
        "a third on that host is not: {plan:?}"
    );
}

#[test]
fn a_told_address_that_keeps_failing_is_forgotten_a_named_one_is_not() {
    let named = at(3, 3, 8333);
    let mut t = table(8, vec![named]);
    let now = Instant::now();
    let dead = at(7, 7, 8333);
    t.learn_addr_from(dead, ip(9, 9), now);
    for attempt in 1..=MAX_FAILURES {
        assert!(t.addrs.contains_key(&dead), "attempt {attempt}");
        t.dial_failed(100 + u64::from(attempt), dead, now);
        t.dial_failed(200 + u64::from(attempt), named, now);
    }
    assert!(!t.addrs.contains_key(&dead), "forgotten");
    assert!(t.addrs.contains_key(&named), "the operator's address stays");
    // A success in between starts the count again.
    t.learn_addr_from(dead, ip(9, 9), now);
    for _ in 1..MAX_FAILURES {
        t.dial_failed(300, dead, now);
    }
    let (tx, _rx) = super::tests::queue();
    t.dialing(302, dead);
    t.admit(
        302,
        dead,
        Direction::Outbound,
        &super::tests::hello(9, None),
        tx,
        now,
    )
    .unwrap();
    t.on_gone(302, now);
    t.dial_failed(301, dead, now);
    assert!(t.addrs.contains_key(&dead));
}

#[test]
fn an_address_whose_peer_sent_a_new_block_is_dialled_before_told_ones() {
    let mut t = table(2, Vec::new());
    let now = Instant::now();
    // Twenty told addresses on twenty hosts from twenty sources, and two
    // more that will have proved themselves.
    for n in 0..20u8 {
        t.learn_addr_from(at(66, n, 8333), ip(77, n), now);
    }
    let good = [at(5, 1, 8333), at(5, 2, 8333)];
    let (tx, _rx) = super::tests::queue();
    for (i, a) in good.iter().enumerate() {
        t.learn_addr_from(*a, ip(9, 9), now);
        let conn = 500 + i as u64;
        t.dialing(conn, *a);
        t.admit(
            conn,
            *a,
            Direction::Outbound,
            &super::tests::hello(20 + i as u8, None),
            tx.clone(),
            now,
        )
        .unwrap();
        t.note_block(conn, now);
        t.on_gone(conn, now);
        t.addrs.get_mut(a).unwrap().next_attempt = now;
    }
    let plan = t.dial_plan(now);
    assert_eq!(plan.len(), 2);
    assert!(good.iter().all(|a| plan.contains(a)), "{plan:?}");
}

#[test]
fn an_outbound_peer_that_relays_nothing_makes_room_for_a_proved_address() {
    let mut t = table(1, Vec::new());
    let start = Instant::now();
    let (tx, _rx) = super::tests::queue();
    // A proved address, now out of its slot.
    let good = at(5, 1, 8333);
    t.learn_addr_from(good, ip(9, 9), start);
    t.dialing(1, good);
    t.admit(
        1,
        good,
        Direction::Outbound,
        &super::tests::hello(21, None),
        tx.clone(),
        start,
    )
    .unwrap();
    t.note_block(1, start);
    t.on_gone(1, start);
    // A told address took the slot, and relays nothing.
    let told = at(66, 1, 8333);
    t.learn_addr_from(told, ip(77, 1), start);
    t.dialing(2, told);
    t.admit(
        2,
        told,
        Direction::Outbound,
        &super::tests::hello(22, None),
        tx.clone(),
        start,
    )
    .unwrap();
    t.on_live(2);
    let later = start + Duration::from_secs(60);
    assert!(!t.rotate_outbound(later), "not before it had its chance");
    let much_later = start + Duration::from_secs(700);
    assert!(t.rotate_outbound(much_later));
    assert!(!t.is_connected(2));
    assert_eq!(t.dial_plan(much_later), vec![good]);
    // A peer that relayed a block keeps its slot.
    let mut t2 = table(1, Vec::new());
    t2.learn_addr_from(good, ip(9, 9), start);
    t2.addrs.get_mut(&good).unwrap().proved = true;
    t2.learn_addr_from(told, ip(77, 1), start);
    t2.dialing(3, told);
    t2.admit(
        3,
        told,
        Direction::Outbound,
        &super::tests::hello(23, None),
        tx,
        start,
    )
    .unwrap();
    t2.note_block(3, start);
    assert!(!t2.rotate_outbound(much_later));
}

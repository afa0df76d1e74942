//! The peer table's rules where peers have different IP addresses: bans by
//! IP off loopback, and eviction from the most crowded address.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::tests::{hello, queue};
use super::*;
use crate::penalty::Offence;
use escrow::Genesis;

fn host(n: u8, port: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, n], port))
}

fn table_with(max_inbound: usize) -> PeerTable {
    let mut config = NodeConfig::new(Genesis::dev());
    config.max_inbound = max_inbound;
    PeerTable::new(
        Arc::new(config),
        NodeId([1; 32]),
        Some(host(1, 5000)),
        Instant::now(),
        [7; 32],
    )
}

#[test]
fn a_banned_host_is_refused_on_every_port_and_its_other_peers_are_dropped() {
    let mut t = table_with(24);
    let now = Instant::now();
    let (tx, _rx) = queue();
    // Two nodes on host 5, one on host 6.
    for (conn, remote, id) in [
        (1, host(5, 40000), 2),
        (2, host(5, 40001), 3),
        (3, host(6, 40000), 4),
    ] {
        t.admit(
            conn,
            remote,
            Direction::Inbound,
            &hello(id, None),
            tx.clone(),
            now,
        )
        .unwrap();
        t.on_live(conn);
    }
    let heavy = Offence::Frame("garbage".into());
    assert_eq!(t.punish(1, None, &heavy, now), Punished::Banned);
    assert!(!t.is_connected(1), "the offender");
    assert!(!t.is_connected(2), "another peer of the banned host");
    assert!(t.is_connected(3), "another host keeps its slot");
    assert!(
        t.bans(now)
            .iter()
            .any(|(k, _)| *k == BanKey::Ip("10.0.0.5".parse().unwrap()))
    );
    // Host 5 is refused under any node id and port; host 6 and 7 are not.
    assert!(matches!(
        t.admit(
            4,
            host(5, 40999),
            Direction::Inbound,
            &hello(9, None),
            tx.clone(),
            now
        ),
        Err((Reason::Banned, _))
    ));
    assert!(
        t.admit(
            5,
            host(7, 40000),
            Direction::Inbound,
            &hello(10, None),
            tx,
            now
        )
        .is_ok()
    );
}

#[test]
fn garbage_before_a_handshake_bans_only_that_exact_address() {
    let mut t = table_with(24);
    let now = Instant::now();
    let (tx, _rx) = queue();
    let heavy = Offence::Frame("garbage".into());
    assert_eq!(
        t.punish(7, Some(host(8, 40000)), &heavy, now),
        Punished::BannedBeforeHandshake
    );
    assert!(matches!(
        t.admit(
            1,
            host(8, 40000),
            Direction::Inbound,
            &hello(2, None),
            tx.clone(),
            now
        ),
        Err((Reason::Banned, _))
    ));
    // Another port of the same IP: a connection that never said who it
    // is does not cut off its host.
    assert!(
        t.admit(
            3,
            host(8, 40001),
            Direction::Inbound,
            &hello(4, None),
            tx.clone(),
            now
        )
        .is_ok()
    );
    assert!(
        t.admit(
            2,
            host(9, 40000),
            Direction::Inbound,
            &hello(3, None),
            tx,
            now
        )
        .is_ok()
    );
}

#[test]
fn a_newcomer_evicts_from_the_address_holding_the_most_unprotected_peers() {
    let mut t = table_with(10);
    let start = Instant::now();
    let (tx, _rx) = queue();
    // Four old peers (protected as the longest connected), then three from
    // host 9, then three lone hosts, each newer than host 9's.
    let mut remotes: Vec<SocketAddr> = (0..4).map(|n| host(20 + n, 40000)).collect();
    remotes.extend((0..3).map(|p| host(9, 40000 + p)));
    remotes.extend((0..3).map(|n| host(30 + n, 40000)));
    for (i, remote) in remotes.iter().enumerate() {
        let at = start + Duration::from_secs(i as u64);
        t.admit(
            i as u64,
            *remote,
            Direction::Inbound,
            &hello(10 + i as u8, None),
            tx.clone(),
            at,
        )
        .unwrap();
    }
    let later = start + Duration::from_secs(100);
    t.admit(
        50,
        host(40, 40000),
        Direction::Inbound,
        &hello(60, None),
        tx.clone(),
        later,
    )
    .unwrap();
    // Not the newest of all (9, a lone host) but host 9's newest (6).
    assert!(!t.is_connected(6), "host 9's newest peer was evicted");
    for kept in [0, 1, 2, 3, 4, 5, 7, 8, 9, 50] {
        assert!(t.is_connected(kept), "{kept} kept");
    }
    // With one peer per host left, the newest unprotected goes, as on one
    // machine.
    t.admit(
        51,
        host(41, 40000),
        Direction::Inbound,
        &hello(61, None),
        tx.clone(),
        later,
    )
    .unwrap();
    assert!(!t.is_connected(5), "host 9 still holds the most: two");
    t.admit(
        52,
        host(42, 40000),
        Direction::Inbound,
        &hello(62, None),
        tx,
        later,
    )
    .unwrap();
    assert!(!t.is_connected(51), "one each: the newest");
}

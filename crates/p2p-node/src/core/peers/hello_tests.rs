//! The peer table's own handshake and its mark of changed bans.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::penalty::Offence;
use escrow::Genesis;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn table() -> PeerTable {
    PeerTable::new(
        Arc::new(NodeConfig::new(Genesis::dev())),
        NodeId([1; 32]),
        Some(addr(1)),
        Instant::now(),
        [7; 32],
    )
}

#[test]
fn the_hello_tells_this_node_and_the_chains_tip() {
    let t = table();
    let chain = Genesis::dev().chain().unwrap();
    let hello = t.hello(&chain);
    assert_eq!(hello.version, PROTOCOL_VERSION);
    assert_eq!(hello.network, chain.genesis_hash());
    assert_eq!(hello.node_id, NodeId([1; 32]));
    assert_eq!(t.node_id(), NodeId([1; 32]));
    assert_eq!(hello.listen_addr, Some(addr(1)));
    assert_eq!(hello.best_tip, chain.tip());
    assert_eq!(hello.best_height, 0);
    assert_eq!(hello.total_work, chain.total_work());
}

#[test]
fn only_an_added_ban_marks_the_bans_changed_once() {
    let mut t = table();
    let now = Instant::now();
    assert!(!t.take_bans_changed());
    let light = Offence::InvalidTx("x".into());
    assert_eq!(t.punish(7, Some(addr(9000)), &light, now), Punished::Nobody);
    assert!(!t.take_bans_changed());
    let heavy = Offence::Frame("garbage".into());
    assert_eq!(
        t.punish(7, Some(addr(9000)), &heavy, now),
        Punished::BannedBeforeHandshake
    );
    assert!(t.take_bans_changed());
    assert!(!t.take_bans_changed(), "taken");
    // Bans restored from a previous run are saved already.
    t.restore_bans(
        vec![(BanKey::Addr(addr(9001)), Duration::from_secs(60))],
        now,
    );
    assert!(!t.take_bans_changed());
}

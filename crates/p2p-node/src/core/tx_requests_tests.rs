//! Unit tests of the transaction requests: announcements in, what to ask
//! of whom out.

use super::*;

fn id(i: u32) -> TxId {
    let mut b = [7; 32];
    b[..4].copy_from_slice(&i.to_le_bytes());
    TxId::from_bytes(b)
}

fn ids(range: std::ops::Range<u32>) -> Vec<TxId> {
    range.map(id).collect()
}

const NONE: fn(&TxId) -> bool = |_| false;

#[test]
fn a_peer_is_asked_for_at_most_its_share_at_a_time_in_the_order_announced() {
    let mut r = TxRequests::default();
    let now = Instant::now();
    r.announced(1, &ids(0..10_001), NONE);
    let asked = r.requests(NONE, now);
    assert_eq!(asked, vec![(1, ids(0..MAX_IN_FLIGHT as u32))]);
    assert!(
        r.requests(NONE, now).is_empty(),
        "nothing more until a slot frees"
    );
    // Three arrive: three more are asked.
    for i in 0..3 {
        r.arrived(&id(i));
    }
    let n = MAX_IN_FLIGHT as u32;
    assert_eq!(r.requests(NONE, now), vec![(1, ids(n..n + 3))]);
    assert_eq!(r.in_flight(1), MAX_IN_FLIGHT);
    // It answers NotFound for its first ten outstanding: ten more.
    r.not_found(1, &ids(3..13));
    assert_eq!(r.requests(NONE, now), vec![(1, ids(n + 3..n + 13))]);
}

#[test]
fn a_peer_that_never_delivers_holds_a_bounded_queue_and_times_out() {
    let mut r = TxRequests::default();
    let now = Instant::now();
    let timeout = Duration::from_secs(5);
    for chunk in ids(0..20_000).chunks(1_000) {
        r.announced(1, chunk, NONE);
    }
    let peer = r.peers.get(&1).unwrap();
    assert_eq!(peer.queue.len(), MAX_PEER_ANNOUNCEMENTS, "the rest ignored");
    assert_eq!(peer.queued.len(), MAX_PEER_ANNOUNCEMENTS);
    let mut asked = 0;
    let mut t = now;
    loop {
        let batch = r.requests(NONE, t);
        let Some((_, got)) = batch.first() else {
            break;
        };
        assert!(got.len() <= MAX_IN_FLIGHT);
        assert!(r.in_flight(1) <= MAX_IN_FLIGHT);
        asked += got.len();
        t += timeout;
        r.expire(t, timeout);
        assert_eq!(r.in_flight(1), 0, "all timed out");
    }
    assert_eq!(
        asked, MAX_PEER_ANNOUNCEMENTS,
        "each announced id asked once"
    );
    assert!(r.asked.is_empty());
}

#[test]
fn a_failed_request_goes_to_the_next_announcer_in_order() {
    let mut r = TxRequests::default();
    let now = Instant::now();
    let timeout = Duration::from_secs(5);
    r.announced(1, &ids(0..5), NONE);
    assert_eq!(r.requests(NONE, now), vec![(1, ids(0..5))]);
    // Peers 2 and 3 announce the same: remembered, not asked.
    r.announced(2, &ids(0..5), NONE);
    r.announced(3, &ids(0..5), NONE);
    assert!(r.requests(NONE, now).is_empty());
    // Peer 1 times out: peer 2 is asked, in the order first asked.
    r.expire(now + timeout, timeout);
    let asked = r.requests(NONE, now + timeout);
    assert_eq!(asked, vec![(2, ids(0..5))]);
    // Peer 2 goes: peer 3 is asked.
    r.forget_peer(2);
    assert_eq!(r.requests(NONE, now + timeout), vec![(3, ids(0..5))]);
    // Peer 3 lacks two: nobody is left for them; the next announcer is
    // asked at once.
    r.not_found(3, &ids(0..2));
    assert!(r.requests(NONE, now + timeout).is_empty());
    r.announced(4, &ids(0..5), NONE);
    assert_eq!(r.requests(NONE, now + timeout), vec![(4, ids(0..2))]);
    // A transaction that arrives from anyone ends its request.
    for i in 2..5 {
        r.arrived(&id(i));
    }
    assert_eq!(r.in_flight(3), 0);
}

#[test]
fn an_id_queued_at_a_busy_peer_is_asked_of_a_free_one() {
    let mut r = TxRequests::default();
    let now = Instant::now();
    r.announced(1, &ids(0..MAX_IN_FLIGHT as u32 + 1), NONE);
    r.requests(NONE, now);
    // The last id waits in peer 1's queue; peer 2 announces it and has room.
    let last = id(MAX_IN_FLIGHT as u32);
    r.announced(2, &[last], NONE);
    assert_eq!(r.requests(NONE, now), vec![(2, vec![last])]);
    // When peer 1 has room, the id is skipped (asked already), and peer 1
    // is remembered as its next announcer.
    r.arrived(&id(0));
    assert!(r.requests(NONE, now).is_empty());
    assert_eq!(r.asked.get(&last).unwrap().others, vec![1]);
    // Ids that became known while queued are skipped too.
    r.announced(1, &[id(900), id(901)], NONE);
    let known = |i: &TxId| *i == id(900);
    r.arrived(&id(1));
    assert_eq!(r.requests(known, now), vec![(1, vec![id(901)])]);
}

#[test]
fn a_gone_peer_leaves_nothing_behind() {
    let mut r = TxRequests::default();
    let now = Instant::now();
    r.announced(1, &ids(0..300), NONE);
    r.requests(NONE, now);
    r.announced(2, &ids(0..3), NONE);
    r.forget_peer(1);
    assert!(!r.peers.contains_key(&1));
    assert!(
        r.asked
            .values()
            .all(|a| a.of != 1 && !a.others.contains(&1))
    );
    assert_eq!(r.requests(NONE, now), vec![(2, ids(0..3))]);
    r.forget_peer(2);
    assert!(r.asked.is_empty() && r.peers.is_empty() && r.ready.is_empty());
}

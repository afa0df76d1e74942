//! Unit tests of the orphan pool: events in, decisions out, no sockets;
//! time is tokio's paused clock.

use super::*;
use escrow::{Amount, Keypair, Payload};

/// The `i`th test key.
fn key(i: u32) -> Keypair {
    let mut seed = [0x31; 32];
    seed[..4].copy_from_slice(&i.to_le_bytes());
    Keypair::from_seed(seed)
}

fn tx(k: &Keypair, nonce: u64) -> SignedTx {
    SignedTx::sign(
        k,
        nonce,
        escrow::Amount::new(1),
        escrow::Genesis::dev().network_id(),
        Payload::Transfer {
            to: key(9_999).address(),
            amount: Amount::new(1),
        },
    )
}

/// A funded sender whose next nonce is 0.
const FRESH: SenderState = SenderState {
    next_nonce: 0,
    funded: true,
};

#[test]
fn an_orphan_waits_until_its_predecessor_is_pending() {
    let mut pool = OrphanPool::new();
    let now = Instant::now();
    let k = key(1);
    for nonce in [2, 1, 4] {
        assert_eq!(pool.offer(tx(&k, nonce), None, 7, FRESH, now), Ok(None));
    }
    assert_eq!(pool.len(), 3);
    assert!(
        pool.take_next(&k.address(), 0).is_none(),
        "nonce 0 never came"
    );
    // Nonce 0 was admitted: 1 and then 2 connect; 4 waits for 3.
    let (first, _) = pool.take_next(&k.address(), 1).unwrap();
    assert_eq!(first.body.nonce, 1);
    let (second, _) = pool.take_next(&k.address(), 2).unwrap();
    assert_eq!(second.body.nonce, 2);
    assert!(pool.take_next(&k.address(), 3).is_none());
    assert!(pool.contains(&k.address(), 4));
    // A block took nonces 3 to 5 elsewhere: 4 is stale and goes.
    assert!(pool.take_next(&k.address(), 6).is_none());
    assert!(pool.is_empty());
    assert_eq!(pool.held_by(7), 0, "the peer's count follows");
}

#[test]
fn each_refusal_names_its_rule() {
    let mut pool = OrphanPool::new();
    let now = Instant::now();
    let k = key(1);
    let at = |next_nonce| SenderState {
        next_nonce,
        funded: true,
    };
    assert_eq!(
        pool.offer(tx(&k, 5), None, 1, at(5), now),
        Err(OrphanRefusal::TooFarAhead {
            next: 5,
            got: 5,
            max: MAX_NONCE_GAP
        }),
        "not ahead at all"
    );
    assert!(matches!(
        pool.offer(tx(&k, MAX_NONCE_GAP + 1), None, 1, at(0), now),
        Err(OrphanRefusal::TooFarAhead { .. })
    ));
    assert_eq!(
        pool.offer(tx(&k, MAX_NONCE_GAP), None, 1, at(0), now),
        Ok(None)
    );
    let unfunded = SenderState {
        next_nonce: 0,
        funded: false,
    };
    assert_eq!(
        pool.offer(tx(&key(2), 1), None, 1, unfunded, now),
        Err(OrphanRefusal::Unfunded)
    );
    assert_eq!(
        pool.offer(tx(&k, MAX_NONCE_GAP), None, 2, at(0), now),
        Err(OrphanRefusal::Duplicate),
        "the first of a sender and nonce stays"
    );
    for nonce in 1..MAX_PER_SENDER as u64 {
        assert_eq!(pool.offer(tx(&k, nonce), None, 1, at(0), now), Ok(None));
    }
    assert_eq!(pool.of_sender(&k.address()), MAX_PER_SENDER);
    assert_eq!(
        pool.offer(tx(&k, 50), None, 3, at(0), now),
        Err(OrphanRefusal::SenderFull {
            max: MAX_PER_SENDER
        }),
        "whichever peer sends it"
    );
    assert_eq!(pool.len(), MAX_PER_SENDER, "refusals change nothing");
}

#[test]
fn one_peer_holds_at_most_its_share() {
    let mut pool = OrphanPool::new();
    let now = Instant::now();
    let mut sent = 0;
    'keys: for i in 0.. {
        let k = key(i);
        for nonce in 1..=MAX_PER_SENDER as u64 {
            if sent == MAX_PER_PEER {
                break 'keys;
            }
            assert_eq!(pool.offer(tx(&k, nonce), None, 1, FRESH, now), Ok(None));
            sent += 1;
        }
    }
    assert_eq!(
        pool.offer(tx(&key(500), 1), None, 1, FRESH, now),
        Err(OrphanRefusal::PeerFull { max: MAX_PER_PEER })
    );
    assert_eq!(pool.held_by(1), MAX_PER_PEER);
    // Another peer is not held back by it.
    assert_eq!(pool.offer(tx(&key(500), 1), None, 2, FRESH, now), Ok(None));
}

/// Fills the pool from `peers`, round robin, each orphan of a fresh sender
/// and nonce, until it holds `count`; returns the next key number unused.
fn fill(
    pool: &mut OrphanPool,
    peers: &[PeerId],
    count: usize,
    first_key: u32,
    now: Instant,
) -> u32 {
    let mut i = first_key;
    let mut turn = 0;
    while pool.len() < count {
        let peer = peers[turn % peers.len()];
        turn += 1;
        assert_eq!(pool.offer(tx(&key(i), 1), None, peer, FRESH, now), Ok(None));
        i += 1;
    }
    i
}

#[test]
fn when_full_a_peer_displaces_only_peers_that_hold_more_than_it() {
    let mut pool = OrphanPool::new();
    let now = Instant::now();
    // An honest peer's few orphans, then eleven flooding peers fill the
    // rest (about 90 each, under their share).
    let honest: PeerId = 1;
    let mut next = fill(&mut pool, &[honest], 5, 0, now);
    let flooders: Vec<PeerId> = (10..21).collect();
    next = fill(&mut pool, &flooders, MAX_ORPHANS, next, now);
    assert_eq!(pool.len(), MAX_ORPHANS);
    // The flooders go on: each one evicts its own oldest (it is among those
    // holding the most), never the honest peer's.
    for round in 0..2_000 {
        let peer = flooders[round % flooders.len()];
        let before = pool.held_by(peer);
        let evicted = pool.offer(tx(&key(next), 1), None, peer, FRESH, now);
        next += 1;
        assert!(evicted.unwrap().is_some(), "the pool is full");
        assert!(
            pool.held_by(peer) >= before,
            "it displaced another flooder at most"
        );
        assert_eq!(pool.len(), MAX_ORPHANS);
        assert_eq!(pool.held_by(honest), 5, "the honest peer's orphans stay");
    }
    // The honest peer, holding the least, displaces a flooder's oldest.
    let most_before: Vec<usize> = flooders.iter().map(|p| pool.held_by(*p)).collect();
    let evicted = pool
        .offer(tx(&key(next), 1), None, honest, FRESH, now)
        .unwrap()
        .unwrap();
    assert_eq!(pool.held_by(honest), 6);
    let most = most_before.iter().max().copied().unwrap();
    let after: Vec<usize> = flooders.iter().map(|p| pool.held_by(*p)).collect();
    let lost: Vec<usize> = (0..flooders.len())
        .filter(|&i| after[i] < most_before[i])
        .collect();
    assert_eq!(lost.len(), 1, "one flooder lost one");
    assert_eq!(most_before[lost[0]], most, "the one holding the most");
    assert!(!pool.contains(&evicted.0, evicted.1));
}

#[test]
fn among_peers_holding_the_most_the_last_connected_gives_way() {
    let mut pool = OrphanPool::new();
    let now = Instant::now();
    let peers: Vec<PeerId> = (1..=10).collect();
    let next = fill(&mut pool, &peers, MAX_ORPHANS, 0, now);
    // Ten peers hold their share each; a new peer's orphan displaces the
    // oldest of peer 10, the last connected of them.
    assert!(peers.iter().all(|p| pool.held_by(*p) == MAX_PER_PEER));
    let evicted = pool.offer(tx(&key(next), 1), None, 11, FRESH, now).unwrap();
    assert!(evicted.is_some());
    assert_eq!(pool.held_by(11), 1);
    assert_eq!(pool.held_by(10), MAX_PER_PEER - 1);
    assert_eq!(pool.held_by(9), MAX_PER_PEER);
    // Peer 10, now below the most, displaces peer 9 in turn.
    pool.offer(tx(&key(next + 1), 1), None, 10, FRESH, now)
        .unwrap();
    assert_eq!(pool.held_by(10), MAX_PER_PEER);
    assert_eq!(pool.held_by(9), MAX_PER_PEER - 1);
    assert_eq!(pool.len(), MAX_ORPHANS);
}

#[tokio::test(start_paused = true)]
async fn orphans_expire_after_twenty_minutes() {
    let mut pool = OrphanPool::new();
    let k = key(1);
    pool.offer(tx(&k, 1), None, 1, FRESH, Instant::now())
        .unwrap();
    tokio::time::advance(Duration::from_secs(60)).await;
    pool.offer(tx(&k, 2), None, 1, FRESH, Instant::now())
        .unwrap();
    tokio::time::advance(EXPIRY - Duration::from_secs(61)).await;
    assert_eq!(pool.expire(Instant::now()), 0, "a second early");
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(
        pool.expire(Instant::now()),
        1,
        "the first is 20 minutes old"
    );
    assert!(!pool.contains(&k.address(), 1));
    assert!(pool.contains(&k.address(), 2));
    // Offering expires too.
    tokio::time::advance(Duration::from_secs(60)).await;
    pool.offer(tx(&k, 3), None, 2, FRESH, Instant::now())
        .unwrap();
    assert!(!pool.contains(&k.address(), 2));
    assert_eq!(pool.len(), 1);
    assert_eq!(pool.held_by(1), 0);
}

#[test]
fn a_peers_orphans_go_when_it_disconnects() {
    let mut pool = OrphanPool::new();
    let now = Instant::now();
    let next = fill(&mut pool, &[1, 2], 40, 0, now);
    assert_eq!(pool.forget_peer(1), 20);
    assert_eq!(pool.len(), 20);
    assert_eq!(pool.held_by(1), 0);
    assert_eq!(pool.held_by(2), 20);
    assert_eq!(pool.forget_peer(1), 0, "once");
    assert_eq!(pool.senders().len(), 20);
    // What is left still works.
    fill(&mut pool, &[3], 21, next, now);
    assert_eq!(pool.held_by(3), 1);
}

#[test]
fn the_ids_waiting_are_known_until_they_leave_by_any_way() {
    let mut pool = OrphanPool::new();
    let now = Instant::now();
    let k = key(2);
    let (one, two, three) = (tx(&k, 1), tx(&k, 2), tx(&k, 3));
    for t in [&one, &two, &three] {
        pool.offer(t.clone(), None, 7, FRESH, now).unwrap();
    }
    assert!(pool.contains_id(&one.id()) && pool.contains_id(&three.id()));
    // Taken to be admitted.
    pool.take_next(&k.address(), 1).unwrap();
    assert!(!pool.contains_id(&one.id()));
    // Dropped with its peer.
    pool.forget_peer(7);
    assert!(!pool.contains_id(&two.id()) && !pool.contains_id(&three.id()));
    // Expired.
    pool.offer(two.clone(), None, 8, FRESH, now).unwrap();
    assert!(pool.contains_id(&two.id()));
    pool.expire(now + EXPIRY);
    assert!(!pool.contains_id(&two.id()));
    assert!(pool.is_empty());
}

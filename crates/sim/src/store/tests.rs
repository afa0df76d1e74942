//! The simulated store's faults: a failed commit writes nothing and
//! fails once, a slow commit is handed to the stall hook, a restart's
//! handle starts without faults, a crash loses later writes.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use chain_core::Block;
use escrow::{Genesis, Tx};
use p2p_node::store::{BlockStore, Commit};

use super::{CommitStats, SimStore};

/// A commit of one block of its own (`n` makes it distinct).
fn commit(n: u64) -> (Commit, Arc<Block<Tx>>) {
    let to = escrow::dev::address("alice").unwrap();
    let mut b = Genesis::dev().block();
    b.header.nonce = n;
    b.header.height = n;
    b.transactions = vec![Tx::Coinbase { to, height: n }];
    let b = Arc::new(b);
    (
        Commit {
            blocks: vec![b.clone()],
            ..Commit::default()
        },
        b,
    )
}

fn stored(store: &SimStore, block: &Block<Tx>) -> bool {
    store.block(&block.hash()).unwrap().is_some()
}

#[test]
fn a_failed_commit_writes_nothing_and_only_the_armed_one_fails() {
    let store = SimStore::default();
    let (first, a) = commit(1);
    store.fail_next_commit();
    let err = store.commit(&first).unwrap_err();
    assert!(err.to_string().contains("injected fault"), "{err}");
    assert!(!stored(&store, &a));
    assert!(store.load().unwrap().headers.is_empty());
    // Armed once: the same commit again goes through.
    store.commit(&first).unwrap();
    assert!(stored(&store, &a));
    assert_eq!(
        store.stats(),
        CommitStats {
            committed: 1,
            failed: 1,
            slow: 0,
            stalled: Duration::ZERO,
        }
    );
}

#[test]
fn a_slow_commit_is_durable_and_hands_its_time_to_the_stall_hook() {
    let stalls = Arc::new(Mutex::new(Vec::new()));
    let mut store = SimStore::default();
    let seen = stalls.clone();
    store.on_stall(move |d| seen.lock().unwrap().push(d));
    let ms = Duration::from_millis;
    store.set_commit_latency(Some(ms(250)));
    let (c1, a) = commit(1);
    let (c2, b) = commit(2);
    store.commit(&c1).unwrap();
    store.commit(&c2).unwrap();
    assert!(stored(&store, &a) && stored(&store, &b));
    // Back to instant commits; a zero latency is none.
    store.set_commit_latency(Some(Duration::ZERO));
    store.commit(&commit(3).0).unwrap();
    assert_eq!(*stalls.lock().unwrap(), [ms(250), ms(250)]);
    let stats = store.stats();
    assert_eq!(
        (stats.committed, stats.slow, stats.stalled),
        (3, 2, ms(500))
    );
}

#[test]
fn a_reopened_store_keeps_its_contents_and_hook_but_no_fault() {
    let stalls = Arc::new(Mutex::new(0u32));
    let mut store = SimStore::default();
    let seen = stalls.clone();
    store.on_stall(move |_| *seen.lock().unwrap() += 1);
    let (c1, a) = commit(1);
    store.commit(&c1).unwrap();
    store.fail_next_commit();
    store.set_commit_latency(Some(Duration::from_secs(1)));
    let again = store.reopen();
    assert!(stored(&again, &a));
    let (c2, b) = commit(2);
    again.commit(&c2).unwrap();
    assert!(stored(&again, &b));
    assert_eq!(again.stats().failed, 0);
    assert_eq!(*stalls.lock().unwrap(), 0);
    // The hook stays wired: a latency armed on the new handle reaches it.
    again.set_commit_latency(Some(Duration::from_secs(1)));
    again.commit(&commit(3).0).unwrap();
    assert_eq!(*stalls.lock().unwrap(), 1);
}

#[test]
fn writes_after_a_crash_are_lost() {
    let store = SimStore::default();
    let (c1, a) = commit(1);
    store.commit(&c1).unwrap();
    store.crash();
    let (c2, b) = commit(2);
    store.commit(&c2).unwrap();
    let next = store.reopen();
    assert!(stored(&next, &a));
    assert!(!stored(&next, &b));
}

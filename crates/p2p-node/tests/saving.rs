//! Saving in the background: while a commit is in flight the core goes on
//! serving (a peer's block is taken and validated), and what must wait for
//! durability waits for the commit: the "mine N" answer, the block in the
//! API's snapshot, the peers' announcement, a query.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use common::*;
use p2p_node::store::MemoryStore;
use p2p_node::{MiningMode, Node, NodeConfig, NodeHandle, Seams};

/// Holds commits while closed, counting those it holds.
#[derive(Default)]
struct Gate {
    closed: Mutex<bool>,
    changed: Condvar,
    held: AtomicUsize,
}

impl Gate {
    fn pass(&self) {
        let mut closed = self.closed.lock().unwrap();
        if *closed {
            self.held.fetch_add(1, Ordering::SeqCst);
            while *closed {
                closed = self.changed.wait(closed).unwrap();
            }
            self.held.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn set(&self, closed: bool) {
        *self.closed.lock().unwrap() = closed;
        self.changed.notify_all();
    }
}

/// A node whose commits pass `gate`.
async fn gated_node(gate: &Arc<Gate>, config: NodeConfig) -> NodeHandle {
    init_logs();
    let g = Arc::clone(gate);
    let store = HookedStore {
        inner: MemoryStore::default(),
        hook: Arc::new(move || {
            g.pass();
            Ok(())
        }),
    };
    Node::start_with(
        config,
        Seams {
            store: Box::new(store),
            ..Seams::default()
        },
    )
    .await
    .unwrap()
}

/// A test node's configuration, saving in the background.
fn background() -> NodeConfig {
    let mut c = config();
    c.background_saving = true;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_core_serves_while_a_commit_is_in_flight_and_announces_only_once_saved() {
    let gate = Arc::new(Gate::default());
    let a = gated_node(&gate, background()).await;
    let b = start(&[a.local_addr()], MiningMode::Off).await;
    wait_for("the two nodes to connect", || async {
        peer_count(&a).await == 1 && peer_count(&b).await == 1
    })
    .await;
    a.mine_blocks(1).await.unwrap();
    wait_same_tip(&[&a, &b]).await;
    let saved = a.snapshot();

    gate.set(true);
    let mining = tokio::spawn({
        let a = a.clone();
        async move { a.mine_blocks(1).await }
    });
    wait_for("the block's commit to be held", || async {
        gate.held.load(Ordering::SeqCst) == 1
    })
    .await;

    // The core is not waiting for the disk: it takes B's competing block
    // (announced, asked for, validated, stored in memory) meanwhile.
    let theirs = b.mine_blocks(1).await.unwrap()[0];
    wait_for("A to accept B's block while its commit is held", || async {
        a.snapshot().metrics.blocks_accepted > saved.metrics.blocks_accepted
    })
    .await;
    // A's own block is nowhere yet: not answered, not in the snapshot's
    // chain, not told to B.
    assert!(
        !mining.is_finished(),
        "\"mine 1\" answered before its block was saved"
    );
    let now = a.snapshot();
    assert_eq!(now.tip, saved.tip, "an unsaved block was published");
    assert_eq!(now.height, saved.height);
    assert_eq!(b.snapshot().tip, theirs);

    // Once saved, all of it follows: the answer, the snapshot, and the
    // two nodes settle on one of the two blocks of equal work (the smaller
    // hash): B hears of A's block if A still holds it best.
    gate.set(false);
    let mined = mining.await.unwrap().unwrap();
    assert_eq!(mined.len(), 1);
    let ours = mined[0];
    assert_eq!(a.snapshot().height, saved.height + 1);
    wait_same_tip(&[&a, &b]).await;
    assert_eq!(tip(&a).await.0, ours.min(theirs));
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_waits_for_the_commit_in_flight_and_sees_what_it_saved() {
    let gate = Arc::new(Gate::default());
    let a = gated_node(&gate, background()).await;
    // The start's first commit (the genesis snapshot) is done.
    tip(&a).await;
    gate.set(true);
    let mining = tokio::spawn({
        let a = a.clone();
        async move { a.mine_blocks(1).await }
    });
    wait_for("the block's commit to be held", || async {
        gate.held.load(Ordering::SeqCst) == 1
    })
    .await;
    // A query reads the store; it runs once what the chain holds is saved.
    let query = tokio::spawn({
        let a = a.clone();
        async move {
            a.query(|v| {
                let tip = v.chain.tip();
                (tip, v.store.block(&tip).map(|b| b.is_some()))
            })
            .await
        }
    });
    gate.set(false);
    let (tip, stored) = query.await.unwrap().unwrap();
    assert!(
        stored.unwrap(),
        "a query saw a tip that was not in the store"
    );
    assert_eq!(mining.await.unwrap().unwrap(), vec![tip]);
    // And a submission is visible in the snapshot once answered.
    a.submit(alice_pays_bob(0)).await.unwrap();
    let snapshot = a.snapshot();
    assert_eq!(snapshot.mempool_len, 1);
    assert_eq!(snapshot.pending.nonce(&addr("alice")), 1);
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_saving_gives_the_same_answers() {
    // The simulator's mode: commits on the core, same guarantees.
    let gate = Arc::new(Gate::default());
    let mut c = config();
    c.background_saving = false;
    let a = gated_node(&gate, c).await;
    let id = a.submit(alice_pays_bob(0)).await.unwrap();
    let mined = a.mine_blocks(2).await.unwrap();
    assert_eq!(a.snapshot().tip, mined[1]);
    let block = a
        .query(move |v| v.store.tx_block(&id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(block, Some(mined[0]));
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_panics_in_a_commit_stops_the_node_instead_of_hanging_it() {
    init_logs();
    let store = HookedStore {
        inner: MemoryStore::default(),
        hook: Arc::new(|| panic!("the test store panics in a commit")),
    };
    let a = Node::start_with(
        background(),
        Seams {
            store: Box::new(store),
            ..Seams::default()
        },
    )
    .await
    .unwrap();
    // The saving thread dies with the panic; the core hears of it, stops,
    // and answers nothing as if it were saved.
    assert!(matches!(
        a.mine_blocks(1).await,
        Err(p2p_node::NodeError::Stopped)
    ));
    a.stopped().await;
    a.shutdown().await;
}

//! Restarting from the store: the ledger comes back from its snapshot (not
//! by replaying the chain), a snapshot that does not match the blocks is
//! refused, and undo records survive a restart so that a reorg deeper than
//! the blocks kept in memory still works.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use common::*;
use escrow::{Amount, Payload};
use p2p_node::store::{BlockStore, Commit, RedbStore, StateSnapshot};
use p2p_node::{Node, NodeConfig, NodeError, NodeHandle, Seams};

async fn start_on(dir: &Path, config: NodeConfig) -> Result<NodeHandle, NodeError> {
    Node::start_with(
        config,
        Seams {
            store: Box::new(RedbStore::open(dir).unwrap()),
            ..Seams::default()
        },
    )
    .await
}

fn transfer(who: &str, nonce: u64, to: &str, amount: u64) -> escrow::SignedTx {
    sign(
        who,
        nonce,
        Payload::Transfer {
            to: addr(to),
            amount: Amount::new(amount),
        },
    )
}

/// A node on `dir` that mined `blocks` blocks, one transfer in each, then
/// stopped cleanly. Returns its ledger and tip.
async fn run_and_stop(dir: &Path, blocks: u64) -> (escrow::Ledger, chain_core::BlockHash) {
    let node = start_on(dir, config()).await.unwrap();
    for nonce in 0..blocks {
        node.submit(transfer("alice", nonce, "bob", 1))
            .await
            .unwrap();
        node.mine_blocks(1).await.unwrap();
    }
    let state = ledger(&node).await;
    let (tip, _) = tip(&node).await;
    node.shutdown().await;
    (state, tip)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_loads_the_ledger_from_its_snapshot_without_replaying() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let (state, tip_before) = run_and_stop(dir.path(), 12).await;
    // The clean stop left a snapshot at the tip.
    let stored = RedbStore::open(dir.path()).unwrap().load().unwrap();
    let snapshot = stored.snapshot.expect("a snapshot");
    assert_eq!(snapshot.block, tip_before);
    assert_eq!(snapshot.height, 12);
    assert_eq!(snapshot.ledger, state);
    let node = start_on(dir.path(), config()).await.unwrap();
    assert_eq!(tip(&node).await, (tip_before, 12));
    assert_eq!(ledger(&node).await, state);
    assert_eq!(
        ledger(&node).await.balance(&addr("bob")),
        Amount::new(1_000_012)
    );
    // The transaction index came back with the store: every transfer is
    // confirmed where it was.
    let id = transfer("alice", 3, "bob", 1).id();
    assert!(
        node.query(move |v| v.tx_block(&id).is_some())
            .await
            .unwrap()
    );
    // And the node goes on from there.
    node.submit(transfer("alice", 12, "bob", 1)).await.unwrap();
    node.mine_blocks(1).await.unwrap();
    assert_eq!(tip(&node).await.1, 13);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_behind_the_blocks_is_caught_up_by_applying_only_those_above_it() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let (state, tip_before) = run_and_stop(dir.path(), 6).await;
    // Put back a snapshot from height 2, as if the node had crashed long
    // after its last snapshot: the start applies blocks 3 to 6 again.
    let early = {
        let store = RedbStore::open(dir.path()).unwrap();
        let stored = store.load().unwrap();
        let at_two = stored
            .headers
            .iter()
            .find(|(_, h)| h.height == 2)
            .map(|(hash, _)| *hash)
            .unwrap();
        let mut chain = genesis().chain().unwrap();
        for height in 1..=2 {
            let (hash, _) = stored
                .headers
                .iter()
                .find(|(_, h)| h.height == height)
                .unwrap();
            let block = store.block(hash).unwrap().unwrap();
            chain.insert(block, now_ms()).unwrap();
        }
        assert_eq!(chain.tip(), at_two);
        let snapshot = StateSnapshot {
            block: at_two,
            height: 2,
            ledger: chain.state().clone(),
        };
        store
            .commit(&Commit {
                snapshot: Some(snapshot),
                ..Commit::default()
            })
            .unwrap();
        at_two
    };
    let node = start_on(dir.path(), config()).await.unwrap();
    assert_eq!(tip(&node).await, (tip_before, 6));
    assert_eq!(ledger(&node).await, state, "caught up from {early}");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_that_does_not_match_the_blocks_is_refused_naming_it() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let (_, tip_before) = run_and_stop(dir.path(), 4).await;
    let genesis_ledger = genesis().chain().unwrap().state().clone();
    let cases = [
        // The genesis ledger claimed for block 4: four rewards missing.
        (
            StateSnapshot {
                block: tip_before,
                height: 4,
                ledger: genesis_ledger.clone(),
            },
            "does not match the blocks",
        ),
        // A block the store does not hold.
        (
            StateSnapshot {
                block: chain_core::BlockHash::from_bytes([3; 32]),
                height: 0,
                ledger: genesis_ledger.clone(),
            },
            "which is not stored",
        ),
        // The right block at the wrong height.
        (
            StateSnapshot {
                block: tip_before,
                height: 0,
                ledger: genesis_ledger,
            },
            "which has height 4",
        ),
    ];
    for (snapshot, says) in cases {
        RedbStore::open(dir.path())
            .unwrap()
            .commit(&Commit {
                snapshot: Some(snapshot),
                ..Commit::default()
            })
            .unwrap();
        let err = start_on(dir.path(), config()).await.err().expect("refused");
        assert!(matches!(err, NodeError::Restore(_)), "{err}");
        assert!(err.to_string().contains(says), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorg_deeper_than_the_memory_window_after_a_restart_reads_the_store() {
    init_logs();
    let a_dir = tempfile::tempdir().unwrap();
    let mut small = config();
    small.memory_window = 3;
    // a mines 15 blocks with a transfer each, and stops.
    let a = start_on(a_dir.path(), small.clone()).await.unwrap();
    for nonce in 0..15 {
        a.submit(transfer("alice", nonce, "bob", 1)).await.unwrap();
        a.mine_blocks(1).await.unwrap();
    }
    let a_ledger = ledger(&a).await;
    a.shutdown().await;
    // b, alone, mines a longer chain of its own (other transfers).
    let b = Node::start(config()).await.unwrap();
    for nonce in 0..20 {
        b.submit(transfer("charlie", nonce, "dave", 2))
            .await
            .unwrap();
        b.mine_blocks(1).await.unwrap();
    }
    // a restarts (its undo records are only in the store now) and meets b:
    // it undoes all 15 of its blocks, 12 of them beyond its window.
    let a = start_on(a_dir.path(), small).await.unwrap();
    assert_eq!(ledger(&a).await, a_ledger);
    a.add_peer(b.local_addr()).await.unwrap();
    wait_same_tip(&[&a, &b]).await;
    assert_eq!(ledger(&a).await, ledger(&b).await);
    // The undone transfers are pending again on a: nothing was lost.
    let back = transfer("alice", 0, "bob", 1).id();
    assert!(a.query(move |v| v.mempool.contains(&back)).await.unwrap());
    let metrics = a.query(|v| v.metrics.max_reorg_depth).await.unwrap();
    assert_eq!(metrics, 15);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_store_keeps_working_across_a_restart_too() {
    // The in-memory store is shared by its clones: a node restarted on a
    // clone sees what the first run saved (the simulator relies on it).
    init_logs();
    let store = p2p_node::store::MemoryStore::default();
    let start = |store: p2p_node::store::MemoryStore| {
        Node::start_with(
            config(),
            Seams {
                store: Box::new(store),
                ..Seams::default()
            },
        )
    };
    let a = start(store.clone()).await.unwrap();
    a.mine_blocks(5).await.unwrap();
    let before = tip(&a).await;
    a.shutdown().await;
    let a = start(store.clone()).await.unwrap();
    assert_eq!(tip(&a).await, before);
    a.shutdown().await;
}

/// A store whose commits start failing on demand, counting the attempts.
#[derive(Clone, Default)]
struct FailingStore {
    inner: p2p_node::store::MemoryStore,
    failing: Arc<AtomicBool>,
    attempts_while_failing: Arc<AtomicUsize>,
}

impl BlockStore for FailingStore {
    fn commit(&self, commit: &Commit) -> Result<(), p2p_node::store::StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            self.attempts_while_failing.fetch_add(1, Ordering::SeqCst);
            return Err(p2p_node::store::StoreError::Backend {
                path: "test".into(),
                reason: "no space left on device".into(),
            });
        }
        self.inner.commit(commit)
    }
    fn load(&self) -> Result<p2p_node::store::Stored, p2p_node::store::StoreError> {
        self.inner.load()
    }
    fn block(
        &self,
        hash: &chain_core::BlockHash,
    ) -> Result<Option<chain_core::Block<escrow::Tx>>, p2p_node::store::StoreError> {
        self.inner.block(hash)
    }
    fn undo(
        &self,
        hash: &chain_core::BlockHash,
    ) -> Result<Option<escrow::Undo>, p2p_node::store::StoreError> {
        self.inner.undo(hash)
    }
    fn tx_block(
        &self,
        id: &chain_core::TxId,
    ) -> Result<Option<chain_core::BlockHash>, p2p_node::store::StoreError> {
        self.inner.tx_block(id)
    }
    fn txs_in_range(
        &self,
        low: &chain_core::TxId,
        high: &chain_core::TxId,
        limit: usize,
    ) -> Result<Vec<chain_core::TxId>, p2p_node::store::StoreError> {
        self.inner.txs_in_range(low, high, limit)
    }
    fn put_mempool(&self, txs: &[escrow::SignedTx]) -> Result<(), p2p_node::store::StoreError> {
        self.inner.put_mempool(txs)
    }
    fn load_mempool(&self) -> Result<Vec<escrow::SignedTx>, p2p_node::store::StoreError> {
        self.inner.load_mempool()
    }
    fn put_bans(
        &self,
        bans: &[(p2p_node::BanKey, u64)],
    ) -> Result<(), p2p_node::store::StoreError> {
        self.inner.put_bans(bans)
    }
    fn load_bans(&self) -> Result<Vec<(p2p_node::BanKey, u64)>, p2p_node::store::StoreError> {
        self.inner.load_bans()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_save_stops_the_node_without_answering_or_saving_more() {
    init_logs();
    let store = FailingStore::default();
    let node = Node::start_with(
        config(),
        Seams {
            store: Box::new(store.clone()),
            ..Seams::default()
        },
    )
    .await
    .unwrap();
    node.mine_blocks(3).await.unwrap();
    let saved = tip(&node).await;
    store.failing.store(true, Ordering::SeqCst);
    // The block is mined, but its save fails: the request is not answered
    // as if it were durable, and the node stops.
    assert!(matches!(node.mine_blocks(1).await, Err(NodeError::Stopped)));
    node.stopped().await;
    node.shutdown().await;
    // One attempt, and no snapshot or anything else written at the stop.
    assert_eq!(store.attempts_while_failing.load(Ordering::SeqCst), 1);
    // The store still holds the chain as it was: a restart comes back at
    // the last saved tip.
    store.failing.store(false, Ordering::SeqCst);
    let again = Node::start_with(
        config(),
        Seams {
            store: Box::new(store.clone()),
            ..Seams::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(tip(&again).await, saved);
    again.shutdown().await;
}

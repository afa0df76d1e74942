//! Tests of the durability part without sockets: a dev chain in memory,
//! blocks mined on it, and a store that counts (or fails) its commits.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use chain_core::miner::{MineOutcome, Miner};
use chain_core::{Block, Inserted, TxId};
use escrow::{Amount, Genesis, Payload, Undo, dev};
use tokio::sync::oneshot;

use super::*;
use crate::core::miner_driver::MinerDriver;
use crate::store::{MemoryStore, StoreArchive, StoreError, Stored};

/// A store in memory that counts its commits, and fails them once told to.
#[derive(Default)]
struct CountingStore {
    inner: MemoryStore,
    commits: AtomicUsize,
    /// How many blocks each commit held.
    sizes: std::sync::Mutex<Vec<usize>>,
    fail: AtomicBool,
    /// How many times it was told of a clean stop.
    clean_stops: AtomicUsize,
}

impl CountingStore {
    fn commits(&self) -> usize {
        self.commits.load(Ordering::SeqCst)
    }
}

impl BlockStore for CountingStore {
    fn commit(&self, commit: &Commit) -> Result<(), StoreError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(StoreError::Backend {
                path: "the test store".into(),
                reason: "told to fail".into(),
            });
        }
        self.commits.fetch_add(1, Ordering::SeqCst);
        self.sizes.lock().unwrap().push(commit.blocks.len());
        self.inner.commit(commit)
    }
    fn clean_stop(&self) {
        self.clean_stops.fetch_add(1, Ordering::SeqCst);
    }
    fn load(&self) -> Result<Stored, StoreError> {
        self.inner.load()
    }
    fn block(&self, hash: &BlockHash) -> Result<Option<Block<Tx>>, StoreError> {
        self.inner.block(hash)
    }
    fn undo(&self, hash: &BlockHash) -> Result<Option<Undo>, StoreError> {
        self.inner.undo(hash)
    }
    fn tx_block(&self, id: &TxId) -> Result<Option<BlockHash>, StoreError> {
        self.inner.tx_block(id)
    }
    fn txs_in_range(&self, low: &TxId, high: &TxId, limit: usize) -> Result<Vec<TxId>, StoreError> {
        self.inner.txs_in_range(low, high, limit)
    }
    fn put_mempool(&self, txs: &[SignedTx]) -> Result<(), StoreError> {
        self.inner.put_mempool(txs)
    }
    fn load_mempool(&self) -> Result<Vec<SignedTx>, StoreError> {
        self.inner.load_mempool()
    }
    fn put_bans(&self, bans: &[(BanKey, u64)]) -> Result<(), StoreError> {
        self.inner.put_bans(bans)
    }
    fn load_bans(&self) -> Result<Vec<(BanKey, u64)>, StoreError> {
        self.inner.load_bans()
    }
}

/// A fresh dev chain, the durability part over a store that counts, and
/// the store.
fn setup() -> (NodeChain, Durable, Arc<CountingStore>, Repairs) {
    let store = Arc::new(CountingStore::default());
    // Restored over the store, as a node's chain is: it then keeps the
    // blocks it takes in for the next commit.
    let genesis = Genesis::dev();
    let chain = NodeChain::restore(
        genesis.params.clone(),
        genesis.block(),
        genesis.ledger(),
        Vec::new(),
        None,
        Arc::new(StoreArchive {
            store: Arc::clone(&store) as Arc<dyn BlockStore>,
            damaged: Arc::default(),
        }),
    )
    .unwrap()
    .chain;
    let durable = Durable::new(
        Arc::clone(&store) as Arc<dyn BlockStore>,
        1_000,
        &chain,
        None,
        Instant::now(),
    );
    (chain, durable, store, Repairs::default())
}

/// Mines a block holding `txs` on the tip and offers it to the chain, as
/// the core does; returns the change of the best chain.
fn mine(chain: &mut NodeChain, txs: Vec<SignedTx>) -> Reorg<Tx> {
    let height = chain.height() + 1;
    let now = Genesis::dev().timestamp_ms + height * 1_000;
    let mut transactions = vec![Tx::Coinbase {
        to: dev::address("eve").unwrap(),
        height,
    }];
    transactions.extend(txs.into_iter().map(Tx::Signed));
    let template = chain.template(&transactions, now);
    let MineOutcome::Found(header) = Miner::new(1)
        .mine(&template, &AtomicBool::new(false))
        .unwrap()
    else {
        panic!("mining stopped");
    };
    match chain
        .insert(
            Block {
                header,
                transactions,
            },
            now,
        )
        .unwrap()
    {
        Inserted::NewBest(reorg) => reorg,
        _ => panic!("the block did not join the best chain"),
    }
}

/// A "mine 1" request's answer for `hash`, and where it arrives.
fn mined_reply(hash: BlockHash) -> (MinedReply, oneshot::Receiver<Vec<BlockHash>>) {
    let paid = dev::address("eve").unwrap();
    let (core, _inbox) = tokio::sync::mpsc::channel(1);
    let mut driver = MinerDriver::new(crate::core::miner_driver::DriverParts {
        miner: Arc::new(crate::pow::HashMiner::new(1)),
        mode: crate::MiningMode::Off,
        account: paid,
        interval: std::time::Duration::ZERO,
        refresh: std::time::Duration::ZERO,
        core,
        tracker: tokio_util::task::TaskTracker::new(),
    });
    let (reply, rx) = oneshot::channel();
    driver.request(1, None, reply);
    (driver.count_mined(hash, paid).unwrap(), rx)
}

/// What the core does with a block it mined: accept it, announce its tip
/// and answer the request once saved.
fn accept_mined(
    chain: &mut NodeChain,
    durable: &mut Durable,
) -> (BlockHash, oneshot::Receiver<Vec<BlockHash>>) {
    let reorg = mine(chain, Vec::new());
    durable.accepted(&reorg);
    durable.announce(reorg.new_tip);
    let (reply, rx) = mined_reply(reorg.new_tip);
    durable.reply_when_saved(reply);
    (reorg.new_tip, rx)
}

#[tokio::test(start_paused = true)]
async fn nothing_is_announced_or_answered_before_its_commit() {
    let (mut chain, mut durable, store, mut repairs) = setup();
    let (tip, mut rx) = accept_mined(&mut chain, &mut durable);
    assert!(!durable.is_saved(&chain));

    // More events wait: nothing is saved, so nothing is released.
    let released = durable.after_event(&mut chain, &mut repairs, true).unwrap();
    assert_eq!(store.commits(), 0);
    assert_eq!(released.announce, None);
    assert!(released.replies.is_empty());
    assert!(
        rx.try_recv().is_err(),
        "answered before its block was saved"
    );

    // The inbox is empty: saved, then released.
    let released = durable
        .after_event(&mut chain, &mut repairs, false)
        .unwrap();
    assert_eq!(store.commits(), 1);
    assert!(store.block(&tip).unwrap().is_some());
    assert!(durable.is_saved(&chain));
    assert_eq!(released.announce, Some(tip));
    assert_eq!(released.replies.len(), 1);
    for reply in released.replies {
        reply.send();
    }
    assert_eq!(rx.try_recv().unwrap(), vec![tip]);

    // Released once: a flush with nothing new releases nothing more and
    // commits nothing.
    let again = durable.flush(&mut chain, &mut repairs, false).unwrap();
    assert_eq!(again.announce, None);
    assert!(again.replies.is_empty());
    assert_eq!(store.commits(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_failed_commit_announces_and_answers_nothing_and_stops_the_node() {
    let (mut chain, mut durable, store, mut repairs) = setup();
    let (tip, mut rx) = accept_mined(&mut chain, &mut durable);
    store.fail.store(true, Ordering::SeqCst);

    assert_eq!(
        durable.after_event(&mut chain, &mut repairs, false).err(),
        Some(Stopped)
    );
    assert!(durable.failed());
    assert!(store.block(&tip).unwrap().is_none());
    // The request is dropped unanswered: its caller sees the node stopped.
    assert!(matches!(
        rx.try_recv(),
        Err(oneshot::error::TryRecvError::Closed)
    ));

    // Nothing more is saved, even once the store would take it: the store
    // keeps its last whole commit.
    store.fail.store(false, Ordering::SeqCst);
    let (_, _rx) = accept_mined(&mut chain, &mut durable);
    assert_eq!(
        durable.flush(&mut chain, &mut repairs, true).err(),
        Some(Stopped)
    );
    durable.save_mempool(&[alice_pays_bob()]);
    assert_eq!(store.commits(), 0);
    assert!(store.load_mempool().unwrap().is_empty());
    // Nor is the store told of a clean stop: it must not tidy up.
    assert_eq!(store.clean_stops.load(Ordering::SeqCst), 0);
}

/// Only the stop's flush tells the store of a clean stop, once its commit
/// is saved (the store may then compact its file when dropped).
#[tokio::test(start_paused = true)]
async fn only_the_stop_s_flush_is_a_clean_stop() {
    let (mut chain, mut durable, store, mut repairs) = setup();
    let _ = accept_mined(&mut chain, &mut durable);
    let _ = durable.flush(&mut chain, &mut repairs, false).unwrap();
    assert_eq!(store.clean_stops.load(Ordering::SeqCst), 0);
    let _ = accept_mined(&mut chain, &mut durable);
    let _ = durable.flush(&mut chain, &mut repairs, true).unwrap();
    assert_eq!(store.commits(), 2);
    assert_eq!(store.clean_stops.load(Ordering::SeqCst), 1);
}

/// Alice pays Bob, her first transaction.
fn alice_pays_bob() -> SignedTx {
    SignedTx::sign(
        &dev::keypair("alice").unwrap(),
        0,
        escrow::Amount::new(1),
        Genesis::dev().ledger().network(),
        Payload::Transfer {
            to: dev::address("bob").unwrap(),
            amount: Amount::new(3),
        },
    )
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_accepted_blocks_is_saved_in_one_commit() {
    let (mut chain, mut durable, store, mut repairs) = setup();
    let mut tips = Vec::new();
    for _ in 0..5 {
        let (tip, _) = accept_mined(&mut chain, &mut durable);
        tips.push(tip);
        let released = durable.after_event(&mut chain, &mut repairs, true).unwrap();
        assert!(released.announce.is_none());
    }
    assert_eq!(store.commits(), 0);
    let released = durable
        .after_event(&mut chain, &mut repairs, false)
        .unwrap();
    assert_eq!(*store.sizes.lock().unwrap(), vec![5]);
    // Only the last tip is announced (a peer missing its ancestors syncs);
    // every answer is sent.
    assert_eq!(released.announce, tips.last().copied());
    assert_eq!(released.replies.len(), 5);
    for tip in &tips {
        assert!(store.block(tip).unwrap().is_some());
    }
}

#[tokio::test(start_paused = true)]
async fn a_burst_waits_at_most_the_save_delay() {
    let (mut chain, mut durable, store, mut repairs) = setup();
    let (first, _) = accept_mined(&mut chain, &mut durable);
    let _ = durable.after_event(&mut chain, &mut repairs, true).unwrap();
    tokio::time::advance(MAX_SAVE_DELAY / 2).await;
    let _ = accept_mined(&mut chain, &mut durable);
    let released = durable.after_event(&mut chain, &mut repairs, true).unwrap();
    assert!(released.announce.is_none());
    assert_eq!(store.commits(), 0);
    // The oldest change has waited the delay: saved though more come.
    tokio::time::advance(MAX_SAVE_DELAY / 2).await;
    let released = durable.after_event(&mut chain, &mut repairs, true).unwrap();
    assert_eq!(*store.sizes.lock().unwrap(), vec![2]);
    assert_eq!(released.announce, Some(chain.tip()));
    assert!(store.block(&first).unwrap().is_some());
}

#[tokio::test(start_paused = true)]
async fn a_query_run_after_the_flush_sees_what_was_accepted() {
    let (mut chain, mut durable, store, mut repairs) = setup();
    let tx = alice_pays_bob();
    let id = tx.id();
    let reorg = mine(&mut chain, vec![tx]);
    durable.accepted(&reorg);
    // Accepted, not saved: what a query would read is not in the store
    // yet (the core runs queries only after a flush).
    assert_eq!(store.tx_block(&id).unwrap(), None);
    assert!(store.block(&reorg.new_tip).unwrap().is_none());

    let _ = durable.flush(&mut chain, &mut repairs, false).unwrap();
    // The store now answers as the chain does: the block, its undo record,
    // the transaction index and (a fresh store) a ledger snapshot.
    assert_eq!(store.tx_block(&id).unwrap(), Some(reorg.new_tip));
    assert!(store.block(&reorg.new_tip).unwrap().is_some());
    assert!(store.undo(&reorg.new_tip).unwrap().is_some());
    let snapshot = store.load().unwrap().snapshot.unwrap();
    assert_eq!(snapshot.block, chain.tip());
    assert_eq!(durable.store().tx_block(&id).unwrap(), Some(chain.tip()));
}

#[tokio::test(start_paused = true)]
async fn a_tip_no_longer_on_the_best_chain_is_not_announced() {
    let (mut chain, mut durable, _store, mut repairs) = setup();
    let _ = accept_mined(&mut chain, &mut durable);
    durable.announce(BlockHash::from_bytes([7; 32]));
    let released = durable.flush(&mut chain, &mut repairs, false).unwrap();
    assert_eq!(released.announce, None);
    assert_eq!(released.replies.len(), 1);
}

#[test]
fn bans_are_saved_as_expiries_and_loaded_as_time_left() {
    let (chain, durable, _store, _) = setup();
    drop(chain);
    let key = BanKey::Addr("192.0.2.1:9000".parse().unwrap());
    durable.save_bans(vec![(key, Duration::from_secs(60))], 1_000_000);
    assert_eq!(
        durable.load_bans(1_030_000),
        Some(vec![(key, Duration::from_secs(30))])
    );
    assert_eq!(
        durable.load_bans(2_000_000),
        Some(vec![(key, Duration::ZERO)])
    );
}

#[tokio::test(start_paused = true)]
async fn the_mempool_is_saved_when_changed_or_forced_and_due_every_ten_seconds() {
    let (_chain, mut durable, store, _) = setup();
    let start = Instant::now();
    assert!(!durable.mempool_save_due(start));
    assert!(durable.mempool_save_due(start + Duration::from_secs(10)));
    // Unchanged: nothing saved.
    durable.save_changed_mempool(&[alice_pays_bob()], false);
    assert!(store.load_mempool().unwrap().is_empty());
    // Changed: saved once, and the next save is due ten seconds later.
    tokio::time::advance(Duration::from_secs(3)).await;
    durable.mempool_changed();
    durable.save_changed_mempool(&[alice_pays_bob()], false);
    assert_eq!(store.load_mempool().unwrap(), vec![alice_pays_bob()]);
    assert!(!durable.mempool_save_due(start + Duration::from_secs(10)));
    assert!(durable.mempool_save_due(start + Duration::from_secs(13)));
    durable.save_changed_mempool(&[], false);
    assert_eq!(store.load_mempool().unwrap().len(), 1, "unchanged since");
    // Forced (at a clean stop): saved whatever.
    durable.save_changed_mempool(&[], true);
    assert!(store.load_mempool().unwrap().is_empty());
}

//! The miner driver's tests: jobs, requests, the block interval and
//! fresh templates.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn hash(b: u8) -> BlockHash {
    BlockHash::from_bytes([b; 32])
}

/// A driver in `mode` paying `account('f')`, its jobs' outcomes sent to
/// `core` as tasks of `tracker`, with no block interval.
fn driver(mode: MiningMode, core: mpsc::Sender<CoreMsg>, tracker: &TaskTracker) -> MinerDriver {
    let miner = Arc::new(crate::pow::HashMiner::new(1));
    driver_with(miner, mode, Duration::ZERO, core, tracker)
}

/// A driver mining with `miner` in `mode` paying `account('f')`, waiting
/// `interval` after a new tip, refreshing its template after 2 s.
fn driver_with(
    miner: Arc<dyn Mine>,
    mode: MiningMode,
    interval: Duration,
    core: mpsc::Sender<CoreMsg>,
    tracker: &TaskTracker,
) -> MinerDriver {
    MinerDriver::new(DriverParts {
        miner,
        mode,
        account: account('f'),
        interval,
        refresh: Duration::from_secs(2),
        core,
        tracker: tracker.clone(),
    })
}

/// A coinbase-only block at height 1 on `chain` paying `to`.
fn first_block(chain: &NodeChain, genesis: &escrow::Genesis, to: Address) -> Block<Tx> {
    let transactions = vec![Tx::Coinbase { to, height: 1 }];
    let header = chain.template(&transactions, genesis.timestamp_ms + 1_000);
    Block {
        header,
        transactions,
    }
}

/// A dev account by its initial.
fn account(initial: char) -> Address {
    let name = ["alice", "bob", "charlie", "dave", "eve", "ferdie"]
        .into_iter()
        .find(|n| n.starts_with(initial))
        .unwrap();
    escrow::dev::address(name).unwrap()
}

#[test]
fn a_request_for_another_account_counts_only_blocks_that_pay_it() {
    let (tx, _rx) = mpsc::channel(1);
    let mut d = driver(MiningMode::Off, tx, &TaskTracker::new());
    assert_eq!(d.paid_to(), account('f'));
    let (reply, mut rx) = oneshot::channel();
    d.request(2, Some(account('e')), reply);
    assert_eq!(d.paid_to(), account('e'), "the request's account");
    assert!(
        d.count_mined(hash(1), account('f')).is_none(),
        "a block paying the node's account does not count"
    );
    assert!(d.count_mined(hash(2), account('e')).is_none());
    d.count_mined(hash(3), account('e')).unwrap().send();
    assert_eq!(rx.try_recv().unwrap(), vec![hash(2), hash(3)]);
    assert_eq!(d.paid_to(), account('f'), "back to the node's account");
}

#[tokio::test]
async fn a_request_for_another_account_stops_a_job_that_pays_someone_else() {
    let genesis = escrow::Genesis::dev();
    let chain = genesis.chain().unwrap();
    let block = first_block(&chain, &genesis, account('f'));
    let (tx, mut rx) = mpsc::channel(4);
    let tracker = TaskTracker::new();
    let mut d = driver(MiningMode::Continuous, tx, &tracker);
    d.start(block.clone(), account('f'), (Instant::now(), 0));
    let (reply, _rx) = oneshot::channel();
    d.request(1, None, reply);
    assert!(
        !d.wants_job(true),
        "a request for the node's account keeps the job"
    );
    let (reply, _rx2) = oneshot::channel();
    d.request(1, Some(account('e')), reply);
    assert!(
        !d.wants_job(true),
        "the first request still pays the node's account"
    );
    d.count_mined(hash(1), account('f')).unwrap().send();
    d.stop();
    d.start(block, account('f'), (Instant::now(), 0));
    let (reply, _rx3) = oneshot::channel();
    d.request(1, Some(account('e')), reply);
    assert_eq!(d.paid_to(), account('e'));
    assert!(d.wants_job(true), "the job paying ferdie was stopped");
    while rx.try_recv().is_ok() {}
    tracker.close();
    tracker.wait().await;
}

#[test]
fn the_mode_and_open_requests_decide_whether_to_mine() {
    let (tx, _rx) = mpsc::channel(1);
    let mut d = driver(MiningMode::Off, tx, &TaskTracker::new());
    assert!(!d.should_mine(false));
    d.set_mode(MiningMode::WhenPending, true);
    assert!(!d.should_mine(true));
    assert!(d.should_mine(false));
    d.set_mode(MiningMode::Continuous, true);
    assert!(d.should_mine(true));
    d.set_mode(MiningMode::Off, true);
    let (reply, _rx) = oneshot::channel();
    d.request(2, None, reply);
    assert!(d.should_mine(true), "a request mines whatever the mode");
    assert!(d.wants_job(true));
}

#[test]
fn a_request_is_answered_after_its_last_block_is_counted() {
    let (tx, _rx) = mpsc::channel(1);
    let mut d = driver(MiningMode::Off, tx, &TaskTracker::new());
    let (reply, mut rx) = oneshot::channel();
    d.request(2, None, reply);
    let (second, mut rx2) = oneshot::channel();
    d.request(1, None, second);
    assert!(d.count_mined(hash(1), account('f')).is_none(), "one of two");
    assert!(rx.try_recv().is_err());
    let done = d.count_mined(hash(2), account('f')).expect("complete");
    assert!(
        rx.try_recv().is_err(),
        "answered only when the core sends it"
    );
    done.send();
    assert_eq!(rx.try_recv().unwrap(), vec![hash(1), hash(2)]);
    assert!(d.should_mine(true), "the second request is still open");
    assert!(d.has_requests());
    d.count_mined(hash(3), account('f'))
        .expect("complete")
        .send();
    assert_eq!(rx2.try_recv().unwrap(), vec![hash(3)]);
    assert!(!d.should_mine(true), "both answered: mining stops");
    assert!(!d.has_requests());
    assert!(
        d.count_mined(hash(4), account('f')).is_none(),
        "no request: nothing to count"
    );
    let (zero, mut rx0) = oneshot::channel();
    d.request(0, None, zero);
    assert_eq!(rx0.try_recv().unwrap(), Vec::<BlockHash>::new());
}

#[tokio::test]
async fn a_job_finds_a_block_and_a_stale_job_gives_nothing() {
    let genesis = escrow::Genesis::dev();
    let chain = genesis.chain().unwrap();
    let block = first_block(&chain, &genesis, account('e'));
    let (tx, mut rx) = mpsc::channel(4);
    let tracker = TaskTracker::new();
    let mut d = driver(MiningMode::Continuous, tx, &tracker);
    d.start(block.clone(), account('f'), (Instant::now(), 0));
    assert!(!d.wants_job(true), "one job at a time");
    let Some(CoreMsg::Mined { job, outcome }) = rx.recv().await else {
        panic!("no outcome");
    };
    let (found, paid_to) = d.finished(job, outcome).unwrap();
    assert_eq!(paid_to, account('f'));
    assert_eq!(found.transactions, block.transactions);
    assert!(chain_core::validate::check_block(&found, chain.params()).is_ok());
    // A job stopped for a new tip: its outcome is ignored.
    d.start(block, account('f'), (Instant::now(), 0));
    d.stop();
    let Some(CoreMsg::Mined { job, outcome }) = rx.recv().await else {
        panic!("no outcome");
    };
    assert!(d.finished(job, outcome).is_none());
    tracker.close();
    tracker.wait().await;
}

#[tokio::test(start_paused = true)]
async fn the_nodes_own_mining_waits_the_interval_after_a_new_tip_then_mines_the_mempool() {
    let genesis = escrow::Genesis::dev();
    let chain = genesis.chain().unwrap();
    let mut mempool = Mempool::new(chain.state(), 1, 10, 10);
    let pay = escrow::SignedTx::sign(
        &escrow::dev::keypair("alice").unwrap(),
        0,
        escrow::Amount::new(1),
        chain.state().network(),
        escrow::Payload::Transfer {
            to: account('b'),
            amount: escrow::Amount::new(1),
        },
    );
    mempool.add(pay.clone(), None).unwrap();
    let (tx, mut rx) = mpsc::channel(4);
    let tracker = TaskTracker::new();
    let mut d = driver_with(
        Arc::new(crate::pow::HashMiner::new(1)),
        MiningMode::Continuous,
        Duration::from_secs(10),
        tx,
        &tracker,
    );
    let clock = crate::clock::SystemClock;
    // No tip adopted since the start: no wait.
    d.maybe_start(&chain, &mempool, &clock, Instant::now());
    assert!(!d.wants_job(false), "a job runs");
    let start = Instant::now();
    d.tip_moved(start);
    assert!(d.wants_job(false), "a new tip stops the job");
    d.maybe_start(&chain, &mempool, &clock, start + Duration::from_secs(4));
    assert_eq!(d.wake_at(), Some(start + Duration::from_secs(10)));
    assert!(d.wants_job(false), "waiting, not mining");
    d.woken();
    d.maybe_start(&chain, &mempool, &clock, start + Duration::from_secs(10));
    assert!(!d.wants_job(false), "the interval passed: a job runs");
    // The stopped job's outcome is stale; the running one's is found.
    let mut found = None;
    while found.is_none() {
        let Some(CoreMsg::Mined { job, outcome }) = rx.recv().await else {
            panic!("no outcome");
        };
        found = d.finished(job, outcome);
    }
    let (block, paid_to) = found.unwrap();
    assert_eq!(paid_to, account('f'));
    assert_eq!(
        block.transactions.len(),
        2,
        "the coinbase and the pending payment"
    );
    assert_eq!(block.transactions[1], Tx::Signed(pay));
    tracker.close();
    tracker.wait().await;
}

/// A miner that never finds a block: its jobs run until stopped.
struct NeverMiner;

impl Mine for NeverMiner {
    fn mine(
        &self,
        _template: Header,
        _urgency: crate::pow::Urgency,
        stop: CancellationToken,
    ) -> futures::future::BoxFuture<'static, MineOutcome> {
        Box::pin(async move {
            stop.cancelled().await;
            MineOutcome::Cancelled
        })
    }
}

/// A transfer of 1 from `from` (a dev name) with `nonce`.
fn transfer(chain: &NodeChain, from: &str, nonce: u64) -> escrow::SignedTx {
    escrow::SignedTx::sign(
        &escrow::dev::keypair(from).unwrap(),
        nonce,
        escrow::Amount::new(1),
        chain.state().network(),
        escrow::Payload::Transfer {
            to: account('b'),
            amount: escrow::Amount::new(1),
        },
    )
}

#[tokio::test(start_paused = true)]
async fn transactions_admitted_while_a_job_runs_reach_a_fresh_template_within_the_refresh() {
    let genesis = escrow::Genesis::dev();
    let chain = genesis.chain().unwrap();
    let mut mempool = Mempool::new(chain.state(), 1, 100, 100);
    let (tx, mut rx) = mpsc::channel(16);
    let tracker = TaskTracker::new();
    let mut d = driver_with(
        Arc::new(NeverMiner),
        MiningMode::Continuous,
        Duration::ZERO,
        tx,
        &tracker,
    );
    let clock = crate::clock::SystemClock;
    let start = Instant::now();
    d.maybe_start(&chain, &mempool, &clock, start);
    let first = d.job.as_ref().map(|j| (j.id, j.block.transactions.len()));
    assert_eq!(first, Some((0, 1)), "a coinbase-only template");
    // Nothing new: the job runs on, and nothing is due.
    d.maybe_start(&chain, &mempool, &clock, start + Duration::from_secs(5));
    assert_eq!(d.job.as_ref().map(|j| j.id), Some(0));
    assert_eq!(d.wake_at(), None);
    // A payment arrives 6 s in: the job, older than the refresh, is
    // replaced at once by a template that holds it.
    let pay = transfer(&chain, "alice", 0);
    mempool.add(pay.clone(), None).unwrap();
    let at = start + Duration::from_secs(6);
    d.maybe_start(&chain, &mempool, &clock, at);
    let job = d.job.as_ref().unwrap();
    assert_eq!(job.id, 1);
    assert_eq!(job.block.transactions[1], Tx::Signed(pay));
    // Another arrives half a second later: it waits for the refresh,
    // and the core is woken when it is due.
    let second = transfer(&chain, "charlie", 0);
    mempool.add(second.clone(), None).unwrap();
    d.maybe_start(&chain, &mempool, &clock, at + Duration::from_millis(500));
    assert_eq!(d.job.as_ref().map(|j| j.id), Some(1));
    assert_eq!(d.wake_at(), Some(at + Duration::from_secs(2)));
    d.woken();
    d.maybe_start(&chain, &mempool, &clock, at + Duration::from_secs(2));
    let job = d.job.as_ref().unwrap();
    assert_eq!(job.id, 2);
    assert!(job.block.transactions.contains(&Tx::Signed(second)));
    // The replaced jobs' outcomes are stale.
    d.stop();
    for _ in 0..3 {
        let Some(CoreMsg::Mined { job, outcome }) = rx.recv().await else {
            panic!("no outcome");
        };
        assert!(d.finished(job, outcome).is_none());
    }
    tracker.close();
    tracker.wait().await;
}

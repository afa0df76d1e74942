//! The miner's driver: the mining mode, the running job with its stop
//! flag, the "mine N blocks" requests of the API, the block interval's
//! wait, and the block template.
//!
//! [`MinerDriver`] decides whether the node should be mining and runs one
//! job at a time through the `Mine` seam (live, on the miner's own
//! low-priority thread), on a template of the tip and the mempool; the
//! core accepts what the job finds. A block found for a request is counted
//! before the next job starts: the core counts it right after accepting it,
//! and starts jobs only at the end of handling a message.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use chain_core::miner::MineOutcome;
use chain_core::{Block, BlockHash, Header};
use escrow::{Address, Tx};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::Clock;
use crate::config::MiningMode;
use crate::core::inbox::CoreMsg;
use crate::core::view::NodeChain;
use crate::mempool::Mempool;
use crate::pow::Mine;

/// The miner's current job.
struct Job {
    id: u64,
    stop: CancellationToken,
    block: Block<Tx>,
    /// Who its block's reward pays.
    paid_to: Address,
    /// When it started, and the mempool's change count its template saw.
    started: Instant,
    mempool_changes: u64,
}

/// A request to mine `left` more blocks (paying `to`, or the node's miner
/// account), with the hashes mined so far.
struct MineRequest {
    left: u64,
    to: Option<Address>,
    mined: Vec<BlockHash>,
    reply: oneshot::Sender<Vec<BlockHash>>,
}

/// A completed "mine N" request: the answer to send once its blocks are
/// durable.
pub(crate) struct MinedReply {
    reply: oneshot::Sender<Vec<BlockHash>>,
    mined: Vec<BlockHash>,
}

impl MinedReply {
    /// Sends the answer (nobody waiting is fine).
    pub fn send(self) {
        let _ = self.reply.send(self.mined);
    }
}

/// The miner's driver (see the module docs).
pub(crate) struct MinerDriver {
    miner: Arc<dyn Mine>,
    mode: MiningMode,
    /// Who the rewards pay when no request says otherwise.
    account: Address,
    job: Option<Job>,
    next_job: u64,
    requests: VecDeque<MineRequest>,
    /// Where a job's outcome goes (the core's inbox), and the node's
    /// tasks, which a job joins.
    core: mpsc::Sender<CoreMsg>,
    tracker: TaskTracker,
    /// How long the node's own mining waits after adopting a tip
    /// ([`crate::NodeConfig::block_interval`]; zero: no wait).
    interval: Duration,
    /// [`crate::NodeConfig::template_refresh`].
    refresh: Duration,
    /// When the best tip last changed (none since the start).
    tip_adopted: Option<Instant>,
    /// When mining may start on the tip, if it waits for the interval.
    wake_at: Option<Instant>,
    /// When a mined block was last logged at the info level, and how many
    /// were mined since without a line of their own.
    log: (Option<Instant>, u64),
}

/// What a driver is built from.
pub(crate) struct DriverParts {
    /// How proof of work is found.
    pub miner: Arc<dyn Mine>,
    /// The mining mode at the start.
    pub mode: MiningMode,
    /// Who the rewards pay when no request says otherwise.
    pub account: Address,
    /// How long the node's own mining waits after adopting a tip.
    pub interval: Duration,
    /// How soon a running job's template takes in new transactions.
    pub refresh: Duration,
    /// The core's inbox, where a job's outcome goes.
    pub core: mpsc::Sender<CoreMsg>,
    /// The node's tasks.
    pub tracker: TaskTracker,
}

impl DriverParts {
    /// The parts of a driver as `config` sets it up (mode, account,
    /// interval), mining with `miner` for the core at `core`.
    pub fn new(
        config: &crate::config::NodeConfig,
        miner: Arc<dyn Mine>,
        core: mpsc::Sender<CoreMsg>,
        tracker: TaskTracker,
    ) -> DriverParts {
        DriverParts {
            miner,
            mode: config.mining,
            account: config.miner_account,
            interval: config.block_interval,
            refresh: config.template_refresh,
            core,
            tracker,
        }
    }
}

impl MinerDriver {
    /// A driver that mines with `parts.miner`, in `parts.mode`, paying
    /// `parts.account`.
    pub fn new(parts: DriverParts) -> MinerDriver {
        MinerDriver {
            miner: parts.miner,
            mode: parts.mode,
            account: parts.account,
            job: None,
            next_job: 0,
            requests: VecDeque::new(),
            core: parts.core,
            tracker: parts.tracker,
            interval: parts.interval,
            refresh: parts.refresh,
            tip_adopted: None,
            wake_at: None,
            log: (None, 0),
        }
    }

    /// The best tip moved at `now`: the running job's template has a stale
    /// parent and stops, and the block interval counts from now.
    pub fn tip_moved(&mut self, now: Instant) {
        self.tip_adopted = Some(now);
        self.stop();
    }

    /// When the block interval has passed and mining may start, if it
    /// waits (the core wakes itself then and calls [`MinerDriver::woken`]).
    pub fn wake_at(&self) -> Option<Instant> {
        self.wake_at
    }

    /// The core woke at [`MinerDriver::wake_at`].
    pub fn woken(&mut self) {
        self.wake_at = None;
    }

    /// Starts a job on a fresh template of `chain`'s tip and `mempool`
    /// (stamped by the node's `clock`) if the node should mine, no
    /// job runs, and the block interval has passed (else waits for it).
    /// A running job whose template is older than the mempool is replaced
    /// once [`crate::NodeConfig::template_refresh`] has passed since it
    /// started (the core is woken then).
    pub fn maybe_start(
        &mut self,
        chain: &NodeChain,
        mempool: &Mempool,
        clock: &dyn Clock,
        now: Instant,
    ) {
        if let Some(job) = &self.job
            && job.mempool_changes != mempool.changes()
        {
            let due = job.started + self.refresh;
            if now >= due {
                self.stop();
            } else {
                self.wake_at = Some(self.wake_at.map_or(due, |w| w.min(due)));
            }
        }
        if !self.wants_job(mempool.is_empty()) {
            return;
        }
        if let Some(wait) = self.interval_left(now) {
            self.wake_at = Some(now + wait);
            return;
        }
        let paid_to = self.paid_to();
        let block = template(chain, mempool, paid_to, clock.now_ms());
        self.start(block, paid_to, (now, mempool.changes()));
    }

    /// How long the node's own mining still waits before it may mine on
    /// the tip: the block interval from the moment the node adopted it, on
    /// the node's own clock (a block's timestamp may lie up to two hours
    /// ahead, and must not stall mining); `None` if it may mine now (no
    /// interval, an open "mine N" request, the time has passed, or no tip
    /// was adopted since the start).
    fn interval_left(&self, now: Instant) -> Option<Duration> {
        if self.interval.is_zero() || self.has_requests() {
            return None;
        }
        let left = self
            .interval
            .saturating_sub(now.saturating_duration_since(self.tip_adopted?));
        (!left.is_zero()).then_some(left)
    }

    /// Logs a block the node mined: at most one line a second at the info
    /// level (a node mining thousands of blocks a second must not spend its
    /// time logging), the rest at debug.
    pub fn log_found(&mut self, block: &Block<Tx>, now: Instant) {
        let (hash, height, txs) = (block.hash(), block.header.height, block.transactions.len());
        let (last, quiet) = &mut self.log;
        if last.is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1)) {
            tracing::info!(height, %hash, txs, also = *quiet, "mined a block");
            *last = Some(now);
            *quiet = 0;
        } else {
            tracing::debug!(height, %hash, txs, "mined a block");
            *quiet += 1;
        }
    }

    /// The mining mode.
    pub fn mode(&self) -> MiningMode {
        self.mode
    }

    /// Changes the mining mode; a job the new mode does not want stops.
    pub fn set_mode(&mut self, mode: MiningMode, mempool_empty: bool) {
        self.mode = mode;
        if !self.should_mine(mempool_empty) {
            self.stop();
        }
    }

    /// Whether the node should be mining: a request is open, or the mode
    /// says so.
    pub fn should_mine(&self, mempool_empty: bool) -> bool {
        !self.requests.is_empty()
            || match self.mode {
                MiningMode::Off => false,
                MiningMode::WhenPending => !mempool_empty,
                MiningMode::Continuous => true,
            }
    }

    /// Whether a job should start now: the node should mine and no job
    /// runs.
    pub fn wants_job(&self, mempool_empty: bool) -> bool {
        self.job.is_none() && self.should_mine(mempool_empty)
    }

    /// Stops the running job (its template is stale, or mining is off).
    pub fn stop(&mut self) {
        if let Some(job) = self.job.take() {
            job.stop.cancel();
        }
    }

    /// Asks for `count` blocks whose rewards pay `to` (the node's miner
    /// account if `None`); `reply` gets their hashes once mined (at once for
    /// none). A running job that pays someone else than the first request
    /// now wants is stopped.
    pub fn request(
        &mut self,
        count: u64,
        to: Option<Address>,
        reply: oneshot::Sender<Vec<BlockHash>>,
    ) {
        if count == 0 {
            let _ = reply.send(Vec::new());
            return;
        }
        self.requests.push_back(MineRequest {
            left: count,
            to,
            mined: Vec::new(),
            reply,
        });
        if self
            .job
            .as_ref()
            .is_some_and(|j| j.paid_to != self.paid_to())
        {
            self.stop();
        }
    }

    /// Who the next block's reward pays: the first open request's account,
    /// else the node's miner account.
    pub fn paid_to(&self) -> Address {
        self.requests
            .front()
            .and_then(|r| r.to)
            .unwrap_or(self.account)
    }

    /// Starts a job on `block` (its header's nonce is the miner's to find,
    /// its reward pays `paid_to`) as a node task; the outcome comes back to
    /// the core as [`CoreMsg::Mined`].
    fn start(
        &mut self,
        block: Block<Tx>,
        paid_to: Address,
        (started, mempool_changes): (Instant, u64),
    ) {
        let core = self.core.clone();
        let stop = CancellationToken::new();
        let id = self.next_job;
        self.next_job += 1;
        let header = block.header;
        self.job = Some(Job {
            id,
            stop: stop.clone(),
            block,
            paid_to,
            started,
            mempool_changes,
        });
        let urgency = if self.has_requests() {
            crate::pow::Urgency::Requested
        } else {
            crate::pow::Urgency::Background
        };
        let search = self.miner.mine(header, urgency, stop);
        self.tracker.spawn(async move {
            let outcome = search.await;
            let _ = core.send(CoreMsg::Mined { job: id, outcome }).await;
        });
    }

    /// A job ended: the block it found and who its reward pays, if the job
    /// is the current one and found one. A stale job (stopped by a new tip
    /// or a request for another account) gives nothing.
    pub fn finished(&mut self, job: u64, outcome: MineOutcome) -> Option<(Block<Tx>, Address)> {
        if self.job.as_ref().is_none_or(|j| j.id != job) {
            return None;
        }
        let current = self.job.take()?;
        match outcome {
            MineOutcome::Found(header) => {
                let mut block = current.block;
                block.header = header;
                Some((block, current.paid_to))
            }
            MineOutcome::Cancelled => None,
            MineOutcome::Exhausted => {
                tracing::warn!("the miner exhausted its template");
                None
            }
        }
    }

    /// A block this node mined, paying `paid_to`, joined the best chain: it
    /// counts toward the oldest open request, unless that request wants
    /// another account paid. A request now complete is returned with its
    /// hashes, for the core to answer once the blocks are durable.
    pub fn count_mined(&mut self, hash: BlockHash, paid_to: Address) -> Option<MinedReply> {
        let front = self.requests.front_mut()?;
        if front.to.unwrap_or(self.account) != paid_to {
            return None;
        }
        front.left = front.left.saturating_sub(1);
        front.mined.push(hash);
        if front.left == 0 {
            return self.requests.pop_front().map(|done| MinedReply {
                reply: done.reply,
                mined: done.mined,
            });
        }
        None
    }

    /// Whether a "mine N" request is still open (the node is mining a
    /// burst, whose blocks are saved together).
    pub fn has_requests(&self) -> bool {
        !self.requests.is_empty()
    }
}

/// A block template on `chain`'s tip paying `paid_to`, stamped `now_ms`:
/// the coinbase, then the mempool's transactions chosen by fee rate (each
/// sender's nonces in order) while they fit the block's limits
/// ([`Mempool::select`]).
fn template(chain: &NodeChain, mempool: &Mempool, paid_to: Address, now_ms: u64) -> Block<Tx> {
    let params = chain.params();
    let mut transactions = vec![Tx::Coinbase {
        to: paid_to,
        height: chain.height() + 1,
    }];
    // The header, the coinbase and the list's length, with room to spare.
    let overhead = Header::SIZE + 64;
    let chosen = mempool.select(
        chain.state(),
        chain.height() + 1,
        params.max_block_txs.saturating_sub(1),
        params.max_block_bytes.saturating_sub(overhead),
    );
    transactions.extend(chosen.into_iter().map(Tx::Signed));
    let header = chain.template(&transactions, now_ms);
    Block {
        header,
        transactions,
    }
}

#[cfg(test)]
#[path = "miner_driver_tests.rs"]
mod tests;

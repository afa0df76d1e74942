//! One simulated run: the world of nodes, the load, the faults, the checks
//! and the measurements, from [`SimOptions`] to an [`Outcome`].
//!
//! A run has three phases:
//!
//! 1. **Main**: every node starts at time 0 knowing a few seeds; blocks
//!    are found, the load runs, and (in a swarm) faults come and go, until
//!    the stop condition ([`Stop`]).
//! 2. **Heal**: every fault is lifted, crashed nodes restart, the load
//!    stops. Then the run waits until every node reports the same tip and
//!    an empty mempool, checking once a simulated second, for at most
//!    [`SimOptions::settle_bound`] (the liveness check).
//! 3. **Report**: the last checks on every node, then the figures.
//!
//! A violated check ends the run at once with the check, the node and the
//! simulated time ([`Violation`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chain_core::{Block, BlockHash, ChainParams};
use escrow::genesis::Allocation;
use escrow::{Address, Amount, Genesis, Keypair, Tx};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use wire::NodeId;

pub use crate::options::{
    Eclipse, Faults, HashPower, Processor, Regions, Selfish, SimOptions, Stop, bitcoin_regions,
    bitcoin_regions_2015,
};
pub use crate::report::{
    BlockStats, DoubleSpend, EclipseReport, Outcome, Reorgs, Report, SelfishReport, Summary,
    TreeBlock, TxStats, Violation, closed_form_revenue,
};

use p2p_node::core::NodeChain;
use p2p_node::{MiningMode, Node, NodeConfig, NodeError, NodeHandle, Seams};

use crate::clock::SimClock;
use crate::cpu::SimCpu;
use crate::load::{Arrivals, FILLER_OVERHEAD, Load, User, filler_memo_len, max_block_bytes};
use crate::miner::{Lottery, SimMiner};
use crate::net::{SimNet, host_addr};
use crate::options::round3;
use crate::probe::Ask;
use crate::records::{AttackRecord, PoolRecord};
use crate::rng::SimRng;
use crate::store::SimStore;

/// Why a run could not be made at all (as opposed to a violated check,
/// which is part of its [`Outcome`]).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The options make no network.
    #[error("invalid options: {0}")]
    Options(String),
    /// The runtime could not be built.
    #[error("cannot build the simulation's runtime: {0}")]
    Runtime(#[from] std::io::Error),
    /// A node could not start.
    #[error("node {node} could not start: {reason}")]
    Start {
        /// Which.
        node: usize,
        /// Why.
        reason: String,
    },
}

/// Runs a simulation to its end.
///
/// # Errors
///
/// [`SimError`] if the options are invalid or a node cannot start; a
/// violated check is not an error but the outcome's `violation`.
pub fn run(options: &SimOptions) -> Result<Outcome, SimError> {
    if options.nodes == 0 {
        return Err(SimError::Options("at least one node".into()));
    }
    if options.block_interval.is_zero() {
        return Err(SimError::Options(
            "the block interval must be positive".into(),
        ));
    }
    if !options.tx_rate.is_finite() || options.tx_rate < 0.0 || options.tx_rate > 1e6 {
        return Err(SimError::Options(
            "the transaction rate must be between 0 and 1,000,000 a second".into(),
        ));
    }
    if !(0.0..=1.0).contains(&options.escrow_share) {
        return Err(SimError::Options(
            "the escrow share must be between 0 and 1".into(),
        ));
    }
    if let Some(size) = options.block_size
        && !crate::load::BLOCK_SIZE_RANGE.contains(&size)
    {
        return Err(SimError::Options(format!(
            "a block size of {size} bytes is outside {:?}",
            crate::load::BLOCK_SIZE_RANGE
        )));
    }
    options.check_selfish().map_err(SimError::Options)?;
    options.check_eclipse().map_err(SimError::Options)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()?;
    let outcome = rt.block_on(async {
        let world = World::build(options.clone())?;
        world.run().await
    });
    // Dropping the runtime drops every node's tasks.
    drop(rt);
    outcome
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One node's place in the world.
pub(super) struct Slot {
    pub(super) handle: Option<NodeHandle>,
    pub(super) store: SimStore,
    /// The node's processor, kept across restarts (reset by a crash).
    pub(super) cpu: Option<Arc<SimCpu>>,
    pub(super) config: NodeConfig,
    pub(super) generation: u64,
    /// The tip at which the periodic round last checked this node's
    /// conservation (forgotten when it restarts).
    pub(super) supply_checked_at: Option<BlockHash>,
}

/// What the watchers and checkers share.
pub(super) struct Shared {
    /// When each node first had each block.
    pub(super) stamps: BTreeMap<BlockHash, BTreeMap<usize, Instant>>,
    pub(super) reorgs: BTreeMap<u64, u64>,
    pub(super) violation: Option<Violation>,
    /// Every block any node had on its best chain, validated again.
    pub(super) reference: NodeChain,
    pub(super) settled: Option<(u64, BlockHash)>,
    pub(super) load: Load,
    pub(super) fault_events: BTreeMap<String, u64>,
    /// Nodes that stopped on a failed commit.
    pub(super) store_stops: u64,
    /// What the selfish pool did, if there is one.
    pub(super) pool: PoolRecord,
    /// What the eclipse's attacker did, if there is one.
    pub(super) attack: AttackRecord,
}

/// The world of a run, shared by its tasks.
pub(super) struct World {
    pub(super) opts: SimOptions,
    pub(super) genesis: Genesis,
    pub(super) genesis_total: Amount,
    pub(super) net: SimNet,
    pub(super) clock: SimClock,
    pub(super) lottery: Arc<Mutex<Lottery>>,
    pub(super) slots: Mutex<Vec<Slot>>,
    pub(super) shared: Mutex<Shared>,
    pub(super) miners: BTreeMap<Address, usize>,
    pub(super) abort: CancellationToken,
    /// Cancelled when the main phase ends: faults stop.
    pub(super) heal: CancellationToken,
    pub(super) start: Instant,
    /// Commits that took time (each stalled its node).
    pub(super) slow_commits: Arc<AtomicU64>,
    /// The eclipse's private blocks, for the attacker's connections.
    pub(super) private_blocks: tokio::sync::broadcast::Sender<(usize, Arc<Block<Tx>>)>,
}

impl World {
    fn build(opts: SimOptions) -> Result<Arc<World>, SimError> {
        let mut rng = SimRng::stream(opts.seed, 1);
        let hosts = crate::setup::hosts(&opts, &mut rng);
        let net = SimNet::new(
            SimRng::stream(opts.seed, 5).u64(),
            crate::setup::latency(&opts),
            &hosts,
        );
        // Accounts: users funded in genesis, one reward account per node.
        let users: Vec<Keypair> = (0..opts.users)
            .map(|i| crate::setup::key_for(opts.seed, "user", i))
            .collect();
        let miner_keys: Vec<Keypair> = (0..opts.nodes)
            .map(|i| crate::setup::key_for(opts.seed, "miner", i))
            .collect();
        let mut genesis = Genesis::dev();
        genesis.name = "escrow-chain sim".to_string();
        // A trivial target: a block is found in a hash or two, and still
        // carries valid proof of work through full validation.
        genesis.params = ChainParams::with_target_bits(1);
        genesis.params.max_block_bytes =
            max_block_bytes(genesis.params.max_block_bytes, opts.block_size);
        genesis.allocations = users
            .iter()
            .map(|k| Allocation {
                to: k.address(),
                amount: Amount::new(1_000_000),
            })
            .collect();
        let genesis_total = Amount::new(1_000_000 * opts.users as u64);
        let reference = genesis
            .chain()
            .map_err(|e| SimError::Options(format!("genesis: {e}")))?;
        let mut shares: Vec<f64> = (0..opts.nodes)
            .map(|_| match opts.hash_power {
                HashPower::Equal => 1.0,
                // At least a millionth of a share: a mean time between
                // finds must stay a finite duration.
                HashPower::Skewed => (-(1.0 - rng.unit()).ln()).max(1e-6),
            })
            .collect();
        opts.share_selfish_power(&mut shares);
        opts.share_eclipse_power(&mut shares);
        let clock = SimClock::new(genesis.timestamp_ms + 1_000);
        let lottery = Arc::new(Mutex::new(Lottery::new(
            opts.seed,
            &shares,
            opts.block_interval,
        )));
        let slow_commits = Arc::new(AtomicU64::new(0));
        let mut slots = Vec::new();
        for i in 0..opts.nodes {
            let mut config = NodeConfig::new(genesis.clone());
            config.listen = host_addr(i);
            config.tick_interval = opts.tick_interval;
            config.ping_interval = opts.ping_interval;
            config.idle_timeout = opts.idle_timeout;
            config.relay = opts.relay;
            config.mining = if shares.get(i).copied().unwrap_or(0.0) > 0.0 {
                MiningMode::Continuous
            } else {
                MiningMode::Off
            };
            config.miner_account = miner_keys
                .get(i)
                .map_or(config.miner_account, |k| k.address());
            let mut seeds = Vec::new();
            let wanted = opts.seeds_per_node.min(opts.nodes.saturating_sub(1));
            while seeds.len() < wanted {
                let j = rng.below(opts.nodes);
                let addr = host_addr(j);
                if j != i && !seeds.contains(&addr) {
                    seeds.push(addr);
                }
            }
            config.peers = seeds;
            // A slow commit stalls the node: its links hold their bytes
            // until the commit would have finished (see `store.rs`).
            let mut store = SimStore::default();
            let cpu = opts.cpu.as_ref().map(|p| {
                let cpu = Arc::new(SimCpu::new(p.costs.clone(), p.speed, p.cores));
                net.set_cpu(i, cpu.clone());
                store.set_cpu(cpu.clone());
                cpu
            });
            let stalled = net.clone();
            let count = slow_commits.clone();
            store.on_stall(move |d| {
                count.fetch_add(1, Ordering::Relaxed);
                stalled.stall(i);
                let net = stalled.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(d).await;
                    net.unstall(i);
                });
            });
            slots.push(Slot {
                handle: None,
                store,
                cpu,
                config,
                generation: 0,
                supply_checked_at: None,
            });
        }
        if let Some(slot) = slots.first_mut() {
            opts.set_up_pool(&mut slot.config, &net);
        }
        let load = Load {
            users: users
                .into_iter()
                .enumerate()
                .map(|(i, key)| User {
                    address: key.address(),
                    key,
                    home: i % opts.nodes,
                    next_nonce: 0,
                    waiting: None,
                    resync: false,
                })
                .collect(),
            flows: Vec::new(),
            rng: SimRng::stream(opts.seed, 2),
            escrow_share: opts.escrow_share,
            network: genesis.network_id(),
            submitted: 0,
            refused: BTreeMap::new(),
            confirmed: 0,
            latencies: Vec::new(),
            latencies_by_rate: BTreeMap::new(),
            fees_confirmed: 0,
            by_kind: BTreeMap::new(),
            give_up: opts.block_interval * 30,
        };
        let miners = miner_keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.address(), i))
            .collect();
        Ok(Arc::new(World {
            genesis,
            genesis_total,
            net,
            clock,
            lottery,
            slots: Mutex::new(slots),
            shared: Mutex::new(Shared {
                stamps: BTreeMap::new(),
                reorgs: BTreeMap::new(),
                violation: None,
                reference,
                settled: None,
                load,
                fault_events: BTreeMap::new(),
                store_stops: 0,
                pool: PoolRecord::default(),
                attack: AttackRecord::default(),
            }),
            miners,
            abort: CancellationToken::new(),
            heal: CancellationToken::new(),
            start: Instant::now(),
            slow_commits,
            private_blocks: tokio::sync::broadcast::channel(64).0,
            opts,
        }))
    }

    pub(super) fn now_s(&self) -> f64 {
        round3(self.start.elapsed().as_secs_f64())
    }

    /// Records a broken check and ends the run.
    pub(super) fn violate(&self, check: &str, node: Option<usize>, detail: String) {
        let mut s = lock(&self.shared);
        if s.violation.is_none() {
            s.violation = Some(Violation {
                check: check.to_string(),
                node,
                at_s: self.now_s(),
                detail,
            });
        }
        self.abort.cancel();
    }

    pub(super) fn handle(&self, i: usize) -> Option<NodeHandle> {
        lock(&self.slots).get(i).and_then(|s| s.handle.clone())
    }

    pub(super) fn handles(&self) -> Vec<Option<NodeHandle>> {
        lock(&self.slots).iter().map(|s| s.handle.clone()).collect()
    }

    /// Starts node `i` (again) on its store.
    pub(super) async fn start_node(self: &Arc<Self>, i: usize) -> Result<(), SimError> {
        let (config, store, cpu, generation) = {
            let mut slots = lock(&self.slots);
            let Some(slot) = slots.get_mut(i) else {
                return Err(SimError::Options(format!("no node {i}")));
            };
            if slot.handle.is_some() {
                return Ok(());
            }
            slot.store = slot.store.reopen();
            slot.generation += 1;
            slot.supply_checked_at = None;
            let cpu = slot.cpu.clone();
            (
                slot.config.clone(),
                slot.store.clone(),
                cpu,
                slot.generation,
            )
        };
        self.net.restart(i);
        let id = crate::rng::node_id(self.opts.seed, i, generation);
        let seams = Seams {
            transport: Arc::new(self.net.transport(i)),
            clock: Arc::new(self.clock),
            store: Box::new(store),
            miner: Some(Arc::new(SimMiner::new(i, self.lottery.clone(), self.clock))),
            node_id: Some(NodeId(id)),
            seed: Some(blake3::hash(&id).into()),
            cpu: cpu.map(|c| c as Arc<dyn p2p_node::cpu::Cpu>),
        };
        let handle = Node::start_with(config, seams)
            .await
            .map_err(|e| SimError::Start {
                node: i,
                reason: e.to_string(),
            })?;
        let events = handle.subscribe();
        if let Some(slot) = lock(&self.slots).get_mut(i) {
            slot.handle = Some(handle.clone());
        }
        tokio::spawn(self.clone().watch(i, handle, events));
        Ok(())
    }

    /// Crashes node `i`: its host goes down, its store stops taking
    /// writes, its tasks end.
    pub(super) async fn crash_node(self: &Arc<Self>, i: usize) {
        let handle = {
            let mut slots = lock(&self.slots);
            let Some(slot) = slots.get_mut(i) else { return };
            let Some(handle) = slot.handle.take() else {
                return;
            };
            slot.store.crash();
            handle
        };
        self.net.crash(i);
        handle.shutdown().await;
    }

    /// The load: arrivals as a Poisson process, of the mixed load at
    /// `tx_rate`, or of filler memo transfers at `block_size` bytes per
    /// block interval.
    async fn load_loop(self: Arc<Self>, stop: CancellationToken, kind: Arrivals) {
        let (rate, stream) = match kind {
            Arrivals::Mixed => (self.opts.tx_rate, 3),
            Arrivals::Filler { memo_len } => {
                let bytes = self.opts.block_size.unwrap_or(0) as f64;
                let per_tx = (memo_len + FILLER_OVERHEAD) as f64;
                (bytes / per_tx / self.opts.block_interval.as_secs_f64(), 6)
            }
        };
        if !(rate > 0.0 && rate.is_finite()) {
            return;
        }
        let mean = Duration::from_secs_f64(1.0 / rate);
        let mut rng = SimRng::stream(self.opts.seed, stream);
        let mut memo_rng = SimRng::stream(self.opts.seed, 7);
        loop {
            tokio::select! {
                biased;
                () = stop.cancelled() => return,
                () = tokio::time::sleep(rng.exp(mean)) => {}
            }
            // Users whose nonce is in doubt ask their home node.
            let resync = lock(&self.shared).load.needs_resync();
            for (user, home, address) in resync {
                let Some(h) = self.handle(home) else { continue };
                if let Ok(nonce) = h
                    .query(move |v| v.mempool.pending_ledger().nonce(&address))
                    .await
                {
                    lock(&self.shared).load.resynced(user, nonce);
                }
            }
            let handles = self.handles();
            let heights: Vec<u64> = {
                let s = lock(&self.shared);
                let h = s.reference.height();
                vec![h; handles.len()]
            };
            let send = match kind {
                Arrivals::Mixed => lock(&self.shared).load.next(Instant::now(), |home| {
                    heights.get(home).copied().unwrap_or(0)
                }),
                Arrivals::Filler { memo_len } => {
                    lock(&self.shared)
                        .load
                        .filler(Instant::now(), memo_len, &mut memo_rng)
                }
            };
            let Some(send) = send else { continue };
            let Some(Some(node)) = handles.get(send.home) else {
                // The home node is down: the user waits.
                continue;
            };
            let result = node.submit(send.tx.clone()).await;
            let mut s = lock(&self.shared);
            match result {
                Ok(_) => s.load.accepted(&send, Instant::now()),
                Err(NodeError::Mempool(e)) => {
                    s.load
                        .refused(&send, p2p_node::api::mempool_code(&e).to_string());
                }
                Err(e) => s.load.refused(&send, e.to_string()),
            }
        }
    }

    /// Resolves when the main phase should end, printing progress every
    /// tenth of the way if asked.
    async fn main_phase(&self) {
        let wall = std::time::Instant::now();
        let mut shown = 0;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let height = lock(&self.shared).reference.height();
            let elapsed = self.start.elapsed();
            let (done, tenth) = match self.opts.stop {
                Stop::Duration(d) => (
                    elapsed >= d,
                    (elapsed.as_secs_f64() / d.as_secs_f64().max(1e-9) * 10.0) as u64,
                ),
                Stop::Blocks(n) => (height >= n, height * 10 / n.max(1)),
            };
            if self.opts.progress && tenth > shown && !done {
                shown = tenth;
                eprintln!(
                    "[sim] {}0 %: {:.0} s simulated, height {height}, {:.1} s wall",
                    tenth,
                    elapsed.as_secs_f64(),
                    wall.elapsed().as_secs_f64()
                );
            }
            if done {
                return;
            }
        }
    }

    async fn run(self: Arc<Self>) -> Result<Outcome, SimError> {
        for i in 0..self.opts.nodes {
            self.start_node(i).await?;
        }
        let stop_load = CancellationToken::new();
        let fault_tasks = TaskTracker::new();
        tokio::spawn(self.clone().settle_loop());
        tokio::spawn(self.clone().load_loop(stop_load.clone(), Arrivals::Mixed));
        if let Some(size) = self.opts.block_size {
            let memo_len = filler_memo_len(size);
            tokio::spawn(
                self.clone()
                    .load_loop(stop_load.clone(), Arrivals::Filler { memo_len }),
            );
        }
        if self.opts.selfish.is_some() {
            fault_tasks.spawn(self.clone().selfish_loop(self.heal.clone()));
        }
        self.start_eclipse(&self.heal, &fault_tasks);
        if let Some(faults) = self.opts.faults {
            for k in 0..faults.byzantine {
                fault_tasks.spawn(self.clone().byzantine_loop(k, self.heal.clone()));
            }
            fault_tasks.spawn(self.clone().fault_loop(
                faults,
                self.heal.clone(),
                fault_tasks.clone(),
            ));
        }
        tokio::select! {
            biased;
            () = self.abort.cancelled() => {}
            () = self.main_phase() => {}
        }
        let main_phase_s = self.now_s();
        // Heal: the load over, every fault task done (no crash can come
        // after this), every fault lifted, every node up.
        stop_load.cancel();
        self.heal.cancel();
        fault_tasks.close();
        fault_tasks.wait().await;
        self.net.heal_all();
        for i in 0..self.opts.nodes {
            if !self.abort.is_cancelled() && self.handle(i).is_none() {
                self.start_node(i).await?;
            }
        }
        let healed = Instant::now();
        let mut settled_after = None;
        while !self.abort.is_cancelled() {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let total = self.genesis_total;
            let probes = self
                .probe_all(|| Ask {
                    genesis_total: total,
                    heights: Vec::new(),
                    waiting: Vec::new(),
                    supply: false,
                    supply_checked_at: None,
                    contracts: false,
                })
                .await;
            let tips: Vec<_> = probes
                .iter()
                .map(|p| p.as_ref().map(|p| (p.tip, p.mempool)))
                .collect();
            let agreed = tips.first().is_some_and(|first| {
                first.is_some_and(|(_, m)| m == 0) && tips.iter().all(|t| t == first)
            });
            if agreed {
                settled_after = Some(round3(healed.elapsed().as_secs_f64()));
                break;
            }
            if healed.elapsed() > self.opts.settle_bound {
                self.violate(
                    "liveness",
                    None,
                    format!(
                        "{} s after the heal the nodes still disagree: {}",
                        self.opts.settle_bound.as_secs(),
                        crate::probe::tips_in_words(&probes)
                    ),
                );
            }
        }
        // Last checks on every node, contracts included, and that no honest
        // node banned an honest one.
        if !self.abort.is_cancelled() {
            self.check_all(true).await;
            self.check_bans().await;
        }
        let relay = self.relay_counts().await;
        Ok(self.report(main_phase_s, settled_after, relay))
    }
}

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
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chain_core::{BlockHash, ChainParams};
use escrow::genesis::Allocation;
use escrow::{Address, Amount, Genesis, Keypair, Tx};
use serde::Serialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use wire::NodeId;

use super::checks::{self, Ask, Probe, SETTLED_DEPTH};
use super::load::{Load, User};
use super::net::{HostSpec, Latency, SimNet, host_addr};
use super::{Lottery, SimClock, SimMiner, SimRng, SimStore};
use crate::config::{MiningMode, NodeConfig};
use crate::core::{NodeChain, NodeEvent};
use crate::node::{Node, NodeHandle, Seams};

/// When the main phase ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// After this much simulated time.
    Duration(#[serde(serialize_with = "secs")] Duration),
    /// Once the best chain (of every block any node has) reaches this
    /// height.
    Blocks(u64),
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(round3(d.as_secs_f64()))
}

/// How the hash power is shared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HashPower {
    /// Every node the same share.
    Equal,
    /// Shares drawn from an exponential distribution (a few large miners,
    /// many small ones), normalised.
    Skewed,
}

/// Regions of the world for a latency preset: where nodes are, their
/// upload bandwidth, and the mean latency between regions.
#[derive(Clone, Debug, PartialEq)]
pub struct Regions {
    /// Region names, for the report.
    pub names: Vec<&'static str>,
    /// The share of nodes in each region.
    pub share: Vec<f64>,
    /// Upload bandwidth of a node in each region, bits per second.
    pub upload_bps: Vec<u64>,
    /// Mean one-way latency between regions, milliseconds.
    pub latency_ms: Vec<Vec<u64>>,
}

/// The Bitcoin network as SimBlock models it (its 2019 parameters): six
/// regions, the share of nodes in each, their upload bandwidth and the
/// mean latency between them. Source: SimBlock's `NetworkConfiguration`
/// (Aoki et al., "SimBlock: A Blockchain Network Simulator", 2019).
pub fn bitcoin_regions() -> Regions {
    Regions {
        names: vec![
            "north_america",
            "europe",
            "south_america",
            "asia_pacific",
            "japan",
            "australia",
        ],
        share: vec![0.3316, 0.4998, 0.0090, 0.1177, 0.0224, 0.0195],
        upload_bps: vec![
            19_200_000, 20_700_000, 5_800_000, 15_700_000, 10_200_000, 11_300_000,
        ],
        latency_ms: vec![
            vec![32, 124, 184, 198, 151, 189],
            vec![124, 11, 227, 237, 252, 294],
            vec![184, 227, 88, 325, 301, 322],
            vec![198, 237, 325, 85, 58, 198],
            vec![151, 252, 301, 58, 12, 126],
            vec![189, 294, 322, 198, 126, 16],
        ],
    }
}

/// Faults injected during the main phase (the swarm).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Faults {
    /// Mean time between fault events (a Poisson process).
    #[serde(serialize_with = "secs")]
    pub mean_gap: Duration,
}

/// Everything a run depends on. The same options give the same run.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Nodes.
    pub nodes: usize,
    /// The seed of every random draw.
    pub seed: u64,
    /// Mean time between blocks over the whole network.
    pub block_interval: Duration,
    /// Link latencies (ignored when `regions` is set).
    pub latency: Latency,
    /// Upload bandwidth of every node, bits per second (ignored when
    /// `regions` is set).
    pub upload_bps: u64,
    /// A regional preset, instead of `latency` and `upload_bps`.
    pub regions: Option<Regions>,
    /// How many other nodes each node is told at start.
    pub seeds_per_node: usize,
    /// When the main phase ends.
    pub stop: Stop,
    /// Transactions per simulated second over the whole network.
    pub tx_rate: f64,
    /// The share of the load that is escrow steps.
    pub escrow_share: f64,
    /// Simulated users (accounts funded in genesis).
    pub users: usize,
    /// How the hash power is shared.
    pub hash_power: HashPower,
    /// Faults, for a swarm run.
    pub faults: Option<Faults>,
    /// How often the settled-block check runs.
    pub check_every: Duration,
    /// How long after the heal every node must agree (one tip, empty
    /// mempools).
    pub settle_bound: Duration,
    /// Print the progress of the main phase to stderr (never part of the
    /// report).
    pub progress: bool,
    /// The nodes' housekeeping interval ([`NodeConfig::tick_interval`]):
    /// 1 s rather than a live node's 100 ms, as a simulated day of
    /// hundred-millisecond ticks on hundreds of nodes would cost more than
    /// everything else together.
    pub tick_interval: Duration,
}

impl SimOptions {
    /// Defaults: 10 nodes, 10-second blocks, 50 to 150 ms links, 20 Mbit/s,
    /// 3 seeds per node, 100 blocks, one transaction a second.
    pub fn new(nodes: usize, seed: u64) -> SimOptions {
        SimOptions {
            nodes,
            seed,
            block_interval: Duration::from_secs(10),
            latency: Latency::Uniform(Duration::from_millis(50), Duration::from_millis(150)),
            upload_bps: 20_000_000,
            regions: None,
            seeds_per_node: 3,
            stop: Stop::Blocks(100),
            tx_rate: 1.0,
            escrow_share: 0.3,
            users: (nodes * 2).max(20),
            hash_power: HashPower::Equal,
            faults: None,
            check_every: Duration::from_secs(10),
            settle_bound: Duration::from_secs(600),
            progress: false,
            tick_interval: Duration::from_secs(1),
        }
    }
}

/// A broken check: which, where, when.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Violation {
    /// The check: `supply`, `contracts`, `settled`, `validity` or
    /// `liveness`.
    pub check: String,
    /// The node it was seen on, if one.
    pub node: Option<usize>,
    /// Simulated seconds since the start.
    pub at_s: f64,
    /// What was wrong.
    pub detail: String,
}

/// Percentiles of a sample.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    /// How many values.
    pub count: usize,
    /// Their mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

fn round3(x: f64) -> f64 {
    (x * 1_000.0).round() / 1_000.0
}

/// The value at quantile `q` of sorted `v` (nearest rank).
fn quantile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v.get(rank - 1).copied().unwrap_or(0.0)
}

impl Summary {
    /// The summary of `values`.
    pub fn of(mut values: Vec<f64>) -> Summary {
        values.sort_by(f64::total_cmp);
        let count = values.len();
        let mean = if count == 0 {
            0.0
        } else {
            values.iter().sum::<f64>() / count as f64
        };
        Summary {
            count,
            mean: round3(mean),
            p50: round3(quantile(&values, 0.5)),
            p90: round3(quantile(&values, 0.9)),
            p99: round3(quantile(&values, 0.99)),
            max: round3(values.last().copied().unwrap_or(0.0)),
        }
    }
}

/// What the blocks came to.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BlockStats {
    /// Blocks found by any node.
    pub found: u64,
    /// The final best chain's height.
    pub best_height: u64,
    /// Found blocks not on the final best chain.
    pub stale: u64,
    /// `stale / found`.
    pub stale_rate: f64,
}

/// Reorganisations seen on the nodes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Reorgs {
    /// How many, over all nodes.
    pub count: u64,
    /// The deepest.
    pub max_depth: u64,
    /// How many of each depth (blocks undone).
    pub depth_histogram: BTreeMap<u64, u64>,
}

/// What the load came to.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TxStats {
    /// Accepted by their home node.
    pub submitted: u64,
    /// Seen on their home node's best chain.
    pub confirmed: u64,
    /// Refused at submission, by the API's error code.
    pub refused: BTreeMap<String, u64>,
    /// Accepted, by kind.
    pub by_kind: BTreeMap<String, u64>,
    /// Submission to the home node's best chain, milliseconds.
    pub confirmation_ms: Summary,
}

/// The report of a run: simulated results only, so the same seed and
/// options give the same bytes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// Nodes.
    pub nodes: usize,
    /// Mean block interval, seconds.
    pub block_interval_s: f64,
    /// The latency model, in words.
    pub latency: String,
    /// The stop condition.
    pub stop: Stop,
    /// The faults, for a swarm.
    pub faults: Option<Faults>,
    /// Simulated seconds the main phase lasted.
    pub main_phase_s: f64,
    /// Simulated seconds in all.
    pub simulated_s: f64,
    /// Blocks found, stale rate.
    pub blocks: BlockStats,
    /// Time from a block's discovery until 50 %, 90 % and 100 % of the
    /// nodes have it (milliseconds), over the blocks of the final best
    /// chain.
    pub propagation_ms: BTreeMap<String, Summary>,
    /// Per best-chain block, the mean over the nodes of the time until the
    /// node had it (milliseconds): the propagation delay `d` of Decker and
    /// Wattenhofer's model, stale rate ≈ 1 − exp(−d / interval).
    pub node_delay_ms: Summary,
    /// Reorganisations.
    pub reorgs: Reorgs,
    /// The load.
    pub transactions: TxStats,
    /// Bytes each node wrote to its connections.
    pub bytes_sent_per_node: Summary,
    /// Fault events injected, by kind.
    pub fault_events: BTreeMap<String, u64>,
    /// Seconds from the heal until every node agreed, if they did.
    pub settled_after_heal_s: Option<f64>,
    /// The highest block every node had with [`SETTLED_DEPTH`] blocks on
    /// top of it.
    pub settled_height: u64,
    /// The first broken check, if any.
    pub violation: Option<Violation>,
}

/// One block of the final tree, for the picture.
#[derive(Clone, Debug, PartialEq)]
pub struct TreeBlock {
    /// Its height.
    pub height: u64,
    /// Its hash.
    pub hash: BlockHash,
    /// Its parent's index in the same list.
    pub parent: Option<usize>,
    /// On the final best chain.
    pub best: bool,
    /// The node that mined it.
    pub miner: Option<usize>,
}

/// A run's report and the data behind its pictures.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The report.
    pub report: Report,
    /// Propagation times (ms) to 50 %, 90 % and 100 % of the nodes, one
    /// value per best-chain block.
    pub propagation: [Vec<f64>; 3],
    /// Every block found, by height then hash.
    pub tree: Vec<TreeBlock>,
}

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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One node's place in the world.
struct Slot {
    handle: Option<NodeHandle>,
    store: SimStore,
    config: NodeConfig,
    generation: u64,
}

/// What the watchers and checkers share.
struct Shared {
    /// When each node first had each block.
    stamps: BTreeMap<BlockHash, BTreeMap<usize, Instant>>,
    reorgs: BTreeMap<u64, u64>,
    violation: Option<Violation>,
    /// Every block any node had on its best chain, validated again.
    reference: NodeChain,
    settled: Option<(u64, BlockHash)>,
    load: Load,
    fault_events: BTreeMap<String, u64>,
}

struct World {
    opts: SimOptions,
    genesis: Genesis,
    genesis_total: Amount,
    net: SimNet,
    clock: SimClock,
    lottery: Arc<Mutex<Lottery>>,
    slots: Mutex<Vec<Slot>>,
    shared: Mutex<Shared>,
    miners: BTreeMap<Address, usize>,
    abort: CancellationToken,
    start: Instant,
}

fn key_for(seed: u64, role: &str, i: usize) -> Keypair {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"escrow-chain sim key");
    hasher.update(&seed.to_le_bytes());
    hasher.update(role.as_bytes());
    hasher.update(&(i as u64).to_le_bytes());
    Keypair::from_seed(*hasher.finalize().as_bytes())
}

impl World {
    fn build(opts: SimOptions) -> Result<Arc<World>, SimError> {
        let mut rng = SimRng::stream(opts.seed, 1);
        // Hosts: regions and bandwidth.
        let hosts: Vec<HostSpec> = (0..opts.nodes)
            .map(|_| match &opts.regions {
                Some(r) => {
                    let mut x = rng.unit() * r.share.iter().sum::<f64>();
                    let mut region = 0;
                    for (i, s) in r.share.iter().enumerate() {
                        region = i;
                        if x < *s {
                            break;
                        }
                        x -= s;
                    }
                    HostSpec {
                        region,
                        upload_bps: r.upload_bps.get(region).copied().unwrap_or(opts.upload_bps),
                    }
                }
                None => HostSpec {
                    region: 0,
                    upload_bps: opts.upload_bps,
                },
            })
            .collect();
        let latency = match &opts.regions {
            Some(r) => Latency::Regions(r.latency_ms.clone()),
            None => opts.latency.clone(),
        };
        let net = SimNet::new(SimRng::stream(opts.seed, 5).u64(), latency, &hosts);
        // Accounts: users funded in genesis, one reward account per node.
        let users: Vec<Keypair> = (0..opts.users)
            .map(|i| key_for(opts.seed, "user", i))
            .collect();
        let miner_keys: Vec<Keypair> = (0..opts.nodes)
            .map(|i| key_for(opts.seed, "miner", i))
            .collect();
        let mut genesis = Genesis::dev();
        genesis.name = "escrow-chain sim".to_string();
        // A trivial target: a block is found in a hash or two, and still
        // carries valid proof of work through full validation.
        genesis.params = ChainParams::with_target_bits(1);
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
        let shares: Vec<f64> = (0..opts.nodes)
            .map(|_| match opts.hash_power {
                HashPower::Equal => 1.0,
                HashPower::Skewed => -(1.0 - rng.unit()).ln(),
            })
            .collect();
        let clock = SimClock::new(genesis.timestamp_ms + 1_000);
        let lottery = Arc::new(Mutex::new(Lottery::new(
            opts.seed,
            &shares,
            opts.block_interval,
        )));
        let mut slots = Vec::new();
        for i in 0..opts.nodes {
            let mut config = NodeConfig::new(genesis.clone());
            config.listen = host_addr(i);
            config.tick_interval = opts.tick_interval;
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
            slots.push(Slot {
                handle: None,
                store: SimStore::default(),
                config,
                generation: 0,
            });
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
            }),
            miners,
            abort: CancellationToken::new(),
            start: Instant::now(),
            opts,
        }))
    }

    fn now_s(&self) -> f64 {
        round3(self.start.elapsed().as_secs_f64())
    }

    /// Records a broken check and ends the run.
    fn violate(&self, check: &str, node: Option<usize>, detail: String) {
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

    fn handle(&self, i: usize) -> Option<NodeHandle> {
        lock(&self.slots).get(i).and_then(|s| s.handle.clone())
    }

    fn handles(&self) -> Vec<Option<NodeHandle>> {
        lock(&self.slots).iter().map(|s| s.handle.clone()).collect()
    }

    /// Starts node `i` (again) on its store.
    async fn start_node(self: &Arc<Self>, i: usize) -> Result<(), SimError> {
        let (config, store, generation) = {
            let mut slots = lock(&self.slots);
            let Some(slot) = slots.get_mut(i) else {
                return Err(SimError::Options(format!("no node {i}")));
            };
            if slot.handle.is_some() {
                return Ok(());
            }
            slot.store = slot.store.reopen();
            slot.generation += 1;
            (slot.config.clone(), slot.store.clone(), slot.generation)
        };
        self.net.restart(i);
        let mut id_rng = SimRng::stream(self.opts.seed, 10_000 + (i as u64) * 1_000 + generation);
        let mut id = [0u8; 32];
        for chunk in id.chunks_mut(8) {
            chunk.copy_from_slice(&id_rng.u64().to_le_bytes());
        }
        let seams = Seams {
            transport: Arc::new(self.net.transport(i)),
            clock: Arc::new(self.clock),
            store: Box::new(store),
            miner: Some(Arc::new(SimMiner::new(i, self.lottery.clone(), self.clock))),
            node_id: Some(NodeId(id)),
            seed: Some(blake3::hash(&id).into()),
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
    async fn crash_node(self: &Arc<Self>, i: usize) {
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

    /// Follows node `i`'s events: stamps blocks, checks the node after
    /// every tip change, notes confirmations.
    async fn watch(
        self: Arc<Self>,
        i: usize,
        handle: NodeHandle,
        mut events: tokio::sync::broadcast::Receiver<NodeEvent>,
    ) {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            let event = tokio::select! {
                biased;
                () = handle.stopped() => break,
                e = events.recv() => e,
            };
            match event {
                Ok(NodeEvent::Tip { hash, undone, .. }) => {
                    self.stamp(i, hash);
                    if undone > 0 {
                        *lock(&self.shared).reorgs.entry(undone as u64).or_insert(0) += 1;
                    }
                    self.fetch(i, &handle, hash).await;
                    self.check_node(i, &handle, undone > 0).await;
                }
                Ok(NodeEvent::Fork { hash, .. }) => {
                    self.stamp(i, hash);
                    self.fetch(i, &handle, hash).await;
                }
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => break,
            }
        }
    }

    fn stamp(&self, i: usize, hash: BlockHash) {
        let now = Instant::now();
        lock(&self.shared)
            .stamps
            .entry(hash)
            .or_default()
            .entry(i)
            .or_insert(now);
    }

    /// Brings `hash` and the ancestors the reference lacks from node `i`
    /// into the reference tree, which validates each again.
    async fn fetch(&self, i: usize, handle: &NodeHandle, hash: BlockHash) {
        let mut missing = Vec::new();
        let mut next = hash;
        loop {
            if lock(&self.shared).reference.block(&next).is_some() {
                break;
            }
            let Ok(Some(block)) = handle.query(move |v| v.chain.block(&next).cloned()).await else {
                break;
            };
            next = block.header.parent;
            missing.push(block);
        }
        let now_ms = crate::clock::Clock::now_ms(&self.clock);
        for block in missing.into_iter().rev() {
            let hash = block.hash();
            let refused = lock(&self.shared)
                .reference
                .insert((*block).clone(), now_ms)
                .err();
            if let Some(e) = refused {
                self.violate(
                    "validity",
                    Some(i),
                    format!("block {hash} of node {i} fails validation: {e}"),
                );
                return;
            }
        }
    }

    /// Probes node `i` after a tip change: the settled block and
    /// confirmations always; conservation and contracts after a reorg
    /// (the periodic round checks conservation on every node too).
    async fn check_node(&self, i: usize, handle: &NodeHandle, contracts: bool) {
        let (settled, waiting) = {
            let s = lock(&self.shared);
            (s.settled, s.load.waiting_at(i))
        };
        let ask = Ask {
            genesis_total: self.genesis_total,
            heights: settled.map(|(h, _)| vec![h]).unwrap_or_default(),
            waiting,
            supply: contracts,
            contracts,
        };
        let Ok(probe) = handle.query(move |v| checks::probe(v, &ask)).await else {
            return;
        };
        self.judge(i, &probe, settled, contracts);
        let now = Instant::now();
        let mut s = lock(&self.shared);
        for user in probe.confirmed {
            s.load.confirmed(user, now);
        }
    }

    fn judge(&self, i: usize, probe: &Probe, settled: Option<(u64, BlockHash)>, contracts: bool) {
        if let Some(problem) = &probe.problem {
            let check = if contracts && problem.starts_with("contract") {
                "contracts"
            } else {
                "supply"
            };
            self.violate(check, Some(i), problem.clone());
            return;
        }
        if let Some((h, hash)) = settled
            && probe.height >= h
            && probe.at_heights.first().copied().flatten() != Some(hash)
        {
            self.violate(
                "settled",
                Some(i),
                format!(
                    "node {i}'s best chain lost block {hash} at height {h}, which every node \
                     had with {SETTLED_DEPTH} blocks on top"
                ),
            );
        }
    }

    async fn probe_all(&self, ask: impl Fn() -> Ask) -> Vec<Option<Probe>> {
        let mut out = Vec::new();
        for h in self.handles() {
            let probe = match h {
                Some(h) => {
                    let a = ask();
                    h.query(move |v| checks::probe(v, &a)).await.ok()
                }
                None => None,
            };
            out.push(probe);
        }
        out
    }

    /// Every `check_every`: the settled block is still on every node, and
    /// a higher block may become settled.
    async fn settle_loop(self: Arc<Self>) {
        loop {
            tokio::time::sleep(self.opts.check_every).await;
            if self.abort.is_cancelled() {
                return;
            }
            self.settle_round().await;
        }
    }

    async fn settle_round(&self) {
        let settled = lock(&self.shared).settled;
        let total = self.genesis_total;
        let probes = self
            .probe_all(|| Ask {
                genesis_total: total,
                heights: settled.map(|(h, _)| vec![h]).unwrap_or_default(),
                waiting: Vec::new(),
                supply: true,
                contracts: false,
            })
            .await;
        for (i, p) in probes.iter().enumerate() {
            if let Some(p) = p {
                self.judge(i, p, settled, false);
            }
        }
        // Every node up: is a higher block settled?
        let Some(heights) = probes
            .iter()
            .map(|p| p.as_ref().map(|p| p.height))
            .collect::<Option<Vec<u64>>>()
        else {
            return;
        };
        let Some(k) = heights
            .iter()
            .min()
            .and_then(|m| m.checked_sub(SETTLED_DEPTH))
        else {
            return;
        };
        if k == 0 || settled.is_some_and(|(h, _)| h >= k) {
            return;
        }
        let at_k = self
            .probe_all(|| Ask {
                genesis_total: total,
                heights: vec![k],
                waiting: Vec::new(),
                supply: false,
                contracts: false,
            })
            .await;
        let hashes: Vec<Option<BlockHash>> = at_k
            .iter()
            .map(|p| {
                p.as_ref()
                    .and_then(|p| p.at_heights.first().copied().flatten())
            })
            .collect();
        if let Some(Some(first)) = hashes.first()
            && hashes.iter().all(|h| *h == Some(*first))
        {
            lock(&self.shared).settled = Some((k, *first));
        }
    }

    /// The load: arrivals as a Poisson process at `tx_rate`.
    async fn load_loop(self: Arc<Self>, stop: CancellationToken) {
        if self.opts.tx_rate <= 0.0 {
            return;
        }
        let mean = Duration::from_secs_f64(1.0 / self.opts.tx_rate);
        let mut rng = SimRng::stream(self.opts.seed, 3);
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
            let send = lock(&self.shared).load.next(Instant::now(), |home| {
                heights.get(home).copied().unwrap_or(0)
            });
            let Some(send) = send else { continue };
            let Some(Some(node)) = handles.get(send.home) else {
                // The home node is down: the user waits.
                continue;
            };
            let result = node.submit(send.tx.clone()).await;
            let mut s = lock(&self.shared);
            match result {
                Ok(_) => s.load.accepted(&send, Instant::now()),
                Err(crate::NodeError::Mempool(e)) => {
                    s.load
                        .refused(&send, crate::api::error::mempool_code(&e).to_string());
                }
                Err(e) => s.load.refused(&send, e.to_string()),
            }
        }
    }

    /// The swarm's faults: a random schedule drawn from the seed.
    async fn fault_loop(self: Arc<Self>, faults: Faults, stop: CancellationToken) {
        let mut rng = SimRng::stream(self.opts.seed, 4);
        let n = self.opts.nodes;
        loop {
            tokio::select! {
                biased;
                () = stop.cancelled() => return,
                () = tokio::time::sleep(rng.exp(faults.mean_gap)) => {}
            }
            let roll = rng.below(6);
            let lasts = |rng: &mut SimRng, lo: u64, hi: u64| {
                Duration::from_secs(lo + rng.below((hi - lo) as usize) as u64)
            };
            let kind = match roll {
                0 | 1 if n >= 2 => {
                    // A partition: a random side against the rest, both
                    // ways or one way.
                    let oneway = roll == 1;
                    let side: Vec<usize> = (0..n).filter(|_| rng.chance(0.5)).collect();
                    if side.is_empty() || side.len() == n {
                        continue;
                    }
                    let cut: Vec<(usize, usize)> = side
                        .iter()
                        .flat_map(|&a| {
                            (0..n)
                                .filter(|b| !side.contains(b))
                                .flat_map(move |b| [(a, b), (b, a)])
                        })
                        .filter(|(a, b)| !oneway || side.contains(a) == (a < b))
                        .collect();
                    for (a, b) in &cut {
                        self.net.block(*a, *b);
                    }
                    let me = self.clone();
                    let d = lasts(&mut rng, 10, 300);
                    tokio::spawn(async move {
                        tokio::time::sleep(d).await;
                        for (a, b) in cut {
                            me.net.unblock(a, b);
                        }
                    });
                    if oneway {
                        "partition_oneway"
                    } else {
                        "partition"
                    }
                }
                2 if n >= 2 => {
                    let a = rng.below(n);
                    let b = (a + 1 + rng.below(n - 1)) % n;
                    self.net.hold(a, b);
                    let me = self.clone();
                    let d = lasts(&mut rng, 1, 30);
                    tokio::spawn(async move {
                        tokio::time::sleep(d).await;
                        me.net.release(a, b);
                    });
                    "hold"
                }
                3 => {
                    let a = rng.below(n);
                    let factor = 5.0 + rng.unit() * 15.0;
                    self.net.spike(a, factor);
                    let me = self.clone();
                    let d = lasts(&mut rng, 10, 60);
                    tokio::spawn(async move {
                        tokio::time::sleep(d).await;
                        me.net.spike(a, 1.0);
                    });
                    "latency_spike"
                }
                _ => {
                    let a = rng.below(n);
                    if self.handle(a).is_none() {
                        continue;
                    }
                    let d = lasts(&mut rng, 5, 120);
                    let me = self.clone();
                    tokio::spawn(async move {
                        me.crash_node(a).await;
                        tokio::time::sleep(d).await;
                        if !me.abort.is_cancelled()
                            && let Err(e) = me.start_node(a).await
                        {
                            me.violate("liveness", Some(a), e.to_string());
                        }
                    });
                    "crash"
                }
            };
            *lock(&self.shared)
                .fault_events
                .entry(kind.to_string())
                .or_insert(0) += 1;
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
        tokio::spawn(self.clone().settle_loop());
        tokio::spawn(self.clone().load_loop(stop_load.clone()));
        if let Some(faults) = self.opts.faults {
            tokio::spawn(self.clone().fault_loop(faults, stop_load.clone()));
        }
        tokio::select! {
            biased;
            () = self.abort.cancelled() => {}
            () = self.main_phase() => {}
        }
        let main_phase_s = self.now_s();
        // Heal: every fault lifted, every node up, the load over.
        stop_load.cancel();
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
                let heights: Vec<String> = probes
                    .iter()
                    .map(|p| {
                        p.as_ref().map_or("down".into(), |p| {
                            format!("{}@{} ({} pending)", p.height, p.tip, p.mempool)
                        })
                    })
                    .collect();
                self.violate(
                    "liveness",
                    None,
                    format!(
                        "{} s after the heal the nodes still disagree: {}",
                        self.opts.settle_bound.as_secs(),
                        heights.join(", ")
                    ),
                );
            }
        }
        // Last checks on every node, contracts included.
        if !self.abort.is_cancelled() {
            let total = self.genesis_total;
            let probes = self
                .probe_all(|| Ask {
                    genesis_total: total,
                    heights: Vec::new(),
                    waiting: Vec::new(),
                    supply: true,
                    contracts: true,
                })
                .await;
            for (i, p) in probes.iter().enumerate() {
                if let Some(p) = p {
                    self.judge(i, p, None, true);
                }
            }
        }
        Ok(self.report(main_phase_s, settled_after))
    }

    fn report(&self, main_phase_s: f64, settled_after: Option<f64>) -> Outcome {
        let mut s = lock(&self.shared);
        let n = self.opts.nodes;
        // The tree, in a stable order.
        let best: std::collections::BTreeSet<BlockHash> =
            s.reference.best_chain().iter().copied().collect();
        let mut blocks: Vec<_> = s
            .reference
            .blocks()
            .map(|b| (b.header.height, b.hash(), b.header.parent, b.clone()))
            .collect();
        blocks.sort_by_key(|b| (b.0, b.1));
        let index: BTreeMap<BlockHash, usize> =
            blocks.iter().enumerate().map(|(i, b)| (b.1, i)).collect();
        let tree: Vec<TreeBlock> = blocks
            .iter()
            .map(|(height, hash, parent, block)| TreeBlock {
                height: *height,
                hash: *hash,
                parent: index.get(parent).copied(),
                best: best.contains(hash),
                miner: block.transactions.first().and_then(|tx| match tx {
                    Tx::Coinbase { to, .. } => self.miners.get(to).copied(),
                    _ => None,
                }),
            })
            .collect();
        let parents: BTreeMap<BlockHash, BlockHash> = blocks.iter().map(|b| (b.1, b.2)).collect();
        // A node that has a block has its ancestors: each ancestor gets
        // the earliest time a node had any of its descendants, if earlier.
        let mut by_node: Vec<Vec<(Instant, BlockHash)>> = vec![Vec::new(); n];
        for (hash, nodes) in &s.stamps {
            for (node, t) in nodes {
                if let Some(list) = by_node.get_mut(*node) {
                    list.push((*t, *hash));
                }
            }
        }
        for (node, list) in by_node.iter_mut().enumerate() {
            list.sort();
            for (t, hash) in list.iter() {
                let mut h = parents.get(hash).copied();
                while let Some(p) = h {
                    let entry = s.stamps.entry(p).or_default();
                    if entry.contains_key(&node) {
                        break;
                    }
                    entry.insert(node, *t);
                    h = parents.get(&p).copied();
                }
            }
        }
        let mut propagation: [Vec<f64>; 3] = [Vec::new(), Vec::new(), Vec::new()];
        let mut node_delay = Vec::new();
        let genesis = self.genesis.network_id();
        for hash in s.reference.best_chain() {
            if *hash == genesis {
                continue;
            }
            let Some(nodes) = s.stamps.get(hash) else {
                continue;
            };
            let mut times: Vec<Instant> = nodes.values().copied().collect();
            times.sort();
            let Some(first) = times.first().copied() else {
                continue;
            };
            let ms = |t: &Instant| t.saturating_duration_since(first).as_secs_f64() * 1_000.0;
            // Nodes that never had it count as having it at the end.
            let never = n.saturating_sub(times.len()) as f64 * ms(&Instant::now());
            node_delay.push((times.iter().map(ms).sum::<f64>() + never) / n as f64);
            for (slot, fraction) in propagation.iter_mut().zip([0.5, 0.9, 1.0]) {
                let need = ((fraction * n as f64).ceil() as usize).max(1);
                if let Some(t) = times.get(need - 1) {
                    slot.push(t.saturating_duration_since(first).as_secs_f64() * 1_000.0);
                }
            }
        }
        let found = blocks.len().saturating_sub(1) as u64;
        let best_height = s.reference.height();
        let stale = found.saturating_sub(best_height);
        let mut propagation_ms = BTreeMap::new();
        for (name, values) in ["50%", "90%", "100%"].iter().zip(propagation.iter()) {
            propagation_ms.insert((*name).to_string(), Summary::of(values.clone()));
        }
        let latency = match (&self.opts.regions, &self.opts.latency) {
            (Some(r), _) => format!("regions: {}", r.names.join(", ")),
            (None, Latency::Fixed(d)) => format!("fixed {} ms", d.as_millis()),
            (None, Latency::Uniform(a, b)) => {
                format!("uniform {}..{} ms", a.as_millis(), b.as_millis())
            }
            (None, Latency::Regions(_)) => "regions".to_string(),
        };
        let reorg_count = s.reorgs.values().sum();
        let max_depth = s.reorgs.keys().next_back().copied().unwrap_or(0);
        let load = &s.load;
        let report = Report {
            seed: self.opts.seed,
            nodes: n,
            block_interval_s: round3(self.opts.block_interval.as_secs_f64()),
            latency,
            stop: self.opts.stop,
            faults: self.opts.faults,
            main_phase_s,
            simulated_s: self.now_s(),
            blocks: BlockStats {
                found,
                best_height,
                stale,
                stale_rate: if found == 0 {
                    0.0
                } else {
                    (stale as f64 / found as f64 * 1e6).round() / 1e6
                },
            },
            propagation_ms,
            node_delay_ms: Summary::of(node_delay),
            reorgs: Reorgs {
                count: reorg_count,
                max_depth,
                depth_histogram: s.reorgs.clone(),
            },
            transactions: TxStats {
                submitted: load.submitted,
                confirmed: load.confirmed,
                refused: load.refused.clone(),
                by_kind: load
                    .by_kind
                    .iter()
                    .map(|(k, v)| ((*k).to_string(), *v))
                    .collect(),
                confirmation_ms: Summary::of(
                    load.latencies
                        .iter()
                        .map(|d| d.as_secs_f64() * 1_000.0)
                        .collect(),
                ),
            },
            bytes_sent_per_node: Summary::of(
                self.net
                    .stats()
                    .iter()
                    .map(|h| h.bytes_sent as f64)
                    .collect(),
            ),
            fault_events: s.fault_events.clone(),
            settled_after_heal_s: settled_after,
            settled_height: s.settled.map_or(0, |(h, _)| h),
            violation: s.violation.clone(),
        };
        Outcome {
            report,
            propagation,
            tree,
        }
    }
}

//! What a run depends on: [`SimOptions`] and its parts. The same options
//! and seed give the same run.

use std::time::Duration;

use serde::Serialize;

use crate::cpu::CostModel;
use crate::net::Latency;

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

/// `x` rounded to three decimals, so reports stay short and stable.
pub(crate) fn round3(x: f64) -> f64 {
    (x * 1_000.0).round() / 1_000.0
}

pub(crate) fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
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
    /// The preset's name (`bitcoin-2019`, `bitcoin-2015`), for the report.
    pub name: &'static str,
    /// Region names, for the report.
    pub names: Vec<&'static str>,
    /// The share of nodes in each region.
    pub share: Vec<f64>,
    /// Upload bandwidth of a node in each region, bits per second.
    pub upload_bps: Vec<u64>,
    /// Mean one-way latency between regions, milliseconds.
    pub latency_ms: Vec<Vec<u64>>,
}

/// SimBlock's six regions.
const SIMBLOCK_REGIONS: [&str; 6] = [
    "north_america",
    "europe",
    "south_america",
    "asia_pacific",
    "japan",
    "australia",
];

/// The Bitcoin network as SimBlock models it (its 2019 parameters): six
/// regions, the share of nodes in each, their upload bandwidth and the
/// mean latency between them. Source: SimBlock's `NetworkConfiguration`
/// (Aoki et al., "SimBlock: A Blockchain Network Simulator", 2019).
pub fn bitcoin_regions() -> Regions {
    Regions {
        name: "bitcoin-2019",
        names: SIMBLOCK_REGIONS.to_vec(),
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

/// The Bitcoin network of 2015 as SimBlock models it: the same six
/// regions with SimBlock's 2015 figures, `REGION_DISTRIBUTION_BITCOIN_2015`,
/// `UPLOAD_BANDWIDTH_2015` and `LATENCY_2015` of its
/// `NetworkConfiguration` (Aoki et al. 2019, who give where each figure
/// was measured). The nearest published set to the network of 2016.
pub fn bitcoin_regions_2015() -> Regions {
    Regions {
        name: "bitcoin-2015",
        names: SIMBLOCK_REGIONS.to_vec(),
        share: vec![0.3869, 0.5159, 0.0113, 0.0574, 0.0119, 0.0166],
        upload_bps: vec![
            4_700_000, 8_100_000, 1_800_000, 5_300_000, 3_400_000, 5_200_000,
        ],
        latency_ms: vec![
            vec![36, 119, 255, 310, 154, 208],
            vec![119, 12, 221, 242, 266, 350],
            vec![255, 221, 137, 347, 256, 269],
            vec![310, 242, 347, 99, 172, 278],
            vec![154, 266, 256, 172, 9, 163],
            vec![208, 350, 269, 278, 163, 22],
        ],
    }
}

/// Faults injected during the main phase (the swarm).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Faults {
    /// Mean time between fault events (a Poisson process).
    #[serde(serialize_with = "secs")]
    pub mean_gap: Duration,
    /// Also the store's faults: a failed commit (the node stops, and
    /// restarts later) and slow commits. Off by default, so a swarm seed
    /// without them draws the schedule (and writes the report) it drew
    /// before they existed; absent from the report when off.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub store: bool,
    /// Byzantine hosts beside the nodes (`byzantine.rs`): they run no node,
    /// speak the protocol to the nodes and misbehave. Absent from the report
    /// when 0, so a swarm without them writes the report it wrote before.
    #[serde(skip_serializing_if = "is_zero")]
    pub byzantine: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A selfish mining pool among the nodes (`selfish.rs`, Eyal and Sirer's
/// strategy SM1): node 0 runs the real node, and the pool's miner, not
/// the node's, finds blocks and decides when to publish them.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Selfish {
    /// The pool's share of the hash power, α (between 0 and 0.5).
    pub power: f64,
    /// How many honest nodes the pool's node dials; it takes no inbound
    /// connection, so these are all its peers.
    pub peers: usize,
    /// The one-way latency of every link of the pool's host, in
    /// milliseconds (`None`: drawn as any host's): a pool that hears of
    /// honest blocks early.
    pub link_ms: Option<u64>,
}

/// An eclipse attack on the last `victims` nodes (`eclipse.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Eclipse {
    /// Attacker hosts: IP addresses, network hosts after the nodes.
    pub hosts: usize,
    /// Attacker addresses: ports spread over the hosts (at least `hosts`).
    pub addrs: usize,
    /// Nodes attacked: the last ones.
    pub victims: usize,
    /// Mean uptime of the other honest nodes (each restarts now and then).
    #[serde(serialize_with = "secs")]
    pub churn: Duration,
    /// The attacker's share of the hash power, for its private chain.
    pub power: f64,
    /// How deep the victim must see the double-spent payment.
    pub confirmations: u64,
}

/// Each node's simulated processor (`cpu.rs`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Processor {
    /// Cores per node.
    pub cores: usize,
    /// How fast, as a factor of the reference machine (0.5: half as
    /// fast, every cost doubled).
    pub speed: f64,
    /// The cost table: `reference`, or the file it was read from.
    pub model: String,
    /// Its costs.
    #[serde(skip)]
    pub costs: CostModel,
}

impl Processor {
    /// One core of the reference machine.
    pub fn reference() -> Processor {
        Processor {
            cores: 1,
            speed: 1.0,
            model: "reference".to_string(),
            costs: CostModel::reference(),
        }
    }
}

/// Everything a run depends on. The same options give the same run.
#[derive(Clone, Debug, PartialEq)]
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
    /// Each node's processor; `None`: work costs no simulated time (the
    /// processors of infinite speed of simulators such as Shadow).
    pub cpu: Option<Processor>,
    /// The mean size of a block, in bytes, reached by filler load: memo
    /// transfers ([`escrow::Payload::TransferMemo`]) arriving at
    /// `block_size` bytes per block interval, on top of `tx_rate`. `None`:
    /// blocks hold only what `tx_rate` sends.
    pub block_size: Option<u64>,
    /// How long a silent connection waits before its node pings it
    /// ([`NodeConfig::ping_interval`]): the live node's 15 s by default;
    /// Bitcoin Core's 2 minutes in the Bitcoin setups.
    pub ping_interval: Duration,
    /// How long a connection may stay silent before its node closes it
    /// ([`NodeConfig::idle_timeout`]): the live node's 45 s by default.
    pub idle_timeout: Duration,
    /// How nodes relay new blocks ([`NodeConfig::relay`]): compact blocks
    /// by default, as the live node; `Legacy` for announce, request, block.
    pub relay: p2p_node::Relay,
    /// A selfish mining pool at node 0; `None`: every node is honest.
    pub selfish: Option<Selfish>,
    /// An eclipse attack; `None`: no attacker.
    pub eclipse: Option<Eclipse>,
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
            cpu: Some(Processor::reference()),
            block_size: None,
            ping_interval: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(45),
            relay: p2p_node::Relay::Compact,
            selfish: None,
            eclipse: None,
        }
    }
}

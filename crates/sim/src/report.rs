//! What a run reports: the [`Report`] (simulated results only, the same
//! bytes for the same seed and options) and the data behind the pictures
//! (`measure.rs` computes both from what the watchers recorded).

use std::collections::BTreeMap;

use chain_core::BlockHash;
use serde::Serialize;

pub(crate) use crate::options::round3;
use crate::options::{Faults, Processor, Stop};

/// A broken check: which, where, when.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Violation {
    /// The check: `supply`, `contracts`, `settled`, `validity`,
    /// `durability` or `liveness`.
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

/// How blocks were relayed: the compact block counters of every node as
/// it ended the run (a node restarted in a swarm counts from its restart).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RelayStats {
    /// `compact` or `legacy`.
    pub mode: String,
    /// Compact blocks received, over all nodes.
    pub compact_received: u64,
    /// Of those, rebuilt with no round trip.
    pub rebuilt_at_once: u64,
    /// Rebuilt after asking for missing transactions.
    pub rebuilt_after_asking: u64,
    /// Given up on (the whole block asked for).
    pub failed: u64,
    /// Bytes of compact blocks received, per node and best-chain block.
    pub compact_bytes_per_node_per_block: f64,
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
    /// The standard error of `stale_rate` from the number of blocks
    /// found, `sqrt(rate × (1 − rate) / found)` (each block stale or not,
    /// independently: stale blocks cluster, so the real spread is larger).
    pub stale_rate_se: f64,
    /// The sizes of the final best chain's blocks after genesis, in bytes
    /// (their encoding, as carried and hashed).
    pub bytes: Summary,
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
    /// The fees the confirmed transactions paid, and their confirmation
    /// times by fee rate.
    pub fees: FeeStats,
}

/// Fees of the load, and what a higher fee rate bought.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FeeStats {
    /// The fees of the confirmed transactions, in coins.
    pub paid: u64,
    /// By fee rate: confirmation times of the transactions signed at a
    /// rate from `rate_from` to `rate_to` coins per kB.
    pub by_rate: Vec<FeeBucket>,
}

/// The confirmations of one band of fee rates.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FeeBucket {
    /// The lowest rate of the band, coins per kB.
    pub rate_from: u64,
    /// The highest, coins per kB.
    pub rate_to: u64,
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
    /// Each node's simulated processor (`None`: work cost no time).
    pub cpu: Option<Processor>,
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
    /// How blocks were relayed.
    pub relay: RelayStats,
    /// Fault events injected, by kind.
    pub fault_events: BTreeMap<String, u64>,
    /// Seconds from the heal until every node agreed, if they did.
    pub settled_after_heal_s: Option<f64>,
    /// The highest block every node had with `SETTLED_DEPTH` (2) blocks on
    /// top of it.
    pub settled_height: u64,
    /// The selfish pool's figures (`selfish.rs`); absent without a pool,
    /// so a run without one writes the report it wrote before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selfish: Option<SelfishReport>,
    /// The eclipse's figures (`eclipse.rs`); absent without an attacker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eclipse: Option<EclipseReport>,
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
    /// Nodes that stopped on a failed commit (store faults only; not in
    /// the report, whose bytes stay those of a run without them).
    pub store_stops: u64,
    /// Commits that took time (store faults only; not in the report).
    pub slow_commits: u64,
}

/// The selfish pool's figures in the report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SelfishReport {
    /// The options: the pool's share of the hash power (α), the honest
    /// nodes it dials, its links' latency.
    pub power: f64,
    /// Honest nodes the pool's node dials.
    pub peers: usize,
    /// Its links' one-way latency, ms, if fixed.
    pub link_ms: Option<u64>,
    /// The pool's share of the final best chain's blocks after genesis:
    /// its relative revenue.
    pub revenue: f64,
    /// The standard error of `revenue`, by batch means over 20 stretches
    /// of the best chain.
    pub revenue_se: f64,
    /// The honest nodes' share, `1 − revenue`.
    pub honest_share: f64,
    /// Blocks the pool found, published or not.
    pub pool_found: u64,
    /// Pool blocks on the final best chain.
    pub pool_best: u64,
    /// Blocks the honest nodes found.
    pub honest_found: u64,
    /// Honest blocks on the final best chain.
    pub honest_best: u64,
    /// Blocks found by anyone (the pool's never published included) not
    /// on the final best chain, over all found.
    pub stale_rate: f64,
    /// Races decided by an honest block: the pool's published block and
    /// an honest one at one height, and the next block found by an honest
    /// miner on either.
    pub races_decided_by_honest: u64,
    /// γ: the share of those honest blocks that were mined on the pool's
    /// block (`None` with no such race).
    pub gamma: Option<f64>,
    /// Its standard error, `sqrt(γ (1 − γ) / races)`.
    pub gamma_se: Option<f64>,
    /// Blocks that every node had with two blocks on top (settled, in a
    /// run without a pool) and that a release of the pool's later undid.
    pub settled_lost: u64,
    /// Eyal and Sirer's revenue for α and the measured γ (γ = 0 with no
    /// race measured), for comparison.
    pub closed_form_revenue: f64,
}

/// Eyal and Sirer's relative revenue of a selfish pool of power `alpha`
/// whose race blocks win a share `gamma` of the honest power (their
/// equation 8).
pub fn closed_form_revenue(alpha: f64, gamma: f64) -> f64 {
    let a = alpha;
    let num = a * (1.0 - a).powi(2) * (4.0 * a + gamma * (1.0 - 2.0 * a)) - a.powi(3);
    let den = 1.0 - a * (1.0 + (2.0 - a) * a);
    num / den
}

/// The eclipse's figures in the report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EclipseReport {
    /// Attacker hosts (IP addresses).
    pub hosts: usize,
    /// Attacker addresses (ports over those hosts).
    pub addrs: usize,
    /// Victims attacked.
    pub victims: usize,
    /// Mean uptime of the other honest nodes, seconds.
    pub churn_s: f64,
    /// Victims eclipsed (every peer an attacker's) during the main phase.
    pub eclipsed: usize,
    /// `eclipsed / victims`.
    pub eclipsed_share: f64,
    /// Seconds from the start until each victim was first eclipsed (`None`:
    /// never), by victim.
    pub time_to_eclipse_s: Vec<Option<f64>>,
    /// By victim: the share of the checks (every 10 s) that found it
    /// eclipsed.
    pub eclipsed_time_share: Vec<f64>,
    /// By victim: its longest eclipse, seconds (to the checks' grain).
    pub longest_eclipse_s: Vec<f64>,
    /// By victim: the mean share of its outbound peers that were the
    /// attacker's, over the checks.
    pub outbound_held_share: Vec<f64>,
    /// Connections the victims accepted from, or made to, the attacker.
    pub attacker_connections: u64,
    /// The double spend against the first victim eclipsed, if one was.
    pub double_spend: Option<DoubleSpend>,
}

/// The double spend against one eclipsed victim.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DoubleSpend {
    /// The victim.
    pub victim: usize,
    /// When it was eclipsed, seconds from the start.
    pub eclipsed_at_s: f64,
    /// When the victim showed the payment `confirmations` deep (`None`:
    /// not before the main phase ended).
    pub confirmed_at_s: Option<f64>,
    /// How deep the victim saw the payment.
    pub confirmations: u64,
    /// The victim saw the contract released to its owner then.
    pub victim_saw_release: bool,
    /// The payment to the victim's owner is not on the final best chain,
    /// and the conflicting one is.
    pub payment_reverted: bool,
    /// The contract is not released on the final best chain (it is in
    /// dispute there instead).
    pub release_reverted: bool,
}

//! What a run reports: the [`Report`] (simulated results only, the same
//! bytes for the same seed and options), the data behind the pictures,
//! and how both are computed from what the watchers recorded.

use std::collections::BTreeMap;

use chain_core::BlockHash;
use escrow::Tx;
use serde::Serialize;
use tokio::time::Instant;

use super::net::Latency;
use super::options::{Faults, Stop};
use super::world::{World, lock};

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

/// `x` rounded to three decimals, so reports stay short and stable.
pub(crate) fn round3(x: f64) -> f64 {
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

impl World {
    pub(super) fn report(&self, main_phase_s: f64, settled_after: Option<f64>) -> Outcome {
        let mut s = lock(&self.shared);
        let n = self.opts.nodes;
        // The tree, in a stable order.
        let best: std::collections::BTreeSet<BlockHash> =
            s.reference.best_chain().iter().copied().collect();
        let mut blocks: Vec<_> = s
            .reference
            .headers()
            .filter_map(|(hash, _)| s.reference.block(hash))
            .map(|b| (b.header.height, b.hash(), b.header.parent, b))
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
                    if entry.get(&node).is_some_and(|seen| seen <= t) {
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

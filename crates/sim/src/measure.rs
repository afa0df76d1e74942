//! The report of a run computed from what the watchers recorded: the
//! block tree, propagation times, reorganisations, the load's figures.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use chain_core::BlockHash;
use escrow::Tx;
use tokio::time::Instant;

use crate::net::Latency;
use crate::options::round3;
use crate::report::{BlockStats, Outcome, RelayStats, Reorgs, Report, Summary, TreeBlock, TxStats};
use crate::world::{World, lock};

impl World {
    /// The nodes' compact block counters, summed (`report.relay`); the
    /// per-block figure is filled in by [`World::report`].
    pub(super) async fn relay_counts(&self) -> RelayStats {
        let mut r = RelayStats {
            mode: match self.opts.relay {
                p2p_node::Relay::Compact => "compact",
                p2p_node::Relay::Legacy => "legacy",
            }
            .to_string(),
            ..RelayStats::default()
        };
        let mut bytes = 0u64;
        for handle in self.handles().into_iter().flatten() {
            if let Ok(c) = handle.query(|v| v.metrics.compact).await {
                r.compact_received += c.received;
                r.rebuilt_at_once += c.rebuilt_at_once;
                r.rebuilt_after_asking += c.rebuilt_after_asking;
                r.failed += c.failed;
                bytes += c.bytes_received;
            }
        }
        r.compact_bytes_per_node_per_block = bytes as f64;
        r
    }

    pub(super) fn report(
        &self,
        main_phase_s: f64,
        settled_after: Option<f64>,
        mut relay: RelayStats,
    ) -> Outcome {
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
        let mut block_bytes = Vec::new();
        let genesis = self.genesis.network_id();
        for hash in s.reference.best_chain() {
            if *hash == genesis {
                continue;
            }
            if let Some(block) = s.reference.block(hash) {
                block_bytes.push(wire::encoded_len(&*block) as f64);
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
            (Some(r), _) => format!("regions {}: {}", r.name, r.names.join(", ")),
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
            cpu: self.opts.cpu.clone(),
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
                stale_rate_se: stale_rate_se(stale, found),
                bytes: Summary::of(block_bytes),
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
                fees: crate::report::FeeStats {
                    paid: load.fees_confirmed,
                    by_rate: load
                        .latencies_by_rate
                        .iter()
                        .map(|(bucket, latencies)| crate::report::FeeBucket {
                            rate_from: 1 << bucket,
                            rate_to: (2u64 << bucket) - 1,
                            confirmation_ms: Summary::of(
                                latencies
                                    .iter()
                                    .map(|d| d.as_secs_f64() * 1_000.0)
                                    .collect(),
                            ),
                        })
                        .collect(),
                },
            },
            bytes_sent_per_node: Summary::of(
                self.net
                    .stats()
                    .iter()
                    .take(n)
                    .map(|h| h.bytes_sent as f64)
                    .collect(),
            ),
            relay: {
                let per = (n as f64 * best_height.max(1) as f64).max(1.0);
                relay.compact_bytes_per_node_per_block =
                    round3(relay.compact_bytes_per_node_per_block / per);
                relay
            },
            fault_events: s.fault_events.clone(),
            settled_after_heal_s: settled_after,
            settled_height: s.settled.map_or(0, |(h, _)| h),
            selfish: self.opts.selfish.map(|pool| {
                let first_seen = s
                    .stamps
                    .iter()
                    .filter_map(|(hash, nodes)| nodes.values().min().map(|t| (*hash, *t)))
                    .collect();
                crate::selfish::report(pool, &tree, &first_seen, &s.pool)
            }),
            eclipse: crate::eclipse::report(&self.opts, &s.attack, self.start, s.reference.state()),
            violation: s.violation.clone(),
        };
        Outcome {
            report,
            propagation,
            tree,
            store_stops: s.store_stops,
            slow_commits: self.slow_commits.load(Ordering::Relaxed),
        }
    }
}

/// The standard error of a stale rate of `stale` blocks out of `found`
/// (binomial), rounded to six decimals; 0 for no blocks.
fn stale_rate_se(stale: u64, found: u64) -> f64 {
    if found == 0 {
        return 0.0;
    }
    let p = stale as f64 / found as f64;
    ((p * (1.0 - p) / found as f64).sqrt() * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::stale_rate_se;

    #[test]
    fn the_stale_rates_error_shrinks_with_the_blocks_found() {
        assert_eq!(stale_rate_se(0, 0), 0.0);
        assert_eq!(stale_rate_se(0, 100), 0.0);
        // 10 of 100: sqrt(0.1 × 0.9 / 100) = 0.03.
        assert_eq!(stale_rate_se(10, 100), 0.03);
        assert_eq!(stale_rate_se(40, 400), 0.015);
    }
}

//! `cargo xtask bench`: runs the criterion benchmarks and prints the figures.
//!
//! Criterion measures; this task only runs it and reads what it wrote
//! (`target/criterion/<group>/<id>/new/benchmark.json` for the throughput per
//! iteration, `estimates.json` for the median time per iteration), then
//! prints one line per figure:
//!
//! ```text
//! bench: mining.ceiling = 25.4 MH/s
//! bench: mining.naive.1t = 12.3 MH/s (ratio 0.48)
//! bench: mining.midstate.1t = 47.0 MH/s (ratio 1.85)
//! bench: mining.midstate.all = 93.1 MH/s (2 threads, ratio 3.67)
//! bench: ledger.apply_block = 124000 tx/s (batch, 2 threads, 1.95 x one thread)
//! bench: ledger.apply_block.batch.1t = 63700 tx/s
//! bench: ledger.apply_block.distinct = 70000 tx/s (2 threads)
//! bench: ledger.apply_block.single = 23400 tx/s
//! bench: ledger.threads = 1: 63700, 2: 124000 tx/s
//! bench: wire.block_roundtrip = 350.0 MB/s
//! bench: net.sync = 29000 blocks/s
//! bench: net.propagation_p50 = 0.30 ms
//! bench: store.commit = 360 us (a coinbase-only block; 330004 bytes: 3.22 ms, 8.7 ns/byte more: the simulator's commit costs)
//! bench: mempool.select = 7.2 ms (a block from a full pool of 10,000; refusing a flood: 14.5 us each; evicting: 27.6 ms; replacing: 32.7 ms)
//! ```
//!
//! Ratios are against `mining.ceiling` from the same run: on a noisy machine
//! ratios measured together are more telling than absolute rates.
//!
//! Then the node at scale ([`node`]): release `p2p-node` processes measured
//! through their API, five more lines (`node.mine_rate`, `node.restart`,
//! `node.rss`, `net.tx_throughput`, `net.api_p99`).
//!
//! Options: `--quick` (short runs: CI), `node` or `--node-only` (only the
//! node benchmarks), `--blocks N` (the restart chain's length, 100,000 by
//! default, 2,000 with `--quick`), `--chain-dir DIR` (keep and reuse the
//! restart chain there), `--only sim` (only the simulator at scale,
//! [`sim`]: `sim.day` and `sim.memory`, `--sim-nodes N` nodes),
//! `--only sync-full` (only a fresh node's sync of full blocks,
//! `node/sync_full.rs`: never part of the default run).

mod node;
mod sim;

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

/// One criterion bench target to run.
struct Suite {
    package: &'static str,
    bench: &'static str,
}

const SUITES: &[Suite] = &[
    Suite {
        package: "chain-core",
        bench: "mining",
    },
    Suite {
        package: "escrow",
        bench: "ledger",
    },
    Suite {
        package: "wire",
        bench: "codec",
    },
    Suite {
        package: "p2p-node",
        bench: "net",
    },
    Suite {
        package: "p2p-node",
        bench: "store",
    },
    Suite {
        package: "p2p-node",
        bench: "mempool",
    },
];

/// `cargo xtask bench --help`.
const USAGE: &str = "Runs the criterion benchmarks and prints one `bench:` line per figure, then the node at scale (docs/PERFORMANCE.md)

Usage: cargo xtask bench [OPTIONS] [node]

Options:
      --quick          short runs (CI uses them); the restart chain is 2,000 blocks
      node, --node-only
                       only the node at scale: release node processes through their API
      --blocks <N>     the restart chain's length (default 100,000; 2,000 with --quick)
      --chain-dir <DIR>
                       keep and reuse the restart chain in DIR
      --block-interval <MS>
                       the four nodes' --block-interval in net.tx_throughput
                       (default 500; 0: mine as fast as the dev target allows)
      --only <FIGURE>  only one node figure: mine (node.mine_rate), restart
                       (node.restart and node.rss) or net (net.tx_throughput
                       and net.api_p99); implies node. Or sim: only the
                       simulator at scale (sim.day, sim.memory). Or
                       sync-full: a fresh node syncing chains of full
                       blocks (100 and 500; 10 and 30 with --quick) from 1
                       and 3 peers, against ledger.apply_block.distinct
                       measured in the same run (sync_full.*; only run
                       when named)
      --sim-nodes <N>  the simulator's nodes with --only sim (default 1,000;
                       200 with --quick)
  -h, --help           print this help";

/// Runs every suite, then prints the figures; then the node benchmarks
/// ([`node`]).
pub fn run(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let mut quick = false;
    let mut node_only = false;
    let mut sim_only = false;
    let mut sim_nodes = None;
    let mut node = node::Options::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            "--quick" => quick = true,
            "node" | "--node-only" => node_only = true,
            "--blocks" => {
                let n = args
                    .next()
                    .with_context(|| format!("--blocks needs a number\n\n{USAGE}"))?;
                node.blocks = Some(n.parse().with_context(|| format!("--blocks {n}"))?);
            }
            "--chain-dir" => {
                node.chain_dir = Some(
                    args.next()
                        .with_context(|| format!("--chain-dir needs a directory\n\n{USAGE}"))?
                        .into(),
                );
            }
            "--block-interval" => {
                let n = args
                    .next()
                    .with_context(|| format!("--block-interval needs milliseconds\n\n{USAGE}"))?;
                node.block_interval_ms =
                    Some(n.parse().with_context(|| format!("--block-interval {n}"))?);
            }
            "--only" if args.as_slice().first().map(String::as_str) == Some("sim") => {
                args.next();
                sim_only = true;
            }
            "--sim-nodes" => {
                let n = args
                    .next()
                    .with_context(|| format!("--sim-nodes needs a number\n\n{USAGE}"))?;
                sim_nodes = Some(
                    n.parse::<usize>()
                        .with_context(|| format!("--sim-nodes {n}"))?,
                );
            }
            "--only" => {
                let figure = args
                    .next()
                    .with_context(|| format!("--only needs a figure\n\n{USAGE}"))?;
                node.only = Some(node::Figure::parse(figure).with_context(|| {
                    format!("--only {figure}: not mine, restart, net, sim or sync-full\n\n{USAGE}")
                })?);
                node_only = true;
            }
            other => bail!("unknown bench option `{other}`\n\n{USAGE}"),
        }
    }
    node.quick = quick;
    if sim_only {
        let nodes = sim_nodes.unwrap_or(if quick { 200 } else { 1_000 });
        for line in sim::figures(root, nodes)? {
            println!("{line}");
        }
        return Ok(());
    }
    if !node_only {
        criterion_suites(root, quick)?;
    }
    node::run(root, &node)?;
    Ok(())
}

/// Runs the criterion suites, all in one `cargo bench` (one build, one
/// feature set for the four packages: built one at a time, a package's
/// dependencies would be rebuilt whenever the next package's
/// dev-dependencies unify their features differently), and prints their
/// figures.
fn criterion_suites(root: &Path, quick: bool) -> anyhow::Result<()> {
    let mut args = vec!["bench"];
    for suite in SUITES {
        args.extend(["-p", suite.package]);
    }
    for suite in SUITES {
        args.extend(["--bench", suite.bench]);
    }
    args.push("--");
    if quick {
        args.extend(["--quick", "--warm-up-time", "1", "--measurement-time", "2"]);
    }
    let names: Vec<String> = SUITES
        .iter()
        .map(|s| format!("{} ({})", s.package, s.bench))
        .collect();
    eprintln!("xtask: running the benchmarks of {}", names.join(", "));
    let criterion = cargo_bench(root, &args)?;
    for line in report(&criterion)? {
        println!("{line}");
    }
    Ok(())
}

/// Reads one of criterion's JSON outputs for `group/id`.
fn read_json(
    criterion: &Path,
    group: &str,
    id: &str,
    name: &str,
) -> anyhow::Result<serde_json::Value> {
    let path = criterion.join(group).join(id).join("new").join(name);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("no criterion output at {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

/// The median time per iteration of one criterion benchmark, in ns.
fn median_ns(criterion: &Path, group: &str, id: &str) -> anyhow::Result<f64> {
    let median = read_json(criterion, group, id, "estimates.json")?["median"]["point_estimate"]
        .as_f64()
        .with_context(|| format!("{group}/{id} has no median estimate"))?;
    if median <= 0.0 {
        bail!("{group}/{id} has a non-positive median time");
    }
    Ok(median)
}

/// Elements (or bytes) per second of one criterion benchmark: the
/// throughput per iteration over the median time per iteration.
/// Runs `cargo ARGS` (a `cargo bench`) in `root`; returns the folder
/// criterion wrote its results to.
pub(crate) fn cargo_bench(root: &Path, args: &[&str]) -> anyhow::Result<std::path::PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let status = Command::new(&cargo)
        .current_dir(root)
        .args(args)
        .status()
        .with_context(|| format!("could not run cargo {}", args.join(" ")))?;
    if !status.success() {
        bail!("cargo {} failed with {status}", args.join(" "));
    }
    Ok(crate::build::target_dir(root).join("criterion"))
}

fn rate(criterion: &Path, group: &str, id: &str) -> anyhow::Result<f64> {
    let benchmark = read_json(criterion, group, id, "benchmark.json")?;
    let throughput = &benchmark["throughput"];
    let elements = throughput["Elements"]
        .as_f64()
        .or_else(|| throughput["Bytes"].as_f64())
        .with_context(|| format!("{group}/{id} has no throughput"))?;
    Ok(elements / (median_ns(criterion, group, id)? * 1e-9))
}

/// The report lines, in the project's stable form.
fn report(criterion: &Path) -> anyhow::Result<Vec<String>> {
    let mhs = |group: &str, id: &str| rate(criterion, group, id).map(|r| r / 1e6);
    let ceiling = mhs("mining", "ceiling")?;
    let naive = mhs("mining", "naive.1t")?;
    let one = mhs("mining", "midstate.1t")?;
    let all = mhs("mining", "midstate.all")?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let batch = rate(criterion, "ledger", "apply_block")?;
    let batch_1t = rate(criterion, "ledger", "apply_block.batch.1t")?;
    let distinct = rate(criterion, "ledger", "apply_block.distinct")?;
    let single = rate(criterion, "ledger", "apply_block.single")?;
    let mut scaling = Vec::new();
    for t in [1, 2, 4, 8, 16].into_iter().filter(|&t| t <= threads) {
        let r = rate(criterion, "ledger", &format!("threads.{t}"))?;
        scaling.push(format!("{t}: {r:.0}"));
    }
    let wire = rate(criterion, "wire", "block_roundtrip")? / 1e6;
    let sync = rate(criterion, "net", "sync")?;
    let propagation_ms = median_ns(criterion, "net", "propagation")? / 1e6;
    let commit_us = median_ns(criterion, "store", "commit_empty")? / 1e3;
    let big_us = median_ns(criterion, "store", "commit_2000tx")? / 1e3;
    let big_bytes = read_json(criterion, "store", "commit_2000tx", "benchmark.json")?["throughput"]
        ["Bytes"]
        .as_f64()
        .context("store/commit_2000tx has no byte count")?;
    let per_byte_ns = (big_us - commit_us) * 1e3 / big_bytes.max(1.0);
    let select_ms = median_ns(criterion, "mempool", "select")? / 1e6;
    let refuse_us = median_ns(criterion, "mempool", "refuse_full")? / 1e3;
    let evict_ms = median_ns(criterion, "mempool", "evict")? / 1e6;
    let replace_ms = median_ns(criterion, "mempool", "replace")? / 1e6;
    Ok(vec![
        format!("bench: mining.ceiling = {ceiling:.1} MH/s"),
        format!(
            "bench: mining.naive.1t = {naive:.1} MH/s (ratio {:.2})",
            naive / ceiling
        ),
        format!(
            "bench: mining.midstate.1t = {one:.1} MH/s (ratio {:.2})",
            one / ceiling
        ),
        format!(
            "bench: mining.midstate.all = {all:.1} MH/s ({threads} threads, ratio {:.2})",
            all / ceiling
        ),
        format!(
            "bench: ledger.apply_block = {batch:.0} tx/s (batch, {threads} threads, {:.2} x one thread)",
            batch / batch_1t
        ),
        format!("bench: ledger.apply_block.batch.1t = {batch_1t:.0} tx/s"),
        format!("bench: ledger.apply_block.distinct = {distinct:.0} tx/s ({threads} threads)"),
        format!("bench: ledger.apply_block.single = {single:.0} tx/s"),
        format!("bench: ledger.threads = {} tx/s", scaling.join(", ")),
        format!("bench: wire.block_roundtrip = {wire:.1} MB/s"),
        format!("bench: net.sync = {sync:.0} blocks/s"),
        format!("bench: net.propagation_p50 = {propagation_ms:.2} ms"),
        format!(
            "bench: store.commit = {commit_us:.0} us (a coinbase-only block; {big_bytes:.0} bytes: {:.2} ms, {per_byte_ns:.1} ns/byte more: the simulator's commit costs)",
            big_us / 1e3
        ),
        format!(
            "bench: mempool.select = {select_ms:.1} ms (a block from a full pool of 10,000; refusing a flood: {refuse_us:.1} us each; evicting: {evict_ms:.1} ms; replacing: {replace_ms:.1} ms)"
        ),
    ])
}

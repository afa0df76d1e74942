//! The node at scale: `p2p-node` processes (release build) measured through
//! their public interface, the command line and the HTTP API.
//!
//! `cargo xtask bench` runs these after the criterion suites;
//! `cargo xtask bench node` (or `--node-only`) runs only these. Lines:
//!
//! ```text
//! bench: node.mine_rate = 990 blocks/s (2000 blocks on a fresh node, --miner-threads 2: this machine's cores; 1 thread: 680 blocks/s; fsync bound 7000/s on ext4)
//! bench: node.restart = 4012.3 ms (100000 blocks, median of 5: 40.1 us/block, min 3950.0, max 4100.2)
//! bench: node.rss = 152.0 MB (100000 blocks, idle: 1.52 KB/block)
//! bench: net.tx_throughput = 5500 tx/s (4 nodes, --block-interval 500, 20000 of 20000 transfers from 1000 accounts applied on all four in 3.6 s, 7 blocks; signature bound 8500 tx/s: ...)
//! bench: net.api_p99 = 19.0 ms (under load: p50 1.0 ms, 20000 submissions, 16 at a time, in 3.4 s, 0 retried for a full mempool)
//! ```
//!
//! (the numbers above only show the form). `--only sync-full` runs
//! [`sync_full`] instead (a fresh node syncing chains of full blocks),
//! which no other run includes. How each is measured:
//!
//! - `node.mine_rate`: `POST /mine` of 2,000 blocks (two requests of the
//!   API's maximum, 1,000; 500 with `--quick`) on a fresh node with
//!   `--mine off` hashing with as many threads as the machine has cores
//!   (`--miner-threads`), blocks over the time until the answers; the
//!   detail gives the same with one thread (the node's default). Blocks
//!   are saved in batched commits, so the detail also gives the rate of
//!   `write + fdatasync` of 4 KiB in the same directory (the fastest of
//!   five rounds): the bound if every block were a commit of its own.
//! - `node.restart`: a data directory holding N empty blocks (100,000; 2,000
//!   with `--quick`; `--blocks N` to choose), made through `POST /mine` on a
//!   node of its own, then `p2p-node run` started on it several times: from
//!   the spawn until `GET /status` answers (with height N), the median.
//! - `node.rss`: `VmRSS` from `/proc/PID/status` of that node once started
//!   and idle for a second (the median over the restarts).
//! - `net.tx_throughput`: four nodes (`--mine pending`, one miner thread
//!   each, `--block-interval 500` unless `--block-interval MS` says
//!   otherwise) in a full mesh on a genesis that funds many accounts; every
//!   account's transfers, signed with the escrow library by `loadgen`
//!   (`crates/loadgen`, a release binary built with the node), are
//!   submitted by it to one of the four APIs (`POST /txs`) by 16
//!   concurrent requests (8 with `--quick`) of an async client on two
//!   threads, an account's in nonce order. The run ends when all four
//!   nodes have an empty mempool and the same tip; the figure is the
//!   transfers applied on all four (the sum of the accounts' nonces, read
//!   from every node) over the time from the first submission. The bound
//!   in the detail: each transfer costs one single signature check at
//!   admission and one share of a batch check in its block, on each of the
//!   four nodes, all on this machine's cores; both costs are measured in
//!   `loadgen` (the fastest of five rounds; release build, as the node).
//! - `net.api_p99`: the 99th percentile (and the median) of the
//!   `POST /txs` latencies of that run, accepted submissions only;
//!   submissions refused for a full mempool are retried and counted.
//!
//! Nodes listen on `127.0.0.1:0` for peers and for the API; each reports
//! the addresses it bound on its standard output (`p2p listening on ...`,
//! `api listening on http://...`), which is where these are read. The
//! token comes from `api.cookie` in the node's data directory. Every node
//! is stopped (SIGTERM, then SIGKILL) when its handle is dropped, on errors
//! too, and the temporary directories are removed.
//!
//! `--chain-dir DIR` keeps the restart chain in `DIR` and reuses it next
//! time (mining only what is missing): preparing 100,000 blocks through the
//! API takes minutes. Only reuse it with the same node version.

mod process;
mod sync_full;
mod throughput;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use process::{NodeProc, Spawn, http};

use crate::http::Client;

/// What the node benchmarks run with.
#[derive(Debug, Default)]
pub struct Options {
    /// The short version (CI).
    pub quick: bool,
    /// Blocks in the restart chain, instead of the default.
    pub blocks: Option<u64>,
    /// Where to keep (and reuse) the restart chain.
    pub chain_dir: Option<PathBuf>,
    /// Only this figure (`--only`), instead of all.
    pub only: Option<Figure>,
    /// The four nodes' `--block-interval` in `net.tx_throughput`, instead
    /// of the default.
    pub block_interval_ms: Option<u64>,
}

/// The node figures `--only` can pick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Figure {
    /// `node.mine_rate`.
    Mine,
    /// `node.restart` and `node.rss`.
    Restart,
    /// `net.tx_throughput` and `net.api_p99`.
    Net,
    /// `sync_full.*` ([`sync_full`]): only when asked for by name, never
    /// in the default run.
    SyncFull,
}

impl Figure {
    /// The figure named `name` on the command line.
    pub fn parse(name: &str) -> Option<Figure> {
        match name {
            "mine" => Some(Figure::Mine),
            "restart" => Some(Figure::Restart),
            "net" => Some(Figure::Net),
            "sync-full" => Some(Figure::SyncFull),
            _ => None,
        }
    }
}

/// The sizes of one run.
struct Plan {
    restart_blocks: u64,
    restarts: usize,
    mine_blocks: u64,
    fsyncs: usize,
    accounts: usize,
    txs_per_account: u64,
    submitters: usize,
    block_interval_ms: u64,
}

impl Plan {
    fn new(o: &Options) -> Plan {
        let mut plan = if o.quick {
            Plan {
                restart_blocks: 2_000,
                restarts: 3,
                mine_blocks: 500,
                fsyncs: 50,
                accounts: 200,
                txs_per_account: 10,
                submitters: 8,
                block_interval_ms: BLOCK_INTERVAL_MS,
            }
        } else {
            Plan {
                restart_blocks: 100_000,
                restarts: 5,
                mine_blocks: 2_000,
                fsyncs: 200,
                accounts: 1_000,
                txs_per_account: 20,
                submitters: 16,
                block_interval_ms: BLOCK_INTERVAL_MS,
            }
        };
        if let Some(n) = o.blocks {
            plan.restart_blocks = n;
        }
        if let Some(ms) = o.block_interval_ms {
            plan.block_interval_ms = ms;
        }
        plan
    }
}

/// The four nodes' `--block-interval` in `net.tx_throughput` (see
/// `docs/PERFORMANCE.md`: without one, nodes mining while transactions
/// wait at the dev target make hundreds of small blocks a second).
const BLOCK_INTERVAL_MS: u64 = 500;

/// Set by Ctrl-C or SIGTERM: the loops stop, and the nodes and
/// directories are cleaned up on the way out.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

fn check_interrupted() -> anyhow::Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}

/// The most blocks one `POST /mine` may ask for.
const MINE_MAX: u64 = 1_000;

/// Runs the node benchmarks; prints each `bench:` line as it is measured
/// and returns them all.
pub fn run(root: &Path, o: &Options) -> anyhow::Result<Vec<String>> {
    let plan = Plan::new(o);
    // The nodes stop on their own on a terminal's Ctrl-C (same process
    // group); the handler lets this process remove what it made.
    if ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst)).is_err() {
        eprintln!("xtask: no Ctrl-C handler: an interrupted run may leave its temporary directory");
    }
    let binaries = crate::build::release_binaries(root)?;
    let binary = binaries.node.as_path();
    let tmp = tempfile::Builder::new()
        .prefix("escrow-bench-")
        .tempdir()
        .context("cannot make a temporary directory")?;
    let mut lines = Vec::new();
    let mut emit = |line: String| {
        println!("{line}");
        lines.push(line);
    };
    let wanted = |f: Figure| o.only.is_none_or(|only| only == f);
    if wanted(Figure::Mine) {
        emit(mine_rate(binary, tmp.path(), &plan)?);
    }
    if wanted(Figure::Restart) {
        let (restart, rss) = restart(binary, tmp.path(), o, &plan)?;
        emit(restart);
        emit(rss);
    }
    if wanted(Figure::Net) {
        let (throughput, p99) =
            throughput::throughput(binary, &binaries.loadgen, tmp.path(), &plan)?;
        emit(throughput);
        emit(p99);
    }
    if o.only == Some(Figure::SyncFull) {
        let plan = sync_full::SyncPlan::new(o.quick);
        lines.extend(sync_full::sync_full(
            root,
            binary,
            &binaries.loadgen,
            tmp.path(),
            &plan,
        )?);
    }
    Ok(lines)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Rate of 4 KiB `write + fdatasync` in `dir`, per second: the fastest of
/// five rounds of `count / 5`.
fn fsync_rate(dir: &Path, count: usize) -> anyhow::Result<f64> {
    let path = dir.join("fsync-probe");
    let mut file = std::fs::File::create(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let page = [0u8; 4096];
    let per_round = (count / 5).max(1);
    let mut best = 0.0f64;
    for _ in 0..5 {
        let started = Instant::now();
        for _ in 0..per_round {
            file.write_all(&page)
                .with_context(|| format!("cannot write {}", path.display()))?;
            file.sync_data()
                .with_context(|| format!("cannot sync {}", path.display()))?;
        }
        best = best.max(per_round as f64 / started.elapsed().as_secs_f64());
    }
    drop(file);
    std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
    Ok(best)
}

/// The type of the file system that holds `dir` (the longest mount point
/// above it in `/proc/mounts`).
fn fs_type(dir: &Path) -> String {
    let Ok(mounts) = std::fs::read_to_string("/proc/mounts") else {
        return "an unknown file system".to_string();
    };
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, point, kind) = (f.next()?, f.next()?, f.next()?);
            dir.starts_with(point)
                .then(|| (point.len(), kind.to_string()))
        })
        .max()
        .map_or_else(|| "an unknown file system".to_string(), |(_, k)| k)
}

/// Mines until the node's height is `blocks`, `MINE_MAX` at a time.
fn mine_to(http: &Client, node: &NodeProc, blocks: u64) -> anyhow::Result<u64> {
    let mut height = node.status(http)?.height;
    let from = height;
    let started = Instant::now();
    let mut reported = Instant::now();
    let mut last = (0.0, 0);
    while height < blocks {
        check_interrupted()?;
        let n = (blocks - height).min(MINE_MAX);
        let batch = Instant::now();
        node.mine(http, n)?;
        last = (batch.elapsed().as_secs_f64(), n);
        height += n;
        if reported.elapsed() > Duration::from_secs(30) {
            reported = Instant::now();
            eprintln!(
                "xtask: mined {height} of {blocks} blocks ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
        }
    }
    if height > from {
        eprintln!(
            "xtask: mined blocks {from}..{height} at {:.0} blocks/s; the last {} at {:.0} blocks/s",
            (height - from) as f64 / started.elapsed().as_secs_f64(),
            last.1,
            last.1 as f64 / last.0
        );
    }
    node.status(http).map(|s| s.height)
}

fn mine_rate(binary: &Path, tmp: &Path, plan: &Plan) -> anyhow::Result<String> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let one = mine_rate_with(binary, tmp, plan, 1)?;
    let (rate, threads) = if cores > 1 {
        (mine_rate_with(binary, tmp, plan, cores)?, cores)
    } else {
        (one, 1)
    };
    let fsync = fsync_rate(tmp, plan.fsyncs)?;
    Ok(format!(
        "bench: node.mine_rate = {rate:.0} blocks/s ({} blocks on a fresh node, --miner-threads {threads}: this machine's cores; 1 thread: {one:.0} blocks/s; fsync bound {fsync:.0}/s on {})",
        plan.mine_blocks,
        fs_type(tmp)
    ))
}

/// Blocks a second of `POST /mine` on a fresh node hashing with `threads`
/// threads.
fn mine_rate_with(binary: &Path, tmp: &Path, plan: &Plan, threads: usize) -> anyhow::Result<f64> {
    eprintln!(
        "xtask: node.mine_rate: {} blocks on a fresh node, {threads} miner thread(s)",
        plan.mine_blocks
    );
    let http = http();
    let dir = tmp.join(format!("mine-{threads}"));
    let node = NodeProc::start(
        binary,
        &Spawn {
            data_dir: &dir,
            log: tmp.join(format!("mine-{threads}.log")),
            mine: "off",
            genesis: None,
            peers: &[],
            miner_threads: threads,
            block_interval_ms: 0,
        },
    )?;
    let started = Instant::now();
    let height = mine_to(&http, &node, plan.mine_blocks)?;
    Ok(height as f64 / started.elapsed().as_secs_f64())
}

fn restart(
    binary: &Path,
    tmp: &Path,
    o: &Options,
    plan: &Plan,
) -> anyhow::Result<(String, String)> {
    let http = http();
    let dir = match &o.chain_dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
            d.clone()
        }
        None => tmp.join("chain"),
    };
    eprintln!(
        "xtask: node.restart: preparing {} blocks in {} through POST /mine",
        plan.restart_blocks,
        dir.display()
    );
    let prepared = Instant::now();
    let blocks = {
        let node = NodeProc::start(
            binary,
            &Spawn {
                data_dir: &dir,
                log: tmp.join("chain.log"),
                mine: "off",
                genesis: None,
                peers: &[],
                miner_threads: 1,
                block_interval_ms: 0,
            },
        )?;
        mine_to(&http, &node, plan.restart_blocks)?
    };
    eprintln!(
        "xtask: node.restart: {blocks} blocks ready in {:.1} s; {} restarts",
        prepared.elapsed().as_secs_f64(),
        plan.restarts
    );
    let mut times = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..plan.restarts {
        check_interrupted()?;
        let started = Instant::now();
        let mut node = NodeProc::start(
            binary,
            &Spawn {
                data_dir: &dir,
                log: tmp.join("chain.log"),
                mine: "off",
                genesis: None,
                peers: &[],
                miner_threads: 1,
                block_interval_ms: 0,
            },
        )?;
        let status = loop {
            match node.status(&http) {
                Ok(s) => break s,
                Err(e) if started.elapsed() > Duration::from_secs(300) => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(1)),
            }
        };
        times.push(started.elapsed().as_secs_f64() * 1e3);
        if status.height != blocks {
            bail!(
                "the node restarted at height {}, not {blocks}",
                status.height
            );
        }
        std::thread::sleep(Duration::from_secs(1));
        rss.push(node.rss()? as f64 / 1e6);
        node.stop();
    }
    let (min, max) = times.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &t| {
        (lo.min(t), hi.max(t))
    });
    let restart_ms = median(&mut times);
    let rss_mb = median(&mut rss);
    let per_block = blocks.max(1) as f64;
    Ok((
        format!(
            "bench: node.restart = {restart_ms:.1} ms ({blocks} blocks, median of {}: {:.1} us/block, min {min:.1}, max {max:.1})",
            plan.restarts,
            restart_ms * 1e3 / per_block
        ),
        format!(
            "bench: node.rss = {rss_mb:.1} MB ({blocks} blocks, idle: {:.2} KB/block)",
            rss_mb * 1e3 / per_block
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_is_the_middle_value() {
        let mut values = vec![3.0, 1.0, 2.0];
        assert_eq!(median(&mut values), 2.0);
    }

    #[test]
    fn quick_is_small_and_blocks_overrides() {
        let quick = Plan::new(&Options {
            quick: true,
            ..Options::default()
        });
        let full = Plan::new(&Options::default());
        assert!(quick.restart_blocks < full.restart_blocks);
        assert!(quick.accounts as u64 * quick.txs_per_account < 5_000);
        let chosen = Plan::new(&Options {
            blocks: Some(123),
            ..Options::default()
        });
        assert_eq!(chosen.restart_blocks, 123);
    }

    #[test]
    fn the_fsync_probe_measures_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        assert!(fsync_rate(dir.path(), 5).unwrap() > 0.0);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert!(!fs_type(dir.path()).is_empty());
    }
}

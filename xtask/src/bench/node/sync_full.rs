//! `cargo xtask bench --only sync-full`: a fresh node syncing a chain of
//! full blocks from one peer and from three, against the ledger's own rate
//! for such blocks measured in the same run.
//!
//! Steps:
//!
//! 1. `cargo bench -p escrow --bench ledger -- apply_block.distinct`: the
//!    ledger applying a block of 1,000 transfers from 1,000 distinct
//!    senders, signatures included (read from criterion's output as
//!    [`crate::bench`] reads it): the rate a syncing node could reach if
//!    applying blocks were all it did.
//! 2. For each chain length (100 and 500 blocks; 10 and 30 with
//!    `--quick`), `loadgen chain` writes a genesis and a node data
//!    directory holding that many blocks, each a coinbase and one transfer
//!    from each of 1,000 accounts (about 164 kB).
//! 3. For 1 and 3 peers: each serving node A1..A3 gets a copy of that
//!    directory and starts on it (same genesis file); a fresh node B
//!    starts on an empty directory with `--peer` each A. B's `GET /status`
//!    is asked from its start on a fixed schedule, one request every
//!    [`POLL_INTERVAL`] (one at a time: a request due while the previous
//!    one waits is sent as soon as that one is answered), until its
//!    height is the chain's. Each request's latency counts from the
//!    moment it was due, not from when it could be sent, so a node that
//!    stops answering for a second weighs as a second of slow answers (a
//!    hundred samples), not as one slow request (the "coordinated
//!    omission" a plain loop of requests would make): the percentiles are
//!    what someone asking at a random moment of the sync waits. The
//!    answers' own times (sent to answered) are kept too. The sync's time
//!    runs from B's first peer
//!    connection (the first answer with a peer) to the first answer at the
//!    chain's height. Then B stops cleanly, and its data directory is
//!    measured.
//!
//! Lines (the numbers only show the form):
//!
//! ```text
//! bench: ledger.apply_block.distinct = 68000 tx/s (2 threads; for sync_full)
//! bench: sync_full.1peer.100 = 53000 tx/s (0.78 of ledger.apply_block.distinct = 68000 tx/s; 100 blocks of 1000 transfers, 16.4 MB, in 1.89 s from the first connection, 1.95 s from start; /status every 10 ms: p50 1.2 ms, p99 480 ms, max 520 ms over 212 requests, the answers' own p99 90.0 ms; data dir 4.6x block bytes, 3.1x allocated; B's CPU 1.7 cores)
//! bench: sync_full.scaling = 0.97 (1 peer), 0.95 (3 peers) (the 500-block sync's transfers a second over the 100-block sync's; 1.00: no slowdown per transaction)
//! ```
//!
//! The nodes are driven only through their command line and API, so the
//! benchmark holds whatever the sync protocol between them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};

use super::process::{NodeProc, Spawn, get, http};
use super::throughput::{loadgen, number};
use super::{check_interrupted, median};

/// How often the syncing node's `GET /status` is due.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Transfers per block: one from each of this many accounts.
const ACCOUNTS: usize = 1_000;

/// The chain lengths and peer counts of one run.
pub(super) struct SyncPlan {
    chains: Vec<u64>,
    peers: Vec<usize>,
    quick: bool,
}

impl SyncPlan {
    pub(super) fn new(quick: bool) -> SyncPlan {
        SyncPlan {
            chains: if quick { vec![10, 30] } else { vec![100, 500] },
            peers: vec![1, 3],
            quick,
        }
    }
}

/// One chain written by `loadgen chain`.
struct Chain {
    dir: PathBuf,
    blocks: u64,
    transfers: u64,
    block_bytes: u64,
}

/// What one sync measured.
struct Synced {
    /// From the first answer with a peer to the first at the chain's height.
    seconds: f64,
    /// From B's spawn to the same end.
    from_start: f64,
    /// `GET /status` latencies from the moment each was due.
    latencies_ms: Vec<f64>,
    /// The same requests' own times, from sent to answered.
    service_ms: Vec<f64>,
    /// `GET /blocks/height/{h}` of blocks B holds ([`Lookups`]): each
    /// one's time, sent to answered.
    lookup_ms: Vec<f64>,
    /// B's data directory once stopped: the files' lengths, and the bytes
    /// allocated.
    data_dir_bytes: (u64, u64),
    /// B's processor time over the sync (from its start), in seconds.
    cpu_seconds: f64,
    /// (seconds from the first connection, height) at each change of
    /// height seen.
    steps: Vec<(f64, u64)>,
}

/// Runs the benchmark; returns the `bench:` lines (printed as they come).
pub(super) fn sync_full(
    root: &Path,
    node: &Path,
    loadgen_binary: &Path,
    tmp: &Path,
    plan: &SyncPlan,
) -> anyhow::Result<Vec<String>> {
    let mut lines = Vec::new();
    let mut emit = |line: String| {
        println!("{line}");
        lines.push(line);
    };
    let distinct = apply_block_distinct(root, plan.quick)?;
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    emit(format!(
        "bench: ledger.apply_block.distinct = {distinct:.0} tx/s ({threads} threads; for sync_full)"
    ));
    // rates[chain][peers]
    let mut rates: Vec<Vec<f64>> = Vec::new();
    for &blocks in &plan.chains {
        check_interrupted()?;
        let chain = build_chain(loadgen_binary, tmp, blocks)?;
        let mut row = Vec::new();
        for &peers in &plan.peers {
            check_interrupted()?;
            let s = sync_once(node, tmp, &chain, peers)?;
            let rate = chain.transfers as f64 / s.seconds;
            row.push(rate);
            emit(line(&chain, peers, distinct, rate, &s));
            eprintln!(
                "xtask: sync_full: B's height over time (s from the first connection: height): {}",
                steps_summary(&s.steps)
            );
        }
        rates.push(row);
        std::fs::remove_dir_all(&chain.dir)
            .with_context(|| format!("cannot remove {}", chain.dir.display()))?;
    }
    if let (Some(first), Some(last)) = (rates.first(), rates.last())
        && rates.len() > 1
    {
        let ratios: Vec<String> = plan
            .peers
            .iter()
            .zip(first.iter().zip(last))
            .map(|(peers, (a, b))| format!("{:.2} ({peers} peer{})", b / a, plural(*peers)))
            .collect();
        emit(format!(
            "bench: sync_full.scaling = {} (the {}-block sync's transfers a second over the {}-block sync's; 1.00: no slowdown per transaction)",
            ratios.join(", "),
            plan.chains.last().copied().unwrap_or(0),
            plan.chains.first().copied().unwrap_or(0),
        ));
    }
    Ok(lines)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The `bench:` line of one sync.
fn line(chain: &Chain, peers: usize, distinct: f64, rate: f64, s: &Synced) -> String {
    let mut latencies = s.latencies_ms.clone();
    latencies.sort_by(f64::total_cmp);
    let p50 = median(&mut latencies);
    let p99 = quantile(&latencies, 0.99);
    let max = latencies.last().copied().unwrap_or(f64::NAN);
    let mut service = s.service_ms.clone();
    service.sort_by(f64::total_cmp);
    let service_p99 = quantile(&service, 0.99);
    let mut lookups = s.lookup_ms.clone();
    lookups.sort_by(f64::total_cmp);
    let every = LOOKUP_INTERVAL.as_millis();
    let lookups = if lookups.is_empty() {
        format!("a block by height every {every} ms: none (the sync ended first)")
    } else {
        let (n, p50) = (lookups.len(), median(&mut lookups));
        let p99 = quantile(&lookups, 0.99);
        format!(
            "a block by height every {every} ms: p50 {p50:.1} ms, p99 {p99:.1} ms over {n} requests"
        )
    };
    format!(
        "bench: sync_full.{peers}peer{}.{} = {rate:.0} tx/s ({:.2} of ledger.apply_block.distinct = {distinct:.0} tx/s; {} blocks of {} transfers, {:.1} MB, in {:.2} s from the first connection, {:.2} s from start; /status every {} ms: p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms over {} requests, the answers' own p99 {service_p99:.1} ms; {lookups}; data dir {:.1}x block bytes, {:.1}x allocated; B's CPU {:.2} cores)",
        if peers == 1 { "" } else { "s" },
        chain.blocks,
        rate / distinct,
        chain.blocks,
        chain.transfers / chain.blocks.max(1),
        chain.block_bytes as f64 / 1e6,
        s.seconds,
        s.from_start,
        POLL_INTERVAL.as_millis(),
        latencies.len(),
        s.data_dir_bytes.0 as f64 / chain.block_bytes.max(1) as f64,
        s.data_dir_bytes.1 as f64 / chain.block_bytes.max(1) as f64,
        s.cpu_seconds / s.from_start,
    )
}

/// The nearest-rank quantile `q` of sorted values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A few points of B's height over time: at most about a dozen, evenly
/// spread over the steps seen, and the last.
fn steps_summary(steps: &[(f64, u64)]) -> String {
    let every = steps.len().div_ceil(12).max(1);
    let mut points: Vec<String> = steps
        .iter()
        .step_by(every)
        .map(|(t, h)| format!("{t:.2}: {h}"))
        .collect();
    if let Some((t, h)) = steps.last()
        && !(steps.len() - 1).is_multiple_of(every)
    {
        points.push(format!("{t:.2}: {h}"));
    }
    format!("{} (of {} changes)", points.join(", "), steps.len())
}

/// `ledger/apply_block.distinct` from a criterion run of the escrow
/// ledger suite filtered to it, in transactions a second.
fn apply_block_distinct(root: &Path, quick: bool) -> anyhow::Result<f64> {
    let mut args = vec!["bench", "-p", "escrow", "--bench", "ledger", "--"];
    if quick {
        args.extend(["--quick", "--warm-up-time", "1", "--measurement-time", "2"]);
    }
    args.push("apply_block.distinct");
    eprintln!("xtask: sync_full: cargo {}", args.join(" "));
    let criterion = crate::bench::cargo_bench(root, &args)?;
    crate::bench::rate(&criterion, "ledger", "apply_block.distinct")
}

/// `loadgen chain` of `blocks` full blocks into `tmp/chain-BLOCKS`.
fn build_chain(loadgen_binary: &Path, tmp: &Path, blocks: u64) -> anyhow::Result<Chain> {
    let dir = tmp.join(format!("chain-{blocks}"));
    eprintln!("xtask: sync_full: building {blocks} blocks of {ACCOUNTS} transfers (loadgen chain)");
    let (answer, _) = loadgen(
        loadgen_binary,
        &[
            "chain".to_string(),
            "--accounts".to_string(),
            ACCOUNTS.to_string(),
            "--blocks".to_string(),
            blocks.to_string(),
            "--out".to_string(),
            dir.display().to_string(),
        ],
    )?;
    let chain = Chain {
        dir,
        blocks: number(&answer, "blocks")? as u64,
        transfers: number(&answer, "transfers")? as u64,
        block_bytes: number(&answer, "block_bytes")? as u64,
    };
    eprintln!(
        "xtask: sync_full: {} blocks, {:.1} MB of blocks, {:.1} MB stored, in {:.1} s",
        chain.blocks,
        chain.block_bytes as f64 / 1e6,
        number(&answer, "data_dir_bytes")? / 1e6,
        number(&answer, "seconds")?
    );
    ensure!(
        chain.blocks == blocks,
        "loadgen built {} blocks",
        chain.blocks
    );
    Ok(chain)
}

/// Copies the directory `from` to `to` (files and subdirectories).
fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for entry in
        std::fs::read_dir(from).with_context(|| format!("cannot list {}", from.display()))?
    {
        let entry = entry.with_context(|| format!("cannot list {}", from.display()))?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target).with_context(|| {
                format!(
                    "cannot copy {} to {}",
                    entry.path().display(),
                    target.display()
                )
            })?;
        }
    }
    Ok(())
}

/// The bytes of every file under `dir`, recursively: their lengths, and
/// what the file system allocated for them (less for a sparse file; the
/// lengths where that is unknown).
fn dir_bytes(dir: &Path) -> anyhow::Result<(u64, u64)> {
    let (mut length, mut allocated) = (0, 0);
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let meta = entry.metadata()?;
        let (l, a) = if meta.is_dir() {
            dir_bytes(&entry.path())?
        } else {
            #[cfg(unix)]
            let a = std::os::unix::fs::MetadataExt::blocks(&meta) * 512;
            #[cfg(not(unix))]
            let a = meta.len();
            (meta.len(), a)
        };
        length += l;
        allocated += a;
    }
    Ok((length, allocated))
}

/// One sync of `chain` by a fresh node from `peers` serving nodes.
fn sync_once(node: &Path, tmp: &Path, chain: &Chain, peers: usize) -> anyhow::Result<Synced> {
    let http = http();
    let genesis = chain.dir.join("genesis.json");
    let run = tmp.join(format!("sync-{}-{peers}", chain.blocks));
    // Removed at the end, on errors too (the nodes, declared later, stop
    // first).
    let _cleanup = RemoveOnDrop(run.clone());
    let mut serving = Vec::new();
    for i in 0..peers {
        let dir = run.join(format!("a{i}"));
        copy_dir(&chain.dir.join("node"), &dir)?;
        let a = NodeProc::start(
            node,
            &Spawn {
                data_dir: &dir,
                log: run.join(format!("a{i}.log")),
                mine: "off",
                genesis: Some(&genesis),
                peers: &[],
                miner_threads: 1,
                block_interval_ms: 0,
            },
        )?;
        let height = a.status(&http)?.height;
        ensure!(
            height == chain.blocks,
            "serving node a{i} started at height {height}, not {}",
            chain.blocks
        );
        serving.push(a);
    }
    let addrs: Vec<SocketAddr> = serving.iter().map(|a| a.p2p).collect();
    eprintln!(
        "xtask: sync_full: a fresh node syncing {} blocks from {peers} peer{}",
        chain.blocks,
        plural(peers)
    );
    let b_dir = run.join("b");
    let started = Instant::now();
    let mut b = NodeProc::start(
        node,
        &Spawn {
            data_dir: &b_dir,
            log: run.join("b.log"),
            mine: "off",
            genesis: Some(&genesis),
            peers: &addrs,
            miner_threads: 1,
            block_interval_ms: 0,
        },
    )?;
    let deadline = started + Duration::from_secs(60 + chain.blocks);
    let mut latencies_ms = Vec::new();
    let mut service_ms = Vec::new();
    let height = Arc::new(AtomicU64::new(0));
    let lookups = Lookups::start(b.api.clone(), Arc::clone(&height));
    let mut connected = None;
    let mut steps = Vec::new();
    let mut last_height = 0;
    let mut due = Instant::now();
    let end = loop {
        check_interrupted()?;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let sent = Instant::now();
        let status = b.status(&http)?;
        let answered = Instant::now();
        latencies_ms.push((answered - due).as_secs_f64() * 1e3);
        service_ms.push((answered - sent).as_secs_f64() * 1e3);
        due += POLL_INTERVAL;
        if connected.is_none() && status.peers > 0 {
            connected = Some(answered);
        }
        height.store(status.height, Ordering::Relaxed);
        if status.height != last_height {
            last_height = status.height;
            let since = connected.unwrap_or(started);
            steps.push(((answered - since).as_secs_f64(), status.height));
        }
        if status.height >= chain.blocks {
            break answered;
        }
        if answered > deadline {
            bail!(
                "the fresh node reached height {} of {} in {:.0} s; its log: {}",
                status.height,
                chain.blocks,
                started.elapsed().as_secs_f64(),
                b.log.display()
            );
        }
    };
    let lookup_ms = lookups.finish()?;
    let cpu_seconds = b.cpu_seconds()?;
    let connected = connected.unwrap_or(started);
    b.stop();
    drop(serving);
    Ok(Synced {
        seconds: (end - connected).as_secs_f64(),
        from_start: (end - started).as_secs_f64(),
        latencies_ms,
        service_ms,
        lookup_ms,
        data_dir_bytes: dir_bytes(&b_dir)?,
        cpu_seconds,
        steps,
    })
}

/// How often a block is looked up while B syncs.
const LOOKUP_INTERVAL: Duration = Duration::from_millis(100);

/// Lookups by height on B while it syncs, beside the `/status` polls (a
/// thread of their own, so that neither delays the other): every
/// [`LOOKUP_INTERVAL`], once B holds a block, `GET /blocks/height/{h}`,
/// the heights taken in turn from 1 to B's height (old blocks are read
/// from its store, recent ones from its snapshot). A block of 1,000
/// transfers is about 300 kB of JSON, so they are spaced out: the
/// serialising is B's work, and would slow the sync it measures.
struct Lookups {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<anyhow::Result<Vec<f64>>>,
}

impl Lookups {
    fn start(api: String, height: Arc<AtomicU64>) -> Lookups {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let http = http();
            let mut times = Vec::new();
            while !stopped.load(Ordering::Relaxed) {
                std::thread::sleep(LOOKUP_INTERVAL);
                let tip = height.load(Ordering::Relaxed);
                if tip == 0 {
                    continue;
                }
                let h = 1 + times.len() as u64 % tip;
                let sent = Instant::now();
                let block = get(&http, &format!("{api}/blocks/height/{h}"))?;
                times.push(sent.elapsed().as_secs_f64() * 1e3);
                ensure!(
                    block["height"] == h,
                    "GET /blocks/height/{h} answered {block}"
                );
            }
            Ok(times)
        });
        Lookups { stop, thread }
    }

    /// Stops the lookups; their times.
    fn finish(self) -> anyhow::Result<Vec<f64>> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("the lookups' thread panicked"))?
    }
}

/// Removes a directory when dropped (errors ignored: the run's temporary
/// directory is removed after it anyway).
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&values, 0.99), 99.0);
        assert_eq!(quantile(&values, 0.5), 50.0);
        assert_eq!(quantile(&[7.0], 0.99), 7.0);
        assert!(quantile(&[], 0.99).is_nan());
    }

    #[test]
    fn quick_is_smaller() {
        let quick = SyncPlan::new(true);
        let full = SyncPlan::new(false);
        assert!(quick.chains.iter().max() < full.chains.iter().min());
        assert_eq!(full.chains, vec![100, 500]);
        assert_eq!(full.peers, vec![1, 3]);
    }

    #[test]
    fn the_height_summary_keeps_the_last_step() {
        let steps: Vec<(f64, u64)> = (1..=30).map(|h| (h as f64 / 10.0, h)).collect();
        let summary = steps_summary(&steps);
        assert!(summary.ends_with("3.00: 30 (of 30 changes)"), "{summary}");
        assert!(summary.starts_with("0.10: 1, "), "{summary}");
    }

    #[test]
    fn directories_are_copied_and_measured() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("from");
        std::fs::create_dir_all(from.join("sub")).unwrap();
        std::fs::write(from.join("a"), [0u8; 10]).unwrap();
        std::fs::write(from.join("sub").join("b"), [0u8; 5]).unwrap();
        copy_dir(&from, &dir.path().join("to")).unwrap();
        assert_eq!(dir_bytes(&dir.path().join("to")).unwrap().0, 15);
    }
}

//! The node at scale: `p2p-node` processes (release build) measured through
//! their public interface, the command line and the HTTP API.
//!
//! `cargo xtask bench` runs these after the criterion suites;
//! `cargo xtask bench node` (or `--node-only`) runs only these. Lines:
//!
//! ```text
//! bench: node.mine_rate = 640 blocks/s (2000 blocks on a fresh node; fsync bound 410/s on ext4)
//! bench: node.restart = 4012.3 ms (100000 blocks, median of 5: 40.1 us/block, min 3950.0, max 4100.2)
//! bench: node.rss = 152.0 MB (100000 blocks, idle: 1.52 KB/block)
//! bench: net.tx_throughput = 620 tx/s (4 nodes, 20000 transfers from 1000 accounts applied on all four in 32.3 s, 95 blocks; signature bound 10500 tx/s)
//! bench: net.api_p99 = 37.0 ms (under load: p50 4.1 ms, 20000 submissions from 16 threads, 0 retried)
//! ```
//!
//! (the numbers above only show the form). How each is measured:
//!
//! - `node.mine_rate`: `POST /mine` of 2,000 blocks (two requests of the
//!   API's maximum, 1,000; 500 with `--quick`) on a fresh node with
//!   `--mine off`, blocks over the time until the answers. Each block is one
//!   durable store commit, so the detail gives the rate of
//!   `write + fdatasync` of 4 KiB in the same directory (the fastest of
//!   five rounds): the bound.
//! - `node.restart`: a data directory holding N empty blocks (100,000; 2,000
//!   with `--quick`; `--blocks N` to choose), made through `POST /mine` on a
//!   node of its own, then `p2p-node run` started on it several times: from
//!   the spawn until `GET /status` answers (with height N), the median.
//! - `node.rss`: `VmRSS` from `/proc/PID/status` of that node once started
//!   and idle for a second (the median over the restarts).
//! - `net.tx_throughput`: four nodes (`--mine pending`, one miner thread
//!   each) in a full mesh on a genesis that funds many accounts; every
//!   account's transfers, signed here with the escrow library, are
//!   submitted to one of the four APIs (`POST /txs`) by 16 threads (8 with
//!   `--quick`), an account's in nonce order. The run ends when all four
//!   nodes have an empty mempool and the same tip; the figure is the
//!   transfers applied on all four (the sum of the accounts' nonces, read
//!   from every node) over the time from the first submission. The bound
//!   in the detail: each transfer costs one single signature check at
//!   admission and one share of a batch check in its block, on each of the
//!   four nodes, all on this machine's cores; both costs are measured here,
//!   in this process (the fastest of five rounds; `escrow`'s own code at
//!   the profile xtask is built with, its dependencies optimised).
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

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use escrow::genesis::Allocation;
use escrow::{Amount, Genesis, Keypair, Payload, SignedTx};
use p2p_node::api_types::{AccountAnswer, MineAnswer, MineRequest, StatusAnswer, SubmitTx};

/// What the node benchmarks run with.
#[derive(Debug, Default)]
pub struct Options {
    /// The short version (CI).
    pub quick: bool,
    /// Blocks in the restart chain, instead of the default.
    pub blocks: Option<u64>,
    /// Where to keep (and reuse) the restart chain.
    pub chain_dir: Option<PathBuf>,
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
            }
        };
        if let Some(n) = o.blocks {
            plan.restart_blocks = n;
        }
        plan
    }
}

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
    let binary = build(root)?;
    let tmp = tempfile::Builder::new()
        .prefix("escrow-bench-")
        .tempdir()
        .context("cannot make a temporary directory")?;
    let mut lines = Vec::new();
    let mut emit = |line: String| {
        println!("{line}");
        lines.push(line);
    };
    emit(mine_rate(&binary, tmp.path(), &plan)?);
    let (restart, rss) = restart(&binary, tmp.path(), o, &plan)?;
    emit(restart);
    emit(rss);
    let (throughput, p99) = throughput(&binary, tmp.path(), &plan)?;
    emit(throughput);
    emit(p99);
    Ok(lines)
}

fn build(root: &Path) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    eprintln!("xtask: building the node (release)");
    let status = Command::new(cargo)
        .current_dir(root)
        .args(["build", "--release", "--quiet", "-p", "p2p-node"])
        .status()
        .context("cannot run cargo build --release -p p2p-node")?;
    if !status.success() {
        bail!("building p2p-node failed with {status}");
    }
    Ok(super::target_dir(root).join("release").join("p2p-node"))
}

fn http() -> anyhow::Result<reqwest::blocking::Client> {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .context("cannot make an HTTP client")
}

/// How a node is started.
struct Spawn<'a> {
    data_dir: &'a Path,
    mine: &'a str,
    genesis: Option<&'a Path>,
    peers: &'a [SocketAddr],
}

/// A running node process; stopped when dropped.
struct NodeProc {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    api: String,
    p2p: SocketAddr,
    token: String,
    /// Where its standard error goes.
    log: PathBuf,
}

impl NodeProc {
    /// Starts a node and waits until it has printed its API address.
    fn start(binary: &Path, s: &Spawn) -> anyhow::Result<NodeProc> {
        let log = s.data_dir.with_extension("log");
        let stderr = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let mut cmd = Command::new(binary);
        cmd.args(["--listen", "127.0.0.1:0", "--api", "127.0.0.1:0"])
            .args(["--mine", s.mine, "--log", "warn"])
            .arg("--data-dir")
            .arg(s.data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        if let Some(g) = s.genesis {
            cmd.arg("--genesis").arg(g);
        }
        for p in s.peers {
            cmd.args(["--peer", &p.to_string()]);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        // From here on the child is killed on every exit path.
        let stdout = child.stdout.take();
        let mut node = NodeProc {
            child,
            api: String::new(),
            p2p: SocketAddr::from(([127, 0, 0, 1], 0)),
            token: String::new(),
            log,
        };
        let stdout = stdout.context("the node's stdout is not piped")?;
        let (send, recv) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    // Nobody listens any more: keep draining the pipe.
                    continue;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(300);
        let mut p2p = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match recv.recv_timeout(left) {
                Ok(line) => line,
                Err(e) => {
                    let status = node.child.try_wait().ok().flatten();
                    bail!(
                        "the node on {} did not report its API address ({e}; exit status {status:?}); its log: {}",
                        s.data_dir.display(),
                        node.log_tail()
                    );
                }
            };
            if let Some(addr) = line.strip_prefix("p2p listening on ") {
                p2p = Some(
                    addr.trim()
                        .parse()
                        .with_context(|| format!("bad P2P address in `{line}`"))?,
                );
            } else if let Some(api) = line.strip_prefix("api listening on ") {
                node.api = api.trim().to_string();
                break;
            }
        }
        node.p2p = p2p.context("the node printed its API address but not its P2P address")?;
        let cookie = s.data_dir.join(p2p_node::client::COOKIE_FILE);
        node.token = std::fs::read_to_string(&cookie)
            .with_context(|| format!("cannot read the token {}", cookie.display()))?
            .trim()
            .to_string();
        Ok(node)
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(5)..].join(" | ")
    }

    fn status(&self, http: &reqwest::blocking::Client) -> anyhow::Result<StatusAnswer> {
        get(http, &format!("{}/status", self.api))
    }

    /// `POST /mine` of `blocks` (at most [`MINE_MAX`]).
    fn mine(&self, http: &reqwest::blocking::Client, blocks: u64) -> anyhow::Result<()> {
        let url = format!("{}/mine", self.api);
        let resp = http
            .post(&url)
            .bearer_auth(&self.token)
            .json(&MineRequest { blocks })
            .send()
            .with_context(|| format!("POST {url}"))?;
        let status = resp.status();
        let text = resp.text().with_context(|| format!("POST {url}"))?;
        if !status.is_success() {
            bail!("POST {url}: {status} {text}");
        }
        let answer: MineAnswer =
            serde_json::from_str(&text).with_context(|| format!("POST {url}: {text}"))?;
        if answer.blocks.len() as u64 != blocks {
            bail!(
                "POST {url} mined {} blocks of {blocks}",
                answer.blocks.len()
            );
        }
        Ok(())
    }

    /// Resident memory in bytes.
    fn rss(&self) -> anyhow::Result<u64> {
        let path = format!("/proc/{}/status", self.child.id());
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        let kb: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("no VmRSS in {path}"))?;
        Ok(kb * 1024)
    }

    /// SIGTERM, up to 30 s to shut down cleanly, then SIGKILL.
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

fn get<T: serde::de::DeserializeOwned>(
    http: &reqwest::blocking::Client,
    url: &str,
) -> anyhow::Result<T> {
    let resp = http.get(url).send().with_context(|| format!("GET {url}"))?;
    let status = resp.status();
    let text = resp.text().with_context(|| format!("GET {url}"))?;
    if !status.is_success() {
        bail!("GET {url}: {status} {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("GET {url}: unexpected answer {text}"))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The `p`-th quantile (0 to 1) of sorted values, nearest rank.
fn quantile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
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
fn mine_to(http: &reqwest::blocking::Client, node: &NodeProc, blocks: u64) -> anyhow::Result<u64> {
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
    eprintln!(
        "xtask: node.mine_rate: {} blocks on a fresh node",
        plan.mine_blocks
    );
    let http = http()?;
    let dir = tmp.join("mine");
    let node = NodeProc::start(
        binary,
        &Spawn {
            data_dir: &dir,
            mine: "off",
            genesis: None,
            peers: &[],
        },
    )?;
    let started = Instant::now();
    let height = mine_to(&http, &node, plan.mine_blocks)?;
    let rate = height as f64 / started.elapsed().as_secs_f64();
    drop(node);
    let fsync = fsync_rate(tmp, plan.fsyncs)?;
    Ok(format!(
        "bench: node.mine_rate = {rate:.0} blocks/s ({height} blocks on a fresh node; fsync bound {fsync:.0}/s on {})",
        fs_type(tmp)
    ))
}

fn restart(
    binary: &Path,
    tmp: &Path,
    o: &Options,
    plan: &Plan,
) -> anyhow::Result<(String, String)> {
    let http = http()?;
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
                mine: "off",
                genesis: None,
                peers: &[],
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
                mine: "off",
                genesis: None,
                peers: &[],
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

/// The key of benchmark account `i`: a fixed seed, so runs are alike.
fn account_key(i: usize) -> Keypair {
    let mut seed = *b"xtask bench account ............";
    seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
    Keypair::from_seed(seed)
}

/// Microseconds per transaction of a single signature check and of a
/// one-thread batch check, measured on `txs`: the fastest of five rounds,
/// since other work on the machine only ever slows a round down.
fn signature_costs(txs: &[SignedTx]) -> anyhow::Result<(f64, f64)> {
    let sample = &txs[..txs.len().min(1_000)];
    let refs: Vec<&SignedTx> = sample.iter().collect();
    let (mut single, mut batch) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..5 {
        let started = Instant::now();
        for tx in sample.iter().take(200) {
            escrow::signature::check(tx).context("a benchmark transaction does not verify")?;
        }
        let per_tx = started.elapsed().as_secs_f64() * 1e6 / sample.len().min(200) as f64;
        single = single.min(per_tx);
        let started = Instant::now();
        escrow::signature::verify_block(&refs, 1)
            .map_err(|(i, e)| anyhow::anyhow!("benchmark transaction {i} does not verify: {e}"))?;
        batch = batch.min(started.elapsed().as_secs_f64() * 1e6 / sample.len() as f64);
    }
    Ok((single, batch))
}

/// Four nodes in a full mesh on `genesis`, mining while transactions wait.
fn start_mesh(
    binary: &Path,
    tmp: &Path,
    genesis: &Path,
    http: &reqwest::blocking::Client,
) -> anyhow::Result<Vec<NodeProc>> {
    let mut nodes: Vec<NodeProc> = Vec::new();
    for i in 0..4 {
        let peers: Vec<SocketAddr> = nodes.iter().map(|n| n.p2p).collect();
        nodes.push(NodeProc::start(
            binary,
            &Spawn {
                data_dir: &tmp.join(format!("net-{i}")),
                mine: "pending",
                genesis: Some(genesis),
                peers: &peers,
            },
        )?);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut peers = Vec::new();
        for n in &nodes {
            peers.push(n.status(http)?.peers);
        }
        if peers.iter().all(|&p| p >= 3) {
            return Ok(nodes);
        }
        if Instant::now() > deadline {
            bail!("the four nodes did not connect in a full mesh (peers: {peers:?})");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What one submitting thread saw.
#[derive(Default)]
struct Submitted {
    latencies_ms: Vec<f64>,
    retried: u64,
}

/// Submits `txs[a]` (account `a`'s transfers in nonce order) for the
/// accounts `a` with `a % threads == t`, to node `a % 4`, nonce by nonce
/// across the accounts; retries what a full mempool refused.
fn submit(
    http: &reqwest::blocking::Client,
    apis: &[String],
    txs: &[Vec<String>],
    t: usize,
    threads: usize,
) -> anyhow::Result<Submitted> {
    let mut out = Submitted::default();
    let mine: Vec<usize> = (t..txs.len()).step_by(threads).collect();
    let rounds = txs.iter().map(Vec::len).max().unwrap_or(0);
    for n in 0..rounds {
        for &a in &mine {
            check_interrupted()?;
            let Some(tx) = txs[a].get(n) else { continue };
            let url = format!("{}/txs", apis[a % apis.len()]);
            let body = SubmitTx { tx: tx.clone() };
            loop {
                let started = Instant::now();
                let resp = http
                    .post(&url)
                    .json(&body)
                    .send()
                    .with_context(|| format!("POST {url}"))?;
                let elapsed = started.elapsed().as_secs_f64() * 1e3;
                let status = resp.status();
                if status.is_success() {
                    out.latencies_ms.push(elapsed);
                    break;
                }
                let text = resp.text().unwrap_or_default();
                if text.contains("mempool_full") || text.contains("account_full") {
                    out.retried += 1;
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
                bail!("POST {url}: {status} {text}");
            }
        }
    }
    Ok(out)
}

fn throughput(binary: &Path, tmp: &Path, plan: &Plan) -> anyhow::Result<(String, String)> {
    eprintln!(
        "xtask: net.tx_throughput: 4 nodes, {} accounts x {} transfers",
        plan.accounts, plan.txs_per_account
    );
    let http = http()?;
    let keys: Vec<Keypair> = (0..plan.accounts).map(account_key).collect();
    let mut genesis = Genesis::dev();
    genesis.name = "escrow-chain bench".to_string();
    genesis.allocations.extend(keys.iter().map(|k| Allocation {
        to: k.address(),
        amount: Amount::new(1_000_000),
    }));
    let genesis_path = tmp.join("genesis.json");
    std::fs::write(&genesis_path, genesis.to_json())
        .with_context(|| format!("cannot write {}", genesis_path.display()))?;
    let network = genesis.network_id();
    let signed: Vec<Vec<SignedTx>> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let to = keys[(i + 1) % keys.len()].address();
            (0..plan.txs_per_account)
                .map(|nonce| {
                    SignedTx::sign(
                        k,
                        nonce,
                        network,
                        Payload::Transfer {
                            to,
                            amount: Amount::new(1),
                        },
                    )
                })
                .collect()
        })
        .collect();
    let flat: Vec<SignedTx> = signed.iter().flatten().cloned().collect();
    let (single_us, batch_us) = signature_costs(&flat)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let bound = cores * 1e6 / (4.0 * (single_us + batch_us));
    let txs: Vec<Vec<String>> = signed
        .iter()
        .map(|v| v.iter().map(|t| hex::encode(t.to_bytes())).collect())
        .collect();
    let total = flat.len();

    let nodes = start_mesh(binary, tmp, &genesis_path, &http)?;
    let apis: Vec<String> = nodes.iter().map(|n| n.api.clone()).collect();
    let start_height = nodes.first().context("no nodes")?.status(&http)?.height;
    let started = Instant::now();
    let results: Vec<anyhow::Result<Submitted>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..plan.submitters)
            .map(|t| {
                let (http, apis, txs) = (&http, &apis, &txs);
                s.spawn(move || submit(http, apis, txs, t, plan.submitters))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a submitting thread panicked")))
            })
            .collect()
    });
    let mut latencies = Vec::new();
    let mut retried = 0;
    for r in results {
        let r = r?;
        latencies.extend(r.latencies_ms);
        retried += r.retried;
    }
    let submitted_s = started.elapsed().as_secs_f64();
    eprintln!(
        "xtask: net.tx_throughput: {} submitted in {submitted_s:.1} s; waiting for all four nodes",
        latencies.len()
    );
    let deadline =
        Instant::now() + Duration::from_secs(if plan.accounts > 500 { 600 } else { 120 });
    let (elapsed, height) = loop {
        check_interrupted()?;
        let statuses: Vec<StatusAnswer> = nodes
            .iter()
            .map(|n| n.status(&http))
            .collect::<anyhow::Result<_>>()?;
        let elapsed = started.elapsed().as_secs_f64();
        let settled = statuses.iter().all(|s| s.mempool == 0)
            && statuses.windows(2).all(|w| w[0].tip == w[1].tip);
        if settled {
            break (elapsed, statuses.first().map_or(0, |s| s.height));
        }
        if Instant::now() > deadline {
            let view: Vec<String> = statuses
                .iter()
                .map(|s| format!("height {} mempool {}", s.height, s.mempool))
                .collect();
            bail!("the four nodes did not settle: {}", view.join(", "));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // Applied on all four: the accounts' nonces, read from every node.
    let mut applied = u64::MAX;
    for n in &nodes {
        let mut sum = 0;
        for k in &keys {
            let a: AccountAnswer = get(&http, &format!("{}/accounts/{}", n.api, k.address()))?;
            sum += a.nonce;
        }
        applied = applied.min(sum);
    }
    drop(nodes);
    if applied < total as u64 {
        eprintln!("xtask: net.tx_throughput: only {applied} of {total} transfers were applied");
    }
    latencies.sort_by(f64::total_cmp);
    let rate = applied as f64 / elapsed;
    Ok((
        format!(
            "bench: net.tx_throughput = {rate:.0} tx/s (4 nodes, {applied} of {total} transfers from {} accounts applied on all four in {elapsed:.1} s, {} blocks; signature bound {bound:.0} tx/s: {single_us:.0} us single + {batch_us:.0} us batch per node, {cores} cores)",
            plan.accounts,
            height.saturating_sub(start_height)
        ),
        format!(
            "bench: net.api_p99 = {:.1} ms (under load: p50 {:.1} ms, {} submissions from {} threads in {submitted_s:.1} s, {retried} retried for a full mempool)",
            quantile(&latencies, 0.99),
            quantile(&latencies, 0.5),
            latencies.len(),
            plan.submitters
        ),
    ))
}

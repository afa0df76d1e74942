//! `net.tx_throughput` and `net.api_p99`: four nodes, signed transfers
//! submitted concurrently to their APIs. The transfers are made, signed
//! and submitted by `loadgen` (`crates/loadgen`, a release binary built
//! with the node): this file starts the nodes, runs it, and reads the
//! outcome from the nodes' APIs.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

use super::process::{NodeProc, Spawn, Status, get, http};
use super::{Plan, check_interrupted};
use crate::build::describe_exit;
use crate::http::Client;

/// Runs `loadgen ARGS`; returns its JSON answer and when it was printed
/// (the submission's end, read from the pipe as it is written). Ctrl-C
/// or SIGTERM stops it.
pub(super) fn loadgen(binary: &Path, args: &[String]) -> anyhow::Result<(Value, Instant)> {
    let what = format!("loadgen {}", args.first().map_or("", String::as_str));
    let mut child = Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    let stdout = child
        .stdout
        .take()
        .context("loadgen's stdout is not piped")?;
    let (send, recv) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let _ = send.send((read.map(|_| line), Instant::now()));
    });
    let (line, at) = loop {
        match recv.recv_timeout(Duration::from_millis(50)) {
            Ok(answer) => break answer,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Err(e) = check_interrupted() {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(e);
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                bail!("{what}: its output was lost")
            }
        }
    };
    let status = child
        .wait()
        .with_context(|| format!("{what}: cannot wait"))?;
    if !status.success() {
        bail!("{what} {}: its errors are above", describe_exit(status));
    }
    let line = line.with_context(|| format!("{what}: cannot read its answer"))?;
    let answer = serde_json::from_str(line.trim())
        .with_context(|| format!("{what}: its answer is not JSON: {line}"))?;
    Ok((answer, at))
}

/// A number in loadgen's answer.
pub(super) fn number(answer: &Value, field: &str) -> anyhow::Result<f64> {
    answer[field]
        .as_f64()
        .with_context(|| format!("loadgen's answer has no number {field}: {answer}"))
}

/// Four nodes in a full mesh on `genesis`, mining while transactions wait.
fn start_mesh(
    binary: &Path,
    tmp: &Path,
    genesis: &Path,
    http: &Client,
    plan: &Plan,
) -> anyhow::Result<Vec<NodeProc>> {
    let mut nodes: Vec<NodeProc> = Vec::new();
    for i in 0..4 {
        let peers: Vec<SocketAddr> = nodes.iter().map(|n| n.p2p).collect();
        nodes.push(NodeProc::start(
            binary,
            &Spawn {
                data_dir: &tmp.join(format!("net-{i}")),
                log: tmp.join(format!("net-{i}.log")),
                mine: "pending",
                genesis: Some(genesis),
                peers: &peers,
                miner_threads: 1,
                block_interval_ms: plan.block_interval_ms,
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

pub(super) fn throughput(
    binary: &Path,
    loadgen_binary: &Path,
    tmp: &Path,
    plan: &Plan,
) -> anyhow::Result<(String, String)> {
    eprintln!(
        "xtask: net.tx_throughput: 4 nodes, {} accounts x {} transfers",
        plan.accounts, plan.txs_per_account
    );
    let http = http();
    let load = tmp.join("load");
    let (prepared, _) = loadgen(
        loadgen_binary,
        &[
            "prepare".to_string(),
            "--accounts".to_string(),
            plan.accounts.to_string(),
            "--txs-per-account".to_string(),
            plan.txs_per_account.to_string(),
            "--out".to_string(),
            load.display().to_string(),
        ],
    )?;
    let single_us = number(&prepared, "single_us")?;
    let batch_us = number(&prepared, "batch_us")?;
    let total = number(&prepared, "transfers")? as u64;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let bound = cores * 1e6 / (4.0 * (single_us + batch_us));
    let transfers = load.join("transfers.txt");
    let addresses: Vec<String> = std::fs::read_to_string(&transfers)
        .with_context(|| format!("cannot read {}", transfers.display()))?
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();

    let nodes = start_mesh(binary, tmp, &load.join("genesis.json"), &http, plan)?;
    let start_height = nodes.first().context("no nodes")?.status(&http)?.height;
    let mut args = vec![
        "submit".to_string(),
        "--transfers".to_string(),
        transfers.display().to_string(),
        "--concurrency".to_string(),
        plan.submitters.to_string(),
    ];
    for n in &nodes {
        args.extend(["--api".to_string(), n.api.clone()]);
    }
    let (submitted, submitted_at) = loadgen(loadgen_binary, &args)?;
    let submitted_s = number(&submitted, "seconds")?;
    // The time from the first submission: loadgen measured the submission
    // itself, from its first request to its last answer.
    let started = submitted_at
        .checked_sub(Duration::from_secs_f64(submitted_s))
        .unwrap_or(submitted_at);
    let accepted = number(&submitted, "accepted")? as u64;
    let retried = number(&submitted, "retried")? as u64;
    // No latencies at all (nothing submitted) is answered as null.
    let p50 = submitted["p50_ms"].as_f64().unwrap_or(f64::NAN);
    let p99 = submitted["p99_ms"].as_f64().unwrap_or(f64::NAN);
    eprintln!(
        "xtask: net.tx_throughput: {accepted} submitted in {submitted_s:.1} s; waiting for all four nodes"
    );
    let deadline =
        Instant::now() + Duration::from_secs(if plan.accounts > 500 { 600 } else { 120 });
    let (elapsed, height) = loop {
        check_interrupted()?;
        let statuses: Vec<Status> = nodes
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
        for address in &addresses {
            let url = format!("{}/accounts/{address}", n.api);
            let account = get(&http, &url)?;
            sum += account["nonce"]
                .as_u64()
                .with_context(|| format!("GET {url}: no nonce in {account}"))?;
        }
        applied = applied.min(sum);
    }
    drop(nodes);
    if applied < total {
        eprintln!("xtask: net.tx_throughput: only {applied} of {total} transfers were applied");
    }
    let rate = applied as f64 / elapsed;
    Ok((
        format!(
            "bench: net.tx_throughput = {rate:.0} tx/s (4 nodes, --block-interval {}, {applied} of {total} transfers from {} accounts applied on all four in {elapsed:.1} s, {} blocks; signature bound {bound:.0} tx/s: {single_us:.0} us single + {batch_us:.0} us batch per node, {cores} cores)",
            plan.block_interval_ms,
            plan.accounts,
            height.saturating_sub(start_height)
        ),
        format!(
            "bench: net.api_p99 = {:.1} ms (under load: p50 {:.1} ms, {} submissions, {} at a time, in {submitted_s:.1} s, {retried} retried for a full mempool)",
            p99, p50, accepted, plan.submitters
        ),
    ))
}

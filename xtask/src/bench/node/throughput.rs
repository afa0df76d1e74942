//! `net.tx_throughput` and `net.api_p99`: four nodes, signed transfers
//! submitted concurrently to their APIs.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use escrow::genesis::Allocation;
use escrow::{Amount, Genesis, Keypair, Payload, SignedTx};
use p2p_node::api_types::{AccountAnswer, StatusAnswer, SubmitTx};

use super::process::{NodeProc, Spawn, get, http};
use super::{Plan, check_interrupted, quantile};

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

/// What one submitting thread saw.
#[derive(Default)]
struct Submitted {
    latencies_ms: Vec<f64>,
    retried: u64,
}

/// Submits `txs[a]` (account `a`'s transfers in nonce order) for the
/// accounts `a` with `a % tasks == t`, to node `a % 4`, nonce by nonce
/// across the accounts; retries what a full mempool refused. One of
/// `tasks` concurrent tasks, each with one request in flight.
async fn submit(
    http: reqwest::Client,
    apis: std::sync::Arc<Vec<String>>,
    txs: std::sync::Arc<Vec<Vec<String>>>,
    t: usize,
    tasks: usize,
) -> anyhow::Result<Submitted> {
    let mut out = Submitted::default();
    let mine: Vec<usize> = (t..txs.len()).step_by(tasks).collect();
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
                    .await
                    .with_context(|| format!("POST {url}"))?;
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                let elapsed = started.elapsed().as_secs_f64() * 1e3;
                if status.is_success() {
                    out.latencies_ms.push(elapsed);
                    break;
                }
                if text.contains("mempool_full") || text.contains("account_full") {
                    out.retried += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
                bail!("POST {url}: {status} {text}");
            }
        }
    }
    Ok(out)
}

/// Runs the `tasks` submitters of [`submit`] on a runtime of two threads
/// (the client is not what is measured: an async client spends less of
/// the machine's CPU per request than a thread per request does).
fn submit_all(
    apis: &[String],
    txs: Vec<Vec<String>>,
    tasks: usize,
) -> anyhow::Result<Vec<Submitted>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the submitting runtime")?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .pool_max_idle_per_host(tasks)
        .build()
        .context("cannot make an HTTP client")?;
    let apis = std::sync::Arc::new(apis.to_vec());
    let txs = std::sync::Arc::new(txs);
    runtime.block_on(async {
        let handles: Vec<_> = (0..tasks)
            .map(|t| tokio::spawn(submit(http.clone(), apis.clone(), txs.clone(), t, tasks)))
            .collect();
        let mut all = Vec::new();
        for h in handles {
            all.push(h.await.context("a submitting task panicked")??);
        }
        Ok(all)
    })
}

pub(super) fn throughput(
    binary: &Path,
    tmp: &Path,
    plan: &Plan,
) -> anyhow::Result<(String, String)> {
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

    let nodes = start_mesh(binary, tmp, &genesis_path, &http, plan)?;
    let apis: Vec<String> = nodes.iter().map(|n| n.api.clone()).collect();
    let start_height = nodes.first().context("no nodes")?.status(&http)?.height;
    let started = Instant::now();
    let results = submit_all(&apis, txs, plan.submitters)?;
    let mut latencies = Vec::new();
    let mut retried = 0;
    for r in results {
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
            "bench: net.tx_throughput = {rate:.0} tx/s (4 nodes, --block-interval {}, {applied} of {total} transfers from {} accounts applied on all four in {elapsed:.1} s, {} blocks; signature bound {bound:.0} tx/s: {single_us:.0} us single + {batch_us:.0} us batch per node, {cores} cores)",
            plan.block_interval_ms,
            plan.accounts,
            height.saturating_sub(start_height)
        ),
        format!(
            "bench: net.api_p99 = {:.1} ms (under load: p50 {:.1} ms, {} submissions, {} at a time, in {submitted_s:.1} s, {retried} retried for a full mempool)",
            quantile(&latencies, 0.99),
            quantile(&latencies, 0.5),
            latencies.len(),
            plan.submitters
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn benchmark_accounts_are_distinct_and_their_transfers_verify() {
        let keys: Vec<Keypair> = (0..50).map(account_key).collect();
        let mut addresses: Vec<_> = keys.iter().map(Keypair::address).collect();
        addresses.sort();
        addresses.dedup();
        assert_eq!(addresses.len(), 50);
        let network = Genesis::dev().network_id();
        let txs: Vec<SignedTx> = keys
            .iter()
            .map(|k| {
                let to = addresses[0];
                SignedTx::sign(
                    k,
                    0,
                    network,
                    Payload::Transfer {
                        to,
                        amount: Amount::new(1),
                    },
                )
            })
            .collect();
        let (single, batch) = signature_costs(&txs).unwrap();
        assert!(single > 0.0 && batch > 0.0);
    }
}

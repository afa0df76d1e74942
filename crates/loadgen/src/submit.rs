//! `loadgen submit`: the prepared transfers sent to the nodes' APIs by
//! concurrent requests, with the latency of each accepted one.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// What one submitting task saw.
#[derive(Default)]
struct Submitted {
    latencies_ms: Vec<f64>,
    retried: u64,
}

/// Reads `transfers.txt`: per account (one line), its transactions in hex,
/// in nonce order, after its address.
fn read_transfers(path: &Path) -> anyhow::Result<Vec<Vec<String>>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().skip(1).map(str::to_string).collect())
        .collect())
}

/// Submits `txs[a]` (account `a`'s transfers in nonce order) for the
/// accounts `a` with `a % tasks == t`, to API `a % apis.len()`, nonce by
/// nonce across the accounts; retries what a full mempool refused. One of
/// `tasks` concurrent tasks, each with one request in flight.
async fn submit(
    http: reqwest::Client,
    apis: Arc<Vec<String>>,
    txs: Arc<Vec<Vec<String>>>,
    t: usize,
    tasks: usize,
) -> anyhow::Result<Submitted> {
    let mut out = Submitted::default();
    let mine: Vec<usize> = (t..txs.len()).step_by(tasks).collect();
    let rounds = txs.iter().map(Vec::len).max().unwrap_or(0);
    for n in 0..rounds {
        for &a in &mine {
            let Some(tx) = txs[a].get(n) else { continue };
            let url = format!("{}/txs", apis[a % apis.len()]);
            let body = serde_json::json!({ "tx": tx });
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

/// The `p`-th quantile (0 to 1) of sorted values, nearest rank.
fn quantile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Runs the `tasks` submitters of [`submit`] on a runtime of two threads
/// (the client is not what is measured: an async client spends less of
/// the machine's CPU per request than a thread per request does); returns
/// the JSON answer.
pub(crate) fn run(transfers: &Path, apis: &[String], tasks: usize) -> anyhow::Result<String> {
    anyhow::ensure!(tasks > 0, "--concurrency must be at least 1");
    let txs = read_transfers(transfers)?;
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
    let apis = Arc::new(apis.to_vec());
    let txs = Arc::new(txs);
    let started = Instant::now();
    let results = runtime.block_on(async {
        let handles: Vec<_> = (0..tasks)
            .map(|t| tokio::spawn(submit(http.clone(), apis.clone(), txs.clone(), t, tasks)))
            .collect();
        let mut all = Vec::new();
        for h in handles {
            all.push(h.await.context("a submitting task panicked")??);
        }
        anyhow::Ok(all)
    })?;
    let seconds = started.elapsed().as_secs_f64();
    let mut latencies = Vec::new();
    let mut retried = 0;
    for r in results {
        latencies.extend(r.latencies_ms);
        retried += r.retried;
    }
    latencies.sort_by(f64::total_cmp);
    Ok(serde_json::json!({
        "accepted": latencies.len(),
        "retried": retried,
        "seconds": seconds,
        "p50_ms": quantile(&latencies, 0.5),
        "p99_ms": quantile(&latencies, 0.99),
    })
    .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let sorted: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&sorted, 0.5), 50.0);
        assert_eq!(quantile(&sorted, 0.99), 99.0);
        assert_eq!(quantile(&sorted, 1.0), 100.0);
        assert_eq!(quantile(&sorted, 0.0), 1.0);
        assert_eq!(quantile(&[7.0], 0.99), 7.0);
        assert!(quantile(&[], 0.5).is_nan());
    }

    #[test]
    fn the_transfers_file_gives_each_account_its_transactions_without_the_address() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("transfers.txt");
        std::fs::write(&path, "addr0 aa bb\naddr1 cc\n\n").unwrap();
        let txs = read_transfers(&path).unwrap();
        assert_eq!(txs, vec![vec!["aa", "bb"], vec!["cc"]]);
    }
}

//! Measures `GET /status` while a node syncs many blocks from a peer:
//! `cargo run --release -p p2p-node --example status_latency -- 20000`.
//!
//! Node A mines N blocks (an easy target), node B starts empty with its
//! HTTP API, dials A and syncs; meanwhile a client asks B's `/status` in a
//! loop and the medians of the answers' latencies are printed, idle and
//! syncing. A measurement, not a test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use chain_core::ChainParams;
use escrow::Genesis;
use p2p_node::{NodeConfig, Seams, Service};

fn config() -> NodeConfig {
    let mut g = Genesis::dev();
    g.params = ChainParams::with_target_bits(8);
    let mut c = NodeConfig::new(g);
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.api = Some("127.0.0.1:0".parse().unwrap());
    c
}

fn stats(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q) as usize].as_secs_f64() * 1e3;
    println!(
        "{name}: {} reads, median {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        v.len(),
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    );
}

#[tokio::main]
async fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let a = Service::start(config(), Seams::default()).await.unwrap();
    let started = Instant::now();
    let mut left = n;
    while left > 0 {
        let k = left.min(1_000);
        a.node().mine_blocks(k).await.unwrap();
        left -= k;
    }
    println!(
        "A mined {n} blocks in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let b = Service::start(config(), Seams::default()).await.unwrap();
    let url = format!("http://{}/status", b.api_addr().unwrap());
    let client = reqwest::Client::new();
    let read = || async {
        let t = Instant::now();
        let s: serde_json::Value = client.get(&url).send().await.unwrap().json().await.unwrap();
        (t.elapsed(), s["height"].as_u64().unwrap_or(0))
    };
    let mut idle = Vec::new();
    for _ in 0..500 {
        idle.push(read().await.0);
    }
    stats("idle", idle);

    b.node().add_peer(a.node().local_addr()).await.unwrap();
    let started = Instant::now();
    let mut syncing = Vec::new();
    loop {
        let (took, height) = read().await;
        if height >= n {
            break;
        }
        if height > 0 {
            syncing.push(took);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    println!(
        "B synced {n} blocks in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    stats("while syncing", syncing);
    b.shutdown().await;
    a.shutdown().await;
}

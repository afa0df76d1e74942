//! Network benchmarks over loopback, nodes in this process:
//!
//! - `net/sync`: a fresh node syncing a 2,000-block chain from one peer,
//!   from start to reaching the peer's tip (blocks per second).
//! - `net/propagation`: a block mined on one node of a 4-node full mesh
//!   reaching the other three (time per block; criterion's median over
//!   many blocks is the p50 `cargo xtask bench` prints).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chain_core::ChainParams;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use escrow::Genesis;
use p2p_node::{MiningMode, Node, NodeConfig, NodeHandle};

const CHAIN: u64 = 2_000;

fn config(peers: &[SocketAddr]) -> NodeConfig {
    let mut g = Genesis::dev();
    g.params = ChainParams::with_target_bits(8);
    let mut c = NodeConfig::new(g);
    c.peers = peers.to_vec();
    c.mining = MiningMode::Off;
    c.min_backoff = Duration::from_millis(10);
    c
}

async fn until(mut done: impl AsyncFnMut() -> bool) {
    while !done().await {
        tokio::task::yield_now().await;
    }
}

async fn tip(n: &NodeHandle) -> chain_core::BlockHash {
    n.tip().await.unwrap().0
}

fn net(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("net");
    group.sample_size(10);

    // A source node with a 2,000-block chain.
    let source = rt.block_on(async {
        let n = Node::start(config(&[])).await.unwrap();
        n.mine_blocks(CHAIN).await.unwrap();
        n
    });
    let source_tip = rt.block_on(tip(&source));
    group.throughput(Throughput::Elements(CHAIN));
    group.bench_function("sync", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let fresh = Node::start(config(&[source.local_addr()])).await.unwrap();
                    until(async || tip(&fresh).await == source_tip).await;
                    total += start.elapsed();
                    fresh.shutdown().await;
                }
                total
            })
        })
    });
    rt.block_on(source.shutdown());

    // A 4-node full mesh.
    let mesh = rt.block_on(async {
        let mut nodes: Vec<NodeHandle> = Vec::new();
        for _ in 0..4 {
            let peers: Vec<SocketAddr> = nodes.iter().map(NodeHandle::local_addr).collect();
            nodes.push(Node::start(config(&peers)).await.unwrap());
        }
        for n in &nodes {
            until(async || n.query(|v| v.peers.len()).await.unwrap() == 3).await;
        }
        nodes
    });
    group.throughput(Throughput::Elements(1));
    group.sample_size(50);
    group.bench_function("propagation", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let hash = mesh[0].mine_blocks(1).await.unwrap()[0];
                    let start = Instant::now();
                    for n in &mesh[1..] {
                        until(async || tip(n).await == hash).await;
                    }
                    total += start.elapsed();
                }
                total
            })
        })
    });
    group.finish();
    rt.block_on(async {
        for n in &mesh {
            n.shutdown().await;
        }
    });
}

criterion_group!(benches, net);
criterion_main!(benches);

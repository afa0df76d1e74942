//! The mining loop against the machine's own SHA-256 ceiling, in one run:
//!
//! - `mining/ceiling`: `sha2`'s compression function on one 64-byte block
//!   after another, one stream (the reference rate).
//! - `mining/naive.1t`: the whole header hashed per nonce, no midstate.
//! - `mining/midstate.1t`: the production kernel (`Kernel::detect`) on one
//!   thread.
//! - `mining/midstate.all`: the production miner on every core.
//!
//! Each iteration hashes a fixed number of nonces against an impossible
//! target, and the throughput is set in hashes, so criterion reports
//! hashes per second. `cargo xtask bench` turns these into `bench:` lines.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use chain_core::miner::{Job, Kernel, Miner, scan_naive};
use chain_core::{BlockHash, Header, MerkleRoot, Target};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Nonces per iteration on one thread.
const NONCES: u64 = 1 << 18;

fn header() -> Header {
    Header {
        version: 1,
        height: 42,
        parent: BlockHash::from_bytes([0x11; 32]),
        merkle_root: MerkleRoot::from_bytes([0x22; 32]),
        timestamp_ms: 1_700_000_000_000,
        target: Target::MIN.to_compact(),
        nonce: 0,
    }
}

fn mining(c: &mut Criterion) {
    let header = header();
    let job = Job::with_target(&header, Target::MIN);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let kernel = Kernel::detect();
    eprintln!("mining kernel: {} on {threads} threads", kernel.name());

    let mut group = c.benchmark_group("mining");
    group.throughput(Throughput::Elements(NONCES));
    group.bench_function("ceiling", |b| {
        let blocks = [[0x5au8; 64]];
        b.iter(|| {
            let mut state = job.midstate;
            for _ in 0..NONCES {
                sha2::block_api::compress256(&mut state, black_box(&blocks));
            }
            black_box(state)
        })
    });
    group.bench_function("naive.1t", |b| {
        b.iter(|| black_box(scan_naive(&header, Target::MIN, 0, NONCES)))
    });
    group.bench_function("midstate.1t", |b| {
        b.iter(|| black_box(kernel.scan(&job, 0, NONCES)))
    });
    let miner = Miner::new(threads);
    let all = NONCES * threads as u64;
    group.throughput(Throughput::Elements(all));
    group.bench_function("midstate.all", |b| {
        b.iter(|| black_box(miner.scan(&job, 0, all)))
    });
    group.finish();

    // Every kernel, for the record in docs/PERFORMANCE.md.
    let mut kernels = c.benchmark_group("kernels");
    kernels.throughput(Throughput::Elements(NONCES));
    for k in Kernel::available() {
        kernels.bench_function(k.name().replace(' ', "_"), |b| {
            b.iter(|| black_box(k.scan(&job, 0, NONCES)))
        });
    }
    kernels.finish();
}

criterion_group!(benches, mining);
criterion_main!(benches);

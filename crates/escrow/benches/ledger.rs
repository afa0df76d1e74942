//! Applying a block of 1,000 signed transfers, signature checks included.
//!
//! - `ledger/apply_block`: 100 senders with ten transfers each, ZIP 215
//!   batches split over every core of the persistent pool.
//! - `ledger/apply_block.batch.1t`: the same block on one thread.
//! - `ledger/apply_block.distinct`: 1,000 distinct senders, every core.
//! - `ledger/apply_block.single`: one signature at a time.
//! - `ledger/threads.N`: the repeated-sender block on N threads, for the
//!   scaling table (N = 1, 2, 4, 8, 16 up to the machine's cores).
//! - `signatures/threads.N`: the same block's signature checks alone.
//! - `signatures/single`: the same block's 1,000 signatures checked one at
//!   a time on one thread, every key seen before (its 100 senders sign
//!   again and again, as a network's accounts do).
//! - `cache/all` and `cache/none`: the repeated-sender block on every core
//!   with a signature cache that holds every one of its signatures (as
//!   after admission to the mempool) or none of them (but is not empty,
//!   so every signature is looked up).
//! - `state/admit_verified`: the block's 1,000 transfers applied to a
//!   fresh copy of the ledger without signature checks (the state's share
//!   of the work, copy included).
//!
//! `cargo xtask bench` reads them as transactions per second.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use chain_core::{BlockContext, BlockHash, StateMachine};
use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use escrow::{Amount, Genesis, Keypair, Ledger, Payload, SigCache, SignedTx, Tx, VerifyMode, dev};

const TXS: usize = 1_000;

/// A ledger after genesis, and a block of 1,000 transfers to Bob from
/// `senders` funded accounts (round robin, consecutive nonces).
fn setup(senders: usize) -> (Ledger, Vec<Tx>, BlockContext) {
    let mut genesis = Genesis::dev();
    let keys: Vec<Keypair> = (0..senders)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
            Keypair::from_seed(seed)
        })
        .collect();
    for k in &keys {
        genesis.allocations.push(escrow::genesis::Allocation {
            to: k.address(),
            amount: Amount::new(1_000_000),
        });
    }
    let chain = genesis.chain().unwrap();
    let ledger = chain.state().clone();
    let bob = dev::address("bob").unwrap();
    let mut txs = vec![Tx::Coinbase {
        to: dev::address("ferdie").unwrap(),
        height: 1,
    }];
    for i in 0..TXS {
        let k = &keys[i % keys.len()];
        let nonce = (i / keys.len()) as u64;
        txs.push(Tx::Signed(SignedTx::sign(
            k,
            nonce,
            escrow::Amount::ZERO,
            ledger.network(),
            Payload::Transfer {
                to: bob,
                amount: Amount::new(1),
            },
        )));
    }
    let ctx = BlockContext {
        hash: BlockHash::from_bytes([1; 32]),
        height: 1,
        timestamp_ms: genesis.timestamp_ms + 1,
    };
    (ledger, txs, ctx)
}

fn ledger(c: &mut Criterion) {
    let repeated = setup(100);
    let distinct = setup(TXS);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut group = c.benchmark_group("ledger");
    group.throughput(Throughput::Elements(TXS as u64));
    let mut run = |id: String, (base, txs, ctx): &(Ledger, Vec<Tx>, BlockContext), mode| {
        let mut ledger = base.clone();
        ledger.set_verify_mode(mode);
        group.bench_function(id, |b| {
            b.iter_batched_ref(
                || ledger.clone(),
                |l| l.apply_block(ctx, txs).unwrap(),
                BatchSize::LargeInput,
            )
        });
    };
    let all = VerifyMode::Batch { threads: cores };
    run("apply_block".into(), &repeated, all);
    run(
        "apply_block.batch.1t".into(),
        &repeated,
        VerifyMode::Batch { threads: 1 },
    );
    run("apply_block.distinct".into(), &distinct, all);
    run("apply_block.single".into(), &repeated, VerifyMode::Single);
    for threads in [1, 2, 4, 8, 16].into_iter().filter(|&t| t <= cores) {
        run(
            format!("threads.{threads}"),
            &repeated,
            VerifyMode::Batch { threads },
        );
    }
    group.finish();

    // The signature checks alone, without the state, on N threads.
    let mut group = c.benchmark_group("signatures");
    group.throughput(Throughput::Elements(TXS as u64));
    let signed: Vec<&SignedTx> = repeated
        .1
        .iter()
        .filter_map(|t| match t {
            Tx::Signed(s) => Some(s),
            _ => None,
        })
        .collect();
    for threads in [1, 2, 4, 8, 16].into_iter().filter(|&t| t <= cores) {
        group.bench_function(format!("threads.{threads}"), |b| {
            b.iter(|| escrow::signature::verify_block(&signed, threads).unwrap())
        });
    }
    group.bench_function("single", |b| {
        b.iter(|| {
            for tx in &signed {
                escrow::signature::check(tx).unwrap();
            }
        })
    });
    group.finish();

    // A block whose signatures are all cached, or none.
    let mut group = c.benchmark_group("cache");
    group.throughput(Throughput::Elements(TXS as u64));
    let all_cached = Arc::new(SigCache::new(10 * TXS));
    for tx in &signed {
        all_cached.check(tx).unwrap();
    }
    let none_cached = Arc::new(SigCache::new(10 * TXS));
    let (_, others, _) = &distinct;
    if let Some(Tx::Signed(other)) = others.get(1) {
        none_cached.check(other).unwrap();
    }
    for (id, cache) in [("all", all_cached), ("none", none_cached)] {
        let (base, txs, ctx) = &repeated;
        let mut ledger = base.clone();
        ledger.set_verify_mode(all);
        ledger.set_sig_cache(cache);
        group.bench_function(id, |b| {
            b.iter_batched_ref(
                || ledger.clone(),
                |l| l.apply_block(ctx, txs).unwrap(),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();

    // The state alone: a copy of the ledger, then every transfer applied
    // (signatures not checked), as the mempool does on a rebuild.
    let mut group = c.benchmark_group("state");
    group.throughput(Throughput::Elements(TXS as u64));
    group.bench_function("admit_verified", |b| {
        b.iter(|| {
            let mut state = escrow::PendingState::new(&repeated.0, 1);
            for tx in &signed {
                state.admit_verified(tx).unwrap();
            }
            state
        })
    });
    group.finish();
}

criterion_group!(benches, ledger);
criterion_main!(benches);

//! The mempool's fee policy at its default bound of 10,000 transactions
//! (1,000 senders, 10 each, fee rates spread from 1 to about 400 coins
//! per kB):
//!
//! - `mempool/select`: choosing a block's transactions by package fee
//!   rate from the full pool (what every block template costs);
//! - `mempool/refuse_full`: a full pool refusing, again and again, a
//!   transaction whose fee rate is too low to evict anything (what each
//!   transaction of a flood at the pool's minimum costs);
//! - `mempool/evict`: a full pool admitting a better-paying transaction,
//!   evicting the cheapest chain's last and re-checking the rest;
//! - `mempool/replace`: a replacement by fee in the full pool.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use escrow::genesis::Allocation;
use escrow::{Amount, Genesis, Keypair, Payload, SignedTx};
use p2p_node::mempool::Mempool;

const SENDERS: usize = 1_000;
const EACH: u64 = 10;

fn key(i: usize) -> Keypair {
    let mut seed = [7u8; 32];
    seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
    Keypair::from_seed(seed)
}

fn pay(k: &Keypair, nonce: u64, fee: u64, network: chain_core::BlockHash) -> SignedTx {
    SignedTx::sign(
        k,
        nonce,
        Amount::new(fee),
        network,
        Payload::Transfer {
            to: key(0).address(),
            amount: Amount::new(1),
        },
    )
}

fn mempool(c: &mut Criterion) {
    let keys: Vec<Keypair> = (0..=SENDERS).map(key).collect();
    let mut genesis = Genesis::dev();
    genesis.allocations = keys
        .iter()
        .map(|k| Allocation {
            to: k.address(),
            amount: Amount::new(1_000_000),
        })
        .collect();
    let chain = genesis.chain().unwrap();
    let ledger = chain.state();
    let network = ledger.network();
    let mut full = Mempool::new(ledger, 1, SENDERS * EACH as usize, 256);
    for (i, k) in keys.iter().enumerate().take(SENDERS) {
        for n in 0..EACH {
            // 1 to 64 coins for about 164 bytes: 6 to 390 coins per kB.
            let fee = 1 + ((i as u64 * 7 + n * 13) % 64);
            full.add(pay(k, n, fee, network), None).unwrap();
        }
    }
    assert_eq!(full.len(), SENDERS * EACH as usize);
    let params = chain.params().clone();
    let newcomer = &keys[SENDERS];

    let mut group = c.benchmark_group("mempool");
    group.sample_size(10);
    group.bench_function("select", |b| {
        b.iter(|| full.select(ledger, 1, params.max_block_txs - 1, params.max_block_bytes))
    });
    let cheap = pay(newcomer, 0, 1, network);
    // One pool, refusing again and again (a refusal changes nothing).
    let mut flooded = full.clone();
    group.bench_function("refuse_full", |b| {
        b.iter(|| assert!(flooded.add(cheap.clone(), None).is_err()))
    });
    let better = pay(newcomer, 0, 500, network);
    group.bench_function("evict", |b| {
        b.iter_batched(
            || full.clone(),
            |mut pool| pool.add(better.clone(), None).unwrap(),
            BatchSize::LargeInput,
        )
    });
    let replacement = SignedTx::sign(
        &keys[3],
        9,
        Amount::new(500),
        network,
        Payload::Transfer {
            to: key(1).address(),
            amount: Amount::new(2),
        },
    );
    group.bench_function("replace", |b| {
        b.iter_batched(
            || full.clone(),
            |mut pool| pool.add(replacement.clone(), None).unwrap(),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, mempool);
criterion_main!(benches);

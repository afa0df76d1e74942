//! Applying a block of 1,000 signed transfers, signature checks included:
//! batch verification (split over the cores) against one-by-one.
//! `cargo xtask bench` reads `ledger/apply_block` and
//! `ledger/apply_block.single` as transactions per second.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use chain_core::{BlockContext, BlockHash, StateMachine};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use escrow::{Amount, Genesis, Keypair, Ledger, Payload, SignedTx, Tx, VerifyMode, dev};

const TXS: usize = 1_000;

/// A ledger after genesis, and a block of 1,000 transfers from 100 funded
/// accounts (ten each, consecutive nonces) to Bob.
fn setup() -> (Ledger, Vec<Tx>, BlockContext) {
    let mut genesis = Genesis::dev();
    let senders: Vec<Keypair> = (0..100u8)
        .map(|i| Keypair::from_seed([i.wrapping_add(1); 32]))
        .collect();
    for k in &senders {
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
        let k = &senders[i % senders.len()];
        let nonce = (i / senders.len()) as u64;
        txs.push(Tx::Signed(SignedTx::sign(
            k,
            nonce,
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
    let (base, txs, ctx) = setup();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut group = c.benchmark_group("ledger");
    group.throughput(Throughput::Elements(TXS as u64));
    for (id, mode) in [
        ("apply_block", VerifyMode::Batch { threads }),
        ("apply_block.single", VerifyMode::Single),
    ] {
        let mut ledger = base.clone();
        ledger.set_verify_mode(mode);
        group.bench_function(id, |b| {
            b.iter_batched_ref(
                || ledger.clone(),
                |l| l.apply_block(&ctx, &txs).unwrap(),
                BatchSize::LargeInput,
            )
        });
    }
    let mut one_core = base.clone();
    one_core.set_verify_mode(VerifyMode::Batch { threads: 1 });
    group.bench_function("apply_block.batch.1t", |b| {
        b.iter_batched_ref(
            || one_core.clone(),
            |l| l.apply_block(&ctx, &txs).unwrap(),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, ledger);
criterion_main!(benches);

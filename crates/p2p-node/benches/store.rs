//! What a store commit costs (`RedbStore`, a data directory in the
//! system's temporary directory): the simulator's processor model takes
//! its commit costs from these (`crates/sim/src/cpu.rs`,
//! `docs/SIMULATION.md`, "Simulated processors").
//!
//! - `store/commit_empty`: one coinbase-only block and its index change,
//!   in one durable commit: the per-commit cost.
//! - `store/commit_2000tx`: one block of 2,000 signed transfers (about
//!   300 kB) and its index change: with the first, the per-byte cost.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use chain_core::{Block, Header};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use escrow::{Amount, Genesis, Payload, SignedTx, Tx, dev};
use p2p_node::store::{BlockStore, Commit, IndexChange, RedbStore};

/// A block at `height` holding a coinbase and `txs` transfers. The store
/// does not validate: its header only has to hash uniquely.
fn block(height: u64, transfers: &[Tx]) -> Block<Tx> {
    let chain = Genesis::dev().chain().unwrap();
    let mut header: Header = chain.template(&[], 0);
    header.height = height;
    let mut transactions = vec![Tx::Coinbase {
        to: dev::address("eve").unwrap(),
        height,
    }];
    transactions.extend_from_slice(transfers);
    Block {
        header,
        transactions,
    }
}

fn transfers(n: u64) -> Vec<Tx> {
    let alice = dev::keypair("alice").unwrap();
    let to = dev::address("bob").unwrap();
    let network = Genesis::dev().ledger().network();
    (0..n)
        .map(|nonce| {
            let pay = Payload::Transfer {
                to,
                amount: Amount::new(1),
            };
            Tx::Signed(SignedTx::sign(
                &alice,
                nonce,
                escrow::Amount::new(1),
                network,
                pay,
            ))
        })
        .collect()
}

fn commit_of(block: Block<Tx>) -> Commit {
    let block = Arc::new(block);
    Commit {
        blocks: vec![block.clone()],
        index: vec![IndexChange::Applied(block)],
        ..Commit::default()
    }
}

fn store(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path()).unwrap();
    let mut group = c.benchmark_group("store");
    group.sample_size(20);
    let mut height = 0;
    for (name, txs) in [("commit_empty", 0), ("commit_2000tx", 2_000)] {
        let body = transfers(txs);
        let bytes = wire::encoded_len(&block(1, &body));
        println!("store/{name}: a block of {bytes} bytes");
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    height += 1;
                    commit_of(block(height, &body))
                },
                |commit| store.commit(&commit).unwrap(),
                criterion::BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, store);
criterion_main!(benches);

//! Fee estimates from the pool and from recent full blocks, and the pool's
//! histogram.

#![allow(clippy::unwrap_used)]

use chain_core::{Block, ChainParams};
use escrow::{Amount, FeeRate, Genesis, SignedTx, Tx, dev};
use tokio::time::Instant;

use crate::mempool::Mempool;
use crate::mempool::test_txs::pay;

#[test]
fn an_empty_network_asks_the_minimum() {
    let chain = Genesis::dev().chain().unwrap();
    let pool = Mempool::new(chain.state(), 1, 100, 100);
    let e = pool.estimate(2, chain.params(), [], Instant::now());
    assert_eq!(e.fee_rate, pool.policy().min_relay);
    assert_eq!((e.from_pool, e.from_blocks), (None, None));
}

#[test]
fn a_pool_fuller_than_the_blocks_asked_for_asks_more_than_its_last_that_fits() {
    let chain = Genesis::dev().chain().unwrap();
    let ledger = chain.state();
    let mut pool = Mempool::new(ledger, 1, 100, 100);
    // Fees 10, 20, ..., 60 from six senders: about 164 bytes each.
    let names = ["alice", "bob", "charlie", "dave", "eve", "ferdie"];
    let txs: Vec<SignedTx> = names
        .iter()
        .enumerate()
        .map(|(i, n)| pay(ledger, n, 0, 10 * (i as u64 + 1)))
        .collect();
    for tx in &txs {
        pool.add(tx.clone(), None).unwrap();
    }
    let size = txs[0].size();
    // Blocks of two transactions' bytes: within one block only the two
    // best get in, so the estimate beats the second best (50).
    let params = ChainParams {
        max_block_bytes: 2 * size + 1,
        ..chain.params().clone()
    };
    let e = pool.estimate(1, &params, [], Instant::now());
    let second = FeeRate::of(Amount::new(50), size);
    assert_eq!(e.from_pool, Some(second.saturating_add(FeeRate::per_kb(1))));
    assert_eq!(e.fee_rate, e.from_pool.unwrap());
    // Within three blocks: six fit, the pool says nothing.
    let e = pool.estimate(3, &params, [], Instant::now());
    assert_eq!(e.from_pool, None);
    // The histogram: every transaction in one band or another.
    let bands = pool.fee_histogram();
    assert_eq!(bands.iter().map(|b| b.count).sum::<usize>(), 6);
    assert!(bands.windows(2).all(|w| w[0].to < w[1].from));
    for b in &bands {
        assert!(b.from <= b.to);
    }
}

#[test]
fn recent_full_blocks_ask_the_median_of_their_lowest_rates() {
    let chain = Genesis::dev().chain().unwrap();
    let ledger = chain.state();
    let block = |fees: &[u64]| Block {
        header: chain.template(&[], 0),
        transactions: std::iter::once(Tx::Coinbase {
            to: dev::address("eve").unwrap(),
            height: 1,
        })
        .chain(
            fees.iter()
                .enumerate()
                .map(|(n, f)| Tx::Signed(pay(ledger, "alice", n as u64, *f))),
        )
        .collect::<Vec<_>>(),
    };
    let params = ChainParams {
        max_block_txs: 3,
        ..chain.params().clone()
    };
    // Three full blocks (three transactions: the limit) with lowest fees
    // 5, 9 and 7; one that is not full, with a low fee that says nothing.
    let blocks = [
        block(&[5, 50, 60]),
        block(&[1]),
        block(&[9, 90, 99]),
        block(&[70, 7, 80]),
    ];
    let pool = Mempool::new(ledger, 1, 100, 100);
    let e = pool.estimate(1, &params, blocks.iter(), Instant::now());
    let size = pay(ledger, "alice", 0, 7).size();
    assert_eq!(e.from_blocks, Some(FeeRate::of(Amount::new(7), size)));
    assert_eq!(e.fee_rate, e.from_blocks.unwrap());
}

//! Choosing a block's transactions: by fee rate, each sender's nonces in
//! order, prefixes judged as packages, dependencies between senders kept.

#![allow(clippy::unwrap_used)]

use escrow::{Genesis, dev};

use crate::mempool::Mempool;
use crate::mempool::test_txs::{pay, pay_from, pay_to};

#[test]
fn the_best_paying_go_first_each_senders_nonces_in_order() {
    let chain = Genesis::dev().chain().unwrap();
    let ledger = chain.state();
    let mut pool = Mempool::new(ledger, 1, 100, 100);
    let a0 = pay(ledger, "alice", 0, 2);
    let c0 = pay(ledger, "charlie", 0, 5);
    // Dave's first pays little, his second a lot: as a package the two
    // beat Charlie's (40 for two against 5 for one).
    let d0 = pay(ledger, "dave", 0, 1);
    let d1 = pay(ledger, "dave", 1, 39);
    for tx in [&a0, &c0, &d0, &d1] {
        pool.add(tx.clone(), None).unwrap();
    }
    // Everything fits: all of it, in the pool's order.
    let all = pool.select(ledger, 1, 100, 1 << 20);
    assert_eq!(all, pool.txs());
    // Room for three: the best package whole, then the next best.
    assert_eq!(
        pool.select(ledger, 1, 3, 1 << 20),
        vec![d0.clone(), d1.clone(), c0.clone()]
    );
    // Room for two: the best package whole.
    assert_eq!(pool.select(ledger, 1, 2, 1 << 20), vec![d0, d1]);
    // Room for one transaction's bytes: the best single one that fits is
    // Charlie's (Dave's package does not fit, and his second cannot go
    // before his first).
    let one = c0.size() + 1;
    assert_eq!(pool.select(ledger, 1, 100, one), vec![c0]);
}

#[test]
fn a_payment_waits_for_the_transfer_it_spends() {
    let chain = Genesis::dev().chain().unwrap();
    let ledger = chain.state();
    let mut pool = Mempool::new(ledger, 1, 100, 100);
    let fresh = escrow::Keypair::generate().unwrap();
    let fund = pay_to(ledger, "alice", 0, 1, fresh.address(), 1_000);
    let bob = dev::address("bob").unwrap();
    let spend = pay_from(ledger, &fresh, 0, 100, bob, 500);
    let other = pay(ledger, "charlie", 0, 3);
    for tx in [&fund, &spend, &other] {
        pool.add(tx.clone(), None).unwrap();
    }
    // The spend pays best but needs the funding, which pays least: with
    // room for all but one more, the spend waits for the funding.
    let fourth = pay(ledger, "dave", 0, 2);
    pool.add(fourth.clone(), None).unwrap();
    let chosen = pool.select(ledger, 1, 3, 1 << 20);
    assert_eq!(chosen, vec![other, fourth, fund]);
    let chosen = pool.select(ledger, 1, 4, 1 << 20);
    assert_eq!(chosen.len(), 4);
    // Whatever is chosen applies in that order.
    let mut state = escrow::PendingState::new(ledger, 1);
    for tx in &chosen {
        state.admit_verified(tx).unwrap();
    }
}

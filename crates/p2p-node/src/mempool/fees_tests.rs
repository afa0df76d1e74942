//! The fee policy: the minimum relay fee, eviction of the cheapest
//! packages from a full pool, the pool's rising and decaying minimum, and
//! replacement by fee.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use escrow::{Amount, FeeRate, Genesis, Ledger, Memo, Payload, SignedTx, dev};
use tokio::time::Instant;

use crate::mempool::policy::{FeePolicy, MIN_FEE_HALF_LIFE, RollingMin};
use crate::mempool::test_txs::{pay_fee, pay_from, pay_to};
use crate::mempool::{Mempool, MempoolError};

fn pool(ledger: &Ledger, max: usize) -> Mempool {
    Mempool::new(ledger, 1, max, 100)
}

#[test]
fn below_the_minimum_relay_fee_is_refused_with_what_it_takes() {
    let chain = Genesis::dev().chain().unwrap();
    let ledger = chain.state();
    let mut p = pool(ledger, 10);
    p.set_policy(FeePolicy {
        min_relay: FeeRate::per_kb(10),
        ..FeePolicy::default()
    });
    let cheap = pay_fee(ledger, "alice", 0, 1, "bob", 5);
    let size = cheap.size();
    match p.add(cheap, None) {
        Err(MempoolError::FeeTooLow { min, needed, rate }) => {
            assert_eq!(min, FeeRate::per_kb(10));
            assert_eq!(needed, FeeRate::per_kb(10).fee_for(size));
            assert_eq!(rate, FeeRate::of(Amount::new(1), size));
        }
        other => panic!("{other:?}"),
    }
    let needed = FeeRate::per_kb(10).fee_for(size).get();
    p.add(pay_fee(ledger, "alice", 0, needed, "bob", 5), None)
        .unwrap();
    // A zero fee is refused by default too.
    let mut p = pool(ledger, 10);
    assert!(matches!(
        p.add(pay_fee(ledger, "alice", 0, 0, "bob", 5), None),
        Err(MempoolError::FeeTooLow { .. })
    ));
}

#[test]
fn a_full_pool_evicts_the_cheapest_chain_and_raises_its_minimum() {
    let chain = Genesis::dev().chain().unwrap();
    let ledger = chain.state();
    let mut p = pool(ledger, 4);
    let now = Instant::now();
    // An attacker fills the pool at the minimum fee.
    let flood: Vec<SignedTx> = (0..4)
        .map(|n| pay_fee(ledger, "eve", n, 1, "dave", 1))
        .collect();
    for tx in &flood {
        p.add_at(tx.clone(), None, now).unwrap();
        crate::mempool::tests::assert_view_shows(&p, "the flood");
    }
    // Another at the minimum does not get in, and is told the rate.
    let more = pay_fee(ledger, "eve", 4, 1, "dave", 1);
    let Err(MempoolError::FeeTooLow { min, .. }) = p.add_at(more, None, now) else {
        panic!("a full pool took an equal fee");
    };
    assert!(min > FeeRate::of(Amount::new(1), flood[0].size()));
    // An honest payment paying more gets in: the attacker's last goes.
    let honest = pay_fee(ledger, "alice", 0, 10, "bob", 100);
    let id = p.add_at(honest, None, now).unwrap();
    assert!(p.contains(&id));
    assert_eq!(p.len(), 4);
    let last = flood[3].id();
    assert!(!p.contains(&last));
    assert!(p.dropped(&last).unwrap().reason.starts_with("evicted"));
    crate::mempool::tests::assert_view_shows(&p, "after an eviction");
    // The pool's minimum rose above what was evicted...
    let evicted_rate = FeeRate::of(Amount::new(4), 4 * flood[0].size());
    let raised = p.min_fee_rate(now);
    assert!(
        raised > evicted_rate,
        "{raised} after evicting at {evicted_rate}"
    );
    let cheap = pay_fee(ledger, "charlie", 0, 1, "bob", 1);
    assert!(matches!(
        p.add_at(cheap.clone(), None, now),
        Err(MempoolError::FeeTooLow { .. })
    ));
    // ... and decays back: the pool is full, so its half-life is 12 hours.
    assert!(p.min_fee_rate(now + Duration::from_secs(6 * 3600)) < raised);
    assert!(p.min_fee_rate(now + Duration::from_secs(12 * 3600)) < raised);
    assert_eq!(
        p.min_fee_rate(now + Duration::from_secs(30 * 24 * 3600)),
        p.policy().min_relay
    );
}

#[test]
fn the_byte_bound_holds_and_large_cheap_transactions_go_first() {
    let chain = Genesis::dev().chain().unwrap();
    let ledger = chain.state();
    let mut p = pool(ledger, 1_000);
    let memo = |who: &str, fee: u64| {
        SignedTx::sign(
            &dev::keypair(who).unwrap(),
            0,
            Amount::new(fee),
            ledger.network(),
            Payload::TransferMemo {
                to: dev::address("bob").unwrap(),
                amount: Amount::ZERO,
                memo: Memo::new(&[7; 10_000]).unwrap(),
            },
        )
    };
    let big = memo("eve", 11);
    p.set_policy(FeePolicy {
        max_bytes: 2 * big.size() + 50,
        ..FeePolicy::default()
    });
    p.add(big.clone(), None).unwrap();
    p.add(memo("dave", 12), None).unwrap();
    assert!(p.bytes() <= p.policy().max_bytes);
    // A small payment paying a better rate pushes the cheapest memo out.
    let small = pay_fee(ledger, "alice", 0, 5, "bob", 1);
    p.add(small.clone(), None).unwrap();
    assert!(p.contains(&small.id()));
    assert!(!p.contains(&big.id()));
    assert!(p.bytes() <= p.policy().max_bytes);
    assert_eq!(p.bytes(), p.txs().iter().map(SignedTx::size).sum::<usize>());
}

#[test]
fn a_chain_is_judged_as_a_package() {
    let chain = Genesis::dev().chain().unwrap();
    let ledger = chain.state();
    let mut p = pool(ledger, 3);
    // Eve: a cheap transaction, then one that pays for both.
    p.add(pay_fee(ledger, "eve", 0, 1, "dave", 1), None)
        .unwrap();
    p.add(pay_fee(ledger, "eve", 1, 50, "dave", 1), None)
        .unwrap();
    // Charlie: one at a middling rate.
    let charlie = pay_fee(ledger, "charlie", 0, 10, "dave", 1);
    p.add(charlie.clone(), None).unwrap();
    // A newcomer at 20: Charlie's chain (10) is the cheapest, not Eve's
    // first transaction (1), whose chain pays 51 for two.
    p.add(pay_fee(ledger, "alice", 0, 20, "bob", 1), None)
        .unwrap();
    assert!(!p.contains(&charlie.id()));
    assert_eq!(p.pending_of(&dev::address("eve").unwrap()), 2);
}

#[test]
fn a_replacement_must_pay_more_and_for_what_it_drops() {
    let chain = Genesis::dev().chain().unwrap();
    let ledger = chain.state();
    let mut p = pool(ledger, 100);
    let first = pay_fee(ledger, "alice", 0, 2, "bob", 100);
    p.add(first.clone(), None).unwrap();
    // Same fee, or less: refused with what it takes.
    let same = pay_fee(ledger, "alice", 0, 2, "charlie", 100);
    let Err(MempoolError::ReplacementTooLow { replaces, needed }) = p.add(same, None) else {
        panic!("an equal fee replaced");
    };
    assert_eq!(replaces, first.id());
    let needed = needed.get();
    assert_eq!(
        needed,
        2 + p.policy().incremental.fee_for(first.size()).get()
    );
    // Enough: it takes the first one's place.
    let better = pay_fee(ledger, "alice", 0, needed, "charlie", 100);
    p.add(better.clone(), None).unwrap();
    assert!(p.contains(&better.id()) && !p.contains(&first.id()));
    assert!(
        p.dropped(&first.id())
            .unwrap()
            .reason
            .contains("replaced by")
    );
    assert_eq!(p.len(), 1);
    assert_eq!(p.txs()[0], better);
    crate::mempool::tests::assert_view_shows(&p, "after a replacement");
}

#[test]
fn a_replacement_pays_for_another_senders_transactions_it_drops() {
    let chain = Genesis::dev().chain().unwrap();
    let ledger = chain.state();
    let mut p = pool(ledger, 100);
    // A fresh key, paid by Alice, spends what it got at a high fee.
    let fresh = escrow::Keypair::generate().unwrap();
    let fund = pay_to(ledger, "alice", 0, 2, fresh.address(), 1_000);
    p.add(fund.clone(), None).unwrap();
    let bob = dev::address("bob").unwrap();
    let spend = pay_from(ledger, &fresh, 0, 500, bob, 400);
    p.add(spend.clone(), None).unwrap();
    // Alice replaces the funding with a payment elsewhere: the spend no
    // longer applies, so the replacement must pay its 500 too.
    let elsewhere = |fee| pay_fee(ledger, "alice", 0, fee, "charlie", 1_000);
    let Err(MempoolError::ReplacementTooLow { needed, .. }) = p.add(elsewhere(10), None) else {
        panic!("a replacement dropped another sender's transaction for less than it paid");
    };
    assert!(needed.get() > 2 + 500);
    assert!(
        p.contains(&spend.id()),
        "a refused replacement changes nothing"
    );
    let paid = elsewhere(needed.get());
    p.add(paid.clone(), None).unwrap();
    assert!(!p.contains(&spend.id()) && !p.contains(&fund.id()));
    assert!(p.dropped(&spend.id()).is_some());
}

#[test]
fn the_rolling_minimum_decays_faster_in_an_emptier_pool() {
    let now = Instant::now();
    let mut r = RollingMin::default();
    let inc = FeeRate::per_kb(1);
    assert_eq!(r.current(now, 1.0, inc), FeeRate::ZERO);
    r.raise(FeeRate::per_kb(1_000), now, 1.0, inc);
    let later = now + MIN_FEE_HALF_LIFE;
    assert_eq!(r.current(later, 1.0, inc), FeeRate::per_kb(500));
    assert_eq!(r.current(later, 0.4, inc), FeeRate::per_kb(250));
    assert_eq!(r.current(later, 0.1, inc), FeeRate::per_kb(63));
}

#[test]
fn a_senders_pending_bytes_are_counted_once() {
    let chain = Genesis::dev().chain().unwrap();
    let ledger = chain.state();
    let mut p = pool(ledger, 100);
    let size = pay_fee(ledger, "eve", 0, 1, "dave", 1).size();
    p.set_policy(FeePolicy {
        max_bytes: 3 * size + size / 2,
        ..FeePolicy::default()
    });
    // Three of one sender fit three and a half transactions' bytes: the
    // newcomer's own bytes are what must fit, not its chain's again.
    for n in 0..3 {
        p.add(pay_fee(ledger, "eve", n, 1, "dave", 1), None)
            .unwrap();
    }
    assert!(matches!(
        p.add(pay_fee(ledger, "eve", 3, 1, "dave", 1), None),
        Err(MempoolError::FeeTooLow { .. })
    ));
    assert_eq!(p.len(), 3);
}

#[test]
fn a_larger_replacement_may_not_pass_the_byte_bound() {
    let chain = Genesis::dev().chain().unwrap();
    let ledger = chain.state();
    let mut p = pool(ledger, 100);
    let small = pay_fee(ledger, "eve", 0, 1, "dave", 1);
    p.set_policy(FeePolicy {
        max_bytes: 2 * small.size(),
        ..FeePolicy::default()
    });
    p.add(small.clone(), None).unwrap();
    p.add(pay_fee(ledger, "alice", 0, 1, "dave", 1), None)
        .unwrap();
    let big = SignedTx::sign(
        &dev::keypair("eve").unwrap(),
        0,
        Amount::new(10_000),
        ledger.network(),
        Payload::TransferMemo {
            to: dev::address("dave").unwrap(),
            amount: Amount::ZERO,
            memo: Memo::new(&[1; 5_000]).unwrap(),
        },
    );
    assert!(matches!(p.add(big, None), Err(MempoolError::Full { .. })));
    assert!(p.contains(&small.id()));
    assert!(p.bytes() <= p.policy().max_bytes);
}

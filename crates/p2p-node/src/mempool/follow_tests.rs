//! Tests of the pool following the chain: a tip that moves forward takes
//! the mined transactions out, a reorg brings the undone ones back and
//! names them for re-announcement; a reload keeps what still applies.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::AtomicBool;

use chain_core::miner::{MineOutcome, Miner};
use chain_core::{Block, Chain, Inserted};
use escrow::{Amount, Genesis, Payload, dev};

use super::*;

fn pay(ledger: &Ledger, who: &str, nonce: u64) -> SignedTx {
    SignedTx::sign(
        &dev::keypair(who).unwrap(),
        nonce,
        escrow::Amount::new(1),
        ledger.network(),
        Payload::Transfer {
            to: dev::address("bob").unwrap(),
            amount: Amount::new(1),
        },
    )
}

/// Mines a block holding `txs` on `chain`'s tip, paying `to`, and inserts
/// it; the best chain's change, if it moved.
fn mine(chain: &mut Chain<Ledger>, to: &str, txs: &[SignedTx]) -> Option<Reorg<Tx>> {
    let height = chain.height() + 1;
    let now = Genesis::dev().timestamp_ms + height * 1_000;
    let mut transactions = vec![Tx::Coinbase {
        to: dev::address(to).unwrap(),
        height,
    }];
    transactions.extend(txs.iter().cloned().map(Tx::Signed));
    let template = chain.template(&transactions, now);
    let MineOutcome::Found(header) = Miner::new(1)
        .mine(&template, &AtomicBool::new(false))
        .unwrap()
    else {
        panic!("mining stopped");
    };
    let block = Block {
        header,
        transactions,
    };
    match chain.insert(block, now).unwrap() {
        Inserted::NewBest(reorg) => Some(reorg),
        _ => None,
    }
}

#[test]
fn a_mined_transaction_leaves_and_comes_back_when_its_block_is_undone() {
    let mut ours = Genesis::dev().chain().unwrap();
    let mut rival = Genesis::dev().chain().unwrap();
    let mut pool = Mempool::new(ours.state(), 1, 100, 100);
    // A fee of 7: eve, who mines it, collects it.
    let tx = SignedTx::sign(
        &dev::keypair("alice").unwrap(),
        0,
        Amount::new(7),
        ours.state().network(),
        Payload::Transfer {
            to: dev::address("bob").unwrap(),
            amount: Amount::new(1),
        },
    );
    pool.add(tx.clone(), None).unwrap();
    let eve = dev::address("eve").unwrap();
    let (eve_before, reward) = (ours.state().balance(&eve), ours.state().coinbase_reward());

    // Mined on our tip: it leaves the pool, and nothing is to be told.
    let reorg = mine(&mut ours, "eve", std::slice::from_ref(&tx)).unwrap();
    assert_eq!(
        ours.state().balance(&eve),
        eve_before
            .checked_add(reward)
            .and_then(|b| b.checked_add(Amount::new(7)))
            .unwrap()
    );
    let again = pool.follow_tip(ours.state(), ours.height() + 1, &reorg);
    assert!(again.is_empty());
    assert!(pool.is_empty());
    assert!(pool.dropped(&tx.id()).is_none(), "mined, not dropped");

    // A longer rival branch without it undoes its block: it is pending
    // again, and named to be announced again.
    // (An equal rival may win its tie already: the reorg is the one that
    // undid our block.)
    let mut undoing = None;
    for _ in 0..2 {
        let reorg = mine(&mut rival, "charlie", &[]).unwrap();
        let block = reorg.applied.last().unwrap().as_ref().clone();
        if let Ok(Inserted::NewBest(reorg)) =
            ours.insert(block, Genesis::dev().timestamp_ms + 10_000)
            && reorg.is_reorg()
        {
            undoing = Some(reorg);
        }
    }
    let reorg = undoing.expect("the rival branch became the best");
    assert_eq!(reorg.undone.len(), 1);
    let again = pool.follow_tip(ours.state(), ours.height() + 1, &reorg);
    assert_eq!(again, vec![tx.id()]);
    assert_eq!(pool.ids(), vec![tx.id()]);
    // Its block's fee is undone with the block, and it comes back with
    // its own fee and rate.
    assert_eq!(ours.state().balance(&eve), eve_before);
    assert_eq!(pool.get(&tx.id()).unwrap().fee(), Amount::new(7));
    assert_eq!(pool.bytes(), tx.size());
    let band = pool.fee_histogram();
    assert_eq!(band.len(), 1);
    assert_eq!(band[0].count, 1);
    assert!(band[0].from <= tx.package().rate() && tx.package().rate() <= band[0].to);
}

#[test]
fn a_reload_keeps_only_what_still_applies() {
    let chain = Genesis::dev().chain().unwrap();
    let ledger = chain.state();
    let mut pool = Mempool::new(ledger, 1, 100, 100);
    let saved = vec![
        pay(ledger, "alice", 0),
        pay(ledger, "alice", 1),
        // A gap in alice's nonces: not admitted.
        pay(ledger, "alice", 5),
    ];
    assert_eq!(pool.reload(saved), 2);
    assert_eq!(pool.len(), 2);
    assert_eq!(pool.reload(Vec::new()), 0);
}

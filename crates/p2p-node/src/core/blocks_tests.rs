//! Tests of [`super::insert`]: each outcome of offering a block to the
//! chain, as a value.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::AtomicBool;

use chain_core::miner::{MineOutcome, Miner};
use escrow::{Genesis, dev};

use super::*;

/// A fresh dev chain.
fn chain() -> NodeChain {
    Genesis::dev().chain().unwrap()
}

/// A block on `chain`'s tip paying `to`, stamped `now_ms`.
fn block_on(chain: &NodeChain, to: &str, now_ms: u64) -> Block<Tx> {
    let height = chain.height() + 1;
    let transactions = vec![Tx::Coinbase {
        to: dev::address(to).unwrap(),
        height,
    }];
    let template = chain.template(&transactions, now_ms);
    let MineOutcome::Found(header) = Miner::new(1)
        .mine(&template, &AtomicBool::new(false))
        .unwrap()
    else {
        panic!("mining stopped");
    };
    Block {
        header,
        transactions,
    }
}

fn now(height: u64) -> u64 {
    Genesis::dev().timestamp_ms + height * 1_000
}

#[test]
fn a_block_on_the_tip_is_a_new_best_and_again_a_duplicate() {
    let mut c = chain();
    let block = block_on(&c, "eve", now(1));
    let hash = block.hash();
    match insert(&mut c, block.clone(), now(1)) {
        Accepted::NewBest(reorg) => {
            assert_eq!(reorg.new_tip, hash);
            assert_eq!(reorg.applied.len(), 1);
            assert!(reorg.undone.is_empty());
        }
        other => panic!("not a new best: {other:?}"),
    }
    assert!(matches!(insert(&mut c, block, now(1)), Accepted::Duplicate));
    assert_eq!(c.tip(), hash);
}

#[test]
fn a_rival_block_is_a_side_branch_and_its_child_elsewhere_an_orphan() {
    let mut ours = chain();
    let mut theirs = chain();
    let mine = block_on(&ours, "eve", now(1));
    insert(&mut ours, mine, now(1));
    let rival = block_on(&theirs, "alice", now(1));
    let rival_hash = rival.hash();
    insert(&mut theirs, rival.clone(), now(1));
    let child = block_on(&theirs, "alice", now(2));
    let child_hash = child.hash();
    match insert(&mut ours, rival, now(1)) {
        Accepted::SideBranch { hash, height } => {
            assert_eq!(hash, rival_hash);
            assert_eq!(height, Some(1));
        }
        other => panic!("not a side branch: {other:?}"),
    }
    let mut fresh = chain();
    match insert(&mut fresh, child, now(2)) {
        Accepted::Orphan {
            hash,
            missing_parent,
        } => {
            assert_eq!(hash, child_hash);
            assert_eq!(missing_parent, rival_hash);
        }
        other => panic!("not an orphan: {other:?}"),
    }
}

#[test]
fn a_block_from_the_future_is_refused_as_such_without_moving_the_tip() {
    let mut c = chain();
    let tip = c.tip();
    // Stamped a day ahead of the clock that receives it.
    let block = block_on(&c, "eve", now(1) + 86_400_000);
    match insert(&mut c, block, now(1)) {
        Accepted::Refused {
            reason,
            offence,
            moved,
            in_transactions,
        } => {
            assert!(!reason.is_empty());
            assert!(matches!(offence, Offence::FutureBlock(_)), "{offence:?}");
            assert!(moved.is_none());
            assert!(!in_transactions, "a header rule, not the transactions");
        }
        other => panic!("not refused: {other:?}"),
    }
    assert_eq!(c.tip(), tip);
}

#[test]
fn a_block_with_a_broken_body_is_an_invalid_block() {
    let mut c = chain();
    let mut block = block_on(&c, "eve", now(1));
    // The body no longer matches the header's commitment.
    block.transactions.push(Tx::Coinbase {
        to: dev::address("bob").unwrap(),
        height: 1,
    });
    match insert(&mut c, block, now(1)) {
        Accepted::Refused { offence, moved, .. } => {
            assert!(matches!(offence, Offence::InvalidBlock(_)), "{offence:?}");
            assert!(moved.is_none());
        }
        other => panic!("not refused: {other:?}"),
    }
}

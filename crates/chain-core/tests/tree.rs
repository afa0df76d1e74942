//! The block tree: one test per outcome and per rejection.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

mod common;

use chain_core::tree::{GenesisError, InsertError, Inserted};
use chain_core::validate::ValidationError;
use chain_core::{
    Block, BlockHash, Chain, ChainParams, CompactTarget, CompactTargetError, MerkleRoot, Retarget,
    Target,
};
use common::*;

fn new_chain() -> (Chain<TestState>, ChainParams) {
    let params = params();
    let chain = Chain::new(params.clone(), genesis(&params), TestState::default()).unwrap();
    (chain, params)
}

fn tip_header(chain: &Chain<TestState>) -> chain_core::Header {
    chain.tip_header()
}

#[test]
fn extending_the_tip_is_a_new_best_without_undo() {
    let (mut chain, params) = new_chain();
    let g = tip_header(&chain);
    let b1 = child(&g, vec![tx(1), tx(2)], &params);
    let h1 = b1.hash();
    let Inserted::NewBest(reorg) = chain.insert(b1, NOW).unwrap() else {
        panic!("expected a new best");
    };
    assert!(!reorg.is_reorg());
    assert_eq!(reorg.old_tip, g.hash());
    assert_eq!(reorg.new_tip, h1);
    assert_eq!(reorg.fork_point, g.hash());
    assert_eq!(reorg.applied.len(), 1);
    assert_eq!(chain.tip(), h1);
    assert_eq!(chain.height(), 1);
    assert_eq!(chain.state().applied, vec![1, 2]);
    assert_eq!(chain.hash_at_height(1), Some(h1));
    assert_eq!(chain.hash_at_height(2), None);
    assert_eq!(chain.total_work(), {
        let w = params.pow_limit().to_compact().to_target().unwrap().work();
        w.saturating_add(w)
    });
}

#[test]
fn the_same_block_twice_is_a_duplicate() {
    let (mut chain, params) = new_chain();
    let b1 = child(&tip_header(&chain), vec![tx(1)], &params);
    chain.insert(b1.clone(), NOW).unwrap();
    assert!(matches!(chain.insert(b1, NOW), Ok(Inserted::Duplicate)));
    assert_eq!(chain.state().applied, vec![1]);
}

#[test]
fn equal_work_branches_go_to_the_smaller_hash_in_any_arrival_order() {
    let (_, params) = new_chain();
    let g = genesis(&params).header;
    let a = child(&g, vec![tx(1)], &params);
    let b = child(&g, vec![tx(2)], &params);
    let (winner, loser, winner_payload) = if a.hash() < b.hash() {
        (a.clone(), b.clone(), 1)
    } else {
        (b.clone(), a.clone(), 2)
    };
    for order in [[a.clone(), b.clone()], [b, a]] {
        let (mut chain, _) = new_chain();
        for block in order {
            chain.insert(block, NOW).unwrap();
        }
        assert_eq!(chain.tip(), winner.hash());
        assert!(chain.contains(&loser.hash()));
        assert!(!chain.is_on_best_chain(&loser.hash()));
        assert_eq!(chain.state().applied, vec![winner_payload]);
    }
    // The loser arriving second is a side branch; the winner arriving
    // second takes the tip from the loser.
    let (mut chain, _) = new_chain();
    chain.insert(winner.clone(), NOW).unwrap();
    assert!(matches!(
        chain.insert(loser.clone(), NOW),
        Ok(Inserted::SideBranch)
    ));
    let (mut chain, _) = new_chain();
    chain.insert(loser, NOW).unwrap();
    assert!(matches!(chain.insert(winner, NOW), Ok(Inserted::NewBest(r)) if r.is_reorg()));
}

#[test]
fn a_heavier_branch_reorganises_and_reports_the_path() {
    let (mut chain, params) = new_chain();
    let g = tip_header(&chain);
    let a1 = child(&g, vec![tx(1)], &params);
    let a2 = child(&a1.header, vec![tx(2)], &params);
    let b1 = child(&g, vec![tx(5)], &params);
    // b2 ties a2 and loses the tie, so a2 stays the tip until b3.
    let b2 = child_losing_to(&b1.header, 1_000, &a2.hash(), &params, tx);
    let p2 = b2.transactions[0].payload;
    let b3 = child(&b2.header, vec![tx(4)], &params);
    for b in [a1.clone(), a2.clone(), b1.clone(), b2.clone()] {
        chain.insert(b, NOW).unwrap();
    }
    assert_eq!(chain.tip(), a2.hash());
    let Inserted::NewBest(reorg) = chain.insert(b3.clone(), NOW).unwrap() else {
        panic!("expected a reorg");
    };
    assert!(reorg.is_reorg());
    assert_eq!(reorg.fork_point, g.hash());
    let undone: Vec<BlockHash> = reorg.undone.iter().map(|b| b.hash()).collect();
    let applied: Vec<BlockHash> = reorg.applied.iter().map(|b| b.hash()).collect();
    assert_eq!(undone, vec![a2.hash(), a1.hash()]);
    assert_eq!(applied, vec![b1.hash(), b2.hash(), b3.hash()]);
    // The state is exactly the new branch replayed.
    assert_eq!(chain.state().applied, vec![5, p2, 4]);
    assert_eq!(chain.state().heights, vec![0, 1, 2, 3]);
    assert_eq!(
        chain.best_chain(),
        &[g.hash(), b1.hash(), b2.hash(), b3.hash()]
    );
    // The losing branch is still known, by hash.
    assert!(chain.contains(&a2.hash()));
}

#[test]
fn an_orphan_waits_and_connects_when_its_parent_arrives() {
    let (mut chain, params) = new_chain();
    let g = tip_header(&chain);
    let b1 = child(&g, vec![tx(1)], &params);
    let b2 = child(&b1.header, vec![tx(2)], &params);
    let b3 = child(&b2.header, vec![tx(3)], &params);
    assert!(matches!(
        chain.insert(b3.clone(), NOW),
        Ok(Inserted::Orphan { missing_parent }) if missing_parent == b2.hash()
    ));
    assert!(matches!(
        chain.insert(b2.clone(), NOW),
        Ok(Inserted::Orphan { missing_parent }) if missing_parent == b1.hash()
    ));
    assert_eq!(chain.orphan_count(), 2);
    assert!(chain.is_orphan(&b3.hash()));
    assert!(matches!(
        chain.insert(b3.clone(), NOW),
        Ok(Inserted::Duplicate)
    ));
    let Inserted::NewBest(reorg) = chain.insert(b1, NOW).unwrap() else {
        panic!("expected a new best");
    };
    assert_eq!(reorg.applied.len(), 3);
    assert_eq!(chain.tip(), b3.hash());
    assert_eq!(chain.orphan_count(), 0);
    assert_eq!(chain.state().applied, vec![1, 2, 3]);
}

#[test]
fn the_orphan_pool_is_bounded() {
    let (mut chain, params) = new_chain();
    chain.set_max_orphans(2);
    let g = tip_header(&chain);
    let missing = child(&g, vec![tx(100)], &params);
    let mut parent = missing.header;
    for i in 0..5 {
        let b = child(&parent, vec![tx(i)], &params);
        parent = b.header;
        assert!(matches!(chain.insert(b, NOW), Ok(Inserted::Orphan { .. })));
    }
    assert_eq!(chain.orphan_count(), 2);
}

#[test]
fn bad_proof_of_work_is_refused() {
    let (mut chain, params) = new_chain();
    let mut b = child(&tip_header(&chain), vec![tx(1)], &params);
    let target = params.pow_limit().to_compact().to_target().unwrap();
    while target.is_met_by(&b.header.hash()) {
        b.header.nonce += 1;
    }
    assert!(matches!(
        chain.insert(b, NOW),
        Err(InsertError::Invalid(ValidationError::BadProofOfWork { .. }))
    ));
    assert_eq!(chain.height(), 0);
}

#[test]
fn an_undecodable_target_is_refused() {
    let (mut chain, _) = new_chain();
    let g = tip_header(&chain);
    let mut header = child_header(&g, &[], g.timestamp_ms + 1, Target::MAX);
    header.target = CompactTarget::from_u32(0x1d00_0000);
    let b = Block {
        header,
        transactions: vec![],
    };
    assert!(matches!(
        chain.insert(b, NOW),
        Err(InsertError::Invalid(ValidationError::BadTarget(
            CompactTargetError::Zero(_)
        )))
    ));
}

#[test]
fn a_target_easier_than_the_limit_is_refused_even_for_an_orphan() {
    let (mut chain, _) = new_chain();
    let g = tip_header(&chain);
    // Almost free to mine: it must not reach the orphan pool.
    let mut header = child_header(&g, &[], g.timestamp_ms + 1, Target::MAX);
    header.parent = BlockHash::from_bytes([7; 32]);
    let b = Block {
        header: mine(header),
        transactions: vec![],
    };
    assert!(matches!(
        chain.insert(b, NOW),
        Err(InsertError::Invalid(ValidationError::TargetTooEasy { .. }))
    ));
    assert_eq!(chain.orphan_count(), 0);
}

#[test]
fn a_target_other_than_the_required_one_is_refused() {
    let (mut chain, _) = new_chain();
    let g = tip_header(&chain);
    // Harder than the rules require: valid work, the wrong target.
    let header = mine(child_header(
        &g,
        &[],
        g.timestamp_ms + 1,
        Target::from_leading_zero_bits(6),
    ));
    let b = Block {
        header,
        transactions: vec![],
    };
    assert!(matches!(
        chain.insert(b.clone(), NOW),
        Err(InsertError::Invalid(ValidationError::WrongTarget { .. }))
    ));
    // Remembered: a header that breaks a context rule is invalid for good.
    assert!(chain.is_known_invalid(&b.hash()));
    assert!(matches!(
        chain.insert(b, NOW),
        Err(InsertError::KnownInvalid(_))
    ));
}

#[test]
fn a_wrong_height_is_refused() {
    let (mut chain, params) = new_chain();
    let g = tip_header(&chain);
    let mut header = child_header(&g, &[], g.timestamp_ms + 1, params.pow_limit());
    header.height = 5;
    let b = Block {
        header: mine(header),
        transactions: vec![],
    };
    assert!(matches!(
        chain.insert(b, NOW),
        Err(InsertError::Invalid(ValidationError::WrongHeight {
            expected: 1,
            got: 5
        }))
    ));
}

#[test]
fn a_timestamp_not_above_the_median_is_refused() {
    let (mut chain, params) = new_chain();
    let g = tip_header(&chain);
    let b = Block {
        header: mine(child_header(&g, &[], g.timestamp_ms, params.pow_limit())),
        transactions: vec![],
    };
    assert!(matches!(
        chain.insert(b, NOW),
        Err(InsertError::Invalid(
            ValidationError::TimestampTooOld { .. }
        ))
    ));
}

#[test]
fn the_median_is_over_the_last_eleven_blocks() {
    let (mut chain, params) = new_chain();
    // Twelve blocks one second apart: the median of the last eleven is the
    // sixth from the tip.
    for i in 0..12 {
        let b = child(&tip_header(&chain), vec![tx(i)], &params);
        chain.insert(b, NOW).unwrap();
    }
    let tip = tip_header(&chain);
    let median = tip.timestamp_ms - 5_000;
    assert_eq!(chain.next_timestamp(0), median + 1);
    let at_median = mine(child_header(&tip, &[], median, params.pow_limit()));
    assert!(matches!(
        chain.insert(Block { header: at_median, transactions: vec![] }, NOW),
        Err(InsertError::Invalid(ValidationError::TimestampTooOld { median_ms, .. })) if median_ms == median
    ));
    // Below the tip but above the median is fine.
    let above = mine(child_header(&tip, &[], median + 1, params.pow_limit()));
    assert!(matches!(
        chain.insert(
            Block {
                header: above,
                transactions: vec![]
            },
            NOW
        ),
        Ok(Inserted::NewBest(_))
    ));
}

#[test]
fn a_future_block_is_refused_now_and_accepted_later() {
    let (mut chain, params) = new_chain();
    let g = tip_header(&chain);
    let now = g.timestamp_ms + 10;
    let ts = now + params.max_future_ms + 1;
    let b = Block {
        header: mine(child_header(&g, &[tx(1)], ts, params.pow_limit())),
        transactions: vec![tx(1)],
    };
    let err = chain.insert(b.clone(), now).unwrap_err();
    assert!(matches!(
        err,
        InsertError::Invalid(ValidationError::TimestampTooFarInFuture { .. })
    ));
    assert!(!err.is_permanent());
    assert!(!chain.is_known_invalid(&b.hash()));
    // Once the clock has caught up, the same block is accepted.
    assert!(matches!(chain.insert(b, now + 1), Ok(Inserted::NewBest(_))));
}

#[test]
fn a_wrong_merkle_root_is_refused_and_not_remembered() {
    let (mut chain, params) = new_chain();
    let good = child(&tip_header(&chain), vec![tx(1)], &params);
    let mut bad = good.clone();
    bad.transactions = vec![tx(2)];
    assert!(matches!(
        chain.insert(bad, NOW),
        Err(InsertError::Invalid(ValidationError::BadMerkleRoot { .. }))
    ));
    // The header is fine; only the body was wrong, so the real block is
    // still accepted.
    assert!(!chain.is_known_invalid(&good.hash()));
    assert!(matches!(chain.insert(good, NOW), Ok(Inserted::NewBest(_))));
}

#[test]
fn size_and_count_limits_are_enforced() {
    let mut params = params();
    params.max_block_txs = 2;
    params.max_block_bytes = chain_core::Header::SIZE + 9 * 3;
    let mut chain = Chain::new(params.clone(), genesis(&params), TestState::default()).unwrap();
    let g = tip_header(&chain);
    let many = child(&g, vec![tx(1), tx(2), tx(3)], &params);
    assert!(matches!(
        chain.insert(many, NOW),
        Err(InsertError::Invalid(ValidationError::TooManyTransactions {
            count: 3,
            max: 2
        }))
    ));
    params.max_block_txs = 10;
    params.max_block_bytes = chain_core::Header::SIZE + 9;
    let mut chain = Chain::new(params.clone(), genesis(&params), TestState::default()).unwrap();
    let big = child(&g, vec![tx(1), tx(2)], &params);
    assert!(matches!(
        chain.insert(big, NOW),
        Err(InsertError::Invalid(ValidationError::TooLarge { size, .. })) if size == 96 + 18
    ));
}

#[test]
fn an_unknown_version_is_refused() {
    let (mut chain, params) = new_chain();
    let g = tip_header(&chain);
    let mut header = child_header(&g, &[], g.timestamp_ms + 1, params.pow_limit());
    header.version = 2;
    let b = Block {
        header: mine(header),
        transactions: vec![],
    };
    assert!(matches!(
        chain.insert(b, NOW),
        Err(InsertError::Invalid(ValidationError::UnsupportedVersion {
            got: 2,
            expected: 1
        }))
    ));
}

#[test]
fn a_block_the_state_refuses_changes_nothing_and_is_remembered() {
    let (mut chain, params) = new_chain();
    let g = tip_header(&chain);
    let b1 = child(&g, vec![tx(1)], &params);
    chain.insert(b1.clone(), NOW).unwrap();
    let before = chain.state().clone();
    let bad = child(
        &b1.header,
        vec![
            tx(2),
            chain_core_test_invalid(3), // refused by the state
        ],
        &params,
    );
    let bad_hash = bad.hash();
    let err = chain.insert(bad.clone(), NOW).unwrap_err();
    assert!(
        matches!(&err, InsertError::State { block, source: TestError::Invalid(3) } if *block == bad_hash)
    );
    assert_eq!(chain.state(), &before);
    assert_eq!(chain.tip(), b1.hash());
    assert!(chain.is_known_invalid(&bad_hash));
    assert!(matches!(
        chain.insert(bad.clone(), NOW),
        Err(InsertError::KnownInvalid(_))
    ));
    // Its children are refused without any work.
    let orphan_child = child(&bad.header, vec![tx(9)], &params);
    assert!(matches!(
        chain.insert(orphan_child, NOW),
        Err(InsertError::KnownInvalid(_))
    ));
    // A replayed payload is refused the same way.
    let replay = child(&b1.header, vec![tx(1)], &params);
    assert!(matches!(
        chain.insert(replay, NOW),
        Err(InsertError::State {
            source: TestError::Replayed(1),
            ..
        })
    ));
}

fn chain_core_test_invalid(payload: u64) -> TestTx {
    TestTx {
        payload,
        valid: false,
    }
}

#[test]
fn a_heavier_branch_that_fails_to_apply_leaves_the_old_chain() {
    let (mut chain, params) = new_chain();
    let g = tip_header(&chain);
    let a1 = child(&g, vec![tx(1)], &params);
    chain.insert(a1.clone(), NOW).unwrap();
    // A side branch whose first block is invalid: accepted while it has
    // less work (its transactions are not applied yet) ...
    let b1 = child_losing_to(&g, 1_000, &a1.hash(), &params, chain_core_test_invalid);
    let b2 = child(&b1.header, vec![tx(2)], &params);
    assert!(matches!(
        chain.insert(b1.clone(), NOW),
        Ok(Inserted::SideBranch)
    ));
    // ... and when it would become best, the reorg fails: the branch is
    // dropped and the old chain stays, state and all.
    let err = chain.insert(b2.clone(), NOW).unwrap_err();
    assert!(matches!(err, InsertError::State { block, .. } if block == b1.hash()));
    assert_eq!(chain.tip(), a1.hash());
    assert_eq!(chain.state().applied, vec![1]);
    assert!(!chain.contains(&b1.hash()));
    assert!(!chain.contains(&b2.hash()));
    assert!(chain.is_known_invalid(&b2.hash()));
}

#[test]
fn a_failed_reorg_falls_back_to_the_best_valid_prefix() {
    let (mut chain, params) = new_chain();
    let g = tip_header(&chain);
    let a1 = child(&g, vec![tx(1)], &params);
    chain.insert(a1.clone(), NOW).unwrap();
    // Branch b: b1, b2 valid, b3 invalid. b1..b2 ties a1+1, so after b3's
    // failure the best valid tip is b2 (more work than a1).
    // b1 ties a1 and loses the tie: a side branch until b2.
    let b1 = child_losing_to(&g, 1_000, &a1.hash(), &params, tx);
    let p1 = b1.transactions[0].payload;
    let b2 = child(&b1.header, vec![tx(11)], &params);
    let b3 = child(&b2.header, vec![chain_core_test_invalid(12)], &params);
    let b4 = child(&b3.header, vec![tx(13)], &params);
    chain.insert(b3.clone(), NOW).unwrap(); // orphan
    chain.insert(b4.clone(), NOW).unwrap(); // orphan
    chain.insert(b1.clone(), NOW).unwrap(); // side branch, then orphans wait on b2
    let Inserted::NewBest(reorg) = chain.insert(b2.clone(), NOW).unwrap() else {
        panic!("expected the valid prefix of the branch to win");
    };
    assert_eq!(reorg.new_tip, b2.hash());
    assert_eq!(reorg.undone.len(), 1);
    assert_eq!(chain.state().applied, vec![p1, 11]);
    assert!(chain.is_known_invalid(&b3.hash()));
    assert!(chain.is_known_invalid(&b4.hash()));
}

#[test]
fn retargeting_makes_fast_blocks_harder() {
    let mut params = params();
    params.retarget = Some(Retarget {
        interval: 4,
        block_time_ms: 1_000,
        max_step: 4,
    });
    let mut chain = Chain::new(params.clone(), genesis(&params), TestState::default()).unwrap();
    let limit = params.pow_limit().to_compact();
    // Blocks 1..=3 at one millisecond apart: far faster than a second.
    for i in 0..3u64 {
        let tip = tip_header(&chain);
        assert_eq!(chain.next_target(), limit);
        let header = mine(child_header(
            &tip,
            &[tx(i)],
            tip.timestamp_ms + 1,
            limit.to_target().unwrap(),
        ));
        chain
            .insert(
                Block {
                    header,
                    transactions: vec![tx(i)],
                },
                NOW,
            )
            .unwrap();
    }
    // Height 4 retargets: bounded at four times harder.
    let expected = chain_core::validate::retarget(
        limit.to_target().unwrap(),
        3,
        params.retarget.as_ref().unwrap(),
        params.pow_limit(),
    )
    .to_compact();
    assert_eq!(chain.next_target(), expected);
    assert!(expected.to_target().unwrap() < limit.to_target().unwrap());
    // A block at the old target is now refused ...
    let tip = tip_header(&chain);
    let old = mine(child_header(
        &tip,
        &[],
        tip.timestamp_ms + 1,
        limit.to_target().unwrap(),
    ));
    let old_block = Block {
        header: old,
        transactions: vec![],
    };
    assert!(matches!(
        chain.insert(old_block, NOW),
        Err(InsertError::Invalid(ValidationError::WrongTarget { .. }))
    ));
    // ... and one at the new target accepted.
    let new = mine(child_header(
        &tip,
        &[],
        tip.timestamp_ms + 1,
        expected.to_target().unwrap(),
    ));
    assert!(matches!(
        chain.insert(
            Block {
                header: new,
                transactions: vec![]
            },
            NOW
        ),
        Ok(Inserted::NewBest(_))
    ));
    // Between retargets the target stays.
    assert_eq!(chain.next_target(), expected);
}

#[test]
fn the_locator_is_dense_near_the_tip_and_ends_at_genesis() {
    let (mut chain, params) = new_chain();
    for i in 0..40 {
        let b = child(&tip_header(&chain), vec![tx(i)], &params);
        chain.insert(b, NOW).unwrap();
    }
    let locator = chain.locator();
    let heights: Vec<u64> = locator
        .iter()
        .map(|h| chain.block(h).unwrap().header.height)
        .collect();
    assert_eq!(&heights[..10], &[40, 39, 38, 37, 36, 35, 34, 33, 32, 31]);
    assert_eq!(&heights[10..], &[29, 25, 17, 1, 0]);
    assert_eq!(locator.last(), Some(&chain.genesis_hash()));
}

#[test]
fn genesis_is_checked() {
    let params = params();
    let mut g = genesis(&params);
    g.header.height = 1;
    assert!(matches!(
        Chain::new(params.clone(), g, TestState::default()),
        Err(GenesisError::NotGenesis)
    ));
    let mut g = genesis(&params);
    g.header.merkle_root = MerkleRoot::ZERO;
    assert!(matches!(
        Chain::new(params.clone(), g, TestState::default()),
        Err(GenesisError::BadMerkleRoot)
    ));
    let mut g = genesis(&params);
    g.transactions = vec![chain_core_test_invalid(1)];
    g.header.merkle_root = chain_core::merkle_root(&g.tx_ids());
    assert!(matches!(
        Chain::new(params.clone(), g, TestState::default()),
        Err(GenesisError::State(TestError::Invalid(1)))
    ));
    // Genesis transactions are applied like any block's.
    let mut g = genesis(&params);
    g.transactions = vec![tx(42)];
    g.header.merkle_root = chain_core::merkle_root(&g.tx_ids());
    let chain = Chain::new(params, g, TestState::default()).unwrap();
    assert_eq!(chain.state().applied, vec![42]);
}

#[test]
fn the_template_builds_a_valid_child() {
    let (mut chain, _) = new_chain();
    let txs = vec![tx(5), tx(6)];
    let header = mine(chain.template(&txs, 0));
    assert_eq!(header.height, 1);
    assert_eq!(header.parent, chain.genesis_hash());
    assert!(matches!(
        chain.insert(
            Block {
                header,
                transactions: txs
            },
            NOW
        ),
        Ok(Inserted::NewBest(_))
    ));
}

#[test]
fn blocks_lists_side_branches_too() {
    let (mut chain, params) = new_chain();
    let g = tip_header(&chain);
    let a = child(&g, vec![tx(1)], &params);
    let b = child(&g, vec![tx(2)], &params);
    chain.insert(a.clone(), NOW).unwrap();
    chain.insert(b.clone(), NOW).unwrap();
    let hashes: std::collections::HashSet<_> = chain.headers().map(|(h, _)| *h).collect();
    assert!(hashes.contains(&a.hash()) && hashes.contains(&b.hash()));
    assert_eq!(hashes.len(), chain.block_count());
    assert_eq!(hashes.len(), 3, "genesis and the two siblings");
}

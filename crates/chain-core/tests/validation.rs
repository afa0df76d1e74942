//! The block tree's validation on insert: one test per consensus rule a
//! block can break (proof of work, target, height, timestamps, merkle root,
//! size and count limits, version), and retargeting.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

mod common;

use chain_core::tree::{InsertError, Inserted};
use chain_core::validate::ValidationError;
use chain_core::{Block, BlockHash, Chain, CompactTarget, CompactTargetError, Retarget, Target};
use common::*;

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

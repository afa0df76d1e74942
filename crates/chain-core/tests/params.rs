//! Consensus parameters come from a genesis file, outside bytes: whatever
//! numbers they hold, the block tree must judge blocks without a panic or
//! an allocation sized by them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

mod common;

use chain_core::{Chain, ChainParams, Retarget};
use common::*;

/// Rules with every number at an extreme.
fn extreme(median_time_span: usize, retarget: Option<Retarget>) -> ChainParams {
    ChainParams {
        initial_target_bits: 4,
        retarget,
        max_future_ms: u64::MAX,
        median_time_span,
        max_block_bytes: usize::MAX,
        max_block_txs: usize::MAX,
    }
}

/// Found by the `genesis` fuzz target: a `median_time_span` of
/// `usize::MAX` made the median-time rule reserve that many timestamps
/// ("capacity overflow") on the first template or insert.
#[test]
fn a_huge_median_time_span_reserves_no_more_than_the_chain_holds() {
    for span in [usize::MAX, usize::MAX / 8, 0] {
        let params = extreme(span, None);
        let g = genesis(&params);
        let mut chain = Chain::new(params.clone(), g.clone(), TestState::default()).unwrap();
        let header = chain.template(&[], GENESIS_TIME + 1_000);
        assert_eq!(header.height, 1);
        let block = child(&g.header, vec![tx(1)], &params);
        chain.insert(block, GENESIS_TIME + 10_000).unwrap();
        assert_eq!(chain.height(), 1);
    }
}

/// Retargeting numbers at their extremes judge a block without a panic.
#[test]
fn extreme_retarget_rules_judge_blocks() {
    for (interval, block_time_ms, max_step) in [
        (0, 0, 0),
        (1, 1, 1),
        (2, u64::MAX, u64::MAX),
        (2, 0, 0),
        (u64::MAX, u64::MAX, 1),
    ] {
        let rule = Retarget {
            interval,
            block_time_ms,
            max_step,
        };
        let params = extreme(11, Some(rule));
        let g = genesis(&params);
        let mut chain = Chain::new(params.clone(), g.clone(), TestState::default()).unwrap();
        let mut parent = g.header;
        for _ in 0..3 {
            let mut header = chain.template(&[], parent.timestamp_ms + 1_000);
            // A retarget may make the target unmineable here: then the
            // unmined header is judged (and refused) instead.
            if header.target == params.pow_limit().to_compact() {
                header = mine(header);
            }
            let block = chain_core::Block {
                header,
                transactions: Vec::new(),
            };
            let _ = chain.insert(block, parent.timestamp_ms + 10_000);
            parent = chain.tip_header();
        }
    }
}

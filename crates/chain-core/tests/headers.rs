//! Headers first: a branch of headers checked ahead of its bodies
//! (`Chain::add_headers`), with the rules a block's header must meet.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

mod common;

use chain_core::{
    Block, Chain, ChainParams, Header, HeadersAdded, HeadersError, Retarget, ValidationError,
};
use common::*;

/// A source chain of `n` blocks on `params` (retargeting applied by the
/// tree itself), blocks one second apart; and its best chain's blocks.
fn source(params: &ChainParams, n: u64, salt: u64) -> (Chain<TestState>, Vec<Block<TestTx>>) {
    let g = genesis(params);
    let mut chain = Chain::new(params.clone(), g, TestState::default()).unwrap();
    let mut time = GENESIS_TIME;
    let mut blocks = Vec::new();
    for i in 0..n {
        time += 1_000;
        let txs = vec![tx(salt * 1_000_000 + i)];
        let header = mine(chain.template(&txs, time));
        let block = Block {
            header,
            transactions: txs,
        };
        chain.insert(block.clone(), NOW).unwrap();
        blocks.push(block);
    }
    (chain, blocks)
}

fn retargeting() -> ChainParams {
    ChainParams {
        retarget: Some(Retarget {
            interval: 4,
            block_time_ms: 10_000,
            max_step: 4,
        }),
        ..ChainParams::with_target_bits(2)
    }
}

fn headers(blocks: &[Block<TestTx>]) -> Vec<Header> {
    blocks.iter().map(|b| b.header).collect()
}

#[test]
fn headers_extend_the_branch_in_pieces_and_bodies_then_settle_it() {
    let params = retargeting();
    let (_, blocks) = source(&params, 20, 1);
    let hs = headers(&blocks);
    let (mut node, _) = source(&params, 0, 0);
    let mut branch = node.header_branch();
    let added = node.add_headers(&mut branch, &hs[..8], NOW).unwrap();
    assert_eq!(added, HeadersAdded::Extended { added: 8 });
    let added = node.add_headers(&mut branch, &hs[8..], NOW).unwrap();
    assert_eq!(added, HeadersAdded::Extended { added: 12 });
    assert_eq!(branch.tip(), (hs[19].hash(), 20));
    assert_eq!(branch.hash_at(5), Some(hs[4].hash()));
    // The same headers again, from genesis: known.
    assert_eq!(
        node.add_headers(&mut branch, &hs, NOW).unwrap(),
        HeadersAdded::Known
    );
    // The first ten bodies arrive: the branch's base moves up.
    for b in &blocks[..10] {
        node.insert(b.clone(), NOW).unwrap();
    }
    node.settle_branch(&mut branch);
    assert_eq!(branch.base(), hs[9].hash());
    assert_eq!(branch.len(), 10);
    assert_eq!(branch.tip(), (hs[19].hash(), 20));
    // All of them: the branch is empty at the best tip.
    for b in &blocks[10..] {
        node.insert(b.clone(), NOW).unwrap();
    }
    node.settle_branch(&mut branch);
    assert!(branch.is_empty());
    assert_eq!(branch.base(), node.tip());
}

#[test]
fn a_header_that_breaks_the_difficulty_rule_is_refused_and_nothing_kept() {
    let params = retargeting();
    let (_, blocks) = source(&params, 10, 1);
    let mut hs = headers(&blocks);
    // Height 5 claims the easiest target instead of the one required
    // since the retarget at height 4.
    assert_ne!(hs[2].target, hs[3].target, "the target changed at height 4");
    hs[4].target = params.pow_limit().to_compact();
    hs[4] = mine(hs[4]);
    let (node, _) = source(&params, 0, 0);
    let mut branch = node.header_branch();
    let err = node.add_headers(&mut branch, &hs, NOW).unwrap_err();
    assert!(
        matches!(
            err,
            HeadersError::Invalid {
                height: 5,
                error: ValidationError::WrongTarget { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(err.is_permanent());
    assert!(branch.is_empty(), "nothing of a refused answer is kept");
}

#[test]
fn broken_linkage_bad_work_and_strangers_are_refused() {
    let params = params();
    let (_, blocks) = source(&params, 6, 1);
    let hs = headers(&blocks);
    let (node, _) = source(&params, 0, 0);
    let mut branch = node.header_branch();
    // A gap: header 3 is missing.
    let gapped: Vec<Header> = hs[..2].iter().chain(&hs[3..]).copied().collect();
    let err = node.add_headers(&mut branch, &gapped, NOW).unwrap_err();
    assert!(
        matches!(err, HeadersError::NotLinked { position: 2, .. }),
        "{err}"
    );
    // Headers that start above anything we know.
    let err = node.add_headers(&mut branch, &hs[2..], NOW).unwrap_err();
    assert!(matches!(err, HeadersError::Unconnected { .. }), "{err}");
    // A header whose hash does not meet its target.
    let mut unworked = hs.clone();
    unworked[3].nonce = (0..)
        .find(|n| {
            let mut h = unworked[3];
            h.nonce = *n;
            !h.target.to_target().unwrap().is_met_by(&h.hash())
        })
        .unwrap();
    let err = node.add_headers(&mut branch, &unworked, NOW).unwrap_err();
    assert!(
        matches!(
            err,
            HeadersError::Invalid {
                height: 4,
                error: ValidationError::BadProofOfWork { .. },
                ..
            }
        ),
        "{err}"
    );
    // A timestamp far in the future is refused, but not for ever.
    let three_hours_early = GENESIS_TIME - 3 * 60 * 60 * 1000;
    let err = node
        .add_headers(&mut branch, &hs, three_hours_early)
        .unwrap_err();
    assert!(!err.is_permanent(), "{err}");
    assert!(branch.is_empty());
}

#[test]
fn a_branch_with_more_work_replaces_the_one_held_and_one_with_less_does_not() {
    let params = params();
    let (_, short) = source(&params, 4, 1);
    let (_, long) = source(&params, 7, 2);
    let (node, _) = source(&params, 0, 0);
    let mut branch = node.header_branch();
    node.add_headers(&mut branch, &headers(&short), NOW)
        .unwrap();
    assert_eq!(
        node.add_headers(&mut branch, &headers(&long), NOW).unwrap(),
        HeadersAdded::Switched { added: 7 }
    );
    assert_eq!(branch.tip().0, long[6].header.hash());
    assert_eq!(
        node.add_headers(&mut branch, &headers(&short), NOW)
            .unwrap(),
        HeadersAdded::NotBetter
    );
    assert_eq!(branch.tip().0, long[6].header.hash());
    // A fork from inside the branch (after its third header) that ends
    // with more work.
    let mut fork = long[..3].to_vec();
    for i in 0..6 {
        let parent = fork.last().unwrap().header;
        fork.push(child(&parent, vec![tx(900 + i)], &params));
    }
    assert_eq!(
        node.add_headers(&mut branch, &headers(&fork[3..]), NOW)
            .unwrap(),
        HeadersAdded::Switched { added: 6 }
    );
    assert_eq!(branch.tip(), (fork[8].header.hash(), 9));
    assert_eq!(branch.hash_at(3), Some(long[2].header.hash()));
}

//! The block tree: one test per outcome (new best, duplicate, side branch,
//! reorg, orphan), a block the state refuses and the reorgs it breaks, the
//! locator, genesis checks, the template and the header listing. The
//! consensus rules a block can break on insert are in `validation.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

mod common;

use chain_core::tree::{GenesisError, InsertError, Inserted};
use chain_core::{Block, BlockHash, Chain, MerkleRoot};
use common::*;

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
fn a_template_on_any_parent_builds_a_valid_child_of_it() {
    let (mut chain, params) = new_chain();
    let g = tip_header(&chain);
    // The tip's template on the tip is the template.
    assert_eq!(
        chain.template_on(&g.hash(), &[tx(1)], 0),
        Some(chain.template(&[tx(1)], 0))
    );
    // Two blocks on one branch; a template on the genesis starts another.
    let b1 = child(&g, vec![tx(1)], &params);
    let b2 = child(&b1.header, vec![tx(2)], &params);
    chain.insert(b1, NOW).unwrap();
    chain.insert(b2.clone(), NOW).unwrap();
    let rival = mine(chain.template_on(&g.hash(), &[tx(3)], 0).unwrap());
    assert_eq!((rival.height, rival.parent), (1, g.hash()));
    assert!(matches!(
        chain.insert(
            Block {
                header: rival,
                transactions: vec![tx(3)]
            },
            NOW
        ),
        Ok(Inserted::SideBranch)
    ));
    // A child of the side block, then a grandchild: the branch takes over.
    let on_rival = mine(chain.template_on(&rival.hash(), &[tx(4)], 0).unwrap());
    assert_eq!(on_rival.height, 2);
    chain
        .insert(
            Block {
                header: on_rival,
                transactions: vec![tx(4)],
            },
            NOW,
        )
        .unwrap();
    let third = mine(chain.template_on(&on_rival.hash(), &[tx(5)], 0).unwrap());
    assert!(matches!(
        chain.insert(
            Block {
                header: third,
                transactions: vec![tx(5)]
            },
            NOW
        ),
        Ok(Inserted::NewBest(_))
    ));
    assert_eq!(chain.tip(), third.hash());
    assert!(chain.is_on_best_chain(&rival.hash()));
    assert!(!chain.is_on_best_chain(&b2.hash()));
    // A parent the tree does not hold.
    assert!(
        chain
            .template_on(&BlockHash::from_bytes([9; 32]), &[], 0)
            .is_none()
    );
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

//! `NodeHandle::submit_block`: a block made elsewhere (the simulator's
//! strategies, such as a selfish pool) is validated like any block, and
//! relayed as asked: only if it moved the tip, or always, so that a miner
//! can publish a block that competes with its own node's tip.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use escrow::Tx;
use p2p_node::MiningMode;
use p2p_node::core::{BlockRelay, Submitted};

/// A block at height 1 paying `who`.
fn first_block(who: &str) -> chain_core::Block<Tx> {
    child_of_genesis(
        vec![Tx::Coinbase {
            to: addr(who),
            height: 1,
        }],
        meets_target,
    )
}

#[tokio::test]
async fn a_block_relayed_always_reaches_peers_even_off_the_best_chain() {
    let nodes = mesh(&[MiningMode::Off, MiningMode::Off]).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    // Two rivals at height 1; every node prefers the smaller hash.
    let (mut small, mut large) = (first_block("eve"), first_block("bob"));
    if large.hash() < small.hash() {
        std::mem::swap(&mut small, &mut large);
    }
    let (small_hash, large_hash) = (small.hash(), large.hash());

    assert_eq!(
        a.submit_block(small.clone(), BlockRelay::IfBest)
            .await
            .unwrap(),
        Submitted::Best
    );
    wait_for("b follows the submitted tip", || async {
        tip(b).await.0 == small_hash
    })
    .await;

    // The loser of the tie, relayed only if best: a side branch on `a`,
    // and not told to `b`.
    assert_eq!(
        a.submit_block(large.clone(), BlockRelay::IfBest)
            .await
            .unwrap(),
        Submitted::SideBranch
    );
    // A child of the tip, relayed: `b` hears of it after anything `a`
    // told it before (one connection, in order), and fetches both in order.
    let mut chain = genesis().chain().unwrap();
    chain.insert(small, now_ms()).unwrap();
    let second = child_of_tip(
        &chain,
        vec![Tx::Coinbase {
            to: addr("eve"),
            height: 2,
        }],
        meets_target,
    );
    let second_hash = second.hash();
    assert_eq!(
        a.submit_block(second, BlockRelay::IfBest).await.unwrap(),
        Submitted::Best
    );
    wait_for("b at height 2", || async { tip(b).await.0 == second_hash }).await;
    assert!(
        !b.query(move |v| v.chain.contains(&large_hash))
            .await
            .unwrap(),
        "a side-branch block submitted with IfBest was relayed"
    );

    // The same block, relayed always: `b` gets it, and keeps its tip.
    assert_eq!(
        a.submit_block(large, BlockRelay::Always).await.unwrap(),
        Submitted::Duplicate
    );
    wait_for("b has the relayed side block", || async {
        b.query(move |v| v.chain.contains(&large_hash))
            .await
            .unwrap()
    })
    .await;
    assert_eq!(tip(b).await.0, second_hash);
    for node in &nodes {
        node.shutdown().await;
    }
}

#[tokio::test]
async fn a_submitted_block_is_validated_like_any_other() {
    let a = start(&[], MiningMode::Off).await;
    // Work not met.
    let lazy = child_of_genesis(
        vec![Tx::Coinbase {
            to: addr("eve"),
            height: 1,
        }],
        |h| !meets_target(h),
    );
    assert_eq!(
        a.submit_block(lazy, BlockRelay::Always).await.unwrap(),
        Submitted::Refused
    );
    // A parent the node has never seen.
    let mut orphan = first_block("eve");
    orphan.header.parent = chain_core::BlockHash::from_bytes([7; 32]);
    while !meets_target(&orphan.header) {
        orphan.header.nonce += 1;
    }
    assert_eq!(
        a.submit_block(orphan, BlockRelay::Always).await.unwrap(),
        Submitted::Orphan
    );
    assert_eq!(tip(&a).await.1, 0);
    let block = first_block("eve");
    assert_eq!(
        a.submit_block(block.clone(), BlockRelay::IfBest)
            .await
            .unwrap(),
        Submitted::Best
    );
    assert_eq!(
        a.submit_block(block, BlockRelay::IfBest).await.unwrap(),
        Submitted::Duplicate
    );
    a.shutdown().await;
}

//! Property tests of the block tree: any arrival order gives the most-work
//! valid tip (the smaller hash among equal work) and the state of replaying
//! it; nothing panics on any bytes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

mod common;

use std::collections::HashMap;

use chain_core::tree::Inserted;
use chain_core::{Block, BlockHash, Chain, Header, StateMachine, Work};
use common::*;
use proptest::prelude::*;

/// A random tree: block `i` (1-based) has parent `parents[i - 1]`, which is
/// an earlier index (0 = genesis); `invalid[i - 1]` marks blocks whose
/// transaction the state refuses.
#[derive(Debug, Clone)]
struct TreeSpec {
    parents: Vec<usize>,
    invalid: Vec<bool>,
}

fn tree_spec() -> impl Strategy<Value = TreeSpec> {
    (1usize..24)
        .prop_flat_map(|n| {
            let parents: Vec<_> = (0..n).map(|i| 0..=i).collect();
            (
                parents,
                proptest::collection::vec(prop::bool::weighted(0.15), n),
            )
        })
        .prop_map(|(parents, invalid)| TreeSpec { parents, invalid })
}

/// Mines the tree; returns the blocks in index order (genesis excluded).
fn build(spec: &TreeSpec) -> (Block<TestTx>, Vec<Block<TestTx>>) {
    let params = params();
    let g = genesis(&params);
    let mut headers = vec![g.header];
    let mut blocks = Vec::new();
    for (i, (&p, &bad)) in spec.parents.iter().zip(&spec.invalid).enumerate() {
        let payload = i as u64 + 1;
        let tx = TestTx {
            payload,
            valid: !bad,
        };
        let b = child(&headers[p], vec![tx], &params);
        headers.push(b.header);
        blocks.push(b);
    }
    (g, blocks)
}

/// The most work any block with an all-valid ancestry has, by replaying.
fn expected_best_work(spec: &TreeSpec, work_per_block: Work) -> (Work, Vec<usize>) {
    let n = spec.parents.len();
    let mut valid = vec![true; n + 1];
    let mut depth = vec![0u64; n + 1];
    for i in 1..=n {
        let p = spec.parents[i - 1];
        valid[i] = valid[p] && !spec.invalid[i - 1];
        depth[i] = depth[p] + 1;
    }
    let best_depth = (0..=n)
        .filter(|&i| valid[i])
        .map(|i| depth[i])
        .max()
        .unwrap();
    let mut work = work_per_block;
    for _ in 0..best_depth {
        work = work.saturating_add(work_per_block);
    }
    let winners = (0..=n)
        .filter(|&i| valid[i] && depth[i] == best_depth)
        .collect();
    (work, winners)
}

/// The state of applying the best chain from genesis, block by block.
fn replay(chain: &Chain<TestState>) -> TestState {
    let mut state = TestState::default();
    for (height, hash) in chain.best_chain().iter().enumerate() {
        let block = chain.block(hash).unwrap();
        let ctx = chain_core::BlockContext {
            hash: *hash,
            height: height as u64,
            timestamp_ms: block.header.timestamp_ms,
        };
        state.apply_block(&ctx, &block.transactions).unwrap();
    }
    state
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_arrival_order_gives_the_most_work_valid_tip(
        spec in tree_spec(),
        order_seed in any::<u64>(),
        dup_every in 2usize..6,
    ) {
        let (g, blocks) = build(&spec);
        let params = params();
        let mut chain = Chain::new(params.clone(), g.clone(), TestState::default()).unwrap();
        // A shuffled arrival order, with some blocks delivered twice.
        let mut order: Vec<usize> = (0..blocks.len()).collect();
        let mut rng = order_seed;
        for i in (1..order.len()).rev() {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            order.swap(i, (rng >> 33) as usize % (i + 1));
        }
        let dups: Vec<usize> = order.iter().copied().step_by(dup_every).collect();
        order.extend(dups);
        for &i in &order {
            // Refusals are expected for invalid blocks; panics are not.
            let _ = chain.insert(blocks[i].clone(), NOW);
        }
        let w = g.header.target.to_target().unwrap().work();
        let (best_work, winners) = expected_best_work(&spec, w);
        prop_assert_eq!(chain.total_work(), best_work);
        let index: HashMap<BlockHash, usize> = std::iter::once((g.hash(), 0))
            .chain(blocks.iter().enumerate().map(|(i, b)| (b.hash(), i + 1)))
            .collect();
        prop_assert!(winners.contains(&index[&chain.tip()]));
        // Among equal work, the smaller hash: the tip does not depend on
        // the arrival order.
        let smallest = winners
            .iter()
            .map(|&i| if i == 0 { g.hash() } else { blocks[i - 1].hash() })
            .min()
            .unwrap();
        prop_assert_eq!(chain.tip(), smallest);
        prop_assert_eq!(chain.state(), &replay(&chain));
        prop_assert_eq!(chain.orphan_count(), 0);
    }

    #[test]
    fn undo_after_apply_restores_the_state(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u64>(), 0..5), 1..8),
    ) {
        let mut state = TestState::default();
        let mut undos = Vec::new();
        let mut snapshots = vec![state.clone()];
        for (h, block) in payloads.iter().enumerate() {
            let txs: Vec<TestTx> = block.iter().map(|&p| tx(p)).collect();
            let ctx = chain_core::BlockContext { hash: BlockHash::ZERO, height: h as u64 + 1, timestamp_ms: 0 };
            let before = state.clone();
            match state.apply_block(&ctx, &txs) {
                Ok(u) => { undos.push(u); snapshots.push(state.clone()); }
                Err(_) => prop_assert_eq!(&state, &before),
            }
        }
        while let Some(u) = undos.pop() {
            snapshots.pop();
            state.undo_block(u);
            prop_assert_eq!(&state, snapshots.last().unwrap());
        }
    }

    #[test]
    fn header_parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        match Header::from_bytes(&bytes) {
            Ok(h) => prop_assert_eq!(h.to_bytes().to_vec(), bytes),
            Err(_) => prop_assert_ne!(bytes.len(), Header::SIZE),
        }
    }

    #[test]
    fn arbitrary_blocks_never_panic_the_tree(
        bytes in proptest::collection::vec(any::<u8>(), 0..400),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
    ) {
        let params = params();
        let mut chain = Chain::new(params.clone(), genesis(&params), TestState::default()).unwrap();
        // Random bytes as a block, and a real block with flipped bits.
        if let Ok(block) = postcard::from_bytes::<Block<TestTx>>(&bytes) {
            let _ = chain.insert(block, NOW);
        }
        let good = child(&chain.tip_header(), vec![tx(1)], &params);
        let mut encoded = postcard::to_stdvec(&good).unwrap();
        for (at, mask) in flips {
            let len = encoded.len();
            encoded[at % len] ^= mask;
        }
        if let Ok(block) = postcard::from_bytes::<Block<TestTx>>(&encoded) {
            let hash = block.hash();
            if let Ok(Inserted::NewBest(_)) = chain.insert(block, NOW) {
                prop_assert_eq!(chain.tip(), hash);
            }
        }
        // The chain still works afterwards.
        let next = child(&chain.tip_header(), vec![tx(2)], &params);
        prop_assert!(matches!(chain.insert(next, NOW), Ok(Inserted::NewBest(_))));
    }
}

//! A light client's checks: chains of headers, valid and broken, and
//! inclusion proofs against them, a branch that lost included.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

mod common;

use chain_core::{
    BlockHash, ChainParams, Header, HeaderChain, HeaderChainError, InclusionProof, ProofError,
    Retarget, Target, Transaction, merkle_branch,
};
use common::*;

/// A chain of `n` blocks after genesis, each holding `per_block`
/// transactions (payloads from `first`), one second apart.
fn blocks(
    params: &ChainParams,
    from: &Header,
    n: u64,
    first: u64,
    per_block: u64,
) -> Vec<chain_core::Block<TestTx>> {
    let mut out: Vec<chain_core::Block<TestTx>> = Vec::new();
    for i in 0..n {
        let parent = out.last().map_or(*from, |b| b.header);
        let txs = (0..per_block)
            .map(|k| tx(first + i * per_block + k))
            .collect();
        out.push(child(&parent, txs, params));
    }
    out
}

fn headers(genesis: &Header, chain: &[chain_core::Block<TestTx>]) -> Vec<Header> {
    std::iter::once(*genesis)
        .chain(chain.iter().map(|b| b.header))
        .collect()
}

fn proof(block: &chain_core::Block<TestTx>, index: usize) -> InclusionProof<TestTx> {
    let leaves: Vec<_> = block
        .transactions
        .iter()
        .map(Transaction::commitment)
        .collect();
    InclusionProof {
        header: block.header,
        branch: merkle_branch(&leaves, index).unwrap(),
        tx: block.transactions[index].clone(),
    }
}

#[test]
fn a_valid_chain_of_headers_verifies_with_its_tip_and_heights() {
    let params = params();
    let g = genesis(&params);
    let chain = blocks(&params, &g.header, 12, 0, 3);
    let verified = HeaderChain::verify(&params, g.hash(), &headers(&g.header, &chain)).unwrap();
    assert_eq!(verified.height(), 12);
    assert_eq!(verified.tip(), chain[11].hash());
    assert_eq!(verified.hash_at(5), Some(chain[4].hash()));
    assert_eq!(verified.hash_at(13), None);
    // Genesis alone is a chain of height 0.
    let alone = HeaderChain::verify(&params, g.hash(), &[g.header]).unwrap();
    assert_eq!(alone.height(), 0);
}

#[test]
fn a_chain_that_retargets_verifies_and_a_wrong_target_does_not() {
    // Retargeting every 4 blocks toward 10 s blocks, mined one second
    // apart: the target must harden at heights 4, 8, ... and the node's
    // own chain (built through `Chain`, which applies the rule) verifies.
    let params = ChainParams {
        retarget: Some(Retarget {
            interval: 4,
            block_time_ms: 10_000,
            max_step: 4,
        }),
        ..ChainParams::with_target_bits(2)
    };
    let g = genesis(&params);
    let mut chain =
        chain_core::Chain::new(params.clone(), g.clone(), TestState::default()).unwrap();
    let mut time = GENESIS_TIME;
    for i in 0..10 {
        time += 1_000;
        let header = mine(chain.template(&[tx(i)], time));
        let block = chain_core::Block {
            header,
            transactions: vec![tx(i)],
        };
        chain.insert(block, NOW).unwrap();
    }
    let list: Vec<Header> = chain
        .best_chain()
        .iter()
        .map(|h| chain.header(h).unwrap())
        .collect();
    assert_ne!(
        list[4].target, list[3].target,
        "the target changed at height 4"
    );
    let verified = HeaderChain::verify(&params, g.hash(), &list).unwrap();
    assert_eq!(verified.height(), 10);
    // Height 5 claiming the easiest target instead of the one required.
    let mut forged = list.clone();
    forged[5].target = params.pow_limit().to_compact();
    forged[5] = mine(forged[5]);
    let err = HeaderChain::verify(&params, g.hash(), &forged).unwrap_err();
    assert!(
        matches!(&err, HeaderChainError::Invalid { height: 5, error, .. }
            if matches!(error, chain_core::ValidationError::WrongTarget { .. })),
        "{err}"
    );
}

#[test]
fn each_kind_of_broken_chain_is_refused_at_its_first_fault() {
    let params = ChainParams::with_target_bits(8);
    let g = genesis(&params);
    let chain = blocks(&params, &g.header, 6, 0, 1);
    let good = headers(&g.header, &chain);
    let network = g.hash();
    assert!(matches!(
        HeaderChain::verify(&params, network, &[]),
        Err(HeaderChainError::Empty)
    ));
    assert!(matches!(
        HeaderChain::verify(&params, BlockHash::from_bytes([9; 32]), &good),
        Err(HeaderChainError::WrongGenesis { .. })
    ));
    // Two headers swapped: the link breaks.
    let mut swapped = good.clone();
    swapped.swap(2, 3);
    assert!(matches!(
        HeaderChain::verify(&params, network, &swapped),
        Err(HeaderChainError::Broken { position: 2, .. })
    ));
    // A header whose nonce no longer meets its target (changing the nonce
    // until the hash fails it).
    let mut unworked = good.clone();
    let target = Target::from_leading_zero_bits(8);
    while target.is_met_by(&unworked[4].hash()) {
        unworked[4].nonce = unworked[4].nonce.wrapping_add(1);
    }
    let err = HeaderChain::verify(&params, network, &unworked).unwrap_err();
    assert!(
        matches!(&err, HeaderChainError::Invalid { height: 4, error, .. }
            if matches!(error, chain_core::ValidationError::BadProofOfWork { .. })),
        "{err}"
    );
    // A header whose timestamp is not past the median of those before it.
    let mut early = good[..4].to_vec();
    let mut h = child_header(&early[3], &[tx(99)], GENESIS_TIME, params.pow_limit());
    h = mine(h);
    early.push(h);
    let err = HeaderChain::verify(&params, network, &early).unwrap_err();
    assert!(
        matches!(&err, HeaderChainError::Invalid { error, .. }
            if matches!(error, chain_core::ValidationError::TimestampTooOld { .. })),
        "{err}"
    );
}

#[test]
fn proofs_verify_at_their_depth_and_every_change_is_caught() {
    let params = params();
    let g = genesis(&params);
    let chain = blocks(&params, &g.header, 5, 0, 7);
    let verified = HeaderChain::verify(&params, g.hash(), &headers(&g.header, &chain)).unwrap();
    for (b, block) in chain.iter().enumerate() {
        for i in 0..block.transactions.len() {
            let p = proof(block, i);
            let (id, depth) = p.verify_in(&verified).unwrap();
            assert_eq!(id, block.transactions[i].id());
            assert_eq!(depth, 5 - b as u64, "block {b}: the tip has depth 1");
        }
    }
    let good = proof(&chain[2], 3);
    // Another transaction (a changed leaf).
    let mut leaf = good.clone();
    leaf.tx = tx(1_000);
    assert!(matches!(leaf.verify(), Err(ProofError::WrongRoot { .. })));
    // A changed sibling.
    let mut sibling = good.clone();
    sibling.branch.siblings[0][5] ^= 0x40;
    assert!(matches!(
        sibling.verify(),
        Err(ProofError::WrongRoot { .. })
    ));
    // Another index.
    let mut index = good.clone();
    index.branch.index = 4;
    assert!(index.verify().is_err());
    // Another block's header.
    let mut header = good.clone();
    header.header = chain[3].header;
    assert!(matches!(header.verify(), Err(ProofError::WrongRoot { .. })));
    // A header changed in a field the root does not cover: the root still
    // matches, but the block is no longer in the chain.
    let mut moved = good.clone();
    moved.header.nonce ^= 1;
    assert!(matches!(
        moved.verify_in(&verified),
        Err(ProofError::NotInChain { .. })
    ));
}

#[test]
fn a_proof_in_a_branch_that_lost_fails_against_the_winning_chain() {
    let params = params();
    let g = genesis(&params);
    let common = blocks(&params, &g.header, 3, 0, 2);
    // Two branches from height 3: the short one holds the transaction.
    let losing = blocks(&params, &common[2].header, 1, 100, 3);
    let winning = blocks(&params, &common[2].header, 2, 200, 3);
    let p = proof(&losing[0], 1);
    let short: Vec<_> = common.iter().chain(&losing).cloned().collect();
    let long: Vec<_> = common.iter().chain(&winning).cloned().collect();
    let on_short = HeaderChain::verify(&params, g.hash(), &headers(&g.header, &short)).unwrap();
    let on_long = HeaderChain::verify(&params, g.hash(), &headers(&g.header, &long)).unwrap();
    assert!(on_long.work() > on_short.work());
    assert_eq!(
        p.verify_in(&on_short).unwrap().1,
        1,
        "in the tip of its own branch"
    );
    let err = p.verify_in(&on_long).unwrap_err();
    assert!(
        matches!(err, ProofError::NotInChain { height: 4, .. }),
        "{err}"
    );
}

#[test]
fn a_header_of_another_version_is_refused() {
    let params = params();
    let g = genesis(&params);
    let chain = blocks(&params, &g.header, 3, 0, 1);
    let mut list = headers(&g.header, &chain[..2]);
    let mut odd = child_header(
        &chain[1].header,
        &[tx(77)],
        chain[1].header.timestamp_ms + 1_000,
        params.pow_limit(),
    );
    odd.version = 2;
    list.push(mine(odd));
    let err = HeaderChain::verify(&params, g.hash(), &list).unwrap_err();
    assert!(
        matches!(&err, HeaderChainError::Invalid { height: 3, error, .. }
            if matches!(error, chain_core::ValidationError::UnsupportedVersion { .. })),
        "{err}"
    );
}

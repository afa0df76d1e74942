//! Compact blocks: a block rebuilt from a mempool, with missing
//! transactions asked and filled, short-id collisions that fall back to
//! the whole block, and no wrong block ever rebuilt.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod samples;

use chain_core::{Transaction, TxId};
use escrow::{SignedTx, Tx};
use wire::compact::{CompactError, short_id, short_id_key};
use wire::{Bounded, CompactBlock, Prefilled, Rebuild, Started};

/// The block's signed transactions, with their ids.
fn signed(block: &chain_core::Block<Tx>) -> Vec<(TxId, SignedTx)> {
    block
        .transactions
        .iter()
        .filter_map(|tx| match tx {
            Tx::Signed(s) => Some((tx.id(), s.clone())),
            _ => None,
        })
        .collect()
}

fn pool(txs: &[(TxId, SignedTx)]) -> impl Iterator<Item = (TxId, &SignedTx)> {
    txs.iter().map(|(id, tx)| (*id, tx))
}

#[test]
fn a_block_whose_transactions_the_receiver_holds_is_rebuilt_at_once() {
    let block = samples::block_of_transfers(30);
    let compact = CompactBlock::new(&block, 42, &[]);
    assert_eq!(compact.prefilled.len(), 1, "the coinbase alone");
    assert_eq!(compact.short_ids.len(), 30);
    // Far smaller than the block.
    let whole = wire::encoded_len(&wire::Message::Block(block.clone()));
    let small = wire::encoded_len(&wire::Message::CompactBlock(compact.clone()));
    assert!(small * 5 < whole, "{small} vs {whole}");
    // A mempool with more than the block holds.
    let mut mempool = signed(&block);
    mempool.extend(
        signed(&samples::block_of_transfers(40))[30..]
            .iter()
            .cloned(),
    );
    match Rebuild::start(&compact, pool(&mempool)).unwrap() {
        Started::Complete(r) => assert_eq!(r.finish().unwrap(), block),
        other => panic!("not complete: {other:?}"),
    }
}

#[test]
fn missing_transactions_are_asked_by_index_and_filled() {
    let block = samples::block_of_transfers(10);
    let compact = CompactBlock::new(&block, 1, &[3]);
    let mut mempool = signed(&block);
    // The receiver lacks the transactions at block indexes 2 and 7.
    let lacked: Vec<TxId> = [2, 7].iter().map(|&i| block.transactions[i].id()).collect();
    mempool.retain(|(id, _)| !lacked.contains(id));
    let (mut rebuild, missing) = match Rebuild::start(&compact, pool(&mempool)).unwrap() {
        Started::Missing(r, m) => (r, m),
        other => panic!("nothing missing: {other:?}"),
    };
    assert_eq!(missing, vec![2, 7]);
    assert_eq!(rebuild.missing(), missing);
    // An answer of the wrong length does not fit.
    assert!(!rebuild.clone().fill(vec![block.transactions[2].clone()]));
    let answer = missing
        .iter()
        .map(|&i| block.transactions[i as usize].clone())
        .collect();
    assert!(rebuild.fill(answer));
    assert_eq!(rebuild.finish().unwrap(), block);
}

#[test]
fn a_wrong_transaction_in_a_slot_is_never_taken() {
    let block = samples::block_of_transfers(5);
    let compact = CompactBlock::new(&block, 9, &[]);
    let (mut rebuild, missing) = match Rebuild::start(&compact, std::iter::empty()).unwrap() {
        Started::Missing(r, m) => (r, m),
        other => panic!("{other:?}"),
    };
    // The answer holds other transactions of the right count: the merkle
    // root does not match, so no block comes out.
    let other = samples::block_of_transfers(40);
    let wrong: Vec<Tx> = other.transactions[30..30 + missing.len()].to_vec();
    assert!(rebuild.fill(wrong));
    assert!(rebuild.finish().is_none());
}

#[test]
fn colliding_short_ids_fall_back_to_the_whole_block() {
    let block = samples::block_of_transfers(4);
    let mut compact = CompactBlock::new(&block, 5, &[]);
    // Two slots with one short id (as a sender could make by chance, or
    // on purpose): ambiguous.
    let mut ids = compact.short_ids.to_vec();
    ids[1] = ids[0];
    compact.short_ids = Bounded::new(ids).unwrap();
    let mempool = signed(&block);
    assert!(matches!(
        Rebuild::start(&compact, pool(&mempool)).unwrap(),
        Started::Ambiguous
    ));
    // Two different transactions of the receiver with one slot's short
    // id (here under one id, which gives one short id): ambiguous.
    let compact = CompactBlock::new(&block, 5, &[]);
    let mut clash = signed(&block);
    let stranger = signed(&samples::block_of_transfers(60))[50].1.clone();
    clash.push((clash[0].0, stranger));
    assert!(matches!(
        Rebuild::start(&compact, pool(&clash)).unwrap(),
        Started::Ambiguous
    ));
    // The same transaction offered twice (from two sources) is no clash.
    let mut twice = signed(&block);
    twice.push(twice[0].clone());
    assert!(matches!(
        Rebuild::start(&compact, pool(&twice)).unwrap(),
        Started::Complete(_)
    ));
}

#[test]
fn a_collision_with_a_transaction_outside_the_block_gives_no_block() {
    // The receiver's transaction whose short id is a slot's, but which is
    // not the block's: found by forcing the slot's short id to another
    // transaction's. The rebuild completes, its merkle root does not
    // match, and no block comes out.
    let block = samples::block_of_transfers(3);
    let mut compact = CompactBlock::new(&block, 11, &[]);
    let outsider = signed(&samples::block_of_transfers(60))[50].clone();
    let key = short_id_key(&compact.header, compact.salt);
    let mut ids = compact.short_ids.to_vec();
    ids[0] = short_id(&key, &outsider.0);
    compact.short_ids = Bounded::new(ids).unwrap();
    let mut mempool = signed(&block);
    mempool[0] = outsider;
    match Rebuild::start(&compact, pool(&mempool)).unwrap() {
        Started::Complete(r) => assert!(r.finish().is_none()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn malformed_compact_blocks_are_the_senders_fault() {
    let block = samples::block_of_transfers(3);
    let good = CompactBlock::new(&block, 1, &[]);
    // No coinbase prefilled.
    let mut no_coinbase = good.clone();
    no_coinbase.prefilled = Bounded::new(Vec::new()).unwrap();
    let mut ids = no_coinbase.short_ids.to_vec();
    ids.push([0; 6]);
    no_coinbase.short_ids = Bounded::new(ids).unwrap();
    assert_eq!(
        Rebuild::start(&no_coinbase, std::iter::empty()).unwrap_err(),
        CompactError::NoCoinbase
    );
    // An index past the end, and indexes out of order.
    for indexes in [vec![0, 9], vec![0, 2, 1]] {
        let mut bad = good.clone();
        let prefilled: Vec<Prefilled> = indexes
            .iter()
            .map(|&index| Prefilled {
                index,
                tx: block.transactions[0].clone(),
            })
            .collect();
        bad.prefilled = Bounded::new(prefilled).unwrap();
        assert!(matches!(
            Rebuild::start(&bad, std::iter::empty()),
            Err(CompactError::BadIndex(_))
        ));
    }
}

#[test]
fn short_ids_depend_on_the_salt() {
    let block = samples::block_of_transfers(2);
    let a = CompactBlock::new(&block, 1, &[]);
    let b = CompactBlock::new(&block, 2, &[]);
    assert_ne!(a.short_ids, b.short_ids);
    assert_eq!(a, CompactBlock::new(&block, 1, &[]));
}

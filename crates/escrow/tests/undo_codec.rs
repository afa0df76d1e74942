//! An undo record's compact encoding against its block
//! (`Undo::encode_against`, the node's stored form): every record reads
//! back exactly against its own block, whatever the block holds (every
//! payload kind, contracts, fees, the coinbase, the genesis block), and
//! bytes that do not fit a block are a typed error, never a panic.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

mod common;

use chain_core::{BlockContext, StateMachine};
use common::{Harness, addr, resolve};
use escrow::{Amount, Genesis, Memo, Party, Payload, Tx, Undo, UndoDecodeError};
use proptest::prelude::*;

/// Every block of `h` round-trips against its own transactions, in fewer
/// bytes than plain postcard once the block moves coins.
fn assert_round_trips(h: &Harness) {
    assert_eq!(h.undos.len(), h.blocks.len());
    for (undo, block) in h.undos.iter().zip(&h.blocks) {
        let bytes = undo.encode_against(block);
        assert_eq!(&Undo::decode_against(&bytes, block).unwrap(), undo);
        assert!(bytes.len() <= postcard::to_stdvec(undo).unwrap().len());
    }
}

/// A history with every payload kind, fees and contracts in every state.
fn history() -> Harness {
    let mut h = Harness::new();
    h.block(vec![
        h.sign_paying(
            "alice",
            2,
            Payload::Transfer {
                to: addr("bob"),
                amount: Amount::new(7),
            },
        ),
        h.sign_paying(
            "dave",
            1,
            Payload::TransferMemo {
                to: addr("eve"),
                amount: Amount::ZERO,
                memo: Memo::new(b"for the bread").unwrap(),
            },
        ),
    ])
    .unwrap();
    let released = h.create("alice", "charlie", "eve", 20).unwrap();
    h.block(vec![h.sign_paying(
        "alice",
        3,
        Payload::ConfirmDelivery { contract: released },
    )])
    .unwrap();
    let disputed = h.create("charlie", "dave", "eve", 50).unwrap();
    h.one("charlie", Payload::RaiseDispute { contract: disputed })
        .unwrap();
    h.block(vec![h.sign_paying(
        "eve",
        1,
        resolve(disputed, Party::Seller),
    )])
    .unwrap();
    let refunded = h.create("bob", "dave", "eve", 30).unwrap();
    h.one("dave", Payload::RefundBuyer { contract: refunded })
        .unwrap();
    h
}

#[test]
fn every_kind_of_block_round_trips_against_itself() {
    let h = history();
    assert_round_trips(&h);
    // The records restore the state exactly once decoded.
    let mut back = Harness::new();
    back.ledger = h.ledger.clone();
    for (undo, block) in h.undos.iter().zip(&h.blocks).rev() {
        back.ledger
            .undo_block(Undo::decode_against(&undo.encode_against(block), block).unwrap());
    }
    assert_eq!(back.ledger, Harness::new().ledger);
}

#[test]
fn the_genesis_block_round_trips() {
    let g = Genesis::dev();
    let block = g.block();
    let mut ledger = g.ledger();
    let undo = ledger
        .apply_block(
            &BlockContext {
                hash: block.hash(),
                height: 0,
                timestamp_ms: 0,
            },
            &block.transactions,
        )
        .unwrap();
    let bytes = undo.encode_against(&block.transactions);
    assert_eq!(
        Undo::decode_against(&bytes, &block.transactions).unwrap(),
        undo
    );
}

#[test]
fn a_transfer_is_a_few_bytes() {
    let mut h = Harness::new();
    let names = ["alice", "bob", "charlie", "dave"];
    let txs = names
        .iter()
        .zip(names.iter().rev())
        .map(|(from, to)| {
            h.sign_paying(
                from,
                1,
                Payload::Transfer {
                    to: addr(to),
                    amount: Amount::new(5),
                },
            )
        })
        .collect();
    h.block(txs).unwrap();
    let (undo, block) = (&h.undos[0], &h.blocks[0]);
    let bytes = undo.encode_against(block);
    assert!(
        bytes.len() < postcard::to_stdvec(undo).unwrap().len() / 4,
        "{} bytes",
        bytes.len()
    );
    assert!(bytes.len() < 40 * names.len(), "{} bytes", bytes.len());
}

#[test]
fn a_record_that_does_not_fit_its_block_is_an_error() {
    let h = history();
    let (undo, block) = (&h.undos[0], &h.blocks[0]);
    let bytes = undo.encode_against(block);
    // Against a block that names fewer addresses: a typed error.
    let coinbase_only = &h.blocks[h.blocks.len() - 1][..1];
    assert!(matches!(
        Undo::decode_against(&bytes, coinbase_only),
        Err(UndoDecodeError::NoSuchAddress { .. })
    ));
    assert!(matches!(
        Undo::decode_against(&bytes, &[]),
        Err(UndoDecodeError::NoSuchAddress { .. })
    ));
    // Cut short, or with bytes after it.
    for cut in 0..bytes.len() {
        assert!(Undo::decode_against(&bytes[..cut], block).is_err());
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(
        Undo::decode_against(&longer, block),
        Err(UndoDecodeError::TrailingBytes(1))
    );
    // Against another block of as many addresses it is never the record.
    for other in &h.blocks {
        if other != block {
            assert_ne!(
                Undo::decode_against(&bytes, other).ok().as_ref(),
                Some(undo)
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any bytes against any block of the history: a record or an error.
    #[test]
    fn any_bytes_decode_or_fail_without_a_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        which in 0usize..9,
    ) {
        let h = history_once();
        let block: &[Tx] = h.blocks.get(which).map_or(&[], Vec::as_slice);
        let _ = Undo::decode_against(&bytes, block);
    }

    /// A record with a byte flipped: a record or an error, never a panic.
    #[test]
    fn a_flipped_byte_is_a_record_or_an_error(at in any::<prop::sample::Index>(), xor in 1u8..) {
        let h = history_once();
        let (undo, block) = (&h.undos[0], &h.blocks[0]);
        let mut bytes = undo.encode_against(block);
        let i = at.index(bytes.len());
        bytes[i] ^= xor;
        let _ = Undo::decode_against(&bytes, block);
    }
}

/// [`history`], built once for the properties.
fn history_once() -> &'static Harness {
    static HISTORY: std::sync::OnceLock<Harness> = std::sync::OnceLock::new();
    HISTORY.get_or_init(history)
}

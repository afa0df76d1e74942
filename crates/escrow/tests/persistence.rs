//! The ledger and its undo records survive a postcard round trip: the node
//! stores a snapshot of the state and one undo record per block, and a
//! restarted node must carry on exactly as the one that wrote them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

mod common;

use chain_core::{BlockContext, BlockHash, StateMachine};
use common::{Harness, addr, dev_ledger, resolve};
use escrow::{Amount, Ledger, LedgerError, Party, Payload, SignedTx, State, Tx, Undo, VerifyMode};

fn round_trip<T: serde::Serialize + serde::de::DeserializeOwned>(value: &T) -> T {
    let bytes = postcard::to_stdvec(value).unwrap();
    let back: T = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(
        postcard::to_stdvec(&back).unwrap(),
        bytes,
        "the decoded value encodes to the same bytes"
    );
    back
}

/// A history with transfers, nonces of several accounts, and contracts in
/// every state: Funded, Disputed, Released and Refunded.
fn history() -> Harness {
    let mut h = Harness::new();
    let bob = addr("bob");
    h.block(vec![
        h.sign(
            "alice",
            Payload::Transfer {
                to: bob,
                amount: Amount::new(7),
            },
        ),
        h.sign(
            "dave",
            Payload::Transfer {
                to: addr("eve"),
                amount: Amount::new(3),
            },
        ),
    ])
    .unwrap();
    let funded = h.create("alice", "bob", "eve", 100).unwrap();
    let disputed = h.create("charlie", "dave", "eve", 50).unwrap();
    h.one("charlie", Payload::RaiseDispute { contract: disputed })
        .unwrap();
    let released = h.create("alice", "charlie", "eve", 20).unwrap();
    h.one("alice", Payload::ConfirmDelivery { contract: released })
        .unwrap();
    let refunded = h.create("bob", "dave", "eve", 30).unwrap();
    h.one("dave", Payload::RefundBuyer { contract: refunded })
        .unwrap();
    let state = |id| h.ledger.contract(&id).unwrap().state;
    assert_eq!(state(funded), State::Funded);
    assert!(matches!(state(disputed), State::Disputed { .. }));
    assert_eq!(state(released), State::Released);
    assert_eq!(state(refunded), State::Refunded);
    h
}

#[test]
fn a_ledger_round_trips_with_its_balances_nonces_and_contracts() {
    let h = history();
    let back: Ledger = round_trip(&h.ledger);
    assert_eq!(back, h.ledger);
    assert_eq!(back.balances(), h.ledger.balances());
    assert_eq!(back.contracts(), h.ledger.contracts());
    assert_eq!(back.contracts().len(), 4);
    for name in ["alice", "bob", "charlie", "dave", "eve", "ferdie"] {
        assert_eq!(
            back.nonce(&addr(name)),
            h.ledger.nonce(&addr(name)),
            "{name}"
        );
    }
    assert!(back.nonce(&addr("alice")) >= 4);
    assert_eq!(back.issued(), h.ledger.issued());
    assert_eq!(back.coinbase_reward(), h.ledger.coinbase_reward());
    assert_eq!(back.network(), h.ledger.network());
    assert_eq!(back.total_supply(), Some(back.issued()));
}

#[test]
fn the_verify_mode_is_not_part_of_the_state() {
    let mut ledger = dev_ledger();
    ledger.set_verify_mode(VerifyMode::Single);
    let back: Ledger = round_trip(&ledger);
    assert_eq!(
        back.verify_mode(),
        Ledger::new(ledger.network()).verify_mode()
    );
    assert_ne!(back.verify_mode(), VerifyMode::Single);
    assert_eq!(back, ledger, "equality compares the consensus state only");
    let mut other = dev_ledger();
    other.set_verify_mode(VerifyMode::Batch { threads: 3 });
    assert_eq!(other, ledger);
}

#[test]
fn undo_records_round_trip_and_undo_the_same() {
    let h = history();
    let decoded: Vec<Undo> = h.undos.iter().map(round_trip).collect();
    assert_eq!(decoded, h.undos);
    // Undo the whole history with the decoded records, from a decoded
    // ledger: back to genesis exactly.
    let mut ledger: Ledger = round_trip(&h.ledger);
    for undo in decoded.into_iter().rev() {
        ledger.undo_block(undo);
    }
    assert_eq!(ledger, dev_ledger());
}

#[test]
fn a_decoded_ledger_applies_the_next_block_exactly_as_the_original() {
    let h = history();
    let height = h.height + 1;
    let ctx = BlockContext {
        hash: BlockHash::from_bytes([0xAB; 32]),
        height,
        timestamp_ms: height * 1000,
    };
    let disputed = h
        .ledger
        .contracts()
        .values()
        .find(|c| matches!(c.state, State::Disputed { .. }))
        .unwrap()
        .id;
    let signed = [
        h.sign(
            "bob",
            Payload::Transfer {
                to: addr("alice"),
                amount: Amount::new(11),
            },
        ),
        h.sign("eve", resolve(disputed, Party::Seller)),
    ];
    let block: Vec<Tx> = std::iter::once(Tx::Coinbase {
        to: addr("ferdie"),
        height,
    })
    .chain(signed.iter().cloned().map(Tx::Signed))
    .collect();
    let mut original = h.ledger.clone();
    let mut decoded: Ledger = round_trip(&h.ledger);
    let a = original.apply_block(&ctx, &block).unwrap();
    let b = decoded.apply_block(&ctx, &block).unwrap();
    assert_eq!(a, b, "the same undo record");
    assert_eq!(original, decoded, "the same state");
    assert_eq!(decoded.contract(&disputed).unwrap().state, State::Released);

    // A refused block is refused the same way, and changes neither.
    let mut bad = block.clone();
    let replay: SignedTx = signed[0].clone();
    bad.push(Tx::Signed(replay));
    let mut original = h.ledger.clone();
    let mut decoded: Ledger = round_trip(&h.ledger);
    let ea = original.apply_block(&ctx, &bad).unwrap_err();
    let eb = decoded.apply_block(&ctx, &bad).unwrap_err();
    assert_eq!(ea, eb);
    assert!(matches!(ea, LedgerError::BadNonce { .. }), "{ea:?}");
    assert_eq!(original, h.ledger);
    assert_eq!(decoded, h.ledger);
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    let h = history();
    let bytes = postcard::to_stdvec(&h.ledger).unwrap();
    for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
        assert!(
            postcard::from_bytes::<Ledger>(&bytes[..cut]).is_err(),
            "cut at {cut}"
        );
    }
    assert!(postcard::from_bytes::<Undo>(&[0xFF; 16]).is_err());
}

#[test]
fn overlay_takes_only_the_named_entries() {
    let old = history();
    let mut new = Harness::new();
    new.one(
        "bob",
        Payload::Transfer {
            to: addr("dave"),
            amount: Amount::new(9),
        },
    )
    .unwrap();
    let funded = *old.ledger.contracts().keys().next().unwrap();
    let mut merged = old.ledger.clone();
    merged.overlay(&new.ledger, [addr("bob"), addr("ferdie")], [funded]);
    for name in ["bob", "ferdie"] {
        assert_eq!(merged.balance(&addr(name)), new.ledger.balance(&addr(name)));
        assert_eq!(merged.nonce(&addr(name)), new.ledger.nonce(&addr(name)));
    }
    for name in ["alice", "charlie", "dave", "eve"] {
        assert_eq!(merged.balance(&addr(name)), old.ledger.balance(&addr(name)));
        assert_eq!(merged.nonce(&addr(name)), old.ledger.nonce(&addr(name)));
    }
    assert!(
        merged.contract(&funded).is_none(),
        "absent in the other: removed"
    );
    assert_eq!(merged.contracts().len(), old.ledger.contracts().len() - 1);
    assert_eq!(merged.issued(), new.ledger.issued());
}

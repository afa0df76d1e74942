//! Fees: the sender pays them on top of what the payload moves, the
//! block's miner receives them, a reorg gives them back, and they never
//! create or destroy coins.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

mod common;

use common::{Harness, addr, resolve};
use escrow::{Amount, LedgerError, Party, Payload};

fn transfer(to: &str, amount: u64) -> Payload {
    Payload::Transfer {
        to: addr(to),
        amount: Amount::new(amount),
    }
}

#[test]
fn a_transfers_fee_goes_from_the_sender_to_the_miner() {
    let mut h = Harness::new();
    let reward = h.ledger.coinbase_reward().get();
    let (alice, bob, miner) = (h.balance("alice"), h.balance("bob"), h.balance("ferdie"));
    let tx = h.sign_paying("alice", 7, transfer("bob", 100));
    let other = escrow::SignedTx::sign(
        &common::key("bob"),
        0,
        Amount::new(3),
        h.ledger.network(),
        transfer("charlie", 1),
    );
    h.block(vec![tx, other]).unwrap();
    assert_eq!(h.balance("alice"), alice - 100 - 7);
    assert_eq!(h.balance("bob"), bob + 100 - 1 - 3);
    assert_eq!(h.balance("ferdie"), miner + reward + 7 + 3);
    assert_eq!(h.ledger.total_supply(), Some(h.ledger.issued()));
    // Undone by a reorg: every coin back where it was.
    h.undo();
    assert_eq!(
        (h.balance("alice"), h.balance("bob"), h.balance("ferdie")),
        (alice, bob, miner)
    );
}

#[test]
fn the_sender_must_hold_the_amount_and_the_fee() {
    let mut h = Harness::new();
    let all = h.balance("alice");
    let before = h.ledger.clone();
    let err = h
        .block(vec![h.sign_paying("alice", 1, transfer("bob", all))])
        .unwrap_err();
    assert_eq!(
        err,
        LedgerError::InsufficientFunds {
            account: addr("alice"),
            balance: Amount::new(all),
            needed: Amount::new(all + 1),
        }
    );
    assert_eq!(h.ledger, before, "a refused block changes nothing");
    // An amount plus a fee past u64::MAX is an overflow, not a wrap.
    let err = h
        .block(vec![h.sign_paying("alice", u64::MAX, transfer("bob", 1))])
        .unwrap_err();
    assert_eq!(
        err,
        LedgerError::AmountOverflow {
            account: addr("alice")
        }
    );
    // All of it, fee included, is fine.
    h.block(vec![h.sign_paying("alice", 1, transfer("bob", all - 1))])
        .unwrap();
    assert_eq!(h.balance("alice"), 0);
}

#[test]
fn escrow_actions_pay_fees_and_a_refund_may_pay_its_own() {
    let mut h = Harness::new();
    let reward = h.ledger.coinbase_reward().get();
    // The buyer locks everything but the creation's fee.
    let all = h.balance("alice");
    let create = h.sign_paying(
        "alice",
        5,
        Payload::EscrowCreate {
            seller: addr("bob"),
            arbiter: addr("charlie"),
            amount: Amount::new(all - 5),
            delivery_deadline: 10,
            dispute_window: 3,
        },
    );
    let id = escrow::ledger::contract_id_of(&create);
    let miner = h.balance("ferdie");
    h.block(vec![create]).unwrap();
    assert_eq!(h.balance("alice"), 0);
    assert_eq!(h.balance("ferdie"), miner + reward + 5);
    // A dispute by the penniless buyer cannot pay its fee.
    let dispute = h.sign_paying("alice", 1, Payload::RaiseDispute { contract: id });
    assert!(matches!(
        h.block(vec![dispute]),
        Err(LedgerError::InsufficientFunds { .. })
    ));
    // The seller disputes, paying; the arbiter refunds the buyer, paying.
    h.block(vec![h.sign_paying(
        "bob",
        2,
        Payload::RaiseDispute { contract: id },
    )])
    .unwrap();
    let charlie = h.balance("charlie");
    h.block(vec![h.sign_paying("charlie", 4, resolve(id, Party::Buyer))])
        .unwrap();
    assert_eq!(h.balance("charlie"), charlie - 4);
    assert_eq!(h.balance("alice"), all - 5);
    assert_eq!(h.ledger.total_supply(), Some(h.ledger.issued()));
}

#[test]
fn a_buyer_taking_a_refund_pays_the_fee_from_it() {
    let mut h = Harness::new();
    let all = h.balance("alice");
    let create = h.sign_paying(
        "alice",
        0,
        Payload::EscrowCreate {
            seller: addr("bob"),
            arbiter: addr("charlie"),
            amount: Amount::new(all),
            delivery_deadline: 3,
            dispute_window: 3,
        },
    );
    let id = escrow::ledger::contract_id_of(&create);
    h.block(vec![create]).unwrap();
    h.advance_to(4);
    assert_eq!(h.balance("alice"), 0);
    h.block(vec![h.sign_paying(
        "alice",
        9,
        Payload::RefundBuyer { contract: id },
    )])
    .unwrap();
    assert_eq!(h.balance("alice"), all - 9);
    assert_eq!(h.ledger.total_supply(), Some(h.ledger.issued()));
}

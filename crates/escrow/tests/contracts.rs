//! Every contract transition and every refusal, each by name; transfers,
//! nonces, signatures, coinbase and genesis rules; admission.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

mod common;

use chain_core::{BlockContext, BlockHash, StateMachine};
use common::*;
use escrow::genesis::{DEV_BALANCE, DEV_REWARD};
use escrow::{
    Amount, ContractError, ContractId, LedgerError, Party, Payload, Signature, SignedTx, State, Tx,
    check_admission,
};

fn contract_err(r: Result<(), LedgerError>) -> ContractError {
    match r {
        Err(LedgerError::Contract(e)) => e,
        other => panic!("expected a contract error, got {other:?}"),
    }
}

#[test]
fn create_moves_funds_into_the_contract() {
    let mut h = Harness::new();
    let id = h.create("alice", "bob", "eve", 100).unwrap();
    let c = h.ledger.contract(&id).unwrap();
    assert_eq!(c.state, State::Funded);
    assert_eq!(c.buyer, addr("alice"));
    assert_eq!(c.amount, Amount::new(100));
    assert_eq!(h.balance("alice"), DEV_BALANCE - 100);
    assert_eq!(c.history.len(), 1);
    assert_eq!(c.history[0].height, 1);
    assert_eq!(h.ledger.total_supply(), Some(h.ledger.issued()));
}

#[test]
fn confirm_delivery_releases_to_the_seller() {
    let mut h = Harness::new();
    let id = h.create("alice", "bob", "eve", 100).unwrap();
    h.one("alice", Payload::ConfirmDelivery { contract: id })
        .unwrap();
    assert_eq!(h.ledger.contract(&id).unwrap().state, State::Released);
    assert_eq!(h.balance("bob"), DEV_BALANCE + 100);
    assert_eq!(h.balance("alice"), DEV_BALANCE - 100);
}

#[test]
fn only_the_buyer_confirms_delivery() {
    let mut h = Harness::new();
    let id = h.create("alice", "bob", "eve", 100).unwrap();
    for who in ["bob", "eve", "charlie"] {
        assert!(matches!(
            contract_err(h.one(who, Payload::ConfirmDelivery { contract: id })),
            ContractError::NotBuyer { .. }
        ));
    }
}

#[test]
fn a_dispute_records_its_height_and_blocks_confirmation() {
    let mut h = Harness::new();
    let id = h.create("alice", "bob", "eve", 100).unwrap();
    h.one("bob", Payload::RaiseDispute { contract: id })
        .unwrap();
    assert_eq!(
        h.ledger.contract(&id).unwrap().state,
        State::Disputed { since: 2 }
    );
    assert!(matches!(
        contract_err(h.one("alice", Payload::ConfirmDelivery { contract: id })),
        ContractError::NotFunded {
            state: "Disputed",
            ..
        }
    ));
    assert!(matches!(
        contract_err(h.one("alice", Payload::RaiseDispute { contract: id })),
        ContractError::NotFunded { .. }
    ));
    assert!(matches!(
        contract_err(h.one("eve", Payload::RaiseDispute { contract: id })),
        ContractError::NotAParty { .. }
    ));
}

#[test]
fn the_arbiter_resolves_either_way_and_only_the_arbiter() {
    let mut h = Harness::new();
    let to_seller = h.create("alice", "bob", "eve", 100).unwrap();
    let to_buyer = h.create("charlie", "dave", "eve", 50).unwrap();
    // Not disputed yet.
    assert!(matches!(
        contract_err(h.one("eve", resolve(to_seller, Party::Seller))),
        ContractError::NotDisputed { .. }
    ));
    h.one(
        "alice",
        Payload::RaiseDispute {
            contract: to_seller,
        },
    )
    .unwrap();
    h.one("dave", Payload::RaiseDispute { contract: to_buyer })
        .unwrap();
    for who in ["alice", "bob"] {
        assert!(matches!(
            contract_err(h.one(who, resolve(to_seller, Party::Seller))),
            ContractError::NotArbiter { .. }
        ));
    }
    h.one("eve", resolve(to_seller, Party::Seller)).unwrap();
    h.one("eve", resolve(to_buyer, Party::Buyer)).unwrap();
    assert_eq!(
        h.ledger.contract(&to_seller).unwrap().state,
        State::Released
    );
    assert_eq!(h.ledger.contract(&to_buyer).unwrap().state, State::Refunded);
    assert_eq!(h.balance("bob"), DEV_BALANCE + 100);
    assert_eq!(h.balance("charlie"), DEV_BALANCE);
    assert_eq!(h.balance("dave"), DEV_BALANCE);
}

#[test]
fn final_contracts_refuse_everything() {
    let mut h = Harness::new();
    let id = h.create("alice", "bob", "eve", 100).unwrap();
    h.one("alice", Payload::ConfirmDelivery { contract: id })
        .unwrap();
    for (who, payload) in [
        ("alice", Payload::ConfirmDelivery { contract: id }),
        ("bob", Payload::RaiseDispute { contract: id }),
        ("eve", resolve(id, Party::Buyer)),
        ("bob", Payload::RefundBuyer { contract: id }),
    ] {
        assert!(matches!(
            contract_err(h.one(who, payload)),
            ContractError::AlreadyFinal {
                state: "Released",
                ..
            }
        ));
    }
    // Paid out once.
    assert_eq!(h.balance("bob"), DEV_BALANCE + 100);
}

#[test]
fn the_seller_may_refund_at_any_time_before_release() {
    let mut h = Harness::new();
    let funded = h.create("alice", "bob", "eve", 100).unwrap();
    h.one("bob", Payload::RefundBuyer { contract: funded })
        .unwrap();
    assert_eq!(h.ledger.contract(&funded).unwrap().state, State::Refunded);
    assert_eq!(h.balance("alice"), DEV_BALANCE);
    let disputed = h.create("alice", "bob", "eve", 70).unwrap();
    h.one("alice", Payload::RaiseDispute { contract: disputed })
        .unwrap();
    h.one("bob", Payload::RefundBuyer { contract: disputed })
        .unwrap();
    assert_eq!(h.balance("alice"), DEV_BALANCE);
}

#[test]
fn the_buyer_refund_after_the_delivery_deadline_needs_silence_from_the_seller() {
    let mut h = Harness::new();
    let id = h.create("alice", "bob", "eve", 100).unwrap(); // deadline 0 + 10
    let deadline = h.ledger.contract(&id).unwrap().delivery_deadline;
    assert_eq!(deadline, 10);
    h.advance_to(deadline - 1);
    // The refund in the block at the deadline itself is still too early.
    assert_eq!(
        contract_err(h.one("alice", Payload::RefundBuyer { contract: id })),
        ContractError::DeadlineNotReached {
            deadline,
            height: deadline
        }
    );
    // Past it, with the seller silent, the buyer takes the refund.
    h.block(vec![]).unwrap();
    h.one("alice", Payload::RefundBuyer { contract: id })
        .unwrap();
    assert_eq!(h.ledger.contract(&id).unwrap().state, State::Refunded);
    assert_eq!(h.balance("alice"), DEV_BALANCE);
}

#[test]
fn a_seller_who_disputes_in_time_keeps_the_buyer_from_the_deadline_refund() {
    let mut h = Harness::new();
    let id = h.create("alice", "bob", "eve", 100).unwrap();
    h.one("bob", Payload::RaiseDispute { contract: id })
        .unwrap(); // at height 2
    h.advance_to(11);
    // The delivery deadline has passed, but the dispute window (5 blocks
    // from height 2) decides now: after height 7 the buyer may refund.
    h.one("alice", Payload::RefundBuyer { contract: id })
        .unwrap();
    assert_eq!(h.ledger.contract(&id).unwrap().state, State::Refunded);
}

#[test]
fn the_buyer_refund_after_an_unresolved_dispute_waits_for_the_window() {
    let mut h = Harness::new();
    let id = h.create("alice", "bob", "eve", 100).unwrap();
    h.one("alice", Payload::RaiseDispute { contract: id })
        .unwrap(); // since 2, window 5: allowed after 7
    h.advance_to(6);
    assert_eq!(
        contract_err(h.one("alice", Payload::RefundBuyer { contract: id })),
        ContractError::DeadlineNotReached {
            deadline: 7,
            height: 7
        }
    );
    h.block(vec![]).unwrap();
    h.one("alice", Payload::RefundBuyer { contract: id })
        .unwrap();
    assert_eq!(h.ledger.contract(&id).unwrap().state, State::Refunded);
    assert_eq!(h.balance("alice"), DEV_BALANCE);
}

#[test]
fn outsiders_cannot_refund() {
    let mut h = Harness::new();
    let id = h.create("alice", "bob", "eve", 100).unwrap();
    for who in ["eve", "charlie"] {
        assert!(matches!(
            contract_err(h.one(who, Payload::RefundBuyer { contract: id })),
            ContractError::NotAParty { .. }
        ));
    }
}

#[test]
fn creation_rules_are_enforced() {
    let mut h = Harness::new();
    let mut try_create = |seller: &str, arbiter: &str, amount: u64, deadline: u64, window: u64| {
        let tx = h.sign(
            "alice",
            Payload::EscrowCreate {
                seller: addr(seller),
                arbiter: addr(arbiter),
                amount: Amount::new(amount),
                delivery_deadline: deadline,
                dispute_window: window,
            },
        );
        h.block(vec![tx])
    };
    assert_eq!(
        contract_err(try_create("bob", "eve", 0, 10, 5)),
        ContractError::ZeroAmount
    );
    assert_eq!(
        contract_err(try_create("alice", "eve", 10, 10, 5)),
        ContractError::BuyerIsSeller
    );
    assert_eq!(
        contract_err(try_create("bob", "bob", 10, 10, 5)),
        ContractError::ArbiterIsAParty(addr("bob"))
    );
    assert_eq!(
        contract_err(try_create("bob", "alice", 10, 10, 5)),
        ContractError::ArbiterIsAParty(addr("alice"))
    );
    assert_eq!(
        contract_err(try_create("bob", "eve", 10, 1, 5)),
        ContractError::DeadlineInThePast {
            deadline: 1,
            height: 1
        }
    );
    assert_eq!(
        contract_err(try_create("bob", "eve", 10, 10, 0)),
        ContractError::ZeroDisputeWindow
    );
    assert!(matches!(
        try_create("bob", "eve", DEV_BALANCE + 1, 10, 5),
        Err(LedgerError::InsufficientFunds { .. })
    ));
}

#[test]
fn an_unknown_contract_is_named() {
    let mut h = Harness::new();
    let ghost = ContractId::from_tx(&chain_core::TxId::from_bytes([7; 32]));
    assert_eq!(
        contract_err(h.one("alice", Payload::ConfirmDelivery { contract: ghost })),
        ContractError::UnknownContract(ghost)
    );
}

#[test]
fn contract_ids_are_derived_from_the_creating_transaction() {
    let mut a = Harness::new();
    let mut b = Harness::new();
    let id_a = a.create("alice", "bob", "eve", 100).unwrap();
    let id_b = b.create("alice", "bob", "eve", 100).unwrap();
    assert_eq!(id_a, id_b);
    assert_eq!(id_a.0.get_version_num(), 8);
    let other = a.create("alice", "bob", "eve", 100).unwrap();
    assert_ne!(other, id_a);
}

#[test]
fn transfers_check_funds_nonces_network_and_signatures() {
    let mut h = Harness::new();
    let pay = |n: u64| Payload::Transfer {
        to: addr("bob"),
        amount: Amount::new(n),
    };
    h.one("alice", pay(10)).unwrap();
    assert_eq!(h.balance("bob"), DEV_BALANCE + 10);
    assert_eq!(h.ledger.nonce(&addr("alice")), 1);
    // Replayed nonce.
    let replay = SignedTx::sign(
        &key("alice"),
        0,
        escrow::Amount::ZERO,
        h.ledger.network(),
        pay(10),
    );
    assert!(matches!(
        h.block(vec![replay]),
        Err(LedgerError::BadNonce {
            expected: 1,
            got: 0,
            ..
        })
    ));
    // Skipped nonce.
    let skip = SignedTx::sign(
        &key("alice"),
        5,
        escrow::Amount::ZERO,
        h.ledger.network(),
        pay(10),
    );
    assert!(matches!(
        h.block(vec![skip]),
        Err(LedgerError::BadNonce { got: 5, .. })
    ));
    // Another network.
    let other = SignedTx::sign(
        &key("alice"),
        1,
        escrow::Amount::ZERO,
        BlockHash::from_bytes([1; 32]),
        pay(10),
    );
    assert!(matches!(
        h.block(vec![other]),
        Err(LedgerError::WrongNetwork { .. })
    ));
    // Overspend.
    assert!(matches!(
        h.one("alice", pay(DEV_BALANCE)),
        Err(LedgerError::InsufficientFunds { .. })
    ));
    assert!(matches!(
        h.one("alice", pay(0)),
        Err(LedgerError::ZeroTransfer)
    ));
    // A forged signature.
    let mut forged = h.sign("alice", pay(10));
    forged.signature = Signature([3; 64]);
    assert!(matches!(
        h.block(vec![forged]),
        Err(LedgerError::BadSignature { .. })
    ));
    // Overflow at the receiver: u64::MAX coins cannot exist here, so check
    // through the amount type at the edge instead.
    assert_eq!(Amount::MAX.checked_add(Amount::new(1)), None);
}

#[test]
fn a_refused_block_changes_nothing() {
    let mut h = Harness::new();
    h.create("alice", "bob", "eve", 100).unwrap();
    let before = h.ledger.clone();
    let good = h.sign(
        "charlie",
        Payload::Transfer {
            to: addr("dave"),
            amount: Amount::new(5),
        },
    );
    let bad = SignedTx::sign(
        &key("dave"),
        9,
        escrow::Amount::ZERO,
        h.ledger.network(),
        Payload::Transfer {
            to: addr("eve"),
            amount: Amount::new(5),
        },
    );
    assert!(h.block(vec![good, bad]).is_err());
    assert_eq!(h.ledger, before);
}

#[test]
fn undo_restores_the_exact_state() {
    let mut h = Harness::new();
    let snapshot0 = h.ledger.clone();
    let id = h.create("alice", "bob", "eve", 100).unwrap();
    let snapshot1 = h.ledger.clone();
    h.one("alice", Payload::ConfirmDelivery { contract: id })
        .unwrap();
    h.undo();
    assert_eq!(h.ledger, snapshot1);
    h.undo();
    assert_eq!(h.ledger, snapshot0);
}

#[test]
fn coinbase_rules() {
    let mut h = Harness::new();
    let net = h.ledger.network();
    let ctx = |height| BlockContext {
        hash: BlockHash::ZERO,
        height,
        timestamp_ms: 0,
    };
    let tx = Tx::Signed(SignedTx::sign(
        &key("alice"),
        0,
        escrow::Amount::ZERO,
        net,
        Payload::Transfer {
            to: addr("bob"),
            amount: Amount::new(1),
        },
    ));
    let cb = |height| Tx::Coinbase {
        to: addr("ferdie"),
        height,
    };
    assert_eq!(
        h.ledger.apply_block(&ctx(1), std::slice::from_ref(&tx)),
        Err(LedgerError::MissingCoinbase { height: 1 })
    );
    assert_eq!(
        h.ledger.apply_block(&ctx(1), &[cb(1), cb(1)]),
        Err(LedgerError::MisplacedCoinbase)
    );
    assert_eq!(
        h.ledger.apply_block(&ctx(1), &[cb(2)]),
        Err(LedgerError::WrongCoinbaseHeight {
            expected: 1,
            got: 2
        })
    );
    let alloc = Tx::Allocation {
        to: addr("alice"),
        amount: Amount::new(5),
    };
    assert!(matches!(
        h.ledger.apply_block(&ctx(1), &[cb(1), alloc]),
        Err(LedgerError::NotAllowedHere {
            kind: "allocation",
            ..
        })
    ));
    let issued = h.ledger.issued();
    h.ledger.apply_block(&ctx(1), &[cb(1), tx]).unwrap();
    assert_eq!(h.ledger.issued().get(), issued.get() + DEV_REWARD);
    assert_eq!(
        h.ledger.balance(&addr("ferdie")).get(),
        DEV_BALANCE + DEV_REWARD
    );
}

#[test]
fn admission_counts_pending_nonces_and_spends() {
    let h = Harness::new();
    let net = h.ledger.network();
    let pay = |nonce: u64, amount: u64| transfer("alice", nonce, net, "bob", amount);
    let first = pay(0, DEV_BALANCE - 10);
    check_admission(&h.ledger, &[], &first, 1).unwrap();
    // The next nonce counts the pending one ...
    assert!(matches!(
        check_admission(&h.ledger, std::slice::from_ref(&first), &pay(0, 1), 1),
        Err(escrow::AdmissionError::Invalid(LedgerError::BadNonce {
            expected: 1,
            ..
        }))
    ));
    // ... a gap is refused ...
    assert!(matches!(
        check_admission(&h.ledger, std::slice::from_ref(&first), &pay(2, 1), 1),
        Err(escrow::AdmissionError::Invalid(
            LedgerError::BadNonce { .. }
        ))
    ));
    // ... and the pending spend counts against the balance.
    assert!(matches!(
        check_admission(&h.ledger, std::slice::from_ref(&first), &pay(1, 11), 1),
        Err(escrow::AdmissionError::Invalid(
            LedgerError::InsufficientFunds { .. }
        ))
    ));
    check_admission(&h.ledger, std::slice::from_ref(&first), &pay(1, 10), 1).unwrap();
    assert!(matches!(
        check_admission(&h.ledger, std::slice::from_ref(&first), &first, 1),
        Err(escrow::AdmissionError::AlreadyPending(_))
    ));
    let mut forged = pay(0, 1);
    forged.signature = Signature([0; 64]);
    assert!(matches!(
        check_admission(&h.ledger, &[], &forged, 1),
        Err(escrow::AdmissionError::Invalid(
            LedgerError::BadSignature { .. }
        ))
    ));
}

#[test]
fn pending_state_admits_incrementally_and_refusals_change_nothing() {
    let h = Harness::new();
    let net = h.ledger.network();
    let pay = |nonce: u64, amount: u64| transfer("alice", nonce, net, "bob", amount);
    let mut pending = escrow::PendingState::new(&h.ledger, 1);
    pending.admit(&pay(0, DEV_BALANCE - 10)).unwrap();
    let before = pending.ledger().clone();
    assert!(matches!(
        pending.admit(&pay(1, 11)),
        Err(escrow::AdmissionError::Invalid(
            LedgerError::InsufficientFunds { .. }
        ))
    ));
    assert!(matches!(
        pending.admit(&pay(3, 1)),
        Err(escrow::AdmissionError::Invalid(LedgerError::BadNonce {
            expected: 1,
            ..
        }))
    ));
    let mut forged = pay(1, 1);
    forged.signature = Signature([0; 64]);
    assert!(matches!(
        pending.admit(&forged),
        Err(escrow::AdmissionError::Invalid(
            LedgerError::BadSignature { .. }
        ))
    ));
    assert_eq!(pending.ledger(), &before, "refusals change nothing");
    pending.admit(&pay(1, 10)).unwrap();
    assert_eq!(pending.ledger().balance(&addr("alice")), Amount::new(0));
    assert_eq!(pending.next_height(), 1);
}

#[test]
fn a_memo_transfer_moves_any_amount_zero_included_and_its_memo_is_signed() {
    let mut h = Harness::new();
    let memo = |text: &[u8]| escrow::Memo::new(text).unwrap();
    let pay = |n: u64, text: &[u8]| Payload::TransferMemo {
        to: addr("bob"),
        amount: Amount::new(n),
        memo: memo(text),
    };
    h.one("alice", pay(0, b"just a note")).unwrap();
    assert_eq!(h.balance("bob"), DEV_BALANCE);
    assert_eq!(h.ledger.nonce(&addr("alice")), 1);
    h.one("alice", pay(25, &[9; escrow::MAX_MEMO_BYTES]))
        .unwrap();
    assert_eq!(h.balance("bob"), DEV_BALANCE + 25);
    assert_eq!(h.balance("alice"), DEV_BALANCE - 25);
    assert!(matches!(
        h.one("alice", pay(DEV_BALANCE, b"too much")),
        Err(LedgerError::InsufficientFunds { .. })
    ));
    // The memo is part of what is signed and of the id: changing it
    // breaks the signature and gives another id.
    let tx = h.sign("alice", pay(1, b"invoice 1"));
    let decoded = SignedTx::from_bytes(&tx.to_bytes()).unwrap();
    assert_eq!(decoded, tx);
    let mut changed = tx.clone();
    changed.body.payload = pay(1, b"invoice 2");
    assert_ne!(changed.id(), tx.id());
    assert!(matches!(
        h.block(vec![changed]),
        Err(LedgerError::BadSignature { .. })
    ));
    h.block(vec![tx]).unwrap();
    assert_eq!(h.ledger.total_supply(), Some(h.ledger.issued()));
}

#[test]
fn the_encodings_of_the_older_payloads_did_not_change_when_memos_came() {
    // Variant indices are the postcard tags: a transfer is still tag 0 and
    // a refund tag 5, so ids of transactions signed before memos are kept.
    let transfer = postcard::to_stdvec(&Payload::Transfer {
        to: addr("bob"),
        amount: Amount::new(1),
    })
    .unwrap();
    assert_eq!(transfer[0], 0);
    let memo = postcard::to_stdvec(&Payload::TransferMemo {
        to: addr("bob"),
        amount: Amount::new(1),
        memo: escrow::Memo::new(b"x").unwrap(),
    })
    .unwrap();
    assert_eq!(memo[0], 6);
    assert_eq!(&transfer[1..], &memo[1..memo.len() - 2]);
    assert_eq!(&memo[memo.len() - 2..], &[1, b'x']);
}

//! Property tests over random sequences of valid and invalid transactions,
//! applied in blocks and undone in reorgs, each paying a random fee: coins
//! are conserved (fees move to the miner), no contract
//! pays out twice, undo restores the exact state, a refused block changes
//! nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

mod common;

use std::collections::HashMap;

use chain_core::{BlockHash, TxId};
use common::{Harness, addr, key};
use escrow::dev::DEV_ACCOUNTS;
use escrow::{Action, Amount, ContractId, Ledger, Party, Payload, SignedTx};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Transfer {
        from: usize,
        to: usize,
        amount: u64,
    },
    Create {
        buyer: usize,
        seller: usize,
        arbiter: usize,
        amount: u64,
        deadline: u64,
        window: u64,
    },
    Confirm {
        who: usize,
        contract: usize,
    },
    Dispute {
        who: usize,
        contract: usize,
    },
    Resolve {
        who: usize,
        contract: usize,
        seller: bool,
    },
    Refund {
        who: usize,
        contract: usize,
    },
    /// A transaction with the sender's previous nonce.
    Replay {
        who: usize,
    },
    /// A transaction with a nonce past the next one.
    SkipNonce {
        who: usize,
    },
    /// Signed by someone other than the named sender.
    WrongSigner {
        who: usize,
        signer: usize,
    },
    /// Empty blocks, to pass deadlines.
    Wait {
        blocks: u64,
    },
    /// Undo the last `depth` blocks (a reorg), then go on.
    Reorg {
        depth: usize,
    },
}

fn amount() -> impl Strategy<Value = u64> {
    prop_oneof![
        1u64..200,
        Just(0u64),
        999_000u64..1_001_000,
        (u64::MAX - 10)..=u64::MAX,
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let who = 0usize..6;
    prop_oneof![
        (who.clone(), who.clone(), amount()).prop_map(|(from, to, amount)| Op::Transfer {
            from,
            to,
            amount
        }),
        (
            who.clone(),
            who.clone(),
            who.clone(),
            amount(),
            0u64..20,
            0u64..6
        )
            .prop_map(
                |(buyer, seller, arbiter, amount, deadline, window)| Op::Create {
                    buyer,
                    seller,
                    arbiter,
                    amount,
                    deadline,
                    window
                }
            ),
        (who.clone(), 0usize..8).prop_map(|(who, contract)| Op::Confirm { who, contract }),
        (who.clone(), 0usize..8).prop_map(|(who, contract)| Op::Dispute { who, contract }),
        (who.clone(), 0usize..8, any::<bool>()).prop_map(|(who, contract, seller)| Op::Resolve {
            who,
            contract,
            seller
        }),
        (who.clone(), 0usize..8).prop_map(|(who, contract)| Op::Refund { who, contract }),
        who.clone().prop_map(|who| Op::Replay { who }),
        who.clone().prop_map(|who| Op::SkipNonce { who }),
        (who.clone(), who).prop_map(|(who, signer)| Op::WrongSigner { who, signer }),
        (1u64..8).prop_map(|blocks| Op::Wait { blocks }),
        (1usize..4).prop_map(|depth| Op::Reorg { depth }),
    ]
}

fn name(i: usize) -> &'static str {
    DEV_ACCOUNTS[i % DEV_ACCOUNTS.len()]
}

fn signed(ledger: &Ledger, who: usize, nonce_delta: i64, fee: u64, payload: Payload) -> SignedTx {
    let k = key(name(who));
    let nonce = ledger
        .nonce(&k.address())
        .saturating_add_signed(nonce_delta);
    SignedTx::sign(&k, nonce, Amount::new(fee), ledger.network(), payload)
}

fn contract_id(ids: &[ContractId], i: usize) -> ContractId {
    ids.get(i)
        .copied()
        .unwrap_or_else(|| ContractId::from_tx(&TxId::from_bytes([i as u8; 32])))
}

fn check_invariants(ledger: &Ledger) -> Result<(), TestCaseError> {
    prop_assert_eq!(ledger.total_supply(), Some(ledger.issued()));
    for c in ledger.contracts().values() {
        let payouts = c
            .history
            .iter()
            .filter(|h| {
                matches!(
                    h.action,
                    Action::DeliveryConfirmed | Action::Resolved(_) | Action::Refunded
                )
            })
            .count();
        prop_assert!(payouts <= 1, "contract {} paid out {payouts} times", c.id);
        prop_assert_eq!(payouts == 1, c.state.is_final());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_histories_keep_the_invariants(ops in proptest::collection::vec((op(), amount()), 1..40)) {
        let mut h = Harness::new();
        let mut ids: Vec<ContractId> = Vec::new();
        // Snapshots by height, to check that undo restores them exactly.
        let mut snapshots: HashMap<u64, Ledger> = HashMap::new();
        snapshots.insert(0, h.ledger.clone());
        for (op, fee) in ops {
            let before = h.ledger.clone();
            let miner_before = h.ledger.balance(&h.miner);
            let tx = match op {
                Op::Transfer { from, to, amount } => Some(signed(&h.ledger, from, 0, fee, Payload::Transfer { to: addr(name(to)), amount: Amount::new(amount) })),
                Op::Create { buyer, seller, arbiter, amount, deadline, window } => Some(signed(&h.ledger, buyer, 0, fee, Payload::EscrowCreate {
                    seller: addr(name(seller)),
                    arbiter: addr(name(arbiter)),
                    amount: Amount::new(amount),
                    delivery_deadline: h.height + deadline,
                    dispute_window: window,
                })),
                Op::Confirm { who, contract } => Some(signed(&h.ledger, who, 0, fee, Payload::ConfirmDelivery { contract: contract_id(&ids, contract) })),
                Op::Dispute { who, contract } => Some(signed(&h.ledger, who, 0, fee, Payload::RaiseDispute { contract: contract_id(&ids, contract) })),
                Op::Resolve { who, contract, seller } => Some(signed(&h.ledger, who, 0, fee, Payload::Resolve {
                    contract: contract_id(&ids, contract),
                    to: if seller { Party::Seller } else { Party::Buyer },
                })),
                Op::Refund { who, contract } => Some(signed(&h.ledger, who, 0, fee, Payload::RefundBuyer { contract: contract_id(&ids, contract) })),
                Op::Replay { who } => Some(signed(&h.ledger, who, -1, fee, Payload::Transfer { to: addr("bob"), amount: Amount::new(1) })),
                Op::SkipNonce { who } => Some(signed(&h.ledger, who, 2, fee, Payload::Transfer { to: addr("bob"), amount: Amount::new(1) })),
                Op::WrongSigner { who, signer } => {
                    let mut tx = signed(&h.ledger, signer, 0, fee, Payload::Transfer { to: addr("bob"), amount: Amount::new(1) });
                    tx.body.sender = key(name(who)).public();
                    Some(tx)
                }
                Op::Wait { blocks } => {
                    for _ in 0..blocks {
                        h.block(vec![]).unwrap();
                        snapshots.insert(h.height, h.ledger.clone());
                    }
                    None
                }
                Op::Reorg { depth } => {
                    for _ in 0..depth.min(h.undos.len()) {
                        h.undo();
                        prop_assert_eq!(&h.ledger, &snapshots[&h.height]);
                    }
                    // Contracts created in undone blocks are gone.
                    ids.retain(|id| h.ledger.contract(id).is_some());
                    None
                }
            };
            if let Some(tx) = tx {
                let created = matches!(tx.body.payload, Payload::EscrowCreate { .. }).then(|| ContractId::from_tx(&tx.id()));
                let network_ok = tx.body.network != BlockHash::ZERO;
                let touches_miner = match &tx.body.payload {
                    Payload::Transfer { to, .. } => *to == h.miner,
                    Payload::EscrowCreate { .. } => false,
                    // A payout may reach the miner.
                    _ => true,
                };
                prop_assert!(network_ok);
                let (sender, paid) = (tx.sender(), tx.fee());
                match h.block(vec![tx]) {
                    Ok(()) => {
                        // The fee moved to the miner, beside the reward
                        // (unless the miner sent it, or was paid by it).
                        if sender != h.miner && !touches_miner {
                            let reward = h.ledger.coinbase_reward();
                            prop_assert_eq!(
                                h.ledger.balance(&h.miner),
                                miner_before.checked_add(reward).and_then(|b| b.checked_add(paid)).unwrap()
                            );
                        }
                        snapshots.insert(h.height, h.ledger.clone());
                        if let Some(id) = created {
                            ids.push(id);
                        }
                    }
                    // A refused block changes nothing.
                    Err(_) => prop_assert_eq!(&h.ledger, &before),
                }
            }
            check_invariants(&h.ledger)?;
        }
        // Undo everything: back to genesis exactly.
        while !h.undos.is_empty() {
            h.undo();
        }
        prop_assert_eq!(&h.ledger, &snapshots[&0]);
    }
}

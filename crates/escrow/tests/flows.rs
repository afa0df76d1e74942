//! The notebook's two flows, on a real chain: signed transactions, mined
//! blocks at the dev difficulty, exact final balances.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

mod common;

use chain_core::Chain;
use chain_core::tree::Inserted;
use common::{addr, key};
use escrow::genesis::{DEV_BALANCE, DEV_REWARD};
use escrow::{Amount, ContractId, Genesis, Ledger, Party, Payload, SignedTx, State, Tx};

/// A dev chain mined by ferdie, one block per step.
struct Net {
    chain: Chain<Ledger>,
    now: u64,
}

impl Net {
    fn new() -> Net {
        let genesis = Genesis::dev();
        Net {
            chain: genesis.chain().unwrap(),
            now: genesis.timestamp_ms,
        }
    }

    fn sign(&self, name: &str, payload: Payload) -> SignedTx {
        let k = key(name);
        let ledger = self.chain.state();
        SignedTx::sign(
            &k,
            ledger.nonce(&k.address()),
            escrow::Amount::ZERO,
            ledger.network(),
            payload,
        )
    }

    /// Mines a block with these transactions and inserts it.
    fn mine(&mut self, txs: Vec<SignedTx>) {
        self.now += 1_000;
        let mut all = vec![Tx::Coinbase {
            to: addr("ferdie"),
            height: self.chain.height() + 1,
        }];
        all.extend(txs.into_iter().map(Tx::Signed));
        let block = common::mine_on(&self.chain, all, self.now);
        assert!(matches!(
            self.chain.insert(block, self.now).unwrap(),
            Inserted::NewBest(_)
        ));
    }

    fn balance(&self, name: &str) -> u64 {
        self.chain.state().balance(&addr(name)).get()
    }

    fn state(&self, id: &ContractId) -> State {
        self.chain.state().contract(id).unwrap().state
    }
}

#[test]
fn alice_pays_bob_through_escrow_and_confirms_delivery() {
    let mut net = Net::new();
    let create = net.sign(
        "alice",
        Payload::EscrowCreate {
            seller: addr("bob"),
            arbiter: addr("eve"),
            amount: Amount::new(100),
            delivery_deadline: 100,
            dispute_window: 20,
        },
    );
    let id = ContractId::from_tx(&create.id());
    net.mine(vec![create]);
    assert_eq!(net.state(&id), State::Funded);
    assert_eq!(net.balance("alice"), DEV_BALANCE - 100);
    net.mine(vec![
        net.sign("alice", Payload::ConfirmDelivery { contract: id }),
    ]);
    assert_eq!(net.state(&id), State::Released);
    assert_eq!(net.balance("alice"), DEV_BALANCE - 100);
    assert_eq!(net.balance("bob"), DEV_BALANCE + 100);
    assert_eq!(net.balance("eve"), DEV_BALANCE);
    // Ferdie mined both blocks.
    assert_eq!(net.balance("ferdie"), DEV_BALANCE + 2 * DEV_REWARD);
    let history = &net.chain.state().contract(&id).unwrap().history;
    assert_eq!(history.len(), 2);
    assert_eq!((history[0].height, history[1].height), (1, 2));
}

#[test]
fn charlie_disputes_and_eve_refunds_him() {
    let mut net = Net::new();
    let create = net.sign(
        "charlie",
        Payload::EscrowCreate {
            seller: addr("dave"),
            arbiter: addr("eve"),
            amount: Amount::new(50),
            delivery_deadline: 100,
            dispute_window: 20,
        },
    );
    let id = ContractId::from_tx(&create.id());
    net.mine(vec![create]);
    net.mine(vec![
        net.sign("charlie", Payload::RaiseDispute { contract: id }),
    ]);
    assert_eq!(net.state(&id), State::Disputed { since: 2 });
    assert_eq!(net.balance("charlie"), DEV_BALANCE - 50);
    net.mine(vec![net.sign(
        "eve",
        Payload::Resolve {
            contract: id,
            to: Party::Buyer,
        },
    )]);
    assert_eq!(net.state(&id), State::Refunded);
    assert_eq!(net.balance("charlie"), DEV_BALANCE);
    assert_eq!(net.balance("dave"), DEV_BALANCE);
    assert_eq!(net.balance("eve"), DEV_BALANCE);
    let ledger = net.chain.state();
    assert_eq!(ledger.total_supply(), Some(ledger.issued()));
}

#[test]
fn both_flows_in_the_same_blocks() {
    let mut net = Net::new();
    let a = net.sign(
        "alice",
        Payload::EscrowCreate {
            seller: addr("bob"),
            arbiter: addr("eve"),
            amount: Amount::new(100),
            delivery_deadline: 100,
            dispute_window: 20,
        },
    );
    let c = net.sign(
        "charlie",
        Payload::EscrowCreate {
            seller: addr("dave"),
            arbiter: addr("eve"),
            amount: Amount::new(50),
            delivery_deadline: 100,
            dispute_window: 20,
        },
    );
    let (ida, idc) = (ContractId::from_tx(&a.id()), ContractId::from_tx(&c.id()));
    net.mine(vec![a, c]);
    net.mine(vec![
        net.sign("alice", Payload::ConfirmDelivery { contract: ida }),
        net.sign("charlie", Payload::RaiseDispute { contract: idc }),
    ]);
    net.mine(vec![net.sign(
        "eve",
        Payload::Resolve {
            contract: idc,
            to: Party::Buyer,
        },
    )]);
    assert_eq!(net.balance("alice"), DEV_BALANCE - 100);
    assert_eq!(net.balance("bob"), DEV_BALANCE + 100);
    assert_eq!(net.balance("charlie"), DEV_BALANCE);
    assert_eq!(net.balance("dave"), DEV_BALANCE);
    assert_eq!(net.balance("ferdie"), DEV_BALANCE + 3 * DEV_REWARD);
}

//! Helpers for escrow's tests: a dev ledger, blocks applied straight to the
//! state machine (no mining) at chosen heights, and (in `crafted`) crafted
//! signatures for the signature-rule tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod crafted;

use chain_core::{BlockContext, BlockHash, StateMachine, Transaction};
use escrow::{
    Address, Amount, ContractId, Genesis, Keypair, Ledger, LedgerError, Party, Payload, SignedTx,
    Tx, Undo, dev,
};

/// A dev account's key pair.
pub fn key(name: &str) -> Keypair {
    dev::keypair(name).unwrap()
}

/// A dev account's address.
pub fn addr(name: &str) -> Address {
    dev::address(name).unwrap()
}

/// The dev genesis ledger, after genesis.
pub fn dev_ledger() -> Ledger {
    let g = Genesis::dev();
    let mut ledger = g.ledger();
    let block = g.block();
    ledger
        .apply_block(
            &BlockContext {
                hash: block.hash(),
                height: 0,
                timestamp_ms: 0,
            },
            &block.transactions,
        )
        .unwrap();
    ledger
}

/// A test harness: a ledger, the height of the last applied block, and the
/// undo records so tests can roll back.
pub struct Harness {
    /// The ledger.
    pub ledger: Ledger,
    /// The height of the last block applied.
    pub height: u64,
    /// Undo records of applied blocks, oldest first.
    pub undos: Vec<Undo>,
    /// The transactions of the applied blocks, oldest first (beside
    /// `undos`).
    pub blocks: Vec<Vec<Tx>>,
    /// Who mines.
    pub miner: Address,
}

impl Harness {
    /// The dev ledger, mined by ferdie.
    pub fn new() -> Harness {
        Harness {
            ledger: dev_ledger(),
            height: 0,
            undos: Vec::new(),
            blocks: Vec::new(),
            miner: addr("ferdie"),
        }
    }

    /// Signs `payload` as `name` with their next nonce, paying no fee.
    pub fn sign(&self, name: &str, payload: Payload) -> SignedTx {
        self.sign_paying(name, 0, payload)
    }

    /// Signs `payload` as `name` with their next nonce, paying `fee`.
    pub fn sign_paying(&self, name: &str, fee: u64, payload: Payload) -> SignedTx {
        let k = key(name);
        SignedTx::sign(
            &k,
            self.ledger.nonce(&k.address()),
            Amount::new(fee),
            self.ledger.network(),
            payload,
        )
    }

    /// Applies a block with a coinbase and these transactions at the next
    /// height.
    pub fn block(&mut self, txs: Vec<SignedTx>) -> Result<(), LedgerError> {
        let height = self.height + 1;
        let mut all = vec![Tx::Coinbase {
            to: self.miner,
            height,
        }];
        all.extend(txs.into_iter().map(Tx::Signed));
        let ctx = BlockContext {
            hash: BlockHash::from_bytes([height as u8; 32]),
            height,
            timestamp_ms: height * 1000,
        };
        let undo = self.ledger.apply_block(&ctx, &all)?;
        self.undos.push(undo);
        self.blocks.push(all);
        self.height = height;
        Ok(())
    }

    /// Applies one transaction in its own block.
    pub fn one(&mut self, name: &str, payload: Payload) -> Result<(), LedgerError> {
        let tx = self.sign(name, payload);
        self.block(vec![tx])
    }

    /// Mines empty blocks until the last one has `height`.
    pub fn advance_to(&mut self, height: u64) {
        while self.height < height {
            self.block(vec![]).unwrap();
        }
    }

    /// Undoes the last block.
    pub fn undo(&mut self) {
        let undo = self.undos.pop().unwrap();
        self.blocks.pop();
        self.ledger.undo_block(undo);
        self.height -= 1;
    }

    /// Creates an escrow and returns its id.
    pub fn create(
        &mut self,
        buyer: &str,
        seller: &str,
        arbiter: &str,
        amount: u64,
    ) -> Result<ContractId, LedgerError> {
        let tx = self.sign(
            buyer,
            Payload::EscrowCreate {
                seller: addr(seller),
                arbiter: addr(arbiter),
                amount: Amount::new(amount),
                delivery_deadline: self.height + 10,
                dispute_window: 5,
            },
        );
        let id = ContractId::from_tx(&Tx::Signed(tx.clone()).id());
        self.block(vec![tx])?;
        Ok(id)
    }

    /// A balance in coins.
    pub fn balance(&self, name: &str) -> u64 {
        self.ledger.balance(&addr(name)).get()
    }
}

/// The payload of a resolve.
pub fn resolve(contract: ContractId, to: Party) -> Payload {
    Payload::Resolve { contract, to }
}

/// A block with these transactions on `chain`'s tip, with valid proof of
/// work (two threads), timestamped `now_ms` or just after the parent.
pub fn mine_on(
    chain: &chain_core::Chain<Ledger>,
    transactions: Vec<Tx>,
    now_ms: u64,
) -> chain_core::Block<Tx> {
    let template = chain.template(&transactions, now_ms);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let chain_core::miner::MineOutcome::Found(header) = chain_core::miner::Miner::new(2)
        .mine(&template, &stop)
        .unwrap()
    else {
        panic!("mining stopped");
    };
    chain_core::Block {
        header,
        transactions,
    }
}

/// A transfer of `amount` from dev account `from` to dev account `to`,
/// signed, with this nonce, on `network`.
pub fn transfer(from: &str, nonce: u64, network: BlockHash, to: &str, amount: u64) -> SignedTx {
    SignedTx::sign(
        &key(from),
        nonce,
        escrow::Amount::ZERO,
        network,
        Payload::Transfer {
            to: addr(to),
            amount: Amount::new(amount),
        },
    )
}

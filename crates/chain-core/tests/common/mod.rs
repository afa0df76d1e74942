//! A small state machine and block builders for chain-core's tests.
//!
//! The state is a list of applied transaction payloads; a transaction marked
//! invalid, or one whose payload was already applied, makes its block fail.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation
#![allow(dead_code)]

use std::collections::HashSet;
use std::sync::atomic::AtomicBool;

use chain_core::miner::{MineOutcome, Miner};
use chain_core::{
    Block, BlockContext, BlockHash, Chain, ChainParams, Header, StateMachine, Target, Transaction,
    TxId, merkle_root,
};
use serde::{Deserialize, Serialize};

/// A test transaction: a payload that must be unique, and a flag that makes
/// the state machine refuse it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TestTx {
    /// Unique per transaction; the state refuses a payload seen before.
    pub payload: u64,
    /// Whether the state machine accepts it.
    pub valid: bool,
}

impl Transaction for TestTx {
    fn id(&self) -> TxId {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&self.payload.to_le_bytes());
        bytes[8] = u8::from(self.valid);
        TxId::from_bytes(*blake3::hash(&bytes).as_bytes())
    }

    fn encoded_len(&self) -> usize {
        9
    }
}

/// Why the test state refuses a block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TestError {
    /// The transaction is marked invalid.
    #[error("transaction {0} is marked invalid")]
    Invalid(u64),
    /// The payload was applied before.
    #[error("payload {0} applied twice")]
    Replayed(u64),
}

/// The state: payloads in order of application, and the heights applied.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TestState {
    /// Every applied payload, oldest first.
    pub applied: Vec<u64>,
    /// The set form of `applied`.
    pub seen: HashSet<u64>,
    /// The heights of the applied blocks, in order.
    pub heights: Vec<u64>,
}

impl StateMachine for TestState {
    type Tx = TestTx;
    type Undo = usize;
    type Error = TestError;

    fn apply_block(&mut self, ctx: &BlockContext, txs: &[TestTx]) -> Result<usize, TestError> {
        let mut batch = HashSet::new();
        for tx in txs {
            if !tx.valid {
                return Err(TestError::Invalid(tx.payload));
            }
            if self.seen.contains(&tx.payload) || !batch.insert(tx.payload) {
                return Err(TestError::Replayed(tx.payload));
            }
        }
        for tx in txs {
            self.applied.push(tx.payload);
            self.seen.insert(tx.payload);
        }
        self.heights.push(ctx.height);
        Ok(txs.len())
    }

    fn undo_block(&mut self, undo: usize) {
        for _ in 0..undo {
            if let Some(p) = self.applied.pop() {
                self.seen.remove(&p);
            }
        }
        self.heights.pop();
    }
}

/// The genesis timestamp used by the tests.
pub const GENESIS_TIME: u64 = 1_700_000_000_000;

/// Easy rules so tests mine instantly: 4 leading zero bits.
pub fn params() -> ChainParams {
    ChainParams::with_target_bits(4)
}

/// A genesis block for `params`.
pub fn genesis(params: &ChainParams) -> Block<TestTx> {
    Block {
        header: Header {
            version: chain_core::HEADER_VERSION,
            height: 0,
            parent: BlockHash::GENESIS_PARENT,
            merkle_root: merkle_root(&[]),
            timestamp_ms: GENESIS_TIME,
            target: params.pow_limit().to_compact(),
            nonce: 0,
        },
        transactions: Vec::new(),
    }
}

/// An unmined child header of `parent` (nonce 0) with the given target.
pub fn child_header(parent: &Header, txs: &[TestTx], timestamp_ms: u64, target: Target) -> Header {
    let leaves: Vec<_> = txs.iter().map(Transaction::commitment).collect();
    Header {
        version: chain_core::HEADER_VERSION,
        height: parent.height + 1,
        parent: parent.hash(),
        merkle_root: merkle_root(&leaves),
        timestamp_ms,
        target: target.to_compact(),
        nonce: 0,
    }
}

/// Mines `header` (its target must be easy).
pub fn mine(header: Header) -> Header {
    let stop = AtomicBool::new(false);
    match Miner::new(1).mine(&header, &stop) {
        Ok(MineOutcome::Found(h)) => h,
        other => panic!("mining failed: {other:?}"),
    }
}

/// A mined child of `parent`, one second later, at the rules' target.
pub fn child(parent: &Header, txs: Vec<TestTx>, params: &ChainParams) -> Block<TestTx> {
    let header = mine(child_header(
        parent,
        &txs,
        parent.timestamp_ms + 1_000,
        params.pow_limit(),
    ));
    Block {
        header,
        transactions: txs,
    }
}

/// A valid transaction with this payload.
pub fn tx(payload: u64) -> TestTx {
    TestTx {
        payload,
        valid: true,
    }
}

/// A clock far enough ahead that no test block is in the future.
pub const NOW: u64 = GENESIS_TIME + 1_000_000_000;

/// A header with fields derived from `seed` and a target of `bits` leading
/// zero bits (nonce 0), for tests of the miner on many distinct inputs.
pub fn sample_header(seed: u8, bits: u32) -> Header {
    Header {
        version: 1,
        height: u64::from(seed) * 1_000_003,
        parent: BlockHash::from_bytes([seed; 32]),
        merkle_root: chain_core::MerkleRoot::from_bytes([seed.wrapping_mul(7); 32]),
        timestamp_ms: 1_700_000_000_000 + u64::from(seed),
        target: Target::from_leading_zero_bits(bits).to_compact(),
        nonce: 0,
    }
}

/// A mined child of `parent` holding one transaction made by `make` from a
/// payload, the first payload from `first` up whose block hash is larger
/// than `rival`'s: a block that loses a tie of equal work against `rival`.
pub fn child_losing_to(
    parent: &Header,
    first: u64,
    rival: &BlockHash,
    params: &ChainParams,
    make: impl Fn(u64) -> TestTx,
) -> Block<TestTx> {
    (first..)
        .map(|payload| child(parent, vec![make(payload)], params))
        .find(|b| b.hash() > *rival)
        .expect("half of all payloads lose")
}

/// A chain at genesis on the test rules, and those rules.
pub fn new_chain() -> (Chain<TestState>, ChainParams) {
    let params = params();
    let chain = Chain::new(params.clone(), genesis(&params), TestState::default()).unwrap();
    (chain, params)
}

/// The header of `chain`'s best tip.
pub fn tip_header(chain: &Chain<TestState>) -> chain_core::Header {
    chain.tip_header()
}

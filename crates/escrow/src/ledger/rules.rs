//! What the ledger refuses ([`LedgerError`], one variant per rule) and how
//! it checks signatures ([`VerifyMode`]).

use chain_core::{BlockHash, TxId};

use crate::account::Address;
use crate::amount::Amount;
use crate::contract::ContractError;
use crate::signature::SignatureError;

/// A transaction or block rule that the ledger enforces.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// The signature is refused by the signature rule
    /// ([`crate::signature`]); `reason` names the step that failed.
    #[error("transaction {tx}: {reason}")]
    BadSignature {
        /// The transaction.
        tx: TxId,
        /// Why.
        reason: SignatureError,
    },
    /// The transaction names another network.
    #[error("transaction {tx} is for network {got}, this is {expected}")]
    WrongNetwork {
        /// The transaction.
        tx: TxId,
        /// Its network id.
        got: BlockHash,
        /// This network's.
        expected: BlockHash,
    },
    /// The nonce is not the sender's next one.
    #[error("transaction {tx}: nonce {got}, expected {expected} (replayed or out of order)")]
    BadNonce {
        /// The transaction.
        tx: TxId,
        /// The sender's next nonce.
        expected: u64,
        /// The transaction's.
        got: u64,
    },
    /// The sender's balance is too low.
    #[error("{account} has {balance}, needs {needed}")]
    InsufficientFunds {
        /// The sender.
        account: Address,
        /// What they have.
        balance: Amount,
        /// What the transaction moves.
        needed: Amount,
    },
    /// A balance would pass `u64::MAX`.
    #[error("amount overflow crediting {account}")]
    AmountOverflow {
        /// The account credited.
        account: Address,
    },
    /// A transfer of nothing.
    #[error("a transfer must move a positive amount")]
    ZeroTransfer,
    /// A contract rule.
    #[error(transparent)]
    Contract(#[from] ContractError),
    /// A block after genesis must start with exactly one coinbase.
    #[error("block at height {height} does not start with a coinbase")]
    MissingCoinbase {
        /// The block's height.
        height: u64,
    },
    /// A coinbase anywhere but first, or a second one.
    #[error("a coinbase may only be the first transaction of a block")]
    MisplacedCoinbase,
    /// The coinbase names another height.
    #[error("coinbase for height {got} in block {expected}")]
    WrongCoinbaseHeight {
        /// The block's height.
        expected: u64,
        /// The coinbase's.
        got: u64,
    },
    /// Network and allocation transactions belong to genesis only, and
    /// genesis holds nothing else; the network transaction comes first.
    #[error("{kind} transaction not allowed at height {height}")]
    NotAllowedHere {
        /// The transaction kind.
        kind: &'static str,
        /// The block's height.
        height: u64,
    },
}

/// How `apply_block` checks signatures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerifyMode {
    /// One signature at a time.
    Single,
    /// ZIP 215 batch verification, the block split over this many threads
    /// of a persistent pool (1 = the calling thread only). The verdict is
    /// the same as [`VerifyMode::Single`]'s on every input.
    Batch {
        /// Threads to split the batch over.
        threads: usize,
    },
}

impl VerifyMode {
    /// The default: batches split over every core of this machine.
    pub fn default_for_machine() -> VerifyMode {
        VerifyMode::Batch {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

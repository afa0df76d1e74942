//! What became of a transaction offered to the pool: [`MempoolError`] when
//! it was refused, [`Offered`] for every outcome of [`super::Mempool::offer`],
//! and [`Dropped`] for one the pool let go.

use chain_core::TxId;
use escrow::{Address, AdmissionError, Amount, FeeRate, SignedTx};

use super::orphans::OrphanRefusal;

/// Why a transaction was not added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    /// It is already pending.
    #[error("transaction {0} is already pending")]
    Duplicate(TxId),
    /// The pool holds its maximum.
    #[error("the mempool is full ({max} transactions)")]
    Full {
        /// The limit.
        max: usize,
    },
    /// The sender has its maximum of pending transactions.
    #[error("account {account} has {max} pending transactions already")]
    AccountFull {
        /// The sender.
        account: Address,
        /// The limit.
        max: usize,
    },
    /// It does not apply after the pending transactions.
    #[error(transparent)]
    Invalid(#[from] AdmissionError),
    /// Its fee rate is below the pool's minimum (or, the pool being full,
    /// below what it takes to evict the cheapest pending package).
    #[error("fee rate {rate} is below the minimum {min}: pay at least {needed}")]
    FeeTooLow {
        /// The transaction's fee rate.
        rate: FeeRate,
        /// The rate it must pay.
        min: FeeRate,
        /// The fee that pays `min` for its size.
        needed: Amount,
    },
    /// It has a pending transaction's sender and nonce, but does not pay
    /// enough more to replace it.
    #[error("replacing {replaces} takes a fee of at least {needed}")]
    ReplacementTooLow {
        /// The pending transaction it would replace.
        replaces: TxId,
        /// The smallest fee that replaces it.
        needed: Amount,
    },
}

/// A transaction the pool had accepted and let go, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dropped {
    /// The transaction.
    pub tx: SignedTx,
    /// The rule it broke on the new best chain.
    pub reason: String,
}

/// What became of a transaction offered to the pool
/// ([`Mempool::offer`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offered {
    /// Pending now, and so are the waiting transactions its admission let
    /// in: all are news to peers.
    Added {
        /// The offered transaction's id.
        id: TxId,
        /// The waiting transactions it let in, in admission order.
        freed: Vec<TxId>,
    },
    /// A peer's transaction whose nonce is ahead of its sender's next:
    /// kept to wait for its predecessors (evicting the orphan named, if
    /// the orphan pool was full).
    Waiting {
        /// The orphan evicted to make room (its sender and nonce).
        evicted: Option<(Address, u64)>,
    },
    /// A peer's transaction whose nonce is ahead of its sender's next, not
    /// kept to wait (the orphan pool's rules refused it): not the peer's
    /// fault (see `docs/PROTOCOL.md`, "Orphan transactions").
    NotKept(OrphanRefusal),
    /// Not pooled.
    Refused(MempoolError),
}

impl MempoolError {
    /// The stable error code of the refusal: the rule it broke (the
    /// `code` the API answers with, which the metrics and the simulator
    /// count by).
    pub fn code(&self) -> &'static str {
        use MempoolError as M;
        use escrow::{AdmissionError as A, ContractError as C, LedgerError as L};
        match self {
            M::Duplicate(_) | M::Invalid(A::AlreadyPending(_)) => "already_pending",
            M::Full { .. } => "mempool_full",
            M::AccountFull { .. } => "account_full",
            M::FeeTooLow { .. } => "fee_too_low",
            M::ReplacementTooLow { .. } => "replacement_too_low",
            M::Invalid(A::Invalid(l)) => match l {
                L::BadSignature { reason, .. } => reason.code(),
                L::WrongNetwork { .. } => "wrong_network",
                L::BadNonce { .. } => "bad_nonce",
                L::InsufficientFunds { .. } => "insufficient_funds",
                L::AmountOverflow { .. } => "amount_overflow",
                L::ZeroTransfer => "zero_amount",
                L::Contract(c) => match c {
                    C::UnknownContract(_) => "unknown_contract",
                    C::ZeroAmount => "zero_amount",
                    C::BuyerIsSeller => "buyer_is_seller",
                    C::ArbiterIsAParty(_) => "arbiter_is_a_party",
                    C::DeadlineInThePast { .. } => "deadline_in_the_past",
                    C::ZeroDisputeWindow => "zero_dispute_window",
                    C::NotBuyer { .. } => "not_buyer",
                    C::NotArbiter { .. } => "not_arbiter",
                    C::NotAParty { .. } => "not_a_party",
                    C::AlreadyFinal { .. } => "already_final",
                    C::NotFunded { .. } => "not_funded",
                    C::NotDisputed { .. } => "not_disputed",
                    C::DeadlineNotReached { .. } => "deadline_not_reached",
                },
                _ => "invalid_transaction",
            },
        }
    }
}

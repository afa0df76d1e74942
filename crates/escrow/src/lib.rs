//! escrow: the application that runs on the escrow chain.
//!
//! Accounts hold coins; a buyer can lock coins in an escrow contract that
//! pays the seller on confirmed delivery, or refunds the buyer, with an
//! arbiter for disputes. Contract state lives only in the [`Ledger`] that
//! blocks produce, through chain-core's [`chain_core::StateMachine`] trait.
//!
//! # Layout
//!
//! - [`amount`]: [`Amount`], checked arithmetic only.
//! - [`account`]: [`Address`] (derived from a public key) and [`PublicKey`].
//! - [`key_file`]: [`Keypair`] and key files.
//! - [`dev`]: the well-known, insecure dev accounts.
//! - [`fee`]: fees and fee rates ([`FeeRate`], [`Package`]).
//! - [`tx`]: signed transactions, payloads, the block transaction [`Tx`].
//! - [`contract`]: the escrow contract state machine.
//! - [`signature`]: the one signature rule, single and batch, on every core,
//!   with its key cache; [`signature::cache`]: [`SigCache`], the rule's
//!   remembered successes.
//! - [`ledger`]: balances, nonces and contracts; apply and undo blocks.
//! - [`genesis`]: the genesis allocation and network rules.
//! - [`admission`]: the mempool's admission check.
//!
//! `docs/ESCROW.md` describes the rules.

pub mod account;
pub mod admission;
pub mod amount;
pub mod contract;
pub mod dev;
pub mod fee;
pub mod genesis;
pub mod key_file;
pub mod ledger;
pub mod memo;
pub mod signature;
pub mod tx;

/// The former name of [`key_file`]: paths written against it still work.
#[doc(hidden)]
pub use key_file as keys;
/// The former name of [`signature::cache`]: paths written against it
/// still work.
#[doc(hidden)]
pub use signature::cache as sigcache;

pub use account::{Address, PublicKey};
pub use admission::{AdmissionError, PendingState, check_admission};
pub use amount::Amount;
pub use contract::{Action, Contract, ContractError, ContractId, HistoryEntry, Party, State};
pub use fee::{FeeRate, Package};
pub use genesis::{Genesis, GenesisFileError};
pub use key_file::{KeyFileError, Keypair};
pub use ledger::undo_codec::UndoDecodeError;
pub use ledger::{Ledger, LedgerError, Undo, VerifyMode};
pub use memo::{MAX_MEMO_BYTES, Memo, MemoTooLong};
pub use signature::SignatureError;
pub use signature::cache::{SigCache, SigCacheStats, SigCheck, Verified};
pub use tx::{Payload, Signature, SignedTx, Tx, TxBody, TxDecodeError};

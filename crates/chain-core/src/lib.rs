//! chain-core: the consensus engine of the escrow chain.
//!
//! It knows nothing of escrow, sockets, disks or clocks: time is a parameter,
//! and the application that runs on the chain plugs in through the
//! [`StateMachine`] trait.
//!
//! # Layout
//!
//! - [`hash`]: the 32-byte hash newtypes ([`BlockHash`], [`TxId`], [`MerkleRoot`]).
//! - [`header`]: the header's canonical 96-byte layout, [`Block`], the
//!   [`Transaction`] trait.
//! - [`pow`]: [`Target`], its compact form, and the [`Work`] it represents.
//! - [`params`]: the consensus parameters of a network ([`ChainParams`]).
//! - [`merkle`]: the merkle root of transaction ids, and the branch of one.
//! - [`light`]: a light client's checks: a chain of headers
//!   ([`HeaderChain`]), a transaction's [`InclusionProof`].
//! - [`miner`]: the multi-threaded, cancellable SHA-256 miner.
//! - [`state`]: the [`StateMachine`] trait.
//! - [`validate`]: the validation rules, each failure its own error.
//! - [`tree`]: the block tree, fork choice and reorgs ([`Chain`]).

pub mod hash;
pub mod header;
pub mod light;
pub mod merkle;
pub mod miner;
pub mod params;
pub mod pow;
pub mod state;
pub mod tree;
pub mod validate;

#[doc(hidden)]
pub mod __private {
    //! Re-exports for [`hash_newtype!`](crate::hash_newtype) expansions in other crates.
    pub use hex;
    pub use serde;
}

pub use hash::{BlockHash, MerkleRoot, ParseHashError, TxId};
pub use header::{Block, HEADER_VERSION, Header, HeaderError, Transaction};
pub use light::{HeaderChain, HeaderChainError, InclusionProof, ProofError};
pub use merkle::{BranchError, MerkleBranch, merkle_branch, merkle_root};
pub use params::{ChainParams, Retarget};
pub use pow::{CompactTarget, CompactTargetError, Target, Work};
pub use state::{BlockContext, StateMachine};
pub use tree::{
    Archive, ArchiveError, Chain, HeaderBranch, HeadersAdded, HeadersError, InsertError, Inserted,
    Reorg, RestoreError, Restored, Snapshot, Unrestored,
};
pub use validate::ValidationError;

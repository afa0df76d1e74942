//! What a light client checks without trusting the node it asks: a chain of
//! headers from genesis ([`HeaderChain::verify`]: linkage, heights, proof of
//! work, the required targets, the timestamp rule), and a transaction's
//! inclusion proof ([`InclusionProof`]: its merkle branch leads to the
//! header's root). Together: the transaction is in a block at a given
//! depth of the chain of most work the client was shown
//! (`docs/PROTOCOL.md`, "Inclusion proofs").

use serde::{Deserialize, Serialize};

use crate::hash::{BlockHash, TxId};
use crate::header::{Header, Transaction};
use crate::merkle::{BranchError, MerkleBranch};
use crate::params::ChainParams;
use crate::pow::Work;
use crate::validate::{self, ValidationError};

/// A transaction, the header of the block that holds it, and the merkle
/// branch between them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof<T> {
    /// The block's header.
    pub header: Header,
    /// The transaction's place in the block and its path to the root.
    pub branch: MerkleBranch,
    /// The transaction itself (its commitment is the leaf).
    pub tx: T,
}

/// Why an inclusion proof does not hold.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The branch does not fit the tree's shape.
    #[error("{0}")]
    Branch(#[from] BranchError),
    /// The branch leads to another root than the header's.
    #[error(
        "the branch does not lead to block {block}'s merkle root: the transaction is not in it \
         at that place"
    )]
    WrongRoot {
        /// The block the header names.
        block: BlockHash,
    },
    /// The block is not in the chain of headers checked.
    #[error(
        "block {block} at height {height} is not in the chain of headers given (its height \
         there holds {found}): it is on a branch that lost, or on another network"
    )]
    NotInChain {
        /// The proof's block.
        block: BlockHash,
        /// Its height.
        height: u64,
        /// What the chain holds at that height, or "nothing" past its tip.
        found: String,
    },
}

impl<T: Transaction> InclusionProof<T> {
    /// Checks that the transaction is in the header's block; returns the
    /// block's hash and the transaction's id.
    ///
    /// # Errors
    ///
    /// [`ProofError::Branch`] or [`ProofError::WrongRoot`].
    pub fn verify(&self) -> Result<(BlockHash, TxId), ProofError> {
        let root = self.branch.root_for(&self.tx.commitment())?;
        let block = self.header.hash();
        if root != self.header.merkle_root {
            return Err(ProofError::WrongRoot { block });
        }
        Ok((block, self.tx.id()))
    }

    /// [`InclusionProof::verify`], then that the block is in `chain`;
    /// returns the transaction's id and its depth (1 in the tip).
    ///
    /// # Errors
    ///
    /// [`ProofError`].
    pub fn verify_in(&self, chain: &HeaderChain) -> Result<(TxId, u64), ProofError> {
        let (block, id) = self.verify()?;
        let height = self.header.height;
        match chain.hash_at(height) {
            Some(h) if h == block => Ok((id, chain.height() - height + 1)),
            other => Err(ProofError::NotInChain {
                block,
                height,
                found: other.map_or_else(|| "nothing".to_string(), |h| format!("block {h}")),
            }),
        }
    }
}

/// A chain of headers from genesis, each checked against the rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderChain {
    /// Each header's hash, by height.
    hashes: Vec<BlockHash>,
    work: Work,
}

/// Why a chain of headers is not a valid chain.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderChainError {
    /// No headers.
    #[error("no headers: the chain starts with the genesis header")]
    Empty,
    /// The first header is not this network's genesis.
    #[error("the first header is block {got}, not this network's genesis {network}")]
    WrongGenesis {
        /// The network id (the genesis block's hash).
        network: BlockHash,
        /// The first header's hash.
        got: BlockHash,
    },
    /// A header does not follow the one before it.
    #[error(
        "the header at position {position} (block {block}) does not follow the one before it: {why}"
    )]
    Broken {
        /// Its position in the list (its height if the chain is right).
        position: u64,
        /// Its hash.
        block: BlockHash,
        /// What is wrong.
        why: String,
    },
    /// A header breaks a consensus rule.
    #[error("header {height} (block {block}) breaks a rule: {error}")]
    Invalid {
        /// Its height.
        height: u64,
        /// Its hash.
        block: BlockHash,
        /// The rule.
        error: ValidationError,
    },
}

impl HeaderChain {
    /// Checks `headers`, genesis first, as a node checks a branch: each
    /// one's version is 1, its parent is the previous one's hash and its
    /// height the next;
    /// its hash meets its target, which is the one the rules require
    /// (`params`), and its timestamp is past the median of the
    /// `median_time_span` before it. The clock rule (not too far in the
    /// future) is not checked: a light client's clock is not the network's.
    ///
    /// # Errors
    ///
    /// [`HeaderChainError`]: the first header broken, and how.
    pub fn verify(
        params: &ChainParams,
        network: BlockHash,
        headers: &[Header],
    ) -> Result<HeaderChain, HeaderChainError> {
        let genesis = headers.first().ok_or(HeaderChainError::Empty)?;
        if genesis.hash() != network || genesis.height != 0 {
            return Err(HeaderChainError::WrongGenesis {
                network,
                got: genesis.hash(),
            });
        }
        let mut hashes = vec![network];
        let mut work = Work::ZERO;
        let span = params.median_time_span.max(1);
        for (i, header) in headers.iter().enumerate().skip(1) {
            let block = header.hash();
            let position = i as u64;
            let parent = &headers[i - 1];
            let broken = |why: String| HeaderChainError::Broken {
                position,
                block,
                why,
            };
            if header.parent != hashes[i - 1] {
                return Err(broken(format!(
                    "its parent is {}, the previous header is {}",
                    header.parent,
                    hashes[i - 1]
                )));
            }
            let invalid = |error: ValidationError| HeaderChainError::Invalid {
                height: position,
                block,
                error,
            };
            if header.version != crate::header::HEADER_VERSION {
                return Err(invalid(ValidationError::UnsupportedVersion {
                    got: header.version,
                    expected: crate::header::HEADER_VERSION,
                }));
            }
            validate::check_proof_of_work(header, params).map_err(invalid)?;
            let first = params
                .retarget
                .filter(|r| r.interval >= 2 && position.is_multiple_of(r.interval))
                .and_then(|r| headers.get(i.saturating_sub(r.interval as usize)));
            let context = validate::ParentContext {
                height: parent.height,
                median_time_ms: validate::median_time(
                    headers[i.saturating_sub(span)..i]
                        .iter()
                        .map(|h| h.timestamp_ms)
                        .collect(),
                ),
                required_target: validate::required_target(params, parent, first),
            };
            validate::check_context(header, &context, u64::MAX - params.max_future_ms, params)
                .map_err(invalid)?;
            let target = header.target.to_target().map_err(|e| invalid(e.into()))?;
            work = work.saturating_add(target.work());
            hashes.push(block);
        }
        Ok(HeaderChain { hashes, work })
    }

    /// The tip's height.
    pub fn height(&self) -> u64 {
        self.hashes.len() as u64 - 1
    }

    /// The tip's hash.
    pub fn tip(&self) -> BlockHash {
        self.hashes.last().copied().unwrap_or(BlockHash::ZERO)
    }

    /// The work of the blocks after genesis.
    pub fn work(&self) -> Work {
        self.work
    }

    /// The hash at `height`, if the chain reaches it.
    pub fn hash_at(&self, height: u64) -> Option<BlockHash> {
        usize::try_from(height)
            .ok()
            .and_then(|h| self.hashes.get(h))
            .copied()
    }
}

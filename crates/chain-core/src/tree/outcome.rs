//! What inserting a block can come to: the new best chain as a [`Reorg`],
//! the other outcomes ([`Inserted`]), and the errors ([`InsertError`],
//! [`GenesisError`]).

use std::sync::Arc;

use crate::hash::BlockHash;
use crate::header::Block;
use crate::validate::ValidationError;

/// Why a block was refused.
#[derive(Debug, thiserror::Error)]
pub enum InsertError<E> {
    /// The block breaks a header, size, merkle or context rule.
    #[error("invalid block: {0}")]
    Invalid(#[from] ValidationError),
    /// The block, or an ancestor of it, was found invalid before.
    #[error("block {0} is known to be invalid")]
    KnownInvalid(BlockHash),
    /// The state machine refused the transactions of `block` (the inserted
    /// block itself, or an ancestor on its branch that was applied only now).
    #[error("block {block} does not apply to the state: {source}")]
    State {
        /// The block whose transactions were refused.
        block: BlockHash,
        /// The state machine's reason.
        #[source]
        source: E,
    },
    /// A body or undo record the tree needed could not be read back from
    /// its archive: the store is damaged or unreadable. Not the block's
    /// fault. The step that needed it did not start, but an earlier step of
    /// the same insert may have moved the state (see [`Chain::insert`](crate::tree::Chain::insert)):
    /// the caller should stop and save nothing more.
    #[error(transparent)]
    Archive(#[from] super::archive::ArchiveError),
}

impl<E> InsertError<E> {
    /// Whether the block may become valid later (only a timestamp too far in
    /// the future); every other refusal is final.
    pub fn is_permanent(&self) -> bool {
        match self {
            InsertError::Invalid(e) => e.is_permanent(),
            InsertError::KnownInvalid(_) | InsertError::State { .. } => true,
            InsertError::Archive(_) => false,
        }
    }
}

/// Why a genesis block cannot start a chain.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError<E> {
    /// A genesis block has height 0 and the all-zero parent.
    #[error("a genesis block has height 0 and no parent")]
    NotGenesis,
    /// The merkle root does not match the genesis transactions.
    #[error("genesis merkle root does not match its transactions")]
    BadMerkleRoot,
    /// The target field is not a target.
    #[error("genesis target is invalid: {0}")]
    BadTarget(#[from] crate::pow::CompactTargetError),
    /// The genesis transactions do not apply to the initial state.
    #[error("genesis transactions do not apply: {0}")]
    State(#[source] E),
}

/// The change of best chain that an insert caused.
#[derive(Debug, Clone)]
pub struct Reorg<T> {
    /// The best tip before.
    pub old_tip: BlockHash,
    /// The best tip after.
    pub new_tip: BlockHash,
    /// The last block both chains share.
    pub fork_point: BlockHash,
    /// Blocks taken off the best chain, tip first (empty for a plain
    /// extension).
    pub undone: Vec<Arc<Block<T>>>,
    /// Blocks put on the best chain, oldest first.
    pub applied: Vec<Arc<Block<T>>>,
}

impl<T> Reorg<T> {
    /// Whether blocks were undone, rather than the chain only extended.
    pub fn is_reorg(&self) -> bool {
        !self.undone.is_empty()
    }
}

/// What an accepted insert did.
#[derive(Debug)]
pub enum Inserted<T> {
    /// The best tip moved (to this block, or through it to orphans it
    /// connected).
    NewBest(Reorg<T>),
    /// The block extends a branch with less work than the best.
    SideBranch,
    /// The parent is unknown; the block waits in the orphan pool. The caller
    /// should fetch `missing_parent`.
    Orphan {
        /// The hash to ask peers for.
        missing_parent: BlockHash,
    },
    /// The block is already known (in the tree or the orphan pool).
    Duplicate,
}

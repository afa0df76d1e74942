//! Offering a block to the chain, as a value: [`insert`] puts a block (from
//! a peer or the miner) into the chain and says what became of it
//! ([`Accepted`]); the core applies the outcome (follows a new tip, tells
//! watchers of a fork, punishes the sender of a bad block, stops on an
//! unreadable store).

use chain_core::{ArchiveError, Block, BlockHash, InsertError, Inserted, Reorg};
use escrow::{LedgerError, Tx};
use tracing::{debug, info};

use crate::core::view::NodeChain;
use crate::penalty::Offence;

/// What became of a block offered to the chain.
#[derive(Debug)]
pub(super) enum Accepted {
    /// The block moved the best tip.
    NewBest(Reorg<Tx>),
    /// The block joined a side branch, at `height` (if the chain can tell).
    SideBranch {
        /// The block.
        hash: BlockHash,
        /// Its height.
        height: Option<u64>,
    },
    /// The block's parent is unknown: it waits for it.
    Orphan {
        /// The block.
        hash: BlockHash,
        /// Its parent.
        missing_parent: BlockHash,
    },
    /// The chain had it already.
    Duplicate,
    /// The store cannot be read back: not the block's fault; the node
    /// must stop and save nothing more.
    StoreUnreadable(ArchiveError),
    /// The block was refused.
    Refused {
        /// A short, stable name of why (a metrics label).
        reason: String,
        /// The sender's offence.
        offence: Offence,
        /// Whether the header, size and merkle checks passed and the
        /// transactions failed (the state refused them).
        in_transactions: bool,
        /// A branch can apply up to an invalid block: if the tip moved all
        /// the same, the change of the best chain (or the store could not
        /// be read to tell it).
        moved: Option<Result<Reorg<Tx>, ArchiveError>>,
    },
}

/// Which peers hear of a block submitted through the handle
/// ([`crate::NodeHandle::submit_block`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockRelay {
    /// As a block mined here: announced once saved if it moved the best
    /// tip, and not otherwise.
    IfBest,
    /// Announced to every live peer once saved, on the best chain or not:
    /// a miner that publishes a competing block (a strategy of the
    /// simulator's, such as a selfish pool racing an honest block).
    Always,
}

/// What became of a block submitted through the handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Submitted {
    /// It moved the best tip.
    Best,
    /// It joined a side branch.
    SideBranch,
    /// Its parent is unknown: it waits in the orphan pool.
    Orphan,
    /// The node had it already.
    Duplicate,
    /// It was refused (the node's log says why).
    Refused,
}

/// What became of the submitted block `hash`, which the chain `known`
/// before, and which moved the tip if `best`.
pub(super) fn submitted(chain: &NodeChain, hash: &BlockHash, known: bool, best: bool) -> Submitted {
    if best {
        Submitted::Best
    } else if known {
        Submitted::Duplicate
    } else if chain.contains(hash) {
        Submitted::SideBranch
    } else if chain.is_orphan(hash) {
        Submitted::Orphan
    } else {
        Submitted::Refused
    }
}

/// Offers `block` to the chain at wall-clock time `now_ms`.
pub(super) fn insert(chain: &mut NodeChain, block: Block<Tx>, now_ms: u64) -> Accepted {
    let hash = block.hash();
    let old_tip = chain.tip();
    let start = tokio::time::Instant::now();
    let inserted = chain.insert(block, now_ms);
    crate::timings::observe(&crate::timings::BLOCK_INSERT, start);
    match inserted {
        Ok(Inserted::NewBest(reorg)) => {
            log_new_best(&reorg, chain.height());
            Accepted::NewBest(reorg)
        }
        Ok(Inserted::SideBranch) => {
            debug!(%hash, "block on a side branch");
            Accepted::SideBranch {
                hash,
                height: chain.header(&hash).map(|h| h.height),
            }
        }
        Ok(Inserted::Orphan { missing_parent }) => Accepted::Orphan {
            hash,
            missing_parent,
        },
        Ok(Inserted::Duplicate) => Accepted::Duplicate,
        Err(InsertError::Archive(e)) => Accepted::StoreUnreadable(e),
        Err(e) => {
            debug!(%hash, "block refused: {e}");
            let moved = (chain.tip() != old_tip).then(|| chain.change_since(old_tip));
            if let Some(Ok(reorg)) = &moved {
                log_new_best(reorg, chain.height());
            }
            let offence = match &e {
                InsertError::Invalid(v) if !v.is_permanent() => Offence::FutureBlock(v.to_string()),
                other => Offence::InvalidBlock(other.to_string()),
            };
            Accepted::Refused {
                reason: reject_reason(&e),
                offence,
                in_transactions: matches!(e, InsertError::State { .. }),
                moved,
            }
        }
    }
}

/// Logs a move of the best tip to `height`.
fn log_new_best(reorg: &Reorg<Tx>, height: u64) {
    if reorg.is_reorg() {
        info!(
            undone = reorg.undone.len(),
            applied = reorg.applied.len(),
            tip = %reorg.new_tip,
            "reorg"
        );
    } else {
        debug!(height, tip = %reorg.new_tip, "new tip");
    }
}

/// A short, stable name for why a block was refused (a metrics label).
fn reject_reason(e: &InsertError<LedgerError>) -> String {
    match e {
        InsertError::Invalid(v) => {
            let debug = format!("{v:?}");
            debug
                .split(|c: char| !c.is_alphanumeric())
                .next()
                .unwrap_or("invalid")
                .to_string()
        }
        InsertError::KnownInvalid(_) => "KnownInvalid".to_string(),
        InsertError::State { .. } => "State".to_string(),
        InsertError::Archive(_) => "Archive".to_string(),
    }
}

#[cfg(test)]
#[path = "blocks_tests.rs"]
mod tests;

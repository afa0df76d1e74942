//! The block validity rules, each failure its own [`ValidationError`].
//!
//! Validation happens in two steps, cheapest first:
//!
//! 1. [`check_block`] needs nothing but the block and the rules: version,
//!    transaction count and size limits, merkle root, a decodable target and
//!    a proof of work that meets it. Orphans are checked this far before the
//!    pool parks them, so junk cannot fill it without doing the work.
//! 2. [`check_context`] needs the parent: height, the target the rules
//!    require at this height, and the timestamp window (above the median of
//!    the last blocks, at most `max_future_ms` past the validating node's
//!    clock, which is a parameter).
//!
//! The third step, every transaction applying to the parent's state, is the
//! [`crate::StateMachine`]'s, run by [`crate::Chain`].

use crate::hash::{BlockHash, MerkleRoot};
use crate::header::{Block, HEADER_VERSION, Header, Transaction};
use crate::merkle::merkle_root;
use crate::params::{ChainParams, Retarget};
use crate::pow::{CompactTarget, CompactTargetError, Target};

/// A rule a block breaks, before its transactions are applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// The header version is not one this code knows.
    #[error("unsupported header version {got} (expected {expected})")]
    UnsupportedVersion {
        /// The version in the header.
        got: u32,
        /// The version this code accepts.
        expected: u32,
    },
    /// The header's compact target is no target at all.
    #[error("invalid target field: {0}")]
    BadTarget(#[from] CompactTargetError),
    /// The stated target is easier than the network's limit: no block may
    /// claim less work than that, wherever it is in the tree. Checked before
    /// an orphan is parked, so cheap blocks cannot fill the orphan pool.
    #[error("block states target {got}, easier than the network's limit {limit}")]
    TargetTooEasy {
        /// The header's target.
        got: CompactTarget,
        /// The easiest target the network allows.
        limit: CompactTarget,
    },
    /// The hash does not meet the target the header states.
    #[error("block {hash} does not meet its target {target}")]
    BadProofOfWork {
        /// The block hash.
        hash: BlockHash,
        /// The stated target.
        target: CompactTarget,
    },
    /// The header states a target other than the one the rules require.
    #[error("block states target {got} but the rules require {expected}")]
    WrongTarget {
        /// What the rules require at this height on this branch.
        expected: CompactTarget,
        /// What the header says.
        got: CompactTarget,
    },
    /// The height is not the parent's plus one.
    #[error("block height {got} is not its parent's height plus one ({expected})")]
    WrongHeight {
        /// Parent height plus one.
        expected: u64,
        /// The header's height.
        got: u64,
    },
    /// The timestamp is not above the median of the previous blocks.
    #[error("timestamp {timestamp_ms} ms is not above the median of past blocks ({median_ms} ms)")]
    TimestampTooOld {
        /// The header's timestamp.
        timestamp_ms: u64,
        /// The median time past the timestamp must exceed.
        median_ms: u64,
    },
    /// The timestamp is too far ahead of the validating node's clock. This
    /// is the one rejection that time can cure: the same block becomes valid
    /// once the clock catches up, so it must not be remembered as invalid.
    #[error(
        "timestamp {timestamp_ms} ms is more than the allowed drift past the clock (limit {limit_ms} ms)"
    )]
    TimestampTooFarInFuture {
        /// The header's timestamp.
        timestamp_ms: u64,
        /// The latest timestamp accepted now.
        limit_ms: u64,
    },
    /// The merkle root does not match the transactions.
    #[error("merkle root {got} does not match the transactions ({expected})")]
    BadMerkleRoot {
        /// The root of the block's transactions.
        expected: MerkleRoot,
        /// The header's root.
        got: MerkleRoot,
    },
    /// The block is larger than the limit.
    #[error("block is {size} bytes, above the limit of {max}")]
    TooLarge {
        /// The block's size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The block has more transactions than the limit.
    #[error("block has {count} transactions, above the limit of {max}")]
    TooManyTransactions {
        /// The block's transaction count.
        count: usize,
        /// The limit.
        max: usize,
    },
}

impl ValidationError {
    /// Whether the block is invalid for good. Only a timestamp too far in the
    /// future is not: it may be offered again and accepted later.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, ValidationError::TimestampTooFarInFuture { .. })
    }
}

/// The checks that need nothing but the block: version, limits, merkle
/// root, target and proof of work. Returns the block hash.
///
/// # Errors
///
/// The first rule broken.
pub fn check_block<T: Transaction>(
    block: &Block<T>,
    params: &ChainParams,
) -> Result<BlockHash, ValidationError> {
    let header = &block.header;
    if header.version != HEADER_VERSION {
        return Err(ValidationError::UnsupportedVersion {
            got: header.version,
            expected: HEADER_VERSION,
        });
    }
    let count = block.transactions.len();
    if count > params.max_block_txs {
        return Err(ValidationError::TooManyTransactions {
            count,
            max: params.max_block_txs,
        });
    }
    let size = block.size();
    if size > params.max_block_bytes {
        return Err(ValidationError::TooLarge {
            size,
            max: params.max_block_bytes,
        });
    }
    let hash = check_proof_of_work(header, params)?;
    let expected = merkle_root(&block.commitments());
    if expected != header.merkle_root {
        return Err(ValidationError::BadMerkleRoot {
            expected,
            got: header.merkle_root,
        });
    }
    Ok(hash)
}

/// Checks that the header's target is no easier than the network's limit
/// and that its hash meets that target; returns the hash.
///
/// # Errors
///
/// [`ValidationError::BadTarget`], [`ValidationError::TargetTooEasy`] or
/// [`ValidationError::BadProofOfWork`].
pub fn check_proof_of_work(
    header: &Header,
    params: &ChainParams,
) -> Result<BlockHash, ValidationError> {
    let target = header.target.to_target()?;
    let limit = params.pow_limit();
    if target > limit {
        return Err(ValidationError::TargetTooEasy {
            got: header.target,
            limit: limit.to_compact(),
        });
    }
    let hash = header.hash();
    if !target.is_met_by(&hash) {
        return Err(ValidationError::BadProofOfWork {
            hash,
            target: header.target,
        });
    }
    Ok(hash)
}

/// What [`check_context`] needs to know about the parent's branch.
#[derive(Clone, Copy, Debug)]
pub struct ParentContext {
    /// The parent's height.
    pub height: u64,
    /// The median timestamp of the parent and its ancestors (up to
    /// `median_time_span` of them).
    pub median_time_ms: u64,
    /// The target the rules require of the parent's child.
    pub required_target: CompactTarget,
}

/// The checks that need the parent: height, required target, timestamp
/// window against `now_ms`.
///
/// # Errors
///
/// The first rule broken.
pub fn check_context(
    header: &Header,
    parent: &ParentContext,
    now_ms: u64,
    params: &ChainParams,
) -> Result<(), ValidationError> {
    let expected = parent.height.saturating_add(1);
    if header.height != expected {
        return Err(ValidationError::WrongHeight {
            expected,
            got: header.height,
        });
    }
    if header.target != parent.required_target {
        return Err(ValidationError::WrongTarget {
            expected: parent.required_target,
            got: header.target,
        });
    }
    if header.timestamp_ms <= parent.median_time_ms {
        return Err(ValidationError::TimestampTooOld {
            timestamp_ms: header.timestamp_ms,
            median_ms: parent.median_time_ms,
        });
    }
    let limit_ms = now_ms.saturating_add(params.max_future_ms);
    if header.timestamp_ms > limit_ms {
        return Err(ValidationError::TimestampTooFarInFuture {
            timestamp_ms: header.timestamp_ms,
            limit_ms,
        });
    }
    Ok(())
}

/// The median of `timestamps` (the upper middle for an even count, as
/// Bitcoin), or 0 for none.
pub fn median_time(mut timestamps: Vec<u64>) -> u64 {
    timestamps.sort_unstable();
    timestamps.get(timestamps.len() / 2).copied().unwrap_or(0)
}

/// The target the rules require of a child of `parent`: the limit for a
/// fixed target; with retargeting, `parent`'s target except at a window's
/// start (a height that is a multiple of the interval), where `first` (the
/// first block of the window ending at `parent`, at height
/// `parent.height + 1 - interval`) and `parent` give the window's time.
pub fn required_target(
    params: &ChainParams,
    parent: &Header,
    first: Option<&Header>,
) -> CompactTarget {
    let limit = params.pow_limit();
    let Some(rule) = params.retarget.filter(|r| r.interval >= 2) else {
        return limit.to_compact();
    };
    let keep = parent.target;
    if !(parent.height + 1).is_multiple_of(rule.interval) {
        return keep;
    }
    let Some(first) = first else {
        return keep;
    };
    let actual = parent.timestamp_ms.saturating_sub(first.timestamp_ms);
    let Ok(previous) = parent.target.to_target() else {
        return keep;
    };
    retarget(previous, actual, &rule, limit).to_compact()
}

/// The retarget rule: scales `previous` by `actual_ms / expected_ms` for a
/// window of `rule.interval` blocks, the factor bounded to
/// `[1 / max_step, max_step]`, never easier than `limit`.
pub fn retarget(previous: Target, actual_ms: u64, rule: &Retarget, limit: Target) -> Target {
    // A window of `interval` blocks spans `interval - 1` gaps.
    let expected = rule
        .block_time_ms
        .saturating_mul(rule.interval.saturating_sub(1))
        .max(1);
    let step = rule.max_step.max(1);
    let actual = actual_ms.clamp(expected / step, expected.saturating_mul(step));
    previous.scale(actual.max(1), expected, limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median_time(vec![5, 1, 3]), 3);
        assert_eq!(median_time(vec![4, 1, 3, 2]), 3);
        assert_eq!(median_time(vec![]), 0);
    }

    #[test]
    fn retarget_moves_toward_the_interval_and_is_bounded() {
        let rule = Retarget {
            interval: 11,
            block_time_ms: 1_000,
            max_step: 4,
        };
        let limit = Target::from_leading_zero_bits(4);
        let t = Target::from_leading_zero_bits(16);
        // On time: unchanged.
        assert_eq!(retarget(t, 10_000, &rule, limit), t);
        // Twice as fast: twice as hard.
        assert_eq!(
            retarget(t, 5_000, &rule, limit),
            Target::from_leading_zero_bits(17)
        );
        // Twice as slow: twice as easy.
        assert!(retarget(t, 20_000, &rule, limit) > t);
        // Instant blocks: bounded at four times harder.
        assert_eq!(
            retarget(t, 0, &rule, limit),
            Target::from_leading_zero_bits(18)
        );
        // Very slow blocks: bounded at four times easier.
        assert_eq!(
            retarget(t, u64::MAX, &rule, limit),
            retarget(t, 40_000, &rule, limit)
        );
        // Never easier than the limit.
        assert_eq!(retarget(limit, u64::MAX, &rule, limit), limit);
    }

    #[test]
    fn only_future_timestamps_are_temporary() {
        let e = ValidationError::TimestampTooFarInFuture {
            timestamp_ms: 2,
            limit_ms: 1,
        };
        assert!(!e.is_permanent());
        assert!(
            ValidationError::WrongHeight {
                expected: 1,
                got: 2
            }
            .is_permanent()
        );
    }
}

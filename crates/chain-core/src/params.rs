//! Consensus parameters: what one network agrees on besides its genesis.

use serde::{Deserialize, Serialize};

use crate::pow::Target;

/// The optional difficulty adjustment toward a block interval.
///
/// Every `interval` blocks the target is scaled by how long the last window
/// took against how long it should have taken, the factor bounded to
/// `[1 / max_step, max_step]`, and never easier than the network's limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Retarget {
    /// Blocks per window; a retarget happens at heights that are multiples of
    /// it. At least 2 (a window needs two timestamps).
    pub interval: u64,
    /// The intended time between blocks, in milliseconds.
    pub block_time_ms: u64,
    /// The largest factor one retarget may change the target by (at least 1).
    pub max_step: u64,
}

/// The consensus rules of one network.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChainParams {
    /// The target of the first blocks, and with retargeting the easiest target
    /// ever allowed. The dev default is 16 leading zero bits (the notebook's
    /// `0000` prefix).
    pub initial_target_bits: u32,
    /// Difficulty adjustment, or `None` for a fixed target.
    pub retarget: Option<Retarget>,
    /// How far past the validating node's clock a timestamp may be, in ms.
    pub max_future_ms: u64,
    /// How many ancestors the median-time-past rule looks at.
    pub median_time_span: usize,
    /// The largest block, in bytes ([`crate::Block::size`]).
    pub max_block_bytes: usize,
    /// The most transactions in one block.
    pub max_block_txs: usize,
}

impl ChainParams {
    /// The dev network: a fixed 16-bit target, Bitcoin's two-hour and
    /// median-of-11 timestamp rules, 1 MiB and 10,000 transactions per block.
    pub fn dev() -> Self {
        Self {
            initial_target_bits: 16,
            retarget: None,
            max_future_ms: 2 * 60 * 60 * 1000,
            median_time_span: 11,
            max_block_bytes: 1 << 20,
            max_block_txs: 10_000,
        }
    }

    /// The dev rules with a different fixed difficulty (tests use easy ones).
    pub fn with_target_bits(bits: u32) -> Self {
        Self {
            initial_target_bits: bits,
            ..Self::dev()
        }
    }

    /// The easiest allowed target, and the target of the first blocks.
    pub fn pow_limit(&self) -> Target {
        Target::from_leading_zero_bits(self.initial_target_bits)
    }
}

impl Default for ChainParams {
    fn default() -> Self {
        Self::dev()
    }
}

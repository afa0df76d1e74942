//! What the attackers did during a run (a selfish pool's finds and races,
//! the eclipse's victims and double spend), kept in the world's shared
//! state until the report reads them (`selfish.rs`, `eclipse/`).

use std::collections::BTreeMap;

use chain_core::BlockHash;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::report::DoubleSpend;

/// A race the pool entered: its block and the honest block of the same
/// height, from when the pool published its block.
#[derive(Clone, Debug)]
pub(crate) struct Race {
    pub(crate) height: u64,
    pub(crate) pool: BlockHash,
    pub(crate) honest: BlockHash,
    pub(crate) at: Instant,
}

/// What the pool did, for the report.
#[derive(Clone, Debug, Default)]
pub(crate) struct PoolRecord {
    /// Blocks the pool found.
    pub(crate) found: u64,
    /// The races it entered.
    pub(crate) races: Vec<Race>,
    /// Blocks that every node had with two blocks on top, later undone.
    pub(crate) settled_lost: u64,
}

/// The attacker's side of one victim: when it was eclipsed, and whether
/// the attacker let it go.
#[derive(Debug, Default)]
pub(crate) struct VictimState {
    pub(crate) eclipsed_at: Option<Instant>,
    pub(crate) released: CancellationToken,
    /// Checks made, checks that found it eclipsed, the current and the
    /// longest run of those, and the sum over checks of the share of its
    /// outbound peers that were the attacker's.
    pub(crate) checks: u64,
    pub(crate) eclipsed_checks: u64,
    pub(crate) stretch: u64,
    pub(crate) longest: u64,
    pub(crate) outbound_held: f64,
}

/// What the attacker did, for the report.
#[derive(Debug, Default)]
pub(crate) struct AttackRecord {
    pub(crate) victims: BTreeMap<usize, VictimState>,
    pub(crate) double_spend: Option<DoubleSpend>,
    /// Connections the attacker opened or took (its serial numbers).
    pub(crate) connections: u64,
    /// Of those, the ones whose handshake the victim completed.
    pub(crate) accepted: u64,
}

//! The mempool's fee policy in numbers ([`FeePolicy`], its defaults) and
//! the pool's minimum fee rate that evictions raise and time lowers
//! ([`RollingMin`]). What the pool does with them is `fees.rs`.

use std::time::Duration;

use escrow::FeeRate;
use tokio::time::Instant;

/// The default minimum relay fee rate: 1 coin per kB, so every transaction
/// of up to 1,000 bytes pays at least 1 coin.
pub const DEFAULT_MIN_RELAY_FEE: FeeRate = FeeRate::per_kb(1);

/// The default incremental relay fee rate: what a replacement must pay on
/// top of what it replaces, per kB of its own size, and how far the pool's
/// minimum rises above an evicted package's rate.
pub const DEFAULT_INCREMENTAL_FEE: FeeRate = FeeRate::per_kb(1);

/// The default bound on the pool's bytes (the transactions' canonical
/// encodings): 64 MiB.
pub const DEFAULT_MAX_BYTES: usize = 64 << 20;

/// The half-life of the pool's raised minimum fee rate while the pool is
/// at least half full (Bitcoin Core's `ROLLING_FEE_HALFLIFE`, 12 hours);
/// it halves below half full and quarters below a quarter.
pub const MIN_FEE_HALF_LIFE: Duration = Duration::from_secs(12 * 3600);

/// What the pool asks of fees, and how many bytes it holds at most.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeePolicy {
    /// No transaction below this rate enters (`--min-relay-fee`).
    pub min_relay: FeeRate,
    /// A replacement pays this rate for its own bytes on top of what it
    /// replaces; an eviction raises the pool's minimum to the evicted
    /// package's rate plus this.
    pub incremental: FeeRate,
    /// The most bytes of transactions the pool holds (`--mempool-max-bytes`).
    pub max_bytes: usize,
}

impl Default for FeePolicy {
    fn default() -> FeePolicy {
        FeePolicy {
            min_relay: DEFAULT_MIN_RELAY_FEE,
            incremental: DEFAULT_INCREMENTAL_FEE,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

/// The pool's minimum fee rate raised by evictions, decaying with
/// [`MIN_FEE_HALF_LIFE`].
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct RollingMin {
    /// Coins per kB when last raised.
    rate: f64,
    /// When it was last raised; `None`: never.
    at: Option<Instant>,
}

impl RollingMin {
    /// The rate at `now`, the pool being `usage` full (0 to 1): halved
    /// every half-life since it was raised, and zero once below half the
    /// incremental rate.
    pub fn current(&self, now: Instant, usage: f64, incremental: FeeRate) -> FeeRate {
        let Some(at) = self.at else {
            return FeeRate::ZERO;
        };
        let mut half_life = MIN_FEE_HALF_LIFE.as_secs_f64();
        if usage < 0.25 {
            half_life /= 4.0;
        } else if usage < 0.5 {
            half_life /= 2.0;
        }
        let elapsed = now.saturating_duration_since(at).as_secs_f64();
        let rate = self.rate * 0.5f64.powf(elapsed / half_life);
        if rate < incremental.get() as f64 / 2.0 {
            FeeRate::ZERO
        } else {
            FeeRate::per_kb(rate.ceil() as u64)
        }
    }

    /// Raises it to at least `to` at `now`.
    pub fn raise(&mut self, to: FeeRate, now: Instant, usage: f64, incremental: FeeRate) {
        let current = self.current(now, usage, incremental).max(to);
        self.rate = current.get() as f64;
        self.at = Some(now);
    }
}

/// What decides the pool's minimum fee rate at any moment: the policy's
/// floor and the raised minimum, with how full the pool was (so a
/// snapshot of the node can tell the minimum at the time it is read).
#[derive(Clone, Copy, Debug, Default)]
pub struct FeeFloor {
    pub(super) min_relay: FeeRate,
    pub(super) incremental: FeeRate,
    pub(super) rolling: RollingMin,
    pub(super) usage: f64,
}

impl FeeFloor {
    /// The minimum relay fee rate (the floor when nothing was evicted).
    pub fn min_relay(&self) -> FeeRate {
        self.min_relay
    }

    /// The fee rate a new transaction must pay at `now`: the minimum relay
    /// rate, or the minimum raised by evictions if higher.
    pub fn at(&self, now: Instant) -> FeeRate {
        self.min_relay
            .max(self.rolling.current(now, self.usage, self.incremental))
    }
}

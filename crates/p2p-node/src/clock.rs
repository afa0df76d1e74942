//! The clock seam: where block timestamps come from.
//!
//! Timeouts and intervals use tokio's timer (which tests and a simulator can
//! pause or drive); the wall clock is read only for block timestamps and the
//! "not too far in the future" rule, through [`Clock`], so a simulator can
//! give every node its own (skewed) time.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + 'static {
    /// The current time in milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The operating system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

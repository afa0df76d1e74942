//! [`SimClock`]: block timestamps from the simulated time (the node's
//! clock seam, `p2p_node::clock::Clock`).

use p2p_node::clock::Clock;
use tokio::time::Instant;

/// Block timestamps from the simulated time: `base_ms` at the start of the
/// run, plus the simulated time elapsed.
#[derive(Clone, Copy, Debug)]
pub struct SimClock {
    start: Instant,
    base_ms: u64,
}

impl SimClock {
    /// A clock reading `base_ms` now.
    pub fn new(base_ms: u64) -> SimClock {
        SimClock {
            start: Instant::now(),
            base_ms,
        }
    }

    /// Simulated milliseconds since the clock was made.
    pub fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

impl Clock for SimClock {
    fn now_ms(&self) -> u64 {
        self.base_ms.saturating_add(self.elapsed_ms())
    }
}

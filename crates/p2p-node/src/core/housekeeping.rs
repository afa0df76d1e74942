//! The core's housekeeping tick, and when it sleeps.
//!
//! Every [`NodeConfig::tick_interval`](crate::config::NodeConfig) the core
//! times out requests, dials, asks for addresses, expires orphans, saves a
//! changed mempool and refreshes the peer figures it publishes. A node
//! with nothing of that pending (every outbound slot taken, nothing asked,
//! nothing unsaved, no orphan, no peer figure that moves with time alone)
//! would tick for nothing: a tick that finds the node so *settled* is the
//! last one until the next event, which arms the tick again, one interval
//! after it. What the tick does is unchanged; only ticks that would do
//! nothing are left out. A live node wakes less often when idle, and a
//! simulated network of thousands of idle nodes does not spend its time
//! ticking (`docs/SIMULATION.md`, "Large networks").

use std::time::Duration;

use tokio::time::{Instant, Interval, MissedTickBehavior};

use crate::core::durable::Durable;
use crate::core::network::Network;
use crate::core::published::Publisher;
use crate::core::repair::Repairs;
use crate::core::view::NodeChain;
use crate::mempool::Mempool;

/// The housekeeping tick: an interval that can be disarmed while the node
/// is settled.
pub(super) struct Ticks {
    interval: Interval,
    armed: bool,
}

impl Ticks {
    /// A tick every `period` (at least a millisecond), the first at once.
    pub fn new(period: Duration) -> Ticks {
        let mut interval = tokio::time::interval(period.max(Duration::from_millis(1)));
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Ticks {
            interval,
            armed: true,
        }
    }

    /// Whether the next tick is due at all.
    pub fn armed(&self) -> bool {
        self.armed
    }

    /// Waits for the next tick (only while [`Ticks::armed`]).
    pub async fn next(&mut self) {
        self.interval.tick().await;
    }

    /// After an event has been handled: a tick (`ticked`) that leaves the
    /// node `settled` disarms the tick; any other event arms a disarmed
    /// tick, due one interval from now. `settled` is only asked after a
    /// tick, whose publication refreshed the peer figures.
    pub fn after(&mut self, ticked: bool, settled: impl FnOnce() -> bool) {
        if ticked {
            self.armed = !settled();
        } else if !self.armed {
            self.interval.reset();
            self.armed = true;
        }
    }
}

/// The housekeeping tick, over the parts of the core it touches. Returns
/// `true`, for the core's loop: the event was a tick.
pub(super) fn tick(
    (net, chain): (&mut Network, &NodeChain),
    published: &mut Publisher,
    mempool: &mut Mempool,
    durable: &mut Durable,
) -> bool {
    let now = Instant::now();
    net.on_tick(chain, now);
    published.peers_due();
    mempool.expire_orphans(now);
    if durable.mempool_save_due(now) {
        durable.save_changed_mempool(mempool.txs(), false);
    }
    true
}

/// Whether a tick would do nothing until an event changes something: the
/// network is settled ([`Network::settled`]), nothing is unsaved, no
/// orphan waits to expire and no damaged block waits to be asked for
/// again.
pub(super) fn settled(
    net: &Network,
    durable: &Durable,
    mempool: &Mempool,
    repairs: &Repairs,
) -> bool {
    net.settled(Instant::now())
        && durable.settled()
        && mempool.orphans().is_empty()
        && repairs.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Paused time: `Instant` is tokio's, and every sleep here advances its
    // virtual clock at once; nothing depends on the wall clock.
    #[tokio::test(start_paused = true)]
    async fn a_settled_tick_is_the_last_until_an_event_arms_the_next() {
        let period = Duration::from_secs(1);
        let mut ticks = Ticks::new(period);
        let start = Instant::now();
        ticks.next().await;
        assert_eq!(Instant::now(), start, "the first tick is at once");
        // A tick that leaves the node busy: ticking goes on.
        ticks.after(true, || false);
        assert!(ticks.armed());
        ticks.next().await;
        assert_eq!(Instant::now(), start + period);
        // Settled: no tick until an event.
        ticks.after(true, || true);
        assert!(!ticks.armed());
        tokio::time::sleep(Duration::from_millis(7_300)).await;
        // An event arms it: the next tick is one interval after the event.
        let mut asked = false;
        ticks.after(false, || {
            asked = true;
            true
        });
        assert!(ticks.armed() && !asked, "only a tick asks whether settled");
        let event = Instant::now();
        ticks.next().await;
        assert_eq!(Instant::now(), event + period);
        // An event while armed leaves the schedule alone.
        tokio::time::sleep(Duration::from_millis(400)).await;
        ticks.after(false, || true);
        ticks.next().await;
        assert_eq!(Instant::now(), event + period * 2);
    }
}

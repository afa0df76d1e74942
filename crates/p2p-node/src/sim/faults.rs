//! The swarm's faults: a schedule drawn from the seed, as a Poisson
//! process, of partitions (two-way and one-way), held links, latency
//! spikes and crashes, each undone after a drawn time.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::SimRng;
use super::options::Faults;
use super::world::{World, lock};

impl World {
    /// The swarm's faults: a random schedule drawn from the seed.
    pub(super) async fn fault_loop(
        self: Arc<Self>,
        faults: Faults,
        stop: CancellationToken,
        tasks: TaskTracker,
    ) {
        let mut rng = SimRng::stream(self.opts.seed, 4);
        let n = self.opts.nodes;
        loop {
            tokio::select! {
                biased;
                () = stop.cancelled() => return,
                () = tokio::time::sleep(rng.exp(faults.mean_gap)) => {}
            }
            let roll = rng.below(6);
            let lasts = |rng: &mut SimRng, lo: u64, hi: u64| {
                Duration::from_secs(lo + rng.below((hi - lo) as usize) as u64)
            };
            let kind = match roll {
                0 | 1 if n >= 2 => {
                    // A partition: a random side against the rest, both
                    // ways or one way.
                    let oneway = roll == 1;
                    let side: Vec<usize> = (0..n).filter(|_| rng.chance(0.5)).collect();
                    if side.is_empty() || side.len() == n {
                        continue;
                    }
                    let cut: Vec<(usize, usize)> = side
                        .iter()
                        .flat_map(|&a| {
                            (0..n)
                                .filter(|b| !side.contains(b))
                                .flat_map(move |b| [(a, b), (b, a)])
                        })
                        .filter(|(a, _)| !oneway || side.contains(a))
                        .collect();
                    for (a, b) in &cut {
                        self.net.block(*a, *b);
                    }
                    let me = self.clone();
                    let d = lasts(&mut rng, 10, 300);
                    tasks.spawn(async move {
                        until(d, &me.heal).await;
                        for (a, b) in cut {
                            me.net.unblock(a, b);
                        }
                    });
                    if oneway {
                        "partition_oneway"
                    } else {
                        "partition"
                    }
                }
                2 if n >= 2 => {
                    let a = rng.below(n);
                    let b = (a + 1 + rng.below(n - 1)) % n;
                    self.net.hold(a, b);
                    let me = self.clone();
                    let d = lasts(&mut rng, 1, 30);
                    tasks.spawn(async move {
                        until(d, &me.heal).await;
                        me.net.release(a, b);
                    });
                    "hold"
                }
                3 => {
                    let a = rng.below(n);
                    let factor = 5.0 + rng.unit() * 15.0;
                    self.net.spike(a, factor);
                    let me = self.clone();
                    let d = lasts(&mut rng, 10, 60);
                    tasks.spawn(async move {
                        until(d, &me.heal).await;
                        me.net.end_spike(a, factor);
                    });
                    "latency_spike"
                }
                _ => {
                    let a = rng.below(n);
                    if self.handle(a).is_none() {
                        continue;
                    }
                    let d = lasts(&mut rng, 5, 120);
                    // The crash happens here, inside the main phase; the
                    // restart waits, unless the heal comes first (it
                    // restarts every node that is down).
                    self.crash_node(a).await;
                    let me = self.clone();
                    tasks.spawn(async move {
                        if until(d, &me.heal).await
                            && !me.abort.is_cancelled()
                            && let Err(e) = me.start_node(a).await
                        {
                            me.violate("liveness", Some(a), e.to_string());
                        }
                    });
                    "crash"
                }
            };
            *lock(&self.shared)
                .fault_events
                .entry(kind.to_string())
                .or_insert(0) += 1;
        }
    }
}

/// Waits `d`, or less if the heal comes first; true if the whole time
/// passed.
async fn until(d: Duration, heal: &CancellationToken) -> bool {
    tokio::select! {
        biased;
        () = heal.cancelled() => false,
        () = tokio::time::sleep(d) => true,
    }
}

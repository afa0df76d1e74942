//! The swarm's faults: a schedule drawn from the seed, as a Poisson
//! process, of partitions (two-way and one-way), held links, latency
//! spikes and crashes, and (with [`Faults::store`]) failed and slow
//! commits, each undone after a drawn time.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use p2p_node::NodeHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::options::Faults;
use crate::rng::SimRng;
use crate::store::SimStore;
use crate::world::{World, lock};

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
            // The store's faults only when asked: without them a seed
            // draws the schedule it always drew.
            let roll = rng.below(if faults.store { 8 } else { 6 });
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
                6 => {
                    // The next commit of a node fails: it stops, as a node
                    // does on a store error, and restarts later on what it
                    // had made durable.
                    let a = rng.below(n);
                    let Some((handle, store, generation)) = self.running(a) else {
                        continue;
                    };
                    let d = lasts(&mut rng, 5, 120);
                    store.fail_next_commit();
                    let me = self.clone();
                    tasks.spawn(async move {
                        me.after_failed_commit(a, handle, store, generation, d)
                            .await;
                    });
                    "store_fail"
                }
                7 => {
                    // A slow disk: every commit of a node takes 50 ms to
                    // 2 s of simulated time, for a while.
                    let a = rng.below(n);
                    let Some((_, store, _)) = self.running(a) else {
                        continue;
                    };
                    let latency = Duration::from_millis(50 * (1 + rng.below(40) as u64));
                    let d = lasts(&mut rng, 10, 120);
                    store.set_commit_latency(Some(latency));
                    let heal = self.heal.clone();
                    tasks.spawn(async move {
                        until(d, &heal).await;
                        store.set_commit_latency(None);
                    });
                    "store_slow"
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

impl World {
    /// Node `i`'s handle, store and generation, if it is up.
    fn running(&self, i: usize) -> Option<(NodeHandle, SimStore, u64)> {
        let slots = lock(&self.slots);
        let slot = slots.get(i)?;
        let handle = slot.handle.clone()?;
        Some((handle, slot.store.clone(), slot.generation))
    }

    /// After [`SimStore::fail_next_commit`] on node `i`: once the node
    /// stops on the failed commit, it is down (its process exited: its
    /// connections are reset) until it restarts `downtime` later, or at
    /// the heal. A fault that the heal finds still armed is disarmed.
    async fn after_failed_commit(
        self: Arc<Self>,
        i: usize,
        handle: NodeHandle,
        store: SimStore,
        generation: u64,
        downtime: Duration,
    ) {
        tokio::select! {
            biased;
            () = self.heal.cancelled() => {}
            () = handle.stopped() => {}
        }
        if handle.stopped().now_or_never().is_none() {
            // The heal came first: no commit failed.
            store.clear_faults();
            return;
        }
        // Down, unless a crash took the node first (its own task restarts
        // it).
        let taken = {
            let mut slots = lock(&self.slots);
            match slots.get_mut(i) {
                Some(slot) if slot.generation == generation && slot.handle.is_some() => {
                    slot.handle = None;
                    slot.store.crash();
                    true
                }
                _ => false,
            }
        };
        if !taken {
            return;
        }
        lock(&self.shared).store_stops += 1;
        self.net.crash(i);
        handle.shutdown().await;
        if until(downtime, &self.heal).await
            && !self.abort.is_cancelled()
            && let Err(e) = self.start_node(i).await
        {
            self.violate("liveness", Some(i), e.to_string());
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

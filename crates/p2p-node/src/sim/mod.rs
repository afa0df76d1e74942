//! The deterministic simulator: many real nodes in one process, under a
//! simulated clock and network.
//!
//! Every node is the real [`crate::Node`] (core, peer tasks, mempool,
//! ledger) started on simulated seams:
//!
//! - [`net`]: the transport, a network of hosts with per-link latency,
//!   per-host upload bandwidth, partitions, held links, latency spikes and
//!   crashes;
//! - [`SimClock`]: block timestamps from the simulated time;
//! - [`SimMiner`]: blocks found as a Poisson process per node, at the
//!   node's share of the hash power (no hashing: the simulated chain's
//!   target is trivial, and every block still goes through full
//!   validation);
//! - [`SimStore`]: an in-memory store that outlives its node, so a crashed
//!   node restarts on what it had made durable.
//!
//! All nodes run on one tokio current-thread runtime whose clock is
//! paused: when every task waits, tokio jumps to the next timer, so idle
//! simulated time costs nothing, and nothing reads the wall clock or the
//! operating system's randomness. The same seed and options replay the
//! same run. [`world`] builds and drives a run (load, faults, checks,
//! measurements); `cargo xtask sim` is its command line.
//! `docs/SIMULATION.md` describes the model.

pub mod net;
pub mod options;
pub mod report;
pub mod world;

mod checks;
mod faults;
mod load;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chain_core::miner::{Job, Kernel, MineOutcome};
use chain_core::{Block, BlockHash, Header, TxId};
use escrow::{SignedTx, Tx, Undo};
use futures::future::BoxFuture;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::mine::Mine;
use crate::penalty::BanKey;
use crate::store::{BlockStore, Commit, MemoryStore, StoreError, Stored};

/// The run's random numbers: ChaCha8 from a seed, so a seed replays a run.
#[derive(Clone, Debug)]
pub struct SimRng(ChaCha8Rng);

impl SimRng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> SimRng {
        SimRng(ChaCha8Rng::seed_from_u64(seed))
    }

    /// A generator for a named purpose, independent of the others drawn
    /// from the same seed (so adding draws to one does not shift another).
    pub fn stream(seed: u64, purpose: u64) -> SimRng {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        key[8..16].copy_from_slice(&purpose.to_le_bytes());
        SimRng(ChaCha8Rng::from_seed(key))
    }

    /// A uniform `u64`.
    pub fn u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (0 for `n = 0`).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        // The bias of a modulo on 64 bits is far below anything measured.
        usize::try_from(self.0.next_u64() % n as u64).unwrap_or(0)
    }

    /// Exponentially distributed with the given mean.
    pub fn exp(&mut self, mean: Duration) -> Duration {
        let u = 1.0 - self.unit(); // (0, 1]
        mean.mul_f64(-u.ln())
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

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

/// Who finds the next block, and when: each node's finds are a Poisson
/// process at its share of the network's rate (one block per interval).
/// The process is memoryless, so a node that stops mining (a crash) and
/// starts again simply draws its next find from the time it starts.
pub struct Lottery {
    rngs: Vec<SimRng>,
    /// Mean time between this node's finds; `None` for no hash power.
    mean: Vec<Option<Duration>>,
    next: Vec<Option<Instant>>,
}

impl Lottery {
    /// Shares of the hash power (any scale; normalised) for one block per
    /// `interval` on average over the whole network.
    pub fn new(seed: u64, shares: &[f64], interval: Duration) -> Lottery {
        let total: f64 = shares.iter().filter(|s| **s > 0.0).sum();
        Lottery {
            rngs: (0..shares.len())
                .map(|i| SimRng::stream(seed, (1 << 32) + i as u64))
                .collect(),
            mean: shares
                .iter()
                .map(|s| (*s > 0.0 && total > 0.0).then(|| interval.mul_f64(total / s)))
                .collect(),
            next: vec![None; shares.len()],
        }
    }

    /// When `node` finds its next block (drawn now if not drawn yet, or if
    /// the draw passed while it was not mining).
    fn next_find(&mut self, node: usize) -> Option<Instant> {
        let now = Instant::now();
        let mean = (*self.mean.get(node)?)?;
        match self.next.get(node).copied().flatten() {
            Some(at) if at >= now => Some(at),
            _ => {
                let at = now + self.rngs.get_mut(node)?.exp(mean);
                if let Some(slot) = self.next.get_mut(node) {
                    *slot = Some(at);
                }
                Some(at)
            }
        }
    }

    /// Uses up `node`'s find at `at`; false if it was used already.
    fn claim(&mut self, node: usize, at: Instant) -> bool {
        match self.next.get_mut(node) {
            Some(slot) if *slot == Some(at) => {
                *slot = None;
                true
            }
            _ => false,
        }
    }
}

/// The simulated miner of one node: waits for the node's next find in the
/// [`Lottery`], then solves the template at the simulated chain's trivial
/// target (a hash or two) with the find time as its timestamp.
#[derive(Clone)]
pub struct SimMiner {
    node: usize,
    lottery: Arc<Mutex<Lottery>>,
    clock: SimClock,
}

impl SimMiner {
    /// Node `node`'s miner.
    pub fn new(node: usize, lottery: Arc<Mutex<Lottery>>, clock: SimClock) -> SimMiner {
        SimMiner {
            node,
            lottery,
            clock,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Mine for SimMiner {
    fn mine(
        &self,
        template: Header,
        _urgency: crate::mine::Urgency,
        stop: CancellationToken,
    ) -> BoxFuture<'static, MineOutcome> {
        let this = self.clone();
        Box::pin(async move {
            loop {
                let Some(at) = lock(&this.lottery).next_find(this.node) else {
                    // No hash power: never finds anything.
                    stop.cancelled().await;
                    return MineOutcome::Cancelled;
                };
                tokio::select! {
                    biased;
                    () = stop.cancelled() => return MineOutcome::Cancelled,
                    () = tokio::time::sleep_until(at) => {}
                }
                if !lock(&this.lottery).claim(this.node, at) {
                    continue;
                }
                let mut header = template;
                header.timestamp_ms = header.timestamp_ms.max(this.clock.now_ms());
                let Ok(job) = Job::new(&header) else {
                    return MineOutcome::Exhausted;
                };
                return match Kernel::Portable.scan(&job, 0, 1 << 20) {
                    Some(nonce) => {
                        header.nonce = nonce;
                        MineOutcome::Found(header)
                    }
                    None => MineOutcome::Exhausted,
                };
            }
        })
    }
}

/// An in-memory store that outlives its node. Every put returns once
/// durable (as the redb store's fsync'd commits do); a crash
/// ([`SimStore::crash`]) discards whatever the dying node writes after
/// that instant, such as the mempool and bans a clean stop would save.
/// What a crash loses is therefore what the node had not yet made durable:
/// the mempool changes since its last periodic save.
#[derive(Clone, Default)]
pub struct SimStore {
    inner: MemoryStore,
    dead: Arc<AtomicBool>,
}

impl SimStore {
    /// The store as the next start of the node will see it: a fresh handle
    /// on the same contents, accepting writes again.
    pub fn reopen(&self) -> SimStore {
        SimStore {
            inner: self.inner.clone(),
            dead: Arc::new(AtomicBool::new(false)),
        }
    }

    /// From now on, writes through this handle are lost.
    pub fn crash(&self) {
        self.dead.store(true, Ordering::SeqCst);
    }

    fn alive(&self) -> bool {
        !self.dead.load(Ordering::SeqCst)
    }
}

impl BlockStore for SimStore {
    fn commit(&self, commit: &Commit) -> Result<(), StoreError> {
        if self.alive() {
            self.inner.commit(commit)?;
        }
        Ok(())
    }

    fn load(&self) -> Result<Stored, StoreError> {
        self.inner.load()
    }

    fn block(&self, hash: &BlockHash) -> Result<Option<Block<Tx>>, StoreError> {
        self.inner.block(hash)
    }

    fn undo(&self, hash: &BlockHash) -> Result<Option<Undo>, StoreError> {
        self.inner.undo(hash)
    }

    fn tx_block(&self, id: &TxId) -> Result<Option<BlockHash>, StoreError> {
        self.inner.tx_block(id)
    }

    fn txs_in_range(&self, low: &TxId, high: &TxId, limit: usize) -> Result<Vec<TxId>, StoreError> {
        self.inner.txs_in_range(low, high, limit)
    }

    fn put_mempool(&self, txs: &[SignedTx]) -> Result<(), StoreError> {
        if self.alive() {
            self.inner.put_mempool(txs)?;
        }
        Ok(())
    }

    fn load_mempool(&self) -> Result<Vec<SignedTx>, StoreError> {
        self.inner.load_mempool()
    }

    fn put_bans(&self, bans: &[(BanKey, u64)]) -> Result<(), StoreError> {
        if self.alive() {
            self.inner.put_bans(bans)?;
        }
        Ok(())
    }

    fn load_bans(&self) -> Result<Vec<(BanKey, u64)>, StoreError> {
        self.inner.load_bans()
    }
}

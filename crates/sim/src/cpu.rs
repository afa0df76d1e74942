//! Simulated processors: what a node's work costs in simulated time.
//!
//! Each node gets a [`SimCpu`] of one core (or `--cores N`). Work is
//! charged to it as counts ([`Work`]: signatures, transactions, blocks,
//! bytes hashed, committed, decoded and encoded), priced by a
//! [`CostModel`] and divided by the speed factor (`--cpu-speed`). The
//! core queues it behind what the processor has to do already: a piece
//! of work starts when a core is free, so a node flooded with work falls
//! behind as a real one does. Costs come from counts, never from the wall
//! clock, so a run stays the same bytes for the same seed.
//!
//! Who charges what:
//! - the node's core, before it acts on a message (`p2p_node::cpu`): a
//!   block's validation, a transaction's admission;
//! - the network (`net/stream.rs`): encoding what a node writes (its bytes
//!   leave once that and everything the node had to do before is done)
//!   and decoding what it reads (readable once decoded);
//! - the store (`store.rs`): each commit.
//!
//! `docs/SIMULATION.md` ("Simulated processors") gives the reference
//! costs and the benchmark figure behind each.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use p2p_node::cpu::{Cpu, Work};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// What each count of [`Work`] costs on the reference machine, in
/// nanoseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostModel {
    /// One signature checked alone.
    pub signature_ns: f64,
    /// One signature's share of a batch check.
    pub batched_signature_ns: f64,
    /// One transaction applied to a ledger (its signature apart).
    pub tx_ns: f64,
    /// One block's validation apart from its transactions and bytes.
    pub block_ns: f64,
    /// One byte hashed.
    pub hash_byte_ns: f64,
    /// One store commit, apart from its bytes.
    pub commit_ns: f64,
    /// One byte committed.
    pub commit_byte_ns: f64,
    /// One byte of a frame decoded.
    pub decode_byte_ns: f64,
    /// One byte of a frame encoded.
    pub encode_byte_ns: f64,
}

impl CostModel {
    /// The reference machine's costs: this project's benchmarks on the
    /// 2-core machine of `docs/PERFORMANCE.md`, one core each (the source
    /// of each is in `docs/SIMULATION.md`).
    pub fn reference() -> CostModel {
        CostModel {
            signature_ns: 47_000.0,
            batched_signature_ns: 10_200.0,
            tx_ns: 480.0,
            block_ns: 33_700.0,
            hash_byte_ns: 0.63,
            commit_ns: 400_000.0,
            commit_byte_ns: 18.0,
            decode_byte_ns: 1.09,
            encode_byte_ns: 1.09,
        }
    }

    /// Reads a cost table from a JSON file with every field of
    /// [`CostModel`].
    ///
    /// # Errors
    ///
    /// The file cannot be read, or is not such a table, or has a negative
    /// or non-finite cost.
    pub fn load(path: &Path) -> Result<CostModel, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the cost model {}: {e}", path.display()))?;
        let model: CostModel = serde_json::from_str(&text)
            .map_err(|e| format!("the cost model {} is not valid: {e}", path.display()))?;
        model
            .check()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(model)
    }

    /// Every cost is finite and not negative.
    ///
    /// # Errors
    ///
    /// Names the first cost that is not.
    pub fn check(&self) -> Result<(), String> {
        let costs = [
            ("signature_ns", self.signature_ns),
            ("batched_signature_ns", self.batched_signature_ns),
            ("tx_ns", self.tx_ns),
            ("block_ns", self.block_ns),
            ("hash_byte_ns", self.hash_byte_ns),
            ("commit_ns", self.commit_ns),
            ("commit_byte_ns", self.commit_byte_ns),
            ("decode_byte_ns", self.decode_byte_ns),
            ("encode_byte_ns", self.encode_byte_ns),
        ];
        match costs.iter().find(|(_, c)| !c.is_finite() || *c < 0.0) {
            Some((name, c)) => Err(format!("{name} is {c}: a cost must be finite and >= 0")),
            None => Ok(()),
        }
    }

    /// What `work` costs on the reference machine, in nanoseconds.
    pub fn nanos(&self, work: &Work) -> f64 {
        work.signatures as f64 * self.signature_ns
            + work.batched_signatures as f64 * self.batched_signature_ns
            + work.txs as f64 * self.tx_ns
            + work.blocks as f64 * self.block_ns
            + work.hashed_bytes as f64 * self.hash_byte_ns
            + work.commits as f64 * self.commit_ns
            + work.committed_bytes as f64 * self.commit_byte_ns
            + work.decoded_bytes as f64 * self.decode_byte_ns
            + work.encoded_bytes as f64 * self.encode_byte_ns
    }
}

/// A node's processors: a model, a speed, and when each core is free.
#[derive(Debug)]
pub struct SimCpu {
    model: CostModel,
    speed: f64,
    /// When each core is next free.
    free_at: Mutex<Vec<Instant>>,
    /// Simulated time charged so far.
    busy: Mutex<Duration>,
}

impl SimCpu {
    /// A processor of `cores` cores (at least one) running `speed` times
    /// as fast as the reference machine (`speed` above zero).
    pub fn new(model: CostModel, speed: f64, cores: usize) -> SimCpu {
        let now = Instant::now();
        SimCpu {
            model,
            speed,
            free_at: Mutex::new(vec![now; cores.max(1)]),
            busy: Mutex::new(Duration::ZERO),
        }
    }

    /// How long `work` takes on this processor.
    pub fn cost(&self, work: &Work) -> Duration {
        let nanos = self.model.nanos(work) / self.speed;
        // Whole nanoseconds: the same counts always give the same time.
        Duration::from_nanos(nanos.round() as u64)
    }

    /// Runs `cost` of work that cannot start before `not_before` on the
    /// core free first; returns when it is done.
    pub fn run(&self, cost: Duration, not_before: Instant) -> Instant {
        if cost.is_zero() {
            return not_before;
        }
        let mut free_at = lock(&self.free_at);
        let Some(core) = free_at.iter_mut().min() else {
            return not_before;
        };
        let done = (*core).max(not_before) + cost;
        *core = done;
        *lock(&self.busy) += cost;
        done
    }

    /// Charges `work` that could start at `from` (behind what is queued);
    /// returns when it is done.
    pub fn charge_from(&self, work: &Work, from: Instant) -> Instant {
        self.run(self.cost(work), from)
    }

    /// When everything charged so far is done (now, if it is).
    pub fn idle_at(&self, now: Instant) -> Instant {
        lock(&self.free_at)
            .iter()
            .copied()
            .max()
            .map_or(now, |t| t.max(now))
    }

    /// Charges `work` that follows everything charged before it (what a
    /// node writes follows the work that produced it); returns when it is
    /// done.
    pub fn after_all(&self, work: &Work, now: Instant) -> Instant {
        self.run(self.cost(work), self.idle_at(now))
    }

    /// The machine restarted: nothing is queued any more.
    pub fn reset(&self, now: Instant) {
        for core in lock(&self.free_at).iter_mut() {
            *core = now;
        }
    }

    /// Simulated time charged so far.
    pub fn busy(&self) -> Duration {
        *lock(&self.busy)
    }
}

impl Cpu for SimCpu {
    fn charge(&self, work: Work) -> Instant {
        self.run(self.cost(&work), Instant::now())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
#[path = "cpu_tests.rs"]
mod tests;

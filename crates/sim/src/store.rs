//! [`SimStore`]: the simulated store (the node's store seam,
//! `p2p_node::store::BlockStore`), in memory, outliving its node, with the
//! faults of a disk: a crash that loses what was not yet durable, a commit
//! that fails, and commits that take time.
//!
//! The store seam is synchronous: the node's core waits for a commit
//! inline, so a commit that takes `d` stops the core for `d`. One thread
//! runs every node of a run, and blocking it would stop simulated time
//! for all of them, so a slow commit returns at once and tells its stall
//! to whoever wired the store ([`SimStore::on_stall`]; the world holds the
//! node's links for `d`, so what it sends after the commit starts, and what
//! is sent to it, waits until the commit would have finished).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chain_core::{Block, BlockHash, TxId};
use escrow::{SignedTx, Tx, Undo};
use p2p_node::cpu::{Cpu, Work};
use p2p_node::penalty::BanKey;
use p2p_node::store::{BlockStore, Commit, MemoryStore, StoreError, Stored};

use crate::cpu::SimCpu;

/// What a store does with a stall: the world's hook.
type StallHook = Arc<dyn Fn(Duration) + Send + Sync>;

/// The faults armed on one store handle, and what they did.
#[derive(Debug, Default)]
struct Armed {
    /// The next commit fails, writing nothing.
    fail_next: bool,
    /// Every commit takes this long.
    latency: Option<Duration>,
    stats: CommitStats,
}

/// What a store's commits came to (per handle: a restart's
/// [`SimStore::reopen`] starts again from zero).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Commits that wrote.
    pub committed: u64,
    /// Commits refused by an armed failure (they wrote nothing).
    pub failed: u64,
    /// Commits that took time.
    pub slow: u64,
    /// The simulated time the slow ones took, together.
    pub stalled: Duration,
}

/// An in-memory store that outlives its node. Every put returns once
/// durable (as the redb store's fsync'd commits do); a crash
/// ([`SimStore::crash`]) discards whatever the dying node writes after
/// that instant, such as the mempool and bans a clean stop would save.
/// What a crash loses is therefore what the node had not yet made durable:
/// the mempool changes since its last periodic save.
///
/// Faults, armed on the handle the node runs on:
/// [`SimStore::fail_next_commit`] (the node stops, as on any store error)
/// and [`SimStore::set_commit_latency`] (see the module docs).
#[derive(Clone, Default)]
pub struct SimStore {
    inner: MemoryStore,
    dead: Arc<AtomicBool>,
    armed: Arc<Mutex<Armed>>,
    on_stall: Option<StallHook>,
    /// The node's processor, charged for each commit.
    cpu: Option<Arc<SimCpu>>,
}

impl SimStore {
    /// The store as the next start of the node will see it: a fresh handle
    /// on the same contents, accepting writes again, with no fault armed
    /// (the disk was repaired), and the same stall hook.
    pub fn reopen(&self) -> SimStore {
        SimStore {
            inner: self.inner.clone(),
            dead: Arc::new(AtomicBool::new(false)),
            armed: Arc::default(),
            on_stall: self.on_stall.clone(),
            cpu: self.cpu.clone(),
        }
    }

    /// Each commit is charged to `cpu`: the node's later work, and what it
    /// writes to peers, wait for it.
    pub fn set_cpu(&mut self, cpu: Arc<SimCpu>) {
        self.cpu = Some(cpu);
    }

    /// From now on, writes through this handle are lost.
    pub fn crash(&self) {
        self.dead.store(true, Ordering::SeqCst);
    }

    /// What a slow commit's time is handed to (it is only counted
    /// without one).
    pub fn on_stall(&mut self, hook: impl Fn(Duration) + Send + Sync + 'static) {
        self.on_stall = Some(Arc::new(hook));
    }

    /// The next commit through this handle fails and writes nothing, as a
    /// disk that refuses a write: the node stops, having announced and
    /// answered nothing of what that commit held.
    pub fn fail_next_commit(&self) {
        lock(&self.armed).fail_next = true;
    }

    /// Every commit through this handle takes `latency` of simulated time
    /// (`None`: none, the default).
    pub fn set_commit_latency(&self, latency: Option<Duration>) {
        lock(&self.armed).latency = latency.filter(|d| !d.is_zero());
    }

    /// Disarms every fault of this handle.
    pub fn clear_faults(&self) {
        let mut armed = lock(&self.armed);
        armed.fail_next = false;
        armed.latency = None;
    }

    /// What this handle's commits came to.
    pub fn stats(&self) -> CommitStats {
        lock(&self.armed).stats
    }

    fn alive(&self) -> bool {
        !self.dead.load(Ordering::SeqCst)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl BlockStore for SimStore {
    fn commit(&self, commit: &Commit) -> Result<(), StoreError> {
        let stall = {
            let mut armed = lock(&self.armed);
            if std::mem::take(&mut armed.fail_next) {
                armed.stats.failed += 1;
                return Err(StoreError::Backend {
                    path: PathBuf::from("sim"),
                    reason: "injected fault: the commit failed and wrote nothing".to_string(),
                });
            }
            armed.stats.committed += 1;
            let stall = armed.latency;
            if let Some(d) = stall {
                armed.stats.slow += 1;
                armed.stats.stalled += d;
            }
            stall
        };
        if self.alive() {
            self.inner.commit(commit)?;
        }
        if let Some(cpu) = &self.cpu {
            let bytes: usize = commit.blocks.iter().map(|b| wire::encoded_len(&**b)).sum();
            cpu.charge(Work {
                commits: 1,
                committed_bytes: bytes as u64,
                ..Work::default()
            });
        }
        if let (Some(d), Some(hook)) = (stall, &self.on_stall) {
            hook(d);
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

#[cfg(test)]
mod tests;

//! The mining seam: how a block template's proof of work is found.
//!
//! The core builds templates and accepts what comes back; *how* a nonce is
//! found is a [`Mine`]. [`HashMiner`] is the real one: chain-core's
//! multi-threaded SHA-256 search on a thread of its own, at the lowest
//! priority. The simulator
//! (`crate::sim`) provides another that finds blocks when its Poisson
//! lottery says this node's share of the hash power would have, so a
//! simulated day of ten-minute blocks costs no hashing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chain_core::Header;
use chain_core::miner::{MineOutcome, Miner};
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

/// Finds proof of work for block templates.
pub trait Mine: Send + Sync + 'static {
    /// Searches for a header (the template with a nonce, perhaps a later
    /// timestamp) that meets its target; gives up with
    /// [`MineOutcome::Cancelled`] once `stop` is cancelled. The future is
    /// run on a task of the node.
    fn mine(&self, template: Header, stop: CancellationToken) -> BoxFuture<'static, MineOutcome>;
}

/// Real hashing: chain-core's miner on a thread of its own at the lowest
/// scheduling priority (the most "nice"), and the threads it starts
/// inherit it. Mining uses what CPU the node's own work leaves: a node that
/// mines never makes its peers, its API or its validation wait on hashing.
/// The thread ends when the last clone of the miner is dropped.
#[derive(Clone, Debug)]
pub struct HashMiner {
    jobs: Arc<std::sync::Mutex<std::sync::mpsc::Sender<Job>>>,
}

/// One search for the mining thread.
struct Job {
    template: Header,
    stop: Arc<AtomicBool>,
    reply: tokio::sync::oneshot::Sender<MineOutcome>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("template", &self.template)
            .finish()
    }
}

impl HashMiner {
    /// A miner on `threads` threads (at least one).
    pub fn new(threads: usize) -> HashMiner {
        let miner = Miner::new(threads.max(1));
        let (jobs, rx) = std::sync::mpsc::channel::<Job>();
        let spawned = std::thread::Builder::new()
            .name("miner".into())
            .spawn(move || {
                // Lower this thread's priority; the search's threads inherit
                // it. Where the system refuses, mining runs at the normal
                // priority, which is only less polite.
                if let Err(e) = thread_priority::set_current_thread_priority(
                    thread_priority::ThreadPriority::Min,
                ) {
                    tracing::debug!("the miner keeps the normal priority: {e:?}");
                }
                while let Ok(job) = rx.recv() {
                    let outcome = miner
                        .mine(&job.template, &job.stop)
                        .unwrap_or(MineOutcome::Exhausted);
                    let _ = job.reply.send(outcome);
                }
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start the mining thread, the node will not mine: {e}");
        }
        HashMiner {
            jobs: Arc::new(std::sync::Mutex::new(jobs)),
        }
    }
}

impl Mine for HashMiner {
    fn mine(&self, template: Header, stop: CancellationToken) -> BoxFuture<'static, MineOutcome> {
        let (reply, done) = tokio::sync::oneshot::channel();
        let flag = Arc::new(AtomicBool::new(false));
        let sent = self
            .jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .send(Job {
                template,
                stop: flag.clone(),
                reply,
            });
        Box::pin(async move {
            if sent.is_err() {
                return MineOutcome::Exhausted;
            }
            tokio::pin!(done);
            let outcome = tokio::select! {
                biased;
                outcome = &mut done => outcome,
                () = stop.cancelled() => {
                    flag.store(true, Ordering::Relaxed);
                    done.await
                }
            };
            outcome.unwrap_or(MineOutcome::Exhausted)
        })
    }
}

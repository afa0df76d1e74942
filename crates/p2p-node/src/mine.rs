//! The mining seam: how a block template's proof of work is found.
//!
//! The core builds templates and accepts what comes back; *how* a nonce is
//! found is a [`Mine`]. [`HashMiner`] is the real one: chain-core's
//! multi-threaded SHA-256 search on a thread of its own, at a low
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
    fn mine(
        &self,
        template: Header,
        urgency: Urgency,
        stop: CancellationToken,
    ) -> BoxFuture<'static, MineOutcome>;
}

/// Why a block is mined, which sets how politely.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Urgency {
    /// The node's own mining (`--mine on` or `pending`): only on CPU time
    /// nothing else of the machine wants.
    Background,
    /// Blocks someone asked for ("mine N", `POST /mine`): at the lowest
    /// priority of ordinary work, so the request finishes as fast as the
    /// machine allows while the node's own work still comes first.
    Requested,
}

/// Real hashing: chain-core's miner on a thread of its own at a low
/// scheduling priority (see [`Urgency`]), which the threads it starts
/// inherit. Mining uses what CPU the node's own work leaves: a node that
/// mines never makes its peers, its API or its validation wait on hashing.
/// The thread ends when the last clone of the miner is dropped.
#[derive(Clone, Debug)]
pub struct HashMiner {
    jobs: Arc<std::sync::Mutex<std::sync::mpsc::Sender<Job>>>,
}

/// One search for the mining thread.
struct Job {
    template: Header,
    urgency: Urgency,
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
                let mut current = None;
                while let Ok(job) = rx.recv() {
                    if current != Some(job.urgency) {
                        set_priority(job.urgency);
                        current = Some(job.urgency);
                    }
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

/// Sets the calling thread's scheduling priority for `urgency`, as far as
/// the system allows; the search threads it starts inherit it.
///
/// - [`Urgency::Background`]: on Linux `SCHED_IDLE`: the thread runs only
///   on a CPU that nothing else wants, so even four nodes mining on two
///   cores take no time from any node's validation, gossip or API (a nice
///   value of 19 still takes about 1.5 % of a CPU from each busy thread it
///   shares one with). Elsewhere, or where the system refuses, the lowest
///   nice value.
/// - [`Urgency::Requested`]: the lowest nice value. `SCHED_IDLE` would
///   hand the CPU to every short wake-up of the node's own threads, which
///   cost a "mine N" request about a fifth of its rate in
///   `node.mine_rate`.
///
/// Failing both, mining runs at the normal priority, which is only less
/// polite.
fn set_priority(urgency: Urgency) {
    use thread_priority::{
        NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };
    let policy = match urgency {
        Urgency::Background if cfg!(target_os = "linux") => NormalThreadSchedulePolicy::Idle,
        _ => NormalThreadSchedulePolicy::Other,
    };
    let set = set_thread_priority_and_policy(
        thread_native_id(),
        ThreadPriority::Min,
        ThreadSchedulePolicy::Normal(policy),
    );
    if let Err(e) = set {
        tracing::debug!("the miner keeps its priority ({urgency:?}): {e:?}");
    }
}

impl Mine for HashMiner {
    fn mine(
        &self,
        template: Header,
        urgency: Urgency,
        stop: CancellationToken,
    ) -> BoxFuture<'static, MineOutcome> {
        let (reply, done) = tokio::sync::oneshot::channel();
        let flag = Arc::new(AtomicBool::new(false));
        let sent = self
            .jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .send(Job {
                template,
                urgency,
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

//! The proof-of-work seam: how a block template's nonce is found (the
//! node's job driver is `core/miner_driver.rs`; the hashing itself is
//! chain-core's `miner/`).
//!
//! The core builds templates and accepts what comes back; *how* a nonce is
//! found is a [`Mine`]. [`HashMiner`] is the real one: chain-core's
//! multi-threaded SHA-256 search on a thread of its own, at a low
//! priority. The simulator
//! (the `sim` crate) provides another that finds blocks when its Poisson
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

/// Real hashing: chain-core's miner on two threads of their own, one per
/// [`Urgency`], each at its low scheduling priority, which the search
/// threads it starts inherit. Mining uses what CPU the node's own work
/// leaves: a node that mines never makes its peers, its API or its
/// validation wait on hashing. The threads end when the last clone of the
/// miner is dropped.
#[derive(Clone, Debug)]
pub struct HashMiner {
    /// The job queues of the two mining threads: [`Urgency::Background`]'s
    /// and [`Urgency::Requested`]'s. Each thread keeps the priority it set
    /// at its start: an unprivileged process may enter `SCHED_IDLE` but
    /// not leave it, so one thread cannot serve both.
    background: std::sync::mpsc::Sender<Job>,
    requested: std::sync::mpsc::Sender<Job>,
}

/// One search for a mining thread.
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
    /// A miner on `threads` threads (at least one) per search.
    pub fn new(threads: usize) -> HashMiner {
        HashMiner {
            background: mining_thread(threads, Urgency::Background),
            requested: mining_thread(threads, Urgency::Requested),
        }
    }
}

/// Starts a mining thread at `urgency`'s priority and returns its job
/// queue; the thread ends when the queue's last sender is dropped.
fn mining_thread(threads: usize, urgency: Urgency) -> std::sync::mpsc::Sender<Job> {
    let miner = Miner::new(threads.max(1));
    let (jobs, rx) = std::sync::mpsc::channel::<Job>();
    let name = match urgency {
        Urgency::Background => "miner",
        Urgency::Requested => "miner-requested",
    };
    let spawned = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            set_priority(urgency);
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
    jobs
}

/// Sets the calling thread's scheduling priority for `urgency`, once, as
/// far as the system allows; the search threads it starts inherit it.
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
        let queue = match urgency {
            Urgency::Background => &self.background,
            Urgency::Requested => &self.requested,
        };
        let sent = queue.send(Job {
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

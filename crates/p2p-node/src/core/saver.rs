//! Where commits run: inline, on the core ([`Saver::inline`], the
//! default, and what the deterministic simulator needs), or on a thread of
//! their own ([`Saver::background`], `NodeConfig::background_saving`), so
//! that the core goes on admitting transactions and answering peers while
//! the disk syncs: for disks whose fsync takes milliseconds (with this
//! machine's fast fsync it measured slower: docs/PERFORMANCE.md).
//!
//! At most one commit is in flight: the core starts the next only after
//! the previous one's result, so commits reach the store in order. What
//! must wait for durability (announcing the tip, "mine N" answers,
//! publishing to the API) waits for that result; see `core/saving.rs`.

use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use tokio::sync::Notify;

use escrow::SignedTx;

use crate::BanKey;
use crate::store::{BlockStore, Commit, StoreError};

/// Runs the core's commits, one at a time.
pub(super) struct Saver {
    store: Arc<dyn BlockStore>,
    mode: Mode,
}

enum Mode {
    /// Commits run in [`Saver::start`]; the result waits here.
    Inline(Option<Result<(), StoreError>>),
    Background {
        /// Jobs to the thread; dropped (closing it) when the saver is.
        jobs: Option<mpsc::Sender<Job>>,
        /// Results from the thread, one per commit, in order.
        results: mpsc::Receiver<Result<(), StoreError>>,
        /// Raised by the thread after each result.
        wake: Arc<Notify>,
        thread: Option<JoinHandle<()>>,
    },
}

impl Saver {
    /// Commits run where [`Saver::start`] is called.
    pub(super) fn inline(store: Arc<dyn BlockStore>) -> Saver {
        Saver {
            store,
            mode: Mode::Inline(None),
        }
    }

    /// Commits run on a thread of their own; falls back to
    /// [`Saver::inline`] if the system refuses a thread.
    pub(super) fn background(store: Arc<dyn BlockStore>) -> Saver {
        let (jobs, inbox) = mpsc::channel::<Job>();
        let (done, results) = mpsc::channel();
        let wake = Arc::new(Notify::new());
        let thread = {
            let store = Arc::clone(&store);
            let wake = Arc::clone(&wake);
            std::thread::Builder::new()
                .name("saver".into())
                .spawn(move || {
                    // However the thread ends (a panic in a store
                    // included), the results close, then the core is woken
                    // to find them closed.
                    let results = Results {
                        done: Some(done),
                        wake,
                    };
                    while let Ok(job) = inbox.recv() {
                        match job {
                            Job::Commit(commit) => {
                                let result = store.commit(&commit);
                                drop(commit);
                                if !results.send(result) {
                                    break;
                                }
                            }
                            Job::Side(side) => side.run(&*store),
                        }
                    }
                })
        };
        match thread {
            Ok(thread) => Saver {
                store,
                mode: Mode::Background {
                    jobs: Some(jobs),
                    results,
                    wake,
                    thread: Some(thread),
                },
            },
            Err(e) => {
                tracing::warn!("no thread for saving ({e}): commits run on the core");
                Saver::inline(store)
            }
        }
    }

    /// What the core waits on for a background commit's completion; `None`
    /// inline, where [`Saver::done`] has the result as soon as
    /// [`Saver::start`] returns.
    pub(super) fn waker(&self) -> Option<Arc<Notify>> {
        match &self.mode {
            Mode::Inline(_) => None,
            Mode::Background { wake, .. } => Some(Arc::clone(wake)),
        }
    }

    /// Starts `commit`. The caller starts one only after the previous
    /// one's result ([`Saver::done`] or [`Saver::wait`]).
    pub(super) fn start(&mut self, commit: Commit) {
        match &mut self.mode {
            Mode::Inline(result) => *result = Some(self.store.commit(&commit)),
            Mode::Background { jobs, .. } => {
                let Some(jobs) = jobs.as_ref() else { return };
                if let Err(mpsc::SendError(Job::Commit(commit))) =
                    jobs.send(Job::Commit(Box::new(commit)))
                {
                    // The thread is gone (it cannot be, short of a panic
                    // in the store): commit here rather than lose it.
                    let result = self.store.commit(&commit);
                    self.mode = Mode::Inline(Some(result));
                }
            }
        }
    }

    /// Saves the mempool or the bans after the commits started before (on
    /// the thread, in background mode: redb has one writer at a time, so
    /// the core would otherwise wait for the commit in flight). A failure
    /// is logged: both are kept for the next start, not promised.
    pub(super) fn save_side(&mut self, side: Side) {
        match &mut self.mode {
            Mode::Inline(_) => side.run(&*self.store),
            Mode::Background { jobs, .. } => {
                let Some(jobs) = jobs.as_ref() else { return };
                if let Err(mpsc::SendError(Job::Side(side))) = jobs.send(Job::Side(side)) {
                    side.run(&*self.store);
                }
            }
        }
    }

    /// The result of the commit in flight, if it has completed.
    pub(super) fn done(&mut self) -> Option<Result<(), StoreError>> {
        match &mut self.mode {
            Mode::Inline(result) => result.take(),
            Mode::Background { results, .. } => match results.try_recv() {
                Ok(result) => Some(result),
                Err(mpsc::TryRecvError::Empty) => None,
                Err(mpsc::TryRecvError::Disconnected) => Some(Err(self.thread_lost())),
            },
        }
    }

    /// Waits for the result of the commit in flight (the caller knows one
    /// is).
    pub(super) fn wait(&mut self) -> Result<(), StoreError> {
        match &mut self.mode {
            Mode::Inline(result) => result.take().unwrap_or(Ok(())),
            Mode::Background { results, .. } => match results.recv() {
                Ok(result) => result,
                Err(mpsc::RecvError) => Err(self.thread_lost()),
            },
        }
    }

    fn thread_lost(&self) -> StoreError {
        StoreError::Backend {
            path: "the block store".into(),
            reason: "the saving thread stopped before the commit completed".into(),
        }
    }
}

/// What the saving thread does.
enum Job {
    Commit(Box<Commit>),
    Side(Side),
}

/// A save of what is kept for the next start but not promised.
pub(super) enum Side {
    /// The pending transactions.
    Mempool(Vec<SignedTx>),
    /// The active bans, with their expiries in wall-clock milliseconds.
    Bans(Vec<(BanKey, u64)>),
}

impl Side {
    fn run(self, store: &dyn BlockStore) {
        let (what, result) = match self {
            Side::Mempool(txs) => ("the mempool", store.put_mempool(&txs)),
            Side::Bans(bans) => ("the bans", store.put_bans(&bans)),
        };
        if let Err(e) = result {
            tracing::warn!("cannot save {what}: {e}");
        }
    }
}

/// The saving thread's end of the results: raises the core's waker after
/// each result, and when dropped (after closing the channel, so that a
/// woken core sees it closed rather than empty).
struct Results {
    done: Option<mpsc::Sender<Result<(), StoreError>>>,
    wake: Arc<Notify>,
}

impl Results {
    /// Sends a result and wakes the core; `false` if the core is gone.
    fn send(&self, result: Result<(), StoreError>) -> bool {
        let sent = self.done.as_ref().is_some_and(|d| d.send(result).is_ok());
        self.wake.notify_one();
        sent
    }
}

impl Drop for Results {
    fn drop(&mut self) {
        drop(self.done.take());
        self.wake.notify_one();
    }
}

impl Drop for Saver {
    /// Closes the thread's inbox and waits for it, so that nothing holds
    /// the store once the core is gone (a node restarted on the same
    /// directory opens it again at once).
    fn drop(&mut self) {
        if let Mode::Background { jobs, thread, .. } = &mut self.mode {
            jobs.take();
            if let Some(thread) = thread.take() {
                let _ = thread.join();
            }
        }
    }
}

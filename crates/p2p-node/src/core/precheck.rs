//! Signatures checked ahead of the chain during a sync: a thread of its
//! own takes the bodies the download hands it in height order and checks
//! their signatures on the signature pool
//! (`escrow::SigCache::precheck_block`, into the process's shared cache,
//! the chain's); the core waits for a body's check before inserting it, so
//! applying it finds every signature in the cache while the next bodies
//! are being checked (`download.rs`).

use escrow::Tx;

/// The thread that checks the signatures of bodies ahead of the chain
/// (into the process's shared signature cache, the chain's), and how far
/// it got.
pub(super) struct Precheck {
    pub to: std::sync::mpsc::Sender<(u64, Vec<Tx>)>,
    done: std::sync::mpsc::Receiver<u64>,
    /// The highest height handed to it, and the highest it finished.
    pub sent_to: u64,
    done_to: u64,
}

impl Precheck {
    /// The thread, on a runtime with several workers; `None` on a
    /// single-threaded one (the simulator, whose runs must not depend on
    /// threads, and most tests).
    pub fn start() -> Option<Precheck> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        if runtime.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
            return None;
        }
        let (to, work) = std::sync::mpsc::channel::<(u64, Vec<Tx>)>();
        let (finished, done) = std::sync::mpsc::channel();
        let cache = escrow::SigCache::shared();
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        std::thread::Builder::new()
            .name("sync-precheck".into())
            .spawn(move || {
                // Ends when the download (the sender) is dropped.
                for (height, txs) in work {
                    cache.precheck_block(&txs, threads);
                    if finished.send(height).is_err() {
                        return;
                    }
                }
            })
            .ok()?;
        Some(Precheck {
            to,
            done,
            sent_to: 0,
            done_to: 0,
        })
    }

    /// Whether the body at `height` is checked (or was never handed over,
    /// or the thread is gone: the chain then checks the signatures itself),
    /// without waiting.
    pub fn is_done(&mut self, height: u64) -> bool {
        while self.done_to < height.min(self.sent_to) {
            match self.done.try_recv() {
                Ok(h) => self.done_to = self.done_to.max(h),
                Err(std::sync::mpsc::TryRecvError::Empty) => return false,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => return true,
            }
        }
        true
    }

    /// Waits until the body at `height`, if it was handed over, is checked
    /// (the thread takes them in order). A thread that is gone answers
    /// nothing more: the chain then checks the signatures itself.
    pub fn wait_for(&mut self, height: u64) {
        while self.done_to < height.min(self.sent_to) {
            match self.done.recv() {
                Ok(h) => self.done_to = self.done_to.max(h),
                Err(_) => return,
            }
        }
    }
}

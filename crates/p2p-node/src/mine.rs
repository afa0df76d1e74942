//! The mining seam: how a block template's proof of work is found.
//!
//! The core builds templates and accepts what comes back; *how* a nonce is
//! found is a [`Mine`]. [`HashMiner`] is the real one: chain-core's
//! multi-threaded SHA-256 search on a blocking thread. The simulator
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

/// Real hashing: [`Miner`] on `threads` threads, run on tokio's blocking
/// pool so the node's tasks keep running.
#[derive(Clone, Copy, Debug)]
pub struct HashMiner(Miner);

impl HashMiner {
    /// A miner on `threads` threads (at least one).
    pub fn new(threads: usize) -> HashMiner {
        HashMiner(Miner::new(threads.max(1)))
    }
}

impl Mine for HashMiner {
    fn mine(&self, template: Header, stop: CancellationToken) -> BoxFuture<'static, MineOutcome> {
        let miner = self.0;
        Box::pin(async move {
            let flag = Arc::new(AtomicBool::new(false));
            let raised = flag.clone();
            let search = tokio::task::spawn_blocking(move || {
                miner
                    .mine(&template, &raised)
                    .unwrap_or(MineOutcome::Exhausted)
            });
            tokio::pin!(search);
            let done = tokio::select! {
                biased;
                done = &mut search => done,
                () = stop.cancelled() => {
                    flag.store(true, Ordering::Relaxed);
                    search.await
                }
            };
            done.unwrap_or(MineOutcome::Exhausted)
        })
    }
}

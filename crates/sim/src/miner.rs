//! The simulated miner (the node's mining seam, `p2p_node::pow::Mine`):
//! a [`Lottery`] draws who finds the next block, and when, as a Poisson
//! process per node at its share of the hash power; [`SimMiner`] waits for
//! its node's find and solves the template at the simulated chain's
//! trivial target.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chain_core::Header;
use chain_core::miner::{Job, Kernel, MineOutcome};
use futures::future::BoxFuture;
use p2p_node::clock::Clock;
use p2p_node::pow::{Mine, Urgency};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::clock::SimClock;
use crate::rng::SimRng;

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
    pub(crate) fn next_find(&mut self, node: usize) -> Option<Instant> {
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
    pub(crate) fn claim(&mut self, node: usize, at: Instant) -> bool {
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
        _urgency: Urgency,
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

/// A block on `parent` of `tree` (any block it holds, not only its tip)
/// holding a coinbase paying `to` and then `txs`, stamped `now_ms` and
/// solved at the simulated chain's trivial target: the blocks of a miner
/// that chooses its parent (the selfish pool, the eclipse's attacker).
/// `None` if the tree lacks `parent` or no nonce solves it.
pub(crate) fn solved_block(
    tree: &p2p_node::core::NodeChain,
    parent: chain_core::BlockHash,
    to: escrow::Address,
    txs: &[escrow::SignedTx],
    now_ms: u64,
) -> Option<chain_core::Block<escrow::Tx>> {
    let height = tree.header(&parent)?.height + 1;
    let mut transactions = vec![escrow::Tx::Coinbase { to, height }];
    transactions.extend(txs.iter().cloned().map(escrow::Tx::Signed));
    let mut header = tree.template_on(&parent, &transactions, now_ms)?;
    let job = Job::new(&header).ok()?;
    header.nonce = Kernel::Portable.scan(&job, 0, 1 << 20)?;
    Some(chain_core::Block {
        header,
        transactions,
    })
}

//! The safety checks a run makes on every node (see `docs/SIMULATION.md`,
//! "A run's phases and what is checked"): the watchers that follow each
//! node's events, the periodic round that settles blocks, and the probe
//! each of them runs inside a query on the node's own state.

use std::sync::Arc;

use chain_core::{BlockHash, TxId};
use escrow::{Action, Amount};
use tokio::time::Instant;

use super::world::{World, lock};
use crate::core::{NodeEvent, NodeView};
use crate::node::NodeHandle;

/// A block with this many blocks on top of it on every node is settled:
/// from then on no node's best chain may ever lose it.
pub const SETTLED_DEPTH: u64 = 2;

/// What one look at a node found.
pub(crate) struct Probe {
    pub height: u64,
    pub tip: BlockHash,
    pub mempool: usize,
    /// The best chain's block at each height asked about.
    pub at_heights: Vec<Option<BlockHash>>,
    /// Which of the transactions asked about are on the best chain.
    pub confirmed: Vec<usize>,
    /// A broken invariant, in words.
    pub problem: Option<String>,
}

/// What to look at.
pub(crate) struct Ask {
    /// The genesis allocations' sum.
    pub genesis_total: Amount,
    /// Heights whose best-chain block is wanted.
    pub heights: Vec<u64>,
    /// Outstanding transactions (user, id) to look for.
    pub waiting: Vec<(usize, TxId)>,
    /// Check conservation (one pass over accounts and contracts).
    pub supply: bool,
    /// Also walk every contract's history (another pass over contracts).
    pub contracts: bool,
}

pub(crate) fn probe(view: &NodeView<'_>, ask: &Ask) -> Probe {
    let chain = view.chain;
    let height = chain.height();
    let best = chain.best_chain();
    let ledger = chain.state();
    let mut problem = None;
    // Conservation: balances plus funds held by open contracts equal the
    // genesis allocations plus one reward per block.
    let expected = u128::from(ask.genesis_total.get())
        + u128::from(ledger.coinbase_reward().get()) * u128::from(height);
    match ledger.total_supply().filter(|_| ask.supply) {
        None if !ask.supply => {}
        Some(held) if u128::from(held.get()) == expected => {}
        Some(held) => {
            problem = Some(format!(
                "supply: balances plus escrowed funds are {} at height {height}, \
                 genesis plus rewards is {expected}",
                held.get()
            ));
        }
        None => problem = Some("supply: the sum of balances overflows".to_string()),
    }
    if ask.contracts && problem.is_none() {
        problem = ledger.contracts().values().find_map(|c| {
            let payouts = c
                .history
                .iter()
                .filter(|h| {
                    matches!(
                        h.action,
                        Action::DeliveryConfirmed | Action::Resolved(_) | Action::Refunded
                    )
                })
                .count();
            if payouts > 1 {
                Some(format!("contract {} paid out {payouts} times", c.id))
            } else if c.state.is_final() != (payouts == 1) {
                Some(format!(
                    "contract {} is {} with {payouts} payouts in its history",
                    c.id,
                    c.state.name()
                ))
            } else {
                None
            }
        });
    }
    let at = |h: u64| usize::try_from(h).ok().and_then(|i| best.get(i)).copied();
    Probe {
        height,
        tip: chain.tip(),
        mempool: view.mempool.len(),
        at_heights: ask.heights.iter().map(|h| at(*h)).collect(),
        confirmed: ask
            .waiting
            .iter()
            .filter(|(_, id)| view.tx_block(id).is_some())
            .map(|(u, _)| *u)
            .collect(),
        problem,
    }
}

impl World {
    /// Follows node `i`'s events: stamps blocks, checks the node after
    /// every tip change, notes confirmations.
    pub(super) async fn watch(
        self: Arc<Self>,
        i: usize,
        handle: NodeHandle,
        mut events: tokio::sync::broadcast::Receiver<NodeEvent>,
    ) {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            let event = tokio::select! {
                biased;
                () = handle.stopped() => break,
                e = events.recv() => e,
            };
            match event {
                Ok(NodeEvent::Tip { hash, undone, .. }) => {
                    self.stamp(i, hash);
                    if undone > 0 {
                        *lock(&self.shared).reorgs.entry(undone as u64).or_insert(0) += 1;
                    }
                    self.fetch(i, &handle, hash).await;
                    self.check_node(i, &handle, undone > 0).await;
                }
                Ok(NodeEvent::Fork { hash, .. }) => {
                    self.stamp(i, hash);
                    self.fetch(i, &handle, hash).await;
                }
                Err(RecvError::Lagged(_)) => {
                    // Events were missed (a burst, such as a sync): the
                    // tip changed, perhaps by a reorganisation, so check
                    // everything.
                    self.check_node(i, &handle, true).await;
                }
                Ok(_) => {}
                Err(RecvError::Closed) => break,
            }
        }
    }

    fn stamp(&self, i: usize, hash: BlockHash) {
        let now = Instant::now();
        lock(&self.shared)
            .stamps
            .entry(hash)
            .or_default()
            .entry(i)
            .or_insert(now);
    }

    /// Brings `hash` and the ancestors the reference lacks from node `i`
    /// into the reference tree, which validates each again.
    async fn fetch(&self, i: usize, handle: &NodeHandle, hash: BlockHash) {
        let mut missing = Vec::new();
        let mut next = hash;
        loop {
            if lock(&self.shared).reference.block(&next).is_some() {
                break;
            }
            let Ok(Some(block)) = handle.query(move |v| v.chain.block(&next)).await else {
                break;
            };
            next = block.header.parent;
            missing.push(block);
        }
        let now_ms = crate::clock::Clock::now_ms(&self.clock);
        for block in missing.into_iter().rev() {
            let hash = block.hash();
            let refused = lock(&self.shared)
                .reference
                .insert((*block).clone(), now_ms)
                .err();
            if let Some(e) = refused {
                self.violate(
                    "validity",
                    Some(i),
                    format!("block {hash} of node {i} fails validation: {e}"),
                );
                return;
            }
        }
    }

    /// Probes node `i` after a tip change: the settled block and
    /// confirmations always; conservation and contracts after a reorg
    /// (the periodic round checks conservation on every node too).
    async fn check_node(&self, i: usize, handle: &NodeHandle, contracts: bool) {
        let (settled, waiting) = {
            let s = lock(&self.shared);
            (s.settled, s.load.waiting_at(i))
        };
        let ask = Ask {
            genesis_total: self.genesis_total,
            heights: settled.map(|(h, _)| vec![h]).unwrap_or_default(),
            waiting,
            supply: contracts,
            contracts,
        };
        let Ok(probe) = handle.query(move |v| probe(v, &ask)).await else {
            return;
        };
        self.judge(i, &probe, settled, contracts);
        let now = Instant::now();
        let mut s = lock(&self.shared);
        for user in probe.confirmed {
            s.load.confirmed(user, now);
        }
    }

    pub(super) fn judge(
        &self,
        i: usize,
        probe: &Probe,
        settled: Option<(u64, BlockHash)>,
        contracts: bool,
    ) {
        if let Some(problem) = &probe.problem {
            let check = if contracts && problem.starts_with("contract") {
                "contracts"
            } else {
                "supply"
            };
            self.violate(check, Some(i), problem.clone());
            return;
        }
        if let Some((h, hash)) = settled
            && probe.height >= h
            && probe.at_heights.first().copied().flatten() != Some(hash)
        {
            self.violate(
                "settled",
                Some(i),
                format!(
                    "node {i}'s best chain lost block {hash} at height {h}, which every node \
                     had with {SETTLED_DEPTH} blocks on top"
                ),
            );
        }
    }

    pub(super) async fn probe_all(&self, ask: impl Fn() -> Ask) -> Vec<Option<Probe>> {
        let mut out = Vec::new();
        for h in self.handles() {
            let probe = match h {
                Some(h) => {
                    let a = ask();
                    h.query(move |v| probe(v, &a)).await.ok()
                }
                None => None,
            };
            out.push(probe);
        }
        out
    }

    /// Every `check_every`: the settled block is still on every node, and
    /// a higher block may become settled.
    pub(super) async fn settle_loop(self: Arc<Self>) {
        loop {
            tokio::time::sleep(self.opts.check_every).await;
            if self.abort.is_cancelled() {
                return;
            }
            self.settle_round().await;
        }
    }

    /// Checks every node that is up: conservation, the settled block,
    /// and (with `contracts`) every contract's history. Returns the
    /// probes, `None` for a node that is down.
    pub(super) async fn check_all(&self, contracts: bool) -> Vec<Option<Probe>> {
        let settled = lock(&self.shared).settled;
        let total = self.genesis_total;
        let probes = self
            .probe_all(|| Ask {
                genesis_total: total,
                heights: settled.map(|(h, _)| vec![h]).unwrap_or_default(),
                waiting: Vec::new(),
                supply: true,
                contracts,
            })
            .await;
        for (i, p) in probes.iter().enumerate() {
            if let Some(p) = p {
                self.judge(i, p, settled, contracts);
            }
        }
        probes
    }

    async fn settle_round(&self) {
        let settled = lock(&self.shared).settled;
        let total = self.genesis_total;
        let probes = self.check_all(false).await;
        // Every node up: is a higher block settled?
        let Some(heights) = probes
            .iter()
            .map(|p| p.as_ref().map(|p| p.height))
            .collect::<Option<Vec<u64>>>()
        else {
            return;
        };
        let Some(k) = heights
            .iter()
            .min()
            .and_then(|m| m.checked_sub(SETTLED_DEPTH))
        else {
            return;
        };
        if k == 0 || settled.is_some_and(|(h, _)| h >= k) {
            return;
        }
        let at_k = self
            .probe_all(|| Ask {
                genesis_total: total,
                heights: vec![k],
                waiting: Vec::new(),
                supply: false,
                contracts: false,
            })
            .await;
        let hashes: Vec<Option<BlockHash>> = at_k
            .iter()
            .map(|p| {
                p.as_ref()
                    .and_then(|p| p.at_heights.first().copied().flatten())
            })
            .collect();
        if let Some(Some(first)) = hashes.first()
            && hashes.iter().all(|h| *h == Some(*first))
        {
            lock(&self.shared).settled = Some((k, *first));
        }
    }
}

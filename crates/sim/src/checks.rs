//! The safety checks a run makes on every node (see `docs/SIMULATION.md`,
//! "A run's phases and what is checked"): the watchers that follow each
//! node's events and the periodic round that settles blocks, each running
//! the probe (`probe.rs`) inside a query on the node's own state.

use std::sync::Arc;

use chain_core::BlockHash;
use p2p_node::store::BlockStore;
use p2p_node::{NodeEvent, NodeHandle};
use tokio::time::Instant;

use crate::probe::{Ask, Probe, probe};
use crate::world::{World, lock};

/// A block with this many blocks on top of it on every node is settled:
/// from then on no node's best chain may ever lose it.
pub const SETTLED_DEPTH: u64 = 2;

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
                    self.durable(i, hash);
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

    /// A node tells of a tip only once it is durable (the store has it),
    /// as it announces a block to its peers only then: a failed commit
    /// announces nothing.
    fn durable(&self, i: usize, hash: BlockHash) {
        let Some(store) = lock(&self.slots).get(i).map(|s| s.store.clone()) else {
            return;
        };
        if !matches!(store.block(&hash), Ok(Some(_))) {
            self.violate(
                "durability",
                Some(i),
                format!("node {i} told of block {hash} as its tip before its store had it"),
            );
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
        let now_ms = p2p_node::clock::Clock::now_ms(&self.clock);
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
            supply_checked_at: None,
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
            if self.opts.selfish.is_some() {
                // A selfish pool with a lead of three or more undoes blocks
                // that every node had with two on top: the attack's effect,
                // counted (`selfish.rs`), not a fault of the nodes.
                let mut s = lock(&self.shared);
                if s.settled == Some((h, hash)) {
                    s.pool.settled_lost += 1;
                    s.settled = None;
                }
                return;
            }
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

    /// The tip at which node `i`'s conservation was last checked; with
    /// `now`, records that it was checked at that tip.
    fn supply_checked_at(&self, i: usize, now: Option<BlockHash>) -> Option<BlockHash> {
        let mut slots = lock(&self.slots);
        let slot = slots.get_mut(i)?;
        if now.is_some() {
            slot.supply_checked_at = now;
        }
        slot.supply_checked_at
    }

    pub(super) async fn probe_all(&self, ask: impl Fn() -> Ask) -> Vec<Option<Probe>> {
        let mut out = Vec::new();
        for (i, h) in self.handles().into_iter().enumerate() {
            let probe = match h {
                Some(h) => {
                    let mut a = ask();
                    let supply = a.supply;
                    if supply {
                        a.supply_checked_at = self.supply_checked_at(i, None);
                    }
                    let p = h.query(move |v| probe(v, &a)).await.ok();
                    if let Some(p) = p.as_ref().filter(|_| supply) {
                        self.supply_checked_at(i, Some(p.tip));
                    }
                    p
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
                supply_checked_at: None,
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
                supply_checked_at: None,
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

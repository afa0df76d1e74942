//! A selfish mining pool (Eyal and Sirer, "Majority is not enough", 2014:
//! their strategy SM1), run against the real nodes.
//!
//! The pool is node 0: a real node, which relays, validates and follows
//! the best chain like any other, with its own mining off. The pool's
//! miner is this module: it draws the pool's finds from the [`Lottery`]
//! at the pool's share α of the hash power, builds each block on the
//! pool's private tip (a coinbase-only block, by the same chain rules:
//! `Chain::template_on`), keeps it, and publishes what [`Sm1`] says
//! through its node (`NodeHandle::submit_block` with
//! `BlockRelay::Always`, so that a block racing an honest one is relayed
//! even where the pool's own node prefers the honest one). It learns of
//! honest blocks from its node's tip events, as a real pool would from
//! its own node.
//!
//! γ, the share of the honest power that mines on the pool's block during
//! a race, is not an input: it is measured from the block tree ([`report`]).
//!
//! [`Lottery`]: crate::miner::Lottery

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chain_core::{Block, BlockHash};
use escrow::{Address, Tx};
use p2p_node::NodeEvent;
use p2p_node::clock::Clock;
use p2p_node::core::{BlockRelay, NodeChain};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::net::host_addr;
use crate::options::{Selfish, SimOptions};
use crate::records::{PoolRecord, Race};
use crate::report::{SelfishReport, TreeBlock, closed_form_revenue};
use crate::rng::SimRng;
use crate::world::{World, lock};

/// The pool's node.
pub(crate) const POOL: usize = 0;

/// What SM1 does next with the private branch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Act {
    /// Nothing.
    Wait,
    /// Publish these blocks of the private branch, in order.
    Publish(Vec<BlockHash>),
    /// The public chain is longer: abandon the private branch and mine on
    /// the public tip.
    Adopt,
}

/// SM1's state: the public block the private branch starts from, the
/// pool's blocks on it, how many of them are published, and whether a
/// published block of the pool races an honest one of the same height
/// (Eyal and Sirer's state 0').
#[derive(Clone, Debug)]
pub(crate) struct Sm1 {
    base: (BlockHash, u64),
    private: Vec<BlockHash>,
    published: usize,
    racing: bool,
}

impl Sm1 {
    /// Mining on `base` at `height`, nothing withheld.
    pub(crate) fn new(base: BlockHash, height: u64) -> Sm1 {
        Sm1 {
            base: (base, height),
            private: Vec::new(),
            published: 0,
            racing: false,
        }
    }

    /// The block the pool mines on: its private tip.
    pub(crate) fn parent(&self) -> BlockHash {
        self.private.last().copied().unwrap_or(self.base.0)
    }

    /// The private tip's height.
    pub(crate) fn height(&self) -> u64 {
        self.base.1 + self.private.len() as u64
    }

    /// How many blocks the pool withholds.
    pub(crate) fn withheld(&self) -> usize {
        self.private.len() - self.published
    }

    fn publish_through(&mut self, count: usize) -> Act {
        let count = count.min(self.private.len());
        if count <= self.published {
            return Act::Wait;
        }
        let out = self.private[self.published..count].to_vec();
        self.published = count;
        Act::Publish(out)
    }

    /// The pool found `block` on [`Sm1::parent`]: kept, unless it settles
    /// a race (state 0'), where it is published at once and wins.
    pub(crate) fn found(&mut self, block: BlockHash) -> Act {
        self.private.push(block);
        if self.racing {
            self.racing = false;
            return self.publish_through(self.private.len());
        }
        Act::Wait
    }

    /// The pool's node moved its tip to `tip` at `height`.
    pub(crate) fn public_tip(&mut self, tip: BlockHash, height: u64) -> Act {
        if tip == self.base.0 || self.private.contains(&tip) {
            // The node follows the pool's own branch. Once the network has
            // everything the pool found and no race is open, the branch's
            // tip is the new base (state 0).
            if !self.racing && self.withheld() == 0 && self.private.last() == Some(&tip) {
                *self = Sm1::new(tip, height);
            }
            return Act::Wait;
        }
        // An honest block.
        let ours = self.height();
        if height > ours {
            *self = Sm1::new(tip, height);
            return Act::Adopt;
        }
        let depth = |h: u64| usize::try_from(h.saturating_sub(self.base.1)).unwrap_or(usize::MAX);
        if height == ours {
            // A lead of one, matched: publish it and race (0'). A block
            // already published (the race is on) changes nothing.
            if self.withheld() > 0 {
                self.racing = true;
                return self.publish_through(self.private.len());
            }
            return Act::Wait;
        }
        self.racing = false;
        if height + 1 == ours {
            // A lead of two, cut to one: publish everything and win.
            self.publish_through(self.private.len())
        } else {
            // A longer lead: publish up to the honest height, keep the rest.
            self.publish_through(depth(height))
        }
    }
}

impl SimOptions {
    /// Checks the pool's options against the run's ([`check_options`]).
    pub(crate) fn check_selfish(&self) -> Result<(), String> {
        check_options(self)
    }

    /// The hash power shares with the pool's, if there is one
    /// ([`share_power`]).
    pub(crate) fn share_selfish_power(&self, shares: &mut [f64]) {
        if let Some(pool) = self.selfish {
            share_power(shares, pool.power);
        }
    }

    /// The pool's node ([`configure`]) and its links ([`fix_links`]).
    pub(crate) fn set_up_pool(&self, config: &mut p2p_node::NodeConfig, net: &crate::net::SimNet) {
        configure(config, self);
        fix_links(net, self);
    }
}

/// Checks the pool's options against the run's.
fn check_options(opts: &SimOptions) -> Result<(), String> {
    let Some(pool) = opts.selfish else {
        return Ok(());
    };
    if !(pool.power > 0.0 && pool.power < 0.5) {
        return Err("the selfish pool's power must be above 0 and below 0.5".into());
    }
    if opts.nodes < 2 {
        return Err("a selfish pool needs at least one honest node beside it".into());
    }
    if pool.peers == 0 || pool.peers >= opts.nodes {
        return Err(format!(
            "the selfish pool dials 1 to {} honest nodes, not {}",
            opts.nodes - 1,
            pool.peers
        ));
    }
    if opts.faults.is_some() {
        return Err("a selfish pool runs without the swarm's faults".into());
    }
    Ok(())
}

/// The hash power shares with the pool's: node [`POOL`] gets α of the
/// total, the honest nodes share the rest as they drew it.
fn share_power(shares: &mut [f64], power: f64) {
    let honest: f64 = shares.iter().skip(1).sum();
    if let Some(pool) = shares.first_mut() {
        *pool = honest * power / (1.0 - power);
    }
}

/// The pool's node: its own mining off (the pool mines here), `peers`
/// honest nodes to dial (drawn from the seed's stream 11), no inbound
/// connection.
fn configure(config: &mut p2p_node::NodeConfig, opts: &SimOptions) {
    let Some(pool) = opts.selfish else { return };
    config.mining = p2p_node::MiningMode::Off;
    let mut rng = SimRng::stream(opts.seed, 11);
    let mut peers = Vec::new();
    while peers.len() < pool.peers.min(opts.nodes - 1) {
        let addr = host_addr(1 + rng.below(opts.nodes - 1));
        if !peers.contains(&addr) {
            peers.push(addr);
        }
    }
    config.peers = peers;
    config.max_outbound = pool.peers;
    config.max_inbound = 0;
}

impl World {
    /// The pool's miner, until the main phase ends (the pool then stops:
    /// what it still withholds is never published, and counts as stale).
    pub(crate) async fn selfish_loop(self: Arc<Self>, stop: CancellationToken) {
        let Some(node) = self.handle(POOL) else {
            return;
        };
        let Ok(mut tree) = self.genesis.chain() else {
            return;
        };
        let to = self.pool_address();
        let mut events = node.subscribe();
        let mut sm = Sm1::new(tree.genesis_hash(), 0);
        let mut own: HashMap<BlockHash, Block<Tx>> = HashMap::new();
        loop {
            let next = lock(&self.lottery).next_find(POOL);
            let Some(at) = next else { return };
            let act = tokio::select! {
                biased;
                () = stop.cancelled() => return,
                event = events.recv() => match event {
                    Ok(NodeEvent::Tip { .. }) | Err(RecvError::Lagged(_)) => {
                        let Some((tip, height)) = learn(&node, &mut tree, self.clock.now_ms()).await
                        else { return };
                        let act = sm.public_tip(tip, height);
                        if let (Act::Publish(blocks), Some(&pool)) = (&act, sm.private.last())
                            && sm.racing && blocks.last() == Some(&pool)
                        {
                            lock(&self.shared).pool.races.push(Race {
                                height, pool, honest: tip, at: Instant::now(),
                            });
                        }
                        act
                    }
                    Ok(_) => Act::Wait,
                    Err(RecvError::Closed) => return,
                },
                () = tokio::time::sleep_until(at) => {
                    if !lock(&self.lottery).claim(POOL, at) {
                        continue;
                    }
                    let Some(block) = crate::miner::solved_block(&tree, sm.parent(), to, &[], self.clock.now_ms()) else { return };
                    let hash = block.hash();
                    if tree.insert(block.clone(), self.clock.now_ms()).is_err() {
                        return;
                    }
                    own.insert(hash, block);
                    lock(&self.shared).pool.found += 1;
                    sm.found(hash)
                }
            };
            if let Act::Publish(hashes) = act {
                for hash in hashes {
                    if let Some(block) = own.get(&hash)
                        && node
                            .submit_block(block.clone(), BlockRelay::Always)
                            .await
                            .is_err()
                    {
                        return;
                    }
                }
            }
        }
    }

    /// The address the pool's blocks pay: node [`POOL`]'s miner account.
    fn pool_address(&self) -> Address {
        self.miners
            .iter()
            .find(|(_, i)| **i == POOL)
            .map(|(a, _)| *a)
            .unwrap_or(Address::from_bytes([0; 32]))
    }
}

/// Asks `node` for its tip and the blocks of its best chain that `tree`
/// lacks (walking back further until they join what the tree holds), and
/// puts them into the tree (their contexts give a miner's blocks their
/// targets and timestamps). `None` once the node stopped.
pub(crate) async fn learn(
    node: &p2p_node::NodeHandle,
    tree: &mut NodeChain,
    now_ms: u64,
) -> Option<(BlockHash, u64)> {
    let mut depth = 64usize;
    loop {
        let (tip, height, recent) = node
            .query(move |v| {
                let mut recent = Vec::new();
                let mut at = v.chain.tip();
                while recent.len() < depth {
                    let Some(block) = v.chain.block(&at) else {
                        break;
                    };
                    at = block.header.parent;
                    let genesis = block.header.height == 0;
                    recent.push(block);
                    if genesis {
                        break;
                    }
                }
                (v.chain.tip(), v.chain.height(), recent)
            })
            .await
            .ok()?;
        let joins = recent
            .last()
            .is_none_or(|b| b.header.height == 0 || tree.contains(&b.header.parent));
        if joins || recent.len() < depth {
            for block in recent.into_iter().rev() {
                if !tree.contains(&block.hash()) {
                    // A block the node accepted is valid; a failure here
                    // only leaves the miner without it as a parent.
                    let _ = tree.insert((*block).clone(), now_ms);
                }
            }
            return Some((tip, height));
        }
        depth = depth.saturating_mul(4);
    }
}

/// The pool's figures from the final block tree, when each block was first
/// had by any node (`first_seen`), and the pool's record.
pub(crate) fn report(
    pool: Selfish,
    tree: &[TreeBlock],
    first_seen: &BTreeMap<BlockHash, Instant>,
    record: &PoolRecord,
) -> SelfishReport {
    let found = |by_pool: bool| {
        tree.iter()
            .filter(|b| b.height > 0 && (b.miner == Some(POOL)) == by_pool)
            .count() as u64
    };
    let best: Vec<&TreeBlock> = {
        let mut best: Vec<_> = tree.iter().filter(|b| b.best && b.height > 0).collect();
        best.sort_by_key(|b| b.height);
        best
    };
    let pool_best = best.iter().filter(|b| b.miner == Some(POOL)).count() as u64;
    let best_len = best.len() as u64;
    let revenue = pool_best as f64 / best_len.max(1) as f64;
    // Batch means: 20 stretches of the best chain.
    let batches: Vec<f64> = best
        .chunks(best.len().div_ceil(20).max(1))
        .map(|c| c.iter().filter(|b| b.miner == Some(POOL)).count() as f64 / c.len() as f64)
        .collect();
    let k = batches.len() as f64;
    let mean = batches.iter().sum::<f64>() / k.max(1.0);
    let var = batches.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (k - 1.0).max(1.0);
    let revenue_se = if k > 1.0 { (var / k).sqrt() } else { 0.0 };
    // Every block found: the tree's, and the pool's never published.
    let (pool_published, honest_found) = (found(true), found(false));
    let all = honest_found + record.found.max(pool_published);
    let stale = all.saturating_sub(best_len);
    // γ: for each race, the first block at the next height on either
    // racer, found after the race began; counted when an honest miner
    // found it.
    let (mut decided, mut on_pool) = (0u64, 0u64);
    for race in &record.races {
        let parent_of = |b: &TreeBlock| b.parent.and_then(|p| tree.get(p)).map(|p| p.hash);
        let first = tree
            .iter()
            .filter(|b| b.height == race.height + 1)
            .filter(|b| matches!(parent_of(b), Some(p) if p == race.pool || p == race.honest))
            .filter_map(|b| first_seen.get(&b.hash).map(|t| (*t, b)))
            .filter(|(t, _)| *t >= race.at)
            .min_by_key(|(t, b)| (*t, b.hash));
        if let Some((_, b)) = first
            && b.miner != Some(POOL)
        {
            decided += 1;
            if parent_of(b) == Some(race.pool) {
                on_pool += 1;
            }
        }
    }
    let gamma = (decided > 0).then(|| on_pool as f64 / decided as f64);
    let gamma_se = gamma.map(|g| (g * (1.0 - g) / decided as f64).sqrt());
    SelfishReport {
        power: pool.power,
        peers: pool.peers,
        link_ms: pool.link_ms,
        revenue: round6(revenue),
        revenue_se: round6(revenue_se),
        honest_share: round6(1.0 - revenue),
        pool_found: record.found,
        pool_best,
        honest_found,
        honest_best: best_len - pool_best,
        stale_rate: round6(stale as f64 / all.max(1) as f64),
        races_decided_by_honest: decided,
        settled_lost: record.settled_lost,
        gamma: gamma.map(round6),
        gamma_se: gamma_se.map(round6),
        closed_form_revenue: round6(closed_form_revenue(pool.power, gamma.unwrap_or(0.0))),
    }
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// The pool's links, if fixed: every link of node [`POOL`]'s host.
fn fix_links(net: &crate::net::SimNet, opts: &SimOptions) {
    if let Some(Selfish {
        link_ms: Some(ms), ..
    }) = opts.selfish
    {
        net.fix_links(POOL, 0..opts.nodes, Duration::from_millis(ms));
    }
}

#[cfg(test)]
#[path = "selfish_tests.rs"]
mod tests;

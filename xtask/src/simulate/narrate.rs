//! Waiting for the nodes while telling what they do: which node accepted a
//! transaction, which block (mined by which node) holds it on which nodes,
//! forks, reorganisations, and the settling of ties.
//!
//! Ids are printed as prefixes users can copy: 12 hex digits of a
//! transaction id or a block hash, 8 of a contract id.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::net::{Net, prefix};
use super::setup::{INTERRUPTED, SETTLE_PATIENCE, STEP_TIMEOUT};

/// Hex digits printed of a transaction id or a block hash.
pub(super) const ID_DIGITS: usize = 12;

/// `node 2`, or `an account of no demo node`, for a block's miner.
fn miner_words(miner: Option<usize>) -> String {
    miner.map_or_else(
        || "an account of no demo node".to_string(),
        |m| format!("node {m}"),
    )
}

fn list(nodes: &[usize]) -> String {
    nodes
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Net {
    /// One poll's pause; stops every wait on Ctrl-C. Draws a spinner on a
    /// terminal.
    pub(super) fn tick(&mut self) -> anyhow::Result<()> {
        if INTERRUPTED.load(Ordering::SeqCst) {
            bail!("interrupted");
        }
        if std::io::stderr().is_terminal() {
            const FRAMES: [char; 4] = ['|', '/', '-', '\\'];
            self.spinner = (self.spinner + 1) % FRAMES.len();
            eprint!("\r{} ", FRAMES[self.spinner]);
            let _ = std::io::stderr().flush();
        }
        std::thread::sleep(Duration::from_millis(5));
        Ok(())
    }

    pub(super) fn clear_spinner(&self) {
        if std::io::stderr().is_terminal() {
            eprint!("\r  \r");
        }
    }

    /// Narrates reorganisations since the last look.
    pub(super) fn narrate_reorgs(&mut self) {
        let seen: Vec<(usize, u64, u64)> = self
            .live()
            .map(|n| {
                let m = self.metrics(n);
                let get = |name: &str| m.get(name).copied().unwrap_or(0);
                (
                    n.index,
                    get("node_reorgs_total"),
                    get("node_reorg_max_depth"),
                )
            })
            .collect();
        for (index, count, depth) in seen {
            let before = self.reorgs.insert(index, count).unwrap_or(0);
            if count > before {
                self.clear_spinner();
                println!(
                    "    node {index} reorganised onto the chain fork choice prefers (deepest so far: {depth} block{})",
                    if depth == 1 { "" } else { "s" }
                );
            }
        }
    }

    /// Which demo node mined `block` (asked of `holder`, which has it),
    /// remembered once known.
    fn block_miner(&mut self, holder: usize, block: &str) -> anyhow::Result<Option<usize>> {
        if let Some(known) = self.block_miners.get(block) {
            return Ok(*known);
        }
        let answer = self.get(self.node(holder)?, &format!("/blocks/{block}"))?;
        let coinbase = answer["transactions"]
            .as_array()
            .and_then(|txs| txs.first())
            .filter(|tx| tx["kind"] == "coinbase")
            .and_then(|tx| tx["to"].as_str());
        let miner = coinbase.and_then(|to| self.miner_node(to));
        self.block_miners.insert(block.to_string(), miner);
        Ok(miner)
    }

    /// Submits a signed transaction through `node` and narrates until every
    /// live node has it in the same block.
    pub(super) fn step(&mut self, node: usize, what: &str, args: &[&str]) -> anyhow::Result<Value> {
        println!("\n{what}");
        let answer = self.client(node, args)?;
        let id = answer["id"]
            .as_str()
            .context("the client's answer has no transaction id")?
            .to_string();
        let kind = match args {
            ["escrow", action, ..] => format!("escrow {action}"),
            [first, ..] => (*first).to_string(),
            [] => String::new(),
        };
        let fee = answer["fee"].as_u64().unwrap_or(0);
        println!(
            "  → node {node} accepted {kind}: tx {}, fee {fee} (the node's estimate)",
            prefix(&id, ID_DIGITS)
        );
        self.wait_included(&id)?;
        Ok(answer)
    }

    /// Waits until every live node has transaction `id` in the same block,
    /// narrating each block that holds it and the node that mined it.
    pub(super) fn wait_included(&mut self, id: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + STEP_TIMEOUT;
        let mut reported: BTreeSet<String> = BTreeSet::new();
        let mut last_counts = Vec::new();
        let mut split_since: Option<Instant> = None;
        loop {
            let mut blocks: BTreeMap<String, (u64, Vec<usize>)> = BTreeMap::new();
            let total = self.live().count();
            for n in self.live() {
                let tx = self.get(n, &format!("/txs/{id}"))?;
                if tx["status"] == "confirmed"
                    && let Some(block) = tx["block"].as_str()
                {
                    let entry = blocks
                        .entry(block.to_string())
                        .or_insert((tx["height"].as_u64().unwrap_or(0), Vec::new()));
                    entry.1.push(n.index);
                }
            }
            for (block, (height, nodes)) in &blocks {
                if reported.insert(block.clone()) {
                    let holder = nodes.first().copied().unwrap_or(0);
                    let miner = self.block_miner(holder, block)?;
                    self.clear_spinner();
                    println!(
                        "    block #{height} {} mined by {} includes it; on the best chain of node{} {} so far",
                        prefix(block, ID_DIGITS),
                        miner_words(miner),
                        if nodes.len() == 1 { "" } else { "s" },
                        list(nodes)
                    );
                }
            }
            self.narrate_reorgs();
            let counts: Vec<usize> = blocks.values().map(|(_, n)| n.len()).collect();
            if counts != last_counts {
                self.clear_spinner();
                let parts: Vec<String> = blocks
                    .iter()
                    .map(|(b, (_, n))| format!("{}/{total} in {}", n.len(), prefix(b, ID_DIGITS)))
                    .collect();
                println!("    nodes that have it: {}", parts.join(", "));
                last_counts = counts.clone();
            }
            let confirmed: usize = counts.iter().sum();
            if blocks.len() == 1 && confirmed == total {
                return Ok(());
            }
            // Competing blocks of equal work that hold it: once both have
            // reached every node, all follow the smaller hash. Should they
            // still disagree after a while (a block that did not reach
            // everyone), one more block settles it.
            if blocks.len() > 1 && confirmed == total {
                let since = *split_since.get_or_insert_with(Instant::now);
                if since.elapsed() > SETTLE_PATIENCE {
                    let first = self.live().next().context("no live node")?;
                    self.clear_spinner();
                    println!(
                        "    competing blocks of equal work: node {} mines one more block to settle it",
                        first.index
                    );
                    self.post(first, "/mine", json!({"blocks": 1}))?;
                    split_since = None;
                }
            } else {
                split_since = None;
            }
            if Instant::now() > deadline {
                bail!(
                    "transaction {} was not included by every node within {} s",
                    prefix(id, ID_DIGITS),
                    STEP_TIMEOUT.as_secs()
                );
            }
            self.tick()?;
        }
    }

    /// Waits until every live node has the same tip and an empty mempool.
    /// Tips of equal work converge on the smaller hash once every node has
    /// both; should they still disagree after a while, the first live node
    /// mines one block to settle it.
    pub(super) fn settle(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + STEP_TIMEOUT;
        let mut disagreeing_since: Option<Instant> = None;
        loop {
            let statuses: Vec<Value> = self
                .live()
                .map(|n| self.get(n, "/status"))
                .collect::<anyhow::Result<_>>()?;
            let tips: Vec<&str> = statuses
                .iter()
                .map(|s| s["tip"].as_str().unwrap_or(""))
                .collect();
            let pending: u64 = statuses
                .iter()
                .map(|s| s["mempool"].as_u64().unwrap_or(0))
                .sum();
            let agree = tips.windows(2).all(|w| w[0] == w[1]);
            self.narrate_reorgs();
            if agree && pending == 0 {
                self.clear_spinner();
                return Ok(());
            }
            if !agree && pending == 0 {
                let since = *disagreeing_since.get_or_insert_with(Instant::now);
                if since.elapsed() > SETTLE_PATIENCE {
                    let heights: Vec<u64> = statuses
                        .iter()
                        .map(|s| s["height"].as_u64().unwrap_or(0))
                        .collect();
                    let first = self.live().next().context("no live node")?;
                    self.clear_spinner();
                    println!(
                        "\n  tips of equal work at heights {heights:?}: node {} mines one block to settle it",
                        first.index
                    );
                    self.post(first, "/mine", json!({"blocks": 1}))?;
                    disagreeing_since = None;
                }
            } else {
                disagreeing_since = None;
            }
            if Instant::now() > deadline {
                let tips: Vec<String> = tips.iter().map(|t| prefix(t, ID_DIGITS)).collect();
                bail!(
                    "the nodes did not agree within {} s: tips {tips:?}, {pending} transactions pending",
                    STEP_TIMEOUT.as_secs()
                );
            }
            self.tick()?;
        }
    }

    /// Waits until every live node is connected to every other.
    pub(super) fn wait_mesh(&mut self) -> anyhow::Result<()> {
        let want = self.live().count().saturating_sub(1);
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let mut peers = Vec::new();
            for n in self.live() {
                peers.push(self.get(n, "/status")?["peers"].as_u64().unwrap_or(0));
            }
            if peers.iter().all(|p| *p == want as u64) {
                self.clear_spinner();
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the nodes did not connect in a full mesh within {} s: peers per node {peers:?}, \
                     {want} each expected",
                    STEP_TIMEOUT.as_secs()
                );
            }
            self.tick()?;
        }
    }

    /// Waits until the nodes of one side agree among themselves.
    pub(super) fn settle_side(&mut self, side: &[usize]) -> anyhow::Result<()> {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let mut tips = Vec::new();
            for i in side {
                let s = self.get(self.node(*i)?, "/status")?;
                tips.push((s["tip"].clone(), s["mempool"].as_u64().unwrap_or(0)));
            }
            if tips.windows(2).all(|w| w[0].0 == w[1].0) && tips.iter().all(|t| t.1 == 0) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "nodes {side:?} did not agree among themselves within {} s",
                    STEP_TIMEOUT.as_secs()
                );
            }
            self.tick()?;
        }
    }
}

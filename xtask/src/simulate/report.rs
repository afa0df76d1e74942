//! The final table and its checks: every node on one tip, the dev
//! accounts' balances exactly what the flows imply, each contract in its
//! final state, and each node's mining account holding 50 coins per block
//! of the best chain it mined.

use std::collections::BTreeMap;

use anyhow::bail;
use serde_json::Value;

use super::narrate::ID_DIGITS;
use super::net::{Net, NodeProc, prefix};
use super::setup::CONTRACT_DIGITS;
use super::setup::{ACCOUNTS, REWARD};

/// What the flows should leave behind.
pub(super) struct Expected {
    /// The dev accounts' balances (no dev account mines in the demo).
    pub(super) balances: BTreeMap<&'static str, u64>,
    /// Contract id → final state.
    pub(super) contracts: Vec<(String, &'static str)>,
}

fn state_name(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(o) => o.keys().next().cloned().unwrap_or_default(),
        _ => "?".to_string(),
    }
}

/// Most blocks `GET /blocks` answers at once.
const PAGE: u64 = 100;

/// How many blocks of `node`'s best chain (up to `height`) pay each
/// account, read from the coinbases.
fn blocks_per_miner(
    net: &Net,
    node: &NodeProc,
    height: u64,
) -> anyhow::Result<BTreeMap<String, u64>> {
    let mut mined = BTreeMap::new();
    let mut from = 1;
    while from <= height {
        let to = height.min(from + PAGE - 1);
        let page = net.get(node, &format!("/blocks?from={from}&to={to}"))?;
        let Some(blocks) = page.as_array() else {
            bail!("node {} did not answer blocks {from} to {to}", node.index);
        };
        for b in blocks {
            let coinbase = b["transactions"]
                .as_array()
                .and_then(|txs| txs.first())
                .filter(|tx| tx["kind"] == "coinbase")
                .and_then(|tx| tx["to"].as_str());
            match coinbase {
                Some(to) => *mined.entry(to.to_string()).or_insert(0) += 1,
                None => bail!(
                    "block #{} on node {} has no coinbase first",
                    b["height"],
                    node.index
                ),
            }
        }
        from = to + 1;
    }
    Ok(mined)
}

/// Prints the table per node and the block rewards, and checks them.
/// Returns whether all is well.
pub(super) fn report(net: &Net, expected: &Expected) -> anyhow::Result<bool> {
    println!("\nfinal state");
    print!("{:<6} {:>6}  {:<12}", "node", "height", "tip");
    for a in ACCOUNTS {
        print!(" {a:>9}");
    }
    for (id, _) in &expected.contracts {
        print!("  {:>9}", prefix(id, CONTRACT_DIGITS));
    }
    println!();
    let mut ok = true;
    let mut first: Option<(String, u64, BTreeMap<String, u64>)> = None;
    for n in net.live() {
        let status = net.get(n, "/status")?;
        let tip = status["tip"].as_str().unwrap_or("").to_string();
        let height = status["height"].as_u64().unwrap_or(0);
        print!(
            "{:<6} {:>6}  {:<12}",
            n.index,
            height,
            prefix(&tip, ID_DIGITS)
        );
        let mut problems = Vec::new();
        for a in ACCOUNTS {
            let balance = net.get(n, &format!("/accounts/{a}"))?["balance"]
                .as_u64()
                .unwrap_or(0);
            print!(" {balance:>9}");
            if let Some(want) = expected.balances.get(a)
                && balance != *want
            {
                problems.push(format!("{a} has {balance}, expected {want}"));
            }
        }
        for (id, want) in &expected.contracts {
            let c = net.get(n, &format!("/contracts/{id}"))?;
            let state = state_name(&c["state"]);
            print!("  {state:>9}");
            if state != *want {
                problems.push(format!(
                    "contract {} is {state}, expected {want}",
                    prefix(id, CONTRACT_DIGITS)
                ));
            }
        }
        println!();
        // Each miner's balance on this node: 50 per block of its best
        // chain that pays it.
        let mined = blocks_per_miner(net, n, height)?;
        if mined.values().sum::<u64>() != height {
            problems.push(format!(
                "{} coinbases on a chain of height {height}",
                mined.values().sum::<u64>()
            ));
        }
        for (to, _) in mined.iter().filter(|(to, _)| net.miner_node(to).is_none()) {
            problems.push(format!("blocks pay {to}, the account of no demo node"));
        }
        for m in &net.nodes {
            let blocks = mined.get(&m.miner).copied().unwrap_or(0);
            let balance = net.get(n, &format!("/accounts/{}", m.miner))?["balance"]
                .as_u64()
                .unwrap_or(0);
            if balance != REWARD * blocks {
                problems.push(format!(
                    "node {}'s mining account {} has {balance}, expected {} ({blocks} blocks × {REWARD})",
                    m.index,
                    m.miner,
                    REWARD * blocks
                ));
            }
        }
        match &first {
            None => first = Some((tip, height, mined)),
            Some((t, _, _)) if *t != tip => problems.push(format!(
                "tip {} differs from node {}'s",
                prefix(&tip, ID_DIGITS),
                net.live().next().map_or(0, |f| f.index)
            )),
            Some(_) => {}
        }
        for p in problems {
            ok = false;
            println!("  ✗ node {}: {p}", n.index);
        }
    }
    if let Some((_, height, mined)) = first {
        println!("block rewards ({REWARD} a block; each node mines to an account of its own):");
        for m in &net.nodes {
            let blocks = mined.get(&m.miner).copied().unwrap_or(0);
            println!(
                "  node {:<3} {}  {blocks:>3} of {height} blocks  {:>6}",
                m.index,
                prefix(&m.miner, 8),
                REWARD * blocks
            );
        }
    }
    Ok(ok)
}

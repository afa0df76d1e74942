//! The final table and its checks: every node on one tip, the dev
//! accounts' balances exactly what the flows imply less the fees their
//! mined transactions paid, each contract in its final state, and each
//! node's mining account holding 50 coins per block of the best chain it
//! mined plus the fees of those blocks.

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

/// What `node`'s best chain (up to `height`) says of its miners and fees.
#[derive(Default, PartialEq)]
struct Mined {
    /// Blocks paying each account (read from the coinbases).
    blocks: BTreeMap<String, u64>,
    /// Fees each miner's blocks collected.
    fees_to: BTreeMap<String, u64>,
    /// Fees each sender's mined transactions paid.
    fees_from: BTreeMap<String, u64>,
}

/// How many blocks of `node`'s best chain (up to `height`) pay each
/// account, and the fees paid and collected.
fn blocks_per_miner(net: &Net, node: &NodeProc, height: u64) -> anyhow::Result<Mined> {
    let mut mined = Mined::default();
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
            let txs = b["transactions"].as_array().map_or(&[][..], Vec::as_slice);
            let mut fees = 0;
            for tx in txs {
                if let (Some(sender), Some(fee)) = (tx["sender"].as_str(), tx["fee"].as_u64()) {
                    *mined.fees_from.entry(sender.to_string()).or_insert(0) += fee;
                    fees += fee;
                }
            }
            match coinbase {
                Some(to) => {
                    *mined.blocks.entry(to.to_string()).or_insert(0) += 1;
                    *mined.fees_to.entry(to.to_string()).or_insert(0) += fees;
                }
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
    let mut first: Option<(String, u64, Mined)> = None;
    for n in net.live() {
        let status = net.get(n, "/status")?;
        let tip = status["tip"].as_str().unwrap_or("").to_string();
        let height = status["height"].as_u64().unwrap_or(0);
        let mined = blocks_per_miner(net, n, height)?;
        print!(
            "{:<6} {:>6}  {:<12}",
            n.index,
            height,
            prefix(&tip, ID_DIGITS)
        );
        let mut problems = Vec::new();
        for a in ACCOUNTS {
            let account = net.get(n, &format!("/accounts/{a}"))?;
            let balance = account["balance"].as_u64().unwrap_or(0);
            print!(" {balance:>9}");
            // What the flows imply, less the fees of its mined transactions.
            let paid = account["address"]
                .as_str()
                .and_then(|address| mined.fees_from.get(address))
                .copied()
                .unwrap_or(0);
            if let Some(want) = expected.balances.get(a).map(|w| w - paid)
                && balance != want
            {
                problems.push(format!(
                    "{a} has {balance}, expected {want} (fees paid: {paid})"
                ));
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
        // chain that pays it, and those blocks' fees.
        let coinbases = mined.blocks.values().sum::<u64>();
        if coinbases != height {
            problems.push(format!(
                "{coinbases} coinbases on a chain of height {height}"
            ));
        }
        for to in mined
            .blocks
            .keys()
            .filter(|to| net.miner_node(to).is_none())
        {
            problems.push(format!("blocks pay {to}, the account of no demo node"));
        }
        if mined.fees_to.values().sum::<u64>() != mined.fees_from.values().sum::<u64>() {
            problems.push("the fees collected are not the fees paid".to_string());
        }
        for m in &net.nodes {
            let blocks = mined.blocks.get(&m.miner).copied().unwrap_or(0);
            let fees = mined.fees_to.get(&m.miner).copied().unwrap_or(0);
            let balance = net.get(n, &format!("/accounts/{}", m.miner))?["balance"]
                .as_u64()
                .unwrap_or(0);
            if balance != REWARD * blocks + fees {
                problems.push(format!(
                    "node {}'s mining account {} has {balance}, expected {} ({blocks} blocks × {REWARD} + {fees} in fees)",
                    m.index,
                    m.miner,
                    REWARD * blocks + fees
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
        println!(
            "block rewards ({REWARD} a block) and fees (each node mines to an account of its own):"
        );
        for m in &net.nodes {
            let blocks = mined.blocks.get(&m.miner).copied().unwrap_or(0);
            let fees = mined.fees_to.get(&m.miner).copied().unwrap_or(0);
            println!(
                "  node {:<3} {}  {blocks:>3} of {height} blocks  {:>6} + {fees} in fees",
                m.index,
                prefix(&m.miner, 8),
                REWARD * blocks
            );
        }
    }
    Ok(ok)
}

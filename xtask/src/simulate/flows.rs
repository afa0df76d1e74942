//! The notebook's two escrow flows, and the partition scenario: what the
//! demo does to the network, step by step, and what it should leave
//! behind.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::json;

use super::net::{Net, prefix};
use super::report::Expected;
use super::setup::{CONTRACT_DIGITS, DEV_BALANCE, Options, STEP_TIMEOUT, Scenario};

/// The notebook's two flows, each transaction sent to a different node.
pub(super) fn flows(net: &mut Net, o: &Options) -> anyhow::Result<Expected> {
    let n = o.nodes;
    let first = net.create_escrow(
        0,
        "1. Alice creates an escrow of 100 for Bob (Eve arbitrates)",
        ["alice", "bob", "eve", "100"],
    )?;
    net.step(
        1 % n,
        "2. Alice confirms delivery: Bob is paid",
        &["escrow", "confirm", "--as", "alice", &first],
    )?;

    if o.scenario == Scenario::CrashRestart {
        let victim = 1 % n;
        println!("\ncrash: node {victim} is killed with SIGKILL");
        if let Some(node) = net.nodes.iter_mut().find(|x| x.index == victim)
            && let Some(mut child) = node.child.take()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    let live: Vec<usize> = net.live().map(|x| x.index).collect();
    let pick = |k: usize| live.get(k % live.len().max(1)).copied().unwrap_or(0);
    let second = net.create_escrow(
        pick(2),
        "3. Charlie creates an escrow of 50 for Dave, with Eve as arbiter",
        ["charlie", "dave", "eve", "50"],
    )?;
    net.step(
        pick(3),
        "4. Charlie raises a dispute",
        &["escrow", "dispute", "--as", "charlie", &second],
    )?;

    if o.scenario == Scenario::CrashRestart {
        let victim = 1 % n;
        println!("\nrestart: node {victim} comes back on its data directory");
        let peers: Vec<String> = net.live().map(|x| x.p2p.clone()).collect();
        net.start(victim, o, &peers)?;
        let height = net.get(net.node(victim)?, "/status")?["height"].clone();
        println!("    node {victim} restarted at height {height} from its store; catching up");
    }

    net.step(
        pick(4),
        "5. Eve resolves the dispute to the buyer: Charlie is refunded",
        &["escrow", "resolve", "--as", "eve", &second, "--to", "buyer"],
    )?;
    Ok(Expected {
        balances: BTreeMap::from([
            ("alice", DEV_BALANCE - 100),
            ("bob", DEV_BALANCE + 100),
            ("charlie", DEV_BALANCE),
            ("dave", DEV_BALANCE),
            ("eve", DEV_BALANCE),
            ("ferdie", DEV_BALANCE),
        ]),
        contracts: vec![(first, "Released"), (second, "Refunded")],
    })
}

/// The partition scenario: an escrow, then a 2+2 split in which each side
/// settles it differently and makes a transfer, then the heal.
pub(super) fn partition(net: &mut Net, o: &Options) -> anyhow::Result<Expected> {
    let contract = net.create_escrow(
        0,
        "1. Alice creates an escrow of 100 for Bob (Eve arbitrates)",
        ["alice", "bob", "eve", "100"],
    )?;

    let half = o.nodes / 2;
    let left: Vec<usize> = (0..half).collect();
    let right: Vec<usize> = (half..o.nodes).collect();
    let addrs = |side: &[usize]| -> anyhow::Result<Vec<String>> {
        side.iter().map(|i| Ok(net.node(*i)?.p2p.clone())).collect()
    };
    let (left_addrs, right_addrs) = (addrs(&left)?, addrs(&right)?);
    println!("\n2. partition: nodes {left:?} | nodes {right:?}");
    for i in &left {
        net.post(
            net.node(*i)?,
            "/admin/partition",
            json!({"block": right_addrs}),
        )?;
    }
    for i in &right {
        net.post(
            net.node(*i)?,
            "/admin/partition",
            json!({"block": left_addrs}),
        )?;
    }

    // Each side acts alone. The left: Alice confirms delivery (Bob paid)
    // and Eve pays Bob 10. The right: Bob refunds Alice instead, Charlie
    // pays Dave 20, and the right mines one block more: it will be heavier.
    println!("\n3. left side: Alice confirms delivery; Eve pays Bob 10");
    // The first node of each side (left is 0..half, right half..nodes).
    let (l0, r0) = (0, half);
    let confirm = net.client(l0, &["escrow", "confirm", "--as", "alice", &contract])?;
    let pay = net.client(l0, &["transfer", "--as", "eve", "bob", "10"])?;
    println!("4. right side: Bob refunds Alice instead, Charlie pays Dave 20");
    net.client(r0, &["escrow", "refund", "--as", "bob", &contract])?;
    net.client(r0, &["transfer", "--as", "charlie", "dave", "20"])?;
    let side_mined = |net: &mut Net, side: &[usize], id: &str| -> anyhow::Result<()> {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let mut ok = true;
            for i in side {
                ok &= net.get(net.node(*i)?, &format!("/txs/{id}"))?["status"] == "confirmed";
            }
            if ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("nodes {side:?} did not mine transaction {id} in time");
            }
            net.tick()?;
        }
    };
    let pay_id = pay["id"]
        .as_str()
        .context("the transfer's answer has no id")?
        .to_string();
    let confirm_id = confirm["id"]
        .as_str()
        .context("the confirm's answer has no id")?;
    side_mined(net, &left, confirm_id)?;
    side_mined(net, &left, &pay_id)?;
    let height_of = |net: &Net, i: usize| -> anyhow::Result<u64> {
        Ok(net.get(net.node(i)?, "/status")?["height"]
            .as_u64()
            .unwrap_or(0))
    };
    let mut height = height_of(net, r0)?;
    let left_height = height_of(net, l0)?;
    while height <= left_height {
        net.post(net.node(r0)?, "/mine", json!({"blocks": 1}))?;
        height = height_of(net, r0)?;
    }
    net.settle_side(&right)?;
    net.clear_spinner();
    println!(
        "    left at height {left_height}, right at height {height}: the right side has more work"
    );

    println!("\n5. heal: the cut is lifted");
    for i in 0..o.nodes {
        net.post(net.node(i)?, "/admin/heal", json!({}))?;
    }
    net.wait_mesh()?;
    println!("    full mesh again; the left side must reorganise onto the right's chain");
    println!("    Alice's confirm is now invalid (the contract was refunded) and is dropped;");
    println!("    Eve's payment to Bob is still valid and is mined again;");
    println!("    the left side's blocks are undone, and their miners' rewards with them");
    net.wait_included(&pay_id)?;
    Ok(Expected {
        balances: BTreeMap::from([
            ("alice", DEV_BALANCE),
            ("bob", DEV_BALANCE + 10),
            ("charlie", DEV_BALANCE - 20),
            ("dave", DEV_BALANCE + 20),
            ("eve", DEV_BALANCE - 10),
            ("ferdie", DEV_BALANCE),
        ]),
        contracts: vec![(contract, "Refunded")],
    })
}

impl Net {
    /// An `escrow create` step (`[buyer, seller, arbiter, amount]`); returns
    /// the contract id.
    fn create_escrow(&mut self, node: usize, what: &str, who: [&str; 4]) -> anyhow::Result<String> {
        let [buyer, seller, arbiter, amount] = who;
        let created = self.step(
            node,
            what,
            &[
                "escrow",
                "create",
                "--as",
                buyer,
                "--seller",
                seller,
                "--arbiter",
                arbiter,
                amount,
            ],
        )?;
        let id = created["contract"]
            .as_str()
            .context("the escrow create's answer has no contract id")?
            .to_string();
        println!("    contract {} ({id})", prefix(&id, CONTRACT_DIGITS));
        Ok(id)
    }
}

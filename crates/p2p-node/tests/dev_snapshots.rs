//! A `--dev` node's snapshots through the binary: `snapshot`, `revert ID`
//! and `reset`, what they restore exactly (chain, ledger, contracts,
//! mempool), and what they refuse.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/process.rs"]
mod process;

use process::NodeProcess;
use serde_json::Value;

fn json(node: &NodeProcess, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    serde_json::from_str(&node.ok(&args)).unwrap()
}

/// The failure's JSON error and exit code.
fn refused(node: &NodeProcess, args: &[&str]) -> (Option<i32>, Value) {
    let mut args = args.to_vec();
    args.push("--json");
    let out = node.cli(&args);
    assert!(!out.status.success(), "`{}` succeeded", args.join(" "));
    (
        out.status.code(),
        serde_json::from_slice(&out.stderr).unwrap(),
    )
}

/// What a snapshot must restore: the tip, every dev balance and nonce, and
/// every contract as the node shows it.
fn state(node: &NodeProcess) -> (Value, Vec<Value>, Value) {
    let status = json(node, &["status"]);
    let accounts = escrow::dev::DEV_ACCOUNTS
        .iter()
        .map(|name| json(node, &["balance", name]))
        .collect();
    let contracts = json(node, &["contracts"]);
    (
        serde_json::json!([status["height"], status["tip"]]),
        accounts,
        contracts,
    )
}

#[test]
fn a_revert_after_a_dispute_and_its_resolution_restores_the_contract_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), &["--dev"]);
    let created = json(
        &node,
        &[
            "escrow",
            "create",
            "--as",
            "charlie",
            "--seller",
            "dave",
            "--arbiter",
            "eve",
            "50",
            "--wait",
        ],
    );
    let contract = created["contract"].as_str().unwrap().to_string();
    json(
        &node,
        &["escrow", "dispute", "--as", "charlie", &contract, "--wait"],
    );
    let before = state(&node);
    let disputed = json(&node, &["contract", &contract]);
    assert!(disputed["state"]["Disputed"].is_object(), "{disputed}");
    let saved = json(&node, &["snapshot"]);
    assert_eq!(saved["id"], 1);
    assert_eq!(saved["height"], before.0[0]);

    // The dispute is resolved, coins move, blocks are mined.
    json(
        &node,
        &[
            "escrow", "resolve", "--as", "eve", &contract, "--to", "buyer", "--wait",
        ],
    );
    json(&node, &["transfer", "--as", "alice", "bob", "9", "--wait"]);
    node.ok(&["mine", "2"]);
    assert_ne!(state(&node), before);

    let back = json(&node, &["revert", "1"]);
    assert_eq!(back["tip"], before.0[1]);
    assert_eq!(
        state(&node),
        before,
        "chain, balances, nonces and contracts as saved"
    );
    assert_eq!(json(&node, &["contract", &contract]), disputed);

    // The snapshot stays: the same revert works again after more changes.
    json(
        &node,
        &[
            "escrow", "resolve", "--as", "eve", &contract, "--to", "seller", "--wait",
        ],
    );
    json(&node, &["revert", "1"]);
    assert_eq!(state(&node), before);

    // Reset: genesis, no contract; the snapshot still there.
    let genesis = json(&node, &["reset"]);
    assert_eq!(genesis["height"], 0);
    assert_eq!(json(&node, &["contracts"]), serde_json::json!([]));
    json(&node, &["revert", "1"]);
    assert_eq!(state(&node), before);
    node.stop();
}

#[test]
fn a_snapshot_keeps_the_pending_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), &["--dev", "--mine", "off"]);
    let sent = json(&node, &["transfer", "--as", "alice", "bob", "4"]);
    json(&node, &["snapshot"]);
    node.ok(&["mine", "1"]);
    assert_eq!(
        json(&node, &["tx", sent["id"].as_str().unwrap()])["status"],
        "confirmed"
    );
    json(&node, &["revert", "1"]);
    assert_eq!(node.status()["height"], 0);
    assert_eq!(
        json(&node, &["tx", sent["id"].as_str().unwrap()])["status"],
        "pending"
    );
    node.stop();
}

#[test]
fn snapshots_are_refused_where_they_do_not_belong() {
    let dir = tempfile::tempdir().unwrap();
    let dev = NodeProcess::start(dir.path(), &["--dev"]);
    let (code, e) = refused(&dev, &["revert", "7"]);
    assert_eq!(
        (code, e["code"].as_str()),
        (Some(1), Some("unknown_snapshot"))
    );
    dev.stop();
    // A node with a chain of its own (not --dev) refuses all three.
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), &["--mine", "off"]);
    for args in [&["snapshot"][..], &["revert", "1"], &["reset"]] {
        let (code, e) = refused(&node, args);
        assert_eq!(
            (code, e["code"].as_str()),
            (Some(1), Some("not_dev")),
            "{args:?}"
        );
    }
    node.stop();
}

//! The binary: the client subcommands against a node process, restarts
//! that keep the chain and the contracts, crashes that lose nothing
//! acknowledged, and stores the node refuses to open.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/process.rs"]
mod process;

use std::time::Duration;

use process::NodeProcess;
use serde_json::Value;

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

/// `escrow create` through the client; returns the contract id it prints.
fn create_escrow(
    node: &NodeProcess,
    buyer: &str,
    seller: &str,
    arbiter: &str,
    amount: u64,
) -> String {
    let amount = amount.to_string();
    let out = node.ok(&[
        "escrow",
        "create",
        "--as",
        buyer,
        "--seller",
        seller,
        "--arbiter",
        arbiter,
        &amount,
    ]);
    out.lines()
        .find_map(|l| l.strip_prefix("contract "))
        .expect("create prints the contract id")
        .to_string()
}

#[test]
fn every_client_subcommand_against_a_node() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), &["--mine", "pending"]);

    assert!(node.ok(&["status"]).contains("height  0"));
    assert!(node.ok(&["balance", "alice"]).contains("balance 1000000"));
    node.ok(&["transfer", "--as", "alice", "bob", "10"]);
    node.wait_mined();
    let bob = json(&node.ok(&["balance", "bob", "--json"]));
    assert_eq!(bob["balance"], 1_000_010);

    // The dispute flow.
    let contract = create_escrow(&node, "charlie", "dave", "eve", 50);
    node.wait_mined();
    // A refused action: Bob is not the buyer. One clear line, non-zero exit.
    let refused = node.cli(&["escrow", "confirm", "--as", "bob", &contract]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("not_buyer"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    node.ok(&["escrow", "dispute", "--as", "charlie", &contract]);
    node.wait_mined();
    node.ok(&[
        "escrow", "resolve", "--as", "eve", &contract, "--to", "buyer",
    ]);
    node.wait_mined();
    let shown = node.ok(&["contract", &contract]);
    assert!(shown.contains("Refunded"), "{shown}");
    assert!(shown.contains("by eve"), "{shown}");
    assert!(node.ok(&["contracts"]).contains(&contract));
    let c = json(&node.ok(&["contract", &contract, "--json"]));
    assert_eq!(c["history"].as_array().unwrap().len(), 3);

    // A second contract refunded by the seller, and confirm on a final one.
    let second = create_escrow(&node, "alice", "bob", "eve", 100);
    node.wait_mined();
    node.ok(&["escrow", "refund", "--as", "bob", &second]);
    node.wait_mined();
    let late = node.cli(&["escrow", "confirm", "--as", "alice", &second]);
    assert!(String::from_utf8_lossy(&late.stderr).contains("already_final"));

    // Blocks, mining on demand with the token from the data directory.
    let before = node.status()["height"].as_u64().unwrap();
    let mined = node.ok(&["mine", "2"]);
    assert_eq!(mined.lines().count(), 2, "{mined}");
    assert_eq!(node.status()["height"].as_u64().unwrap(), before + 2);
    let blocks = node.ok(&["blocks", "--last", "3"]);
    assert_eq!(blocks.lines().count(), 3, "{blocks}");
    let wrong = node.cli(&["mine", "1", "--token", "nope"]);
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("unauthorized"));

    // A real key: made, owner-only, and refused for lack of funds.
    let key = dir.path().join("me.key");
    let made = std::process::Command::new(process::binary())
        .args(["keygen", "--out", key.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(made.status.success());
    assert_eq!(String::from_utf8_lossy(&made.stdout).trim().len(), 64);
    let poor = node.cli(&["transfer", "--key", key.to_str().unwrap(), "alice", "1"]);
    assert!(String::from_utf8_lossy(&poor.stderr).contains("insufficient_funds"));
    let unknown = node.cli(&["transfer", "--as", "mallory", "alice", "1"]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("neither a dev account"));

    node.stop();
}

#[test]
fn a_restart_keeps_the_chain_and_the_contracts() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), &["--mine", "pending"]);
    let contract = create_escrow(&node, "alice", "bob", "eve", 100);
    node.wait_mined();
    node.ok(&["mine", "3"]);
    let before = node.status();
    node.stop();

    let node = NodeProcess::start(dir.path(), &["--mine", "off"]);
    let after = node.status();
    assert_eq!(after["tip"], before["tip"]);
    assert_eq!(after["height"], before["height"]);
    assert_eq!(node.height_at_start, before["height"].as_u64().unwrap());
    let c = json(&node.ok(&["contract", &contract, "--json"]));
    assert_eq!(c["state"], "Funded");
    let alice = json(&node.ok(&["balance", "alice", "--json"]));
    // The client paid the node's estimate: on a quiet network, the
    // minimum relay rate's fee, 1 coin for a transaction under 1,000 bytes.
    assert_eq!(alice["balance"], 1_000_000 - 100 - 1);
    node.stop();
}

#[test]
fn sigkill_loses_no_announced_block_and_the_node_catches_up() {
    // a mines continuously and announces to b; b only follows. Each round
    // kills a with SIGKILL at a different moment, restarts it on the same
    // directory, and checks that it still has every block b got from it.
    // a saves a ledger snapshot with every commit, so every kill lands with
    // a snapshot in flight or just written; after each restart a's ledger
    // must match its blocks (every block pays ferdie one reward).
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let mining = ["--mine", "continuous", "--snapshot-every", "1"];
    let mut a = NodeProcess::start(a_dir.path(), &mining);
    let a_p2p = a.p2p.to_string();
    let b = NodeProcess::start(b_dir.path(), &["--mine", "off", "--peer", &a_p2p]);
    // The height b had when a last started mining.
    let mut b_before = 0;
    for round in 0..4u64 {
        // Kill a once b has a new block from it (however slowly a mines: on
        // a busy machine its mining threads, which run at the lowest
        // priority, get little CPU), at a moment that varies per round.
        process::wait_until(&format!("round {round}: a new block from a at b"), || {
            b.status()["height"].as_u64().unwrap() > b_before
        });
        // The stimulus, not a wait: the kill lands at another moment of
        // a's mining and saving each round.
        std::thread::sleep(Duration::from_millis(97 * round));
        a.crash();
        let b_status = b.status();
        let b_tip = b_status["tip"].as_str().unwrap().to_string();
        let b_height = b_status["height"].as_u64().unwrap();
        assert!(b_height > 0, "round {round}: b received nothing");

        // a comes back alone: it has every block b got from it, and says
        // loudly that its store needed redb's repair.
        a = NodeProcess::start(a_dir.path(), &["--mine", "off"]);
        assert!(
            a.said("chain.redb was not closed cleanly"),
            "round {round}: the repair was not reported: {}",
            a.stderr.lock().unwrap()
        );
        let a_height = a.height_at_start;
        assert!(
            a_height >= b_height,
            "round {round}: a came back at {a_height} but had announced {b_height}"
        );
        assert!(
            http_ok(&a.api, &format!("/blocks/{b_tip}")),
            "round {round}: a lost block {b_tip}"
        );
        let ferdie = json(&a.ok(&["balance", "ferdie", "--json"]));
        assert_eq!(
            ferdie["balance"].as_u64(),
            Some(escrow::genesis::DEV_BALANCE + escrow::genesis::DEV_REWARD * a_height),
            "round {round}: the restored ledger does not match the {a_height} blocks"
        );
        a.stop();

        // b pulls ahead while a is down (a may have mined blocks b never
        // got: b mines past them), and a syncs to b when it returns.
        let b_now = b.status()["height"].as_u64().unwrap();
        let more = (a_height + 1).saturating_sub(b_now).max(2);
        b.ok(&["mine", &more.to_string()]);
        let b_new_tip = b.status()["tip"].as_str().unwrap().to_string();
        a = NodeProcess::start(
            a_dir.path(),
            &["--mine", "off", "--peer", &b.p2p.to_string()],
        );
        process::wait_until(&format!("round {round}: a to sync"), || {
            a.status()["tip"].as_str() == Some(b_new_tip.as_str())
        });
        a.stop();
        b_before = b.status()["height"].as_u64().unwrap();
        let b_p2p = b.p2p.to_string();
        let args: Vec<&str> = mining.iter().copied().chain(["--peer", &b_p2p]).collect();
        a = NodeProcess::start(a_dir.path(), &args);
    }
    a.stop();
    b.stop();
}

/// Whether `GET path` on the API answers 200 (plain HTTP/1.1 over TCP).
fn http_ok(api: &str, path: &str) -> bool {
    use std::io::{Read, Write};
    let host = api.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.starts_with("HTTP/1.1 200")
}

#[test]
fn a_store_of_another_version_or_a_corrupt_file_stops_the_node_with_the_file_named() {
    use std::process::Command;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("chain.redb"), b"this is not a database").unwrap();
    let out = Command::new(process::binary())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--api",
            "127.0.0.1:0",
            "--log",
            "off",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("chain.redb"), "{err}");
    assert_eq!(
        std::fs::read(dir.path().join("chain.redb")).unwrap(),
        b"this is not a database",
        "nothing rewritten"
    );

    // A store written with another format version.
    let dir = tempfile::tempdir().unwrap();
    drop(p2p_node::store::RedbStore::open(dir.path()).unwrap());
    {
        let db = redb::Database::open(dir.path().join("chain.redb")).unwrap();
        let write = db.begin_write().unwrap();
        write
            .open_table(redb::TableDefinition::<&str, u64>::new("meta"))
            .unwrap()
            .insert("format", 7)
            .unwrap();
        write.commit().unwrap();
    }
    let out = Command::new(process::binary())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--api",
            "127.0.0.1:0",
            "--log",
            "off",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("format version 7") && err.contains("chain.redb"),
        "{err}"
    );
}

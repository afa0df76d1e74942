//! A throwaway dev chain (`--dev`), `purge`, and the client's
//! `--wait-for-node`, through the binary as a user runs them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/process.rs"]
mod process;

use std::net::TcpListener;
use std::process::{Command, Stdio};

use process::{NodeProcess, binary, json_of as json, wait_or_kill};
use serde_json::Value;

#[test]
fn a_dev_node_mines_each_transaction_and_forgets_its_chain_at_exit() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), &["--dev"]);
    let banner = node.startup.join("\n");
    assert!(banner.contains("dev chain: kept in memory"), "{banner}");
    for name in escrow::dev::DEV_ACCOUNTS {
        let address = escrow::dev::address(name).unwrap().to_string();
        assert!(
            banner.contains(name) && banner.contains(&address),
            "{name}: {banner}"
        );
    }
    assert!(banner.contains("the chain is in memory"), "{banner}");
    // A transfer is mined with no other step.
    node.ok(&["transfer", "--as", "alice", "bob", "5", "--wait"]);
    assert!(node.status()["height"].as_u64().unwrap() >= 1);
    // The token is in the data directory: the client's `mine` finds it.
    node.ok(&["mine", "2"]);
    assert!(
        !dir.path().join(p2p_node::store::STORE_FILE).exists(),
        "no store file for a dev chain"
    );
    node.stop();
    // Started again on the same directory: genesis, Bob's 5 gone.
    let node = NodeProcess::start(dir.path(), &["--dev"]);
    assert_eq!(node.height_at_start, 0);
    let bob: Value = serde_json::from_str(&node.ok(&["balance", "bob", "--json"])).unwrap();
    assert_eq!(bob["balance"], escrow::genesis::DEV_BALANCE);
    node.stop();
}

#[test]
fn purge_removes_a_stopped_nodes_chain_and_refuses_a_running_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let purge = |extra: &[&str]| {
        Command::new(binary())
            .arg("purge")
            .arg("--data-dir")
            .arg(&data)
            .args(extra)
            .arg("--json")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let node = NodeProcess::start(&data, &["--mine", "off"]);
    node.ok(&["mine", "3"]);
    let running = purge(&["--yes"]);
    assert_eq!(running.status.code(), Some(6));
    assert_eq!(json(&running)["code"], "store_in_use");
    node.stop();
    // No terminal to ask and no --yes: a usage error, nothing removed.
    let unasked = purge(&[]);
    assert_eq!(unasked.status.code(), Some(2));
    assert!(data.join(p2p_node::store::STORE_FILE).exists());
    let done = purge(&["--yes"]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert_eq!(json(&done)["directory_removed"], true);
    assert!(!data.exists());
    let again = purge(&["--yes"]);
    assert_eq!(again.status.code(), Some(6));
    assert_eq!(json(&again)["code"], "no_chain");
    // A node started there begins at genesis.
    let node = NodeProcess::start(&data, &["--mine", "off"]);
    assert_eq!(node.height_at_start, 0);
    node.stop();
}

#[test]
fn the_client_waits_for_a_node_that_starts_later_or_says_none_answered() {
    // An address of this test's own: a listener that accepts nothing and
    // answers nothing, until the node takes its port.
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let api = held.local_addr().unwrap().to_string();
    let out = Command::new(binary())
        .args(["status", "--json", "--wait-for-node", "1", "--node", &api])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let said = json(&out)["message"].as_str().unwrap().to_string();
    assert!(said.contains("within 1 s (--wait-for-node)"), "{said}");

    let mut waiting = Command::new(binary())
        .args(["status", "--json", "--wait-for-node", "120", "--node", &api])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(held);
    let dir = tempfile::tempdir().unwrap();
    let mut node = Command::new(binary())
        .args([
            "--dev",
            "--listen",
            "127.0.0.1:0",
            "--api",
            &api,
            "--log",
            "warn",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status = wait_or_kill(&mut waiting);
    let _ = node.kill();
    let _ = node.wait();
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut waiting.stdout.take().unwrap(), &mut stdout).unwrap();
    assert!(status.success(), "the client gave up: {stdout}");
    let answer: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(answer["height"], 0);
}

#[test]
fn a_p2p_port_given_as_the_api_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), &["--dev"]);
    let out = Command::new(binary())
        .args(["status", "--json", "--node", &node.p2p.to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let said = json(&out);
    assert_eq!(said["code"], "not_http", "{said}");
    assert!(
        said["message"].as_str().unwrap().contains("P2P port"),
        "{said}"
    );
    // Out-of-range counts are usage errors before any node is asked.
    for count in ["0", "1001"] {
        let out = Command::new(binary())
            .args(["mine", count, "--node", "127.0.0.1:9"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "mine {count}");
    }
    // Past five blocks, `mine` sums up.
    let said = node.ok(&["mine", "7"]);
    assert!(said.starts_with("mined 7 blocks, "), "{said}");
    node.stop();
}

#[test]
fn a_peer_that_synced_shows_its_height_before_it_announces_anything() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = NodeProcess::start(da.path(), &["--dev", "--mine", "off"]);
    a.ok(&["mine", "5"]);
    let peer = a.p2p.to_string();
    let b = NodeProcess::start(db.path(), &["--dev", "--mine", "off", "--peer", &peer]);
    process::wait_until("b to sync a's five blocks", || b.status()["height"] == 5);
    // B mined nothing and announced nothing: A knows its height from what
    // it sent it.
    process::wait_until("a's /peers to show b at height 5", || {
        let peers: Value = serde_json::from_str(&a.ok(&["peers", "--json"])).unwrap();
        peers
            .as_array()
            .is_some_and(|ps| ps.len() == 1 && ps[0]["best_height"] == 5)
    });
    b.stop();
    a.stop();
}

#[test]
fn named_keys_work_wherever_a_dev_name_does() {
    let keys = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), &["--dev"]);
    let run = |args: &[&str]| {
        Command::new(binary())
            .args(args)
            .args(["--node", &node.api])
            .env("P2P_NODE_KEYS", keys.path())
            .env("P2P_NODE_DATA_DIR", &node.data_dir)
            .output()
            .unwrap()
    };
    let ok = |args: &[&str]| {
        let out = run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let made: Value = serde_json::from_str(&ok(&["keygen", "--name", "carol", "--json"])).unwrap();
    let address = made["address"].as_str().unwrap().to_string();
    assert!(keys.path().join("carol.key").exists());
    assert!(ok(&["keys"]).contains(&format!("carol        {address}")));
    assert_eq!(ok(&["address", "carol"]).trim(), address);
    // Paid by name, and signing by name.
    ok(&["transfer", "--as", "alice", "carol", "50", "--wait"]);
    ok(&[
        "transfer", "--as", "carol", "bob", "10", "--fee", "1", "--wait",
    ]);
    let carol: Value = serde_json::from_str(&ok(&["balance", "carol", "--json"])).unwrap();
    assert_eq!(carol["balance"], 39);
    // Named, not a dev name; not twice; not a bad name.
    for bad in [
        &["keygen", "--name", "alice"][..],
        &["keygen", "--name", "Bad Name"],
    ] {
        assert_eq!(run(bad).status.code(), Some(2), "{bad:?}");
    }
    assert_ne!(run(&["keygen", "--name", "carol"]).status.code(), Some(0));
    // An unknown name says what names are.
    let out = run(&["transfer", "--as", "nobody", "bob", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("named key"));
    // genesis init: a warning without --alloc; a named key or a key file
    // in --alloc.
    let out = run(&["genesis", "init"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning: no --alloc"));
    let elsewhere = tempfile::tempdir().unwrap();
    let file = elsewhere.path().join("dan.key");
    ok(&["keygen", "--out", file.to_str().unwrap()]);
    let out = run(&[
        "genesis",
        "init",
        "--alloc",
        "carol=100",
        "--alloc",
        &format!("{}=5", file.display()),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("warning"));
    let genesis: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(genesis.to_string().contains(&address), "{genesis}");
    node.stop();
}

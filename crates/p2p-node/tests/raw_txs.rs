//! `sign` (offline when the nonce, fee and network are given) and
//! `send-raw`, through the binary: every kind of transaction, signed apart
//! and published, and what is refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/process.rs"]
mod process;

use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};

use process::{NodeProcess, binary, json_of as json};
use serde_json::Value;

/// An API address where nothing answers: signing offline must not need it.
fn nowhere() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    drop(l);
    addr
}

/// `p2p-node sign ARGS --json` against `node` (an API address).
fn sign(node: &str, args: &[&str]) -> Output {
    Command::new(binary())
        .arg("sign")
        .args(args)
        .args(["--json", "--node", node])
        .output()
        .unwrap()
}

/// `p2p-node send-raw HEX --wait --json` to `node`, the hex on stdin.
fn send_raw(node: &NodeProcess, hex: &str) -> Output {
    let mut child = Command::new(binary())
        .args(["send-raw", "-", "--wait", "--json", "--node", &node.api])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(hex.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn transactions_signed_offline_are_published_as_bytes_every_kind() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), &["--dev"]);
    let network = node.status()["network"].as_str().unwrap().to_string();
    let offline = nowhere();
    let signed = |who: &str, nonce: u64, what: &[&str]| -> Value {
        let nonce = nonce.to_string();
        let mut args = vec![
            "--as",
            who,
            "--nonce",
            &nonce,
            "--fee",
            "2",
            "--network",
            &network,
        ];
        args.extend_from_slice(what);
        let out = sign(&offline, &args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        json(&out)
    };
    let publish = |tx: &Value| {
        let out = send_raw(&node, tx["tx"].as_str().unwrap());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let answer = json(&out);
        assert_eq!(answer["id"], tx["id"]);
        assert_eq!(answer["status"], "confirmed");
        answer
    };

    // Signing is deterministic: the same transaction twice is the same bytes.
    let transfer = signed("alice", 0, &["transfer", "bob", "7"]);
    assert_eq!(transfer, signed("alice", 0, &["transfer", "bob", "7"]));
    assert_eq!(transfer["kind"], "transfer");
    assert_eq!(transfer["fee"], 2);
    publish(&transfer);

    // The notebook's second flow, each step signed apart: create (the
    // deadline as a height, so no node is asked), dispute, resolve.
    let create = signed(
        "charlie",
        0,
        &[
            "escrow",
            "create",
            "--seller",
            "dave",
            "--arbiter",
            "eve",
            "--deadline",
            "50",
            "30",
        ],
    );
    let contract = create["contract"].as_str().unwrap().to_string();
    assert_eq!(publish(&create)["contract"], contract.as_str());
    publish(&signed("charlie", 1, &["escrow", "dispute", &contract]));
    publish(&signed(
        "eve",
        0,
        &["escrow", "resolve", &contract, "--to", "buyer"],
    ));
    let state: Value = serde_json::from_str(&node.ok(&["contract", &contract, "--json"])).unwrap();
    assert_eq!(state["state"], "Refunded", "{state}");

    // The first flow, with the nonce and fee asked of the node and the
    // contract named by a prefix: create, confirm; and a refund refused.
    let ask = |what: &[&str]| {
        let mut args = vec!["--as", "alice"];
        args.extend_from_slice(what);
        let out = sign(&node.api, &args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        json(&out)
    };
    let create = ask(&[
        "escrow",
        "create",
        "--seller",
        "bob",
        "--arbiter",
        "eve",
        "10",
    ]);
    assert_eq!(create["nonce"], 1);
    publish(&create);
    let prefix = &create["contract"].as_str().unwrap()[..8];
    publish(&ask(&["escrow", "confirm", prefix]));
    let refund = ask(&["escrow", "refund", prefix]);
    let refused = send_raw(&node, refund["tx"].as_str().unwrap());
    assert_eq!(
        refused.status.code(),
        Some(1),
        "a released contract is not refunded"
    );

    // A transfer with a memo.
    publish(&ask(&["transfer", "bob", "0", "--memo", "thanks"]));
    node.stop();
}

#[test]
fn bad_raw_transactions_are_refused_with_what_was_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), &["--dev"]);
    // Not hex: a usage error, nothing sent.
    let out = send_raw(&node, "xyz");
    assert_eq!(out.status.code(), Some(2));
    // Hex, but not a transaction: the node says why.
    let out = send_raw(&node, "abcd");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["code"], "bad_encoding");
    // A valid transaction sent twice: the second is a replay.
    let tx = json(&sign(&node.api, &["--as", "bob", "transfer", "alice", "1"]));
    assert!(send_raw(&node, tx["tx"].as_str().unwrap()).status.success());
    let again = send_raw(&node, tx["tx"].as_str().unwrap());
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(json(&again)["code"], "bad_nonce");
    // A signature broken in transit.
    let mut bytes = hex::decode(tx["tx"].as_str().unwrap()).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let out = send_raw(&node, &hex::encode(bytes));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["code"], "bad_signature", "{}", json(&out));
    // Signing for a contract by prefix needs the node: with none, exit 3.
    let out = sign(
        &nowhere(),
        &[
            "--as", "alice", "--nonce", "0", "--fee", "1", "escrow", "confirm", "abcdef01",
        ],
    );
    assert_eq!(out.status.code(), Some(3));
    node.stop();
}

//! A sync killed by SIGKILL resumes where it stopped: node processes, a
//! real store file, `kill -9` at a different moment each round.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/process.rs"]
mod process;

use std::time::Duration;

use process::NodeProcess;
use serde_json::Value;

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

/// The dev network with an easy target: thousands of blocks mine in
/// moments, and a sync of them is long enough to be interrupted.
fn easy_genesis(dir: &std::path::Path) -> String {
    let mut g = escrow::Genesis::dev();
    g.params = chain_core::ChainParams::with_target_bits(6);
    let path = dir.join("genesis.json");
    std::fs::write(&path, g.to_json()).unwrap();
    path.display().to_string()
}

/// What must be equal between two nodes on the same chain: the tip and
/// the dev accounts' balances and nonces.
fn state(node: &NodeProcess) -> Vec<String> {
    let mut out = vec![node.status()["tip"].as_str().unwrap().to_string()];
    for who in ["alice", "bob", "charlie", "eve", "ferdie"] {
        let account = json(&node.ok(&["balance", who, "--json"]));
        out.push(format!("{who} {} {}", account["balance"], account["nonce"]));
    }
    out
}

#[test]
fn a_sync_killed_at_any_point_resumes_where_it_stopped_and_ends_in_the_same_state() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let genesis = easy_genesis(dirs[0].path());
    let base = ["--genesis", genesis.as_str(), "--mine", "off"];
    // The source: a chain with transfers in some of its blocks.
    let source = NodeProcess::start(dirs[0].path(), &base);
    for i in 0..8 {
        source.ok(&["transfer", "--as", "alice", "bob", &(i + 1).to_string()]);
        source.ok(&["mine", "250"]);
    }
    let target = source.status()["height"].as_u64().unwrap();
    let peer = source.p2p.to_string();
    let follow: Vec<&str> = base.iter().copied().chain(["--peer", &peer]).collect();

    // The interrupted one: killed at a different moment each round.
    let mut b = NodeProcess::start(dirs[1].path(), &follow);
    let mut interrupted = 0;
    for round in 0..5u64 {
        std::thread::sleep(Duration::from_millis(17 * round));
        let shown = b.status()["height"].as_u64().unwrap();
        b.crash();
        if shown < target {
            interrupted += 1;
        }
        b = NodeProcess::start(dirs[1].path(), &follow);
        // What the API showed was saved: the restart starts at least there.
        assert!(
            b.height_at_start >= shown,
            "round {round}: came back at {} after showing {shown}",
            b.height_at_start
        );
    }
    process::wait_until("the interrupted node to finish", || {
        b.status()["height"].as_u64() == Some(target)
    });

    // An uninterrupted one.
    let c = NodeProcess::start(dirs[2].path(), &follow);
    process::wait_until("the uninterrupted node to finish", || {
        c.status()["height"].as_u64() == Some(target)
    });
    assert_eq!(state(&b), state(&c));
    assert_eq!(state(&b), state(&source));
    // A kill that lands after the sync proves nothing: the first rounds
    // must have landed during it.
    assert!(interrupted > 0, "no kill landed during the sync");
    for node in [b, c, source] {
        node.stop();
    }
}

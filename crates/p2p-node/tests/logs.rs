//! `--log-format json`: every line the node writes on stdout is one JSON
//! object (its start-up lines too), with the event's fields, and the
//! fields of the peer connection it happened in.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/process.rs"]
mod process;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use process::{HANG_GUARD, NodeProcess};
use serde_json::Value;

/// Kills the child when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn json_logs_are_one_object_per_line_with_the_connections_fields() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(process::binary())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--api",
            "127.0.0.1:0",
            "--mine",
            "off",
            "--log-format",
            "json",
            "--log",
            "p2p_node=debug",
            "--data-dir",
        ])
        .arg(dir.path().join("json"))
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _child = Killed(child);
    let (tx, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let started = Instant::now();
    let next = || {
        let left = HANG_GUARD.saturating_sub(started.elapsed());
        lines
            .recv_timeout(left)
            .expect("the node wrote no more lines")
    };
    let mut p2p = None;
    // The start-up lines, as log events like any other.
    while p2p.is_none() {
        let line = next();
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        for key in ["timestamp", "level", "target", "fields"] {
            assert!(v.get(key).is_some(), "no {key} in {line}");
        }
        let message = v["fields"]["message"].as_str().unwrap_or_default();
        if let Some(addr) = message.strip_prefix("p2p listening on ") {
            assert_eq!(v["level"], "INFO");
            p2p = Some(addr.to_string());
        }
    }
    // A peer connects, and leaves: the lines of its connection's task
    // carry the span's fields.
    let peer = NodeProcess::start(
        &dir.path().join("peer"),
        &["--mine", "off", "--peer", p2p.as_deref().unwrap()],
    );
    loop {
        let line = next();
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if v["fields"]["message"] == "peer live" {
            assert!(v["fields"]["conn"].as_u64().is_some(), "{line}");
            break;
        }
    }
    peer.stop();
    loop {
        let line = next();
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let Some(span) = v["spans"].as_array().and_then(|s| s.first()) else {
            continue;
        };
        assert_eq!(span["name"], "peer", "{line}");
        assert_eq!(span["direction"], "in", "{line}");
        assert!(span["conn"].as_u64().is_some(), "{line}");
        assert!(
            span["remote"]
                .as_str()
                .is_some_and(|r| r.starts_with("127.0.0.1:")),
            "{line}"
        );
        break;
    }
}

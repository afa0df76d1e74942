//! The README's client examples, run as a newcomer pastes them: the shell
//! block of "Talk to it", line by line and in order, through `bash`,
//! against a real node process. `$B` is the binary under test; `<TXID>`
//! and `<ID>` become the ids the commands before them printed. Every line
//! must succeed, so the README cannot drift from what the client does.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/process.rs"]
mod process;

use std::path::Path;
use std::process::Command;

use process::NodeProcess;

/// The lines of the first `sh` block after the heading `heading`.
fn shell_block(readme: &str, heading: &str) -> Vec<String> {
    let after = readme
        .split_once(heading)
        .unwrap_or_else(|| panic!("the README has no `{heading}`"))
        .1;
    let body = after
        .split_once("```sh\n")
        .expect("a sh block after the heading")
        .1;
    let body = body.split_once("```").expect("the block ends").0;
    body.lines().map(str::to_string).collect()
}

/// A line without its trailing comment (` # ...`); none of the README's
/// commands has a `#` of its own.
fn command_of(line: &str) -> &str {
    match line.find(" #") {
        Some(i) => line[..i].trim(),
        None => line.trim(),
    }
}

/// The first whitespace-separated word of `text` that `is_id` accepts.
fn first_id(text: &str, is_id: impl Fn(&str) -> bool) -> Option<String> {
    text.split(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')')
        .map(|w| w.trim_end_matches(['.', ':', ';']))
        .find(|w| is_id(w))
        .map(str::to_string)
}

fn is_tx_id(w: &str) -> bool {
    w.len() == 64 && w.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_contract_id(w: &str) -> bool {
    w.parse::<escrow::ContractId>().is_ok() && w.contains('-')
}

fn run_line(node: &NodeProcess, home: &Path, work: &Path, line: &str) -> String {
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", line])
        .current_dir(work)
        .env("B", process::binary())
        .env("HOME", home)
        .env("P2P_NODE_URL", &node.api)
        .env("P2P_NODE_DATA_DIR", &node.data_dir)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "README line `{line}` failed ({}):\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn the_readmes_client_examples_work_as_pasted_in_order() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    let lines = shell_block(&readme, "### Talk to it");
    let data = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(data.path(), &[]);
    let (mut tx, mut contract): (Option<String>, Option<String>) = (None, None);
    let mut ran = 0;
    for line in &lines {
        let command = command_of(line);
        // The block's first line names the binary; the test sets `$B`.
        if command.is_empty() || command.starts_with("B=") {
            continue;
        }
        let mut command = command.to_string();
        if command.contains("<TXID>") {
            let id = tx
                .as_deref()
                .expect("a transaction id printed before <TXID>");
            command = command.replace("<TXID>", id);
        }
        if command.contains("<ID>") {
            let id = contract
                .as_deref()
                .expect("a contract id printed before <ID>");
            command = command.replace("<ID>", id);
        }
        let stdout = run_line(&node, home.path(), work.path(), &command);
        ran += 1;
        if command.contains(" escrow create ") {
            contract = Some(
                first_id(&stdout, is_contract_id)
                    .unwrap_or_else(|| panic!("`{command}` printed no contract id: {stdout}")),
            );
        } else if command.contains(" transfer ") {
            tx = Some(
                first_id(&stdout, is_tx_id)
                    .unwrap_or_else(|| panic!("`{command}` printed no transaction id: {stdout}")),
            );
        }
    }
    assert!(ran >= 20, "only {ran} commands in the README's block");
    // What the block wrote where it says it does.
    assert!(work.path().join("me.key").is_file());
    assert!(work.path().join("net.json").is_file());
    let completions = home
        .path()
        .join(".local/share/bash-completion/completions/p2p-node");
    assert!(
        std::fs::read_to_string(completions)
            .unwrap()
            .contains("p2p-node")
    );
    // And the flows ended as the comments say: the first contract released,
    // the second refunded to charlie, the third refunded by bob.
    let contracts = node.ok(&["contracts", "--json"]);
    let contracts: serde_json::Value = serde_json::from_str(&contracts).unwrap();
    let states: Vec<String> = contracts
        .as_array()
        .or_else(|| contracts["contracts"].as_array())
        .expect("a list of contracts")
        .iter()
        .map(|c| c["state"].as_str().unwrap_or_default().to_lowercase())
        .collect();
    assert_eq!(
        states.iter().filter(|s| s.contains("released")).count(),
        1,
        "{contracts}"
    );
    assert_eq!(
        states.iter().filter(|s| s.contains("refunded")).count(),
        2,
        "{contracts}"
    );
    node.stop();
}

//! The client's commands against real node processes (docs/CLI.md,
//! "Subcommands"): `tx` and `--wait`, `block`, `blocks --last` at any
//! height, `peers`, `mempool`, `address`, `balance --key`, `genesis init`
//! and `completions`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/process.rs"]
mod process;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output};

use process::NodeProcess;
use serde_json::Value;

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// Runs the binary with `args`, with no node or data directory from the
/// environment.
fn p2p(args: &[&str]) -> Output {
    Command::new(process::binary())
        .args(args)
        .env_remove("P2P_NODE_URL")
        .env_remove("P2P_NODE_DATA_DIR")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A node on a network of easy blocks (8 bits: about 256 hashes each),
/// made with `genesis init`, so tests can mine hundreds of blocks.
fn fast_node(dir: &Path, extra: &[&str]) -> NodeProcess {
    let genesis = dir.join("genesis.json");
    if !genesis.exists() {
        let out = p2p(&[
            "genesis",
            "init",
            "--target-bits",
            "8",
            "--out",
            genesis.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let mut args = vec!["--genesis", genesis.to_str().unwrap()];
    args.extend(extra);
    NodeProcess::start(dir, &args)
}

/// The transaction id a sending command printed.
fn submitted_id(out: &str) -> String {
    out.lines()
        .find_map(|l| {
            l.strip_prefix("submitted ")
                .and_then(|r| r.split(' ').nth(1))
        })
        .unwrap_or_else(|| panic!("no id in {out}"))
        .to_string()
}

#[test]
fn tx_shows_pending_then_confirmed_with_its_confirmations() {
    let dir = tempfile::tempdir().unwrap();
    let node = fast_node(dir.path(), &["--mine", "off"]);
    let id = submitted_id(&node.ok(&["transfer", "--as", "alice", "bob", "10"]));
    let pending = node.ok(&["tx", &id]);
    assert!(pending.contains("pending in the mempool"), "{pending}");
    assert!(pending.contains("alice pays 10 to bob"), "{pending}");
    assert_eq!(json(&node.ok(&["tx", &id, "--json"]))["status"], "pending");

    node.ok(&["mine", "1"]);
    let one = node.ok(&["tx", &id]);
    assert!(one.contains("at height 1 (1 confirmation)"), "{one}");
    node.ok(&["mine", "2"]);
    let three = json(&node.ok(&["tx", &id, "--json"]));
    assert_eq!(
        (
            three["status"].as_str(),
            three["height"].as_u64(),
            three["confirmations"].as_u64()
        ),
        (Some("confirmed"), Some(1), Some(3))
    );

    // Not an id; no such transaction.
    let bad = node.cli(&["tx", "xyz"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad.stderr));
    let none = node.cli(&["tx", &"ab".repeat(32)]);
    assert_eq!(none.status.code(), Some(1), "{}", text(&none.stderr));
    assert!(text(&none.stderr).contains("not_found"));
    node.stop();
}

#[test]
fn a_transfer_carries_a_memo_onto_the_chain_and_a_too_long_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let node = fast_node(dir.path(), &["--mine", "off"]);
    let memo = ["--memo", "invoice 42"];
    let id =
        submitted_id(&node.ok(&[&["transfer", "--as", "alice", "bob", "0"][..], &memo].concat()));
    node.ok(&["mine", "1"]);
    let words = node.ok(&["tx", &id]);
    assert!(
        words.contains("alice pays 0 to bob with the memo \"invoice 42\""),
        "{words}"
    );
    let answer = json(&node.ok(&["tx", &id, "--json"]));
    assert_eq!(answer["status"], "confirmed");
    assert_eq!(answer["tx"]["kind"], "transfer-memo");
    assert_eq!(
        answer["tx"]["payload"]["TransferMemo"]["memo"],
        hex::encode("invoice 42")
    );
    // A plain transfer of nothing is still refused, by the node.
    let zero = node.cli(&["transfer", "--as", "alice", "bob", "0"]);
    assert_eq!(zero.status.code(), Some(1), "{}", text(&zero.stderr));
    // A memo over the limit is refused before anything is sent.
    let long = "m".repeat(escrow::MAX_MEMO_BYTES + 1);
    let out = node.cli(&["transfer", "--as", "alice", "bob", "1", "--memo", &long]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("longer than the 65536 allowed"),
        "{}",
        text(&out.stderr)
    );
    node.stop();
}

#[test]
fn wait_follows_a_transaction_to_its_confirmations_or_gives_up() {
    let dir = tempfile::tempdir().unwrap();
    let node = fast_node(dir.path(), &["--mine", "pending"]);

    // Every sending command takes --wait.
    let out = node.cli(&["transfer", "--as", "alice", "bob", "10", "--wait"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("submitted transfer "), "{stdout}");
    assert!(stdout.contains("confirmed in block "), "{stdout}");
    let created = node.cli(&[
        "escrow",
        "create",
        "--as",
        "charlie",
        "--seller",
        "dave",
        "--arbiter",
        "eve",
        "50",
        "--wait=1",
    ]);
    assert!(created.status.success(), "{}", text(&created.stderr));
    let contract = text(&created.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("contract ").map(str::to_string))
        .unwrap();
    // Confirmed: the contract is there without waiting any more.
    assert!(node.ok(&["contract", &contract]).contains("Funded"));
    for action in [
        vec!["escrow", "dispute", "--as", "charlie", &contract, "--wait"],
        vec![
            "escrow", "resolve", "--as", "eve", &contract, "--to", "buyer", "--wait", "1",
        ],
    ] {
        let out = node.cli(&action);
        assert!(out.status.success(), "{action:?}: {}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains("confirmed in block"),
            "{action:?}"
        );
    }
    let shown = node.ok(&["contract", &contract]);
    assert!(
        shown.contains("resolved to the buyer by eve in block"),
        "{shown}"
    );
    assert!(shown.contains("disputed by charlie in block"), "{shown}");
    assert!(
        shown.contains("created and funded by charlie in block"),
        "{shown}"
    );
    assert!(!shown.contains('{'), "{shown}");

    // --json: one object, the submit answer with where it was confirmed.
    let out = node.ok(&["transfer", "--as", "alice", "bob", "1", "--wait", "--json"]);
    let answer = json(&out);
    assert_eq!(answer["status"], "confirmed");
    assert!(answer["id"].is_string() && answer["block"].is_string());
    assert!(answer["confirmations"].as_u64().unwrap() >= 1);

    // Two confirmations from a node that mines only while transactions
    // wait: the first block comes, then the wait says where the
    // transaction is and goes on until `mine` adds the second.
    let mut waiting = Command::new(process::binary())
        .args(["transfer", "--as", "alice", "bob", "1", "--wait", "2"])
        .args(["--node", &node.api])
        .env("P2P_NODE_DATA_DIR", &node.data_dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let progress = BufReader::new(waiting.stderr.take().unwrap());
    let mut said = String::new();
    // Ends at the line, or when the client exits (its --timeout).
    for line in progress.lines().map_while(Result::ok) {
        said.push_str(&line);
        said.push('\n');
        if line.contains("1 of 2 confirmations") {
            break;
        }
    }
    assert!(
        said.contains("waiting: in block"),
        "progress on stderr: {said}"
    );
    node.ok(&["mine", "1"]);
    let out = waiting.wait_with_output().unwrap();
    assert!(out.status.success(), "{said}{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("(2 confirmations)"),
        "{}",
        text(&out.stdout)
    );

    // Three confirmations never come (one block at most, whatever the
    // node's speed): the wait gives up (exit 4), naming the transaction and
    // what to do.
    let out = node.cli(&[
        "transfer",
        "--as",
        "alice",
        "bob",
        "1",
        "--wait",
        "3",
        "--timeout",
        "1",
    ]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(
        err.contains("of 3 confirmations after 1 s") && err.contains("mine"),
        "{err}"
    );
    // --timeout without --wait is a usage error.
    let out = node.cli(&["transfer", "--as", "alice", "bob", "1", "--timeout", "2"]);
    assert_eq!(out.status.code(), Some(2));
    node.stop();
}

#[test]
fn block_by_height_and_by_hash_and_blocks_at_any_height() {
    let dir = tempfile::tempdir().unwrap();
    let node = fast_node(dir.path(), &["--mine", "off"]);
    let genesis = node.ok(&["block", "0"]);
    assert!(
        genesis.contains("height 0 (on the best chain)"),
        "{genesis}"
    );
    assert!(genesis.contains("1000000 to alice at genesis"), "{genesis}");

    node.ok(&["transfer", "--as", "alice", "bob", "10"]);
    node.ok(&["mine", "150"]);
    let one = json(&node.ok(&["block", "1", "--json"]));
    let hash = one["hash"].as_str().unwrap().to_string();
    assert_eq!(json(&node.ok(&["block", &hash, "--json"])), one);
    let shown = node.ok(&["block", &hash]);
    assert!(shown.contains("alice pays 10 to bob"), "{shown}");
    assert!(shown.contains("the reward of block 1 to ferdie"), "{shown}");
    assert!(shown.contains(" UTC"), "{shown}");
    let missing = node.cli(&["block", "9999999"]);
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(node.cli(&["block", "nothex!!"]).status.code(), Some(2));

    // 151 blocks: --last pages past the API's 100 a request.
    for (last, lines) in [
        (0u64, 0usize),
        (1, 1),
        (99, 99),
        (100, 100),
        (101, 101),
        (150, 150),
        (151, 151),
        (1000, 151),
    ] {
        let out = node.ok(&["blocks", "--last", &last.to_string()]);
        let heights: Vec<u64> = out
            .lines()
            .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(heights.len(), lines, "--last {last}: {out}");
        let expected: Vec<u64> = (151 - lines as u64..151).collect();
        assert_eq!(heights, expected, "--last {last}");
        let listed = json(&node.ok(&["blocks", "--last", &last.to_string(), "--json"]));
        assert_eq!(listed.as_array().unwrap().len(), lines);
    }
    assert!(
        node.ok(&["blocks", "--last", "1"])
            .contains("mined by ferdie")
    );
    assert_eq!(node.ok(&["blocks", "--last", "0"]), "");
    node.stop();
}

#[test]
fn peers_and_mempool() {
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let a = fast_node(a_dir.path(), &["--mine", "off"]);
    assert_eq!(a.ok(&["peers"]).trim(), "no peers");
    assert_eq!(a.ok(&["mempool"]).trim(), "the mempool is empty");
    std::fs::copy(
        a_dir.path().join("genesis.json"),
        b_dir.path().join("genesis.json"),
    )
    .unwrap();
    let b = fast_node(
        b_dir.path(),
        &["--mine", "off", "--peer", &a.p2p.to_string()],
    );
    process::wait_until("a connection", || {
        a.status()["peers"] == 1 && b.status()["peers"] == 1
    });
    let peers = b.ok(&["peers"]);
    assert_eq!(peers.lines().count(), 1, "{peers}");
    assert!(
        peers.contains("outbound") && peers.contains(&a.p2p.to_string()),
        "{peers}"
    );
    assert_eq!(json(&a.ok(&["peers", "--json"]))[0]["direction"], "inbound");

    let first = submitted_id(&a.ok(&["transfer", "--as", "alice", "bob", "10"]));
    let second = submitted_id(&a.ok(&["transfer", "--as", "eve", "ferdie", "3"]));
    let pool = a.ok(&["mempool"]);
    assert_eq!(pool.lines().count(), 2, "{pool}");
    assert!(
        pool.contains(&format!("{first}  alice pays 10 to bob")),
        "{pool}"
    );
    assert!(
        pool.contains(&format!("{second}  eve pays 3 to ferdie")),
        "{pool}"
    );
    assert_eq!(
        json(&a.ok(&["mempool", "--json"]))
            .as_array()
            .unwrap()
            .len(),
        2
    );
    b.stop();
    a.stop();
}

#[test]
fn addresses_and_balances_of_dev_names_and_key_files() {
    // Needs no node.
    let alice = p2p(&["address", "alice"]);
    assert_eq!(
        text(&alice.stdout).trim(),
        "24ba93c1386da59d7b69e54653040494336110973bcffbe71411cb2bd1eff962"
    );
    let bob = json(&text(&p2p(&["address", "bob", "--json"]).stdout));
    assert_eq!(bob["name"], "bob");
    let unknown = p2p(&["address", "mallory"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        text(&unknown.stderr).contains("alice, bob"),
        "{}",
        text(&unknown.stderr)
    );
    assert_eq!(p2p(&["address"]).status.code(), Some(2));

    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("me.key");
    let key = key.to_str().unwrap();
    let made = text(&p2p(&["keygen", "--out", key]).stdout)
        .trim()
        .to_string();
    assert_eq!(text(&p2p(&["address", "--key", key]).stdout).trim(), made);
    let again = p2p(&["keygen", "--out", key]);
    assert_eq!(again.status.code(), Some(6));
    assert!(text(&again.stderr).contains("already exists"));
    let missing = p2p(&["address", "--key", "/nonexistent/key"]);
    assert_eq!(missing.status.code(), Some(6));
    assert!(text(&missing.stderr).contains("/nonexistent/key"));

    let node = fast_node(dir.path(), &["--mine", "pending"]);
    node.ok(&["transfer", "--as", "alice", &made, "25", "--wait"]);
    let mine = json(&node.ok(&["balance", "--key", key, "--json"]));
    assert_eq!(mine["balance"], 25);
    assert!(node.ok(&["balance", "--key", key]).contains("balance 25"));
    assert!(node.ok(&["balance", "alice"]).starts_with("alice balance"));
    node.stop();
}

#[test]
fn genesis_init_writes_a_network_a_node_runs() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("net.json");
    let f = file.to_str().unwrap();
    let out = p2p(&[
        "genesis",
        "init",
        "--out",
        f,
        "--name",
        "test-net",
        "--alloc",
        "alice=500",
        "--alloc",
        &format!("{}=7", "ab".repeat(32)),
        "--reward",
        "9",
        "--target-bits",
        "8",
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let written = json(&text(&out.stdout));
    let g = json(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(g["name"], "test-net");
    assert_eq!(g["coinbase_reward"], 9);
    assert_eq!(g["params"]["initial_target_bits"], 8);
    assert_eq!(g["allocations"].as_array().unwrap().len(), 2);

    // Refuses to overwrite, unless --force.
    let again = p2p(&["genesis", "init", "--out", f]);
    assert_eq!(again.status.code(), Some(6));
    assert!(text(&again.stderr).contains("--force"));
    // Bad allocations are usage errors.
    for bad in ["alice=0", "alice", "mallory=5", "alice=x"] {
        let out = p2p(&["genesis", "init", "--alloc", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
    }
    let twice = p2p(&["genesis", "init", "--alloc", "bob=1", "--alloc", "bob=2"]);
    assert_eq!(twice.status.code(), Some(2));
    // Without --out: the file on stdout, a dev-like default.
    let printed = json(&text(&p2p(&["genesis", "init"]).stdout));
    assert_eq!(printed["allocations"].as_array().unwrap().len(), 6);
    assert_eq!(printed["params"]["initial_target_bits"], 16);

    let node = NodeProcess::start(dir.path(), &["--genesis", f, "--mine", "off"]);
    assert_eq!(node.status()["network"], written["network"]);
    assert_eq!(
        json(&node.ok(&["balance", "alice", "--json"]))["balance"],
        500
    );
    assert_eq!(json(&node.ok(&["balance", "bob", "--json"]))["balance"], 0);
    node.ok(&["mine", "2"]);
    assert_eq!(
        json(&node.ok(&["balance", "ferdie", "--json"]))["balance"],
        18
    );
    node.stop();
}

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = p2p(&["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let script = text(&out.stdout);
        for word in ["p2p-node", "transfer", "escrow", "node", "wait", "timeout"] {
            assert!(script.contains(word), "{shell} lacks {word}");
        }
    }
    assert_eq!(p2p(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn ids_by_prefix_a_pending_contract_and_mine_to_an_account() {
    let dir = tempfile::tempdir().unwrap();
    let node = fast_node(dir.path(), &["--mine", "off"]);
    let out = node.ok(&[
        "escrow",
        "create",
        "--as",
        "alice",
        "--seller",
        "bob",
        "--arbiter",
        "eve",
        "70",
    ]);
    let tx = submitted_id(&out);
    let contract = out
        .lines()
        .find_map(|l| l.strip_prefix("contract "))
        .unwrap()
        .to_string();
    let prefix = &contract[..8];

    // Pending: shown as such, with its transaction, exit 0.
    let pending = node.ok(&["contract", prefix]);
    assert!(
        pending.contains(&format!("contract {contract} is pending")),
        "{pending}"
    );
    assert!(
        pending.contains(&tx) && pending.contains("alice locks 70 for bob"),
        "{pending}"
    );
    let j = json(&node.ok(&["contract", &contract, "--json"]));
    assert_eq!(
        (j["status"].as_str(), j["tx"].as_str()),
        (Some("pending"), Some(tx.as_str()))
    );

    // Mined to an account of our choosing.
    let ferdie = json(&node.ok(&["balance", "ferdie", "--json"]))["balance"].clone();
    // Alice's balance once her escrow of 70 is mined with the two blocks.
    let alice = escrow::genesis::DEV_BALANCE - 70;
    node.ok(&["mine", "2", "--to", "alice"]);
    assert_eq!(
        json(&node.ok(&["balance", "ferdie", "--json"]))["balance"],
        ferdie
    );
    let reward = escrow::genesis::DEV_REWARD;
    assert_eq!(
        json(&node.ok(&["balance", "alice", "--json"]))["balance"].as_u64(),
        Some(alice + 2 * reward)
    );
    assert!(
        node.ok(&["blocks", "--last", "1"])
            .contains("mined by alice")
    );
    let to_hex = node.cli(&["mine", "1", "--to", &"cd".repeat(32)]);
    assert!(to_hex.status.success(), "{}", text(&to_hex.stderr));
    assert_eq!(
        node.cli(&["mine", "1", "--to", "mallory"]).status.code(),
        Some(2)
    );

    // Every id by its prefix: the contract (with or without its dashes),
    // the transaction, the block; and an action signs the full id.
    assert!(node.ok(&["contract", prefix]).contains("Funded"));
    let undashed: String = contract.chars().filter(|c| *c != '-').take(12).collect();
    assert!(node.ok(&["contract", &undashed]).contains(&contract));
    assert!(node.ok(&["tx", &tx[..8]]).contains("at height 1"));
    let block = json(&node.ok(&["block", "1", "--json"]))["hash"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(node.ok(&["block", &block[..10]]).contains(&block));
    node.ok(&["escrow", "confirm", "--as", "alice", prefix]);
    node.ok(&["mine", "1"]);
    let shown = node.ok(&["contract", prefix]);
    assert!(
        shown.contains("Released") && shown.contains("delivery confirmed by alice in block 4"),
        "{shown}"
    );

    // A prefix of nothing: not found (exit 1).
    let none = node.cli(&["tx", "00000000"]);
    assert_eq!(none.status.code(), Some(1), "{}", text(&none.stderr));
    node.stop();
}

#[test]
fn fees_are_chosen_shown_estimated_and_refused_when_too_low() {
    let dir = tempfile::tempdir().unwrap();
    let node = fast_node(dir.path(), &["--mine", "off", "--min-relay-fee", "2"]);
    // The estimate on a quiet network is the node's minimum: 2 coins per
    // kB, 1 coin for a 164-byte transfer.
    let fees = node.ok(&["fees"]);
    assert!(
        fees.contains("to be mined within 2 blocks: 2 coins/kB (1 for a 164-byte transfer)"),
        "{fees}"
    );
    let estimated = node.ok(&["transfer", "--as", "alice", "bob", "10"]);
    assert!(estimated.contains("(fee 1)"), "{estimated}");
    // A chosen fee, shown by `tx` and `mempool` with its rate.
    let chosen = node.ok(&["transfer", "--as", "bob", "dave", "10", "--fee", "40"]);
    assert!(chosen.contains("(fee 40)"), "{chosen}");
    let id = submitted_id(&chosen);
    let tx = node.ok(&["tx", &id]);
    assert!(tx.contains("bob pays 10 to"), "{tx}");
    assert!(tx.contains("; fee 40 ("), "{tx}");
    let looked = json(&node.ok(&["tx", &id, "--json"]));
    assert_eq!(looked["tx"]["fee"], 40);
    assert_eq!(
        looked["tx"]["fee_rate"].as_u64().unwrap(),
        40_000 / looked["tx"]["size"].as_u64().unwrap()
    );
    let pool = node.ok(&["mempool"]);
    assert_eq!(pool.lines().count(), 2, "{pool}");
    assert!(pool.lines().all(|l| l.contains("; fee ")), "{pool}");
    // The histogram: both bands, the better first.
    let fees = json(&node.ok(&["fees", "--blocks", "1", "--json"]));
    assert_eq!(fees["estimate"]["blocks"], 1);
    let bands = fees["mempool"]["histogram"].as_array().unwrap();
    assert_eq!(bands.len(), 2, "{fees}");
    assert_eq!(fees["mempool"]["min_relay_fee_rate"], 2);
    // Too low: the rule and what it takes, exit 1.
    let out = node.cli(&["transfer", "--as", "charlie", "bob", "1", "--fee", "0"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("(fee_too_low)"), "{err}");
    assert!(err.contains("pay at least 1"), "{err}");
    let out = node.cli(&["fees", "--blocks", "0"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("bad_blocks"));
    let status = node.ok(&["status"]);
    assert!(status.contains("min fee 2 coins/kB"), "{status}");
    node.stop();
}

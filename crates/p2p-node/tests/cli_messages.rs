//! The binary's messages and exit codes (docs/CLI.md, "Errors and exit
//! codes"): an unreachable node, tokens, options in the wrong place,
//! addresses given as host names, JSON errors, colour, and a node that
//! cannot start.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/process.rs"]
mod process;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Instant;

use process::NodeProcess;
use serde_json::Value;

/// Runs the binary with `args` and no environment that could point it at
/// another node or data directory.
fn p2p(args: &[&str]) -> Output {
    Command::new(process::binary())
        .args(args)
        .env_remove("P2P_NODE_URL")
        .env_remove("P2P_NODE_DATA_DIR")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An address where nothing listens: a port the OS gave and took back.
fn dead_address() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    addr.to_string()
}

/// The JSON error a `--json` run printed on stderr.
fn json_error(out: &Output) -> Value {
    let text = stderr(out);
    assert_eq!(text.trim().lines().count(), 1, "{text}");
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Every subcommand that asks a node.
const ASKING: &[&[&str]] = &[
    &["status"],
    &["balance", "alice"],
    &["transfer", "--as", "alice", "bob", "1"],
    &[
        "escrow",
        "create",
        "--as",
        "alice",
        "--seller",
        "bob",
        "--arbiter",
        "eve",
        "5",
    ],
    &["escrow", "confirm", "--as", "alice", "5cadb75c"],
    &["tx", "f4b4fb54c9b77848"],
    &["block", "1"],
    &["block", "00001afc420e4d45"],
    &["blocks", "--last", "3"],
    &["contract", "5cadb75c-9b7f"],
    &["contracts"],
    &["peers"],
    &["mempool"],
    &["mine", "1", "--token", "t"],
];

#[test]
fn an_unreachable_node_is_one_line_naming_the_url_and_what_to_do_for_every_subcommand() {
    let dead = dead_address();
    for args in ASKING {
        let mut with_node: Vec<&str> = args.to_vec();
        with_node.extend(["--node", &dead]);
        let out = p2p(&with_node);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(&format!("http://{dead}")), "{args:?}: {err}");
        assert!(
            err.contains("p2p-node run") && err.contains("--node"),
            "{err}"
        );

        with_node.push("--json");
        let out = p2p(&with_node);
        assert_eq!(out.status.code(), Some(3), "{args:?}");
        let e = json_error(&out);
        assert_eq!(e["code"], "unreachable", "{args:?}");
        assert!(e["message"].as_str().unwrap().contains(&dead));
    }
    // Without --node: the default URL is named.
    let out = Command::new(process::binary())
        .arg("status")
        .env(
            "P2P_NODE_URL",
            format!("localhost:{}", dead.rsplit(':').next().unwrap()),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("http://localhost:"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn node_addresses_take_every_documented_form_and_refuse_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), &["--mine", "off"]);
    let hostport = node.api.trim_start_matches("http://").to_string();
    let port = hostport.rsplit(':').next().unwrap().to_string();
    for form in [
        hostport.clone(),
        format!("localhost:{port}"),
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}/"),
    ] {
        // Before and after the subcommand.
        for args in [
            vec!["--node", &form, "status"],
            vec!["status", "--node", &form],
            vec!["--json", "--node", &form, "status"],
        ] {
            let out = p2p(&args);
            assert!(out.status.success(), "{args:?}: {}", stderr(&out));
            assert!(stdout(&out).contains("height"), "{args:?}");
        }
    }
    for bad in [
        format!("https://127.0.0.1:{port}"),
        "ftp://127.0.0.1:21".to_string(),
        ":8000".to_string(),
        "127.0.0.1:99999".to_string(),
        format!("http://127.0.0.1:{port}/?x=1"),
    ] {
        let out = p2p(&["status", "--node", &bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("HOST:PORT"),
            "{bad}: {}",
            stderr(&out)
        );
    }
    node.stop();
}

#[test]
fn the_token_is_read_from_the_data_dir_given_anywhere_and_a_wrong_or_missing_one_says_which_file() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), &["--mine", "off"]);
    let data = dir.path().to_str().unwrap();
    let api = node.api.as_str();
    for args in [
        vec!["--data-dir", data, "mine", "1", "--node", api],
        vec!["mine", "1", "--data-dir", data, "--node", api],
        vec!["--node", api, "--data-dir", data, "mine", "1"],
    ] {
        let out = p2p(&args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert!(stdout(&out).starts_with("mined "), "{args:?}");
    }

    // No cookie in the directory given.
    let empty = tempfile::tempdir().unwrap();
    let out = p2p(&[
        "mine",
        "1",
        "--node",
        api,
        "--data-dir",
        empty.path().to_str().unwrap(),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(6), "{err}");
    let cookie = empty.path().join("api.cookie");
    assert!(err.contains(cookie.to_str().unwrap()), "{err}");
    assert!(
        err.contains("--data-dir") && err.contains("--token"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    // Another node's cookie: the file read is named.
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("api.cookie"), "0123abcd").unwrap();
    let out = p2p(&[
        "mine",
        "1",
        "--node",
        api,
        "--data-dir",
        other.path().to_str().unwrap(),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let cookie = other.path().join("api.cookie");
    assert!(
        err.contains(cookie.to_str().unwrap()) && err.contains("--data-dir"),
        "{err}"
    );
    assert!(err.contains("unauthorized"), "{err}");

    // A wrong --token is named as such; with --json the API's code.
    let out = p2p(&["mine", "1", "--node", api, "--token", "nope", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let e = json_error(&out);
    assert_eq!(e["code"], "unauthorized");
    assert!(e["message"].as_str().unwrap().contains("--token"), "{e}");
    node.stop();
}

#[test]
fn options_in_the_wrong_place_are_errors_that_say_where_they_belong() {
    let cases: &[(&[&str], &str)] = &[
        (&["--api", "127.0.0.1:8001", "status"], "--node"),
        (&["--listen", "127.0.0.1:5001", "balance", "alice"], "run"),
        (&["--peer", "127.0.0.1:5001", "peers"], "run"),
        (&["run", "--node", "127.0.0.1:8001"], "--api"),
        (&["--json", "run"], "client"),
        (&["--listen", "127.0.0.1:5001", "run"], "after it"),
    ];
    for (args, hint) in cases {
        let out = p2p(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(hint), "{args:?}: {err}");
    }
    // With --json, a usage error is JSON too; help and version are not
    // errors.
    let out = p2p(&["--json", "transfer", "--as", "alice", "mallory", "1"]);
    assert_eq!(out.status.code(), Some(2));
    let e = json_error(&out);
    assert_eq!(e["code"], "usage");
    assert!(e["message"].as_str().unwrap().contains("mallory"), "{e}");
    for help in [
        &["--help"][..],
        &["run", "--help"],
        &["--json", "--version"],
    ] {
        let out = p2p(help);
        assert_eq!(out.status.code(), Some(0), "{help:?}");
    }
    // A missing subcommand with --json: JSON, not the help text.
    let out = p2p(&["--json", "escrow"]);
    assert_eq!(out.status.code(), Some(2));
    let e = json_error(&out);
    assert_eq!(e["code"], "usage");
    assert!(
        e["message"].as_str().unwrap().contains("p2p-node escrow"),
        "{e}"
    );
    let help = stdout(&p2p(&["run", "--help"]));
    // `run` refuses the client's options: its help does not offer them.
    for client in ["--node", "--token", "--json", "--request-timeout"] {
        assert!(!help.contains(client), "run --help lists {client}: {help}");
    }
    for flag in [
        "--listen",
        "--api",
        "--peer",
        "--data-dir",
        "--mine",
        "--genesis",
        "Node options",
    ] {
        assert!(help.contains(flag), "run --help lacks {flag}");
    }
}

/// Reads `r` to its end on a thread of its own.
fn read_all(mut r: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = r.read_to_end(&mut bytes);
        bytes
    })
}

/// Starts a node with `args` (no data directory of its own given here)
/// and returns its output once it exits; a node still running after
/// `process::HANG_GUARD` (a hang) is killed while it is still our unreaped
/// child, so the kill cannot reach another process.
fn node_that_must_fail(args: &[&str]) -> Output {
    let mut child = Command::new(process::binary())
        .args(args)
        .env_remove("P2P_NODE_DATA_DIR")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = read_all(child.stdout.take().unwrap());
    let stderr = read_all(child.stderr.take().unwrap());
    let status = process::wait_or_kill(&mut child);
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

#[test]
fn a_node_that_cannot_start_names_the_flag_to_change() {
    let dir = tempfile::tempdir().unwrap();
    let first = NodeProcess::start(dir.path(), &["--mine", "off"]);
    let data = |d: &Path| d.to_str().unwrap().to_string();

    // The P2P address in use.
    let other = tempfile::tempdir().unwrap();
    let p2p_addr = first.p2p.to_string();
    let out = node_that_must_fail(&[
        "--listen",
        &p2p_addr,
        "--api",
        "127.0.0.1:0",
        "--log",
        "off",
        "--data-dir",
        &data(other.path()),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(6), "{err}");
    assert!(
        err.contains("in use") && err.contains("--listen") && err.contains(&p2p_addr),
        "{err}"
    );
    // Port 0 is suggested with its own data directory (nodes on port 0
    // would otherwise share ~/.p2p-node/node-0).
    assert!(
        err.contains("port 0 picks a free one; then give --data-dir DIR too"),
        "{err}"
    );

    // The API address in use, as `run --api`.
    let other = tempfile::tempdir().unwrap();
    let api_addr = first.api.trim_start_matches("http://").to_string();
    let out = node_that_must_fail(&[
        "run",
        "--listen",
        "127.0.0.1:0",
        "--api",
        &api_addr,
        "--log",
        "off",
        "--data-dir",
        &data(other.path()),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(6), "{err}");
    assert!(
        err.contains("in use") && err.contains("--api") && err.contains(&api_addr),
        "{err}"
    );

    // The data directory in use.
    let out = node_that_must_fail(&[
        "--listen",
        "127.0.0.1:0",
        "--api",
        "127.0.0.1:0",
        "--log",
        "off",
        "--data-dir",
        &data(dir.path()),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(6), "{err}");
    assert!(
        err.contains("another node") && err.contains("--data-dir"),
        "{err}"
    );
    first.stop();

    // A genesis file that is missing: the path and the cause once.
    let missing = dir.path().join("nope.json");
    let out = node_that_must_fail(&[
        "--listen",
        "127.0.0.1:0",
        "--api",
        "127.0.0.1:0",
        "--log",
        "off",
        "--genesis",
        missing.to_str().unwrap(),
        "--data-dir",
        &data(other.path()),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(6), "{err}");
    assert_eq!(err.matches("os error 2").count(), 1, "{err}");
    assert!(
        err.contains(missing.to_str().unwrap()) && err.contains("genesis init"),
        "{err}"
    );
    // One that is not a genesis: the file and the format's doc.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{}").unwrap();
    let out = node_that_must_fail(&[
        "--listen",
        "127.0.0.1:0",
        "--api",
        "127.0.0.1:0",
        "--log",
        "off",
        "--genesis",
        bad.to_str().unwrap(),
        "--data-dir",
        &data(other.path()),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(6), "{err}");
    assert!(
        err.contains(bad.to_str().unwrap()) && err.contains("docs/CLI.md"),
        "{err}"
    );
}

#[test]
fn host_names_resolve_and_a_name_that_does_not_is_a_clear_error() {
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let a = NodeProcess::start(a_dir.path(), &["--mine", "off"]);
    let peer = format!("localhost:{}", a.p2p.port());
    // b listens and serves on `localhost` names, and dials a by name.
    let b = NodeProcess::start(
        b_dir.path(),
        &[
            "--mine",
            "off",
            "--peer",
            &peer,
            "--advertise",
            "localhost:1",
        ],
    );
    process::wait_until("b to connect to a by name", || a.status()["peers"] == 1);
    b.stop();
    a.stop();

    for args in [
        &["--peer", "no-such-host.invalid:5000"][..],
        &["run", "--listen", "no-such-host.invalid:5000"],
        &["--api", "localhost"],
        &["--listen", "localhost:http"],
    ] {
        let out = p2p(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(args[args.len() - 1]), "{args:?}: {err}");
    }
}

#[test]
fn no_colour_codes_when_the_output_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(process::binary())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--api",
            "127.0.0.1:0",
            "--log",
            "info",
            "--mine",
            "off",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let errors = read_all(child.stderr.take().unwrap());
    let (lines, seen) = std::sync::mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(out)).map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    // The node logs as it starts (info): wait until it has started and
    // logged, then stop it (SIGTERM).
    let mut logs = String::new();
    let deadline = Instant::now() + process::HANG_GUARD;
    while !(logs.contains("api listening on") && logs.contains("INFO")) {
        let left = deadline.saturating_duration_since(Instant::now());
        match seen.recv_timeout(left) {
            Ok(line) => {
                logs.push_str(&line);
                logs.push('\n');
            }
            Err(e) => panic!("the node did not start and log ({e}): {logs}"),
        }
    }
    // SAFETY: kill(2) on our own child's pid, not reaped yet.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let _ = child.wait();
    logs.extend(seen.iter().map(|l| l + "\n"));
    assert!(
        !logs.contains('\u{1b}'),
        "colour codes in the logs: {logs:?}"
    );
    let errors = String::from_utf8_lossy(&errors.join().unwrap()).into_owned();
    assert!(!errors.contains('\u{1b}'), "{errors:?}");

    // The client's errors, clap's included.
    for args in [
        &["bogus"][..],
        &["status", "--node", &dead_address()],
        &["balance", "mallory"],
    ] {
        let out = p2p(args);
        assert!(!out.status.success());
        assert!(
            !stderr(&out).contains('\u{1b}'),
            "{args:?}: {:?}",
            stderr(&out)
        );
    }
}

#[test]
fn a_closed_stdout_is_not_a_panic() {
    for args in [
        &["completions", "bash"][..],
        &["genesis", "init"],
        &["address", "alice"],
        &["--help"],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(process::binary())
            .args(args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn a_transaction_the_node_does_not_know_says_when_the_node_started_and_what_a_crash_loses() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), &["--mine", "off"]);
    let unknown = "ab".repeat(32);
    let out = node.cli(&["tx", &unknown]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(text.contains("(not_found)"), "{text}");
    assert!(text.contains("the node has been running for"), "{text}");
    assert!(text.contains("send it again"), "{text}");
    // As JSON: the same code, the same message.
    let out = node.cli(&["tx", &unknown, "--json"]);
    let e = json_error(&out);
    assert_eq!(e["code"], "not_found");
    assert!(
        e["message"].as_str().unwrap().contains("running for"),
        "{e}"
    );
    // /status says when it started, by the node's clock: not in the future.
    let started = node.status()["started_at_ms"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(started > 0 && started <= now, "started_at_ms {started}");
    node.stop();
}

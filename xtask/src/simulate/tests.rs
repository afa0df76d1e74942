//! The demo's command line and `--keep`'s PID file, without starting a
//! node.

use std::path::PathBuf;

use clap::error::ErrorKind;

use super::keep::{KeptNode, is_node, parse_pid_file, pid_file_text};
use super::{Invocation, Scenario, error_text, parse, plan};

fn args(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_string).collect()
}

/// Parses and plans a command line; clap's errors come back as their kind.
fn invocation(line: &str) -> Result<anyhow::Result<Invocation>, ErrorKind> {
    parse(&args(line)).map(plan).map_err(|e| e.kind())
}

#[test]
fn help_in_either_spelling_is_clap_s_help_and_names_every_option() {
    for flag in ["--help", "-h", "--nodes 6 --help"] {
        let e = parse(&args(flag)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::DisplayHelp, "{flag}");
        // DisplayHelp goes to stdout with exit status 0.
        assert!(!e.use_stderr(), "{flag}");
        assert_eq!(e.exit_code(), 0, "{flag}");
        let text = e.to_string();
        for option in [
            "--nodes",
            "--base-port",
            "--api-base-port",
            "--scenario",
            "--keep",
            "--stop",
            "cargo xtask simulate",
            "crash-restart",
        ] {
            assert!(text.contains(option), "{flag}: no {option} in:\n{text}");
        }
    }
}

#[test]
fn bad_options_fail_with_the_usage() {
    for (line, kind) in [
        ("--frobnicate", ErrorKind::UnknownArgument),
        ("extra", ErrorKind::UnknownArgument),
        ("--nodes", ErrorKind::InvalidValue),
        ("--nodes many", ErrorKind::ValueValidation),
        ("--nodes -1", ErrorKind::UnknownArgument),
        ("--base-port 70000", ErrorKind::ValueValidation),
        ("--scenario chaos", ErrorKind::InvalidValue),
        ("--stop --keep", ErrorKind::ArgumentConflict),
        ("--stop /tmp/x --nodes 3", ErrorKind::ArgumentConflict),
        ("--keep --keep", ErrorKind::ArgumentConflict),
    ] {
        let e = parse(&args(line)).unwrap_err();
        assert_eq!(e.kind(), kind, "{line}: {e}");
        assert!(e.use_stderr(), "{line}");
        assert_ne!(e.exit_code(), 0, "{line}");
        let text = error_text(&e);
        assert!(
            text.contains("Usage: cargo xtask simulate"),
            "{line}: no usage in:\n{text}"
        );
    }
}

#[test]
fn the_defaults_are_the_four_node_demo() {
    let Ok(Ok(Invocation::Run(o, scenarios))) = invocation("") else {
        panic!("no plain run");
    };
    assert_eq!(
        (o.nodes, o.base_port, o.api_base_port, o.keep),
        (4, 5000, 8000, false)
    );
    assert_eq!(scenarios, vec![Scenario::Demo]);
    assert_eq!(o.ports(3).unwrap(), (5003, 8003));
}

#[test]
fn scenarios_and_keep_are_read() {
    let Ok(Ok(Invocation::Run(o, scenarios))) =
        invocation("--scenario all --nodes 5 --base-port 6000 --api-base-port 7000")
    else {
        panic!("no run");
    };
    assert_eq!(
        scenarios,
        vec![
            Scenario::CrashRestart,
            Scenario::LateJoin,
            Scenario::Partition
        ]
    );
    assert_eq!((o.nodes, o.base_port, o.api_base_port), (5, 6000, 7000));
    let Ok(Ok(Invocation::Run(o, scenarios))) = invocation("--scenario late-join --keep") else {
        panic!("no run");
    };
    assert!(o.keep);
    assert_eq!(scenarios, vec![Scenario::LateJoin]);
}

#[test]
fn stop_takes_an_optional_directory() {
    assert!(matches!(
        invocation("--stop"),
        Ok(Ok(Invocation::Stop(None)))
    ));
    let Ok(Ok(Invocation::Stop(Some(dir)))) = invocation("--stop /tmp/escrow-sim-x") else {
        panic!("no stop");
    };
    assert_eq!(dir, PathBuf::from("/tmp/escrow-sim-x"));
}

#[test]
fn plans_that_cannot_run_say_why() {
    for (line, says) in [
        ("--nodes 1", "at least 2 nodes"),
        ("--nodes 0", "at least 2 nodes"),
        ("--nodes 3 --scenario partition", "needs at least 4 nodes"),
        ("--nodes 3 --scenario all", "needs at least 4 nodes"),
        ("--scenario all --keep", "one scenario at a time"),
        ("--base-port 65534", "65535"),
        // Late-join starts one node more: 65532 + 4 is past the end.
        ("--base-port 65532 --scenario late-join", "65536"),
        ("--api-base-port 0", "1..=65535"),
        ("--base-port 8002", "overlap"),
        ("--base-port 7997", "overlap"),
        ("--api-base-port 5003", "overlap"),
    ] {
        let Ok(Err(e)) = invocation(line) else {
            panic!("{line} was accepted");
        };
        let text = format!("{e:#}");
        assert!(text.contains(says), "{line}: `{text}` does not say {says}");
    }
    // Adjacent ranges do not overlap.
    assert!(matches!(
        invocation("--base-port 8004"),
        Ok(Ok(Invocation::Run(..)))
    ));
    assert!(matches!(
        invocation("--base-port 65532"),
        Ok(Ok(Invocation::Run(..)))
    ));
}

fn kept(pid: u32, index: usize, dir: &str) -> KeptNode {
    KeptNode {
        pid,
        index,
        p2p: format!("127.0.0.1:{}", 5000 + index),
        api: format!("http://127.0.0.1:{}", 8000 + index),
        data_dir: PathBuf::from(dir),
    }
}

#[test]
fn the_pid_file_reads_back_as_written() {
    let nodes = vec![
        kept(41234, 0, "/tmp/escrow-sim-Ab12/node-0"),
        kept(41240, 1, "/tmp/escrow-sim-Ab12/node-1"),
        // A directory with spaces in its name survives: it is the last
        // field, the rest of the line.
        kept(7, 12, "/home/a user/demo dir/node-12"),
    ];
    let text = pid_file_text(&nodes);
    assert!(text.starts_with('#'), "{text}");
    assert_eq!(parse_pid_file(&text).unwrap(), nodes);
    assert_eq!(parse_pid_file(&pid_file_text(&[])).unwrap(), vec![]);
}

#[test]
fn a_damaged_pid_file_is_refused_with_the_line() {
    for (text, says) in [
        ("41234 0 127.0.0.1:5000", "line 1"),
        (
            "# header\nabc 0 a b /d",
            "line 2: `abc` is not a process id",
        ),
        ("0 0 a b /d", "`0` is not a process id"),
        ("1 0 a b /d", "`1` is not a process id"),
        ("-5 0 a b /d", "`-5` is not a process id"),
        ("99999999999 0 a b /d", "not a process id"),
        ("12 x a b /d", "`x` is not a node number"),
        ("\n\n12 0 a b", "line 3"),
    ] {
        let e = parse_pid_file(text).unwrap_err();
        assert!(format!("{e:#}").contains(says), "{text:?}: {e:#}");
    }
}

#[test]
fn only_a_p2p_node_on_the_recorded_data_directory_is_ours() {
    let node = kept(41234, 0, "/tmp/escrow-sim-Ab12/node-0");
    let ours = "/work/target/release/p2p-node --listen 127.0.0.1:5000 --api 127.0.0.1:8000 \
                --mine pending --data-dir /tmp/escrow-sim-Ab12/node-0";
    assert!(is_node(ours, &node));
    // The same binary on another demo's directory, another program on
    // this one, and an unrelated process that reused the PID.
    assert!(!is_node(
        "/work/target/release/p2p-node --data-dir /tmp/escrow-sim-Zz99/node-0",
        &node
    ));
    assert!(!is_node("vim /tmp/escrow-sim-Ab12/node-0/node.log", &node));
    assert!(!is_node("/usr/sbin/sshd -D", &node));
    let one = kept(41235, 1, "/tmp/escrow-sim-Ab12/node-1");
    assert!(!is_node(
        "/work/target/release/p2p-node --data-dir /tmp/escrow-sim-Ab12/node-10",
        &one
    ));
    assert!(is_node(
        "/work/target/release/p2p-node --data-dir /tmp/escrow-sim-Ab12/node-1 --peer 127.0.0.1:5000",
        &one
    ));
}

/// A stand-in for the node binary: `keygen` prints `address`, a run does
/// what `run` says.
///
/// The script is written by a child `sh`, never through a file this test
/// process opens: tests run on several threads, and a child another test
/// forks while this process holds the script open for writing inherits
/// that descriptor until it execs, so running the script in that moment
/// fails with "Text file busy" (ETXTBSY).
#[cfg(unix)]
fn fake_node(dir: &std::path::Path, address: &str, run: &str) -> PathBuf {
    let path = dir.join("p2p-node");
    let script =
        format!("#!/bin/sh\nif [ \"$1\" = keygen ]; then echo {address}; exit 0; fi\n{run}\n");
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg("printf '%s' \"$2\" > \"$1\" && chmod 755 \"$1\"")
        .arg("sh")
        .arg(&path)
        .arg(&script)
        .status()
        .unwrap();
    assert!(status.success(), "cannot write {}", path.display());
    path
}

#[cfg(unix)]
#[test]
fn a_node_that_fails_at_start_says_how_it_ended_and_what_it_printed() {
    use super::net::Net;
    use super::{Options, Scenario};
    let address = "5e".repeat(32);
    let options = Options {
        nodes: 2,
        base_port: 5000,
        api_base_port: 8000,
        scenario: Scenario::Demo,
        keep: false,
    };
    for (run, says) in [
        (
            "echo 'data directory /x'; echo 'error: cannot listen on 127.0.0.1:5000: address in use' >&2; exit 3",
            vec![
                "node 0 (P2P 127.0.0.1:5000, API 127.0.0.1:8000) did not start",
                "exited with code 3",
                "data directory /x",
                "address in use",
            ],
        ),
        (
            "kill -9 $$",
            vec!["was killed by signal 9", "(it wrote nothing)"],
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let fake = fake_node(dir.path(), &address, run);
        let mut net = Net::new(&fake, false).unwrap();
        let text = format!("{:#}", net.start(0, &options, &[]).unwrap_err());
        for s in says {
            assert!(text.contains(s), "{run}: `{s}` not in:\n{text}");
        }
        assert!(!text.contains("ExitStatus"), "{text}");
    }
    // A keygen that prints no address is named as such.
    let dir = tempfile::tempdir().unwrap();
    let fake = fake_node(dir.path(), "not-an-address", "exit 0");
    let mut net = Net::new(&fake, false).unwrap();
    let text = format!("{:#}", net.start(0, &options, &[]).unwrap_err());
    assert!(
        text.contains("keygen") && text.contains("not an address"),
        "{text}"
    );
}

#[cfg(unix)]
#[test]
fn stop_signals_only_the_recorded_nodes_still_running() {
    use super::keep::{PID_FILE, stop_demo};
    use std::process::Command;
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    // A stand-in node: a shell script named p2p-node on its data directory,
    // which ends on SIGTERM.
    let fake = fake_node(
        dir.path(),
        "-",
        "trap 'kill $! 2>/dev/null; exit 0' TERM\nsleep 30 &\nwait",
    );
    let node_dir = dir.path().join("node-0");
    let mut running = Command::new(&fake)
        .arg("--data-dir")
        .arg(&node_dir)
        .spawn()
        .unwrap();
    // A PID no longer in use, and one that is now another process (this
    // test itself).
    let mut ended = Command::new("true").spawn().unwrap();
    ended.wait().unwrap();
    let nodes = vec![
        KeptNode {
            pid: running.id(),
            ..kept(0, 0, node_dir.to_str().unwrap())
        },
        KeptNode {
            pid: ended.id(),
            ..kept(0, 1, &dir.path().join("node-1").display().to_string())
        },
        KeptNode {
            pid: std::process::id(),
            ..kept(0, 2, &dir.path().join("node-2").display().to_string())
        },
    ];
    std::fs::write(dir.path().join(PID_FILE), pid_file_text(&nodes)).unwrap();
    // Give the script a moment to set its trap.
    std::thread::sleep(Duration::from_millis(200));
    stop_demo(dir.path()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while running.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the recorded node was not stopped"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!dir.path().join(PID_FILE).exists(), "the PID file stays");
    // A second stop finds nothing to stop, and says where it looked.
    let e = stop_demo(dir.path()).unwrap_err();
    assert!(format!("{e:#}").contains(PID_FILE), "{e:#}");
}

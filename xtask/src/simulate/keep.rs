//! `--keep` and `--stop`: a kept demo's nodes are recorded, and only
//! those are ever signalled.
//!
//! `--keep` writes `nodes.pid` in the demo's directory, one line per node:
//!
//! ```text
//! # PID NODE P2P API DATA_DIR
//! 41234 0 127.0.0.1:5000 http://127.0.0.1:8000 /tmp/escrow-sim-Ab12/node-0
//! ```
//!
//! and adds the directory to `simulate-kept.txt` in the target directory.
//! `--stop` reads those files and, for each node, checks that its PID is
//! still a `p2p-node` running on that data directory before it sends
//! SIGTERM (then SIGKILL if it lingers): a PID the system has since given
//! to another process is left alone.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::narrate::ID_DIGITS;
use super::net::{Net, prefix};
use super::setup::CONTRACT_DIGITS;

/// The PID file's name in a kept demo's directory.
pub(super) const PID_FILE: &str = "nodes.pid";

/// One recorded node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct KeptNode {
    pub(super) pid: u32,
    pub(super) index: usize,
    pub(super) p2p: String,
    pub(super) api: String,
    pub(super) data_dir: PathBuf,
}

/// The PID file's text for these nodes.
pub(super) fn pid_file_text(nodes: &[KeptNode]) -> String {
    let mut text = String::from(
        "# cargo xtask simulate --keep: the demo's nodes; `cargo xtask simulate --stop` stops them\n\
         # PID NODE P2P API DATA_DIR\n",
    );
    for n in nodes {
        text.push_str(&format!(
            "{} {} {} {} {}\n",
            n.pid,
            n.index,
            n.p2p,
            n.api,
            n.data_dir.display()
        ));
    }
    text
}

/// Reads a PID file's text back; `#` lines and blank lines are skipped.
pub(super) fn parse_pid_file(text: &str) -> anyhow::Result<Vec<KeptNode>> {
    let mut nodes = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.splitn(5, ' ').collect();
        let [pid, index, p2p, api, dir] = fields.as_slice() else {
            bail!(
                "line {}: `{line}` is not `PID NODE P2P API DATA_DIR`",
                number + 1
            );
        };
        let pid: u32 = pid
            .parse()
            .ok()
            .filter(|p| *p > 1)
            .with_context(|| format!("line {}: `{pid}` is not a process id", number + 1))?;
        let index = index
            .parse()
            .with_context(|| format!("line {}: `{index}` is not a node number", number + 1))?;
        nodes.push(KeptNode {
            pid,
            index,
            p2p: (*p2p).to_string(),
            api: (*api).to_string(),
            data_dir: PathBuf::from(dir.trim()),
        });
    }
    Ok(nodes)
}

/// The file that lists the directories of demos left running.
fn registry(root: &Path) -> PathBuf {
    crate::build::target_dir(root).join("simulate-kept.txt")
}

/// The directories of kept demos whose PID file is still there.
pub(super) fn recorded(root: &Path) -> Vec<PathBuf> {
    std::fs::read_to_string(registry(root))
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(PathBuf::from)
        .filter(|d| d.join(PID_FILE).is_file())
        .collect()
}

/// Rewrites the registry with `dirs`.
fn record(root: &Path, dirs: &[PathBuf]) -> anyhow::Result<()> {
    let path = registry(root);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let text: String = dirs.iter().map(|d| format!("{}\n", d.display())).collect();
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Leaves the network running: keeps its directory, writes the PID file,
/// records the directory for `--stop` and prints what runs where.
pub(super) fn keep(root: &Path, net: &mut Net) -> anyhow::Result<()> {
    let Some(dir) = net.dir.take() else {
        bail!("the demo's directory is gone");
    };
    let dir = dir.keep();
    let nodes: Vec<KeptNode> = net
        .live()
        .filter_map(|n| {
            Some(KeptNode {
                pid: n.child.as_ref()?.id(),
                index: n.index,
                p2p: n.p2p.clone(),
                api: n.api.clone(),
                data_dir: n.data_dir.clone(),
            })
        })
        .collect();
    let pid_file = dir.join(PID_FILE);
    std::fs::write(&pid_file, pid_file_text(&nodes))
        .with_context(|| format!("cannot write {}", pid_file.display()))?;
    let mut dirs = recorded(root);
    dirs.push(dir.clone());
    record(root, &dirs)?;

    println!("\nthe network keeps running (--keep):");
    for (kept, n) in nodes.iter().zip(net.live()) {
        println!(
            "  node {}: pid {}, P2P {}, API {} (explorer: {}/), mines to {} (key: {})",
            kept.index,
            kept.pid,
            kept.p2p,
            kept.api,
            kept.api,
            n.miner,
            n.data_dir.join("miner.key").display()
        );
    }
    println!("  data and logs (node-N/node.log) under {}", dir.display());
    println!("  PIDs in {}", pid_file.display());
    if let Some(first) = net.live().next() {
        let binary = net.binary.display();
        let api = &first.api;
        println!("look things up (any unique prefix of 8 or more hex digits works):");
        if let Some(id) = net.get(first, "/contracts")?[0]["id"].as_str() {
            println!(
                "  {binary} contract {} --node {api}",
                prefix(id, CONTRACT_DIGITS)
            );
        }
        let tip = net.get(first, "/status")?["tip"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if !tip.is_empty() {
            println!("  {binary} block {} --node {api}", prefix(&tip, ID_DIGITS));
            let block = net.get(first, &format!("/blocks/{tip}"))?;
            if let Some(tx) = block["transactions"]
                .as_array()
                .and_then(|txs| txs.last())
                .and_then(|tx| tx["id"].as_str())
            {
                println!("  {binary} tx {} --node {api}", prefix(tx, ID_DIGITS));
            }
        }
    }
    println!("stop exactly these nodes with: cargo xtask simulate --stop");
    Ok(())
}

/// What a recorded PID is now.
#[derive(Debug, PartialEq, Eq)]
enum Now {
    /// Still the node: `p2p-node` on its data directory.
    Ours,
    /// No such process.
    Gone,
    /// Another process, with this command line.
    Other(String),
}

/// Whether a process's command line (its arguments joined by spaces) is
/// the recorded node's: `p2p-node` with `--data-dir` on its very directory
/// (`node-1` is not `node-10`).
pub(super) fn is_node(command_line: &str, node: &KeptNode) -> bool {
    let padded = format!(" {command_line} ");
    padded.contains("p2p-node ")
        && padded.contains(&format!(" --data-dir {} ", node.data_dir.display()))
}

/// A process's command line: `/proc` on Linux, `ps` elsewhere.
fn command_line(pid: u32) -> Option<String> {
    if let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) {
        let args: Vec<String> = raw
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        return (!args.is_empty()).then(|| args.join(" "));
    }
    if Path::new("/proc/self").exists() {
        // Linux, and no such process.
        return None;
    }
    let out = Command::new("ps")
        .args(["-p", &pid.to_string(), "-o", "args="])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn now(node: &KeptNode) -> Now {
    match command_line(node.pid) {
        None => Now::Gone,
        Some(c) if is_node(&c, node) => Now::Ours,
        Some(c) => Now::Other(c),
    }
}

fn signal(pid: u32, signal: &str) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .context("cannot run `kill`")?;
    if !status.success() {
        bail!("`kill {signal} {pid}` failed");
    }
    Ok(())
}

/// SIGTERM, up to ten seconds to stop cleanly, then SIGKILL if the PID is
/// still the node's.
fn terminate(node: &KeptNode) -> anyhow::Result<&'static str> {
    signal(node.pid, "-TERM")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if now(node) != Now::Ours {
            return Ok("stopped");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Checked again right before the kill: the node may have exited during
    // the last sleep, and its PID gone to another process.
    match now(node) {
        Now::Ours => {
            signal(node.pid, "-KILL")?;
            Ok("killed (it did not stop within 10 s of SIGTERM)")
        }
        Now::Gone | Now::Other(_) => Ok("stopped"),
    }
}

/// Stops one kept demo's nodes and removes its PID file; a node that
/// cannot be stopped keeps the file and fails the call.
pub(super) fn stop_demo(dir: &Path) -> anyhow::Result<()> {
    let pid_file = dir.join(PID_FILE);
    let text = std::fs::read_to_string(&pid_file).with_context(|| {
        format!(
            "cannot read {}: is {} a demo that --keep left running (and not stopped already)?",
            pid_file.display(),
            dir.display()
        )
    })?;
    let nodes = parse_pid_file(&text).with_context(|| format!("{}", pid_file.display()))?;
    println!("the demo in {}:", dir.display());
    let mut failed = Vec::new();
    for node in &nodes {
        match now(node) {
            Now::Ours => match terminate(node) {
                Ok(how) => println!(
                    "  node {} (pid {}, API {}): {how}",
                    node.index, node.pid, node.api
                ),
                Err(e) => {
                    println!("  node {} (pid {}): {e:#}", node.index, node.pid);
                    failed.push(node.index);
                }
            },
            Now::Gone => println!(
                "  node {} (pid {}) had already stopped",
                node.index, node.pid
            ),
            Now::Other(c) => println!(
                "  node {} had already stopped: pid {} is now another process (`{c}`), left alone",
                node.index, node.pid
            ),
        }
    }
    if !failed.is_empty() {
        bail!(
            "nodes {failed:?} of {} could not be stopped; {} is left in place",
            dir.display(),
            pid_file.display()
        );
    }
    std::fs::remove_file(&pid_file)
        .with_context(|| format!("cannot remove {}", pid_file.display()))?;
    println!(
        "  its data and logs stay in {} (`rm -r {}` removes them)",
        dir.display(),
        dir.display()
    );
    Ok(())
}

/// `cargo xtask simulate --stop [DIR]`: stops the nodes of `dir`, or of
/// every recorded kept demo.
pub(super) fn stop(root: &Path, dir: Option<&Path>) -> anyhow::Result<()> {
    let dirs = match dir {
        Some(d) => vec![d.to_path_buf()],
        None => recorded(root),
    };
    if dirs.is_empty() {
        println!(
            "no demo left running by `cargo xtask simulate --keep` is recorded in {}: nothing to stop",
            registry(root).display()
        );
        return Ok(());
    }
    let mut errors = Vec::new();
    for d in &dirs {
        if let Err(e) = stop_demo(d) {
            errors.push(format!("{e:#}"));
        }
    }
    // Keep only the demos that are still recorded (a failed stop keeps its
    // PID file).
    record(root, &recorded(root))?;
    if !errors.is_empty() {
        bail!("{}", errors.join("\n"));
    }
    Ok(())
}

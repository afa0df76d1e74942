//! The node processes and the HTTP calls to them.
//!
//! Each node runs on a data directory of its own under the demo's
//! directory, with its stdout and stderr in `node-N/node.log` there: a node
//! left running by `--keep` then writes to a file, never to a pipe whose
//! reader is gone, and a node that fails at start leaves its reason there
//! for the demo to show.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

use super::setup::{INTERRUPTED, Options, STEP_TIMEOUT, Scenario};
use crate::build::describe_exit;

/// One node process.
pub(super) struct NodeProc {
    pub(super) index: usize,
    pub(super) child: Option<Child>,
    /// `127.0.0.1:PORT`.
    pub(super) p2p: String,
    /// `http://127.0.0.1:PORT`.
    pub(super) api: String,
    pub(super) data_dir: PathBuf,
    /// The account its blocks pay, 64 hex digits.
    pub(super) miner: String,
}

impl NodeProc {
    /// Where the node's stdout and stderr go.
    pub(super) fn log_path(&self) -> PathBuf {
        self.data_dir.join("node.log")
    }
}

/// The running network; stops every child when dropped (unless kept).
pub(super) struct Net {
    pub(super) binary: PathBuf,
    pub(super) nodes: Vec<NodeProc>,
    pub(super) dir: Option<tempfile::TempDir>,
    http: crate::http::Client,
    pub(super) keep: bool,
    /// Reorganisations already narrated, per node.
    pub(super) reorgs: BTreeMap<usize, u64>,
    pub(super) spinner: usize,
    /// Which node mined each block narrated so far (`None`: not a demo
    /// node's account).
    pub(super) block_miners: BTreeMap<String, Option<usize>>,
    /// The nodes are not this process's children (the testnet's): every
    /// node counts as live, and none is stopped when the `Net` goes.
    pub(super) detached: bool,
}

impl Drop for Net {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                stop_child(&mut c);
            }
        }
    }
}

/// SIGTERM, a moment to shut down cleanly, then SIGKILL.
pub(super) fn stop_child(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The first `n` characters of an id: a prefix users can copy into
/// `p2p-node tx|block|contract PREFIX` (8 or more hex digits).
pub(super) fn prefix(id: &str, n: usize) -> String {
    id.chars().take(n).collect()
}

/// The last `n` lines of a file, or a note saying why there are none.
pub(super) fn tail(path: &Path, n: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim().is_empty() => "(it wrote nothing)".to_string(),
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(n);
            lines
                .get(from..)
                .unwrap_or_default()
                .iter()
                .map(|l| format!("    | {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// Checks, before anything is built or started, that every port the
/// scenarios need is free, so that a taken port is named up front rather
/// than found as a node that exits at start. `kept`: the demos `--keep`
/// left running, named in the error as a likely holder of the ports.
pub(super) fn check_ports(
    o: &Options,
    scenarios: &[Scenario],
    kept: &[PathBuf],
) -> anyhow::Result<()> {
    let most = scenarios
        .iter()
        .map(|s| {
            Options {
                scenario: *s,
                ..o.clone()
            }
            .total_nodes()
        })
        .max()
        .unwrap_or(o.nodes);
    let mut taken = Vec::new();
    for index in 0..most {
        let (p2p, api) = o.ports(index)?;
        for (port, what) in [(p2p, "P2P"), (api, "API")] {
            if let Err(e) = TcpListener::bind(("127.0.0.1", port)) {
                taken.push(format!("port {port} (node {index}'s {what}): {e}"));
            }
        }
    }
    if taken.is_empty() {
        return Ok(());
    }
    let hint = if kept.is_empty() {
        "another program listens there (`ss -ltnp` shows which)".to_string()
    } else {
        format!(
            "a demo left running by --keep is recorded ({}): `cargo xtask simulate --stop` \
             stops it",
            kept.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    bail!(
        "cannot start the demo: {} in use:\n  {}\n{hint}; or choose other ports with \
         --base-port and --api-base-port",
        if taken.len() == 1 {
            "a port is"
        } else {
            "ports are"
        },
        taken.join("\n  ")
    )
}

impl Net {
    pub(super) fn new(binary: &Path, keep: bool) -> anyhow::Result<Net> {
        Ok(Net {
            binary: binary.to_path_buf(),
            nodes: Vec::new(),
            dir: Some(
                tempfile::Builder::new()
                    .prefix("escrow-sim-")
                    .tempdir()
                    .context("cannot create the demo's temporary directory")?,
            ),
            http: crate::http::Client::new(Duration::from_secs(30)),
            keep,
            reorgs: BTreeMap::new(),
            spinner: 0,
            block_miners: BTreeMap::new(),
            detached: false,
        })
    }

    /// A `Net` over nodes another process started (the testnet's), which
    /// it neither owns nor stops.
    pub(super) fn attach(binary: &Path, nodes: Vec<NodeProc>) -> Net {
        Net {
            binary: binary.to_path_buf(),
            nodes,
            dir: None,
            http: crate::http::Client::new(Duration::from_secs(30)),
            keep: true,
            reorgs: BTreeMap::new(),
            spinner: 0,
            block_miners: BTreeMap::new(),
            detached: true,
        }
    }

    /// The demo's directory: one `node-N` data directory per node.
    pub(super) fn dir(&self) -> anyhow::Result<&Path> {
        self.dir
            .as_ref()
            .map(tempfile::TempDir::path)
            .context("the network's directory is gone")
    }

    /// Makes a key file with the node binary's `keygen` and returns its
    /// address (64 hex digits).
    pub(super) fn keygen(&self, path: &Path) -> anyhow::Result<String> {
        let out = Command::new(&self.binary)
            .arg("keygen")
            .arg("--out")
            .arg(path)
            .output()
            .context("cannot run `p2p-node keygen`")?;
        let address = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !out.status.success()
            || address.len() != 64
            || !address.bytes().all(|b| b.is_ascii_hexdigit())
        {
            bail!(
                "`p2p-node keygen --out {}` {} and printed {address:?}, not an address: {}",
                path.display(),
                describe_exit(out.status),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(address)
    }

    /// Starts node `index` (or restarts it on its data directory, mining to
    /// the same account).
    pub(super) fn start(
        &mut self,
        index: usize,
        o: &Options,
        peers: &[String],
    ) -> anyhow::Result<()> {
        let (p2p_port, api_port) = o.ports(index)?;
        let p2p = format!("127.0.0.1:{p2p_port}");
        let api = format!("127.0.0.1:{api_port}");
        let data_dir = self.dir()?.join(format!("node-{index}"));
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("cannot create {}", data_dir.display()))?;
        let miner = match self.nodes.iter().find(|n| n.index == index) {
            Some(n) => n.miner.clone(),
            None => self.keygen(&data_dir.join("miner.key"))?,
        };
        let mut proc = NodeProc {
            index,
            child: None,
            p2p,
            api: format!("http://{api}"),
            data_dir,
            miner,
        };
        let log_path = proc.log_path();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        // A restart appends: only what follows this offset is this run's.
        let offset = log.metadata().map(|m| m.len()).unwrap_or(0);
        let mut cmd = Command::new(&self.binary);
        cmd.args(["--listen", &proc.p2p, "--api", &api])
            .args(["--mine", "pending", "--miner", &proc.miner, "--log", "warn"])
            .arg("--data-dir")
            .arg(&proc.data_dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        for p in peers {
            cmd.args(["--peer", p]);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot run {}", self.binary.display()))?;
        if let Err(e) = wait_started(&mut child, &log_path, offset) {
            bail!(
                "node {index} (P2P {}, API {api}) did not start: {e:#}; its last lines \
                 ({}):\n{}",
                proc.p2p,
                log_path.display(),
                tail(&log_path, 12)
            );
        }
        proc.child = Some(child);
        if let Some(slot) = self.nodes.iter_mut().find(|n| n.index == index) {
            *slot = proc;
        } else {
            self.nodes.push(proc);
        }
        Ok(())
    }

    pub(super) fn node(&self, index: usize) -> anyhow::Result<&NodeProc> {
        self.nodes
            .iter()
            .find(|n| n.index == index)
            .with_context(|| format!("no node {index}"))
    }

    pub(super) fn live(&self) -> impl Iterator<Item = &NodeProc> {
        self.nodes
            .iter()
            .filter(|n| self.detached || n.child.is_some())
    }

    /// The node whose blocks pay `address`, if any.
    pub(super) fn miner_node(&self, address: &str) -> Option<usize> {
        self.nodes
            .iter()
            .find(|n| n.miner == address)
            .map(|n| n.index)
    }

    /// Prints the end of each node's log: what a failure left there.
    pub(super) fn print_log_tails(&self) {
        for n in &self.nodes {
            let path = n.log_path();
            println!(
                "  node {}'s log ({}), last lines:\n{}",
                n.index,
                path.display(),
                tail(&path, 8)
            );
        }
    }

    /// `GET path` on a node: the JSON answer, or `null` for an error status.
    pub(super) fn get(&self, node: &NodeProc, path: &str) -> anyhow::Result<Value> {
        let url = format!("{}{path}", node.api);
        let resp = self.http.get(&url)?;
        if resp.is_success() {
            Ok(resp.json().with_context(|| format!("GET {url}"))?)
        } else {
            Ok(Value::Null)
        }
    }

    /// `POST path` on a node with its token.
    pub(super) fn post(&self, node: &NodeProc, path: &str, body: Value) -> anyhow::Result<Value> {
        let cookie = node.data_dir.join("api.cookie");
        let token = std::fs::read_to_string(&cookie)
            .with_context(|| format!("node {}'s token ({})", node.index, cookie.display()))?;
        let url = format!("{}{path}", node.api);
        let resp = self.http.post(&url, Some(token.trim()), &body)?;
        if !resp.is_success() {
            bail!("POST {url}: {} {}", resp.status, resp.body);
        }
        Ok(serde_json::from_str(&resp.body).unwrap_or(Value::Null))
    }

    /// A node's Prometheus metrics, read once: name -> value.
    pub(super) fn metrics(&self, node: &NodeProc) -> BTreeMap<String, u64> {
        let url = format!("{}/metrics", node.api);
        let Ok(resp) = self.http.get(&url) else {
            return BTreeMap::new();
        };
        resp.body
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (name, value) = l.split_once(' ')?;
                Some((name.to_string(), value.trim().parse().ok()?))
            })
            .collect()
    }

    /// Runs a client subcommand against a node; returns its JSON answer.
    pub(super) fn client(&self, node: usize, args: &[&str]) -> anyhow::Result<Value> {
        let n = self.node(node)?;
        let out = Command::new(&self.binary)
            .args(args)
            .args(["--node", &n.api, "--json"])
            .output()
            .context("cannot run the client")?;
        if !out.status.success() {
            bail!(
                "node {node} refused `{}`: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        serde_json::from_slice(&out.stdout).with_context(|| {
            format!(
                "`p2p-node {} --json` printed no JSON: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout).trim()
            )
        })
    }
}

/// Waits until a started node prints its API address into its log, or
/// says how it ended.
fn wait_started(child: &mut Child, log: &Path, offset: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().context("cannot wait for the node")? {
            bail!("it {}", describe_exit(status));
        }
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(log)
            && file.seek(SeekFrom::Start(offset)).is_ok()
        {
            let _ = file.read_to_string(&mut text);
        }
        if text.lines().any(|l| l.starts_with("api listening on")) {
            return Ok(());
        }
        if INTERRUPTED.load(Ordering::SeqCst) || Instant::now() > deadline {
            stop_child(child);
            bail!(
                "{}",
                if INTERRUPTED.load(Ordering::SeqCst) {
                    "interrupted"
                } else {
                    "it did not open its API within a minute"
                }
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

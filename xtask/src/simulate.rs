//! `cargo xtask simulate`: the four-node escrow demo, end to end, with
//! fault scenarios.
//!
//! It builds the node in release mode, starts N `p2p-node` processes in a
//! full mesh (P2P on `--base-port` upward, APIs on `--api-base-port`
//! upward, each on a fresh data directory), runs the notebook's two escrow
//! flows through the client and the API with transactions sent to
//! different nodes, narrates what each node does, waits until every node
//! agrees, prints a table per node and checks the balances against what the
//! flows imply. It exits 0 only when every check holds.
//!
//! xtask depends on none of the project's crates: it drives the node
//! binary as processes (the binary's client subcommands sign the
//! transactions) and reads the nodes' HTTP APIs.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// How long nodes may disagree on tips of equal work, with nothing pending,
/// before the demo mines a block to settle them. The tie-break (the
/// smaller hash) settles them as soon as every node has every tip, which
/// takes milliseconds on loopback.
const SETTLE_PATIENCE: Duration = Duration::from_secs(2);

const DEV_BALANCE: u64 = 1_000_000;
const REWARD: u64 = 50;
const ACCOUNTS: [&str; 6] = ["alice", "bob", "charlie", "dave", "eve", "ferdie"];
/// Set by Ctrl-C or SIGTERM: every wait stops, and the network's `Drop`
/// stops the children (no orphans left listening).
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Longest wait for any one step before the demo gives up.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// Command-line options.
struct Options {
    nodes: usize,
    base_port: u16,
    api_base_port: u16,
    scenario: Scenario,
    keep: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scenario {
    Demo,
    CrashRestart,
    LateJoin,
    Partition,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Demo => "demo",
            Scenario::CrashRestart => "crash-restart",
            Scenario::LateJoin => "late-join",
            Scenario::Partition => "partition",
        }
    }
}

const USAGE: &str = "usage: cargo xtask simulate [--nodes N] [--base-port P] [--api-base-port A] \
[--scenario demo|crash-restart|late-join|partition|all] [--keep]";

fn parse(args: &[String]) -> anyhow::Result<(Options, Vec<Scenario>)> {
    let mut o = Options {
        nodes: 4,
        base_port: 5000,
        api_base_port: 8000,
        scenario: Scenario::Demo,
        keep: false,
    };
    let mut scenarios = vec![Scenario::Demo];
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .with_context(|| format!("{name} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--nodes" => o.nodes = value("--nodes")?.parse().context("--nodes N")?,
            "--base-port" => {
                o.base_port = value("--base-port")?.parse().context("--base-port P")?
            }
            "--api-base-port" => {
                o.api_base_port = value("--api-base-port")?
                    .parse()
                    .context("--api-base-port A")?;
            }
            "--keep" => o.keep = true,
            "--scenario" => {
                scenarios = match value("--scenario")?.as_str() {
                    "demo" => vec![Scenario::Demo],
                    "crash-restart" => vec![Scenario::CrashRestart],
                    "late-join" => vec![Scenario::LateJoin],
                    "partition" => vec![Scenario::Partition],
                    "all" => vec![
                        Scenario::CrashRestart,
                        Scenario::LateJoin,
                        Scenario::Partition,
                    ],
                    other => bail!("unknown scenario `{other}`\n{USAGE}"),
                }
            }
            other => bail!("unknown option `{other}`\n{USAGE}"),
        }
    }
    if o.nodes < 2 {
        bail!("the demo needs at least 2 nodes");
    }
    if scenarios.contains(&Scenario::Partition) && o.nodes < 4 {
        bail!("the partition scenario needs at least 4 nodes");
    }
    if o.keep && scenarios.len() > 1 {
        bail!("--keep runs one scenario at a time");
    }
    Ok((o, scenarios))
}

/// Runs the demo (and scenarios).
pub fn run(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let (mut options, scenarios) = parse(args)?;
    ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst))
        .context("cannot install the Ctrl-C handler")?;
    let binary = build_node(root)?;
    let mut failed = Vec::new();
    for scenario in scenarios {
        options.scenario = scenario;
        let started = Instant::now();
        println!(
            "\n=== scenario: {} ({} nodes) ===",
            scenario.name(),
            options.nodes
        );
        match run_scenario(&binary, &options) {
            Ok(()) => println!(
                "=== {}: every node agrees, balances as expected ({:.2} s) ===",
                scenario.name(),
                started.elapsed().as_secs_f64()
            ),
            Err(e) => {
                println!("=== {}: FAILED: {e:#} ===", scenario.name());
                failed.push(scenario.name());
            }
        }
        if INTERRUPTED.load(Ordering::SeqCst) {
            bail!("interrupted: every node was stopped");
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        bail!("failed: {}", failed.join(", "))
    }
}

/// Builds the node binary in release mode (quietly) and returns its path:
/// the demo and `cargo xtask bench node` run it as processes.
pub(crate) fn build_node(root: &Path) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    eprintln!("xtask: building the node (release)");
    let status = Command::new(cargo)
        .current_dir(root)
        .args(["build", "--release", "--quiet", "-p", "p2p-node"])
        .status()
        .context("cannot run cargo build --release -p p2p-node")?;
    if !status.success() {
        bail!("building p2p-node failed with {status}");
    }
    Ok(crate::bench::target_dir(root)
        .join("release")
        .join("p2p-node"))
}

/// One node process.
struct NodeProc {
    index: usize,
    child: Option<Child>,
    p2p: String,
    api: String,
    data_dir: PathBuf,
}

/// The running network; stops every child when dropped (unless kept).
struct Net {
    binary: PathBuf,
    nodes: Vec<NodeProc>,
    dir: Option<tempfile::TempDir>,
    http: reqwest::blocking::Client,
    keep: bool,
    /// Reorganisations already narrated, per node.
    reorgs: BTreeMap<usize, u64>,
    spinner: usize,
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
fn stop_child(child: &mut Child) {
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

impl Net {
    fn new(binary: &Path, keep: bool) -> anyhow::Result<Net> {
        Ok(Net {
            binary: binary.to_path_buf(),
            nodes: Vec::new(),
            dir: Some(tempfile::Builder::new().prefix("escrow-sim-").tempdir()?),
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            keep,
            reorgs: BTreeMap::new(),
            spinner: 0,
        })
    }

    fn dir(&self) -> anyhow::Result<&Path> {
        self.dir
            .as_ref()
            .map(tempfile::TempDir::path)
            .context("the network's directory is gone")
    }

    /// Starts node `index` (or restarts it on its data directory).
    fn start(&mut self, index: usize, o: &Options, peers: &[String]) -> anyhow::Result<()> {
        let p2p = format!("127.0.0.1:{}", o.base_port as usize + index);
        let api = format!("127.0.0.1:{}", o.api_base_port as usize + index);
        let data_dir = self.dir()?.join(format!("node-{index}"));
        let mut cmd = Command::new(&self.binary);
        cmd.args([
            "--listen", &p2p, "--api", &api, "--mine", "pending", "--log", "warn",
        ])
        .arg("--data-dir")
        .arg(&data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        for p in peers {
            cmd.args(["--peer", p]);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start node {index}"))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        loop {
            match lines.next() {
                Some(Ok(line)) if line.starts_with("api listening on") => break,
                Some(Ok(_)) => {}
                _ => {
                    let status = child.wait();
                    bail!(
                        "node {index} exited at start ({status:?}): is port {p2p} or {api} taken?"
                    );
                }
            }
        }
        std::thread::spawn(move || for _ in lines {});
        let proc = NodeProc {
            index,
            child: Some(child),
            p2p,
            api: format!("http://{api}"),
            data_dir,
        };
        if let Some(slot) = self.nodes.iter_mut().find(|n| n.index == index) {
            *slot = proc;
        } else {
            self.nodes.push(proc);
        }
        Ok(())
    }

    fn node(&self, index: usize) -> anyhow::Result<&NodeProc> {
        self.nodes
            .iter()
            .find(|n| n.index == index)
            .with_context(|| format!("no node {index}"))
    }

    fn live(&self) -> impl Iterator<Item = &NodeProc> {
        self.nodes.iter().filter(|n| n.child.is_some())
    }

    fn get(&self, node: &NodeProc, path: &str) -> anyhow::Result<Value> {
        let url = format!("{}{path}", node.api);
        let resp = self
            .http
            .get(&url)
            .send()
            .with_context(|| format!("GET {url}"))?;
        if resp.status().is_success() {
            Ok(resp.json()?)
        } else {
            Ok(Value::Null)
        }
    }

    fn post(&self, node: &NodeProc, path: &str, body: Value) -> anyhow::Result<Value> {
        let token = std::fs::read_to_string(node.data_dir.join("api.cookie"))
            .with_context(|| format!("node {}'s token", node.index))?;
        let url = format!("{}{path}", node.api);
        let resp = self
            .http
            .post(&url)
            .bearer_auth(token.trim())
            .json(&body)
            .send()
            .with_context(|| format!("POST {url}"))?;
        let status = resp.status();
        let text = resp.text()?;
        if !status.is_success() {
            bail!("POST {url}: {status} {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A node's Prometheus metrics, read once: name -> value.
    fn metrics(&self, node: &NodeProc) -> BTreeMap<String, u64> {
        let url = format!("{}/metrics", node.api);
        let Ok(text) = self.http.get(&url).send().and_then(|r| r.text()) else {
            return BTreeMap::new();
        };
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (name, value) = l.split_once(' ')?;
                Some((name.to_string(), value.trim().parse().ok()?))
            })
            .collect()
    }

    /// Runs a client subcommand against a node; returns its JSON answer.
    fn client(&self, node: usize, args: &[&str]) -> anyhow::Result<Value> {
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
        Ok(serde_json::from_slice(&out.stdout)?)
    }

    fn tick(&mut self) -> anyhow::Result<()> {
        if INTERRUPTED.load(Ordering::SeqCst) {
            bail!("interrupted");
        }
        if std::io::stderr().is_terminal() {
            const FRAMES: [char; 4] = ['|', '/', '-', '\\'];
            self.spinner = (self.spinner + 1) % FRAMES.len();
            eprint!("\r{} ", FRAMES[self.spinner]);
            let _ = std::io::stderr().flush();
        }
        std::thread::sleep(Duration::from_millis(5));
        Ok(())
    }

    fn clear_spinner(&self) {
        if std::io::stderr().is_terminal() {
            eprint!("\r  \r");
        }
    }

    /// Narrates reorganisations since the last look.
    fn narrate_reorgs(&mut self) {
        let seen: Vec<(usize, u64, u64)> = self
            .live()
            .map(|n| {
                let m = self.metrics(n);
                let get = |name: &str| m.get(name).copied().unwrap_or(0);
                (
                    n.index,
                    get("node_reorgs_total"),
                    get("node_reorg_max_depth"),
                )
            })
            .collect();
        for (index, count, depth) in seen {
            let before = self.reorgs.insert(index, count).unwrap_or(0);
            if count > before {
                self.clear_spinner();
                println!(
                    "    node {index} reorganised onto the chain fork choice prefers (deepest so far: {depth} block{})",
                    if depth == 1 { "" } else { "s" }
                );
            }
        }
    }

    /// Submits a signed transaction through `node` and narrates until every
    /// live node has it in the same block.
    fn step(&mut self, node: usize, what: &str, args: &[&str]) -> anyhow::Result<Value> {
        println!("\n{what}");
        let answer = self.client(node, args)?;
        let id = answer["id"]
            .as_str()
            .context("no transaction id")?
            .to_string();
        let kind = match args {
            ["escrow", action, ..] => format!("escrow {action}"),
            [first, ..] => (*first).to_string(),
            [] => String::new(),
        };
        println!("  → node {node} accepted {kind} {}", short(&id));
        self.wait_included(&id)?;
        Ok(answer)
    }

    fn wait_included(&mut self, id: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + STEP_TIMEOUT;
        let mut reported: BTreeMap<String, ()> = BTreeMap::new();
        let mut last_counts = Vec::new();
        let mut split_since: Option<Instant> = None;
        loop {
            let mut blocks: BTreeMap<String, (u64, Vec<usize>)> = BTreeMap::new();
            let total = self.live().count();
            for n in self.live() {
                let tx = self.get(n, &format!("/txs/{id}"))?;
                if tx["status"] == "confirmed"
                    && let Some(block) = tx["block"].as_str()
                {
                    let entry = blocks
                        .entry(block.to_string())
                        .or_insert((tx["height"].as_u64().unwrap_or(0), Vec::new()));
                    entry.1.push(n.index);
                }
            }
            for (block, (height, nodes)) in &blocks {
                if reported.insert(block.clone(), ()).is_none() {
                    self.clear_spinner();
                    println!(
                        "    block #{height} {} includes it (on node{} {})",
                        short(block),
                        if nodes.len() == 1 { "" } else { "s" },
                        nodes
                            .iter()
                            .map(usize::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
            }
            self.narrate_reorgs();
            let counts: Vec<usize> = blocks.values().map(|(_, n)| n.len()).collect();
            if counts != last_counts {
                self.clear_spinner();
                let parts: Vec<String> = blocks
                    .iter()
                    .map(|(b, (_, n))| format!("{}/{total} in {}", n.len(), short(b)))
                    .collect();
                println!("    nodes that have it: {}", parts.join(", "));
                last_counts = counts.clone();
            }
            let confirmed: usize = counts.iter().sum();
            if blocks.len() == 1 && confirmed == total {
                return Ok(());
            }
            // Competing blocks of equal work that hold it: once both have
            // reached every node, all follow the smaller hash. Should they
            // still disagree after a while (a block that did not reach
            // everyone), one more block settles it.
            if blocks.len() > 1 && confirmed == total {
                let since = *split_since.get_or_insert_with(Instant::now);
                if since.elapsed() > SETTLE_PATIENCE {
                    let first = self.live().next().context("no live node")?;
                    self.clear_spinner();
                    println!(
                        "    competing blocks of equal work: node {} mines one more block to settle it",
                        first.index
                    );
                    self.post(first, "/mine", json!({"blocks": 1}))?;
                    split_since = None;
                }
            } else {
                split_since = None;
            }
            if Instant::now() > deadline {
                bail!(
                    "transaction {} was not included everywhere in time",
                    short(id)
                );
            }
            self.tick()?;
        }
    }

    /// Waits until every live node has the same tip and an empty mempool.
    /// Tips of equal work converge on the smaller hash once every node has
    /// both; should they still disagree after a while, node 0 mines one
    /// block to settle it.
    fn settle(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + STEP_TIMEOUT;
        let mut disagreeing_since: Option<Instant> = None;
        loop {
            let statuses: Vec<Value> = self
                .live()
                .map(|n| self.get(n, "/status"))
                .collect::<anyhow::Result<_>>()?;
            let tips: Vec<&str> = statuses
                .iter()
                .map(|s| s["tip"].as_str().unwrap_or(""))
                .collect();
            let pending: u64 = statuses
                .iter()
                .map(|s| s["mempool"].as_u64().unwrap_or(0))
                .sum();
            let agree = tips.windows(2).all(|w| w[0] == w[1]);
            self.narrate_reorgs();
            if agree && pending == 0 {
                self.clear_spinner();
                return Ok(());
            }
            if !agree && pending == 0 {
                let since = *disagreeing_since.get_or_insert_with(Instant::now);
                if since.elapsed() > SETTLE_PATIENCE {
                    let heights: Vec<u64> = statuses
                        .iter()
                        .map(|s| s["height"].as_u64().unwrap_or(0))
                        .collect();
                    self.clear_spinner();
                    println!(
                        "\n  tips of equal work at heights {heights:?}: node {} mines one block to settle it",
                        self.live().next().map_or(0, |n| n.index)
                    );
                    let first = self.live().next().context("no live node")?;
                    self.post(first, "/mine", json!({"blocks": 1}))?;
                    disagreeing_since = None;
                }
            } else {
                disagreeing_since = None;
            }
            if Instant::now() > deadline {
                bail!("the nodes did not agree in time: tips {tips:?}");
            }
            self.tick()?;
        }
    }

    fn wait_mesh(&mut self) -> anyhow::Result<()> {
        let want = self.live().count() - 1;
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let mut ok = true;
            for n in self.live() {
                ok &= self.get(n, "/status")?["peers"].as_u64() == Some(want as u64);
            }
            if ok {
                self.clear_spinner();
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the nodes did not connect in a full mesh");
            }
            self.tick()?;
        }
    }
}

fn short(hash: &str) -> String {
    hash.chars().take(12).collect::<String>() + "…"
}

/// What the flows should leave behind.
struct Expected {
    /// Balances apart from ferdie's (the miner: genesis plus rewards).
    balances: BTreeMap<&'static str, u64>,
    /// Contract id → final state.
    contracts: Vec<(String, &'static str)>,
}

fn run_scenario(binary: &Path, o: &Options) -> anyhow::Result<()> {
    let mut net = Net::new(binary, o.keep)?;
    let mut addrs = Vec::new();
    for i in 0..o.nodes {
        net.start(i, o, &addrs)?;
        addrs.push(net.node(i)?.p2p.clone());
    }
    println!(
        "started {} nodes: P2P {}..; APIs {}..",
        o.nodes, o.base_port, o.api_base_port
    );
    net.wait_mesh()?;
    println!(
        "full mesh: every node is connected to the {} others",
        o.nodes - 1
    );

    let expected = match o.scenario {
        Scenario::Partition => partition(&mut net, o)?,
        _ => flows(&mut net, o)?,
    };
    if o.scenario == Scenario::LateJoin {
        let index = o.nodes;
        println!("\nlate join: node {index} starts now, knowing only node 0");
        let first = net.node(0)?.p2p.clone();
        net.start(index, o, &[first])?;
    }
    net.settle()?;
    let ok = report(&net, &expected)?;
    if o.keep {
        println!("\nthe network keeps running (--keep):");
        for n in net.live() {
            println!(
                "  node {}: P2P {}, API {}, explorer {}/",
                n.index, n.p2p, n.api, n.api
            );
        }
        if let Some(dir) = net.dir.take() {
            let kept = dir.keep();
            println!("  data under {}", kept.display());
        }
    }
    if !ok {
        bail!("the nodes disagree or the balances are wrong");
    }
    Ok(())
}

/// The notebook's two flows, each transaction sent to a different node.
fn flows(net: &mut Net, o: &Options) -> anyhow::Result<Expected> {
    let n = o.nodes;
    let first = net.create_escrow(
        0,
        "1. Alice creates an escrow of 100 for Bob (Eve arbitrates)",
        ["alice", "bob", "eve", "100"],
    )?;
    net.step(
        1 % n,
        "2. Alice confirms delivery: Bob is paid",
        &["escrow", "confirm", "--as", "alice", &first],
    )?;

    if o.scenario == Scenario::CrashRestart {
        let victim = 1 % n;
        println!("\ncrash: node {victim} is killed with SIGKILL");
        if let Some(node) = net.nodes.iter_mut().find(|x| x.index == victim)
            && let Some(mut child) = node.child.take()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    let live: Vec<usize> = net.live().map(|x| x.index).collect();
    let pick = |k: usize| live[k % live.len()];
    let second = net.create_escrow(
        pick(2),
        "3. Charlie creates an escrow of 50 for Dave, with Eve as arbiter",
        ["charlie", "dave", "eve", "50"],
    )?;
    net.step(
        pick(3),
        "4. Charlie raises a dispute",
        &["escrow", "dispute", "--as", "charlie", &second],
    )?;

    if o.scenario == Scenario::CrashRestart {
        let victim = 1 % n;
        println!("\nrestart: node {victim} comes back on its data directory");
        let peers: Vec<String> = net.live().map(|x| x.p2p.clone()).collect();
        net.start(victim, o, &peers)?;
        let height = net.get(net.node(victim)?, "/status")?["height"].clone();
        println!("    node {victim} restarted at height {height} from its store; catching up");
    }

    net.step(
        pick(4),
        "5. Eve resolves the dispute to the buyer: Charlie is refunded",
        &["escrow", "resolve", "--as", "eve", &second, "--to", "buyer"],
    )?;
    Ok(Expected {
        balances: BTreeMap::from([
            ("alice", DEV_BALANCE - 100),
            ("bob", DEV_BALANCE + 100),
            ("charlie", DEV_BALANCE),
            ("dave", DEV_BALANCE),
            ("eve", DEV_BALANCE),
        ]),
        contracts: vec![(first, "Released"), (second, "Refunded")],
    })
}

/// The partition scenario: an escrow, then a 2+2 split in which each side
/// settles it differently and makes a transfer, then the heal.
fn partition(net: &mut Net, o: &Options) -> anyhow::Result<Expected> {
    let contract = net.create_escrow(
        0,
        "1. Alice creates an escrow of 100 for Bob (Eve arbitrates)",
        ["alice", "bob", "eve", "100"],
    )?;

    let half = o.nodes / 2;
    let left: Vec<usize> = (0..half).collect();
    let right: Vec<usize> = (half..o.nodes).collect();
    let addrs = |side: &[usize]| -> anyhow::Result<Vec<String>> {
        side.iter().map(|i| Ok(net.node(*i)?.p2p.clone())).collect()
    };
    let (left_addrs, right_addrs) = (addrs(&left)?, addrs(&right)?);
    println!("\n2. partition: nodes {left:?} | nodes {right:?}");
    for i in &left {
        net.post(
            net.node(*i)?,
            "/admin/partition",
            json!({"block": right_addrs}),
        )?;
    }
    for i in &right {
        net.post(
            net.node(*i)?,
            "/admin/partition",
            json!({"block": left_addrs}),
        )?;
    }

    // Each side acts alone. The left: Alice confirms delivery (Bob paid)
    // and Eve pays Bob 10. The right: Bob refunds Alice instead, Charlie
    // pays Dave 20, and the right mines one block more: it will be heavier.
    println!("\n3. left side: Alice confirms delivery; Eve pays Bob 10");
    let l0 = left[0];
    let confirm = net.client(l0, &["escrow", "confirm", "--as", "alice", &contract])?;
    let pay = net.client(l0, &["transfer", "--as", "eve", "bob", "10"])?;
    println!("4. right side: Bob refunds Alice instead, Charlie pays Dave 20");
    let r0 = right[0];
    net.client(r0, &["escrow", "refund", "--as", "bob", &contract])?;
    net.client(r0, &["transfer", "--as", "charlie", "dave", "20"])?;
    let side_mined = |net: &mut Net, side: &[usize], id: &str| -> anyhow::Result<()> {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let mut ok = true;
            for i in side {
                ok &= net.get(net.node(*i)?, &format!("/txs/{id}"))?["status"] == "confirmed";
            }
            if ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("a side did not mine its transactions");
            }
            net.tick()?;
        }
    };
    let pay_id = pay["id"].as_str().context("no id")?.to_string();
    side_mined(net, &left, confirm["id"].as_str().context("no id")?)?;
    side_mined(net, &left, &pay_id)?;
    let status = net.get(net.node(r0)?, "/status")?;
    let mut height = status["height"].as_u64().unwrap_or(0);
    let left_height = net.get(net.node(l0)?, "/status")?["height"]
        .as_u64()
        .unwrap_or(0);
    while height <= left_height {
        net.post(net.node(r0)?, "/mine", json!({"blocks": 1}))?;
        height = net.get(net.node(r0)?, "/status")?["height"]
            .as_u64()
            .unwrap_or(0);
    }
    net.settle_side(&right)?;
    net.clear_spinner();
    println!(
        "    left at height {left_height}, right at height {height}: the right side has more work"
    );

    println!("\n5. heal: the cut is lifted");
    for i in 0..o.nodes {
        net.post(net.node(i)?, "/admin/heal", json!({}))?;
    }
    net.wait_mesh()?;
    println!("    full mesh again; the left side must reorganise onto the right's chain");
    println!("    Alice's confirm is now invalid (the contract was refunded) and is dropped;");
    println!("    Eve's payment to Bob is still valid and is mined again");
    net.wait_included(&pay_id)?;
    Ok(Expected {
        balances: BTreeMap::from([
            ("alice", DEV_BALANCE),
            ("bob", DEV_BALANCE + 10),
            ("charlie", DEV_BALANCE - 20),
            ("dave", DEV_BALANCE + 20),
            ("eve", DEV_BALANCE - 10),
        ]),
        contracts: vec![(contract, "Refunded")],
    })
}

impl Net {
    /// An `escrow create` step (`[buyer, seller, arbiter, amount]`); returns
    /// the contract id.
    fn create_escrow(&mut self, node: usize, what: &str, who: [&str; 4]) -> anyhow::Result<String> {
        let [buyer, seller, arbiter, amount] = who;
        let created = self.step(
            node,
            what,
            &[
                "escrow",
                "create",
                "--as",
                buyer,
                "--seller",
                seller,
                "--arbiter",
                arbiter,
                amount,
            ],
        )?;
        let id = created["contract"]
            .as_str()
            .context("no contract id")?
            .to_string();
        println!("    contract {id}");
        Ok(id)
    }

    /// Waits until the nodes of one side agree among themselves.
    fn settle_side(&mut self, side: &[usize]) -> anyhow::Result<()> {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let mut tips = Vec::new();
            for i in side {
                let s = self.get(self.node(*i)?, "/status")?;
                tips.push((s["tip"].clone(), s["mempool"].as_u64().unwrap_or(0)));
            }
            if tips.windows(2).all(|w| w[0].0 == w[1].0) && tips.iter().all(|t| t.1 == 0) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("a side did not agree");
            }
            self.tick()?;
        }
    }
}

fn state_name(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(o) => o.keys().next().cloned().unwrap_or_default(),
        _ => "?".to_string(),
    }
}

/// Prints the table per node and checks it. Returns whether all is well.
fn report(net: &Net, expected: &Expected) -> anyhow::Result<bool> {
    println!("\nfinal state");
    print!("{:<6} {:>6}  {:<14}", "node", "height", "tip");
    for a in ACCOUNTS {
        print!(" {a:>9}");
    }
    for (i, _) in expected.contracts.iter().enumerate() {
        print!("  contract{}", i + 1);
    }
    println!();
    let mut ok = true;
    let mut first_tip: Option<String> = None;
    for n in net.live() {
        let status = net.get(n, "/status")?;
        let tip = status["tip"].as_str().unwrap_or("").to_string();
        let height = status["height"].as_u64().unwrap_or(0);
        print!("{:<6} {:>6}  {:<14}", n.index, height, short(&tip));
        let mut problems = Vec::new();
        for a in ACCOUNTS {
            let balance = net.get(n, &format!("/accounts/{a}"))?["balance"]
                .as_u64()
                .unwrap_or(0);
            print!(" {balance:>9}");
            let want = match expected.balances.get(a) {
                Some(b) => *b,
                None => DEV_BALANCE + REWARD * height,
            };
            if balance != want {
                problems.push(format!("{a} has {balance}, expected {want}"));
            }
        }
        for (id, want) in &expected.contracts {
            let c = net.get(n, &format!("/contracts/{id}"))?;
            let state = state_name(&c["state"]);
            print!("  {state:>9}");
            if state != *want {
                problems.push(format!("contract {id} is {state}, expected {want}"));
            }
        }
        println!();
        match &first_tip {
            None => first_tip = Some(tip),
            Some(t) if *t != tip => {
                problems.push(format!("tip {} differs from node 0's", short(&tip)))
            }
            Some(_) => {}
        }
        for p in problems {
            ok = false;
            println!("  ✗ node {}: {p}", n.index);
        }
    }
    Ok(ok)
}

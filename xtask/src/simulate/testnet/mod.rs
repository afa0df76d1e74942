//! `cargo xtask testnet`: nodes on hosts of their own, each with its own IP
//! address on one bridge, where the rules that depend on addresses (bans,
//! eviction, address gossip) meet peers that differ.
//!
//! `up` makes the hosts ([`hosts`]: containers of the image, or network
//! namespaces where no Docker engine runs), starts node 0 as the seed and
//! every other node knowing only the seed, and waits until address gossip
//! has connected them. The other commands act on the testnet that is up
//! (`target/testnet/state.json`): the notebook's escrow flows, partitions
//! cut in the network itself (routes that refuse the other side's
//! addresses, inside each host), the heal, mining, and a misbehaving host.
//! `down` removes what `up` made and nothing else. Every command needs
//! root (`ip netns`, bridges, `docker`).

use std::collections::BTreeSet;
use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

use super::net::{Net, NodeProc};
use super::setup::{INTERRUPTED, Options, Scenario};
use super::{flows, report};
use hosts::{Engine, Host, NAME, State};

mod hosts;

/// How long a testnet step may take: a partition waits out the nodes'
/// idle timeout (45 s) where the kernel cannot close sockets at once, and
/// a heal the longest redial backoff (30 s).
const STEP: Duration = Duration::from_secs(120);

#[derive(Parser, Debug)]
#[command(
    name = "cargo xtask testnet",
    about = "Nodes on hosts of their own (containers or network namespaces) on one bridge; needs root",
    after_help = "docs/OPERATIONS.md, \"A testnet of real hosts\", walks through it."
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Make N hosts and start a node on each, node 0 the seed.
    Up {
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(2..=200))]
        nodes: u16,
        /// `docker` (containers of the image), `netns` (network namespaces,
        /// the image's root filesystem), or `auto`: docker where an engine
        /// answers.
        #[arg(long, default_value = "auto", value_parser = ["auto", "docker", "netns"])]
        engine: String,
        /// The hosts' addresses: PREFIX.1 is this machine on the bridge,
        /// node N is PREFIX.(10+N).
        #[arg(long, default_value = "10.77.0")]
        prefix: String,
    },
    /// Stop every node and remove every host, link and network `up` made.
    Down,
    /// Each node's address, height, tip and peers.
    Status,
    /// The notebook's two escrow flows across the hosts, then the checks of
    /// `cargo xtask simulate` (on a fresh testnet).
    Flows,
    /// Cut the links between groups of hosts: `partition 0,1 2,3`.
    Partition {
        #[arg(required = true, num_args = 2..)]
        groups: Vec<String>,
    },
    /// Restore every cut link; wait until every node agrees on one tip.
    Heal,
    /// Mine blocks on one node now.
    Mine {
        #[arg(long)]
        node: usize,
        #[arg(long, default_value_t = 1)]
        blocks: u64,
    },
    /// Host K sends node J a frame that is not one: J must ban K's address
    /// and keep its other peers.
    Misbehave {
        #[arg(long)]
        host: usize,
        #[arg(long)]
        target: usize,
    },
    /// (Inside a host's namespace) connect to ADDR and send garbage.
    #[command(hide = true)]
    Garbage { addr: String },
}

/// `cargo xtask testnet ...`.
pub fn run(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let cli = match Cli::try_parse_from(
        std::iter::once("testnet".to_string()).chain(args.iter().cloned()),
    ) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    if let Cmd::Garbage { addr } = &cli.command {
        return garbage(addr);
    }
    if !crate::image::is_root() {
        bail!(
            "the testnet needs root: it makes network namespaces, links and a bridge (or \
             containers); run it as root (CI does), e.g. sudo -E cargo xtask testnet ..."
        );
    }
    let _ = ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst));
    match cli.command {
        Cmd::Up {
            nodes,
            engine,
            prefix,
        } => up(root, usize::from(nodes), &engine, &prefix),
        Cmd::Down => down(root),
        cmd => {
            let Some(mut state) = State::load(root)? else {
                bail!(
                    "no testnet is up (no {}): cargo xtask testnet up",
                    State::path(root).display()
                );
            };
            let binary = crate::build::node_binary(root)?;
            let mut net = attach(&binary, &state);
            match cmd {
                Cmd::Status => status(&net),
                Cmd::Flows => flows_on(&mut net, &state),
                Cmd::Partition { groups } => partition(&mut net, &mut state, &groups),
                Cmd::Heal => heal(&mut net, &mut state),
                Cmd::Mine { node, blocks } => mine(&net, &state, node, blocks),
                Cmd::Misbehave { host, target } => misbehave(&mut net, &state, host, target),
                Cmd::Up { .. } | Cmd::Down | Cmd::Garbage { .. } => unreachable!("handled above"),
            }
        }
    }
}

/// The demo's view of the testnet's nodes.
fn attach(binary: &Path, state: &State) -> Net {
    let nodes = state
        .hosts
        .iter()
        .map(|h| NodeProc {
            index: h.index,
            child: None,
            p2p: h.p2p(),
            api: h.api(),
            data_dir: h.data_dir.clone(),
            miner: h.miner.clone(),
        })
        .collect();
    Net::attach(binary, nodes)
}

fn up(root: &Path, n: usize, engine: &str, prefix: &str) -> anyhow::Result<()> {
    if let Some(state) = State::load(root)? {
        bail!(
            "a testnet of {} hosts is up already ({}): cargo xtask testnet down first",
            state.hosts.len(),
            state.path.display()
        );
    }
    let octets: Vec<&str> = prefix.split('.').collect();
    if octets.len() != 3 || octets.iter().any(|o| o.parse::<u8>().is_err()) {
        bail!("--prefix {prefix}: give the first three numbers of an IPv4 address, e.g. 10.77.0");
    }
    let engine = match engine {
        "docker" => Engine::Docker,
        "netns" => Engine::Netns,
        _ if crate::image::engine_runs() => Engine::Docker,
        _ => Engine::Netns,
    };
    if !hosts::has("ip") {
        bail!("`ip` (iproute2) is missing: install it (apt-get install iproute2)");
    }
    let dir = crate::build::target_dir(root).join("image");
    let assembled = crate::image::assemble(root)?;
    if engine == Engine::Docker {
        crate::image::build_image(&assembled)?;
    }
    let binary = crate::build::node_binary(root)?;
    let base = State::path(root)
        .parent()
        .map(Path::to_path_buf)
        .context("no state directory")?;
    std::fs::create_dir_all(&base)?;
    let keys = tempfile::tempdir()?;
    let keygen = Net::attach(&binary, Vec::new());
    let mut hosts = Vec::new();
    for index in 0..n {
        let host_dir = base.join(format!("host-{index}"));
        let data_dir = match engine {
            Engine::Netns => host_dir.join("data"),
            Engine::Docker => host_dir.join("data"),
        };
        hosts.push(Host {
            index,
            ns: format!("{NAME}-{index}"),
            ip: format!("{prefix}.{}", 10 + index),
            dir: host_dir,
            data_dir,
            miner: keygen.keygen(&keys.path().join(format!("miner-{index}.key")))?,
            pid: None,
            made_ns: false,
            veth: None,
            container: None,
        });
    }
    let mut state = State {
        engine,
        prefix: prefix.to_string(),
        bridge: None,
        network: None,
        forward_rule: false,
        hosts,
        cuts: Vec::new(),
        path: State::path(root),
    };
    state.save()?;
    println!("testnet: {n} hosts ({engine:?} engine) on {prefix}.0/24; this machine is {prefix}.1");
    if let Err(e) = start_all(&mut state, &dir.join("rootfs")) {
        println!("testnet: up failed: {e:#}\nremoving what it made");
        let failed = state.tear_down();
        let _ = std::fs::remove_file(&state.path);
        for f in failed {
            println!("  could not undo: {f}");
        }
        return Err(e);
    }
    let mut net = attach(&binary, &state);
    wait_connected(&mut net, &state)?;
    status(&net)?;
    println!(
        "\nthe explorers: {}\nnext: cargo xtask testnet flows | partition 0,1 2,3 | heal | misbehave --host 3 --target 0 | down",
        state
            .hosts
            .iter()
            .map(|h| format!("{}/", h.api()))
            .collect::<Vec<_>>()
            .join("  ")
    );
    Ok(())
}

/// Makes the bridge and every host, and starts the nodes: node 0 first,
/// then the others knowing only node 0.
fn start_all(state: &mut State, root_fs: &Path) -> anyhow::Result<()> {
    state.make_bridge()?;
    let seed = state.host(0)?.p2p();
    for index in 0..state.hosts.len() {
        let host = state.host(index)?.clone();
        let listen = match state.engine {
            // Inside a container: every interface, and the address to
            // dial back said apart.
            Engine::Docker => format!("0.0.0.0:{}", hosts::P2P_PORT),
            Engine::Netns => host.p2p(),
        };
        let api = match state.engine {
            Engine::Docker => format!("0.0.0.0:{}", hosts::API_PORT),
            Engine::Netns => format!("{}:{}", host.ip, hosts::API_PORT),
        };
        let mut args: Vec<String> = [
            "--listen",
            &listen,
            "--advertise",
            &host.p2p(),
            "--api",
            &api,
            "--data-dir",
            "/data",
            "--mine",
            "pending",
            "--miner",
            &host.miner,
            "--log-format",
            "json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if index > 0 {
            args.extend(["--peer".to_string(), seed.clone()]);
        }
        state.start(index, root_fs, &args)?;
        wait_api(state.host(index)?)?;
        println!(
            "  node {index}: {} (P2P {}), mines to {}",
            host.api(),
            host.p2p(),
            host.miner
        );
    }
    Ok(())
}

/// Waits until a host's API answers, or says how its node ended.
fn wait_api(host: &Host) -> anyhow::Result<()> {
    let http = crate::http::Client::new(Duration::from_secs(2));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if http
            .get(&format!("{}/status", host.api()))
            .is_ok_and(|r| r.is_success())
        {
            return Ok(());
        }
        if !hosts::running(host) || Instant::now() > deadline || INTERRUPTED.load(Ordering::SeqCst)
        {
            bail!(
                "node {} did not open its API at {}; its last lines:\n{}",
                host.index,
                host.api(),
                hosts::log_tail(host, 15)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until every node has as many peers as it can have among the
/// others (8 outbound at most, so at least min(N - 1, 8)).
fn wait_connected(net: &mut Net, state: &State) -> anyhow::Result<()> {
    let want = (state.hosts.len() - 1).min(8) as u64;
    let deadline = Instant::now() + STEP;
    loop {
        let mut counts = Vec::new();
        for n in net.live() {
            counts.push(net.get(n, "/status")?["peers"].as_u64().unwrap_or(0));
        }
        if counts.iter().all(|c| *c >= want) {
            net.clear_spinner();
            println!("connected: peers per node {counts:?}, learned by address gossip from node 0");
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "the nodes did not connect within {} s: peers per node {counts:?}",
                STEP.as_secs()
            );
        }
        net.tick()?;
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn down(root: &Path) -> anyhow::Result<()> {
    let Some(mut state) = State::load(root)? else {
        println!(
            "no testnet is up (no {}): nothing to remove",
            State::path(root).display()
        );
        return Ok(());
    };
    let failed = state.tear_down();
    if !failed.is_empty() {
        // Keep the record of what is left, for another `down`.
        state.save()?;
        bail!("could not remove everything:\n  {}", failed.join("\n  "));
    }
    std::fs::remove_file(&state.path)
        .with_context(|| format!("cannot remove {}", state.path.display()))?;
    if let Some(dir) = state.path.parent() {
        let _ = std::fs::remove_dir(dir);
    }
    println!(
        "testnet down: {} nodes stopped; their hosts, links and {} removed",
        state.hosts.len(),
        if state.engine == Engine::Docker {
            "network"
        } else {
            "bridge"
        }
    );
    Ok(())
}

fn status(net: &Net) -> anyhow::Result<()> {
    for n in net.live() {
        let s = net.get(n, "/status")?;
        let peers = net.get(n, "/peers")?;
        let addrs: Vec<String> = peers
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter_map(|p| p["remote"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        println!(
            "node {} at {}: height {}, tip {}, peers {}",
            n.index,
            n.p2p,
            s["height"],
            super::net::prefix(s["tip"].as_str().unwrap_or("?"), 12),
            addrs.join(" ")
        );
    }
    Ok(())
}

fn flows_on(net: &mut Net, state: &State) -> anyhow::Result<()> {
    let first = net.node(0)?;
    if net
        .get(first, "/contracts")?
        .as_array()
        .is_some_and(|c| !c.is_empty())
    {
        bail!("the flows check balances from genesis: run them on a fresh testnet (down, then up)");
    }
    let o = Options {
        nodes: state.hosts.len(),
        base_port: 0,
        api_base_port: 0,
        scenario: Scenario::Demo,
        keep: true,
    };
    let expected = flows::flows(net, &o)?;
    net.settle()?;
    if !report::report(net, &expected)? {
        bail!("the nodes disagree or the balances are wrong (✗ lines above)");
    }
    println!("\nflows: every node agrees, balances as expected");
    Ok(())
}

/// The IP addresses of a node's live peers' connections.
fn peer_ips(net: &Net, node: &NodeProc) -> anyhow::Result<Vec<String>> {
    let peers = net.get(node, "/peers")?;
    Ok(peers
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p["remote"].as_str())
                .filter_map(|r| r.rsplit_once(':').map(|(ip, _)| ip.to_string()))
                .collect()
        })
        .unwrap_or_default())
}

fn partition(net: &mut Net, state: &mut State, groups: &[String]) -> anyhow::Result<()> {
    let mut seen = BTreeSet::new();
    let mut parsed: Vec<Vec<usize>> = Vec::new();
    for g in groups {
        let mut group = Vec::new();
        for part in g.split(',') {
            let i: usize = part
                .trim()
                .parse()
                .with_context(|| format!("`{g}`: give host numbers, e.g. 0,1"))?;
            state.host(i)?;
            if !seen.insert(i) {
                bail!("host {i} is in two groups");
            }
            group.push(i);
        }
        parsed.push(group);
    }
    for (gi, group) in parsed.iter().enumerate() {
        for (gj, other) in parsed.iter().enumerate() {
            if gi == gj {
                continue;
            }
            for a in group {
                for b in other {
                    let (ns, ip) = (state.host(*a)?.ns.clone(), state.host(*b)?.ip.clone());
                    hosts::ip(&["-n", &ns, "route", "add", "prohibit", &format!("{ip}/32")])?;
                    state.cuts.push((*a, *b));
                    state.save()?;
                    // Close the connections already open, where the kernel
                    // can (otherwise the nodes' idle timeout does).
                    let _ = hosts::run(
                        Command::new("ip").args(["netns", "exec", &ns, "ss", "-K", "dst", &ip]),
                    );
                }
            }
        }
    }
    println!(
        "partition: {}; waiting for the nodes to lose the other side",
        groups.join(" | ")
    );
    let deadline = Instant::now() + STEP;
    loop {
        let mut crossing = Vec::new();
        for (a, b) in &state.cuts {
            let ips = peer_ips(net, net.node(*a)?)?;
            if ips.contains(&state.host(*b)?.ip) {
                crossing.push(format!("{a}→{b}"));
            }
        }
        if crossing.is_empty() {
            net.clear_spinner();
            println!("partitioned: no node has a peer across the cut");
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "links still up across the cut after {} s: {}",
                STEP.as_secs(),
                crossing.join(" ")
            );
        }
        net.tick()?;
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn heal(net: &mut Net, state: &mut State) -> anyhow::Result<()> {
    let cuts = std::mem::take(&mut state.cuts);
    for (a, b) in &cuts {
        let (ns, ip) = (state.host(*a)?.ns.clone(), state.host(*b)?.ip.clone());
        hosts::ip(&["-n", &ns, "route", "del", "prohibit", &format!("{ip}/32")])?;
    }
    state.save()?;
    println!(
        "heal: {} cut links restored; waiting for the nodes to reconnect and agree",
        cuts.len()
    );
    wait_connected(net, state)?;
    net.settle()?;
    let s = net.get(net.node(0)?, "/status")?;
    println!(
        "healed: every node is on tip {} at height {}",
        super::net::prefix(s["tip"].as_str().unwrap_or("?"), 12),
        s["height"]
    );
    Ok(())
}

fn mine(net: &Net, state: &State, node: usize, blocks: u64) -> anyhow::Result<()> {
    state.host(node)?;
    net.post(net.node(node)?, "/mine", json!({ "blocks": blocks }))?;
    let s = net.get(net.node(node)?, "/status")?;
    println!(
        "node {node} mined {blocks} block(s): height {}",
        s["height"]
    );
    Ok(())
}

fn misbehave(net: &mut Net, state: &State, host: usize, target: usize) -> anyhow::Result<()> {
    if host == target {
        bail!("a host cannot misbehave towards itself");
    }
    let (bad, victim) = (state.host(host)?.clone(), state.host(target)?.clone());
    let node = net.node(target)?;
    let before: Vec<Value> = net
        .get(node, "/peers")?
        .as_array()
        .cloned()
        .unwrap_or_default();
    let others_before: BTreeSet<String> = before
        .iter()
        .filter_map(|p| p["remote"].as_str())
        .filter(|r| !r.starts_with(&format!("{}:", bad.ip)))
        .map(str::to_string)
        .collect();
    println!(
        "misbehave: host {host} ({}) sends node {target} ({}) a frame that is not one; node {target} has {} peers, {} from other hosts",
        bad.ip,
        victim.p2p(),
        before.len(),
        others_before.len()
    );
    let me = std::env::current_exe().context("cannot find this program")?;
    hosts::run(
        Command::new("ip")
            .args(["netns", "exec", &bad.ns])
            .arg(&me)
            .args(["testnet", "garbage", &victim.p2p()]),
    )?;

    let deadline = Instant::now() + Duration::from_secs(30);
    let ip_ban = json!({"kind": "ip", "value": bad.ip});
    loop {
        let node = net.node(target)?;
        let bans = net.get(node, "/bans")?;
        let banned = bans.as_array().is_some_and(|b| {
            b.iter()
                .any(|x| x["kind"] == ip_ban["kind"] && x["value"] == ip_ban["value"])
        });
        let ips = peer_ips(net, node)?;
        if banned && !ips.contains(&bad.ip) {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "node {target} did not ban {} and drop its peers within 30 s: bans {bans}, peer IPs {ips:?}",
                bad.ip
            );
        }
        net.tick()?;
    }
    net.clear_spinner();
    println!(
        "  node {target} banned IP {} (GET /bans) and has no peer from it",
        bad.ip
    );
    let node = net.node(target)?;
    let after: BTreeSet<String> = net
        .get(node, "/peers")?
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p["remote"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let lost: Vec<&String> = others_before.difference(&after).collect();
    if !lost.is_empty() {
        bail!("node {target} lost peers of other hosts: {lost:?}");
    }
    println!(
        "  its {} peers from other hosts kept their slots",
        others_before.len()
    );
    // Node `host` itself is refused if it dials again (its IP is banned):
    // a while later it still has no link to the target.
    std::thread::sleep(Duration::from_secs(3));
    let own = peer_ips(net, net.node(host)?)?;
    if own.contains(&victim.ip) {
        bail!("node {host} is connected to node {target} again: the ban did not hold");
    }
    if own.is_empty() {
        bail!("node {host} lost every peer: only node {target} banned it");
    }
    println!(
        "  node {host}'s own node is refused by node {target}, and stays connected to the others"
    );
    Ok(())
}

/// Connects to `addr` and sends a frame whose length prefix says 6 bytes
/// and whose body decodes as no message.
fn garbage(addr: &str) -> anyhow::Result<()> {
    let mut stream =
        TcpStream::connect(addr).with_context(|| format!("cannot connect to {addr}"))?;
    stream.write_all(&[0, 0, 0, 6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])?;
    stream.flush()?;
    // Wait for the node to close the connection.
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let _ = std::io::Read::read(&mut stream, &mut [0; 64]);
    Ok(())
}

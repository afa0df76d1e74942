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

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use super::net::{Net, NodeProc};
use super::setup::{INTERRUPTED, Options, Scenario};
use super::{flows, report};
use faults::{garbage, heal, mine, misbehave, partition, wait_connected};
use hosts::{Engine, Host, NAME, State};

mod faults;
mod hosts;

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
    /// (Inside a host's namespace) connect to ADDR as a peer of NETWORK
    /// and send garbage.
    #[command(hide = true)]
    Garbage { addr: String, network: String },
}

/// `cargo xtask testnet ...`.
pub fn run(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let cli = match Cli::try_parse_from(
        std::iter::once("testnet".to_string()).chain(args.iter().cloned()),
    ) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    if let Cmd::Garbage { addr, network } = &cli.command {
        return garbage(addr, network);
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
        if failed.is_empty() {
            let _ = std::fs::remove_file(&state.path);
            let _ = std::fs::remove_dir(&base);
        } else {
            // What is left stays recorded, for `down`.
            state.save()?;
        }
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

//! `cargo xtask simulate`: the four-node escrow demo, end to end, with
//! fault scenarios.
//!
//! It builds the node in release mode, starts N `p2p-node` processes in a
//! full mesh (P2P on `--base-port` upward, APIs on `--api-base-port`
//! upward, each on a fresh data directory, each mining to an account of
//! its own), runs the notebook's two escrow flows through the client and
//! the API with transactions sent to different nodes, narrates what each
//! node does, waits until every node agrees, prints a table per node and
//! checks the balances against what the flows and the mined blocks imply.
//! It exits 0 only when every check holds. `--keep` leaves the nodes
//! running and `--stop` stops exactly those nodes.
//!
//! xtask depends on none of the project's crates for this: it drives the
//! node binary as processes (the binary's client subcommands sign the
//! transactions) and reads the nodes' HTTP APIs.
//!
//! # Layout
//!
//! - `mod.rs`: the command line and the scenario's outline.
//! - [`net`]: the node processes and the HTTP calls to them.
//! - [`narrate`]: waiting for the nodes while telling what they do.
//! - [`flows`]: the escrow flows and the partition scenario.
//! - [`report`]: the final table and its checks.
//! - [`keep`]: `--keep`'s PID file and `--stop`.
//! - [`setup`]: what they all share: the options, the scenarios, the
//!   constants.

mod flows;
mod keep;
mod narrate;
mod net;
mod report;
mod setup;
pub mod testnet;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};

use net::Net;
use setup::{INTERRUPTED, Options, Scenario};

/// The command line, as clap parses it.
#[derive(Parser, Debug)]
#[command(
    name = "simulate",
    bin_name = "cargo xtask simulate",
    about = "The four-node escrow demo: real node processes on this machine, \
             narrated, checked at the end (docs/SIMULATION.md)",
    after_help = "Examples:
  cargo xtask simulate                     the demo
  cargo xtask simulate --scenario all      every fault scenario in turn
  cargo xtask simulate --nodes 6 --keep    six nodes, left running afterwards
  cargo xtask simulate --stop              stop the nodes that --keep left running"
)]
pub(crate) struct Cli {
    /// How many nodes (at least 2; the partition scenario needs 4).
    #[arg(long, default_value_t = 4)]
    nodes: u16,
    /// The first node's P2P port; node i listens on this port + i.
    #[arg(long, default_value_t = 5000, value_name = "PORT")]
    base_port: u16,
    /// The first node's API port; node i's API is on this port + i.
    #[arg(long, default_value_t = 8000, value_name = "PORT")]
    api_base_port: u16,
    /// What to run: the demo, one fault scenario, or all three.
    #[arg(long, value_enum, default_value_t = ScenarioArg::Demo)]
    scenario: ScenarioArg,
    /// Leave the nodes running afterwards; prints their PIDs, addresses and
    /// explorer pages, and records them for `--stop`.
    #[arg(long)]
    keep: bool,
    /// Stop the nodes that `--keep` left running: every recorded demo, or
    /// the one whose data directory is DIR.
    #[arg(
        long,
        value_name = "DIR",
        num_args = 0..=1,
        conflicts_with_all = ["nodes", "base_port", "api_base_port", "scenario", "keep"]
    )]
    stop: Option<Option<PathBuf>>,
}

/// `--scenario`'s values.
#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
enum ScenarioArg {
    /// The two escrow flows.
    Demo,
    /// A node is killed mid-way and restarted on its data directory.
    CrashRestart,
    /// A node joins after the flows, knowing only node 0.
    LateJoin,
    /// A 2 + 2 split where each side settles one contract differently.
    Partition,
    /// crash-restart, late-join and partition in turn.
    All,
}

/// What the command line asks for.
#[derive(Debug)]
enum Invocation {
    /// Run these scenarios in turn.
    Run(Options, Vec<Scenario>),
    /// Stop the nodes of kept demos (every recorded one, or this directory's).
    Stop(Option<PathBuf>),
}

/// Parses the arguments after `simulate`; `--help` and bad options come
/// back as clap's error, which prints the usage.
fn parse(args: &[String]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("simulate".to_string()).chain(args.iter().cloned()))
}

/// A bad command line's message: clap's, with the usage line added when
/// clap left it out (it does for a missing value).
fn error_text(e: &clap::Error) -> String {
    let text = e.render().to_string();
    if text.contains("Usage:") {
        return text;
    }
    use clap::CommandFactory;
    format!("{text}\n{}\n", Cli::command().render_usage())
}

/// Checks what clap cannot: the node count per scenario and the ports.
fn plan(cli: Cli) -> anyhow::Result<Invocation> {
    if let Some(dir) = cli.stop {
        return Ok(Invocation::Stop(dir));
    }
    let scenarios = match cli.scenario {
        ScenarioArg::Demo => vec![Scenario::Demo],
        ScenarioArg::CrashRestart => vec![Scenario::CrashRestart],
        ScenarioArg::LateJoin => vec![Scenario::LateJoin],
        ScenarioArg::Partition => vec![Scenario::Partition],
        ScenarioArg::All => vec![
            Scenario::CrashRestart,
            Scenario::LateJoin,
            Scenario::Partition,
        ],
    };
    let nodes = usize::from(cli.nodes);
    if nodes < 2 {
        bail!("--nodes {nodes}: the demo needs at least 2 nodes");
    }
    if scenarios.contains(&Scenario::Partition) && nodes < 4 {
        bail!("--nodes {nodes}: the partition scenario needs at least 4 nodes (2 on each side)");
    }
    if cli.keep && scenarios.len() > 1 {
        bail!("--keep runs one scenario at a time: name one with --scenario");
    }
    // Late-join starts one node more than --nodes.
    let most = nodes + usize::from(scenarios.contains(&Scenario::LateJoin));
    let last = |base: u16| usize::from(base) + most - 1;
    for (flag, base) in [
        ("--base-port", cli.base_port),
        ("--api-base-port", cli.api_base_port),
    ] {
        if base == 0 || last(base) > usize::from(u16::MAX) {
            bail!(
                "{flag} {base}: {most} nodes need ports {base} to {}, which must lie in 1..=65535",
                last(base)
            );
        }
    }
    let (p2p, api) = (usize::from(cli.base_port), usize::from(cli.api_base_port));
    if p2p <= last(cli.api_base_port) && api <= last(cli.base_port) {
        bail!(
            "the P2P ports {p2p}..={} and the API ports {api}..={} overlap: \
             move one with --base-port or --api-base-port",
            last(cli.base_port),
            last(cli.api_base_port)
        );
    }
    let options = Options {
        nodes,
        base_port: cli.base_port,
        api_base_port: cli.api_base_port,
        scenario: scenarios[0],
        keep: cli.keep,
    };
    Ok(Invocation::Run(options, scenarios))
}

/// Runs `cargo xtask simulate` with `args` (after `simulate`).
pub fn run(root: &Path, args: &[String]) -> anyhow::Result<()> {
    // --help prints the usage and exits 0; a bad option prints what was
    // wrong and the usage, and exits 2.
    let cli = match parse(args) {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            eprint!("{}", error_text(&e));
            std::process::exit(e.exit_code());
        }
        Err(e) => e.exit(),
    };
    let (mut options, scenarios) = match plan(cli)? {
        Invocation::Stop(dir) => return keep::stop(root, dir.as_deref()),
        Invocation::Run(options, scenarios) => (options, scenarios),
    };
    ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst))
        .context("cannot install the Ctrl-C handler")?;
    net::check_ports(&options, &scenarios, &keep::recorded(root))?;
    let binary = crate::build::node_binary(root)?;
    let mut failed = Vec::new();
    let scenarios_run = scenarios.len();
    for scenario in scenarios {
        options.scenario = scenario;
        let started = Instant::now();
        println!(
            "\n=== scenario: {} ({} nodes) ===",
            scenario.name(),
            options.nodes
        );
        match run_scenario(root, &binary, &options) {
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
            if options.keep {
                bail!(
                    "interrupted; the nodes still running are recorded: \
                     `cargo xtask simulate --stop` stops them"
                );
            }
            bail!("interrupted: every node was stopped");
        }
    }
    let ran = scenarios_run;
    if failed.is_empty() {
        if ran > 1 {
            println!(
                "\n=== all {ran} scenarios passed: every node agreed, balances as expected ==="
            );
        }
        next_steps(&options);
        Ok(())
    } else {
        println!(
            "\n=== {} of {ran} scenarios FAILED: {} ===",
            failed.len(),
            failed.join(", ")
        );
        bail!("failed: {}", failed.join(", "))
    }
}

/// What to try after the demo: keep the network, look at it, talk to it.
fn next_steps(o: &Options) {
    let api = o.ports(0).map_or(8100, |p| p.1);
    if o.keep {
        println!(
            "\nthe nodes are still running: the explorer is at http://127.0.0.1:{api}/; try \
             `cargo run -p p2p-node -- --node 127.0.0.1:{api} status` or `... contracts`; \
             `cargo xtask simulate --stop` stops them"
        );
    } else {
        println!(
            "\nnext: `cargo xtask simulate --keep` leaves the nodes running, with an explorer at \
             http://127.0.0.1:{api}/ and `cargo run -p p2p-node -- --node 127.0.0.1:{api} contracts` \
             to ask them; \
             `cargo xtask simulate --scenario all` adds the fault scenarios; docs/SIMULATION.md \
             explains the output"
        );
    }
}

/// Starts the network, runs one scenario on it and checks the outcome;
/// on failure prints the end of each node's log before the nodes stop.
fn run_scenario(root: &Path, binary: &Path, o: &Options) -> anyhow::Result<()> {
    let mut net = Net::new(binary, o.keep)?;
    let outcome = scenario_on(&mut net, o);
    if outcome.is_err() {
        net.print_log_tails();
    }
    if o.keep {
        keep::keep(root, &mut net)?;
    }
    outcome
}

fn scenario_on(net: &mut Net, o: &Options) -> anyhow::Result<()> {
    let mut addrs = Vec::new();
    for i in 0..o.nodes {
        net.start(i, o, &addrs)?;
        addrs.push(net.node(i)?.p2p.clone());
    }
    let (first, last) = (o.ports(0)?, o.ports(o.nodes - 1)?);
    println!(
        "started {} nodes: P2P ports {}..={}, APIs {}..={}; each mines to an account of its own:",
        o.nodes, first.0, last.0, first.1, last.1
    );
    for n in net.live() {
        // The whole address: accounts take no prefixes (`p2p-node balance ADDRESS`).
        println!("  node {} mines to {}", n.index, n.miner);
    }
    net.wait_mesh()?;
    println!(
        "full mesh: every node is connected to the {} others",
        o.nodes - 1
    );

    let expected = match o.scenario {
        Scenario::Partition => flows::partition(net, o)?,
        _ => flows::flows(net, o)?,
    };
    if o.scenario == Scenario::LateJoin {
        let index = o.nodes;
        println!("\nlate join: node {index} starts now, knowing only node 0");
        let first = net.node(0)?.p2p.clone();
        net.start(index, o, &[first])?;
        println!("    node {index} mines to {}", net.node(index)?.miner);
    }
    net.settle()?;
    if !report::report(net, &expected)? {
        bail!("the nodes disagree or the balances are wrong (✗ lines above)");
    }
    Ok(())
}

//! The `sim` binary's command line, which `cargo xtask sim` builds in
//! release mode and runs.
//!
//! One run (`--nodes --block-interval --latency --duration|--blocks
//! --seed --out`), a sweep of block intervals (`--sweep
//! block-interval=...`), or a fault swarm (`--swarm --seeds N`). The
//! simulator itself is the `sim` library; this module parses options,
//! prints, and writes the report, the run's wall-clock figures and the
//! pictures ([`svg`]). `docs/SIMULATION.md` documents every option.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use sim::cpu::CostModel;
use sim::net::Latency;
use sim::world::{
    Eclipse, Faults, HashPower, Outcome, Processor, Regions, Report, Selfish, SimOptions, Stop,
    bitcoin_regions, bitcoin_regions_2015, run as run_sim,
};

mod attacks;
mod batch;
mod replay;
mod setups;
mod svg;

use svg::{CdfSeries, TreeBlock};

/// The simulator: real nodes in a simulated network, deterministic per seed.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "cargo xtask sim",
    about = "The deterministic simulator: real nodes in a simulated network, one run, a sweep or a fault swarm (docs/SIMULATION.md)",
    long_about = None,
    args_override_self = true
)]
pub struct Args {
    /// Nodes in the network.
    #[arg(long)]
    nodes: Option<usize>,
    /// The seed of every random draw (the first seed of a swarm).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Mean time between blocks over the whole network (`600s`, `10m`,
    /// `2s`; default 1m, 10s in a swarm).
    #[arg(long, value_parser = humantime::parse_duration)]
    block_interval: Option<Duration>,
    /// Link latency: `bitcoin` (SimBlock's six regions, with their
    /// bandwidths, of 2019), `bitcoin-2015` (the same regions with
    /// SimBlock's 2015 figures), `100ms` (every link), or `50ms..150ms`
    /// (uniform per link).
    #[arg(long, default_value = "bitcoin")]
    latency: String,
    /// Upload bandwidth of every node (`20mbit`, `1gbit`, `500kbit`);
    /// ignored with `--latency bitcoin`, whose regions have their own.
    #[arg(long, default_value = "20mbit")]
    bandwidth: String,
    /// How many other nodes each node is told at start; it finds the rest
    /// through address gossip.
    #[arg(long, default_value_t = 4)]
    seeds_per_node: usize,
    /// Stop after this much simulated time.
    #[arg(long, value_parser = humantime::parse_duration, conflicts_with = "blocks")]
    duration: Option<Duration>,
    /// Stop once the best chain reaches this height.
    #[arg(long)]
    blocks: Option<u64>,
    /// Signed transactions per simulated second, over the whole network.
    #[arg(long, default_value_t = 1.0)]
    tx_rate: f64,
    /// The share of the load that is escrow steps (create, confirm,
    /// dispute, resolve, refund); the rest are transfers.
    #[arg(long, default_value_t = 0.3)]
    escrow_share: f64,
    /// Simulated users, each funded in genesis and homed on one node
    /// (default: twice the nodes, at least 20).
    #[arg(long)]
    users: Option<usize>,
    /// How the hash power is shared: `equal`, or `skewed` (exponentially
    /// distributed shares).
    #[arg(long, default_value = "equal")]
    hash_power: String,
    /// How long after the heal every node must agree on one tip with an
    /// empty mempool.
    #[arg(long, value_parser = humantime::parse_duration)]
    settle_bound: Option<Duration>,
    /// Where to write the report and pictures (default
    /// `target/sim/<kind>-seed<seed>`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Runs a series: `block-interval=1s,2s,5s,10s` plots the stale rate
    /// against Decker and Wattenhofer's model; `selfish-power=0.1,0.2,...`
    /// plots a selfish pool's revenue against Eyal and Sirer's.
    #[arg(long)]
    sweep: Option<String>,
    /// The fault swarm: each seed draws partitions, held links, latency
    /// spikes and crashes, then heals; the checks must hold.
    #[arg(long)]
    swarm: bool,
    /// How many seeds a swarm runs, from `--seed` upward.
    #[arg(long, default_value_t = 20)]
    seeds: u64,
    /// Mean simulated time between fault events in a swarm.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "20s")]
    fault_gap: Duration,
    /// The swarm also fails commits (the node stops, and restarts later)
    /// and slows them (the node stalls while its store commits).
    #[arg(long, requires = "swarm")]
    store_faults: bool,
    /// The swarm also runs N Byzantine hosts beside the nodes: they speak
    /// the protocol and misbehave (invalid blocks, malformed frames,
    /// floods, stale blocks, announcements never delivered); no honest node
    /// may ever ban an honest node.
    #[arg(long, requires = "swarm", default_value_t = 0)]
    byzantine: usize,
    /// Runs twice and fails unless the two reports are byte-identical.
    #[arg(long)]
    twice: bool,
    /// Cores of each node's simulated processor.
    #[arg(long, default_value_t = 1)]
    cores: usize,
    /// Speed of each node's processor as a factor of the reference
    /// machine (`0.5`: half as fast, every cost doubled).
    #[arg(long, default_value_t = 1.0)]
    cpu_speed: f64,
    /// A cost table (JSON, every field of the reference table; see
    /// docs/SIMULATION.md) instead of the reference machine's.
    #[arg(long)]
    cpu_model: Option<PathBuf>,
    /// Runs a sweep's or a swarm's points this many at a time (default:
    /// one per core).
    #[arg(long)]
    jobs: Option<usize>,
    /// Runs share K of N of a sweep's or a swarm's points (every N-th,
    /// from the K-th); `sim merge` combines the shares.
    #[arg(long, value_parser = batch::parse_shard)]
    shard: Option<[usize; 2]>,
    /// Work costs no simulated time (processors of infinite speed); wins
    /// over `--cores`, `--cpu-speed` and `--cpu-model`.
    #[arg(long)]
    no_cpu: bool,
    /// The mean size of a block (`535kB`, `1MB`, `64KiB`, or bytes):
    /// memo transfers arrive at this many bytes per block interval, on top
    /// of `--tx-rate`.
    #[arg(long, value_parser = parse_size)]
    block_size: Option<u64>,
    /// A silent connection is pinged after this long (the live node's
    /// 15 s; Bitcoin Core's `2m` in the Bitcoin setups).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "15s")]
    ping_interval: Duration,
    /// A connection silent this long is closed (the live node's 45 s;
    /// Bitcoin Core's `20m` in the Bitcoin setups); more than
    /// `--ping-interval`.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "45s")]
    idle_timeout: Duration,
    /// How nodes relay new blocks: `compact` (compact blocks, the node's
    /// default) or `legacy` (announce, request, whole block).
    #[arg(long, value_enum, default_value = "compact")]
    relay: p2p_node::Relay,
    /// A selfish mining pool at node 0 with this share of the hash power
    /// (above 0, below 0.5), mining Eyal and Sirer's SM1 against the
    /// honest nodes (docs/SIMULATION.md).
    #[arg(long)]
    selfish_power: Option<f64>,
    /// How many honest nodes the pool's node dials (it takes no inbound
    /// connection).
    #[arg(long, default_value_t = 8)]
    selfish_peers: usize,
    /// The one-way latency of the pool's links in milliseconds (default:
    /// drawn as any host's): a pool that hears of blocks early.
    #[arg(long)]
    selfish_link_ms: Option<u64>,
    /// An eclipse attack with this many attacker hosts (IP addresses) on
    /// the last `--eclipse-victims` nodes (docs/SIMULATION.md).
    #[arg(long)]
    eclipse_hosts: Option<usize>,
    /// The attacker's addresses (ports over its hosts; default 10 per host).
    #[arg(long, requires = "eclipse_hosts")]
    eclipse_addrs: Option<usize>,
    /// How many nodes the eclipse attacks (the last ones).
    #[arg(long, default_value_t = 1)]
    eclipse_victims: usize,
    /// The other honest nodes' mean uptime: each restarts now and then.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30m")]
    eclipse_churn: Duration,
    /// The attacker's share of the hash power, for the private chain it
    /// feeds an eclipsed victim.
    #[arg(long, default_value_t = 0.3)]
    eclipse_power: f64,
    /// How deep the eclipsed victim must see the double-spent payment.
    #[arg(long, default_value_t = 3)]
    eclipse_confirmations: u64,
    /// A published setup: `bitcoin-2016` or `bitcoin-2016-small`
    /// (docs/SIMULATION.md); options given beside it win over its own.
    #[arg(long)]
    setup: Option<String>,
}

/// A duration as one shell word (`90s`, `1500ms`), for replay commands.
fn dur(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Parses a positive number with one of `units` (a suffix, any case, and
/// its scale) or none (scale 1); `what` and `examples` name it in errors.
fn parse_scaled(s: &str, units: &[(&str, f64)], what: &str, examples: &str) -> anyhow::Result<f64> {
    let lower = s.trim().to_ascii_lowercase();
    let (number, scale) = units
        .iter()
        .find_map(|(unit, scale)| lower.strip_suffix(unit).map(|n| (n.to_string(), *scale)))
        .unwrap_or((lower.clone(), 1.0));
    let value: f64 = number
        .trim()
        .parse()
        .with_context(|| format!("{what} `{s}`: expected e.g. {examples}"))?;
    if !(value.is_finite() && value > 0.0) {
        bail!("{what} `{s}` must be positive");
    }
    Ok((value * scale).round())
}

/// Parses `20mbit`, `500kbit`, `1gbit` or a number of bits per second.
fn parse_bandwidth(s: &str) -> anyhow::Result<u64> {
    let units = [("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3), ("bit", 1.0)];
    Ok(parse_scaled(s, &units, "bandwidth", "20mbit, 500kbit, 1gbit")? as u64)
}

/// Parses `535kB`, `1MB`, `64KiB`, `1MiB` or a number of bytes (kB and MB
/// are powers of ten, KiB and MiB of two).
fn parse_size(s: &str) -> anyhow::Result<u64> {
    let units = [
        ("kib", 1024.0),
        ("mib", 1_048_576.0),
        ("kb", 1e3),
        ("mb", 1e6),
        ("b", 1.0),
    ];
    Ok(parse_scaled(s, &units, "size", "535kB, 1MB, 64KiB")? as u64)
}

/// Parses the latency option: `bitcoin`, `bitcoin-2015`, `100ms` or
/// `50ms..150ms`; `Err(regions)` for a regional preset.
fn parse_latency(s: &str) -> anyhow::Result<Result<Latency, Regions>> {
    match s {
        "bitcoin" => return Ok(Err(bitcoin_regions())),
        "bitcoin-2015" => return Ok(Err(bitcoin_regions_2015())),
        _ => {}
    }
    let d = |x: &str| {
        humantime::parse_duration(x.trim())
            .with_context(|| format!("latency `{s}`: expected bitcoin, 100ms or 50ms..150ms"))
    };
    Ok(Ok(match s.split_once("..") {
        Some((lo, hi)) => {
            let (lo, hi) = (d(lo)?, d(hi)?);
            if hi < lo {
                bail!("latency `{s}`: the upper bound is below the lower");
            }
            Latency::Uniform(lo, hi)
        }
        None => Latency::Fixed(d(s)?),
    }))
}

impl Args {
    fn options(&self, seed: u64) -> anyhow::Result<SimOptions> {
        let swarm = self.swarm;
        let nodes = self.nodes.unwrap_or(if swarm { 8 } else { 50 });
        let mut o = SimOptions::new(nodes, seed);
        o.progress = !swarm;
        o.block_interval = self.block_interval.unwrap_or(if swarm {
            Duration::from_secs(10)
        } else {
            Duration::from_secs(60)
        });
        match parse_latency(&self.latency)? {
            Ok(l) => o.latency = l,
            Err(regions) => o.regions = Some(regions),
        }
        o.block_size = self.block_size;
        o.upload_bps = parse_bandwidth(&self.bandwidth)?;
        o.seeds_per_node = self.seeds_per_node;
        o.stop = match (self.duration, self.blocks) {
            (Some(d), _) => Stop::Duration(d),
            (None, Some(n)) => Stop::Blocks(n),
            (None, None) if swarm => Stop::Duration(Duration::from_secs(600)),
            (None, None) => Stop::Blocks(100),
        };
        if self.tx_rate.is_nan() || self.tx_rate < 0.0 || !(0.0..=1.0).contains(&self.escrow_share)
        {
            bail!("--tx-rate must be at least 0 and --escrow-share between 0 and 1");
        }
        o.tx_rate = self.tx_rate;
        o.escrow_share = self.escrow_share;
        if let Some(u) = self.users {
            o.users = u;
        }
        o.hash_power = match self.hash_power.as_str() {
            "equal" => HashPower::Equal,
            "skewed" => HashPower::Skewed,
            other => bail!("--hash-power `{other}`: expected equal or skewed"),
        };
        o.settle_bound = self
            .settle_bound
            .unwrap_or_else(|| (o.block_interval * 30).max(Duration::from_secs(300)));
        o.cpu = self.processor()?;
        if self.ping_interval.is_zero() || self.idle_timeout <= self.ping_interval {
            bail!("--idle-timeout must be longer than --ping-interval, which must be above 0");
        }
        o.ping_interval = self.ping_interval;
        o.relay = self.relay;
        o.idle_timeout = self.idle_timeout;
        o.selfish = self.selfish_power.map(|power| Selfish {
            power,
            peers: self.selfish_peers,
            link_ms: self.selfish_link_ms,
        });
        o.eclipse = self.eclipse_hosts.map(|hosts| Eclipse {
            hosts,
            addrs: self.eclipse_addrs.unwrap_or(hosts * 10),
            victims: self.eclipse_victims,
            churn: self.eclipse_churn,
            power: self.eclipse_power,
            confirmations: self.eclipse_confirmations,
        });
        if swarm {
            o.faults = Some(Faults {
                mean_gap: self.fault_gap,
                store: self.store_faults,
                byzantine: self.byzantine,
            });
        }
        Ok(o)
    }

    /// Each node's processor, from `--cores`, `--cpu-speed`, `--cpu-model`
    /// and `--no-cpu`.
    fn processor(&self) -> anyhow::Result<Option<Processor>> {
        if self.no_cpu {
            return Ok(None);
        }
        if !(self.cpu_speed.is_finite() && self.cpu_speed > 0.0) {
            bail!("--cpu-speed {} must be above 0", self.cpu_speed);
        }
        if self.cores == 0 {
            bail!("--cores must be at least 1");
        }
        let mut p = Processor::reference();
        p.cores = self.cores;
        p.speed = self.cpu_speed;
        if let Some(path) = &self.cpu_model {
            p.costs = CostModel::load(path).map_err(|e| anyhow::anyhow!(e))?;
            p.model = path.display().to_string();
        }
        Ok(Some(p))
    }
}

/// Runs the simulator with `args` (the command line after the program's
/// name).
pub fn run(args: &[String]) -> anyhow::Result<()> {
    if args.first().map(String::as_str) == Some("merge") {
        return batch::merge(args.get(1..).unwrap_or_default());
    }
    let args = setups::expand(args)?;
    let args = match Args::try_parse_from(
        std::iter::once("sim".to_string()).chain(args.iter().cloned()),
    ) {
        Ok(a) => a,
        Err(e) if e.use_stderr() => bail!("{e}"),
        Err(e) => {
            // --help and --version.
            print!("{e}");
            return Ok(());
        }
    };
    // The nodes log through tracing; RUST_LOG=debug shows it (without
    // wall-clock times, which mean nothing in a simulated run).
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .without_time()
            .with_writer(std::io::stderr)
            .try_init();
    }
    let kind = if args.swarm {
        "swarm"
    } else if args.sweep.is_some() {
        "sweep"
    } else {
        "run"
    };
    let out = args.out.clone().unwrap_or_else(|| {
        project_root()
            .join("target/sim")
            .join(format!("{kind}-seed{}", args.seed))
    });
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    if args.shard.is_some() && !args.swarm && args.sweep.is_none() {
        bail!("--shard splits a sweep or a swarm");
    }
    if args.swarm {
        batch::swarm(&args, &out)
    } else if let Some(powers) = args
        .sweep
        .as_deref()
        .and_then(|s| s.strip_prefix("selfish-power="))
    {
        batch::sweep_power(&args, powers, &out)
    } else if let Some(sweep) = &args.sweep {
        batch::sweep_intervals(&args, sweep, &out)
    } else {
        single(&args, &out)
    }
}

/// The workspace root (this crate is `crates/sim` in it): where the
/// default output directory, `target/sim`, is.
fn project_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(Path::parent)
        .unwrap_or(manifest)
        .to_path_buf()
}

/// One run, timed.
fn timed(options: &SimOptions) -> anyhow::Result<(Outcome, Duration)> {
    let wall = Instant::now();
    let outcome = run_sim(options).context("the simulation could not run")?;
    Ok((outcome, wall.elapsed()))
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn write_run(out: &Path, report: &Report, wall: Duration) -> anyhow::Result<()> {
    let speedup = report.simulated_s / wall.as_secs_f64().max(1e-9);
    write_json(
        &out.join("run.json"),
        &serde_json::json!({
            "wall_s": (wall.as_secs_f64() * 1_000.0).round() / 1_000.0,
            "simulated_s": report.simulated_s,
            "simulated_per_wall_second": speedup.round(),
        }),
    )
}

fn print_summary(report: &Report, wall: Duration) {
    let b = &report.blocks;
    let p = &report.propagation_ms;
    let get = |k: &str| p.get(k).map_or(0.0, |s| s.p50);
    println!(
        "{} nodes, {:.0} s blocks, {}: {} blocks found, best height {}, stale rate {:.2} ± {:.2} %",
        report.nodes,
        report.block_interval_s,
        report.latency,
        b.found,
        b.best_height,
        b.stale_rate * 100.0,
        b.stale_rate_se * 100.0
    );
    println!(
        "  propagation (median over blocks): 50 % of nodes {:.0} ms, 90 % {:.0} ms, 100 % {:.0} ms; mean per node {:.0} ms",
        get("50%"),
        get("90%"),
        get("100%"),
        report.node_delay_ms.mean
    );
    let t = &report.transactions;
    println!(
        "  transactions: {} accepted, {} confirmed, median confirmation {:.1} s; reorgs {} summed over the {} nodes (deepest {} blocks)",
        t.submitted,
        t.confirmed,
        t.confirmation_ms.p50 / 1_000.0,
        report.reorgs.count,
        report.nodes,
        report.reorgs.max_depth
    );
    println!(
        "  bytes sent per node: mean {:.0} KiB, max {:.0} KiB",
        report.bytes_sent_per_node.mean / 1_024.0,
        report.bytes_sent_per_node.max / 1_024.0
    );
    let r = &report.relay;
    println!(
        "  relay {}: {} compact blocks received, {} rebuilt at once, {} after asking, {} failed",
        r.mode, r.compact_received, r.rebuilt_at_once, r.rebuilt_after_asking, r.failed
    );
    attacks::print(report);
    println!(
        "  simulated {:.0} s in {:.2} s of wall time ({:.0}x)",
        report.simulated_s,
        wall.as_secs_f64(),
        report.simulated_s / wall.as_secs_f64().max(1e-9)
    );
}

fn pictures(out: &Path, outcome: &Outcome) -> anyhow::Result<()> {
    let series: Vec<CdfSeries> = ["50 % of nodes", "90 % of nodes", "100 % of nodes"]
        .iter()
        .zip(outcome.propagation.iter())
        .map(|(label, values)| CdfSeries {
            label: (*label).to_string(),
            values_ms: values.clone(),
        })
        .collect();
    let r = &outcome.report;
    svg::propagation_cdf(
        &out.join("propagation.svg"),
        &format!(
            "Time until a block reaches 50/90/100 % of {} nodes (seed {})",
            r.nodes, r.seed
        ),
        &series,
    )?;
    let tree: Vec<TreeBlock> = outcome
        .tree
        .iter()
        .map(|b| TreeBlock {
            height: b.height,
            label: b.hash.to_string().chars().take(8).collect(),
            parent: b.parent,
            best: b.best,
            miner: b.miner,
        })
        .collect();
    svg::block_tree(
        &out.join("block-tree.svg"),
        &format!(
            "Block tree: {} blocks, {} stale (seed {})",
            r.blocks.found, r.blocks.stale, r.seed
        ),
        &tree,
    )
}

fn single(args: &Args, out: &Path) -> anyhow::Result<()> {
    let options = args.options(args.seed)?;
    let (outcome, wall) = timed(&options)?;
    let report = &outcome.report;
    write_json(&out.join("report.json"), report)?;
    write_run(out, report, wall)?;
    pictures(out, &outcome)?;
    print_summary(report, wall);
    if args.twice {
        let (again, _) = timed(&options)?;
        let a = serde_json::to_string_pretty(report)?;
        let b = serde_json::to_string_pretty(&again.report)?;
        if a != b {
            std::fs::write(out.join("report.second.json"), b)?;
            bail!(
                "not deterministic: the same seed and options gave two different reports \
                 ({} and report.second.json)",
                out.join("report.json").display()
            );
        }
        println!("  determinism: a second run gave a byte-identical report");
    }
    println!("  wrote {}", out.display());
    if let Some(v) = &report.violation {
        bail!(
            "check `{}` failed at {:.3} s{}: {}\nreplay: {}",
            v.check,
            v.at_s,
            v.node.map(|n| format!(" on node {n}")).unwrap_or_default(),
            v.detail,
            args.replay(args.seed)
        );
    }
    Ok(())
}

/// The block intervals of `--sweep block-interval=2s,5s,...`; an error
/// names the piece it could not read and shows the form expected.
fn parse_sweep(sweep: &str) -> anyhow::Result<Vec<Duration>> {
    const FORM: &str = "expected block-interval=DURATION,DURATION,..., for example block-interval=2s,5s,10s,30s, or selfish-power=0.1,0.2,...";
    let Some(list) = sweep.strip_prefix("block-interval=") else {
        bail!("--sweep `{sweep}`: {FORM}");
    };
    list.split(',')
        .map(|x| {
            humantime::parse_duration(x.trim()).with_context(|| {
                format!("--sweep: `{x}` is not a duration such as 500ms, 2s or 1m ({FORM})")
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;

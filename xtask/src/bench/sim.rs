//! `cargo xtask bench --only sim`: how fast, and in how much memory, the
//! simulator runs a large network (issue 25's targets: a simulated day of
//! 1,000 nodes in 10 minutes, of 10,000 in an hour, at most 1.6 MB a
//! node).
//!
//! The release `sim` binary runs N nodes at 10-minute blocks with no
//! transaction load (20 users, Bitcoin's regions) twice: for 60 and for
//! 1,800 simulated seconds. The difference of the two gives the steady
//! rate (simulated seconds per wall second) without the start (building
//! the world, connecting the nodes); the day is extrapolated as the start
//! plus 86,400 simulated seconds at that rate. Memory is the longer run's
//! peak resident set (`VmHWM`), divided by N. Wall time, not a test: a
//! busy machine reports a slower figure.
//!
//! Each pair runs twice: with the live node's pings (a silent connection
//! pinged every 15 s, closed after 45 s: the simulator's default), and with
//! Bitcoin Core's (2 minutes and 20 minutes, as `--setup bitcoin-2016`
//! runs). In an idle network every connection is silent, so the pings are
//! most of what happens.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// One run: its wall time and its peak resident set in bytes.
fn run(
    binary: &Path,
    out: &Path,
    nodes: usize,
    simulated_s: u64,
    pings: &[&str],
) -> anyhow::Result<(f64, u64)> {
    let start = Instant::now();
    let mut child = Command::new(binary)
        .args(["--nodes", &nodes.to_string()])
        .args(pings)
        .args(["--block-interval", "10m", "--tx-rate", "0", "--users", "20"])
        .args(["--latency", "bitcoin", "--seed", "1"])
        .args(["--duration", &format!("{simulated_s}s")])
        .arg("--out")
        .arg(out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0u64;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if let Ok(text) = std::fs::read_to_string(&status_file) {
            let hwm = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok());
            peak_kb = peak_kb.max(hwm.unwrap_or(0));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    if !status.success() {
        bail!("the simulator failed ({status}) on {nodes} nodes");
    }
    Ok((start.elapsed().as_secs_f64(), peak_kb * 1024))
}

/// The `bench: sim.*` lines for `nodes` nodes.
pub fn figures(root: &Path, nodes: usize) -> anyhow::Result<Vec<String>> {
    let binary = crate::build::release_binaries(root)?.sim;
    let tmp = tempfile::Builder::new()
        .prefix("escrow-bench-sim-")
        .tempdir()
        .context("cannot make a temporary directory")?;
    let (short_s, long_s) = (60u64, 1_800u64);
    eprintln!("xtask: the simulator, {nodes} nodes, {short_s} and {long_s} simulated seconds");
    let mut lines = Vec::new();
    let mut peak = 0;
    for (key, what, pings) in [
        ("sim.day", "the live node's 15-s pings", &[][..]),
        (
            "sim.day_bitcoin_pings",
            "Bitcoin Core's 2-min pings",
            &["--ping-interval", "2m", "--idle-timeout", "20m"][..],
        ),
    ] {
        let dir = tmp.path().join(key);
        let (short, _) = run(&binary, &dir.join("short"), nodes, short_s, pings)?;
        let (long, long_peak) = run(&binary, &dir.join("long"), nodes, long_s, pings)?;
        peak = peak.max(long_peak);
        let rate = (long_s - short_s) as f64 / (long - short).max(1e-3);
        let start = (short - short_s as f64 / rate).max(0.0);
        let day_min = (start + 86_400.0 / rate) / 60.0;
        lines.push(format!(
            "bench: {key} = {day_min:.1} min ({nodes} nodes, 10-minute blocks, no load, {what}: {rate:.0} x real time after a start of {start:.1} s; {long_s} simulated s took {long:.1} s)"
        ));
    }
    let per_node_mb = peak as f64 / nodes as f64 / 1e6;
    lines.push(format!(
        "bench: sim.memory = {per_node_mb:.2} MB/node ({nodes} nodes: {:.2} GB peak resident)",
        peak as f64 / 1e9
    ));
    Ok(lines)
}

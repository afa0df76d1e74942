//! Sweeps and swarms: many independent runs ("points": the intervals of a
//! sweep, the seeds of a swarm), on every core (`--jobs`), or one share of
//! them (`--shard K/N`) for a cluster's scheduler to spread over machines;
//! `sim merge DIR... --out DIR` combines the shares into the same files,
//! byte for byte, as one run of all the points.
//!
//! Each point writes its row to `points/<index>.json` (and its own files:
//! a sweep point's `interval-<T>/report.json`, a failed swarm seed's
//! `failed-seed<S>.json`), and the batch writes `plan.json` (what the
//! batch is, and which share). The batch's files (`sweep.json` and its
//! picture, `swarm.json`) are made from the rows alone ([`finish`]), by a
//! run of all the points or by the merge.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Args, dur, parse_sweep, svg, timed, write_json};

/// What a batch is: the same for every share of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct Plan {
    /// `sweep`, `selfish-sweep` or `swarm`.
    kind: String,
    /// `--seed`: a sweep's seed, a swarm's first.
    pub(super) seed: u64,
    /// The points, in order: a sweep's intervals, a swarm's seeds.
    points: Vec<String>,
    /// The options every point shares, as the simulator reads them.
    options: String,
    /// This share: `[K, N]`, `[1, 1]` for all of it.
    shard: [usize; 2],
}

/// Parses `--shard K/N` (1 ≤ K ≤ N).
pub(super) fn parse_shard(s: &str) -> anyhow::Result<[usize; 2]> {
    let form = || format!("--shard `{s}`: expected K/N with 1 <= K <= N, for example 2/8");
    let (k, n) = s.split_once('/').with_context(form)?;
    let (k, n): (usize, usize) = (
        k.trim().parse().with_context(form)?,
        n.trim().parse().with_context(form)?,
    );
    if k == 0 || k > n {
        bail!(form());
    }
    Ok([k, n])
}

/// Runs `f` for each of `indices` on `jobs` threads at once; the results
/// in the order of `indices`, or the first error in that order.
fn on_all_cores<T: Send>(
    indices: &[usize],
    jobs: usize,
    f: impl Fn(usize) -> anyhow::Result<T> + Sync,
) -> anyhow::Result<Vec<T>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<anyhow::Result<T>>>> =
        Mutex::new(indices.iter().map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, indices.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let slot = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&index) = indices.get(slot) else {
                        return;
                    };
                    let result = f(index);
                    let mut all = results.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(r) = all.get_mut(slot) {
                        *r = Some(result);
                    }
                }
            });
        }
    });
    let all = results.into_inner().unwrap_or_else(|e| e.into_inner());
    all.into_iter()
        .map(|r| r.unwrap_or_else(|| Err(anyhow::anyhow!("a point did not run"))))
        .collect()
}

impl Args {
    /// The threads a batch runs on: `--jobs`, or every core.
    fn jobs(&self) -> usize {
        self.jobs.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
    }

    /// The plan of this batch, with this share.
    pub(super) fn plan(&self, kind: &str, points: Vec<String>) -> anyhow::Result<Plan> {
        let mut options = self.options(self.seed)?;
        options.progress = false;
        Ok(Plan {
            kind: kind.to_string(),
            seed: self.seed,
            points,
            options: format!("{options:?}"),
            shard: self.shard.unwrap_or([1, 1]),
        })
    }
}

/// The indices of `count` points in share `[k, n]`: every n-th from k − 1.
fn share(count: usize, [k, n]: [usize; 2]) -> Vec<usize> {
    (0..count).filter(|i| i % n == k - 1).collect()
}

/// Runs this share of `plan`'s points with `point` (which writes a
/// point's own files and returns its row), writes each row and the plan,
/// then, if the share is the whole batch, the batch's files.
pub(super) fn run_batch(
    args: &Args,
    plan: &Plan,
    out: &Path,
    point: impl Fn(usize) -> anyhow::Result<Value> + Sync,
) -> anyhow::Result<()> {
    let indices = share(plan.points.len(), plan.shard);
    let wall = Instant::now();
    std::fs::create_dir_all(out.join("points"))?;
    let rows = on_all_cores(&indices, args.jobs(), |i| {
        let row = point(i)?;
        write_json(&out.join("points").join(format!("{i}.json")), &row)?;
        Ok(row)
    })?;
    write_json(&out.join("plan.json"), plan)?;
    eprintln!(
        "{}: {} of {} points on {} threads, {:.1} s wall",
        plan.kind,
        rows.len(),
        plan.points.len(),
        args.jobs().min(indices.len().max(1)),
        wall.elapsed().as_secs_f64()
    );
    if plan.shard[1] > 1 {
        println!(
            "wrote share {}/{} to {}; `sim merge` combines the shares",
            plan.shard[0],
            plan.shard[1],
            out.display()
        );
        return Ok(());
    }
    finish(plan, &rows, out)
}

/// Writes the batch's files from all its rows, in order: what a run of
/// every point and a merge of shares both write.
fn finish(plan: &Plan, rows: &[Value], out: &Path) -> anyhow::Result<()> {
    match plan.kind.as_str() {
        "sweep" => finish_sweep(plan, rows, out)?,
        "selfish-sweep" => super::attacks::finish(plan.seed, rows, out)?,
        "swarm" => finish_swarm(rows, out)?,
        other => bail!("unknown batch kind `{other}`"),
    }
    println!("wrote {}", out.display());
    Ok(())
}

fn finish_sweep(plan: &Plan, rows: &[Value], out: &Path) -> anyhow::Result<()> {
    let number = |row: &Value, key: &str| row[key].as_f64().unwrap_or(0.0);
    let points: Vec<(f64, f64)> = rows
        .iter()
        .map(|r| (number(r, "block_interval_s"), number(r, "stale_rate")))
        .collect();
    let delays: Vec<f64> = rows
        .iter()
        .map(|r| number(r, "node_delay_ms") / 1_000.0)
        .collect();
    let d = delays.iter().sum::<f64>() / delays.len().max(1) as f64;
    let (lo, hi) = points
        .iter()
        .fold((f64::MAX, 0.0f64), |(lo, hi), p| (lo.min(p.0), hi.max(p.0)));
    let model: Vec<(f64, f64)> = (0..=100)
        .map(|k| {
            let t = lo * (hi / lo).powf(f64::from(k) / 100.0);
            (t, 1.0 - (-d / t).exp())
        })
        .filter(|p| p.0.is_finite())
        .collect();
    write_json(
        &out.join("sweep.json"),
        &serde_json::json!({ "seed": plan.seed, "mean_node_delay_s": (d * 1e3).round() / 1e3, "points": rows }),
    )?;
    svg::stale_vs_interval(
        &out.join("stale-vs-interval.svg"),
        "Stale rate against block interval",
        &points,
        &model,
        &format!("1 - exp(-d/T), d = {:.0} ms (measured)", d * 1_000.0),
    )
}

fn finish_swarm(rows: &[Value], out: &Path) -> anyhow::Result<()> {
    write_json(&out.join("swarm.json"), &rows)?;
    let failed: Vec<u64> = rows
        .iter()
        .filter(|r| r["ok"] != Value::Bool(true))
        .filter_map(|r| r["seed"].as_u64())
        .collect();
    println!("swarm: {} seeds, {} failed", rows.len(), failed.len());
    if !failed.is_empty() {
        bail!("swarm seeds failed: {failed:?}");
    }
    Ok(())
}

/// A sweep over block intervals (`--sweep block-interval=...`).
pub(super) fn sweep_intervals(args: &Args, sweep: &str, out: &Path) -> anyhow::Result<()> {
    let intervals = parse_sweep(sweep)?;
    let plan = args.plan("sweep", intervals.iter().map(|i| dur(*i)).collect())?;
    run_batch(args, &plan, out, |i| {
        let interval = intervals.get(i).copied().context("no such point")?;
        let mut options = args.options(args.seed)?;
        options.block_interval = interval;
        options.progress = false;
        let (outcome, wall) = timed(&options)?;
        let r = outcome.report;
        let dir = out.join(format!("interval-{}", dur(interval)));
        std::fs::create_dir_all(&dir)?;
        write_json(&dir.join("report.json"), &r)?;
        let d = r.node_delay_ms.mean / 1_000.0;
        let model = 1.0 - (-d / interval.as_secs_f64()).exp();
        println!(
            "interval {:>6}: stale rate {:.2} ± {:.2} % (model {:.2} %, d = {:.0} ms, half the nodes {:.0} ms), {} blocks of {:.0} kB, {:.1} s wall",
            humantime::format_duration(interval).to_string(),
            r.blocks.stale_rate * 100.0,
            r.blocks.stale_rate_se * 100.0,
            model * 100.0,
            d * 1_000.0,
            r.propagation_ms.get("50%").map_or(0.0, |s| s.p50),
            r.blocks.found,
            r.blocks.bytes.mean / 1_000.0,
            wall.as_secs_f64()
        );
        // An overloaded network (blocks faster than its links carry them)
        // may not agree within the bound after the load stops: a result
        // of the point, not a fault of the nodes; every other check stays
        // fatal.
        let settled = match &r.violation {
            Some(v) if v.check == "liveness" && v.node.is_none() => {
                println!(
                    "interval {}: did not agree within {} s after the load stopped: {}",
                    humantime::format_duration(interval),
                    options.settle_bound.as_secs(),
                    v.detail
                );
                false
            }
            _ => true,
        };
        if let Some(v) = r.violation.as_ref().filter(|_| settled) {
            let mut one = args.clone();
            one.sweep = None;
            one.block_interval = Some(interval);
            bail!(
                "interval {}: check `{}` failed at {:.3} s{}: {}\nreplay: {}",
                humantime::format_duration(interval),
                v.check,
                v.at_s,
                v.node.map(|n| format!(" on node {n}")).unwrap_or_default(),
                v.detail,
                one.replay(args.seed)
            );
        }
        Ok(serde_json::json!({
            "block_interval_s": interval.as_secs_f64(),
            "stale_rate": r.blocks.stale_rate,
            "stale_rate_se": r.blocks.stale_rate_se,
            "model_stale_rate": (model * 1e6).round() / 1e6,
            "node_delay_ms": r.node_delay_ms.mean,
            "node_delay_p50_ms": r.node_delay_ms.p50,
            "node_delay_p90_ms": r.node_delay_ms.p90,
            "half_reached_ms": r.propagation_ms.get("50%").map_or(0.0, |s| s.p50),
            "most_reached_ms": r.propagation_ms.get("90%").map_or(0.0, |s| s.p50),
            "block_bytes_mean": r.blocks.bytes.mean,
            "blocks_found": r.blocks.found,
            "settled": settled,
        }))
    })
}

/// The selfish pool's sweep (`--sweep selfish-power=...`): each point is
/// one run with the pool at that α.
pub(super) fn sweep_power(args: &Args, list: &str, out: &Path) -> anyhow::Result<()> {
    let powers = super::attacks::parse_powers(list)?;
    let plan = args.plan("selfish-sweep", powers.iter().map(f64::to_string).collect())?;
    run_batch(args, &plan, out, |i| {
        let power = powers.get(i).copied().context("no such point")?;
        let mut one = args.clone();
        one.sweep = None;
        one.selfish_power = Some(power);
        let mut options = one.options(args.seed)?;
        options.progress = false;
        let (outcome, wall) = timed(&options)?;
        let r = outcome.report;
        let dir = out.join(format!("power-{power}"));
        std::fs::create_dir_all(&dir)?;
        write_json(&dir.join("report.json"), &r)?;
        if let Some(v) = &r.violation {
            bail!(
                "α {power}: check `{}` failed at {:.3} s: {}\nreplay: {}",
                v.check,
                v.at_s,
                v.detail,
                one.replay(args.seed)
            );
        }
        let p = r.selfish.context("the run has no pool")?;
        println!(
            "α {power}: revenue {:.2} ± {:.2} % (closed form {:.2} % at γ {}), {} races decided by honest blocks, stale rate {:.2} %, {} best-chain blocks, {:.1} s wall",
            p.revenue * 100.0,
            p.revenue_se * 100.0,
            p.closed_form_revenue * 100.0,
            p.gamma
                .map_or("unmeasured".to_string(), |g| format!("{g:.3}")),
            p.races_decided_by_honest,
            p.stale_rate * 100.0,
            p.pool_best + p.honest_best,
            wall.as_secs_f64()
        );
        Ok(serde_json::json!({
            "power": power,
            "revenue": p.revenue,
            "revenue_se": p.revenue_se,
            "gamma": p.gamma,
            "gamma_se": p.gamma_se,
            "races_decided_by_honest": p.races_decided_by_honest,
            "closed_form_revenue": p.closed_form_revenue,
            "stale_rate": p.stale_rate,
            "best_chain_blocks": p.pool_best + p.honest_best,
            "pool_found": p.pool_found,
        }))
    })
}

/// The fault swarm (`--swarm --seeds N`).
pub(super) fn swarm(args: &Args, out: &Path) -> anyhow::Result<()> {
    let seeds: Vec<u64> = (args.seed..args.seed.saturating_add(args.seeds)).collect();
    let plan = args.plan("swarm", seeds.iter().map(u64::to_string).collect())?;
    run_batch(args, &plan, out, |i| {
        let seed = seeds.get(i).copied().context("no such point")?;
        let options = args.options(seed)?;
        let (outcome, took) = timed(&options)?;
        let r = &outcome.report;
        let faults: u64 = r.fault_events.values().sum();
        match &r.violation {
            None => println!(
                "seed {seed}: ok: {} blocks (settled to {}), {} faults, {} transactions, agreed {:.0} s after the heal ({:.1} s wall)",
                r.blocks.found,
                r.settled_height,
                faults,
                r.transactions.submitted,
                r.settled_after_heal_s.unwrap_or(0.0),
                took.as_secs_f64()
            ),
            Some(v) => {
                println!(
                    "seed {seed}: FAILED: check `{}` at {:.3} s{}: {}\n  replay: {}",
                    v.check,
                    v.at_s,
                    v.node.map(|n| format!(" on node {n}")).unwrap_or_default(),
                    v.detail,
                    args.replay(seed)
                );
                write_json(&out.join(format!("failed-seed{seed}.json")), r)?;
            }
        }
        Ok(serde_json::json!({
            "seed": seed,
            "ok": r.violation.is_none(),
            "blocks": r.blocks.found,
            "best_height": r.blocks.best_height,
            "settled_height": r.settled_height,
            "faults": r.fault_events,
            "settled_after_heal_s": r.settled_after_heal_s,
        }))
    })
}

/// `sim merge DIR... --out DIR`: the shares of one batch, combined into
/// the files one run of all its points writes.
pub(super) fn merge(args: &[String]) -> anyhow::Result<()> {
    const USAGE: &str =
        "usage: sim merge DIR... --out DIR (the directories of every share of one sweep or swarm)";
    let mut dirs = Vec::new();
    let mut out = None;
    let mut rest = args.iter();
    while let Some(a) = rest.next() {
        match a.as_str() {
            "--out" => out = Some(PathBuf::from(rest.next().context(USAGE)?)),
            "--help" | "-h" => {
                println!("{USAGE}");
                return Ok(());
            }
            dir => dirs.push(PathBuf::from(dir)),
        }
    }
    let out = out.context(USAGE)?;
    if dirs.is_empty() {
        bail!(USAGE);
    }
    let read = |path: &Path| -> anyhow::Result<Value> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
    };
    let mut plan: Option<Plan> = None;
    let mut rows: Vec<Option<Value>> = Vec::new();
    let mut shards = Vec::new();
    std::fs::create_dir_all(out.join("points"))?;
    for dir in &dirs {
        let this: Plan = serde_json::from_value(read(&dir.join("plan.json"))?)
            .with_context(|| format!("{}/plan.json is not a batch's plan", dir.display()))?;
        let whole = Plan {
            shard: [1, 1],
            ..this.clone()
        };
        match &plan {
            None => {
                rows = vec![None; this.points.len()];
                plan = Some(whole);
            }
            Some(p) if *p != whole => bail!(
                "{} is a share of another batch (its kind, seed, points or options differ)",
                dir.display()
            ),
            Some(_) => {}
        }
        if shards.iter().any(|s: &[usize; 2]| s == &this.shard) {
            bail!("share {}/{} is given twice", this.shard[0], this.shard[1]);
        }
        shards.push(this.shard);
        for i in share(this.points.len(), this.shard) {
            let name = format!("{i}.json");
            let row = read(&dir.join("points").join(&name))?;
            std::fs::copy(
                dir.join("points").join(&name),
                out.join("points").join(&name),
            )?;
            if let Some(slot) = rows.get_mut(i) {
                *slot = Some(row);
            }
        }
        // A point's own files: a sweep's reports, a swarm's failures.
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if (name.starts_with("interval-") || name.starts_with("power-")) && path.is_dir() {
                let to = out.join(name);
                std::fs::create_dir_all(&to)?;
                std::fs::copy(path.join("report.json"), to.join("report.json"))?;
            } else if name.starts_with("failed-seed") {
                std::fs::copy(&path, out.join(name))?;
            }
        }
    }
    let plan = plan.context(USAGE)?;
    let missing: Vec<usize> = (0..rows.len()).filter(|i| rows[*i].is_none()).collect();
    if !missing.is_empty() {
        bail!("the shares given lack points {missing:?}: merge every share of the batch");
    }
    let rows: Vec<Value> = rows.into_iter().flatten().collect();
    write_json(&out.join("plan.json"), &plan)?;
    finish(&plan, &rows, &out)
}

//! Runs with an attacker: what a run prints of a selfish pool and of an
//! eclipse, and the files of the selfish pool's sweep (`--sweep
//! selfish-power=0.1,0.2,...`, run by `batch.rs`): the pool's revenue
//! against Eyal and Sirer's closed form for the γ measured over the whole
//! sweep, in `sweep.json` and `revenue-vs-power.svg`.

use std::path::Path;

use anyhow::{Context, bail};
use plotters::prelude::*;
use serde_json::Value;
use sim::world::closed_form_revenue;

use sim::world::Report;

use super::svg::{tick, write_svg};
use super::write_json;

/// The lines of a run's summary about its attacker, if it had one.
pub(super) fn print(report: &Report) {
    if let Some(p) = &report.selfish {
        println!(
            "  selfish pool (α {}, {} peers): revenue {:.2} ± {:.2} % of {} best-chain blocks (closed form {:.2} %), γ {} over {} races decided by honest blocks, stale rate {:.2} %",
            p.power,
            p.peers,
            p.revenue * 100.0,
            p.revenue_se * 100.0,
            p.pool_best + p.honest_best,
            p.closed_form_revenue * 100.0,
            p.gamma
                .map_or("unmeasured".to_string(), |g| format!("{g:.3}")),
            p.races_decided_by_honest,
            p.stale_rate * 100.0
        );
    }
    if let Some(e) = &report.eclipse {
        let times: Vec<String> = e
            .time_to_eclipse_s
            .iter()
            .map(|t| t.map_or("never".to_string(), |s| format!("{s:.0} s")))
            .collect();
        let pct = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{:.0} %", x * 100.0))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "  eclipse ({} hosts, {} addresses, {} victims): {} eclipsed (first at {}; longest {:?} s; eclipsed {} of the time); attacker's share of the outbound peers {}; {} attacker connections",
            e.hosts,
            e.addrs,
            e.victims,
            e.eclipsed,
            times.join(", "),
            e.longest_eclipse_s,
            pct(&e.eclipsed_time_share),
            pct(&e.outbound_held_share),
            e.attacker_connections
        );
        if let Some(d) = &e.double_spend {
            println!(
                "  double spend on node {}: eclipsed at {:.0} s, payment seen {} deep {}; on the final chain the payment is {}, the release {}",
                d.victim,
                d.eclipsed_at_s,
                d.confirmations,
                d.confirmed_at_s
                    .map_or("never".to_string(), |s| format!("at {s:.0} s")),
                if d.payment_reverted { "undone" } else { "kept" },
                if d.release_reverted { "undone" } else { "kept" }
            );
        }
    }
}

/// Parses the α of `selfish-power=0.1,0.2,...` (each above 0, below 0.5).
pub(super) fn parse_powers(list: &str) -> anyhow::Result<Vec<f64>> {
    list.split(',')
        .map(|x| {
            let a: f64 = x
                .trim()
                .parse()
                .with_context(|| format!("--sweep selfish-power: `{x}` is not a number"))?;
            if !(a > 0.0 && a < 0.5) {
                bail!("--sweep selfish-power: {a} is not above 0 and below 0.5");
            }
            Ok(a)
        })
        .collect()
}

/// γ over the whole sweep: every point's races together.
fn pooled_gamma(rows: &[Value]) -> Option<f64> {
    let (mut on_pool, mut races) = (0.0, 0.0);
    for r in rows {
        if let (Some(g), Some(n)) = (r["gamma"].as_f64(), r["races_decided_by_honest"].as_f64()) {
            on_pool += g * n;
            races += n;
        }
    }
    (races > 0.0).then(|| on_pool / races)
}

/// Writes `sweep.json` and `revenue-vs-power.svg` from the points' rows.
pub(super) fn finish(seed: u64, rows: &[Value], out: &Path) -> anyhow::Result<()> {
    let gamma = pooled_gamma(rows);
    write_json(
        &out.join("sweep.json"),
        &serde_json::json!({
            "seed": seed,
            "gamma_pooled": gamma.map(|g| (g * 1e6).round() / 1e6),
            "points": rows,
        }),
    )?;
    let measured: Vec<(f64, f64, f64)> = rows
        .iter()
        .filter_map(|r| {
            Some((
                r["power"].as_f64()?,
                r["revenue"].as_f64()?,
                r["revenue_se"].as_f64().unwrap_or(0.0),
            ))
        })
        .collect();
    revenue_chart(
        &out.join("revenue-vs-power.svg"),
        &measured,
        gamma.unwrap_or(0.0),
    )
}

/// The chart: measured revenue (points, with bars of two standard errors)
/// against α, the closed form at `gamma`, and the honest share (y = α).
fn revenue_chart(path: &Path, measured: &[(f64, f64, f64)], gamma: f64) -> anyhow::Result<()> {
    let curve = |f: &dyn Fn(f64) -> f64| -> Vec<(f64, f64)> {
        (1..=99)
            .map(|k| f64::from(k) * 0.005)
            .map(|a| (a, f(a).max(0.0)))
            .collect()
    };
    let model = curve(&|a| closed_form_revenue(a, gamma));
    let fair = curve(&|a| a);
    let title = "Selfish pool: relative revenue against hash power";
    write_svg(path, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..0.5, 0.0..1.0)?;
        chart
            .configure_mesh()
            .x_desc("pool's share of the hash power, α")
            .y_desc("pool's share of best-chain blocks")
            .x_label_formatter(&|x| tick(*x))
            .y_label_formatter(&|y| tick(*y))
            .draw()?;
        let model_colour = Palette99::pick(1).to_rgba();
        chart
            .draw_series(LineSeries::new(model, model_colour.stroke_width(2)))?
            .label(format!("Eyal and Sirer, γ = {gamma:.3} (measured)"))
            .legend(move |(x, y)| {
                PathElement::new([(x, y), (x + 20, y)], model_colour.stroke_width(2))
            });
        let fair_colour = BLACK.mix(0.5);
        chart
            .draw_series(LineSeries::new(fair, fair_colour.stroke_width(1)))?
            .label("honest mining: revenue = α")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], fair_colour));
        let point_colour = Palette99::pick(0).to_rgba();
        chart.draw_series(measured.iter().map(|&(a, r, se)| {
            PathElement::new(
                [(a, (r - 2.0 * se).max(0.0)), (a, r + 2.0 * se)],
                point_colour.stroke_width(2),
            )
        }))?;
        chart
            .draw_series(
                measured
                    .iter()
                    .map(|&(a, r, _)| Circle::new((a, r), 4, point_colour.filled())),
            )?
            .label("measured (± 2 standard errors)")
            .legend(move |(x, y)| Circle::new((x + 10, y), 4, point_colour.filled()));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn powers_are_read_and_checked() {
        assert_eq!(parse_powers("0.1, 0.25").unwrap(), vec![0.1, 0.25]);
        for bad in ["0.5", "0", "-0.1", "x", "0.1,,0.2"] {
            assert!(parse_powers(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn gamma_pools_every_points_races() {
        let rows = vec![
            serde_json::json!({"gamma": 0.5, "races_decided_by_honest": 10}),
            serde_json::json!({"gamma": 0.0, "races_decided_by_honest": 30}),
            serde_json::json!({"gamma": null, "races_decided_by_honest": 0}),
        ];
        assert_eq!(pooled_gamma(&rows), Some(0.125));
        assert_eq!(pooled_gamma(&[]), None);
    }

    #[test]
    fn the_chart_is_written_and_deterministic() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.svg"), dir.path().join("b.svg"));
        let points = [(0.1, 0.08, 0.01), (0.3, 0.33, 0.01)];
        revenue_chart(&a, &points, 0.4).unwrap();
        revenue_chart(&b, &points, 0.4).unwrap();
        let text = std::fs::read_to_string(&a).unwrap();
        assert_eq!(text, std::fs::read_to_string(&b).unwrap());
        assert!(text.contains("γ = 0.400 (measured)"));
        assert!(text.trim_end().ends_with("</svg>"));
    }
}

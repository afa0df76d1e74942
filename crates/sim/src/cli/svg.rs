//! SVG charts for the simulator's reports: the propagation CDF, the block
//! tree and the stale-rate sweep.
//!
//! Drawn with the `plotters` crate, SVG backend only
//! (`default-features = false`, features `svg_backend`, `line_series`,
//! `point_series`). Without the `ttf`/`ab_glyph` features plotters needs no
//! font file: it lays text out with a fixed per-character estimate and the
//! SVG backend writes `<text font-family="sans-serif">` elements that the
//! browser renders, so no font is shipped or looked up. The backend writes
//! no timestamps or ids, and every input here is walked in slice or
//! `BTreeMap` order, so the same input gives the same bytes.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use plotters::coord::Shift;
use plotters::prelude::*;

/// Width of every chart, in SVG user units (pixels).
const WIDTH: u32 = 1000;
/// Height of every chart, in SVG user units (pixels).
const HEIGHT: u32 = 600;
/// The most heights [`block_tree`] draws; longer trees are windowed.
const MAX_TREE_HEIGHTS: u64 = 300;
/// Up to this many heights, [`block_tree`] writes each block's label.
const MAX_LABELLED_HEIGHTS: u64 = 20;
/// Colour of best-chain blocks.
const BEST_COLOUR: RGBColor = RGBColor(31, 119, 180);
/// Colour of stale blocks.
const STALE_COLOUR: RGBColor = RGBColor(214, 39, 40);

/// One line of a CDF: a label and its sample values (milliseconds), unsorted.
#[derive(Debug, Clone, PartialEq)]
pub struct CdfSeries {
    /// The name shown in the legend.
    pub label: String,
    /// The samples, in milliseconds, in any order; non-finite ones are ignored.
    pub values_ms: Vec<f64>,
}

/// One block of a block tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeBlock {
    /// The block's height.
    pub height: u64,
    /// A short hash, e.g. 8 hex digits.
    pub label: String,
    /// The parent's index into the same slice; `None` for a root (or a
    /// parent that is not in the slice).
    pub parent: Option<usize>,
    /// Whether the block is on the final best chain.
    pub best: bool,
    /// The node that mined it, if known.
    pub miner: Option<usize>,
}

/// Renders a chart into an SVG string and writes it to `path`.
pub(super) fn write_svg<F>(path: &Path, draw: F) -> anyhow::Result<()>
where
    F: FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> anyhow::Result<()>,
{
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root)?;
        root.present()?;
    }
    std::fs::write(path, svg).with_context(|| format!("writing {}", path.display()))
}

/// A tick label for a number: at most three decimals, trailing zeros cut.
pub(super) fn tick(value: f64) -> String {
    let text = format!("{value:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

/// The step points of one empirical CDF: sorted samples, each a rise of
/// `1/n` at its value, starting from (0, 0).
fn cdf_steps(values: &[f64]) -> Vec<(f64, f64)> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len() as f64;
    let mut points = Vec::with_capacity(sorted.len() * 2 + 1);
    points.push((0.0, 0.0));
    let mut below = 0.0;
    for (i, &v) in sorted.iter().enumerate() {
        let above = (i + 1) as f64 / n;
        points.push((v, below));
        points.push((v, above));
        below = above;
    }
    points
}

/// Propagation CDF: x = milliseconds (linear, from 0 to the largest value),
/// y = fraction 0..1; one step line per series, with a legend; title given.
pub fn propagation_cdf(path: &Path, title: &str, series: &[CdfSeries]) -> anyhow::Result<()> {
    let steps: Vec<Vec<(f64, f64)>> = series.iter().map(|s| cdf_steps(&s.values_ms)).collect();
    let largest = steps
        .iter()
        .flatten()
        .map(|&(x, _)| x)
        .fold(0.0_f64, f64::max);
    let x_max = if largest > 0.0 { largest } else { 1.0 };
    write_svg(path, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x_max, 0.0..1.0)?;
        chart
            .configure_mesh()
            .x_desc("propagation time (ms)")
            .y_desc("fraction of samples (blocks)")
            .x_label_formatter(&|x| tick(*x))
            .y_label_formatter(&|y| tick(*y))
            .draw()?;
        for (i, (s, points)) in series.iter().zip(steps).enumerate() {
            let colour = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(points, colour.stroke_width(2)))?
                .label(s.label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2))
                });
        }
        if !series.is_empty() {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()?;
        }
        Ok(())
    })
}

/// The window of heights `lo..=hi` that [`block_tree`] draws, and whether it
/// is the whole tree.
fn tree_window(blocks: &[TreeBlock]) -> (u64, u64, bool) {
    let Some(min) = blocks.iter().map(|b| b.height).min() else {
        return (0, 0, true);
    };
    let max = blocks.iter().map(|b| b.height).max().unwrap_or(min);
    if max - min < MAX_TREE_HEIGHTS {
        return (min, max, true);
    }
    let mut stale_at: BTreeMap<u64, u64> = BTreeMap::new();
    for b in blocks.iter().filter(|b| !b.best) {
        *stale_at.entry(b.height).or_default() += 1;
    }
    if stale_at.is_empty() {
        return (max - (MAX_TREE_HEIGHTS - 1), max, false);
    }
    // Only windows that start at a stale height can hold the most stale
    // blocks (a window can be slid right to its first stale height); the
    // earliest such window wins ties.
    let mut best = (0, min);
    for &start in stale_at.keys() {
        let start = start.min(max - (MAX_TREE_HEIGHTS - 1));
        let end = start + (MAX_TREE_HEIGHTS - 1);
        let count: u64 = stale_at.range(start..=end).map(|(_, c)| c).sum();
        if count > best.0 {
            best = (count, start);
        }
    }
    (best.1, best.1 + (MAX_TREE_HEIGHTS - 1), false)
}

/// The block tree: x = height, the best chain drawn as one horizontal row of
/// dots, stale blocks offset in rows below, each block joined to its parent
/// by a line; stale blocks in a different colour; a legend (best chain /
/// stale). Trees spanning more than 300 heights are cut to the 300 heights
/// holding the most stale blocks (or the last 300 when none are stale), and
/// the title says so.
pub fn block_tree(path: &Path, title: &str, blocks: &[TreeBlock]) -> anyhow::Result<()> {
    let (lo, hi, whole) = tree_window(blocks);
    let shown: Vec<bool> = blocks
        .iter()
        .map(|b| (lo..=hi).contains(&b.height))
        .collect();
    // Row 0 is the best chain; the stale blocks at one height take rows
    // 1, 2, ... in slice order.
    let mut stale_seen: BTreeMap<u64, i32> = BTreeMap::new();
    let rows: Vec<i32> = blocks
        .iter()
        .map(|b| {
            if b.best {
                0
            } else {
                let seen = stale_seen.entry(b.height).or_default();
                *seen += 1;
                *seen
            }
        })
        .collect();
    let max_row = rows
        .iter()
        .zip(&shown)
        .filter(|&(_, &s)| s)
        .map(|(&r, _)| r)
        .max()
        .unwrap_or(0);
    // x is the offset from `lo`: at most 299, so it fits an i32.
    let x_of = |b: &TreeBlock| i32::try_from(b.height - lo).unwrap_or(i32::MAX);
    let span = i32::try_from(hi - lo).unwrap_or(i32::MAX);
    let labelled = hi - lo < MAX_LABELLED_HEIGHTS;
    let stale_total = blocks.iter().filter(|b| !b.best).count();
    let caption = if whole {
        title.to_owned()
    } else {
        let which = if stale_total == 0 {
            "the last 300"
        } else {
            "the 300 with the most stale blocks"
        };
        format!("{title} (heights {lo}..={hi} of {}: {which})", {
            let min = blocks.iter().map(|b| b.height).min().unwrap_or(lo);
            let max = blocks.iter().map(|b| b.height).max().unwrap_or(hi);
            format!("{min}..={max}")
        })
    };
    write_svg(path, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(caption.as_str(), ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(-1..span + 1, -(max_row + 1)..1)?;
        chart
            .configure_mesh()
            .x_desc("height")
            .y_desc("row")
            .disable_y_mesh()
            .x_labels(12)
            .y_labels(usize::try_from(max_row + 3).unwrap_or(3).min(12))
            .x_label_formatter(&|x| match u64::try_from(*x) {
                Ok(offset) => (lo + offset).to_string(),
                Err(_) => String::new(),
            })
            .y_label_formatter(&|y| match *y {
                0 => "best".to_owned(),
                y if y < 0 => format!("stale {}", -y),
                _ => String::new(),
            })
            .draw()?;
        // The joins first, so the dots sit on top of them.
        let joins = blocks.iter().enumerate().filter_map(|(i, b)| {
            let p = b.parent?;
            let parent = blocks.get(p)?;
            if p == i || !shown[i] || !shown.get(p).copied().unwrap_or(false) {
                return None;
            }
            let colour = if b.best { BEST_COLOUR } else { STALE_COLOUR };
            Some(PathElement::new(
                [(x_of(parent), -rows[p]), (x_of(b), -rows[i])],
                colour.mix(0.6).stroke_width(1),
            ))
        });
        chart.draw_series(joins)?;
        for (best, colour, label) in [
            (true, BEST_COLOUR, "best chain"),
            (false, STALE_COLOUR, "stale"),
        ] {
            let dots = blocks
                .iter()
                .zip(&rows)
                .zip(&shown)
                .filter(move |((b, _), s)| **s && b.best == best)
                .map(move |((b, &row), _)| Circle::new((x_of(b), -row), 4, colour.filled()));
            chart
                .draw_series(dots)?
                .label(label)
                .legend(move |(x, y)| Circle::new((x + 10, y), 4, colour.filled()));
        }
        if labelled {
            let labels = blocks
                .iter()
                .zip(&rows)
                .zip(&shown)
                .filter(|(_, s)| **s)
                .map(|((b, &row), _)| {
                    EmptyElement::at((x_of(b), -row))
                        + Text::new(b.label.clone(), (-22, 8), ("sans-serif", 11).into_font())
                });
            chart.draw_series(labels)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    })
}

/// A sweep: measured stale rate against block interval (seconds, x axis, log
/// scale), as points, and a model curve as a line; labels given. Points with
/// a non-positive or non-finite interval, or a non-finite rate, are left out.
pub fn stale_vs_interval(
    path: &Path,
    title: &str,
    measured: &[(f64, f64)],
    model: &[(f64, f64)],
    model_label: &str,
) -> anyhow::Result<()> {
    let usable = |&&(x, y): &&(f64, f64)| x > 0.0 && x.is_finite() && y.is_finite();
    let measured: Vec<(f64, f64)> = measured.iter().filter(usable).copied().collect();
    let mut model: Vec<(f64, f64)> = model.iter().filter(usable).copied().collect();
    model.sort_by(|a, b| a.0.total_cmp(&b.0));
    let all = || measured.iter().chain(&model);
    let (x_min, x_max) = match (
        all().map(|p| p.0).reduce(f64::min),
        all().map(|p| p.0).reduce(f64::max),
    ) {
        (Some(lo), Some(hi)) => (lo / 1.5, hi * 1.5),
        _ => (1.0, 100.0),
    };
    let y_top = all().map(|p| p.1).fold(0.0_f64, f64::max);
    let y_bottom = all().map(|p| p.1).fold(0.0_f64, f64::min);
    // Room above the highest point, so the curve is not cut at the frame.
    let y_max = if y_top > 0.0 { y_top * 1.25 } else { 1.0 };
    let y_min = y_bottom * 1.1;
    write_svg(path, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d((x_min..x_max).log_scale(), y_min..y_max)?;
        chart
            .configure_mesh()
            .x_desc("block interval (s, log scale)")
            .y_desc("stale rate")
            // More than the powers of ten alone: a sweep within one decade
            // (2 s to 8 s) still gets labelled ticks.
            .x_labels(12)
            .x_label_formatter(&|x| tick(*x))
            .y_label_formatter(&|y| tick(*y))
            .draw()?;
        let model_colour = Palette99::pick(1).to_rgba();
        chart
            .draw_series(LineSeries::new(model, model_colour.stroke_width(2)))?
            .label(model_label)
            .legend(move |(x, y)| {
                PathElement::new([(x, y), (x + 20, y)], model_colour.stroke_width(2))
            });
        let point_colour = Palette99::pick(0).to_rgba();
        chart
            .draw_series(
                measured
                    .iter()
                    .map(|&p| Circle::new(p, 4, point_colour.filled())),
            )?
            .label("measured")
            .legend(move |(x, y)| Circle::new((x + 10, y), 4, point_colour.filled()));
        // The stale rate falls as the interval grows: the upper right is
        // where the curve is not.
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
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

    /// Writes the chart twice and checks the file: SVG, holds `title`, and
    /// the same bytes both times. Returns the text.
    fn check(title: &str, draw: impl Fn(&Path) -> anyhow::Result<()>) -> String {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.svg");
        let b = dir.path().join("b.svg");
        draw(&a).unwrap();
        draw(&b).unwrap();
        let first = std::fs::read(&a).unwrap();
        assert_eq!(
            first,
            std::fs::read(&b).unwrap(),
            "output not deterministic"
        );
        let text = String::from_utf8(first).unwrap();
        assert!(text.starts_with("<svg") || text.starts_with("<?xml"));
        assert!(text.contains("xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(text.contains("viewBox="));
        assert!(text.trim_end().ends_with("</svg>"));
        assert!(text.contains(title), "title missing");
        text
    }

    #[test]
    fn cdf_draws_each_series() {
        let series = vec![
            CdfSeries {
                label: "fast links".into(),
                values_ms: vec![30.0, 10.0, 20.0, 50.0, 40.0],
            },
            CdfSeries {
                label: "slow & lossy".into(),
                values_ms: vec![120.0, 80.0, f64::NAN, 95.5],
            },
        ];
        let text = check("Propagation CDF", |p| {
            propagation_cdf(p, "Propagation CDF", &series)
        });
        assert!(text.contains("fast links"));
        assert!(text.contains("slow &amp; lossy"));
        assert!(text.contains("propagation time (ms)"));
    }

    #[test]
    fn cdf_edge_cases() {
        check("no series", |p| propagation_cdf(p, "no series", &[]));
        let empty = [CdfSeries {
            label: "empty".into(),
            values_ms: vec![],
        }];
        check("empty series", |p| {
            propagation_cdf(p, "empty series", &empty)
        });
        let single = [CdfSeries {
            label: "one".into(),
            values_ms: vec![0.0],
        }];
        check("single zero", |p| {
            propagation_cdf(p, "single zero", &single)
        });
    }

    #[test]
    fn cdf_steps_rise_to_one() {
        let steps = cdf_steps(&[2.0, 1.0]);
        assert_eq!(
            steps,
            vec![(0.0, 0.0), (1.0, 0.0), (1.0, 0.5), (2.0, 0.5), (2.0, 1.0)]
        );
    }

    /// A chain of `n` best blocks from height 0, with a stale sibling at
    /// every height in `stale_at`.
    fn tree(n: u64, stale_at: &[u64]) -> Vec<TreeBlock> {
        let mut blocks: Vec<TreeBlock> = (0..n)
            .map(|h| TreeBlock {
                height: h,
                label: format!("{h:08x}"),
                parent: usize::try_from(h).unwrap().checked_sub(1),
                best: true,
                miner: Some(usize::try_from(h % 4).unwrap()),
            })
            .collect();
        for &h in stale_at {
            blocks.push(TreeBlock {
                height: h,
                label: format!("5{h:07x}"),
                parent: usize::try_from(h).unwrap().checked_sub(1),
                best: false,
                miner: None,
            });
        }
        blocks
    }

    #[test]
    fn small_tree_has_labels_and_legend() {
        let blocks = tree(10, &[3, 3, 7]);
        let text = check("Block tree", |p| block_tree(p, "Block tree", &blocks));
        assert!(text.contains("00000003"));
        assert!(text.contains("50000003"));
        assert!(text.contains("best chain"));
        assert!(text.contains("stale"));
        assert_eq!(tree_window(&blocks), (0, 9, true));
    }

    #[test]
    fn large_tree_is_windowed_on_the_stale_blocks() {
        let stale: Vec<u64> = (1000..1010).chain([100, 1500]).collect();
        let blocks = tree(2000, &stale);
        assert_eq!(tree_window(&blocks), (1000, 1299, false));
        let text = check("Big tree", |p| block_tree(p, "Big tree", &blocks));
        assert!(text.contains("heights 1000..=1299 of 0..=1999"));
        // Bounded: 300 heights of dots, no labels.
        assert!(text.len() < 400_000, "{} bytes", text.len());
        assert!(!text.contains("00000400"));
    }

    #[test]
    fn large_tree_without_stale_blocks_shows_the_end() {
        let blocks = tree(1000, &[]);
        assert_eq!(tree_window(&blocks), (700, 999, false));
        let text = check("Clean", |p| block_tree(p, "Clean", &blocks));
        assert!(text.contains("the last 300"));
    }

    #[test]
    fn tree_edge_cases() {
        check("empty tree", |p| block_tree(p, "empty tree", &[]));
        let one = tree(1, &[]);
        check("one block", |p| block_tree(p, "one block", &one));
        // A bad parent index and a self-parent are ignored, not a panic.
        let mut odd = tree(3, &[2]);
        odd[1].parent = Some(99);
        odd[2].parent = Some(2);
        check("odd tree", |p| block_tree(p, "odd tree", &odd));
    }

    #[test]
    fn sweep_draws_points_and_model() {
        let measured = [(2.0, 0.2), (10.0, 0.05), (60.0, 0.01), (600.0, 0.001)];
        let model: Vec<(f64, f64)> = [1.0, 5.0, 20.0, 100.0, 600.0]
            .iter()
            .map(|&t| (t, 1.0 - (-0.4_f64 / t).exp()))
            .collect();
        let text = check("Stale rate", |p| {
            stale_vs_interval(p, "Stale rate", &measured, &model, "1 - exp(-d/T)")
        });
        assert!(text.contains("1 - exp(-d/T)"));
        assert!(text.contains("measured"));
        assert!(text.contains("block interval"));
    }

    #[test]
    fn sweep_edge_cases() {
        check("empty sweep", |p| {
            stale_vs_interval(p, "empty sweep", &[], &[], "model")
        });
        check("one point", |p| {
            stale_vs_interval(p, "one point", &[(5.0, 0.0)], &[], "model")
        });
        check("bad points", |p| {
            stale_vs_interval(
                p,
                "bad points",
                &[(0.0, 0.1), (-1.0, 0.1), (f64::NAN, 0.2)],
                &[(3.0, f64::INFINITY)],
                "model",
            )
        });
    }
}

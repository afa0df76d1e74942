//! The selfish pool (`selfish.rs`): a strong, well-connected pool earns
//! more than its share against the real nodes, its figures add up, a run
//! with a pool still heals and keeps every other check; and a run without
//! one writes, byte for byte, the report the simulator wrote before the
//! pool existed (`golden/honest-seed5.json`, written by the simulator of
//! commit a1b3d6a).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use sim::world::{Selfish, SimOptions, Stop, closed_form_revenue, run};

/// Six nodes on 50 to 150 ms links, one block a minute, no load.
fn pool(power: f64, blocks: u64, seed: u64) -> SimOptions {
    let mut o = SimOptions::new(6, seed);
    o.stop = Stop::Blocks(blocks);
    o.block_interval = Duration::from_secs(60);
    o.tx_rate = 0.0;
    o.selfish = Some(Selfish {
        power,
        peers: 5,
        link_ms: Some(5),
    });
    o
}

#[test]
fn a_strong_pool_earns_more_than_its_share() {
    let out = run(&pool(0.4, 400, 3)).unwrap();
    let r = &out.report;
    assert_eq!(r.violation, None, "{:?}", r.violation);
    assert!(
        r.settled_after_heal_s.is_some(),
        "the nodes agree after the heal"
    );
    let p = r.selfish.as_ref().unwrap();
    println!("{}", serde_json::to_string_pretty(p).unwrap());
    // Its share of the best chain is above its power by more than two
    // standard errors.
    assert!(
        p.revenue > 0.4 + 2.0 * p.revenue_se,
        "revenue {} ± {}",
        p.revenue,
        p.revenue_se
    );
    // The figures add up.
    assert_eq!(p.pool_best + p.honest_best, r.blocks.best_height);
    assert!(p.pool_best <= p.pool_found && p.honest_best <= p.honest_found);
    assert!((p.revenue + p.honest_share - 1.0).abs() < 1e-9);
    assert!(p.stale_rate > 0.0);
    // γ is measured, not set: the pool raced honest blocks and some were
    // settled by honest miners.
    assert!(p.races_decided_by_honest > 0);
    let gamma = p.gamma.unwrap();
    assert!((0.0..=1.0).contains(&gamma));
    assert!((p.closed_form_revenue - closed_form_revenue(0.4, gamma)).abs() < 1e-6);
}

#[test]
fn a_weak_pool_earns_less_than_its_share() {
    // Below every threshold of the closed form (α < 1/4 even at γ = 1/2):
    // withholding costs the pool blocks.
    let out = run(&pool(0.1, 400, 4)).unwrap();
    let p = out.report.selfish.as_ref().unwrap();
    assert_eq!(out.report.violation, None);
    assert!(p.revenue < 0.1, "revenue {}", p.revenue);
}

#[test]
fn a_run_with_a_pool_is_the_same_bytes_for_the_same_seed() {
    let a = run(&pool(0.3, 60, 9)).unwrap();
    let b = run(&pool(0.3, 60, 9)).unwrap();
    assert_eq!(
        serde_json::to_string(&a.report).unwrap(),
        serde_json::to_string(&b.report).unwrap()
    );
}

#[test]
fn the_pools_options_are_checked() {
    for (power, peers) in [(0.5, 5), (0.0, 5), (0.3, 0), (0.3, 6)] {
        let mut o = pool(power, 10, 1);
        o.selfish = o.selfish.map(|s| Selfish { peers, ..s });
        assert!(run(&o).is_err(), "α {power}, {peers} peers");
    }
}

#[test]
fn without_a_pool_the_report_is_the_one_written_before_pools_existed() {
    // `cargo xtask sim --seed 5 --nodes 8 --block-interval 10s --latency
    // 50ms..150ms --seeds-per-node 3 --blocks 30 --tx-rate 1 --users 20` on
    // commit a1b3d6a.
    let mut o = SimOptions::new(8, 5);
    o.stop = Stop::Blocks(30);
    o.block_interval = Duration::from_secs(10);
    o.tx_rate = 1.0;
    o.users = 20;
    o.settle_bound = Duration::from_secs(300);
    let out = run(&o).unwrap();
    let mut now = serde_json::to_string_pretty(&out.report).unwrap();
    now.push('\n');
    let before = include_str!("golden/honest-seed5.json");
    assert_eq!(now, before);
}

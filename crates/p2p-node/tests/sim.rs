//! The deterministic simulator: runs are reproducible, checks hold on a
//! healthy network and under the swarm's faults.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use p2p_node::sim::world::{Faults, SimOptions, Stop, run};

fn small(seed: u64) -> SimOptions {
    let mut o = SimOptions::new(6, seed);
    o.stop = Stop::Blocks(20);
    o.block_interval = Duration::from_secs(10);
    o.tx_rate = 2.0;
    o
}

#[test]
fn a_small_run_finishes_and_its_checks_hold() {
    let out = run(&small(1)).unwrap();
    let r = &out.report;
    println!("{}", serde_json::to_string_pretty(r).unwrap());
    assert_eq!(r.violation, None);
    assert!(r.blocks.best_height >= 20);
    assert!(r.transactions.confirmed > 0);
    assert!(r.settled_after_heal_s.is_some());
}

#[test]
fn the_same_seed_gives_the_same_report() {
    let a = run(&small(2)).unwrap();
    let b = run(&small(2)).unwrap();
    assert_eq!(
        serde_json::to_string(&a.report).unwrap(),
        serde_json::to_string(&b.report).unwrap()
    );
}

#[test]
fn a_swarm_seed_heals() {
    let mut o = small(3);
    o.stop = Stop::Duration(Duration::from_secs(600));
    o.faults = Some(Faults {
        mean_gap: Duration::from_secs(30),
    });
    let out = run(&o).unwrap();
    println!("{}", serde_json::to_string_pretty(&out.report).unwrap());
    assert_eq!(out.report.violation, None);
}

#[test]
fn the_same_swarm_seed_gives_the_same_report() {
    let swarm = |seed| {
        let mut o = small(seed);
        o.stop = Stop::Duration(Duration::from_secs(300));
        o.faults = Some(Faults {
            mean_gap: Duration::from_secs(20),
        });
        serde_json::to_string(&run(&o).unwrap().report).unwrap()
    };
    assert_eq!(swarm(4), swarm(4));
}

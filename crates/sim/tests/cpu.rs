//! Simulated processors in whole runs: the nodes' work slows propagation
//! by what it costs, a slower processor by more, and runs stay the same
//! bytes for the same seed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use sim::net::Latency;
use sim::world::{Processor, SimOptions, Stop, run};

/// Two nodes 100 ms apart, empty blocks, on processors whose block
/// validation costs `block_ms` at the reference speed.
fn two_nodes(cpu: Option<(f64, f64)>) -> SimOptions {
    let mut o = SimOptions::new(2, 11);
    o.latency = Latency::Fixed(Duration::from_millis(100));
    o.stop = Stop::Blocks(6);
    o.block_interval = Duration::from_secs(30);
    o.tx_rate = 0.0;
    o.cpu = cpu.map(|(block_ms, speed)| {
        let mut p = Processor::reference();
        p.costs.block_ns = block_ms * 1e6;
        p.speed = speed;
        p
    });
    o
}

/// The mean over the nodes and blocks of the time until a node has a
/// block (ms).
fn d(cpu: Option<(f64, f64)>) -> f64 {
    let out = run(&two_nodes(cpu)).unwrap();
    assert_eq!(out.report.violation, None);
    assert_eq!(out.report.blocks.stale, 0);
    out.report.node_delay_ms.mean
}

#[test]
fn each_hop_is_slower_by_its_processing_and_half_the_speed_doubles_it() {
    let none = d(None);
    // One hop (the miner has its block at once): `d` is half of it. What
    // else a hop costs (decoding, the commit) is under a millisecond, and
    // tokio's timers fire on whole milliseconds: 2 ms of slack.
    for (block_ms, speed) in [(50.0, 1.0), (50.0, 0.5), (20.0, 0.25)] {
        let grew = d(Some((block_ms, speed))) - none;
        let hop = block_ms / speed;
        assert!(
            grew >= hop / 2.0 && grew <= hop / 2.0 + 2.0,
            "block {block_ms} ms at speed {speed}: d grew {grew} ms, the hop's work is {hop} ms"
        );
    }
}

fn speed(s: f64) -> Option<Processor> {
    let mut p = Processor::reference();
    p.speed = s;
    Some(p)
}

/// Two nodes, transactions gossiped and mined.
fn loaded(cpu: Option<Processor>) -> SimOptions {
    let mut o = SimOptions::new(2, 11);
    o.stop = Stop::Blocks(4);
    o.block_interval = Duration::from_secs(30);
    o.tx_rate = 40.0;
    o.users = 400;
    o.cpu = cpu;
    o
}

#[test]
fn a_run_with_processors_is_the_same_bytes_for_the_same_seed() {
    let report = || serde_json::to_string(&run(&loaded(speed(0.7))).unwrap().report).unwrap();
    assert_eq!(report(), report());
}

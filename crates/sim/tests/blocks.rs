//! Blocks of a chosen size (`--block-size`): filled by memo transfers that
//! the nodes check, carry and store as real bytes; bigger blocks travel
//! slower; runs stay the same bytes for the same seed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use sim::net::Latency;
use sim::world::{Outcome, SimOptions, Stop, run};

/// Eight nodes 50 ms apart at 20 Mbit/s, 10-second blocks, no load but
/// the filler for blocks of `size` bytes.
fn sized(size: u64, blocks: u64) -> SimOptions {
    let mut o = SimOptions::new(8, 21);
    o.latency = Latency::Fixed(Duration::from_millis(50));
    o.block_interval = Duration::from_secs(10);
    o.stop = Stop::Blocks(blocks);
    o.tx_rate = 0.0;
    o.users = 40;
    o.block_size = Some(size);
    o
}

fn checked(o: &SimOptions) -> Outcome {
    let out = run(o).unwrap();
    assert_eq!(out.report.violation, None);
    out
}

#[test]
fn blocks_reach_the_size_asked_with_memo_transfers_every_node_checks() {
    let out = checked(&sized(100_000, 40));
    let r = &out.report;
    let memos = r.transactions.by_kind.get("transfer-memo").copied();
    assert!(memos.is_some_and(|n| n > 40), "{:?}", r.transactions);
    assert!(r.transactions.refused.is_empty(), "{:?}", r.transactions);
    // A Poisson filler: each block holds what arrived since the last, so
    // sizes vary, and their mean is the size asked.
    let bytes = &r.blocks.bytes;
    assert_eq!(bytes.count as u64, r.blocks.best_height);
    assert!(
        (70_000.0..130_000.0).contains(&bytes.mean),
        "mean block {} bytes",
        bytes.mean
    );
    assert!(bytes.max <= f64::from(1u32 << 20));
    // The bytes were carried: every node but a block's miner received
    // each block (and its transactions before it).
    let carried = bytes.mean * bytes.count as f64;
    let sent = r.bytes_sent_per_node.mean * r.nodes as f64;
    assert!(sent >= carried * (r.nodes - 1) as f64, "{sent} < {carried}");
}

#[test]
fn bigger_blocks_take_longer_to_reach_every_node() {
    // Legacy relay: each hop carries the whole block (compact blocks
    // carry short ids for transactions the receiver holds).
    let legacy = |mut o: SimOptions| {
        o.relay = p2p_node::Relay::Legacy;
        o
    };
    let small = checked(&legacy(sized(5_000, 12))).report.node_delay_ms.mean;
    let big = checked(&legacy(sized(400_000, 12)))
        .report
        .node_delay_ms
        .mean;
    // 400 kB more at 20 Mbit/s is 160 ms more per hop, at least one hop.
    assert!(big > small + 150.0, "{small} ms, then {big} ms");
}

#[test]
fn a_run_with_sized_blocks_is_the_same_bytes_for_the_same_seed() {
    let o = sized(50_000, 8);
    let a = serde_json::to_string(&checked(&o).report).unwrap();
    let b = serde_json::to_string(&checked(&o).report).unwrap();
    assert_eq!(a, b);
    let mut other = o.clone();
    other.seed += 1;
    assert_ne!(serde_json::to_string(&checked(&other).report).unwrap(), a);
}

//! Compact block relay against legacy relay, through the real node code:
//! the same network, seed and load, blocks made of transactions gossiped
//! first (as real blocks are).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use p2p_node::Relay;
use sim::net::Latency;
use sim::world::{Report, SimOptions, Stop, run};

/// Sixteen nodes 80 ms apart at 20 Mbit/s, 20-second blocks of about
/// 200 kB of memo transfers, relayed as `relay` says.
fn report(relay: Relay) -> Report {
    let mut o = SimOptions::new(16, 4);
    o.latency = Latency::Fixed(Duration::from_millis(80));
    o.block_interval = Duration::from_secs(20);
    o.stop = Stop::Blocks(8);
    o.tx_rate = 0.0;
    o.users = 60;
    o.block_size = Some(200_000);
    o.relay = relay;
    let out = run(&o).unwrap();
    assert_eq!(out.report.violation, None);
    out.report
}

#[test]
fn compact_blocks_reach_every_node_sooner_in_fewer_bytes() {
    let legacy = report(Relay::Legacy);
    let compact = report(Relay::Compact);
    assert_eq!(legacy.relay.compact_received, 0);
    // Every node but a block's miner rebuilt it from its mempool, at once.
    let r = &compact.relay;
    assert!(r.rebuilt_at_once > 0 && r.failed == 0, "{r:?}");
    assert!(
        r.compact_bytes_per_node_per_block < 5_000.0,
        "{} bytes of compact blocks a node and block",
        r.compact_bytes_per_node_per_block
    );
    // A hop is half a round trip, with no block to transmit, instead of
    // an announcement, a request and the whole block.
    let (l, c) = (legacy.node_delay_ms.mean, compact.node_delay_ms.mean);
    assert!(c * 2.0 < l, "compact {c} ms against legacy {l} ms");
    // The block's transactions cross each link once, not twice.
    let (lb, cb) = (
        legacy.bytes_sent_per_node.mean,
        compact.bytes_sent_per_node.mean,
    );
    assert!(
        cb < lb * 0.75,
        "compact {cb} bytes a node against legacy {lb}"
    );
}

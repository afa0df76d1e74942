//! `GET /metrics`: the node's figures in the OpenMetrics text format
//! (which Prometheus reads), encoded by `prometheus-client`, the Prometheus
//! project's own Rust library. `docs/API.md` ("GET /metrics") lists every
//! series.
//!
//! The figures are the node's own counters, read at each scrape from the
//! published snapshot, so a scrape never waits for the core, whatever it
//! is doing; a registry is filled with them and encoded. The process's CPU time and memory are
//! read from `/proc/self` where there is one (Linux).

use std::sync::atomic::AtomicU64;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use super::error::ApiError;
use super::state::Api;
use crate::core::Direction;

/// The media type of the answer.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = Vec<(&'static str, String)>;

fn gauge(registry: &mut Registry, name: &str, help: &str, value: i64) {
    let g = Gauge::<i64>::default();
    g.set(value);
    registry.register(name, help, g);
}

fn gauge_f64(registry: &mut Registry, name: &str, help: &str, value: f64) {
    let g = Gauge::<f64, AtomicU64>::default();
    g.set(value);
    registry.register(name, help, g);
}

fn counter(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let c = Counter::<u64>::default();
    c.inc_by(value);
    registry.register(name, help, c);
}

fn counters<'a>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    label: &'static str,
    values: impl IntoIterator<Item = (&'a str, u64)>,
) {
    let family = Family::<Labels, Counter>::default();
    for (value, n) in values {
        family
            .get_or_create(&vec![(label, value.to_string())])
            .inc_by(n);
    }
    registry.register(name, help, family);
}

fn to_i64(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

/// The handler.
pub(super) async fn metrics(State(api): State<Api>) -> Result<Response, ApiError> {
    let snap = api.node.snapshot();
    let (admitted, bans) = (snap.tx_admitted, snap.bans);
    let refused = snap.tx_refused.iter().map(|(k, n)| (*k, *n));
    let m = &*snap.metrics;
    let mut r = Registry::default();

    // The chain.
    gauge(
        &mut r,
        "node_height",
        "Height of the best tip",
        to_i64(snap.height),
    );
    gauge_f64(
        &mut r,
        "node_best_work",
        "Expected hashes behind the best chain",
        snap.total_work.as_f64(),
    );
    let behind = snap
        .peers
        .iter()
        .map(|p| p.best_height)
        .max()
        .map_or(0, |best| best.saturating_sub(snap.height));
    gauge(
        &mut r,
        "node_sync_behind_blocks",
        "Blocks between the best tip and the highest tip a live peer announced (0: in sync)",
        to_i64(behind),
    );
    counter(
        &mut r,
        "node_blocks_accepted",
        "Blocks that joined the block tree",
        m.blocks_accepted,
    );
    counters(
        &mut r,
        "node_blocks_rejected",
        "Blocks refused, by reason",
        "reason",
        m.blocks_rejected.iter().map(|(k, n)| (k.as_str(), *n)),
    );
    counter(
        &mut r,
        "node_reorgs",
        "Best-chain changes that undid blocks",
        m.reorgs,
    );
    gauge(
        &mut r,
        "node_reorg_max_depth",
        "Most blocks undone by one reorganisation",
        to_i64(m.max_reorg_depth),
    );
    counter(
        &mut r,
        "node_blocks_mined",
        "Blocks this node mined onto its best chain",
        m.blocks_mined,
    );
    let uptime = m.started.map_or(0.0, |t| t.elapsed().as_secs_f64());
    let rate = if uptime > 0.0 {
        m.work_mined / uptime
    } else {
        0.0
    };
    gauge_f64(
        &mut r,
        "node_hash_rate",
        "Expected hashes per second behind this node's mined blocks since start",
        rate.round(),
    );

    // Peers.
    let peers = Family::<Labels, Gauge>::default();
    for (direction, name) in [(Direction::Inbound, "in"), (Direction::Outbound, "out")] {
        let n = snap
            .peers
            .iter()
            .filter(|p| p.direction == direction)
            .count();
        peers
            .get_or_create(&vec![("direction", name.to_string())])
            .set(to_i64(n));
    }
    r.register("node_peers", "Live peer connections, by who dialled", peers);
    gauge(
        &mut r,
        "node_peer_penalty_points",
        "Penalty points of the live peers, summed",
        snap.peers.iter().map(|p| i64::from(p.score)).sum(),
    );
    counters(
        &mut r,
        "node_penalties",
        "Penalties given to peers, by offence",
        "offence",
        snap.penalties.by_offence.iter().map(|(k, n)| (*k, *n)),
    );
    counter(
        &mut r,
        "node_bans",
        "Peers (or socket addresses, before a handshake) banned",
        snap.penalties.bans,
    );
    gauge(
        &mut r,
        "node_bans_active",
        "Nodes and addresses banned now",
        to_i64(bans),
    );

    // What the connections carried, by message kind.
    let messages = Family::<Labels, Counter>::default();
    let bytes = Family::<Labels, Counter>::default();
    for (kind, flow) in api.node.traffic().by_kind() {
        for (direction, n, b) in [
            ("in", flow.messages_in, flow.bytes_in),
            ("out", flow.messages_out, flow.bytes_out),
        ] {
            let labels = vec![
                ("direction", direction.to_string()),
                ("kind", kind.to_string()),
            ];
            messages.get_or_create(&labels).inc_by(n);
            bytes.get_or_create(&labels).inc_by(b);
        }
    }
    r.register(
        "node_network_messages",
        "Messages received (in) and sent (out) on peer connections, by kind",
        messages,
    );
    r.register_with_unit(
        "node_network",
        "Bytes of whole frames received (in) and sent (out) on peer connections, by message kind",
        Unit::Bytes,
        bytes,
    );

    // The mempool.
    gauge(
        &mut r,
        "node_mempool_transactions",
        "Pending transactions",
        to_i64(snap.mempool_len),
    );
    r.register_with_unit(
        "node_mempool",
        "Bytes of the pending transactions",
        Unit::Bytes,
        {
            let g = Gauge::<i64>::default();
            g.set(to_i64(snap.mempool_bytes));
            g
        },
    );
    gauge(
        &mut r,
        "node_mempool_min_fee_rate",
        "The fee rate a new transaction must pay now, in coins per 1,000 bytes",
        to_i64(snap.fee_floor.at(tokio::time::Instant::now()).get()),
    );
    counter(
        &mut r,
        "node_transactions_admitted",
        "Transactions admitted to the mempool (submitted or relayed)",
        admitted,
    );
    counters(
        &mut r,
        "node_transactions_refused",
        "Transactions refused by the mempool, by the API's error code",
        "reason",
        refused,
    );

    // Compact block relay.
    let c = &m.compact;
    for (name, help, value) in [
        (
            "node_compact_blocks_received",
            "Compact blocks received",
            c.received,
        ),
        (
            "node_compact_blocks_rebuilt_at_once",
            "Compact blocks rebuilt with no round trip",
            c.rebuilt_at_once,
        ),
        (
            "node_compact_blocks_rebuilt_after_asking",
            "Compact blocks rebuilt after asking for missing transactions",
            c.rebuilt_after_asking,
        ),
        (
            "node_compact_blocks_failed",
            "Compact blocks given up on (the whole block asked for)",
            c.failed,
        ),
        ("node_compact_blocks_sent", "Compact blocks sent", c.sent),
        (
            "node_compact_block_bytes_sent",
            "Bytes of compact blocks sent",
            c.bytes_sent,
        ),
        (
            "node_compact_block_bytes_received",
            "Bytes of compact blocks received",
            c.bytes_received,
        ),
    ] {
        counter(&mut r, name, help, value);
    }

    // The slow steps (the process's histograms: `timings.rs`).
    r.register_with_unit(
        "node_block_insert",
        "Time to insert a block into the block tree: its checks, and its transactions applied when it extends the best chain",
        Unit::Seconds,
        crate::timings::BLOCK_INSERT.clone(),
    );
    r.register_with_unit(
        "node_store_commit",
        "Time of one durable store commit",
        Unit::Seconds,
        crate::timings::COMMIT.clone(),
    );

    // The process.
    if let Some((cpu_seconds, resident_bytes)) = process_figures() {
        let cpu = Counter::<f64, AtomicU64>::default();
        cpu.inc_by(cpu_seconds);
        r.register_with_unit(
            "process_cpu",
            "User and system CPU time of the process",
            Unit::Seconds,
            cpu,
        );
        let rss = Gauge::<i64>::default();
        rss.set(to_i64(resident_bytes));
        r.register_with_unit(
            "process_resident_memory",
            "Resident memory of the process",
            Unit::Bytes,
            rss,
        );
    }

    let mut out = String::new();
    encode(&mut out, &r).map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "metrics_error",
            format!("cannot encode the metrics: {e}"),
        )
    })?;
    Ok(([("content-type", CONTENT_TYPE)], out).into_response())
}

/// The process's CPU time (user and system, seconds) and resident memory
/// (bytes), from `/proc/self/stat` and `/proc/self/status`; `None` where
/// they cannot be read.
fn process_figures() -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command's closing parenthesis start with the
    // state (the file's 3rd field): utime and stime are the 14th and 15th,
    // in ticks of USER_HZ, which Linux fixes at 100 for user space.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(((utime + stime) / 100.0, kib * 1024))
}

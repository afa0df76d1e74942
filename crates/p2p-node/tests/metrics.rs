//! `GET /metrics` parses as Prometheus' text format, and each series moves
//! when its event happens: a block mined, a transaction admitted or
//! refused, a peer connected or banned.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::api::api_node;
use common::*;
use escrow::{Amount, Payload};
use prometheus_parse::{Scrape, Value};
use tokio::io::AsyncWriteExt;

async fn scrape(base: &str) -> Scrape {
    let r = reqwest::get(format!("{base}/metrics")).await.unwrap();
    let kind = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    let text = r.text().await.unwrap();
    let lines = text.lines().map(|l| Ok(l.to_string()));
    Scrape::parse(lines).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The value of `name` with the label `label` (if given) equal to `value`.
fn value(s: &Scrape, name: &str, label: Option<(&str, &str)>) -> Option<f64> {
    labelled(s, name, label.as_slice())
}

/// The value of `name` with every label of `labels`.
fn labelled(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    s.samples
        .iter()
        .filter(|x| x.metric == name)
        .find(|x| labels.iter().all(|(k, v)| x.labels.get(k) == Some(v)))
        .map(|x| match x.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_series_moves_when_its_event_happens() {
    let (node, base) = api_node().await;
    let before = scrape(&base).await;
    for (name, want) in [
        ("node_height", 0.0),
        ("node_blocks_mined_total", 0.0),
        ("node_transactions_admitted_total", 0.0),
        ("node_bans_active", 0.0),
        ("node_bans_total", 0.0),
        ("node_mempool_transactions", 0.0),
        ("node_mempool_bytes", 0.0),
        ("node_mempool_min_fee_rate", 1.0),
        ("node_sync_behind_blocks", 0.0),
    ] {
        assert_eq!(value(&before, name, None), Some(want), "{name}");
    }
    assert_eq!(
        value(&before, "node_peers", Some(("direction", "in"))),
        Some(0.0)
    );
    assert!(value(&before, "process_resident_memory_bytes", None).unwrap() > 0.0);
    assert!(value(&before, "process_cpu_seconds_total", None).is_some());

    // A block mined: inserted, and committed.
    node.mine_blocks(2).await.unwrap();
    let s = scrape(&base).await;
    for name in ["node_block_insert_seconds", "node_store_commit_seconds"] {
        let Some(Value::Histogram(buckets)) = s
            .samples
            .iter()
            .find(|x| x.metric == name)
            .map(|x| x.value.clone())
        else {
            panic!("no histogram {name}");
        };
        // The process's histograms (other tests' nodes may add to them).
        let count = buckets.last().map_or(0.0, |b| b.count);
        assert!(count >= 1.0, "{name}: {buckets:?}");
    }
    assert_eq!(value(&s, "node_height", None), Some(2.0));
    assert_eq!(value(&s, "node_blocks_mined_total", None), Some(2.0));
    assert!(
        value(&s, "node_best_work", None).unwrap()
            > value(&before, "node_best_work", None).unwrap()
    );

    // A transaction admitted, one refused for its fee.
    node.submit(alice_pays_bob(0)).await.unwrap();
    let free = escrow::SignedTx::sign(
        &escrow::dev::keypair("bob").unwrap(),
        0,
        Amount::ZERO,
        genesis().network_id(),
        Payload::Transfer {
            to: addr("alice"),
            amount: Amount::new(1),
        },
    );
    node.submit(free).await.unwrap_err();
    let s = scrape(&base).await;
    assert_eq!(
        value(&s, "node_transactions_admitted_total", None),
        Some(1.0)
    );
    assert_eq!(
        value(
            &s,
            "node_transactions_refused_total",
            Some(("reason", "fee_too_low"))
        ),
        Some(1.0)
    );
    assert_eq!(value(&s, "node_mempool_transactions", None), Some(1.0));
    assert_eq!(
        value(&s, "node_mempool_bytes", None),
        Some(alice_pays_bob(0).size() as f64)
    );

    // A peer connects, then one is banned for garbage.
    let mut raw = live_raw_peer(&node).await;
    wait_for("the raw peer live", || async {
        peer_count(&node).await == 1
    })
    .await;
    let s = scrape(&base).await;
    assert_eq!(
        value(&s, "node_peers", Some(("direction", "in"))),
        Some(1.0)
    );
    // Its handshake, each way, counted by kind with its frame's bytes.
    for direction in ["in", "out"] {
        let of = [("direction", direction), ("kind", "handshake")];
        assert_eq!(labelled(&s, "node_network_messages_total", &of), Some(1.0));
        let bytes = labelled(&s, "node_network_bytes_total", &of).unwrap();
        assert!(
            bytes > 100.0,
            "a handshake frame is over 100 bytes: {bytes}"
        );
    }
    raw.framed.get_mut().write_all(GARBAGE_FRAME).await.unwrap();
    wait_for("the ban", || async {
        node.query(|v| !v.bans.is_empty()).await.unwrap()
    })
    .await;
    let bans = node.query(|v| v.bans.len()).await.unwrap();
    let s = scrape(&base).await;
    assert_eq!(value(&s, "node_bans_active", None), Some(bans as f64));
    assert_eq!(
        value(&s, "node_penalties_total", Some(("offence", "frame"))),
        Some(1.0)
    );
    assert_eq!(value(&s, "node_bans_total", None), Some(1.0));
    assert_eq!(
        value(&s, "node_peers", Some(("direction", "in"))),
        Some(0.0)
    );
    // GET /bans names what was banned: the peer's node id and its socket
    // address, not its IP (a loopback address, shared by every local node).
    let listed: Vec<p2p_node::api_types::BanAnswer> = reqwest::get(format!("{base}/bans"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.len(), bans, "{listed:?}");
    let kinds: Vec<&str> = listed.iter().map(|b| b.kind.as_str()).collect();
    assert!(
        kinds.contains(&"node") && kinds.contains(&"addr"),
        "{listed:?}"
    );
    assert!(!kinds.contains(&"ip"), "no IP ban on loopback: {listed:?}");
    assert!(
        listed
            .iter()
            .all(|b| b.seconds_left > 0 && b.seconds_left <= 600)
    );
    node.shutdown().await;
}

/// The metric names in `text`: words starting `node_` or `process_`.
fn names_in(text: &str) -> std::collections::BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("node_") || w.starts_with("process_"))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_series_is_documented_and_the_dashboard_reads_only_those() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let api = std::fs::read_to_string(root.join("docs/API.md")).unwrap();
    let start = api.find("### `GET /metrics`").unwrap();
    let documented = names_in(&api[start..]);
    let (node, base) = api_node().await;
    let s = scrape(&base).await;
    for sample in &s.samples {
        assert!(
            documented.contains(&sample.metric),
            "{} is not in docs/API.md",
            sample.metric
        );
    }
    let dashboard = std::fs::read_to_string(root.join("ops/grafana/escrow-chain.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    let exprs: Vec<String> = json["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_string))
        .collect();
    assert!(exprs.len() >= 10, "the dashboard has its panels");
    for expr in &exprs {
        for name in names_in(expr) {
            assert!(
                documented.contains(&name),
                "the dashboard reads {name}, which the node does not export ({expr})"
            );
        }
    }
    node.shutdown().await;
}

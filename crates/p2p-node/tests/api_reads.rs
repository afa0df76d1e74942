//! Reads of the chain never wait for the node's core (`docs/API.md`,
//! "Reads"): with the core held (a query that blocks it until the test
//! lets go), every lookup of the chain answers through the HTTP API, for a
//! block in the snapshot's recent blocks and for one old enough that its
//! body comes from the store. What only the core can answer (a pending or
//! unknown transaction) answers once it is let go.
//!
//! Nor do they wait for the node's runtime: with every worker of the
//! runtime the node was started on held, `GET /status` still answers (the
//! API serves on threads of its own).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::api::*;
use common::*;
use escrow::{Amount, Payload, dev};
use p2p_node::RECENT_HEIGHTS;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Long enough for any machine, however busy; a read that waited for the
/// held core would never answer.
const GUARD: Duration = Duration::from_secs(120);

/// `POST /txs` of `tx`: the status and the answer.
async fn submit(base: &str, tx: &escrow::SignedTx) -> (StatusCode, Value) {
    post(
        &format!("{base}/txs"),
        json!({"tx": hex::encode(tx.to_bytes())}),
        None,
    )
    .await
}

async fn get_now(url: String) -> (StatusCode, Value) {
    tokio::time::timeout(GUARD, get(&url))
        .await
        .unwrap_or_else(|_| panic!("{url} waited for the held core"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_of_the_chain_answer_while_the_core_is_held() {
    let (node, base) = api_node().await;
    let handle = node.node().clone();
    let pay = alice_pays_bob(0);
    let (s, body) = submit(&base, &pay).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let first = handle.mine_blocks(1).await.unwrap()[0];
    // Enough blocks on top that block 1 is no longer among the snapshot's
    // recent blocks: its body is read from the store.
    let tip = *handle
        .mine_blocks(RECENT_HEIGHTS + 4)
        .await
        .unwrap()
        .last()
        .unwrap();
    let height = RECENT_HEIGHTS + 5;
    assert!(handle.snapshot().recent.low() > 1);

    // A pending transaction, and one the pool let go (replaced).
    let waiting = alice_pays_bob(1);
    let (s, body) = submit(&base, &waiting).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let replaced = sign(
        "charlie",
        0,
        Payload::Transfer {
            to: dev::address("bob").unwrap(),
            amount: Amount::new(1),
        },
    );
    let replacement = escrow::SignedTx::sign(
        &dev::keypair("charlie").unwrap(),
        0,
        Amount::new(FEE * 10),
        genesis().network_id(),
        Payload::Transfer {
            to: dev::address("dave").unwrap(),
            amount: Amount::new(1),
        },
    );
    for tx in [&replaced, &replacement] {
        let (s, body) = submit(&base, tx).await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
    }

    // The core is held until `release` is sent.
    let (release, held) = std::sync::mpsc::channel::<()>();
    let (entered, core_held) = tokio::sync::oneshot::channel::<()>();
    let holder = handle.clone();
    let hold = tokio::spawn(async move {
        holder
            .query(move |_| {
                let _ = entered.send(());
                let _ = held.recv();
            })
            .await
    });
    core_held.await.unwrap();

    let (s, b) = get_now(format!("{base}/blocks/{first}")).await;
    assert_eq!(
        (s, &b["height"], &b["on_best_chain"]),
        (StatusCode::OK, &json!(1), &json!(true)),
        "{b}"
    );
    let (s, b) = get_now(format!("{base}/blocks/{tip}")).await;
    assert_eq!((s, &b["height"]), (StatusCode::OK, &json!(height)), "{b}");
    let (s, b) = get_now(format!("{base}/blocks/height/1")).await;
    assert_eq!((s, &b["hash"]), (StatusCode::OK, &json!(first)), "{b}");
    let (s, b) = get_now(format!("{base}/blocks/height/0")).await;
    assert_eq!(
        (s, &b["hash"]),
        (StatusCode::OK, &json!(genesis().block().hash())),
        "{b}"
    );
    let (s, b) = get_now(format!("{base}/blocks/height/{}", height + 1)).await;
    assert_eq!(
        (s, &b["code"]),
        (StatusCode::NOT_FOUND, &json!("not_found")),
        "{b}"
    );
    let unknown = chain_core::BlockHash::from_bytes([0xab; 32]);
    let (s, b) = get_now(format!("{base}/blocks/{unknown}")).await;
    assert_eq!(
        (s, &b["code"]),
        (StatusCode::NOT_FOUND, &json!("not_found")),
        "{b}"
    );
    let (s, b) = get_now(format!("{base}/blocks?from=0&to=5")).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let heights: Vec<u64> = b
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["height"].as_u64().unwrap())
        .collect();
    assert_eq!(heights, vec![0, 1, 2, 3, 4, 5]);
    let (s, b) = get_now(format!("{base}/headers?from=1&count=3")).await;
    assert_eq!(
        (s, &b["tip_height"]),
        (StatusCode::OK, &json!(height)),
        "{b}"
    );
    assert_eq!(b["headers"].as_array().unwrap().len(), 3, "{b}");
    let (s, b) = get_now(format!("{base}/txs/{}", pay.id())).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        (&b["status"], &b["block"], &b["confirmations"]),
        (&json!("confirmed"), &json!(first), &json!(height))
    );
    let (s, b) = get_now(format!("{base}/txs/{}/proof", pay.id())).await;
    assert_eq!(
        (s, &b["block"], &b["height"]),
        (StatusCode::OK, &json!(first), &json!(1)),
        "{b}"
    );
    let (s, b) = get_now(format!("{base}/status")).await;
    assert_eq!((s, &b["height"]), (StatusCode::OK, &json!(height)), "{b}");
    let (s, b) = get_now(format!("{base}/accounts/bob")).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // The pool, from the snapshot.
    let (s, b) = get_now(format!("{base}/txs/{}", waiting.id())).await;
    assert_eq!(
        (s, &b["status"]),
        (StatusCode::OK, &json!("pending")),
        "{b}"
    );
    let short = &waiting.id().to_string()[..12];
    let (s, b) = get_now(format!("{base}/txs/{short}")).await;
    assert_eq!(
        (s, &b["status"]),
        (StatusCode::OK, &json!("pending")),
        "{b}"
    );
    let (s, b) = get_now(format!("{base}/txs/{}", replaced.id())).await;
    assert_eq!(
        (s, &b["status"]),
        (StatusCode::OK, &json!("dropped")),
        "{b}"
    );
    assert!(b["reason"].as_str().unwrap().contains("replaced"), "{b}");
    let (s, b) = get_now(format!("{base}/txs/{}/proof", waiting.id())).await;
    assert_eq!(
        (s, &b["code"]),
        (StatusCode::CONFLICT, &json!("tx_pending")),
        "{b}"
    );
    let (s, b) = get_now(format!("{base}/mempool")).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let listed: Vec<&str> = b
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        vec![waiting.id().to_string(), replacement.id().to_string()]
    );
    let unknown_tx = alice_pays_bob(7).id();
    let (s, b) = get_now(format!("{base}/txs/{unknown_tx}")).await;
    assert_eq!(
        (s, &b["code"]),
        (StatusCode::NOT_FOUND, &json!("not_found")),
        "{b}"
    );
    let (s, b) = get_now(format!("{base}/txs/{unknown_tx}/proof")).await;
    assert_eq!(
        (s, &b["code"]),
        (StatusCode::NOT_FOUND, &json!("not_found")),
        "{b}"
    );
    let (s, b) = get_now(format!("{base}/mempool/fees")).await;
    assert_eq!((s, &b["count"]), (StatusCode::OK, &json!(2)), "{b}");
    let (s, b) = get_now(format!("{base}/fees/estimate?blocks=3")).await;
    assert_eq!((s, &b["blocks"]), (StatusCode::OK, &json!(3)), "{b}");
    let (s, b) = get_now(format!("{base}/bans")).await;
    assert_eq!((s, &b), (StatusCode::OK, &json!([])), "{b}");
    let (s, _) = get_now(format!("{base}/peers")).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = get_now(format!("{base}/metrics")).await;
    assert_eq!(s, StatusCode::OK);
    // Nothing above was the core's: it is still held.
    assert!(!hold.is_finished());

    // A block by a prefix of its hash is the core's to answer (a walk of
    // its block index).
    let short = &first.to_string()[..12];
    let late = tokio::spawn(get_now(format!("{base}/blocks/{short}")));
    release.send(()).unwrap();
    hold.await.unwrap().unwrap();
    let (s, b) = late.await.unwrap();
    assert_eq!((s, &b["hash"]), (StatusCode::OK, &json!(first)), "{b}");
    node.shutdown().await;
}

/// `GET path` over a plain socket, on the calling thread: the answer's
/// status line and body, or why there is none. Needs no runtime.
fn get_blocking(addr: std::net::SocketAddr, path: &str) -> Result<(String, String), String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(GUARD))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| format!("no answer within {GUARD:?}: {e}"))?;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head.lines().next().unwrap_or_default().to_string();
    Ok((status, body.to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_answers_while_every_worker_of_the_nodes_runtime_is_held() {
    let (node, _) = api_node().await;
    let addr = node.api_addr().unwrap();
    // Both workers of this runtime (the test's body runs on a thread of
    // its own, not on a worker) blocked until `release` opens.
    let release = std::sync::Arc::new(std::sync::RwLock::new(()));
    let closed = release.write().unwrap();
    let (started, holding) = std::sync::mpsc::channel();
    let holders: Vec<_> = (0..2)
        .map(|_| {
            let (release, started) = (std::sync::Arc::clone(&release), started.clone());
            tokio::spawn(async move {
                started.send(()).unwrap();
                drop(release.read().unwrap());
            })
        })
        .collect();
    for _ in 0..2 {
        holding.recv_timeout(GUARD).unwrap();
    }
    let answered = std::thread::spawn(move || get_blocking(addr, "/status"))
        .join()
        .unwrap();
    drop(closed);
    for h in holders {
        h.await.unwrap();
    }
    let (status, body) = answered.unwrap();
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["height"], json!(0), "{body}");
    node.shutdown().await;
}

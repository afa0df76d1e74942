//! The API server's limits against slow and greedy clients, through real
//! sockets: the header-read deadline (slowloris), the bound on
//! connections, the head and body limits, and a stop that no half-sent
//! request holds up.
//!
//! These run on real time (a paused clock would race the sockets' I/O),
//! so they assert only what a loaded machine cannot break: connections
//! ARE closed, eventually, within bounds far beyond the deadline; honest
//! requests ARE answered; a request that cannot be served is not answered
//! within a second (a slow machine only makes that more true).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::api::*;
use p2p_node::api::ApiLimits;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The hang guard of every wait here: far beyond any deadline set below.
const EVENTUALLY: Duration = Duration::from_secs(120);

fn limits(header_timeout: Duration, max_connections: usize) -> ApiLimits {
    ApiLimits {
        header_timeout,
        body_timeout: header_timeout,
        max_connections,
        ..ApiLimits::default()
    }
}

fn addr(base: &str) -> String {
    base.trim_start_matches("http://").to_string()
}

/// Reads until the server closes the connection (EOF or reset), sending
/// `trickle` (if any) a line at a time every 100 ms meanwhile; what it
/// read. Panics if it stays open past [`EVENTUALLY`].
async fn until_closed(mut s: TcpStream, trickle: bool) -> Vec<u8> {
    let mut read = Vec::new();
    let mut buf = [0u8; 4096];
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut n = 0u64;
    let wait = async {
        loop {
            tokio::select! {
                r = s.read(&mut buf) => match r {
                    Ok(0) | Err(_) => return,
                    Ok(k) => read.extend_from_slice(&buf[..k]),
                },
                _ = tick.tick(), if trickle => {
                    n += 1;
                    let line = format!("x-slow-{n}: {n}\r\n");
                    if s.write_all(line.as_bytes()).await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    tokio::time::timeout(EVENTUALLY, wait)
        .await
        .expect("the server never closed the connection");
    read
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slowloris_connections_are_closed_after_the_header_deadline_while_honest_ones_are_served() {
    let (node, base) = api_node_with(limits(Duration::from_secs(1), 1_000)).await;
    let target = addr(&base);
    // 600 connections: half send nothing, half start a request and then
    // trickle header lines forever, never ending the head.
    let mut slow = Vec::new();
    for i in 0..600 {
        let mut s = TcpStream::connect(&target).await.unwrap();
        let trickle = i % 2 == 1;
        if trickle {
            s.write_all(b"GET /status HTTP/1.1\r\nhost: x\r\n")
                .await
                .unwrap();
        }
        slow.push(tokio::spawn(until_closed(s, trickle)));
    }
    // An honest client is answered meanwhile.
    let (s, status) = tokio::time::timeout(EVENTUALLY, get(&format!("{base}/status")))
        .await
        .expect("no answer during the attack");
    assert_eq!(s, StatusCode::OK, "{status}");
    // Every slow connection is closed by the server, unanswered (hyper
    // sends nothing at the deadline; a bare `408` would be fine too).
    for task in slow {
        let read = task.await.unwrap();
        let text = String::from_utf8_lossy(&read);
        assert!(
            read.is_empty() || text.starts_with("HTTP/1.1 408"),
            "a slow connection got {text:?}"
        );
    }
    // And the server still serves.
    let (s, _) = get(&format!("{base}/status")).await;
    assert_eq!(s, StatusCode::OK);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_kept_alive_connection_is_closed_after_the_header_deadline() {
    let (node, base) = api_node_with(limits(Duration::from_secs(1), 16)).await;
    let mut s = TcpStream::connect(addr(&base)).await.unwrap();
    s.write_all(b"GET /status HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let read = until_closed(s, false).await;
    let text = String::from_utf8_lossy(&read);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("\"height\":0"), "{text}");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_limit_wait_until_one_closes() {
    // A deadline far longer than the test: only a client closing frees a
    // slot here.
    let (node, base) = api_node_with(limits(Duration::from_secs(3_600), 2)).await;
    let target = addr(&base);
    let idle_a = TcpStream::connect(&target).await.unwrap();
    let idle_b = TcpStream::connect(&target).await.unwrap();
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    // Both slots are taken: the third connection waits in the backlog.
    let refused = quick.get(format!("{base}/status")).send().await;
    assert!(
        refused.as_ref().is_err_and(reqwest::Error::is_timeout),
        "answered past the limit: {refused:?}"
    );
    // One client leaves: its slot serves the next.
    drop(idle_a);
    let patient = reqwest::Client::builder()
        .timeout(EVENTUALLY)
        .build()
        .unwrap();
    let r = patient.get(format!("{base}/status")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    drop(idle_b);
    node.shutdown().await;
}

/// Sends `request` on a fresh connection and reads the answer until the
/// server closes it.
async fn exchange(base: &str, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr(base)).await.unwrap();
    s.write_all(request).await.unwrap();
    String::from_utf8_lossy(&until_closed(s, false).await).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heads_and_bodies_past_their_limits_are_refused() {
    let (node, base) = api_node_with(limits(Duration::from_secs(1), 16)).await;
    let max = ApiLimits::default().max_header_bytes;
    // A head within the limit is served; one past it is `431`.
    let head = |pad: usize| {
        format!(
            "GET /status HTTP/1.1\r\nhost: x\r\nconnection: close\r\nx-pad: {}\r\n\r\n",
            "a".repeat(pad)
        )
    };
    let ok = exchange(&base, head(max / 2).as_bytes()).await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    let big = exchange(&base, head(max + 1).as_bytes()).await;
    assert!(big.starts_with("HTTP/1.1 431"), "{big}");

    // A body that stops short of its length: `408 body_timeout` once the
    // body deadline passes.
    let slow_body = exchange(
        &base,
        b"POST /txs HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
          connection: close\r\ncontent-length: 100\r\n\r\n{\"tx\": ",
    )
    .await;
    assert!(slow_body.starts_with("HTTP/1.1 408"), "{slow_body}");
    assert!(
        slow_body.contains("\"code\":\"body_timeout\""),
        "{slow_body}"
    );

    // A declared length past the limit: `413` without waiting for it.
    let declared = exchange(
        &base,
        format!(
            "POST /txs HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
             connection: close\r\ncontent-length: {}\r\n\r\n{{",
            ApiLimits::default().max_body_bytes + 1
        )
        .as_bytes(),
    )
    .await;
    assert!(declared.starts_with("HTTP/1.1 413"), "{declared}");
    assert!(
        declared.contains("\"code\":\"body_too_large\""),
        "{declared}"
    );
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_request_does_not_hold_up_the_stop() {
    let (node, base) = api_node_with(limits(Duration::from_secs(1), 16)).await;
    let target = addr(&base);
    let mut half = TcpStream::connect(&target).await.unwrap();
    half.write_all(b"GET /status HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let silent = TcpStream::connect(&target).await.unwrap();
    // The server accepts in order: answering a later connection means it
    // took both.
    let (s, _) = get(&format!("{base}/status")).await;
    assert_eq!(s, StatusCode::OK);
    tokio::time::timeout(EVENTUALLY, node.shutdown())
        .await
        .expect("the stop waited on a half-sent request");
    // Both were closed by the server.
    until_closed(half, false).await;
    until_closed(silent, false).await;
}

//! The API server's limits against slow and greedy clients, through real
//! sockets: the header-read deadline (slowloris), the write deadline
//! (clients that never read their answers), the bound on connections, the
//! head and body limits, and a stop that neither a half-sent request nor a
//! connection that never spoke holds up.
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
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;

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
                biased;
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
    // 200 connections (far over what must be closed, and with the server's
    // ends about 400 file descriptors: within a default `ulimit -n` of
    // 1024 for the whole test binary): half send nothing, half start a
    // request and then trickle header lines forever, never ending the head.
    let mut slow = Vec::new();
    for i in 0..200 {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_never_spoke_does_not_hold_up_the_stop() {
    // A head deadline far longer than the hang guard: only closing the
    // silent connection at once lets the stop finish in time.
    let (node, base) = api_node_with(limits(Duration::from_secs(3_600), 16)).await;
    let silent = TcpStream::connect(addr(&base)).await.unwrap();
    // Accepted in order: answering a later connection means it took the
    // silent one.
    let (s, _) = get(&format!("{base}/status")).await;
    assert_eq!(s, StatusCode::OK);
    tokio::time::timeout(EVENTUALLY, node.shutdown())
        .await
        .expect("the stop waited on a connection that never spoke");
    until_closed(silent, false).await;
}

/// Connects with a small receive buffer and small segments, so that a
/// client that does not read stalls the server's writes after less data:
/// the server's send buffer starts at a few segments' worth (Linux sizes
/// it from the segment size, 64 KiB on loopback otherwise) and does not
/// grow while the client's window stays shut.
async fn connect_small(target: &str) -> TcpStream {
    use std::os::fd::AsRawFd;
    let addr: std::net::SocketAddr = target.parse().unwrap();
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4 * 1024).unwrap();
    let mss: libc::c_int = 536;
    // SAFETY: a valid socket, and a pointer to a c_int of the size given.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_MAXSEG,
            std::ptr::from_ref(&mss).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "TCP_MAXSEG: {}", std::io::Error::last_os_error());
    socket.connect(addr).await.unwrap()
}

/// A client that never reads: it sends `first`, then `then` (a pipelined
/// request) again and again, `pause` apart, until a write fails because
/// the server closed the connection. Panics if that takes past
/// [`EVENTUALLY`].
async fn never_reads(target: String, first: &'static [u8], then: &'static [u8], pause: Duration) {
    let mut s = connect_small(&target).await;
    let writes = async {
        if s.write_all(first).await.is_err() {
            return;
        }
        loop {
            if s.write_all(then).await.is_err() {
                return;
            }
            tokio::time::sleep(pause).await;
        }
    };
    tokio::time::timeout(EVENTUALLY, writes)
        .await
        .expect("the server never closed a connection that does not read");
}

/// A client of `GET /events` that reads everything: what it reads, chunk
/// by chunk, until the server closes the stream.
async fn watch_events(target: &str) -> mpsc::UnboundedReceiver<Vec<u8>> {
    let mut s = TcpStream::connect(target).await.unwrap();
    s.write_all(b"GET /events HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = s.read(&mut buf).await {
            if tx.send(buf[..n].to_vec()).is_err() {
                return;
            }
        }
    });
    rx
}

/// Reads `events` until `needle` appears in them; panics if the stream
/// ends first, or past [`EVENTUALLY`].
async fn until_seen(events: &mut mpsc::UnboundedReceiver<Vec<u8>>, needle: &str) {
    let needle = needle.as_bytes();
    // What was read, less what cannot be the start of a match.
    let mut tail = Vec::new();
    let wait = async {
        loop {
            let chunk = events.recv().await.expect("the event stream ended early");
            tail.extend_from_slice(&chunk);
            if tail.windows(needle.len()).any(|w| w == needle) {
                return;
            }
            let keep = tail.len().min(needle.len() - 1);
            tail.drain(..tail.len() - keep);
        }
    };
    tokio::time::timeout(EVENTUALLY, wait)
        .await
        .unwrap_or_else(|_| panic!("never saw {needle:?} on the event stream"));
}

/// Mines `n` blocks through the API; the last one's hash.
async fn mine(base: &str, n: u64) -> String {
    let (s, answer) = post(&format!("{base}/mine"), json!({"blocks": n}), Some(TOKEN)).await;
    assert_eq!(s, StatusCode::OK, "{answer}");
    answer["blocks"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clients_that_never_read_their_answers_are_closed_while_honest_ones_are_served() {
    // Fewer slots than greedy clients: without a write deadline they hold
    // every slot forever and the honest request below is never answered.
    // A head deadline longer than the test: only the write deadline can
    // close them.
    let mut l = limits(Duration::from_secs(3_600), 24);
    l.write_timeout = Duration::from_secs(2);
    let (node, base) = api_node_with(l).await;
    let target = addr(&base);
    // 100 blocks: `GET /blocks?last=100` is a large answer.
    mine(&base, 100).await;
    // An honest watcher of the event stream, there from the start.
    let mut events = watch_events(&target).await;
    until_seen(&mut events, "200 OK").await;
    // 60 greedy clients: 50 pipeline `GET /blocks?last=100` without end,
    // 10 subscribe to the event stream; none reads a byte.
    let mut greedy = Vec::new();
    for i in 0..60 {
        let client = if i % 6 == 0 {
            never_reads(
                target.clone(),
                b"GET /events HTTP/1.1\r\nhost: x\r\n\r\n",
                b"GET /status HTTP/1.1\r\nhost: x\r\n\r\n",
                Duration::from_millis(100),
            )
        } else {
            never_reads(
                target.clone(),
                b"GET /blocks?last=100 HTTP/1.1\r\nhost: x\r\n\r\n",
                b"GET /blocks?last=100 HTTP/1.1\r\nhost: x\r\n\r\n",
                Duration::ZERO,
            )
        };
        greedy.push(tokio::spawn(client));
    }
    // Events flow meanwhile: the streams that are not read fill up and
    // stall; the honest watcher keeps up.
    let miner = {
        let base = base.clone();
        tokio::spawn(async move {
            loop {
                mine(&base, 1_000).await;
            }
        })
    };
    // An honest client is answered during the attack.
    let patient = reqwest::Client::builder()
        .timeout(EVENTUALLY)
        .build()
        .unwrap();
    let r = patient.get(format!("{base}/status")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Every greedy client is closed by the server, eventually.
    for task in greedy {
        task.await.unwrap();
    }
    miner.abort();
    let _ = miner.await;
    // The honest watcher was not cut off: it still gets the next block.
    let hash = mine(&base, 1).await;
    until_seen(&mut events, &hash).await;
    node.shutdown().await;
}

//! Serving the API over HTTP/1.1 with limits a slow or hostile client
//! cannot get around ([`ApiLimits`]): an accept loop of our own over
//! hyper's connection builder, since `axum::serve` exposes none of them.
//!
//! - At most [`ApiLimits::max_connections`] connections are served at
//!   once: the loop takes a permit before it accepts, so further clients
//!   wait in the listen backlog until a connection closes.
//! - A connection must send a whole request head (request line and
//!   headers) within [`ApiLimits::header_timeout`] of when the server
//!   starts waiting for it: when it opens, and again after each answer on
//!   a kept-alive connection. Otherwise hyper closes it, so a client that
//!   opens connections and sends nothing, or trickles header bytes
//!   (slowloris), holds each slot for at most that long.
//! - A request head is at most [`ApiLimits::max_header_bytes`] (hyper
//!   answers `431` and closes the connection).
//! - A write of an answer that makes no progress for
//!   [`ApiLimits::write_timeout`] (the client reads nothing, the socket's
//!   buffers are full) fails, and the connection is closed
//!   ([`super::stall`]), so a client that asks for large answers or
//!   subscribes to `GET /events` and never reads holds its slot for at
//!   most that long past when its buffers fill. A client that reads,
//!   however slowly, is never cut off.
//!
//! Shutdown: once the shutdown future resolves the loop stops accepting,
//! each connection finishes the request it is answering and closes (one
//! that never sent a byte, or sits idle between requests, closes at once:
//! hyper's graceful shutdown treats it as idle), and after
//! [`ApiLimits::header_timeout`] any connection still open is dropped, so
//! a half-sent request head cannot hold the node's stop.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::stall::WriteStall;

/// The HTTP server's limits (`docs/API.md`, "Limits").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiLimits {
    /// Time a connection has to send a whole request head, from when it
    /// opens or its previous answer was sent.
    pub header_timeout: Duration,
    /// Time a write of an answer may make no progress (the client reads
    /// nothing and the socket's buffers are full) before the connection
    /// is closed. Bounds a stall, not a connection's life: an event
    /// stream whose client reads lives on.
    pub write_timeout: Duration,
    /// Time a request has to send its whole body, from when its handler
    /// starts reading it (`408 body_timeout` after).
    pub body_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Bytes of a request head: request line and headers (`431` above).
    pub max_header_bytes: usize,
    /// Bytes of a request body (`413 body_too_large` above).
    pub max_body_bytes: usize,
}

impl Default for ApiLimits {
    fn default() -> ApiLimits {
        ApiLimits {
            header_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(10),
            max_connections: 512,
            max_header_bytes: 16 * 1024,
            max_body_bytes: 64 * 1024,
        }
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown`
/// resolves, then closes every connection (see the module's doc).
///
/// # Errors
///
/// None so far: an error accepting one connection (the process out of
/// file descriptors, a client gone before it was accepted) is logged and
/// the loop goes on. The `Result` is kept for the listener's future
/// errors.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &ApiLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_header_size(limits.max_header_bytes);
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let stop = CancellationToken::new();
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            // Shutdown first: once it resolves no further connection is
            // taken, whatever else is ready.
            biased;
            () = &mut shutdown => break,
            // Reap finished connections so the set stays as small as the
            // connections open.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            (stream, permit) = accept(&listener, &permits) => {
                let io = WriteStall::new(stream, limits.write_timeout);
                let conn = http.serve_connection(
                    TokioIo::new(io),
                    TowerToHyperService::new(router.clone()),
                );
                let stop = stop.clone();
                connections.spawn(async move {
                    // Held until the connection closes: its slot.
                    let _permit = permit;
                    tokio::pin!(conn);
                    let done = tokio::select! {
                        biased;
                        () = stop.cancelled() => None,
                        r = conn.as_mut() => Some(r),
                    };
                    let result = match done {
                        Some(r) => r,
                        None => {
                            conn.as_mut().graceful_shutdown();
                            conn.await
                        }
                    };
                    if let Err(e) = result {
                        // hyper's error names its step ("error writing a
                        // body"); its source says why (the write deadline).
                        match std::error::Error::source(&e) {
                            Some(cause) => debug!("API connection closed: {e}: {cause}"),
                            None => debug!("API connection closed: {e}"),
                        }
                    }
                });
            }
        }
    }
    drop(listener);
    stop.cancel();
    let drained = tokio::time::timeout(limits.header_timeout, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        debug!(
            open = connections.len(),
            "API connections still open at shutdown: dropped"
        );
        connections.shutdown().await;
    }
    Ok(())
}

/// The next connection, once a slot is free. Cancel-safe: dropping it
/// before it is ready loses no connection (`TcpListener::accept` is
/// cancel-safe) and frees the slot.
async fn accept(
    listener: &TcpListener,
    permits: &Arc<Semaphore>,
) -> (TcpStream, OwnedSemaphorePermit) {
    loop {
        let Ok(permit) = Arc::clone(permits).acquire_owned().await else {
            // The semaphore is never closed; were it, waiting forever is
            // what a loop without slots would do.
            std::future::pending::<()>().await;
            continue;
        };
        match listener.accept().await {
            Ok((stream, _)) => return (stream, permit),
            Err(e) if is_connection_error(&e) => {}
            Err(e) => {
                // Out of file descriptors (or memory): accepting again at
                // once would spin; give the process a moment to close some.
                warn!("the API cannot accept a connection: {e}");
                drop(permit);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Errors that concern one client's connection, not the listener.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        e.kind(),
        K::ConnectionRefused | K::ConnectionAborted | K::ConnectionReset | K::Interrupted
    )
}

//! Start-up errors an operator can act on: an address in use (peers or
//! API), a data directory another node is using, and a configured peer
//! that cannot be reached (a warning at the default log level, once per
//! change rather than at every retry).
//!
//! This test binary installs its own log subscriber, which keeps what the
//! nodes log at the binary's default level (info) so the tests can read it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use common::*;
use futures::future::BoxFuture;
use p2p_node::store::{RedbStore, StoreError};
use p2p_node::transport::{BoxStream, Listener, TcpTransport, Transport};
use p2p_node::{Node, NodeError, Seams, Service};

/// Everything logged in this test binary.
static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct LogSink;

impl Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(|| LogSink)
            .init();
    });
}

/// The lines logged so far that contain `needle`.
fn logged(needle: &str) -> Vec<String> {
    String::from_utf8_lossy(&LOGS.lock().unwrap())
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_node_on_the_same_peer_port_says_the_address_is_in_use() {
    capture_logs();
    let first = Node::start(config()).await.unwrap();
    let mut c = config();
    c.listen = first.local_addr();
    let Err(e) = Node::start(c).await else {
        panic!("two nodes listened on one port");
    };
    assert!(matches!(e, NodeError::Listen { addr, .. } if addr == first.local_addr()));
    assert_eq!(
        e.to_string(),
        format!(
            "cannot listen for peers on {}: address already in use (is another node running?)",
            first.local_addr()
        )
    );
    first.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_node_on_the_same_api_port_says_the_address_is_in_use() {
    capture_logs();
    let mut c = config();
    c.api = Some("127.0.0.1:0".parse().unwrap());
    let first = Service::start(c, Seams::default()).await.unwrap();
    let api = first.api_addr().unwrap();
    let mut c = config();
    c.api = Some(api);
    let Err(e) = Service::start(c, Seams::default()).await else {
        panic!("two APIs listened on one port");
    };
    assert!(matches!(e, NodeError::ApiListen { addr, .. } if addr == api));
    assert_eq!(
        e.to_string(),
        format!(
            "cannot listen for the API on {api}: address already in use (is another node running?)"
        )
    );
    first.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_in_use_is_refused_until_its_node_stops() {
    capture_logs();
    let dir = tempfile::tempdir().unwrap();
    let start = |store: RedbStore| {
        Node::start_with(
            config(),
            Seams {
                store: Box::new(store),
                ..Seams::default()
            },
        )
    };
    let first = start(RedbStore::open(dir.path()).unwrap()).await.unwrap();
    first.mine_blocks(1).await.unwrap();
    // A second node on the same directory cannot open its store: the
    // first holds the database's lock.
    for _ in 0..2 {
        let Err(e) = RedbStore::open(dir.path()) else {
            panic!("a second node opened a store in use");
        };
        assert!(
            matches!(&e, StoreError::Locked { dir: d } if d == dir.path()),
            "{e:?}"
        );
        let message = e.to_string();
        assert!(
            message.starts_with(&format!(
                "another node is using {} (its store is locked)",
                dir.path().display()
            )),
            "{message}"
        );
        // As a node's start-up error.
        let e = NodeError::from(e);
        assert!(e.to_string().contains("another node is using"), "{e}");
    }
    first.shutdown().await;
    drop(first);
    // Once it stopped, the directory is free.
    let second = start(RedbStore::open(dir.path()).unwrap()).await.unwrap();
    assert_eq!(second.snapshot().height, 1);
    second.shutdown().await;
}

/// A loopback address nobody listens on (the port was free a moment ago).
fn unused_addr() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// TCP, counting the dials to one address. The core dials a failed
/// address again only once it has handled the failure (and warned, or
/// not), so a dial started means every failure before it was handled.
struct CountingTransport {
    to: SocketAddr,
    dials: Arc<AtomicUsize>,
}

impl Transport for CountingTransport {
    fn bind(&self, addr: SocketAddr) -> BoxFuture<'_, std::io::Result<Box<dyn Listener>>> {
        TcpTransport.bind(addr)
    }

    fn connect(&self, addr: SocketAddr) -> BoxFuture<'_, std::io::Result<BoxStream>> {
        if addr == self.to {
            self.dials.fetch_add(1, Ordering::SeqCst);
        }
        TcpTransport.connect(addr)
    }
}

/// Waits until the node has dialled `dials`' address three more times:
/// at least two more failures handled since the call.
async fn three_more_dials(dials: &AtomicUsize) {
    let from = dials.load(Ordering::SeqCst);
    wait_for("three more dials", || async {
        dials.load(Ordering::SeqCst) >= from + 3
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_peer_is_warned_about_once_per_change() {
    capture_logs();
    let peer = unused_addr();
    let needle = format!("cannot reach peer {peer}");
    let mut c = config();
    c.peers = vec![peer];
    let dials = Arc::new(AtomicUsize::new(0));
    let seams = Seams {
        transport: Arc::new(CountingTransport {
            to: peer,
            dials: dials.clone(),
        }),
        ..Seams::default()
    };
    let node = Node::start_with(c, seams).await.unwrap();
    wait_for("the warning", || async { !logged(&needle).is_empty() }).await;
    let line = logged(&needle).remove(0);
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("refused"), "names the error: {line}");
    // Retries (backoff 50 ms to 500 ms) say nothing more.
    three_more_dials(&dials).await;
    assert_eq!(logged(&needle).len(), 1, "{:?}", logged(&needle));

    // Reached, then gone: said once more.
    let mut c = config();
    c.listen = peer;
    let listening = Node::start(c).await.unwrap();
    wait_for("the peer reached", || async {
        peer_count(&node).await == 1
    })
    .await;
    listening.shutdown().await;
    wait_for("the second warning", || async {
        logged(&needle).len() == 2
    })
    .await;
    three_more_dials(&dials).await;
    assert_eq!(logged(&needle).len(), 2, "{:?}", logged(&needle));
    node.shutdown().await;
}

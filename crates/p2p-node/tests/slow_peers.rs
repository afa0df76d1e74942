//! Peers that do not read: what they cost is bounded in bytes, they are
//! dropped once past the budget, and a write blocked on them never stops
//! the connection's timers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use common::*;
use futures::future::BoxFuture;
use p2p_node::transport::{BoxStream, Listener, TcpTransport, Transport};
use p2p_node::{Node, NodeHandle, Seams};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_util::codec::{Decoder, Encoder};
use wire::{Bounded, Message, WireCodec};

async fn queued_max(node: &NodeHandle) -> usize {
    node.query(|v| v.peers.iter().map(|p| p.queued_bytes).max().unwrap_or(0))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_is_dropped_at_its_byte_budget() {
    init_logs();
    const BUDGET: usize = 64 * 1024;
    let mut c = config();
    c.peer_queue_bytes = BUDGET;
    c.idle_timeout = Duration::from_secs(30);
    let node = Node::start(c).await.unwrap();
    node.mine_blocks(40).await.unwrap();
    let mut raw = live_raw_peer(&node).await;
    let genesis_hash = genesis().network_id();
    // Ask for the whole chain again and again, and never read an answer.
    let mut bytes = BytesMut::new();
    let mut codec = WireCodec::new();
    for _ in 0..4_000 {
        codec
            .encode(
                Message::GetSync {
                    locator: Bounded::truncating(vec![genesis_hash]),
                    stop: chain_core::BlockHash::ZERO,
                },
                &mut bytes,
            )
            .unwrap();
    }
    let writer = tokio::spawn(async move {
        // The node may close the socket before we are done.
        let _ = raw.framed.get_mut().write_all(&bytes).await;
        raw
    });
    let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    wait_for("the reader-less peer is dropped", || {
        let node = node.clone();
        let most = most.clone();
        async move {
            most.fetch_max(
                queued_max(&node).await,
                std::sync::atomic::Ordering::Relaxed,
            );
            peer_count(&node).await == 0
        }
    })
    .await;
    let most = most.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        most <= BUDGET,
        "{most} bytes queued, over the {BUDGET}-byte budget"
    );
    drop(writer.await);
    node.mine_blocks(1).await.unwrap();
    node.shutdown().await;
}

/// A transport whose outgoing connections are in-memory pipes of 64 bytes,
/// the far end handed to the test: a peer that stops reading blocks the
/// node's writes at once.
#[derive(Clone, Default)]
struct PipeTransport {
    far_ends: Arc<Mutex<Vec<DuplexStream>>>,
}

impl Transport for PipeTransport {
    fn bind(&self, addr: SocketAddr) -> BoxFuture<'_, io::Result<Box<dyn Listener>>> {
        TcpTransport.bind(addr)
    }

    fn connect(&self, _addr: SocketAddr) -> BoxFuture<'_, io::Result<BoxStream>> {
        Box::pin(async move {
            let (near, far) = tokio::io::duplex(64);
            self.far_ends.lock().unwrap().push(far);
            Ok(Box::new(near) as BoxStream)
        })
    }
}

/// Reads one frame from a pipe.
async fn read_frame(pipe: &mut DuplexStream, buf: &mut BytesMut) -> Message {
    let mut codec = WireCodec::new();
    loop {
        if let Some(m) = codec.decode(buf).unwrap() {
            return m;
        }
        let mut chunk = [0u8; 256];
        let n = pipe.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the node closed the pipe");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_idle_timer_fires_while_a_write_to_the_peer_is_blocked() {
    init_logs();
    let transport = PipeTransport::default();
    let mut c = config();
    c.idle_timeout = Duration::from_millis(500);
    c.ping_interval = Duration::from_secs(60);
    c.write_timeout = Duration::from_secs(60);
    let seams = Seams {
        transport: Arc::new(transport.clone()),
        ..Seams::default()
    };
    let node = Node::start_with(c, seams).await.unwrap();
    node.mine_blocks(5).await.unwrap();
    // The node dials "a peer": our end of the pipe.
    node.add_peer("127.0.0.1:9".parse().unwrap()).await.unwrap();
    let mut far = loop {
        if let Some(p) = transport.far_ends.lock().unwrap().pop() {
            break p;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let mut buf = BytesMut::new();
    let Message::Handshake(_) = read_frame(&mut far, &mut buf).await else {
        panic!("the node did not start with its handshake");
    };
    let me = RawPeer::connect(node.local_addr()).await;
    let mut out = BytesMut::new();
    let mut codec = WireCodec::new();
    let mut hello = me.hello(genesis().network_id());
    hello.listen_addr = Some("127.0.0.1:9".parse().unwrap());
    codec.encode(Message::Handshake(hello), &mut out).unwrap();
    codec.encode(Message::HandshakeAck, &mut out).unwrap();
    // Ask for the node's blocks (more than the pipe holds), then never
    // read or write again.
    let hashes = node.query(|v| v.chain.best_chain().to_vec()).await.unwrap();
    codec
        .encode(Message::GetBlocks(Bounded::truncating(hashes)), &mut out)
        .unwrap();
    far.write_all(&out).await.unwrap();
    wait_for("the node sees the peer live", || async {
        peer_count(&node).await == 1
    })
    .await;
    // The node's writes are stuck on the full pipe; its idle timer must
    // still close the connection, about half a second after we went quiet.
    wait_for("the silent peer is dropped by the idle timer", || async {
        peer_count(&node).await == 0
    })
    .await;
    drop(far);
    drop(me);
    node.shutdown().await;
}

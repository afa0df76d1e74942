//! The handshake and the message loop of one connection: a real node
//! (started once, on in-memory seams) accepts an in-memory stream; the
//! harness completes a valid handshake, then writes the fuzz input as raw
//! bytes (framing included), closes its side and reads until the node
//! closes. The node must end the connection by itself (no hang), keep
//! running, and forget the peer: no panic, and no state left behind that
//! grows with what one connection sent (libFuzzer's `-rss_limit_mb` and
//! `-malloc_limit_mb` bound the rest). Seeds are concatenated golden
//! frames (`crates/wire/tests/data/*.hex`).

#![no_main]

use std::net::SocketAddr;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use chain_core::Work;
use escrow_chain_fuzz::node::{FuzzStore, Incoming, start};
use futures::{SinkExt, StreamExt};
use libfuzzer_sys::fuzz_target;
use p2p_node::NodeHandle;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;
use tokio_util::codec::Framed;
use wire::{BoundedString, Handshake, Message, NodeId, PROTOCOL_VERSION, WireCodec};

/// Longest the node may take to close a connection whose peer closed
/// (a hang guard: normally microseconds).
const CLOSE_GUARD: Duration = Duration::from_secs(30);

struct Harness {
    rt: Runtime,
    node: NodeHandle,
    incoming: Incoming,
}

static HARNESS: LazyLock<Harness> = LazyLock::new(|| {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (node, incoming) = rt
        .block_on(start(Box::new(FuzzStore::default())))
        .expect("the node starts");
    Harness { rt, node, incoming }
});

/// Each connection comes from a new address with a new node id, so that
/// a ban earned by one input does not refuse the next.
static NEXT: AtomicU32 = AtomicU32::new(1);

fuzz_target!(|data: &[u8]| {
    let h = &*HARNESS;
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let remote = SocketAddr::from((n.to_be_bytes(), 9000));
    let mut id = [0u8; 32];
    id[..4].copy_from_slice(&n.to_be_bytes());
    h.rt.block_on(async {
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        h.incoming
            .send((Box::new(theirs), remote))
            .expect("the node's listener is there");
        let mut framed = Framed::new(ours, WireCodec::new());
        let network = h.node.snapshot().network;
        let hello = Handshake {
            version: PROTOCOL_VERSION,
            network,
            node_id: NodeId(id),
            listen_addr: None,
            best_tip: network,
            best_height: 0,
            total_work: Work::ZERO,
            user_agent: BoundedString::truncating("fuzz"),
        };
        framed
            .send(Message::Handshake(hello))
            .await
            .expect("duplex write");
        let mut live = false;
        while let Ok(Some(Ok(m))) = tokio::time::timeout(CLOSE_GUARD, framed.next()).await {
            if m == Message::HandshakeAck {
                live = true;
                break;
            }
        }
        assert!(live, "the node completes a valid handshake");
        framed
            .send(Message::HandshakeAck)
            .await
            .expect("duplex write");
        let stream = framed.into_inner();
        let (mut read, mut write) = tokio::io::split(stream);
        let writer = async {
            // The node may close first (a bad frame): then writing fails.
            let _ = write.write_all(data).await;
            let _ = write.shutdown().await;
        };
        let reader = async {
            let mut sink = [0u8; 16 * 1024];
            loop {
                match read.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        };
        let both = async { tokio::join!(writer, reader) };
        tokio::time::timeout(CLOSE_GUARD, both)
            .await
            .expect("the node closes a connection whose peer closed");
        // The connection's end reached the core before its socket closed:
        // a question asked now is answered after it.
        let peers = h
            .node
            .query(|v| v.peers.len())
            .await
            .expect("the node still runs");
        assert_eq!(peers, 0, "a closed connection leaves no peer behind");
    });
});

//! The bytes of a connection's start, split and coalesced every way: the
//! handshake and the first session messages arrive in one write, or cut at
//! every byte boundary with a pause between the pieces. An honest peer is
//! never penalised for how TCP happened to cut its bytes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use bytes::BytesMut;
use common::*;
use p2p_node::{MiningMode, Node, NodeHandle};
use tokio::io::AsyncWriteExt;
use tokio_util::codec::Encoder;
use wire::{Message, NodeId, WireCodec};

/// The frames a dialler sends: its handshake, then (after the node's
/// handshake and ack) its ack, a ping and an address request.
fn frames(raw: &RawPeer) -> (Vec<u8>, Vec<u8>) {
    let mut codec = WireCodec::new();
    let mut hello = BytesMut::new();
    codec
        .encode(
            Message::Handshake(raw.hello(genesis().network_id())),
            &mut hello,
        )
        .unwrap();
    let mut session = BytesMut::new();
    for m in [
        Message::HandshakeAck,
        Message::Ping { nonce: 0xdead_beef },
        Message::GetAddrs,
    ] {
        codec.encode(m, &mut session).unwrap();
    }
    (hello.to_vec(), session.to_vec())
}

/// Reads until the node's pong for our ping (nonce `0xdead_beef`); panics
/// on anything that ends the connection.
async fn until_pong(raw: &mut RawPeer) {
    loop {
        match raw.next().await {
            // (A pong for a ping sent before ours comes first.)
            Some(Message::Pong { nonce: 0xdead_beef }) => return,
            Some(Message::Notice { reason, text }) => {
                panic!("the node sent a notice: {reason:?} {}", text.as_str())
            }
            Some(_) => {}
            None => panic!("the node closed the connection"),
        }
    }
}

/// Dials `node` as a raw peer, sends our handshake and reads the node's
/// handshake and ack: what follows is ours to send, the ack first.
async fn dial_until_acked(node: &NodeHandle) -> RawPeer {
    let mut raw = RawPeer::connect(node.local_addr()).await;
    let hello = encoded(Message::Handshake(raw.hello(genesis().network_id())));
    raw.framed.get_mut().write_all(&hello).await.unwrap();
    for expect in ["handshake", "ack"] {
        match raw.next().await {
            Some(Message::Handshake(_)) if expect == "handshake" => {}
            Some(Message::HandshakeAck) if expect == "ack" => {}
            other => panic!("expected the node's {expect}, got {other:?}"),
        }
    }
    raw
}

async fn penalty_of(node: &NodeHandle, id: NodeId) -> Option<u32> {
    node.query(move |v| v.peers.iter().find(|p| p.node_id == id).map(|p| p.score))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_split_at_every_byte_after_the_handshake_is_understood() {
    let node = start(&[], MiningMode::Off).await;
    let probe = RawPeer::connect(node.local_addr()).await;
    let (_, session) = frames(&probe);
    drop(probe);
    for cut in 0..=session.len() {
        let mut raw = dial_until_acked(&node).await;
        let (_, session) = frames(&raw);
        // The ack and the start of the session in one write, the rest a
        // moment later.
        raw.framed
            .get_mut()
            .write_all(&session[..cut])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        raw.framed
            .get_mut()
            .write_all(&session[cut..])
            .await
            .unwrap();
        until_pong(&mut raw).await;
        assert_eq!(
            penalty_of(&node, raw.node_id).await,
            Some(0),
            "cut at byte {cut}: an honest peer, unpunished"
        );
    }
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_start_coalesced_in_one_write_is_understood() {
    let node = start(&[], MiningMode::Off).await;
    // Everything a dialler would send, in one write, before reading a byte:
    // the node must take the ack and session after its own handshake.
    let mut raw = RawPeer::connect(node.local_addr()).await;
    let (hello, session) = frames(&raw);
    let mut all = hello;
    all.extend_from_slice(&session);
    raw.framed.get_mut().write_all(&all).await.unwrap();
    until_pong(&mut raw).await;
    assert_eq!(penalty_of(&node, raw.node_id).await, Some(0));
    // And the handshake itself cut at every byte.
    for cut in 1..all.len().min(200) {
        let mut raw = RawPeer::connect(node.local_addr()).await;
        let (hello, session) = frames(&raw);
        let mut all = hello;
        all.extend_from_slice(&session);
        raw.framed.get_mut().write_all(&all[..cut]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
        raw.framed.get_mut().write_all(&all[cut..]).await.unwrap();
        until_pong(&mut raw).await;
    }
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dialling_node_takes_the_listeners_ack_and_session_cut_anywhere() {
    use futures::StreamExt;
    use tokio_util::codec::Framed;
    let node = start(&[], MiningMode::Off).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let here = listener.local_addr().unwrap();
    let probe = RawPeer::connect(node.local_addr()).await;
    let (hello_len, session_len) = {
        let (h, s) = frames(&probe);
        (h.len(), s.len())
    };
    drop(probe);
    let _ = hello_len;
    for cut in 0..=session_len {
        node.add_peer(here).await.unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        let mut framed = Framed::new(stream, WireCodec::new());
        let Some(Ok(Message::Handshake(_))) = framed.next().await else {
            panic!("the node did not start with its handshake");
        };
        // Our handshake names us with a fresh node id each round.
        let mut me = RawPeer::connect(node.local_addr()).await;
        me.framed = framed;
        let mut hello = me.hello(genesis().network_id());
        hello.listen_addr = Some(here);
        let mut codec = WireCodec::new();
        let mut bytes = BytesMut::new();
        codec.encode(Message::Handshake(hello), &mut bytes).unwrap();
        for m in [
            Message::HandshakeAck,
            Message::Ping { nonce: 0xdead_beef },
            Message::GetAddrs,
        ] {
            codec.encode(m, &mut bytes).unwrap();
        }
        let split = bytes.len() - session_len + cut;
        me.framed
            .get_mut()
            .write_all(&bytes[..split])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        me.framed
            .get_mut()
            .write_all(&bytes[split..])
            .await
            .unwrap();
        until_pong(&mut me).await;
        assert_eq!(penalty_of(&node, me.node_id).await, Some(0), "cut at {cut}");
        drop(me);
        wait_for("the node sees the connection gone", || async {
            peer_count(&node).await == 0
        })
        .await;
    }
    node.shutdown().await;
}

/// The reporter's case, as sent: after the handshake, the dialler writes its
/// `HandshakeAck` with the first bytes of a 7-byte `Ping` in one write, and
/// the rest 50 ms later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_sent_with_the_head_of_a_seven_byte_ping_is_not_punished() {
    let node = start(&[], MiningMode::Off).await;
    let mut codec = WireCodec::new();
    let mut ack = BytesMut::new();
    codec.encode(Message::HandshakeAck, &mut ack).unwrap();
    let mut ping = BytesMut::new();
    codec
        .encode(Message::Ping { nonce: 300 }, &mut ping)
        .unwrap();
    assert_eq!(ping.len(), 7);
    for cut in 1..ping.len() {
        let mut raw = dial_until_acked(&node).await;
        let mut head = ack.to_vec();
        head.extend_from_slice(&ping[..cut]);
        raw.framed.get_mut().write_all(&head).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        raw.framed.get_mut().write_all(&ping[cut..]).await.unwrap();
        loop {
            match raw.next().await {
                Some(Message::Pong { nonce }) => {
                    assert_eq!(nonce, 300, "cut at {cut}");
                    break;
                }
                Some(Message::Notice { reason, text }) => {
                    panic!(
                        "cut at {cut}: the node sent a notice: {reason:?} {}",
                        text.as_str()
                    )
                }
                Some(_) => {}
                None => panic!("cut at {cut}: the node closed the connection"),
            }
        }
        assert_eq!(
            penalty_of(&node, raw.node_id).await,
            Some(0),
            "cut at {cut}"
        );
    }
    node.shutdown().await;
}

/// One of every message an honest peer may send once the connection is
/// live (all but `Handshake`, `HandshakeAck` and `Notice`, which end or
/// break the handshake's rules), as a node would send them: none of them
/// earns a penalty when it arrives whole.
fn every_session_message() -> Vec<Message> {
    use wire::Bounded;
    let network = genesis().network_id();
    let block = child_of_genesis(coinbase_only(), meets_target);
    let tx = alice_pays_bob(0);
    vec![
        Message::Ping { nonce: 300 },
        Message::Pong { nonce: 7 },
        Message::AnnounceTxs(Bounded::truncating(vec![tx.id()])),
        Message::AnnounceBlocks(Bounded::truncating(vec![block.hash()])),
        Message::GetTxs(Bounded::truncating(vec![tx.id()])),
        Message::GetBlocks(Bounded::truncating(vec![network])),
        Message::Tx(tx),
        Message::Block(block.clone()),
        Message::GetSync {
            locator: Bounded::truncating(vec![network]),
            stop: chain_core::BlockHash::ZERO,
        },
        Message::SyncBlocks {
            blocks: Bounded::truncating(vec![block]),
            more: false,
        },
        Message::GetAddrs,
        Message::Addrs(Bounded::truncating(vec!["127.0.0.1:9".parse().unwrap()])),
        Message::NotFound {
            txs: Bounded::truncating(vec![]),
            blocks: Bounded::truncating(vec![]),
        },
    ]
}

fn encoded(m: Message) -> Vec<u8> {
    let mut bytes = BytesMut::new();
    WireCodec::new().encode(m, &mut bytes).unwrap();
    bytes.to_vec()
}

/// Sends, on a connection just past the handshake, `ack` with the first
/// `cut` bytes of `frame` in one write, the rest after a pause, then a
/// whole `Ping`; the node must answer the ping and hold nothing against
/// the peer.
async fn ack_then_split(
    node: &NodeHandle,
    raw: &mut RawPeer,
    ack: &[u8],
    frame: &[u8],
    cut: usize,
    what: &str,
) {
    let mut head = ack.to_vec();
    head.extend_from_slice(&frame[..cut]);
    raw.framed.get_mut().write_all(&head).await.unwrap();
    tokio::time::sleep(Duration::from_millis(3)).await;
    let mut rest = frame[cut..].to_vec();
    rest.extend_from_slice(&encoded(Message::Ping { nonce: 0xdead_beef }));
    raw.framed.get_mut().write_all(&rest).await.unwrap();
    until_pong(raw).await;
    assert_eq!(
        penalty_of(node, raw.node_id).await,
        Some(0),
        "{what} cut at byte {cut} of {}: an honest peer, unpunished",
        frame.len()
    );
}

/// The node listens: it receives the dialler's ack, and with it the head
/// of whatever comes next, every message kind cut at every byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_ack_every_message_cut_at_every_byte_is_understood_by_a_listening_node() {
    init_logs();
    let node = Node::start(patient_config()).await.unwrap();
    let ack = encoded(Message::HandshakeAck);
    for message in every_session_message() {
        let kind = message.kind();
        let frame = encoded(message);
        for cut in 0..frame.len() {
            let mut raw = dial_until_acked(&node).await;
            ack_then_split(&node, &mut raw, &ack, &frame, cut, kind).await;
        }
    }
    node.shutdown().await;
}

/// The node dials: it receives the listener's ack (after the listener's
/// handshake), and with it the head of whatever comes next, every message
/// kind cut at every byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_ack_every_message_cut_at_every_byte_is_understood_by_a_dialling_node() {
    use futures::StreamExt;
    use tokio_util::codec::Framed;
    init_logs();
    let node = Node::start(patient_config()).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let here = listener.local_addr().unwrap();
    let ack = encoded(Message::HandshakeAck);
    for message in every_session_message() {
        let kind = message.kind();
        let frame = encoded(message);
        for cut in 0..frame.len() {
            node.add_peer(here).await.unwrap();
            let (stream, _) = listener.accept().await.unwrap();
            let mut framed = Framed::new(stream, WireCodec::new());
            let Some(Ok(Message::Handshake(_))) = framed.next().await else {
                panic!("the node did not start with its handshake");
            };
            // A fresh node id for each round, so no ban or duplicate rule
            // carries over.
            let mut me = RawPeer::connect(node.local_addr()).await;
            me.framed = framed;
            let mut hello = me.hello(genesis().network_id());
            hello.listen_addr = Some(here);
            let hello = encoded(Message::Handshake(hello));
            me.framed.get_mut().write_all(&hello).await.unwrap();
            // Our ack goes with the next frame's head: the node's own ack
            // comes only after it has read ours.
            ack_then_split(&node, &mut me, &ack, &frame, cut, kind).await;
            drop(me);
            wait_for("the node sees the connection gone", || async {
                peer_count(&node).await == 0
            })
            .await;
        }
    }
    node.shutdown().await;
}

/// What the outside report's client really sent: its reader answered the
/// node's `GetAddrs` (sent as soon as the handshake is over) with an
/// `Addrs` written from another thread *between* the two halves of its
/// `Ping`. The bytes on the wire are then no stream of frames (the `Addrs`
/// frame sits inside the `Ping` frame), and the node refuses them as
/// `docs/PROTOCOL.md` says ("Frames", "Bad input"): an undecodable frame,
/// penalty 100, a ban. Written whole, one after the other, the same frames
/// are understood. The node keeps serving either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_written_inside_another_is_refused_and_the_same_frames_whole_are_understood() {
    init_logs();
    let node = Node::start(patient_config()).await.unwrap();
    let ack = encoded(Message::HandshakeAck);
    let ping = encoded(Message::Ping { nonce: 300 });
    let addrs = encoded(Message::Addrs(wire::Bounded::truncating(vec![
        "127.0.0.1:9".parse().unwrap(),
    ])));
    for (cut, interleaved) in [(3, true), (3, false), (1, true), (5, true)] {
        let mut raw = dial_until_acked(&node).await;
        let mut bytes = ack.clone();
        bytes.extend_from_slice(&ping[..cut]);
        if interleaved {
            bytes.extend_from_slice(&addrs);
            bytes.extend_from_slice(&ping[cut..]);
        } else {
            bytes.extend_from_slice(&ping[cut..]);
            bytes.extend_from_slice(&addrs);
        }
        raw.framed.get_mut().write_all(&bytes).await.unwrap();
        let id = raw.node_id;
        if interleaved {
            // No pong: the connection ends, and the peer is banned.
            loop {
                match raw.next().await {
                    Some(Message::Pong { nonce: 300 }) => {
                        panic!("cut {cut}: a broken stream was understood")
                    }
                    Some(_) => {}
                    None => break,
                }
            }
            wait_for("the peer banned", || async {
                node.query(move |v| v.bans.iter().any(|(k, _)| *k == p2p_node::BanKey::Node(id)))
                    .await
                    .unwrap()
            })
            .await;
        } else {
            loop {
                match raw.next().await {
                    Some(Message::Pong { nonce: 300 }) => break,
                    Some(Message::Notice { reason, text }) => {
                        panic!("cut {cut}: {reason:?} {}", text.as_str())
                    }
                    Some(_) => {}
                    None => panic!("cut {cut}: the node closed the connection"),
                }
            }
            assert_eq!(penalty_of(&node, id).await, Some(0));
        }
    }
    // The node still serves an honest peer.
    let mut honest = RawPeer::connect(node.local_addr()).await;
    honest.handshake(genesis().network_id()).await.unwrap();
    node.shutdown().await;
}

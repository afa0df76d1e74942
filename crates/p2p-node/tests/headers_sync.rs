//! Headers-first sync through real sockets: a node syncing from peers
//! that serve slowly, stall or lie about bodies still ends on the right
//! chain, and headers that break a rule are refused before any body is
//! asked for (docs/PROTOCOL.md, "Sync").

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chain_core::{Block, BlockHash, ChainParams, Header, Target};
use common::*;
use escrow::Tx;
use futures::{SinkExt, StreamExt};
use p2p_node::{Node, NodeHandle};
use wire::{Bounded, Message, NodeId};

/// A chain of `n` blocks on the test network, each with a coinbase and one
/// transfer; its blocks, oldest first, and the chain.
fn source_chain(n: u64) -> (Vec<Block<Tx>>, p2p_node::core::NodeChain) {
    let mut chain = genesis().chain().unwrap();
    let mut blocks = Vec::new();
    for i in 0..n {
        let txs = vec![
            Tx::Coinbase {
                to: addr("eve"),
                height: i + 1,
            },
            Tx::Signed(alice_pays_bob(i)),
        ];
        let block = child_of_tip(&chain, txs, meets_target);
        chain.insert(block.clone(), now_ms()).unwrap();
        blocks.push(block);
    }
    (blocks, chain)
}

/// How a fake peer answers `GetBlocks`.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Serves {
    /// Each block after this delay.
    Slowly(Duration),
    /// Never.
    Nothing,
    /// At once, each body with its transfer left out (it no longer
    /// matches its header's merkle root).
    WrongBodies,
}

/// A peer that dialled `node` claiming `tip`'s height and work, then
/// answers headers from `headers` (by height, genesis first) and bodies
/// from `blocks` as `serves` says; everything the node sent it is
/// recorded in `heard`.
struct FakePeer {
    node_id: NodeId,
    heard: Arc<Mutex<Vec<Message>>>,
    task: tokio::task::JoinHandle<()>,
}

async fn fake_peer(
    node: &NodeHandle,
    headers: Vec<Header>,
    blocks: HashMap<BlockHash, Block<Tx>>,
    claim: (u64, chain_core::Work),
    serves: Serves,
) -> FakePeer {
    let mut raw = RawPeer::connect(node.local_addr()).await;
    let network = genesis().network_id();
    let mut hello = raw.hello(network);
    (hello.best_height, hello.total_work) = claim;
    raw.framed.send(Message::Handshake(hello)).await.unwrap();
    assert!(matches!(raw.next().await, Some(Message::Handshake(_))));
    assert!(matches!(raw.next().await, Some(Message::HandshakeAck)));
    raw.framed.send(Message::HandshakeAck).await.unwrap();
    let heard = Arc::new(Mutex::new(Vec::new()));
    let (node_id, log) = (raw.node_id, heard.clone());
    let task = tokio::spawn(async move {
        while let Some(Ok(message)) = raw.framed.next().await {
            log.lock().unwrap().push(message.clone());
            let answers = match message {
                Message::Ping { nonce } => vec![Message::Pong { nonce }],
                Message::GetHeaders { locator, .. } => {
                    let from = locator
                        .iter()
                        .find_map(|h| headers.iter().position(|x| x.hash() == *h))
                        .unwrap_or(0);
                    let after: Vec<Header> = headers.iter().skip(from + 1).copied().collect();
                    vec![Message::Headers(Bounded::truncating(after))]
                }
                Message::GetBlocks(hashes) => {
                    let found = hashes.iter().filter_map(|h| blocks.get(h).cloned());
                    match serves {
                        Serves::Nothing => Vec::new(),
                        Serves::WrongBodies => found
                            .map(|mut b| {
                                b.transactions.truncate(1);
                                Message::Block(b)
                            })
                            .collect(),
                        Serves::Slowly(delay) => {
                            for b in found {
                                tokio::time::sleep(delay).await;
                                if raw.framed.send(Message::Block(b)).await.is_err() {
                                    return;
                                }
                            }
                            Vec::new()
                        }
                    }
                }
                _ => Vec::new(),
            };
            for m in answers {
                if raw.framed.send(m).await.is_err() {
                    return;
                }
            }
        }
    });
    FakePeer {
        node_id,
        heard,
        task,
    }
}

/// A node that accepts the fake peers and gives up on a body after half
/// a second (so the test does not wait long for reassignments).
async fn syncing_node() -> NodeHandle {
    init_logs();
    let mut c = patient_config();
    c.request_timeout = Duration::from_millis(500);
    Node::start(c).await.unwrap()
}

/// `node`'s score for the peer `id` (`None` if it is not connected).
async fn score_of(node: &NodeHandle, id: NodeId) -> Option<u32> {
    node.query(move |v| v.peers.iter().find(|p| p.node_id == id).map(|p| p.score))
        .await
        .unwrap()
}

/// Whether `node` bans the peer `id`.
async fn bans(node: &NodeHandle, id: NodeId) -> bool {
    node.query(move |v| v.bans.iter().any(|(k, _)| *k == p2p_node::BanKey::Node(id)))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_syncs_from_a_slow_a_stalling_and_a_lying_peer_and_only_the_liar_pays() {
    let (blocks, source) = source_chain(48);
    let headers: Vec<Header> = source
        .best_chain()
        .iter()
        .map(|h| source.header(h).unwrap())
        .collect();
    let by_hash: HashMap<BlockHash, Block<Tx>> =
        blocks.iter().map(|b| (b.hash(), b.clone())).collect();
    let claim = (source.height(), source.total_work());
    let node = syncing_node().await;
    let slow = fake_peer(
        &node,
        headers.clone(),
        by_hash.clone(),
        claim,
        Serves::Slowly(Duration::from_millis(20)),
    )
    .await;
    let stalling = fake_peer(
        &node,
        headers.clone(),
        by_hash.clone(),
        claim,
        Serves::Nothing,
    )
    .await;
    let liar = fake_peer(&node, headers, by_hash, claim, Serves::WrongBodies).await;
    // The slow peer's score is watched throughout: a penalty decays.
    let mut slow_worst = 0;
    let mut stalling_worst = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while tip(&node).await.0 != source.tip() {
        assert!(tokio::time::Instant::now() < deadline, "the sync hangs");
        let score = |id| score_of(&node, id);
        slow_worst = slow_worst.max(score(slow.node_id).await.unwrap_or(u32::MAX));
        stalling_worst = stalling_worst.max(score(stalling.node_id).await.unwrap_or(u32::MAX));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(ledger(&node).await, *source.state(), "the same ledger");
    let liar_paid = bans(&node, liar.node_id).await
        || score_of(&node, liar.node_id).await.is_some_and(|s| s > 0);
    assert!(liar_paid, "the peer that served wrong bodies is penalised");
    assert_eq!(
        slow_worst, 0,
        "the slow peer is never penalised nor dropped"
    );
    assert_eq!(stalling_worst, 0, "stalling is no offence either");
    // The stalling peer was asked for bodies: the others got its share.
    let asked = |p: &FakePeer| {
        p.heard
            .lock()
            .unwrap()
            .iter()
            .any(|m| matches!(m, Message::GetBlocks(_)))
    };
    assert!(asked(&stalling) && asked(&slow));
    for p in [slow, stalling, liar] {
        p.task.abort();
    }
}

/// Headers that break a rule: the peer is penalised and no body of them
/// (nor of anything) is ever asked of it.
async fn refused_before_any_body(node: &NodeHandle, answer: Vec<Header>, claim_height: u64) {
    let mut all = vec![genesis().block().header];
    all.extend(answer);
    let claim = (claim_height, chain_core::Work::from_u128(1 << 60));
    let peer = fake_peer(node, all, HashMap::new(), claim, Serves::Nothing).await;
    let id = peer.node_id;
    wait_for("the peer to be penalised", || async {
        bans(node, id).await || score_of(node, id).await.is_some_and(|s| s > 0)
    })
    .await;
    // The penalty is given where the answer is checked, before any body
    // would be asked: once it shows, a request would have been queued on
    // the connection. What the node sends a peer arrives in order, so a
    // ping it sends later (on its tick), or the connection's end (a ban),
    // comes after any such request: then everything before it was heard.
    let pings = |p: &FakePeer| {
        p.heard
            .lock()
            .unwrap()
            .iter()
            .filter(|m| matches!(m, Message::Ping { .. }))
            .count()
    };
    let before = pings(&peer);
    wait_for("a later ping, or the connection's end", || async {
        peer.task.is_finished() || pings(&peer) > before
    })
    .await;
    let heard = peer.heard.lock().unwrap().clone();
    assert!(
        heard
            .iter()
            .any(|m| matches!(m, Message::GetHeaders { .. })),
        "headers were asked: {heard:?}"
    );
    assert!(
        !heard.iter().any(|m| matches!(m, Message::GetBlocks(_))),
        "no body was asked: {heard:?}"
    );
    assert_eq!(tip(node).await.1, 0);
    peer.task.abort();
}

#[tokio::test]
async fn headers_that_break_the_difficulty_rule_or_the_linkage_are_refused_before_any_body() {
    let (blocks, _) = source_chain(4);
    let headers: Vec<Header> = blocks.iter().map(|b| b.header).collect();
    let node = syncing_node().await;
    // The difficulty rule: the second header claims an easier target than
    // the network's (8 leading zero bits instead of 10), and meets it.
    let mut easy = headers[1];
    easy.target = Target::from_leading_zero_bits(8).to_compact();
    while !meets_target(&easy) {
        easy.nonce += 1;
    }
    assert_eq!(
        ChainParams::with_target_bits(10).pow_limit().to_compact(),
        headers[1].target
    );
    refused_before_any_body(&node, vec![headers[0], easy], 2).await;
    // The linkage: the third header follows the first.
    refused_before_any_body(&node, vec![headers[0], headers[2], headers[3]], 4).await;
    // A header whose hash does not meet its own target.
    let mut unworked = headers[1];
    while meets_target(&unworked) {
        unworked.nonce += 1;
    }
    refused_before_any_body(&node, vec![headers[0], unworked], 2).await;
}

/// A peer downloading the chain once, headers then bodies in any order,
/// is not charged for it, however small the upload allowance; asking the
/// same again is charged, and past the allowance refused and penalised
/// (docs/PROTOCOL.md, "Connection limits").
#[tokio::test]
async fn a_first_download_is_free_and_asking_again_is_charged() {
    init_logs();
    let mut c = patient_config();
    // 2 kB at once, refilled at 1 byte a second: one of the 40 blocks
    // (about 150 bytes each) asked twice fits, the whole chain does not.
    (c.upload_burst, c.upload_rate) = (2_000, 1);
    c.mining = p2p_node::MiningMode::Off;
    let node = Node::start(c).await.unwrap();
    node.mine_blocks(40).await.unwrap();
    let mut raw = live_raw_peer(&node).await;
    let network = genesis().network_id();
    // Headers from genesis: 40, free.
    raw.framed
        .send(Message::GetHeaders {
            locator: Bounded::truncating(vec![network]),
            stop: BlockHash::ZERO,
        })
        .await
        .unwrap();
    let headers = loop {
        match raw.next().await.expect("an answer") {
            Message::Headers(h) => break h.to_vec(),
            _ => continue,
        }
    };
    assert_eq!(headers.len(), 40);
    // Every body once, last first: free.
    let mut hashes: Vec<BlockHash> = headers.iter().map(Header::hash).collect();
    hashes.reverse();
    raw.framed
        .send(Message::GetBlocks(Bounded::truncating(hashes.clone())))
        .await
        .unwrap();
    let mut got = 0;
    while got < 40 {
        if let Message::Block(_) = raw.next().await.expect("a block") {
            got += 1;
        }
    }
    assert_eq!(score_of(&node, raw.node_id).await, Some(0), "not charged");
    // The same again: charged, and past the allowance refused.
    raw.framed
        .send(Message::GetBlocks(Bounded::truncating(hashes)))
        .await
        .unwrap();
    let id = raw.node_id;
    wait_for("the repeated download to be refused", || async {
        score_of(&node, id).await.is_some_and(|s| s > 0)
    })
    .await;
    node.shutdown().await;
}

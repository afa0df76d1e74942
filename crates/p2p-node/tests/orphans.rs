//! The pool of gossiped transactions that wait for an earlier nonce (the
//! orphan transactions) cannot be filled by a peer so that an honest
//! transaction that arrives before its predecessor is lost: every way to
//! fill it is tried through real sockets (docs/PROTOCOL.md, "Orphan
//! transactions").

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chain_core::TxId;
use common::*;
use escrow::{Amount, Keypair, Payload, SignedTx};
use futures::SinkExt;
use p2p_node::mempool::orphans::{MAX_NONCE_GAP, MAX_ORPHANS, MAX_PER_PEER, MAX_PER_SENDER};
use p2p_node::{Node, NodeHandle};
use wire::{Bounded, Message};

/// A transfer of 1 to bob by `key` with this nonce, signed for the test
/// network.
fn pays_bob(key: &Keypair, nonce: u64) -> SignedTx {
    SignedTx::sign(
        key,
        nonce,
        escrow::Amount::new(1),
        genesis().network_id(),
        Payload::Transfer {
            to: addr("bob"),
            amount: Amount::new(1),
        },
    )
}

/// A key nobody funded, the `i`th.
fn stranger(i: u32) -> Keypair {
    let mut seed = [0x5a; 32];
    seed[..4].copy_from_slice(&i.to_le_bytes());
    Keypair::from_seed(seed)
}

/// Sends `txs` as `Tx` frames, then waits until the node's core has
/// handled them all: it answers a request for an id it lacks with
/// `NotFound`, in order after everything the peer sent before.
async fn send_and_settle(raw: &mut RawPeer, txs: Vec<SignedTx>) {
    for tx in txs {
        raw.framed.feed(Message::Tx(tx)).await.unwrap();
    }
    let probe = TxId::from_bytes([0xee; 32]);
    raw.framed
        .send(Message::GetTxs(Bounded::truncating(vec![probe])))
        .await
        .unwrap();
    loop {
        match raw.next().await {
            Some(Message::NotFound { txs, .. }) if txs.contains(&probe) => return,
            Some(_) => {}
            None => panic!("the node closed the connection"),
        }
    }
}

/// Alice's pending nonce on `node`.
async fn alice_pending_nonce(node: &NodeHandle) -> u64 {
    node.query(|v| v.mempool.pending_ledger().nonce(&addr("alice")))
        .await
        .unwrap()
}

/// An honest peer sends alice's next nonce but one before her next (as
/// when the two were asked of different peers); both end up pending.
async fn honest_orphan_connects(node: &NodeHandle) {
    let next = alice_pending_nonce(node).await;
    let mut honest = live_raw_peer(node).await;
    let alice = escrow::dev::keypair("alice").unwrap();
    send_and_settle(&mut honest, vec![pays_bob(&alice, next + 1)]).await;
    send_and_settle(&mut honest, vec![pays_bob(&alice, next)]).await;
    wait_for(
        "alice's waiting transaction admitted after its predecessor",
        || async { alice_pending_nonce(node).await == next + 2 },
    )
    .await;
}

/// The reporter's attack: one peer sends 1,000 transactions with future
/// nonces from 10 keys that hold nothing, then disconnects; an honest
/// transaction that arrives before its predecessor must still be kept and
/// admitted when the predecessor comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_orphans_from_unfunded_keys_does_not_lose_an_honest_orphan() {
    init_logs();
    let node = Node::start(patient_config()).await.unwrap();
    let mut flooder = live_raw_peer(&node).await;
    let mut flood = Vec::new();
    for k in 0..10 {
        let key = stranger(k);
        for nonce in 1..=100 {
            flood.push(pays_bob(&key, nonce));
        }
    }
    send_and_settle(&mut flooder, flood).await;
    drop(flooder);
    honest_orphan_connects(&node).await;
    node.shutdown().await;
}

/// Funds `count` fresh keys from alice (1,000 each, one block); returns
/// them.
async fn funded_keys(node: &NodeHandle, first: u32, count: u32) -> Vec<Keypair> {
    let alice = escrow::dev::keypair("alice").unwrap();
    let start = alice_pending_nonce(node).await;
    let keys: Vec<Keypair> = (first..first + count).map(stranger).collect();
    for (i, key) in keys.iter().enumerate() {
        let tx = SignedTx::sign(
            &alice,
            start + i as u64,
            escrow::Amount::new(1),
            genesis().network_id(),
            Payload::Transfer {
                to: key.address(),
                amount: Amount::new(1_000),
            },
        );
        node.submit(tx).await.unwrap();
    }
    node.mine_blocks(1).await.unwrap();
    let addresses: Vec<escrow::Address> = keys.iter().map(Keypair::address).collect();
    let funded = node
        .query(move |v| {
            addresses
                .iter()
                .all(|a| !v.chain.state().balance(a).is_zero())
        })
        .await
        .unwrap();
    assert!(funded, "the keys are funded");
    keys
}

/// How many orphans the node holds.
async fn orphan_count(node: &NodeHandle) -> usize {
    node.query(|v| v.mempool.orphans().len()).await.unwrap()
}

/// One peer, funded senders, gaps up to and past the limit: it holds at
/// most its share, the honest orphan still connects, and its orphans go
/// when it disconnects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_peer_with_funded_senders_holds_at_most_its_share_until_it_leaves() {
    init_logs();
    let node = Node::start(patient_config()).await.unwrap();
    let keys = funded_keys(&node, 100, 10).await;
    let mut flooder = live_raw_peer(&node).await;
    let mut flood = Vec::new();
    for key in &keys {
        for nonce in (1..=MAX_NONCE_GAP).chain([MAX_NONCE_GAP + 1, 10_000, u64::MAX]) {
            flood.push(pays_bob(key, nonce));
        }
    }
    send_and_settle(&mut flooder, flood).await;
    let far = keys[0].address();
    let (held, too_far) = node
        .query(move |v| {
            (
                v.mempool.orphans().len(),
                v.mempool.orphans().contains(&far, MAX_NONCE_GAP + 1)
                    || v.mempool.orphans().contains(&far, 10_000),
            )
        })
        .await
        .unwrap();
    assert_eq!(held, MAX_PER_PEER, "one peer holds its share, no more");
    assert!(!too_far, "nonces past the gap are refused");
    // The flooder is still connected; an honest orphan still connects.
    honest_orphan_connects(&node).await;
    drop(flooder);
    wait_for("the flooder's orphans dropped when it left", || async {
        orphan_count(&node).await == 0
    })
    .await;
    node.shutdown().await;
}

/// Many peers, one sender: the sender holds at most its share, whoever
/// sends its transactions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_peers_cannot_fill_the_pool_with_one_sender() {
    init_logs();
    let node = Node::start(patient_config()).await.unwrap();
    let keys = funded_keys(&node, 200, 1).await;
    let sender = keys[0].address();
    let mut peers = Vec::new();
    for p in 0..5 {
        let mut raw = live_raw_peer(&node).await;
        let txs = (1..=MAX_NONCE_GAP)
            .filter(|n| n % 5 == p)
            .map(|n| pays_bob(&keys[0], n))
            .collect();
        send_and_settle(&mut raw, txs).await;
        peers.push(raw);
    }
    let (held, of_sender) = node
        .query(move |v| {
            (
                v.mempool.orphans().len(),
                v.mempool.orphans().of_sender(&sender),
            )
        })
        .await
        .unwrap();
    assert_eq!(of_sender, MAX_PER_SENDER);
    assert_eq!(held, MAX_PER_SENDER);
    honest_orphan_connects(&node).await;
    node.shutdown().await;
}

/// Eleven peers fill the pool with funded senders' orphans: an honest
/// orphan that came before them stays (each flooder displaces only those
/// holding more than it), and connects when its predecessor arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_that_fill_the_pool_do_not_displace_an_honest_orphan() {
    init_logs();
    let node = Node::start(patient_config()).await.unwrap();
    let senders = (11 * MAX_PER_PEER).div_ceil(MAX_PER_SENDER) as u32;
    let keys = funded_keys(&node, 300, senders).await;
    let next = alice_pending_nonce(&node).await;
    let alice = escrow::dev::keypair("alice").unwrap();
    let mut honest = live_raw_peer(&node).await;
    send_and_settle(&mut honest, vec![pays_bob(&alice, next + 1)]).await;
    // Each sender's 25 orphans, spread over the flooders.
    let mut all = Vec::new();
    for key in &keys {
        for nonce in 1..=MAX_PER_SENDER as u64 {
            all.push(pays_bob(key, nonce));
        }
    }
    let mut flooders = Vec::new();
    for chunk in all.chunks(MAX_PER_PEER) {
        let mut raw = live_raw_peer(&node).await;
        send_and_settle(&mut raw, chunk.to_vec()).await;
        flooders.push(raw);
    }
    assert_eq!(orphan_count(&node).await, MAX_ORPHANS, "full");
    send_and_settle(&mut honest, vec![pays_bob(&alice, next)]).await;
    wait_for("alice's waiting transaction admitted", || async {
        alice_pending_nonce(&node).await == next + 2
    })
    .await;
    node.shutdown().await;
}

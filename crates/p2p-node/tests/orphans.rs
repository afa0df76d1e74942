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
use p2p_node::{Node, NodeHandle};
use wire::{Bounded, Message};

/// A transfer of 1 to bob by `key` with this nonce, signed for the test
/// network.
fn pays_bob(key: &Keypair, nonce: u64) -> SignedTx {
    SignedTx::sign(
        key,
        nonce,
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

/// An honest peer sends alice's nonce 1 before her nonce 0 (as when the two
/// were asked of different peers); both end up pending.
async fn honest_orphan_connects(node: &NodeHandle) {
    let mut honest = live_raw_peer(node).await;
    let alice = escrow::dev::keypair("alice").unwrap();
    send_and_settle(&mut honest, vec![pays_bob(&alice, 1)]).await;
    send_and_settle(&mut honest, vec![pays_bob(&alice, 0)]).await;
    wait_for("alice's nonce 1 admitted after her nonce 0", || async {
        alice_pending_nonce(node).await == 2
    })
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

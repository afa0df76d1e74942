//! Transactions travel in batches: those a peer sends together are
//! checked as one batch of signatures (each still getting the single
//! rule's verdict) and announced onwards together, in the order they were
//! admitted, each id once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chain_core::TxId;
use common::*;
use escrow::SignedTx;
use futures::SinkExt;
use p2p_node::{MiningMode, NodeHandle};
use wire::Message;

/// Alice's transfers to bob with nonces `0..n`.
fn transfers(n: u64) -> Vec<SignedTx> {
    (0..n).map(alice_pays_bob).collect()
}

/// Writes every transaction as a `Tx` frame, all in one write.
async fn send_together(raw: &mut RawPeer, txs: &[SignedTx]) {
    for tx in txs {
        raw.framed.feed(Message::Tx(tx.clone())).await.unwrap();
    }
    SinkExt::<Message>::flush(&mut raw.framed).await.unwrap();
}

/// The ids `raw` is told of, in order, and in how many announcements,
/// until `want` distinct ids have come.
async fn announced(raw: &mut RawPeer, want: usize) -> (Vec<TxId>, usize) {
    let mut ids = Vec::new();
    let mut messages = 0;
    while ids.len() < want {
        match raw.next().await {
            Some(Message::AnnounceTxs(inv)) => {
                messages += 1;
                ids.extend(inv.iter().copied());
            }
            Some(_) => {}
            None => panic!("the connection ended after {} ids", ids.len()),
        }
    }
    (ids, messages)
}

async fn pending(node: &NodeHandle) -> Vec<TxId> {
    node.query(|v| v.mempool.txs().iter().map(SignedTx::id).collect())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_sent_together_are_admitted_and_announced_together_in_order() {
    let node = start(&[], MiningMode::Off).await;
    let mut sender = live_raw_peer(&node).await;
    let mut listener = live_raw_peer(&node).await;
    let txs = transfers(40);
    send_together(&mut sender, &txs).await;

    let (ids, messages) = announced(&mut listener, txs.len()).await;
    let expected: Vec<TxId> = txs.iter().map(SignedTx::id).collect();
    assert_eq!(ids, expected, "each id once, in the order admitted");
    assert!(
        messages < txs.len(),
        "40 transactions that came together were announced in {messages} messages"
    );
    // Nothing is announced back to the peer that sent them.
    assert_eq!(pending(&node).await, expected);
    sender
        .framed
        .send(Message::Ping { nonce: 7 })
        .await
        .unwrap();
    loop {
        match sender.next().await {
            Some(Message::Pong { nonce: 7 }) => break,
            Some(Message::AnnounceTxs(inv)) => {
                panic!("the sender was told of its own transactions: {inv:?}")
            }
            Some(_) => {}
            None => panic!("the sender was dropped"),
        }
    }
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_signature_in_a_batch_is_refused_alone_and_the_rest_judged_singly() {
    let node = start(&[], MiningMode::Off).await;
    let mut sender = live_raw_peer(&node).await;
    let mut txs = transfers(10);
    // The sixth is spoiled: the five before it apply; the four after it
    // wait for a nonce that never comes.
    txs[5].signature.0[9] ^= 0x40;
    send_together(&mut sender, &txs).await;
    let good: Vec<TxId> = txs[..5].iter().map(SignedTx::id).collect();
    wait_for("the five good transactions pending", || async {
        pending(&node).await == good
    })
    .await;
    // The spoiled one was judged by the single rule: the sender is
    // penalised for it (20 points), as for one sent alone.
    wait_for("the sender penalised", || async {
        node.query(|v| v.peers.iter().all(|p| p.score == 20))
            .await
            .unwrap()
    })
    .await;
    assert_eq!(pending(&node).await, good);
    node.shutdown().await;
}

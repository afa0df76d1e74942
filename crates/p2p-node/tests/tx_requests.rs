//! How many transactions the node asks of one peer at a time: a peer that
//! announces thousands of ids and never delivers is asked for a bounded
//! number, the requests time out so another announcer is asked, and an
//! honest peer that announces more than the bound still has every
//! transaction fetched (docs/PROTOCOL.md, "Gossip").

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use chain_core::TxId;
use common::*;
use futures::SinkExt;
use p2p_node::{Node, NodeHandle};
use wire::{Bounded, Message};

/// The most transaction ids the node asks of one peer at a time.
const MAX_IN_FLIGHT: usize = 100;

/// The `i`th made-up transaction id.
fn fake_id(i: u32) -> TxId {
    let mut b = [0x42; 32];
    b[..4].copy_from_slice(&i.to_le_bytes());
    TxId::from_bytes(b)
}

/// Announces `ids` (in messages of at most 1,000), then reads what the
/// node sends until its core has handled the announcements (the answer to
/// a request for an id it lacks comes after them); returns the ids it
/// asked for meanwhile.
async fn announce_and_collect(raw: &mut RawPeer, ids: &[TxId]) -> Vec<TxId> {
    for chunk in ids.chunks(wire::message::MAX_INVENTORY) {
        raw.framed
            .feed(Message::AnnounceTxs(Bounded::truncating(chunk.to_vec())))
            .await
            .unwrap();
    }
    probe_and_collect(raw).await
}

/// Sends a request for an id the node lacks and returns the ids the node
/// asked for until its `NotFound` answer came.
async fn probe_and_collect(raw: &mut RawPeer) -> Vec<TxId> {
    let probe = TxId::from_bytes([0xee; 32]);
    raw.framed
        .send(Message::GetTxs(Bounded::truncating(vec![probe])))
        .await
        .unwrap();
    let mut asked = Vec::new();
    loop {
        match raw.next().await {
            Some(Message::GetTxs(ids)) => asked.extend(ids.iter().copied()),
            Some(Message::NotFound { txs, .. }) if txs.contains(&probe) => return asked,
            Some(_) => {}
            None => panic!("the node closed the connection"),
        }
    }
}

/// The reporter's case: a peer announces 10,001 ids and never delivers;
/// the node asks it for at most 100 at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_announces_ten_thousand_ids_is_asked_for_a_bounded_number() {
    let node = patient_node(Duration::from_secs(60)).await;
    let mut raw = live_raw_peer(&node).await;
    let ids: Vec<TxId> = (0..10_001).map(fake_id).collect();
    let asked = announce_and_collect(&mut raw, &ids).await;
    assert_eq!(
        asked.len(),
        MAX_IN_FLIGHT,
        "asked for {} ids at once",
        asked.len()
    );
    assert_eq!(asked, ids[..MAX_IN_FLIGHT], "in the order announced");
    node.shutdown().await;
}

/// A node whose peers may stay silent for the length of a test (raw peers
/// do not ping), with the given request timeout.
async fn patient_node(request_timeout: Duration) -> NodeHandle {
    init_logs();
    let mut c = patient_config();
    c.request_timeout = request_timeout;
    Node::start(c).await.unwrap()
}

/// An honest peer that announces 300 transactions at once, more than the
/// bound, and answers every request: it is asked for at most 100 at a
/// time, and every transaction is fetched and pooled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_honest_peer_that_announces_more_than_the_bound_has_all_fetched() {
    let node = patient_node(Duration::from_secs(60)).await;
    let mut raw = live_raw_peer(&node).await;
    let mut txs: HashMap<TxId, escrow::SignedTx> = HashMap::new();
    let mut ids = Vec::new();
    for who in escrow::dev::DEV_ACCOUNTS {
        for nonce in 0..50 {
            let tx = sign(
                who,
                nonce,
                escrow::Payload::Transfer {
                    to: addr("bob"),
                    amount: escrow::Amount::new(1),
                },
            );
            ids.push(tx.id());
            txs.insert(tx.id(), tx);
        }
    }
    raw.framed
        .send(Message::AnnounceTxs(Bounded::truncating(ids.clone())))
        .await
        .unwrap();
    let mut asked = Vec::new();
    while asked.len() < ids.len() {
        match raw.next().await {
            Some(Message::GetTxs(wanted)) => {
                assert!(wanted.len() <= MAX_IN_FLIGHT, "{} at once", wanted.len());
                for id in wanted.iter() {
                    raw.framed
                        .feed(Message::Tx(txs.get(id).unwrap().clone()))
                        .await
                        .unwrap();
                }
                SinkExt::<Message>::flush(&mut raw.framed).await.unwrap();
                asked.extend(wanted.iter().copied());
            }
            Some(_) => {}
            None => panic!("the node closed the connection"),
        }
    }
    assert_eq!(asked, ids, "each asked once, in the order announced");
    wait_for("all 300 pooled", || async {
        node.query(|v| v.mempool.len()).await.unwrap() == 300
    })
    .await;
    node.shutdown().await;
}

/// A peer that never delivers: its request times out and the transaction
/// is asked of another peer that announced it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_times_out_goes_to_another_announcer() {
    // The timeout must outlast the second peer's handshake and
    // announcement, however busy the machine: 5 s (the core checks it on
    // its 100 ms tick), and `RawPeer::next` waits 10 s for the request.
    let node = patient_node(Duration::from_secs(5)).await;
    let tx = alice_pays_bob(0);
    let id = tx.id();
    let mut silent = live_raw_peer(&node).await;
    let asked = announce_and_collect(&mut silent, &[id]).await;
    assert_eq!(asked, vec![id]);
    let mut other = live_raw_peer(&node).await;
    let asked = announce_and_collect(&mut other, &[id]).await;
    assert!(asked.is_empty(), "asked of one peer at a time");
    // Once the silent peer's request times out, the other is asked.
    loop {
        match other.next().await {
            Some(Message::GetTxs(ids)) if ids.contains(&id) => break,
            Some(_) => {}
            None => panic!("the node closed the connection"),
        }
    }
    other.framed.send(Message::Tx(tx)).await.unwrap();
    wait_for("the transaction pooled", || async {
        node.query(move |v| v.mempool.contains(&id)).await.unwrap()
    })
    .await;
    node.shutdown().await;
}

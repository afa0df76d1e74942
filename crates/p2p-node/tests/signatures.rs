//! The signature rule on a live node: a crafted signature gets the same
//! typed reason from the HTTP API as from `escrow`'s single check, is
//! refused (and penalised) on gossip, and a block carrying one is refused
//! and changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use escrow::{Amount, Payload, PublicKey, Signature, SignatureError, SignedTx, Tx, TxBody, dev};
use futures::SinkExt;
use p2p_node::{MiningMode, Seams, Service};
use serde_json::json;
use wire::Message;

/// One crafted transaction per reason of the rule.
fn crafted() -> Vec<(SignedTx, SignatureError)> {
    let network = genesis().network_id();
    let body = |sender: [u8; 32]| TxBody {
        sender: PublicKey(sender),
        nonce: 0,
        fee: escrow::Amount::new(1),
        network,
        payload: Payload::Transfer {
            to: dev::address("eve").unwrap(),
            amount: Amount::new(1),
        },
    };
    let mut identity = [0u8; 32];
    identity[0] = 1;
    // (R = identity, S = 0) verifies for the identity key on any message.
    let mut theft_sig = [0u8; 64];
    theft_sig[0] = 1;
    let mut non_canonical = identity;
    non_canonical[31] |= 0x80;
    let mut not_a_point = [0u8; 32];
    not_a_point[0] = 2;
    let alice = dev::keypair("alice").unwrap();
    let honest = SignedTx::sign(
        &alice,
        0,
        escrow::Amount::new(1),
        network,
        Payload::Transfer {
            to: dev::address("bob").unwrap(),
            amount: Amount::new(1),
        },
    );
    let mut high_s = honest.clone();
    high_s.signature.0[63] |= 0xf0;
    let mut tampered = honest.clone();
    tampered.signature.0[10] ^= 1;
    let signed = |sender, sig| SignedTx {
        body: body(sender),
        signature: Signature(sig),
    };
    vec![
        (signed(identity, theft_sig), SignatureError::WeakKey),
        (
            signed(non_canonical, theft_sig),
            SignatureError::NonCanonicalKey,
        ),
        (signed(not_a_point, theft_sig), SignatureError::InvalidKey),
        (high_s, SignatureError::NonCanonicalS),
        (tampered, SignatureError::Invalid),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_gives_each_crafted_signature_its_reason() {
    init_logs();
    let mut c = config();
    c.api = Some("127.0.0.1:0".parse().unwrap());
    let node = Service::start(c, Seams::default()).await.unwrap();
    let url = format!("http://{}/txs", node.api_addr().unwrap());
    let client = reqwest::Client::new();
    for (tx, reason) in crafted() {
        assert_eq!(
            tx.check_signature(),
            Err(reason),
            "the vector is what it says"
        );
        let r = client
            .post(&url)
            .json(&json!({"tx": hex::encode(tx.to_bytes())}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::BAD_REQUEST, "{reason:?}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["code"], reason.code(), "{reason:?}: {body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains(&reason.to_string()),
            "{body}"
        );
    }
    let pending = node.query(|v| v.mempool.len()).await.unwrap();
    assert_eq!(pending, 0);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_refuses_and_penalises_each_crafted_signature() {
    let node = start(&[], MiningMode::Off).await;
    let mut raw = live_raw_peer(&node).await;
    let id = raw.node_id;
    let score = |node: &p2p_node::NodeHandle| {
        let node = node.clone();
        async move {
            node.query(move |v| {
                v.peers
                    .iter()
                    .find(|p| p.node_id == id)
                    .map_or(0, |p| p.score)
            })
            .await
            .unwrap()
        }
    };
    // Four offences stay below the ban threshold; the fifth would ban.
    for (tx, reason) in crafted().into_iter().take(4) {
        let before = score(&node).await;
        raw.framed.send(Message::Tx(tx)).await.unwrap();
        wait_for(&format!("a penalty for {reason:?}"), || {
            let node = node.clone();
            async move { score(&node).await > before }
        })
        .await;
    }
    let pending = node.query(|v| v.mempool.len()).await.unwrap();
    assert_eq!(pending, 0, "nothing crafted was pooled");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_with_a_weak_key_spend_is_refused_and_changes_nothing() {
    let node = start(&[], MiningMode::Off).await;
    let before = ledger(&node).await;
    let (tip_before, _) = tip(&node).await;
    let (theft, _) = crafted().remove(0);
    let mut transactions = coinbase_only();
    transactions.push(Tx::Signed(theft));
    let block = child_of_genesis(transactions, meets_target);
    let mut raw = live_raw_peer(&node).await;
    raw.framed.send(Message::Block(block)).await.unwrap();
    // The refusal is a penalty for the sender.
    let id = raw.node_id;
    wait_for("the block's sender is penalised", || {
        let node = node.clone();
        async move {
            node.query(move |v| v.peers.iter().any(|p| p.node_id == id && p.score > 0))
                .await
                .unwrap()
                || node
                    .query(move |v| v.bans.iter().any(|(k, _)| *k == p2p_node::BanKey::Node(id)))
                    .await
                    .unwrap()
        }
    })
    .await;
    assert_eq!(tip(&node).await.0, tip_before, "the tip did not move");
    assert_eq!(ledger(&node).await, before, "no balance moved");
    node.shutdown().await;
}

//! Fees on live nodes: a flood at the minimum fee cannot keep honest
//! payments out of the pool or the next block, nor make a node hold more
//! than its bounds; a replacement by fee wins on every node; the API's
//! fee errors say what it takes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::api::{TOKEN, get, post};
use common::*;
use escrow::{Amount, Memo, Payload, SignedTx};
use p2p_node::{MiningMode, NodeHandle, Seams, Service};
use reqwest::StatusCode;
use serde_json::json;

/// The tests' network: blocks of at most 10 signed transactions.
fn network() -> escrow::Genesis {
    let mut g = genesis();
    g.params.max_block_txs = 11;
    g
}

/// A node with its API, mining off, dialling `peers`, whose pool holds at
/// most `max` transactions and `max_bytes` bytes.
async fn node(peers: &[std::net::SocketAddr], max: usize, max_bytes: usize) -> (Service, String) {
    init_logs();
    let mut c = config();
    c.genesis = network();
    c.peers = peers.to_vec();
    c.mining = MiningMode::Off;
    c.mempool_max = max;
    c.mempool_max_per_account = 1_000;
    c.fee_policy.max_bytes = max_bytes;
    c.api = Some("127.0.0.1:0".parse().unwrap());
    c.api_token = Some(TOKEN.to_string());
    let node = Service::start(c, Seams::default()).await.unwrap();
    let url = format!("http://{}", node.api_addr().unwrap());
    (node, url)
}

fn signed(who: &str, nonce: u64, fee: u64, payload: Payload) -> SignedTx {
    SignedTx::sign(
        &escrow::dev::keypair(who).unwrap(),
        nonce,
        Amount::new(fee),
        network().network_id(),
        payload,
    )
}

fn pay(who: &str, nonce: u64, fee: u64) -> SignedTx {
    signed(
        who,
        nonce,
        fee,
        Payload::Transfer {
            to: addr("dave"),
            amount: Amount::new(1),
        },
    )
}

async fn submit(url: &str, tx: &SignedTx) -> (StatusCode, serde_json::Value) {
    post(
        &format!("{url}/txs"),
        json!({ "tx": hex::encode(tx.to_bytes()) }),
        None,
    )
    .await
}

async fn pending(node: &NodeHandle, tx: &SignedTx) -> bool {
    let id = tx.id();
    node.query(move |v| v.mempool.contains(&id)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_at_the_minimum_fee_cannot_keep_honest_payments_out() {
    // Blocks of 10 signed transactions; pools of 30.
    let (a, url_a) = node(&[], 30, 1 << 20).await;
    let (b, _) = node(&[a.local_addr()], 30, 1 << 20).await;
    wait_for("b connected", || async { peer_count(&a).await == 1 }).await;
    // Eve floods A at the minimum fee (1 coin, about 6 coins per kB).
    let mut nonce = 0;
    let refusal = loop {
        let (status, body) = submit(&url_a, &pay("eve", nonce, 1)).await;
        if status != StatusCode::CREATED {
            break body;
        }
        nonce += 1;
        assert!(nonce <= 30, "the pool took more than its bound");
    };
    assert_eq!(nonce, 30);
    // The refusal says what it would take.
    assert_eq!(refusal["code"], "fee_too_low", "{refusal}");
    let min = refusal["min_fee_rate"].as_u64().unwrap();
    assert!(
        min > 6,
        "the full pool asks more than the flood pays: {min}"
    );
    assert!(refusal["needed_fee"].as_u64().unwrap() >= 1);
    let (_, status) = get(&format!("{url_a}/status")).await;
    assert_eq!(status["mempool"], 30);
    // Honest payments at a market fee, sent to the other node, reach A
    // and push the flood's last transactions out.
    let honest = [
        pay("alice", 0, 20),
        pay("bob", 0, 20),
        pay("charlie", 0, 20),
    ];
    for tx in &honest {
        b.submit(tx.clone()).await.unwrap();
    }
    wait_for("the honest payments in A's pool", || async {
        for tx in &honest {
            if !pending(&a, tx).await {
                return false;
            }
        }
        true
    })
    .await;
    let (_, status) = get(&format!("{url_a}/status")).await;
    assert_eq!(status["mempool"], 30, "still within its bound");
    let last = pay("eve", 29, 1).id();
    let (_, looked_up) = get(&format!("{url_a}/txs/{last}")).await;
    assert_eq!(looked_up["status"], "dropped", "{looked_up}");
    // The next block carries them, the flood only where room is left.
    a.mine_blocks(1).await.unwrap();
    let state = ledger(&a).await;
    for who in ["alice", "bob", "charlie"] {
        assert_eq!(state.nonce(&addr(who)), 1, "{who}'s payment mined");
    }
    assert_eq!(state.nonce(&addr("eve")), 7, "ten transactions a block");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_large_cheap_transactions_stays_within_the_byte_bound() {
    let max_bytes = 100_000;
    let (a, url) = node(&[], 1_000, max_bytes).await;
    let memo = |who, nonce, fee| {
        signed(
            who,
            nonce,
            fee,
            Payload::TransferMemo {
                to: addr("dave"),
                amount: Amount::ZERO,
                memo: Memo::new(&[9; 20_000]).unwrap(),
            },
        )
    };
    // 21 coins pay just over 1 coin per kB for 20 kB.
    let mut nonce = 0;
    while submit(&url, &memo("eve", nonce, 21)).await.0 == StatusCode::CREATED {
        nonce += 1;
        assert!(nonce < 100);
    }
    assert_eq!(nonce, 4, "four of 20 kB fit 100 kB");
    let (_, status) = get(&format!("{url}/status")).await;
    assert!(status["mempool_bytes"].as_u64().unwrap() <= max_bytes as u64);
    // An honest one as large, paying a better rate, still gets in.
    let honest = memo("alice", 0, 100);
    let (code, body) = submit(&url, &honest).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let (_, status) = get(&format!("{url}/status")).await;
    assert!(status["mempool_bytes"].as_u64().unwrap() <= max_bytes as u64);
    assert_eq!(status["mempool"], 4, "the cheapest memo made room");
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacement_by_fee_wins_on_every_node() {
    let (a, url_a) = node(&[], 100, 1 << 20).await;
    let (b, _) = node(&[a.local_addr()], 100, 1 << 20).await;
    let (c, url_c) = node(&[b.local_addr()], 100, 1 << 20).await;
    wait_for("a line of three", || async { peer_count(&b).await == 2 }).await;
    let first = pay("alice", 0, 2);
    assert_eq!(submit(&url_a, &first).await.0, StatusCode::CREATED);
    for n in [&a, &b, &c] {
        wait_for("the first everywhere", || pending(n, &first)).await;
    }
    // Paying the same is refused, with the fee it would take.
    let same_fee = signed(
        "alice",
        0,
        2,
        Payload::Transfer {
            to: addr("charlie"),
            amount: Amount::new(5),
        },
    );
    let (code, body) = submit(&url_c, &same_fee).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "replacement_too_low", "{body}");
    let needed = body["needed_fee"].as_u64().unwrap();
    assert!(needed > 2);
    let better = signed(
        "alice",
        0,
        needed,
        Payload::Transfer {
            to: addr("bob"),
            amount: Amount::new(5),
        },
    );
    assert_eq!(submit(&url_c, &better).await.0, StatusCode::CREATED);
    for n in [&a, &b, &c] {
        wait_for("the replacement everywhere", || async {
            pending(n, &better).await && !pending(n, &first).await
        })
        .await;
    }
    // Mined wherever it is mined, the replacement is what counts.
    let (_, status) = get(&format!("{url_a}/txs/{}", first.id())).await;
    assert_eq!(status["status"], "dropped");
    b.mine_blocks(1).await.unwrap();
    wait_same_tip(&[&a, &b, &c]).await;
    let state = ledger(&a).await;
    assert_eq!(
        state.balance(&addr("bob")),
        Amount::new(escrow::genesis::DEV_BALANCE + 5)
    );
    for n in [a, b, c] {
        n.shutdown().await;
    }
}

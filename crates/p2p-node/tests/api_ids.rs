//! The API's ids and ranges: blocks, transactions and contracts named by a
//! unique prefix, contracts still pending, `GET /blocks` pages that do not
//! depend on the chain's height, `POST /mine` paying another account, and
//! confirmations across a reorganisation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::api::*;
use common::*;
use escrow::{Amount, Payload, SignedTx, dev};
use p2p_node::MiningMode;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A control request with the node's token.
async fn post(url: &str, body: Value) -> (StatusCode, Value) {
    common::api::post(url, body, Some(TOKEN)).await
}

async fn submit(base: &str, tx: &SignedTx) -> Value {
    let (s, body) = post(
        &format!("{base}/txs"),
        json!({"tx": hex::encode(tx.to_bytes())}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    body
}

fn transfer(from: &str, nonce: u64, to: &str, amount: u64) -> SignedTx {
    sign(
        from,
        nonce,
        Payload::Transfer {
            to: dev::address(to).unwrap(),
            amount: Amount::new(amount),
        },
    )
}

/// `(status, code, message)` of an answer.
fn error(answer: &(StatusCode, Value)) -> (StatusCode, &str, &str) {
    (
        answer.0,
        answer.1["code"].as_str().unwrap_or(""),
        answer.1["message"].as_str().unwrap_or(""),
    )
}

/// An 8-digit prefix that none of `ids` (hex, dashes ignored) starts with.
fn unused_prefix(ids: &[String]) -> String {
    (0u32..)
        .map(|n| format!("{:08x}", n.wrapping_mul(0x9e37_79b9)))
        .find(|p| !ids.iter().any(|id| id.replace('-', "").starts_with(p)))
        .unwrap()
}

/// Checks the refusals every id endpoint shares: too short, not hex, too
/// long, and a prefix nothing starts with.
async fn check_bad_ids(base: &str, path: &str, code: &str, known: &[String]) {
    for short in ["abcd", "1234567", "ab-cd-ef"] {
        let answer = get(&format!("{base}/{path}/{short}")).await;
        let (s, c, m) = error(&answer);
        assert_eq!((s, c), (StatusCode::BAD_REQUEST, code), "{path}/{short}");
        assert!(m.contains("at least 8 hex digits"), "{m}");
    }
    for bad in ["zzzzzzzz", "abcdefg%20h", "0x123456789"] {
        let answer = get(&format!("{base}/{path}/{bad}")).await;
        let (s, c, m) = error(&answer);
        assert_eq!((s, c), (StatusCode::BAD_REQUEST, code), "{path}/{bad}");
        assert!(m.contains("hex"), "{m}");
    }
    let long = "a".repeat(65);
    let answer = get(&format!("{base}/{path}/{long}")).await;
    assert_eq!(error(&answer).1, code);
    let none = unused_prefix(known);
    let answer = get(&format!("{base}/{path}/{none}")).await;
    let (s, c, m) = error(&answer);
    assert_eq!(
        (s, c),
        (StatusCode::NOT_FOUND, "not_found"),
        "{path}/{none}"
    );
    assert!(m.contains(&none), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_transactions_and_contracts_are_found_by_a_unique_prefix() {
    let (node, base) = api_node().await;
    let pay = transfer("alice", 0, "bob", 5);
    submit(&base, &pay).await;
    let create = sign(
        "charlie",
        0,
        Payload::EscrowCreate {
            seller: dev::address("dave").unwrap(),
            arbiter: dev::address("eve").unwrap(),
            amount: Amount::new(50),
            delivery_deadline: 100,
            dispute_window: 5,
        },
    );
    let contract = submit(&base, &create).await["contract"]
        .as_str()
        .unwrap()
        .to_string();
    let pay_id = pay.id().to_string();
    let create_id = create.id().to_string();

    // Pending: a transaction by its first 8 digits, in either case.
    let (s, tx) = get(&format!("{base}/txs/{}", pay_id[..8].to_uppercase())).await;
    assert_eq!(
        (s, tx["status"].as_str()),
        (StatusCode::OK, Some("pending"))
    );
    assert_eq!(tx["tx"]["id"], json!(pay_id));

    // A contract whose creation is pending, by its id or a prefix (dashes
    // optional): 404 `contract_pending`, naming its transaction.
    let compact = contract.replace('-', "");
    for name in [
        contract.clone(),
        contract[..13].to_string(),
        compact[..10].to_string(),
    ] {
        let answer = get(&format!("{base}/contracts/{name}")).await;
        let (s, c, m) = error(&answer);
        assert_eq!(
            (s, c),
            (StatusCode::NOT_FOUND, "contract_pending"),
            "{name}"
        );
        assert!(m.contains("is not created yet"), "{m}");
        assert!(m.contains(&contract) && m.contains(&create_id), "{m}");
        assert_eq!(answer.1["tx"], json!(create_id));
    }

    let (s, mined) = post(&format!("{base}/mine"), json!({"blocks": 2})).await;
    assert_eq!(s, StatusCode::OK);
    let first = mined["blocks"][0].as_str().unwrap().to_string();

    // Confirmed, by prefixes of several lengths.
    for digits in [8, 9, 13, 63, 64] {
        let (s, tx) = get(&format!("{base}/txs/{}", &pay_id[..digits])).await;
        assert_eq!(
            (s, tx["status"].as_str(), tx["confirmations"].as_u64()),
            (StatusCode::OK, Some("confirmed"), Some(2)),
            "{digits} digits"
        );
    }
    // The contract exists now, by any unique prefix.
    for name in [
        contract.clone(),
        contract[..8].to_string(),
        contract[..13].to_uppercase(),
        compact[..16].to_string(),
    ] {
        let (s, c) = get(&format!("{base}/contracts/{name}")).await;
        assert_eq!(
            (s, c["id"].as_str()),
            (StatusCode::OK, Some(contract.as_str()))
        );
    }
    // Blocks, genesis included.
    let (s, block) = get(&format!("{base}/blocks/{}", &first[..8])).await;
    assert_eq!(
        (s, block["hash"].as_str(), block["height"].as_u64()),
        (StatusCode::OK, Some(first.as_str()), Some(1))
    );
    let genesis = genesis().network_id().to_string();
    let (s, block) = get(&format!("{base}/blocks/{}", &genesis[..10])).await;
    assert_eq!((s, block["height"].as_u64()), (StatusCode::OK, Some(0)));

    // Refusals, the same on each kind.
    let blocks: Vec<String> = mined["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_str().unwrap().to_string())
        .chain([genesis])
        .collect();
    check_bad_ids(&base, "blocks", "bad_hash", &blocks).await;
    check_bad_ids(&base, "txs", "bad_hash", &[pay_id, create_id]).await;
    check_bad_ids(&base, "contracts", "bad_contract_id", &[contract]).await;
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_pages_are_valid_or_not_whatever_the_height() {
    let (node, base) = api_node().await;
    let heights = |v: &Value| -> Vec<u64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|b| b["height"].as_u64().unwrap())
            .collect()
    };
    let page = |q: &str| {
        let url = format!("{base}/blocks?{q}");
        async move { get(&url).await }
    };

    // Height 0.
    let (s, v) = page("last=0").await;
    assert_eq!((s, v), (StatusCode::OK, json!([])));
    assert_eq!(heights(&page("last=1").await.1), vec![0]);
    assert_eq!(heights(&page("last=100").await.1), vec![0]);
    assert_eq!(heights(&page("from=0&to=99").await.1), vec![0]);
    assert_eq!(heights(&page("").await.1), vec![0]);
    let (s, v) = page("from=5&to=10").await;
    assert_eq!((s, v), (StatusCode::OK, json!([])), "past the tip: none");
    let refused_low = [
        page("last=101").await,
        page("last=1000").await,
        page("from=0&to=100").await,
        page("from=3&to=2").await,
        page("to=100").await,
        page("last=1&from=0").await,
    ];

    node.mine_blocks(150).await.unwrap();
    let (s, v) = page("last=0").await;
    assert_eq!((s, v), (StatusCode::OK, json!([])));
    assert_eq!(heights(&page("last=1").await.1), vec![150]);
    assert_eq!(
        heights(&page("last=100").await.1),
        (51..=150).collect::<Vec<_>>()
    );
    assert_eq!(
        heights(&page("from=0&to=99").await.1),
        (0..=99).collect::<Vec<_>>()
    );
    assert_eq!(heights(&page("").await.1), (0..=99).collect::<Vec<_>>());
    assert_eq!(
        heights(&page("from=120").await.1),
        (120..=150).collect::<Vec<_>>()
    );
    assert_eq!(
        heights(&page("from=140&to=239").await.1),
        (140..=150).collect::<Vec<_>>(),
        "clamped to the tip"
    );
    let refused_high = [
        page("last=101").await,
        page("last=1000").await,
        page("from=0&to=100").await,
        page("from=3&to=2").await,
        page("to=100").await,
        page("last=1&from=0").await,
    ];
    // The same refusals, word for word, at height 0 and at height 150.
    assert_eq!(refused_low, refused_high);
    for answer in &refused_high {
        assert_eq!(error(answer).0, StatusCode::BAD_REQUEST);
        assert_eq!(error(answer).1, "bad_range");
    }
    let m = error(&refused_high[1]).2;
    assert!(m.contains("at most 100") && m.contains("from"), "{m}");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mining_to_an_account_pays_that_account() {
    let (node, base) = api_node().await;
    let reward = node.snapshot().state.coinbase_reward().get();
    assert!(reward > 0);
    let balance = |who: &'static str| {
        let base = base.clone();
        async move {
            get(&format!("{base}/accounts/{who}")).await.1["balance"]
                .as_u64()
                .unwrap()
        }
    };
    let coinbase_to = |hash: Value| {
        let base = base.clone();
        async move {
            let (_, block) = get(&format!("{base}/blocks/{}", hash.as_str().unwrap())).await;
            block["transactions"][0]["to"].as_str().unwrap().to_string()
        }
    };
    let (eve, dave, ferdie) = (
        balance("eve").await,
        balance("dave").await,
        balance("ferdie").await,
    );

    let (s, mined) = post(&format!("{base}/mine"), json!({"blocks": 2, "to": "eve"})).await;
    assert_eq!(s, StatusCode::OK, "{mined}");
    for hash in mined["blocks"].as_array().unwrap() {
        assert_eq!(coinbase_to(hash.clone()).await, addr("eve").to_string());
    }
    assert_eq!(balance("eve").await, eve + 2 * reward);
    let dave_hex = addr("dave").to_string();
    let (s, mined) = post(
        &format!("{base}/mine"),
        json!({"blocks": 1, "to": dave_hex}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(coinbase_to(mined["blocks"][0].clone()).await, dave_hex);
    assert_eq!(balance("dave").await, dave + reward);
    // Without `to`: the node's miner account.
    let (_, mined) = post(&format!("{base}/mine"), json!({"blocks": 1})).await;
    assert_eq!(
        coinbase_to(mined["blocks"][0].clone()).await,
        addr("ferdie").to_string()
    );
    assert_eq!(balance("ferdie").await, ferdie + reward);

    // A bad account mines nothing.
    for bad in ["mallory", "abcd", ""] {
        let answer = post(&format!("{base}/mine"), json!({"blocks": 1, "to": bad})).await;
        let (s, c, m) = error(&answer);
        assert_eq!((s, c), (StatusCode::BAD_REQUEST, "bad_account"), "{bad}");
        assert!(m.contains("dev account name"), "{m}");
    }
    assert_eq!(node.snapshot().height, 4);

    // A node that mines by itself: the blocks of the request pay the
    // request's account, whatever the running job paid.
    node.set_mining(MiningMode::Continuous).await.unwrap();
    let (s, mined) = post(&format!("{base}/mine"), json!({"blocks": 3, "to": "eve"})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(mined["blocks"].as_array().unwrap().len(), 3);
    for hash in mined["blocks"].as_array().unwrap() {
        assert_eq!(coinbase_to(hash.clone()).await, addr("eve").to_string());
    }
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmations_follow_the_best_chain_across_a_reorganisation() {
    let (node, base) = api_node().await;
    let tx_status = |id: String| {
        let base = base.clone();
        async move { get(&format!("{base}/txs/{id}")).await.1 }
    };
    // Ours: a transfer mined at height 1, two blocks deep.
    let ours = transfer("alice", 0, "bob", 5);
    submit(&base, &ours).await;
    let our_blocks = node.mine_blocks(2).await.unwrap();
    let t = tx_status(ours.id().to_string()).await;
    assert_eq!(
        (t["status"].as_str(), t["confirmations"].as_u64()),
        (Some("confirmed"), Some(2))
    );

    // Theirs: alice's nonce 0 spent otherwise, on a heavier chain.
    let mut c = config();
    c.miner_account = addr("bob");
    let other = p2p_node::Node::start(c).await.unwrap();
    let theirs = transfer("alice", 0, "charlie", 7);
    other.submit(theirs.clone()).await.unwrap();
    let heavier = other.mine_blocks(4).await.unwrap();
    other.add_peer(node.local_addr()).await.unwrap();
    wait_for("the reorganisation", || {
        let node = node.clone();
        let want = heavier[3];
        async move { node.snapshot().tip == want }
    })
    .await;

    // Theirs is confirmed, four deep; ours is in a side branch only, and
    // its nonce is taken: dropped, not confirmed. Both by prefix too.
    let t = tx_status(theirs.id().to_string()[..8].to_string()).await;
    assert_eq!(
        (
            t["status"].as_str(),
            t["height"].as_u64(),
            t["confirmations"].as_u64()
        ),
        (Some("confirmed"), Some(1), Some(4))
    );
    let t = tx_status(ours.id().to_string()[..8].to_string()).await;
    assert_eq!(t["status"], "dropped", "{t}");
    assert!(t["confirmations"].is_null());
    // Our old block is still found, off the best chain.
    let hash = our_blocks[0].to_string();
    let (s, b) = get(&format!("{base}/blocks/{}", &hash[..9])).await;
    assert_eq!(
        (s, b["on_best_chain"].as_bool()),
        (StatusCode::OK, Some(false))
    );

    // One more block: one more confirmation.
    node.mine_blocks(1).await.unwrap();
    let t = tx_status(theirs.id().to_string()).await;
    assert_eq!(t["confirmations"], 5);
    other.shutdown().await;
    node.shutdown().await;
}

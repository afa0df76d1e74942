//! Every HTTP API endpoint and error status, against a real node.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chain_core::{Block, BlockHash};
use common::api::*;
use common::*;
use escrow::{Amount, Party, Payload, SignedTx, dev};
use p2p_node::store::StoreError;
use p2p_node::{MiningMode, Seams, Service};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

async fn submit(base: &str, tx: &SignedTx) -> (StatusCode, Value) {
    post(
        &format!("{base}/txs"),
        json!({"tx": hex::encode(tx.to_bytes())}),
        None,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_and_every_error_has_a_code() {
    let (node, base) = api_node().await;

    let (s, status) = get(&format!("{base}/status")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(status["height"], 0);
    assert_eq!(status["mining"], "off");
    assert_eq!(status["network"], json!(genesis().network_id()));

    // Submit: a transfer and an escrow.
    let pay = sign(
        "alice",
        0,
        Payload::Transfer {
            to: dev::address("bob").unwrap(),
            amount: Amount::new(5),
        },
    );
    let (s, body) = submit(&base, &pay).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(body["id"], json!(pay.id()));
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
    let (s, body) = submit(&base, &create).await;
    assert_eq!(s, StatusCode::CREATED);
    let contract = body["contract"].as_str().unwrap().to_string();

    // Refusals name the rule.
    let (s, body) = submit(&base, &pay).await;
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("already_pending"))
    );
    let gap = sign(
        "alice",
        5,
        Payload::Transfer {
            to: dev::address("bob").unwrap(),
            amount: Amount::new(1),
        },
    );
    let (s, body) = submit(&base, &gap).await;
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_nonce"))
    );
    let (s, body) = post(&format!("{base}/txs"), json!({"tx": "zz"}), None).await;
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_encoding"))
    );
    assert!(body["message"].as_str().unwrap().contains("hex"));

    // Pending, in the mempool, in the pending nonce.
    let (s, tx) = get(&format!("{base}/txs/{}", pay.id())).await;
    assert_eq!(
        (s, tx["status"].as_str()),
        (StatusCode::OK, Some("pending"))
    );
    let (_, pool) = get(&format!("{base}/mempool")).await;
    assert_eq!(pool.as_array().unwrap().len(), 2);
    let (_, alice) = get(&format!("{base}/accounts/alice")).await;
    assert_eq!(
        (alice["nonce"].as_u64(), alice["pending_nonce"].as_u64()),
        (Some(0), Some(1))
    );

    // Mining needs the token.
    let (s, body) = post(&format!("{base}/mine"), json!({"blocks": 1}), None).await;
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    let (s, _) = post(&format!("{base}/mine"), json!({"blocks": 1}), Some("wrong")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, body) = post(&format!("{base}/mine"), json!({"blocks": 0}), Some(TOKEN)).await;
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_count"))
    );
    let (s, mined) = post(&format!("{base}/mine"), json!({"blocks": 2}), Some(TOKEN)).await;
    assert_eq!(s, StatusCode::OK);
    let first = mined["blocks"][0].as_str().unwrap().to_string();

    // Confirmed, with confirmations.
    let (s, tx) = get(&format!("{base}/txs/{}", pay.id())).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(tx["status"], "confirmed");
    assert_eq!(tx["height"], 1);
    assert_eq!(tx["confirmations"], 2);
    let (s, _) = get(&format!("{base}/txs/{}", chain_core::TxId::ZERO)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, body) = get(&format!("{base}/txs/nothex")).await;
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_hash"))
    );

    // Blocks.
    let (s, blocks) = get(&format!("{base}/blocks?last=2")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(blocks.as_array().unwrap().len(), 2);
    let (s, blocks) = get(&format!("{base}/blocks?from=0&to=2")).await;
    assert_eq!(
        (s, blocks.as_array().map(Vec::len)),
        (StatusCode::OK, Some(3))
    );
    let (s, body) = get(&format!("{base}/blocks?from=2&to=1")).await;
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_range"))
    );
    let (s, block) = get(&format!("{base}/blocks/{first}")).await;
    assert_eq!((s, block["height"].as_u64()), (StatusCode::OK, Some(1)));
    assert_eq!(block["transactions"].as_array().unwrap().len(), 3);
    assert_eq!(block["transactions"][0]["kind"], "coinbase");
    let (s, block) = get(&format!("{base}/blocks/height/1")).await;
    assert_eq!(
        (s, block["hash"].as_str()),
        (StatusCode::OK, Some(first.as_str()))
    );
    let (s, _) = get(&format!("{base}/blocks/height/99")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = get(&format!("{base}/blocks/{}", chain_core::BlockHash::ZERO)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Accounts.
    let (s, bob) = get(&format!("{base}/accounts/bob")).await;
    assert_eq!(
        (s, bob["balance"].as_u64()),
        (StatusCode::OK, Some(1_000_005))
    );
    let (s, body) = get(&format!("{base}/accounts/mallory")).await;
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_account"))
    );

    // Contracts, and a refused escrow action with its rule.
    let (s, all) = get(&format!("{base}/contracts")).await;
    assert_eq!((s, all.as_array().map(Vec::len)), (StatusCode::OK, Some(1)));
    let (s, c) = get(&format!("{base}/contracts/{contract}")).await;
    assert_eq!((s, c["state"].as_str()), (StatusCode::OK, Some("Funded")));
    assert_eq!(c["history"].as_array().unwrap().len(), 1);
    let id: escrow::ContractId = contract.parse().unwrap();
    let not_arbiter = sign(
        "bob",
        0,
        Payload::Resolve {
            contract: id,
            to: Party::Seller,
        },
    );
    let (s, body) = submit(&base, &not_arbiter).await;
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("not_arbiter"))
    );
    let (s, _) = get(&format!("{base}/contracts/{}", uuid_zero())).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, body) = get(&format!("{base}/contracts/xyz")).await;
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_contract_id"))
    );

    // Peers.
    let (s, peers) = get(&format!("{base}/peers")).await;
    assert_eq!(
        (s, peers.as_array().map(Vec::len)),
        (StatusCode::OK, Some(0))
    );
    let other = start(&[], p2p_node::MiningMode::Off).await;
    let (s, _) = post(
        &format!("{base}/peers"),
        json!({"addr": other.local_addr()}),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = post(
        &format!("{base}/peers"),
        json!({"addr": other.local_addr()}),
        Some(TOKEN),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    wait_for("the peer connected", || async {
        peer_count(&node).await == 1
    })
    .await;

    // Partition and heal (token).
    let cut = json!({"block": [other.local_addr()]});
    let (s, _) = post(&format!("{base}/admin/partition"), cut.clone(), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = post(&format!("{base}/admin/partition"), cut, Some(TOKEN)).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    wait_for("the peer cut off", || async {
        peer_count(&node).await == 0
    })
    .await;
    let (s, _) = post(&format!("{base}/admin/heal"), json!({}), Some(TOKEN)).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    wait_for("the peer back", || async { peer_count(&node).await == 1 }).await;

    // Malformed requests are JSON errors too (every kind of bad body:
    // tests/api_input.rs).
    let (s, body) = post(&format!("{base}/txs"), json!({"nope": 1}), None).await;
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unknown_field"))
    );
    let (s, body) = get(&format!("{base}/blocks/height/abc")).await;
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_height"))
    );
    let (s, body) = get(&format!("{base}/blocks?from=x")).await;
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_range"))
    );
    let (s, body) = get(&format!("{base}/no/such/endpoint")).await;
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );

    // Metrics.
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("node_height 2"), "{text}");
    assert!(text.contains("node_blocks_mined_total 2"));
    assert!(text.contains("# TYPE node_peers gauge"));

    other.shutdown().await;
    node.shutdown().await;
}

fn uuid_zero() -> String {
    "00000000-0000-0000-0000-000000000000".to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_endpoints_are_off_without_a_token() {
    init_logs();
    let mut c = config();
    c.api = Some("127.0.0.1:0".parse().unwrap());
    let node = Service::start(c, Seams::default()).await.unwrap();
    let base = format!("http://{}", node.api_addr().unwrap());
    let (s, body) = post(
        &format!("{base}/mine"),
        json!({"blocks": 1}),
        Some("anything"),
    )
    .await;
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("control_disabled"))
    );
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_pushes_tips_and_the_tree_lists_every_block() {
    let (node, base) = api_node().await;
    // The explorer page is served, self-contained.
    let page = reqwest::get(format!("{base}/")).await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("EventSource(\"/events\")"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no request leaves the machine"
    );

    let mut events = reqwest::get(format!("{base}/events")).await.unwrap();
    assert_eq!(
        events.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    node.mine_blocks(1).await.unwrap();
    let mut text = String::new();
    while !text.contains("event: tip") {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), events.chunk())
            .await
            .expect("an event in time")
            .unwrap()
            .expect("the stream stays open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("\"kind\":\"tip\""), "{text}");
    assert!(text.contains("\"height\":1"), "{text}");

    let (s, tree) = get(&format!("{base}/tree")).await;
    assert_eq!(s, StatusCode::OK);
    let blocks = tree["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 2);
    assert!(blocks.iter().all(|b| b["best"] == true));
    assert_eq!(blocks[1]["miner"], "ferdie");
    assert_eq!(tree["height"], 1);
    // The stream ends when the node stops.
    node.shutdown().await;
    let end = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Ok(Some(_)) = events.chunk().await {}
    })
    .await;
    assert!(end.is_ok(), "the event stream ended with the node");
}

/// A client whose requests give up after 30 seconds: a hang guard, not a
/// speed assertion.
fn patient_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_answer_from_the_snapshot_while_the_core_is_busy() {
    let (node, base) = api_node().await;
    let handle = node.node().clone();
    let mined = handle.mine_blocks(3).await.unwrap();
    let tx = sign(
        "alice",
        0,
        Payload::Transfer {
            to: dev::address("bob").unwrap(),
            amount: Amount::new(10),
        },
    );
    assert_eq!(submit(&base, &tx).await.0, StatusCode::CREATED);

    // Hold the core: a query that does not return until the test says so.
    let (started, wait_started) = std::sync::mpsc::channel();
    let (release, wait_release) = std::sync::mpsc::channel::<()>();
    let busy = tokio::spawn({
        let handle = handle.clone();
        async move {
            handle
                .query(move |_| {
                    let _ = started.send(());
                    let _ = wait_release.recv_timeout(std::time::Duration::from_secs(60));
                })
                .await
        }
    });
    tokio::task::spawn_blocking(move || wait_started.recv().unwrap())
        .await
        .unwrap();

    // Every read but the mempool's list and the one-block lookups answers
    // while the core cannot: none of them asks it.
    let client = patient_client();
    let read = |path: &str| {
        let req = client.get(format!("{base}{path}"));
        async move {
            let r = req.send().await.expect("an answer while the core is busy");
            assert_eq!(r.status(), StatusCode::OK);
            r.text().await.unwrap()
        }
    };
    let status: Value = serde_json::from_str(&read("/status").await).unwrap();
    assert_eq!(status["height"], 3);
    assert_eq!(status["tip"], json!(mined[2].to_string()));
    assert_eq!(status["mempool"], 1);
    let account: Value = serde_json::from_str(&read("/accounts/alice").await).unwrap();
    assert_eq!(account["pending_nonce"], 1);
    assert_eq!(account["nonce"], 0);
    let tree: Value = serde_json::from_str(&read("/tree?depth=2").await).unwrap();
    assert_eq!(tree["blocks"].as_array().unwrap().len(), 2);
    let blocks: Value = serde_json::from_str(&read("/blocks?last=3").await).unwrap();
    assert_eq!(blocks[2]["hash"], json!(mined[2].to_string()));
    let contracts: Value = serde_json::from_str(&read("/contracts").await).unwrap();
    assert_eq!(contracts, json!([]));
    let peers: Value = serde_json::from_str(&read("/peers").await).unwrap();
    assert_eq!(peers, json!([]));
    assert!(read("/metrics").await.contains("node_height 3"));

    release.send(()).unwrap();
    busy.await.unwrap().unwrap();
    node.shutdown().await;
}

/// The `/tree` of the code before snapshots: every block of the tree at the
/// last `depth` heights, found by walking the whole tree on the core.
async fn tree_walked(node: &p2p_node::NodeHandle, depth: u64) -> Value {
    node.query(move |v| {
        let tip = v.chain.height();
        let from = tip.saturating_sub(depth - 1);
        let mut blocks: Vec<p2p_node::api_types::TreeBlock> = v
            .chain
            .headers()
            .filter(|(_, h)| h.height >= from)
            .filter_map(|(hash, _)| v.chain.block(hash))
            .map(|b| p2p_node::api_types::TreeBlock::new(&b, v.chain.is_on_best_chain(&b.hash())))
            .collect();
        blocks.sort_by_key(|b| (b.height, !b.best, b.hash));
        json!({"tip": v.chain.tip(), "height": tip, "blocks": blocks})
    })
    .await
    .unwrap()
}

/// Checks `/tree?depth=N` against the walk of the whole tree, for several
/// depths (the order of side blocks at one height is by hash in both).
async fn check_tree(base: &str, node: &p2p_node::NodeHandle) {
    for depth in [1, 2, 3, 4, 6, 30, 200] {
        let (s, mut tree) = get(&format!("{base}/tree?depth={depth}")).await;
        assert_eq!(s, StatusCode::OK);
        let blocks = tree["blocks"].as_array_mut().unwrap();
        blocks.sort_by_key(|b| {
            (
                b["height"].as_u64(),
                b["best"] != true,
                b["hash"].as_str().map(str::to_string),
            )
        });
        assert_eq!(tree, tree_walked(node, depth).await, "depth {depth}");
    }
}

/// A node with no peers, not mining by itself, whose blocks pay `who`.
async fn start_mining_to(who: &str) -> p2p_node::NodeHandle {
    let mut c = config();
    c.miner_account = addr(who);
    p2p_node::Node::start(c).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tree_from_the_snapshot_is_the_walk_of_the_whole_tree_with_forks() {
    let (service, base) = api_node().await;
    let node = service.node().clone();
    node.mine_blocks(3).await.unwrap();
    // A lighter branch from genesis: a side branch on our node. Each node
    // mines to its own account: two nodes mining on the same parent in
    // the same millisecond to the same account make the same block.
    let other = start_mining_to("alice").await;
    let side = other.mine_blocks(1).await.unwrap();
    other.add_peer(node.local_addr()).await.unwrap();
    wait_for("the side branch", || {
        let node = node.clone();
        let side = side[0];
        async move {
            node.snapshot()
                .recent
                .since(0)
                .any(|(b, _)| b.hash() == side)
        }
    })
    .await;
    assert_eq!(node.snapshot().height, 3);
    check_tree(&base, &node).await;

    // A heavier branch: our node reorganises onto it, and its own blocks
    // become a side branch.
    let third = start_mining_to("bob").await;
    let heavier = third.mine_blocks(4).await.unwrap();
    third.add_peer(node.local_addr()).await.unwrap();
    wait_for("the reorganisation", || {
        let node = node.clone();
        let want = heavier[3];
        async move { node.snapshot().tip == want }
    })
    .await;
    let snap = node.snapshot();
    assert_eq!(snap.height, 4);
    assert_eq!(snap.metrics.reorgs, 1);
    assert_eq!(snap.recent.len(), 9, "genesis, 3 + 1 + 4 blocks mined");
    check_tree(&base, &node).await;

    other.shutdown().await;
    third.shutdown().await;
    service.shutdown().await;
}

/// A store that checks, as it saves blocks, that the node has not yet
/// published any of them.
struct CheckingStore {
    inner: p2p_node::store::MemoryStore,
    node: Arc<OnceLock<p2p_node::NodeHandle>>,
    saved: Arc<Mutex<HashSet<chain_core::BlockHash>>>,
    early: Arc<Mutex<Vec<String>>>,
}

impl p2p_node::store::BlockStore for CheckingStore {
    fn commit(&self, commit: &p2p_node::store::Commit) -> Result<(), StoreError> {
        if let Some(node) = self.node.get() {
            let snap = node.snapshot();
            for block in &commit.blocks {
                let hash = block.hash();
                if snap.tip == hash || snap.recent.since(0).any(|(b, _)| b.hash() == hash) {
                    self.early
                        .lock()
                        .unwrap()
                        .push(format!("{hash} published before it was saved"));
                }
            }
        }
        self.inner.commit(commit)?;
        self.saved
            .lock()
            .unwrap()
            .extend(commit.blocks.iter().map(|b| b.hash()));
        Ok(())
    }
    fn load(&self) -> Result<p2p_node::store::Stored, StoreError> {
        self.inner.load()
    }
    fn block(&self, hash: &BlockHash) -> Result<Option<Block<escrow::Tx>>, StoreError> {
        self.inner.block(hash)
    }
    fn undo(&self, hash: &BlockHash) -> Result<Option<escrow::Undo>, StoreError> {
        self.inner.undo(hash)
    }
    fn tx_block(&self, id: &chain_core::TxId) -> Result<Option<BlockHash>, StoreError> {
        self.inner.tx_block(id)
    }
    fn txs_in_range(
        &self,
        low: &chain_core::TxId,
        high: &chain_core::TxId,
        limit: usize,
    ) -> Result<Vec<chain_core::TxId>, StoreError> {
        self.inner.txs_in_range(low, high, limit)
    }
    fn put_mempool(&self, txs: &[SignedTx]) -> Result<(), StoreError> {
        self.inner.put_mempool(txs)
    }
    fn load_mempool(&self) -> Result<Vec<SignedTx>, StoreError> {
        self.inner.load_mempool()
    }
    fn put_bans(&self, bans: &[(p2p_node::BanKey, u64)]) -> Result<(), StoreError> {
        self.inner.put_bans(bans)
    }
    fn load_bans(&self) -> Result<Vec<(p2p_node::BanKey, u64)>, StoreError> {
        self.inner.load_bans()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_is_published_only_once_it_is_saved() {
    init_logs();
    let handle_cell = Arc::new(OnceLock::new());
    let saved = Arc::new(Mutex::new(HashSet::new()));
    let early = Arc::new(Mutex::new(Vec::new()));
    let seams = Seams {
        store: Box::new(CheckingStore {
            inner: p2p_node::store::MemoryStore::default(),
            node: handle_cell.clone(),
            saved: saved.clone(),
            early: early.clone(),
        }),
        ..Seams::default()
    };
    let node = p2p_node::Node::start_with(config(), seams).await.unwrap();
    handle_cell.set(node.clone()).ok().unwrap();
    let genesis_hash = node.snapshot().tip;

    // Every snapshot a watcher sees shows a saved tip, and they come in
    // order.
    let mut snapshots = node.snapshots();
    let watcher = tokio::spawn({
        let saved = saved.clone();
        async move {
            let mut last_seq = 0;
            let mut seen = 0;
            while snapshots.changed().await.is_ok() {
                let snap = snapshots.borrow_and_update().clone();
                assert!(snap.seq > last_seq, "snapshots move forward");
                last_seq = snap.seq;
                assert!(
                    snap.tip == genesis_hash || saved.lock().unwrap().contains(&snap.tip),
                    "tip {} published before it was saved",
                    snap.tip
                );
                seen += 1;
            }
            seen
        }
    });
    // Blocks from the miner, then a side branch and a reorganisation from
    // a peer.
    let mined = node.mine_blocks(2).await.unwrap();
    assert_eq!(
        node.snapshot().tip,
        mined[1],
        "mine_blocks waits for the snapshot"
    );
    let other = start(&[], MiningMode::Off).await;
    let theirs = other.mine_blocks(4).await.unwrap();
    other.add_peer(node.local_addr()).await.unwrap();
    wait_for("the reorganisation", || {
        let node = node.clone();
        let want = theirs[3];
        async move { node.snapshot().tip == want }
    })
    .await;
    other.shutdown().await;
    node.shutdown().await;
    assert!(watcher.await.unwrap() > 0);
    assert_eq!(*early.lock().unwrap(), Vec::<String>::new());
    assert_eq!(saved.lock().unwrap().len(), 6);
}

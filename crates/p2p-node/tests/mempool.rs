//! The mempool keeps its word: what a node accepted stays until it is
//! mined, or until it no longer applies (then the node says why), across
//! reorgs and restarts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use chain_core::{Transaction, TxId};
use common::*;
use escrow::{Amount, Payload};
use p2p_node::store::RedbStore;
use p2p_node::{MiningMode, Node, NodeHandle, Seams, Service};

fn transfer(who: &str, nonce: u64, to: &str, amount: u64) -> escrow::SignedTx {
    sign(
        who,
        nonce,
        Payload::Transfer {
            to: addr(to),
            amount: Amount::new(amount),
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_transaction_survives_a_restart() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let tx = transfer("alice", 0, "bob", 10);
    let id = tx.id();
    {
        let seams = Seams {
            store: Box::new(RedbStore::open(dir.path()).unwrap()),
            ..Seams::default()
        };
        let node = Node::start_with(config(), seams).await.unwrap();
        node.submit(tx).await.unwrap();
        node.shutdown().await;
    }
    let seams = Seams {
        store: Box::new(RedbStore::open(dir.path()).unwrap()),
        ..Seams::default()
    };
    let node = Node::start_with(config(), seams).await.unwrap();
    let (pending, nonce) = node
        .query(move |v| {
            (
                v.mempool.contains(&id),
                v.mempool.pending_ledger().nonce(&addr("alice")),
            )
        })
        .await
        .unwrap();
    assert!(pending, "the transaction is pending again");
    assert_eq!(nonce, 1, "the account's pending nonce is not back to 0");
    // And it is mined like any other.
    node.mine_blocks(1).await.unwrap();
    let mined = node
        .query(move |v| v.tx_block(&id).is_some())
        .await
        .unwrap();
    assert!(mined);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_that_a_reorg_makes_invalid_is_reported_dropped_with_its_reason() {
    init_logs();
    let mut c = config();
    c.api = Some("127.0.0.1:0".parse().unwrap());
    let a = Service::start(c, Seams::default()).await.unwrap();
    // On a, alice pays bob with her nonce 0; it waits (nobody mines).
    let mine = transfer("alice", 0, "bob", 10);
    let id = a.submit(mine).await.unwrap();
    // Elsewhere, alice's nonce 0 went to charlie, and that chain is longer.
    let mut bc = config();
    bc.miner_account = addr("eve");
    let b = Node::start(bc).await.unwrap();
    b.submit(transfer("alice", 0, "charlie", 20)).await.unwrap();
    b.mine_blocks(2).await.unwrap();
    a.add_peer(b.local_addr()).await.unwrap();
    wait_same_tip(&[a.node(), &b]).await;
    let url = format!("http://{}/txs/{id}", a.api_addr().unwrap());
    let answer: serde_json::Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    assert_eq!(answer["status"], "dropped", "{answer}");
    let reason = answer["reason"].as_str().unwrap();
    assert!(reason.contains("nonce"), "{reason}");
    a.shutdown().await;
    b.shutdown().await;
}

/// Every transaction in the best chain of `node`, with how many times.
async fn mined(node: &NodeHandle) -> HashMap<TxId, usize> {
    node.query(|v| {
        let mut seen = HashMap::new();
        for hash in v.chain.best_chain() {
            if let Some(block) = v.chain.block(hash) {
                for tx in &block.transactions {
                    *seen.entry(tx.id()).or_insert(0) += 1;
                }
            }
        }
        seen
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_transaction_is_mined_exactly_once_through_reorgs() {
    init_logs();
    let nodes = mesh(&[
        MiningMode::Off,
        MiningMode::Off,
        MiningMode::Off,
        MiningMode::Off,
    ])
    .await;
    let (a, b, c, d) = (&nodes[0], &nodes[1], &nodes[2], &nodes[3]);
    let mut accepted = Vec::new();
    let mut nonces: HashMap<&str, u64> = HashMap::new();
    let mut send = |node: &NodeHandle, who: &'static str| {
        let nonce = nonces.entry(who).or_insert(0);
        let tx = transfer(who, *nonce, "ferdie", 1);
        *nonce += 1;
        (node.clone(), tx)
    };
    for round in 0..3 {
        // Split 2 + 2; each side takes transactions and mines; the side
        // with more blocks wins when the network heals, and the other
        // side's transactions go back to the mempools.
        for n in [a, b] {
            n.partition(vec![c.local_addr(), d.local_addr()])
                .await
                .unwrap();
        }
        for n in [c, d] {
            n.partition(vec![a.local_addr(), b.local_addr()])
                .await
                .unwrap();
        }
        wait_for("split", || async {
            peer_count(a).await == 1 && peer_count(c).await == 1
        })
        .await;
        let (mut left, mut right) = (Vec::new(), Vec::new());
        for _ in 0..20 {
            for (node, tx) in [send(a, "alice"), send(b, "bob")] {
                left.push(node.submit(tx).await.unwrap());
            }
            for (node, tx) in [send(c, "charlie"), send(d, "dave")] {
                right.push(node.submit(tx).await.unwrap());
            }
        }
        // Gossip brings each side's transactions to both its nodes.
        for (side, ids) in [([a, b], &left), ([c, d], &right)] {
            for node in side {
                let ids = ids.clone();
                wait_for("a side's transactions on both its nodes", || {
                    let node = node.clone();
                    let ids = ids.clone();
                    async move {
                        node.query(move |v| ids.iter().all(|id| v.mempool.contains(id)))
                            .await
                            .unwrap()
                    }
                })
                .await;
            }
        }
        accepted.extend(left);
        accepted.extend(right);
        let (short, long) = if round % 2 == 0 { (a, c) } else { (c, a) };
        short.mine_blocks(1).await.unwrap();
        long.mine_blocks(3).await.unwrap();
        for n in [a, b, c, d] {
            n.heal().await.unwrap();
        }
        let all: Vec<&NodeHandle> = nodes.iter().collect();
        wait_same_tip(&all).await;
    }
    // Whatever is still pending is mined now, and nobody resubmits.
    let all: Vec<&NodeHandle> = nodes.iter().collect();
    wait_for("every mempool holds the same", || async {
        let mut sizes = Vec::new();
        for n in &all {
            sizes.push(n.query(|v| v.mempool.len()).await.unwrap());
        }
        sizes.windows(2).all(|w| w[0] == w[1])
    })
    .await;
    a.mine_blocks(1).await.unwrap();
    wait_same_tip(&all).await;
    for node in &nodes {
        let seen = mined(node).await;
        for id in &accepted {
            assert_eq!(
                seen.get(id),
                Some(&1),
                "transaction {id} mined exactly once"
            );
        }
        assert_eq!(node.query(|v| v.mempool.len()).await.unwrap(), 0);
    }
    for node in nodes {
        node.shutdown().await;
    }
}

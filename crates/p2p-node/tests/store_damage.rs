//! A damaged record in a store that redb still opens: a node on that
//! store never serves, hides or skips the damaged block silently. Reads of
//! it fail with `store_error` naming the block, a peer that syncs past it
//! gets an error notice rather than a chain that stops short, a start that
//! reads a damaged record refuses to start naming it, and a node with
//! peers fetches a good copy of a damaged best-chain block and repairs its
//! store.
//!
//! Each test runs a real node on a `RedbStore` in a temporary data
//! directory, stops it, damages `chain.redb` and starts again on it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::path::Path;

use chain_core::{BlockHash, Transaction, TxId};
use common::api::get;
use common::*;
use escrow::{Amount, Payload, SignedTx, Tx};
use futures::SinkExt;
use p2p_node::store::{RedbStore, STORE_FILE};
use p2p_node::{Seams, Service};
use reqwest::StatusCode;
use wire::{Bounded, Message, Reason};

/// The chain a node left in its store: hashes by height (genesis at 0)
/// and, for each height above 0, the transfer its block carries.
struct Saved {
    hashes: Vec<BlockHash>,
    transfers: Vec<SignedTx>,
}

impl Saved {
    /// The transfer in the block at `height` (at least 1).
    fn tx(&self, height: usize) -> &SignedTx {
        &self.transfers[height - 1]
    }
}

/// A node serving its API, on the store in `dir`, dialling `peers`.
async fn node_on(
    dir: &Path,
    peers: &[SocketAddr],
) -> Result<(Service, String), p2p_node::NodeError> {
    init_logs();
    let mut c = config();
    c.api = Some("127.0.0.1:0".parse().unwrap());
    c.peers = peers.to_vec();
    let store = RedbStore::open(dir).map_err(p2p_node::NodeError::Store)?;
    let node = Service::start(
        c,
        Seams {
            store: Box::new(store),
            ..Seams::default()
        },
    )
    .await?;
    let url = format!("http://{}", node.api_addr().unwrap());
    Ok((node, url))
}

/// Runs a node on `dir` that mines `blocks` blocks, each with one
/// transfer, then stops it cleanly.
async fn save_chain(dir: &Path, blocks: usize) -> Saved {
    let (node, _) = node_on(dir, &[]).await.unwrap();
    let mut transfers = Vec::new();
    for nonce in 0..blocks as u64 {
        let tx = sign(
            "alice",
            nonce,
            Payload::Transfer {
                to: addr("bob"),
                amount: Amount::new(1),
            },
        );
        node.submit(tx.clone()).await.unwrap();
        node.mine_blocks(1).await.unwrap();
        transfers.push(tx);
    }
    let hashes = node.query(|v| v.chain.best_chain().to_vec()).await.unwrap();
    node.shutdown().await;
    assert_eq!(hashes.len(), blocks + 1);
    Saved { hashes, transfers }
}

/// Flips one bit at `offset` of every copy of `needle` in the file at
/// `path` (redb's copy-on-write pages may keep more than one), as a disk
/// would; returns how many copies there were.
fn flip_in_file(path: &Path, needle: &[u8], offset: usize) -> usize {
    let mut bytes = std::fs::read(path).unwrap();
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(i) = bytes[at..].windows(needle.len()).position(|w| w == needle) {
        found.push(at + i);
        at += i + needle.len();
    }
    for i in &found {
        bytes[i + offset] ^= 0x01;
    }
    std::fs::write(path, bytes).unwrap();
    found.len()
}

/// The signature bytes of a transfer.
fn signature(tx: &SignedTx) -> [u8; 64] {
    tx.signature.0
}

/// Asserts a `store_error` answer that names the block and its height.
fn assert_store_error(answer: &(StatusCode, serde_json::Value), hash: &BlockHash, height: u64) {
    let (status, body) = answer;
    assert_eq!(*status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(body["code"], "store_error", "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains(&hash.to_string()), "{message}");
    assert!(message.contains(&format!("height {height}")), "{message}");
}

/// What a raw peer that asks for the best chain from genesis is sent:
/// the sync answer's heights and `more`, or the notice.
async fn sync_from_genesis(
    node: &Service,
    genesis: BlockHash,
) -> Result<(Vec<u64>, bool), Message> {
    let mut raw = RawPeer::connect(node.local_addr()).await;
    raw.handshake(genesis).await.unwrap();
    raw.framed
        .send(Message::GetSync {
            locator: Bounded::truncating(vec![genesis]),
            stop: BlockHash::ZERO,
        })
        .await
        .unwrap();
    while let Some(m) = raw.next().await {
        match m {
            Message::SyncBlocks { blocks, more } => {
                return Ok((blocks.iter().map(|b| b.header.height).collect(), more));
            }
            notice @ Message::Notice { .. } => return Err(notice),
            _ => {}
        }
    }
    panic!("the connection closed without an answer");
}

/// The reporter's case: one signature byte of the block at height 3 (tip
/// 5) flipped inside `chain.redb`, the file still valid for redb.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_in_a_stored_block_is_an_error_never_a_404_or_a_short_chain() {
    let dir = tempfile::tempdir().unwrap();
    let saved = save_chain(dir.path(), 5).await;
    let damaged = saved.hashes[3];
    let copies = flip_in_file(&dir.path().join(STORE_FILE), &signature(saved.tx(3)), 10);
    assert!(copies >= 1, "the block's signature is in the file");

    let (node, url) = node_on(dir.path(), &[]).await.unwrap();
    assert_eq!(tip(&node).await, (saved.hashes[5], 5));
    // The damaged block, by height, by hash, and through its transaction.
    assert_store_error(&get(&format!("{url}/blocks/height/3")).await, &damaged, 3);
    assert_store_error(&get(&format!("{url}/blocks/{damaged}")).await, &damaged, 3);
    let id: TxId = Tx::Signed(saved.tx(3).clone()).id();
    assert_store_error(&get(&format!("{url}/txs/{id}")).await, &damaged, 3);
    // A page that includes it fails; one that does not is served.
    assert_store_error(&get(&format!("{url}/blocks?last=3")).await, &damaged, 3);
    assert_store_error(
        &get(&format!("{url}/blocks?from=0&to=5")).await,
        &damaged,
        3,
    );
    let (status, body) = get(&format!("{url}/blocks?from=4&to=5")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body.as_array().unwrap().len(), 2);
    let (status, _) = get(&format!("{url}/blocks/height/2")).await;
    assert_eq!(status, StatusCode::OK);
    // A peer syncing from genesis is told, not handed a chain that stops.
    match sync_from_genesis(&node, saved.hashes[0]).await {
        Err(Message::Notice { reason, text }) => {
            assert_eq!(reason, Reason::StoreDamaged);
            assert!(text.as_str().contains(&damaged.to_string()), "{text:?}");
        }
        other => panic!("a sync past the damaged block answered {other:?}"),
    }
    node.shutdown().await;
}

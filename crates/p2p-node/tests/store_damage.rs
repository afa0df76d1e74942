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
#[path = "common/process.rs"]
mod process;

use std::net::SocketAddr;
use std::path::Path;

use chain_core::{BlockHash, Transaction, TxId};
use common::api::get;
use common::*;
use escrow::{Amount, Payload, SignedTx, Tx};
use futures::SinkExt;
use p2p_node::store::{RedbStore, STORE_FILE};
use p2p_node::{Seams, Service};
use redb::ReadableTable;
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

/// The tables of the store, as `RedbStore` names them.
const HEADERS: ::redb::TableDefinition<&[u8], &[u8]> = ::redb::TableDefinition::new("headers");
const BODIES: ::redb::TableDefinition<&[u8], &[u8]> = ::redb::TableDefinition::new("bodies");
const UNDO: ::redb::TableDefinition<&[u8], &[u8]> = ::redb::TableDefinition::new("undo");
const TXS: ::redb::TableDefinition<&[u8; 12], ()> = ::redb::TableDefinition::new("txs");

/// The index's key of transaction `id` at `height` (format 6: the id's
/// first 8 bytes, then the height, big-endian).
fn index_key(id: &TxId, height: u32) -> [u8; 12] {
    let mut key = [0; 12];
    key[..8].copy_from_slice(&id.as_bytes()[..8]);
    key[8..].copy_from_slice(&height.to_be_bytes());
    key
}
const STATE: ::redb::TableDefinition<&str, &[u8]> = ::redb::TableDefinition::new("state");
const MEMPOOL: ::redb::TableDefinition<&str, &[u8]> = ::redb::TableDefinition::new("mempool");

/// The key of the first chunk of a body or undo record (format 5: block
/// hash, then the chunk's number, big-endian).
fn chunk0(hash: &BlockHash) -> Vec<u8> {
    let mut key = hash.as_bytes().to_vec();
    key.extend_from_slice(&0u32.to_be_bytes());
    key
}

/// Flips bit 0 of the height the index names for transaction `id` (at
/// `height`): it names another height (or one with no block). Returns
/// false if there is no such entry.
fn flip_index(dir: &Path, id: &TxId, height: u32) -> bool {
    let db = ::redb::Database::open(dir.join(STORE_FILE)).unwrap();
    let write = db.begin_write().unwrap();
    let found = {
        let mut t = write.open_table(TXS).unwrap();
        let old = t.remove(&index_key(id, height)).unwrap().is_some();
        if old {
            t.insert(&index_key(id, height ^ 1), ()).unwrap();
        }
        old
    };
    write.commit().unwrap();
    found
}

/// Flips one bit of `value` at byte `at` (the last byte if `at` is past
/// the end).
fn flip(mut value: Vec<u8>, at: usize) -> Vec<u8> {
    let i = at.min(value.len() - 1);
    value[i] ^= 0x01;
    value
}

/// Flips one bit of the value under `key` in `table` (keyed by bytes) of
/// the store in `dir`, at byte `at`, through redb: the file stays valid
/// for redb, the record no longer matches its checksum (or its hash).
/// Returns false if there is no such record.
fn flip_value(
    dir: &Path,
    table: ::redb::TableDefinition<&[u8], &[u8]>,
    key: &[u8],
    at: usize,
) -> bool {
    let db = ::redb::Database::open(dir.join(STORE_FILE)).unwrap();
    let write = db.begin_write().unwrap();
    let found = {
        let mut t = write.open_table(table).unwrap();
        let old = t.get(key).unwrap().map(|v| v.value().to_vec());
        old.map(|v| t.insert(key, flip(v, at).as_slice()).unwrap())
            .is_some()
    };
    write.commit().unwrap();
    found
}

/// [`flip_value`] for a table keyed by names.
fn flip_named(
    dir: &Path,
    table: ::redb::TableDefinition<&str, &[u8]>,
    key: &str,
    at: usize,
) -> bool {
    let db = ::redb::Database::open(dir.join(STORE_FILE)).unwrap();
    let write = db.begin_write().unwrap();
    let found = {
        let mut t = write.open_table(table).unwrap();
        let old = t.get(key).unwrap().map(|v| v.value().to_vec());
        old.map(|v| t.insert(key, flip(v, at).as_slice()).unwrap())
            .is_some()
    };
    write.commit().unwrap();
    found
}

/// A copy of the store in `from` in a new temporary directory.
fn copy_store(from: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(from.join(STORE_FILE), dir.path().join(STORE_FILE)).unwrap();
    dir
}

/// Where a damaged record shows: which table, and what must happen.
#[derive(Clone, Copy, Debug)]
enum Table {
    Headers,
    Bodies,
    Undo,
    Txs,
    State,
    Pending,
}

/// A flip in every stored table at every height of a short chain: each
/// is found, at start for what a start reads (headers, the snapshot), at
/// read for the rest, and by `check` in every case; never a silent 404, a
/// skipped block, a short sync answer or a panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flip_in_any_table_at_any_height_is_found_and_named() {
    let base = tempfile::tempdir().unwrap();
    let saved = save_chain(base.path(), 5).await;
    // One transaction left pending, so that the saved mempool is not empty.
    {
        let (node, _) = node_on(base.path(), &[]).await.unwrap();
        node.submit(sign(
            "alice",
            5,
            Payload::Transfer {
                to: addr("bob"),
                amount: Amount::new(1),
            },
        ))
        .await
        .unwrap();
        node.shutdown().await;
    }
    assert!(p2p_node::store::check(base.path()).unwrap().is_intact());
    let genesis = saved.hashes[0];
    let cases = [Table::Headers, Table::Bodies, Table::Undo, Table::Txs]
        .into_iter()
        .flat_map(|t| (0..=5).map(move |h| (t, h)))
        .chain([(Table::State, 5), (Table::Pending, 5)]);
    for (table, height) in cases {
        let dir = copy_store(base.path());
        let hash = saved.hashes[height];
        let key = hash.as_bytes().as_slice();
        let found = match table {
            Table::Headers => flip_value(dir.path(), HEADERS, key, 40),
            // Past the checksum: the payload no longer matches it.
            Table::Bodies => flip_value(dir.path(), BODIES, &chunk0(&hash), 40),
            Table::Undo => flip_value(dir.path(), UNDO, &chunk0(&hash), 40),
            Table::Txs if height == 0 => continue,
            Table::Txs => {
                let id = Tx::Signed(saved.tx(height).clone()).id();
                flip_index(dir.path(), &id, height as u32)
            }
            Table::State => flip_named(dir.path(), STATE, "snapshot", 40),
            Table::Pending => flip_named(dir.path(), MEMPOOL, "pending", 40),
        };
        if !found {
            // Genesis is not stored: every node has it from its genesis.
            assert_eq!(height, 0, "{table:?} at height {height} is stored");
            continue;
        }
        let case = format!("{table:?} at height {height}");
        let report = p2p_node::store::check(dir.path()).unwrap();
        assert!(!report.is_intact(), "{case}: check found nothing");

        let started = node_on(dir.path(), &[]).await;
        match table {
            Table::Headers | Table::State => {
                let e = started.err().unwrap_or_else(|| panic!("{case}: started"));
                let message = e.to_string();
                assert!(message.contains(STORE_FILE), "{case}: {message}");
                if matches!(table, Table::Headers) {
                    assert!(message.contains(&hash.to_string()), "{case}: {message}");
                }
            }
            Table::Bodies | Table::Undo | Table::Txs | Table::Pending => {
                let (node, url) = started.unwrap_or_else(|e| panic!("{case}: {e}"));
                assert_eq!(tip(&node).await, (saved.hashes[5], 5), "{case}");
                let damaged_body = matches!(table, Table::Bodies) && height > 0;
                for h in 0..=5u64 {
                    let answer = get(&format!("{url}/blocks/height/{h}")).await;
                    if damaged_body && h == height as u64 {
                        assert_store_error(&answer, &hash, h);
                    } else {
                        assert_eq!(answer.0, StatusCode::OK, "{case}: height {h}: {}", answer.1);
                    }
                }
                let page = get(&format!("{url}/blocks?from=0&to=5")).await;
                if damaged_body {
                    assert_store_error(&page, &hash, height as u64);
                    assert!(sync_from_genesis(&node, genesis).await.is_err(), "{case}");
                } else {
                    assert_eq!(page.1.as_array().map(Vec::len), Some(6), "{case}");
                    assert_eq!(
                        sync_from_genesis(&node, genesis).await.unwrap(),
                        ((1..=5).collect(), false),
                        "{case}"
                    );
                }
                for h in 1..=5 {
                    let id = Tx::Signed(saved.tx(h).clone()).id();
                    let answer = get(&format!("{url}/txs/{id}")).await;
                    let damaged_index = matches!(table, Table::Txs) && h == height;
                    if (damaged_body || damaged_index) && h == height {
                        assert_eq!(answer.0, StatusCode::INTERNAL_SERVER_ERROR, "{case}");
                        assert_eq!(answer.1["code"], "store_error", "{case}");
                    } else {
                        assert_eq!(answer.0, StatusCode::OK, "{case}: tx at {h}: {}", answer.1);
                    }
                }
                node.shutdown().await;
            }
        }
    }
}

/// A node with a damaged block and a peer that has it fetches a good copy,
/// checks it against its header and repairs its store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_block_is_repaired_from_a_peer() {
    let good = start(&[], p2p_node::MiningMode::Off).await;
    for nonce in 0..5 {
        good.submit(sign(
            "alice",
            nonce,
            Payload::Transfer {
                to: addr("bob"),
                amount: Amount::new(1),
            },
        ))
        .await
        .unwrap();
        good.mine_blocks(1).await.unwrap();
    }
    let (good_tip, _) = tip(&good).await;
    let dir = tempfile::tempdir().unwrap();
    {
        let (node, _) = node_on(dir.path(), &[good.local_addr()]).await.unwrap();
        wait_for("the copy to sync", || async {
            tip(&node).await.0 == good_tip
        })
        .await;
        node.shutdown().await;
    }
    let hash3 = good
        .query(|v| v.chain.hash_at_height(3).unwrap())
        .await
        .unwrap();
    assert!(flip_value(dir.path(), BODIES, &chunk0(&hash3), 40));
    let report = p2p_node::store::check(dir.path()).unwrap();
    assert_eq!(report.damage.len(), 1, "{:?}", report.damage);
    assert_eq!(report.damage[0].table, "bodies");

    let (node, url) = node_on(dir.path(), &[good.local_addr()]).await.unwrap();
    wait_for("the damaged block to be repaired", || async {
        get(&format!("{url}/blocks/height/3")).await.0 == StatusCode::OK
    })
    .await;
    let (_, body) = get(&format!("{url}/blocks/height/3")).await;
    assert_eq!(body["hash"], hash3.to_string());
    node.shutdown().await;
    good.shutdown().await;
    assert!(p2p_node::store::check(dir.path()).unwrap().is_intact());
}

/// `p2p-node check`: exit 0 and the records counted on an intact store;
/// exit 6, `store_damaged`, and the damaged record named on a damaged one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_lists_the_damaged_records_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let saved = save_chain(dir.path(), 3).await;
    let check = || {
        std::process::Command::new(process::binary())
            .args(["--json", "check", "--data-dir"])
            .arg(dir.path())
            .output()
            .unwrap()
    };
    let out = check();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Genesis is not stored: the three blocks above it are.
    assert_eq!(report["records"]["headers"], 3, "{report}");
    assert_eq!(report["damage"], serde_json::json!([]));

    let hash = saved.hashes[2];
    assert!(flip_value(dir.path(), BODIES, &chunk0(&hash), 40));
    let out = check();
    assert_eq!(out.status.code(), Some(6));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["damage"][0]["table"], "bodies", "{report}");
    assert_eq!(report["damage"][0]["key"], hash.to_string(), "{report}");
    let err: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["code"], "store_damaged", "{err}");
    // What to do, as the node does it: which damage a start repairs, which
    // a read repairs (and how to make the node read it), which it cannot.
    let message = err["message"].as_str().unwrap();
    for what in [
        "--peer",
        "after the last ledger snapshot is fetched again at start",
        "p2p-node block HASH",
        "undo records",
        "move the file aside",
    ] {
        assert!(message.contains(what), "{what:?} in {message}");
    }
}

/// Runs a node on the store in `dir` that syncs from `peer` until its tip
/// is `until`, then ends it as a crash (`kill -9`) would: its runtime is
/// dropped with the node running, so no clean stop writes a ledger
/// snapshot at the tip. The store keeps the snapshot its first commit
/// wrote (at genesis) and every block after it: all of them are applied
/// again at the next start.
fn sync_then_crash(dir: &Path, peer: SocketAddr, until: BlockHash) {
    let dir = dir.to_path_buf();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut c = config();
            c.peers = vec![peer];
            let store = RedbStore::open(&dir).unwrap();
            let node = p2p_node::Node::start_with(
                c,
                Seams {
                    store: Box::new(store),
                    ..Seams::default()
                },
            )
            .await
            .unwrap();
            wait_for("the copy to sync", || async { tip(&node).await.0 == until }).await;
        });
        // No shutdown: the tasks are dropped where they stand.
        drop(rt);
    })
    .join()
    .unwrap();
}

/// A node with five blocks (each with a transfer), in memory.
async fn good_node() -> p2p_node::NodeHandle {
    let good = start(&[], p2p_node::MiningMode::Off).await;
    for nonce in 0..5 {
        good.submit(sign(
            "alice",
            nonce,
            Payload::Transfer {
                to: addr("bob"),
                amount: Amount::new(1),
            },
        ))
        .await
        .unwrap();
        good.mine_blocks(1).await.unwrap();
    }
    good
}

/// The reviewer's case: after a crash, the blocks saved since the last
/// ledger snapshot are applied again at start, and one of their bodies is
/// damaged. The start does not fail: the chain is restored below the
/// damaged block, and the node fetches it and the blocks above it from a
/// peer, by the normal path, and saves them: its store is intact again.
/// Without a peer it runs at the height below, and the damage stays for
/// `check` to find.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_block_after_the_last_snapshot_does_not_stop_the_start_and_is_fetched_again() {
    let good = good_node().await;
    let (good_tip, _) = tip(&good).await;
    let hashes = good.query(|v| v.chain.best_chain().to_vec()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    sync_then_crash(dir.path(), good.local_addr(), good_tip);
    assert!(flip_value(dir.path(), BODIES, &chunk0(&hashes[3]), 40));
    let report = p2p_node::store::check(dir.path()).unwrap();
    assert_eq!(report.damage.len(), 1, "{:?}", report.damage);

    // Alone: it starts, at the block below the damaged one.
    let alone = copy_store(dir.path());
    {
        let (node, url) = node_on(alone.path(), &[]).await.unwrap_or_else(|e| {
            panic!("a damaged block after the snapshot stopped the start: {e}")
        });
        assert_eq!(tip(&node).await, (hashes[2], 2));
        let (status, body) = get(&format!("{url}/blocks/height/2")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        node.shutdown().await;
    }
    assert!(!p2p_node::store::check(alone.path()).unwrap().is_intact());

    // With a peer: fetched again and saved.
    let (node, url) = node_on(dir.path(), &[good.local_addr()])
        .await
        .unwrap_or_else(|e| panic!("a damaged block after the snapshot stopped the start: {e}"));
    wait_for("the chain to move forward again", || async {
        tip(&node).await.0 == good_tip
    })
    .await;
    let (status, body) = get(&format!("{url}/blocks/height/3")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["hash"], hashes[3].to_string());
    // Its transfer (alice's third) is found through the index again.
    let transfer = sign(
        "alice",
        2,
        Payload::Transfer {
            to: addr("bob"),
            amount: Amount::new(1),
        },
    );
    let id = Tx::Signed(transfer).id();
    let (status, body) = get(&format!("{url}/txs/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["block"], hashes[3].to_string(), "{body}");
    node.shutdown().await;
    good.shutdown().await;
    let report = p2p_node::store::check(dir.path()).unwrap();
    assert!(report.is_intact(), "{:?}", report.damage);
}

/// `check` on an index entry that names an intact stored block which does
/// not hold the transaction: that entry is listed, and only it (the check
/// counts entries per block rather than keeping every transaction id).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_an_index_entry_whose_block_does_not_hold_it() {
    let dir = tempfile::tempdir().unwrap();
    let saved = save_chain(dir.path(), 4).await;
    assert!(p2p_node::store::check(dir.path()).unwrap().is_intact());
    let id = Tx::Signed(saved.tx(2).clone()).id();
    {
        let db = ::redb::Database::open(dir.path().join(STORE_FILE)).unwrap();
        let write = db.begin_write().unwrap();
        {
            let mut t = write.open_table(TXS).unwrap();
            // Block 4's height (beside its own, 2).
            t.insert(&index_key(&id, 4), ()).unwrap();
        }
        write.commit().unwrap();
    }
    let report = p2p_node::store::check(dir.path()).unwrap();
    assert_eq!(
        report.damage,
        vec![p2p_node::store::Damage {
            table: "txs",
            key: hex::encode(index_key(&id, 4)),
            problem: format!("block {} does not hold it", saved.hashes[4]),
        }]
    );
}

//! What the redb store keeps per block beyond the block: a workload of
//! full blocks (1,000 signed transfers from 1,000 distinct funded senders
//! each) committed as a syncing node commits them, then the data
//! directory's size against the blocks' bytes, table by table.
//!
//! `the_data_directory_stays_within_one_and_a_half_times_the_block_bytes`
//! guards it; the ignored `store_size_report` prints the figures for any
//! number of blocks (`STORE_SIZE_BLOCKS`, default 100; `docs/PERFORMANCE.md`,
//! "The store's size"):
//!
//! ```sh
//! STORE_SIZE_BLOCKS=500 cargo test --release -p p2p-node --lib store_size_report -- --ignored --nocapture
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ::redb::{ReadableDatabase, ReadableTableMetadata, TableDefinition};
use chain_core::{Block, BlockContext, StateMachine, TxId};
use escrow::genesis::Allocation;
use escrow::{Amount, Genesis, Keypair, Ledger, Payload, SignedTx, Tx, Undo, VerifyMode};

use super::compaction::{Compaction, compact_within};
use super::redb_tables::{BEST, BODIES, HEADERS, MEMPOOL, STATE, TXS, UNDO};
use super::{BlockStore, Commit, IndexChange, RedbStore, StateSnapshot};

/// Blocks per commit: what a syncing node commits at once (its batches
/// are at most 50 ms; about 25 full blocks here).
const BLOCKS_PER_COMMIT: usize = 25;
/// The node's default `snapshot_every`: a snapshot after this many
/// blocks or ten times as many transactions (`core/durable.rs`).
const SNAPSHOT_EVERY: u64 = 1_000;

/// The workload: `senders` funded accounts, each sending one transfer
/// (fee 1) to the next in every block.
struct Workload {
    keys: Vec<Keypair>,
    ledger: Ledger,
    template: chain_core::Header,
    network: chain_core::BlockHash,
    parent: chain_core::BlockHash,
    height: u64,
}

impl Workload {
    fn new(senders: usize) -> Workload {
        let keys: Vec<Keypair> = (0..senders)
            .map(|i| {
                let mut seed = *b"store size account .............";
                seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
                Keypair::from_seed(seed)
            })
            .collect();
        let mut genesis = Genesis::dev();
        genesis.allocations.extend(keys.iter().map(|k| Allocation {
            to: k.address(),
            amount: Amount::new(1_000_000),
        }));
        let chain = genesis.chain().unwrap();
        let mut ledger = chain.state().clone();
        ledger.set_verify_mode(VerifyMode::Batch { threads: 2 });
        Workload {
            keys,
            ledger,
            template: chain.template(&[], 0),
            network: genesis.network_id(),
            parent: chain.tip(),
            height: 0,
        }
    }

    /// The next block, applied to the ledger, with its undo record.
    fn next_block(&mut self) -> (Arc<Block<Tx>>, Undo) {
        self.height += 1;
        let height = self.height;
        let miner = escrow::dev::address("eve").unwrap();
        let mut transactions = vec![Tx::Coinbase { to: miner, height }];
        let n = self.keys.len();
        transactions.extend(self.keys.iter().enumerate().map(|(i, k)| {
            Tx::Signed(SignedTx::sign(
                k,
                height - 1,
                Amount::new(1),
                self.network,
                Payload::Transfer {
                    to: self.keys[(i + 1) % n].address(),
                    amount: Amount::new(1 + i as u64 % 7),
                },
            ))
        }));
        let mut header = self.template;
        header.height = height;
        header.parent = self.parent;
        header.timestamp_ms = 1_000 * height;
        let block = Block {
            header,
            transactions,
        };
        let ctx = BlockContext {
            hash: block.hash(),
            height,
            timestamp_ms: header.timestamp_ms,
        };
        let undo = self
            .ledger
            .apply_block(&ctx, &block.transactions)
            .expect("the workload's block applies");
        self.parent = block.hash();
        (Arc::new(block), undo)
    }
}

/// Feeds `blocks` full blocks of `senders` transfers into a store in
/// `dir` in commits of [`BLOCKS_PER_COMMIT`], with a ledger snapshot
/// when the node would write one; returns the blocks' bytes (their wire
/// encoding, the bytes a peer sends) and the store, still open.
fn feed(dir: &Path, blocks: usize, senders: usize) -> (u64, RedbStore) {
    let store = RedbStore::open(dir).unwrap();
    let mut work = Workload::new(senders);
    let mut block_bytes = 0u64;
    let (mut since_blocks, mut since_txs, mut has_snapshot) = (0u64, 0u64, false);
    let mut left = blocks;
    while left > 0 {
        let batch = left.min(BLOCKS_PER_COMMIT);
        left -= batch;
        let mut commit = Commit::default();
        for _ in 0..batch {
            let (block, undo) = work.next_block();
            block_bytes += wire::encoded_len(&*block) as u64;
            since_blocks += 1;
            since_txs += block.transactions.len() as u64;
            commit.undo.push((block.hash(), undo));
            commit.index.push(IndexChange::Applied(Arc::clone(&block)));
            commit.blocks.push(block);
        }
        // As `Durable::flush` decides.
        if !has_snapshot || since_blocks >= SNAPSHOT_EVERY || since_txs >= SNAPSHOT_EVERY * 10 {
            commit.snapshot = Some(StateSnapshot {
                block: work.parent,
                height: work.height,
                ledger: work.ledger.clone(),
            });
            (since_blocks, since_txs, has_snapshot) = (0, 0, true);
        }
        store.commit(&commit).unwrap();
    }
    (block_bytes, store)
}

/// Every file's length in `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

/// The disk space the files in `dir` take (`du`: a file's length less its
/// holes, in whole blocks).
fn dir_disk_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().blocks() * 512)
        .sum()
}

/// One table's figures, from redb's statistics.
fn table_line<K: ::redb::Key + 'static, V: ::redb::Value + 'static>(
    out: &mut String,
    read: &::redb::ReadTransaction,
    name: &str,
    table: TableDefinition<K, V>,
    per_block: f64,
) -> u64 {
    let Ok(t) = read.open_table(table) else {
        return 0;
    };
    let s = t.stats().unwrap();
    let pages = s.stored_bytes() + s.metadata_bytes() + s.fragmented_bytes();
    writeln!(
        out,
        "{name:<8} {:>9} entries {:>12} stored {:>10} meta {:>11} fragmented {:>12} in pages ({:>8.0} B/block stored, {:>8.0} B/block in pages)",
        t.len().unwrap(),
        s.stored_bytes(),
        s.metadata_bytes(),
        s.fragmented_bytes(),
        pages,
        s.stored_bytes() as f64 / per_block,
        pages as f64 / per_block,
    )
    .unwrap();
    pages
}

/// The report: the data directory against the blocks' bytes, and where
/// the rest is.
fn report(dir: &Path, blocks: usize, block_bytes: u64) -> String {
    let file = dir_bytes(dir);
    let disk = dir_disk_bytes(dir);
    let mut out = String::new();
    writeln!(
        out,
        "{blocks} blocks, {block_bytes} block bytes; data directory {file} bytes = {:.2} x ({disk} bytes on disk = {:.2} x)",
        file as f64 / block_bytes as f64,
        disk as f64 / block_bytes as f64,
    )
    .unwrap();
    let db = ::redb::Database::open(dir.join(super::STORE_FILE)).unwrap();
    let read = db.begin_read().unwrap();
    let n = blocks as f64;
    let mut in_pages = 0;
    in_pages += table_line(&mut out, &read, "headers", HEADERS, n);
    in_pages += table_line(&mut out, &read, "bodies", BODIES, n);
    in_pages += table_line(&mut out, &read, "undo", UNDO, n);
    in_pages += table_line(&mut out, &read, "txs", TXS, n);
    in_pages += table_line(&mut out, &read, "best", BEST, n);
    in_pages += table_line(&mut out, &read, "state", STATE, n);
    in_pages += table_line(&mut out, &read, "mempool", MEMPOOL, n);
    drop(read);
    let stats = db.begin_write().unwrap().stats().unwrap();
    writeln!(
        out,
        "tables' pages {in_pages}; database: allocated {} bytes, fragmented {}, metadata {}; file {} ({} not allocated: free pages, redb's header and regions)",
        stats.allocated_pages() * stats.page_size() as u64,
        stats.fragmented_bytes(),
        stats.metadata_bytes(),
        file,
        file.saturating_sub(stats.allocated_pages() * stats.page_size() as u64),
    )
    .unwrap();
    out
}

/// The figures for `STORE_SIZE_BLOCKS` full blocks (default 100).
#[test]
#[ignore = "a measurement: run it by name with --ignored --nocapture"]
fn store_size_report() {
    let blocks = std::env::var("STORE_SIZE_BLOCKS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let dir = tempfile::tempdir().unwrap();
    let (block_bytes, store) = feed(dir.path(), blocks, 1_000);
    let (file, disk) = (dir_bytes(dir.path()), dir_disk_bytes(dir.path()));
    println!(
        "open, after the last commit: data directory {file} bytes = {:.2} x ({disk} bytes on disk = {:.2} x)",
        file as f64 / block_bytes as f64,
        disk as f64 / block_bytes as f64,
    );
    // What the index's 8-byte keys cost a lookup (it reads the block):
    // a whole id, and a range of `MAX_COUNTED` + 1 ids, the API's worst
    // case (its prefixes have 8 hex digits at least: this range has one,
    // so its ids are spread over every block).
    let started = std::time::Instant::now();
    let (low, high) = (
        TxId::from_bytes(std::array::from_fn(|i| if i == 0 { 0xa0 } else { 0 })),
        TxId::from_bytes(std::array::from_fn(|i| if i == 0 { 0xaf } else { 0xff })),
    );
    let found = store.txs_in_range(&low, &high, 1_001).unwrap();
    println!(
        "a one-digit range: {} ids in {:?}",
        found.len(),
        started.elapsed()
    );
    let started = std::time::Instant::now();
    assert!(store.tx_block(&found[0]).unwrap().is_some());
    println!("a lookup by id: {:?}", started.elapsed());
    store.clean_stop();
    let started = std::time::Instant::now();
    drop(store);
    println!("closed (compacted) in {:?}:", started.elapsed());
    println!("{}", report(dir.path(), blocks, block_bytes));
}

/// The guard: 30 full blocks (1,000 transfers from 1,000 distinct
/// senders each, about 165 kB), committed as a syncing node commits
/// them. The data directory of the store closed at a clean stop is at
/// most 1.5 times the blocks' bytes, the issue's target: 1.32 here,
/// 1.29 at 500 blocks (the snapshot weighs more in fewer blocks;
/// `docs/PERFORMANCE.md`, "The store's size"). While open, the file is
/// longer (redb doubles it as it grows, and copy-on-write commits leave
/// free pages; see `docs/ARCHITECTURE.md`, "The store's format"): 1.80
/// times here, 1.43 on disk (not guarded: `du` depends on the file
/// system).
#[test]
fn the_data_directory_stays_within_one_and_a_half_times_the_block_bytes() {
    let blocks = 30;
    let dir = tempfile::tempdir().unwrap();
    let (block_bytes, store) = feed(dir.path(), blocks, 1_000);
    eprintln!(
        "open: {} bytes, {} on disk, for {block_bytes}",
        dir_bytes(dir.path()),
        dir_disk_bytes(dir.path())
    );
    store.clean_stop();
    drop(store);
    let ratio = dir_bytes(dir.path()) as f64 / block_bytes as f64;
    eprintln!("closed: {ratio:.3} x");
    assert!(
        ratio <= 1.5,
        "the closed store is {ratio:.3} x its blocks' bytes:\n{}",
        report(dir.path(), blocks, block_bytes)
    );
    // And it holds what was saved.
    let store = RedbStore::open(dir.path()).unwrap();
    assert_eq!(store.load().unwrap().headers.len(), blocks);
}

/// An undo record written against its block reads back as it was, for
/// every kind of change: balances and nonces of addresses the block names
/// (new ones among them), a balance restored twice (the miner's), and
/// changes stored as escrow has them (the coinbase's issue).
#[test]
fn an_undo_record_reads_back_as_written() {
    let mut work = Workload::new(20);
    for _ in 0..2 {
        let (block, undo) = work.next_block();
        let bytes = undo.encode_against(&block.transactions);
        assert_eq!(
            Undo::decode_against(&bytes, &block.transactions).unwrap(),
            undo
        );
        assert!(bytes.len() < postcard::to_stdvec(&undo).unwrap().len() / 4);
    }
    // A transfer to an address no ledger entry has, and an escrow.
    let network = work.network;
    let fresh = Keypair::from_seed([7; 32]).address();
    let pay = |nonce, payload| {
        Tx::Signed(SignedTx::sign(
            &work.keys[0],
            nonce,
            Amount::new(1),
            network,
            payload,
        ))
    };
    let txs = vec![
        Tx::Coinbase {
            to: fresh,
            height: 3,
        },
        pay(
            2,
            Payload::Transfer {
                to: fresh,
                amount: Amount::new(5),
            },
        ),
        pay(
            3,
            Payload::EscrowCreate {
                seller: work.keys[1].address(),
                arbiter: work.keys[2].address(),
                amount: Amount::new(9),
                delivery_deadline: 100,
                dispute_window: 10,
            },
        ),
    ];
    let mut block = Block {
        header: work.template,
        transactions: txs,
    };
    block.header.height = 3;
    let ctx = BlockContext {
        hash: block.hash(),
        height: 3,
        timestamp_ms: 3_000,
    };
    let undo = work.ledger.apply_block(&ctx, &block.transactions).unwrap();
    let bytes = undo.encode_against(&block.transactions);
    assert_eq!(
        Undo::decode_against(&bytes, &block.transactions).unwrap(),
        undo
    );
    // Against another block it is refused or differs, never silently equal.
    let other = Workload::new(20).next_block().0;
    assert_ne!(
        Undo::decode_against(&bytes, &other.transactions).ok(),
        Some(undo)
    );
}

/// A file's length.
fn file_len(dir: &Path) -> u64 {
    std::fs::metadata(dir.join(super::STORE_FILE))
        .unwrap()
        .len()
}

/// The close compacts only after a clean stop, and a file longer than
/// its bound is left as it is; either way the store reopens with all it
/// saved.
#[test]
fn only_a_clean_stop_compacts_and_within_its_bound() {
    let cases = [
        ("no clean stop", false, Compaction::default(), false),
        (
            "too long",
            true,
            Compaction {
                max_file_bytes: 0,
                ..Compaction::default()
            },
            false,
        ),
        ("clean stop", true, Compaction::default(), true),
    ];
    for (what, clean, compaction, shrinks) in cases {
        let dir = tempfile::tempdir().unwrap();
        let (_, mut store) = feed(dir.path(), 8, 200);
        store.set_compaction(compaction);
        let open = file_len(dir.path());
        if clean {
            store.clean_stop();
        }
        drop(store);
        let closed = file_len(dir.path());
        assert_eq!(closed < open, shrinks, "{what}: {open} then {closed} bytes");
        let store = RedbStore::open(dir.path()).unwrap();
        assert_eq!(store.load().unwrap().headers.len(), 8, "{what}");
    }
}

/// The time budget stops the calls of `Database::compact` between two:
/// with none, one call is made, however much is left.
#[test]
fn compaction_stops_after_one_call_once_its_budget_is_spent() {
    let fragmented = |dir: &Path| {
        let db = ::redb::Database::create(dir.join("f.redb")).unwrap();
        let table: TableDefinition<u64, &[u8]> = TableDefinition::new("t");
        let write = db.begin_write().unwrap();
        {
            let mut t = write.open_table(table).unwrap();
            for i in 0..2_000u64 {
                t.insert(i, [7u8; 500].as_slice()).unwrap();
            }
        }
        write.commit().unwrap();
        let write = db.begin_write().unwrap();
        {
            let mut t = write.open_table(table).unwrap();
            for i in (0..2_000u64).filter(|i| i % 4 != 0) {
                t.remove(i).unwrap();
            }
        }
        write.commit().unwrap();
        db
    };
    let dir = tempfile::tempdir().unwrap();
    let mut db = fragmented(dir.path());
    assert_eq!(compact_within(&mut db, Duration::ZERO).unwrap(), 1);
    let dir = tempfile::tempdir().unwrap();
    let mut db = fragmented(dir.path());
    // Unbounded, it calls until a call has nothing left to do.
    assert!(compact_within(&mut db, Duration::MAX).unwrap() >= 2);
}

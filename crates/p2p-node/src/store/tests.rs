//! The store against damaged files, format versions and reopening.

#![allow(clippy::unwrap_used)]

use super::redb_tables::{BODIES, HEADERS, META, STATE};
use super::*;
use ::redb::ReadableDatabase;
use escrow::Genesis;

/// `n` distinct blocks, each with a transaction of its own (a coinbase;
/// the store does not check how blocks link, the chain's restore does).
fn blocks(n: u64) -> Vec<Arc<Block<Tx>>> {
    let to = escrow::dev::address("alice").unwrap();
    (0..n)
        .map(|i| {
            let mut b = Genesis::dev().block();
            b.header.nonce = i + 1;
            b.header.height = i + 1;
            b.transactions = vec![Tx::Coinbase { to, height: i + 1 }];
            Arc::new(b)
        })
        .collect()
}

fn snapshot(block: &Block<Tx>) -> StateSnapshot {
    StateSnapshot {
        block: block.hash(),
        height: 0,
        ledger: Genesis::dev().chain().unwrap().state().clone(),
    }
}

/// A commit of `blocks`, each applied (indexed, with an empty undo record).
fn commit_of(blocks: &[Arc<Block<Tx>>]) -> Commit {
    Commit {
        blocks: blocks.to_vec(),
        undo: blocks.iter().map(|b| (b.hash(), Undo::default())).collect(),
        index: blocks.iter().cloned().map(IndexChange::Applied).collect(),
        snapshot: None,
    }
}

/// Where reading a store failed.
#[derive(Debug)]
enum ReadFailure {
    /// Opening it or loading what a start needs: nothing may have been
    /// written yet.
    AtStart(StoreError),
    /// Reading a body back later, from a store open for writing.
    Later(StoreError),
}

/// Opens the store in `dir` and reads everything back: what a start
/// loads, then every body.
fn read_all(dir: &std::path::Path) -> Result<(Stored, Vec<Block<Tx>>), ReadFailure> {
    let store = RedbStore::open(dir).map_err(ReadFailure::AtStart)?;
    let stored = store.load().map_err(ReadFailure::AtStart)?;
    let mut bodies = Vec::new();
    for (hash, _) in &stored.headers {
        bodies.extend(store.block(hash).map_err(ReadFailure::Later)?);
    }
    Ok((stored, bodies))
}

#[test]
fn commits_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let saved = blocks(3);
    let snap = snapshot(&saved[2]);
    {
        let store = RedbStore::open(dir.path()).unwrap();
        store.commit(&commit_of(&saved[..2])).unwrap();
        let mut last = commit_of(&saved[2..]);
        last.snapshot = Some(snap.clone());
        store.commit(&last).unwrap();
    }
    let store = RedbStore::open(dir.path()).unwrap();
    assert!(!store.was_repaired());
    let stored = store.load().unwrap();
    let mut hashes: Vec<_> = stored.headers.iter().map(|(h, _)| *h).collect();
    hashes.sort();
    let mut expected: Vec<_> = saved.iter().map(|b| b.hash()).collect();
    expected.sort();
    assert_eq!(hashes, expected);
    assert_eq!(stored.snapshot, Some(snap));
    for b in &saved {
        assert_eq!(store.block(&b.hash()).unwrap().as_ref(), Some(&**b));
        assert_eq!(store.undo(&b.hash()).unwrap(), Some(Undo::default()));
    }
    assert_eq!(store.block(&BlockHash::from_bytes([7; 32])).unwrap(), None);
    // The index points each transaction at its block, until it is undone.
    let tx = saved[1].transactions[0].id();
    assert_eq!(store.tx_block(&tx).unwrap(), Some(saved[1].hash()));
    store
        .commit(&Commit {
            index: vec![IndexChange::Undone(saved[1].clone())],
            ..Commit::default()
        })
        .unwrap();
    assert_eq!(store.tx_block(&tx).unwrap(), None);
    let other = saved[0].transactions[0].id();
    assert_eq!(store.tx_block(&other).unwrap(), Some(saved[0].hash()));
}

#[test]
fn another_format_version_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    drop(RedbStore::open(dir.path()).unwrap());
    {
        let db = ::redb::Database::open(dir.path().join(STORE_FILE)).unwrap();
        let write = db.begin_write().unwrap();
        write
            .open_table(META)
            .unwrap()
            .insert("format", 99)
            .unwrap();
        write.commit().unwrap();
    }
    let err = RedbStore::open(dir.path()).err().unwrap();
    assert!(matches!(
        err,
        StoreError::Version {
            found: 99,
            expected: FORMAT_VERSION,
            ..
        }
    ));
    assert!(err.to_string().contains(STORE_FILE));
}

/// Writes `value` under `key` of `table`, behind the store's back.
fn overwrite(
    dir: &std::path::Path,
    table: ::redb::TableDefinition<&[u8], &[u8]>,
    key: &[u8],
    value: &[u8],
) {
    let db = ::redb::Database::open(dir.join(STORE_FILE)).unwrap();
    let write = db.begin_write().unwrap();
    write.open_table(table).unwrap().insert(key, value).unwrap();
    write.commit().unwrap();
}

#[test]
fn an_undecodable_body_is_reported_when_read_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let saved = blocks(2);
    RedbStore::open(dir.path())
        .unwrap()
        .commit(&commit_of(&saved))
        .unwrap();
    let hash = saved[1].hash();
    // Its first chunk (`chunks.rs`).
    overwrite(
        dir.path(),
        BODIES,
        &chunks::key(hash.as_bytes(), 0),
        &[1u8, 2, 3],
    );
    let store = RedbStore::open(dir.path()).unwrap();
    let err = store.block(&hash).err().unwrap();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains(&hash.to_string()), "{err}");
    assert!(err.to_string().contains(STORE_FILE), "{err}");
    // The other block is intact.
    assert_eq!(
        store.block(&saved[0].hash()).unwrap().as_ref(),
        Some(&*saved[0])
    );
}

#[test]
fn a_header_that_is_not_its_key_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let saved = blocks(2);
    RedbStore::open(dir.path())
        .unwrap()
        .commit(&commit_of(&saved))
        .unwrap();
    overwrite(
        dir.path(),
        HEADERS,
        saved[0].hash().as_bytes(),
        &saved[1].header.to_bytes(),
    );
    let err = RedbStore::open(dir.path()).err().unwrap();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("hashes to"), "{err}");
}

#[test]
fn a_damaged_snapshot_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let saved = blocks(1);
    let mut commit = commit_of(&saved);
    commit.snapshot = Some(snapshot(&saved[0]));
    RedbStore::open(dir.path())
        .unwrap()
        .commit(&commit)
        .unwrap();
    {
        let db = ::redb::Database::open(dir.path().join(STORE_FILE)).unwrap();
        let read = db.begin_read().unwrap();
        let mut value = read
            .open_table(STATE)
            .unwrap()
            .get("snapshot")
            .unwrap()
            .unwrap()
            .value()
            .to_vec();
        drop(read);
        let last = value.len() - 1;
        value[last] ^= 1;
        let write = db.begin_write().unwrap();
        write
            .open_table(STATE)
            .unwrap()
            .insert("snapshot", value.as_slice())
            .unwrap();
        write.commit().unwrap();
    }
    let err = RedbStore::open(dir.path()).err().unwrap();
    assert!(
        err.to_string()
            .contains("the state snapshot fails its checksum"),
        "{err}"
    );
}

#[test]
fn a_file_that_is_not_a_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(STORE_FILE),
        b"not a redb file at all, really",
    )
    .unwrap();
    let err = RedbStore::open(dir.path()).err().unwrap();
    assert!(err.to_string().contains(STORE_FILE), "{err}");
    // Nothing was rewritten.
    assert_eq!(
        std::fs::read(dir.path().join(STORE_FILE)).unwrap(),
        b"not a redb file at all, really"
    );
}

/// The blocks as the test saved them, sorted, to compare with what is read.
fn sorted(blocks: impl IntoIterator<Item = Block<Tx>>) -> Vec<Block<Tx>> {
    let mut out: Vec<_> = blocks.into_iter().collect();
    out.sort_by_key(|b| b.hash());
    out
}

#[test]
fn a_byte_flipped_anywhere_gives_the_saved_blocks_or_an_error_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let saved = blocks(30);
    {
        let store = RedbStore::open(dir.path()).unwrap();
        for chunk in saved.chunks(3) {
            store.commit(&commit_of(chunk)).unwrap();
        }
    }
    let original = std::fs::read(dir.path().join(STORE_FILE)).unwrap();
    let expected = sorted(saved.iter().map(|b| (**b).clone()));
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    let (mut refused, mut intact) = (0, 0);
    for trial in 0..50 {
        rng = rng
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        // Half the trials hit the middle of the file, where the data
        // pages are; the rest anywhere.
        let len = original.len() as u64;
        let offset = if trial % 2 == 0 {
            (len / 4 + (rng >> 33) % (len / 2)) as usize
        } else {
            ((rng >> 33) % len) as usize
        };
        let mut damaged = original.clone();
        damaged[offset] ^= 0xff;
        let trial_dir = tempfile::tempdir().unwrap();
        let file = trial_dir.path().join(STORE_FILE);
        std::fs::write(&file, &damaged).unwrap();
        match read_all(trial_dir.path()) {
            // A flip in bytes redb never reads (free space): the store
            // is whole, and every block is exactly as saved.
            Ok((stored, bodies)) => {
                assert_eq!(stored.headers.len(), 30, "flip at {offset}: headers lost");
                assert_eq!(
                    sorted(bodies),
                    expected,
                    "flip at {offset}: blocks changed silently"
                );
                intact += 1;
            }
            // Found reading a body back, once the store is in use: the
            // error names the file.
            Err(ReadFailure::Later(e)) => {
                assert!(e.to_string().contains(STORE_FILE), "flip at {offset}: {e}");
                refused += 1;
            }
            Err(ReadFailure::AtStart(e)) => {
                assert!(e.to_string().contains(STORE_FILE), "flip at {offset}: {e}");
                refused += 1;
                // Refused at the start: the file is as it was, or kept
                // beside a repaired one.
                let now = std::fs::read(&file).unwrap();
                let backup = trial_dir
                    .path()
                    .join(format!("{STORE_FILE}.{BEFORE_REPAIR_SUFFIX}"));
                assert!(
                    now == damaged || std::fs::read(&backup).ok().as_deref() == Some(&damaged[..]),
                    "flip at {offset}: the damaged file was changed and not kept"
                );
            }
        }
    }
    assert!(refused > 0, "some flips must be detected ({intact} intact)");
}

#[test]
fn two_hundred_bytes_flipped_in_the_middle_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = RedbStore::open(dir.path()).unwrap();
        store.commit(&commit_of(&blocks(30))).unwrap();
    }
    let file = dir.path().join(STORE_FILE);
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle - 100..middle + 100] {
        *b ^= 0xa5;
    }
    std::fs::write(&file, &bytes).unwrap();
    match read_all(dir.path()).expect_err("the damage is found") {
        ReadFailure::AtStart(err) => {
            assert!(err.to_string().contains(STORE_FILE), "{err}");
            assert!(err.to_string().contains("corrupt"), "{err}");
            assert_eq!(std::fs::read(&file).unwrap(), bytes, "nothing rewritten");
        }
        ReadFailure::Later(err) => {
            assert!(err.to_string().contains(STORE_FILE), "{err}");
            assert!(err.to_string().contains("corrupt"), "{err}");
        }
    }
}

#[test]
fn the_mempool_is_saved_and_loaded_across_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = Genesis::dev();
    let tx = SignedTx::sign(
        &escrow::dev::keypair("alice").unwrap(),
        0,
        escrow::Amount::new(1),
        genesis.network_id(),
        escrow::Payload::Transfer {
            to: escrow::dev::address("bob").unwrap(),
            amount: escrow::Amount::new(7),
        },
    );
    {
        let store = RedbStore::open(dir.path()).unwrap();
        assert!(store.load_mempool().unwrap().is_empty());
        store.put_mempool(std::slice::from_ref(&tx)).unwrap();
        store.put_mempool(&[tx.clone(), tx.clone()]).unwrap();
    }
    let store = RedbStore::open(dir.path()).unwrap();
    assert_eq!(store.load_mempool().unwrap(), vec![tx.clone(), tx]);
}

#[test]
fn blocks_added_after_opening_are_loaded_too() {
    let dir = tempfile::tempdir().unwrap();
    let saved = blocks(5);
    {
        let store = RedbStore::open(dir.path()).unwrap();
        store.commit(&commit_of(&saved[..3])).unwrap();
    }
    let store = RedbStore::open(dir.path()).unwrap();
    store.commit(&commit_of(&saved[3..])).unwrap();
    assert_eq!(store.load().unwrap().headers.len(), 5);
    drop(store);
    let store = RedbStore::open(dir.path()).unwrap();
    assert_eq!(store.load().unwrap().headers.len(), 5);
    assert_eq!(
        store.load().unwrap().headers.len(),
        5,
        "and again, from the file"
    );
}

#[test]
fn the_transaction_index_is_scanned_by_range_in_both_stores() {
    let dir = tempfile::tempdir().unwrap();
    let saved = blocks(40);
    let redb = RedbStore::open(dir.path()).unwrap();
    let memory = MemoryStore::default();
    let mut ids: Vec<TxId> = saved.iter().map(|b| b.transactions[0].id()).collect();
    ids.sort();
    let stores: [&dyn BlockStore; 2] = [&redb, &memory];
    for store in stores {
        assert_eq!(
            store
                .txs_in_range(&TxId::ZERO, &TxId::from_bytes([0xff; 32]), 100)
                .unwrap(),
            Vec::<TxId>::new(),
            "empty before the first commit"
        );
        store.commit(&commit_of(&saved)).unwrap();
        let all = TxId::from_bytes([0xff; 32]);
        assert_eq!(store.txs_in_range(&TxId::ZERO, &all, 100).unwrap(), ids);
        assert_eq!(store.txs_in_range(&TxId::ZERO, &all, 5).unwrap(), ids[..5]);
        // Both ends included; nothing outside.
        assert_eq!(
            store.txs_in_range(&ids[3], &ids[7], 100).unwrap(),
            ids[3..=7]
        );
        assert_eq!(
            store.txs_in_range(&ids[3], &ids[3], 100).unwrap(),
            vec![ids[3]]
        );
        // An undone block's transaction leaves the index.
        store
            .commit(&Commit {
                index: vec![IndexChange::Undone(saved[0].clone())],
                ..Commit::default()
            })
            .unwrap();
        let gone = saved[0].transactions[0].id();
        assert!(
            !store
                .txs_in_range(&TxId::ZERO, &all, 100)
                .unwrap()
                .contains(&gone)
        );
    }
}

#[test]
fn a_store_open_in_another_handle_is_locked_naming_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let first = RedbStore::open(dir.path()).unwrap();
    // Created by the first open, then existing: both paths are refused.
    let e = RedbStore::open(dir.path()).err().unwrap();
    assert!(
        matches!(&e, StoreError::Locked { dir: d } if d == dir.path()),
        "{e:?}"
    );
    assert!(e.to_string().contains("another node is using"), "{e}");
    drop(first);
    assert!(RedbStore::open(dir.path()).is_ok());
}

/// The index keeps 8 bytes of each id: a lookup checks the block each
/// key of those 8 bytes names. An id that shares them with a stored one
/// is not found there; keys added by hand that name blocks with no id of
/// those 8 bytes (damage) mislead neither the lookup of the stored id nor
/// a range scan, and a lookup that finds nothing else names them.
#[test]
fn an_index_key_shared_by_two_ids_is_checked_against_the_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let saved = blocks(6);
    let store = RedbStore::open(dir.path()).unwrap();
    store.commit(&commit_of(&saved)).unwrap();
    let a = saved[1].transactions[0].id();
    let mut stranger = *a.as_bytes();
    stranger[31] ^= 1;
    let stranger = TxId::from_bytes(stranger);
    assert_eq!(store.tx_block(&stranger).unwrap(), None);
    assert_eq!(
        store.txs_in_range(&stranger, &stranger, 10).unwrap(),
        vec![]
    );
    drop(store);
    // Keys of `a`'s 8 bytes at heights 1 and 5, before and after its own.
    let db = ::redb::Database::open(dir.path().join(STORE_FILE)).unwrap();
    let write = db.begin_write().unwrap();
    {
        let mut txs = write.open_table(super::redb_tables::TXS).unwrap();
        for height in [1, 5] {
            txs.insert(&super::tx_index::key(&a, height), ()).unwrap();
        }
    }
    write.commit().unwrap();
    drop(db);
    let store = RedbStore::open(dir.path()).unwrap();
    assert_eq!(store.tx_block(&a).unwrap(), Some(saved[1].hash()));
    let all = TxId::from_bytes([0xff; 32]);
    let mut ids: Vec<TxId> = saved.iter().map(|s| s.transactions[0].id()).collect();
    ids.sort();
    assert_eq!(store.txs_in_range(&TxId::ZERO, &all, 100).unwrap(), ids);
    assert_eq!(store.txs_in_range(&a, &a, 100).unwrap(), vec![a]);
    assert!(matches!(
        store.tx_block(&stranger),
        Err(StoreError::Corrupt { .. })
    ));
}

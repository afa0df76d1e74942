//! The store against damaged files, format versions and reopening.

#![allow(clippy::unwrap_used)]

use super::*;
use escrow::Genesis;

fn some_blocks() -> Vec<Arc<Block<Tx>>> {
    vec![Arc::new(Genesis::dev().block())]
}

#[test]
fn blocks_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = RedbStore::open(dir.path()).unwrap();
    store.put_blocks(&some_blocks()).unwrap();
    store.put_blocks(&some_blocks()).unwrap();
    drop(store);
    let store = RedbStore::open(dir.path()).unwrap();
    assert_eq!(store.load_blocks().unwrap().len(), 2);
    assert!(!store.was_repaired());
}

#[test]
fn another_format_version_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    drop(RedbStore::open(dir.path()).unwrap());
    {
        let db = redb::Database::open(dir.path().join(STORE_FILE)).unwrap();
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

#[test]
fn an_undecodable_block_is_reported_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = RedbStore::open(dir.path()).unwrap();
    store.put_blocks(&some_blocks()).unwrap();
    drop(store);
    {
        let db = redb::Database::open(dir.path().join(STORE_FILE)).unwrap();
        let write = db.begin_write().unwrap();
        write
            .open_table(BLOCKS)
            .unwrap()
            .insert(1, &[1u8, 2, 3][..])
            .unwrap();
        write.commit().unwrap();
    }
    // Found by the read-through at open, before anything is written.
    let err = RedbStore::open(dir.path())
        .and_then(|s| s.load_blocks())
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("#1"));
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

/// Thirty distinct blocks.
fn many_blocks() -> Vec<Arc<Block<Tx>>> {
    (0..30u64)
        .map(|i| {
            let mut b = Genesis::dev().block();
            b.header.nonce = i;
            Arc::new(b)
        })
        .collect()
}

#[test]
fn a_byte_flipped_anywhere_gives_the_saved_blocks_or_an_error_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let saved = many_blocks();
    {
        let mut store = RedbStore::open(dir.path()).unwrap();
        for chunk in saved.chunks(3) {
            store.put_blocks(chunk).unwrap();
        }
    }
    let original = std::fs::read(dir.path().join(STORE_FILE)).unwrap();
    let expected: Vec<Block<Tx>> = saved.iter().map(|b| (**b).clone()).collect();
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
        let outcome = RedbStore::open(trial_dir.path()).and_then(|s| s.load_blocks());
        match outcome {
            // A flip in bytes redb never reads (free space): the store
            // is whole, and every block is exactly as saved.
            Ok(blocks) => {
                assert_eq!(
                    blocks, expected,
                    "flip at {offset}: blocks changed silently"
                );
                intact += 1;
            }
            Err(e) => {
                assert!(e.to_string().contains(STORE_FILE), "flip at {offset}: {e}");
                refused += 1;
                // Refused: the file is as it was, or kept beside a
                // repaired one.
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
        let mut store = RedbStore::open(dir.path()).unwrap();
        store.put_blocks(&many_blocks()).unwrap();
    }
    let file = dir.path().join(STORE_FILE);
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle - 100..middle + 100] {
        *b ^= 0xa5;
    }
    std::fs::write(&file, &bytes).unwrap();
    let outcome = RedbStore::open(dir.path()).and_then(|s| s.load_blocks());
    let err = outcome.expect_err("the damage is found");
    assert!(err.to_string().contains(STORE_FILE), "{err}");
    assert!(err.to_string().contains("corrupt"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), bytes, "nothing rewritten");
}

#[test]
fn the_mempool_is_saved_and_loaded_across_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = Genesis::dev();
    let tx = SignedTx::sign(
        &escrow::dev::keypair("alice").unwrap(),
        0,
        genesis.network_id(),
        escrow::Payload::Transfer {
            to: escrow::dev::address("bob").unwrap(),
            amount: escrow::Amount::new(7),
        },
    );
    {
        let mut store = RedbStore::open(dir.path()).unwrap();
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
    {
        let mut store = RedbStore::open(dir.path()).unwrap();
        store.put_blocks(&many_blocks()[..3]).unwrap();
    }
    let mut store = RedbStore::open(dir.path()).unwrap();
    store.put_blocks(&many_blocks()[3..5]).unwrap();
    assert_eq!(store.load_blocks().unwrap().len(), 5);
    drop(store);
    let store = RedbStore::open(dir.path()).unwrap();
    assert_eq!(store.load_blocks().unwrap().len(), 5);
    assert_eq!(
        store.load_blocks().unwrap().len(),
        5,
        "and again, from the file"
    );
}

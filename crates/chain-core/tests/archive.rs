//! A tree with an archive: the memory window, reorgs deeper than it,
//! restoring from headers and a snapshot, and a store that disagrees with
//! itself or fails.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chain_core::tree::{Archive, ArchiveError, InsertError, Inserted, RestoreError, Snapshot};
use chain_core::{Block, BlockHash, Chain, ChainParams, Header};
use common::*;

/// An archive in memory that counts its reads and can be made to fail.
#[derive(Default)]
struct MemArchive {
    blocks: Mutex<HashMap<BlockHash, Block<TestTx>>>,
    undo: Mutex<HashMap<BlockHash, usize>>,
    reads: AtomicUsize,
    failing: AtomicBool,
    /// Bodies that read back damaged (a disk flipped them).
    damaged: Mutex<HashSet<BlockHash>>,
}

impl Archive<TestState> for MemArchive {
    fn block(&self, hash: &BlockHash) -> Result<Option<Block<TestTx>>, ArchiveError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(ArchiveError("disk on fire".into()));
        }
        self.reads.fetch_add(1, Ordering::SeqCst);
        if self.damaged.lock().unwrap().contains(hash) {
            return Err(ArchiveError(format!("block {hash} fails its checksum")));
        }
        Ok(self.blocks.lock().unwrap().get(hash).cloned())
    }

    fn undo(&self, hash: &BlockHash) -> Result<Option<usize>, ArchiveError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(ArchiveError("disk on fire".into()));
        }
        self.reads.fetch_add(1, Ordering::SeqCst);
        Ok(self.undo.lock().unwrap().get(hash).copied())
    }

    fn is_damaged(&self, hash: &BlockHash) -> bool {
        self.damaged.lock().unwrap().contains(hash)
    }
}

impl MemArchive {
    /// What a node does after every event: archive what is new, then let
    /// the tree forget what is old.
    fn save(&self, chain: &mut Chain<TestState>) {
        for block in chain.take_new_blocks() {
            self.blocks
                .lock()
                .unwrap()
                .insert(block.hash(), (*block).clone());
        }
        for (hash, undo) in chain.take_new_undo() {
            self.undo.lock().unwrap().insert(hash, undo);
        }
        chain.forget_old();
    }

    fn headers(&self) -> Vec<(BlockHash, Header)> {
        self.blocks
            .lock()
            .unwrap()
            .values()
            .map(|b| (b.hash(), b.header))
            .collect()
    }
}

fn archived_chain(window: u64) -> (Chain<TestState>, Arc<MemArchive>, ChainParams) {
    let params = params();
    let archive = Arc::new(MemArchive::default());
    let restored = Chain::restore(
        params.clone(),
        genesis(&params),
        TestState::default(),
        Vec::new(),
        None,
        archive.clone(),
    )
    .unwrap();
    assert!(restored.refused.is_none());
    let mut chain = restored.chain;
    chain.set_memory_window(window);
    (chain, archive, params)
}

/// `n` blocks on top of `parent`, payloads from `first` up.
fn branch(parent: &Header, n: u64, first: u64, params: &ChainParams) -> Vec<Block<TestTx>> {
    let mut out: Vec<Block<TestTx>> = Vec::new();
    for i in 0..n {
        let p = out.last().map_or(*parent, |b| b.header);
        out.push(child(&p, vec![tx(first + i)], params));
    }
    out
}

/// A chain without an archive holding the same blocks: the reference.
fn replayed(blocks: &[Block<TestTx>]) -> Chain<TestState> {
    let params = params();
    let mut chain = Chain::new(params.clone(), genesis(&params), TestState::default()).unwrap();
    for b in blocks {
        chain.insert(b.clone(), NOW).unwrap();
    }
    chain
}

#[test]
fn only_the_window_stays_in_memory_and_older_blocks_read_back() {
    let (mut chain, archive, params) = archived_chain(4);
    let blocks = branch(&chain.tip_header(), 30, 1, &params);
    for b in &blocks {
        chain.insert(b.clone(), NOW).unwrap();
        archive.save(&mut chain);
        assert!(
            chain.resident_bodies() <= 4 + 2,
            "{}",
            chain.resident_bodies()
        );
    }
    let reference = replayed(&blocks);
    assert_eq!(chain.tip(), reference.tip());
    assert_eq!(chain.state(), reference.state());
    // An old block is read back from the archive, exactly.
    let old = blocks[2].hash();
    let before = archive.reads.load(Ordering::SeqCst);
    assert_eq!(*chain.block(&old).unwrap(), blocks[2]);
    assert!(archive.reads.load(Ordering::SeqCst) > before);
    // A recent one is served from memory.
    let before = archive.reads.load(Ordering::SeqCst);
    assert_eq!(*chain.block(&chain.tip()).unwrap(), blocks[29]);
    assert_eq!(archive.reads.load(Ordering::SeqCst), before);
}

#[test]
fn a_reorg_deeper_than_the_window_reads_back_bodies_and_undo_records() {
    let (mut chain, archive, params) = archived_chain(3);
    let g = chain.tip_header();
    let main = branch(&g, 20, 1, &params);
    for b in &main {
        chain.insert(b.clone(), NOW).unwrap();
        archive.save(&mut chain);
    }
    // A longer branch from height 5: the reorg undoes 15 blocks, 12 of them
    // beyond the window.
    let side = branch(&main[4].header, 17, 1_000, &params);
    let mut last = None;
    for b in &side {
        match chain.insert(b.clone(), NOW).unwrap() {
            Inserted::NewBest(reorg) if reorg.is_reorg() => last = Some(reorg),
            Inserted::NewBest(_) | Inserted::SideBranch => {}
            other => panic!("unexpected {other:?}"),
        }
        archive.save(&mut chain);
    }
    let reorg = last.expect("the side branch won");
    assert_eq!(reorg.undone.len(), 15);
    assert_eq!(reorg.fork_point, main[4].hash());
    assert_eq!(reorg.undone[0].hash(), main[19].hash());
    let all: Vec<_> = main.iter().chain(side.iter()).cloned().collect();
    let reference = replayed(&all);
    assert_eq!(chain.tip(), reference.tip());
    assert_eq!(chain.state(), reference.state());
    assert_eq!(chain.best_chain(), reference.best_chain());

    // And back again: the old branch grows past the new one.
    let more = branch(&main[19].header, 5, 5_000, &params);
    for b in &more {
        chain.insert(b.clone(), NOW).unwrap();
        archive.save(&mut chain);
    }
    let all: Vec<_> = all.iter().chain(more.iter()).cloned().collect();
    let again = replayed(&all);
    assert_eq!(chain.tip(), again.tip());
    assert_eq!(chain.tip(), more[4].hash());
    assert_eq!(chain.state(), again.state());
}

/// What a node whose saves run in the background does: it takes what is
/// new, more blocks join while that save is in flight, and the save's
/// completion calls `forget_old` before the newer blocks are taken. Those
/// (a long run past the window, and a side block deep below the tip) must
/// stay in memory until taken, or they would never reach the archive.
#[test]
fn forget_old_keeps_what_was_not_handed_out_yet() {
    let (mut chain, archive, params) = archived_chain(3);
    let g = chain.tip_header();
    let main = branch(&g, 10, 1, &params);
    for b in &main {
        chain.insert(b.clone(), NOW).unwrap();
    }
    archive.save(&mut chain);
    // A save starts: it takes blocks 1..=10 and their undo records.
    let taken_blocks = chain.take_new_blocks();
    assert!(taken_blocks.is_empty(), "archive.save took them already");
    // While it is in flight, 12 more blocks (four windows) and a side
    // block at height 2 join the tree.
    let more = branch(&main[9].header, 12, 100, &params);
    for b in &more {
        chain.insert(b.clone(), NOW).unwrap();
    }
    let side = child(&main[0].header, vec![tx(9_000)], &params);
    chain.insert(side.clone(), NOW).unwrap();
    // The save completes: the tree forgets what is old and archived.
    chain.forget_old();
    // The next save takes everything that joined since: every body is
    // still there to be archived, and every undo record of the run.
    let blocks = chain.take_new_blocks();
    assert_eq!(blocks.len(), 13);
    assert!(blocks.iter().any(|b| b.hash() == side.hash()));
    let undo = chain.take_new_undo();
    let undone: Vec<_> = undo.iter().map(|(h, _)| *h).collect();
    let expected: Vec<_> = more.iter().map(Block::hash).collect();
    assert_eq!(
        undone, expected,
        "an undo record was dropped before it was taken"
    );
    for b in &blocks {
        archive
            .blocks
            .lock()
            .unwrap()
            .insert(b.hash(), (**b).clone());
    }
    for (hash, u) in undo {
        archive.undo.lock().unwrap().insert(hash, u);
    }
    chain.forget_old();
    assert!(
        chain.resident_bodies() <= 3 + 2,
        "{}",
        chain.resident_bodies()
    );
    // A reorg past all of them reads them back from the archive.
    let long = branch(&main[0].header, 25, 50_000, &params);
    for b in &long {
        chain.insert(b.clone(), NOW).unwrap();
        archive.save(&mut chain);
    }
    let all: Vec<_> = main
        .iter()
        .chain(more.iter())
        .chain(std::iter::once(&side))
        .chain(long.iter())
        .cloned()
        .collect();
    let reference = replayed(&all);
    assert_eq!(chain.tip(), reference.tip());
    assert_eq!(chain.state(), reference.state());
}

/// A chain saved block by block, restored from its archive with the state
/// snapshot at `snapshot_height`.
fn restored_at(
    blocks: &[Block<TestTx>],
    archive: &Arc<MemArchive>,
    snapshot_height: u64,
) -> Result<Chain<TestState>, RestoreError> {
    let params = params();
    let prefix = replayed(&blocks[..snapshot_height as usize]);
    let snapshot = Snapshot {
        block: prefix.tip(),
        height: snapshot_height,
        state: prefix.state().clone(),
    };
    let restored = Chain::restore(
        params.clone(),
        genesis(&params),
        TestState::default(),
        archive.headers(),
        Some(snapshot),
        archive.clone(),
    )?;
    assert!(restored.refused.is_none());
    assert!(restored.unrestored.is_empty());
    Ok(restored.chain)
}

#[test]
fn restoring_from_a_snapshot_reads_only_the_blocks_above_it() {
    let (mut chain, archive, params) = archived_chain(4);
    let blocks = branch(&chain.tip_header(), 40, 1, &params);
    for b in &blocks {
        chain.insert(b.clone(), NOW).unwrap();
        archive.save(&mut chain);
    }
    // A snapshot at the tip: nothing to read.
    let reads = archive.reads.load(Ordering::SeqCst);
    let at_tip = restored_at(&blocks, &archive, 40).unwrap();
    assert_eq!(archive.reads.load(Ordering::SeqCst), reads);
    assert_eq!(at_tip.tip(), chain.tip());
    assert_eq!(at_tip.state(), chain.state());
    assert_eq!(at_tip.best_chain(), chain.best_chain());
    // A snapshot 7 blocks behind: those 7 are applied again.
    let reads = archive.reads.load(Ordering::SeqCst);
    let behind = restored_at(&blocks, &archive, 33).unwrap();
    assert_eq!(archive.reads.load(Ordering::SeqCst), reads + 7);
    assert_eq!(behind.tip(), chain.tip());
    assert_eq!(behind.state(), chain.state());
    // No snapshot: built from genesis.
    let from_genesis = Chain::restore(
        params.clone(),
        genesis(&params),
        TestState::default(),
        archive.headers(),
        None,
        archive.clone(),
    )
    .unwrap()
    .chain;
    assert_eq!(from_genesis.state(), chain.state());
    // A restored chain keeps working: a deep reorg reads undo records that
    // the first run archived.
    let mut restored = at_tip;
    restored.set_memory_window(2);
    let side = branch(&blocks[9].header, 32, 9_000, &params);
    for b in &side {
        restored.insert(b.clone(), NOW).unwrap();
        archive.save(&mut restored);
    }
    let all: Vec<_> = blocks.iter().chain(side.iter()).cloned().collect();
    let reference = replayed(&all);
    assert_eq!(restored.tip(), reference.tip());
    assert_eq!(restored.state(), reference.state());
}

#[test]
fn a_store_that_disagrees_with_itself_is_refused_naming_what() {
    let (mut chain, archive, params) = archived_chain(4);
    let blocks = branch(&chain.tip_header(), 10, 1, &params);
    for b in &blocks {
        chain.insert(b.clone(), NOW).unwrap();
        archive.save(&mut chain);
    }
    // A snapshot at a height its block does not have.
    let mut snapshot = Snapshot {
        block: blocks[4].hash(),
        height: 7,
        state: TestState::default(),
    };
    let restore = |headers: Vec<(BlockHash, Header)>, snapshot| {
        Chain::restore(
            params.clone(),
            genesis(&params),
            TestState::default(),
            headers,
            snapshot,
            archive.clone(),
        )
        .map(|_| ())
    };
    let err = restore(archive.headers(), Some(snapshot)).unwrap_err();
    assert!(
        matches!(
            err,
            RestoreError::SnapshotHeight {
                claimed: 7,
                actual: 5,
                ..
            }
        ),
        "{err}"
    );
    // A snapshot at a block not stored.
    snapshot = Snapshot {
        block: BlockHash::from_bytes([9; 32]),
        height: 3,
        state: TestState::default(),
    };
    let err = restore(archive.headers(), Some(snapshot)).unwrap_err();
    assert!(matches!(err, RestoreError::SnapshotUnknown(_)), "{err}");
    // A header whose parent is missing.
    let headers: Vec<_> = archive
        .headers()
        .into_iter()
        .filter(|(_, h)| h.height != 3)
        .collect();
    let err = restore(headers, None).unwrap_err();
    assert!(
        matches!(err, RestoreError::MissingParent { height: 4, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("is not stored"), "{err}");
    // A second genesis.
    let mut other = genesis(&params).header;
    other.timestamp_ms += 1;
    let mut headers = archive.headers();
    headers.push((other.hash(), other));
    let err = restore(headers, None).unwrap_err();
    assert!(matches!(err, RestoreError::SecondGenesis(_)), "{err}");
}

#[test]
fn an_archive_that_fails_leaves_the_tree_as_it_was() {
    let (mut chain, archive, params) = archived_chain(2);
    let g = chain.tip_header();
    let main = branch(&g, 12, 1, &params);
    for b in &main {
        chain.insert(b.clone(), NOW).unwrap();
        archive.save(&mut chain);
    }
    let tip = chain.tip();
    let state = chain.state().clone();
    let side = branch(&main[1].header, 12, 700, &params);
    archive.failing.store(true, Ordering::SeqCst);
    let mut failed = false;
    for b in &side {
        match chain.insert(b.clone(), NOW) {
            Ok(Inserted::SideBranch) => {}
            Err(InsertError::Archive(_)) => failed = true,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(failed, "the reorg needed the archive");
    assert_eq!(chain.tip(), tip);
    assert_eq!(chain.state(), &state);
    // Once the archive reads again, the next block brings the reorg.
    archive.failing.store(false, Ordering::SeqCst);
    let next = child(&side[11].header, vec![tx(800)], &params);
    let Inserted::NewBest(reorg) = chain.insert(next.clone(), NOW).unwrap() else {
        panic!("expected the reorg");
    };
    // Back to the fork at height 2: ten blocks undone.
    assert_eq!(reorg.undone.len(), 10);
    let all: Vec<_> = main
        .iter()
        .chain(side.iter())
        .chain(std::iter::once(&next))
        .cloned()
        .collect();
    assert_eq!(chain.state(), replayed(&all).state());
}

/// A crash leaves blocks after the snapshot; one of their bodies reads back
/// damaged. The restore stops just below it (the best chain ends at the
/// last block that applied), leaves it and every block above it out of the
/// tree without remembering them as invalid, and inserting them again (a
/// good copy from a peer) brings the chain to its old tip by the normal
/// path. A disk that fails is still an error.
#[test]
fn a_damaged_body_after_the_snapshot_stops_the_replay_below_it() {
    let (mut chain, archive, params) = archived_chain(4);
    let blocks = branch(&chain.tip_header(), 10, 1, &params);
    for b in &blocks {
        chain.insert(b.clone(), NOW).unwrap();
        archive.save(&mut chain);
    }
    // A side branch from height 6 (less work): left out with the rest.
    let side = branch(&blocks[5].header, 2, 500, &params);
    for b in &side {
        assert!(matches!(
            chain.insert(b.clone(), NOW).unwrap(),
            Inserted::SideBranch
        ));
        archive.save(&mut chain);
    }
    // Snapshot at 3; the body at height 6 is damaged.
    let damaged = blocks[5].hash();
    archive.damaged.lock().unwrap().insert(damaged);
    let prefix = replayed(&blocks[..3]);
    let snapshot = || Snapshot {
        block: prefix.tip(),
        height: 3,
        state: prefix.state().clone(),
    };
    let restored = Chain::restore(
        params.clone(),
        genesis(&params),
        TestState::default(),
        archive.headers(),
        Some(snapshot()),
        archive.clone(),
    )
    .unwrap();
    assert!(restored.refused.is_none());
    let mut chain2 = restored.chain;
    assert_eq!(chain2.height(), 5);
    assert_eq!(chain2.tip(), blocks[4].hash());
    assert_eq!(chain2.state(), replayed(&blocks[..5]).state());
    let [cut] = restored.unrestored.as_slice() else {
        panic!("{:?}", restored.unrestored);
    };
    assert_eq!((cut.block, cut.height), (damaged, 6));
    assert!(
        cut.reason.to_string().contains("checksum"),
        "{}",
        cut.reason
    );
    // Heights 6..=10 of the main branch and 7..=8 of the side one.
    assert_eq!(cut.left_out.len(), 5 + 2);
    assert_eq!(cut.left_out[0], (damaged, 6));
    assert!(cut.left_out.windows(2).all(|w| w[0].1 <= w[1].1));
    for b in &blocks[5..] {
        assert!(!chain2.contains(&b.hash()));
        assert!(!chain2.is_known_invalid(&b.hash()), "not invalid");
    }
    // Good copies, inserted again, move the chain forward.
    archive.damaged.lock().unwrap().clear();
    for b in &blocks[5..] {
        chain2.insert(b.clone(), NOW).unwrap();
    }
    assert_eq!(chain2.tip(), chain.tip());
    assert_eq!(chain2.state(), chain.state());
    assert_eq!(
        chain2.take_new_blocks().len(),
        5,
        "the copies are saved again"
    );
    // A disk that fails (not a damaged record) still fails the restore.
    archive.failing.store(true, Ordering::SeqCst);
    let err = Chain::restore(
        params.clone(),
        genesis(&params),
        TestState::default(),
        archive.headers(),
        Some(snapshot()),
        archive.clone(),
    )
    .unwrap_err();
    assert!(matches!(err, RestoreError::Archive(_)), "{err}");
}

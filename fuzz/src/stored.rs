//! A store as a node leaves it, record by record, for the `store` target:
//! genesis, block 1 (alice pays bob), block 2 (bob opens an escrow) with
//! a snapshot of the ledger at block 2, and a side branch from block 1
//! (blocks 2' and 3', coinbase only) that has more work, so that a start
//! undoes block 2 with its stored undo record.

use std::collections::HashMap;
use std::sync::Arc;

use chain_core::{Block, BlockContext, BlockHash, StateMachine};
use escrow::{Ledger, SignedTx, Tx, Undo};
use p2p_node::BanKey;
use p2p_node::store::{BlockStore, Commit, MemoryStore, StateSnapshot, Stored};

use crate::chain::{NOW_MS, block_on_tip, small_chain};
use crate::node::FuzzStore;

/// The records of that store.
pub struct Base {
    /// Blocks 1 and 2.
    pub main: Vec<Block<Tx>>,
    /// Blocks 2' and 3'.
    pub side: Vec<Block<Tx>>,
    /// Block 2's undo record.
    pub undo: Undo,
    /// The ledger at block 2.
    pub snapshot: StateSnapshot,
    /// A pending transaction (charlie pays dave) as the mempool saves it.
    pub mempool: Vec<SignedTx>,
    /// A ban as saved.
    pub bans: Vec<(BanKey, u64)>,
}

impl Base {
    /// Builds the records.
    pub fn new() -> Base {
        let chain = small_chain();
        let main: Vec<Block<Tx>> = chain
            .best_chain()
            .iter()
            .skip(1)
            .map(|h| Block::clone(&chain.block(h).expect("kept in memory")))
            .collect();
        let g = crate::chain::genesis();
        let mut at_one = g.chain().expect("the dev genesis applies");
        at_one
            .insert(main[0].clone(), NOW_MS)
            .expect("block 1 applies");
        let mut ledger: Ledger = at_one.state().clone();
        let b2 = &main[1];
        let ctx = BlockContext {
            hash: b2.hash(),
            height: 2,
            timestamp_ms: b2.header.timestamp_ms,
        };
        let undo = ledger
            .apply_block(&ctx, &b2.transactions)
            .expect("block 2 applies");
        let mut side_chain = at_one;
        let mut side = Vec::new();
        for _ in 0..2 {
            let mut block = block_on_tip(&side_chain, Vec::new());
            // Unlike block 2, paid to bob: another block at height 2.
            block.transactions[0] = Tx::Coinbase {
                to: crate::chain::dev_key(1).address(),
                height: block.header.height,
            };
            crate::chain::fix_up(&mut block, &side_chain, 8);
            side_chain
                .insert(block.clone(), NOW_MS)
                .expect("a side block applies");
            side.push(block);
        }
        let snapshot = StateSnapshot {
            block: b2.hash(),
            height: 2,
            ledger: chain.state().clone(),
        };
        let pay = SignedTx::sign(
            &crate::chain::dev_key(2),
            0,
            escrow::Amount::new(1),
            g.network_id(),
            escrow::Payload::Transfer {
                to: crate::chain::dev_key(3).address(),
                amount: escrow::Amount::new(5),
            },
        );
        let bans = vec![(BanKey::Node(wire::NodeId([9; 32])), u64::MAX / 2)];
        Base {
            main,
            side,
            undo,
            snapshot,
            mempool: vec![pay],
            bans,
        }
    }

    /// The store: every block, block 2's undo record, the snapshot, the
    /// mempool and the bans, each replaced where the fuzzer gave one.
    pub fn store(&self, with: Replace) -> FuzzStore {
        let written = MemoryStore::default();
        let side = if with.side { &self.side[..] } else { &[] };
        let mut blocks: Vec<Block<Tx>> = self.main.iter().chain(side).cloned().collect();
        if let Some(extra) = with.block {
            blocks.push(extra);
        }
        let commit = Commit {
            blocks: blocks.iter().cloned().map(Arc::new).collect(),
            ..Commit::default()
        };
        written.commit(&commit).expect("a memory store saves");
        let headers = written.load().expect("a memory store loads").headers;
        let bodies: HashMap<BlockHash, Block<Tx>> =
            blocks.into_iter().map(|b| (b.hash(), b)).collect();
        let mut undo = HashMap::new();
        undo.insert(
            self.main[1].hash(),
            with.undo.unwrap_or_else(|| self.undo.clone()),
        );
        FuzzStore {
            stored: Stored {
                headers,
                snapshot: Some(with.snapshot.unwrap_or_else(|| self.snapshot.clone())),
            },
            bodies,
            undo,
            mempool: with.mempool.unwrap_or_else(|| self.mempool.clone()),
            bans: with.bans.unwrap_or_else(|| self.bans.clone()),
            written: MemoryStore::default(),
        }
    }
}

impl Default for Base {
    fn default() -> Self {
        Base::new()
    }
}

/// The records the fuzzer replaces; `None` keeps the base's.
#[derive(Default)]
pub struct Replace {
    /// Whether the side branch is stored (so that a start undoes block 2).
    pub side: bool,
    /// A block added to the store.
    pub block: Option<Block<Tx>>,
    /// Block 2's undo record.
    pub undo: Option<Undo>,
    /// The snapshot.
    pub snapshot: Option<StateSnapshot>,
    /// The saved mempool.
    pub mempool: Option<Vec<SignedTx>>,
    /// The saved bans.
    pub bans: Option<Vec<(BanKey, u64)>>,
}

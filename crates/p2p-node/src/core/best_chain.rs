//! The best chain's headers by height, as published in every
//! [`super::Snapshot`]: what lets the API answer a lookup by height or
//! hash, a page of blocks or of headers, without asking the core.
//!
//! A persistent vector ([`imbl::Vector`]) shared between snapshots: a new
//! tip costs O(blocks changed) (the walk down to where the kept chain
//! agrees, then a truncation and the pushes), never O(chain length), and
//! the previous snapshot keeps its own version for as long as a reader
//! holds it. The memory is the chain's headers once more (about 150 bytes a
//! height).

use std::sync::{Arc, Weak};

use chain_core::{Block, BlockHash, Header};
use escrow::Tx;

use crate::core::view::NodeChain;
use crate::store::{BlockStore, StoreError};

/// The best chain's hash and header at each height, genesis first.
#[derive(Clone, Debug, Default)]
pub struct BestChain {
    chain: imbl::Vector<(BlockHash, Header)>,
}

impl BestChain {
    /// The best chain of `chain`, read whole: for start-up only.
    pub(super) fn scan(chain: &NodeChain) -> BestChain {
        let mut best = BestChain::default();
        best.follow(chain);
        best
    }

    /// The hash and header at `height`, if the chain is that high.
    pub fn at(&self, height: u64) -> Option<&(BlockHash, Header)> {
        self.chain.get(usize::try_from(height).ok()?)
    }

    /// Whether `hash` is the best chain's block at `height`.
    pub fn holds(&self, height: u64, hash: &BlockHash) -> bool {
        self.at(height).is_some_and(|(h, _)| h == hash)
    }

    /// How many heights it holds (the tip's height plus one).
    pub fn len(&self) -> usize {
        self.chain.len()
    }

    /// Whether it holds nothing (never, once scanned: genesis is there).
    pub fn is_empty(&self) -> bool {
        self.chain.is_empty()
    }

    /// Follows `chain`'s best tip: walks down from it until the kept chain
    /// agrees, drops what is above that point and pushes the blocks walked.
    pub(super) fn follow(&mut self, chain: &NodeChain) {
        let mut walked = Vec::new();
        let mut hash = chain.tip();
        let mut agree = 0;
        while let Some(header) = chain.header(&hash) {
            if self.holds(header.height, &hash) {
                agree = header.height.saturating_add(1);
                break;
            }
            walked.push((hash, header));
            if header.height == 0 {
                break;
            }
            hash = header.parent;
        }
        self.chain.truncate(
            usize::try_from(agree)
                .unwrap_or(usize::MAX)
                .min(self.chain.len()),
        );
        self.chain.extend(walked.into_iter().rev());
    }
}

/// Where the bodies of the blocks a snapshot names are read without the
/// core: the store (shared: redb's readers never wait for its writer), and
/// the genesis block, which the store does not hold.
///
/// A snapshot only names saved blocks, so every block it names is there.
/// The store may hold more: blocks saved since, and blocks of side
/// branches, some of them found invalid since; a reader asks the
/// snapshot's [`BestChain`] whether a block it read is on the best chain.
///
/// The store is held weakly: a snapshot a reader keeps after the node
/// stopped must not keep the store (and its lock on the data directory)
/// open.
#[derive(Clone)]
pub struct Bodies {
    store: Weak<dyn BlockStore>,
    genesis: Arc<Block<Tx>>,
}

impl Bodies {
    /// The bodies of `store`, and `genesis`.
    pub(crate) fn new(store: &Arc<dyn BlockStore>, genesis: Block<Tx>) -> Bodies {
        Bodies {
            store: Arc::downgrade(store),
            genesis: Arc::new(genesis),
        }
    }

    /// The block `hash`, if the store (or the genesis) is it; checked
    /// against its hash.
    ///
    /// # Errors
    ///
    /// [`BodyError`] if the store cannot be read, or gives back another
    /// block than the one asked for.
    pub fn block(&self, hash: &BlockHash) -> Result<Option<Arc<Block<Tx>>>, BodyError> {
        if *hash == self.genesis.hash() {
            return Ok(Some(Arc::clone(&self.genesis)));
        }
        match self.store()?.block(hash)? {
            Some(block) if block.hash() == *hash => Ok(Some(Arc::new(block))),
            Some(other) => Err(BodyError::Mismatch {
                asked: *hash,
                found: other.hash(),
            }),
            None => Ok(None),
        }
    }

    /// The best-chain block holding transaction `id`, as the store's
    /// transaction index says.
    ///
    /// # Errors
    ///
    /// [`BodyError`] if the index cannot be read.
    pub fn tx_block(&self, id: &chain_core::TxId) -> Result<Option<BlockHash>, BodyError> {
        Ok(self.store()?.tx_block(id)?)
    }

    /// The confirmed transactions whose ids lie from `low` to `high`, at
    /// most `limit`, as the store's transaction index says.
    ///
    /// # Errors
    ///
    /// [`BodyError`] if the index cannot be read.
    pub fn txs_in_range(
        &self,
        low: &chain_core::TxId,
        high: &chain_core::TxId,
        limit: usize,
    ) -> Result<Vec<chain_core::TxId>, BodyError> {
        Ok(self.store()?.txs_in_range(low, high, limit)?)
    }

    /// The store, while the node runs.
    fn store(&self) -> Result<Arc<dyn BlockStore>, BodyError> {
        self.store.upgrade().ok_or(BodyError::Stopped)
    }
}

/// Why [`Bodies::block`] could not give a block back.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The node stopped: its store is closed.
    #[error("the node stopped")]
    Stopped,
    /// The store gave back another block.
    #[error("the store gave back block {found} for block {asked}")]
    Mismatch {
        /// The block asked for.
        asked: BlockHash,
        /// The block given back.
        found: BlockHash,
    },
}

impl std::fmt::Debug for Bodies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bodies")
            .field("genesis", &self.genesis.hash())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chain_core::{Block, ChainParams};
    use escrow::Genesis;

    use super::*;
    use crate::core::view::mine_on;

    fn fresh() -> NodeChain {
        let mut g = Genesis::dev();
        g.params = ChainParams::with_target_bits(4);
        g.chain().unwrap()
    }

    fn same(best: &BestChain, chain: &NodeChain) {
        let hashes: Vec<BlockHash> = best.chain.iter().map(|(h, _)| *h).collect();
        assert_eq!(hashes, chain.best_chain());
        for (height, (hash, header)) in best.chain.iter().enumerate() {
            assert_eq!(header.hash(), *hash);
            assert_eq!(header.height, height as u64);
        }
    }

    #[test]
    fn it_follows_extensions_and_reorganisations_onto_another_branch() {
        let mut chain = fresh();
        let mut best = BestChain::scan(&chain);
        assert_eq!(best.len(), 1);
        same(&best, &chain);
        mine_on(&mut chain, 3, 1);
        best.follow(&chain);
        same(&best, &chain);
        // A heavier branch from height 1, built on a copy and then given
        // to the chain: the kept chain agrees up to height 1 only.
        let mut other = fresh();
        let first = chain.block_at_height(1).unwrap();
        other.insert(Block::clone(&first), u64::MAX / 2).unwrap();
        let branch = mine_on(&mut other, 4, 2);
        let old = best.clone();
        for block in branch {
            chain.insert(block, u64::MAX / 2).unwrap();
        }
        assert_eq!(chain.height(), 5);
        best.follow(&chain);
        same(&best, &chain);
        assert!(best.holds(1, &first.hash()));
        assert!(!best.holds(2, &old.at(2).unwrap().0));
        // The earlier version is a snapshot of its own, unchanged.
        assert_eq!(old.len(), 4);
        assert!(old.holds(3, &old.at(3).unwrap().0));
        assert!(best.at(6).is_none());
        // Following again without a change changes nothing.
        best.follow(&chain);
        same(&best, &chain);
    }
}

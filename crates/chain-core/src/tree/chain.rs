//! [`Chain`]: the block tree itself (its blocks, the best chain, the
//! candidates for it, the orphans and the invalid), with inserting and
//! reading; reorganising (`reorg.rs`) and restoring (`restore.rs`) are
//! more of its methods, in files of their own. The module docs (`mod.rs`)
//! give the rules.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use super::archive::{Archive, ArchiveError};
use super::orphans::OrphanPool;
use super::outcome::{GenesisError, InsertError, Inserted};
use crate::hash::BlockHash;
use crate::header::{Block, Header, Transaction};
use crate::merkle::merkle_root;
use crate::params::ChainParams;
use crate::pow::{CompactTarget, Work};
use crate::state::{BlockContext, StateMachine};
use crate::validate::{self, ParentContext, ValidationError};

/// How many of the most recent blocks keep their body and undo record in
/// memory, by default, in a chain with an archive.
pub const DEFAULT_MEMORY_WINDOW: u64 = 64;

/// How many orphans the pool holds by default before it evicts the oldest.
pub const DEFAULT_MAX_ORPHANS: usize = 256;

/// How many invalid block hashes are remembered, so that a peer re-sending
/// one is refused without any work.
pub(super) const MAX_REMEMBERED_INVALID: usize = 16_384;

/// A block in the tree.
#[derive(Debug)]
pub(super) struct Entry<T> {
    pub(super) header: Header,
    pub(super) cumulative_work: Work,
    /// The body, while it is kept in memory (always, without an archive).
    pub(super) body: Option<Arc<Block<T>>>,
}

/// The block tree and the state at its best tip.
pub struct Chain<S: StateMachine> {
    pub(super) params: ChainParams,
    pub(super) state: S,
    pub(super) blocks: HashMap<BlockHash, Entry<S::Tx>>,
    /// The best chain, indexed by height: `best[0]` is genesis.
    pub(super) best: Vec<BlockHash>,
    /// The undo records of the top of the best chain: the last one reverses
    /// the tip, the one before it the tip's parent, and so on. Without an
    /// archive it holds one record per block above genesis.
    pub(super) undo: VecDeque<S::Undo>,
    /// Every block without children (every block that may be a tip),
    /// ordered by fork choice: the last element is the best (most work,
    /// then the smaller hash). A block with children is never the best: a
    /// child has more work.
    pub(super) candidates: BTreeSet<(Work, Reverse<BlockHash>)>,
    pub(super) orphans: OrphanPool<S::Tx>,
    pub(super) invalid: HashSet<BlockHash>,
    pub(super) invalid_order: VecDeque<BlockHash>,
    /// Where bodies and undo records are read back from, if anywhere.
    pub(super) archive: Option<Arc<dyn Archive<S>>>,
    /// The blocks whose body is in memory (genesis aside), by height.
    pub(super) resident: BTreeSet<(u64, BlockHash)>,
    /// Blocks that joined the tree since [`Chain::take_new_blocks`] (only
    /// with an archive: without one nothing takes them).
    pub(super) new_blocks: Vec<Arc<Block<S::Tx>>>,
    /// Blocks applied to the state since [`Chain::take_new_undo`] (only
    /// with an archive).
    pub(super) new_applied: Vec<BlockHash>,
    /// How many recent blocks keep their body and undo record in memory
    /// when there is an archive.
    pub(super) window: u64,
}

impl<S: StateMachine> std::fmt::Debug for Chain<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("height", &self.height())
            .field("tip", &self.tip())
            .field("blocks", &self.blocks.len())
            .field("orphans", &self.orphans.blocks.len())
            .finish()
    }
}

impl<S: StateMachine> Chain<S> {
    /// Starts a chain at `genesis`, applying its transactions to `state`.
    ///
    /// The genesis block is configuration, not something a peer sent: its
    /// proof of work is not checked.
    ///
    /// # Errors
    ///
    /// [`GenesisError`] if the block is not a genesis block or its
    /// transactions do not apply.
    pub fn new(
        params: ChainParams,
        genesis: Block<S::Tx>,
        mut state: S,
    ) -> Result<Self, GenesisError<S::Error>> {
        let header = genesis.header;
        if header.height != 0 || header.parent != BlockHash::GENESIS_PARENT {
            return Err(GenesisError::NotGenesis);
        }
        if merkle_root(&genesis.commitments()) != header.merkle_root {
            return Err(GenesisError::BadMerkleRoot);
        }
        let work = header.target.to_target()?.work();
        let hash = header.hash();
        let ctx = BlockContext {
            hash,
            height: 0,
            timestamp_ms: header.timestamp_ms,
        };
        // The genesis undo record is never needed: genesis is never undone.
        let _ = state
            .apply_block(&ctx, &genesis.transactions)
            .map_err(GenesisError::State)?;
        let mut blocks = HashMap::new();
        blocks.insert(
            hash,
            Entry {
                header,
                cumulative_work: work,
                body: Some(Arc::new(genesis)),
            },
        );
        let mut candidates = BTreeSet::new();
        candidates.insert((work, Reverse(hash)));
        Ok(Self {
            params,
            state,
            blocks,
            best: vec![hash],
            undo: VecDeque::new(),
            candidates,
            orphans: OrphanPool::new(DEFAULT_MAX_ORPHANS),
            invalid: HashSet::new(),
            invalid_order: VecDeque::new(),
            archive: None,
            resident: BTreeSet::new(),
            new_blocks: Vec::new(),
            new_applied: Vec::new(),
            window: DEFAULT_MEMORY_WINDOW,
        })
    }

    /// Sets how many orphans the pool holds (0 disables the pool).
    pub fn set_max_orphans(&mut self, max: usize) {
        self.orphans.max = max;
    }

    /// The consensus rules.
    pub fn params(&self) -> &ChainParams {
        &self.params
    }

    /// The state at the best tip.
    pub fn state(&self) -> &S {
        &self.state
    }

    /// The genesis hash (the network's id).
    pub fn genesis_hash(&self) -> BlockHash {
        self.best[0]
    }

    /// The best tip's hash.
    pub fn tip(&self) -> BlockHash {
        self.best.last().copied().unwrap_or_else(|| self.best[0])
    }

    /// The best tip's height.
    pub fn height(&self) -> u64 {
        (self.best.len() - 1) as u64
    }

    /// The best tip's cumulative work.
    pub fn total_work(&self) -> Work {
        self.blocks
            .get(&self.tip())
            .map(|e| e.cumulative_work)
            .unwrap_or_default()
    }

    /// The best tip's header.
    pub fn tip_header(&self) -> Header {
        self.blocks[&self.tip()].header
    }

    /// A block's header by hash (best chain or side branch).
    pub fn header(&self, hash: &BlockHash) -> Option<Header> {
        self.blocks.get(hash).map(|e| e.header)
    }

    /// A block in the tree by hash (best chain or side branch), read back
    /// from the archive if its body is no longer in memory. `None` if the
    /// tree does not hold it, or the archive cannot be read (see
    /// [`Chain::try_block`] for the error).
    pub fn block(&self, hash: &BlockHash) -> Option<Arc<Block<S::Tx>>> {
        self.try_block(hash).ok().flatten()
    }

    /// A block in the tree by hash, read back from the archive if needed.
    ///
    /// # Errors
    ///
    /// [`ArchiveError`] if the archive cannot be read, or does not hold a
    /// block the tree holds.
    pub fn try_block(&self, hash: &BlockHash) -> Result<Option<Arc<Block<S::Tx>>>, ArchiveError> {
        let Some(entry) = self.blocks.get(hash) else {
            return Ok(None);
        };
        if let Some(body) = &entry.body {
            return Ok(Some(Arc::clone(body)));
        }
        let archive = self
            .archive
            .as_ref()
            .ok_or_else(|| ArchiveError(format!("block {hash} has no body and no archive")))?;
        match archive.block(hash)? {
            Some(block) if block.hash() == *hash => Ok(Some(Arc::new(block))),
            Some(other) => Err(ArchiveError(format!(
                "asked for block {hash}, the archive returned {}",
                other.hash()
            ))),
            None => Err(ArchiveError(format!("block {hash} is not in the archive"))),
        }
    }

    /// The cumulative work of a block in the tree.
    pub fn cumulative_work(&self, hash: &BlockHash) -> Option<Work> {
        self.blocks.get(hash).map(|e| e.cumulative_work)
    }

    /// Whether the tree holds the block (orphans are not in the tree).
    pub fn contains(&self, hash: &BlockHash) -> bool {
        self.blocks.contains_key(hash)
    }

    /// Whether the block waits in the orphan pool.
    pub fn is_orphan(&self, hash: &BlockHash) -> bool {
        self.orphans.blocks.contains_key(hash)
    }

    /// Whether the block was found invalid (and is remembered as such).
    pub fn is_known_invalid(&self, hash: &BlockHash) -> bool {
        self.invalid.contains(hash)
    }

    /// The number of blocks in the tree, side branches included.
    pub fn block_count(&self) -> usize {
        self.blocks.len()
    }

    /// Every block's hash and header in the tree, side branches included,
    /// in no particular order (for explorers and tools; the best chain is
    /// [`Chain::best_chain`]).
    pub fn headers(&self) -> impl Iterator<Item = (&BlockHash, &Header)> {
        self.blocks.iter().map(|(h, e)| (h, &e.header))
    }

    /// The number of orphans waiting.
    pub fn orphan_count(&self) -> usize {
        self.orphans.blocks.len()
    }

    /// The best-chain block hash at `height`.
    pub fn hash_at_height(&self, height: u64) -> Option<BlockHash> {
        usize::try_from(height)
            .ok()
            .and_then(|h| self.best.get(h))
            .copied()
    }

    /// The best-chain block at `height` (read back from the archive if
    /// needed).
    pub fn block_at_height(&self, height: u64) -> Option<Arc<Block<S::Tx>>> {
        self.hash_at_height(height).and_then(|h| self.block(&h))
    }

    /// The best chain's hashes, genesis first.
    pub fn best_chain(&self) -> &[BlockHash] {
        &self.best
    }

    /// Whether `hash` is on the best chain.
    pub fn is_on_best_chain(&self, hash: &BlockHash) -> bool {
        self.blocks
            .get(hash)
            .and_then(|e| self.hash_at_height(e.header.height))
            .is_some_and(|h| h == *hash)
    }

    /// The target the rules require of a child of the best tip.
    pub fn next_target(&self) -> CompactTarget {
        self.parent_context(&self.tip())
            .map(|p| p.required_target)
            .unwrap_or_else(|| self.params.pow_limit().to_compact())
    }

    /// The earliest timestamp a child of the best tip may carry, given the
    /// clock: `now_ms`, or one millisecond past the median time past when the
    /// clock is behind it (blocks mined within one millisecond).
    pub fn next_timestamp(&self, now_ms: u64) -> u64 {
        let median = self
            .parent_context(&self.tip())
            .map(|p| p.median_time_ms)
            .unwrap_or(0);
        now_ms.max(median.saturating_add(1))
    }

    /// A header template for a child of the best tip with these
    /// transactions (nonce 0: the miner's job).
    pub fn template(&self, transactions: &[S::Tx], now_ms: u64) -> Header {
        let leaves: Vec<_> = transactions.iter().map(Transaction::commitment).collect();
        Header {
            version: crate::header::HEADER_VERSION,
            height: self.height() + 1,
            parent: self.tip(),
            merkle_root: merkle_root(&leaves),
            timestamp_ms: self.next_timestamp(now_ms),
            target: self.next_target(),
            nonce: 0,
        }
    }

    /// A header template for a child of `parent`, any block of the tree
    /// (a miner that chooses its parent, such as the simulator's selfish
    /// pool), with these transactions, which the caller has checked apply
    /// on that branch; `None` if the tree does not hold `parent`.
    pub fn template_on(
        &self,
        parent: &BlockHash,
        transactions: &[S::Tx],
        now_ms: u64,
    ) -> Option<Header> {
        let context = self.parent_context(parent)?;
        let leaves: Vec<_> = transactions.iter().map(Transaction::commitment).collect();
        Some(Header {
            version: crate::header::HEADER_VERSION,
            height: context.height + 1,
            parent: *parent,
            merkle_root: merkle_root(&leaves),
            timestamp_ms: now_ms.max(context.median_time_ms.saturating_add(1)),
            target: context.required_target,
            nonce: 0,
        })
    }

    /// A locator for sync: best-chain hashes from the tip back, the first
    /// ten one apart, then doubling the step, always ending at genesis.
    pub fn locator(&self) -> Vec<BlockHash> {
        let mut out = Vec::new();
        let mut height = self.height();
        let mut step = 1u64;
        loop {
            if let Some(h) = self.hash_at_height(height) {
                out.push(h);
            }
            if height == 0 {
                break;
            }
            if out.len() >= 10 {
                step = step.saturating_mul(2);
            }
            height = height.saturating_sub(step);
        }
        out
    }

    /// The parent context of a child of `parent`: its height, median time
    /// past and the target the rules require.
    fn parent_context(&self, parent: &BlockHash) -> Option<ParentContext> {
        let entry = self.blocks.get(parent)?;
        let header = entry.header;
        // The span comes from the genesis file: reserve no more than the
        // branch holds, never what the file says.
        let span = self.params.median_time_span.max(1);
        let held = usize::try_from(header.height).map_or(usize::MAX, |h| h.saturating_add(1));
        let mut timestamps = Vec::with_capacity(span.min(held));
        let mut cursor = Some(*parent);
        while let Some(hash) = cursor {
            if timestamps.len() >= span {
                break;
            }
            let Some(e) = self.blocks.get(&hash) else {
                break;
            };
            timestamps.push(e.header.timestamp_ms);
            cursor = (e.header.height > 0).then_some(e.header.parent);
        }
        Some(ParentContext {
            height: header.height,
            median_time_ms: validate::median_time(timestamps),
            required_target: self.required_target(&header),
        })
    }

    /// The target the rules require of a child of the block `parent`.
    fn required_target(&self, parent: &Header) -> CompactTarget {
        // The first block of the window ending at `parent`, when the child
        // starts a new window.
        let first = self
            .params
            .retarget
            .filter(|r| r.interval >= 2 && (parent.height + 1).is_multiple_of(r.interval))
            .and_then(|r| self.ancestor(parent, parent.height + 1 - r.interval));
        validate::required_target(&self.params, parent, first.as_ref())
    }

    /// The ancestor of `header` (inclusive) at `height` on its branch.
    pub(super) fn ancestor(&self, header: &Header, height: u64) -> Option<Header> {
        if height > header.height {
            return None;
        }
        // On the best chain the index answers directly.
        let hash = header.hash();
        // Headers are always in memory: a consensus rule never depends on
        // reading a body back.
        if self.is_on_best_chain(&hash) {
            return self.hash_at_height(height).and_then(|h| self.header(&h));
        }
        let mut current = *header;
        while current.height > height {
            current = self.blocks.get(&current.parent)?.header;
        }
        Some(current)
    }

    /// Offers a block to the tree at the validating node's time `now_ms`.
    ///
    /// # Errors
    ///
    /// [`InsertError`] naming the rule the block (or an ancestor applied only
    /// now) breaks. Nothing changes on a rule's error, except that a block
    /// whose transactions were refused is remembered as invalid.
    /// [`InsertError::Archive`] is different: the block joined the tree,
    /// and the state may have moved part of the way (each step of a reorg
    /// is whole, but a second step, or the report of the change, needed the
    /// archive too). A caller must treat it as its store failing: stop
    /// without saving anything more.
    pub fn insert(
        &mut self,
        block: Block<S::Tx>,
        now_ms: u64,
    ) -> Result<Inserted<S::Tx>, InsertError<S::Error>> {
        let hash = block.hash();
        if self.blocks.contains_key(&hash) || self.orphans.blocks.contains_key(&hash) {
            return Ok(Inserted::Duplicate);
        }
        if self.invalid.contains(&hash) {
            return Err(InsertError::KnownInvalid(hash));
        }
        if self.invalid.contains(&block.header.parent) {
            // A child of an invalid block is invalid; remembering it lets
            // its own descendants be refused without work too.
            self.reject_with_orphans(hash);
            return Err(InsertError::KnownInvalid(hash));
        }
        validate::check_block(&block, &self.params)?;
        let parent = block.header.parent;
        if !self.blocks.contains_key(&parent) {
            self.orphans.insert(hash, Arc::new(block));
            return Ok(Inserted::Orphan {
                missing_parent: parent,
            });
        }
        let old_tip = self.tip();
        if let Err(e) = self.connect(Arc::new(block), now_ms) {
            // A header that breaks a context rule is invalid whatever its
            // transactions, so it is remembered; a future timestamp is not.
            if e.is_permanent() {
                self.reject_with_orphans(hash);
            }
            return Err(e);
        }

        // Orphans waiting on this block (and on those, in turn) connect now.
        let mut ready = vec![hash];
        while let Some(parent) = ready.pop() {
            for child in self.orphans.take_children(&parent) {
                let child_hash = child.hash();
                match self.connect(child, now_ms) {
                    Ok(()) => ready.push(child_hash),
                    Err(e) if e.is_permanent() => self.reject_with_orphans(child_hash),
                    // Too far in the future: dropped, not remembered; a peer
                    // may offer it again once the clock has caught up.
                    Err(_) => {}
                }
            }
        }

        let failure = self.activate_best()?;
        if !self.blocks.contains_key(&hash) {
            // The block itself, or its branch, failed to apply.
            return Err(failure.unwrap_or(InsertError::KnownInvalid(hash)));
        }
        let new_tip = self.tip();
        if new_tip == old_tip {
            return Ok(Inserted::SideBranch);
        }
        Ok(Inserted::NewBest(self.reorg_between(old_tip, new_tip)?))
    }

    /// Adds a block whose parent is in the tree, after the context checks.
    /// The state is not touched.
    fn connect(
        &mut self,
        block: Arc<Block<S::Tx>>,
        now_ms: u64,
    ) -> Result<(), InsertError<S::Error>> {
        let hash = block.hash();
        let parent = block.header.parent;
        let context = self
            .parent_context(&parent)
            .ok_or(InsertError::KnownInvalid(hash))?;
        validate::check_context(&block.header, &context, now_ms, &self.params)?;
        let work = block
            .header
            .target
            .to_target()
            .map_err(ValidationError::from)?
            .work();
        let parent_work = self
            .blocks
            .get(&parent)
            .ok_or(InsertError::KnownInvalid(hash))?
            .cumulative_work;
        let cumulative_work = parent_work.saturating_add(work);
        // The parent has a child now, so it is no longer a tip.
        self.candidates.remove(&(parent_work, Reverse(parent)));
        self.resident.insert((block.header.height, hash));
        if self.archive.is_some() {
            self.new_blocks.push(Arc::clone(&block));
        }
        self.blocks.insert(
            hash,
            Entry {
                header: block.header,
                cumulative_work,
                body: Some(block),
            },
        );
        self.candidates.insert((cumulative_work, Reverse(hash)));
        Ok(())
    }
}

//! The orphan pool: blocks whose parent is not known yet, bounded, the
//! oldest evicted first, handed back when their parent arrives.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::hash::BlockHash;
use crate::header::Block;

/// Orphans waiting for their parent, bounded, oldest evicted first.
#[derive(Debug)]
pub(super) struct OrphanPool<T> {
    pub(super) blocks: HashMap<BlockHash, Arc<Block<T>>>,
    by_parent: HashMap<BlockHash, Vec<BlockHash>>,
    order: VecDeque<BlockHash>,
    pub(super) max: usize,
}

impl<T> OrphanPool<T> {
    pub(super) fn new(max: usize) -> Self {
        Self {
            blocks: HashMap::new(),
            by_parent: HashMap::new(),
            order: VecDeque::new(),
            max,
        }
    }

    pub(super) fn insert(&mut self, hash: BlockHash, block: Arc<Block<T>>) {
        if self.max == 0 || self.blocks.contains_key(&hash) {
            return;
        }
        while self.blocks.len() >= self.max {
            match self.order.pop_front() {
                Some(old) => self.remove(&old),
                None => break,
            }
        }
        self.by_parent
            .entry(block.header.parent)
            .or_default()
            .push(hash);
        self.blocks.insert(hash, block);
        self.order.push_back(hash);
    }

    pub(super) fn remove(&mut self, hash: &BlockHash) {
        if let Some(block) = self.blocks.remove(hash) {
            let parent = block.header.parent;
            if let Some(siblings) = self.by_parent.get_mut(&parent) {
                siblings.retain(|h| h != hash);
                if siblings.is_empty() {
                    self.by_parent.remove(&parent);
                }
            }
            self.order.retain(|h| h != hash);
        }
    }

    /// Takes the orphans whose parent is `parent` out of the pool.
    pub(super) fn take_children(&mut self, parent: &BlockHash) -> Vec<Arc<Block<T>>> {
        let hashes = self.by_parent.remove(parent).unwrap_or_default();
        hashes
            .iter()
            .filter_map(|h| {
                self.order.retain(|o| o != h);
                self.blocks.remove(h)
            })
            .collect()
    }
}

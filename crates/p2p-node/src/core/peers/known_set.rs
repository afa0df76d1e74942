//! A set that forgets its oldest entries past a bound: what a peer has or
//! was told of, kept for as long as it stays connected without growing the
//! node's memory.

use std::collections::{HashSet, VecDeque};

/// A set that forgets its oldest entries past a bound.
pub(super) struct KnownSet<T: std::hash::Hash + Eq + Copy> {
    set: HashSet<T>,
    order: VecDeque<T>,
    max: usize,
}

impl<T: std::hash::Hash + Eq + Copy> KnownSet<T> {
    pub(super) fn new(max: usize) -> Self {
        Self {
            set: HashSet::new(),
            order: VecDeque::new(),
            max,
        }
    }

    /// Remembers `item`, forgetting the oldest past the bound.
    pub fn insert(&mut self, item: T) {
        if self.set.insert(item) {
            self.order.push_back(item);
            if self.order.len() > self.max
                && let Some(old) = self.order.pop_front()
            {
                self.set.remove(&old);
            }
        }
    }

    /// Whether `item` is remembered.
    pub fn contains(&self, item: &T) -> bool {
        self.set.contains(item)
    }

    /// Forgets `item` (its slot in the eviction order stays until it ages
    /// out; evicting an item that was re-inserted only forgets it early).
    pub fn forget(&mut self, item: &T) {
        self.set.remove(item);
    }
}

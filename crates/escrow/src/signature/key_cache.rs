//! The key cache of the signature rule (see the parent module's docs):
//! keys that passed steps 1 to 3, decoded and ready for step 5.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, PoisonError};

use ed25519_zebra::VerificationKey;

use super::error::SignatureError;
use super::key_rule::check_key;
use crate::account::PublicKey;

/// The most keys the process's key cache holds (see the module docs): more
/// than a busy network's active accounts, at under 300 bytes a key.
pub const KEY_CACHE_CAPACITY: usize = 16_384;

/// The process's keys that passed steps 1 to 3, ready for step 5.
pub(super) static KEYS: LazyLock<KeyCache> = LazyLock::new(|| KeyCache::new(KEY_CACHE_CAPACITY));

/// A bounded, thread-safe map from a key's bytes to the key, decoded, for
/// keys that passed steps 1 to 3 of the rule.
pub(super) struct KeyCache {
    capacity: usize,
    ring: Mutex<Ring>,
}

/// The cache's keys: a ring of slots swept by a clock hand, and where each
/// key's slot is.
#[derive(Default)]
struct Ring {
    /// A key's bytes to its slot. The hasher is `std`'s, keyed at random
    /// per map, so no one can choose keys that collide.
    index: HashMap<[u8; 32], usize>,
    slots: Vec<Slot>,
    /// The next slot the sweep looks at when one must be freed.
    hand: usize,
}

struct Slot {
    key: VerificationKey,
    /// Used since the hand last passed: spared once.
    used: bool,
}

impl KeyCache {
    /// An empty cache that holds at most `capacity` keys (none if 0).
    pub(super) fn new(capacity: usize) -> KeyCache {
        KeyCache {
            capacity,
            ring: Mutex::new(Ring::default()),
        }
    }

    /// Steps 1 to 3 for `key`: the key, decoded, from the cache, or checked
    /// and remembered if it passes.
    ///
    /// # Errors
    ///
    /// As [`check_key`]; failures are not remembered.
    pub(super) fn check(&self, key: &PublicKey) -> Result<VerificationKey, SignatureError> {
        if let Some(ready) = self.get(key) {
            return Ok(ready);
        }
        check_key(key)?;
        // Decodes the bytes with the same function as step 1 did, so it
        // cannot fail once step 1 passed; were it to, step 1's reason is the
        // one that fits, and nothing is remembered.
        let ready = VerificationKey::try_from(key.0).map_err(|_| SignatureError::InvalidKey)?;
        self.insert(ready);
        Ok(ready)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        // Nothing under the lock panics; and were the ring left half
        // changed, a lookup still returns only a key with the bytes asked
        // for.
        self.ring.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The key remembered for `key`'s bytes, if any.
    fn get(&self, key: &PublicKey) -> Option<VerificationKey> {
        let mut ring = self.lock();
        let at = *ring.index.get(&key.0)?;
        let slot = ring.slots.get_mut(at)?;
        if slot.key.as_ref() != key.0.as_slice() {
            return None;
        }
        slot.used = true;
        Some(slot.key)
    }

    /// Remembers `ready` (a key that passed steps 1 to 3), freeing a slot if
    /// the cache is full.
    fn insert(&self, ready: VerificationKey) {
        if self.capacity == 0 {
            return;
        }
        let bytes: [u8; 32] = ready.into();
        let mut ring = self.lock();
        if ring.index.contains_key(&bytes) {
            // Another thread checked the same key meanwhile.
            return;
        }
        let slot = Slot {
            key: ready,
            used: false,
        };
        if ring.slots.len() < self.capacity {
            let at = ring.slots.len();
            ring.slots.push(slot);
            ring.index.insert(bytes, at);
            return;
        }
        // The clock sweep: the first slot not used since the hand last
        // passed it; used ones are spared once. It stops within two turns.
        let len = ring.slots.len();
        let mut at = ring.hand % len;
        loop {
            let Some(candidate) = ring.slots.get_mut(at) else {
                return;
            };
            if !candidate.used {
                break;
            }
            candidate.used = false;
            at = (at + 1) % len;
        }
        ring.hand = (at + 1) % len;
        let Some(victim) = ring.slots.get_mut(at) else {
            return;
        };
        let old: [u8; 32] = std::mem::replace(victim, slot).key.into();
        ring.index.remove(&old);
        ring.index.insert(bytes, at);
    }

    /// How many keys the cache holds.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().index.len()
    }
}

#[cfg(test)]
#[path = "key_cache_tests.rs"]
mod tests;

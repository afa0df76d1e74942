//! The signature cache: verdicts of the signature rule that passed,
//! remembered so a transaction checked on admission is not checked again
//! when its block arrives.
//!
//! As Bitcoin Core's signature cache, an entry is a digest of everything
//! the verdict depends on: the sender key, the exact signed bytes and the
//! signature. A different signature over the same body (a second valid one,
//! or a spoiled one) is another entry, so it is checked again. Only
//! successes are stored, and only by [`SigCache::check_signature`], which
//! runs the one rule ([`crate::signature::check_signature`]) itself: the
//! cache can remember nothing but that rule's verdicts, so a verdict with
//! the cache is the verdict without it on every input.
//!
//! The digest is BLAKE3 keyed with a random salt drawn when the cache is
//! made, so no one can aim entries at another's.
//!
//! The cache is bounded: at capacity the oldest entry goes (first in, first
//! out), so its memory stays under about 100 bytes per entry of capacity.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use crate::account::PublicKey;
use crate::signature::{self, SignatureError};
use crate::tx::SignedTx;

/// The capacity of [`SigCache::default`] and of the process's shared cache:
/// a full mempool's worth of verdicts and more, a few megabytes.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// A digest of a key, a signature and a message.
type Digest = [u8; 32];

/// A signature checked by [`SigCache::check_unremembered`] and not yet
/// remembered.
#[derive(Debug)]
#[must_use = "remember it once the transaction is admitted"]
pub struct Verified(Digest);

/// The signature verdict on one transaction, reached by
/// [`SigCache::precheck`] or [`SigCache::precheck_all`] before the
/// transaction reaches the pool, and bound to it and to the cache that
/// made it: [`SigCache::take_precheck`] gives the verdict only for the
/// same key, signature and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigCheck {
    digest: Digest,
    /// `Ok(true)`: a remembered success; `Ok(false)`: checked now.
    verdict: Result<bool, SignatureError>,
}

impl SigCheck {
    /// The verdict: `Ok` if the signature passes the rule.
    ///
    /// # Errors
    ///
    /// The rule's [`SignatureError`].
    pub fn verdict(&self) -> Result<(), SignatureError> {
        self.verdict.map(|_| ())
    }

    /// The verdict as [`SigCache::check_unremembered`] gives it: `None` for
    /// a remembered success, the [`Verified`] to remember for one checked
    /// now.
    fn unremembered(self) -> Result<Option<Verified>, SignatureError> {
        match self.verdict {
            Ok(true) => Ok(None),
            Ok(false) => Ok(Some(Verified(self.digest))),
            Err(e) => Err(e),
        }
    }
}

/// A bounded, thread-safe set of signatures that passed the signature rule.
pub struct SigCache {
    salt: [u8; 32],
    capacity: usize,
    entries: Mutex<Entries>,
    hits: AtomicU64,
    misses: AtomicU64,
    evicted: AtomicU64,
}

#[derive(Default)]
struct Entries {
    set: HashSet<Digest>,
    /// Oldest first: the eviction order.
    order: VecDeque<Digest>,
}

/// What a [`SigCache`] holds and how it has served.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigCacheStats {
    /// Verdicts held now.
    pub len: usize,
    /// The most it holds.
    pub capacity: usize,
    /// Lookups that found the verdict.
    pub hits: u64,
    /// Lookups that did not.
    pub misses: u64,
    /// Entries let go to make room.
    pub evicted: u64,
}

impl std::fmt::Debug for SigCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigCache")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Default for SigCache {
    fn default() -> SigCache {
        SigCache::new(DEFAULT_CAPACITY)
    }
}

impl SigCache {
    /// An empty cache that holds at most `capacity` verdicts (0 holds
    /// none: every check runs the rule).
    pub fn new(capacity: usize) -> SigCache {
        let mut salt = [0u8; 32];
        // Without the system's randomness the digest is still BLAKE3 (an
        // entry is found only for the exact key, signature and message);
        // the salt only makes the digests unpredictable.
        if getrandom::fill(&mut salt).is_err() {
            salt = [0u8; 32];
        }
        SigCache {
            salt,
            capacity,
            entries: Mutex::new(Entries::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
        }
    }

    /// The process's shared cache (of [`DEFAULT_CAPACITY`]), the one every
    /// [`crate::Ledger`] starts with: the mempool's admissions and the
    /// chain's blocks meet in it.
    pub fn shared() -> Arc<SigCache> {
        static SHARED: OnceLock<Arc<SigCache>> = OnceLock::new();
        Arc::clone(SHARED.get_or_init(|| Arc::new(SigCache::default())))
    }

    /// The most verdicts it holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many verdicts it holds.
    pub fn len(&self) -> usize {
        self.lock().set.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What it holds and how it has served.
    pub fn stats(&self) -> SigCacheStats {
        SigCacheStats {
            len: self.len(),
            capacity: self.capacity,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evicted: self.evicted.load(Ordering::Relaxed),
        }
    }

    /// The signature rule for `signature` by `key` over `message`, through
    /// the cache: a remembered success is returned at once; otherwise the
    /// rule runs, and a success is remembered.
    ///
    /// # Errors
    ///
    /// The [`SignatureError`] of the rule's first failed step (failures
    /// are never remembered).
    pub fn check_signature(
        &self,
        key: &PublicKey,
        signature: &[u8; 64],
        message: &[u8],
    ) -> Result<(), SignatureError> {
        let digest = self.digest(key, signature, message);
        if self.lookup(&digest) {
            return Ok(());
        }
        signature::check_signature(key, signature, message)?;
        self.insert(digest);
        Ok(())
    }

    /// [`SigCache::check_signature`] for a signed transaction.
    ///
    /// # Errors
    ///
    /// As [`SigCache::check_signature`].
    pub fn check(&self, tx: &SignedTx) -> Result<(), SignatureError> {
        self.check_signature(&tx.body.sender, &tx.signature.0, &tx.body.to_bytes())
    }

    /// The rule for a signed transaction through the cache, remembering
    /// nothing yet: `Ok(None)` for a remembered success, `Ok(Some(_))` for
    /// a success checked now, to [`SigCache::remember`] once the caller's
    /// other checks pass too. The mempool remembers only what it admits,
    /// so validly signed transactions it refuses (a wrong nonce, say)
    /// cannot push useful entries out.
    ///
    /// # Errors
    ///
    /// As [`SigCache::check_signature`].
    pub fn check_unremembered(&self, tx: &SignedTx) -> Result<Option<Verified>, SignatureError> {
        self.precheck(tx).unremembered()
    }

    /// The rule for `tx`, checked now (or found remembered) by whoever
    /// holds the transaction before the pool does (a connection task, an
    /// API request), so that the pool's single-threaded admission only
    /// looks the verdict up: [`crate::PendingState::admit_prechecked`].
    /// Nothing is remembered: a success is remembered only once the pool
    /// admits the transaction, as with [`SigCache::check_unremembered`].
    pub fn precheck(&self, tx: &SignedTx) -> SigCheck {
        let message = tx.body.to_bytes();
        let digest = self.digest(&tx.body.sender, &tx.signature.0, &message);
        let verdict = if self.lookup(&digest) {
            Ok(true)
        } else {
            signature::check_signature(&tx.body.sender, &tx.signature.0, &message).map(|()| false)
        };
        SigCheck { digest, verdict }
    }

    /// [`SigCache::precheck`] for several transactions (those a peer sent
    /// together), with one ZIP 215 batch for all that are not remembered:
    /// a batch costs a fraction of the single checks it replaces. If the
    /// batch fails, every one of its transactions is checked alone, so each
    /// verdict and reason is exactly the single rule's (see
    /// [`crate::signature`]): a bad signature costs its sender's batch one
    /// batch check more, never a wrong verdict.
    pub fn precheck_all(&self, txs: &[SignedTx]) -> Vec<SigCheck> {
        let mut checks: Vec<SigCheck> = Vec::with_capacity(txs.len());
        let mut unknown: Vec<usize> = Vec::new();
        let mut items: Vec<signature::Item> = Vec::new();
        for (i, tx) in txs.iter().enumerate() {
            let item = signature::Item::of(tx);
            let digest = self.digest(&item.key, &item.signature, &item.message);
            let known = self.lookup(&digest);
            checks.push(SigCheck {
                digest,
                verdict: Ok(known),
            });
            if !known {
                unknown.push(i);
                items.push(item);
            }
        }
        // One alone is checked the single way: a batch of one saves nothing.
        if items.len() > 1 && signature::batch_verdict(&items) {
            return checks;
        }
        for (i, item) in unknown.into_iter().zip(&items) {
            if let Some(check) = checks.get_mut(i) {
                check.verdict = signature::Signed::check(item).map(|()| false);
            }
        }
        checks
    }

    /// Checks the signatures of a block's transactions before the block
    /// is applied (ZIP 215 batches on `threads` threads of the signature
    /// pool for those not remembered; if a batch fails, each alone) and
    /// remembers those that pass, so that applying
    /// the block finds them (`Ledger::apply_block` checks only what the
    /// cache does not hold): a syncing node checks the next blocks'
    /// signatures on other threads while it applies the current one. The
    /// verdicts are the rule's (a failure is never remembered, and the
    /// block's application checks it again and refuses it). Returns how
    /// many signed transactions pass.
    pub fn precheck_block(&self, txs: &[crate::Tx], threads: usize) -> usize {
        let mut items: Vec<signature::Item> = Vec::new();
        let mut digests: Vec<Digest> = Vec::new();
        let mut known = 0;
        for tx in txs {
            let crate::Tx::Signed(tx) = tx else {
                continue;
            };
            let item = signature::Item::of(tx);
            let digest = self.digest(&item.key, &item.signature, &item.message);
            if self.lock().set.contains(&digest) {
                known += 1;
                continue;
            }
            items.push(item);
            digests.push(digest);
        }
        if items.len() > 1 && signature::verify_items(&items, threads).is_ok() {
            let passed = digests.len();
            digests.into_iter().for_each(|d| self.insert(d));
            return known + passed;
        }
        let mut passed = 0;
        for (item, digest) in items.iter().zip(digests) {
            if signature::Signed::check(item).is_ok() {
                self.insert(digest);
                passed += 1;
            }
        }
        known + passed
    }

    /// The verdict of `check` if it was made by this cache for exactly
    /// `tx` (same key, signature and body); `None` otherwise, and the
    /// caller checks the transaction itself. A success comes back as
    /// [`SigCache::check_unremembered`] gives it: `None` if already
    /// remembered, else the [`Verified`] to remember on admission.
    ///
    /// # Errors
    ///
    /// The rule's [`SignatureError`], as the precheck found it.
    pub fn take_precheck(
        &self,
        tx: &SignedTx,
        check: SigCheck,
    ) -> Option<Result<Option<Verified>, SignatureError>> {
        let digest = self.digest(&tx.body.sender, &tx.signature.0, &tx.body.to_bytes());
        (digest == check.digest).then(|| check.unremembered())
    }

    /// Remembers a success checked by [`SigCache::check_unremembered`].
    pub fn remember(&self, verified: Verified) {
        self.insert(verified.0);
    }

    /// Whether the verdict for this key, signature and message is a
    /// remembered success (counted as a hit or a miss).
    pub fn contains(&self, key: &PublicKey, signature: &[u8; 64], message: &[u8]) -> bool {
        self.lookup(&self.digest(key, signature, message))
    }

    /// The digest an entry is kept under: everything the verdict depends
    /// on. The key and the signature have fixed lengths and the message
    /// comes last, so no two inputs share their bytes.
    fn digest(&self, key: &PublicKey, signature: &[u8; 64], message: &[u8]) -> Digest {
        let mut hasher = blake3::Hasher::new_keyed(&self.salt);
        hasher.update(&key.0);
        hasher.update(signature);
        hasher.update(message);
        *hasher.finalize().as_bytes()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // The set is consistent after every statement: a panic elsewhere
        // while it was held leaves nothing half done.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lookup(&self, digest: &Digest) -> bool {
        let found = self.lock().set.contains(digest);
        let counter = if found { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Remembers a success; at capacity the oldest entry goes.
    fn insert(&self, digest: Digest) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.lock();
        if !entries.set.insert(digest) {
            return;
        }
        entries.order.push_back(digest);
        while entries.order.len() > self.capacity {
            if let Some(old) = entries.order.pop_front() {
                entries.set.remove(&old);
                self.evicted.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::dev;

    fn pay(nonce: u64) -> SignedTx {
        crate::signature::tests::transfer(&dev::keypair("alice").unwrap(), nonce)
    }

    #[test]
    fn a_success_is_remembered_and_found() {
        let cache = SigCache::new(10);
        let tx = pay(0);
        cache.check(&tx).unwrap();
        assert_eq!(cache.len(), 1);
        cache.check(&tx).unwrap();
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses), (1, 1));
        assert!(cache.contains(&tx.body.sender, &tx.signature.0, &tx.body.to_bytes()));
    }

    #[test]
    fn a_block_checked_ahead_is_remembered_but_a_bad_signature_in_it_is_not() {
        let cache = SigCache::new(100);
        let mut txs: Vec<crate::Tx> = (0..5).map(|n| crate::Tx::Signed(pay(n))).collect();
        txs.insert(
            0,
            crate::Tx::Coinbase {
                to: dev::address("eve").unwrap(),
                height: 1,
            },
        );
        assert_eq!(cache.precheck_block(&txs, 2), 5);
        assert_eq!(cache.len(), 5);
        // Again: all found, nothing checked.
        assert_eq!(cache.precheck_block(&txs, 2), 5);
        // One spoiled among fresh ones: the batch fails, each is checked
        // alone, and only the good ones are remembered.
        let mut more: Vec<crate::Tx> = (5..8).map(|n| crate::Tx::Signed(pay(n))).collect();
        if let crate::Tx::Signed(s) = &mut more[1] {
            s.signature.0[0] ^= 1;
        }
        assert_eq!(cache.precheck_block(&more, 2), 2);
        assert_eq!(cache.len(), 7);
        if let crate::Tx::Signed(s) = &more[1] {
            assert!(!cache.contains(&s.body.sender, &s.signature.0, &s.body.to_bytes()));
        }
    }

    #[test]
    fn a_spoiled_signature_over_the_same_body_is_checked_and_not_remembered() {
        let cache = SigCache::new(10);
        let tx = pay(0);
        cache.check(&tx).unwrap();
        let mut spoiled = tx.clone();
        spoiled.signature.0[0] ^= 1;
        assert_eq!(cache.check(&spoiled), spoiled.check_signature());
        assert!(cache.check(&spoiled).is_err());
        assert_eq!(cache.len(), 1, "failures are not stored");
        // Same signature, another body: not the cached verdict either.
        let mut other = tx.clone();
        other.body.nonce = 1;
        assert!(cache.check(&other).is_err());
    }

    #[test]
    fn a_full_cache_lets_the_oldest_go() {
        let cache = SigCache::new(3);
        let txs: Vec<SignedTx> = (0..5).map(pay).collect();
        for tx in &txs {
            cache.check(tx).unwrap();
        }
        let stats = cache.stats();
        assert_eq!((stats.len, stats.capacity, stats.evicted), (3, 3, 2));
        let held =
            |tx: &SignedTx| cache.contains(&tx.body.sender, &tx.signature.0, &tx.body.to_bytes());
        assert!(!held(&txs[0]) && !held(&txs[1]));
        assert!(held(&txs[2]) && held(&txs[3]) && held(&txs[4]));
        // A zero-capacity cache stores nothing and still gives the verdict.
        let none = SigCache::new(0);
        none.check(&txs[0]).unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn two_caches_key_their_digests_apart() {
        let (a, b) = (SigCache::new(1), SigCache::new(1));
        let tx = pay(0);
        let m = tx.body.to_bytes();
        assert_ne!(
            a.digest(&tx.body.sender, &tx.signature.0, &m),
            b.digest(&tx.body.sender, &tx.signature.0, &m)
        );
    }
    /// Signed by alice or with one bit of the signature spoiled.
    fn batch(spoil: &[usize]) -> Vec<SignedTx> {
        (0..8)
            .map(|n| {
                let mut tx = pay(n);
                if spoil.contains(&(n as usize)) {
                    tx.signature.0[3] ^= 0x10;
                }
                tx
            })
            .collect()
    }

    #[test]
    fn a_batch_precheck_gives_every_transaction_its_single_verdict() {
        let cache = SigCache::new(100);
        for spoil in [&[][..], &[0], &[7], &[2, 5], &[0, 1, 2, 3, 4, 5, 6, 7]] {
            let txs = batch(spoil);
            let checks = cache.precheck_all(&txs);
            assert_eq!(checks.len(), txs.len());
            for (tx, check) in txs.iter().zip(&checks) {
                assert_eq!(check.verdict(), tx.check_signature(), "spoiled {spoil:?}");
                assert_eq!(
                    check.verdict().is_err(),
                    spoil.contains(&(tx.body.nonce as usize))
                );
                // Bound to the transaction, and found in the same cache.
                assert_eq!(
                    cache
                        .take_precheck(tx, check.clone())
                        .map(|v| v.map(|_| ())),
                    Some(tx.check_signature())
                );
            }
            assert!(cache.is_empty(), "a precheck remembers nothing");
        }
        // One alone, and none.
        let one = batch(&[]);
        assert_eq!(cache.precheck_all(&one[..1])[0].verdict(), Ok(()));
        assert!(cache.precheck_all(&[]).is_empty());
    }

    #[test]
    fn a_precheck_is_bound_to_its_transaction_and_its_cache() {
        let (cache, other) = (SigCache::new(10), SigCache::new(10));
        let tx = pay(0);
        let check = cache.precheck(&tx);
        assert_eq!(check.verdict(), Ok(()));
        // Checked now: to be remembered on admission.
        assert!(matches!(
            cache.take_precheck(&tx, check.clone()),
            Some(Ok(Some(_)))
        ));
        // Another transaction, or another cache: no verdict to take.
        assert!(cache.take_precheck(&pay(1), check.clone()).is_none());
        assert!(other.take_precheck(&tx, check).is_none());
        let mut spoiled = tx.clone();
        spoiled.signature.0[0] ^= 1;
        assert!(cache.take_precheck(&spoiled, cache.precheck(&tx)).is_none());
        assert_eq!(
            cache.precheck(&spoiled).verdict(),
            spoiled.check_signature()
        );
        // Remembered: found, nothing more to remember.
        cache.check(&tx).unwrap();
        let found = cache.precheck(&tx);
        assert!(matches!(cache.take_precheck(&tx, found), Some(Ok(None))));
        assert!(matches!(
            cache.take_precheck(
                &tx,
                cache.precheck_all(std::slice::from_ref(&tx))[0].clone()
            ),
            Some(Ok(None))
        ));
    }
}

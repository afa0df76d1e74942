//! The signature rule: one verdict for every transaction, on every path and
//! every machine.
//!
//! # The rule
//!
//! A signed transaction's signature is valid when, in this order:
//!
//! 1. the sender key's 32 bytes decode to a point of the curve
//!    ([`SignatureError::InvalidKey`] otherwise);
//! 2. those bytes are the point's canonical encoding: `y < p`, and no sign
//!    bit on `x = 0` ([`SignatureError::NonCanonicalKey`]), so one key has
//!    one address;
//! 3. the point does not have small order, that is `[8]A` is not the
//!    identity ([`SignatureError::WeakKey`]): a signature for a small-order
//!    key can be made without any secret, so coins sent to one could be
//!    taken by anyone;
//! 4. the scalar `S` (the signature's last 32 bytes) is below the group
//!    order `L` ([`SignatureError::NonCanonicalS`]);
//! 5. the cofactored equation `[8][S]B = [8]R + [8][k]A` holds, with
//!    `k = SHA-512(R || A || body bytes) mod L` over the bytes exactly as they
//!    appear ([`SignatureError::Invalid`]). `R` may be any encoding that
//!    decodes to a point, canonical or not, of any order.
//!
//! Steps 4 and 5 are ZIP 215, as `ed25519-zebra` implements it; steps 1 to
//! 3 are transaction rules of this chain on top of it. The first step that
//! fails names the reason.
//!
//! # Why one verdict
//!
//! ZIP 215's single and batch verifiers check the same cofactored equation,
//! so a batch passes exactly when every signature in it passes (a batch of
//! valid signatures always passes; one with an invalid signature fails
//! except with probability about 2^-128, over fresh random coefficients).
//! [`verify_items`] splits a block over threads, batches each part, and on
//! any failure falls back to [`check`] one by one in block order, so the
//! verdict *and* the reason are those of the single path, whatever the
//! split, the thread count or the machine. Cofactorless verification
//! (`ed25519-dalek`'s `verify_batch` beside its `verify_strict`) does not
//! have this property and must not be used for consensus.
//!
//! # The key cache
//!
//! The same accounts sign again and again, and the per-key work is about a
//! quarter of a single check: steps 1 to 3 decode `A` (a square root),
//! encode it again (an inversion) and multiply it by the cofactor, and step
//! 5 decodes `A` once more. So a key that passes steps 1 to 3 is
//! remembered, process-wide, with its decoded point (an
//! `ed25519_zebra::VerificationKey`): the next check of that key, single or
//! in a batch, skips steps 1 to 3, and a single check skips the second
//! decoding too. The verdict cannot change: steps 1 to 3 depend on the
//! key's 32 bytes alone, the cache is looked up by exactly those bytes (a
//! hit is returned only if the key it holds has them), and the key it holds
//! is the one step 5 would decode from them. Keys that fail are not
//! remembered: they are checked again every time, as without the cache.
//! The cache holds at most [`KEY_CACHE_CAPACITY`] keys (under 300 bytes
//! each, so under 5 MB); when it is full, a key not used since the clock
//! hand last passed it makes room (second chance), so keys in steady use
//! stay and a flood of new keys mostly evicts its own. [`check_key`] itself
//! is not cached: it is the rule's definition.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use curve25519_dalek::Scalar;
use ed25519_zebra::{Signature as ZebraSignature, VerificationKeyBytes};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use rayon::prelude::*;

use crate::account::PublicKey;
use crate::tx::SignedTx;

pub mod cache;
mod error;
mod key_cache;
mod key_rule;

pub use error::SignatureError;
pub use key_cache::KEY_CACHE_CAPACITY;
use key_cache::{KEYS, KeyCache};
pub use key_rule::check_key;

/// Step 4: whether the signature's `S` is canonical.
fn check_s(signature: &[u8; 64]) -> Result<(), SignatureError> {
    let mut s = [0u8; 32];
    s.copy_from_slice(&signature[32..]);
    if bool::from(Scalar::from_canonical_bytes(s).is_some()) {
        Ok(())
    } else {
        Err(SignatureError::NonCanonicalS)
    }
}

/// The whole rule for one signature over `message` by `key`.
///
/// # Errors
///
/// The [`SignatureError`] of the first step that fails.
pub fn check_signature(
    key: &PublicKey,
    signature: &[u8; 64],
    message: &[u8],
) -> Result<(), SignatureError> {
    check_signature_with(&KEYS, key, signature, message)
}

/// [`check_signature`] with the keys that passed steps 1 to 3 taken from,
/// and remembered in, `keys`.
fn check_signature_with(
    keys: &KeyCache,
    key: &PublicKey,
    signature: &[u8; 64],
    message: &[u8],
) -> Result<(), SignatureError> {
    let key = keys.check(key)?;
    check_s(signature)?;
    key.verify(&ZebraSignature::from_bytes(signature), message)
        .map_err(|_| SignatureError::Invalid)
}

/// The whole rule for one signed transaction.
///
/// # Errors
///
/// The [`SignatureError`] of the first step that fails.
pub fn check(tx: &SignedTx) -> Result<(), SignatureError> {
    check_signature(&tx.body.sender, &tx.signature.0, &tx.body.to_bytes())
}

/// Something signed: a key, a signature and the message, which may be
/// encoded on demand (a transaction's body bytes are built by the thread
/// that checks them).
pub trait Signed: Sync {
    /// The signer's public key.
    fn key(&self) -> &PublicKey;
    /// The signature.
    fn signature(&self) -> &[u8; 64];
    /// The signed bytes.
    fn message(&self) -> std::borrow::Cow<'_, [u8]>;

    /// The whole rule for this one signature.
    ///
    /// # Errors
    ///
    /// The [`SignatureError`] of the first step that fails.
    fn check(&self) -> Result<(), SignatureError> {
        check_signature(self.key(), self.signature(), &self.message())
    }
}

impl Signed for &SignedTx {
    fn key(&self) -> &PublicKey {
        &self.body.sender
    }
    fn signature(&self) -> &[u8; 64] {
        &self.signature.0
    }
    fn message(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Owned(self.body.to_bytes())
    }
}

impl Signed for Item {
    fn key(&self) -> &PublicKey {
        &self.key
    }
    fn signature(&self) -> &[u8; 64] {
        &self.signature
    }
    fn message(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.message)
    }
}

impl SignedTx {
    /// Checks the signature by the chain's one signature rule (see the
    /// module docs). Defined here, beside the rule, so that `tx.rs` needs
    /// nothing of this module.
    ///
    /// # Errors
    ///
    /// The [`SignatureError`] naming the step of the rule that fails.
    pub fn check_signature(&self) -> Result<(), SignatureError> {
        check(self)
    }

    /// Whether the signature is valid by the chain's one signature rule.
    pub fn verify(&self) -> bool {
        self.check_signature().is_ok()
    }
}

/// One signature to check: the key, the signature and the signed bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// The signer's public key.
    pub key: PublicKey,
    /// The signature.
    pub signature: [u8; 64],
    /// The signed message (a transaction's body bytes).
    pub message: Vec<u8>,
}

impl Item {
    /// The item for a signed transaction.
    pub fn of(tx: &SignedTx) -> Item {
        Item {
            key: tx.body.sender,
            signature: tx.signature.0,
            message: tx.body.to_bytes(),
        }
    }
}

/// The smallest part of a block worth a thread of its own: below it, handing
/// the work to the pool costs more than it saves.
const MIN_PART: usize = 32;

/// Parts per thread: more parts than threads let the pool balance the
/// parts with the state's application running beside them.
const PARTS_PER_THREAD: usize = 1;

/// Checks every signature of a block's transactions on `threads` threads (1
/// = the calling thread only); see [`verify_items`].
///
/// # Errors
///
/// The index in `txs` of the first transaction whose signature is refused,
/// and why.
pub fn verify_block(txs: &[&SignedTx], threads: usize) -> Result<(), (usize, SignatureError)> {
    verify_items(txs, threads)
}

/// Checks every item on `threads` threads (1 = the calling thread only) and
/// returns the first bad one in the given order with its reason, exactly as
/// checking them one by one with [`Signed::check`] would.
///
/// Items are grouped by key, and each thread gets whole keys where the part
/// sizes allow: a batch coalesces the terms of repeated keys. No part is
/// smaller than a few dozen items unless the block is.
///
/// # Errors
///
/// The index of the first item refused, and why.
pub fn verify_items<T: Signed>(items: &[T], threads: usize) -> Result<(), (usize, SignatureError)> {
    let parts = (threads.max(1) * PARTS_PER_THREAD)
        .min(items.len() / MIN_PART)
        .max(1);
    verify_in_parts(items, parts, threads.max(1))
}

/// [`verify_block`], with `work` running beside the checks: the ledger
/// applies a block's state while the pool checks its signatures. On one
/// thread the checks come first and `work` runs only if they pass.
///
/// `work` is assumed to cost about a sixteenth of a signature check per
/// transaction (a transfer's state change against its ZIP 215 share), and
/// the thread that runs it gets that much less to check, so that every
/// thread finishes at about the same time.
///
/// Returns the verdict of the checks (as [`verify_block`]'s) and what
/// `work` returned, if it ran.
pub fn verify_alongside<T: Signed, R: Send>(
    txs: &[T],
    threads: usize,
    work: impl FnOnce() -> R + Send,
) -> (Result<(), (usize, SignatureError)>, Option<R>) {
    let threads = threads.max(1).min(txs.len() / MIN_PART).max(1);
    let pool = if threads > 1 { pool(threads) } else { None };
    let Some(pool) = pool else {
        let verdict = verify_items(txs, 1);
        let out = verdict.is_ok().then(work);
        return (verdict, out);
    };
    let n = txs.len();
    let work_units = n / VERIFY_PER_APPLY;
    let share = (n + work_units).div_ceil(threads);
    let first = share.saturating_sub(work_units).min(n);
    let rest = n - first;
    let mut sizes = vec![first];
    let others = threads - 1;
    sizes.extend((0..others).map(|i| rest / others + usize::from(i < rest % others)));
    let parts = split_by_key(txs, &sizes);
    let (first_part, other_parts) = parts
        .split_first()
        .map_or((&[][..], &[][..]), |(f, o)| (f.as_slice(), o));
    let ((out, first_ok), others_ok) = pool.install(|| {
        rayon::join(
            || {
                let out = work();
                (out, batch_passes(txs, first_part))
            },
            || other_parts.par_iter().all(|part| batch_passes(txs, part)),
        )
    });
    let verdict = if first_ok && others_ok {
        Ok(())
    } else {
        first_bad(txs)
    };
    (verdict, Some(out))
}

/// How many signature checks cost about as much as applying one
/// transaction's state change (measured on transfers; see the ledger
/// benchmark).
const VERIFY_PER_APPLY: usize = 16;

/// [`verify_items`] with the items split into exactly `parts` parts (fewer
/// only if there are fewer items), whatever their size, on a pool of
/// `parts` threads: for tests that must try every split, and for
/// benchmarks.
///
/// # Errors
///
/// As [`verify_items`].
pub fn verify_split<T: Signed>(items: &[T], parts: usize) -> Result<(), (usize, SignatureError)> {
    let parts = parts.max(1);
    verify_in_parts(items, parts, parts)
}

/// Whether every item passes the rule, by one ZIP 215 batch on the
/// calling thread: `true` means each would pass alone; `false` means at
/// least one fails (or the system gave no randomness for the batch's
/// coefficients), and the caller must check them one by one to learn
/// which and why.
pub fn batch_verdict<T: Signed>(items: &[T]) -> bool {
    batch_passes(items, &(0..items.len()).collect::<Vec<_>>())
}

fn verify_in_parts<T: Signed>(
    items: &[T],
    parts: usize,
    threads: usize,
) -> Result<(), (usize, SignatureError)> {
    let passed = if parts <= 1 || threads <= 1 {
        batch_passes(items, &(0..items.len()).collect::<Vec<_>>())
    } else {
        let n = items.len();
        let sizes: Vec<usize> = (0..parts)
            .map(|i| n / parts + usize::from(i < n % parts))
            .collect();
        let parts = split_by_key(items, &sizes);
        match pool(threads) {
            Some(pool) => pool.install(|| parts.par_iter().all(|part| batch_passes(items, part))),
            None => parts.iter().all(|part| batch_passes(items, part)),
        }
    };
    if passed { Ok(()) } else { first_bad(items) }
}

/// After a failed batch: the first bad item, checked the single way, so the
/// reason is the same as on every other path.
fn first_bad<T: Signed>(items: &[T]) -> Result<(), (usize, SignatureError)> {
    for (index, item) in items.iter().enumerate() {
        item.check().map_err(|e| (index, e))?;
    }
    // Unreachable with ZIP 215 (a batch of valid signatures always passes),
    // but were the batch wrong, the single verdict is the rule.
    Ok(())
}

/// Whether the items at `indices` pass steps 1 to 4 one by one and step 5
/// as one ZIP 215 batch. Steps 1 to 3 are checked once per key and batch,
/// through the key cache.
fn batch_passes<T: Signed>(items: &[T], indices: &[usize]) -> bool {
    if indices.is_empty() {
        return true;
    }
    let mut verifier = ed25519_zebra::batch::Verifier::new();
    let mut keys_checked: HashMap<PublicKey, bool> = HashMap::new();
    for &i in indices {
        let Some(item) = items.get(i) else {
            return false;
        };
        let key = *item.key();
        let key_ok = *keys_checked
            .entry(key)
            .or_insert_with(|| KEYS.check(&key).is_ok());
        if !key_ok || check_s(item.signature()).is_err() {
            return false;
        }
        verifier.queue((
            VerificationKeyBytes::from(key.0),
            ZebraSignature::from_bytes(item.signature()),
            item.message().as_ref(),
        ));
    }
    // The batch's coefficients must be unpredictable to whoever made the
    // signatures: a ChaCha20 stream from a fresh seed of the system's
    // randomness (one system call per batch, not one per signature). If the
    // system has none to give, the batch is skipped and the caller checks
    // one by one, which needs none.
    let mut seed = [0u8; 32];
    if getrandom::fill(&mut seed).is_err() {
        return false;
    }
    verifier.verify(ChaCha20Rng::from_seed(seed)).is_ok()
}

/// Splits the indices of `items` into parts of the given sizes (which sum
/// to the number of items), each key's items in one part where the sizes
/// allow: keys in order of first appearance fill one part, then the next.
fn split_by_key<T: Signed>(items: &[T], sizes: &[usize]) -> Vec<Vec<usize>> {
    let mut by_key: HashMap<PublicKey, Vec<usize>> = HashMap::new();
    let mut order = Vec::new();
    for (i, item) in items.iter().enumerate() {
        by_key
            .entry(*item.key())
            .or_insert_with(|| {
                order.push(*item.key());
                Vec::new()
            })
            .push(i);
    }
    let mut sizes = sizes.iter().copied();
    let mut target = sizes.next().unwrap_or(items.len());
    let mut out: Vec<Vec<usize>> = Vec::with_capacity(sizes.len() + 1);
    let mut current = Vec::with_capacity(target);
    for key in order {
        for i in by_key.remove(&key).unwrap_or_default() {
            // A key with more than what is left of a part is split: the
            // parts' sizes matter more than coalescing one key's terms.
            while current.len() >= target {
                out.push(std::mem::take(&mut current));
                target = sizes.next().unwrap_or(usize::MAX);
            }
            current.push(i);
        }
    }
    out.push(current);
    out
}

/// The process's verification pools, one per thread count asked for, made
/// once and kept: spawning threads per block costs more than a small block's
/// verification.
static POOLS: Mutex<Vec<(usize, Arc<rayon::ThreadPool>)>> = Mutex::new(Vec::new());

/// The pool of `threads` threads, or `None` if the system refused to start
/// one (verification then runs on the calling thread).
fn pool(threads: usize) -> Option<Arc<rayon::ThreadPool>> {
    let mut pools = POOLS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, pool)) = pools.iter().find(|(n, _)| *n == threads) {
        return Some(Arc::clone(pool));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("sigverify-{i}"))
        .build()
        .ok()?;
    let pool = Arc::new(pool);
    pools.push((threads, Arc::clone(&pool)));
    Some(pool)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::amount::Amount;
    use crate::dev;
    use crate::key_file::Keypair;
    use crate::tx::Payload;
    use chain_core::BlockHash;

    /// A transfer of 1 to bob by `key` (for the crate's tests).
    pub(crate) fn transfer(key: &Keypair, nonce: u64) -> SignedTx {
        SignedTx::sign(
            key,
            nonce,
            crate::Amount::ZERO,
            BlockHash::from_bytes([7; 32]),
            Payload::Transfer {
                to: dev::address("bob").unwrap(),
                amount: Amount::new(1),
            },
        )
    }

    #[test]
    fn the_identity_key_is_weak() {
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(
            check_key(&PublicKey(identity)),
            Err(SignatureError::WeakKey)
        );
        // The same point with the sign bit set on x = 0: not canonical.
        identity[31] |= 0x80;
        assert_eq!(
            check_key(&PublicKey(identity)),
            Err(SignatureError::NonCanonicalKey)
        );
    }

    #[test]
    fn a_key_with_y_past_the_field_is_not_canonical() {
        // y = p + 1 encodes the same point as y = 1 (the identity).
        let mut bytes = [0xffu8; 32];
        bytes[0] = 0xee;
        bytes[31] = 0x7f;
        assert_eq!(
            check_key(&PublicKey(bytes)),
            Err(SignatureError::NonCanonicalKey)
        );
    }

    #[test]
    fn honest_keys_pass_and_tampering_is_named() {
        let alice = dev::keypair("alice").unwrap();
        assert_eq!(check_key(&alice.public()), Ok(()));
        let tx = transfer(&alice, 0);
        assert_eq!(check(&tx), Ok(()));
        let mut bad = tx.clone();
        bad.signature.0[0] ^= 1;
        assert_eq!(check(&bad), Err(SignatureError::Invalid));
        let mut high_s = tx;
        high_s.signature.0[63] |= 0xf0;
        assert_eq!(check(&high_s), Err(SignatureError::NonCanonicalS));
    }

    #[test]
    fn split_keeps_every_index_once_and_senders_together() {
        let keys: Vec<Keypair> = (1..=10u8).map(|i| Keypair::from_seed([i; 32])).collect();
        let txs: Vec<SignedTx> = (0..400)
            .map(|i| transfer(&keys[i % keys.len()], (i / keys.len()) as u64))
            .collect();
        let items: Vec<Item> = txs.iter().map(Item::of).collect();
        let parts = split_by_key(&items, &[100; 4]);
        assert_eq!(parts.len(), 4);
        let mut all: Vec<usize> = parts.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..400).collect::<Vec<_>>());
        // 40 transactions per sender, 100 per part: at most one sender is
        // split across each boundary.
        for part in &parts {
            let senders: std::collections::HashSet<_> =
                part.iter().map(|&i| items[i].key).collect();
            assert!(senders.len() <= 4, "{} senders in a part", senders.len());
        }
    }

    #[test]
    fn the_verdict_names_the_first_bad_transaction_on_any_thread_count() {
        let keys: Vec<Keypair> = (1..=5u8).map(|i| Keypair::from_seed([i; 32])).collect();
        let mut txs: Vec<SignedTx> = (0..200)
            .map(|i| transfer(&keys[i % keys.len()], (i / keys.len()) as u64))
            .collect();
        txs[150].signature.0[5] ^= 4;
        txs[170].signature.0[63] |= 0xf0;
        let refs: Vec<&SignedTx> = txs.iter().collect();
        for threads in [1, 2, 3, 7, 16] {
            assert_eq!(
                verify_block(&refs, threads),
                Err((150, SignatureError::Invalid)),
                "{threads} threads"
            );
        }
    }
}

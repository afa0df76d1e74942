//! The signature cache changes no verdict: a block is accepted or refused
//! (with the same error) whether its signatures are cached or not, and a
//! transaction checked on admission is not checked again in its block.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

mod common;

use std::sync::Arc;

use chain_core::{BlockContext, BlockHash, StateMachine};
use common::{addr, dev_ledger, transfer};
use escrow::{
    AdmissionError, Ledger, LedgerError, PendingState, SigCache, SignatureError, SignedTx, Tx,
    VerifyMode, check_admission,
};

const CTX: BlockContext = BlockContext {
    hash: BlockHash::ZERO,
    height: 1,
    timestamp_ms: 1_000,
};

/// `n` transfers from alice to bob, nonces 0 to n - 1.
fn transfers(ledger: &Ledger, n: u64) -> Vec<SignedTx> {
    (0..n)
        .map(|nonce| transfer("alice", nonce, ledger.network(), "bob", 1))
        .collect()
}

fn block(txs: &[SignedTx]) -> Vec<Tx> {
    std::iter::once(Tx::Coinbase {
        to: addr("ferdie"),
        height: 1,
    })
    .chain(txs.iter().cloned().map(Tx::Signed))
    .collect()
}

/// A ledger after genesis with its own cache (of `capacity`) and mode.
fn ledger_with(capacity: usize, mode: VerifyMode) -> (Ledger, Arc<SigCache>) {
    let mut ledger = dev_ledger();
    ledger.set_verify_mode(mode);
    let cache = Arc::new(SigCache::new(capacity));
    ledger.set_sig_cache(Arc::clone(&cache));
    (ledger, cache)
}

/// `tx` with one bit of its signature's `R` flipped: the same body, a
/// signature the rule refuses.
fn spoiled(tx: &SignedTx) -> SignedTx {
    let mut bad = tx.clone();
    bad.signature.0[5] ^= 0x10;
    bad
}

const MODES: [VerifyMode; 3] = [
    VerifyMode::Single,
    VerifyMode::Batch { threads: 1 },
    VerifyMode::Batch { threads: 3 },
];

/// Applies `txs` in a block to a copy of the cached ledger and to one
/// without a cache: the same outcome and the same state. Returns it.
fn same_verdict(cached: &Ledger, txs: &[SignedTx]) -> Result<escrow::Undo, LedgerError> {
    let mut with = cached.clone();
    let mut without = cached.clone();
    without.remove_sig_cache();
    let a = with.apply_block(&CTX, &block(txs));
    let b = without.apply_block(&CTX, &block(txs));
    assert_eq!(a, b, "the verdict does not depend on the cache");
    assert_eq!(with, without, "nor does the state");
    a
}

#[test]
fn a_block_of_admitted_transactions_hits_the_cache_for_every_signature() {
    for mode in MODES {
        let (ledger, cache) = ledger_with(1_000, mode);
        let txs = transfers(&ledger, 80);
        let mut pending = PendingState::new(&ledger, 1);
        for tx in &txs {
            pending.admit(tx).unwrap();
        }
        let before = cache.stats();
        assert_eq!(before.len, 80, "admission remembers each success");
        assert_eq!(before.hits, 0);
        same_verdict(&ledger, &txs).unwrap();
        let after = cache.stats();
        assert_eq!(
            after.hits - before.hits,
            80,
            "{mode:?}: every signature was cached"
        );
        assert_eq!(after.misses, before.misses);
    }
}

#[test]
fn check_admission_uses_the_ledger_cache() {
    let (ledger, cache) = ledger_with(10, VerifyMode::Single);
    let tx = transfers(&ledger, 1).remove(0);
    check_admission(&ledger, &[], &tx, 1).unwrap();
    assert_eq!(cache.len(), 1);
    check_admission(&ledger, &[], &tx, 1).unwrap();
    assert_eq!(cache.stats().hits, 1);
}

#[test]
fn another_signature_over_a_cached_body_is_checked_and_refused() {
    for mode in MODES {
        let (ledger, cache) = ledger_with(1_000, mode);
        let mut txs = transfers(&ledger, 70);
        let mut pending = PendingState::new(&ledger, 1);
        for tx in &txs {
            pending.admit(tx).unwrap();
        }
        // The block carries a spoiled signature over the 40th body, whose
        // valid signature is cached.
        let good = txs[40].clone();
        txs[40] = spoiled(&good);
        let err = same_verdict(&ledger, &txs).unwrap_err();
        let LedgerError::BadSignature { tx, reason } = err else {
            panic!("{mode:?}: {err:?}");
        };
        assert_eq!(tx, good.id(), "the id leaves the signature out");
        assert_eq!(Err(reason), txs[40].check_signature());
        // Admission refuses it too, and the failure is not remembered.
        let len = cache.len();
        let mut fresh = PendingState::new(&ledger, 1);
        for tx in &txs[..40] {
            fresh.admit(tx).unwrap();
        }
        assert!(matches!(
            fresh.admit(&txs[40]),
            Err(AdmissionError::Invalid(LedgerError::BadSignature { .. }))
        ));
        assert_eq!(cache.len(), len);
    }
}

#[test]
fn the_first_bad_signature_is_named_whatever_is_cached() {
    for mode in MODES {
        let (ledger, _cache) = ledger_with(1_000, mode);
        let mut txs = transfers(&ledger, 100);
        // Half the signatures cached (the even nonces, through the cache's
        // own check).
        for tx in txs.iter().step_by(2) {
            ledger.sig_cache().unwrap().check(tx).unwrap();
        }
        // Two bad ones, uncached: the earlier one is the block's error.
        txs[71] = spoiled(&txs[71]);
        let mut weak = txs[33].clone();
        weak.signature.0[32..].fill(0xFF); // S >= L
        txs[33] = weak;
        let err = same_verdict(&ledger, &txs).unwrap_err();
        assert_eq!(
            err,
            LedgerError::BadSignature {
                tx: txs[33].id(),
                reason: SignatureError::NonCanonicalS
            },
            "{mode:?}"
        );
    }
}

#[test]
fn a_full_cache_evicts_and_the_evicted_are_checked_again() {
    let (ledger, cache) = ledger_with(3, VerifyMode::Batch { threads: 2 });
    let txs = transfers(&ledger, 5);
    let mut pending = PendingState::new(&ledger, 1);
    for tx in &txs {
        pending.admit(tx).unwrap();
    }
    let stats = cache.stats();
    assert_eq!((stats.len, stats.evicted), (3, 2));
    same_verdict(&ledger, &txs).unwrap();
    let after = cache.stats();
    assert_eq!(after.hits - stats.hits, 3, "the three newest were cached");
    assert_eq!(
        after.misses - stats.misses,
        2,
        "the two oldest were checked"
    );
}

#[test]
fn a_decoded_or_new_ledger_shares_the_process_cache() {
    let ledger = dev_ledger();
    let shared = SigCache::shared();
    assert!(Arc::ptr_eq(ledger.sig_cache().unwrap(), &shared));
    let bytes = postcard::to_stdvec(&ledger).unwrap();
    let back: Ledger = postcard::from_bytes(&bytes).unwrap();
    assert!(Arc::ptr_eq(back.sig_cache().unwrap(), &shared));
    let (mine, cache) = ledger_with(5, VerifyMode::Single);
    assert!(Arc::ptr_eq(mine.clone().sig_cache().unwrap(), &cache));
    assert_eq!(mine, ledger, "the cache is not part of equality");
}

#[test]
fn a_validly_signed_transaction_that_is_refused_is_not_remembered() {
    // A wrong nonce, or too little money: the signature is good, but the
    // pool does not take the transaction, so the cache does not either
    // (else anyone could flush it with valid signatures for free).
    let (ledger, cache) = ledger_with(16, VerifyMode::Single);
    let mut pending = PendingState::new(&ledger, 1);
    let ahead = transfer("alice", 5, ledger.network(), "bob", 1);
    assert!(matches!(
        pending.admit(&ahead),
        Err(AdmissionError::Invalid(LedgerError::BadNonce { .. }))
    ));
    assert!(
        check_admission(&ledger, &[], &ahead, 1).is_err(),
        "the pure form refuses it too"
    );
    assert_eq!(cache.len(), 0);
    // Once admitted, it is remembered.
    let next = transfer("alice", 0, ledger.network(), "bob", 1);
    pending.admit(&next).unwrap();
    assert_eq!(cache.len(), 1);
}

#[test]
fn a_prechecked_admission_gives_the_verdicts_of_a_checked_one() {
    // Prechecked on "another thread" (by the ledger's cache), admitted with
    // the verdict: the same results, reasons and remembered entries as
    // `admit`, and no signature checked again on admission.
    let (ledger, cache) = ledger_with(100, VerifyMode::Single);
    let mut checked = PendingState::new(&ledger, 1);
    let mut prechecked = PendingState::new(&ledger, 1);
    let mut txs = transfers(&ledger, 6);
    txs[2] = spoiled(&txs[2]);
    txs.push(transfer("alice", 9, ledger.network(), "bob", 1)); // a nonce gap
    let checks = cache.precheck_all(&txs);
    assert_eq!(cache.len(), 0, "a precheck remembers nothing");
    for (tx, check) in txs.iter().zip(checks) {
        let misses = cache.stats().misses;
        let by_precheck = prechecked.admit_prechecked(tx, check);
        assert_eq!(
            cache.stats().misses,
            misses,
            "the verdict is looked up, not checked again"
        );
        assert_eq!(by_precheck, checked.admit(tx));
    }
    assert_eq!(prechecked.ledger().nonce(&addr("alice")), 2);
    // Admitted ones are remembered, refused ones are not: two admitted by
    // each path, and the same two.
    assert_eq!(cache.len(), 2);

    // A verdict made for another transaction, or by another cache, is
    // ignored: the signature is checked on admission.
    let other = SigCache::new(10);
    let mut fresh = PendingState::new(&ledger, 1);
    let bad = spoiled(&txs[0]);
    assert!(matches!(
        fresh.admit_prechecked(&bad, cache.precheck(&txs[0])),
        Err(AdmissionError::Invalid(LedgerError::BadSignature {
            reason: SignatureError::Invalid,
            ..
        }))
    ));
    fresh
        .admit_prechecked(&txs[0], other.precheck(&bad))
        .unwrap();
    assert_eq!(fresh.ledger().nonce(&addr("alice")), 1);
}

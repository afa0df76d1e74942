//! Transaction decoding and the signature rule: the bytes after the first
//! are a signed transaction as a peer or the API sends it. Whatever
//! decodes must be its own canonical encoding; the signature rule must
//! give one verdict whether a transaction is checked alone, through the
//! signature cache or in a batch with a valid one; and admission against
//! the small chain's ledger must refuse a bad signature. With the first
//! byte odd the harness re-signs the transaction as a dev account, so the
//! fuzzer reaches the ledger's rules behind the signature.

#![no_main]

use escrow::{SigCache, SignedTx, check_admission, signature};
use escrow_chain_fuzz::chain::{resign, small_chain};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, bytes)) = data.split_first() else {
        return;
    };
    let Ok(decoded) = SignedTx::from_bytes(bytes) else {
        return;
    };
    assert_eq!(
        decoded.to_bytes(),
        bytes,
        "decoding accepts only canonical bytes"
    );
    let chain = small_chain();
    let tx = if mode & 1 == 1 {
        resign(&decoded, usize::from(mode >> 1), chain.genesis_hash())
    } else {
        decoded
    };
    // One verdict, however it is reached.
    let single = signature::check(&tx);
    let cache = SigCache::new(16);
    let cached = cache.precheck(&tx).verdict();
    assert_eq!(
        single.is_ok(),
        cached.is_ok(),
        "the cache agrees with the rule"
    );
    let valid = resign(&tx, 0, tx.body.network);
    let batch = signature::verify_block(&[&valid, &tx], 1);
    assert_eq!(
        batch.is_ok(),
        single.is_ok(),
        "a batch with a valid signature agrees with the single check"
    );
    if let Err((index, reason)) = batch {
        assert_eq!(index, 1, "the batch names the bad transaction");
        assert_eq!(
            Err(reason),
            single,
            "the batch gives the single check's reason"
        );
    }
    let admitted = check_admission(chain.state(), &[], &tx, chain.height() + 1);
    if single.is_err() {
        assert!(admitted.is_err(), "a bad signature is never admitted");
    }
});

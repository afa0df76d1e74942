//! The key cache's tests: its verdicts against the rule without it, its
//! eviction, and batches over keys it has seen (a file of its own, as a
//! child of `key_cache.rs`, so that the cache does not import the rule's
//! module that uses it).

use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_zebra::Signature as ZebraSignature;

use super::*;
use crate::dev;
use crate::key_file::Keypair;
use crate::signature::tests::transfer;
use crate::signature::{Item, check_s, check_signature_with, verify_split};

/// The rule without the key cache: the code before it, as the oracle.
fn uncached(key: &PublicKey, signature: &[u8; 64], message: &[u8]) -> Result<(), SignatureError> {
    check_key(key)?;
    check_s(signature)?;
    let key = VerificationKey::try_from(key.0).map_err(|_| SignatureError::InvalidKey)?;
    key.verify(&ZebraSignature::from_bytes(signature), message)
        .map_err(|_| SignatureError::Invalid)
}

/// The eight points of small order, canonically encoded (as in
/// `tests/common/crafted.rs`).
const SMALL_ORDER: [&str; 8] = [
    "0100000000000000000000000000000000000000000000000000000000000000",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
];

fn small_order() -> Vec<[u8; 32]> {
    SMALL_ORDER
        .iter()
        .map(|h| {
            let mut out = [0u8; 32];
            hex::decode_to_slice(h, &mut out).unwrap();
            out
        })
        .collect()
}

/// Every string that decodes to a point but is not its canonical
/// encoding (as in `tests/common/crafted.rs`): `y + p` for the `y < 19` on
/// the curve, and the sign bit set on `x = 0`.
fn non_canonical() -> Vec<[u8; 32]> {
    let mut out = Vec::new();
    for y in 0u8..19 {
        for sign in [0u8, 0x80] {
            let mut b = [0xffu8; 32];
            b[0] = 0xed + y;
            b[31] = 0x7f | sign;
            if CompressedEdwardsY(b).decompress().is_some() {
                out.push(b);
            }
        }
    }
    for mut b in small_order().into_iter().take(2) {
        b[31] |= 0x80;
        out.push(b);
    }
    out
}

/// Strings that are no point at all.
fn not_points() -> Vec<[u8; 32]> {
    (2u8..=255)
        .map(|y| {
            let mut b = [0u8; 32];
            b[0] = y;
            b
        })
        .filter(|b| CompressedEdwardsY(*b).decompress().is_none())
        .take(4)
        .collect()
}

/// A key, a signature and a message.
type Case = (PublicKey, [u8; 64], Vec<u8>);

/// For each honest key: a valid signature, one with a flipped bit and
/// one with `S` past the order; for each small-order key, a signature
/// (`R` small order, `S = 0`) that passes the equation, and `S = L`;
/// for each non-canonical or non-point key, the same two.
fn cases(honest: &[Keypair]) -> Vec<Case> {
    let mut out = Vec::new();
    for key in honest {
        let tx = transfer(key, 3);
        let message = tx.body.to_bytes();
        out.push((key.public(), tx.signature.0, message.clone()));
        let mut bad = tx.signature.0;
        bad[7] ^= 2;
        out.push((key.public(), bad, message.clone()));
        let mut high = tx.signature.0;
        high[63] |= 0xf0;
        out.push((key.public(), high, message));
    }
    let torsion = small_order();
    let weird = torsion
        .iter()
        .chain(&non_canonical())
        .chain(&not_points())
        .copied()
        .collect::<Vec<_>>();
    for a in weird {
        let mut zero_s = [0u8; 64];
        zero_s[..32].copy_from_slice(&torsion[0]);
        let mut high_s = zero_s;
        high_s[32..].copy_from_slice(&[0xff; 32]);
        out.push((PublicKey(a), zero_s, b"anything".to_vec()));
        out.push((PublicKey(a), high_s, b"anything".to_vec()));
    }
    out
}

fn honest_keys(n: u8) -> Vec<Keypair> {
    (1..=n).map(|i| Keypair::from_seed([i; 32])).collect()
}

#[test]
fn the_cache_gives_the_uncached_verdict_the_first_and_second_time() {
    let honest = honest_keys(4);
    let cases = cases(&honest);
    let cache = KeyCache::new(64);
    let mut reasons = std::collections::HashSet::new();
    for round in ["first", "second"] {
        for (n, (key, signature, message)) in cases.iter().enumerate() {
            let expected = uncached(key, signature, message);
            reasons.insert(expected);
            assert_eq!(
                check_signature_with(&cache, key, signature, message),
                expected,
                "case {n}, {round} time"
            );
        }
    }
    // Every verdict of the rule was tried.
    assert_eq!(reasons.len(), 6, "{reasons:?}");
    // Only the honest keys were remembered.
    assert_eq!(cache.len(), honest.len());
    for key in &honest {
        let ready = cache.get(&key.public()).unwrap();
        assert_eq!(ready.as_ref(), key.public().0.as_slice());
    }
    for (key, _, _) in &cases {
        if check_key(key).is_err() {
            assert!(cache.get(key).is_none());
        }
    }
}

#[test]
fn a_small_cache_evicts_and_keeps_the_verdicts() {
    let honest = honest_keys(10);
    let cases = cases(&honest);
    for capacity in [0, 1, 2, 3] {
        let cache = KeyCache::new(capacity);
        // Several rounds, in an order that changes, so keys are evicted
        // and come back.
        for round in 0..4 {
            for (n, (key, signature, message)) in
                cases.iter().enumerate().filter(|(n, _)| n % 4 != round)
            {
                assert_eq!(
                    check_signature_with(&cache, key, signature, message),
                    uncached(key, signature, message),
                    "case {n}, round {round}, capacity {capacity}"
                );
                assert!(cache.len() <= capacity);
            }
        }
        // The index and the slots agree.
        let ring = cache.lock();
        assert_eq!(ring.index.len(), ring.slots.len());
        for (bytes, &at) in &ring.index {
            assert_eq!(ring.slots[at].key.as_ref(), bytes.as_slice());
        }
    }
}

#[test]
fn a_key_in_use_outlives_a_flood_of_new_ones() {
    let hot = dev::keypair("alice").unwrap();
    let tx = transfer(&hot, 0);
    let message = tx.body.to_bytes();
    let cache = KeyCache::new(4);
    for (i, new) in honest_keys(40).iter().enumerate() {
        assert_eq!(
            check_signature_with(&cache, &hot.public(), &tx.signature.0, &message),
            Ok(())
        );
        let other = transfer(new, 0);
        assert_eq!(
            check_signature_with(
                &cache,
                &new.public(),
                &other.signature.0,
                &other.body.to_bytes()
            ),
            Ok(())
        );
        assert!(cache.get(&hot.public()).is_some(), "evicted after {i}");
        assert_eq!(cache.len(), (i + 2).min(4));
    }
}

#[test]
fn batches_give_the_single_verdict_with_keys_seen_before() {
    let honest = honest_keys(3);
    let weak = PublicKey(small_order()[4]);
    let mut items: Vec<Item> = (0..120)
        .map(|i| Item::of(&transfer(&honest[i % 3], i as u64)))
        .collect();
    // A weak key whose signature passes the equation, late in the
    // block: only the key rule refuses it.
    let mut forged = [0u8; 64];
    forged[..32].copy_from_slice(&small_order()[0]);
    items[90] = Item {
        key: weak,
        signature: forged,
        message: b"theft".to_vec(),
    };
    // The first time the keys are seen, then again (in the cache now).
    for round in 0..2 {
        for parts in [1, 2, 3] {
            assert_eq!(
                verify_split(&items, parts),
                Err((90, SignatureError::WeakKey)),
                "round {round}, {parts} parts"
            );
        }
    }
    items[90] = Item::of(&transfer(&honest[0], 90));
    assert_eq!(verify_split(&items, 2), Ok(()));
}

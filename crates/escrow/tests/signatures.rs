//! The signature rule against an attacker's signatures: every crafted vector
//! gets one verdict and one reason on every path (single, batch at every
//! position of a block, every split over threads, mempool admission, block
//! application), and the two reproductions of the bugs that made the rule.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::LazyLock;

use chain_core::{BlockContext, BlockHash, StateMachine};
use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use escrow::signature::{self, Item, SignatureError};
use escrow::{
    Amount, Genesis, Keypair, Ledger, LedgerError, Payload, PendingState, PublicKey, SignedTx, Tx,
    TxBody, VerifyMode, check_admission, dev,
};
use proptest::prelude::*;
use sha2::{Digest, Sha512};

/// The eight points of small order, canonically encoded.
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

/// The group order L, little-endian.
const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
];

fn bytes32(hex: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex, &mut out).unwrap();
    out
}

fn small_order() -> Vec<[u8; 32]> {
    SMALL_ORDER.iter().map(|h| bytes32(h)).collect()
}

fn network() -> BlockHash {
    BlockHash::from_bytes([3; 32])
}

fn body(sender: [u8; 32], nonce: u64) -> TxBody {
    TxBody {
        sender: PublicKey(sender),
        nonce,
        network: network(),
        payload: Payload::Transfer {
            to: dev::address("bob").unwrap(),
            amount: Amount::new(1),
        },
    }
}

fn with_signature(body: TxBody, r: [u8; 32], s: [u8; 32]) -> SignedTx {
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&r);
    sig[32..].copy_from_slice(&s);
    SignedTx {
        body,
        signature: escrow::Signature(sig),
    }
}

/// `k = SHA-512(R || A || M) mod L`, over the bytes as given.
fn challenge(r: &[u8; 32], a: &[u8; 32], message: &[u8]) -> Scalar {
    let mut h = Sha512::new();
    h.update(r);
    h.update(a);
    h.update(message);
    let wide: [u8; 64] = h.finalize().into();
    Scalar::from_bytes_mod_order_wide(&wide)
}

/// A signer who knows the discrete log `a` of an honest (prime-order,
/// canonical) key and can put any `R` in a signature.
struct Signer {
    a: Scalar,
    key: [u8; 32],
}

impl Signer {
    fn new(seed: u8) -> Signer {
        let a = Scalar::from_bytes_mod_order([seed; 32]);
        let key = (ED25519_BASEPOINT_POINT * a).compress().to_bytes();
        Signer { a, key }
    }

    /// A signature whose `R` is `[r]B + extra`, encoded as `r_bytes` if
    /// given: `S = r + k a`.
    fn sign(
        &self,
        nonce: u64,
        r: Scalar,
        extra: EdwardsPoint,
        r_bytes: Option<[u8; 32]>,
    ) -> SignedTx {
        let body = body(self.key, nonce);
        let r_point = ED25519_BASEPOINT_POINT * r + extra;
        let r_enc = r_bytes.unwrap_or_else(|| r_point.compress().to_bytes());
        let k = challenge(&r_enc, &self.key, &body.to_bytes());
        let s = r + k * self.a;
        with_signature(body, r_enc, s.to_bytes())
    }
}

fn decode(bytes: &[u8; 32]) -> Option<EdwardsPoint> {
    CompressedEdwardsY(*bytes).decompress()
}

/// Every 32-byte string that decodes to a point but is not its canonical
/// encoding: `y + p` for the few `y < 19` on the curve, and the sign bit
/// set on `x = 0`.
fn non_canonical_encodings() -> Vec<[u8; 32]> {
    let mut out = Vec::new();
    // p = 2^255 - 19; y + p for y in 0..19 is 2^255 - 19 + y, which fits in
    // 255 bits, so the sign bit is free.
    for y in 0u8..19 {
        for sign in [0u8, 0x80] {
            let mut b = [0xffu8; 32];
            b[0] = 0xed + y;
            b[31] = 0x7f | sign;
            if decode(&b).is_some() {
                out.push(b);
            }
        }
    }
    for canonical_x_zero in [
        "0100000000000000000000000000000000000000000000000000000000000000",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ] {
        let mut b = bytes32(canonical_x_zero);
        b[31] |= 0x80;
        out.push(b);
    }
    out
}

/// A crafted transaction and the verdict the rule gives it.
struct Vector {
    name: String,
    tx: SignedTx,
    expected: Result<(), SignatureError>,
}

fn vector(name: impl Into<String>, tx: SignedTx, expected: Result<(), SignatureError>) -> Vector {
    Vector {
        name: name.into(),
        tx,
        expected,
    }
}

/// The adversarial vectors, each with the verdict the rule's definition
/// gives it (not the one the code happens to give).
fn vectors() -> Vec<Vector> {
    let mut out = Vec::new();
    let torsion = small_order();
    let signer = Signer::new(9);
    let honest = signer.sign(0, Scalar::from(12345u64), EdwardsPoint::default(), None);
    out.push(vector("honest", honest.clone(), Ok(())));

    // Small-order A, small-order R, S = 0: the cofactored equation holds
    // for every message, so only the weak-key rule refuses them.
    for (i, a) in torsion.iter().enumerate() {
        for (j, r) in torsion.iter().enumerate() {
            out.push(vector(
                format!("small-order A{i} and R{j}, S = 0"),
                with_signature(body(*a, 0), *r, [0; 32]),
                Err(SignatureError::WeakKey),
            ));
        }
    }
    // Small-order R with an honest key: S = k a. ZIP 215 accepts it (only
    // the key's owner can make it).
    for (j, r) in torsion.iter().enumerate() {
        let p = decode(r).unwrap();
        out.push(vector(
            format!("small-order R{j}, honest A"),
            signer.sign(0, Scalar::ZERO, p, Some(*r)),
            Ok(()),
        ));
    }
    // Mixed-order R: a valid R plus each torsion point.
    for (j, r) in torsion.iter().enumerate().skip(1) {
        let p = decode(r).unwrap();
        out.push(vector(
            format!("mixed-order R (R + T{j})"),
            signer.sign(0, Scalar::from(777u64 + j as u64), p, None),
            Ok(()),
        ));
        // The same R with S that ignores the torsion's challenge: invalid.
        let mut bad = signer.sign(0, Scalar::from(777u64 + j as u64), p, None);
        bad.signature.0[32] ^= 1;
        out.push(vector(
            format!("mixed-order R (R + T{j}), S off by one bit"),
            bad,
            Err(SignatureError::Invalid),
        ));
    }
    // Non-canonical encodings of R: ZIP 215 decodes them and hashes the
    // bytes as given; they are all small order, so S = k a verifies.
    for (n, enc) in non_canonical_encodings().into_iter().enumerate() {
        let p = decode(&enc).unwrap();
        let expected = if p.is_small_order() {
            Ok(())
        } else {
            Err(SignatureError::Invalid)
        };
        out.push(vector(
            format!("non-canonical R #{n}"),
            signer.sign(0, Scalar::ZERO, p, Some(enc)),
            expected,
        ));
        // The same bytes as A: one key has one encoding.
        out.push(vector(
            format!("non-canonical A #{n}"),
            with_signature(body(enc, 0), torsion[0], [0; 32]),
            Err(SignatureError::NonCanonicalKey),
        ));
    }
    // A that is no point at all.
    let mut not_a_point = None;
    for y in 2u8..=255 {
        let mut b = [0u8; 32];
        b[0] = y;
        if decode(&b).is_none() {
            not_a_point = Some(b);
            break;
        }
    }
    let not_a_point = not_a_point.unwrap();
    out.push(vector(
        "A not on the curve",
        with_signature(
            body(not_a_point, 0),
            honest.signature.0[..32].try_into().unwrap(),
            [0; 32],
        ),
        Err(SignatureError::InvalidKey),
    ));
    // S >= L: S + L (the same scalar, another encoding), L itself, and
    // all ones.
    let r: [u8; 32] = honest.signature.0[..32].try_into().unwrap();
    let s: [u8; 32] = honest.signature.0[32..].try_into().unwrap();
    let mut s_plus_l = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(s[i]) + u16::from(L[i]) + carry;
        s_plus_l[i] = sum as u8;
        carry = sum >> 8;
    }
    if carry == 0 {
        out.push(vector(
            "S + L",
            with_signature(honest.body.clone(), r, s_plus_l),
            Err(SignatureError::NonCanonicalS),
        ));
    }
    out.push(vector(
        "S = L",
        with_signature(honest.body.clone(), r, L),
        Err(SignatureError::NonCanonicalS),
    ));
    out.push(vector(
        "S all ones",
        with_signature(honest.body.clone(), r, [0xff; 32]),
        Err(SignatureError::NonCanonicalS),
    ));
    // A weak key with S >= L: the key rule comes first.
    out.push(vector(
        "small-order A and S = L",
        with_signature(body(torsion[0], 0), torsion[0], L),
        Err(SignatureError::WeakKey),
    ));
    // Tampering: another body under the honest signature.
    let mut other = honest.clone();
    other.body.nonce = 1;
    out.push(vector(
        "signature over another body",
        other,
        Err(SignatureError::Invalid),
    ));
    out
}

static VECTORS: LazyLock<Vec<Vector>> = LazyLock::new(vectors);

/// Valid transactions from a few honest senders, as filler around a vector.
static FILLER: LazyLock<Vec<SignedTx>> = LazyLock::new(|| {
    let keys: Vec<Keypair> = (1..=4u8).map(|i| Keypair::from_seed([i; 32])).collect();
    (0..2_000)
        .map(|i| {
            SignedTx::sign(
                &keys[i % keys.len()],
                (i / keys.len()) as u64,
                network(),
                Payload::Transfer {
                    to: dev::address("bob").unwrap(),
                    amount: Amount::new(1),
                },
            )
        })
        .collect()
});

#[test]
fn the_small_order_points_are_all_eight() {
    let points = small_order();
    let mut seen = std::collections::HashSet::new();
    for b in &points {
        let p = decode(b).unwrap();
        assert!(p.is_small_order());
        assert_eq!(p.compress().to_bytes(), *b, "canonical");
        assert!(seen.insert(*b));
    }
    assert_eq!(seen.len(), 8);
}

#[test]
fn every_vector_gets_the_verdict_the_rule_defines_on_the_single_path() {
    for v in VECTORS.iter() {
        assert_eq!(v.tx.check_signature(), v.expected, "{}", v.name);
    }
}

#[test]
fn batch_verdicts_equal_single_verdicts_at_every_position_and_split() {
    const BLOCK: usize = 12;
    for v in VECTORS.iter() {
        for position in 0..BLOCK {
            let mut items: Vec<Item> = FILLER[..BLOCK - 1].iter().map(Item::of).collect();
            items.insert(position, Item::of(&v.tx));
            let expected = v.expected.map_err(|e| (position, e));
            for parts in [1, 2, 3, 7, 16] {
                assert_eq!(
                    signature::verify_split(&items, parts),
                    expected,
                    "{} at {position}, {parts} parts",
                    v.name
                );
            }
        }
    }
}

#[test]
fn admission_and_block_application_give_the_same_reason() {
    // A ledger on the test network in which every vector's sender has coins,
    // so that only the signature can refuse a vector.
    let mut genesis = Genesis::dev();
    for v in VECTORS.iter() {
        genesis.allocations.push(escrow::genesis::Allocation {
            to: v.tx.sender(),
            amount: Amount::new(10),
        });
    }
    let chain = genesis.chain().unwrap();
    let ledger = chain.state().clone();
    for v in VECTORS.iter() {
        // The vectors name a test network, so the ones whose signature
        // passes would be refused for that; the signature is checked first,
        // so the refused ones must give their signature reason.
        let Err(reason) = v.expected else {
            continue;
        };
        let expected = LedgerError::BadSignature {
            tx: v.tx.id(),
            reason,
        };
        assert_eq!(
            check_admission(&ledger, &[], &v.tx, 1),
            Err(expected.clone().into()),
            "{}",
            v.name
        );
        let mut pending = PendingState::new(&ledger, 1);
        assert_eq!(
            pending.admit(&v.tx),
            Err(expected.clone().into()),
            "{}",
            v.name
        );
        let block = vec![
            Tx::Coinbase {
                to: dev::address("ferdie").unwrap(),
                height: 1,
            },
            Tx::Signed(v.tx.clone()),
        ];
        let ctx = BlockContext {
            hash: BlockHash::from_bytes([1; 32]),
            height: 1,
            timestamp_ms: genesis.timestamp_ms + 1,
        };
        for mode in [
            VerifyMode::Single,
            VerifyMode::Batch { threads: 1 },
            VerifyMode::Batch { threads: 16 },
        ] {
            let mut l = ledger.clone();
            l.set_verify_mode(mode);
            assert_eq!(
                l.apply_block(&ctx, &block),
                Err(expected.clone()),
                "{} {mode:?}",
                v.name
            );
            assert_eq!(
                l,
                {
                    let mut c = ledger.clone();
                    c.set_verify_mode(mode);
                    c
                },
                "unchanged"
            );
        }
    }
}

#[derive(serde::Deserialize)]
struct Case {
    case: usize,
    message: String,
    pub_key: String,
    signature: String,
}

/// The twelve cases of "Taming the many EdDSAs" (Chalkias, Garillot and
/// Nikolaenko, 2020), `tests/data/speccheck_cases.json`, and the verdict
/// the rule gives each: the key rules refuse small-order (0, 1) and
/// non-canonical (10, 11) keys, S >= L is refused (6, 7), and the rest is
/// ZIP 215's cofactored equation over R's bytes as given (2 to 5 and 9
/// verify; 8 hashed a reduced R and does not).
#[test]
fn the_speccheck_cases_get_one_verdict_on_every_path() {
    use SignatureError::*;
    let expected = [
        Err(WeakKey),
        Err(WeakKey),
        Ok(()),
        Ok(()),
        Ok(()),
        Ok(()),
        Err(NonCanonicalS),
        Err(NonCanonicalS),
        Err(Invalid),
        Ok(()),
        Err(NonCanonicalKey),
        Err(NonCanonicalKey),
    ];
    let text = include_str!("data/speccheck_cases.json");
    let cases: Vec<Case> = serde_json::from_str(text).unwrap();
    assert_eq!(cases.len(), 12);
    let filler: Vec<Item> = FILLER[..15].iter().map(Item::of).collect();
    for (c, want) in cases.iter().zip(expected) {
        let mut signature = [0u8; 64];
        hex::decode_to_slice(&c.signature, &mut signature).unwrap();
        let item = Item {
            key: PublicKey(bytes32(&c.pub_key)),
            signature,
            message: hex::decode(&c.message).unwrap(),
        };
        assert_eq!(signature::Signed::check(&item), want, "case {}", c.case);
        for position in 0..=filler.len() {
            let mut items = filler.clone();
            items.insert(position, item.clone());
            for parts in [1, 2, 3, 7, 16] {
                assert_eq!(
                    signature::verify_split(&items, parts),
                    want.map_err(|e| (position, e)),
                    "case {} at {position}, {parts} parts",
                    c.case
                );
            }
        }
    }
}

/// The first reproduction: a 600-transfer block with one mixed-order
/// signature was judged differently by 1, 2 and 16 verifying threads.
#[test]
fn a_600_transfer_block_with_a_mixed_order_signature_has_one_verdict() {
    let signer = Signer::new(21);
    let torsion = small_order();
    for (j, t) in torsion.iter().enumerate().skip(1) {
        let t = decode(t).unwrap();
        for (valid, name) in [(true, "valid"), (false, "invalid")] {
            let mut crafted = signer.sign(0, Scalar::from(4242u64 + j as u64), t, None);
            if !valid {
                crafted.signature.0[40] ^= 0x10;
            }
            for position in [0, 299, 599] {
                let mut txs: Vec<SignedTx> = FILLER[..599].to_vec();
                txs.insert(position, crafted.clone());
                let refs: Vec<&SignedTx> = txs.iter().collect();
                let verdicts: Vec<_> = [1, 2, 16]
                    .iter()
                    .map(|&threads| signature::verify_block(&refs, threads))
                    .collect();
                let single = refs
                    .iter()
                    .enumerate()
                    .try_for_each(|(i, tx)| tx.check_signature().map_err(|e| (i, e)));
                for v in &verdicts {
                    assert_eq!(*v, single, "T{j} {name} at {position}");
                }
                assert_eq!(single.is_ok(), valid, "T{j} {name} at {position}");
            }
        }
    }
}

/// The second reproduction: coins at the identity key's address were taken
/// with the signature (R = identity, S = 0) inside a block.
#[test]
fn a_block_spending_from_the_identity_key_is_refused_and_changes_nothing() {
    let identity = bytes32(SMALL_ORDER[0]);
    let victim = PublicKey(identity).address();
    let mut genesis = Genesis::dev();
    genesis.allocations.push(escrow::genesis::Allocation {
        to: victim,
        amount: Amount::new(5_000),
    });
    let mut chain = genesis.chain().unwrap();
    let before = chain.state().clone();
    let theft = SignedTx {
        body: TxBody {
            sender: PublicKey(identity),
            nonce: 0,
            network: before.network(),
            payload: Payload::Transfer {
                to: dev::address("eve").unwrap(),
                amount: Amount::new(5_000),
            },
        },
        signature: escrow::Signature([0; 64]),
    };
    {
        let mut sig = [0u8; 64];
        sig[0] = 1; // R = identity, S = 0
        let mut theft = theft.clone();
        theft.signature = escrow::Signature(sig);
        assert_eq!(theft.check_signature(), Err(SignatureError::WeakKey));
        // Alone and among valid transactions, on every thread count.
        let alice = dev::keypair("alice").unwrap();
        let honest = SignedTx::sign(
            &alice,
            0,
            before.network(),
            Payload::Transfer {
                to: dev::address("bob").unwrap(),
                amount: Amount::new(1),
            },
        );
        for txs in [vec![theft.clone()], vec![honest.clone(), theft.clone()]] {
            let mut block_txs = vec![Tx::Coinbase {
                to: dev::address("ferdie").unwrap(),
                height: 1,
            }];
            block_txs.extend(txs.into_iter().map(Tx::Signed));
            let now = genesis.timestamp_ms + 1_000;
            let block = common::mine_on(&chain, block_txs, now);
            let err = chain.insert(block, now).unwrap_err();
            assert!(
                err.to_string().contains("small order"),
                "refused for the weak key: {err}"
            );
            assert_eq!(chain.state(), &before, "nothing moved");
            assert_eq!(chain.state().balance(&victim), Amount::new(5_000));
        }
    }
}

fn crafted_strategy() -> impl Strategy<Value = usize> {
    0..VECTORS.len()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    /// Random blocks of up to 2,000 transactions with crafted signatures at
    /// random positions: the verdict never depends on the thread count.
    #[test]
    fn the_verdict_never_depends_on_the_thread_count(
        len in 0usize..2_000,
        crafted in proptest::collection::vec((any::<prop::sample::Index>(), crafted_strategy()), 0..4),
        threads in proptest::collection::vec(1usize..=16, 1..4),
    ) {
        let mut txs: Vec<SignedTx> = FILLER[..len].to_vec();
        for (at, v) in &crafted {
            let at = at.index(txs.len() + 1);
            txs.insert(at, VECTORS[*v].tx.clone());
        }
        let refs: Vec<&SignedTx> = txs.iter().collect();
        let single = refs
            .iter()
            .enumerate()
            .try_for_each(|(i, tx)| tx.check_signature().map_err(|e| (i, e)));
        for t in threads {
            prop_assert_eq!(signature::verify_block(&refs, t), single);
        }
    }
}

#[test]
fn ledgers_on_one_and_many_threads_agree_on_a_bad_block() {
    // Same test through the ledger, with a nonce error before the bad
    // signature: signatures are checked first, on every mode.
    let ledger = common::dev_ledger();
    let alice = dev::keypair("alice").unwrap();
    let mut txs = vec![Tx::Coinbase {
        to: dev::address("ferdie").unwrap(),
        height: 1,
    }];
    for nonce in 0..100u64 {
        txs.push(Tx::Signed(SignedTx::sign(
            &alice,
            nonce + 5,
            ledger.network(),
            Payload::Transfer {
                to: dev::address("bob").unwrap(),
                amount: Amount::new(1),
            },
        )));
    }
    if let Some(Tx::Signed(s)) = txs.get_mut(70) {
        s.signature.0[1] ^= 1;
    }
    let ctx = BlockContext {
        hash: BlockHash::from_bytes([1; 32]),
        height: 1,
        timestamp_ms: 1,
    };
    let verdicts: Vec<Result<_, LedgerError>> = [
        VerifyMode::Single,
        VerifyMode::Batch { threads: 1 },
        VerifyMode::Batch { threads: 2 },
        VerifyMode::Batch { threads: 7 },
    ]
    .into_iter()
    .map(|mode| {
        let mut l: Ledger = ledger.clone();
        l.set_verify_mode(mode);
        l.apply_block(&ctx, &txs).map(|_| ())
    })
    .collect();
    for v in &verdicts {
        assert!(
            matches!(
                v,
                Err(LedgerError::BadSignature {
                    reason: SignatureError::Invalid,
                    ..
                })
            ),
            "{v:?}"
        );
        assert_eq!(v, &verdicts[0]);
    }
}

/// A copy of a valid block with one signature spoiled must not share the
/// valid block's hash: the merkle leaves commit to signatures, so the copy
/// fails its merkle root and the valid block is still accepted after it.
#[test]
fn a_spoiled_copy_of_a_block_does_not_poison_the_valid_one() {
    let genesis = Genesis::dev();
    let mut chain = genesis.chain().unwrap();
    let alice = dev::keypair("alice").unwrap();
    let transfer = SignedTx::sign(
        &alice,
        0,
        chain.state().network(),
        Payload::Transfer {
            to: dev::address("bob").unwrap(),
            amount: Amount::new(5),
        },
    );
    let now = genesis.timestamp_ms + 1_000;
    let valid = common::mine_on(
        &chain,
        vec![
            Tx::Coinbase {
                to: dev::address("ferdie").unwrap(),
                height: 1,
            },
            Tx::Signed(transfer),
        ],
        now,
    );
    let mut spoiled = valid.clone();
    if let Some(Tx::Signed(s)) = spoiled.transactions.get_mut(1) {
        s.signature.0[3] ^= 1;
    }
    let err = chain.insert(spoiled, now).unwrap_err();
    assert!(err.to_string().contains("merkle"), "{err}");
    assert!(!chain.is_known_invalid(&valid.hash()));
    assert!(matches!(
        chain.insert(valid, now),
        Ok(chain_core::tree::Inserted::NewBest(_))
    ));
    assert_eq!(chain.height(), 1);
}

/// The state is applied while the pool checks signatures; a bad signature
/// found after the state applied must roll it back.
#[test]
fn a_bad_signature_rolls_back_a_state_applied_alongside_the_checks() {
    let ledger = common::dev_ledger();
    let alice = dev::keypair("alice").unwrap();
    let mut txs = vec![Tx::Coinbase {
        to: dev::address("ferdie").unwrap(),
        height: 1,
    }];
    for nonce in 0..200u64 {
        txs.push(Tx::Signed(SignedTx::sign(
            &alice,
            nonce,
            ledger.network(),
            Payload::Transfer {
                to: dev::address("bob").unwrap(),
                amount: Amount::new(1),
            },
        )));
    }
    let ctx = BlockContext {
        hash: BlockHash::from_bytes([1; 32]),
        height: 1,
        timestamp_ms: 1,
    };
    for threads in [2, 3, 16] {
        let mut good = ledger.clone();
        good.set_verify_mode(VerifyMode::Batch { threads });
        assert!(good.apply_block(&ctx, &txs).is_ok(), "{threads} threads");
        let mut spoiled = txs.clone();
        if let Some(Tx::Signed(s)) = spoiled.get_mut(150) {
            s.signature.0[7] ^= 2;
        }
        let mut l = ledger.clone();
        l.set_verify_mode(VerifyMode::Batch { threads });
        let before = l.clone();
        let err = l.apply_block(&ctx, &spoiled).unwrap_err();
        assert!(
            matches!(
                err,
                LedgerError::BadSignature {
                    reason: SignatureError::Invalid,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(
            l, before,
            "{threads} threads: the state applied alongside was rolled back"
        );
    }
}

//! Crafted Ed25519 signatures for the signature-rule tests: the small-order
//! points, every non-canonical encoding, a signer who can put any `R` in a
//! signature, the adversarial vectors with the verdict the rule defines for
//! each, and honest filler transactions to surround them in a block.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::LazyLock;

use chain_core::BlockHash;
use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use escrow::signature::SignatureError;
use escrow::{Amount, Keypair, Payload, PublicKey, SignedTx, TxBody, dev};
use sha2::{Digest, Sha512};

/// The eight points of small order, canonically encoded.
pub const SMALL_ORDER: [&str; 8] = [
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

pub fn bytes32(hex: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex, &mut out).unwrap();
    out
}

pub fn small_order() -> Vec<[u8; 32]> {
    SMALL_ORDER.iter().map(|h| bytes32(h)).collect()
}

fn network() -> BlockHash {
    BlockHash::from_bytes([3; 32])
}

fn body(sender: [u8; 32], nonce: u64) -> TxBody {
    TxBody {
        sender: PublicKey(sender),
        nonce,
        fee: escrow::Amount::ZERO,
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
pub struct Signer {
    a: Scalar,
    key: [u8; 32],
}

impl Signer {
    pub fn new(seed: u8) -> Signer {
        let a = Scalar::from_bytes_mod_order([seed; 32]);
        let key = (ED25519_BASEPOINT_POINT * a).compress().to_bytes();
        Signer { a, key }
    }

    /// A signature whose `R` is `[r]B + extra`, encoded as `r_bytes` if
    /// given: `S = r + k a`.
    pub fn sign(
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

pub fn decode(bytes: &[u8; 32]) -> Option<EdwardsPoint> {
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
pub struct Vector {
    pub name: String,
    pub tx: SignedTx,
    pub expected: Result<(), SignatureError>,
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

pub static VECTORS: LazyLock<Vec<Vector>> = LazyLock::new(vectors);

/// Valid transactions from a few honest senders, as filler around a vector.
pub static FILLER: LazyLock<Vec<SignedTx>> = LazyLock::new(|| {
    let keys: Vec<Keypair> = (1..=4u8).map(|i| Keypair::from_seed([i; 32])).collect();
    (0..2_000)
        .map(|i| {
            SignedTx::sign(
                &keys[i % keys.len()],
                (i / keys.len()) as u64,
                escrow::Amount::ZERO,
                network(),
                Payload::Transfer {
                    to: dev::address("bob").unwrap(),
                    amount: Amount::new(1),
                },
            )
        })
        .collect()
});

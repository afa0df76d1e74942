//! The interleaved SHA-NI kernel: several nonces hashed at once on one core.
//!
//! # Why it is faster than one stream
//!
//! `sha256rnds2` performs two SHA-256 rounds, but its result feeds the next
//! `sha256rnds2` of the same hash: in a single stream the unit waits for its
//! own latency (several cycles) before it can start again, and sits idle
//! most of the time. Hashes of different nonces are independent, so this
//! kernel runs `L` of them side by side, round group by round group; the CPU
//! issues the rounds of lane 1 while lane 0's are in flight, and the rate
//! approaches the instruction's throughput bound rather than its latency
//! bound. How many lanes pay off depends on the processor (see
//! [`super::Kernel::detect`]).
//!
//! # What is computed once
//!
//! Per job: the midstate (the header's first 64 bytes), the message words of
//! the second block except the two that hold the nonce (words 6 and 7), and
//! the first four rounds, which read only words 0 to 3 and are therefore the
//! same for every nonce.
//!
//! # Safety
//!
//! This is the crate's only `unsafe` code. Every function that uses the
//! `sha`/`sse4.1`/`ssse3` intrinsics is a `#[target_feature]` function, and
//! the only way in, [`scan`], is called only after
//! [`available`] confirmed at run time that the CPU has those features.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::job::Job;

/// SHA-256 round constants (FIPS 180-4, 4.2.2).
const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// The lane counts the kernel is compiled for.
pub(super) const LANES: [usize; 5] = [2, 3, 4, 6, 8];

/// Whether this CPU has the instructions the kernel needs.
pub(super) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("sha")
            && std::arch::is_x86_feature_detected!("sse4.1")
            && std::arch::is_x86_feature_detected!("ssse3")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The first nonce in `start..start + count` (no overflow: the caller
/// clamps) that meets the job's target, hashing `lanes` nonces at a time.
/// Falls back to the portable kernel when the CPU lacks SHA-NI or `lanes`
/// is not one of [`LANES`].
pub(super) fn scan(job: &Job, lanes: usize, start: u64, count: u64) -> Option<u64> {
    #[cfg(target_arch = "x86_64")]
    if available() {
        // SAFETY: `available()` has just confirmed that the CPU supports the
        // `sha`, `sse4.1` and `ssse3` features these functions are compiled
        // for (SSE2 is part of the x86_64 baseline).
        unsafe {
            return match lanes {
                2 => scan_lanes::<2>(job, start, count),
                3 => scan_lanes::<3>(job, start, count),
                4 => scan_lanes::<4>(job, start, count),
                6 => scan_lanes::<6>(job, start, count),
                8 => scan_lanes::<8>(job, start, count),
                _ => super::portable::scan(job, start, count),
            };
        }
    }
    let _ = lanes;
    super::portable::scan(job, start, count)
}

/// The per-job constants: the state after the first four rounds, the
/// message vectors, and the midstate for the final addition.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Prepared {
    /// Midstate words A, B, E, F in the SHA-NI register order; only A is
    /// needed at the end, to finish the first word of each hash.
    mid_abef: __m128i,
    /// State after rounds 0..4, which depend on message words 0..3 only.
    abef4: __m128i,
    cdgh4: __m128i,
    /// Message words 0..3 and 8..15; words 4..7 hold the nonce in 6 and 7.
    w0: __m128i,
    w2: __m128i,
    w3: __m128i,
    /// Words 4 and 5 (the nonce-free part of the second vector).
    w4: u32,
    w5: u32,
}

/// Adds the round constants `K[4r..4r + 4]` to `w`.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "sse2")]
fn add_k(w: __m128i, r: usize) -> __m128i {
    let k = _mm_set_epi32(
        K[4 * r + 3] as i32,
        K[4 * r + 2] as i32,
        K[4 * r + 1] as i32,
        K[4 * r] as i32,
    );
    _mm_add_epi32(w, k)
}

/// Four rounds on one lane.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "sha,sse2")]
fn rounds4(abef: &mut __m128i, cdgh: &mut __m128i, wk: __m128i) {
    *cdgh = _mm_sha256rnds2_epu32(*cdgh, *abef, wk);
    let hi = _mm_shuffle_epi32(wk, 0x0E);
    *abef = _mm_sha256rnds2_epu32(*abef, *cdgh, hi);
}

/// The next four message words from the previous sixteen.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "sha,sse2,ssse3")]
fn schedule(w0: __m128i, w1: __m128i, w2: __m128i, w3: __m128i) -> __m128i {
    let t = _mm_add_epi32(_mm_sha256msg1_epu32(w0, w1), _mm_alignr_epi8(w3, w2, 4));
    _mm_sha256msg2_epu32(t, w3)
}

/// Loads four big-endian message words from 16 bytes.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "sse2,ssse3")]
fn load_words(bytes: &[u8; 64], at: usize) -> __m128i {
    let mut chunk = [0u8; 16];
    chunk.copy_from_slice(&bytes[at..at + 16]);
    // SAFETY: `chunk` is 16 readable bytes; `loadu` has no alignment needs.
    let raw = unsafe { _mm_loadu_si128(chunk.as_ptr().cast()) };
    let mask = _mm_set_epi64x(0x0c0d_0e0f_0809_0a0b, 0x0405_0607_0001_0203);
    _mm_shuffle_epi8(raw, mask)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn prepare(job: &Job) -> Prepared {
    // Midstate [a..h] into (ABEF, CDGH), as the SHA-NI instructions want.
    let mut lo = [0u8; 16];
    let mut hi = [0u8; 16];
    for (i, word) in job.midstate.iter().enumerate() {
        let bytes = word.to_le_bytes();
        if i < 4 {
            lo[4 * i..4 * i + 4].copy_from_slice(&bytes);
        } else {
            hi[4 * (i - 4)..4 * (i - 4) + 4].copy_from_slice(&bytes);
        }
    }
    // SAFETY: both arrays are 16 readable bytes; `loadu` needs no alignment.
    let (dcba, hgfe) = unsafe {
        (
            _mm_loadu_si128(lo.as_ptr().cast()),
            _mm_loadu_si128(hi.as_ptr().cast()),
        )
    };
    let cdab = _mm_shuffle_epi32(dcba, 0xB1);
    let efgh = _mm_shuffle_epi32(hgfe, 0x1B);
    let mid_abef = _mm_alignr_epi8(cdab, efgh, 8);
    let mid_cdgh = _mm_blend_epi16(efgh, cdab, 0xF0);

    let w0 = load_words(&job.tail, 0);
    let w2 = load_words(&job.tail, 32);
    let w3 = load_words(&job.tail, 48);
    let word = |at: usize| {
        u32::from_be_bytes([
            job.tail[at],
            job.tail[at + 1],
            job.tail[at + 2],
            job.tail[at + 3],
        ])
    };
    let (mut abef4, mut cdgh4) = (mid_abef, mid_cdgh);
    rounds4(&mut abef4, &mut cdgh4, add_k(w0, 0));
    Prepared {
        mid_abef,
        abef4,
        cdgh4,
        w0,
        w2,
        w3,
        w4: word(16),
        w5: word(20),
    }
}

/// Scans `count` nonces from `start`, `L` at a time; the tail that does not
/// fill a group goes through the portable kernel.
///
/// # Safety
///
/// The CPU must support `sha`, `sse2`, `ssse3` and `sse4.1`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
unsafe fn scan_lanes<const L: usize>(job: &Job, start: u64, count: u64) -> Option<u64> {
    let p = prepare(job);
    let target0 = job.target[0];
    let groups = count / L as u64;
    for g in 0..groups {
        let base = start + g * L as u64;
        let firsts = hash_group::<L>(&p, base);
        for (lane, first) in firsts.iter().enumerate() {
            // The first state word decides almost every nonce; only a
            // candidate is hashed again in full to compare all words.
            if *first <= target0 {
                let nonce = base + lane as u64;
                if super::portable::scan(job, nonce, 1).is_some() {
                    return Some(nonce);
                }
            }
        }
    }
    let done = groups * L as u64;
    if done < count {
        return super::portable::scan(job, start + done, count - done);
    }
    None
}

/// Hashes nonces `base..base + L` and returns each hash's first state word
/// (the most significant 32 bits of the hash read big-endian).
// Indexing by lane keeps the per-lane arrays visibly in lockstep, round by
// round; that is the point of the function.
#[allow(clippy::needless_range_loop)]
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn hash_group<const L: usize>(p: &Prepared, base: u64) -> [u32; L] {
    let mut abef = [p.abef4; L];
    let mut cdgh = [p.cdgh4; L];
    let mut w0 = [p.w0; L];
    let mut w1 = [p.w0; L];
    let mut w2 = [p.w2; L];
    let mut w3 = [p.w3; L];
    for lane in 0..L {
        let nonce = base + lane as u64;
        // The nonce is little-endian in the header, so its low half read as
        // a big-endian word is the byte-swapped low half.
        let w6 = (nonce as u32).swap_bytes();
        let w7 = ((nonce >> 32) as u32).swap_bytes();
        w1[lane] = _mm_set_epi32(w7 as i32, w6 as i32, p.w5 as i32, p.w4 as i32);
    }
    // Rounds 4..16 on the loaded words (0..4 are precomputed).
    for lane in 0..L {
        rounds4(&mut abef[lane], &mut cdgh[lane], add_k(w1[lane], 1));
    }
    for lane in 0..L {
        rounds4(&mut abef[lane], &mut cdgh[lane], add_k(w2[lane], 2));
    }
    for lane in 0..L {
        rounds4(&mut abef[lane], &mut cdgh[lane], add_k(w3[lane], 3));
    }
    // Rounds 16..64 with the message schedule, four words at a time.
    for r in (4..16).step_by(4) {
        for lane in 0..L {
            w0[lane] = schedule(w0[lane], w1[lane], w2[lane], w3[lane]);
            rounds4(&mut abef[lane], &mut cdgh[lane], add_k(w0[lane], r));
        }
        for lane in 0..L {
            w1[lane] = schedule(w1[lane], w2[lane], w3[lane], w0[lane]);
            rounds4(&mut abef[lane], &mut cdgh[lane], add_k(w1[lane], r + 1));
        }
        for lane in 0..L {
            w2[lane] = schedule(w2[lane], w3[lane], w0[lane], w1[lane]);
            rounds4(&mut abef[lane], &mut cdgh[lane], add_k(w2[lane], r + 2));
        }
        for lane in 0..L {
            w3[lane] = schedule(w3[lane], w0[lane], w1[lane], w2[lane]);
            rounds4(&mut abef[lane], &mut cdgh[lane], add_k(w3[lane], r + 3));
        }
    }
    let mut firsts = [0u32; L];
    for lane in 0..L {
        // ABEF holds A in its highest 32-bit lane; add the midstate's A.
        let sum = _mm_add_epi32(abef[lane], p.mid_abef);
        firsts[lane] = _mm_extract_epi32(sum, 3) as u32;
    }
    firsts
}

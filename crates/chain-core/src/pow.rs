//! Proof of work: the [`Target`] a block hash must not exceed, its compact
//! 4-byte form [`CompactTarget`] written in headers, and the [`Work`] a target
//! represents.
//!
//! A block hash is read as a 256-bit big-endian number (the first byte of the
//! hash is the most significant), so "the hex digest starts with `0000`", the
//! notebook's rule, is "the hash is below 2^240": 16 leading zero bits.
//!
//! # The compact form
//!
//! A header stores its target in four bytes, as Bitcoin's `nBits` does but
//! without a sign bit: the top byte is an exponent `e`, the low three bytes a
//! mantissa `m`, and the target is `m * 256^(e - 3)` (for `e < 3`, `m` shifted
//! right by `8 * (3 - e)` bits). The conversion from a full target keeps only
//! its three most significant bytes, so it rounds *down*: a compact target is
//! never easier than the target it came from. A compact value with a zero
//! mantissa (or one shifted away to zero), or one whose value does not fit
//! in 256 bits, is no target at all and is refused; an exponent above 32
//! with a mantissa small enough to fit still decodes (the difficulty rule
//! then refuses any value but the one it requires).
//!
//! # Work
//!
//! The work of a target is the expected number of hashes needed to find a hash
//! at or below it: `2^256 / (target + 1)`. Fork choice sums work, never block
//! counts, so a chain of fewer but harder blocks can win.

use std::fmt;

use ruint::aliases::U256;
use serde::{Deserialize, Serialize};

use crate::hash::BlockHash;

/// A 256-bit wide integer for the multiplication in retargeting.
type U512 = ruint::Uint<512, 8>;

/// Why four bytes are not a usable compact target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CompactTargetError {
    /// The mantissa is zero: no hash could ever meet the target.
    #[error("compact target {0:#010x} has a zero mantissa")]
    Zero(u32),
    /// The exponent places the mantissa beyond 256 bits.
    #[error("compact target {0:#010x} overflows 256 bits")]
    Overflow(u32),
}

/// A target in the 4-byte form that headers carry (see the module docs).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CompactTarget(u32);

impl CompactTarget {
    /// Wraps the raw four bytes (as a little-endian `u32` in the header).
    pub const fn from_u32(raw: u32) -> Self {
        Self(raw)
    }

    /// The raw value.
    pub const fn to_u32(self) -> u32 {
        self.0
    }

    /// The full target this compact form stands for.
    ///
    /// # Errors
    ///
    /// [`CompactTargetError`] when the mantissa is zero or the value does not
    /// fit in 256 bits.
    pub fn to_target(self) -> Result<Target, CompactTargetError> {
        let exponent = (self.0 >> 24) as usize;
        let mantissa = self.0 & 0x00ff_ffff;
        if mantissa == 0 {
            return Err(CompactTargetError::Zero(self.0));
        }
        let value = if exponent <= 3 {
            U256::from(mantissa >> (8 * (3 - exponent)))
        } else {
            let shift = 8 * (exponent - 3);
            // The mantissa's highest set bit must stay inside 256 bits.
            let mantissa_bits = 32 - mantissa.leading_zeros() as usize;
            if mantissa_bits + shift > 256 {
                return Err(CompactTargetError::Overflow(self.0));
            }
            U256::from(mantissa) << shift
        };
        if value.is_zero() {
            return Err(CompactTargetError::Zero(self.0));
        }
        Ok(Target(value))
    }
}

impl fmt::Debug for CompactTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CompactTarget({:#010x})", self.0)
    }
}

impl fmt::Display for CompactTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#010x}", self.0)
    }
}

/// The largest hash value (read big-endian) that meets a proof of work.
///
/// Always non-zero: a zero target could never be met.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Target(U256);

impl Target {
    /// The easiest possible target: every hash meets it.
    pub const MAX: Self = Self(U256::MAX);

    /// The hardest possible target, 1: in practice no hash meets it, so
    /// benchmarks and calibration use it to hash every nonce of a range.
    pub const MIN: Self = Self(U256::from_limbs([1, 0, 0, 0]));

    /// The target met by hashes with at least `bits` leading zero bits.
    ///
    /// `from_leading_zero_bits(16)` is the notebook's "hex digest starts with
    /// `0000`". `bits` is capped at 255 so the target stays non-zero.
    pub fn from_leading_zero_bits(bits: u32) -> Self {
        Self(U256::MAX >> bits.min(255) as usize)
    }

    /// The target from its 32 big-endian bytes, or `None` if they are zero.
    pub fn from_be_bytes(bytes: [u8; 32]) -> Option<Self> {
        let value = U256::from_be_bytes(bytes);
        (!value.is_zero()).then_some(Self(value))
    }

    /// The 32 big-endian bytes.
    pub fn to_be_bytes(self) -> [u8; 32] {
        self.0.to_be_bytes()
    }

    /// The target as eight big-endian 32-bit words, the form the miner
    /// compares SHA-256 state words against.
    pub fn to_be_words(self) -> [u32; 8] {
        let bytes = self.to_be_bytes();
        let mut words = [0u32; 8];
        for (word, chunk) in words.iter_mut().zip(bytes.chunks_exact(4)) {
            *word = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        words
    }

    /// The compact form, rounding down (never easier than `self`).
    pub fn to_compact(self) -> CompactTarget {
        let bytes = self.0.bit_len().div_ceil(8);
        let mantissa: u32 = if bytes <= 3 {
            let v = u32::try_from(self.0).unwrap_or(0);
            v << (8 * (3 - bytes))
        } else {
            let shifted = self.0 >> (8 * (bytes - 3));
            u32::try_from(shifted).unwrap_or(0)
        };
        // `bytes` is at most 32, so it fits the exponent byte.
        CompactTarget(((bytes as u32) << 24) | (mantissa & 0x00ff_ffff))
    }

    /// Whether `hash`, read as a big-endian number, is at or below the target.
    pub fn is_met_by(self, hash: &BlockHash) -> bool {
        U256::from_be_bytes(hash.to_bytes()) <= self.0
    }

    /// The expected number of hashes to find one at or below this target.
    pub fn work(self) -> Work {
        // 2^256 / (t + 1) computed without 2^256: (!t / (t + 1)) + 1.
        // t is non-zero, so t + 1 >= 2 and no step overflows unless t is
        // U256::MAX, where t + 1 wraps; that target has work 1.
        match self.0.checked_add(U256::from(1u8)) {
            Some(divisor) => Work((!self.0) / divisor + U256::from(1u8)),
            None => Work(U256::from(1u8)),
        }
    }

    /// Scales the target by `numerator / denominator`, capped at `limit`.
    ///
    /// Used by retargeting; `denominator` of zero leaves the target as it is.
    pub fn scale(self, numerator: u64, denominator: u64, limit: Target) -> Target {
        if denominator == 0 {
            return self;
        }
        let wide = U512::from(self.0) * U512::from(numerator) / U512::from(denominator);
        let capped = if wide > U512::from(limit.0) {
            limit.0
        } else {
            // Below `limit`, which fits 256 bits.
            U256::saturating_from(wide)
        };
        if capped.is_zero() {
            Target(U256::from(1u8))
        } else {
            Target(capped)
        }
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Target({})", hex::encode(self.to_be_bytes()))
    }
}

/// Work: the expected number of hashes behind a block or a chain.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Work(U256);

impl Work {
    /// No work at all.
    pub const ZERO: Self = Self(U256::ZERO);

    /// The sum, saturating at 2^256 - 1 (unreachable with real hashing).
    pub fn saturating_add(self, other: Work) -> Work {
        Work(self.0.saturating_add(other.0))
    }

    /// Work from a plain number of hashes.
    pub fn from_u128(hashes: u128) -> Work {
        Work(U256::from(hashes))
    }

    /// The 32 big-endian bytes.
    pub fn to_be_bytes(self) -> [u8; 32] {
        self.0.to_be_bytes()
    }

    /// Work from its 32 big-endian bytes.
    pub fn from_be_bytes(bytes: [u8; 32]) -> Work {
        Work(U256::from_be_bytes(bytes))
    }

    /// The work as a float, for display and rates (lossy above 2^53).
    pub fn as_f64(self) -> f64 {
        f64::from(self.0)
    }
}

impl fmt::Debug for Work {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Work({})", self.0)
    }
}

impl fmt::Display for Work {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Work {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(&self.0)
        } else {
            self.to_be_bytes().serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Work {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
            s.parse::<U256>()
                .map(Work)
                .map_err(serde::de::Error::custom)
        } else {
            <[u8; 32]>::deserialize(deserializer).map(Work::from_be_bytes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_target_is_sixteen_zero_bits() {
        let t = Target::from_leading_zero_bits(16);
        let compact = t.to_compact();
        assert_eq!(compact.to_u32(), 0x1eff_ffff);
        let back = compact.to_target().unwrap();
        // Rounded down, never easier.
        assert!(back <= t);
        let mut easy = [0u8; 32];
        easy[2] = 0xff;
        assert!(back.is_met_by(&BlockHash::from_bytes(easy)));
        let mut hard = [0u8; 32];
        hard[1] = 0x01;
        assert!(!back.is_met_by(&BlockHash::from_bytes(hard)));
        // About 2^16 expected hashes.
        let w = back.work().as_f64();
        assert!((65_536.0..65_540.0).contains(&w), "work {w}");
    }

    #[test]
    fn compact_round_trips_canonical_values() {
        for raw in [
            0x1d00_ffffu32,
            0x2000_0001,
            0x0300_0001,
            0x0412_3456,
            0x1eff_ffff,
        ] {
            let c = CompactTarget::from_u32(raw);
            let t = c.to_target().unwrap();
            let again = t.to_compact();
            assert_eq!(again.to_target().unwrap(), t, "{raw:#x}");
        }
        assert_eq!(Target::MAX.to_compact().to_u32(), 0x20ff_ffff);
    }

    #[test]
    fn compact_rejects_zero_and_overflow() {
        assert_eq!(
            CompactTarget::from_u32(0x1d00_0000).to_target(),
            Err(CompactTargetError::Zero(0x1d00_0000))
        );
        assert_eq!(
            CompactTarget::from_u32(0x2101_0000).to_target(),
            Err(CompactTargetError::Overflow(0x2101_0000))
        );
        // Small exponents shift the mantissa out entirely.
        assert_eq!(
            CompactTarget::from_u32(0x0100_00ff).to_target(),
            Err(CompactTargetError::Zero(0x0100_00ff))
        );
        assert!(CompactTarget::from_u32(0xffff_ffff).to_target().is_err());
    }

    #[test]
    fn work_of_extremes() {
        assert_eq!(Target::MAX.work(), Work::from_u128(1));
        let one = Target::from_be_bytes({
            let mut b = [0u8; 32];
            b[31] = 1;
            b
        })
        .unwrap();
        // 2^256 / 2 = 2^255.
        assert_eq!(one.work().to_be_bytes()[0], 0x80);
        assert!(Target::from_be_bytes([0; 32]).is_none());
    }

    #[test]
    fn harder_target_means_more_work() {
        let easy = Target::from_leading_zero_bits(8);
        let hard = Target::from_leading_zero_bits(20);
        assert!(hard.work() > easy.work());
        assert_eq!(
            hard.work().saturating_add(easy.work()),
            easy.work().saturating_add(hard.work())
        );
    }

    #[test]
    fn scale_is_capped() {
        let t = Target::from_leading_zero_bits(16);
        let limit = Target::from_leading_zero_bits(8);
        assert_eq!(t.scale(1, 2, limit), Target::from_leading_zero_bits(17));
        assert_eq!(t.scale(1 << 20, 1, limit), limit);
        assert_eq!(t.scale(5, 0, limit), t);
    }

    #[test]
    fn work_serde() {
        let w = Target::from_leading_zero_bits(16).work();
        let json = serde_json::to_string(&w).unwrap();
        assert_eq!(json, "\"65536\"");
        assert_eq!(serde_json::from_str::<Work>(&json).unwrap(), w);
        let bin = postcard::to_stdvec(&w).unwrap();
        assert_eq!(postcard::from_bytes::<Work>(&bin).unwrap(), w);
    }
}

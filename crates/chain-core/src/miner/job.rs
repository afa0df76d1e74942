//! [`Job`]: what a kernel hashes (the midstate, the padded second block
//! and the target), and [`meets_target`], the comparison every kernel ends
//! with; shared by the miner (`mod.rs`) and its kernels (`portable.rs`,
//! `shani.rs`).

use crate::header::Header;
use crate::pow::{CompactTargetError, Target};

/// Offset of the nonce inside the second 64-byte SHA-256 block.
const NONCE_IN_TAIL: usize = Header::NONCE_OFFSET - 64;

/// Offset of the timestamp inside the second 64-byte SHA-256 block.
const TIMESTAMP_IN_TAIL: usize = Header::TIMESTAMP_OFFSET - 64;

/// The SHA-256 initial hash value (FIPS 180-4, 5.3.3).
const SHA256_IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// Everything a kernel needs to hash nonces of one header: computed once per
/// template.
#[derive(Clone, Debug)]
pub struct Job {
    /// The SHA-256 state after compressing the header's first 64 bytes.
    pub midstate: [u32; 8],
    /// The second 64-byte block: header bytes 64..96 then SHA-256 padding
    /// (0x80, zeros, the bit length 768 big-endian). The nonce goes at
    /// offset 24.
    pub tail: [u8; 64],
    /// The target as big-endian words, compared against the output state.
    pub target: [u32; 8],
}

impl Job {
    /// Prepares the job for `header` (its nonce field is ignored).
    ///
    /// # Errors
    ///
    /// The header's compact target is not a valid target.
    pub fn new(header: &Header) -> Result<Job, CompactTargetError> {
        let target = header.target.to_target()?;
        Ok(Self::with_target(header, target))
    }

    /// Prepares the job with an explicit target (benchmarks use an
    /// impossible one so every nonce is hashed).
    pub fn with_target(header: &Header, target: Target) -> Job {
        let bytes = header.to_bytes();
        let mut first = [0u8; 64];
        first.copy_from_slice(&bytes[..64]);
        let mut midstate = SHA256_IV;
        sha2::block_api::compress256(&mut midstate, &[first]);
        let mut tail = [0u8; 64];
        tail[..Header::SIZE - 64].copy_from_slice(&bytes[64..]);
        tail[Header::SIZE - 64] = 0x80;
        tail[56..].copy_from_slice(&((Header::SIZE as u64) * 8).to_be_bytes());
        Job {
            midstate,
            tail,
            target: target.to_be_words(),
        }
    }

    /// The second block with `nonce` written in.
    #[inline(always)]
    pub fn tail_with_nonce(&self, nonce: u64) -> [u8; 64] {
        let mut block = self.tail;
        block[NONCE_IN_TAIL..NONCE_IN_TAIL + 8].copy_from_slice(&nonce.to_le_bytes());
        block
    }

    /// Sets the timestamp inside the tail (used on nonce exhaustion).
    pub(super) fn set_timestamp(&mut self, timestamp_ms: u64) {
        self.tail[TIMESTAMP_IN_TAIL..TIMESTAMP_IN_TAIL + 8]
            .copy_from_slice(&timestamp_ms.to_le_bytes());
    }
}

/// Whether SHA-256 output state words, read as a big-endian 256-bit number,
/// are at or below the target words.
#[inline(always)]
pub fn meets_target(state: &[u32; 8], target: &[u32; 8]) -> bool {
    // Almost every hash fails on the first word.
    if state[0] != target[0] {
        return state[0] < target[0];
    }
    state <= target
}

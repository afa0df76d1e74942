//! The portable kernel: one nonce at a time through `sha2`'s compression
//! function from the midstate.
//!
//! `sha2` picks SHA-NI by itself where the CPU has it, so on such machines
//! this is the single-stream hardware rate; elsewhere it is `sha2`'s
//! software compression.

use super::job::{Job, meets_target};

/// The first nonce in `start..start + count` that meets the job's target.
/// The caller guarantees `start + count - 1` does not overflow.
pub(super) fn scan(job: &Job, start: u64, count: u64) -> Option<u64> {
    for i in 0..count {
        let nonce = start + i;
        let mut state = job.midstate;
        sha2::block_api::compress256(&mut state, &[job.tail_with_nonce(nonce)]);
        if meets_target(&state, &job.target) {
            return Some(nonce);
        }
    }
    None
}

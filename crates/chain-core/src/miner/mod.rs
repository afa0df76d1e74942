//! The miner: finds a nonce whose header hash meets the header's target.
//!
//! # How it is fast
//!
//! The header is 96 bytes, nonce last (see [`crate::header`]). SHA-256 eats
//! 64-byte blocks, so the first block of every header being mined is the
//! same: the miner compresses it once (the *midstate*, [`Job::midstate`]) and
//! then, per nonce, writes the nonce into the padded second block and runs a
//! single compression from the midstate. A naive miner hashes the whole
//! header, two compressions plus the hasher's bookkeeping, per nonce.
//!
//! # Threads and cancellation
//!
//! [`Miner::mine`] runs on scoped threads (on the calling thread alone for
//! one thread; no async runtime). The nonce space
//! is handed out in chunks of [`CHUNK`] nonces from one shared cursor; each
//! thread checks the stop flag between chunks, so a cancelled miner (a new
//! tip arrived) stops within a chunk's time, well under a millisecond.
//!
//! # Exhaustion
//!
//! When every nonce from the template's nonce to `u64::MAX` has been tried,
//! the cursor moves the timestamp one millisecond forward and starts again
//! at nonce 0. The timestamp sits in the second SHA-256 block too, so the
//! midstate stays valid. The block stays valid: a later timestamp still
//! exceeds the median of past blocks, and 2^64 hashes take far longer than
//! the two hours a timestamp may run ahead of a clock. Should the timestamp
//! itself run out, the miner reports [`MineOutcome::Exhausted`] rather than
//! wrap it.

mod job;
mod portable;
mod shani;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};

pub use self::job::{Job, meets_target};
use crate::header::Header;
use crate::pow::{CompactTargetError, Target};

/// Nonces one thread takes from the shared cursor at a time. At about
/// 50 million hashes a second a chunk lasts about 0.6 ms, which bounds how
/// long a cancelled miner keeps running.
pub const CHUNK: u64 = 1 << 15;

/// Which code path hashes the nonces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// One nonce at a time through `sha2`'s compression function (which uses
    /// SHA-NI by itself where the CPU has it). Works everywhere.
    Portable,
    /// Several nonces interleaved through the SHA-NI instructions (see
    /// `miner/shani.rs`); only built by [`Kernel::interleaved`], which
    /// checks that the CPU has them.
    Interleaved(Lanes),
}

/// A lane count the interleaved kernel is compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lanes(usize);

impl Lanes {
    /// The number of nonces hashed side by side.
    pub fn get(self) -> usize {
        self.0
    }
}

/// How many nonces one calibration run hashes per candidate kernel.
const CALIBRATION_NONCES: u64 = 1 << 16;

impl Kernel {
    /// The interleaved kernel with `lanes` lanes, if this CPU has SHA-NI and
    /// the kernel is compiled for that many (2, 3, 4, 6 or 8).
    pub fn interleaved(lanes: usize) -> Option<Kernel> {
        (shani::available() && shani::LANES.contains(&lanes))
            .then_some(Kernel::Interleaved(Lanes(lanes)))
    }

    /// The fastest kernel on this machine, chosen once per process by a
    /// short calibration (a few milliseconds): every available kernel hashes
    /// the same nonces three times and the best median wins. The best lane
    /// count depends on the processor (about 2x the single stream with 3 or
    /// more lanes on AMD Zen 4; 1.1 to 1.3x with 2 or 3 on Intel Xeons), so
    /// it is measured rather than guessed.
    pub fn detect() -> Kernel {
        static BEST: std::sync::OnceLock<Kernel> = std::sync::OnceLock::new();
        *BEST.get_or_init(|| {
            let kernels = Kernel::available();
            if kernels.len() == 1 {
                return Kernel::Portable;
            }
            let header = Header {
                version: crate::HEADER_VERSION,
                height: 1,
                parent: crate::BlockHash::from_bytes([0x5a; 32]),
                merkle_root: crate::MerkleRoot::from_bytes([0xa5; 32]),
                timestamp_ms: 1,
                target: Target::MIN.to_compact(),
                nonce: 0,
            };
            let job = Job::with_target(&header, Target::MIN);
            let mut best = (Kernel::Portable, std::time::Duration::MAX);
            for kernel in kernels {
                let mut times: Vec<_> = (0..3)
                    .map(|_| {
                        let started = std::time::Instant::now();
                        std::hint::black_box(kernel.scan(&job, 0, CALIBRATION_NONCES));
                        started.elapsed()
                    })
                    .collect();
                times.sort();
                if times[1] < best.1 {
                    best = (kernel, times[1]);
                }
            }
            best.0
        })
    }

    /// Every kernel this machine can run, for differential tests and
    /// benchmarks.
    pub fn available() -> Vec<Kernel> {
        std::iter::once(Kernel::Portable)
            .chain(shani::LANES.iter().filter_map(|&l| Kernel::interleaved(l)))
            .collect()
    }

    /// A short name for reports.
    pub fn name(self) -> String {
        match self {
            Kernel::Portable => "portable".to_string(),
            Kernel::Interleaved(lanes) => format!("sha-ni x{}", lanes.get()),
        }
    }

    /// The first nonce in `start..=start + (count - 1)` whose hash meets the
    /// job's target, or `None`. `count` is clamped so the range never passes
    /// `u64::MAX`.
    pub fn scan(self, job: &Job, start: u64, count: u64) -> Option<u64> {
        if count == 0 {
            return None;
        }
        // The last nonce, start + count - 1, must not pass u64::MAX.
        let count = (count - 1).min(u64::MAX - start) + 1;
        match self {
            Kernel::Portable => portable::scan(job, start, count),
            Kernel::Interleaved(lanes) => shani::scan(job, lanes.get(), start, count),
        }
    }
}

/// The outcome of [`Miner::mine`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MineOutcome {
    /// A header, the template with a nonce (and perhaps a later timestamp),
    /// whose hash meets its target.
    Found(Header),
    /// The stop flag was raised.
    Cancelled,
    /// Every nonce and every later timestamp was tried: the template cannot
    /// be mined (only reachable in tests that start at the end of the space).
    Exhausted,
}

/// Why a template cannot be mined at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MineError {
    /// The template's target field is not a target.
    #[error("the template's target is invalid: {0}")]
    Target(#[from] CompactTargetError),
}

/// A multi-threaded miner with a chosen kernel.
#[derive(Clone, Copy, Debug)]
pub struct Miner {
    threads: usize,
    kernel: Kernel,
}

impl Miner {
    /// A miner on `threads` threads (at least one) with the best kernel for
    /// this machine.
    pub fn new(threads: usize) -> Miner {
        Miner::with_kernel(threads, Kernel::detect())
    }

    /// A miner on `threads` threads with the given kernel.
    pub fn with_kernel(threads: usize, kernel: Kernel) -> Miner {
        Miner {
            threads: threads.max(1),
            kernel,
        }
    }

    /// The number of threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The kernel.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// Searches for a nonce, starting at the template's, until one meets the
    /// target or `stop` is raised.
    ///
    /// # Errors
    ///
    /// [`MineError::Target`] if the template's target is not a target.
    pub fn mine(&self, template: &Header, stop: &AtomicBool) -> Result<MineOutcome, MineError> {
        let job = Job::new(template)?;
        let cursor = Mutex::new(Cursor {
            timestamp_ms: template.timestamp_ms,
            next: Some(template.nonce),
        });
        let found: Mutex<Option<Header>> = Mutex::new(None);
        let done = AtomicBool::new(false);
        if self.threads <= 1 {
            // One thread: the caller's own, with no thread to start per
            // block (at the dev target a block takes about a millisecond).
            self.worker(template, &job, &cursor, &found, &done, stop);
        } else {
            // The caller's thread is one of them: one thread fewer to
            // start per block.
            std::thread::scope(|scope| {
                for _ in 1..self.threads {
                    scope.spawn(|| self.worker(template, &job, &cursor, &found, &done, stop));
                }
                self.worker(template, &job, &cursor, &found, &done, stop);
            });
        }
        let found = found
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(match found {
            Some(header) => MineOutcome::Found(header),
            None if stop.load(Ordering::Relaxed) => MineOutcome::Cancelled,
            None => MineOutcome::Exhausted,
        })
    }

    /// The lowest nonce in `start..start + count` (clamped at `u64::MAX`)
    /// whose hash meets the job's target, the range split into one
    /// contiguous share per thread. No cancellation: for fixed ranges, as
    /// in benchmarks and differential tests.
    pub fn scan(&self, job: &Job, start: u64, count: u64) -> Option<u64> {
        if count == 0 {
            return None;
        }
        let count = (count - 1).min(u64::MAX - start) + 1;
        let threads = self.threads as u64;
        let share = count.div_ceil(threads);
        let kernel = self.kernel;
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .filter_map(|t| {
                    let offset = t.checked_mul(share)?;
                    (offset < count).then(|| {
                        let first = start + offset;
                        let n = share.min(count - offset);
                        scope.spawn(move || kernel.scan(job, first, n))
                    })
                })
                .collect();
            // Shares are in nonce order, so the first hit is the lowest.
            handles
                .into_iter()
                .filter_map(|h| h.join().ok().flatten())
                .min()
        })
    }

    fn worker(
        &self,
        template: &Header,
        job: &Job,
        cursor: &Mutex<Cursor>,
        found: &Mutex<Option<Header>>,
        done: &AtomicBool,
        stop: &AtomicBool,
    ) {
        let mut job = job.clone();
        let mut job_timestamp = template.timestamp_ms;
        while !stop.load(Ordering::Relaxed) && !done.load(Ordering::Relaxed) {
            let chunk = {
                let mut guard = cursor.lock().unwrap_or_else(|p| p.into_inner());
                guard.take(CHUNK)
            };
            let Some((timestamp_ms, start, count)) = chunk else {
                // Nothing left to try anywhere.
                done.store(true, Ordering::Relaxed);
                return;
            };
            if timestamp_ms != job_timestamp {
                job.set_timestamp(timestamp_ms);
                job_timestamp = timestamp_ms;
            }
            if let Some(nonce) = self.kernel.scan(&job, start, count) {
                let mut guard = found.lock().unwrap_or_else(|p| p.into_inner());
                if guard.is_none() {
                    *guard = Some(Header {
                        nonce,
                        timestamp_ms,
                        ..*template
                    });
                }
                done.store(true, Ordering::Relaxed);
                return;
            }
        }
    }
}

/// The shared position in the (timestamp, nonce) space.
struct Cursor {
    timestamp_ms: u64,
    /// The next nonce to hand out, or `None` when this timestamp's nonces
    /// are all handed out and the timestamp cannot move on.
    next: Option<u64>,
}

impl Cursor {
    /// The next chunk: (timestamp, first nonce, count).
    fn take(&mut self, chunk: u64) -> Option<(u64, u64, u64)> {
        let start = self.next?;
        let timestamp = self.timestamp_ms;
        let last = start.saturating_add(chunk - 1);
        if last == u64::MAX {
            // This timestamp's nonces end here: move time on by a millisecond.
            match self.timestamp_ms.checked_add(1) {
                Some(t) => {
                    self.timestamp_ms = t;
                    self.next = Some(0);
                }
                None => self.next = None,
            }
        } else {
            self.next = Some(last + 1);
        }
        Some((timestamp, start, last - start + 1))
    }
}

/// The baseline the benchmarks compare against: hash the whole 96-byte
/// header with `sha2` for every nonce, no midstate. Returns the first nonce
/// in the range whose hash meets `target`.
pub fn scan_naive(template: &Header, target: Target, start: u64, count: u64) -> Option<u64> {
    let target = target.to_be_bytes();
    let mut bytes = template.to_bytes();
    let mut nonce = start;
    for _ in 0..count {
        bytes[Header::NONCE_OFFSET..].copy_from_slice(&nonce.to_le_bytes());
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        if digest <= target {
            return Some(nonce);
        }
        nonce = nonce.checked_add(1)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::{BlockHash, MerkleRoot};
    use crate::pow::CompactTarget;

    fn template(bits: u32) -> Header {
        Header {
            version: 1,
            height: 7,
            parent: BlockHash::from_bytes([3; 32]),
            merkle_root: MerkleRoot::from_bytes([9; 32]),
            timestamp_ms: 1_000,
            target: Target::from_leading_zero_bits(bits).to_compact(),
            nonce: 0,
        }
    }

    #[test]
    fn midstate_hash_equals_full_digest() {
        let h = template(16);
        let job = Job::new(&h).unwrap();
        for nonce in [0u64, 1, 0xffff, u64::MAX] {
            let mut state = job.midstate;
            sha2::block_api::compress256(&mut state, &[job.tail_with_nonce(nonce)]);
            let mut bytes = [0u8; 32];
            for (chunk, word) in bytes.chunks_exact_mut(4).zip(state) {
                chunk.copy_from_slice(&word.to_be_bytes());
            }
            let header = Header { nonce, ..h };
            assert_eq!(BlockHash::from_bytes(bytes), header.hash());
        }
    }

    #[test]
    fn mined_header_meets_target() {
        let h = template(12);
        let stop = AtomicBool::new(false);
        for threads in [1, 3] {
            let MineOutcome::Found(found) = Miner::new(threads).mine(&h, &stop).unwrap() else {
                panic!("expected a block");
            };
            assert!(found.target.to_target().unwrap().is_met_by(&found.hash()));
            assert_eq!(Header { nonce: 0, ..found }, h);
        }
    }

    #[test]
    fn raised_stop_flag_cancels() {
        // A target no one will meet: only the flag can end the search.
        let h = template(200);
        let stop = AtomicBool::new(true);
        assert_eq!(
            Miner::new(2).mine(&h, &stop).unwrap(),
            MineOutcome::Cancelled
        );
    }

    #[test]
    fn cancel_from_another_thread() {
        let h = template(200);
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            let miner = s.spawn(|| Miner::new(2).mine(&h, &stop));
            std::thread::sleep(std::time::Duration::from_millis(20));
            stop.store(true, Ordering::Relaxed);
            assert_eq!(miner.join().unwrap().unwrap(), MineOutcome::Cancelled);
        });
    }

    #[test]
    fn exhausted_nonces_move_the_timestamp() {
        // Start near the end of the nonce space with a target so hard that
        // no nonce there meets it; the miner must roll the timestamp and
        // carry on at nonce 0 with an easy enough target to finish.
        let mut h = template(1);
        h.nonce = u64::MAX - 3;
        // Find the nonces at the end of the space that meet a 1-bit target,
        // and pick a header where none of the last four do.
        while (u64::MAX - 3..=u64::MAX).any(|n| {
            Header { nonce: n, ..h }
                .target
                .to_target()
                .unwrap()
                .is_met_by(&Header { nonce: n, ..h }.hash())
        }) {
            h.height += 1;
        }
        let stop = AtomicBool::new(false);
        let MineOutcome::Found(found) = Miner::new(2).mine(&h, &stop).unwrap() else {
            panic!("expected a block");
        };
        assert_eq!(found.timestamp_ms, h.timestamp_ms + 1);
        assert!(found.nonce < CHUNK * 2);
        assert!(h.target.to_target().unwrap().is_met_by(&found.hash()));
    }

    #[test]
    fn exhausted_time_is_reported_not_wrapped() {
        let mut h = template(200);
        h.timestamp_ms = u64::MAX;
        h.nonce = u64::MAX - 10;
        let stop = AtomicBool::new(false);
        assert_eq!(
            Miner::new(2).mine(&h, &stop).unwrap(),
            MineOutcome::Exhausted
        );
    }

    #[test]
    fn invalid_target_is_an_error() {
        let mut h = template(16);
        h.target = CompactTarget::from_u32(0);
        let stop = AtomicBool::new(false);
        assert!(matches!(
            Miner::new(1).mine(&h, &stop),
            Err(MineError::Target(CompactTargetError::Zero(0)))
        ));
    }

    #[test]
    fn cursor_covers_the_end_of_the_space_exactly() {
        let mut c = Cursor {
            timestamp_ms: 5,
            next: Some(u64::MAX - 9),
        };
        assert_eq!(c.take(4), Some((5, u64::MAX - 9, 4)));
        assert_eq!(c.take(4), Some((5, u64::MAX - 5, 4)));
        assert_eq!(c.take(4), Some((5, u64::MAX - 1, 2)));
        assert_eq!(c.take(4), Some((6, 0, 4)));
    }
}

//! The run's random numbers: [`SimRng`], ChaCha8 from a seed, so a seed
//! replays a run.

use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

/// The run's random numbers: ChaCha8 from a seed, so a seed replays a run.
#[derive(Clone, Debug)]
pub struct SimRng(ChaCha8Rng);

impl SimRng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> SimRng {
        SimRng(ChaCha8Rng::seed_from_u64(seed))
    }

    /// A generator for a named purpose, independent of the others drawn
    /// from the same seed (so adding draws to one does not shift another).
    pub fn stream(seed: u64, purpose: u64) -> SimRng {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        key[8..16].copy_from_slice(&purpose.to_le_bytes());
        SimRng(ChaCha8Rng::from_seed(key))
    }

    /// 32 uniform bytes: four `u64` draws, little-endian.
    pub fn bytes32(&mut self) -> [u8; 32] {
        let mut b = [0u8; 32];
        for chunk in b.chunks_mut(8) {
            chunk.copy_from_slice(&self.u64().to_le_bytes());
        }
        b
    }

    /// A uniform `u64`.
    pub fn u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (0 for `n = 0`).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        // The bias of a modulo on 64 bits is far below anything measured.
        usize::try_from(self.0.next_u64() % n as u64).unwrap_or(0)
    }

    /// Exponentially distributed with the given mean.
    pub fn exp(&mut self, mean: Duration) -> Duration {
        let u = 1.0 - self.unit(); // (0, 1]
        mean.mul_f64(-u.ln())
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// Node `i`'s id in its `generation`-th life (ids change at each restart,
/// as a real node draws one at each start).
pub fn node_id(seed: u64, i: usize, generation: u64) -> [u8; 32] {
    SimRng::stream(seed, (2 << 32) + ((i as u64) << 16) + generation).bytes32()
}

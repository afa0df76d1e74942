//! Histograms of the node's slow steps, for `GET /metrics`: how long a
//! block takes to be inserted into the block tree (its checks, and the
//! application of its transactions when it extends the best chain), and
//! how long a store commit takes.
//!
//! They are the process's: a process runs one node (the simulator, which
//! runs many, does not read them). Time is read from tokio's clock, as
//! everywhere in the node: under the simulator's paused clock a step
//! takes no time, and nothing the node decides depends on these.

use std::sync::LazyLock;

use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use tokio::time::Instant;

/// Buckets from 100 µs, doubling, to about 3.3 s.
fn buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.000_1, 2.0, 16))
}

/// Inserting a block into the block tree, in seconds.
pub static BLOCK_INSERT: LazyLock<Histogram> = LazyLock::new(buckets);

/// One store commit, in seconds.
pub static COMMIT: LazyLock<Histogram> = LazyLock::new(buckets);

/// Records in `histogram` the time since `start`.
pub fn observe(histogram: &Histogram, start: Instant) {
    histogram.observe(start.elapsed().as_secs_f64());
}

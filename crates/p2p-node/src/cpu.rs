//! The processor seam: what a node's work costs in time.
//!
//! A live node runs on its machine's processors and has no [`Cpu`]: its
//! work takes the time it takes, and nothing here is computed. The
//! simulator (the `sim` crate) gives each node a simulated processor:
//! before the core acts on a message it charges the message's [`Work`],
//! counted from the message (signatures, transactions, bytes), and waits
//! until the processor has done it, so a node flooded with work falls
//! behind as a real one does. The simulator charges the rest of a node's
//! work itself: encoding and decoding on its network, commits in its
//! store. `docs/SIMULATION.md` ("Simulated processors") has the model and
//! the cost of each count.

use tokio::time::Instant;

/// Counts of the work a piece of the node's work is made of. Each count
/// is priced by the simulator's cost model; the sum is the time charged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Work {
    /// Signatures checked one at a time.
    pub signatures: u64,
    /// Signatures checked in batches (each costs its share of a batch).
    pub batched_signatures: u64,
    /// Transactions applied to a ledger (a block's, or one admitted to the
    /// mempool).
    pub txs: u64,
    /// Blocks validated (header, proof of work, the tree), apart from
    /// their transactions and bytes.
    pub blocks: u64,
    /// Bytes hashed (a block's transactions: their ids and merkle root).
    pub hashed_bytes: u64,
    /// Store commits.
    pub commits: u64,
    /// Bytes written by those commits.
    pub committed_bytes: u64,
    /// Bytes of frames decoded.
    pub decoded_bytes: u64,
    /// Bytes of frames encoded.
    pub encoded_bytes: u64,
}

impl Work {
    /// Whether this is no work at all.
    pub fn is_none(&self) -> bool {
        *self == Work::default()
    }
}

impl std::ops::Add for Work {
    type Output = Work;

    fn add(self, o: Work) -> Work {
        Work {
            signatures: self.signatures + o.signatures,
            batched_signatures: self.batched_signatures + o.batched_signatures,
            txs: self.txs + o.txs,
            blocks: self.blocks + o.blocks,
            hashed_bytes: self.hashed_bytes + o.hashed_bytes,
            commits: self.commits + o.commits,
            committed_bytes: self.committed_bytes + o.committed_bytes,
            decoded_bytes: self.decoded_bytes + o.decoded_bytes,
            encoded_bytes: self.encoded_bytes + o.encoded_bytes,
        }
    }
}

/// A simulated processor: [`Cpu::charge`] queues work and says when it is
/// done.
pub trait Cpu: Send + Sync {
    /// Queues `work` behind what the processor has to do already and
    /// returns the (simulated) instant it is done; the caller waits until
    /// then before it acts on the work's outcome.
    fn charge(&self, work: Work) -> Instant;
}

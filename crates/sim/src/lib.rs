//! The deterministic simulator: many real nodes in one process, under a
//! simulated clock and network.
//!
//! Every node is the real [`p2p_node::Node`] (core, peer tasks, mempool,
//! ledger) started on simulated seams; the node crate holds only the
//! seams, every fake lives here:
//!
//! - [`net`]: the transport, a network of hosts with per-link latency,
//!   per-host upload bandwidth, partitions, held links, latency spikes and
//!   crashes;
//! - [`SimClock`] ([`clock`]): block timestamps from the simulated time;
//! - [`SimCpu`] ([`cpu`]): each node's processor, charged for the node's
//!   work from a [`CostModel`];
//! - [`SimMiner`] ([`miner`]): blocks found as a Poisson process per node,
//!   at the node's share of the hash power (no hashing: the simulated
//!   chain's target is trivial, and every block still goes through full
//!   validation);
//! - [`SimStore`] ([`store`]): an in-memory store that outlives its node,
//!   so a crashed node restarts on what it had made durable, with
//!   injectable faults (a failed commit, slow commits);
//! - [`SimRng`] ([`rng`]): every random draw, from the seed.
//!
//! All nodes run on one tokio current-thread runtime whose clock is
//! paused: when every task waits, tokio jumps to the next timer, so idle
//! simulated time costs nothing, and nothing reads the wall clock or the
//! operating system's randomness. The same seed and options replay the
//! same run. [`world`] builds and drives a run (load, faults, checks,
//! measurements); the `sim` binary (`cargo xtask sim`) is its command
//! line. `docs/SIMULATION.md` describes the model.
//!
//! # Layout
//!
//! - [`world`]: [`world::run`], one run from [`options::SimOptions`] to a
//!   [`report::Outcome`]: the nodes, their seams and the phases.
//! - [`options`], [`report`]: what a run depends on, and what it reports.
//! - `checks` and `probe`: the safety checks on every node; `faults`: the
//!   swarm's fault schedule; `byzantine`: the swarm's misbehaving hosts; `load`: the simulated users; `measure`: the
//!   report computed from what the watchers recorded.
//! - `src/main.rs` and `src/cli/`: the `sim` binary (options, printing,
//!   files, pictures).

pub mod clock;
pub mod cpu;
pub mod miner;
pub mod net;
pub mod options;
pub mod report;
pub mod rng;
pub mod store;
pub mod world;

pub mod byzantine;
mod checks;
mod eclipse;
mod faults;
mod load;
mod measure;
mod probe;
mod records;
mod selfish;
mod setup;

pub use clock::SimClock;
pub use cpu::{CostModel, SimCpu};
pub use miner::{Lottery, SimMiner};
pub use rng::SimRng;
pub use store::{CommitStats, SimStore};

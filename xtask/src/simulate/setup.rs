//! What every part of the demo shares: the options one scenario runs
//! with, the scenarios, the interrupt flag and the demo's constants. It
//! imports nothing of the demo, so every other file of `simulate` can
//! import it without a circle.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context;

/// How long nodes may disagree on tips of equal work, with nothing pending,
/// before the demo mines a block to settle them. The tie-break (the
/// smaller hash) settles them as soon as every node has every tip, which
/// takes milliseconds on loopback.
pub(super) const SETTLE_PATIENCE: Duration = Duration::from_secs(2);

/// Every dev account's balance at genesis.
pub(super) const DEV_BALANCE: u64 = 1_000_000;
/// The coins each block's coinbase creates.
pub(super) const REWARD: u64 = 50;
/// The dev accounts, in the table's order.
pub(super) const ACCOUNTS: [&str; 6] = ["alice", "bob", "charlie", "dave", "eve", "ferdie"];
/// Set by Ctrl-C or SIGTERM: every wait stops, and the network's `Drop`
/// stops the children (no orphans left listening).
pub(super) static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Longest wait for any one step before the demo gives up.
pub(super) const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// Hex digits printed of a contract id (its first group).
pub(super) const CONTRACT_DIGITS: usize = 8;

/// One scenario to run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Scenario {
    Demo,
    CrashRestart,
    LateJoin,
    Partition,
}

impl Scenario {
    pub(super) fn name(self) -> &'static str {
        match self {
            Scenario::Demo => "demo",
            Scenario::CrashRestart => "crash-restart",
            Scenario::LateJoin => "late-join",
            Scenario::Partition => "partition",
        }
    }
}

/// The options one scenario runs with.
#[derive(Debug, Clone)]
pub(super) struct Options {
    pub(super) nodes: usize,
    pub(super) base_port: u16,
    pub(super) api_base_port: u16,
    pub(super) scenario: Scenario,
    pub(super) keep: bool,
}

impl Options {
    /// Node `index`'s P2P and API ports. `plan` (in `mod.rs`) checked that every index
    /// a scenario starts fits below 65,536.
    pub(super) fn ports(&self, index: usize) -> anyhow::Result<(u16, u16)> {
        let port = |base: u16| {
            u16::try_from(usize::from(base) + index)
                .with_context(|| format!("node {index}'s port is past 65535"))
        };
        Ok((port(self.base_port)?, port(self.api_base_port)?))
    }

    /// How many nodes the scenario starts in all (late-join adds one).
    pub(super) fn total_nodes(&self) -> usize {
        self.nodes + usize::from(self.scenario == Scenario::LateJoin)
    }
}

//! `cargo xtask sim`: builds the simulator's binary (`sim`, the
//! `crates/sim` crate) in release mode and runs it with the arguments
//! given, forwarding its exit status. The simulator and its command line
//! live in that crate; xtask depends on none of the workspace's crates.
//! `docs/SIMULATION.md` documents every option.

use std::path::Path;
use std::process::Command;

use anyhow::Context;

/// Runs `cargo xtask sim` with `args` (after `sim`): the release build of
/// `sim`, whose own errors and `--help` are what the user sees. The nodes
/// run about three times slower in an unoptimised build, so it is always
/// the release one (`cargo run -p sim -- ARGS` runs the unoptimised one).
pub fn run(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let binary = crate::build::release_binaries(root)?.sim;
    let status = Command::new(&binary)
        .args(args)
        .status()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    if !status.success() {
        // The simulator printed what went wrong.
        std::process::exit(status.code().unwrap_or(1));
    }
    Ok(())
}

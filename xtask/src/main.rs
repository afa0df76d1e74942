//! Developer workflows as code, run as `cargo xtask <task>` from anywhere in
//! the tree (`.cargo/config.toml` aliases `xtask` to this package).
//!
//! # Tasks
//!
//! - `bench` ([`bench`]): runs the criterion benchmarks and prints one
//!   `bench: name = value unit` line per figure, the form the project keeps
//!   stable, then the node at scale (release node processes through their
//!   API: restart, memory, mining rate, throughput of four nodes).
//!   `--quick` runs a short version (CI uses it); `bench node` (or
//!   `--node-only`) runs only the node benchmarks.
//!
//! - `simulate` ([`simulate`]): the four-node escrow demo, end to end,
//!   and its fault scenarios (`--scenario crash-restart|late-join|
//!   partition|all`); `--keep` leaves the nodes running, `--stop` stops
//!   them.
//!
//! - `image` ([`image`]): the node's container image, `FROM scratch`.
//!
//! - `testnet` ([`simulate::testnet`]): nodes on hosts of their own, each
//!   with its own IP address on one bridge (containers of the image, or
//!   network namespaces), their partitions and a misbehaving host.
//!
//! - `sim` ([`sim`]): the deterministic simulator: hundreds of real nodes
//!   in a simulated network, one run, a sweep or a fault swarm, with a
//!   report and pictures (`docs/SIMULATION.md`).
//!
//! xtask depends on no crate of the workspace: [`build`] builds the
//! release binaries the tasks run (the node, the load generator), all in
//! one cargo invocation, and the tasks drive them as processes. `cargo
//! xtask` runs xtask itself in release too (`.cargo/config.toml`), so a
//! first run compiles the workspace's dependencies once, for both.
//!
//! `tidy` (tests only, part of `cargo test --workspace`): checks over the
//! source tree and the documentation (import circles, `//!` headers, file
//! length, paths the documents name).

mod bench;
mod build;
mod http;
mod image;
mod sim;
mod simulate;
#[cfg(test)]
mod tidy;

use std::path::PathBuf;

use anyhow::{Context, bail};

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  simulate [--nodes N] [--base-port P] [--api-base-port A] [--scenario NAME] [--keep]
  simulate --stop [DIR]
                    the four-node escrow demo; scenarios: demo (default),
                    crash-restart, late-join, partition, all; --stop stops
                    the nodes --keep left running (cargo xtask simulate --help)
  sim [--nodes N] [--block-interval 10m] [--latency bitcoin] [--blocks N | --duration 6h]
      [--seed S] [--out DIR] [--sweep block-interval=...] [--swarm --seeds N] ...
                    the deterministic simulator (cargo xtask sim --help)
  bench [--quick] [node | --node-only] [--blocks N] [--chain-dir DIR]
                    run the benchmarks and print one `bench:` line per figure;
                    `node` runs only the node at scale (restart, memory, mining,
                    four nodes' throughput)
  image [--rootfs-only]
                    the node's container image (FROM scratch, non-root, a
                    /data volume), built from the release binary
  testnet up [--nodes N] [--engine auto|docker|netns] | down | status
  testnet flows | partition 1,2 3,4 | heal | mine --node N [--blocks K]
  testnet misbehave --host K --target J
                    N nodes on hosts of their own (containers or network
                    namespaces) on one bridge, as root (cargo xtask testnet --help)";

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let task = args.next();
    let rest: Vec<String> = args.collect();
    match task.as_deref() {
        Some("bench") => bench::run(&project_root()?, &rest),
        Some("simulate") => simulate::run(&project_root()?, &rest),
        Some("sim") => sim::run(&project_root()?, &rest),
        Some("image") => image::run(&project_root()?, &rest),
        Some("testnet") => simulate::testnet::run(&project_root()?, &rest),
        Some("-h" | "--help" | "help") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown task `{other}`\n\n{USAGE}"),
    }
}

/// The workspace root: the parent of this crate's directory.
fn project_root() -> anyhow::Result<PathBuf> {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(PathBuf::from)
        .context("xtask's manifest directory has no parent")
}

//! The release binaries xtask runs as processes: the node (the demo and
//! `cargo xtask bench node`), the load generator (`crates/loadgen`, the
//! benchmark's signed transfers) and the simulator (`crates/sim`, `cargo
//! xtask sim`). xtask depends on no crate of the
//! workspace; it builds these and drives them.
//!
//! Every build here is one cargo invocation of every package in
//! [`RELEASE_PACKAGES`], whichever binary the task needs. Cargo unifies
//! features over the packages one invocation selects: building `-p p2p-node`
//! alone and later another package alone that shares dependencies with
//! other features (the simulator's tokio `test-util`, for one) would build
//! those dependencies, and p2p-node above them, twice. One invocation of
//! the same list every time builds each crate once, in the same
//! `target/release` that `cargo bench` uses (the bench profile inherits
//! release: see the root `Cargo.toml`). So the node binary xtask runs is
//! built with tokio's `test-util` feature, which the simulator needs and
//! which does nothing unless a runtime pauses its clock (the node never
//! does); `cargo build --release -p p2p-node` alone builds it without.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// Every package with a release binary xtask runs, built together.
pub(crate) const RELEASE_PACKAGES: &[&str] = &["p2p-node", "loadgen", "sim"];

/// The binaries of one release build.
pub(crate) struct Binaries {
    /// `p2p-node`, or the binary `XTASK_NODE_BINARY` names.
    pub(crate) node: PathBuf,
    /// `loadgen`.
    pub(crate) loadgen: PathBuf,
    /// `sim`.
    pub(crate) sim: PathBuf,
}

/// The cargo that runs xtask (`$CARGO`), or `cargo`.
fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

/// `CARGO_TARGET_DIR`, or the workspace's `target`.
pub(crate) fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

/// The node binary `XTASK_NODE_BINARY` names, if it is set: to compare
/// two versions of the node with the same benchmark or demo (build the
/// other version elsewhere, point this at it).
fn given_node() -> anyhow::Result<Option<PathBuf>> {
    let Some(given) = std::env::var_os("XTASK_NODE_BINARY") else {
        return Ok(None);
    };
    let binary = PathBuf::from(given);
    if !binary.is_file() {
        bail!(
            "XTASK_NODE_BINARY is {}, which is not a file",
            binary.display()
        );
    }
    eprintln!(
        "xtask: using the node binary {} (XTASK_NODE_BINARY)",
        binary.display()
    );
    Ok(Some(binary))
}

/// The node binary for the demo: `XTASK_NODE_BINARY` (nothing is built),
/// or the release build of [`release_binaries`].
pub(crate) fn node_binary(root: &Path) -> anyhow::Result<PathBuf> {
    match given_node()? {
        Some(binary) => Ok(binary),
        None => Ok(release_binaries(root)?.node),
    }
}

/// Builds every package of [`RELEASE_PACKAGES`] in release mode, in one
/// cargo invocation, and returns the binaries' paths (the node's replaced
/// by `XTASK_NODE_BINARY` when it is set). Cargo's own progress (the
/// `Compiling ...` lines, and its progress bar on a terminal) goes to this
/// process's stderr, so a first build, which takes minutes, is seen to
/// advance.
pub(crate) fn release_binaries(root: &Path) -> anyhow::Result<Binaries> {
    let given = given_node()?;
    let cargo = cargo();
    let mut args = vec!["build", "--release"];
    for p in RELEASE_PACKAGES {
        args.extend(["-p", p]);
    }
    let command = format!("cargo {}", args.join(" "));
    eprintln!(
        "xtask: building the release binaries ({command}); \
         a first build takes a few minutes, later ones seconds"
    );
    let status = Command::new(&cargo)
        .current_dir(root)
        .args(&args)
        .status()
        .with_context(|| format!("cannot run `{command}`"))?;
    if !status.success() {
        bail!(
            "the release build failed ({}): cargo's errors are above",
            describe_exit(status)
        );
    }
    let release = target_dir(root).join("release");
    let built = |name: &str| {
        let binary = release.join(name);
        if binary.is_file() {
            Ok(binary)
        } else {
            bail!(
                "the build succeeded but {} is not there: is CARGO_TARGET_DIR or \
                 build.target-dir set to another directory than xtask sees?",
                binary.display()
            )
        }
    };
    let node = match given {
        Some(binary) => binary,
        None => built("p2p-node")?,
    };
    Ok(Binaries {
        node,
        loadgen: built("loadgen")?,
        sim: built("sim")?,
    })
}

/// A process's end in words: `exited with code 1`, `was killed by signal 9`.
pub(crate) fn describe_exit(status: std::process::ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exited with code {code}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return format!("was killed by signal {signal}");
        }
    }
    format!("ended: {status}")
}

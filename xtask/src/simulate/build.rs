//! The release builds xtask runs as processes: the node, which the demo
//! and `cargo xtask bench node` run, and the simulator (`cargo xtask sim`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// Builds the node binary in release mode and returns its path. Cargo's
/// own progress (the `Compiling ...` lines, and its progress bar on a
/// terminal) goes to this process's stderr, so a first build, which takes
/// minutes, is seen to advance.
///
/// With `XTASK_NODE_BINARY` set, that binary is used instead and nothing is
/// built: to compare two versions of the node with the same benchmark or
/// demo (build the other version elsewhere, point this at it).
pub(crate) fn build_node(root: &Path) -> anyhow::Result<PathBuf> {
    if let Some(given) = std::env::var_os("XTASK_NODE_BINARY") {
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
        return Ok(binary);
    }
    build_release(root, "p2p-node", "the node")
}

/// Builds `package`'s binary of the same name in release mode (`what` says
/// what it is, for the message) and returns its path. Cargo's progress goes
/// to this process's stderr, as for [`build_node`].
pub(crate) fn build_release(root: &Path, package: &str, what: &str) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    eprintln!(
        "xtask: building {what} in release mode (cargo build --release -p {package}); \
         a first build takes a few minutes, later ones seconds"
    );
    let status = Command::new(&cargo)
        .current_dir(root)
        .args(["build", "--release", "-p", package])
        .status()
        .with_context(|| format!("cannot run `{cargo} build --release -p {package}`"))?;
    if !status.success() {
        bail!(
            "building {package} in release mode failed ({}): cargo's errors are above",
            describe_exit(status)
        );
    }
    let binary = crate::bench::target_dir(root).join("release").join(package);
    if !binary.is_file() {
        bail!(
            "the build succeeded but {} is not there: is CARGO_TARGET_DIR or \
             build.target-dir set to another directory than xtask sees?",
            binary.display()
        );
    }
    Ok(binary)
}

/// A process's end in words: `exited with code 1`, `was killed by signal 9`.
pub(super) fn describe_exit(status: std::process::ExitStatus) -> String {
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

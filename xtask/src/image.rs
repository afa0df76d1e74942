//! `cargo xtask image`: the node's container image, built from what the
//! project builds and nothing downloaded.
//!
//! [`assemble`] builds the release node and lays out `target/image`: the
//! `Dockerfile` of `ops/container/` and `rootfs/`, the image's whole root
//! filesystem: the stripped binary at `/usr/local/bin/p2p-node`, the shared
//! libraries it links (as `ldd` lists them, at the same paths, with the
//! dynamic loader), `/etc/passwd` and `/etc/group` naming the node's user
//! (uid and gid [`UID`]), `/etc/nsswitch.conf`, an empty `/data` owned by
//! that user, and `/tmp`. Then `docker build` makes the image
//! `escrow-chain/p2p-node` (`FROM scratch`). The testnet's namespace engine
//! (`cargo xtask testnet`) runs each node from a copy of the same root
//! filesystem, as the same user, so the image's contents are exercised
//! where no engine runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::build::{describe_exit, node_binary, target_dir};

/// The image's name.
pub(crate) const IMAGE: &str = "escrow-chain/p2p-node";
/// The node's user and group id in the image.
pub(crate) const UID: u32 = 10_001;

const USAGE: &str = "usage: cargo xtask image [--rootfs-only]

Builds the release node and the container image escrow-chain/p2p-node
(FROM scratch: the binary, the libraries it links, a non-root user, a /data
volume) with `docker build`. --rootfs-only stops after assembling
target/image (rootfs/ and the Dockerfile), for a machine with no Docker
engine: build the image elsewhere with `docker build -t escrow-chain/p2p-node
target/image`. docs/OPERATIONS.md says how to run it.";

/// The image's tag: the workspace's version.
pub(crate) fn tag() -> String {
    format!("{IMAGE}:{}", env!("CARGO_PKG_VERSION"))
}

/// `cargo xtask image [--rootfs-only]`.
pub(crate) fn run(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let mut rootfs_only = false;
    for a in args {
        match a.as_str() {
            "--rootfs-only" => rootfs_only = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown option `{other}`\n\n{USAGE}"),
        }
    }
    let dir = assemble(root)?;
    println!("assembled {}", dir.display());
    if rootfs_only {
        println!(
            "build the image where a Docker engine runs: docker build -t {} {}",
            tag(),
            dir.display()
        );
        return Ok(());
    }
    build_image(&dir)?;
    println!("built the image {} (and {IMAGE}:latest)", tag());
    Ok(())
}

/// Runs `docker build` on an assembled directory.
pub(crate) fn build_image(dir: &Path) -> anyhow::Result<()> {
    if !engine_runs() {
        bail!(
            "no Docker engine answers (`docker info` failed): start one (dockerd), or run \
             `cargo xtask image --rootfs-only` and build {} on a machine that has one",
            dir.display()
        );
    }
    let status = Command::new("docker")
        .args([
            "build",
            "-q",
            "-t",
            &tag(),
            "-t",
            &format!("{IMAGE}:latest"),
        ])
        .arg(dir)
        .status()
        .context("cannot run docker build")?;
    if !status.success() {
        bail!("docker build {}", describe_exit(status));
    }
    Ok(())
}

/// Whether a Docker engine answers.
pub(crate) fn engine_runs() -> bool {
    Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Builds the release node and lays out `target/image` (see the module's
/// documentation); returns that directory.
pub(crate) fn assemble(root: &Path) -> anyhow::Result<PathBuf> {
    let node = node_binary(root)?;
    let dir = target_dir(root).join("image");
    let rootfs = dir.join("rootfs");
    if rootfs.exists() {
        std::fs::remove_dir_all(&rootfs)
            .with_context(|| format!("cannot remove the old {}", rootfs.display()))?;
    }
    let bin = rootfs.join("usr/local/bin");
    std::fs::create_dir_all(&bin).with_context(|| format!("cannot create {}", bin.display()))?;
    let target = bin.join("p2p-node");
    copy(&node, &target)?;
    // Debug sections and symbols make up most of the binary; the image
    // does not need them (backtraces keep file names only where symbols
    // are). No `strip` on the machine: the binary goes in whole.
    let _ = Command::new("strip").arg(&target).status();
    for lib in linked_libraries(&node)? {
        let relative = lib.strip_prefix("/").unwrap_or(&lib);
        copy(&lib, &rootfs.join(relative))?;
    }
    let etc = rootfs.join("etc");
    std::fs::create_dir_all(&etc)?;
    write(
        &etc.join("passwd"),
        &format!(
            "root:x:0:0:root:/root:/sbin/nologin\nnode:x:{UID}:{UID}:escrow chain node:/data:/sbin/nologin\n"
        ),
    )?;
    write(&etc.join("group"), &format!("root:x:0:\nnode:x:{UID}:\n"))?;
    write(&etc.join("nsswitch.conf"), "hosts: files dns\n")?;
    // `/data` twice: in the root filesystem (the testnet's namespace
    // engine runs from it), and apart, for the Dockerfile to copy with its
    // owner (COPY gives what it copies to root unless told otherwise).
    for data in [rootfs.join("data"), dir.join("data")] {
        std::fs::create_dir_all(&data)?;
        own(&data)?;
    }
    let tmp = rootfs.join("tmp");
    std::fs::create_dir_all(&tmp)?;
    set_mode(&tmp, 0o1777)?;
    // The image's /data comes from `data/`, with its owner, alone.
    write(&dir.join(".dockerignore"), "rootfs/data\n")?;
    std::fs::copy(
        root.join("ops/container/Dockerfile"),
        dir.join("Dockerfile"),
    )
    .context("cannot copy ops/container/Dockerfile")?;
    Ok(dir)
}

/// The shared libraries `binary` loads, the dynamic loader included, as
/// `ldd` lists them. A static binary has none.
fn linked_libraries(binary: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .context("cannot run ldd (it lists the libraries the node links)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let said = format!("{text}{}", String::from_utf8_lossy(&out.stderr));
        if said.contains("not a dynamic executable") {
            return Ok(Vec::new());
        }
        bail!(
            "ldd {} {}: {}",
            binary.display(),
            describe_exit(out.status),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    parse_ldd(&text)
        .with_context(|| format!("{} links a library ldd cannot find", binary.display()))
}

/// The absolute paths in `ldd`'s output; an error names a library it did
/// not find.
fn parse_ldd(text: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut libs = Vec::new();
    for line in text.lines() {
        // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)`, or the
        // loader alone: `/lib64/ld-linux-x86-64.so.2 (0x...)`; the vDSO
        // (`linux-vdso.so.1 (0x...)`) is no file.
        if line.contains("not found") {
            bail!("{}", line.trim());
        }
        let path = match line.split_once("=>") {
            Some((_, right)) => right.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(path) = path.filter(|p| p.starts_with('/')) {
            libs.push(PathBuf::from(path));
        }
    }
    Ok(libs)
}

/// Copies a file (following links), creating its directory.
fn copy(from: &Path, to: &Path) -> anyhow::Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::copy(from, to)
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    Ok(())
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Gives `path` to the node's user, where this process may (as root).
pub(crate) fn own(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    if is_root() {
        std::os::unix::fs::chown(path, Some(UID), Some(UID))
            .with_context(|| format!("cannot give {} to uid {UID}", path.display()))?;
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    }
    Ok(())
}

/// Whether this process runs as root (`id -u` is 0).
pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_gives_each_library_and_the_loader_but_not_the_vdso() {
        let text = "\tlinux-vdso.so.1 (0x00007ffad7bdf000)
\tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007ffad7bad000)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007ffad6f3e000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007ffad7be1000)
";
        let libs = parse_ldd(text).unwrap_or_default();
        assert_eq!(
            libs,
            [
                "/lib/x86_64-linux-gnu/libgcc_s.so.1",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib64/ld-linux-x86-64.so.2"
            ]
            .map(PathBuf::from)
        );
        let missing = "\tlibfoo.so.1 => not found\n";
        assert!(parse_ldd(missing).is_err());
    }
}

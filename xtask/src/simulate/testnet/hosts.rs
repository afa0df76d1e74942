//! The testnet's hosts: what `up` made, written down as it is made
//! (`target/testnet/state.json`), so that `down` removes exactly that,
//! also after a failed `up`.
//!
//! Two engines give each node a host of its own, with its own IP address
//! on one bridge:
//!
//! - `docker`: a user-defined bridge network `esctn` and one container of
//!   the image (`cargo xtask image`) per node, with a fixed address and
//!   its data directory bind-mounted at `/data`. Each container's network
//!   namespace is also given a name (`ip netns attach`), so partitions and
//!   the misbehaving host work the same on both engines.
//! - `netns`: a bridge `esctn0` (the host's address on it `PREFIX.1`), and
//!   per node a network namespace `esctn-N` joined to it by a veth pair;
//!   the node runs inside it from a copy of the image's root filesystem
//!   (`chroot`), as the image's user, on that filesystem's `/data`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::image::{self, UID};

/// Prefix of every name the testnet gives (namespaces, links, containers,
/// the network).
pub(super) const NAME: &str = "esctn";
/// The port every node listens on for peers, and its API's.
pub(super) const P2P_PORT: u16 = 5000;
pub(super) const API_PORT: u16 = 8000;

/// How the hosts are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Engine {
    Docker,
    Netns,
}

/// One host and its node.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Host {
    pub(super) index: usize,
    /// The name of its network namespace (`ip netns`).
    pub(super) ns: String,
    pub(super) ip: String,
    /// Its directory on this machine: the root filesystem (netns) or the
    /// data directory's parent (docker).
    pub(super) dir: PathBuf,
    /// Its data directory, as this machine sees it.
    pub(super) data_dir: PathBuf,
    /// The account its blocks pay.
    pub(super) miner: String,
    /// The node's process id (netns), once started.
    pub(super) pid: Option<u32>,
    /// Made so far: the namespace, the host's end of the veth pair (netns),
    /// the container (docker).
    pub(super) made_ns: bool,
    pub(super) veth: Option<String>,
    pub(super) container: Option<String>,
}

impl Host {
    pub(super) fn p2p(&self) -> String {
        format!("{}:{P2P_PORT}", self.ip)
    }

    pub(super) fn api(&self) -> String {
        format!("http://{}:{API_PORT}", self.ip)
    }
}

/// Everything the testnet made, in the order it made it.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct State {
    pub(super) engine: Engine,
    /// The first three numbers of the hosts' IPv4 addresses.
    pub(super) prefix: String,
    /// The netns engine's bridge, once made.
    pub(super) bridge: Option<String>,
    /// The docker engine's network, once made.
    pub(super) network: Option<String>,
    /// Whether an iptables rule letting the bridge forward was added.
    pub(super) forward_rule: bool,
    pub(super) hosts: Vec<Host>,
    /// Links cut by `partition`: (host, the host it no longer reaches).
    pub(super) cuts: Vec<(usize, usize)>,
    /// Where this file lives.
    #[serde(skip)]
    pub(super) path: PathBuf,
}

impl State {
    pub(super) fn path(root: &Path) -> PathBuf {
        crate::build::target_dir(root).join("testnet/state.json")
    }

    /// The testnet that is up, or `None`.
    pub(super) fn load(root: &Path) -> anyhow::Result<Option<State>> {
        let path = State::path(root);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let mut state: State = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a testnet's state", path.display()))?;
        state.path = path;
        Ok(Some(state))
    }

    pub(super) fn save(&self) -> anyhow::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(&self.path, text)
            .with_context(|| format!("cannot write {}", self.path.display()))
    }

    pub(super) fn host(&self, index: usize) -> anyhow::Result<&Host> {
        self.hosts.get(index).with_context(|| {
            format!(
                "no host {index}: the testnet has hosts 0 to {}",
                self.hosts.len().saturating_sub(1)
            )
        })
    }

    /// The bridge's own address (the gateway), as `PREFIX.1/24`.
    fn gateway(&self) -> String {
        format!("{}.1", self.prefix)
    }

    /// Makes the bridge (netns) or the network (docker).
    pub(super) fn make_bridge(&mut self) -> anyhow::Result<()> {
        match self.engine {
            Engine::Netns => {
                let bridge = format!("{NAME}0");
                ip(&["link", "add", &bridge, "type", "bridge"])?;
                self.bridge = Some(bridge.clone());
                self.save()?;
                ip(&[
                    "addr",
                    "add",
                    &format!("{}/24", self.gateway()),
                    "dev",
                    &bridge,
                ])?;
                ip(&["link", "set", &bridge, "up"])?;
                // Where the kernel sends bridged frames through iptables
                // (br_netfilter, loaded by Docker, whose FORWARD policy
                // drops), let this bridge forward.
                let filtered =
                    std::fs::read_to_string("/proc/sys/net/bridge/bridge-nf-call-iptables")
                        .is_ok_and(|v| v.trim() == "1");
                if filtered && has("iptables") {
                    run(Command::new("iptables").args(forward_rule("-I", &bridge)))?;
                    self.forward_rule = true;
                    self.save()?;
                }
            }
            Engine::Docker => {
                let subnet = format!("{}.0/24", self.prefix);
                run(Command::new("docker").args([
                    "network",
                    "create",
                    "--driver",
                    "bridge",
                    "--subnet",
                    &subnet,
                    "--gateway",
                    &self.gateway(),
                    "--label",
                    "escrow-testnet=1",
                    NAME,
                ]))?;
                self.network = Some(NAME.to_string());
                self.save()?;
            }
        }
        Ok(())
    }

    /// Makes host `index`'s network and starts its node, as `args` (the
    /// node's options after `run`) say.
    pub(super) fn start(
        &mut self,
        index: usize,
        root_fs: &Path,
        args: &[String],
    ) -> anyhow::Result<()> {
        let engine = self.engine;
        let bridge = self.bridge.clone().unwrap_or_default();
        let host = self.hosts.get_mut(index).context("no such host")?;
        let started = match engine {
            Engine::Netns => start_netns(host, &bridge, root_fs, args),
            Engine::Docker => start_docker(host, args),
        };
        // What was made is written down even when a step failed.
        self.save()?;
        started
    }

    /// Removes everything this state says was made, each thing once;
    /// returns what could not be removed.
    pub(super) fn tear_down(&mut self) -> Vec<String> {
        let mut failed = Vec::new();
        // What is already gone (a reboot, someone's cleanup) counts as
        // removed: the record must not keep `down` failing for ever.
        let mut note = |what: String, r: anyhow::Result<()>| {
            if let Err(e) = r {
                let said = format!("{e:#}");
                let gone = [
                    "No such",
                    "not found",
                    "Cannot find",
                    "does not exist",
                    "Bad rule",
                ]
                .iter()
                .any(|m| said.contains(m));
                if !gone {
                    failed.push(format!("{what}: {said}"));
                }
            }
        };
        for host in &mut self.hosts {
            if let Some(pid) = host.pid.take() {
                note(
                    format!("stopping node {} (pid {pid})", host.index),
                    stop_pid(pid, host),
                );
            }
            if let Some(c) = host.container.take() {
                note(
                    format!("removing container {c}"),
                    run(Command::new("docker").args(["rm", "-f", &c])),
                );
            }
            if std::mem::take(&mut host.made_ns) {
                note(
                    format!("deleting namespace {}", host.ns),
                    ip(&["netns", "delete", &host.ns]),
                );
            }
            if let Some(veth) = host.veth.take() {
                // Deleting the namespace deletes the pair's other end, and
                // with it this one, but the kernel may finish that a moment
                // later: a link gone by the time `ip` looks is deleted.
                if link_exists(&veth) {
                    let deleted = ip(&["link", "delete", &veth]);
                    let gone =
                        deleted.or_else(|e| if link_exists(&veth) { Err(e) } else { Ok(()) });
                    note(format!("deleting link {veth}"), gone);
                }
            }
        }
        if std::mem::take(&mut self.forward_rule)
            && let Some(bridge) = &self.bridge
        {
            note(
                "removing the iptables rule".into(),
                run(Command::new("iptables").args(forward_rule("-D", bridge))),
            );
        }
        if let Some(bridge) = self.bridge.take() {
            note(
                format!("deleting bridge {bridge}"),
                ip(&["link", "delete", &bridge]),
            );
        }
        if let Some(network) = self.network.take() {
            note(
                format!("removing network {network}"),
                run(Command::new("docker").args(["network", "rm", &network])),
            );
        }
        for host in &self.hosts {
            if host.dir.exists()
                && let Err(e) = std::fs::remove_dir_all(&host.dir)
            {
                failed.push(format!("removing {}: {e}", host.dir.display()));
            }
        }
        failed
    }
}

fn forward_rule<'a>(op: &'a str, bridge: &'a str) -> [&'a str; 8] {
    [op, "FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT"]
}

/// Host `host`'s namespace on the bridge, then its node in it.
fn start_netns(
    host: &mut Host,
    bridge: &str,
    root_fs: &Path,
    args: &[String],
) -> anyhow::Result<()> {
    ip(&["netns", "add", &host.ns])?;
    host.made_ns = true;
    let veth = format!("{NAME}-v{}", host.index);
    ip(&[
        "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &host.ns,
    ])?;
    host.veth = Some(veth.clone());
    ip(&["link", "set", &veth, "master", bridge, "up"])?;
    ip(&[
        "-n",
        &host.ns,
        "addr",
        "add",
        &format!("{}/24", host.ip),
        "dev",
        "eth0",
    ])?;
    ip(&["-n", &host.ns, "link", "set", "eth0", "up"])?;
    ip(&["-n", &host.ns, "link", "set", "lo", "up"])?;

    // The host's own copy of the image's root filesystem: the files
    // linked, not copied, and a fresh /data of the node's user.
    run(Command::new("cp").arg("-al").arg(root_fs).arg(&host.dir))?;
    let data = host.dir.join("data");
    std::fs::create_dir_all(&data)?;
    image::own(&data)?;
    let log_path = host.dir.join("node.log");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;
    let mut cmd = Command::new("ip");
    cmd.args([
        "netns",
        "exec",
        &host.ns,
        "chroot",
        &format!("--userspec={UID}:{UID}"),
    ])
    .arg(&host.dir)
    .arg("/usr/local/bin/p2p-node")
    .arg("run")
    .args(args)
    .stdin(Stdio::null())
    .stdout(log.try_clone()?)
    .stderr(log);
    // Its own process group: a Ctrl-C of this command does not stop it.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let child = cmd.spawn().context("cannot run ip netns exec")?;
    host.pid = Some(child.id());
    Ok(())
}

/// Host `host`'s container, and a name for its network namespace.
fn start_docker(host: &mut Host, args: &[String]) -> anyhow::Result<()> {
    std::fs::create_dir_all(&host.data_dir)?;
    image::own(&host.data_dir)?;
    let name = host.ns.clone();
    let volume = format!("{}:/data", host.data_dir.display());
    // Recorded before it runs: a container created that then failed to
    // start is still removed by `down`. Unless the name was someone
    // else's already: that one is left alone.
    host.container = Some(name.clone());
    let ran = run(Command::new("docker")
        .args([
            "run",
            "-d",
            "--name",
            &name,
            "--hostname",
            &name,
            "--network",
            NAME,
            "--ip",
            &host.ip,
        ])
        .args([
            "--label",
            "escrow-testnet=1",
            "-v",
            &volume,
            &image::tag(),
            "run",
        ])
        .args(args));
    if let Err(e) = ran {
        if format!("{e:#}").contains("already in use") {
            host.container = None;
        }
        return Err(e);
    }
    let pid = output(Command::new("docker").args(["inspect", "-f", "{{.State.Pid}}", &name]))?;
    ip(&["netns", "attach", &host.ns, pid.trim()])?;
    host.made_ns = true;
    Ok(())
}

/// Whether host `host`'s node still runs.
pub(super) fn running(host: &Host) -> bool {
    if let Some(c) = &host.container {
        return output(Command::new("docker").args(["inspect", "-f", "{{.State.Running}}", c]))
            .is_ok_and(|o| o.trim() == "true");
    }
    host.pid.is_some_and(is_node)
}

/// The end of host `host`'s node's log.
pub(super) fn log_tail(host: &Host, lines: usize) -> String {
    if let Some(c) = &host.container {
        return Command::new("docker")
            .args(["logs", "--tail", &lines.to_string(), c])
            .output()
            .map(|o| {
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                )
            })
            .unwrap_or_else(|e| format!("(docker logs: {e})"));
    }
    super::super::net::tail(&host.dir.join("node.log"), lines)
}

/// Whether `pid` is a live node, or the commands that become it (`ip
/// netns exec` execs `chroot`, which execs the node): not a zombie, not a
/// reused id. Read from `/proc/PID/stat`'s name and state: the command
/// line reads empty while a process is in the middle of an exec, which
/// once made a node that was starting look gone.
fn is_node(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `PID (NAME) STATE ...`; the name may hold spaces and parentheses.
    let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
        return false;
    };
    let name = &stat[open + 1..close];
    let state = stat[close + 1..].split_whitespace().next().unwrap_or("Z");
    state != "Z" && state != "X" && ["p2p-node", "ip", "chroot"].contains(&name)
}

/// Whether process `pid` is host `host`'s: its root directory is the
/// host's copy of the image (the node runs chrooted there), or it runs in
/// the host's named network namespace (while `ip netns exec` and `chroot`
/// start it). Either survives the other being removed by hand.
fn ours(pid: u32, host: &Host) -> bool {
    let root = std::fs::read_link(format!("/proc/{pid}/root")).ok();
    let dir = std::fs::canonicalize(&host.dir).ok();
    if root.is_some() && root == dir {
        return true;
    }
    output(Command::new("ip").args(["netns", "identify", &pid.to_string()]))
        .is_ok_and(|o| o.split_whitespace().any(|n| n == host.ns))
}

/// SIGTERM, up to 10 s for a clean stop, then SIGKILL (`pid` of `host`).
fn stop_pid(pid: u32, host: &Host) -> anyhow::Result<()> {
    // Not a node any more, or another host's: a pid of a record that
    // outlived its process (a reboot) and was reused. Not ours.
    if !is_node(pid) || !ours(pid, host) {
        return Ok(());
    }
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if !is_node(pid) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    run(Command::new("kill").args(["-KILL", &pid.to_string()]))
}

/// Whether a command is on the `PATH`.
pub(super) fn has(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `ip ARGS`.
pub(super) fn ip(args: &[&str]) -> anyhow::Result<()> {
    run(Command::new("ip").args(args))
}

/// Runs a command; its stderr is the error when it fails.
pub(super) fn run(cmd: &mut Command) -> anyhow::Result<()> {
    output(cmd).map(drop)
}

/// Runs a command and returns its stdout; its stderr is the error when it
/// fails.
pub(super) fn output(cmd: &mut Command) -> anyhow::Result<String> {
    let shown = format!("{cmd:?}").replace('"', "");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {shown}"))?;
    if !out.status.success() {
        bail!(
            "{shown} {}: {}",
            crate::build::describe_exit(out.status),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

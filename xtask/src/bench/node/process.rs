//! A `p2p-node` process started for a benchmark, and the HTTP calls the
//! benchmarks make: JSON read into the few fields used here (the API's
//! answers as documented in `docs/API.md`), no type of the node's crate.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::http::Client;

/// The file in a node's data directory that holds its API token.
const COOKIE_FILE: &str = "api.cookie";

/// The fields of `GET /status` the benchmarks read.
#[derive(Debug)]
pub(super) struct Status {
    pub(super) height: u64,
    /// The tip's hash, compared only for equality between nodes.
    pub(super) tip: Value,
    pub(super) peers: u64,
    pub(super) mempool: u64,
}

impl Status {
    fn from_json(answer: &Value) -> anyhow::Result<Status> {
        let number = |field: &str| {
            answer[field]
                .as_u64()
                .with_context(|| format!("GET /status: no {field} in {answer}"))
        };
        Ok(Status {
            height: number("height")?,
            tip: answer["tip"].clone(),
            peers: number("peers")?,
            mempool: number("mempool")?,
        })
    }
}

/// The client of every benchmark request but the load (`loadgen`'s):
/// `POST /mine` of a thousand blocks takes a while.
pub(super) fn http() -> Client {
    Client::new(Duration::from_secs(600))
}

/// How a node is started.
pub(super) struct Spawn<'a> {
    pub(super) data_dir: &'a Path,
    /// Where its standard error goes (in the temporary directory, also
    /// when the data directory is the user's `--chain-dir`).
    pub(super) log: PathBuf,
    pub(super) mine: &'a str,
    pub(super) genesis: Option<&'a Path>,
    pub(super) peers: &'a [SocketAddr],
    /// `--miner-threads`.
    pub(super) miner_threads: usize,
    /// `--block-interval` in milliseconds (not passed when 0, so that an
    /// older binary given by `XTASK_NODE_BINARY` still starts).
    pub(super) block_interval_ms: u64,
}

/// A running node process; stopped when dropped.
pub(super) struct NodeProc {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub(super) api: String,
    pub(super) p2p: SocketAddr,
    token: String,
    /// Where its standard error goes.
    pub(super) log: PathBuf,
}

impl NodeProc {
    /// Starts a node and waits until it has printed its API address.
    pub(super) fn start(binary: &Path, s: &Spawn) -> anyhow::Result<NodeProc> {
        let log = s.log.clone();
        let stderr = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let mut cmd = Command::new(binary);
        cmd.args(["--listen", "127.0.0.1:0", "--api", "127.0.0.1:0"])
            .args(["--mine", s.mine, "--log", "warn"])
            .args(["--miner-threads", &s.miner_threads.to_string()])
            .arg("--data-dir")
            .arg(s.data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        if let Some(g) = s.genesis {
            cmd.arg("--genesis").arg(g);
        }
        if s.block_interval_ms > 0 {
            cmd.args(["--block-interval", &s.block_interval_ms.to_string()]);
        }
        for p in s.peers {
            cmd.args(["--peer", &p.to_string()]);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        // From here on the child is killed on every exit path.
        let stdout = child.stdout.take();
        let mut node = NodeProc {
            child,
            api: String::new(),
            p2p: SocketAddr::from(([127, 0, 0, 1], 0)),
            token: String::new(),
            log,
        };
        let stdout = stdout.context("the node's stdout is not piped")?;
        let (send, recv) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    // Nobody listens any more: keep draining the pipe.
                    continue;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(300);
        let mut p2p = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match recv.recv_timeout(left) {
                Ok(line) => line,
                Err(e) => {
                    let status = node.child.try_wait().ok().flatten();
                    bail!(
                        "the node on {} did not report its API address ({e}; exit status {status:?}); its log: {}",
                        s.data_dir.display(),
                        node.log_tail()
                    );
                }
            };
            if let Some(addr) = line.strip_prefix("p2p listening on ") {
                p2p = Some(
                    addr.trim()
                        .parse()
                        .with_context(|| format!("bad P2P address in `{line}`"))?,
                );
            } else if let Some(api) = line.strip_prefix("api listening on ") {
                node.api = api.trim().to_string();
                break;
            }
        }
        node.p2p = p2p.context("the node printed its API address but not its P2P address")?;
        let cookie = s.data_dir.join(COOKIE_FILE);
        node.token = std::fs::read_to_string(&cookie)
            .with_context(|| format!("cannot read the token {}", cookie.display()))?
            .trim()
            .to_string();
        Ok(node)
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(5)..].join(" | ")
    }

    pub(super) fn status(&self, http: &Client) -> anyhow::Result<Status> {
        Status::from_json(&get(http, &format!("{}/status", self.api))?)
    }

    /// `POST /mine` of `blocks` (at most [`MINE_MAX`]).
    pub(super) fn mine(&self, http: &Client, blocks: u64) -> anyhow::Result<()> {
        let url = format!("{}/mine", self.api);
        let resp = http.post(
            &url,
            Some(&self.token),
            &serde_json::json!({ "blocks": blocks }),
        )?;
        if !resp.is_success() {
            bail!("POST {url}: {} {}", resp.status, resp.body);
        }
        let mined = resp
            .json()
            .ok()
            .and_then(|a| a["blocks"].as_array().map(Vec::len))
            .with_context(|| format!("POST {url}: {}", resp.body))?;
        if mined as u64 != blocks {
            bail!("POST {url} mined {mined} blocks of {blocks}");
        }
        Ok(())
    }

    /// Resident memory in bytes.
    pub(super) fn rss(&self) -> anyhow::Result<u64> {
        let path = format!("/proc/{}/status", self.child.id());
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        let kb: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("no VmRSS in {path}"))?;
        Ok(kb * 1024)
    }

    /// Processor time used so far (user and system, every thread), in
    /// seconds: fields 14 and 15 of `/proc/PID/stat`, in clock ticks of
    /// 1/100 s (Linux's `USER_HZ` on every common architecture).
    pub(super) fn cpu_seconds(&self) -> anyhow::Result<f64> {
        let path = format!("/proc/{}/stat", self.child.id());
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        // The command name, field 2, is in parentheses and may hold spaces.
        let after = text
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .with_context(|| format!("no command name in {path}"))?;
        let fields: Vec<&str> = after.split_whitespace().collect();
        // `after` starts at field 3 (the state): fields 14 and 15 are at 11, 12.
        let ticks = |i: usize| -> anyhow::Result<f64> {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .with_context(|| format!("no field {} in {path}", i + 3))
        };
        Ok((ticks(11)? + ticks(12)?) / 100.0)
    }

    /// SIGTERM, up to 30 s to shut down cleanly, then SIGKILL.
    pub(super) fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

/// `GET url`, its JSON answer; an error status is an error.
pub(super) fn get(http: &Client, url: &str) -> anyhow::Result<Value> {
    let resp = http.get(url)?;
    if !resp.is_success() {
        bail!("GET {url}: {} {}", resp.status, resp.body);
    }
    serde_json::from_str(&resp.body)
        .with_context(|| format!("GET {url}: unexpected answer {}", resp.body))
}

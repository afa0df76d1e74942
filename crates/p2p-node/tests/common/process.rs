//! Running the `p2p-node` binary as a child process, for tests of the
//! command line, restarts and crashes.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a test waits for what must happen (a start, a log line,
/// mining) before it calls it a hang: far beyond what any of them takes on
/// a busy machine, so no test depends on the machine's speed.
pub const HANG_GUARD: Duration = Duration::from_secs(120);

/// Polls `check` until it holds; `false` if it still does not after
/// [`HANG_GUARD`]. A child process's state is read through its API or its
/// output, which announce nothing: this is the processes' twin of
/// `common::wait_for`, and the one place their tests poll.
pub fn poll_until(mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Polls `check` until it holds (see [`poll_until`]); panics after
/// [`HANG_GUARD`], naming `what` it waited for.
pub fn wait_until(what: &str, check: impl FnMut() -> bool) {
    assert!(poll_until(check), "timed out waiting for {what}");
}

/// Waits for `child` to exit and returns its status; kills it if it is
/// still running after [`HANG_GUARD`] (a hang), and returns that status.
/// Blocks on the exit itself: a watchdog thread does the killing.
pub fn wait_or_kill(child: &mut Child) -> std::process::ExitStatus {
    let pid = child.id();
    let (exited, watch) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = watch.recv_timeout(HANG_GUARD) {
            unsafe_kill(pid, libc::SIGKILL);
        }
    });
    let status = child.wait().unwrap();
    drop(exited);
    let _ = watchdog.join();
    status
}

/// A command's JSON answer: its stdout when it succeeded, else its JSON
/// error on stderr (`--json`).
pub fn json_of(out: &Output) -> serde_json::Value {
    let text = if out.status.success() {
        &out.stdout
    } else {
        &out.stderr
    };
    serde_json::from_slice(text)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(text)))
}

/// The binary under test.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_p2p-node"))
}

/// A node process; killed when dropped.
pub struct NodeProcess {
    pub child: Child,
    pub p2p: SocketAddr,
    pub api: String,
    pub data_dir: PathBuf,
    pub height_at_start: u64,
    /// The lines the node printed on stdout up to `best tip ...`.
    pub startup: Vec<String>,
    /// Everything the node wrote to stderr so far.
    pub stderr: Arc<Mutex<String>>,
}

impl NodeProcess {
    /// Starts `p2p-node` on `data_dir` with OS-chosen ports and waits until
    /// it prints where it listens.
    pub fn start(data_dir: &Path, extra: &[&str]) -> NodeProcess {
        let mut child = Command::new(binary())
            .args([
                "--listen",
                "127.0.0.1:0",
                "--api",
                "127.0.0.1:0",
                "--log",
                "warn",
            ])
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let (mut p2p, mut api, mut height) = (None, None, None);
        let mut startup = Vec::new();
        // Hang guards, not speed limits: generous for a busy machine.
        let deadline = Instant::now() + HANG_GUARD;
        while p2p.is_none() || api.is_none() || height.is_none() {
            assert!(Instant::now() < deadline, "the node did not start");
            let Some(Ok(line)) = lines.next() else {
                panic!("the node exited before it started: {:?}", child.wait());
            };
            startup.push(line.clone());
            if let Some(a) = line.strip_prefix("p2p listening on ") {
                p2p = Some(a.parse().unwrap());
            } else if let Some(a) = line.strip_prefix("api listening on ") {
                api = Some(a.to_string());
            } else if let Some(rest) = line.strip_prefix("best tip ") {
                height = rest.rsplit(' ').next().and_then(|h| h.parse().ok());
            }
        }
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        NodeProcess {
            child,
            p2p: p2p.unwrap(),
            api: api.unwrap(),
            data_dir: data_dir.to_path_buf(),
            height_at_start: height.unwrap(),
            startup,
            stderr,
        }
    }

    /// Whether the node wrote `needle` to stderr (waiting a little for the
    /// reader thread, which runs behind the process).
    pub fn said(&self, needle: &str) -> bool {
        poll_until(|| self.stderr.lock().unwrap().contains(needle))
    }

    /// Runs a client subcommand against this node.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(binary())
            .args(args)
            .args(["--node", &self.api])
            .env("P2P_NODE_DATA_DIR", &self.data_dir)
            .output()
            .unwrap()
    }

    /// Runs a client subcommand that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The node's `/status` as JSON.
    pub fn status(&self) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["status", "--json"])).unwrap()
    }

    /// Waits until the mempool is empty (everything mined).
    pub fn wait_mined(&self) {
        wait_until("the transactions to be mined", || {
            self.status()["mempool"] == 0
        });
    }

    /// Stops the node with SIGTERM and waits for it.
    pub fn stop(mut self) {
        unsafe_kill(self.child.id(), libc::SIGTERM);
        let _ = self.child.wait();
    }

    /// Kills the node with SIGKILL, as a crash would.
    pub fn crash(mut self) {
        unsafe_kill(self.child.id(), libc::SIGKILL);
        let _ = self.child.wait();
    }
}

fn unsafe_kill(pid: u32, signal: i32) {
    // SAFETY: kill(2) on our own child's pid; no memory is touched.
    unsafe {
        libc::kill(pid as i32, signal);
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

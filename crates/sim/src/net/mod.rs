//! The simulated network: hosts, links with latency and bandwidth, and the
//! faults the swarm injects (partitions, held links, latency spikes,
//! crashes).
//!
//! Every node gets a [`SimTransport`] for its host. A connection is two
//! one-way pipes; bytes written into a pipe are stamped with the time they
//! finish leaving the sender (its upload bandwidth is shared by all its
//! connections) plus the link's latency, and the reader sees them at that
//! time, in order, as TCP would deliver them. Time is tokio's paused clock,
//! so nothing here sleeps for real.
//!
//! Faults:
//! - a **blocked** direction (a partition, two-way or one-way) holds every
//!   byte written across it and refuses new connections across it (they
//!   time out); when it heals, the held bytes are delivered, as TCP's
//!   retransmissions would, if the connection is still open by then;
//! - a **held** direction holds bytes the same way but lets connections
//!   open (turmoil's hold and release);
//! - a **spike** multiplies a host's latencies;
//! - a **crash** takes a host down: its connections are reset (peers read
//!   end of stream after one latency, as after a killed process's RST),
//!   its listener is gone, and dialling it is refused until it restarts.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use p2p_node::transport::{BoxStream, Listener, Transport};
use tokio::sync::mpsc;
use tokio::time::Instant;

mod pipe;
mod state;
mod stream;

use pipe::Pipe;
use state::{Host, NetState, lock};
pub use state::{HostSpec, HostStats, Latency, SIM_PORT, host_addr};

use crate::cpu::SimCpu;
use crate::rng::SimRng;
pub use stream::SimStream;

/// How long a dial across a blocked link waits before it fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The simulated network shared by every node of a run.
#[derive(Clone)]
pub struct SimNet {
    state: Arc<Mutex<NetState>>,
}

impl SimNet {
    /// A network of `hosts`, link latencies drawn by `latency` from a
    /// generator seeded with `seed`.
    pub fn new(seed: u64, latency: Latency, hosts: &[HostSpec]) -> SimNet {
        let now = Instant::now();
        SimNet {
            state: Arc::new(Mutex::new(NetState {
                rng: SimRng::new(seed),
                latency,
                hosts: hosts
                    .iter()
                    .map(|&spec| Host {
                        spec,
                        up: true,
                        uplink_free: now,
                        bytes_sent: 0,
                        next_port: 40_000,
                        spikes: Vec::new(),
                        cpu: None,
                    })
                    .collect(),
                links: BTreeMap::new(),
                listeners: BTreeMap::new(),
                blocked: BTreeMap::new(),
                held: BTreeMap::new(),
                pipes: BTreeMap::new(),
                any_port: std::collections::BTreeSet::new(),
            })),
        }
    }

    /// The transport of host `index`.
    pub fn transport(&self, index: usize) -> SimTransport {
        SimTransport {
            net: self.clone(),
            host: index,
        }
    }

    /// The one-way latency between two hosts (without spikes' changes
    /// after this call).
    pub fn link_latency(&self, a: usize, b: usize) -> Duration {
        lock(&self.state).latency(a, b)
    }

    /// Sets the one-way latency of every link between `host` and the
    /// `others` (instead of drawing it): a well-connected miner's links.
    pub fn fix_links(&self, host: usize, others: impl Iterator<Item = usize>, latency: Duration) {
        let mut state = lock(&self.state);
        for other in others.filter(|o| *o != host) {
            state
                .links
                .insert((host.min(other), host.max(other)), latency);
        }
    }

    /// Host `host`'s listener takes connections on every port of its IP
    /// address: each port is an address of an attacker's.
    pub fn listen_on_every_port(&self, host: usize) {
        lock(&self.state).any_port.insert(host);
    }

    /// Traffic counters, per host.
    pub fn stats(&self) -> Vec<HostStats> {
        lock(&self.state)
            .hosts
            .iter()
            .map(|h| HostStats {
                bytes_sent: h.bytes_sent,
            })
            .collect()
    }

    /// Blocks the direction `from` → `to` (a one-way partition).
    pub fn block(&self, from: usize, to: usize) {
        *lock(&self.state).blocked.entry((from, to)).or_insert(0) += 1;
    }

    /// Ends one [`SimNet::block`] of the direction; once no partition
    /// cuts it, what it held is delivered.
    pub fn unblock(&self, from: usize, to: usize) {
        let mut s = lock(&self.state);
        if let Some(n) = s.blocked.get_mut(&(from, to)) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                s.blocked.remove(&(from, to));
            }
        }
        s.release(from, to);
    }

    /// Holds the direction `from` → `to`: bytes wait until
    /// [`SimNet::release`].
    pub fn hold(&self, from: usize, to: usize) {
        *lock(&self.state).held.entry((from, to)).or_insert(0) += 1;
    }

    /// Ends one hold of the direction; once none holds it, what it held
    /// is delivered.
    pub fn release(&self, from: usize, to: usize) {
        let mut s = lock(&self.state);
        if let Some(n) = s.held.get_mut(&(from, to)) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                s.held.remove(&(from, to));
            }
        }
        s.release(from, to);
    }

    /// Starts a latency spike on host `index`: its latencies are
    /// multiplied by the largest factor of its spikes in progress.
    pub fn spike(&self, index: usize, factor: f64) {
        if let Some(h) = lock(&self.state).hosts.get_mut(index) {
            h.spikes.push(factor.max(1.0));
        }
    }

    /// Ends one spike of `factor` on host `index`.
    pub fn end_spike(&self, index: usize, factor: f64) {
        if let Some(h) = lock(&self.state).hosts.get_mut(index) {
            let factor = factor.max(1.0);
            if let Some(at) = h.spikes.iter().position(|f| *f == factor) {
                h.spikes.remove(at);
            }
        }
    }

    /// Holds every direction to and from host `index`, as a node whose
    /// core is stalled (waiting for a slow commit) neither sends nor reads:
    /// bytes wait until [`SimNet::unstall`]. Connections still open.
    pub fn stall(&self, index: usize) {
        let mut s = lock(&self.state);
        for other in (0..s.hosts.len()).filter(|o| *o != index) {
            for key in [(index, other), (other, index)] {
                *s.held.entry(key).or_insert(0) += 1;
            }
        }
    }

    /// Ends one [`SimNet::stall`] of host `index`: once nothing else holds
    /// a direction, what it held is delivered.
    pub fn unstall(&self, index: usize) {
        let others = lock(&self.state).hosts.len();
        for other in (0..others).filter(|o| *o != index) {
            self.release(index, other);
            self.release(other, index);
        }
    }

    /// Lifts every partition, hold and spike.
    pub fn heal_all(&self) {
        let mut s = lock(&self.state);
        let stalled: Vec<_> = s.blocked.keys().chain(s.held.keys()).copied().collect();
        s.blocked.clear();
        s.held.clear();
        for h in &mut s.hosts {
            h.spikes.clear();
        }
        for (from, to) in stalled {
            s.release(from, to);
        }
    }

    /// Host `index` runs on `cpu`: what it writes is encoded and what it
    /// reads decoded on it (set before the host connects anywhere).
    pub fn set_cpu(&self, index: usize, cpu: Arc<SimCpu>) {
        if let Some(h) = lock(&self.state).hosts.get_mut(index) {
            h.cpu = Some(cpu);
        }
    }

    /// Whether host `index` is up.
    pub fn is_up(&self, index: usize) -> bool {
        lock(&self.state).hosts.get(index).is_some_and(|h| h.up)
    }

    /// Takes host `index` down: see the module docs.
    pub fn crash(&self, index: usize) {
        let mut s = lock(&self.state);
        let now = Instant::now();
        if let Some(h) = s.hosts.get_mut(index) {
            h.up = false;
            // What was queued on its uplink and processor is lost with it.
            h.uplink_free = now;
            if let Some(cpu) = &h.cpu {
                cpu.reset(now);
            }
        }
        s.listeners.remove(&index);
        let keys: Vec<_> = s
            .pipes
            .keys()
            .filter(|(a, b)| *a == index || *b == index)
            .copied()
            .collect();
        for (from, to) in keys {
            let latency = s.latency(from, to);
            for pipe in s.live_pipes((from, to)) {
                let mut p = lock(&pipe);
                if from == index {
                    // What had not left the machine is lost; the peer reads
                    // the rest, then the reset.
                    p.writer_dead = true;
                    p.chunks.retain(|c| c.departs <= now);
                    p.unread = p.chunks.iter().map(|c| c.bytes.len() - c.read).sum();
                    let eof = (now + latency).max(p.last_arrival);
                    p.eof_at = Some(p.eof_at.map_or(eof, |e| e.min(eof)));
                    p.wake_reader();
                    p.wake_writer();
                } else {
                    p.reader_dead = true;
                    p.reset_at = Some(now + latency);
                    p.chunks.clear();
                    p.unread = 0;
                    p.wake_reader();
                    p.wake_writer();
                }
            }
        }
    }

    /// Brings host `index` back up (its node is started again by the
    /// caller, on the same address).
    pub fn restart(&self, index: usize) {
        if let Some(h) = lock(&self.state).hosts.get_mut(index) {
            h.up = true;
        }
    }
}

/// A node's view of the simulated network: its host's listener and dials.
pub struct SimTransport {
    net: SimNet,
    host: usize,
}

struct SimListener {
    addr: SocketAddr,
    incoming: mpsc::UnboundedReceiver<(BoxStream, SocketAddr)>,
}

impl Listener for SimListener {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<(BoxStream, SocketAddr)>> {
        Box::pin(async move {
            self.incoming
                .recv()
                .await
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "the host crashed"))
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

impl Transport for SimTransport {
    fn bind(&self, addr: SocketAddr) -> BoxFuture<'_, io::Result<Box<dyn Listener>>> {
        Box::pin(async move {
            let mine = host_addr(self.host);
            if addr.ip() != mine.ip() && !addr.ip().is_unspecified() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrNotAvailable,
                    format!("host {} is {}", self.host, mine.ip()),
                ));
            }
            let (tx, rx) = mpsc::unbounded_channel();
            let mut s = lock(&self.net.state);
            if s.listeners.contains_key(&self.host) {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    "already listening",
                ));
            }
            s.listeners.insert(self.host, tx);
            Ok(Box::new(SimListener {
                addr: mine,
                incoming: rx,
            }) as Box<dyn Listener>)
        })
    }

    fn connect(&self, addr: SocketAddr) -> BoxFuture<'_, io::Result<BoxStream>> {
        Box::pin(async move {
            let from = self.host;
            let (to, rtt, blocked) = {
                let mut s = lock(&self.net.state);
                let Some(to) = s.host_of(addr.ip()) else {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionRefused,
                        "no such host",
                    ));
                };
                let blocked =
                    s.blocked.contains_key(&(from, to)) || s.blocked.contains_key(&(to, from));
                let rtt = s.latency(from, to) * 2;
                (to, rtt, blocked)
            };
            if blocked {
                tokio::time::sleep(CONNECT_TIMEOUT).await;
                return Err(io::Error::new(io::ErrorKind::TimedOut, "partitioned"));
            }
            tokio::time::sleep(rtt).await;
            let mut s = lock(&self.net.state);
            let up = |s: &NetState, h: usize| s.hosts.get(h).is_some_and(|h| h.up);
            if !up(&s, from) {
                return Err(io::Error::new(io::ErrorKind::NotConnected, "host down"));
            }
            if !up(&s, to) || (addr.port() != SIM_PORT && !s.any_port.contains(&to)) {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    "connection refused",
                ));
            }
            let Some(listener) = s.listeners.get(&to).cloned() else {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    "connection refused",
                ));
            };
            let port = s.hosts.get_mut(from).map_or(40_000, |h| {
                h.next_port = h.next_port.checked_add(1).unwrap_or(40_000);
                h.next_port
            });
            let local = SocketAddr::new(host_addr(from).ip(), port);
            let now = Instant::now();
            let cpu_of = |h: usize| s.hosts.get(h).and_then(|h| h.cpu.clone());
            let new_pipe = |a, b| {
                Arc::new(Mutex::new(Pipe {
                    from: a,
                    to: b,
                    reader_cpu: cpu_of(b),
                    chunks: VecDeque::new(),
                    unread: 0,
                    last_arrival: now,
                    last_departure: now,
                    eof_at: None,
                    reset_at: None,
                    writer_dead: false,
                    reader_dead: false,
                    reader: None,
                    writer: None,
                }))
            };
            let up_pipe = new_pipe(from, to);
            let down_pipe = new_pipe(to, from);
            s.pipes
                .entry((from, to))
                .or_default()
                .push(Arc::downgrade(&up_pipe));
            s.pipes
                .entry((to, from))
                .or_default()
                .push(Arc::downgrade(&down_pipe));
            drop(s);
            let client = SimStream::new(self.net.state.clone(), down_pipe.clone(), up_pipe.clone());
            let server = SimStream::new(self.net.state.clone(), up_pipe, down_pipe);
            if listener.send((Box::new(server), local)).is_err() {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    "connection refused",
                ));
            }
            Ok(Box::new(client) as BoxStream)
        })
    }
}

#[cfg(test)]
mod tests;

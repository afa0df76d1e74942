//! The simulated network's state: hosts, the latency model, links, and
//! what the faults stall; the transport (`mod.rs`) and the streams
//! (`stream.rs`) act on it under one lock.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use p2p_node::transport::BoxStream;

use super::pipe::{Pipe, PipeRef};
use crate::cpu::SimCpu;
use crate::rng::SimRng;

/// The port the simulator's nodes listen on.
pub const SIM_PORT: u16 = 8333;

/// Locks, ignoring poisoning (a panicking simulated task already failed
/// the run).
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Where a host is on the simulated internet: a region of the latency
/// model, and its upload bandwidth.
#[derive(Clone, Copy, Debug)]
pub struct HostSpec {
    /// Index into the latency model's regions (0 without regions).
    pub region: usize,
    /// Upload bandwidth in bits per second.
    pub upload_bps: u64,
}

/// How a link's one-way latency is chosen: once per pair of hosts, from
/// the run's seeded generator.
#[derive(Clone, Debug, PartialEq)]
pub enum Latency {
    /// Every link the same.
    Fixed(Duration),
    /// Uniform between two bounds.
    Uniform(Duration, Duration),
    /// A matrix of mean latencies between regions (milliseconds): a link's
    /// latency is its regions' entry times a factor drawn from a Pareto
    /// distribution of shape 5 with mean 1, drawn once per link (SimBlock
    /// draws a Pareto latency per message instead).
    Regions(Vec<Vec<u64>>),
}

impl Latency {
    fn draw(&self, a: HostSpec, b: HostSpec, rng: &mut SimRng) -> Duration {
        match self {
            Latency::Fixed(d) => *d,
            Latency::Uniform(lo, hi) => {
                let span = hi.saturating_sub(*lo).as_secs_f64();
                *lo + Duration::from_secs_f64(span * rng.unit())
            }
            Latency::Regions(m) => {
                let mean = m
                    .get(a.region)
                    .and_then(|row| row.get(b.region))
                    .copied()
                    .unwrap_or(100) as f64;
                // Pareto with shape k and scale x_m has mean k x_m / (k - 1).
                let shape = 5.0;
                let scale = mean * (shape - 1.0) / shape;
                let u = 1.0 - rng.unit(); // in (0, 1]
                Duration::from_secs_f64(scale / u.powf(1.0 / shape) / 1_000.0)
            }
        }
    }
}

pub(super) struct Host {
    pub(super) spec: HostSpec,
    pub(super) up: bool,
    /// When the host's uplink is free again.
    pub(super) uplink_free: Instant,
    pub(super) bytes_sent: u64,
    pub(super) next_port: u16,
    /// Latency multipliers of the spikes in progress (the largest
    /// applies).
    pub(super) spikes: Vec<f64>,
    /// The host's processor, if its work costs time: what it writes is
    /// encoded on it, what it reads decoded.
    pub(super) cpu: Option<Arc<SimCpu>>,
}

/// Traffic counters of one host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostStats {
    /// Bytes this host wrote into its connections.
    pub bytes_sent: u64,
}

pub(super) struct NetState {
    pub(super) rng: SimRng,
    pub(super) latency: Latency,
    pub(super) hosts: Vec<Host>,
    pub(super) links: BTreeMap<(usize, usize), Duration>,
    pub(super) listeners: BTreeMap<usize, mpsc::UnboundedSender<(BoxStream, SocketAddr)>>,
    /// Directions cut by partitions, with how many partitions cut each
    /// (they may overlap).
    pub(super) blocked: BTreeMap<(usize, usize), u32>,
    /// Directions held, with how many holds hold each.
    pub(super) held: BTreeMap<(usize, usize), u32>,
    /// Open pipes by (from, to), to release held bytes and to reset them
    /// on a crash.
    pub(super) pipes: BTreeMap<(usize, usize), Vec<Weak<Mutex<Pipe>>>>,
    /// Hosts whose listener takes connections on every port, not only
    /// [`SIM_PORT`] (an attacker's many addresses on one host).
    pub(super) any_port: std::collections::BTreeSet<usize>,
}

impl NetState {
    pub(super) fn latency(&mut self, a: usize, b: usize) -> Duration {
        let key = (a.min(b), a.max(b));
        let base = match self.links.get(&key) {
            Some(d) => *d,
            None => {
                let (sa, sb) = match (self.hosts.get(key.0), self.hosts.get(key.1)) {
                    (Some(x), Some(y)) => (x.spec, y.spec),
                    _ => return Duration::from_millis(100),
                };
                let d = self.latency.draw(sa, sb, &mut self.rng);
                self.links.insert(key, d);
                d
            }
        };
        let spike = [a, b]
            .iter()
            .filter_map(|h| self.hosts.get(*h))
            .flat_map(|h| h.spikes.iter().copied())
            .fold(1.0, f64::max);
        base.mul_f64(spike)
    }

    pub(super) fn stalled(&self, from: usize, to: usize) -> bool {
        self.blocked.contains_key(&(from, to)) || self.held.contains_key(&(from, to))
    }

    pub(super) fn host_of(&self, ip: IpAddr) -> Option<usize> {
        let index = host_index(ip)?;
        (index < self.hosts.len()).then_some(index)
    }

    pub(super) fn live_pipes(&mut self, key: (usize, usize)) -> Vec<PipeRef> {
        let Some(list) = self.pipes.get_mut(&key) else {
            return Vec::new();
        };
        list.retain(|w| w.strong_count() > 0);
        list.iter().filter_map(Weak::upgrade).collect()
    }

    /// Delivers what a stalled direction held, if it is no longer stalled.
    pub(super) fn release(&mut self, from: usize, to: usize) {
        if self.stalled(from, to) {
            return;
        }
        let now = Instant::now();
        let latency = self.latency(from, to);
        for pipe in self.live_pipes((from, to)) {
            let mut p = lock(&pipe);
            let mut last = p.last_arrival;
            for chunk in p.chunks.iter_mut().filter(|c| c.arrives.is_none()) {
                // A held chunk still arrives no earlier than it leaves.
                let at = (chunk.departs.max(now) + latency).max(last);
                chunk.arrives = Some(at);
                last = at;
            }
            p.last_arrival = last;
            p.wake_reader();
        }
    }
}

/// The address of host `index`: `10.x.y.z` from the index, port
/// [`SIM_PORT`].
pub fn host_addr(index: usize) -> SocketAddr {
    let i = u32::try_from(index).unwrap_or(u32::MAX) + 1;
    let [_, b, c, d] = i.to_be_bytes();
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, b, c, d)), SIM_PORT)
}

pub(super) fn host_index(ip: IpAddr) -> Option<usize> {
    let IpAddr::V4(v4) = ip else { return None };
    let [a, b, c, d] = v4.octets();
    if a != 10 {
        return None;
    }
    let i = u32::from_be_bytes([0, b, c, d]);
    usize::try_from(i.checked_sub(1)?).ok()
}

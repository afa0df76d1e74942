//! The peer table's address side: the address book, dial planning to
//! fill the outbound slots (one backoff rule for every failed attempt),
//! address requests and answers, and partitions.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::time::Instant;
use wire::Reason;

use super::{AddrEntry, MAX_ADDR_BOOK, MAX_FAILURES, MAX_PER_SOURCE, PeerTable, Reach};
use crate::core::view::{ConnId, Direction};

/// How long an outbound peer may go without sending a block new to us
/// before it makes room for a proved address ([`PeerTable::rotate_outbound`]).
const ROTATE_AFTER: Duration = Duration::from_secs(600);
/// At most one outbound peer makes room for a proved address this often.
const ROTATE_EVERY: Duration = Duration::from_secs(120);

/// How often, at most, a node short of outbound peers and of addresses to
/// dial asks a peer for more addresses.
const ADDR_REQUEST_EVERY: Duration = Duration::from_secs(5);

impl PeerTable {
    /// Connection `conn` is being dialled to `addr`.
    pub fn dialing(&mut self, conn: ConnId, addr: SocketAddr) {
        self.dialing.insert(conn, addr);
    }

    /// Dial `conn` failed before any connection: try again after the
    /// backoff. Returns whether to warn the operator: `addr` is one they
    /// named ([`PeerTable::watch`]) and this is its first failure, or its
    /// first since it was last reached; not every retry.
    pub fn dial_failed(&mut self, conn: ConnId, addr: SocketAddr, now: Instant) -> bool {
        self.dialing.remove(&conn);
        self.failed_attempt(addr, now);
        match self.watched.get_mut(&addr) {
            Some(reach) if *reach != Reach::Unreachable => {
                *reach = Reach::Unreachable;
                true
            }
            _ => false,
        }
    }

    /// Watches an address the operator named (`--peer`, `POST /peers`):
    /// its dial failures are worth a warning (see
    /// [`PeerTable::dial_failed`]).
    pub fn watch(&mut self, addr: SocketAddr) {
        self.watched.entry(addr).or_insert(Reach::Untried);
    }

    /// A connection to `addr` was admitted: if it is watched, its next
    /// failure is news again. Returns whether it was unreachable until now.
    pub(super) fn reached(&mut self, addr: SocketAddr) -> bool {
        match self.watched.get_mut(&addr) {
            Some(reach) => std::mem::replace(reach, Reach::Reached) == Reach::Unreachable,
            None => false,
        }
    }

    /// The one backoff rule: the address is free to dial again after its
    /// backoff, which doubles each time up to the configured maximum.
    pub(super) fn retry_later(&mut self, addr: SocketAddr, now: Instant) {
        if let Some(entry) = self.addrs.get_mut(&addr) {
            entry.busy = false;
            entry.next_attempt = now + entry.backoff;
            entry.backoff = (entry.backoff * 2).min(self.config.max_backoff);
        }
    }

    /// A dial to `addr` failed, or its connection ended before a
    /// handshake: retried after the backoff, and a told address that failed
    /// [`MAX_FAILURES`] times in a row is forgotten, so that a book full of
    /// addresses nobody answers at makes room for ones that work.
    pub(super) fn failed_attempt(&mut self, addr: SocketAddr, now: Instant) {
        self.retry_later(addr, now);
        if let Some(entry) = self.addrs.get_mut(&addr) {
            entry.failures = entry.failures.saturating_add(1);
            // Never one the operator named (`--peer`, `POST /peers`).
            if entry.failures >= MAX_FAILURES
                && entry.source.is_some()
                && !self.watched.contains_key(&addr)
            {
                self.forget_addr(&addr);
            }
        }
    }

    /// Adds an address the operator named to the book (not our own).
    pub fn learn_addr(&mut self, addr: SocketAddr, now: Instant) {
        self.learn_addr_from(addr, None, now);
    }

    /// Adds an address to the book, told by a peer at `source` (`None`: the
    /// operator): not our own, and at most [`MAX_PER_SOURCE`] from one
    /// host. A full book makes room by forgetting an address of the host
    /// that told it the most (one not being dialled), so that one source,
    /// however many addresses it sends, cannot fill the book and keep the
    /// others' out (`docs/PROTOCOL.md`, "Addresses").
    pub fn learn_addr_from(&mut self, addr: SocketAddr, source: Option<IpAddr>, now: Instant) {
        if Some(addr) == self.listen_addr || self.addrs.contains_key(&addr) {
            return;
        }
        let source = source.map(crate::penalty::host_of);
        if source.is_some_and(|src| self.told.get(&src).copied().unwrap_or(0) >= MAX_PER_SOURCE) {
            return;
        }
        if self.addrs.len() >= MAX_ADDR_BOOK && !self.forget_from_largest_source(source) {
            return;
        }
        if let Some(src) = source {
            *self.told.entry(src).or_default() += 1;
        }
        self.addrs.insert(
            addr,
            AddrEntry {
                next_attempt: now,
                backoff: self.config.min_backoff,
                busy: false,
                source,
                failures: 0,
                proved: false,
            },
        );
    }

    /// Adds the addresses peer `conn` sent to the book, as told by its host.
    pub fn learn_addrs_from(&mut self, conn: ConnId, addrs: &[SocketAddr], now: Instant) {
        let Some(source) = self.peers.get(&conn).map(|p| p.remote.ip()) else {
            return;
        };
        for addr in addrs {
            self.learn_addr_from(*addr, Some(source), now);
        }
    }

    /// Forgets one address (not busy, not named by the operator) of the
    /// source that told the book the most, if that source told more than
    /// `newcomer`'s would after its address; whether one was forgotten.
    fn forget_from_largest_source(&mut self, newcomer: Option<IpAddr>) -> bool {
        let counts = &self.told;
        let Some((largest, count)) = counts.iter().max_by_key(|(src, n)| (**n, **src)) else {
            return false;
        };
        let newcomer_count = newcomer.and_then(|n| counts.get(&n)).copied().unwrap_or(0);
        if *count <= newcomer_count + 1 {
            return false;
        }
        let largest = *largest;
        let victim = self
            .addrs
            .iter()
            .filter(|(_, e)| e.source == Some(largest) && !e.busy && !e.proved)
            .map(|(a, _)| *a)
            .next_back();
        victim.is_some_and(|a| self.forget_addr(&a))
    }

    /// Removes `addr` from the book, and from its source's count; whether
    /// it was there.
    pub(super) fn forget_addr(&mut self, addr: &SocketAddr) -> bool {
        let Some(entry) = self.addrs.remove(addr) else {
            return false;
        };
        if let Some(src) = entry.source
            && let Some(n) = self.told.get_mut(&src)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.told.remove(&src);
            }
        }
        true
    }

    /// Makes an address due now with the shortest backoff (an operator
    /// asked for it), learning it if new.
    pub fn retry_now(&mut self, addr: SocketAddr, now: Instant) {
        self.learn_addr(addr, now);
        if let Some(e) = self.addrs.get_mut(&addr) {
            e.next_attempt = now;
            e.backoff = self.config.min_backoff;
        }
    }

    /// The addresses the node is connected to: each connected peer's
    /// listening address, and a dialled one's remote address.
    fn connected_addrs(&self) -> BTreeSet<SocketAddr> {
        let mut all = BTreeSet::new();
        for p in self.peers.values().filter(|p| p.connected()) {
            all.extend(p.listen_addr);
            if p.direction == Direction::Outbound {
                all.insert(p.remote);
            }
        }
        all
    }

    /// The addresses to dial now, enough to fill the outbound slots
    /// (outbound peers and dials in flight count): due, not busy, not
    /// partitioned, not banned, not already connected; configured ones
    /// first, then proved ones (a peer there once sent a block new to us),
    /// then the rest, each group taking the sources in random order, one
    /// address of each in turn (so a source that told many addresses gets
    /// no more turns than one that told few), and never a second outbound
    /// connection to a host that has one (a host: an IPv4 address, an IPv6
    /// /64; not loopback addresses, which every node on one machine shares,
    /// nor addresses the operator named). They are marked busy until the
    /// connection ends or the dial fails.
    pub fn dial_plan(&mut self, now: Instant) -> Vec<SocketAddr> {
        // Every outbound slot taken (the usual case): nothing to scan.
        let connected_out = self.count(Direction::Outbound);
        if connected_out >= self.config.max_outbound {
            return Vec::new();
        }
        let connected = self.connected_addrs();
        let in_flight: Vec<SocketAddr> = self
            .addrs
            .iter()
            .filter(|(a, e)| e.busy && !connected.contains(a))
            .map(|(a, _)| *a)
            .collect();
        let outbound = connected_out + in_flight.len();
        let mut want = self.config.max_outbound.saturating_sub(outbound);
        if want == 0 {
            return Vec::new();
        }
        // The hosts the node has an outbound connection or a dial to.
        let mut hosts: BTreeSet<IpAddr> = self
            .peers
            .values()
            .filter(|p| p.connected() && p.direction == Direction::Outbound)
            .map(|p| p.remote)
            .chain(in_flight)
            .filter_map(outbound_host)
            .collect();
        let mut due: Vec<(SocketAddr, Option<IpAddr>, bool)> = self
            .addrs
            .iter()
            .filter(|(a, e)| {
                !e.busy
                    && e.next_attempt <= now
                    && !self.partitioned.contains(a)
                    && !self.bans.is_addr_banned(**a, now)
            })
            .map(|(a, e)| (*a, e.source, e.proved))
            .collect();
        shuffle(&mut self.rng, &mut due);
        let mut order: Vec<SocketAddr> = due
            .iter()
            .filter(|(a, _, _)| self.config.peers.contains(a))
            .map(|(a, _, _)| *a)
            .collect();
        for proved in [true, false] {
            let these: Vec<_> = due
                .iter()
                .filter(|(_, _, p)| *p == proved)
                .map(|(a, s, _)| (*a, *s))
                .collect();
            order.extend(source_turns(&these, &self.config.peers));
        }
        let mut plan = Vec::new();
        for addr in order {
            if want == 0 {
                break;
            }
            if connected.contains(&addr) {
                // Reached already (it dialled us): nothing to dial.
                if let Some(e) = self.addrs.get_mut(&addr) {
                    e.busy = true;
                }
                continue;
            }
            let named = self.config.peers.contains(&addr);
            if let Some(host) = outbound_host(addr) {
                if !named && hosts.contains(&host) {
                    continue;
                }
                hosts.insert(host);
            }
            if let Some(e) = self.addrs.get_mut(&addr) {
                e.busy = true;
            }
            plan.push(addr);
            want -= 1;
        }
        plan
    }

    /// When every outbound slot is taken and a proved address (a peer there
    /// once sent a block new to us) is due and not connected, the oldest
    /// outbound peer that has sent no new block in the [`ROTATE_AFTER`]
    /// since it connected (and that the operator did not name) is dropped
    /// to make room, at most one every [`ROTATE_EVERY`]: the slots an
    /// attacker won with told addresses go back, over time, to peers that
    /// relay blocks. Returns whether one was dropped.
    pub fn rotate_outbound(&mut self, now: Instant) -> bool {
        if self.count(Direction::Outbound) < self.config.max_outbound
            || self
                .last_rotation
                .is_some_and(|t| now.saturating_duration_since(t) < ROTATE_EVERY)
        {
            return false;
        }
        let connected = self.connected_addrs();
        let proved_due = self.addrs.iter().any(|(a, e)| {
            e.proved
                && !e.busy
                && e.next_attempt <= now
                && !connected.contains(a)
                && !self.partitioned.contains(a)
                && !self.bans.is_addr_banned(*a, now)
        });
        if !proved_due {
            return false;
        }
        let idle = self
            .peers
            .iter()
            .filter(|(_, p)| p.connected() && p.direction == Direction::Outbound)
            .filter(|(_, p)| p.last_block.is_none() && !self.config.peers.contains(&p.remote))
            .filter(|(_, p)| now.saturating_duration_since(p.connected_at) >= ROTATE_AFTER)
            .min_by_key(|(c, p)| (p.connected_at, **c))
            .map(|(c, _)| *c);
        let Some(conn) = idle else {
            return false;
        };
        self.last_rotation = Some(now);
        self.drop_peer(
            conn,
            Some((Reason::Other, "replaced by a peer that relays blocks")),
        );
        true
    }

    /// A live peer to ask for addresses, when outbound slots are free, no
    /// address is left to dial, and the last such request is a while ago.
    pub fn addr_request(&mut self, now: Instant) -> Option<ConnId> {
        if self.count(Direction::Outbound) >= self.config.max_outbound
            || self
                .last_addr_request
                .is_some_and(|t| now.saturating_duration_since(t) < ADDR_REQUEST_EVERY)
        {
            return None;
        }
        let dialable = self.addrs.iter().any(|(a, e)| {
            !e.busy && !self.partitioned.contains(a) && !self.bans.is_addr_banned(*a, now)
        });
        if dialable {
            return None;
        }
        let live = self.live_conns();
        let pick = live.get(random_index(&mut self.rng, live.len()))?;
        self.last_addr_request = Some(now);
        Some(*pick)
    }

    /// Cuts the node off from these listening addresses; returns how many
    /// connections were dropped.
    pub fn partition(&mut self, addrs: &[SocketAddr]) -> usize {
        self.partitioned.extend(addrs.iter().copied());
        let cut: Vec<ConnId> = self
            .peers
            .iter()
            .filter(|(_, p)| {
                p.listen_addr.is_some_and(|a| self.partitioned.contains(&a))
                    || (p.direction == Direction::Outbound && self.partitioned.contains(&p.remote))
            })
            .map(|(c, _)| *c)
            .collect();
        for conn in &cut {
            self.drop_peer(*conn, Some((Reason::Other, "partitioned by the operator")));
        }
        cut.len()
    }

    /// Lifts every partition: the cut addresses are due now.
    pub fn heal(&mut self, now: Instant) {
        let healed: Vec<SocketAddr> = std::mem::take(&mut self.partitioned).into_iter().collect();
        for addr in healed {
            self.retry_now(addr, now);
        }
    }

    /// Addresses for an `Addrs` answer to `conn`: the listening addresses
    /// of live peers other than `conn`, then others from the address book
    /// (not banned), in random order, at most `max`.
    pub fn addrs_for(&mut self, conn: ConnId, max: usize, now: Instant) -> Vec<SocketAddr> {
        let asker = self.peers.get(&conn).and_then(|p| p.listen_addr);
        let mut live: Vec<SocketAddr> = self
            .peers
            .iter()
            .filter(|(c, p)| **c != conn && p.live)
            .filter_map(|(_, p)| p.listen_addr)
            .collect();
        let mut book: Vec<SocketAddr> = self
            .addrs
            .keys()
            .filter(|a| !live.contains(a) && Some(**a) != asker)
            .filter(|a| !self.bans.is_addr_banned(**a, now))
            .copied()
            .collect();
        shuffle(&mut self.rng, &mut live);
        shuffle(&mut self.rng, &mut book);
        live.extend(book);
        live.truncate(max);
        live
    }
}

/// The host an outbound connection to `addr` counts against, for the rule
/// of one outbound connection per host; `None` for a loopback address.
fn outbound_host(addr: SocketAddr) -> Option<IpAddr> {
    let ip = addr.ip().to_canonical();
    (!ip.is_loopback()).then(|| crate::penalty::host_of(ip))
}

/// The addresses of `due` not in `named`, in turns: the first address of
/// each source (in the order the sources first appear), then the second of
/// each, and so on.
fn source_turns(due: &[(SocketAddr, Option<IpAddr>)], named: &[SocketAddr]) -> Vec<SocketAddr> {
    let mut place: BTreeMap<Option<IpAddr>, usize> = BTreeMap::new();
    let mut by_source: Vec<Vec<SocketAddr>> = Vec::new();
    for (addr, source) in due.iter().filter(|(a, _)| !named.contains(a)) {
        let i = *place.entry(*source).or_insert_with(|| {
            by_source.push(Vec::new());
            by_source.len() - 1
        });
        if let Some(list) = by_source.get_mut(i) {
            list.push(*addr);
        }
    }
    let longest = by_source.iter().map(Vec::len).max().unwrap_or(0);
    (0..longest)
        .flat_map(|turn| by_source.iter().filter_map(move |l| l.get(turn).copied()))
        .collect()
}

/// A random index below `len` (0 for an empty range).
fn random_index(rng: &mut ChaCha8Rng, len: usize) -> usize {
    if len == 0 {
        return 0;
    }
    (rng.next_u64() % len as u64) as usize
}

/// Shuffles `items` (Fisher-Yates).
fn shuffle<T>(rng: &mut ChaCha8Rng, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        items.swap(i, random_index(rng, i + 1));
    }
}

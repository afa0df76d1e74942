//! The peer table: who is connected, the address book, bans, dial planning,
//! penalties and partitions.
//!
//! [`PeerTable`] owns that state and nothing else. It takes events (a
//! handshake, a connection gone, an offence, a tick) and answers with
//! decisions as values (admitted or refused and why, banned or not, the
//! addresses to dial now), so the core only routes and acts, and the rules
//! are tested here without sockets. Messages go to a peer through its
//! connection task's bounded queue, which the table holds; a peer whose
//! queue is full is too slow and is dropped.

use rand_chacha::rand_core::SeedableRng;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chain_core::{BlockHash, TxId, Work};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, warn};
use wire::{Handshake, Message, NodeId, PROTOCOL_VERSION, Reason};

use crate::config::NodeConfig;
use crate::core::view::{ConnId, Direction, NodeChain, PeerInfo};
use crate::penalty::{BanKey, Bans, Score};
use known_set::KnownSet;

/// Most addresses kept in the address book.
const MAX_ADDR_BOOK: usize = 1_000;
/// Most addresses in the book told by one host (`addrs.rs`).
const MAX_PER_SOURCE: usize = 64;
/// Failed attempts in a row after which a told address is forgotten.
const MAX_FAILURES: u32 = 8;
/// Most hashes remembered per peer as known to it.
const MAX_KNOWN: usize = 20_000;

/// A connection the table knows.
struct Peer {
    /// The socket address of the connection.
    remote: SocketAddr,
    /// Who dialled.
    direction: Direction,
    /// The peer's node id.
    node_id: NodeId,
    /// Where the peer listens, as it said.
    listen_addr: Option<SocketAddr>,
    /// `None` once the table has dropped the peer (the task is closing).
    sender: Option<mpsc::Sender<Message>>,
    /// Bytes queued and not yet written (shared with the connection's
    /// writer, which subtracts what it wrote).
    queued: Arc<AtomicUsize>,
    live: bool,
    /// Blocks the peer has or was told of.
    known_blocks: KnownSet<BlockHash>,
    /// Transactions the peer has or was told of.
    known_txs: KnownSet<TxId>,
    /// The most work the peer has said it has.
    best_work: Work,
    /// The peer's best height as last known.
    best_height: u64,
    score: Score,
    /// Upload allowance left, in bytes, as of `allowance_at`.
    allowance: usize,
    allowance_at: Instant,
    /// When the connection was admitted.
    connected_at: Instant,
    /// When the peer last sent a block that was new to us.
    last_block: Option<Instant>,
    /// When the peer last sent a transaction we admitted.
    last_tx: Option<Instant>,
    /// What it was sent of the best chain (`served.rs`).
    served: served::Served,
}

impl Peer {
    /// The table still talks to it (not being dropped).
    pub fn connected(&self) -> bool {
        self.sender.is_some()
    }

    /// Connected and past its handshake.
    pub fn live(&self) -> bool {
        self.live && self.connected()
    }
}

/// An address we may dial.
struct AddrEntry {
    next_attempt: Instant,
    backoff: Duration,
    /// A connection to it is being made or is up.
    busy: bool,
    /// The host ([`crate::penalty::host_of`]) of the peer that told us of
    /// it; `None` for one the operator named (`--peer`, `POST /peers`).
    source: Option<std::net::IpAddr>,
    /// Attempts in a row that failed or ended before a handshake; a told
    /// address forgotten at [`MAX_FAILURES`].
    failures: u32,
    /// A peer at this address once sent us a block that was new to us.
    proved: bool,
}

/// Whether an address the operator named was last reached, so that its
/// failures are told once per change, not at every retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reach {
    /// Not dialled yet.
    Untried,
    /// Last connection admitted.
    Reached,
    /// Last dial failed (and the operator was told).
    Unreachable,
}

/// What [`PeerTable::punish`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Punished {
    /// The points were added; the peer stays.
    Warned {
        /// Its points now.
        points: u32,
    },
    /// Past the threshold: banned and dropped.
    Banned,
    /// A connection that never completed its handshake, banned by its
    /// socket address.
    BannedBeforeHandshake,
    /// Nobody to punish (the connection is gone, or a small offence before
    /// the handshake).
    Nobody,
}

/// The peer table (see the module docs).
pub(crate) struct PeerTable {
    config: Arc<NodeConfig>,
    node_id: NodeId,
    listen_addr: Option<SocketAddr>,
    peers: BTreeMap<ConnId, Peer>,
    addrs: BTreeMap<SocketAddr, AddrEntry>,
    bans: Bans,
    /// Listening addresses the operator cut the node off from.
    partitioned: BTreeSet<SocketAddr>,
    /// When the table last asked a peer for addresses to fill its
    /// outbound slots.
    last_addr_request: Option<Instant>,
    /// When an outbound peer last made room for a proved address
    /// (`addrs.rs`, [`PeerTable::rotate_outbound`]).
    last_rotation: Option<Instant>,
    /// How many of the book's addresses each source told (`addrs.rs`).
    told: BTreeMap<std::net::IpAddr, usize>,
    /// Outbound connections not admitted yet, by the address dialled: a
    /// dial that ends before admission (refused, a failed handshake) frees
    /// its address for a later retry.
    dialing: BTreeMap<ConnId, SocketAddr>,
    /// Addresses the operator named, and whether each was last reached.
    watched: BTreeMap<SocketAddr, Reach>,
    /// The table's random choices (which addresses to dial first, whom to
    /// ask for addresses), seeded by the node (`Seams::seed`).
    rng: rand_chacha::ChaCha8Rng,
    /// Whether a ban was added since [`PeerTable::take_bans_changed`].
    bans_changed: bool,
    /// Penalties and bans since the node started.
    penalties: crate::penalty::PenaltyCounts,
    /// Counts the changes of the set of live peers (one went live, was
    /// dropped or is gone): the published snapshot rebuilds its peer list
    /// when it moves, and otherwise on the core's tick.
    membership: u64,
}

/// How many inbound peers each protection of the eviction rule keeps.
const PROTECT_EACH: usize = 4;

impl PeerTable {
    /// A table whose address book holds the configured peers, due now.
    pub fn new(
        config: Arc<NodeConfig>,
        node_id: NodeId,
        listen_addr: Option<SocketAddr>,
        now: Instant,
        seed: [u8; 32],
    ) -> PeerTable {
        let mut table = PeerTable {
            rng: rand_chacha::ChaCha8Rng::from_seed(seed),
            config,
            node_id,
            listen_addr,
            peers: BTreeMap::new(),
            addrs: BTreeMap::new(),
            bans: Bans::default(),
            partitioned: BTreeSet::new(),
            last_addr_request: None,
            last_rotation: None,
            told: BTreeMap::new(),
            dialing: BTreeMap::new(),
            watched: BTreeMap::new(),
            bans_changed: false,
            penalties: Default::default(),
            membership: 0,
        };
        for addr in table.config.peers.clone() {
            table.learn_addr(addr, now);
            table.watch(addr);
        }
        table
    }

    /// This node's handshake, telling of `chain`'s tip.
    pub fn hello(&self, chain: &NodeChain) -> Handshake {
        Handshake {
            version: PROTOCOL_VERSION,
            network: chain.genesis_hash(),
            node_id: self.node_id,
            listen_addr: self.listen_addr,
            best_tip: chain.tip(),
            best_height: chain.height(),
            total_work: chain.total_work(),
            user_agent: wire::BoundedString::truncating(concat!(
                "p2p-node/",
                env!("CARGO_PKG_VERSION")
            )),
        }
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// Whether the table still talks to `conn`.
    pub fn is_connected(&self, conn: ConnId) -> bool {
        self.peers.get(&conn).is_some_and(Peer::connected)
    }

    /// The live connections.
    pub fn live_conns(&self) -> Vec<ConnId> {
        self.peers
            .iter()
            .filter(|(_, p)| p.live())
            .map(|(c, _)| *c)
            .collect()
    }

    /// How many peers are live.
    pub fn live_count(&self) -> usize {
        self.peers.values().filter(|p| p.live()).count()
    }

    /// A fresh salt for a compact block's short ids, from the table's
    /// random stream (seeded, so a simulated run is reproducible).
    pub fn draw_salt(&mut self) -> u64 {
        rand_chacha::rand_core::Rng::next_u64(&mut self.rng)
    }

    /// Whether a tick would change nothing here: every outbound slot is
    /// taken (so nothing is dialled and no addresses are asked for), and
    /// no live peer's published figures move with time alone (no penalty
    /// points left to decay, no queued bytes to drain).
    pub fn settled(&self, now: Instant) -> bool {
        self.count(Direction::Outbound) >= self.config.max_outbound
            && self
                .peers
                .values()
                .filter(|p| p.live())
                .all(|p| p.score.points(now) == 0 && p.queued.load(Ordering::Relaxed) == 0)
    }

    /// How many outbound connections are being made (dialled, not yet
    /// admitted or failed).
    pub fn dials_in_flight(&self) -> usize {
        self.dialing.len()
    }

    /// Checks a peer's handshake and, if it may join, adds the connection.
    /// A duplicate connection to the same node is resolved here: of two,
    /// both sides keep the one dialled by the node with the smaller id.
    ///
    /// # Errors
    ///
    /// The reason and text of the refusal notice.
    pub fn admit(
        &mut self,
        conn: ConnId,
        remote: SocketAddr,
        direction: Direction,
        hello: &Handshake,
        (sender, queued): (mpsc::Sender<Message>, Arc<AtomicUsize>),
        now: Instant,
    ) -> Result<(), (Reason, String)> {
        if hello.node_id == self.node_id {
            // We dialled ourselves (our own address came back by gossip).
            if let Some(addr) = hello.listen_addr {
                self.forget_addr(&addr);
            }
            return Err((Reason::DuplicateConnection, "that is this node".into()));
        }
        if hello
            .listen_addr
            .is_some_and(|a| self.partitioned.contains(&a))
        {
            return Err((Reason::Other, "partitioned by the operator".into()));
        }
        let keys = BanKey::for_peer(Some(hello.node_id), remote, hello.listen_addr);
        if self.bans.any_banned(&keys, now) {
            return Err((Reason::Banned, "banned for misbehaviour".into()));
        }
        let existing = self
            .peers
            .iter()
            .find(|(_, p)| p.node_id == hello.node_id && p.connected())
            .map(|(c, p)| (*c, p.direction));
        if let Some((old_conn, old_dir)) = existing {
            let dialler_of = |dir: Direction| match dir {
                Direction::Outbound => self.node_id,
                Direction::Inbound => hello.node_id,
            };
            if dialler_of(direction) < dialler_of(old_dir) {
                self.drop_peer(old_conn, Some((Reason::DuplicateConnection, "replaced")));
            } else {
                return Err((
                    Reason::DuplicateConnection,
                    "already connected to this node".into(),
                ));
            }
        }
        match direction {
            Direction::Outbound => {
                if self.count(Direction::Outbound) >= self.config.max_outbound {
                    return Err((
                        Reason::TooManyPeers,
                        format!("at most {} outbound peers", self.config.max_outbound),
                    ));
                }
            }
            Direction::Inbound => {
                if self.count(Direction::Inbound) >= self.config.max_inbound {
                    let Some(victim) = self.eviction_victim() else {
                        return Err((
                            Reason::TooManyPeers,
                            format!("at most {} inbound peers", self.config.max_inbound),
                        ));
                    };
                    debug!(conn = victim, "evicted for a newcomer");
                    self.drop_peer(
                        victim,
                        Some((Reason::TooManyPeers, "evicted for a newcomer")),
                    );
                }
            }
        }
        if let Some(addr) = hello.listen_addr {
            self.learn_addr_from(addr, Some(remote.ip()), now);
            if let Some(entry) = self.addrs.get_mut(&addr) {
                entry.busy = true;
            }
        }
        let dialled = self.dialing.remove(&conn);
        for addr in dialled.into_iter().chain(hello.listen_addr) {
            if let Some(entry) = self.addrs.get_mut(&addr) {
                entry.failures = 0;
            }
            if self.reached(addr) {
                tracing::info!(%addr, "peer reachable again");
            }
        }
        let mut known_blocks = KnownSet::new(MAX_KNOWN);
        known_blocks.insert(hello.best_tip);
        self.peers.insert(
            conn,
            Peer {
                remote,
                direction,
                node_id: hello.node_id,
                listen_addr: hello.listen_addr,
                sender: Some(sender),
                queued,
                live: false,
                known_blocks,
                known_txs: KnownSet::new(MAX_KNOWN),
                best_work: hello.total_work,
                best_height: hello.best_height,
                score: Score::default(),
                allowance: self.config.upload_burst,
                allowance_at: now,
                connected_at: now,
                last_block: None,
                last_tx: None,
                served: served::Served::default(),
            },
        );
        debug!(conn, %remote, peer = %hex::encode(&hello.node_id.0[..4]), "peer admitted");
        Ok(())
    }

    /// Connected peers in this direction.
    fn count(&self, direction: Direction) -> usize {
        self.peers
            .values()
            .filter(|p| p.connected() && p.direction == direction)
            .count()
    }

    /// The handshake completed: the peer is live. Returns the work it said
    /// it has, for the core to decide whether to sync from it.
    pub fn on_live(&mut self, conn: ConnId) -> Option<Work> {
        let peer = self.peers.get_mut(&conn)?;
        peer.live = true;
        self.membership += 1;
        tracing::info!(conn, remote = %peer.remote, "peer live");
        Some(peer.best_work)
    }

    /// The connection ended: the peer is forgotten, and the address it was
    /// reached at (or was being dialled) is tried again after its backoff.
    pub fn on_gone(&mut self, conn: ConnId, now: Instant) {
        if let Some(addr) = self.dialing.remove(&conn)
            && !self.peers.contains_key(&conn)
        {
            // Connected, but never admitted: a failed attempt.
            self.failed_attempt(addr, now);
            return;
        }
        if let Some(peer) = self.peers.remove(&conn) {
            self.membership += 1;
            debug!(conn, remote = %peer.remote, "peer gone");
            let dialled = match peer.direction {
                Direction::Outbound => Some(peer.remote),
                Direction::Inbound => peer.listen_addr,
            };
            if let Some(addr) = dialled {
                self.retry_later(addr, now);
            }
        }
    }

    /// Drops a peer: an optional notice, then the table forgets the sender,
    /// which makes the connection task close the socket.
    pub fn drop_peer(&mut self, conn: ConnId, notice: Option<(Reason, &str)>) {
        if let Some(peer) = self.peers.get_mut(&conn)
            && let Some(sender) = peer.sender.take()
        {
            if let Some((reason, text)) = notice {
                let _ = sender.try_send(Message::notice(reason, text));
            }
            peer.live = false;
            self.membership += 1;
        }
    }

    /// The count of changes to the set of live peers (see the field).
    pub fn membership(&self) -> u64 {
        self.membership
    }

    /// Queues a message for a peer. A peer whose queue is full, in messages
    /// or in bytes ([`NodeConfig::peer_queue_bytes`]), is too slow and is
    /// dropped. Returns whether the message was queued.
    pub fn send(&mut self, conn: ConnId, message: Message) -> bool {
        let budget = self.config.peer_queue_bytes;
        let Some(peer) = self.peers.get_mut(&conn) else {
            return false;
        };
        let Some(sender) = &peer.sender else {
            return false;
        };
        let size = wire::frame_len(&message);
        let queued = peer.queued.load(Ordering::Relaxed);
        if queued.saturating_add(size) > budget {
            warn!(conn, remote = %peer.remote, queued, size, "peer does not read fast enough ({queued} bytes queued); dropping it");
            peer.sender = None;
            peer.live = false;
            return false;
        }
        // Counted before it is queued, so the writer never subtracts a
        // message that is not counted yet.
        peer.queued.fetch_add(size, Ordering::Relaxed);
        match sender.try_send(message) {
            Ok(()) => true,
            Err(e) => {
                peer.queued.fetch_sub(size, Ordering::Relaxed);
                if matches!(e, mpsc::error::TrySendError::Closed(_)) {
                    return false;
                }
                warn!(conn, remote = %peer.remote, "peer is too slow to keep up; dropping it");
                peer.sender = None;
                peer.live = false;
                false
            }
        }
    }

    /// Takes `bytes` from the peer's upload allowance (a token bucket of
    /// [`NodeConfig::upload_burst`] bytes refilled at
    /// [`NodeConfig::upload_rate`] bytes a second). Returns `false`, taking
    /// nothing, if the answer does not fit: the request is refused.
    pub fn charge_upload(&mut self, conn: ConnId, bytes: usize, now: Instant) -> bool {
        let (burst, rate) = (self.config.upload_burst, self.config.upload_rate);
        let Some(peer) = self.peers.get_mut(&conn) else {
            return false;
        };
        let elapsed = now.saturating_duration_since(peer.allowance_at);
        let refill = (elapsed.as_secs_f64() * rate as f64).min(burst as f64) as usize;
        peer.allowance = peer.allowance.saturating_add(refill).min(burst);
        peer.allowance_at = now;
        if bytes > peer.allowance {
            return false;
        }
        peer.allowance -= bytes;
        true
    }

    /// Live peers as the outside sees them.
    pub fn infos(&self, now: Instant) -> Vec<PeerInfo> {
        self.live_infos(now).collect()
    }

    /// [`PeerTable::infos`], unless they are `old` (then `None`): compared
    /// one by one, without building a list (the snapshot is published after
    /// every event, and the peers seldom change).
    pub fn infos_unless(&self, old: &[PeerInfo], now: Instant) -> Option<Vec<PeerInfo>> {
        if self.live_infos(now).eq(old.iter().cloned()) {
            return None;
        }
        Some(self.infos(now))
    }

    fn live_infos(&self, now: Instant) -> impl Iterator<Item = PeerInfo> + '_ {
        self.peers
            .iter()
            .filter(|(_, p)| p.live())
            .map(move |(c, p)| PeerInfo {
                conn: *c,
                remote: p.remote,
                listen_addr: p.listen_addr,
                direction: p.direction,
                node_id: p.node_id,
                best_height: p.best_height,
                score: p.score.points(now),
                queued_bytes: p.queued.load(Ordering::Relaxed),
            })
    }

    /// Penalties given and peers banned since the node started.
    pub fn penalties(&self) -> &crate::penalty::PenaltyCounts {
        &self.penalties
    }

    /// Forgets every peer: dropping the senders lets each connection task
    /// finish.
    pub fn clear(&mut self) {
        self.membership += 1;
        self.peers.clear();
    }
}

mod addrs;
mod bans;
mod evict;
mod known;
mod known_set;
mod served;

#[cfg(test)]
mod address_tests;
#[cfg(test)]
mod book_tests;
#[cfg(test)]
mod hello_tests;
#[cfg(test)]
mod known_tests;
#[cfg(test)]
mod tests;

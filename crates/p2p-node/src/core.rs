//! The core: the one task that owns the chain, the mempool, the peer table
//! and the miner's job.
//!
//! Everything else talks to it through one bounded channel of [`CoreMsg`]
//! with `oneshot` replies (the shape of reth's network manager): connection
//! tasks forward what their peers send, the miner hands in solved headers,
//! and the [`crate::NodeHandle`] asks questions and gives commands. No lock
//! is shared, so no lock is ever held across an `.await`, and the order in
//! which the core sees events is the order in which it acts on them.
//!
//! The core never waits on a peer: it hands messages to each connection's
//! bounded queue with `try_send`, and a peer whose queue is full is too slow
//! and is dropped, so one slow peer cannot grow the node's memory.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use chain_core::miner::{MineOutcome, Miner};
use chain_core::{Block, BlockHash, Chain, Header, InsertError, Inserted, Reorg, TxId, Work};
use escrow::{Ledger, LedgerError, SignedTx, Tx};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};
use wire::message::{MAX_ADDRS, MAX_SYNC_BLOCKS};
use wire::{Bounded, Handshake, Message, NodeId, PROTOCOL_VERSION, Reason};

use crate::clock::Clock;
use crate::config::{MiningMode, NodeConfig};
use crate::mempool::{Mempool, MempoolError};
use crate::peer::{Direction, PeerTask};
use crate::penalty::{BanKey, Bans, Offence, Score};
use crate::store::BlockStore;
use crate::transport::Transport;

/// A connection's number, unique within one node's run.
pub type ConnId = u64;

/// The chain type the node runs.
pub type NodeChain = Chain<Ledger>;

/// What the core is asked to do.
pub(crate) enum CoreMsg {
    /// Our handshake, for a connection we dialled.
    Hello { reply: oneshot::Sender<Handshake> },
    /// A peer's handshake: admit the connection (and answer with our
    /// handshake) or refuse it with a reason.
    Admit {
        conn: ConnId,
        remote: SocketAddr,
        direction: Direction,
        hello: Box<Handshake>,
        sender: mpsc::Sender<Message>,
        reply: oneshot::Sender<Result<Box<Handshake>, (Reason, String)>>,
    },
    /// The handshake completed.
    Live { conn: ConnId },
    /// A message from a live peer.
    Message { conn: ConnId, message: Message },
    /// A connection task saw the peer break the protocol.
    Offence {
        conn: ConnId,
        remote: SocketAddr,
        offence: Offence,
    },
    /// A connection ended.
    Gone { conn: ConnId },
    /// A dial failed before a connection task started.
    DialFailed { addr: SocketAddr },
    /// The miner finished a job.
    Mined { job: u64, outcome: MineOutcome },
    /// A request from the node's handle.
    Command(Command),
}

/// A request from the [`crate::NodeHandle`].
pub(crate) enum Command {
    /// Runs a read-only function on the node's state.
    Query(Box<dyn FnOnce(&NodeView<'_>) + Send>),
    /// Submits a signed transaction.
    SubmitTx {
        tx: Box<SignedTx>,
        reply: oneshot::Sender<Result<TxId, MempoolError>>,
    },
    /// Mines `count` blocks on this node, then answers with their hashes.
    Mine {
        count: u64,
        reply: oneshot::Sender<Vec<BlockHash>>,
    },
    /// Changes the mining mode.
    SetMining(MiningMode),
    /// Dials an address (and keeps it in the address book).
    AddPeer(SocketAddr),
    /// Cuts the node off from these listening addresses: drops their
    /// connections and refuses new ones, until `Heal` (a partition, made
    /// by an operator or a simulator).
    Partition(Vec<SocketAddr>),
    /// Lifts every partition and redials the addresses it cut.
    Heal,
}

/// Something changed that a watcher (the explorer) may want to redraw.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum NodeEvent {
    /// The best tip moved.
    Tip {
        /// Its height.
        height: u64,
        /// Its hash.
        hash: BlockHash,
        /// Blocks undone on the way (0 for an extension).
        undone: usize,
    },
    /// A block joined a side branch (a fork the node does not follow).
    Fork {
        /// Its height.
        height: u64,
        /// Its hash.
        hash: BlockHash,
    },
    /// The mempool changed.
    Mempool {
        /// Pending transactions now.
        size: usize,
    },
    /// A peer connected or left.
    Peers {
        /// Live peers now.
        count: usize,
    },
}

impl NodeEvent {
    /// The event's name in the event stream.
    pub fn name(&self) -> &'static str {
        match self {
            NodeEvent::Tip { .. } => "tip",
            NodeEvent::Fork { .. } => "fork",
            NodeEvent::Mempool { .. } => "mempool",
            NodeEvent::Peers { .. } => "peers",
        }
    }
}

/// A read-only view of the node, for queries.
pub struct NodeView<'a> {
    /// The block tree and the ledger at the best tip.
    pub chain: &'a NodeChain,
    /// The block of every best-chain transaction.
    pub tx_index: &'a HashMap<TxId, BlockHash>,
    /// Monitoring counters.
    pub metrics: &'a Metrics,
    /// Pending transactions.
    pub mempool: &'a Mempool,
    /// Live peers.
    pub peers: Vec<PeerInfo>,
    /// Active bans and the time left on each.
    pub bans: Vec<(BanKey, Duration)>,
    /// This node's id.
    pub node_id: NodeId,
    /// The current mining mode.
    pub mining: MiningMode,
}

/// What the node knows about a live peer.
#[derive(Clone, Debug)]
pub struct PeerInfo {
    /// The connection's number.
    pub conn: ConnId,
    /// The peer's socket address.
    pub remote: SocketAddr,
    /// Where the peer listens, as it said.
    pub listen_addr: Option<SocketAddr>,
    /// Who dialled.
    pub direction: Direction,
    /// The peer's node id.
    pub node_id: NodeId,
    /// The peer's best height as last known.
    pub best_height: u64,
    /// Penalty points.
    pub score: u32,
}

/// A set that forgets its oldest entries past a bound.
struct KnownSet<T: std::hash::Hash + Eq + Copy> {
    set: HashSet<T>,
    order: VecDeque<T>,
    max: usize,
}

impl<T: std::hash::Hash + Eq + Copy> KnownSet<T> {
    fn new(max: usize) -> Self {
        Self {
            set: HashSet::new(),
            order: VecDeque::new(),
            max,
        }
    }

    fn insert(&mut self, item: T) {
        if self.set.insert(item) {
            self.order.push_back(item);
            if self.order.len() > self.max
                && let Some(old) = self.order.pop_front()
            {
                self.set.remove(&old);
            }
        }
    }

    fn contains(&self, item: &T) -> bool {
        self.set.contains(item)
    }

    /// Forgets `item` (its slot in the eviction order stays until it ages
    /// out; evicting an item that was re-inserted only forgets it early).
    fn forget(&mut self, item: &T) {
        self.set.remove(item);
    }
}

/// A connection the core knows.
struct Peer {
    remote: SocketAddr,
    direction: Direction,
    node_id: NodeId,
    listen_addr: Option<SocketAddr>,
    /// `None` once the core has dropped the peer (the task is closing).
    sender: Option<mpsc::Sender<Message>>,
    live: bool,
    known_blocks: KnownSet<BlockHash>,
    known_txs: KnownSet<TxId>,
    best_work: Work,
    best_height: u64,
    score: Score,
    /// Whether a `GetSync` to this peer awaits its answer.
    syncing: bool,
}

impl Peer {
    /// The core still talks to it (not being dropped).
    fn connected(&self) -> bool {
        self.sender.is_some()
    }

    /// Connected and past its handshake.
    fn live(&self) -> bool {
        self.live && self.connected()
    }
}

/// An address we may dial.
struct AddrEntry {
    next_attempt: Instant,
    backoff: Duration,
    /// A connection to it is being made or is up.
    busy: bool,
}

/// The miner's current job.
struct MinerJob {
    id: u64,
    stop: Arc<AtomicBool>,
    block: Block<Tx>,
}

/// The core's state.
pub(crate) struct Core {
    pub config: Arc<NodeConfig>,
    pub node_id: NodeId,
    pub listen_addr: Option<SocketAddr>,
    pub chain: NodeChain,
    pub mempool: Mempool,
    pub store: Box<dyn BlockStore>,
    pub clock: Arc<dyn Clock>,
    pub transport: Arc<dyn Transport>,
    pub tx: mpsc::Sender<CoreMsg>,
    pub cancel: CancellationToken,
    pub tracker: TaskTracker,
    pub next_conn: Arc<AtomicU64>,
    pub mining: MiningMode,
    peers: HashMap<ConnId, Peer>,
    addrs: HashMap<SocketAddr, AddrEntry>,
    bans: Bans,
    requested_blocks: HashMap<BlockHash, Instant>,
    requested_txs: HashMap<TxId, Instant>,
    miner: Miner,
    job: Option<MinerJob>,
    next_job: u64,
    mine_requests: VecDeque<(u64, Vec<BlockHash>, oneshot::Sender<Vec<BlockHash>>)>,
    /// Accepted blocks not yet saved: saved in one transaction before
    /// anything announces or serves them, and at the end of every event.
    unsaved: Vec<Arc<Block<Tx>>>,
    /// Listening addresses the operator cut the node off from.
    partitioned: HashSet<SocketAddr>,
    /// Where changes are announced to watchers (a bounded broadcast: a
    /// watcher that falls behind misses events, never slows the core).
    events: tokio::sync::broadcast::Sender<NodeEvent>,
    /// Where each transaction of the best chain is: its block.
    tx_index: HashMap<TxId, BlockHash>,
    /// Counters for `/metrics`.
    metrics: Metrics,
}

/// Counters the node keeps for monitoring.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    /// Blocks that joined the tree (best chain or side branch).
    pub blocks_accepted: u64,
    /// Blocks refused, by reason.
    pub blocks_rejected: std::collections::BTreeMap<String, u64>,
    /// Reorganisations (best-chain changes that undid blocks).
    pub reorgs: u64,
    /// The deepest reorganisation, in blocks undone.
    pub max_reorg_depth: u64,
    /// Blocks this node mined that joined its best chain.
    pub blocks_mined: u64,
    /// The expected hashes behind the blocks this node mined.
    pub work_mined: f64,
    /// When the node started.
    pub started: Option<Instant>,
}

/// Most addresses kept in the address book.
const MAX_ADDR_BOOK: usize = 1_000;
/// Most hashes remembered per peer as known to it.
const MAX_KNOWN: usize = 20_000;

impl Core {
    /// A core over a chain that is already loaded.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: Arc<NodeConfig>,
        node_id: NodeId,
        listen_addr: Option<SocketAddr>,
        chain: NodeChain,
        store: Box<dyn BlockStore>,
        clock: Arc<dyn Clock>,
        transport: Arc<dyn Transport>,
        tx: mpsc::Sender<CoreMsg>,
        cancel: CancellationToken,
        tracker: TaskTracker,
        next_conn: Arc<AtomicU64>,
        events: tokio::sync::broadcast::Sender<NodeEvent>,
    ) -> Core {
        let mempool = Mempool::new(
            chain.state(),
            chain.height() + 1,
            config.mempool_max,
            config.mempool_max_per_account,
        );
        let now = Instant::now();
        let addrs = config
            .peers
            .iter()
            .map(|a| {
                (
                    *a,
                    AddrEntry {
                        next_attempt: now,
                        backoff: config.min_backoff,
                        busy: false,
                    },
                )
            })
            .collect();
        let mut core = Core {
            mining: config.mining,
            miner: Miner::new(config.miner_threads.max(1)),
            config,
            node_id,
            listen_addr,
            chain,
            mempool,
            store,
            clock,
            transport,
            tx,
            cancel,
            tracker,
            next_conn,
            peers: HashMap::new(),
            addrs,
            bans: Bans::default(),
            requested_blocks: HashMap::new(),
            requested_txs: HashMap::new(),
            job: None,
            next_job: 0,
            mine_requests: VecDeque::new(),
            unsaved: Vec::new(),
            partitioned: HashSet::new(),
            events,
            tx_index: HashMap::new(),
            metrics: Metrics {
                started: Some(now),
                ..Metrics::default()
            },
        };
        let blocks: Vec<_> = core
            .chain
            .best_chain()
            .iter()
            .filter_map(|h| core.chain.block(h).cloned())
            .collect();
        for block in blocks {
            core.index_block(&block);
        }
        core
    }

    fn index_block(&mut self, block: &Block<Tx>) {
        let hash = block.hash();
        for tx in &block.transactions {
            self.tx_index.insert(chain_core::Transaction::id(tx), hash);
        }
    }

    /// Runs until the node is cancelled.
    pub async fn run(mut self, mut rx: mpsc::Receiver<CoreMsg>) {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.maybe_mine();
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => break,
                msg = rx.recv() => match msg {
                    Some(msg) => self.handle(msg),
                    None => break,
                },
                _ = tick.tick() => self.on_tick(),
            }
        }
        self.stop_miner();
        // Dropping every sender lets each connection task finish.
        self.peers.clear();
        info!("core stopped");
    }

    fn handle(&mut self, msg: CoreMsg) {
        self.dispatch(msg);
        self.flush();
    }

    /// Saves accepted blocks. A node that cannot save cannot promise that
    /// what it announces survives a crash, so a failing store stops it.
    fn flush(&mut self) -> bool {
        if self.unsaved.is_empty() {
            return true;
        }
        match self.store.put_blocks(&self.unsaved) {
            Ok(()) => {
                self.unsaved.clear();
                true
            }
            Err(e) => {
                tracing::error!("cannot save blocks, stopping the node: {e}");
                self.cancel.cancel();
                false
            }
        }
    }

    fn dispatch(&mut self, msg: CoreMsg) {
        match msg {
            CoreMsg::Hello { reply } => {
                let _ = reply.send(self.hello());
            }
            CoreMsg::Admit {
                conn,
                remote,
                direction,
                hello,
                sender,
                reply,
            } => {
                let answer = self.admit(conn, remote, direction, *hello, sender);
                let _ = reply.send(answer.map(|()| Box::new(self.hello())));
            }
            CoreMsg::Live { conn } => self.on_live(conn),
            CoreMsg::Message { conn, message } => self.on_message(conn, message),
            CoreMsg::Offence {
                conn,
                remote,
                offence,
            } => self.punish(conn, Some(remote), offence),
            CoreMsg::Gone { conn } => self.on_gone(conn),
            CoreMsg::DialFailed { addr } => self.dial_failed(addr),
            CoreMsg::Mined { job, outcome } => self.on_mined(job, outcome),
            CoreMsg::Command(c) => self.on_command(c),
        }
    }

    // ---- handshake and peers -------------------------------------------

    fn hello(&self) -> Handshake {
        Handshake {
            version: PROTOCOL_VERSION,
            network: self.chain.genesis_hash(),
            node_id: self.node_id,
            listen_addr: self.listen_addr,
            best_tip: self.chain.tip(),
            best_height: self.chain.height(),
            total_work: self.chain.total_work(),
            user_agent: wire::BoundedString::truncating(concat!(
                "p2p-node/",
                env!("CARGO_PKG_VERSION")
            )),
        }
    }

    fn admit(
        &mut self,
        conn: ConnId,
        remote: SocketAddr,
        direction: Direction,
        hello: Handshake,
        sender: mpsc::Sender<Message>,
    ) -> Result<(), (Reason, String)> {
        let now = Instant::now();
        if hello.network != self.chain.genesis_hash() {
            return Err((
                Reason::WrongNetwork,
                format!(
                    "this node runs network {}, not {}",
                    self.chain.genesis_hash(),
                    hello.network
                ),
            ));
        }
        if hello.node_id == self.node_id {
            // We dialled ourselves (our own address came back by gossip).
            if let Some(addr) = hello.listen_addr {
                self.addrs.remove(&addr);
            }
            return Err((Reason::DuplicateConnection, "that is this node".into()));
        }
        if hello
            .listen_addr
            .is_some_and(|a| self.partitioned.contains(&a))
        {
            return Err((Reason::Other, "partitioned by the operator".into()));
        }
        let mut keys = vec![BanKey::Node(hello.node_id), BanKey::Addr(remote)];
        keys.extend(hello.listen_addr.map(BanKey::Addr));
        if keys.iter().any(|k| self.bans.is_banned(k, now)) {
            return Err((Reason::Banned, "banned for misbehaviour".into()));
        }
        // Never two connections between the same two nodes. When both
        // dialled at once, both sides keep the one dialled by the node with
        // the smaller id, so they agree without talking.
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
        let live = self.peers.values().filter(|p| p.connected()).count();
        if live >= self.config.max_peers {
            return Err((
                Reason::TooManyPeers,
                format!("at most {} peers", self.config.max_peers),
            ));
        }
        if let Some(addr) = hello.listen_addr {
            self.learn_addr(addr);
            if let Some(entry) = self.addrs.get_mut(&addr) {
                entry.busy = true;
            }
        }
        self.peers.insert(
            conn,
            Peer {
                remote,
                direction,
                node_id: hello.node_id,
                listen_addr: hello.listen_addr,
                sender: Some(sender),
                live: false,
                known_blocks: KnownSet::new(MAX_KNOWN),
                known_txs: KnownSet::new(MAX_KNOWN),
                best_work: hello.total_work,
                best_height: hello.best_height,
                score: Score::default(),
                syncing: false,
            },
        );
        if let Some(p) = self.peers.get_mut(&conn) {
            p.known_blocks.insert(hello.best_tip);
        }
        debug!(conn, %remote, peer = %hex::encode(&hello.node_id.0[..4]), "peer admitted");
        Ok(())
    }

    fn emit(&self, event: NodeEvent) {
        // No watcher is fine.
        let _ = self.events.send(event);
    }

    fn emit_peers(&self) {
        let count = self.peers.values().filter(|p| p.live()).count();
        self.emit(NodeEvent::Peers { count });
    }

    fn emit_mempool(&self) {
        self.emit(NodeEvent::Mempool {
            size: self.mempool.len(),
        });
    }

    fn on_live(&mut self, conn: ConnId) {
        let Some(peer) = self.peers.get_mut(&conn) else {
            return;
        };
        peer.live = true;
        info!(conn, remote = %peer.remote, "peer live");
        let ahead = peer.best_work > self.chain.total_work();
        self.emit_peers();
        self.send(conn, Message::GetAddrs);
        if ahead {
            self.request_sync(conn);
        }
        // Let the peer know what we have that it may not.
        let tip = self.chain.tip();
        self.announce_block_to(conn, tip);
    }

    fn on_gone(&mut self, conn: ConnId) {
        if let Some(peer) = self.peers.remove(&conn) {
            debug!(conn, remote = %peer.remote, "peer gone");
            if peer.live {
                self.emit_peers();
            }
            let dialled = match peer.direction {
                Direction::Outbound => Some(peer.remote),
                Direction::Inbound => peer.listen_addr,
            };
            if let Some(addr) = dialled
                && let Some(entry) = self.addrs.get_mut(&addr)
            {
                entry.busy = false;
                entry.next_attempt = Instant::now() + entry.backoff;
                entry.backoff = (entry.backoff * 2).min(self.config.max_backoff);
            }
        }
    }

    /// Drops a peer: an optional notice, then the core forgets the sender,
    /// which makes the connection task close the socket.
    fn drop_peer(&mut self, conn: ConnId, notice: Option<(Reason, &str)>) {
        if let Some(peer) = self.peers.get_mut(&conn)
            && let Some(sender) = peer.sender.take()
        {
            if let Some((reason, text)) = notice {
                let _ = sender.try_send(Message::notice(reason, text));
            }
            let was_live = peer.live;
            peer.live = false;
            if was_live {
                self.emit_peers();
            }
        }
    }

    fn punish(&mut self, conn: ConnId, remote: Option<SocketAddr>, offence: Offence) {
        let now = Instant::now();
        let penalty = offence.penalty();
        let Some(peer) = self.peers.get_mut(&conn) else {
            // Not admitted yet (garbage before a handshake): the socket
            // address is all we know.
            if let Some(remote) = remote
                && penalty >= self.config.ban_threshold
            {
                warn!(%remote, "banned before its handshake: {offence}");
                self.bans
                    .ban([BanKey::Addr(remote)], self.config.ban_duration, now);
            }
            return;
        };
        let points = peer.score.add(penalty, now);
        warn!(conn, remote = %peer.remote, points, "penalty {penalty}: {offence}");
        if points >= self.config.ban_threshold {
            let mut keys = vec![BanKey::Node(peer.node_id), BanKey::Addr(peer.remote)];
            keys.extend(peer.listen_addr.map(BanKey::Addr));
            self.bans.ban(keys, self.config.ban_duration, now);
            warn!(conn, remote = %peer.remote, "peer banned for {:?}", self.config.ban_duration);
            self.drop_peer(conn, Some((Reason::Banned, "too many protocol violations")));
        }
    }

    fn learn_addr(&mut self, addr: SocketAddr) {
        if Some(addr) == self.listen_addr || self.addrs.contains_key(&addr) {
            return;
        }
        if self.addrs.len() >= MAX_ADDR_BOOK {
            return;
        }
        self.addrs.insert(
            addr,
            AddrEntry {
                next_attempt: Instant::now(),
                backoff: self.config.min_backoff,
                busy: false,
            },
        );
    }

    fn dial_failed(&mut self, addr: SocketAddr) {
        if let Some(entry) = self.addrs.get_mut(&addr) {
            entry.busy = false;
            entry.next_attempt = Instant::now() + entry.backoff;
            entry.backoff = (entry.backoff * 2).min(self.config.max_backoff);
        }
    }

    fn connected_to(&self, addr: &SocketAddr) -> bool {
        self.peers.values().any(|p| {
            p.connected()
                && (p.listen_addr.as_ref() == Some(addr)
                    || (p.direction == Direction::Outbound && p.remote == *addr))
        })
    }

    fn dial_due(&mut self) {
        let now = Instant::now();
        let live = self.peers.values().filter(|p| p.connected()).count();
        if live >= self.config.max_peers {
            return;
        }
        let due: Vec<SocketAddr> = self
            .addrs
            .iter()
            .filter(|(a, e)| {
                !e.busy
                    && e.next_attempt <= now
                    && !self.partitioned.contains(a)
                    && !self.bans.is_banned(&BanKey::Addr(**a), now)
            })
            .map(|(a, _)| *a)
            .collect();
        for addr in due {
            if self.connected_to(&addr) {
                if let Some(e) = self.addrs.get_mut(&addr) {
                    e.busy = true;
                }
                continue;
            }
            if let Some(e) = self.addrs.get_mut(&addr) {
                e.busy = true;
            }
            self.dial(addr);
        }
    }

    fn dial(&mut self, addr: SocketAddr) {
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let transport = self.transport.clone();
        let task = PeerTask {
            conn,
            remote: addr,
            direction: Direction::Outbound,
            core: self.tx.clone(),
            config: self.config.clone(),
            cancel: self.cancel.clone(),
        };
        let core = self.tx.clone();
        let cancel = self.cancel.clone();
        let connect_timeout = self.config.handshake_timeout;
        self.tracker.spawn(async move {
            let connect = tokio::time::timeout(connect_timeout, transport.connect(addr));
            let stream = tokio::select! {
                _ = cancel.cancelled() => return,
                r = connect => r,
            };
            match stream {
                Ok(Ok(stream)) => task.run(stream).await,
                Ok(Err(e)) => {
                    debug!(%addr, "dial failed: {e}");
                    let _ = core.send(CoreMsg::DialFailed { addr }).await;
                }
                Err(_) => {
                    debug!(%addr, "dial timed out");
                    let _ = core.send(CoreMsg::DialFailed { addr }).await;
                }
            }
        });
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        self.bans.expire(now);
        let timeout = self.config.request_timeout;
        self.requested_blocks
            .retain(|_, t| now.saturating_duration_since(*t) < timeout);
        self.requested_txs
            .retain(|_, t| now.saturating_duration_since(*t) < timeout);
        self.dial_due();
        self.maybe_mine();
    }

    // ---- sending ------------------------------------------------------

    /// Queues a message for a peer; a peer whose queue is full is too slow
    /// and is dropped.
    fn send(&mut self, conn: ConnId, message: Message) {
        let Some(peer) = self.peers.get_mut(&conn) else {
            return;
        };
        let Some(sender) = &peer.sender else {
            return;
        };
        if let Err(mpsc::error::TrySendError::Full(_)) = sender.try_send(message) {
            warn!(conn, remote = %peer.remote, "peer is too slow to keep up; dropping it");
            peer.sender = None;
            peer.live = false;
        }
    }

    fn live_peers(&self) -> Vec<ConnId> {
        self.peers
            .iter()
            .filter(|(_, p)| p.live())
            .map(|(c, _)| *c)
            .collect()
    }

    fn announce_block_to(&mut self, conn: ConnId, hash: BlockHash) {
        if !self.flush() {
            return;
        }
        let Some(peer) = self.peers.get_mut(&conn) else {
            return;
        };
        if peer.known_blocks.contains(&hash) {
            return;
        }
        peer.known_blocks.insert(hash);
        self.send(
            conn,
            Message::AnnounceBlocks(Bounded::truncating(vec![hash])),
        );
    }

    fn announce_block(&mut self, hash: BlockHash) {
        for conn in self.live_peers() {
            self.announce_block_to(conn, hash);
        }
    }

    fn announce_tx(&mut self, id: TxId) {
        for conn in self.live_peers() {
            let Some(peer) = self.peers.get_mut(&conn) else {
                continue;
            };
            if peer.known_txs.contains(&id) {
                continue;
            }
            peer.known_txs.insert(id);
            self.send(conn, Message::AnnounceTxs(Bounded::truncating(vec![id])));
        }
    }

    fn request_sync(&mut self, conn: ConnId) {
        let locator = Bounded::truncating(self.chain.locator());
        if let Some(peer) = self.peers.get_mut(&conn) {
            peer.syncing = true;
        }
        self.send(
            conn,
            Message::GetSync {
                locator,
                stop: BlockHash::ZERO,
            },
        );
    }

    // ---- messages -----------------------------------------------------

    fn on_message(&mut self, conn: ConnId, message: Message) {
        let Some(peer) = self.peers.get(&conn) else {
            return;
        };
        if peer.sender.is_none() {
            // Being dropped: ignore the rest of what it sent.
            return;
        }
        tracing::trace!(conn, kind = message.kind(), "message");
        match message {
            Message::Handshake(_) | Message::HandshakeAck => {
                self.punish(conn, None, Offence::Protocol("a second handshake"));
            }
            Message::Ping { .. } | Message::Pong { .. } | Message::Notice { .. } => {}
            Message::AnnounceTxs(ids) => {
                let mut wanted = Vec::new();
                let now = Instant::now();
                for id in ids.iter() {
                    if let Some(p) = self.peers.get_mut(&conn) {
                        p.known_txs.insert(*id);
                    }
                    if !self.mempool.contains(id) && !self.requested_txs.contains_key(id) {
                        self.requested_txs.insert(*id, now);
                        wanted.push(*id);
                    }
                }
                if !wanted.is_empty() {
                    self.send(conn, Message::GetTxs(Bounded::truncating(wanted)));
                }
            }
            Message::AnnounceBlocks(hashes) => {
                let mut wanted = Vec::new();
                let now = Instant::now();
                for hash in hashes.iter() {
                    if let Some(p) = self.peers.get_mut(&conn) {
                        p.known_blocks.insert(*hash);
                    }
                    let known = self.chain.contains(hash)
                        || self.chain.is_orphan(hash)
                        || self.chain.is_known_invalid(hash);
                    if !known && !self.requested_blocks.contains_key(hash) {
                        self.requested_blocks.insert(*hash, now);
                        wanted.push(*hash);
                    }
                }
                if !wanted.is_empty() {
                    self.send(conn, Message::GetBlocks(Bounded::truncating(wanted)));
                }
            }
            Message::GetTxs(ids) => {
                let mut missing = Vec::new();
                for id in ids.iter() {
                    match self.mempool.get(id).cloned() {
                        Some(tx) => {
                            if let Some(p) = self.peers.get_mut(&conn) {
                                p.known_txs.insert(*id);
                            }
                            self.send(conn, Message::Tx(tx));
                        }
                        None => missing.push(*id),
                    }
                }
                if !missing.is_empty() {
                    self.send(
                        conn,
                        Message::NotFound {
                            txs: Bounded::truncating(missing),
                            blocks: Bounded::default(),
                        },
                    );
                }
            }
            Message::GetBlocks(hashes) => {
                if !self.flush() {
                    return;
                }
                let mut missing = Vec::new();
                for hash in hashes.iter() {
                    match self.chain.block(hash).cloned() {
                        Some(block) => {
                            if let Some(p) = self.peers.get_mut(&conn) {
                                p.known_blocks.insert(*hash);
                            }
                            self.send(conn, Message::Block((*block).clone()));
                        }
                        None => missing.push(*hash),
                    }
                }
                if !missing.is_empty() {
                    self.send(
                        conn,
                        Message::NotFound {
                            txs: Bounded::default(),
                            blocks: Bounded::truncating(missing),
                        },
                    );
                }
            }
            Message::Tx(tx) => self.on_tx(conn, tx),
            Message::Block(block) => {
                let hash = block.hash();
                // A block we asked for after its announcement may be an
                // orphan without any fault of the sender: we are behind.
                let solicited = self.requested_blocks.remove(&hash).is_some();
                if let Some(p) = self.peers.get_mut(&conn) {
                    p.known_blocks.insert(hash);
                }
                if let Some(best) = self.accept_block(block, Some((conn, solicited))) {
                    self.announce_new_best(&best);
                }
            }
            Message::GetSync { locator, stop } => self.serve_sync(conn, &locator, stop),
            Message::SyncBlocks { blocks, more } => {
                // A sync answer must connect to the locator we sent: its
                // orphans are the sender's fault, as are unasked-for ones.
                if let Some(p) = self.peers.get_mut(&conn) {
                    p.syncing = false;
                }
                let mut last_best = None;
                for block in blocks.into_inner() {
                    let hash = block.hash();
                    if let Some(p) = self.peers.get_mut(&conn) {
                        p.known_blocks.insert(hash);
                        p.best_height = p.best_height.max(block.header.height);
                    }
                    if let Some(best) = self.accept_block(block, Some((conn, false))) {
                        last_best = Some(best);
                    }
                    if !self.peers.get(&conn).is_some_and(Peer::connected) {
                        return;
                    }
                }
                if let Some(best) = last_best {
                    self.announce_new_best(&best);
                }
                if more {
                    self.request_sync(conn);
                }
            }
            Message::GetAddrs => {
                let addrs: Vec<SocketAddr> = self
                    .peers
                    .iter()
                    .filter(|(c, p)| **c != conn && p.live)
                    .filter_map(|(_, p)| p.listen_addr)
                    .take(MAX_ADDRS)
                    .collect();
                self.send(conn, Message::Addrs(Bounded::truncating(addrs)));
            }
            Message::Addrs(addrs) => {
                for addr in addrs.iter() {
                    self.learn_addr(*addr);
                }
                self.dial_due();
            }
            Message::NotFound { txs, blocks } => {
                for id in txs.iter() {
                    self.requested_txs.remove(id);
                }
                for hash in blocks.iter() {
                    self.requested_blocks.remove(hash);
                }
            }
        }
    }

    fn on_tx(&mut self, conn: ConnId, tx: SignedTx) {
        let id = tx.id();
        self.requested_txs.remove(&id);
        if let Some(p) = self.peers.get_mut(&conn) {
            p.known_txs.insert(id);
        }
        match self.mempool.add(tx) {
            Ok(id) => {
                self.announce_tx(id);
                self.emit_mempool();
                self.maybe_mine();
            }
            Err(MempoolError::Invalid(escrow::AdmissionError::Invalid(
                e @ (LedgerError::BadSignature { .. } | LedgerError::WrongNetwork { .. }),
            ))) => {
                self.punish(conn, None, Offence::InvalidTx(e.to_string()));
            }
            Err(e) => debug!(conn, %id, "transaction not pooled: {e}"),
        }
    }

    fn serve_sync(&mut self, conn: ConnId, locator: &[BlockHash], stop: BlockHash) {
        if !self.flush() {
            return;
        }
        let start = locator
            .iter()
            .find(|h| self.chain.is_on_best_chain(h))
            .and_then(|h| self.chain.block(h))
            .map_or(1, |b| b.header.height + 1);
        let budget = self.config.max_frame.saturating_sub(64 * 1024);
        let mut blocks = Vec::new();
        let mut size = 0usize;
        let mut height = start;
        while blocks.len() < MAX_SYNC_BLOCKS {
            let Some(block) = self.chain.block_at_height(height) else {
                break;
            };
            size = size.saturating_add(block.size() + 16);
            if size > budget && !blocks.is_empty() {
                break;
            }
            let hash = block.hash();
            blocks.push((**block).clone());
            height += 1;
            if hash == stop {
                break;
            }
        }
        let more = height <= self.chain.height() && blocks.last().is_none_or(|b| b.hash() != stop);
        if let Some(p) = self.peers.get_mut(&conn) {
            for b in &blocks {
                p.known_blocks.insert(b.hash());
            }
        }
        self.send(
            conn,
            Message::SyncBlocks {
                blocks: Bounded::truncating(blocks),
                more,
            },
        );
    }

    // ---- blocks -------------------------------------------------------

    /// Offers a block to the chain. Returns the new best-chain change, if
    /// the block moved the tip. `from` is the peer that sent it and whether
    /// we had asked for it by hash.
    fn accept_block(
        &mut self,
        block: Block<Tx>,
        from: Option<(ConnId, bool)>,
    ) -> Option<Reorg<Tx>> {
        let hash = block.hash();
        let now = self.clock.now_ms();
        match self.chain.insert(block, now) {
            Ok(Inserted::NewBest(reorg)) => {
                self.unsaved.extend(reorg.applied.iter().cloned());
                self.on_new_best(&reorg);
                Some(reorg)
            }
            Ok(Inserted::SideBranch) => {
                if let Some(b) = self.chain.block(&hash).cloned() {
                    self.emit(NodeEvent::Fork {
                        height: b.header.height,
                        hash,
                    });
                    self.unsaved.push(b);
                }
                self.metrics.blocks_accepted += 1;
                debug!(%hash, "block on a side branch");
                None
            }
            Ok(Inserted::Orphan { missing_parent }) => {
                if let Some((conn, solicited)) = from {
                    if !solicited {
                        self.punish(conn, None, Offence::Orphan(missing_parent.to_string()));
                    }
                    if self
                        .peers
                        .get(&conn)
                        .is_some_and(|p| p.connected() && !p.syncing)
                    {
                        self.request_sync(conn);
                    }
                }
                None
            }
            Ok(Inserted::Duplicate) => None,
            Err(e) => {
                debug!(%hash, "block refused: {e}");
                *self
                    .metrics
                    .blocks_rejected
                    .entry(reject_reason(&e))
                    .or_insert(0) += 1;
                if let Some((conn, _)) = from {
                    let offence = match &e {
                        InsertError::Invalid(v) if !v.is_permanent() => {
                            Offence::FutureBlock(v.to_string())
                        }
                        other => Offence::InvalidBlock(other.to_string()),
                    };
                    self.punish(conn, None, offence);
                }
                None
            }
        }
    }

    fn on_new_best(&mut self, reorg: &Reorg<Tx>) {
        for block in &reorg.undone {
            for tx in &block.transactions {
                self.tx_index.remove(&chain_core::Transaction::id(tx));
            }
        }
        for block in &reorg.applied {
            self.index_block(block);
        }
        self.metrics.blocks_accepted += reorg.applied.len() as u64;
        if reorg.is_reorg() {
            self.metrics.reorgs += 1;
            self.metrics.max_reorg_depth =
                self.metrics.max_reorg_depth.max(reorg.undone.len() as u64);
        }
        if reorg.is_reorg() {
            info!(
                undone = reorg.undone.len(),
                applied = reorg.applied.len(),
                tip = %reorg.new_tip,
                "reorg"
            );
        } else {
            debug!(height = self.chain.height(), tip = %reorg.new_tip, "new tip");
        }
        // Transactions of undone blocks, oldest block first, come back.
        let returned: Vec<SignedTx> = reorg
            .undone
            .iter()
            .rev()
            .flat_map(|b| b.transactions.iter())
            .filter_map(|t| match t {
                Tx::Signed(s) => Some(s.clone()),
                _ => None,
            })
            .collect();
        let returned_ids: Vec<TxId> = returned.iter().map(SignedTx::id).collect();
        self.mempool
            .rebuild(self.chain.state(), self.chain.height() + 1, returned);
        // Returned transactions are news to peers that dropped them when
        // they saw them mined.
        for id in returned_ids {
            if self.mempool.contains(&id) {
                for conn in self.live_peers() {
                    if let Some(p) = self.peers.get_mut(&conn) {
                        p.known_txs.forget(&id);
                    }
                }
                self.announce_tx(id);
            }
        }
        self.emit(NodeEvent::Tip {
            height: self.chain.height(),
            hash: reorg.new_tip,
            undone: reorg.undone.len(),
        });
        self.emit_mempool();
        // The tip moved: the current job mines on a stale parent.
        self.stop_miner();
        self.maybe_mine();
    }

    fn announce_new_best(&mut self, reorg: &Reorg<Tx>) {
        // Announcing the tip is enough: a peer missing its ancestors syncs.
        self.announce_block(reorg.new_tip);
    }

    // ---- mining -------------------------------------------------------

    fn should_mine(&self) -> bool {
        !self.mine_requests.is_empty()
            || match self.mining {
                MiningMode::Off => false,
                MiningMode::WhenPending => !self.mempool.is_empty(),
                MiningMode::Continuous => true,
            }
    }

    fn stop_miner(&mut self) {
        if let Some(job) = self.job.take() {
            job.stop.store(true, Ordering::Relaxed);
        }
    }

    /// Starts a job if the node should mine and none is running.
    fn maybe_mine(&mut self) {
        if self.job.is_some() || !self.should_mine() || self.cancel.is_cancelled() {
            return;
        }
        let params = self.chain.params();
        let mut transactions = vec![Tx::Coinbase {
            to: self.config.miner_account,
            height: self.chain.height() + 1,
        }];
        let mut size = Header::SIZE + 64;
        for tx in self.mempool.txs() {
            let tx = Tx::Signed(tx.clone());
            let len = chain_core::Transaction::encoded_len(&tx);
            if transactions.len() >= params.max_block_txs || size + len > params.max_block_bytes {
                break;
            }
            size += len;
            transactions.push(tx);
        }
        let header = self.chain.template(&transactions, self.clock.now_ms());
        let stop = Arc::new(AtomicBool::new(false));
        let id = self.next_job;
        self.next_job += 1;
        self.job = Some(MinerJob {
            id,
            stop: stop.clone(),
            block: Block {
                header,
                transactions,
            },
        });
        let miner = self.miner;
        let core = self.tx.clone();
        self.tracker.spawn_blocking(move || {
            let outcome = match miner.mine(&header, &stop) {
                Ok(outcome) => outcome,
                Err(_) => MineOutcome::Exhausted,
            };
            let _ = core.blocking_send(CoreMsg::Mined { job: id, outcome });
        });
    }

    fn on_mined(&mut self, job: u64, outcome: MineOutcome) {
        if self.job.as_ref().is_none_or(|j| j.id != job) {
            return; // A stale job, stopped by a new tip.
        }
        let Some(current) = self.job.take() else {
            return;
        };
        match outcome {
            MineOutcome::Found(header) => {
                let mut block = current.block;
                block.header = header;
                let hash = block.hash();
                info!(height = header.height, %hash, txs = block.transactions.len(), "mined a block");
                let work = header.target.to_target().map_or(0.0, |t| t.work().as_f64());
                if let Some(reorg) = self.accept_block(block, None) {
                    self.metrics.blocks_mined += 1;
                    self.metrics.work_mined += work;
                    self.announce_new_best(&reorg);
                    if let Some(front) = self.mine_requests.front_mut() {
                        front.0 = front.0.saturating_sub(1);
                        front.1.push(hash);
                    }
                    if self.mine_requests.front().is_some_and(|f| f.0 == 0)
                        && let Some((_, hashes, reply)) = self.mine_requests.pop_front()
                    {
                        let _ = reply.send(hashes);
                    }
                }
            }
            MineOutcome::Cancelled => {}
            MineOutcome::Exhausted => warn!("the miner exhausted its template"),
        }
        // Accepting the block may have started the next job before the
        // last requested block was counted.
        if !self.should_mine() {
            self.stop_miner();
        }
        self.maybe_mine();
    }

    // ---- commands -----------------------------------------------------

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Query(f) => {
                let now = Instant::now();
                let view = NodeView {
                    tx_index: &self.tx_index,
                    metrics: &self.metrics,
                    chain: &self.chain,
                    mempool: &self.mempool,
                    peers: self
                        .peers
                        .iter()
                        .filter(|(_, p)| p.live())
                        .map(|(c, p)| PeerInfo {
                            conn: *c,
                            remote: p.remote,
                            listen_addr: p.listen_addr,
                            direction: p.direction,
                            node_id: p.node_id,
                            best_height: p.best_height,
                            score: p.score.points(now),
                        })
                        .collect(),
                    bans: self.bans.active(now),
                    node_id: self.node_id,
                    mining: self.mining,
                };
                f(&view);
            }
            Command::SubmitTx { tx, reply } => {
                let result = self.mempool.add(*tx);
                if let Ok(id) = &result {
                    self.announce_tx(*id);
                    self.emit_mempool();
                    self.maybe_mine();
                }
                let _ = reply.send(result);
            }
            Command::Mine { count, reply } => {
                if count == 0 {
                    let _ = reply.send(Vec::new());
                    return;
                }
                self.mine_requests.push_back((count, Vec::new(), reply));
                self.maybe_mine();
            }
            Command::SetMining(mode) => {
                self.mining = mode;
                if !self.should_mine() {
                    self.stop_miner();
                }
                self.maybe_mine();
            }
            Command::Partition(addrs) => {
                self.partitioned.extend(addrs.iter().copied());
                let cut: Vec<ConnId> = self
                    .peers
                    .iter()
                    .filter(|(_, p)| {
                        p.listen_addr.is_some_and(|a| self.partitioned.contains(&a))
                            || (p.direction == Direction::Outbound
                                && self.partitioned.contains(&p.remote))
                    })
                    .map(|(c, _)| *c)
                    .collect();
                for conn in cut {
                    self.drop_peer(conn, Some((Reason::Other, "partitioned by the operator")));
                }
                info!(cut = addrs.len(), "partitioned");
            }
            Command::Heal => {
                let healed: Vec<SocketAddr> = self.partitioned.drain().collect();
                let now = Instant::now();
                for addr in healed {
                    self.learn_addr(addr);
                    if let Some(e) = self.addrs.get_mut(&addr) {
                        e.next_attempt = now;
                        e.backoff = self.config.min_backoff;
                    }
                }
                info!("partition healed");
                self.dial_due();
            }
            Command::AddPeer(addr) => {
                self.learn_addr(addr);
                if let Some(e) = self.addrs.get_mut(&addr) {
                    e.next_attempt = Instant::now();
                    e.backoff = self.config.min_backoff;
                }
                self.dial_due();
            }
        }
    }
}

/// Inserts stored blocks into a fresh chain at start. Blocks that no longer
/// insert (a rule changed, the store is damaged) are reported, not fatal.
pub(crate) fn replay(chain: &mut NodeChain, blocks: Vec<Block<Tx>>, now_ms: u64) -> usize {
    let mut refused = 0;
    for block in blocks {
        if let Err(e) = chain.insert(block, now_ms) {
            warn!("stored block refused: {e}");
            refused += 1;
        }
    }
    refused
}

/// Picks a random node id.
pub(crate) fn random_node_id() -> NodeId {
    let mut id = [0u8; 32];
    for chunk in id.chunks_mut(8) {
        chunk.copy_from_slice(&crate::peer::random_u64().to_le_bytes());
    }
    NodeId(id)
}

/// A short, stable name for why a block was refused (a metrics label).
fn reject_reason(e: &InsertError<LedgerError>) -> String {
    match e {
        InsertError::Invalid(v) => {
            let debug = format!("{v:?}");
            debug
                .split(|c: char| !c.is_alphanumeric())
                .next()
                .unwrap_or("invalid")
                .to_string()
        }
        InsertError::KnownInvalid(_) => "KnownInvalid".to_string(),
        InsertError::State { .. } => "State".to_string(),
    }
}

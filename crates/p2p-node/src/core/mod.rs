//! The core: the one task that owns the chain, the mempool and the store,
//! and the parts that own the rest.
//!
//! Everything else talks to it through one bounded channel of [`CoreMsg`]
//! with `oneshot` replies (the shape of reth's network manager): connection
//! tasks forward what their peers send, the miner hands in solved headers,
//! and the [`crate::NodeHandle`] asks questions and gives commands. No lock
//! is shared, so no lock is ever held across an `.await`, and the order in
//! which the core sees events is the order in which it acts on them.
//!
//! # Parts
//!
//! [`Core`] is a coordinator over parts that each own their state and
//! answer with decisions as values, so each is tested alone:
//!
//! - `inbox`: [`CoreMsg`] and [`Command`], what the core is sent.
//! - `view`: what the outside reads ([`NodeView`], [`NodeEvent`],
//!   [`Metrics`], [`PeerInfo`], [`ConnId`], [`Direction`]).
//! - `published`: the [`Snapshot`] published after every event, which
//!   readers use without asking the core.
//! - `peers`: the peer table (connected peers, address book, bans, dial
//!   planning, penalties, partitions).
//! - `requests`: what was asked of whom and when; `tx_requests` bounds
//!   the transactions asked of each peer at a time.
//! - `serve`: the answers to `GetTxs`, `GetBlocks` and `GetSync`, sent as
//!   each peer's upload allowance lets them.
//! - `gossip`: the core's handlers of what live peers send, routing each
//!   message to the parts above.
//! - `blocks`: the core's handling of blocks: accepting one, following the
//!   best tip (index, mempool, events), and building and taking in mined
//!   blocks.
//! - `mining`: the miner's job, its stop flag and the "mine N" requests.
//! - `durable`: a block is durable before it is announced. It owns the
//!   store handle, the transaction-index changes not yet saved, the tip
//!   waiting to be announced, the "mine N" answers and the handles waiting
//!   for a save, the snapshot counters and whether the store failed; it
//!   decides when to commit (one commit per burst) and hands back what a
//!   commit released (the tip to announce, the answers), which the core
//!   only routes: the tip through `gossip`'s `announce_saved_block_to`,
//!   the one place that tells peers of a block.
//! - `commands`: the core's handling of the node handle's commands.
//!
//! The core itself keeps the chain (lent to `durable` for each commit),
//! the mempool, the event channel and the metrics; it accepts blocks and
//! follows the best tip.
//!
//! The core never waits on a peer: it hands messages to each connection's
//! bounded queue with `try_send`, and a peer whose queue is full is too slow
//! and is dropped, so one slow peer cannot grow the node's memory.

mod blocks;
mod commands;
mod durable;
mod gossip;
mod inbox;
mod mining;
mod peers;
mod published;
mod repair;
mod requests;
mod serve;
mod tx_requests;
mod view;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};
use wire::{Bounded, Handshake, Message, NodeId, PROTOCOL_VERSION, Reason};

use crate::clock::Clock;
use crate::config::NodeConfig;
use crate::mempool::Mempool;
use crate::penalty::Offence;
use crate::store::{BlockStore, DamagedBlocks};
use durable::{Durable, Released, Stopped};
use mining::MinerDriver;
use peers::PeerTable;
use requests::Requests;

pub(crate) use inbox::{Command, CoreMsg};
pub use published::{RECENT_HEIGHTS, RecentBlocks, Snapshot};
pub use view::{ConnId, Direction, Metrics, NodeChain, NodeEvent, NodeView, PeerInfo};

/// How the core opens an outbound connection: starts a connection task
/// for connection `conn` to `addr` (the node wires it to the transport).
pub(crate) type Dialer = Box<dyn Fn(ConnId, SocketAddr) + Send>;

/// Everything a core is built from.
pub(crate) struct CoreParts {
    /// The node's configuration.
    pub config: Arc<NodeConfig>,
    /// This node's id.
    pub node_id: NodeId,
    /// The address peers are told to dial.
    pub listen_addr: Option<SocketAddr>,
    /// The chain, loaded from the store.
    pub chain: NodeChain,
    /// Where accepted blocks are saved (shared with the chain, which reads
    /// old bodies back from it).
    pub store: Arc<dyn BlockStore>,
    /// Where the chain's archive records the stored blocks it finds
    /// damaged; the core takes them and repairs them (`core/repair.rs`).
    pub damaged: Arc<DamagedBlocks>,
    /// The blocks the restore left out because a body was damaged: the
    /// core fetches them again (`core/repair.rs`).
    pub unrestored: Vec<chain_core::Unrestored>,
    /// The height of the state snapshot the chain was restored from, if
    /// the store had one.
    pub snapshot_height: Option<u64>,
    /// Block timestamps.
    pub clock: Arc<dyn Clock>,
    /// The core's own inbox, for the tasks it starts (the miner).
    pub inbox: mpsc::Sender<CoreMsg>,
    /// Stops the node.
    pub cancel: CancellationToken,
    /// The node's tasks.
    pub tracker: TaskTracker,
    /// Connection numbers, shared with the accept loop.
    pub next_conn: Arc<AtomicU64>,
    /// Where changes are announced to watchers.
    pub events: tokio::sync::broadcast::Sender<NodeEvent>,
    /// How outbound connections are opened.
    pub dialer: Dialer,
    /// How proof of work is found.
    pub miner: Arc<dyn crate::mine::Mine>,
    /// The seed of the peer table's random choices.
    pub seed: [u8; 32],
}

/// The core's state.
pub(crate) struct Core {
    config: Arc<NodeConfig>,
    node_id: NodeId,
    /// The address peers are told to dial.
    listen_addr: Option<SocketAddr>,
    chain: NodeChain,
    mempool: Mempool,
    /// The damaged blocks wanted from peers, and the repair request out.
    repairs: repair::Repairs,
    /// The store, and everything between accepting a block and telling
    /// anyone of it (see `durable.rs`). Once the store failed, the node is
    /// stopping, and saves, announces, answers and publishes nothing more.
    durable: Durable,
    /// Handles waiting for the next publication.
    publish_waiters: Vec<inbox::PublishWaiter>,
    clock: Arc<dyn Clock>,
    cancel: CancellationToken,
    next_conn: Arc<AtomicU64>,
    dialer: Dialer,
    peers: PeerTable,
    requests: Requests,
    miner: MinerDriver,
    /// Counters for `/metrics`.
    metrics: Metrics,
    /// When the mempool was last saved, and whether it changed since.
    mempool_saved: Instant,
    mempool_dirty: bool,
    /// Whether a ban was added since the bans were last saved.
    bans_dirty: bool,
    /// What readers see without asking the core: the snapshot published
    /// after each event, and the event's changes for watchers.
    published: published::Publisher,
}

/// How often a changed mempool is saved (it is also saved at shutdown).
const MEMPOOL_SAVE_EVERY: Duration = Duration::from_secs(10);

impl Core {
    /// A core over a chain that is already loaded.
    pub fn new(parts: CoreParts) -> Core {
        let CoreParts {
            config,
            node_id,
            listen_addr,
            chain,
            store,
            damaged,
            unrestored,
            clock,
            inbox,
            cancel,
            tracker,
            next_conn,
            events,
            dialer,
            miner,
            seed,
            snapshot_height,
        } = parts;
        let mempool = Mempool::new(
            chain.state(),
            chain.height() + 1,
            config.mempool_max,
            config.mempool_max_per_account,
        );
        let now = Instant::now();
        let published = published::Publisher::new(&chain, node_id, config.mining, events);
        let durable = Durable::new(store, config.snapshot_every, &chain, snapshot_height);
        let mut core = Core {
            peers: PeerTable::new(config.clone(), node_id, listen_addr, now, seed),
            requests: Requests::default(),
            miner: MinerDriver::new(mining::DriverParts {
                miner,
                mode: config.mining,
                account: config.miner_account,
                interval: config.block_interval,
                core: inbox,
                tracker,
            }),
            config,
            node_id,
            listen_addr,
            durable,
            chain,
            mempool,
            repairs: repair::Repairs::new(damaged),
            publish_waiters: Vec::new(),
            clock,
            cancel,
            next_conn,
            dialer,
            metrics: Metrics {
                started: Some(now),
                ..Metrics::default()
            },
            mempool_saved: now,
            mempool_dirty: false,
            bans_dirty: false,
            published,
        };
        core.repairs.want_unrestored(unrestored);
        core.reload_mempool();
        core.reload_bans();
        core.publish(true);
        core
    }

    /// A receiver of the snapshots the core publishes.
    pub fn snapshots(&self) -> tokio::sync::watch::Receiver<Arc<Snapshot>> {
        self.published.subscribe()
    }

    /// Runs until the node is cancelled.
    pub async fn run(mut self, mut rx: mpsc::Receiver<CoreMsg>) {
        let mut tick =
            tokio::time::interval(self.config.tick_interval.max(Duration::from_millis(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.after_event(true);
        loop {
            // Biased, so a simulated run is reproducible; the tick comes
            // before messages so a busy inbox never starves it.
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => break,
                _ = tick.tick() => self.on_tick(),
                // Transaction announcements are due: `after_event` sends them.
                () = tokio::time::sleep_until(self.mempool.announcements_due().unwrap_or_else(Instant::now)),
                    if self.mempool.announcements_due().is_some() => {}
                // The block interval has passed: `after_event` mines.
                () = tokio::time::sleep_until(self.miner.wake_at().unwrap_or_else(Instant::now)),
                    if self.miner.wake_at().is_some() => self.miner.woken(),
                msg = rx.recv() => match msg {
                    Some(msg) => self.dispatch(msg),
                    None => break,
                },
            }
            self.after_event(rx.is_empty());
        }
        self.miner.stop();
        // A clean stop leaves a snapshot at the tip: the next start applies
        // nothing again.
        self.flush_with(true);
        self.save_mempool(true);
        self.save_bans();
        // Dropping every sender lets each connection task finish.
        self.peers.clear();
        info!("core stopped");
    }

    /// What follows every event: save what was accepted (unless more events
    /// wait, see `durable.rs`) and route what that released, tell watchers
    /// whether the peer count changed, publish the snapshot (then the
    /// step's events) if nothing waits to be saved, and start mining if the
    /// node should. Jobs start only here, so a block mined for a request is
    /// counted before the next job begins.
    fn after_event(&mut self, inbox_empty: bool) {
        // While more events wait (a burst of blocks, a "mine N" request),
        // saving waits too, so that the burst is one commit.
        let more_coming = !inbox_empty || self.miner.has_requests();
        let released = self
            .durable
            .after_event(&mut self.chain, &mut self.repairs, more_coming);
        self.route(released);
        self.ask_for_damaged();
        self.send_tx_requests();
        self.send_tx_announcements();
        let saved = self.durable.is_saved(&self.chain) && !self.cancel.is_cancelled();
        if self.bans_dirty {
            self.save_bans();
        }
        self.published.live_peers(self.peers.live_count());
        // Only once what the event accepted is durable.
        if saved {
            self.publish(true);
            self.durable.answer_saved_waiters();
        }
        let mempool_published = if saved {
            true
        } else if !self.durable.failed() && !self.cancel.is_cancelled() {
            self.publish(false)
        } else {
            false
        };
        if mempool_published {
            for waiter in self.publish_waiters.drain(..) {
                waiter.answer();
            }
        }
        self.maybe_mine();
    }

    /// Saves what was accepted since the last save (see
    /// [`Durable::flush`]) and routes what waited for it: what a caller
    /// that serves or tells the tip needs. `false` if the node cannot save
    /// (a failing store stops it: it cannot promise that what it announces
    /// survives a crash).
    fn flush(&mut self) -> bool {
        self.flush_with(false)
    }

    /// [`Core::flush`], with a snapshot whatever the counters say if
    /// `snapshot` (at a clean stop).
    fn flush_with(&mut self, snapshot: bool) -> bool {
        let released = self
            .durable
            .flush(&mut self.chain, &mut self.repairs, snapshot);
        self.route(released)
    }

    /// Routes what a commit released: the damaged blocks it wrote back are
    /// repaired, the "mine N" requests answered, and the new tip announced
    /// to every live peer. A failed commit stops the node, with nothing
    /// announced or answered. Returns whether the node can still save.
    fn route(&mut self, released: Result<Released, Stopped>) -> bool {
        let Ok(released) = released else {
            self.cancel.cancel();
            return false;
        };
        self.repairs.repaired(&released.repaired);
        for reply in released.replies {
            reply.send();
        }
        if let Some(tip) = released.announce {
            for conn in self.peers.live_conns() {
                self.announce_saved_block_to(conn, tip);
            }
        }
        true
    }

    fn dispatch(&mut self, msg: CoreMsg) {
        let now = Instant::now();
        match msg {
            CoreMsg::Hello { reply } => {
                // The tip told to a peer is a saved one; a node that
                // cannot save answers nothing.
                if self.flush() {
                    let _ = reply.send(self.hello());
                }
            }
            CoreMsg::Admit {
                conn,
                remote,
                direction,
                hello,
                sender,
                queued,
                reply,
            } => {
                let answer = self.admit(conn, remote, direction, &hello, (sender, queued), now);
                if self.flush() {
                    let _ = reply.send(answer.map(|()| Box::new(self.hello())));
                }
            }
            CoreMsg::Live { conn } => self.on_live(conn),
            CoreMsg::Message { conn, message } => self.on_message(conn, message),
            CoreMsg::Txs { conn, txs } => {
                for (tx, check) in txs {
                    if !self.peers.is_connected(conn) {
                        break;
                    }
                    self.on_tx(conn, tx, Some(check));
                }
            }
            CoreMsg::Offence {
                conn,
                remote,
                offence,
            } => {
                self.punish_at(conn, Some(remote), &offence, now);
            }
            CoreMsg::Gone { conn } => {
                self.peers.on_gone(conn, now);
                self.mempool.forget_peer(conn);
                let retries = self.requests.forget_peer(conn, now);
                self.ask_again(retries);
            }
            CoreMsg::DialFailed { conn, addr, error } => {
                if self.peers.dial_failed(conn, addr, now) {
                    warn!(
                        %addr,
                        "cannot reach peer {addr}: {error} (is a node listening there?); \
                         retrying in the background"
                    );
                }
            }
            CoreMsg::Mined { job, outcome } => {
                if let Some((block, paid_to)) = self.miner.finished(job, outcome) {
                    self.on_mined(block, paid_to);
                }
            }
            CoreMsg::Command(c) => self.on_command(c),
        }
    }

    /// Publishes the snapshot: all of it if `saved` (everything accepted is
    /// durable), else what does not wait for a save (see
    /// [`published::Publisher::publish_unsaved`]). Returns whether the
    /// mempool part is current.
    fn publish(&mut self, saved: bool) -> bool {
        let from = published::Sources {
            chain: &self.chain,
            mempool: &self.mempool,
            mining: self.miner.mode(),
            peers: self.peers.infos(Instant::now()),
            metrics: &self.metrics,
        };
        if saved {
            self.published.publish(&from);
            true
        } else {
            self.published.publish_unsaved(&from)
        }
    }

    /// Tells watchers of `event` once the step's snapshot is published.
    fn emit(&mut self, event: NodeEvent) {
        self.published.defer(event);
    }

    /// The mempool changed: tell watchers, and save it soon.
    fn emit_mempool(&mut self) {
        self.mempool_dirty = true;
        self.emit(NodeEvent::Mempool {
            size: self.mempool.len(),
        });
    }

    // ---- peers --------------------------------------------------------

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
        hello: &Handshake,
        queue: (mpsc::Sender<Message>, Arc<std::sync::atomic::AtomicUsize>),
        now: Instant,
    ) -> Result<(), (Reason, String)> {
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
        self.peers.admit(conn, remote, direction, hello, queue, now)
    }

    fn on_live(&mut self, conn: ConnId) {
        let Some(work) = self.peers.on_live(conn) else {
            return;
        };
        self.send(conn, Message::GetAddrs);
        if work > self.chain.total_work() {
            self.request_sync(conn);
        }
        // Let the peer know what we have that it may not: our tip, and
        // every pending transaction (announcements made while it was not
        // connected, after a partition say, never reached it).
        let tip = self.chain.tip();
        self.announce_block_to(conn, tip);
        let fresh = self.peers.tell_txs(conn, self.mempool.ids());
        for chunk in fresh.chunks(wire::message::MAX_INVENTORY) {
            self.send(
                conn,
                Message::AnnounceTxs(Bounded::truncating(chunk.to_vec())),
            );
        }
    }

    /// Takes the damaged blocks the archive found and sends the next
    /// repair request, if one is due (`core/repair.rs`).
    fn ask_for_damaged(&mut self) {
        self.repairs.take_found(&self.chain);
        if self.durable.failed() {
            return;
        }
        let live = self.peers.live_conns();
        if let Some((conn, wanted)) =
            self.repairs
                .request(&live, &mut self.requests, Instant::now())
        {
            self.send(conn, Message::GetBlocks(Bounded::truncating(wanted)));
        }
    }

    fn punish(&mut self, conn: ConnId, offence: Offence) {
        self.punish_at(conn, None, &offence, Instant::now());
    }

    fn punish_at(
        &mut self,
        conn: ConnId,
        remote: Option<SocketAddr>,
        offence: &Offence,
        now: Instant,
    ) {
        use peers::Punished;
        if let Punished::Banned | Punished::BannedBeforeHandshake =
            self.peers.punish(conn, remote, offence, now)
        {
            self.bans_dirty = true;
        }
    }

    fn dial_due(&mut self) {
        for addr in self.peers.dial_plan(Instant::now()) {
            let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
            self.peers.dialing(conn, addr);
            (self.dialer)(conn, addr);
        }
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        self.peers.expire_bans(now);
        self.mempool.expire_orphans(now);
        let retries = self.requests.expire(now, self.config.request_timeout);
        self.ask_again(retries);
        self.dial_due();
        if now.saturating_duration_since(self.mempool_saved) >= MEMPOOL_SAVE_EVERY {
            self.save_mempool(false);
        }
        // Short of outbound peers and of addresses: ask a peer for more.
        if let Some(conn) = self.peers.addr_request(now) {
            self.send(conn, Message::GetAddrs);
        }
    }

    // ---- the mempool and bans, kept for the next start ----------------

    /// Re-admits the transactions saved with the store (checked again
    /// against the current tip; those that no longer apply are let go).
    fn reload_mempool(&mut self) {
        let saved = self.durable.load_mempool();
        let count = saved.len();
        let kept = saved
            .into_iter()
            .filter(|tx| self.mempool.add(tx.clone(), None).is_ok())
            .count();
        if count > 0 {
            info!(kept, of = count, "reloaded the saved mempool");
        }
    }

    /// Saves the mempool if it changed (or always, with `force`).
    fn save_mempool(&mut self, force: bool) {
        if (!self.mempool_dirty && !force) || self.durable.failed() {
            return;
        }
        self.mempool_dirty = false;
        self.mempool_saved = Instant::now();
        self.durable.save_mempool(self.mempool.txs());
    }

    /// Bans again what the store says a previous run banned, for the time
    /// left (bans persist across restarts until they expire).
    fn reload_bans(&mut self) {
        if let Some(left) = self.durable.load_bans(self.clock.now_ms()) {
            self.peers.restore_bans(left, Instant::now());
        }
    }

    /// Saves the active bans with their expiries in wall-clock time.
    fn save_bans(&mut self) {
        self.bans_dirty = false;
        if !self.durable.failed() {
            let now_ms = self.clock.now_ms();
            self.durable
                .save_bans(self.peers.bans(Instant::now()), now_ms);
        }
    }
}

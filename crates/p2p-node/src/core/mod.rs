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
//! answer with decisions as values, so each is tested alone. `impl Core`
//! is this file (the loop, saving and publishing, the handle's commands)
//! and `intake.rs`: it routes each event to the parts and applies what
//! they answer, in a fixed order.
//!
//! - `inbox`: [`CoreMsg`] and [`Command`], what the core is sent.
//! - `intake`: the rest of `impl Core`: what live peers send, and the
//!   blocks the core takes in (from peers and its miner) and how it
//!   follows a new tip.
//! - `view`: what the outside reads ([`NodeView`], [`NodeEvent`],
//!   [`Metrics`] and how they count, [`PeerInfo`], [`ConnId`],
//!   [`Direction`]).
//! - `published`: the [`Snapshot`] published after every event, which
//!   readers use without asking the core.
//! - `peers`: the peer table (connected peers, address book, bans and
//!   whether they changed, dial planning, penalties, partitions, what each
//!   peer knows, our handshake).
//! - `dialing`: connection numbers and the dialer; it dials what the peer
//!   table plans.
//! - `requests`: what was asked of whom and when, and the `GetBlocks` and
//!   `GetSync` to send; `tx_requests` bounds the transactions asked of
//!   each peer at a time.
//! - `serve`: the answers to `GetTxs`, `GetBlocks` and `GetSync`, sent as
//!   each peer's upload allowance lets them.
//! - `gossip`: transaction inventories as messages, which refused
//!   transactions are the sender's fault, the network check of a
//!   handshake.
//! - `blocks`: offering a block to the chain, answered as an outcome
//!   (`Accepted`: a new best tip, a side branch, an orphan, a refusal and
//!   the sender's offence, an unreadable store).
//! - the mempool (`crate::mempool`): admission, orphan transactions, the
//!   trickle queue of announcements, and following a new tip (it names the
//!   undone transactions to announce again).
//! - `miner_driver`: the miner's job, the block interval, the template, its stop
//!   flag and the "mine N" requests.
//! - `repair`: the damaged stored blocks wanted from peers.
//! - `durable`: a block is durable before it is announced. It owns the
//!   store handle, the transaction-index changes not yet saved, the tip
//!   waiting to be announced, the "mine N" answers and the handles waiting
//!   for a save, the snapshot counters, whether the store failed, and when
//!   the mempool is saved; it decides when to commit (one commit per
//!   burst) and hands back what a commit released (the tip to announce,
//!   the answers), which the core only routes: the tip through
//!   `announce_saved_block_to`, the one place that tells peers of a block.
//!
//! The core itself keeps the chain (lent to `blocks` for each insert and
//! to `durable` for each commit), the mempool, the clock and the metrics.
//!
//! The core never waits on a peer: it hands messages to each connection's
//! bounded queue with `try_send`, and a peer whose queue is full is too slow
//! and is dropped, so one slow peer cannot grow the node's memory.

mod blocks;
mod dialing;
mod durable;
mod gossip;
mod inbox;
mod intake;
mod miner_driver;
mod peers;
mod published;
mod repair;
mod requests;
mod serve;
mod tx_requests;
mod view;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use wire::{Bounded, Message};

use crate::clock::Clock;
use crate::config::NodeConfig;
use crate::mempool::{Mempool, Offered};
use crate::penalty::Offence;
use dialing::Dialing;
use durable::{Durable, Released, Stopped};
use inbox::QueryFn;
use miner_driver::MinerDriver;
use peers::PeerTable;
use requests::Requests;

pub(crate) use inbox::{Command, CoreMsg, CoreParts};
pub use published::{RECENT_HEIGHTS, RecentBlocks, Snapshot};
pub use view::{ConnId, Direction, Metrics, NodeChain, NodeEvent, NodeView, PeerInfo};

/// The core: the chain, the mempool, the clock and the metrics, and the
/// parts it coordinates (see the module docs).
pub(crate) struct Core {
    config: Arc<NodeConfig>,
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
    dialing: Dialing,
    peers: PeerTable,
    requests: Requests,
    miner: MinerDriver,
    /// Counters for `/metrics`.
    metrics: Metrics,
    /// What readers see without asking the core: the snapshot published
    /// after each event, and the event's changes for watchers.
    published: published::Publisher,
}

impl Core {
    /// A core over a chain that is already loaded.
    pub fn new(p: CoreParts) -> Core {
        let (config, chain) = (p.config, p.chain);
        let (max, per_account) = (config.mempool_max, config.mempool_max_per_account);
        let mempool = Mempool::new(chain.state(), chain.height() + 1, max, per_account);
        let now = Instant::now();
        let published = published::Publisher::new(&chain, p.node_id, config.mining, p.events);
        let durable = Durable::new(
            p.store,
            config.snapshot_every,
            &chain,
            p.snapshot_height,
            now,
        );
        let mut core = Core {
            peers: PeerTable::new(config.clone(), p.node_id, p.listen_addr, now, p.seed),
            requests: Requests::default(),
            miner: MinerDriver::new(miner_driver::DriverParts {
                miner: p.miner,
                mode: config.mining,
                account: config.miner_account,
                interval: config.block_interval,
                core: p.inbox,
                tracker: p.tracker,
            }),
            config,
            durable,
            chain,
            mempool,
            repairs: repair::Repairs::new(p.damaged),
            publish_waiters: Vec::new(),
            clock: p.clock,
            cancel: p.cancel,
            dialing: Dialing::new(p.next_conn, p.dialer),
            metrics: Metrics {
                started: Some(now),
                ..Metrics::default()
            },
            published,
        };
        core.repairs.want_unrestored(p.unrestored);
        // The saved mempool and bans, kept for this start.
        let saved = core.durable.load_mempool();
        core.mempool.reload(saved);
        if let Some(left) = core.durable.load_bans(core.clock.now_ms()) {
            core.peers.restore_bans(left, Instant::now());
        }
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
        self.durable.save_changed_mempool(self.mempool.txs(), true);
        self.save_bans();
        // Dropping every sender lets each connection task finish.
        self.peers.clear();
        info!("core stopped");
    }

    /// What follows every event: save what was accepted (unless more events
    /// wait, see `durable.rs`) and route what that released, send the
    /// requests and announcements due, save new bans, tell watchers
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
        // The slots this event freed are refilled by one `GetTxs` a peer.
        let pool = &self.mempool;
        let asked = self
            .requests
            .tx_requests(|id| pool.knows(id), Instant::now());
        for (conn, ids) in asked {
            self.send_all(conn, gossip::tx_inventory(&ids, Message::GetTxs));
        }
        // The queued announcements, one `AnnounceTxs` a peer, once due.
        for (conn, ids) in self.mempool.take_due_announcements(Instant::now()) {
            self.send_all(conn, gossip::tx_inventory(&ids, Message::AnnounceTxs));
        }
        let saved = self.durable.is_saved(&self.chain) && !self.cancel.is_cancelled();
        if self.peers.take_bans_changed() {
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
        if !self.cancel.is_cancelled() {
            let (chain, pool) = (&self.chain, &self.mempool);
            self.miner
                .maybe_start(chain, pool, &*self.clock, Instant::now());
        }
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
                    let _ = reply.send(self.peers.hello(&self.chain));
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
                let answer =
                    gossip::check_network(self.chain.genesis_hash(), &hello).and_then(|()| {
                        let queue = (sender, queued);
                        self.peers
                            .admit(conn, remote, direction, &hello, queue, now)
                    });
                if self.flush() {
                    let _ = reply.send(answer.map(|()| Box::new(self.peers.hello(&self.chain))));
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
                self.peers.punish(conn, Some(remote), &offence, now);
            }
            CoreMsg::Gone { conn } => {
                self.peers.on_gone(conn, now);
                self.mempool.forget_peer(conn);
                let retries = self.requests.forget_peer(conn, now);
                self.send_each(retries.into_messages());
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

    /// The mempool changed: tell watchers once the step's snapshot is
    /// published, and save it soon.
    fn emit_mempool(&mut self) {
        self.durable.mempool_changed();
        let size = self.mempool.len();
        self.published.defer(NodeEvent::Mempool { size });
    }

    // ---- peers --------------------------------------------------------

    fn on_live(&mut self, conn: ConnId) {
        let Some(work) = self.peers.on_live(conn) else {
            return;
        };
        self.peers.send(conn, Message::GetAddrs);
        if work > self.chain.total_work() {
            self.request_sync(conn);
        }
        // Let the peer know what we have that it may not: our tip, and
        // every pending transaction (announcements made while it was not
        // connected, after a partition say, never reached it).
        let tip = self.chain.tip();
        // A block is durable before anyone hears of it.
        if self.flush() {
            self.announce_saved_block_to(conn, tip);
        }
        let fresh = self.peers.tell_txs(conn, self.mempool.ids());
        self.send_all(conn, gossip::tx_inventory(&fresh, Message::AnnounceTxs));
    }

    /// Takes the damaged blocks the archive found and sends the next
    /// repair request, if one is due (`core/repair.rs`).
    fn ask_for_damaged(&mut self) {
        self.repairs.take_found(&self.chain);
        // Nothing wanted (the usual case): no peer list is built.
        if self.repairs.is_empty() || self.durable.failed() {
            return;
        }
        let live = self.peers.live_conns();
        if let Some((conn, wanted)) =
            self.repairs
                .request(&live, &mut self.requests, Instant::now())
        {
            self.peers
                .send(conn, Message::GetBlocks(Bounded::truncating(wanted)));
        }
    }

    /// Punishes `conn` for `offence` (a ban is saved after the event).
    fn punish(&mut self, conn: ConnId, offence: Offence) {
        self.peers.punish(conn, None, &offence, Instant::now());
    }

    /// Punishes `conn` for a request refused as past its upload allowance.
    fn punish_refused(&mut self, conn: ConnId, served: Result<(), Offence>) {
        if let Err(offence) = served {
            self.punish(conn, offence);
        }
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        self.peers.expire_bans(now);
        self.mempool.expire_orphans(now);
        let retries = self.requests.expire(now, self.config.request_timeout);
        self.send_each(retries.into_messages());
        self.dialing.dial_due(&mut self.peers, Instant::now());
        if self.durable.mempool_save_due(now) {
            self.durable.save_changed_mempool(self.mempool.txs(), false);
        }
        // Short of outbound peers and of addresses: ask a peer for more.
        if let Some(conn) = self.peers.addr_request(now) {
            self.peers.send(conn, Message::GetAddrs);
        }
    }

    /// Saves the active bans with their expiries in wall-clock time.
    fn save_bans(&mut self) {
        if !self.durable.failed() {
            let now_ms = self.clock.now_ms();
            self.durable
                .save_bans(self.peers.bans(Instant::now()), now_ms);
        }
    }

    // ---- the node handle's commands -----------------------------------

    /// Routes a command of the node's handle.
    fn on_command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Query(f) => self.query(f),
            Command::Published { saved, reply } => {
                // The handle's write is made visible at once: what waits
                // is saved now, and this event's end publishes.
                self.flush();
                if saved {
                    self.durable.wait_saved(reply);
                } else {
                    let waiter = inbox::PublishWaiter::Published(reply);
                    self.publish_waiters.push(waiter);
                }
            }
            // Its gossiped successors may be waiting for it: they come in
            // after it. A user's transaction never waits (`Mempool::offer`).
            Command::SubmitTx { tx, check, reply } => {
                match self.mempool.offer(*tx, check, None, now) {
                    Offered::Added { id, freed } => {
                        self.admitted(id, freed);
                        // Answered with the publication that shows it (what
                        // waits to be saved is saved now, as for `Published`).
                        self.flush();
                        let waiter = inbox::PublishWaiter::Submitted(reply, id);
                        self.publish_waiters.push(waiter);
                    }
                    Offered::Refused(e) => {
                        let _ = reply.send(Err(e));
                    }
                    Offered::Waiting { .. } | Offered::NotKept(_) => {}
                }
            }
            Command::Mine { count, to, reply } => self.miner.request(count, to, reply),
            Command::SetMining(mode) => self.miner.set_mode(mode, self.mempool.is_empty()),
            Command::Partition(addrs) => {
                let cut = self.peers.partition(&addrs);
                info!(cut, addrs = addrs.len(), "partitioned");
            }
            Command::Heal => {
                self.peers.heal(now);
                info!("partition healed");
                self.dialing.dial_due(&mut self.peers, Instant::now());
            }
            Command::AddPeer(addr) => {
                self.peers.watch(addr);
                self.peers.retry_now(addr, now);
                self.dialing.dial_due(&mut self.peers, Instant::now());
            }
        }
    }

    /// Runs a query of the node's handle on what is saved: what waits to
    /// be saved is saved first. A node whose store failed answers nothing
    /// (the caller sees it stopped).
    fn query(&mut self, f: QueryFn) {
        if !self.flush() {
            return;
        }
        let now = Instant::now();
        f(&NodeView {
            store: self.durable.store(),
            metrics: &self.metrics,
            chain: &self.chain,
            mempool: &self.mempool,
            peers: self.peers.infos(now),
            bans: self.peers.bans(now),
            node_id: self.peers.node_id(),
            mining: self.miner.mode(),
            dials_in_flight: self.peers.dials_in_flight(),
        });
    }
}

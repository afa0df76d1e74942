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
//! [`Core`] coordinates parts that each own their state and answer with
//! decisions as values, each tested alone; `impl Core` is this file only.
//! It keeps the chain (lent to the parts for a call), the mempool, the
//! clock and the metrics. The parts: `network` (`peers`, `requests`,
//! `tx_requests`, `dialing`, `serve`, `gossip`, `compact`, `download`), `blocks`,
//! `durable`, `housekeeping`, `miner_driver`, `repair`, `published` (the
//! [`Snapshot`]), `inbox`, `view`, `costs`. `docs/ARCHITECTURE.md` says
//! what each owns and walks a block and a tx through them.
//!
//! The core never waits on a peer: a peer whose bounded queue is full
//! (`try_send`) is too slow and is dropped, so it cannot grow our memory.

mod blocks;
mod compact;
mod costs;
mod dialing;
mod download;
mod durable;
mod gossip;
mod housekeeping;
mod inbox;
mod miner_driver;
mod network;
mod peers;
mod published;
mod repair;
mod requests;
mod serve;
mod tx_requests;
mod view;

use std::sync::Arc;

use chain_core::{ArchiveError, Block, BlockHash, Reorg, TxId};
use escrow::{SignedTx, Tx};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::info;
use wire::Message;

use crate::clock::Clock;
use crate::config::NodeConfig;
use crate::mempool::{Mempool, Offered};
use blocks::Accepted;
use durable::{Durable, Released, Stopped};
use housekeeping::Ticks;
use inbox::{PublishWaiter, QueryFn};
use miner_driver::{DriverParts, MinerDriver};
use network::{Lent, Network};

pub use blocks::{BlockRelay, Submitted};
pub(crate) use inbox::{BlockSubmission, Command, CoreMsg, CoreParts};
pub use published::{BestChain, Bodies, RECENT_HEIGHTS, RecentBlocks, Snapshot};
pub use view::{
    ConnId, Direction, Metrics, NodeChain, NodeEvent, NodeView, PeerInfo, SyncProgress,
};

/// The core: the chain, the mempool, the clock and the metrics, and the
/// parts it coordinates (see the module docs).
pub(crate) struct Core {
    config: Arc<NodeConfig>,
    chain: NodeChain,
    mempool: Mempool,
    /// The peers, the requests out to them, the dialer.
    net: Network,
    /// The damaged blocks wanted from peers, and the repair request out.
    repairs: repair::Repairs,
    /// The store, and everything between accepting a block and telling
    /// anyone of it (see `durable.rs`).
    durable: Durable,
    miner: MinerDriver,
    clock: Arc<dyn Clock>,
    /// A simulated processor (`costs.rs`); `None` in a live node.
    cpu: Option<Arc<dyn crate::cpu::Cpu>>,
    cancel: CancellationToken,
    /// Counters for `/metrics`.
    metrics: Metrics,
    /// What readers see without asking the core (see `published.rs`).
    published: published::Publisher,
}

impl Core {
    /// A core over a chain that is already loaded.
    pub fn new(p: CoreParts) -> Core {
        let (config, chain) = (p.config, p.chain);
        let (max, per_account) = (config.mempool_max, config.mempool_max_per_account);
        let mempool = Mempool::new(chain.state(), chain.height() + 1, max, per_account)
            .with_policy(config.fee_policy);
        let now = Instant::now();
        let bodies = published::Bodies::new(&p.store, config.genesis.block());
        let published =
            published::Publisher::new(&chain, bodies, p.node_id, config.mining, p.events);
        let (every, at) = (config.snapshot_every, p.snapshot_height);
        let durable = Durable::new(p.store, every, &chain, at, now);
        let peers = peers::PeerTable::new(config.clone(), p.node_id, p.listen_addr, now, p.seed);
        let dialing = dialing::Dialing::new(p.next_conn, p.dialer);
        let mut core = Core {
            net: Network::new(peers, dialing, &config),
            miner: MinerDriver::new(DriverParts::new(&config, p.miner, p.inbox, p.tracker)),
            config,
            durable,
            chain,
            mempool,
            repairs: repair::Repairs::new(p.damaged),
            clock: p.clock,
            cpu: p.cpu,
            cancel: p.cancel,
            metrics: Metrics::started_at(now),
            published,
        };
        core.repairs.want_unrestored(p.unrestored);
        // The saved mempool and bans, kept for this start.
        let saved = core.durable.load_mempool();
        core.mempool.reload(saved);
        if let Some(left) = core.durable.load_bans(core.clock.now_ms()) {
            core.net.restore_bans(left, Instant::now());
        }
        core.publish(true, true);
        core
    }

    /// A receiver of the snapshots the core publishes.
    pub fn snapshots(&self) -> tokio::sync::watch::Receiver<Arc<Snapshot>> {
        self.published.subscribe()
    }

    /// Runs until the node is cancelled.
    pub async fn run(mut self, mut rx: mpsc::Receiver<CoreMsg>) {
        let mut tick = Ticks::new(self.config.tick_interval);
        self.after_event(true);
        loop {
            // Biased, so a simulated run is reproducible; the tick comes
            // before messages so a busy inbox never starves it.
            let ticked = tokio::select! {
                biased;
                _ = self.cancel.cancelled() => break,
                // `true`: the event was a tick.
                () = tick.next(), if tick.armed() =>
                    housekeeping::tick((&mut self.net, &self.chain), &mut self.published, &mut self.mempool, &mut self.durable),
                // Transaction announcements are due: `after_event` sends them.
                () = tokio::time::sleep_until(self.mempool.announcements_due().unwrap_or_else(Instant::now)),
                    if self.mempool.announcements_due().is_some() => false,
                // The block interval has passed: `after_event` mines.
                () = tokio::time::sleep_until(self.miner.wake_at().unwrap_or_else(Instant::now)),
                    if self.miner.wake_at().is_some() => { self.miner.woken(); false }
                msg = rx.recv() => match msg {
                    Some(msg) => {
                        // Simulated: the work is done before it tells.
                        if let Some(done) = costs::charge(self.cpu.as_deref(), &msg, &self.mempool) {
                            tokio::time::sleep_until(done).await;
                        }
                        self.dispatch(msg);
                        false
                    }
                    None => break,
                },
            };
            self.after_event(rx.is_empty());
            // Bodies being checked are waited for only while the inbox is empty.
            while rx.is_empty() && self.insert_downloaded(true) {
                self.after_event(rx.is_empty());
            }
            tick.after(ticked, || {
                housekeeping::settled(&self.net, &self.durable, &self.mempool, &self.repairs)
            });
        }
        self.miner.stop();
        // A clean stop leaves a snapshot at the tip: the next start applies
        // nothing again.
        let released = self.durable.flush(&mut self.chain, &mut self.repairs, true);
        self.route(released);
        self.durable.save_changed_mempool(self.mempool.txs(), true);
        self.durable
            .save_bans(self.net.peers().bans(Instant::now()), self.clock.now_ms());
        // Dropping every sender lets each connection task finish.
        self.net.clear();
        info!("core stopped");
    }

    /// What follows every event: save what was accepted (unless more events
    /// wait, `durable.rs`) and route what that released, send what is due,
    /// save new bans, publish, and start mining if the node should (only
    /// here, so a block mined for a request counts before the next job).
    fn after_event(&mut self, inbox_empty: bool) {
        // More events wait (blocks, "mine N", a sync): one commit.
        let syncing = self.net.downloading();
        let more_coming = !inbox_empty || self.miner.has_requests() || syncing;
        self.durable.set_syncing(syncing);
        let released = self
            .durable
            .after_event(&mut self.chain, &mut self.repairs, more_coming);
        self.route(released);
        let now = Instant::now();
        self.repairs.take_found(&self.chain);
        if !self.durable.failed() {
            self.net.ask_for_damaged(&mut self.repairs, now);
        }
        // The slots this event freed are refilled, and the queued
        // announcements sent once due.
        self.net.ask_txs(&self.mempool, now);
        self.net
            .announce_txs(self.mempool.take_due_announcements(now));
        if self.net.take_bans_changed() {
            self.durable
                .save_bans(self.net.peers().bans(Instant::now()), self.clock.now_ms());
        }
        self.published.live_peers(self.net.peers().live_count());
        // Only once what the event accepted is durable.
        let saved = self.durable.is_saved(&self.chain) && !self.cancel.is_cancelled();
        let may_publish = !self.durable.failed() && !self.cancel.is_cancelled();
        self.publish(saved, may_publish);
        if saved {
            self.durable.answer_saved_waiters();
        }
        if !self.cancel.is_cancelled() {
            let (chain, pool) = (&self.chain, &self.mempool);
            self.miner
                .maybe_start(chain, pool, &*self.clock, Instant::now());
        }
    }

    /// Saves what was accepted ([`Durable::flush`]), routes what waited for
    /// it; `false` if the node cannot save (what it announces must be saved).
    fn flush(&mut self) -> bool {
        let released = self
            .durable
            .flush(&mut self.chain, &mut self.repairs, false);
        self.route(released)
    }

    /// Routes what a commit released (repairs, "mine N" answers, blocks to
    /// announce); a failed commit stops the node, nothing told. `false` then.
    fn route(&mut self, released: Result<Released, Stopped>) -> bool {
        let Ok(released) = released else {
            self.cancel.cancel();
            return false;
        };
        self.repairs.repaired(&released.repaired);
        for reply in released.replies {
            reply.send();
        }
        for hash in released.announce.into_iter().chain(released.relay) {
            self.net.announce_block_to_all(hash, &self.chain);
        }
        true
    }

    /// Publishes the snapshot (see [`published::Publisher::after_event`]).
    fn publish(&mut self, saved: bool, may_publish: bool) {
        self.metrics.compact = self.net.compact_counts();
        let from = published::Sources {
            chain: &self.chain,
            mempool: &self.mempool,
            mining: self.miner.mode(),
            peers: self.net.peers(),
            now: Instant::now(),
            metrics: &self.metrics,
            sync: self.net.sync_progress(&self.chain, Instant::now()),
        };
        self.published.after_event(&from, saved, may_publish);
    }

    fn dispatch(&mut self, msg: CoreMsg) {
        let now = Instant::now();
        match msg {
            CoreMsg::Hello { reply } => {
                // The tip told to a peer is a saved one; a node that
                // cannot save answers nothing.
                if self.flush() {
                    let _ = reply.send(self.net.hello(&self.chain));
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
                let (peer, genesis) = ((conn, remote, direction), self.chain.genesis_hash());
                let answer = self.net.admit(peer, &hello, (sender, queued), genesis, now);
                if self.flush() {
                    let _ = reply.send(answer.map(|()| Box::new(self.net.hello(&self.chain))));
                }
            }
            CoreMsg::Live { conn } => {
                let saved = self.flush();
                let lent = Lent::new(&self.chain, &self.mempool);
                self.net.on_live(conn, lent, saved);
            }
            CoreMsg::Message { conn, message } => self.on_message(conn, message),
            CoreMsg::Txs { conn, txs } => {
                for (tx, check) in txs {
                    if !self.net.is_connected(conn) {
                        break;
                    }
                    self.on_tx(conn, tx, Some(check));
                }
            }
            CoreMsg::Offence {
                conn,
                remote,
                offence,
            } => self.net.punish(conn, Some(remote), &offence, now),
            CoreMsg::Gone { conn } => {
                self.net.on_gone(conn, &self.chain, now);
                self.mempool.forget_peer(conn);
            }
            CoreMsg::DialFailed { conn, addr, error } => {
                self.net.dial_failed(conn, addr, &error, now);
            }
            CoreMsg::Mined { job, outcome } => {
                if let Some((block, paid_to)) = self.miner.finished(job, outcome) {
                    self.on_mined(block, paid_to);
                }
            }
            CoreMsg::Command(c) => self.on_command(c),
        }
    }

    /// Offers a block made elsewhere to the chain as one mined here, relayed
    /// as asked once saved (`NodeHandle::submit_block`).
    fn submit_block(&mut self, s: BlockSubmission) {
        let (hash, known) = (s.block.hash(), self.chain.contains(&s.block.hash()));
        let moved = self.accept_block(*s.block, None);
        moved.iter().for_each(|r| self.durable.announce(r.new_tip));
        if s.relay == BlockRelay::Always && self.chain.contains(&hash) {
            self.durable.relay(hash);
        }
        let best = moved.is_some();
        let _ = s
            .reply
            .send(blocks::submitted(&self.chain, &hash, known, best));
    }

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
                    self.published.wait(PublishWaiter::Published(reply));
                }
            }
            // Its gossiped successors may come in after it; a user's never
            // waits (`Mempool::offer`). A refusal is answered, as an
            // admission, with the publication that shows it (its count).
            Command::SubmitTx { tx, check, reply } => {
                match self.mempool.offer(*tx, check, None, now) {
                    Offered::Added { id, freed } => {
                        self.admitted(id, freed);
                        // Answered with the publication that shows it (what
                        // waits to be saved is saved now, as for `Published`).
                        self.flush();
                        self.published.wait(PublishWaiter::Submitted(reply, Ok(id)));
                    }
                    Offered::Refused(e) => {
                        self.published.wait(PublishWaiter::Submitted(reply, Err(e)));
                    }
                    Offered::Waiting { .. } | Offered::NotKept(_) => {}
                }
            }
            Command::Mine { count, to, reply } => self.miner.request(count, to, reply),
            Command::SubmitBlock(submission) => self.submit_block(submission),
            Command::SetMining(mode) => self.miner.set_mode(mode, self.mempool.is_empty()),
            Command::Partition(addrs) => self.net.partition(&addrs),
            Command::Heal => self.net.heal(now),
            Command::AddPeer(addr) => self.net.add_peer(addr, now),
        }
    }

    /// Runs a query of the node's handle on what is saved (saved first); a
    /// node whose store failed answers nothing (the caller sees it stop).
    fn query(&mut self, f: QueryFn) {
        if !self.flush() {
            return;
        }
        let (now, peers) = (Instant::now(), self.net.peers());
        f(&NodeView {
            store: self.durable.store(),
            metrics: &self.metrics,
            chain: &self.chain,
            mempool: &self.mempool,
            peers: peers.infos(now),
            bans: peers.bans(now),
            node_id: peers.node_id(),
            mining: self.miner.mode(),
            dials_in_flight: peers.dials_in_flight(),
        });
    }

    // ---- what peers send ----------------------------------------------

    /// Routes a live peer's message: transactions and blocks are taken in
    /// here, the rest is the network part's.
    fn on_message(&mut self, conn: ConnId, message: Message) {
        if !self.net.is_connected(conn) {
            // Being dropped: ignore the rest of what it sent.
            return;
        }
        tracing::trace!(conn, kind = message.kind(), "message");
        match message {
            Message::Tx(tx) => self.on_tx(conn, tx, None),
            Message::Block(block) => self.on_block(conn, block, false),
            // Never asked for (this node syncs headers first): each block
            // as one sent unasked.
            Message::SyncBlocks { blocks, .. } => {
                for block in blocks.into_inner() {
                    self.on_block(conn, block, false);
                }
            }
            Message::Headers(h) => self
                .net
                .on_headers(conn, &h, &self.chain, self.clock.now_ms()),
            // Only saved blocks are served (a node that cannot save, none).
            ref m if m.reads_blocks() && !self.flush() => {}
            other => {
                let lent = Lent::new(&self.chain, &self.mempool);
                if let Some(t) = self.net.on_message(conn, other, lent, Instant::now()) {
                    self.on_block(conn, t.block, t.pushed);
                }
            }
        }
    }

    /// A transaction from a peer (signature checked by its task if `check`):
    /// offered to the pool (`Network::offer_tx`), announced if admitted.
    fn on_tx(&mut self, conn: ConnId, tx: SignedTx, check: Option<escrow::SigCheck>) {
        let now = Instant::now();
        if let Some((id, freed)) = self.net.offer_tx(&mut self.mempool, conn, (tx, check), now) {
            self.admitted(id, freed);
        }
    }

    /// The mempool admitted `id` and the waiting ones it let in: announce.
    fn admitted(&mut self, id: TxId, freed: Vec<TxId>) {
        for id in std::iter::once(id).chain(freed) {
            self.announce_tx(id);
        }
        self.emit_mempool();
    }

    /// Queues `id` to be announced to every live peer that does not know
    /// it (`mempool/announce.rs`; sent after the event once due).
    fn announce_tx(&mut self, id: TxId) {
        let peers = self.net.tell_tx(id);
        self.mempool.queue_announcement(peers, id, Instant::now());
    }

    /// The mempool changed: tell watchers once published; save it soon.
    fn emit_mempool(&mut self) {
        self.durable.mempool_changed();
        let size = self.mempool.len();
        self.published.defer(NodeEvent::Mempool { size });
    }

    /// A block from `conn`; `pushed`: rebuilt from a compact block it
    /// pushed in high-bandwidth mode (`compact.rs`).
    fn on_block(&mut self, conn: ConnId, block: Block<Tx>, pushed: bool) {
        let hash = block.hash();
        if self.net.download_wants(&hash) {
            self.net.downloaded(conn, block, &self.chain);
            // With signatures checked ahead (a live node), one body a
            // message, the rest once the inbox is empty (`run`); else all.
            while self.insert_downloaded(false) && !self.net.prechecks() {}
            return;
        }
        let solicited = self.net.block_from(conn, &hash, None);
        match self.repairs.offer(&self.chain, conn, &block) {
            repair::Offered::NotWanted => {}
            // Written back with the next commit.
            repair::Offered::Copied => return self.durable.note_unsaved(),
            repair::Offered::Again => return,
            repair::Offered::Bad(offence) => {
                return self.net.punish(conn, None, &offence, Instant::now());
            }
        }
        if let Some(tip) = self.take_block(conn, block, (solicited, pushed)) {
            self.durable.announce(tip);
        }
    }

    /// Inserts the next downloaded body, as a block from its sender (unless
    /// `wait`, only if its signatures are checked); whether there was one.
    fn insert_downloaded(&mut self, wait: bool) -> bool {
        let Some((from, next)) = self.net.next_downloaded(&self.chain, wait) else {
            return false;
        };
        if let Some(tip) = self.take_block(from, next, (true, false)) {
            self.durable.announce(tip);
        }
        true
    }

    /// A block from `conn` (asked for by hash if `solicited`), offered to the
    /// chain. Returns the new tip, if it moved; the caller announces it.
    fn take_block(
        &mut self,
        conn: ConnId,
        block: Block<Tx>,
        how: (bool, bool),
    ) -> Option<BlockHash> {
        let hash = block.hash();
        let new = !self.chain.contains(&hash);
        let best = self.accept_block(block, Some((conn, how.0, how.1)));
        if self.net.is_connected(conn) {
            self.net
                .sent_block((conn, &hash, new), &self.chain, Instant::now);
        }
        best.map(|reorg| reorg.new_tip)
    }

    // ---- blocks -------------------------------------------------------

    /// Offers a block to the chain (`blocks::insert`), applies the outcome,
    /// returns the change of the best chain, if any (the caller announces
    /// it). `from`: the sender, whether asked for by hash, whether pushed.
    fn accept_block(
        &mut self,
        block: Block<Tx>,
        from: Option<(ConnId, bool, bool)>,
    ) -> Option<Reorg<Tx>> {
        let now_ms = self.clock.now_ms();
        match blocks::insert(&mut self.chain, block, now_ms) {
            Accepted::NewBest(reorg) => {
                self.on_new_best(&reorg);
                return Some(reorg);
            }
            Accepted::SideBranch { hash, height } => {
                self.durable.note_unsaved();
                if let Some(height) = height {
                    self.published.defer(NodeEvent::Fork { height, hash });
                }
                self.metrics.blocks_accepted += 1;
            }
            Accepted::Orphan {
                hash,
                missing_parent,
            } => {
                self.published.orphan(missing_parent, hash);
                if let Some((conn, solicited, _)) = from {
                    let (why, now) = ((solicited, missing_parent), Instant::now());
                    self.net.orphan_from(conn, why, &self.chain, now);
                }
            }
            Accepted::Duplicate => {}
            Accepted::StoreUnreadable(e) => self.stop_unreadable(&e),
            Accepted::Refused {
                reason,
                offence,
                moved,
                in_transactions,
            } => {
                // The tip moved up to the invalid block all the same: what
                // follows the tip must follow it.
                match moved {
                    Some(Ok(reorg)) => {
                        self.on_new_best(&reorg);
                        self.durable.announce(reorg.new_tip);
                    }
                    Some(Err(e)) => self.stop_unreadable(&e),
                    None => {}
                }
                self.metrics.count_refused(reason);
                if let Some((conn, _, pushed)) = from
                    && !(pushed && in_transactions)
                {
                    self.net.punish(conn, None, &offence, Instant::now());
                }
            }
        }
        None
    }

    /// The store cannot be read back (the state may have moved without the
    /// change reported): the node saves nothing more and stops.
    fn stop_unreadable(&mut self, e: &ArchiveError) {
        tracing::error!("the block store cannot be read, stopping the node: {e}");
        self.durable.store_unreadable();
        self.cancel.cancel();
    }

    /// The best tip moved: index the new blocks, count the move, move the
    /// mempool (announcing again what undone blocks held, admitting what
    /// waited), tell watchers, stop the miner (its parent is stale).
    fn on_new_best(&mut self, reorg: &Reorg<Tx>) {
        self.durable.accepted(reorg);
        let (applied, undone) = (reorg.applied.len(), reorg.undone.len());
        self.metrics.count_best_move(applied, undone);
        let next_height = self.chain.height() + 1;
        for id in self
            .mempool
            .follow_tip(self.chain.state(), next_height, reorg)
        {
            self.net.forget_tx(&id);
            self.announce_tx(id);
        }
        for id in self.mempool.admit_waiting() {
            self.announce_tx(id);
        }
        let (height, hash) = (self.chain.height(), reorg.new_tip);
        self.published.defer(NodeEvent::Tip {
            height,
            hash,
            undone,
        });
        self.emit_mempool();
        self.miner.tip_moved(Instant::now());
    }

    /// The miner found a block paying `paid_to`: accept it and, if it joined
    /// the best chain, count it toward the open requests before a new job.
    fn on_mined(&mut self, block: Block<Tx>, paid_to: escrow::Address) {
        let hash = block.hash();
        self.miner.log_found(&block, Instant::now());
        let target = block.header.target.to_target();
        let work = target.map_or(0.0, |t| t.work().as_f64());
        if let Some(reorg) = self.accept_block(block, None) {
            self.metrics.count_mined(work);
            if let Some(reply) = self.miner.count_mined(hash, paid_to) {
                self.durable.reply_when_saved(reply);
            }
            self.durable.announce(reorg.new_tip);
        }
        if !self.miner.should_mine(self.mempool.is_empty()) {
            self.miner.stop();
        }
    }
}

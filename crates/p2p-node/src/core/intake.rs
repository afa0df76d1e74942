//! The core's intake: what live peers send (routed to the parts that own
//! the state), the blocks it takes in from peers and from its miner (the
//! chain answers each with an `Accepted` outcome, `blocks.rs`, which this
//! applies: the index to save, the metrics, the mempool following the tip,
//! the events, the stale job), and the sending helpers.
//!
//! This is the second and last file with `impl Core` (the first is
//! `mod.rs`: the loop, saving and publishing, the handle's commands).

use chain_core::{ArchiveError, Block, BlockHash, Reorg, TxId};
use escrow::{SignedTx, Tx};
use tokio::time::Instant;
use tracing::debug;
use wire::message::MAX_ADDRS;
use wire::{Bounded, Message};

use crate::core::view::{ConnId, NodeEvent};
use crate::core::{Core, blocks, gossip, repair, serve};
use crate::mempool::Offered;
use crate::penalty::Offence;
use blocks::Accepted;

impl Core {
    // ---- what peers send ----------------------------------------------

    /// Routes a live peer's message to the part that handles it.
    pub(super) fn on_message(&mut self, conn: ConnId, message: Message) {
        if !self.peers.is_connected(conn) {
            // Being dropped: ignore the rest of what it sent.
            return;
        }
        tracing::trace!(conn, kind = message.kind(), "message");
        let now = Instant::now();
        match message {
            Message::Handshake(_) | Message::HandshakeAck => {
                self.punish(conn, Offence::Protocol("a second handshake"));
            }
            Message::Ping { .. } | Message::Pong { .. } | Message::Notice { .. } => {}
            Message::AnnounceTxs(ids) => {
                self.peers.knows_txs(conn, ids.iter());
                // Asked of it after this event, a bounded number at a
                // time; not if pending or waiting for an earlier nonce.
                let pool = &self.mempool;
                self.requests.announced_txs(conn, &ids, |id| pool.knows(id));
            }
            Message::AnnounceBlocks(hashes) => {
                let parts = (&mut self.peers, &mut self.requests, &self.chain);
                if let Some(ask) = gossip::announced_blocks(parts, conn, &hashes, now) {
                    self.peers.send(conn, ask);
                }
            }
            Message::GetTxs(ids) => {
                let served = serve::serve_txs(&mut self.peers, &self.mempool, conn, &ids);
                self.punish_refused(conn, served);
            }
            // Only saved blocks are served.
            Message::GetBlocks(hashes) => {
                if self.flush() {
                    let served = serve::serve_blocks(&mut self.peers, &self.chain, conn, &hashes);
                    self.punish_refused(conn, served);
                }
            }
            Message::Tx(tx) => self.on_tx(conn, tx, None),
            Message::Block(block) => self.on_block(conn, block),
            Message::GetSync { locator, stop } => {
                if self.flush() {
                    let budget = self.config.max_frame.saturating_sub(64 * 1024);
                    let asked = (&locator[..], stop);
                    let served =
                        serve::serve_sync(&mut self.peers, &self.chain, conn, asked, budget);
                    self.punish_refused(conn, served);
                }
            }
            Message::SyncBlocks { blocks, more } => {
                self.on_sync_blocks(conn, blocks.into_inner(), more);
            }
            Message::GetAddrs => {
                let addrs = self.peers.addrs_for(conn, MAX_ADDRS, now);
                self.peers
                    .send(conn, Message::Addrs(Bounded::truncating(addrs)));
            }
            Message::Addrs(addrs) => {
                for addr in addrs.iter() {
                    self.peers.learn_addr(*addr, now);
                }
                self.dialing.dial_due(&mut self.peers, Instant::now());
            }
            Message::NotFound { txs, blocks } => {
                let retries = self.requests.not_found(conn, &txs, &blocks, now);
                self.send_each(retries.into_messages());
            }
        }
    }

    /// A transaction from a peer, its signature's verdict reached by the
    /// connection's task if `check` (else checked here): the mempool
    /// admits it (with the waiting ones it lets in), keeps it waiting for
    /// an earlier nonce, or refuses it; only some refusals are the peer's
    /// fault (`gossip::tx_offence`).
    pub(super) fn on_tx(&mut self, conn: ConnId, tx: SignedTx, check: Option<escrow::SigCheck>) {
        let id = tx.id();
        self.requests.tx_arrived(&id);
        self.peers.knows_txs(conn, [&id]);
        let now = Instant::now();
        match self.mempool.offer(tx, check, Some(conn), now) {
            Offered::Added { id, freed } => {
                self.peers.note_tx(conn, now);
                self.admitted(id, freed);
            }
            // Its predecessor may be on its way from another peer. Neither
            // waiting nor a refusal to wait is penalised: a node behind
            // the chain sees honest peers' transactions as orphans of
            // senders that hold nothing (docs/PROTOCOL.md, "Orphan
            // transactions").
            Offered::Waiting { evicted } => {
                debug!(conn, %id, ?evicted, "transaction waits for an earlier nonce");
            }
            Offered::NotKept(why) => debug!(conn, %id, "transaction not kept to wait: {why}"),
            Offered::Refused(e) => match gossip::tx_offence(&e) {
                Some(offence) => self.punish(conn, offence),
                None => debug!(conn, %id, "transaction not pooled: {e}"),
            },
        }
    }

    /// The mempool admitted `id` and the waiting ones it let in (`freed`):
    /// they are announced, and watchers told.
    pub(super) fn admitted(&mut self, id: TxId, freed: Vec<TxId>) {
        for id in std::iter::once(id).chain(freed) {
            self.announce_tx(id);
        }
        self.emit_mempool();
    }

    pub(super) fn on_block(&mut self, conn: ConnId, block: Block<Tx>) {
        let hash = block.hash();
        // A block we asked for after its announcement may be an orphan
        // without any fault of the sender: we are behind.
        let solicited = self.requests.block_arrived(&hash);
        self.peers.knows_blocks(conn, [&hash]);
        match self.repairs.offer(&self.chain, conn, &block) {
            repair::Offered::NotWanted => {}
            // Written back with the next commit.
            repair::Offered::Copied => return self.durable.note_unsaved(),
            repair::Offered::Again => return,
            repair::Offered::Bad(offence) => return self.punish(conn, offence),
        }
        let new = !self.chain.contains(&hash);
        if let Some(best) = self.accept_block(block, Some((conn, solicited))) {
            self.durable.announce(best.new_tip);
        }
        gossip::sent_block(
            &mut self.peers,
            &self.chain,
            (conn, &hash, new),
            Instant::now,
        );
    }

    pub(super) fn on_sync_blocks(&mut self, conn: ConnId, blocks: Vec<Block<Tx>>, more: bool) {
        // A sync answer must connect to the locator we sent: its orphans
        // are the sender's fault, as are unasked-for ones.
        self.requests.sync_answered(conn);
        let mut last_best = None;
        for block in blocks {
            let hash = block.hash();
            self.peers.knows_blocks(conn, [&hash]);
            self.peers.saw_height(conn, block.header.height);
            let new = !self.chain.contains(&hash);
            if let Some(best) = self.accept_block(block, Some((conn, false))) {
                last_best = Some(best.new_tip);
            }
            if !self.peers.is_connected(conn) {
                return;
            }
            gossip::sent_block(
                &mut self.peers,
                &self.chain,
                (conn, &hash, new),
                Instant::now,
            );
        }
        if let Some(tip) = last_best {
            self.durable.announce(tip);
        }
        if more {
            self.request_sync(conn);
        }
    }

    // ---- blocks -------------------------------------------------------

    /// Offers a block to the chain (`blocks::insert`) and applies the
    /// outcome. Returns the new best-chain change, if the block moved the
    /// tip; the caller announces it. `from` is the peer that sent it and
    /// whether we had asked for it by hash.
    pub(super) fn accept_block(
        &mut self,
        block: Block<Tx>,
        from: Option<(ConnId, bool)>,
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
                if let Some((conn, solicited)) = from {
                    if !solicited {
                        self.punish(conn, Offence::Orphan(missing_parent.to_string()));
                    }
                    if self.peers.is_connected(conn) && !self.requests.is_syncing(conn) {
                        self.request_sync(conn);
                    }
                }
            }
            Accepted::Duplicate => {}
            Accepted::StoreUnreadable(e) => self.stop_unreadable(&e),
            Accepted::Refused {
                reason,
                offence,
                moved,
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
                if let Some((conn, _)) = from {
                    self.punish(conn, offence);
                }
            }
        }
        None
    }

    /// The store cannot be read back: the state may have moved without the
    /// change reported, so the node saves nothing more and stops.
    pub(super) fn stop_unreadable(&mut self, e: &ArchiveError) {
        tracing::error!("the block store cannot be read, stopping the node: {e}");
        self.durable.store_unreadable();
        self.cancel.cancel();
    }

    /// The best tip moved: index the new blocks, count the move, move the
    /// mempool and announce again what undone blocks held, admit what
    /// waited, tell watchers, and stop the miner, whose template now has a
    /// stale parent. The new tip is announced once saved (the caller).
    pub(super) fn on_new_best(&mut self, reorg: &Reorg<Tx>) {
        self.durable.accepted(reorg);
        let (applied, undone) = (reorg.applied.len(), reorg.undone.len());
        self.metrics.count_best_move(applied, undone);
        let next_height = self.chain.height() + 1;
        for id in self
            .mempool
            .follow_tip(self.chain.state(), next_height, reorg)
        {
            self.peers.forget_tx(&id);
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

    /// The miner found a block paying `paid_to`: accept it and, if it
    /// joined the best chain, count it toward the open requests before any
    /// new job starts.
    pub(super) fn on_mined(&mut self, block: Block<Tx>, paid_to: escrow::Address) {
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

    // ---- sending ------------------------------------------------------

    /// Sends `messages` to `conn` (nothing if it is not connected).
    pub(super) fn send_all(&mut self, conn: ConnId, messages: Vec<Message>) {
        for message in messages {
            self.peers.send(conn, message);
        }
    }

    /// Sends each message to its peer.
    pub(super) fn send_each(&mut self, messages: Vec<(ConnId, Message)>) {
        for (conn, message) in messages {
            self.peers.send(conn, message);
        }
    }

    /// Tells `conn` of the block `hash`, known to be saved, unless it knows.
    pub(super) fn announce_saved_block_to(&mut self, conn: ConnId, hash: BlockHash) {
        if self.peers.tell_block(conn, hash) {
            let hashes = Bounded::truncating(vec![hash]);
            self.peers.send(conn, Message::AnnounceBlocks(hashes));
        }
    }

    /// Queues `id` to be announced to every live peer that does not know
    /// it (`mempool/announce.rs`; sent after the event once due).
    pub(super) fn announce_tx(&mut self, id: TxId) {
        let peers = self.peers.tell_tx(id);
        self.mempool.queue_announcement(peers, id, Instant::now());
    }

    pub(super) fn request_sync(&mut self, conn: ConnId) {
        let asked = self.requests.get_sync(conn, self.chain.locator());
        self.peers.send(conn, asked);
    }
}

//! The core's answers to what peers send: the router for live peers'
//! messages, and the handlers of announcements, requests, transactions,
//! blocks and sync answers. Each handler asks the part that owns the state
//! (the peer table, the requests, the mempool; `serve.rs` answers requests) and acts on its answer.

use chain_core::{Block, BlockHash, TxId};
use escrow::{LedgerError, SignedTx, Tx};
use tokio::time::Instant;
use tracing::debug;
use wire::message::MAX_ADDRS;
use wire::{Bounded, Message};

use crate::core::view::ConnId;
use crate::core::{Core, repair, serve};
use crate::mempool::{MempoolError, Offered};
use crate::penalty::Offence;

impl Core {
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
                // Asked of it, a bounded number at a time, once this
                // event is handled (`send_tx_requests`); not if it is
                // pending or waits for an earlier nonce already.
                let pool = &self.mempool;
                self.requests.announced_txs(conn, &ids, |id| pool.knows(id));
            }
            Message::AnnounceBlocks(hashes) => {
                self.peers.knows_blocks(conn, hashes.iter());
                let chain = &self.chain;
                let known = |h: &BlockHash| {
                    chain.contains(h) || chain.is_orphan(h) || chain.is_known_invalid(h)
                };
                let wanted = self.requests.want_blocks(conn, &hashes, known, now);
                // What the peer announced and we have tells its height now.
                for hash in hashes.iter() {
                    self.note_peer_has(conn, hash);
                }
                if !wanted.is_empty() {
                    self.send(conn, Message::GetBlocks(Bounded::truncating(wanted)));
                }
            }
            Message::GetTxs(ids) => {
                let served = serve::serve_txs(&mut self.peers, &self.mempool, conn, &ids);
                self.punish_refused(conn, served);
            }
            Message::GetBlocks(hashes) => {
                // Only saved blocks are served.
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
                    let served = serve::serve_sync(
                        &mut self.peers,
                        &self.chain,
                        conn,
                        (&locator, stop),
                        budget,
                    );
                    self.punish_refused(conn, served);
                }
            }
            Message::SyncBlocks { blocks, more } => {
                self.on_sync_blocks(conn, blocks.into_inner(), more);
            }
            Message::GetAddrs => {
                let addrs = self.peers.addrs_for(conn, MAX_ADDRS, now);
                self.send(conn, Message::Addrs(Bounded::truncating(addrs)));
            }
            Message::Addrs(addrs) => {
                for addr in addrs.iter() {
                    self.peers.learn_addr(*addr, now);
                }
                self.dial_due();
            }
            Message::NotFound { txs, blocks } => {
                let retries = self.requests.not_found(conn, &txs, &blocks, now);
                self.ask_again(retries);
            }
        }
    }

    /// A transaction from a peer, its signature's verdict reached by the
    /// connection's task if `check` (else checked here): the mempool
    /// admits it (with the waiting ones it lets in), keeps it waiting for
    /// an earlier nonce, or refuses it; only a bad signature or another
    /// network's transaction is the peer's fault.
    pub(super) fn on_tx(&mut self, conn: ConnId, tx: SignedTx, check: Option<escrow::SigCheck>) {
        let id = tx.id();
        self.requests.tx_arrived(&id);
        self.peers.knows_txs(conn, [&id]);
        let now = Instant::now();
        match self.mempool.offer(tx, check, Some(conn), now) {
            Offered::Added { id, freed } => {
                self.peers.note_tx(conn, now);
                for id in std::iter::once(id).chain(freed) {
                    self.announce_tx(id);
                }
                self.emit_mempool();
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
            Offered::Refused(MempoolError::Invalid(escrow::AdmissionError::Invalid(
                e @ (LedgerError::BadSignature { .. } | LedgerError::WrongNetwork { .. }),
            ))) => {
                self.punish(conn, Offence::InvalidTx(e.to_string()));
            }
            Offered::Refused(e) => debug!(conn, %id, "transaction not pooled: {e}"),
        }
    }

    fn on_block(&mut self, conn: ConnId, block: Block<Tx>) {
        let hash = block.hash();
        // A block we asked for after its announcement may be an orphan
        // without any fault of the sender: we are behind.
        let solicited = self.requests.block_arrived(&hash);
        self.peers.knows_blocks(conn, [&hash]);
        match self.repairs.offer(&self.chain, conn, &block) {
            repair::Offered::NotWanted => {}
            repair::Offered::Copied => {
                // Written back with the next commit.
                self.durable.note_unsaved();
                return;
            }
            repair::Offered::Again => return,
            repair::Offered::Bad(offence) => {
                self.punish(conn, offence);
                return;
            }
        }
        let new = !self.chain.contains(&hash);
        if let Some(best) = self.accept_block(block, Some((conn, solicited))) {
            self.announce_new_best(&best);
        }
        if new && self.chain.contains(&hash) {
            self.peers.note_block(conn, Instant::now());
        }
        self.note_peer_has(conn, &hash);
    }

    /// `conn` has the block `hash`: if we have it too, its height and work
    /// update what we know of the peer.
    fn note_peer_has(&mut self, conn: ConnId, hash: &BlockHash) {
        if let (Some(header), Some(work)) =
            (self.chain.header(hash), self.chain.cumulative_work(hash))
        {
            self.peers.saw_tip(conn, header.height, work);
        }
    }

    fn on_sync_blocks(&mut self, conn: ConnId, blocks: Vec<Block<Tx>>, more: bool) {
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
                last_best = Some(best);
            }
            if !self.peers.is_connected(conn) {
                return;
            }
            if new && self.chain.contains(&hash) {
                self.peers.note_block(conn, Instant::now());
            }
            self.note_peer_has(conn, &hash);
        }
        if let Some(best) = last_best {
            self.announce_new_best(&best);
        }
        if more {
            self.request_sync(conn);
        }
    }

    /// Punishes `conn` for a request refused as past its upload allowance.
    fn punish_refused(&mut self, conn: ConnId, served: Result<(), Offence>) {
        if let Err(offence) = served {
            self.punish(conn, offence);
        }
    }

    // ---- sending ------------------------------------------------------

    /// Sends block requests that move to another announcer.
    pub(super) fn ask_again(&mut self, retries: super::requests::Retries) {
        let mut by_peer: std::collections::BTreeMap<ConnId, Vec<BlockHash>> =
            std::collections::BTreeMap::new();
        for (conn, hash) in retries.blocks {
            by_peer.entry(conn).or_default().push(hash);
        }
        for (conn, blocks) in by_peer {
            self.send(conn, Message::GetBlocks(Bounded::truncating(blocks)));
        }
    }

    /// Asks each peer for the announced transactions it has room for (at
    /// most `MAX_IN_FLIGHT` outstanding, see `tx_requests.rs`): after every
    /// event, so the slots one event freed are refilled by one `GetTxs`.
    pub(super) fn send_tx_requests(&mut self) {
        let pool = &self.mempool;
        let requests = self
            .requests
            .tx_requests(|id| pool.knows(id), Instant::now());
        for (conn, ids) in requests {
            if !self.peers.is_connected(conn) {
                continue;
            }
            for chunk in ids.chunks(wire::message::MAX_INVENTORY) {
                self.send(conn, Message::GetTxs(Bounded::truncating(chunk.to_vec())));
            }
        }
    }

    pub(super) fn send(&mut self, conn: ConnId, message: Message) {
        self.peers.send(conn, message);
    }

    pub(super) fn announce_block_to(&mut self, conn: ConnId, hash: BlockHash) {
        // A block is durable before anyone hears of it.
        if !self.flush() {
            return;
        }
        self.announce_saved_block_to(conn, hash);
    }

    /// [`Core::announce_block_to`] for a block known to be saved.
    pub(super) fn announce_saved_block_to(&mut self, conn: ConnId, hash: BlockHash) {
        if !self.peers.tell_block(conn, hash) {
            return;
        }
        self.send(
            conn,
            Message::AnnounceBlocks(Bounded::truncating(vec![hash])),
        );
    }

    /// Queues `id` to be announced to every live peer that does not know
    /// it; [`Core::send_tx_announcements`] sends the queue once due.
    pub(super) fn announce_tx(&mut self, id: TxId) {
        let peers = self.peers.tell_tx(id);
        self.mempool.queue_announcement(peers, id, Instant::now());
    }

    /// Sends the queued transaction announcements, one `AnnounceTxs` per
    /// peer (of at most `MAX_INVENTORY` ids each), if they are due (see
    /// `mempool/announce.rs`; the core wakes itself then).
    pub(super) fn send_tx_announcements(&mut self) {
        for (conn, ids) in self.mempool.take_due_announcements(Instant::now()) {
            if !self.peers.is_connected(conn) {
                continue;
            }
            for chunk in ids.chunks(wire::message::MAX_INVENTORY) {
                self.send(
                    conn,
                    Message::AnnounceTxs(Bounded::truncating(chunk.to_vec())),
                );
            }
        }
    }

    pub(super) fn request_sync(&mut self, conn: ConnId) {
        let locator = Bounded::truncating(self.chain.locator());
        self.requests.sync_sent(conn);
        self.send(
            conn,
            Message::GetSync {
                locator,
                stop: BlockHash::ZERO,
            },
        );
    }
}

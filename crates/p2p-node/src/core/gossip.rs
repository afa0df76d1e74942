//! The core's answers to what peers send: the router for live peers'
//! messages, and the handlers of announcements, requests, transactions,
//! blocks and sync answers. Each handler asks the part that owns the state
//! (the peer table, the requests, the relay) and acts on its answer.

use chain_core::{Block, BlockHash, TxId};
use escrow::{LedgerError, SignedTx, Tx};
use tokio::time::Instant;
use tracing::debug;
use wire::message::MAX_ADDRS;
use wire::{Bounded, Message};

use crate::core::view::ConnId;
use crate::core::{Core, relay};
use crate::mempool::MempoolError;
use crate::mempool::orphans::SenderState;
use crate::penalty::Offence;

/// Transaction announcements waiting to be sent (see
/// [`Core::send_tx_announcements`]).
#[derive(Debug, Default)]
pub(super) struct TxAnnouncements {
    /// The ids each peer is to be told, in the order they were admitted.
    queued: std::collections::BTreeMap<ConnId, Vec<TxId>>,
    /// How many ids wait, over all peers.
    count: usize,
    /// When the oldest was queued.
    since: Option<Instant>,
}

impl TxAnnouncements {
    /// When the queued announcements are due, if any are queued.
    pub(super) fn due(&self) -> Option<Instant> {
        self.since.map(|t| t + ANNOUNCE_DELAY)
    }
}

/// How long a transaction announcement waits for others to join it (as
/// Bitcoin's "trickle", shorter): 20 ms gathers a few dozen transactions
/// per message at a few thousand a second, and adds 20 ms per hop to
/// their relay, not to anyone's submission.
const ANNOUNCE_DELAY: std::time::Duration = std::time::Duration::from_millis(20);

/// Announcements sent at once however young, so the queue stays small.
const MAX_QUEUED_ANNOUNCEMENTS: usize = 4_096;

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
                if let Some(p) = self.peers.get_mut(conn) {
                    ids.iter().for_each(|id| p.known_txs.insert(*id));
                }
                // Asked of it, a bounded number at a time, once this
                // event is handled (`send_tx_requests`); not if it is
                // pending or waits for an earlier nonce already.
                let (pool, orphans) = (&self.mempool, &self.orphans);
                self.requests.announced_txs(conn, &ids, |id| {
                    pool.contains(id) || orphans.contains_id(id)
                });
            }
            Message::AnnounceBlocks(hashes) => {
                if let Some(p) = self.peers.get_mut(conn) {
                    hashes.iter().for_each(|h| p.known_blocks.insert(*h));
                }
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
            Message::GetTxs(ids) => self.serve_txs(conn, &ids),
            Message::GetBlocks(hashes) => self.serve_blocks(conn, &hashes),
            Message::Tx(tx) => self.on_tx(conn, tx, None),
            Message::Block(block) => self.on_block(conn, block),
            Message::GetSync { locator, stop } => self.serve_sync(conn, &locator, stop),
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

    /// Takes an answer's bytes from the peer's upload allowance; if it
    /// does not fit, the request is refused and the peer penalised.
    fn upload_allowed(&mut self, conn: ConnId, bytes: usize, what: &str) -> bool {
        if self.peers.charge_upload(conn, bytes, Instant::now()) {
            return true;
        }
        self.punish(
            conn,
            Offence::UploadBudget(format!("{what} of {bytes} bytes refused")),
        );
        false
    }

    fn serve_txs(&mut self, conn: ConnId, ids: &[TxId]) {
        let (found, missing) = relay::txs(&self.mempool, ids);
        for tx in found {
            let size = tx.to_bytes().len();
            if !self.upload_allowed(conn, size, "a transaction") {
                return;
            }
            if let Some(p) = self.peers.get_mut(conn) {
                p.known_txs.insert(tx.id());
            }
            self.send(conn, Message::Tx(tx));
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

    fn serve_blocks(&mut self, conn: ConnId, hashes: &[BlockHash]) {
        if !self.flush() {
            return;
        }
        let (found, mut missing) = relay::blocks(&self.chain, hashes);
        for hash in found {
            let Some(block) = self.chain.block(&hash) else {
                // Held, but its body cannot be read back (the store is
                // failing): say so rather than nothing.
                missing.push(hash);
                continue;
            };
            if !self.upload_allowed(conn, block.size(), "a block") {
                return;
            }
            if let Some(p) = self.peers.get_mut(conn) {
                p.known_blocks.insert(block.hash());
            }
            self.send(conn, Message::Block((*block).clone()));
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

    fn serve_sync(&mut self, conn: ConnId, locator: &[BlockHash], stop: BlockHash) {
        if !self.flush() {
            return;
        }
        let budget = self.config.max_frame.saturating_sub(64 * 1024);
        let (blocks, more) = match relay::sync(&self.chain, locator, stop, budget) {
            Ok(answer) => answer,
            Err(damaged) => {
                // Never a chain that stops short: the peer is told why and
                // syncs from another (the damage is logged where it was
                // found, and the core asks peers for a good copy).
                let text = damaged.to_string();
                tracing::warn!(conn, "a sync answer cannot be served: {text}");
                self.peers
                    .drop_peer(conn, Some((wire::Reason::StoreDamaged, &text)));
                return;
            }
        };
        let size = blocks.iter().map(Block::size).sum();
        if !self.upload_allowed(conn, size, "a sync answer") {
            return;
        }
        if let Some(p) = self.peers.get_mut(conn) {
            blocks.iter().for_each(|b| p.known_blocks.insert(b.hash()));
        }
        self.send(
            conn,
            Message::SyncBlocks {
                blocks: Bounded::truncating(blocks),
                more,
            },
        );
    }

    /// A transaction from a peer, its signature's verdict reached by the
    /// connection's task if `check` (else checked here).
    pub(super) fn on_tx(&mut self, conn: ConnId, tx: SignedTx, check: Option<escrow::SigCheck>) {
        let id = tx.id();
        self.requests.tx_arrived(&id);
        if let Some(p) = self.peers.get_mut(conn) {
            p.known_txs.insert(id);
        }
        let sender = tx.sender();
        // Kept with the transaction if it has to wait for an earlier
        // nonce, so that its admission then need not check it again.
        let kept = check.clone();
        let added = match check {
            Some(check) => self.mempool.add_prechecked(tx.clone(), check),
            None => self.mempool.add(tx.clone()),
        };
        match added {
            Ok(id) => {
                self.peers.note_tx(conn, Instant::now());
                self.announce_tx(id);
                self.admit_orphans_of(sender);
                self.emit_mempool();
            }
            Err(MempoolError::Invalid(escrow::AdmissionError::Invalid(
                LedgerError::BadNonce { expected, got, .. },
            ))) if got > expected => {
                // Its predecessor may be on its way from another peer: it
                // waits, if the orphan pool's rules let it. Refusals are
                // not penalised: a node behind the chain sees honest
                // peers' transactions as orphans of senders that hold
                // nothing (docs/PROTOCOL.md, "Orphan transactions").
                let pending = self.mempool.pending_ledger();
                let state = SenderState {
                    next_nonce: expected,
                    funded: !pending.balance(&sender).is_zero()
                        || self.mempool.pending_of(&sender) > 0,
                };
                match self.orphans.offer(tx, kept, conn, state, Instant::now()) {
                    Ok(evicted) => {
                        debug!(conn, %id, expected, got, ?evicted, "transaction waits for an earlier nonce");
                    }
                    Err(why) => debug!(conn, %id, "transaction not kept to wait: {why}"),
                }
            }
            Err(MempoolError::Invalid(escrow::AdmissionError::Invalid(
                e @ (LedgerError::BadSignature { .. } | LedgerError::WrongNetwork { .. }),
            ))) => {
                self.punish(conn, Offence::InvalidTx(e.to_string()));
            }
            Err(e) => debug!(conn, %id, "transaction not pooled: {e}"),
        }
    }

    /// Admits every sender's waiting transactions whose earlier nonces are
    /// now pending (after a new tip), and forgets those a block passed.
    pub(super) fn admit_orphans(&mut self) {
        for sender in self.orphans.senders() {
            self.admit_orphans_of(sender);
        }
    }

    /// Admits `sender`'s waiting transactions, in nonce order, as long as
    /// the next one waits (a transaction of `sender` was just admitted).
    pub(super) fn admit_orphans_of(&mut self, sender: escrow::Address) {
        loop {
            let next = self.mempool.pending_ledger().nonce(&sender);
            let Some((tx, check)) = self.orphans.take_next(&sender, next) else {
                return;
            };
            let id = tx.id();
            let added = match check {
                Some(check) => self.mempool.add_prechecked(tx, check),
                None => self.mempool.add(tx),
            };
            match added {
                Ok(id) => self.announce_tx(id),
                Err(e) => {
                    debug!(%id, "waiting transaction not pooled: {e}");
                    return;
                }
            }
        }
    }

    fn on_block(&mut self, conn: ConnId, block: Block<Tx>) {
        let hash = block.hash();
        // A block we asked for after its announcement may be an orphan
        // without any fault of the sender: we are behind.
        let solicited = self.requests.block_arrived(&hash);
        if let Some(p) = self.peers.get_mut(conn) {
            p.known_blocks.insert(hash);
        }
        if self.repair(conn, &block) {
            return;
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
            if let Some(p) = self.peers.get_mut(conn) {
                p.known_blocks.insert(hash);
                p.best_height = p.best_height.max(block.header.height);
            }
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
        let (pool, orphans) = (&self.mempool, &self.orphans);
        let requests = self.requests.tx_requests(
            |id| pool.contains(id) || orphans.contains_id(id),
            Instant::now(),
        );
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
        let Some(peer) = self.peers.get_mut(conn) else {
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

    /// Queues `id` to be announced to every live peer that does not know
    /// it; [`Core::send_tx_announcements`] sends the queue once due.
    pub(super) fn announce_tx(&mut self, id: TxId) {
        for conn in self.peers.live_conns() {
            let Some(peer) = self.peers.get_mut(conn) else {
                continue;
            };
            if peer.known_txs.contains(&id) {
                continue;
            }
            peer.known_txs.insert(id);
            self.tx_announcements
                .queued
                .entry(conn)
                .or_default()
                .push(id);
            self.tx_announcements.count += 1;
            self.tx_announcements.since.get_or_insert_with(Instant::now);
        }
    }

    /// Sends the queued transaction announcements, one `AnnounceTxs` per
    /// peer (of at most `MAX_INVENTORY` ids each), if they are due: once
    /// the oldest has waited [`ANNOUNCE_DELAY`] (the core wakes itself
    /// then, see [`TxAnnouncements::due`]), or once
    /// [`MAX_QUEUED_ANNOUNCEMENTS`] wait. The transactions a node admits
    /// meanwhile are thus announced in one message per peer, which that
    /// peer answers with one request, whose answer's signatures it checks
    /// as one batch.
    pub(super) fn send_tx_announcements(&mut self) {
        let Some(due) = self.tx_announcements.due() else {
            return;
        };
        if Instant::now() < due && self.tx_announcements.count < MAX_QUEUED_ANNOUNCEMENTS {
            return;
        }
        let queued = std::mem::take(&mut self.tx_announcements);
        for (conn, mut ids) in queued.queued {
            if !self.peers.is_connected(conn) {
                continue;
            }
            // Mined (or dropped) meanwhile: not worth the peer's request.
            ids.retain(|id| self.mempool.contains(id));
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

//! The network part: the peer table, what was asked of which peer, and
//! the dialer, with everything the node says to its peers and the
//! messages of theirs that concern only these (announcements, requests
//! to serve, addresses, `NotFound`, a second handshake).
//!
//! The core routes to it and lends it the chain and the mempool for the
//! moment of a call, to read: it never changes them. The transactions and
//! blocks peers send go to the core, which takes them in and tells this
//! part what they say of their sender (`tx_from`, `block_from`,
//! `sent_block`, `orphan_from`). Every message to a peer leaves through
//! here and the peer table's bounded queue of that peer.

use std::net::SocketAddr;
use std::time::Duration;

use chain_core::{BlockHash, TxId};
use escrow::SignedTx;
use tokio::time::Instant;
use tracing::{info, warn};
use wire::message::MAX_ADDRS;
use wire::{Bounded, Handshake, Message, Reason};

use crate::config::NodeConfig;
use crate::core::compact::{self, CompactRelay, Taken};
use crate::core::dialing::Dialing;
use crate::core::download::Download;
use crate::core::gossip;
use crate::core::peers::PeerTable;
use crate::core::repair::Repairs;
use crate::core::requests::{Requests, Retries};
use crate::core::serve;
use crate::core::view::{CompactCounts, ConnId, Direction, NodeChain};
use crate::mempool::{Mempool, Offered};
use crate::penalty::Offence;

/// What the core lends the network part for one call, to read.
#[derive(Clone, Copy)]
pub(super) struct Lent<'a> {
    pub chain: &'a NodeChain,
    pub mempool: &'a Mempool,
}

impl<'a> Lent<'a> {
    /// Lends `chain` and `mempool`.
    pub fn new(chain: &'a NodeChain, mempool: &'a Mempool) -> Lent<'a> {
        Lent { chain, mempool }
    }
}

/// A connection's queue: the sender of its messages, and the bytes queued.
pub(super) type Queue = (
    tokio::sync::mpsc::Sender<Message>,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
);

/// The peers, the requests out to them, and the dialer (see the module
/// docs).
pub(super) struct Network {
    peers: PeerTable,
    requests: Requests,
    dialing: Dialing,
    /// How long a peer has to answer a request before it is asked again
    /// of another.
    request_timeout: Duration,
    /// The most a sync answer may fill: a frame, less room for its
    /// envelope.
    sync_budget: usize,
    /// Compact block relay (`compact.rs`).
    compact: CompactRelay,
    /// Headers-first sync (`download.rs`).
    download: Download,
}

impl Network {
    /// The network part over `peers`, dialing through `dialing`.
    pub fn new(peers: PeerTable, dialing: Dialing, config: &NodeConfig) -> Network {
        Network {
            peers,
            requests: Requests::default(),
            dialing,
            request_timeout: config.request_timeout,
            sync_budget: config.max_frame.saturating_sub(64 * 1024),
            compact: CompactRelay::new(config.relay),
            download: Download::new(config.request_timeout),
        }
    }

    /// The peer table, to read.
    pub fn peers(&self) -> &PeerTable {
        &self.peers
    }

    /// The compact relay's counters.
    pub fn compact_counts(&self) -> CompactCounts {
        self.compact.counts
    }

    // ---- connections --------------------------------------------------

    /// Our handshake, telling `chain`'s tip (the caller saved it).
    pub fn hello(&self, chain: &NodeChain) -> Handshake {
        self.peers.hello(chain)
    }

    /// A peer's handshake arrived on `conn`: it is admitted, or refused
    /// with the reason and text of a notice (another network, a ban, a
    /// full table, ...).
    pub fn admit(
        &mut self,
        (conn, remote, direction): (ConnId, SocketAddr, Direction),
        hello: &Handshake,
        queue: Queue,
        genesis: BlockHash,
        now: Instant,
    ) -> Result<(), (Reason, String)> {
        gossip::check_network(genesis, hello)?;
        self.peers
            .admit(conn, remote, direction, hello, queue, now)?;
        self.compact.admitted(conn, hello.version);
        Ok(())
    }

    /// `conn`'s handshake completed: ask it for addresses, sync from it if
    /// it has more work, and tell it what we have that it may not: our
    /// tip if `tip_saved` (a block is durable before anyone hears of it)
    /// and every pending transaction (announcements made while it was not
    /// connected, after a partition say, never reached it).
    pub fn on_live(&mut self, conn: ConnId, lent: Lent<'_>, tip_saved: bool) {
        let Some(work) = self.peers.on_live(conn) else {
            return;
        };
        self.peers.send(conn, Message::GetAddrs);
        if let Some(offer) = self.compact.on_live(conn) {
            self.peers.send(conn, offer);
        }
        if work > lent.chain.total_work() {
            self.download
                .ask_headers(&mut self.peers, conn, lent.chain, Instant::now());
        }
        // Bodies the sync could not ask of anyone may go to it.
        self.download
            .fill(&mut self.peers, lent.chain, Instant::now());
        if tip_saved {
            self.announce_block(conn, lent.chain.tip());
        }
        let fresh = self.peers.tell_txs(conn, lent.mempool.ids());
        self.send_all(conn, gossip::tx_inventory(&fresh, Message::AnnounceTxs));
    }

    /// `conn` is gone: what was asked of it is asked of others.
    pub fn on_gone(&mut self, conn: ConnId, chain: &NodeChain, now: Instant) {
        self.peers.on_gone(conn, now);
        self.compact.on_gone(conn);
        let retries = self.requests.forget_peer(conn, now);
        self.send_retries(retries);
        self.download.on_gone(&mut self.peers, conn, chain, now);
    }

    /// Dialing `addr` failed: it is tried again after its backoff.
    pub fn dial_failed(&mut self, conn: ConnId, addr: SocketAddr, error: &str, now: Instant) {
        if self.peers.dial_failed(conn, addr, now) {
            warn!(
                %addr,
                "cannot reach peer {addr}: {error} (is a node listening there?); \
                 retrying in the background"
            );
        }
    }

    /// Punishes `conn` (reached from `remote`, if known) for `offence`.
    pub fn punish(
        &mut self,
        conn: ConnId,
        remote: Option<SocketAddr>,
        offence: &Offence,
        now: Instant,
    ) {
        self.peers.punish(conn, remote, offence, now);
    }

    /// The timer: bans expire, unanswered requests go to other peers,
    /// due addresses are dialled, and a peer is asked for addresses if the
    /// node is short of them.
    pub fn on_tick(&mut self, chain: &NodeChain, now: Instant) {
        self.peers.expire_bans(now);
        let retries = self.requests.expire(now, self.request_timeout);
        self.send_retries(retries);
        self.download.on_tick(&mut self.peers, chain, now);
        self.peers.rotate_outbound(now);
        self.dialing.dial_due(&mut self.peers, now);
        if let Some(conn) = self.peers.addr_request(now) {
            self.peers.send(conn, Message::GetAddrs);
        }
    }

    /// Whether [`Network::on_tick`] at `now` or later would do nothing
    /// until an event changes something: nothing is asked (no request can
    /// time out) and the peer table is settled ([`PeerTable::settled`]).
    /// Expired bans are only forgotten on a tick; a ban is checked against
    /// its expiry wherever it is read, so a later tick loses nothing.
    pub fn settled(&self, now: Instant) -> bool {
        self.requests.is_idle() && self.download.is_idle() && self.peers.settled(now)
    }

    /// Cuts the node off from `addrs` until [`Network::heal`].
    pub fn partition(&mut self, addrs: &[SocketAddr]) {
        let cut = self.peers.partition(addrs);
        info!(cut, addrs = addrs.len(), "partitioned");
    }

    /// Ends the partition and dials the addresses it cut.
    pub fn heal(&mut self, now: Instant) {
        self.peers.heal(now);
        info!("partition healed");
        self.dialing.dial_due(&mut self.peers, now);
    }

    /// Keeps `addr` connected from now on, dialing it at once.
    pub fn add_peer(&mut self, addr: SocketAddr, now: Instant) {
        self.peers.watch(addr);
        self.peers.retry_now(addr, now);
        self.dialing.dial_due(&mut self.peers, now);
    }

    /// Whether a ban was added since the last call (see
    /// [`PeerTable::take_bans_changed`]).
    pub fn take_bans_changed(&mut self) -> bool {
        self.peers.take_bans_changed()
    }

    /// Bans again what a previous run banned, for the time left on each.
    pub fn restore_bans(&mut self, bans: Vec<(crate::penalty::BanKey, Duration)>, now: Instant) {
        self.peers.restore_bans(bans, now);
    }

    /// Forgets every peer: each connection task finishes.
    pub fn clear(&mut self) {
        self.peers.clear();
    }

    // ---- what live peers send -----------------------------------------

    /// A live peer's message that concerns only the network part. The
    /// transactions and blocks it sends are the core's and never reach
    /// here (a compact block comes back rebuilt, for the core to take
    /// in); the caller saved what it accepted before a message that reads
    /// blocks back (only saved blocks are served).
    pub fn on_message(
        &mut self,
        conn: ConnId,
        message: Message,
        lent: Lent<'_>,
        now: Instant,
    ) -> Option<Taken> {
        if matches!(message, Message::CompactBlock(_) | Message::BlockTxn { .. }) {
            let parts = (&mut self.compact, &mut self.peers, &mut self.requests);
            let lent = (lent.chain, lent.mempool);
            return compact::on_message(parts, conn, message, lent, now);
        }
        let served = match message {
            Message::Handshake(_) | Message::HandshakeAck => {
                Err(Offence::Protocol("a second handshake"))
            }
            Message::Ping { .. } | Message::Pong { .. } | Message::Notice { .. } => Ok(()),
            // The core's, or handled above.
            Message::Tx(_) | Message::Block(_) | Message::SyncBlocks { .. } => Ok(()),
            Message::Headers(_) => Ok(()),
            Message::CompactBlock(_) | Message::BlockTxn { .. } => Ok(()),
            Message::SendCompact { high_bandwidth } => {
                self.compact.peer_asked(conn, high_bandwidth);
                Ok(())
            }
            Message::GetCompact { block } => {
                let salt = self.peers.draw_salt();
                serve::serve_compact(&mut self.peers, lent.chain, conn, block, salt).map(|c| {
                    if let Some(c) = c {
                        self.send_compact(conn, c);
                    }
                })
            }
            Message::GetBlockTxn { block, indexes } => {
                serve::serve_block_txn(&mut self.peers, lent.chain, conn, block, &indexes)
            }
            Message::AnnounceTxs(ids) => {
                self.peers.knows_txs(conn, ids.iter());
                // Asked of it after this event, a bounded number at a
                // time; not if pending or waiting for an earlier nonce.
                let pool = lent.mempool;
                self.requests.announced_txs(conn, &ids, |id| pool.knows(id));
                Ok(())
            }
            Message::AnnounceBlocks(hashes) => {
                self.announced_blocks(conn, &hashes, lent.chain, now);
                Ok(())
            }
            Message::GetTxs(ids) => serve::serve_txs(&mut self.peers, lent.mempool, conn, &ids),
            Message::GetBlocks(hashes) => {
                serve::serve_blocks(&mut self.peers, lent.chain, conn, &hashes)
            }
            Message::GetSync { locator, stop } => {
                let (asked, budget) = ((&locator[..], stop), self.sync_budget);
                serve::serve_sync(&mut self.peers, lent.chain, conn, asked, budget)
            }
            Message::GetHeaders { locator, stop } => {
                serve::serve_headers(&mut self.peers, lent.chain, conn, (&locator[..], stop))
            }
            Message::GetAddrs => {
                let addrs = self.peers.addrs_for(conn, MAX_ADDRS, now);
                self.peers
                    .send(conn, Message::Addrs(Bounded::truncating(addrs)));
                Ok(())
            }
            Message::Addrs(addrs) => {
                self.peers.learn_addrs_from(conn, &addrs, now);
                self.dialing.dial_due(&mut self.peers, now);
                Ok(())
            }
            Message::NotFound { txs, blocks } => {
                let retries = self.requests.not_found(conn, &txs, &blocks, now);
                self.send_retries(retries);
                Ok(())
            }
        };
        if let Err(offence) = served {
            self.punish(conn, None, &offence, now);
        }
        None
    }

    /// `conn` announced `hashes`: it knows them, those we have tell its
    /// height, and the ones we lack and have not asked of anyone are asked
    /// of it.
    fn announced_blocks(
        &mut self,
        conn: ConnId,
        hashes: &[BlockHash],
        chain: &NodeChain,
        now: Instant,
    ) {
        self.peers.knows_blocks(conn, hashes.iter());
        let known =
            |h: &BlockHash| chain.contains(h) || chain.is_orphan(h) || chain.is_known_invalid(h);
        let wanted = self.requests.want_blocks(conn, hashes, known, now);
        for hash in hashes {
            self.peer_has(conn, hash, chain);
        }
        match wanted[..] {
            [] => {}
            // One new block from a peer that speaks compact blocks: asked
            // as a compact block (low-bandwidth mode).
            [block] if self.compact.fetches_from(conn) => {
                self.peers.send(conn, Message::GetCompact { block });
            }
            _ => {
                let ask = Message::GetBlocks(Bounded::truncating(wanted));
                self.peers.send(conn, ask);
            }
        }
    }

    // ---- what the core took in from a peer ----------------------------

    /// Whether `conn` is connected (a peer being dropped is not).
    pub fn is_connected(&self, conn: ConnId) -> bool {
        self.peers.is_connected(conn)
    }

    /// `conn` sent the transaction `id`: it knows it, and it is no longer
    /// asked of anyone.
    pub fn tx_from(&mut self, conn: ConnId, id: &TxId) {
        self.requests.tx_arrived(id);
        self.peers.knows_txs(conn, [id]);
    }

    /// The transaction `conn` sent was admitted: the peer gets the credit.
    pub fn admitted_from(&mut self, conn: ConnId, now: Instant) {
        self.peers.note_tx(conn, now);
    }

    /// `conn` sent the block `hash`, as an answer to a sync if `height`
    /// (which then tells the peer's height). Returns whether we had asked
    /// for it by hash: an orphan asked for is no fault of the sender.
    pub fn block_from(&mut self, conn: ConnId, hash: &BlockHash, height: Option<u64>) -> bool {
        self.peers.knows_blocks(conn, [hash]);
        self.compact.arrived(hash);
        match height {
            Some(height) => {
                self.peers.saw_height(conn, height);
                false
            }
            None => self.requests.block_arrived(hash),
        }
    }

    /// `conn` sent the block `hash`, which the chain did not have before if
    /// `was_new`: if it has it now, the peer gets the credit (at `now`), and
    /// its height is what the block tells.
    pub fn sent_block(
        &mut self,
        (conn, hash, was_new): (ConnId, &BlockHash, bool),
        chain: &NodeChain,
        now: impl FnOnce() -> Instant,
    ) {
        if was_new && chain.contains(hash) {
            self.peers.note_block(conn, now());
            for (to, message) in self.compact.gave_new_block(conn) {
                self.peers.send(to, message);
            }
        }
        self.peer_has(conn, hash, chain);
    }

    /// `conn` has the block `hash`: if we have it too, its height and work
    /// update what we know of the peer.
    fn peer_has(&mut self, conn: ConnId, hash: &BlockHash, chain: &NodeChain) {
        if let (Some(header), Some(work)) = (chain.header(hash), chain.cumulative_work(hash)) {
            self.peers.saw_tip(conn, header.height, work);
        }
    }

    /// `conn` sent a block whose parent `missing` we lack: its fault unless
    /// `solicited`; we sync from it (once at a time).
    pub fn orphan_from(
        &mut self,
        conn: ConnId,
        (solicited, missing): (bool, BlockHash),
        chain: &NodeChain,
        now: Instant,
    ) {
        if !solicited {
            let offence = Offence::Orphan(missing.to_string());
            self.punish(conn, None, &offence, now);
        }
        if self.peers.is_connected(conn) {
            self.download.ask_headers(&mut self.peers, conn, chain, now);
        }
    }

    // ---- headers-first sync (`download.rs`) ---------------------------

    /// Headers from `conn`, checked by the chain at `now_ms`.
    pub fn on_headers(
        &mut self,
        conn: ConnId,
        headers: &[chain_core::Header],
        chain: &NodeChain,
        now_ms: u64,
    ) {
        let now = Instant::now();
        let from = (&mut self.peers, conn);
        if let Err(offence) = self
            .download
            .on_headers(from.0, conn, headers, chain, (now, now_ms))
        {
            self.punish(conn, None, &offence, now);
        }
    }

    /// Whether the sync expects more bodies (`Download::expects_bodies`).
    pub fn downloading(&self) -> bool {
        self.download.expects_bodies()
    }

    /// Whether `hash` is a body the sync asked for.
    pub fn download_wants(&self, hash: &BlockHash) -> bool {
        self.download.wants(hash)
    }

    /// A body the sync asked for, from `conn`: kept to be inserted in
    /// order, or the sender punished if it does not match its header.
    pub fn downloaded(
        &mut self,
        conn: ConnId,
        block: chain_core::Block<escrow::Tx>,
        chain: &NodeChain,
    ) {
        self.block_from(conn, &block.hash(), Some(block.header.height));
        let now = Instant::now();
        if let Err(offence) = self
            .download
            .on_block(&mut self.peers, conn, block, chain, now)
        {
            self.punish(conn, None, &offence, now);
        }
    }

    /// The next downloaded body to insert, with its sender (`None` when the
    /// next in height order has not arrived, or unless `wait` its
    /// signatures are still being checked); asks for more.
    pub fn next_downloaded(
        &mut self,
        chain: &NodeChain,
        wait: bool,
    ) -> Option<(ConnId, chain_core::Block<escrow::Tx>)> {
        let next = self.download.next_block(chain, wait);
        if next.is_none() {
            self.download.fill(&mut self.peers, chain, Instant::now());
        }
        next
    }

    /// A transaction from peer `conn` (with its signature's verdict if its
    /// task checked it) offered to `mempool`: admitted (its id and the
    /// waiting ones it let in, returned), kept waiting, or refused
    /// (`gossip::tx_offence`: its fault?).
    pub fn offer_tx(
        &mut self,
        mempool: &mut Mempool,
        conn: ConnId,
        (tx, check): (SignedTx, Option<escrow::SigCheck>),
        now: Instant,
    ) -> Option<(TxId, Vec<TxId>)> {
        let id = tx.id();
        self.tx_from(conn, &id);
        match mempool.offer(tx, check, Some(conn), now) {
            Offered::Added { id, freed } => {
                self.admitted_from(conn, now);
                return Some((id, freed));
            }
            // Its predecessor may come from another peer; neither waiting nor
            // a refusal to wait is penalised (PROTOCOL.md, "Orphan transactions").
            Offered::Waiting { evicted } => {
                tracing::debug!(conn, %id, ?evicted, "transaction waits for an earlier nonce");
            }
            Offered::NotKept(why) => {
                tracing::debug!(conn, %id, "transaction not kept to wait: {why}");
            }
            Offered::Refused(e) => match gossip::tx_offence(&e) {
                Some(offence) => self.punish(conn, None, &offence, now),
                None => tracing::debug!(conn, %id, "transaction not pooled: {e}"),
            },
        }
        None
    }

    /// Whether a sync's signatures are checked ahead (a live node's
    /// multi-threaded runtime).
    pub fn prechecks(&self) -> bool {
        self.download.prechecks()
    }

    /// How far the sync is (`None` when nothing is to download).
    pub fn sync_progress(
        &self,
        chain: &NodeChain,
        now: Instant,
    ) -> Option<crate::core::view::SyncProgress> {
        self.download.progress(chain, now)
    }

    // ---- what the node tells and asks ---------------------------------

    /// Tells `conn` of the block `hash`, known to be saved, unless it knows.
    pub fn announce_block(&mut self, conn: ConnId, hash: BlockHash) {
        if self.peers.tell_block(conn, hash) {
            let hashes = Bounded::truncating(vec![hash]);
            self.peers.send(conn, Message::AnnounceBlocks(hashes));
        }
    }

    /// Tells every live peer of the block `hash`, known to be saved: a
    /// peer that asked for pushes gets it as a compact block, the others
    /// an announcement.
    pub fn announce_block_to_all(&mut self, hash: BlockHash, chain: &NodeChain) {
        let mut compact = None;
        for conn in self.peers.live_conns() {
            if self.compact.pushes_to(conn) {
                if compact.is_none() {
                    let salt = self.peers.draw_salt();
                    compact = serve::compact_block(chain, &hash, salt);
                }
                // (A block that cannot be read back is announced.)
                if let Some(c) = &compact {
                    if self.peers.tell_block(conn, hash) {
                        self.send_compact(conn, c.clone());
                    }
                    continue;
                }
            }
            self.announce_block(conn, hash);
        }
    }

    /// Sends `conn` a compact block, counted.
    fn send_compact(&mut self, conn: ConnId, compact: wire::CompactBlock) {
        let message = Message::CompactBlock(compact);
        self.compact.sent(wire::frame_len(&message));
        self.peers.send(conn, message);
    }

    /// The live peers to tell of the transaction `id` (those that do not
    /// know it); they count as told from now.
    pub fn tell_tx(&mut self, id: TxId) -> Vec<ConnId> {
        self.peers.tell_tx(id)
    }

    /// The transaction `id` left a block that was undone: peers may need
    /// to hear of it again.
    pub fn forget_tx(&mut self, id: &TxId) {
        self.peers.forget_tx(id);
    }

    /// Sends the announcements due, one `AnnounceTxs` a peer.
    pub fn announce_txs(&mut self, due: Vec<(ConnId, Vec<TxId>)>) {
        for (conn, ids) in due {
            self.send_all(conn, gossip::tx_inventory(&ids, Message::AnnounceTxs));
        }
    }

    /// Asks for the announced transactions the mempool lacks, one `GetTxs`
    /// a peer, as many as each peer's free slots allow.
    pub fn ask_txs(&mut self, mempool: &Mempool, now: Instant) {
        let asked = self.requests.tx_requests(|id| mempool.knows(id), now);
        for (conn, ids) in asked {
            self.send_all(conn, gossip::tx_inventory(&ids, Message::GetTxs));
        }
    }

    /// Sends the next request for damaged stored blocks, if one is due
    /// (`core/repair.rs`).
    pub fn ask_for_damaged(&mut self, repairs: &mut Repairs, now: Instant) {
        // Nothing wanted (the usual case): no peer list is built.
        if repairs.is_empty() {
            return;
        }
        let live = self.peers.live_conns();
        if let Some((conn, wanted)) = repairs.request(&live, &mut self.requests, now) {
            let ask = Message::GetBlocks(Bounded::truncating(wanted));
            self.peers.send(conn, ask);
        }
    }

    /// Sends `messages` to `conn` (nothing if it is not connected).
    fn send_all(&mut self, conn: ConnId, messages: Vec<Message>) {
        for message in messages {
            self.peers.send(conn, message);
        }
    }

    /// Asks again, of other peers, what the retries name.
    fn send_retries(&mut self, retries: Retries) {
        for (conn, message) in retries.into_messages() {
            self.peers.send(conn, message);
        }
    }
}

#[cfg(test)]
#[path = "network_tests.rs"]
mod tests;

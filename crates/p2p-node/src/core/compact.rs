//! Compact block relay (after BIP 152; `docs/PROTOCOL.md`, "Compact
//! blocks"): what each peer asked for, the peers we asked to push blocks
//! to us, and the blocks being rebuilt. Decisions come back as values; the
//! network part sends what they say.
//!
//! - A peer of protocol version 3 or later is sent `SendCompact
//!   { high_bandwidth: false }` when it goes live (if this node relays
//!   compact blocks, [`Relay::Compact`]). A block announced by a peer that
//!   sent us `SendCompact` is asked of it as a compact block
//!   (`GetCompact`).
//! - The last three peers that gave us a new block first are asked to push
//!   (`SendCompact { high_bandwidth: true }`); the one that falls out of
//!   the three is told `high_bandwidth: false`.
//! - A peer that sent us `SendCompact { high_bandwidth: true }` gets each
//!   new best block as a compact block instead of an announcement. This
//!   node pushes only blocks it validated and saved.
//! - A compact block is rebuilt from the mempool's pending, orphan and
//!   last dropped transactions, and from the tip block's when it competes with the tip
//!   (`Network::on_compact_message`); missing transactions are asked with
//!   `GetBlockTxn`. What waits is
//!   bounded: one block per peer (a newer compact block from the same
//!   peer replaces the one waiting), [`MAX_WAITING`] in all (the oldest
//!   goes), each of at most the chain's `max_block_txs` transactions. An
//!   ambiguous or wrong rebuild asks for the whole block.

use std::collections::{BTreeMap, VecDeque};

use chain_core::BlockHash;
use escrow::Tx;
use wire::compact::{CompactBlock, CompactError, Rebuild, Started};
use wire::{COMPACT_VERSION, Message};

use crate::config::Relay;
use crate::core::peers::PeerTable;
use crate::core::requests::Requests;
use crate::core::view::{CompactCounts, ConnId, NodeChain};
use crate::penalty::Offence;
use chain_core::validate;
use tokio::time::Instant;
use wire::Bounded;

/// How many peers are asked to push blocks (BIP 152's three).
pub const HIGH_BANDWIDTH_PEERS: usize = 3;

/// Most blocks waiting for their missing transactions, over all peers.
pub const MAX_WAITING: usize = 8;

/// A block waiting for its missing transactions.
struct Waiting {
    /// When it started waiting (a counter: the oldest goes first).
    seq: u64,
    hash: BlockHash,
    rebuild: Rebuild,
    /// Pushed unasked by a peer we asked to push (see
    /// [`Taken::pushed`]).
    pushed: bool,
}

/// A block rebuilt from a compact block, to take in like a full one.
#[derive(Debug)]
pub struct Taken {
    /// The block.
    pub block: chain_core::Block<Tx>,
    /// Whether a peer we asked to push (high-bandwidth mode) sent it
    /// unasked: if its transactions then fail validation, the sender is
    /// not penalised (it may forward before validating, as BIP 152
    /// allows), though the block is refused and never relayed.
    pub pushed: bool,
}

/// What to do with a compact block or the transactions that complete one.
#[derive(Debug)]
pub enum Outcome {
    /// Nothing (a block we have, or a stray answer).
    Nothing,
    /// The block is rebuilt: take it in.
    Take(Taken),
    /// Send `GetBlockTxn` for these indexes of the block.
    AskTxs(BlockHash, Vec<u32>),
    /// Ask for the whole block (ambiguous short ids, or a rebuild whose
    /// merkle root is not the header's).
    AskBlock(BlockHash),
    /// The sender broke the protocol (the text says how).
    Offence(&'static str),
}

/// The compact relay state of a node.
pub(crate) struct CompactRelay {
    on: bool,
    /// Admitted peers' protocol versions.
    versions: BTreeMap<ConnId, u32>,
    /// What each peer asked with `SendCompact`: whether to push.
    asked: BTreeMap<ConnId, bool>,
    /// The peers we asked to push, oldest first.
    chosen: VecDeque<ConnId>,
    waiting: BTreeMap<ConnId, Waiting>,
    next_seq: u64,
    /// Counters (`/metrics`).
    pub counts: CompactCounts,
}

impl CompactRelay {
    /// Compact relay as `relay` says.
    pub fn new(relay: Relay) -> CompactRelay {
        CompactRelay {
            on: relay == Relay::Compact,
            versions: BTreeMap::new(),
            asked: BTreeMap::new(),
            chosen: VecDeque::new(),
            waiting: BTreeMap::new(),
            next_seq: 0,
            counts: CompactCounts::default(),
        }
    }

    /// `conn` was admitted with protocol `version`.
    pub fn admitted(&mut self, conn: ConnId, version: u32) {
        self.versions.insert(conn, version);
    }

    /// Whether we and `conn` speak compact blocks.
    pub fn speaks(&self, conn: ConnId) -> bool {
        self.on
            && self
                .versions
                .get(&conn)
                .is_some_and(|v| *v >= COMPACT_VERSION)
    }

    /// `conn` went live: the message that offers it compact blocks, if
    /// both sides speak them.
    pub fn on_live(&self, conn: ConnId) -> Option<Message> {
        self.speaks(conn).then_some(Message::SendCompact {
            high_bandwidth: false,
        })
    }

    /// `conn` is gone.
    pub fn on_gone(&mut self, conn: ConnId) {
        self.versions.remove(&conn);
        self.asked.remove(&conn);
        self.chosen.retain(|c| *c != conn);
        self.waiting.remove(&conn);
    }

    /// `conn` sent `SendCompact`.
    pub fn peer_asked(&mut self, conn: ConnId, high_bandwidth: bool) {
        self.asked.insert(conn, high_bandwidth);
    }

    /// Whether a new block goes to `conn` as a pushed compact block.
    pub fn pushes_to(&self, conn: ConnId) -> bool {
        self.speaks(conn) && self.asked.get(&conn) == Some(&true)
    }

    /// Whether `conn` offered compact blocks (`SendCompact`), so a block
    /// it announces is asked of it with `GetCompact`.
    pub fn fetches_from(&self, conn: ConnId) -> bool {
        self.speaks(conn) && self.asked.contains_key(&conn)
    }

    /// `conn` gave us a new block first: it joins the peers asked to push
    /// (the oldest of four leaves). The messages to send, by peer.
    pub fn gave_new_block(&mut self, conn: ConnId) -> Vec<(ConnId, Message)> {
        if !self.speaks(conn) {
            return Vec::new();
        }
        if let Some(at) = self.chosen.iter().position(|c| *c == conn) {
            // Already asked: it becomes the most recent.
            self.chosen.remove(at);
            self.chosen.push_back(conn);
            return Vec::new();
        }
        self.chosen.push_back(conn);
        let mut out = vec![(
            conn,
            Message::SendCompact {
                high_bandwidth: true,
            },
        )];
        while self.chosen.len() > HIGH_BANDWIDTH_PEERS {
            if let Some(old) = self.chosen.pop_front() {
                out.push((
                    old,
                    Message::SendCompact {
                        high_bandwidth: false,
                    },
                ));
            }
        }
        out
    }

    /// A compact block from `conn` (`bytes` long on the wire), its proof
    /// of work already checked. `seen`: whether we have the block (or know
    /// it invalid), and whether we asked for it (then it was no push);
    /// `max_txs`: the most transactions a block may hold; `candidates`:
    /// the transactions it may hold.
    pub fn on_compact<'a>(
        &mut self,
        conn: ConnId,
        (compact, bytes): (&CompactBlock, usize),
        (known, asked): (bool, bool),
        max_txs: usize,
        candidates: impl IntoIterator<Item = (chain_core::TxId, &'a escrow::SignedTx)>,
    ) -> Outcome {
        self.counts.received += 1;
        self.counts.bytes_received += bytes as u64;
        let hash = compact.header.hash();
        if known {
            return Outcome::Nothing;
        }
        if compact.tx_count() > max_txs {
            return Outcome::Offence("a compact block of more transactions than a block may hold");
        }
        let pushed = !asked && self.chosen.contains(&conn);
        match Rebuild::start(compact, candidates) {
            Err(e) => Outcome::Offence(match e {
                CompactError::TooManyTxs(_) => "a compact block of too many transactions",
                CompactError::BadIndex(_) => {
                    "a compact block's prefilled index out of order or past its end"
                }
                CompactError::NoCoinbase => "a compact block without its coinbase prefilled",
            }),
            Ok(Started::Ambiguous) => {
                self.counts.failed += 1;
                Outcome::AskBlock(hash)
            }
            Ok(Started::Complete(rebuild)) => self.finished(rebuild, hash, pushed, true),
            Ok(Started::Missing(rebuild, missing)) => {
                self.wait(conn, hash, rebuild, pushed);
                Outcome::AskTxs(hash, missing)
            }
        }
    }

    /// Keeps `rebuild` waiting for `conn`'s answer, within the bounds.
    fn wait(&mut self, conn: ConnId, hash: BlockHash, rebuild: Rebuild, pushed: bool) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let waiting = Waiting {
            seq,
            hash,
            rebuild,
            pushed,
        };
        self.waiting.insert(conn, waiting);
        while self.waiting.len() > MAX_WAITING {
            let oldest = self
                .waiting
                .iter()
                .min_by_key(|(_, w)| w.seq)
                .map(|(c, _)| *c);
            if let Some(c) = oldest {
                self.waiting.remove(&c);
            }
        }
    }

    /// A rebuild with every slot filled: the block if its merkle root is
    /// the header's, else the whole block is asked for. Counted as rebuilt
    /// `at_once` or after asking.
    fn finished(
        &mut self,
        rebuild: Rebuild,
        hash: BlockHash,
        pushed: bool,
        at_once: bool,
    ) -> Outcome {
        match rebuild.finish() {
            Some(block) if at_once => {
                self.counts.rebuilt_at_once += 1;
                Outcome::Take(Taken { block, pushed })
            }
            Some(block) => {
                self.counts.rebuilt_after_asking += 1;
                Outcome::Take(Taken { block, pushed })
            }
            None => {
                self.counts.failed += 1;
                Outcome::AskBlock(hash)
            }
        }
    }

    /// `conn` answered `GetBlockTxn` for `block` with `txs`.
    pub fn on_block_txn(&mut self, conn: ConnId, block: BlockHash, txs: Vec<Tx>) -> Outcome {
        let Some(waiting) = self.waiting.remove(&conn) else {
            return Outcome::Nothing;
        };
        if waiting.hash != block {
            // An answer to an older request: keep waiting for ours.
            self.waiting.insert(conn, waiting);
            return Outcome::Nothing;
        }
        let Waiting {
            hash,
            mut rebuild,
            pushed,
            ..
        } = waiting;
        if !rebuild.fill(txs) {
            self.counts.failed += 1;
            return Outcome::Offence("an answer that does not fit its GetBlockTxn");
        }
        self.finished(rebuild, hash, pushed, false)
    }

    /// The block `hash` arrived another way: stop waiting for it.
    pub fn arrived(&mut self, hash: &BlockHash) {
        self.waiting.retain(|_, w| w.hash != *hash);
    }

    /// Counts a compact block sent, `bytes` long.
    pub fn sent(&mut self, bytes: usize) {
        self.counts.sent += 1;
        self.counts.bytes_sent += bytes as u64;
    }
}

/// A compact block, or the transactions that complete one, from `conn`:
/// the rebuilt block, if any, for the core to take in (the network part
/// lends its relay, peer table and requests).
pub(super) fn on_message(
    (relay, peers, requests): (&mut CompactRelay, &mut PeerTable, &mut Requests),
    conn: ConnId,
    message: Message,
    (chain, mempool): (&NodeChain, &crate::mempool::Mempool),
    now: Instant,
) -> Option<Taken> {
    let bytes = wire::frame_len(&message);
    let outcome = match message {
        Message::CompactBlock(compact) => {
            let hash = match validate::check_proof_of_work(&compact.header, chain.params()) {
                Ok(hash) => hash,
                Err(e) => {
                    peers.punish(conn, None, &Offence::InvalidBlock(e.to_string()), now);
                    return None;
                }
            };
            peers.knows_blocks(conn, [&hash]);
            let known =
                chain.contains(&hash) || chain.is_orphan(&hash) || chain.is_known_invalid(&hash);
            if !known && !chain.contains(&compact.header.parent) {
                // Its parent is missing: the whole block, then a sync.
                Outcome::AskBlock(hash)
            } else {
                let seen = (known, requests.is_block_asked(&hash));
                let max_txs = chain.params().max_block_txs;
                // A block that competes with our tip may hold our
                // tip's transactions, which left the mempool.
                let tip = chain.tip();
                let tip_block = (!known && compact.header.parent != tip)
                    .then(|| chain.block(&tip))
                    .flatten();
                let from_tip = tip_block.iter().flat_map(|b| b.transactions.iter());
                let from_tip = from_tip.filter_map(|tx| match tx {
                    escrow::Tx::Signed(s) => Some((s.id(), s)),
                    _ => None,
                });
                let candidates = mempool.candidates().chain(from_tip);
                relay.on_compact(conn, (&compact, bytes), seen, max_txs, candidates)
            }
        }
        Message::BlockTxn { block, txs } => relay.on_block_txn(conn, block, txs.into_inner()),
        _ => Outcome::Nothing,
    };
    match outcome {
        Outcome::Nothing => None,
        Outcome::Take(taken) => Some(taken),
        Outcome::AskTxs(hash, indexes) => {
            requests.want_blocks(conn, &[hash], |_| false, now);
            let indexes = Bounded::truncating(indexes);
            peers.send(
                conn,
                Message::GetBlockTxn {
                    block: hash,
                    indexes,
                },
            );
            None
        }
        Outcome::AskBlock(hash) => {
            requests.want_blocks(conn, &[hash], |_| false, now);
            peers.send(conn, Message::GetBlocks(Bounded::truncating(vec![hash])));
            None
        }
        Outcome::Offence(what) => {
            peers.punish(conn, None, &Offence::Protocol(what), now);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use wire::Bounded;

    use super::*;

    /// The dev genesis block as a compact block: every transaction is
    /// unsigned, so all are prefilled, and `extra` made-up short ids follow.
    fn compact(extra: u8) -> CompactBlock {
        let mut c = CompactBlock::new(&escrow::Genesis::dev().block(), 1, &[]);
        c.short_ids = Bounded::truncating((0..extra).map(|i| [i; 6]).collect());
        c
    }

    fn relay() -> CompactRelay {
        let mut r = CompactRelay::new(Relay::Compact);
        for conn in 1..=20 {
            r.admitted(conn, COMPACT_VERSION);
        }
        r
    }

    #[test]
    fn what_waits_is_bounded_and_oversized_blocks_are_refused() {
        let mut r = relay();
        let c = compact(3);
        let none = std::iter::empty();
        // More transactions than a block may hold: the sender's fault.
        let max = c.tx_count() - 1;
        let too_big = r.on_compact(1, (&c, 0), (false, false), max, none.clone());
        assert!(matches!(too_big, Outcome::Offence(_)));
        // Twenty peers each leave a block waiting: only the newest eight
        // are kept.
        for conn in 1..=20 {
            let out = r.on_compact(conn, (&c, 0), (false, false), 10_000, none.clone());
            assert!(
                matches!(out, Outcome::AskTxs(_, ref m) if m.len() == 3),
                "{out:?}"
            );
        }
        assert_eq!(r.waiting.len(), MAX_WAITING);
        let hash = c.header.hash();
        assert!(matches!(
            r.on_block_txn(1, hash, Vec::new()),
            Outcome::Nothing
        ));
        // A kept one whose answer does not fit: an offence.
        assert!(matches!(
            r.on_block_txn(20, hash, Vec::new()),
            Outcome::Offence(_)
        ));
    }

    #[test]
    fn only_an_unasked_block_from_a_peer_asked_to_push_counts_as_pushed() {
        let mut r = relay();
        let c = compact(0);
        let take = |r: &mut CompactRelay, conn, asked| match r.on_compact(
            conn,
            (&c, 0),
            (false, asked),
            10_000,
            std::iter::empty(),
        ) {
            Outcome::Take(t) => t.pushed,
            other => panic!("{other:?}"),
        };
        assert!(!take(&mut r, 1, false), "not asked to push");
        r.gave_new_block(1);
        assert!(take(&mut r, 1, false));
        assert!(!take(&mut r, 1, true), "asked for with GetCompact");
        assert_eq!(r.counts.rebuilt_at_once, 3);
        // A block we have is not rebuilt again.
        let known = r.on_compact(1, (&c, 0), (true, false), 10_000, std::iter::empty());
        assert!(matches!(known, Outcome::Nothing));
    }

    fn hb(on: bool) -> Message {
        Message::SendCompact { high_bandwidth: on }
    }

    #[test]
    fn the_last_three_peers_that_gave_a_new_block_first_are_asked_to_push() {
        let mut r = CompactRelay::new(Relay::Compact);
        for conn in 1..=5 {
            r.admitted(conn, COMPACT_VERSION);
        }
        // A version 2 peer is never sent a compact message.
        r.admitted(9, 2);
        assert!(r.on_live(9).is_none() && r.gave_new_block(9).is_empty());
        assert_eq!(r.on_live(1), Some(hb(false)));
        for conn in 1..=3 {
            assert_eq!(r.gave_new_block(conn), vec![(conn, hb(true))]);
        }
        // Again first: no message, it becomes the most recent.
        assert!(r.gave_new_block(1).is_empty());
        // A fourth: the oldest (2, as 1 was refreshed) is told to stop.
        assert_eq!(r.gave_new_block(4), vec![(4, hb(true)), (2, hb(false))]);
        // A peer gone leaves room.
        r.on_gone(3);
        assert_eq!(r.gave_new_block(5), vec![(5, hb(true))]);
        // Pushes go to peers that asked for them, and that speak version 3.
        r.peer_asked(1, true);
        r.peer_asked(9, true);
        assert!(r.pushes_to(1) && !r.pushes_to(2) && !r.pushes_to(9));
        // A legacy node does none of it.
        let mut legacy = CompactRelay::new(Relay::Legacy);
        legacy.admitted(1, COMPACT_VERSION);
        legacy.peer_asked(1, true);
        assert!(legacy.on_live(1).is_none() && legacy.gave_new_block(1).is_empty());
        assert!(!legacy.pushes_to(1) && !legacy.fetches_from(1));
        // Asked of with GetCompact only once it offered compact blocks.
        assert!(!r.fetches_from(2));
        r.peer_asked(2, false);
        assert!(r.fetches_from(2) && !r.pushes_to(2));
    }
}

//! The orphan transactions: gossiped transactions that came before an
//! earlier nonce of their sender. Asked of different peers, a sender's
//! transactions can arrive in any order; one whose predecessor is still on
//! its way waits here and is admitted to the mempool once the gap closes.
//!
//! Nothing here is paid for, so the pool is bounded so that no peer, and
//! no sender, can fill it at the expense of the others
//! (docs/PROTOCOL.md, "Orphan transactions"):
//!
//! - an orphan is refused if its nonce is more than [`MAX_NONCE_GAP`]
//!   ahead of its sender's next, if its sender holds nothing (no balance
//!   in the pending ledger and no transaction pending: such a sender's
//!   orphan could only connect after a payment the node has not seen), if
//!   its sender already has [`MAX_PER_SENDER`] waiting, or if the peer that
//!   sent it already has [`MAX_PER_PEER`] waiting;
//! - when the pool holds [`MAX_ORPHANS`], the oldest orphan of the peer
//!   holding the most makes room (the arriving peer's own if it is among
//!   those holding the most, else the last-connected of them): a peer can
//!   only displace the orphans of peers that hold more than it does;
//! - an orphan expires [`EXPIRY`] after it arrived (Bitcoin's 20 minutes);
//! - a peer's orphans go when it disconnects.
//!
//! The pool decides and holds; the core asks it. Time is passed in
//! (tokio's clock, so the simulator stays deterministic), and every map is
//! ordered, so what it decides never depends on hash order.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chain_core::TxId;
use escrow::{Address, SigCheck, SignedTx};
use tokio::time::Instant;

/// The peer an orphan came from (the core's connection number).
pub type PeerId = u64;

/// Most orphans held, over all peers.
pub const MAX_ORPHANS: usize = 1_000;
/// Most orphans held from one peer.
pub const MAX_PER_PEER: usize = 100;
/// Most orphans held of one sender.
pub const MAX_PER_SENDER: usize = 25;
/// How far ahead of its sender's next nonce an orphan may be.
pub const MAX_NONCE_GAP: u64 = 100;
/// How long an orphan waits for its predecessors.
pub const EXPIRY: Duration = Duration::from_secs(20 * 60);

/// Why an orphan was not kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrphanRefusal {
    /// Its nonce is too far ahead of its sender's next.
    #[error("nonce {got} is more than {max} ahead of the sender's next nonce, {next}")]
    TooFarAhead {
        /// The sender's next nonce.
        next: u64,
        /// The transaction's nonce.
        got: u64,
        /// The largest gap kept.
        max: u64,
    },
    /// Its sender holds nothing and has nothing pending.
    #[error("its sender holds nothing and has nothing pending")]
    Unfunded,
    /// A transaction of the same sender and nonce already waits.
    #[error("a transaction of the same sender and nonce already waits")]
    Duplicate,
    /// Its sender has its maximum waiting.
    #[error("its sender has {max} transactions waiting already")]
    SenderFull {
        /// The limit.
        max: usize,
    },
    /// The peer has its maximum waiting.
    #[error("the peer has {max} transactions waiting already")]
    PeerFull {
        /// The limit.
        max: usize,
    },
}

/// What the pool knows of the transaction's sender when it is offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SenderState {
    /// The sender's next nonce (in the pending ledger).
    pub next_nonce: u64,
    /// Whether the sender holds something: a balance in the pending
    /// ledger, or a transaction pending.
    pub funded: bool,
}

/// One waiting transaction.
#[derive(Clone)]
struct Orphan {
    tx: SignedTx,
    check: Option<SigCheck>,
    from: PeerId,
    /// Its place in arrival order.
    seq: u64,
    /// When it arrived.
    at: Instant,
}

/// The orphan transactions (see the module docs).
#[derive(Clone, Default)]
pub struct OrphanPool {
    /// By sender and nonce.
    entries: BTreeMap<(Address, u64), Orphan>,
    /// In arrival order (so also in expiry order).
    by_seq: BTreeMap<u64, (Address, u64)>,
    /// Each peer's, in arrival order.
    by_peer: BTreeMap<PeerId, BTreeSet<u64>>,
    /// Their ids: an announced id that waits here is not asked for again.
    ids: BTreeSet<TxId>,
    next_seq: u64,
}

impl OrphanPool {
    /// An empty pool.
    pub fn new() -> OrphanPool {
        OrphanPool::default()
    }

    /// The waiting transactions, in no particular order.
    pub fn txs(&self) -> impl Iterator<Item = &SignedTx> {
        self.entries.values().map(|o| &o.tx)
    }

    /// Keeps `tx` (with its signature's verdict, if reached) from peer
    /// `from`, its sender in `sender`'s state, at `now`; orphans past their
    /// [`EXPIRY`] go first. Returns the orphan evicted to make room, if
    /// one was (its sender and nonce).
    ///
    /// # Errors
    ///
    /// [`OrphanRefusal`] naming why it is not kept; the pool is unchanged
    /// but for the expired ones.
    pub fn offer(
        &mut self,
        tx: SignedTx,
        check: Option<SigCheck>,
        from: PeerId,
        sender: SenderState,
        now: Instant,
    ) -> Result<Option<(Address, u64)>, OrphanRefusal> {
        self.expire(now);
        let address = tx.sender();
        let nonce = tx.body.nonce;
        let next = sender.next_nonce;
        if nonce <= next || nonce - next > MAX_NONCE_GAP {
            return Err(OrphanRefusal::TooFarAhead {
                next,
                got: nonce,
                max: MAX_NONCE_GAP,
            });
        }
        if !sender.funded {
            return Err(OrphanRefusal::Unfunded);
        }
        if self.entries.contains_key(&(address, nonce)) {
            return Err(OrphanRefusal::Duplicate);
        }
        if self.of_sender(&address) >= MAX_PER_SENDER {
            return Err(OrphanRefusal::SenderFull {
                max: MAX_PER_SENDER,
            });
        }
        if self.held_by(from) >= MAX_PER_PEER {
            return Err(OrphanRefusal::PeerFull { max: MAX_PER_PEER });
        }
        let evicted = if self.entries.len() >= MAX_ORPHANS {
            self.evict_for(from)
        } else {
            None
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        self.ids.insert(tx.id());
        self.entries.insert(
            (address, nonce),
            Orphan {
                tx,
                check,
                from,
                seq,
                at: now,
            },
        );
        self.by_seq.insert(seq, (address, nonce));
        self.by_peer.entry(from).or_default().insert(seq);
        Ok(evicted)
    }

    /// Makes room for an orphan from `from`: the oldest orphan of the peer
    /// holding the most goes (`from`'s own if it is among them, else the
    /// last-connected of them, whose number is the highest).
    fn evict_for(&mut self, from: PeerId) -> Option<(Address, u64)> {
        let most = self.by_peer.values().map(BTreeSet::len).max()?;
        let victim = if self.held_by(from) == most {
            from
        } else {
            self.by_peer
                .iter()
                .rev()
                .find(|(_, seqs)| seqs.len() == most)
                .map(|(peer, _)| *peer)?
        };
        let oldest = *self.by_peer.get(&victim)?.first()?;
        let key = *self.by_seq.get(&oldest)?;
        self.remove(&key).map(|_| key)
    }

    /// Takes out the orphan of `sender` with nonce `next` (the sender's
    /// next nonce now), if one waits, to be admitted; the sender's orphans
    /// below `next` are dropped (their nonce was taken).
    pub fn take_next(
        &mut self,
        sender: &Address,
        next: u64,
    ) -> Option<(SignedTx, Option<SigCheck>)> {
        let stale: Vec<(Address, u64)> = self
            .entries
            .range((*sender, 0)..(*sender, next))
            .map(|(k, _)| *k)
            .collect();
        for key in stale {
            self.remove(&key);
        }
        self.remove(&(*sender, next)).map(|o| (o.tx, o.check))
    }

    /// The senders with orphans waiting, in order.
    pub fn senders(&self) -> Vec<Address> {
        let mut senders: Vec<Address> = self.entries.keys().map(|(a, _)| *a).collect();
        senders.dedup();
        senders
    }

    /// Drops the orphans that arrived [`EXPIRY`] or longer before `now`;
    /// returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let mut expired = 0;
        while let Some((_, key)) = self.by_seq.first_key_value() {
            let key = *key;
            let old = self
                .entries
                .get(&key)
                .is_none_or(|o| now.saturating_duration_since(o.at) >= EXPIRY);
            if !old {
                break;
            }
            self.remove(&key);
            expired += 1;
        }
        expired
    }

    /// Drops the orphans that came from `peer` (it disconnected); returns
    /// how many.
    pub fn forget_peer(&mut self, peer: PeerId) -> usize {
        let Some(seqs) = self.by_peer.remove(&peer) else {
            return 0;
        };
        for seq in &seqs {
            if let Some(key) = self.by_seq.remove(seq)
                && let Some(orphan) = self.entries.remove(&key)
            {
                self.ids.remove(&orphan.tx.id());
            }
        }
        seqs.len()
    }

    fn remove(&mut self, key: &(Address, u64)) -> Option<Orphan> {
        let orphan = self.entries.remove(key)?;
        self.ids.remove(&orphan.tx.id());
        self.by_seq.remove(&orphan.seq);
        if let Some(seqs) = self.by_peer.get_mut(&orphan.from) {
            seqs.remove(&orphan.seq);
            if seqs.is_empty() {
                self.by_peer.remove(&orphan.from);
            }
        }
        Some(orphan)
    }

    /// How many orphans wait.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none wait.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many orphans from `peer` wait.
    pub fn held_by(&self, peer: PeerId) -> usize {
        self.by_peer.get(&peer).map_or(0, BTreeSet::len)
    }

    /// How many orphans of `sender` wait.
    pub fn of_sender(&self, sender: &Address) -> usize {
        self.entries
            .range((*sender, 0)..=(*sender, u64::MAX))
            .count()
    }

    /// Whether the transaction `id` waits here.
    pub fn contains_id(&self, id: &TxId) -> bool {
        self.ids.contains(id)
    }

    /// Whether the orphan of `sender` with `nonce` waits.
    pub fn contains(&self, sender: &Address, nonce: u64) -> bool {
        self.entries.contains_key(&(*sender, nonce))
    }
}

#[cfg(test)]
#[path = "orphans_tests.rs"]
mod tests;

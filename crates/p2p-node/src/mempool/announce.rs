//! The trickle queue: the ids of admitted transactions waiting to be
//! announced to each peer.
//!
//! An announcement waits [`ANNOUNCE_DELAY`] for others to join it (as
//! Bitcoin's "trickle", shorter): 20 ms gathers a few dozen transactions
//! per message at a few thousand a second, and adds 20 ms per hop to their
//! relay, not to anyone's submission. Once the oldest has waited that long,
//! or once [`MAX_QUEUED_ANNOUNCEMENTS`] wait, the whole queue is due and
//! each peer is sent its ids in one message, which that peer answers with
//! one request, whose answer's signatures it checks as one batch.
//!
//! The queue decides when; which peers are to hear of a transaction (those
//! that do not know it) is the peer table's answer, and the sending is the
//! core's. Time is passed in (tokio's clock, so the simulator stays
//! deterministic), and the map is ordered by peer.

use std::collections::BTreeMap;
use std::time::Duration;

use chain_core::TxId;
use tokio::time::Instant;

use crate::mempool::orphans::PeerId;

/// How long a transaction announcement waits for others to join it.
pub const ANNOUNCE_DELAY: Duration = Duration::from_millis(20);

/// Announcements due at once however young, so the queue stays small.
pub const MAX_QUEUED_ANNOUNCEMENTS: usize = 4_096;

/// Transaction announcements waiting to be sent (see the module docs).
#[derive(Clone, Debug, Default)]
pub struct Announcements {
    /// The ids each peer is to be told, in the order they were admitted.
    queued: BTreeMap<PeerId, Vec<TxId>>,
    /// How many ids wait, over all peers.
    count: usize,
    /// When the oldest was queued.
    since: Option<Instant>,
}

impl Announcements {
    /// Queues `id` for each of `peers`, at `now`.
    pub fn queue(&mut self, peers: impl IntoIterator<Item = PeerId>, id: TxId, now: Instant) {
        for peer in peers {
            self.queued.entry(peer).or_default().push(id);
            self.count += 1;
            self.since.get_or_insert(now);
        }
    }

    /// When the queued announcements are due, if any are queued.
    pub fn due(&self) -> Option<Instant> {
        self.since.map(|t| t + ANNOUNCE_DELAY)
    }

    /// Takes the whole queue if it is due at `now`, by peer in peer order
    /// and each peer's ids in admission order; else nothing.
    pub fn take_due(&mut self, now: Instant) -> Vec<(PeerId, Vec<TxId>)> {
        let Some(due) = self.due() else {
            return Vec::new();
        };
        if now < due && self.count < MAX_QUEUED_ANNOUNCEMENTS {
            return Vec::new();
        }
        std::mem::take(self).queued.into_iter().collect()
    }

    /// How many ids wait, over all peers.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether none wait.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> TxId {
        TxId::from_bytes([n; 32])
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_is_due_before_the_oldest_has_waited_the_delay() {
        let mut queue = Announcements::default();
        let start = Instant::now();
        assert_eq!(queue.due(), None);
        queue.queue([1, 2], id(1), start);
        queue.queue([2], id(2), start + Duration::from_millis(5));
        assert_eq!(
            queue.due(),
            Some(start + ANNOUNCE_DELAY),
            "the oldest sets the time"
        );
        assert!(queue.take_due(start + Duration::from_millis(19)).is_empty());
        assert_eq!(queue.len(), 3);
        let sent = queue.take_due(start + ANNOUNCE_DELAY);
        assert_eq!(sent, vec![(1, vec![id(1)]), (2, vec![id(1), id(2)])]);
        assert!(queue.is_empty());
        assert_eq!(queue.due(), None, "an emptied queue waits for its next id");
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_is_due_at_once() {
        let mut queue = Announcements::default();
        let now = Instant::now();
        for n in 0..MAX_QUEUED_ANNOUNCEMENTS {
            let bytes = u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
            let mut raw = [0u8; 32];
            raw[..4].copy_from_slice(&bytes);
            queue.queue([7], TxId::from_bytes(raw), now);
        }
        let sent = queue.take_due(now);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].1.len(), MAX_QUEUED_ANNOUNCEMENTS);
    }
}

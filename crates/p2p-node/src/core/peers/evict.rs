//! The eviction rule: which inbound peer a newcomer replaces when every
//! inbound slot is taken (`docs/PROTOCOL.md`, "Connection limits").

use std::collections::BTreeMap;
use std::net::IpAddr;

use tokio::time::Instant;

use super::{PROTECT_EACH, Peer, PeerTable};
use crate::core::view::{ConnId, Direction};

impl PeerTable {
    /// The inbound peer a newcomer replaces when inbound slots are full, by
    /// the eviction rule: of the connected inbound peers, the
    /// [`PROTECT_EACH`] that most recently sent a new block are protected,
    /// then the [`PROTECT_EACH`] that most recently sent an admitted
    /// transaction, then the [`PROTECT_EACH`] longest connected. Of the
    /// rest, the IP address that holds the most of them is chosen (on a tie,
    /// the one with the most recent connection), and its most recently
    /// connected peer is evicted: many connections from one host make room
    /// before a lone one from another. `None` if every one is protected.
    /// Outbound peers are never evicted.
    pub(super) fn eviction_victim(&self) -> Option<ConnId> {
        let mut candidates: Vec<(ConnId, &Peer)> = self
            .peers
            .iter()
            .filter(|(_, p)| p.connected() && p.direction == Direction::Inbound)
            .map(|(c, p)| (*c, p))
            .collect();
        // The most recent block relayers, then transaction relayers: each
        // sort puts the favourites last (`None` sorts first), and they are
        // kept out of the candidates.
        let relays: [fn(&Peer) -> Option<Instant>; 2] = [|p| p.last_block, |p| p.last_tx];
        for relayed in relays {
            candidates.sort_by_key(|(c, p)| (relayed(p), *c));
            let keep = candidates
                .iter()
                .filter(|(_, p)| relayed(p).is_some())
                .count()
                .min(PROTECT_EACH);
            candidates.truncate(candidates.len() - keep);
        }
        // The longest connected: the earliest `connected_at` sorts last.
        candidates.sort_by_key(|(c, p)| (std::cmp::Reverse(p.connected_at), *c));
        let keep = candidates.len().min(PROTECT_EACH);
        candidates.truncate(candidates.len() - keep);
        // Of the rest, the newest of the most crowded IP address goes.
        let newest = |p: &Peer, c: ConnId| (p.connected_at, c);
        let mut by_ip: BTreeMap<IpAddr, (usize, (Instant, ConnId))> = BTreeMap::new();
        for (c, p) in &candidates {
            let entry = by_ip
                .entry(crate::penalty::host_of(p.remote.ip()))
                .or_insert((0, newest(p, *c)));
            entry.0 += 1;
            entry.1 = entry.1.max(newest(p, *c));
        }
        by_ip.into_values().max().map(|(_, (_, conn))| conn)
    }
}

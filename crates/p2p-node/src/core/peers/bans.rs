//! The peer table's penalties and bans: points per offence, a ban at the
//! threshold, and the bans a previous run saved.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;
use tracing::warn;
use wire::Reason;

use super::{PeerTable, Punished};
use crate::core::view::ConnId;
use crate::penalty::{BanKey, Offence};

impl PeerTable {
    /// Adds an offence's penalty to a peer and bans it past the threshold
    /// ([`BanKey::for_peer`]: its node id, its socket address, its
    /// listening address, and its IP address unless that is loopback).
    /// Before a handshake only the socket address is known: it alone is
    /// banned for an offence heavy enough to reach the threshold alone.
    /// An IP ban also drops every other peer connected from that IP.
    pub fn punish(
        &mut self,
        conn: ConnId,
        remote: Option<SocketAddr>,
        offence: &Offence,
        now: Instant,
    ) -> Punished {
        let penalty = offence.penalty();
        *self.penalties.by_offence.entry(offence.kind()).or_insert(0) += 1;
        let Some(peer) = self.peers.get_mut(&conn) else {
            if let Some(remote) = remote
                && penalty >= self.config.ban_threshold
            {
                // Only the exact address: a connection that never said who
                // it is (a port scan, a client aimed at the wrong port)
                // does not cut off its IP, which a NAT may share with
                // honest peers.
                warn!(%remote, "banned before its handshake: {offence}");
                self.ban(vec![BanKey::Addr(remote)], now);
                return Punished::BannedBeforeHandshake;
            }
            return Punished::Nobody;
        };
        let points = peer.score.add(penalty, now);
        warn!(conn, remote = %peer.remote, points, "penalty {penalty}: {offence}");
        if points < self.config.ban_threshold {
            return Punished::Warned { points };
        }
        let keys = BanKey::for_peer(Some(peer.node_id), peer.remote, peer.listen_addr);
        warn!(conn, remote = %peer.remote, "peer banned for {:?}", self.config.ban_duration);
        self.drop_peer(conn, Some((Reason::Banned, "too many protocol violations")));
        self.ban(keys, now);
        Punished::Banned
    }

    /// Bans `keys`, and drops every connected peer an IP among them
    /// covers.
    fn ban(&mut self, keys: Vec<BanKey>, now: Instant) {
        self.penalties.bans += 1;
        self.bans_changed = true;
        let ips: Vec<BanKey> = keys
            .iter()
            .filter(|k| matches!(k, BanKey::Ip(_)))
            .copied()
            .collect();
        self.bans.ban(keys, self.config.ban_duration, now);
        let same_host: Vec<ConnId> = self
            .peers
            .iter()
            .filter(|(_, p)| {
                p.connected() && BanKey::ip_of(p.remote).is_some_and(|k| ips.contains(&k))
            })
            .map(|(c, _)| *c)
            .collect();
        for conn in same_host {
            warn!(conn, "dropping a peer: its IP address was banned");
            self.drop_peer(conn, Some((Reason::Banned, "its IP address is banned")));
        }
    }

    /// Whether a ban was added since the last call (the bans are then
    /// saved for the next start); clears the mark.
    pub fn take_bans_changed(&mut self) -> bool {
        std::mem::take(&mut self.bans_changed)
    }

    /// Bans again what a previous run banned, for the time left on each.
    pub fn restore_bans(&mut self, bans: Vec<(BanKey, Duration)>, now: Instant) {
        for (key, left) in bans {
            if !left.is_zero() {
                self.bans.ban([key], left, now);
            }
        }
    }

    /// Forgets expired bans.
    pub fn expire_bans(&mut self, now: Instant) {
        self.bans.expire(now);
    }

    /// How many bans are active.
    pub fn ban_count(&self, now: Instant) -> usize {
        self.bans.active_count(now)
    }

    /// Active bans and the time left on each.
    pub fn bans(&self, now: Instant) -> Vec<(BanKey, Duration)> {
        self.bans.active(now)
    }
}

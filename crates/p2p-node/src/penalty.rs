//! Misbehaviour: what a peer did wrong, what it costs, and bans.
//!
//! Every offence has a typed reason and a penalty in points. Points decay
//! (one per second), so an honest peer that once raced us into an orphan
//! block never reaches the threshold; a peer at the threshold is
//! disconnected and banned for a while. Bans key on the node id, on the
//! exact socket address (IP and port), and on the IP address of the
//! connection unless it is a loopback address: every node of a local
//! network is 127.0.0.1, and a ban of that IP would cut off the honest
//! ones ([`BanKey::for_peer`]).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::time::Instant;
use wire::NodeId;

/// What a peer did wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Offence {
    /// Bytes that are not a frame of the protocol (garbage, an oversized
    /// length, a non-canonical or unknown message).
    #[error("undecodable frame: {0}")]
    Frame(String),
    /// A message that the protocol does not allow at this point.
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
    /// A block that breaks a consensus rule for good (bad proof of work,
    /// wrong target, bad merkle root, transactions that do not apply, ...).
    #[error("invalid block: {0}")]
    InvalidBlock(String),
    /// A block whose timestamp is too far ahead of our clock: perhaps only
    /// a skewed clock, so a small penalty and the block is not remembered as
    /// invalid.
    #[error("block from the future: {0}")]
    FutureBlock(String),
    /// A block whose parent we do not have and which the peer did not
    /// provide.
    #[error("orphan block, parent {0} unknown")]
    Orphan(String),
    /// A transaction no honest node relays: bad signature, another network,
    /// undecodable.
    #[error("invalid transaction: {0}")]
    InvalidTx(String),
    /// A request whose answer does not fit the peer's upload allowance:
    /// it asks for more than any honest peer needs (the same block again and
    /// again, say).
    #[error("upload allowance exceeded: {0}")]
    UploadBudget(String),
}

impl Offence {
    /// A short name of the kind, for metrics (`node_penalties_total`).
    pub fn kind(&self) -> &'static str {
        match self {
            Offence::Frame(_) => "frame",
            Offence::Protocol(_) => "protocol",
            Offence::InvalidBlock(_) => "invalid_block",
            Offence::FutureBlock(_) => "future_block",
            Offence::Orphan(_) => "orphan",
            Offence::InvalidTx(_) => "invalid_tx",
            Offence::UploadBudget(_) => "upload_budget",
        }
    }

    /// Penalty points.
    pub fn penalty(&self) -> u32 {
        match self {
            Offence::Frame(_) => 100,
            Offence::InvalidBlock(_) => 50,
            Offence::Protocol(_) | Offence::InvalidTx(_) => 20,
            Offence::Orphan(_) => 10,
            Offence::FutureBlock(_) | Offence::UploadBudget(_) => 5,
        }
    }
}

/// A peer's penalty points, decaying by one point per second.
#[derive(Clone, Copy, Debug)]
pub struct Score {
    points: u32,
    at: Instant,
}

impl Default for Score {
    fn default() -> Self {
        Score {
            points: 0,
            at: Instant::now(),
        }
    }
}

impl Score {
    /// The points at `now`, after decay.
    pub fn points(&self, now: Instant) -> u32 {
        let decay =
            u32::try_from(now.saturating_duration_since(self.at).as_secs()).unwrap_or(u32::MAX);
        self.points.saturating_sub(decay)
    }

    /// Adds `penalty` and returns the total after decay.
    pub fn add(&mut self, penalty: u32, now: Instant) -> u32 {
        self.points = self.points(now).saturating_add(penalty);
        self.at = now;
        self.points
    }
}

/// What a ban names.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum BanKey {
    /// A node id.
    Node(NodeId),
    /// An exact socket address (IP and port).
    Addr(SocketAddr),
    /// Every port of an IP address (never a loopback one).
    Ip(IpAddr),
}

impl BanKey {
    /// What banning a peer bans: its node id (once it is known, after a
    /// handshake), the connection's socket address, the listening address
    /// it claimed, and the connection's IP address unless that is a
    /// loopback address ([`BanKey::ip_of`]). A claimed listening address
    /// is banned exactly, never by its IP: anyone can claim anyone's.
    pub fn for_peer(
        node_id: Option<NodeId>,
        remote: SocketAddr,
        listen_addr: Option<SocketAddr>,
    ) -> Vec<BanKey> {
        let mut keys: Vec<BanKey> = node_id.map(BanKey::Node).into_iter().collect();
        keys.push(BanKey::Addr(remote));
        keys.extend(BanKey::ip_of(remote));
        keys.extend(listen_addr.filter(|a| *a != remote).map(BanKey::Addr));
        keys
    }

    /// The IP ban that covers `addr`: its [`host_of`] IP; `None` for a
    /// loopback address (127.0.0.0/8, `::1`), which every node on one
    /// machine shares.
    pub fn ip_of(addr: SocketAddr) -> Option<BanKey> {
        let ip = addr.ip().to_canonical();
        (!ip.is_loopback()).then_some(BanKey::Ip(host_of(ip)))
    }
}

/// The host an IP address stands for, for bans, eviction and the
/// handshake budget: an IPv4 address itself (an IPv4 address written as
/// IPv6 is the same one), an IPv6 address's /64 network, written as its
/// first address, since one subscriber is handed a whole /64 and could
/// otherwise change address at will.
pub fn host_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) if !v6.is_loopback() => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(std::net::Ipv6Addr::from(bits))
        }
        other => other,
    }
}

/// Penalties given, by offence kind ([`Offence::kind`]), and peers
/// banned, since the node started: for the metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PenaltyCounts {
    /// Penalties, by offence kind.
    pub by_offence: BTreeMap<&'static str, u64>,
    /// Peers (or, before a handshake, socket addresses) banned.
    pub bans: u64,
}

/// Active bans and their expiry.
#[derive(Debug, Default)]
pub struct Bans {
    until: BTreeMap<BanKey, Instant>,
}

impl Bans {
    /// Bans every key for `duration`.
    pub fn ban(
        &mut self,
        keys: impl IntoIterator<Item = BanKey>,
        duration: Duration,
        now: Instant,
    ) {
        for key in keys {
            self.until.insert(key, now + duration);
        }
    }

    /// Whether `key` is banned at `now`.
    pub fn is_banned(&self, key: &BanKey, now: Instant) -> bool {
        self.until.get(key).is_some_and(|t| *t > now)
    }

    /// Whether `addr` is banned at `now`: exactly, or by its IP.
    pub fn is_addr_banned(&self, addr: SocketAddr, now: Instant) -> bool {
        self.is_banned(&BanKey::Addr(addr), now)
            || BanKey::ip_of(addr).is_some_and(|k| self.is_banned(&k, now))
    }

    /// Whether any of `keys` is banned at `now`.
    pub fn any_banned(&self, keys: &[BanKey], now: Instant) -> bool {
        keys.iter().any(|k| self.is_banned(k, now))
    }

    /// Forgets expired bans.
    pub fn expire(&mut self, now: Instant) {
        self.until.retain(|_, t| *t > now);
    }

    /// Active bans.
    pub fn active_count(&self, now: Instant) -> usize {
        self.until.values().filter(|t| **t > now).count()
    }

    /// Active bans and the time left on each.
    pub fn active(&self, now: Instant) -> Vec<(BanKey, Duration)> {
        self.until
            .iter()
            .filter(|(_, t)| **t > now)
            .map(|(k, t)| (*k, t.saturating_duration_since(now)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_decay_and_add_up() {
        let t0 = Instant::now();
        let mut s = Score { points: 0, at: t0 };
        assert_eq!(s.add(10, t0), 10);
        assert_eq!(s.add(10, t0 + Duration::from_secs(5)), 15);
        assert_eq!(s.add(0, t0 + Duration::from_secs(100)), 0);
    }

    #[test]
    fn bans_are_by_exact_address_and_expire() {
        let now = Instant::now();
        let mut bans = Bans::default();
        let a: SocketAddr = "127.0.0.1:4000".parse().unwrap_or_else(|_| unreachable!());
        let b: SocketAddr = "127.0.0.1:4001".parse().unwrap_or_else(|_| unreachable!());
        bans.ban([BanKey::Addr(a)], Duration::from_secs(10), now);
        assert!(bans.is_banned(&BanKey::Addr(a), now));
        assert!(
            !bans.is_banned(&BanKey::Addr(b), now),
            "same IP, other port"
        );
        assert!(!bans.is_banned(&BanKey::Addr(a), now + Duration::from_secs(11)));
        bans.expire(now + Duration::from_secs(11));
        assert!(bans.active(now).is_empty());
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap_or_else(|_| unreachable!())
    }

    #[test]
    fn a_peer_off_loopback_is_banned_by_its_ip_on_every_port() {
        let now = Instant::now();
        let mut bans = Bans::default();
        let id = NodeId([7; 32]);
        let keys = BanKey::for_peer(
            Some(id),
            addr("10.1.0.5:40000"),
            Some(addr("10.1.0.5:5000")),
        );
        assert_eq!(
            keys,
            vec![
                BanKey::Node(id),
                BanKey::Addr(addr("10.1.0.5:40000")),
                BanKey::Ip("10.1.0.5".parse().unwrap_or_else(|_| unreachable!())),
                BanKey::Addr(addr("10.1.0.5:5000")),
            ]
        );
        bans.ban(keys, Duration::from_secs(10), now);
        assert!(bans.is_addr_banned(addr("10.1.0.5:1"), now), "another port");
        assert!(
            !bans.is_addr_banned(addr("10.1.0.6:40000"), now),
            "another host"
        );
        // An IPv4 address written as IPv6 is the same host.
        assert!(bans.is_addr_banned(addr("[::ffff:10.1.0.5]:9"), now));
    }

    #[test]
    fn an_ipv6_host_is_its_slash_64() {
        let now = Instant::now();
        let mut bans = Bans::default();
        bans.ban(
            BanKey::for_peer(None, addr("[2001:db8:1:2:aaaa::1]:40000"), None),
            Duration::from_secs(10),
            now,
        );
        assert!(
            bans.is_addr_banned(addr("[2001:db8:1:2:ffff::9]:1"), now),
            "same /64"
        );
        assert!(
            !bans.is_addr_banned(addr("[2001:db8:1:3::1]:1"), now),
            "another /64"
        );
    }

    #[test]
    fn loopback_peers_are_banned_by_exact_address_only() {
        let now = Instant::now();
        let mut bans = Bans::default();
        for (remote, other) in [
            ("127.0.0.1:40000", "127.0.0.1:40001"),
            ("127.0.0.2:40000", "127.0.0.2:40001"),
            ("[::1]:40000", "[::1]:40001"),
        ] {
            let keys = BanKey::for_peer(None, addr(remote), None);
            assert_eq!(keys, vec![BanKey::Addr(addr(remote))], "{remote}");
            bans.ban(keys, Duration::from_secs(10), now);
            assert!(bans.is_addr_banned(addr(remote), now));
            assert!(!bans.is_addr_banned(addr(other), now), "{other}");
        }
    }
}

//! Opening outbound connections: [`Dialing`] numbers each connection the
//! peer table plans and starts it through the node's [`Dialer`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::time::Instant;

use crate::core::peers::PeerTable;
use crate::core::view::ConnId;

/// How the core opens an outbound connection: starts a connection task
/// for connection `conn` to `addr` (the node wires it to the transport).
pub(crate) type Dialer = Box<dyn Fn(ConnId, SocketAddr) + Send>;

/// The connection numbers (shared with the accept loop) and the dialer.
pub(super) struct Dialing {
    next_conn: Arc<AtomicU64>,
    dialer: Dialer,
}

impl Dialing {
    /// Dials through `dialer`, numbering connections from `next_conn`.
    pub fn new(next_conn: Arc<AtomicU64>, dialer: Dialer) -> Dialing {
        Dialing { next_conn, dialer }
    }

    /// Dials every address the peer table plans to dial `now`, each under
    /// a fresh connection number the table is told of first. Returns the
    /// connections started.
    pub fn dial_due(&self, peers: &mut PeerTable, now: Instant) -> Vec<(ConnId, SocketAddr)> {
        let mut started = Vec::new();
        for addr in peers.dial_plan(now) {
            let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
            peers.dialing(conn, addr);
            (self.dialer)(conn, addr);
            started.push((conn, addr));
        }
        started
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Mutex;

    use escrow::Genesis;
    use wire::NodeId;

    use super::*;
    use crate::config::NodeConfig;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn each_planned_address_is_dialled_once_under_a_fresh_number() {
        let mut config = NodeConfig::new(Genesis::dev());
        config.peers = vec![addr(2), addr(3)];
        let now = Instant::now();
        let mut peers = PeerTable::new(Arc::new(config), NodeId([1; 32]), None, now, [7; 32]);
        let dialled = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&dialled);
        // The accept loop numbered four connections already.
        let next_conn = Arc::new(AtomicU64::new(4));
        let dialing = Dialing::new(
            Arc::clone(&next_conn),
            Box::new(move |conn, addr| seen.lock().unwrap().push((conn, addr))),
        );
        let started = dialing.dial_due(&mut peers, now);
        assert_eq!(*dialled.lock().unwrap(), started);
        let mut conns: Vec<ConnId> = started.iter().map(|(c, _)| *c).collect();
        conns.sort_unstable();
        assert_eq!(conns, vec![4, 5]);
        let mut addrs: Vec<SocketAddr> = started.iter().map(|(_, a)| *a).collect();
        addrs.sort_unstable();
        assert_eq!(addrs, vec![addr(2), addr(3)]);
        assert_eq!(next_conn.load(Ordering::Relaxed), 6);
        // Dials in flight are not dialled again.
        assert!(dialing.dial_due(&mut peers, now).is_empty());
        assert_eq!(dialled.lock().unwrap().len(), 2);
    }
}

//! The attacker's hosts: a listener on every port of each, and dialers
//! that keep connections open to every victim; each connection completes
//! a real handshake, answers pings, tells the attacker's addresses, and
//! pushes the double spend's private blocks.

use std::net::SocketAddr;
use std::sync::Arc;

use chain_core::Work;
use futures::{SinkExt, StreamExt};
use p2p_node::transport::{BoxStream, Transport};
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use wire::{Bounded, BoundedString, Handshake, Message, NodeId, PROTOCOL_VERSION, WireCodec};

use super::{GOSSIP_EVERY, INBOUND_SLOTS, REDIAL_EVERY, attacker_addr};
use crate::net::host_addr;
use crate::rng::SimRng;
use crate::world::{World, lock};

impl World {
    /// An attacker host's listener: every victim that dials one of its
    /// addresses gets an attacker peer; anyone else, and a victim let go,
    /// is hung up on.
    pub(super) async fn attacker_listener(self: Arc<Self>, host: usize, stop: CancellationToken) {
        let transport = self.net.transport(host);
        let Ok(mut listener) = transport.bind(host_addr(host)).await else {
            return;
        };
        loop {
            let accepted = tokio::select! {
                biased;
                () = stop.cancelled() => return,
                a = listener.accept() => a,
            };
            let Ok((stream, remote)) = accepted else {
                return;
            };
            let victim = (0..self.opts.nodes).find(|i| host_addr(*i).ip() == remote.ip());
            let Some((victim, released)) = victim.and_then(|v| Some((v, self.released(v)?))) else {
                continue;
            };
            if released.is_cancelled() {
                continue;
            }
            tokio::spawn(
                self.clone()
                    .attacker_conn(host, victim, stream, stop.clone(), released),
            );
        }
    }

    /// Keeps `per_host` connections from attacker `host` to `victim` open.
    pub(super) async fn attacker_dialer(
        self: Arc<Self>,
        host: usize,
        victim: usize,
        stop: CancellationToken,
    ) {
        let Some(e) = self.opts.eclipse else { return };
        let Some(released) = self.released(victim) else {
            return;
        };
        let per_host = INBOUND_SLOTS.div_ceil(e.hosts) + 1;
        let open = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let transport = self.net.transport(host);
        let mut rng = SimRng::stream(
            self.opts.seed,
            (5 << 32) + (host as u64) * 1_000 + victim as u64,
        );
        loop {
            let wait = REDIAL_EVERY.mul_f64(0.5 + rng.unit());
            tokio::select! {
                biased;
                () = stop.cancelled() => return,
                () = released.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            if open.load(std::sync::atomic::Ordering::Relaxed) >= per_host {
                continue;
            }
            let Ok(stream) = transport.connect(host_addr(victim)).await else {
                continue;
            };
            open.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let (world, open, stop, released) =
                (self.clone(), open.clone(), stop.clone(), released.clone());
            tokio::spawn(async move {
                world
                    .attacker_conn(host, victim, stream, stop, released)
                    .await;
                open.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            });
        }
    }

    /// One attacker connection to `victim`: the handshake, then pings
    /// answered, addresses told, and the attacker's private blocks pushed,
    /// until the attack ends or the victim is let go.
    async fn attacker_conn(
        self: Arc<Self>,
        host: usize,
        victim: usize,
        stream: BoxStream,
        stop: CancellationToken,
        released: CancellationToken,
    ) {
        let Some(e) = self.opts.eclipse else { return };
        let mut framed = Framed::new(stream, WireCodec::new());
        let genesis = self.genesis.network_id();
        // A fresh id and one of the host's addresses for each connection.
        let serial = {
            let mut s = lock(&self.shared);
            s.attack.connections += 1;
            s.attack.connections
        };
        let mut rng = SimRng::stream(self.opts.seed, (6 << 32) + serial);
        // The host's own addresses are every `hosts`-th from its index.
        let k = host - self.opts.nodes;
        let mine = (e.addrs + e.hosts - 1 - k) / e.hosts;
        let listen_addr =
            (mine > 0).then(|| attacker_addr(&self.opts, e, k + rng.below(mine) * e.hosts));
        let hello = Handshake {
            version: PROTOCOL_VERSION,
            network: genesis,
            node_id: NodeId(rng.bytes32()),
            listen_addr,
            best_tip: genesis,
            best_height: 0,
            total_work: Work::ZERO,
            user_agent: BoundedString::truncating("p2p-node/0.1.0"),
        };
        match crate::byzantine::handshake(&mut framed, hello).await {
            Ok(()) => {}
            Err(Some(reason)) => return self.count(&format!("eclipse.refused.{reason:?}")),
            Err(None) => return self.count("eclipse.refused.no_answer"),
        }
        lock(&self.shared).attack.accepted += 1;
        let mut pushes = self.private_blocks.subscribe();
        let mut gossip = tokio::time::interval(GOSSIP_EVERY);
        let opts = &self.opts;
        let sample = |rng: &mut SimRng| -> Vec<SocketAddr> {
            (0..wire::message::MAX_ADDRS.min(e.addrs))
                .map(|_| attacker_addr(opts, e, rng.below(e.addrs)))
                .collect()
        };
        loop {
            let out = tokio::select! {
                biased;
                () = stop.cancelled() => return,
                () = released.cancelled() => return,
                _ = gossip.tick() => Some(Message::Addrs(Bounded::truncating(sample(&mut rng)))),
                pushed = pushes.recv() => match pushed {
                    Ok((v, block)) if v == victim => Some(Message::Block((*block).clone())),
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => None,
                    Err(_) => return,
                },
                m = framed.next() => match m {
                    Some(Ok(Message::Ping { nonce })) => Some(Message::Pong { nonce }),
                    Some(Ok(Message::GetAddrs)) => Some(Message::Addrs(Bounded::truncating(sample(&mut rng)))),
                    Some(Ok(_)) => None,
                    _ => return,
                },
            };
            if let Some(m) = out
                && framed.send(m).await.is_err()
            {
                return;
            }
        }
    }
}

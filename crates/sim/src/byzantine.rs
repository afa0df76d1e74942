//! Byzantine hosts (`--byzantine N`): hosts of the simulated network that
//! run no node but speak the protocol to the honest nodes, and misbehave.
//!
//! Each one, until the heal, picks an honest node and a behaviour at
//! random, connects, completes a real handshake, and then:
//!
//! - `garbage`: sends a frame that decodes as no message;
//! - `invalid_block`: a block whose proof of work is met but whose merkle
//!   root is not its transactions' (rejected for good);
//! - `bad_signature`: a transfer whose signature does not verify;
//! - `stale_block`: a valid block on genesis, long after genesis (valid, a
//!   side branch: no offence);
//! - `never_delivered`: announces 50 transactions it never sends when asked
//!   (no offence: the requests time out);
//! - `unfunded_flood`: 200 well-signed transfers from keys with no coins
//!   (refused without penalty, an honest race);
//! - `oversized_list`: an `AnnounceTxs` of more ids than a list may hold
//!   (a frame error: banned at once).
//!
//! then reads what the node says for a while and hangs up, and waits an
//! exponential time (mean 5 s) before the next episode. The node's own
//! rules decide what each costs the host (`docs/PROTOCOL.md`, "Bad
//! input"); the run's checks, and one more (no honest node ever bans an
//! honest node: `World::check_bans`), must hold throughout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chain_core::miner::{Job, Kernel};
use chain_core::{Block, BlockHash, Header, MerkleRoot, Transaction, Work, merkle_root};
use escrow::{Amount, Keypair, Payload, SignedTx, Tx};
use futures::{SinkExt, StreamExt};
use p2p_node::transport::Transport;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use wire::{Bounded, BoundedString, Handshake, Message, NodeId, PROTOCOL_VERSION, WireCodec};

use crate::net::host_addr;
use crate::rng::SimRng;
use crate::world::{World, lock};

/// What a Byzantine host does in one episode, by the names the report
/// counts them under.
pub const BEHAVIOURS: [&str; 7] = [
    "garbage",
    "invalid_block",
    "bad_signature",
    "stale_block",
    "never_delivered",
    "unfunded_flood",
    "oversized_list",
];

/// Mean time between one host's episodes.
const MEAN_GAP: Duration = Duration::from_secs(5);
/// How long a host reads after misbehaving, before it hangs up.
const LINGER: Duration = Duration::from_secs(10);

impl World {
    /// Runs Byzantine host `k` (network host `nodes + k`) until `stop`.
    pub(crate) async fn byzantine_loop(self: Arc<Self>, k: usize, stop: CancellationToken) {
        let host = self.opts.nodes + k;
        let mut rng = SimRng::stream(self.opts.seed, (3 << 32) + k as u64);
        let transport = self.net.transport(host);
        loop {
            let gap = rng.exp(MEAN_GAP);
            tokio::select! {
                biased;
                () = stop.cancelled() => return,
                () = tokio::time::sleep(gap) => {}
            }
            let target = rng.below(self.opts.nodes);
            let behaviour = BEHAVIOURS[rng.below(BEHAVIOURS.len())];
            let counted = match self.episode(&transport, &mut rng, target, behaviour).await {
                Ok(()) => format!("byzantine.{behaviour}"),
                Err(why) => format!("byzantine.{behaviour}.{why}"),
            };
            *lock(&self.shared).fault_events.entry(counted).or_insert(0) += 1;
        }
    }

    /// One episode against node `target`; `Err` says why it could not
    /// misbehave (refused: banned, no room, unreachable).
    async fn episode(
        &self,
        transport: &crate::net::SimTransport,
        rng: &mut SimRng,
        target: usize,
        behaviour: &str,
    ) -> Result<(), &'static str> {
        let stream = transport
            .connect(host_addr(target))
            .await
            .map_err(|_| "unreachable")?;
        let mut framed = Framed::new(stream, WireCodec::new());
        let id = rng.bytes32();
        let genesis = self.genesis.network_id();
        let hello = Handshake {
            version: PROTOCOL_VERSION,
            network: genesis,
            node_id: NodeId(id),
            listen_addr: None,
            best_tip: genesis,
            best_height: 0,
            total_work: Work::ZERO,
            user_agent: BoundedString::truncating("byzantine"),
        };
        handshake(&mut framed, hello).await.map_err(|_| "refused")?;
        match behaviour {
            "garbage" => {
                // A frame of 6 bytes that decodes as no message.
                let raw = framed.get_mut();
                let _ = tokio::io::AsyncWriteExt::write_all(
                    raw,
                    &[0, 0, 0, 6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                )
                .await;
            }
            "invalid_block" => {
                let mut block = self.block_on_genesis(rng);
                block.header.merkle_root = MerkleRoot::from_bytes([0xab; 32]);
                block.header = solve(block.header);
                let _ = framed.send(Message::Block(block)).await;
            }
            "stale_block" => {
                let block = self.block_on_genesis(rng);
                let _ = framed.send(Message::Block(block)).await;
            }
            "bad_signature" => {
                let mut tx = unfunded_transfer(rng, genesis);
                tx.signature.0[0] ^= 1;
                let _ = framed.send(Message::Tx(tx)).await;
            }
            "never_delivered" => {
                let ids: Vec<_> = (0..50).map(|_| random_id(rng)).collect();
                let _ = framed
                    .send(Message::AnnounceTxs(Bounded::truncating(ids)))
                    .await;
            }
            "unfunded_flood" => {
                for _ in 0..200 {
                    if framed
                        .send(Message::Tx(unfunded_transfer(rng, genesis)))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            }
            _ => {
                // A list past its bound: an `AnnounceTxs` (tag 4) of 1,001
                // ids where 1,000 is the most, so the frame does not decode.
                let count = wire::message::MAX_INVENTORY + 1;
                let mut body = vec![4u8, 0x80 | (count & 0x7f) as u8, (count >> 7) as u8];
                for _ in 0..count {
                    body.extend(random_id(rng).to_bytes());
                }
                let mut frame = u32::try_from(body.len())
                    .unwrap_or(u32::MAX)
                    .to_be_bytes()
                    .to_vec();
                frame.extend(body);
                let _ = tokio::io::AsyncWriteExt::write_all(framed.get_mut(), &frame).await;
            }
        }
        // Read what the node says (a request it asks, a notice) for a
        // while, answering nothing, then hang up.
        let _ = tokio::time::timeout(LINGER, async {
            while let Some(Ok(_)) = framed.next().await {}
        })
        .await;
        Ok(())
    }

    /// A valid block at height 1 on genesis, paying a random address: a
    /// stale block once the chain has moved on.
    fn block_on_genesis(&self, rng: &mut SimRng) -> Block<Tx> {
        let genesis = self.genesis.block().header;
        let coinbase = Tx::Coinbase {
            to: escrow::Address::from_bytes(random_id(rng).to_bytes()),
            height: 1,
        };
        let txs = vec![coinbase];
        let commitments: Vec<_> = txs.iter().map(Transaction::commitment).collect();
        let header = Header {
            version: chain_core::HEADER_VERSION,
            height: 1,
            parent: genesis.hash(),
            merkle_root: merkle_root(&commitments),
            timestamp_ms: genesis.timestamp_ms + 1_000,
            target: self.genesis.params.pow_limit().to_compact(),
            nonce: 0,
        };
        Block {
            header: solve(header),
            transactions: txs,
        }
    }
}

/// The header with a nonce that meets its (trivial) target.
fn solve(mut header: Header) -> Header {
    if let Ok(job) = Job::new(&header)
        && let Some(nonce) = Kernel::Portable.scan(&job, 0, 1 << 20)
    {
        header.nonce = nonce;
    }
    header
}

fn random_id(rng: &mut SimRng) -> chain_core::TxId {
    chain_core::TxId::from_bytes(rng.bytes32())
}

/// A well-signed transfer from a key that holds nothing.
fn unfunded_transfer(rng: &mut SimRng, network: BlockHash) -> SignedTx {
    let key = Keypair::from_seed(rng.bytes32());
    SignedTx::sign(
        &key,
        0,
        Amount::new(10),
        network,
        Payload::Transfer {
            to: key.address(),
            amount: Amount::new(1),
        },
    )
}

/// Every ban an honest node holds against an honest node, in words.
pub(crate) fn honest_bans(
    bans: &[(p2p_node::BanKey, Duration)],
    honest_ids: &std::collections::BTreeSet<[u8; 32]>,
    honest_hosts: usize,
) -> Vec<String> {
    let honest_addr = |a: &SocketAddr| (0..honest_hosts).any(|i| host_addr(i).ip() == a.ip());
    bans.iter()
        .filter_map(|(key, _)| match key {
            p2p_node::BanKey::Node(id) if honest_ids.contains(&id.0) => {
                Some(format!("node id {}", hex_of(&id.0)))
            }
            p2p_node::BanKey::Addr(a) if honest_addr(a) => Some(format!("address {a}")),
            p2p_node::BanKey::Ip(ip) if (0..honest_hosts).any(|i| host_addr(i).ip() == *ip) => {
                Some(format!("IP {ip}"))
            }
            _ => None,
        })
        .collect()
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl World {
    /// Fails the run if any node holds a ban against an honest node: its
    /// node id in any of its lives, or its host's address.
    pub(crate) async fn check_bans(&self) {
        let generations: Vec<u64> = lock(&self.slots).iter().map(|s| s.generation).collect();
        let honest: std::collections::BTreeSet<[u8; 32]> = generations
            .iter()
            .enumerate()
            .flat_map(|(i, g)| (1..=*g).map(move |life| (i, life)))
            .map(|(i, life)| crate::rng::node_id(self.opts.seed, i, life))
            .collect();
        for (i, handle) in self.handles().into_iter().enumerate() {
            let Some(handle) = handle else { continue };
            let Ok(bans) = handle.query(|v| v.bans.clone()).await else {
                continue;
            };
            let wrong = honest_bans(&bans, &honest, self.opts.nodes);
            if !wrong.is_empty() {
                self.violate(
                    "honest_ban",
                    Some(i),
                    format!("node {i} banned honest peers: {}", wrong.join(", ")),
                );
                return;
            }
        }
    }
}

/// Sends `hello` on `framed` and completes the handshake (the node's own
/// handshake acknowledged, then its ack). `Err` with the reason of the
/// node's notice if it refused, `None` if it did not answer in 10 s.
pub(crate) async fn handshake(
    framed: &mut Framed<p2p_node::transport::BoxStream, WireCodec>,
    hello: Handshake,
) -> Result<(), Option<wire::Reason>> {
    framed
        .send(Message::Handshake(hello))
        .await
        .map_err(|_| None)?;
    while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(10), framed.next()).await {
        match m {
            Message::HandshakeAck => return Ok(()),
            Message::Handshake(_) => {
                let _ = framed.send(Message::HandshakeAck).await;
            }
            Message::Notice { reason, .. } => return Err(Some(reason)),
            _ => {}
        }
    }
    Err(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use p2p_node::BanKey;

    #[test]
    fn a_ban_on_an_honest_id_address_or_ip_is_found_and_others_are_not() {
        let honest: std::collections::BTreeSet<[u8; 32]> = [[1; 32]].into();
        let day = Duration::from_secs(600);
        let byzantine = host_addr(5);
        let fine = [
            (BanKey::Node(NodeId([9; 32])), day),
            (BanKey::Addr(SocketAddr::new(byzantine.ip(), 40_000)), day),
            (BanKey::Ip(byzantine.ip()), day),
        ];
        assert!(honest_bans(&fine, &honest, 3).is_empty());
        let wrong = [
            (BanKey::Node(NodeId([1; 32])), day),
            (
                BanKey::Addr(SocketAddr::new(host_addr(2).ip(), 40_001)),
                day,
            ),
            (BanKey::Ip(host_addr(0).ip()), day),
        ];
        assert_eq!(honest_bans(&wrong, &honest, 3).len(), 3);
    }
}

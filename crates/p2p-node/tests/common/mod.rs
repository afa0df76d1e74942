//! Helpers for tests that run real nodes on 127.0.0.1 with OS-chosen ports.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod api;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use chain_core::{BlockHash, ChainParams, Work};
use escrow::{Genesis, Ledger};
use futures::{SinkExt, StreamExt};
use p2p_node::{MiningMode, Node, NodeConfig, NodeHandle};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;
use wire::{BoundedString, Handshake, Message, NodeId, PROTOCOL_VERSION, WireCodec};

/// The dev network with an easy target (10 bits): blocks in microseconds.
pub fn genesis() -> Genesis {
    let mut g = Genesis::dev();
    g.params = ChainParams::with_target_bits(10);
    g
}

/// A test node's configuration: quick timeouts and backoff.
pub fn config() -> NodeConfig {
    let mut c = NodeConfig::new(genesis());
    c.ping_interval = Duration::from_millis(500);
    c.idle_timeout = Duration::from_secs(3);
    c.min_backoff = Duration::from_millis(50);
    c.max_backoff = Duration::from_millis(500);
    c.handshake_timeout = Duration::from_secs(2);
    c
}

/// Starts a node that dials `peers`.
pub async fn start(peers: &[SocketAddr], mining: MiningMode) -> NodeHandle {
    init_logs();
    let mut c = config();
    c.peers = peers.to_vec();
    c.mining = mining;
    Node::start(c).await.unwrap()
}

/// Polls `check` until it holds; panics after 120 seconds (a hang guard,
/// not a speed assertion: generous enough for a machine kept busy by
/// other work, as `.ci/under-load` keeps it).
pub async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The node's tip.
pub async fn tip(node: &NodeHandle) -> (BlockHash, u64) {
    node.tip().await.unwrap()
}

/// The node's ledger at its tip.
pub async fn ledger(node: &NodeHandle) -> Ledger {
    node.query(|v| v.chain.state().clone()).await.unwrap()
}

/// How many live peers the node has.
pub async fn peer_count(node: &NodeHandle) -> usize {
    node.query(|v| v.peers.len()).await.unwrap()
}

/// Waits until every node has the same tip.
pub async fn wait_same_tip(nodes: &[&NodeHandle]) {
    wait_for("all nodes on one tip", || async {
        let mut tips = Vec::new();
        for n in nodes {
            tips.push(tip(n).await.0);
        }
        tips.windows(2).all(|w| w[0] == w[1])
    })
    .await;
}

/// A hand-driven peer: a raw connection that speaks the wire protocol, for
/// sending what an honest node never would.
pub struct RawPeer {
    pub framed: Framed<TcpStream, WireCodec>,
    pub node_id: NodeId,
}

impl RawPeer {
    /// Connects without a handshake.
    pub async fn connect(addr: SocketAddr) -> RawPeer {
        let stream = TcpStream::connect(addr).await.unwrap();
        let mut id = [0u8; 32];
        getrandom::fill(&mut id).unwrap();
        RawPeer {
            framed: Framed::new(stream, WireCodec::new()),
            node_id: NodeId(id),
        }
    }

    /// Our handshake for `network`.
    pub fn hello(&self, network: BlockHash) -> Handshake {
        Handshake {
            version: PROTOCOL_VERSION,
            network,
            node_id: self.node_id,
            listen_addr: None,
            best_tip: network,
            best_height: 0,
            total_work: Work::ZERO,
            user_agent: BoundedString::truncating("raw-test-peer"),
        }
    }

    /// Dials and completes the handshake as a dialler; returns the node's
    /// handshake.
    pub async fn handshake(&mut self, network: BlockHash) -> Result<Handshake, Message> {
        let hello = self.hello(network);
        self.framed.send(Message::Handshake(hello)).await.unwrap();
        let theirs = match self.next().await {
            Some(Message::Handshake(h)) => h,
            Some(other) => return Err(other),
            None => return Err(Message::GetAddrs),
        };
        match self.next().await {
            Some(Message::HandshakeAck) => {}
            Some(other) => return Err(other),
            None => return Err(Message::GetAddrs),
        }
        self.framed.send(Message::HandshakeAck).await.unwrap();
        Ok(theirs)
    }

    /// The next message, or `None` when the connection closed or failed.
    pub async fn next(&mut self) -> Option<Message> {
        match tokio::time::timeout(Duration::from_secs(10), self.framed.next()).await {
            Ok(Some(Ok(m))) => Some(m),
            _ => None,
        }
    }

    /// Reads until a notice (returned) or the end of the connection.
    pub async fn until_notice(&mut self) -> Option<Message> {
        while let Some(m) = self.next().await {
            if matches!(m, Message::Notice { .. }) {
                return Some(m);
            }
        }
        None
    }
}

/// Logs to the test's output when `RUST_LOG` is set.
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A clock that can be moved: the real time plus an offset.
#[derive(Default)]
pub struct OffsetClock {
    pub offset_ms: std::sync::atomic::AtomicU64,
}

impl p2p_node::clock::Clock for OffsetClock {
    fn now_ms(&self) -> u64 {
        p2p_node::clock::SystemClock.now_ms()
            + self.offset_ms.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Starts a node with its own clock.
pub async fn start_with_clock(
    peers: &[SocketAddr],
    clock: std::sync::Arc<OffsetClock>,
) -> NodeHandle {
    init_logs();
    let mut c = config();
    c.peers = peers.to_vec();
    let seams = p2p_node::Seams {
        clock,
        ..p2p_node::Seams::default()
    };
    Node::start_with(c, seams).await.unwrap()
}

/// The wall clock in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The fee the tests' transactions pay: 1 coin, the default minimum relay
/// rate's fee for any transaction of up to 1,000 bytes.
pub const FEE: u64 = 1;

/// A dev account's transaction on the test network, signed, paying
/// [`FEE`].
pub fn sign(who: &str, nonce: u64, payload: escrow::Payload) -> escrow::SignedTx {
    escrow::SignedTx::sign(
        &escrow::dev::keypair(who).unwrap(),
        nonce,
        escrow::Amount::new(FEE),
        genesis().network_id(),
        payload,
    )
}

/// Alice's transfer of 1 to bob with this nonce, signed.
pub fn alice_pays_bob(nonce: u64) -> escrow::SignedTx {
    sign(
        "alice",
        nonce,
        escrow::Payload::Transfer {
            to: addr("bob"),
            amount: escrow::Amount::new(1),
        },
    )
}

/// A dev account's address.
pub fn addr(who: &str) -> escrow::Address {
    escrow::dev::address(who).unwrap()
}

/// Nodes in a full mesh, one per mining mode: each dials every earlier
/// one; returns once every node has all the others as peers.
pub async fn mesh(modes: &[MiningMode]) -> Vec<NodeHandle> {
    let mut nodes: Vec<NodeHandle> = Vec::new();
    for mode in modes {
        let peers: Vec<SocketAddr> = nodes.iter().map(NodeHandle::local_addr).collect();
        nodes.push(start(&peers, *mode).await);
    }
    wait_full_mesh(&nodes.iter().collect::<Vec<_>>()).await;
    nodes
}

/// Waits until each of `nodes` is connected to all the others.
pub async fn wait_full_mesh(nodes: &[&NodeHandle]) {
    let want = nodes.len().saturating_sub(1);
    wait_for("a full mesh", || async {
        for n in nodes {
            if peer_count(n).await != want {
                return false;
            }
        }
        true
    })
    .await;
}

/// An honest pair: `a`, and `b` syncing from it.
pub async fn honest_pair() -> (NodeHandle, NodeHandle) {
    let a = start(&[], MiningMode::Off).await;
    let b = start(&[a.local_addr()], MiningMode::Off).await;
    wait_for("b connected to a", || async { peer_count(&b).await == 1 }).await;
    (a, b)
}

/// `a` still mines and `b` still follows.
pub async fn still_serving(a: &NodeHandle, b: &NodeHandle) {
    a.mine_blocks(1).await.unwrap();
    wait_same_tip(&[a, b]).await;
    assert_eq!(peer_count(b).await, 1, "the honest peer is still connected");
}

/// The raw peer was told it is banned (or cut off), `a` lists the ban, and
/// coming back under the same node id is refused.
pub async fn assert_banned(a: &NodeHandle, mut raw: RawPeer) {
    let notice = raw.until_notice().await;
    if let Some(Message::Notice { reason, .. }) = &notice {
        assert_eq!(*reason, wire::Reason::Banned);
    }
    let id = raw.node_id;
    let banned = a
        .query(move |v| v.bans.iter().any(|(k, _)| *k == p2p_node::BanKey::Node(id)))
        .await
        .unwrap();
    assert!(banned, "a bans the peer's node id");
    let network = genesis().network_id();
    let mut again = RawPeer::connect(a.local_addr()).await;
    again.node_id = id;
    match again.handshake(network).await {
        Err(Message::Notice { reason, .. }) => assert_eq!(reason, wire::Reason::Banned),
        other => panic!("a banned peer came back: {other:?}"),
    }
}

/// A raw peer past its handshake with `a`.
pub async fn live_raw_peer(a: &NodeHandle) -> RawPeer {
    let mut raw = RawPeer::connect(a.local_addr()).await;
    raw.handshake(genesis().network_id()).await.unwrap();
    raw
}

/// A child of the test genesis with these transactions, its nonce the
/// first from 0 that `nonce_pick` accepts (`meets_target` for a valid
/// block).
pub fn child_of_genesis(
    transactions: Vec<escrow::Tx>,
    nonce_pick: impl Fn(&chain_core::Header) -> bool,
) -> chain_core::Block<escrow::Tx> {
    child_of_tip(&genesis().chain().unwrap(), transactions, nonce_pick)
}

/// A child of `chain`'s tip, as [`child_of_genesis`].
pub fn child_of_tip(
    chain: &p2p_node::core::NodeChain,
    transactions: Vec<escrow::Tx>,
    nonce_pick: impl Fn(&chain_core::Header) -> bool,
) -> chain_core::Block<escrow::Tx> {
    let mut header = chain.template(&transactions, now_ms());
    while !nonce_pick(&header) {
        header.nonce += 1;
    }
    chain_core::Block {
        header,
        transactions,
    }
}

/// Whether a header's hash meets the target it states.
pub fn meets_target(h: &chain_core::Header) -> bool {
    h.target.to_target().unwrap().is_met_by(&h.hash())
}

/// The coinbase-only transactions of a block at height 1, paying eve.
pub fn coinbase_only() -> Vec<escrow::Tx> {
    vec![escrow::Tx::Coinbase {
        to: addr("eve"),
        height: 1,
    }]
}

/// A frame whose 6-byte body is no message (an unknown tag): what a peer
/// sends to be banned at once.
pub const GARBAGE_FRAME: &[u8] = &[0, 0, 0, 6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];

/// A store in memory whose commits first run the test's `hook` (which may
/// fail them, or hold them), then go to the memory store.
#[derive(Clone)]
pub struct HookedStore {
    pub inner: p2p_node::store::MemoryStore,
    pub hook: std::sync::Arc<dyn Fn() -> Result<(), p2p_node::store::StoreError> + Send + Sync>,
}

impl p2p_node::store::BlockStore for HookedStore {
    fn commit(&self, commit: &p2p_node::store::Commit) -> Result<(), p2p_node::store::StoreError> {
        (self.hook)()?;
        self.inner.commit(commit)
    }
    fn load(&self) -> Result<p2p_node::store::Stored, p2p_node::store::StoreError> {
        self.inner.load()
    }
    fn block(
        &self,
        hash: &BlockHash,
    ) -> Result<Option<chain_core::Block<escrow::Tx>>, p2p_node::store::StoreError> {
        self.inner.block(hash)
    }
    fn undo(&self, hash: &BlockHash) -> Result<Option<escrow::Undo>, p2p_node::store::StoreError> {
        self.inner.undo(hash)
    }
    fn tx_block(
        &self,
        id: &chain_core::TxId,
    ) -> Result<Option<BlockHash>, p2p_node::store::StoreError> {
        self.inner.tx_block(id)
    }
    fn txs_in_range(
        &self,
        low: &chain_core::TxId,
        high: &chain_core::TxId,
        limit: usize,
    ) -> Result<Vec<chain_core::TxId>, p2p_node::store::StoreError> {
        self.inner.txs_in_range(low, high, limit)
    }
    fn put_mempool(&self, txs: &[escrow::SignedTx]) -> Result<(), p2p_node::store::StoreError> {
        self.inner.put_mempool(txs)
    }
    fn load_mempool(&self) -> Result<Vec<escrow::SignedTx>, p2p_node::store::StoreError> {
        self.inner.load_mempool()
    }
    fn put_bans(
        &self,
        bans: &[(p2p_node::BanKey, u64)],
    ) -> Result<(), p2p_node::store::StoreError> {
        self.inner.put_bans(bans)
    }
    fn load_bans(&self) -> Result<Vec<(p2p_node::BanKey, u64)>, p2p_node::store::StoreError> {
        self.inner.load_bans()
    }
}

/// A test node's configuration for raw peers that stay silent for the
/// length of a test (they do not ping): pings and the idle timeout far
/// off.
pub fn patient_config() -> NodeConfig {
    let mut c = config();
    c.idle_timeout = Duration::from_secs(300);
    c.ping_interval = Duration::from_secs(100);
    c
}

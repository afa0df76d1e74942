//! A node on in-memory seams: connections arrive through a channel, dials
//! fail at once, and the store can hand a start fuzzed records.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use chain_core::{Block, BlockHash, TxId};
use escrow::{SignedTx, Tx, Undo};
use futures::future::BoxFuture;
use p2p_node::store::{BlockStore, Commit, MemoryStore, StoreError, Stored};
use p2p_node::transport::{BoxStream, Listener, Transport};
use p2p_node::{BanKey, Node, NodeConfig, NodeError, NodeHandle, Seams};
use tokio::sync::mpsc;

/// The address the node says it listens on (nothing listens there).
pub const LISTEN: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1)),
    8333,
);

/// The sending end of the node's listener: each stream sent is one
/// inbound connection from the given address.
pub type Incoming = mpsc::UnboundedSender<(BoxStream, SocketAddr)>;

/// A transport whose listener yields the streams sent on a channel and
/// whose dials all fail: the node under test talks to the harness only.
pub struct MemTransport {
    incoming: Mutex<Option<mpsc::UnboundedReceiver<(BoxStream, SocketAddr)>>>,
}

impl MemTransport {
    /// The transport, and the channel to hand it connections.
    pub fn new() -> (MemTransport, Incoming) {
        let (tx, rx) = mpsc::unbounded_channel();
        let transport = MemTransport {
            incoming: Mutex::new(Some(rx)),
        };
        (transport, tx)
    }
}

struct MemListener {
    rx: mpsc::UnboundedReceiver<(BoxStream, SocketAddr)>,
    addr: SocketAddr,
}

impl Listener for MemListener {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<(BoxStream, SocketAddr)>> {
        Box::pin(async move {
            match self.rx.recv().await {
                Some(conn) => Ok(conn),
                // The harness is gone: wait for the node's shutdown
                // rather than make its accept loop spin on errors.
                None => futures::future::pending().await,
            }
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

impl Transport for MemTransport {
    fn bind(&self, addr: SocketAddr) -> BoxFuture<'_, io::Result<Box<dyn Listener>>> {
        let rx = self.incoming.lock().expect("not poisoned").take();
        Box::pin(async move {
            let rx = rx.ok_or_else(|| io::Error::new(io::ErrorKind::AddrInUse, "bound once"))?;
            Ok(Box::new(MemListener { rx, addr }) as Box<dyn Listener>)
        })
    }

    fn connect(&self, addr: SocketAddr) -> BoxFuture<'_, io::Result<BoxStream>> {
        Box::pin(async move {
            Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!("the fuzz harness dials nobody ({addr})"),
            ))
        })
    }
}

/// The node's configuration: the trivial-target dev network, not mining.
pub fn config() -> NodeConfig {
    let mut c = NodeConfig::new(crate::chain::genesis());
    c.listen = LISTEN;
    c
}

/// Starts a node on `store` and a [`MemTransport`].
///
/// # Errors
///
/// The node's refusal to start (a store it cannot restore from).
pub async fn start(store: Box<dyn BlockStore>) -> Result<(NodeHandle, Incoming), NodeError> {
    let (transport, incoming) = MemTransport::new();
    let seams = Seams {
        transport: Arc::new(transport),
        clock: Arc::new(p2p_node::clock::SystemClock),
        store,
        miner: None,
        node_id: Some(wire::NodeId([7; 32])),
        seed: Some([0; 32]),
        cpu: None,
    };
    let node = Node::start_with(config(), seams).await?;
    Ok((node, incoming))
}

/// A store whose start-up records come from the fuzzer: the headers and
/// snapshot a start reads, block bodies and undo records by hash, the
/// saved mempool and bans. What the node writes goes to a
/// [`MemoryStore`], and reads fall back to it.
#[derive(Default)]
pub struct FuzzStore {
    /// What `load` returns.
    pub stored: Stored,
    /// Bodies read back by hash.
    pub bodies: HashMap<BlockHash, Block<Tx>>,
    /// Undo records read back by hash.
    pub undo: HashMap<BlockHash, Undo>,
    /// The saved mempool.
    pub mempool: Vec<SignedTx>,
    /// The saved bans.
    pub bans: Vec<(BanKey, u64)>,
    /// Where the node's writes go.
    pub written: MemoryStore,
}

impl BlockStore for FuzzStore {
    fn commit(&self, commit: &Commit) -> Result<(), StoreError> {
        self.written.commit(commit)
    }

    fn load(&self) -> Result<Stored, StoreError> {
        Ok(self.stored.clone())
    }

    fn block(&self, hash: &BlockHash) -> Result<Option<Block<Tx>>, StoreError> {
        match self.bodies.get(hash) {
            Some(b) => Ok(Some(b.clone())),
            None => self.written.block(hash),
        }
    }

    fn undo(&self, hash: &BlockHash) -> Result<Option<Undo>, StoreError> {
        match self.undo.get(hash) {
            Some(u) => Ok(Some(u.clone())),
            None => self.written.undo(hash),
        }
    }

    fn tx_block(&self, id: &TxId) -> Result<Option<BlockHash>, StoreError> {
        self.written.tx_block(id)
    }

    fn txs_in_range(&self, low: &TxId, high: &TxId, limit: usize) -> Result<Vec<TxId>, StoreError> {
        self.written.txs_in_range(low, high, limit)
    }

    fn put_mempool(&self, txs: &[SignedTx]) -> Result<(), StoreError> {
        self.written.put_mempool(txs)
    }

    fn load_mempool(&self) -> Result<Vec<SignedTx>, StoreError> {
        Ok(self.mempool.clone())
    }

    fn put_bans(&self, bans: &[(BanKey, u64)]) -> Result<(), StoreError> {
        self.written.put_bans(bans)
    }

    fn load_bans(&self) -> Result<Vec<(BanKey, u64)>, StoreError> {
        Ok(self.bans.clone())
    }
}

//! [`Node`]: starting a node, and [`NodeHandle`]: talking to a running one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use chain_core::{BlockHash, TxId};
use escrow::SignedTx;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};
use wire::NodeId;

use crate::clock::{Clock, SystemClock};
use crate::config::{MiningMode, NodeConfig};
use crate::core::{
    BlockSubmission, Command, Core, CoreMsg, CoreParts, Direction, NodeChain, NodeView, Snapshot,
};
use crate::mempool::MempoolError;
use crate::peer::{PeerTask, spawn_dial};
use crate::pow::{HashMiner, Mine};
use crate::store::{BlockStore, DamagedBlocks, MemoryStore, StoreArchive, StoreError, Stored};
use crate::traffic::Traffic;
use crate::transport::{TcpTransport, Transport};

/// Why a node could not start, or a request could not be served.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The genesis block does not start a chain.
    #[error("invalid genesis: {0}")]
    Genesis(String),
    /// The socket for peers could not be opened.
    #[error("cannot listen for peers on {addr}: {}", listen_cause(source))]
    Listen {
        /// Where.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP API's socket could not be opened.
    #[error("cannot listen for the API on {addr}: {}", listen_cause(source))]
    ApiListen {
        /// Where.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP API's own runtime (its threads) could not be started.
    #[error("cannot start the API's threads: {0}")]
    ApiRuntime(#[source] std::io::Error),
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store disagrees with itself (a header without its parent, a
    /// snapshot at a block not stored...), or its state snapshot does not
    /// match its blocks.
    #[error(
        "the stored chain cannot be restored: {0} (move the data directory aside to start afresh)"
    )]
    Restore(String),
    /// The node has stopped.
    #[error("the node has stopped")]
    Stopped,
    /// The mempool refused a transaction.
    #[error(transparent)]
    Mempool(#[from] MempoolError),
}

/// Why a socket cannot listen, in words that say what to do about the
/// usual causes.
fn listen_cause(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::AddrInUse => "address already in use (is another node running?)".to_string(),
        ErrorKind::AddrNotAvailable => {
            format!("{e} (no network interface of this machine has that address)")
        }
        ErrorKind::PermissionDenied => {
            format!("{e} (ports below 1024 need privileges: choose a higher port)")
        }
        _ => e.to_string(),
    }
}

/// The seams a node runs on: how it connects, what time it is, where blocks
/// are kept, how it mines and who it is. The simulator (the `sim` crate)
/// replaces each with a deterministic one.
pub struct Seams {
    /// Listening and dialling.
    pub transport: Arc<dyn Transport>,
    /// Block timestamps.
    pub clock: Arc<dyn Clock>,
    /// Accepted blocks.
    pub store: Box<dyn BlockStore>,
    /// Proof of work; `None` hashes with [`HashMiner`] on
    /// [`NodeConfig::miner_threads`] threads.
    pub miner: Option<Arc<dyn Mine>>,
    /// The node's id; `None` draws a random one from the operating system.
    pub node_id: Option<NodeId>,
    /// The seed of the node's random choices (which known addresses it
    /// dials first, which peer it asks for addresses); `None` draws one
    /// from the operating system. Not the node id, which peers see.
    pub seed: Option<[u8; 32]>,
    /// A simulated processor that the node's work is charged to
    /// ([`crate::cpu`]); `None`, a live node's, charges nothing.
    pub cpu: Option<Arc<dyn crate::cpu::Cpu>>,
}

impl Default for Seams {
    /// TCP, the system clock, blocks in memory, real hashing, a random id.
    fn default() -> Self {
        Seams {
            transport: Arc::new(TcpTransport),
            clock: Arc::new(SystemClock),
            store: Box::new(MemoryStore::default()),
            miner: None,
            node_id: None,
            seed: None,
            cpu: None,
        }
    }
}

/// A node: use [`Node::start`].
pub struct Node;

impl Node {
    /// Starts a node with TCP, the system clock and an in-memory store.
    ///
    /// # Errors
    ///
    /// [`NodeError`] if the genesis is invalid or the address cannot be
    /// bound.
    pub async fn start(config: NodeConfig) -> Result<NodeHandle, NodeError> {
        Node::start_with(config, Seams::default()).await
    }

    /// Starts a node on the given seams.
    ///
    /// # Errors
    ///
    /// [`NodeError`] if the genesis is invalid, the store cannot be read or
    /// the address cannot be bound.
    pub async fn start_with(config: NodeConfig, seams: Seams) -> Result<NodeHandle, NodeError> {
        let store: Arc<dyn BlockStore> = Arc::from(seams.store);
        let stored = store.load()?;
        let snapshot_height = stored.snapshot.as_ref().map(|s| s.height);
        let damaged = Arc::new(DamagedBlocks::default());
        let (mut chain, unrestored) =
            restore(&config.genesis, stored, store.clone(), damaged.clone())?;
        chain.set_max_orphans(256);
        chain.set_memory_window(config.memory_window);
        let listener = seams
            .transport
            .bind(config.listen)
            .await
            .map_err(|source| NodeError::Listen {
                addr: config.listen,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| NodeError::Listen {
            addr: config.listen,
            source,
        })?;
        let node_id = seams.node_id.unwrap_or_else(|| NodeId(random_bytes()));
        let seed = seams.seed.unwrap_or_else(random_bytes);
        let miner = seams
            .miner
            .unwrap_or_else(|| Arc::new(HashMiner::new(config.miner_threads)));
        let config = Arc::new(config);
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let next_conn = Arc::new(AtomicU64::new(0));
        let (tx, rx) = mpsc::channel(1_024);
        let (events, _) = tokio::sync::broadcast::channel(256);
        let traffic = Arc::new(Traffic::default());
        let dialer = {
            let transport = seams.transport.clone();
            let inbox = tx.clone();
            let config = config.clone();
            let cancel = cancel.clone();
            let tracker = tracker.clone();
            let traffic = traffic.clone();
            Box::new(move |conn, remote| {
                let task = PeerTask {
                    conn,
                    remote,
                    direction: Direction::Outbound,
                    core: inbox.clone(),
                    config: config.clone(),
                    cancel: cancel.clone(),
                    pending: None,
                    traffic: traffic.clone(),
                };
                spawn_dial(task, transport.clone(), &tracker);
            })
        };
        let started_at_ms = seams.clock.now_ms();
        let core = Core::new(CoreParts {
            config: config.clone(),
            node_id,
            // Peers are told where to dial us: the address we listen on,
            // unless that is a wildcard (0.0.0.0) and an address to
            // advertise was given.
            listen_addr: Some(config.advertise.unwrap_or(local_addr)),
            chain,
            store,
            damaged,
            unrestored,
            snapshot_height,
            clock: seams.clock,
            cpu: seams.cpu,
            inbox: tx.clone(),
            cancel: cancel.clone(),
            tracker: tracker.clone(),
            next_conn: next_conn.clone(),
            events: events.clone(),
            dialer,
            miner,
            seed,
        });
        let snapshots = core.snapshots();
        // On a runtime with several workers the core gets a thread of its
        // own: validating a block takes a core for milliseconds, and a
        // worker it held could not answer the API's reads meanwhile. A
        // single-threaded runtime (the simulator, most tests) runs it as
        // any task, in step with everything else.
        // A core that panics (a bug) stops the node rather than leave it
        // serving a snapshot that no longer moves.
        let (run, stop) = (core.run(rx), cancel.clone());
        let runtime = tokio::runtime::Handle::current();
        if runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread {
            tracker.spawn_blocking(move || {
                let ran = std::panic::AssertUnwindSafe(|| runtime.block_on(run));
                if std::panic::catch_unwind(ran).is_err() {
                    tracing::error!("the node's core panicked: stopping the node");
                    stop.cancel();
                }
            });
        } else {
            let task = tokio::spawn(run);
            tracker.spawn(async move {
                if task.await.is_err() {
                    tracing::error!("the node's core panicked: stopping the node");
                    stop.cancel();
                }
            });
        }
        tracker.spawn(crate::listener::accept_loop(
            listener,
            tx.clone(),
            config.clone(),
            cancel.clone(),
            (tracker.clone(), traffic.clone()),
            next_conn,
        ));
        let handle = NodeHandle {
            core: tx,
            local_addr,
            node_id,
            cancel,
            tracker,
            events,
            snapshots,
            started_at_ms,
            traffic,
        };
        info!(%local_addr, node = %hex::encode(&node_id.0[..4]), "node started");
        Ok(handle)
    }
}

/// A running node: ask it questions, give it work, stop it.
#[derive(Clone)]
pub struct NodeHandle {
    core: mpsc::Sender<CoreMsg>,
    local_addr: SocketAddr,
    node_id: NodeId,
    events: tokio::sync::broadcast::Sender<crate::core::NodeEvent>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    snapshots: tokio::sync::watch::Receiver<Arc<Snapshot>>,
    /// When the node started, in milliseconds since the Unix epoch, read
    /// from its clock seam.
    started_at_ms: u64,
    /// What its connections carried, by message kind.
    traffic: Arc<Traffic>,
}

impl NodeHandle {
    /// When the node started, in milliseconds since the Unix epoch (by the
    /// node's clock): a client that cannot find a transaction it sent can
    /// tell whether the node restarted since.
    pub fn started_at_ms(&self) -> u64 {
        self.started_at_ms
    }

    /// What the node's peer connections carried, by message kind, since
    /// it started.
    pub fn traffic(&self) -> &Traffic {
        &self.traffic
    }

    /// Where the node listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The node's id.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// The node as the core last published it: a cheap read that never
    /// waits for the core (it clones an `Arc`). Snapshots are published
    /// after every event that changed something, once what it accepted is
    /// saved: they only move forward and never show a block that is not
    /// durable. See [`Snapshot`].
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshots.borrow().clone()
    }

    /// A receiver of the snapshots as they are published (for waiting on a
    /// change: `changed`, `wait_for`).
    pub fn snapshots(&self) -> tokio::sync::watch::Receiver<Arc<Snapshot>> {
        self.snapshots.clone()
    }

    /// Returns once the core has finished the events sent before this call,
    /// and so published what they changed: a write answered by the core is
    /// then visible in [`NodeHandle::snapshot`] (read your writes).
    ///
    /// With `saved`, the snapshot's chain part shows them too (their blocks
    /// are saved); without, its mempool part (a submission), which does
    /// not wait for a commit in flight.
    async fn published(&self, saved: bool) -> Result<(), NodeError> {
        let (reply, rx) = oneshot::channel();
        self.command(Command::Published { saved, reply }).await?;
        rx.await.map_err(|_| NodeError::Stopped)
    }

    async fn command(&self, command: Command) -> Result<(), NodeError> {
        self.core
            .send(CoreMsg::Command(command))
            .await
            .map_err(|_| NodeError::Stopped)
    }

    /// Runs `f` on a read-only view of the node's state and returns what it
    /// returns.
    ///
    /// `f` runs **on the core task**: while it runs, the core handles no
    /// peer message, block or command, so keep it short (a lookup, not a
    /// walk over the whole chain).
    ///
    /// # Errors
    ///
    /// [`NodeError::Stopped`].
    pub async fn query<R, F>(&self, f: F) -> Result<R, NodeError>
    where
        R: Send + 'static,
        F: FnOnce(&NodeView<'_>) -> R + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        self.command(Command::Query(Box::new(move |view| {
            let _ = reply.send(f(view));
        })))
        .await?;
        rx.await.map_err(|_| NodeError::Stopped)
    }

    /// The best tip and its height.
    ///
    /// # Errors
    ///
    /// [`NodeError::Stopped`].
    pub async fn tip(&self) -> Result<(BlockHash, u64), NodeError> {
        self.query(|v| (v.chain.tip(), v.chain.height())).await
    }

    /// Submits a signed transaction to the mempool (and to the peers).
    /// Once it returns, [`NodeHandle::snapshot`] shows the transaction in
    /// the pending state.
    ///
    /// # Errors
    ///
    /// [`NodeError::Mempool`] naming why it was refused.
    pub async fn submit(&self, tx: SignedTx) -> Result<TxId, NodeError> {
        // The signature is checked here, on the caller's task, so that
        // the core only looks the verdict up.
        let check = Some(escrow::SigCache::shared().precheck(&tx));
        let (reply, rx) = oneshot::channel();
        self.command(Command::SubmitTx {
            tx: Box::new(tx),
            check,
            reply,
        })
        .await?;
        // Answered once the snapshot shows the transaction.
        let id = rx.await.map_err(|_| NodeError::Stopped)??;
        Ok(id)
    }

    /// Mines `count` blocks on this node (whatever the mining mode) and
    /// returns their hashes once they are on its best chain (and in
    /// [`NodeHandle::snapshot`]).
    ///
    /// # Errors
    ///
    /// [`NodeError::Stopped`].
    pub async fn mine_blocks(&self, count: u64) -> Result<Vec<BlockHash>, NodeError> {
        self.mine_blocks_to(count, None).await
    }

    /// Mines `count` blocks on this node as [`NodeHandle::mine_blocks`]
    /// does, their rewards paid to `to` instead of the node's miner account
    /// (`None`: to that account).
    ///
    /// # Errors
    ///
    /// [`NodeError::Stopped`].
    pub async fn mine_blocks_to(
        &self,
        count: u64,
        to: Option<escrow::Address>,
    ) -> Result<Vec<BlockHash>, NodeError> {
        let (reply, rx) = oneshot::channel();
        self.command(Command::Mine { count, to, reply }).await?;
        let hashes = rx.await.map_err(|_| NodeError::Stopped)?;
        self.published(true).await?;
        Ok(hashes)
    }

    /// Offers `block`, made elsewhere, to the chain as a block mined here
    /// (Bitcoin Core's `submitblock`): validated and accepted like any
    /// block, and announced to the peers as `relay` says once saved.
    /// Nothing on the API calls it; the simulator's strategies do
    /// (`docs/SIMULATION.md`).
    ///
    /// # Errors
    ///
    /// [`NodeError::Stopped`].
    pub async fn submit_block(
        &self,
        block: chain_core::Block<escrow::Tx>,
        relay: crate::core::BlockRelay,
    ) -> Result<crate::core::Submitted, NodeError> {
        let (reply, rx) = oneshot::channel();
        let block = Box::new(block);
        let submission = BlockSubmission {
            block,
            relay,
            reply,
        };
        self.command(Command::SubmitBlock(submission)).await?;
        rx.await.map_err(|_| NodeError::Stopped)
    }

    /// Changes the mining mode.
    ///
    /// # Errors
    ///
    /// [`NodeError::Stopped`].
    pub async fn set_mining(&self, mode: MiningMode) -> Result<(), NodeError> {
        self.command(Command::SetMining(mode)).await
    }

    /// Dials a peer and keeps reconnecting to it.
    ///
    /// # Errors
    ///
    /// [`NodeError::Stopped`].
    pub async fn add_peer(&self, addr: SocketAddr) -> Result<(), NodeError> {
        self.command(Command::AddPeer(addr)).await
    }

    /// Cuts the node off from peers listening at `addrs` (drops and refuses
    /// their connections) until [`NodeHandle::heal`].
    ///
    /// # Errors
    ///
    /// [`NodeError::Stopped`].
    pub async fn partition(&self, addrs: Vec<SocketAddr>) -> Result<(), NodeError> {
        self.command(Command::Partition(addrs)).await
    }

    /// Lifts every partition and redials the addresses it cut.
    ///
    /// # Errors
    ///
    /// [`NodeError::Stopped`].
    pub async fn heal(&self) -> Result<(), NodeError> {
        self.command(Command::Heal).await
    }

    /// Stops the node: stops accepting, closes every connection (with a
    /// notice), stops the miner, and returns once every task has ended.
    pub async fn shutdown(&self) {
        self.cancel.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }

    /// A stream of changes (tip, mempool, peers), for watchers such as the
    /// explorer. A receiver that falls behind skips events (`Lagged`).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<crate::core::NodeEvent> {
        self.events.subscribe()
    }

    /// Resolves once the node has been told to stop.
    pub async fn stopped(&self) {
        self.cancel.cancelled().await;
    }

    /// Whether the mining mode is this one (for tests and status).
    ///
    /// # Errors
    ///
    /// [`NodeError::Stopped`].
    pub async fn mining(&self) -> Result<MiningMode, NodeError> {
        self.query(|v| v.mining).await
    }
}

/// Rebuilds the chain from the store: its headers, its state snapshot
/// (checked against the network and the blocks' rewards first), and the
/// blocks saved after the snapshot, applied again. Stored blocks that no
/// longer apply are reported, not fatal; so is a damaged body among those
/// applied again: the chain is restored below it, and the blocks left out
/// are returned, for the core to fetch again from peers.
fn restore(
    genesis: &escrow::Genesis,
    stored: Stored,
    store: Arc<dyn BlockStore>,
    damaged: Arc<DamagedBlocks>,
) -> Result<(NodeChain, Vec<chain_core::Unrestored>), NodeError> {
    let fresh = genesis
        .chain()
        .map_err(|e| NodeError::Genesis(e.to_string()))?;
    let count = stored.headers.len();
    let snapshot = match stored.snapshot {
        Some(s) => {
            check_snapshot(&s, fresh.state())?;
            Some(chain_core::Snapshot {
                block: s.block,
                height: s.height,
                state: s.ledger,
            })
        }
        None => None,
    };
    let from = snapshot.as_ref().map_or(0, |s| s.height);
    let chain_core::Restored {
        chain,
        refused,
        unrestored,
    } = NodeChain::restore(
        genesis.params.clone(),
        genesis.block(),
        genesis.ledger(),
        stored.headers,
        snapshot,
        Arc::new(StoreArchive { store, damaged }),
    )
    .map_err(|e| NodeError::Restore(e.to_string()))?;
    if let Some(e) = refused {
        warn!("a stored block no longer applies: {e}");
    }
    if count > 0 {
        info!(
            blocks = count,
            snapshot_height = from,
            height = chain.height(),
            "restored the stored chain"
        );
    }
    release_freed_memory();
    Ok((chain, unrestored))
}

/// Hands the heap memory freed by the restore (the header pass's
/// temporary lists, the store's read buffers) back to the system, so the
/// node's resident memory is what it keeps, not what it once used. glibc
/// keeps freed memory for reuse otherwise. Elsewhere nothing to do.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of the allocator's heap
    // to the system; it takes no pointer and touches no live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Checks a stored ledger against what its block implies: this network's
/// id, and the coins issued (the genesis allocations plus one reward per
/// block above genesis).
fn check_snapshot(
    snapshot: &crate::store::StateSnapshot,
    genesis: &escrow::Ledger,
) -> Result<(), NodeError> {
    let mismatch = |what: String| {
        NodeError::Restore(format!(
            "the state snapshot at block {} (height {}) does not match the blocks: {what}",
            snapshot.block, snapshot.height
        ))
    };
    let ledger = &snapshot.ledger;
    if ledger.network() != genesis.network() {
        return Err(mismatch(format!(
            "it is for network {}, this node runs {}",
            ledger.network(),
            genesis.network()
        )));
    }
    let expected = genesis
        .coinbase_reward()
        .get()
        .checked_mul(snapshot.height)
        .and_then(|r| escrow::Amount::new(r).checked_add(genesis.issued()));
    if expected != Some(ledger.issued()) {
        return Err(mismatch(format!(
            "it has {} issued, {} blocks of rewards make {}",
            ledger.issued(),
            snapshot.height,
            expected.map_or_else(|| "an overflow".to_string(), |a| a.to_string())
        )));
    }
    Ok(())
}

/// 32 random bytes from the operating system, for the node id and the
/// seed of its random choices (zeros if the system has no randomness,
/// which only makes duplicate-connection ties and address picks
/// predictable).
fn random_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    let _ = getrandom::fill(&mut bytes);
    bytes
}

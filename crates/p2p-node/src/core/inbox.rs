//! The core's inbox: every message the core is sent, the commands of the
//! [`crate::NodeHandle`], and the [`CoreParts`] a core is built from. This is the only part of the core that connection
//! tasks and the handle need.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize};

use chain_core::miner::MineOutcome;
use chain_core::{Block, BlockHash, TxId};
use escrow::{SignedTx, Tx};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use wire::{Handshake, Message, NodeId, Reason};

use crate::clock::Clock;
use crate::config::MiningMode;
use crate::config::NodeConfig;
use crate::core::blocks::{BlockRelay, Submitted};
use crate::core::dialing::Dialer;
use crate::core::view::{ConnId, Direction, NodeChain, NodeEvent, NodeView};
use crate::mempool::MempoolError;
use crate::penalty::Offence;
use crate::store::{BlockStore, DamagedBlocks};

/// Everything a core is built from.
pub(crate) struct CoreParts {
    /// The node's configuration.
    pub config: Arc<NodeConfig>,
    /// This node's id.
    pub node_id: NodeId,
    /// The address peers are told to dial.
    pub listen_addr: Option<SocketAddr>,
    /// The chain, loaded from the store.
    pub chain: NodeChain,
    /// Where accepted blocks are saved (shared with the chain, which reads
    /// old bodies back from it).
    pub store: Arc<dyn BlockStore>,
    /// Where the chain's archive records the stored blocks it finds
    /// damaged; the core takes them and repairs them (`core/repair.rs`).
    pub damaged: Arc<DamagedBlocks>,
    /// The blocks the restore left out because a body was damaged: the
    /// core fetches them again (`core/repair.rs`).
    pub unrestored: Vec<chain_core::Unrestored>,
    /// The height of the state snapshot the chain was restored from, if
    /// the store had one.
    pub snapshot_height: Option<u64>,
    /// Block timestamps.
    pub clock: Arc<dyn Clock>,
    /// A simulated processor (`None`: the machine's own).
    pub cpu: Option<Arc<dyn crate::cpu::Cpu>>,
    /// The core's own inbox, for the tasks it starts (the miner).
    pub inbox: mpsc::Sender<CoreMsg>,
    /// Stops the node.
    pub cancel: CancellationToken,
    /// The node's tasks.
    pub tracker: TaskTracker,
    /// Connection numbers, shared with the accept loop.
    pub next_conn: Arc<AtomicU64>,
    /// Where changes are announced to watchers.
    pub events: tokio::sync::broadcast::Sender<NodeEvent>,
    /// How outbound connections are opened.
    pub dialer: Dialer,
    /// How proof of work is found.
    pub miner: Arc<dyn crate::pow::Mine>,
    /// The seed of the peer table's random choices.
    pub seed: [u8; 32],
}

/// What the core is asked to do.
pub(crate) enum CoreMsg {
    /// Our handshake, for a connection we dialled.
    Hello { reply: oneshot::Sender<Handshake> },
    /// A peer's handshake: admit the connection (and answer with our
    /// handshake) or refuse it with a reason.
    Admit {
        conn: ConnId,
        remote: SocketAddr,
        direction: Direction,
        hello: Box<Handshake>,
        sender: mpsc::Sender<Message>,
        /// The bytes queued for the peer and not yet written: the core
        /// adds, the connection's writer subtracts.
        queued: Arc<AtomicUsize>,
        reply: oneshot::Sender<Result<Box<Handshake>, (Reason, String)>>,
    },
    /// The handshake completed.
    Live { conn: ConnId },
    /// A message from a live peer.
    Message { conn: ConnId, message: Message },
    /// Transactions a live peer sent one after another (each a
    /// [`Message::Tx`]), with their signatures' verdicts, reached by the
    /// connection's task in one batch.
    Txs {
        conn: ConnId,
        txs: Vec<(SignedTx, escrow::SigCheck)>,
    },
    /// A connection task saw the peer break the protocol.
    Offence {
        conn: ConnId,
        remote: SocketAddr,
        offence: Offence,
    },
    /// A connection ended.
    Gone { conn: ConnId },
    /// Dial `conn` to `addr` failed before a connection task started.
    DialFailed {
        conn: ConnId,
        addr: SocketAddr,
        /// Why, for the operator.
        error: String,
    },
    /// The miner finished a job.
    Mined { job: u64, outcome: MineOutcome },
    /// A request from the node's handle.
    Command(Command),
}

/// A read-only function on the node's state, run on the core task.
pub(crate) type QueryFn = Box<dyn FnOnce(&NodeView<'_>) + Send>;

/// A request from the [`crate::NodeHandle`].
pub(crate) enum Command {
    /// Runs a read-only function on the node's state, on the core task.
    Query(QueryFn),
    /// Answers once the core has published a snapshot taken after every
    /// event before this one (read your writes without a query): with
    /// `saved`, one whose chain part shows those events too (it waits for
    /// their blocks to be saved); without, one whose mempool part does.
    Published {
        saved: bool,
        reply: oneshot::Sender<()>,
    },
    /// Submits a signed transaction, its signature checked by the caller
    /// (`check`, if any). A success is answered once the snapshot's
    /// mempool part shows the transaction.
    SubmitTx {
        tx: Box<SignedTx>,
        check: Option<escrow::SigCheck>,
        reply: oneshot::Sender<Result<TxId, MempoolError>>,
    },
    /// Mines `count` blocks on this node, their rewards to `to` (the
    /// node's miner account if `None`), then answers with their hashes.
    Mine {
        count: u64,
        to: Option<escrow::Address>,
        reply: oneshot::Sender<Vec<BlockHash>>,
    },
    /// Offers a block made elsewhere (a strategy's) to the chain as one
    /// mined here, relayed as `relay` says; answers what became of it.
    SubmitBlock(BlockSubmission),
    /// Changes the mining mode.
    SetMining(MiningMode),
    /// Dials an address (and keeps it in the address book).
    AddPeer(SocketAddr),
    /// Cuts the node off from these listening addresses: drops their
    /// connections and refuses new ones, until `Heal` (a partition, made
    /// by an operator or a simulator).
    Partition(Vec<SocketAddr>),
    /// Lifts every partition and redials the addresses it cut.
    Heal,
}

/// A block submitted through the handle ([`Command::SubmitBlock`]).
pub(crate) struct BlockSubmission {
    pub block: Box<Block<Tx>>,
    pub relay: BlockRelay,
    pub reply: oneshot::Sender<Submitted>,
}

/// What waits for the next publication of the snapshot's mempool part.
pub(crate) enum PublishWaiter {
    /// [`Command::Published`] without `saved`.
    Published(oneshot::Sender<()>),
    /// A [`Command::SubmitTx`], admitted or refused: its answer waits for
    /// the snapshot that shows it (the transaction, or the refusal's count).
    Submitted(
        oneshot::Sender<Result<TxId, MempoolError>>,
        Result<TxId, MempoolError>,
    ),
}

impl PublishWaiter {
    /// Answers it: the snapshot now shows what it waited for.
    pub(crate) fn answer(self) {
        match self {
            PublishWaiter::Published(reply) => {
                let _ = reply.send(());
            }
            PublishWaiter::Submitted(reply, answer) => {
                let _ = reply.send(answer);
            }
        }
    }
}

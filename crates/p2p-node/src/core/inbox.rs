//! The core's inbox: every message the core is sent, and the commands of the
//! [`crate::NodeHandle`]. This is the only part of the core that connection
//! tasks and the handle need.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use chain_core::miner::MineOutcome;
use chain_core::{BlockHash, TxId};
use escrow::SignedTx;
use tokio::sync::{mpsc, oneshot};
use wire::{Handshake, Message, Reason};

use crate::config::MiningMode;
use crate::core::view::{ConnId, Direction, NodeView};
use crate::mempool::MempoolError;
use crate::penalty::Offence;

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

/// A request from the [`crate::NodeHandle`].
pub(crate) enum Command {
    /// Runs a read-only function on the node's state, on the core task.
    Query(Box<dyn FnOnce(&NodeView<'_>) + Send>),
    /// Submits a signed transaction.
    SubmitTx {
        tx: Box<SignedTx>,
        reply: oneshot::Sender<Result<TxId, MempoolError>>,
    },
    /// Mines `count` blocks on this node, their rewards to `to` (the
    /// node's miner account if `None`), then answers with their hashes.
    Mine {
        count: u64,
        to: Option<escrow::Address>,
        reply: oneshot::Sender<Vec<BlockHash>>,
    },
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

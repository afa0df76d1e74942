//! The message set of the P2P protocol, version [`PROTOCOL_VERSION`].
//!
//! Every message is one variant of [`Message`]; on the wire it is the
//! postcard encoding of that enum: a varint tag (the variant's index, in the
//! order declared here, which is part of the protocol) followed by the
//! variant's fields in order. `docs/PROTOCOL.md` spells out the bytes.
//!
//! Every list has a documented maximum, enforced while decoding by
//! [`Bounded`], before any allocation for its items.

use std::net::SocketAddr;

use chain_core::{Block, BlockHash, Header, TxId, Work};
use escrow::{SignedTx, Tx};
use serde::{Deserialize, Serialize};

use crate::bounded::{Bounded, BoundedString};
use crate::compact::{CompactBlock, MAX_PREFILLED};

/// The protocol version this crate speaks. Version 2 changed the rules of
/// validity (the signature rule of `escrow::signature`, and merkle leaves
/// that commit to signatures), so a version 1 node is refused at the
/// handshake instead of following other rules silently. Version 3 added
/// compact blocks (tags 16 to 20) under version 2's rules. Version 4 adds
/// a fee to every signed transaction (`escrow::TxBody::fee`, paid to the
/// block's miner): the bytes of a transaction changed, so a version 2 or
/// 3 node, which could decode neither our transactions nor our blocks, is
/// refused at the handshake.
pub const PROTOCOL_VERSION: u32 = 5;

/// The oldest protocol version a node accepts at the handshake.
pub const MIN_PROTOCOL_VERSION: u32 = 5;

/// The first protocol version that knows compact blocks.
pub const COMPACT_VERSION: u32 = 3;

/// Most hashes in one announcement or request ([`Message::AnnounceTxs`],
/// [`Message::AnnounceBlocks`], [`Message::GetTxs`], [`Message::GetBlocks`],
/// [`Message::NotFound`]).
pub const MAX_INVENTORY: usize = 1_000;

/// Most hashes in a sync locator: dense near the tip, doubling back to
/// genesis, so 64 entries cover any chain shorter than 2^54 blocks.
pub const MAX_LOCATOR: usize = 64;

/// Most blocks in one [`Message::SyncBlocks`] reply. A sender also stops
/// adding blocks before the encoded reply would pass the frame limit.
pub const MAX_SYNC_BLOCKS: usize = 500;

/// Most headers in one [`Message::Headers`] answer (version 5).
pub const MAX_HEADERS: usize = 2_000;

/// Most addresses in one [`Message::Addrs`].
pub const MAX_ADDRS: usize = 100;

/// Most bytes of a user agent string.
pub const MAX_USER_AGENT: usize = 64;

/// Most bytes of a notice's text.
pub const MAX_NOTICE_TEXT: usize = 256;

/// Inventory: a list of transaction ids.
pub type TxInventory = Bounded<TxId, MAX_INVENTORY>;

/// Inventory: a list of block hashes.
pub type BlockInventory = Bounded<BlockHash, MAX_INVENTORY>;

/// A node's random identity, chosen at start; it lets two nodes see that
/// they are already connected (or that a node dialled itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeId(pub [u8; 32]);

/// The first message on every connection, in both directions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handshake {
    /// The sender's protocol version ([`PROTOCOL_VERSION`]).
    pub version: u32,
    /// The genesis hash: the network id. A peer of another network is
    /// refused with [`Reason::WrongNetwork`].
    pub network: BlockHash,
    /// The sender's node id.
    pub node_id: NodeId,
    /// Where the sender accepts connections, if it does.
    pub listen_addr: Option<SocketAddr>,
    /// The sender's best tip.
    pub best_tip: BlockHash,
    /// The best tip's height.
    pub best_height: u64,
    /// The best chain's cumulative work.
    pub total_work: Work,
    /// Free text naming the software, at most [`MAX_USER_AGENT`] bytes.
    pub user_agent: BoundedString<MAX_USER_AGENT>,
}

/// Why a node is about to close a connection, sent in [`Message::Notice`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Reason {
    /// The peer's genesis hash differs.
    WrongNetwork,
    /// The peer's protocol version is not supported.
    UnsupportedVersion,
    /// The two nodes are already connected (or a node dialled itself).
    DuplicateConnection,
    /// The node has no room for another connection.
    TooManyPeers,
    /// The peer broke the protocol too often and is banned for a while.
    Banned,
    /// The peer did not complete the handshake in time.
    HandshakeTimeout,
    /// The peer stopped answering pings.
    IdleTimeout,
    /// The node is shutting down.
    ShuttingDown,
    /// Anything else; the text says what.
    Other,
    /// The sender cannot serve what was asked: a block it would have to
    /// send is damaged in its store (the text names it). It closes rather
    /// than answer with a chain that stops short; ask another peer.
    StoreDamaged,
}

/// A P2P message. The variant order is the wire tag and part of the
/// protocol: add new variants at the end only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Tag 0: opens a connection.
    Handshake(Handshake),
    /// Tag 1: the handshake was accepted; the connection is live.
    HandshakeAck,
    /// Tag 2: liveness probe; the peer answers [`Message::Pong`] with the
    /// same nonce.
    Ping {
        /// Echoed back.
        nonce: u64,
    },
    /// Tag 3: the answer to [`Message::Ping`].
    Pong {
        /// The ping's nonce.
        nonce: u64,
    },
    /// Tag 4: "I have these transactions".
    AnnounceTxs(TxInventory),
    /// Tag 5: "I have these blocks".
    AnnounceBlocks(BlockInventory),
    /// Tag 6: "send me these transactions".
    GetTxs(TxInventory),
    /// Tag 7: "send me these blocks".
    GetBlocks(BlockInventory),
    /// Tag 8: one signed transaction.
    Tx(SignedTx),
    /// Tag 9: one block.
    Block(Block<Tx>),
    /// Tag 10: "send me the best-chain blocks after the first of these
    /// hashes you know, up to `stop` (or as many as fit)".
    GetSync {
        /// Hashes from the sender's best chain, newest first (see
        /// `chain_core::Chain::locator`).
        locator: Bounded<BlockHash, MAX_LOCATOR>,
        /// Where to stop; the zero hash for "as far as you can".
        stop: BlockHash,
    },
    /// Tag 11: the answer to [`Message::GetSync`]: consecutive best-chain
    /// blocks, oldest first.
    SyncBlocks {
        /// The blocks.
        blocks: Bounded<Block<Tx>, MAX_SYNC_BLOCKS>,
        /// Whether the sender has more blocks after these.
        more: bool,
    },
    /// Tag 12: "send me addresses of peers you know".
    GetAddrs,
    /// Tag 13: addresses where other nodes listen.
    Addrs(Bounded<SocketAddr, MAX_ADDRS>),
    /// Tag 14: the answer to a request for items the sender does not have.
    NotFound {
        /// Transactions not found.
        txs: TxInventory,
        /// Blocks not found.
        blocks: BlockInventory,
    },
    /// Tag 15: sent just before the sender closes the connection.
    Notice {
        /// Why.
        reason: Reason,
        /// Details, at most [`MAX_NOTICE_TEXT`] bytes.
        text: BoundedString<MAX_NOTICE_TEXT>,
    },
    /// Tag 16 (version 3): "send me new blocks as compact blocks"; with
    /// `high_bandwidth`, push them before announcing, without waiting to
    /// be asked. Sent again to change the mode.
    SendCompact {
        /// Push compact blocks unasked (high-bandwidth mode) rather than
        /// announce and send one on request (low-bandwidth mode).
        high_bandwidth: bool,
    },
    /// Tag 17 (version 3): a block as header, short ids and prefilled
    /// transactions ([`crate::compact`]).
    CompactBlock(CompactBlock),
    /// Tag 18 (version 3): "send me these transactions of this block":
    /// the block's indexes, increasing.
    GetBlockTxn {
        /// The block.
        block: BlockHash,
        /// Indexes of its transactions.
        indexes: Bounded<u32, MAX_PREFILLED>,
    },
    /// Tag 19 (version 3): the answer to [`Message::GetBlockTxn`]: the
    /// transactions at the asked indexes, in the order asked.
    BlockTxn {
        /// The block.
        block: BlockHash,
        /// Its transactions.
        txs: Bounded<Tx, MAX_PREFILLED>,
    },
    /// Tag 20 (version 3): "send me this block as a compact block" (the
    /// request of low-bandwidth mode, after an announcement).
    GetCompact {
        /// The block.
        block: BlockHash,
    },
    /// Tag 21 (version 5): "send me the headers of your best chain after
    /// the first of these hashes you know, up to `stop` (or as many as
    /// fit)": the first step of a sync (headers first, then the bodies by
    /// [`Message::GetBlocks`]).
    GetHeaders {
        /// Hashes from the sender's chain, newest first (see
        /// `chain_core::Chain::locator`).
        locator: Bounded<BlockHash, MAX_LOCATOR>,
        /// Where to stop; the zero hash for "as far as you can".
        stop: BlockHash,
    },
    /// Tag 22 (version 5): the answer to [`Message::GetHeaders`]:
    /// consecutive best-chain headers, oldest first; fewer than
    /// [`MAX_HEADERS`] means the sender has no more.
    Headers(Bounded<Header, MAX_HEADERS>),
}

impl Message {
    /// How many variants (tags `0..COUNT`) this protocol version has.
    pub const COUNT: u64 = 23;

    /// The variant's name, for logs and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Handshake(_) => "handshake",
            Message::HandshakeAck => "handshake-ack",
            Message::Ping { .. } => "ping",
            Message::Pong { .. } => "pong",
            Message::AnnounceTxs(_) => "announce-txs",
            Message::AnnounceBlocks(_) => "announce-blocks",
            Message::GetTxs(_) => "get-txs",
            Message::GetBlocks(_) => "get-blocks",
            Message::Tx(_) => "tx",
            Message::Block(_) => "block",
            Message::GetSync { .. } => "get-sync",
            Message::SyncBlocks { .. } => "sync-blocks",
            Message::GetAddrs => "get-addrs",
            Message::Addrs(_) => "addrs",
            Message::NotFound { .. } => "not-found",
            Message::Notice { .. } => "notice",
            Message::SendCompact { .. } => "send-compact",
            Message::CompactBlock(_) => "compact-block",
            Message::GetBlockTxn { .. } => "get-block-txn",
            Message::BlockTxn { .. } => "block-txn",
            Message::GetCompact { .. } => "get-compact",
            Message::GetHeaders { .. } => "get-headers",
            Message::Headers(_) => "headers",
        }
    }

    /// Whether this asks for blocks to be read back (`GetBlocks`,
    /// `GetSync`, `GetHeaders`, `GetCompact`, `GetBlockTxn`): a node serves only blocks
    /// it saved.
    pub fn reads_blocks(&self) -> bool {
        matches!(
            self,
            Message::GetBlocks(_)
                | Message::GetSync { .. }
                | Message::GetHeaders { .. }
                | Message::GetCompact { .. }
                | Message::GetBlockTxn { .. }
        )
    }

    /// A notice with the text cut to fit.
    pub fn notice(reason: Reason, text: &str) -> Message {
        Message::Notice {
            reason,
            text: BoundedString::truncating(text),
        }
    }
}

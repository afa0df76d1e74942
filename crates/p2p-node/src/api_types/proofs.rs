//! The answers of the light client's endpoints (`GET /txs/{id}/proof`,
//! `GET /headers`), of `GET /bans`, and of a dev node's snapshots.

use chain_core::{BlockHash, TxId};
use serde::{Deserialize, Serialize};

/// `GET /txs/{id}/proof`: a confirmed transaction's inclusion proof
/// (`docs/PROTOCOL.md`, "Inclusion proofs").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofAnswer {
    /// The transaction.
    pub tx: TxId,
    /// The block that holds it.
    pub block: BlockHash,
    /// The block's height.
    pub height: u64,
    /// Blocks from it to the tip, both counted, as the node sees them.
    pub confirmations: u64,
    /// The transaction's position in the block.
    pub index: u64,
    /// The block's transactions.
    pub count: u64,
    /// The merkle branch, from the leaves up, each 32 bytes in hex.
    pub siblings: Vec<String>,
    /// The block's header: its 96 canonical bytes in hex.
    pub header: String,
    /// The transaction's canonical bytes in hex.
    pub transaction: String,
    /// The whole proof's canonical bytes in hex: header, branch,
    /// transaction.
    pub proof: String,
}

/// `GET /headers`: headers of the best chain, from a height.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadersAnswer {
    /// The height of the first header listed.
    pub from: u64,
    /// The best chain's height now.
    pub tip_height: u64,
    /// The headers, by height, each its 96 canonical bytes in hex.
    pub headers: Vec<String>,
}

/// One active ban (`GET /bans` answers a list of them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanAnswer {
    /// What is banned: `node` (a node id), `addr` (an exact socket
    /// address) or `ip` (every port of an IP address).
    pub kind: String,
    /// The node id in hex, the socket address, or the IP address.
    pub value: String,
    /// Seconds until the ban ends, rounded up.
    pub seconds_left: u64,
}

/// `POST /dev/snapshot` and `POST /dev/revert`: the snapshot, and the
/// height and tip it holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevAnswer {
    /// The snapshot's id.
    pub id: u64,
    /// The best height it holds.
    pub height: u64,
    /// The best tip it holds.
    pub tip: BlockHash,
}

/// `POST /dev/revert` body. Any other key is refused (`unknown_field`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevertRequest {
    /// The snapshot to go back to.
    pub id: u64,
}

//! The HTTP API's answers and request bodies as serde types, defined once:
//! [`crate::api`] serializes them to answer, and [`crate::client`]
//! deserializes them to read the answers back, so the two sides cannot
//! drift apart. `docs/API.md` shows each shape.
//!
//! Each struct lists its fields in the order the API has always written its
//! keys. Optional keys that some answers leave out are `Option`s skipped
//! when `None`; optional values the API writes as `null` (an account
//! without a dev name, a peer that never said where it listens, a block
//! whose miner is unknown) are `Option`s that are not skipped.
//! Contracts are answered as [`escrow::Contract`] itself: it already is a
//! serde type.

use std::net::SocketAddr;

use chain_core::{Block, BlockHash, MerkleRoot, Transaction, TxId};
use escrow::{Address, Amount, ContractId, Payload, Tx};
use serde::{Deserialize, Serialize};

mod proofs;
pub use proofs::{BanAnswer, DevAnswer, HeadersAnswer, ProofAnswer, RevertRequest};

/// `GET /status`: where the node stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusAnswer {
    /// The network id: the genesis block's hash.
    pub network: BlockHash,
    /// The node's id, hex.
    pub node_id: String,
    /// The best tip's height.
    pub height: u64,
    /// The best tip's hash.
    pub tip: BlockHash,
    /// The best chain's expected hashes.
    pub total_work: f64,
    /// Live peer connections.
    pub peers: usize,
    /// Pending transactions.
    pub mempool: usize,
    /// Their bytes (canonical encodings).
    #[serde(default)]
    pub mempool_bytes: usize,
    /// The fee rate, in coins per kB, a new transaction must pay now to
    /// enter the mempool: the minimum relay rate, or higher after the
    /// full pool evicted transactions (it decays back).
    #[serde(default)]
    pub min_fee_rate: u64,
    /// The mining mode: `off`, `pending` or `continuous`.
    pub mining: String,
    /// When the node started, in milliseconds since the Unix epoch: the
    /// pending transactions of a node that crashed are those it had saved
    /// (see `docs/API.md`, "Restarts"), so a client that cannot find one
    /// it sent before this moment sends it again.
    #[serde(default)]
    pub started_at_ms: u64,
    /// A headers-first sync's progress, while the node knows headers whose
    /// blocks it has not validated yet; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<SyncAnswer>,
}

/// `GET /status`'s `sync`: the most-work header chain's height, the
/// validated chain's, and the time left at this sync's rate so far.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyncAnswer {
    /// The height of the most-work header chain the node knows.
    pub headers: u64,
    /// The height of its best validated chain (`height`).
    pub blocks: u64,
    /// Seconds left, once a block of this sync was validated (`null` before).
    pub seconds_left: Option<f64>,
}

/// `GET /accounts/{account}`: an account's balance and nonce, confirmed
/// and counting the mempool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountAnswer {
    /// The account's address.
    pub address: Address,
    /// Its dev account name, or `null`.
    pub name: Option<String>,
    /// The balance on the best chain.
    pub balance: Amount,
    /// The next nonce on the best chain.
    pub nonce: u64,
    /// The balance once pending transactions are applied.
    pub pending_balance: Amount,
    /// The next nonce once pending transactions are applied: the one to
    /// sign with.
    pub pending_nonce: u64,
}

/// `GET /fees/estimate`: the fee rate to pay for confirmation within
/// `blocks` blocks, and what it was made of (`docs/API.md`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeEstimateAnswer {
    /// The blocks asked for.
    pub blocks: u64,
    /// The rate to pay, coins per kB.
    pub fee_rate: u64,
    /// The mempool's minimum now, coins per kB.
    pub min_fee_rate: u64,
    /// What the mempool alone asks, if it holds more than `blocks` blocks
    /// can carry.
    pub from_mempool: Option<u64>,
    /// What recent full blocks ask, if any was full.
    pub from_blocks: Option<u64>,
    /// The fee that rate asks of a 164-byte transfer, for a glance.
    pub transfer_fee: Amount,
}

/// `GET /mempool/fees`: the mempool by fee rate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MempoolFeesAnswer {
    /// Pending transactions.
    pub count: usize,
    /// Their bytes.
    pub bytes: usize,
    /// The most bytes the pool holds.
    pub max_bytes: usize,
    /// The fee rate a new transaction must pay now, coins per kB.
    pub min_fee_rate: u64,
    /// The minimum relay rate (the floor), coins per kB.
    pub min_relay_fee_rate: u64,
    /// The pending transactions by own fee rate, in bands that double
    /// (0, 1, 2–3, 4–7, …), lowest first; empty bands left out.
    pub histogram: Vec<FeeBand>,
}

/// One band of [`MempoolFeesAnswer::histogram`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeBand {
    /// The lowest rate of the band, coins per kB.
    pub rate_from: u64,
    /// The highest, coins per kB.
    pub rate_to: u64,
    /// Transactions in it.
    pub count: usize,
    /// Their bytes.
    pub bytes: usize,
}

/// `POST /txs` body: the transaction's canonical bytes in hex. Any other
/// key is refused (`unknown_field`), as in every request body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitTx {
    /// `SignedTx::to_bytes()`, hex.
    pub tx: String,
}

/// `POST /txs` answer: the accepted transaction's id, and the new
/// contract's id when it creates one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitAnswer {
    /// The transaction's id.
    pub id: TxId,
    /// The contract an `EscrowCreate` creates; absent for other payloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract: Option<ContractId>,
    /// The fee the transaction pays, in coins.
    #[serde(default)]
    pub fee: Amount,
}

/// One transaction, as blocks, the mempool and `GET /txs/{id}` show it.
///
/// Untagged, not tagged on `kind`: a signed transaction's `kind` is its
/// payload's (`transfer`, `escrow-create`, ...), so the variant is told by
/// the keys present. Each variant's keys are those the API has always
/// written for that kind of transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TxAnswer {
    /// A user's signed transaction.
    Signed {
        /// The transaction's id.
        id: TxId,
        /// The payload's kind ([`Payload::kind`]).
        kind: String,
        /// The sender's address.
        sender: Address,
        /// The sender's transaction number.
        nonce: u64,
        /// The fee it pays the miner, in coins.
        #[serde(default)]
        fee: Amount,
        /// Its size in bytes (what fee rates count).
        #[serde(default)]
        size: usize,
        /// Its fee rate, coins per kB (rounded down).
        #[serde(default)]
        fee_rate: u64,
        /// What it does.
        payload: Payload,
    },
    /// A block reward.
    Coinbase {
        /// The transaction's id.
        id: TxId,
        /// `coinbase`.
        kind: String,
        /// Who mined the block.
        to: Address,
        /// The block's height.
        height: u64,
    },
    /// Genesis only: the network's name and block reward.
    Network {
        /// The transaction's id.
        id: TxId,
        /// `network`.
        kind: String,
        /// The network's name.
        name: String,
        /// Coins created by each block's coinbase.
        coinbase_reward: Amount,
    },
    /// Genesis only: an initial balance.
    Allocation {
        /// The transaction's id.
        id: TxId,
        /// `allocation`.
        kind: String,
        /// Who receives it.
        to: Address,
        /// How much.
        amount: Amount,
    },
}

impl TxAnswer {
    /// The transaction's id.
    pub fn id(&self) -> TxId {
        match self {
            TxAnswer::Signed { id, .. }
            | TxAnswer::Coinbase { id, .. }
            | TxAnswer::Network { id, .. }
            | TxAnswer::Allocation { id, .. } => *id,
        }
    }

    /// The transaction's kind, as the API writes it.
    pub fn kind(&self) -> &str {
        match self {
            TxAnswer::Signed { kind, .. }
            | TxAnswer::Coinbase { kind, .. }
            | TxAnswer::Network { kind, .. }
            | TxAnswer::Allocation { kind, .. } => kind,
        }
    }
}

impl From<&Tx> for TxAnswer {
    fn from(tx: &Tx) -> TxAnswer {
        let id = tx.id();
        match tx {
            Tx::Signed(s) => {
                let package = s.package();
                TxAnswer::Signed {
                    id,
                    kind: s.body.payload.kind().to_string(),
                    sender: s.sender(),
                    nonce: s.body.nonce,
                    fee: s.fee(),
                    size: usize::try_from(package.size).unwrap_or(usize::MAX),
                    fee_rate: package.rate().get(),
                    payload: s.body.payload.clone(),
                }
            }
            Tx::Coinbase { to, height } => TxAnswer::Coinbase {
                id,
                kind: "coinbase".to_string(),
                to: *to,
                height: *height,
            },
            Tx::Network {
                name,
                coinbase_reward,
                ..
            } => TxAnswer::Network {
                id,
                kind: "network".to_string(),
                name: name.clone(),
                coinbase_reward: *coinbase_reward,
            },
            Tx::Allocation { to, amount } => TxAnswer::Allocation {
                id,
                kind: "allocation".to_string(),
                to: *to,
                amount: *amount,
            },
        }
    }
}

/// Whether a looked-up transaction waits in the mempool or is in a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TxStatus {
    /// In the mempool.
    Pending,
    /// In a best-chain block.
    Confirmed,
    /// Accepted once, then let go: it no longer applies (see `reason`).
    Dropped,
}

/// `GET /txs/{id}`: a transaction and where it is. `block`, `height` and
/// `confirmations` are present only when it is confirmed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxLookupAnswer {
    /// Pending or confirmed.
    pub status: TxStatus,
    /// The block that holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block: Option<BlockHash>,
    /// That block's height.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u64>,
    /// Blocks on top of it, counting its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmations: Option<u64>,
    /// Why it was dropped (only when dropped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The transaction.
    pub tx: TxAnswer,
}

/// One block with its transactions (`GET /blocks`, `GET /blocks/{hash}`,
/// `GET /blocks/height/{height}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockAnswer {
    /// The block's hash.
    pub hash: BlockHash,
    /// Its height.
    pub height: u64,
    /// Its parent's hash.
    pub parent: BlockHash,
    /// The merkle root of its transaction ids.
    pub merkle_root: MerkleRoot,
    /// The miner's timestamp, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// The compact target, 8 hex digits.
    pub target: String,
    /// The header's nonce.
    pub nonce: u64,
    /// The block's size in bytes.
    pub size: usize,
    /// Whether it is on the node's best chain.
    pub on_best_chain: bool,
    /// Its transactions, in order.
    pub transactions: Vec<TxAnswer>,
}

impl BlockAnswer {
    /// The answer for `block`, which is on the best chain or not.
    pub fn new(block: &Block<Tx>, on_best_chain: bool) -> BlockAnswer {
        let h = &block.header;
        BlockAnswer {
            hash: block.hash(),
            height: h.height,
            parent: h.parent,
            merkle_root: h.merkle_root,
            timestamp_ms: h.timestamp_ms,
            target: format!("{:08x}", h.target.to_u32()),
            nonce: h.nonce,
            size: block.size(),
            on_best_chain,
            transactions: block.transactions.iter().map(TxAnswer::from).collect(),
        }
    }
}

/// One peer connection (`GET /peers` answers a list of them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerAnswer {
    /// The peer's node id, hex.
    pub node_id: String,
    /// The peer's socket address.
    pub remote: SocketAddr,
    /// Where the peer says it listens, or `null`.
    pub listen_addr: Option<SocketAddr>,
    /// `outbound` (we dialled) or `inbound`.
    pub direction: String,
    /// The peer's best height as last known.
    pub best_height: u64,
    /// The peer's penalty points.
    pub penalty: u32,
    /// Bytes queued for the peer and not yet written to its socket.
    pub queued_bytes: usize,
}

/// `POST /mine` body. Any other key is refused (`unknown_field`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MineRequest {
    /// How many blocks to mine (1 to 1000).
    pub blocks: u64,
    /// Who receives these blocks' rewards: a dev account name or a
    /// 64-hex-digit address; the node's miner account if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

/// `POST /mine` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MineAnswer {
    /// The mined blocks' hashes, oldest first.
    pub blocks: Vec<BlockHash>,
}

/// `GET /tree`: the recent block tree, side branches included.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeAnswer {
    /// The best tip's hash.
    pub tip: BlockHash,
    /// The best tip's height.
    pub height: u64,
    /// The blocks, by height, best-chain block first at each height.
    pub blocks: Vec<TreeBlock>,
}

/// One block of [`TreeAnswer`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeBlock {
    /// The block's hash.
    pub hash: BlockHash,
    /// Its parent's hash.
    pub parent: BlockHash,
    /// Its height.
    pub height: u64,
    /// Who its coinbase pays (a dev name or a short address), or `null`
    /// (genesis).
    pub miner: Option<String>,
    /// How many transactions it holds.
    pub txs: usize,
    /// Whether it is on the best chain.
    pub best: bool,
}

impl TreeBlock {
    /// The entry for `block`, which is on the best chain or not.
    pub fn new(block: &Block<Tx>, best: bool) -> TreeBlock {
        let miner = block.transactions.first().and_then(|t| match t {
            Tx::Coinbase { to, .. } => {
                Some(escrow::dev::name_of(to).map_or_else(|| to.short(), str::to_string))
            }
            _ => None,
        });
        TreeBlock {
            hash: block.hash(),
            parent: block.header.parent,
            height: block.header.height,
            miner,
            txs: block.transactions.len(),
            best,
        }
    }
}

/// Every error answer: a stable code and a human message, and for some
/// codes a field more (absent otherwise).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorAnswer {
    /// The stable code (`docs/API.md` lists them).
    pub code: String,
    /// What went wrong, for people.
    pub message: String,
    /// `ambiguous`: the full ids the prefix names (at most 10, lowest
    /// first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<String>,
    /// `contract_pending`: the pending transaction that creates the
    /// contract.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx: Option<TxId>,
    /// `fee_too_low`: the fee rate the node asks now, in coins per kB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_fee_rate: Option<u64>,
    /// `fee_too_low`, `replacement_too_low`: the smallest fee that would
    /// be accepted for this transaction, in coins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needed_fee: Option<u64>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    /// Serializes `answer`, checks it against `expected`, and reads it back.
    fn round_trip<T>(answer: &T, expected: serde_json::Value)
    where
        T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let value = serde_json::to_value(answer).unwrap();
        assert_eq!(value, expected);
        let back: T = serde_json::from_value(value).unwrap();
        assert_eq!(&back, answer);
    }

    #[test]
    fn every_kind_of_transaction_keeps_its_keys_and_reads_back_as_itself() {
        let genesis = escrow::Genesis::dev().block();
        for tx in &genesis.transactions {
            let answer = TxAnswer::from(tx);
            let keys: Vec<String> = serde_json::to_value(&answer)
                .unwrap()
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect();
            let expected: &[&str] = match tx {
                Tx::Network { .. } => &["coinbase_reward", "id", "kind", "name"],
                Tx::Allocation { .. } => &["amount", "id", "kind", "to"],
                _ => unreachable!("genesis holds only network and allocations"),
            };
            assert_eq!(keys, expected);
            round_trip(&answer, serde_json::to_value(&answer).unwrap());
        }

        let to = escrow::dev::address("alice").unwrap();
        let coinbase = Tx::Coinbase { to, height: 7 };
        round_trip(
            &TxAnswer::from(&coinbase),
            json!({"id": coinbase.id(), "kind": "coinbase", "to": to, "height": 7}),
        );

        let key = escrow::dev::keypair("bob").unwrap();
        let payload = Payload::Transfer {
            to,
            amount: Amount::new(5),
        };
        let signed = escrow::SignedTx::sign(
            &key,
            3,
            escrow::Amount::new(1),
            genesis.hash(),
            payload.clone(),
        );
        let tx = Tx::Signed(signed.clone());
        let answer = TxAnswer::from(&tx);
        assert_eq!((answer.id(), answer.kind()), (tx.id(), "transfer"));
        round_trip(
            &answer,
            json!({
                "id": tx.id(), "kind": "transfer", "sender": signed.sender(),
                "nonce": 3, "fee": 1, "size": signed.size(),
                "fee_rate": 1000 / signed.size(), "payload": payload,
            }),
        );
    }

    #[test]
    fn optional_keys_are_left_out_and_null_ones_written() {
        let id = TxId::from_bytes([1; 32]);
        round_trip(
            &SubmitAnswer {
                id,
                contract: None,
                fee: Amount::new(3),
            },
            json!({"id": id, "fee": 3}),
        );
        let contract = ContractId::from_tx(&id);
        round_trip(
            &SubmitAnswer {
                id,
                contract: Some(contract),
                fee: Amount::new(1),
            },
            json!({"id": id, "contract": contract, "fee": 1}),
        );

        let address = escrow::dev::address("eve").unwrap();
        round_trip(
            &AccountAnswer {
                address,
                name: None,
                balance: Amount::new(1),
                nonce: 2,
                pending_balance: Amount::new(3),
                pending_nonce: 4,
            },
            json!({
                "address": address, "name": null, "balance": 1, "nonce": 2,
                "pending_balance": 3, "pending_nonce": 4,
            }),
        );

        let tx = TxAnswer::from(&Tx::Coinbase {
            to: address,
            height: 1,
        });
        round_trip(
            &TxLookupAnswer {
                status: TxStatus::Pending,
                block: None,
                height: None,
                confirmations: None,
                reason: None,
                tx: tx.clone(),
            },
            json!({"status": "pending", "tx": tx}),
        );
        let block = BlockHash::from_bytes([2; 32]);
        round_trip(
            &TxLookupAnswer {
                status: TxStatus::Confirmed,
                block: Some(block),
                height: Some(1),
                confirmations: Some(2),
                reason: None,
                tx: tx.clone(),
            },
            json!({
                "status": "confirmed", "block": block, "height": 1,
                "confirmations": 2, "tx": tx,
            }),
        );
    }

    #[test]
    fn a_block_answer_carries_the_header_and_its_transactions() {
        let genesis = escrow::Genesis::dev().block();
        let answer = BlockAnswer::new(&genesis, true);
        assert_eq!(answer.hash, genesis.hash());
        assert_eq!(answer.transactions.len(), genesis.transactions.len());
        assert_eq!(answer.target.len(), 8);
        let value = serde_json::to_value(&answer).unwrap();
        assert_eq!(value["on_best_chain"], true);
        assert_eq!(value["height"], 0);
        round_trip(&answer, value);
    }
}

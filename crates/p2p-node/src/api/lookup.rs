//! One block, transaction or contract by its id, or by a unique prefix of
//! at least [`super::prefix::MIN_PREFIX_DIGITS`] hex digits of it ([`super::prefix`]):
//! `GET /blocks/{id}`, `GET /txs/{id}`, `GET /contracts/{id}`.
//!
//! A whole id is looked up directly, as before prefixes existed. A prefix
//! is searched in each place the id may be:
//!
//! - blocks: every block of the tree (side branches included), a walk of
//!   the core's block index (O(blocks), on the core);
//! - transactions: the confirmed-transaction index (a range scan of the
//!   store), the pending and the remembered dropped transactions (the
//!   snapshot's pool: the core is not asked);
//! - contracts: the ledger's contracts and those whose creation is pending
//!   (range scans of the snapshot's ledgers: the core is not asked).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chain_core::{Block, BlockHash, Transaction, TxId};
use escrow::{Action, Contract, ContractId, SignedTx, Tx};

use super::chain_read::{self, Read};
use super::error::ApiError;
use super::prefix::{IdPrefix, Lookup, Matches, ambiguous_message};
use super::state::Api;
use crate::api_types::{BlockAnswer, TxAnswer, TxLookupAnswer, TxStatus};
use crate::core::{NodeView, Snapshot};
use crate::store::REMEDY;

/// The id or prefix in a path, or a 400 with `code`.
fn parse<const N: usize>(
    s: &str,
    dashes: bool,
    code: &'static str,
) -> Result<IdPrefix<N>, ApiError> {
    IdPrefix::parse(s, dashes).map_err(|e| ApiError::bad_request(code, e.to_string()))
}

/// The one id `lookup` found, or the error of none (`not_found`, naming
/// `kind` and `given`) or of several (`ambiguous`).
fn one<T: std::fmt::Display>(lookup: Lookup<T>, kind: &str, given: &str) -> Result<T, ApiError> {
    match lookup {
        Lookup::One(id) => Ok(id),
        Lookup::None => Err(ApiError::not_found(format!(
            "no {kind} {given} (nor any starting with it)"
        ))),
        Lookup::Many {
            listed,
            total,
            at_least,
        } => Err(ApiError::ambiguous(
            ambiguous_message(given, kind, &listed, total, at_least),
            listed.iter().map(ToString::to_string).collect(),
        )),
    }
}

/// `GET /blocks/{id}`.
pub(super) async fn block_by_id(
    State(api): State<Api>,
    Path(id): Path<String>,
) -> Result<Json<BlockAnswer>, ApiError> {
    let prefix: IdPrefix<32> = parse(&id, false, "bad_hash")?;
    if let Some(bytes) = prefix.full() {
        let hash = BlockHash::from_bytes(bytes);
        match chain_read::block(api.node.snapshot(), hash).await {
            Read::Found((block, best)) => return Ok(Json(BlockAnswer::new(&block, best))),
            Read::Absent => return Err(ApiError::not_found(format!("no block {hash}"))),
            Read::AskCore => {}
        }
    }
    let given = prefix.digits();
    api.node
        .query(move |v| {
            let hash = match prefix.full() {
                Some(bytes) => BlockHash::from_bytes(bytes),
                None => one(block_matches(v, &prefix).lookup(), "block", &given)?,
            };
            read_block(v, &hash)?
                .map(|b| BlockAnswer::new(&b, v.chain.is_on_best_chain(&hash)))
                .ok_or_else(|| ApiError::not_found(format!("no block {hash}")))
        })
        .await?
        .map(Json)
}

/// A block of the tree by hash (`None` if the tree does not hold it), or
/// `store_error` naming it if the store cannot give it back.
///
/// # Errors
///
/// `store_error` (500): the block is damaged or the store unreadable.
pub(super) fn read_block(
    v: &NodeView<'_>,
    hash: &BlockHash,
) -> Result<Option<std::sync::Arc<chain_core::Block<Tx>>>, ApiError> {
    v.chain.try_block(hash).map_err(|e| {
        let height = v.chain.header(hash).map_or_else(
            || "unknown height".to_string(),
            |h| format!("height {}", h.height),
        );
        store_error(format!(
            "block {hash} at {height} cannot be read from the store: {e}; {REMEDY}"
        ))
    })
}

/// A `store_error` (500) with `message`.
pub(super) fn store_error(message: String) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "store_error", message)
}

/// The blocks of the tree whose hashes start with `prefix`.
pub fn block_matches(v: &NodeView<'_>, prefix: &IdPrefix<32>) -> Matches<BlockHash> {
    let mut m = Matches::default();
    m.extend(
        v.chain
            .headers()
            .map(|(hash, _)| *hash)
            .filter(|hash| prefix.matches(hash.as_bytes())),
    );
    m
}

/// The transactions the node knows whose ids start with `prefix`: the
/// confirmed ones (the index), the pending ones and the dropped ones it
/// remembers (at most [`crate::mempool::MAX_DROPPED`]).
///
/// # Errors
///
/// `store_error` if the index cannot be read.
pub fn tx_matches(v: &NodeView<'_>, prefix: &IdPrefix<32>) -> Result<Matches<TxId>, ApiError> {
    let mut m = Matches::default();
    let low = TxId::from_bytes(prefix.low());
    let high = TxId::from_bytes(prefix.high());
    // One more than is counted, so that a full count is seen as such.
    let confirmed = v
        .store
        .txs_in_range(&low, &high, super::prefix::MAX_COUNTED + 1)
        .map_err(|e| store_error(format!("the transaction index cannot be read: {e}")))?;
    m.extend(confirmed);
    let pending = v.mempool.txs().iter().map(escrow::SignedTx::id);
    m.extend(pending.filter(|id| prefix.matches(id.as_bytes())));
    // At most `MAX_DROPPED` of them.
    m.extend(
        v.mempool
            .dropped_ids()
            .copied()
            .filter(|id| prefix.matches(id.as_bytes())),
    );
    Ok(m)
}

/// `GET /txs/{id}`: from the snapshot (its pool, its best chain and the
/// store's index), never waiting for the core; the core is asked only
/// what the snapshot cannot settle (see [`chain_read`]).
pub(super) async fn tx_by_id(
    State(api): State<Api>,
    Path(id): Path<String>,
) -> Result<Json<TxLookupAnswer>, ApiError> {
    let prefix: IdPrefix<32> = parse(&id, false, "bad_hash")?;
    let given = prefix.digits();
    let snap = api.node.snapshot();
    let id = match prefix.full() {
        Some(bytes) => Some(TxId::from_bytes(bytes)),
        None => match snapshot_tx_matches(&snap, &prefix).await {
            Some(m) => Some(one(m.lookup(), "transaction", &given)?),
            None => None,
        },
    };
    if let Some(id) = id
        && let Some(answer) = snapshot_tx_status(snap, id).await
    {
        return answer.map(Json);
    }
    api.node
        .query(move |v| {
            let id = match prefix.full() {
                Some(bytes) => TxId::from_bytes(bytes),
                None => one(tx_matches(v, &prefix)?.lookup(), "transaction", &given)?,
            };
            tx_status(v, &id)?.ok_or_else(|| ApiError::not_found(format!("no transaction {id}")))
        })
        .await?
        .map(Json)
}

/// [`tx_matches`] from the snapshot; `None` if the store's index cannot
/// be read.
async fn snapshot_tx_matches(snap: &Arc<Snapshot>, prefix: &IdPrefix<32>) -> Option<Matches<TxId>> {
    let low = TxId::from_bytes(prefix.low());
    let high = TxId::from_bytes(prefix.high());
    // One more than is counted, so that a full count is seen as such.
    let limit = super::prefix::MAX_COUNTED + 1;
    let Read::Found(confirmed) =
        chain_read::confirmed_in_range(Arc::clone(snap), low, high, limit).await
    else {
        return None;
    };
    let mut m = Matches::default();
    m.extend(confirmed);
    m.extend(
        snap.pool
            .ids()
            .copied()
            .filter(|id| prefix.matches(id.as_bytes())),
    );
    m.extend(
        snap.pool
            .dropped_ids()
            .copied()
            .filter(|id| prefix.matches(id.as_bytes())),
    );
    Some(m)
}

/// [`tx_status`] from the snapshot: `None` if only the core can tell.
async fn snapshot_tx_status(
    snap: Arc<Snapshot>,
    id: TxId,
) -> Option<Result<TxLookupAnswer, ApiError>> {
    if let Some(tx) = snap.pool.get(&id) {
        return Some(Ok(pending_answer(tx)));
    }
    let tip = snap.height;
    match chain_read::confirmed(Arc::clone(&snap), id).await {
        Read::Found((block, index)) => {
            let tx = block.transactions.get(index)?;
            Some(Ok(confirmed_answer(&block, tx, tip)))
        }
        Read::AskCore => None,
        Read::Absent => Some(match snap.pool.dropped(&id) {
            Some(dropped) => Ok(dropped_answer(dropped)),
            None => Err(ApiError::not_found(format!("no transaction {id}"))),
        }),
    }
}

/// The answer for pending transaction `tx`.
fn pending_answer(tx: &SignedTx) -> TxLookupAnswer {
    TxLookupAnswer {
        status: TxStatus::Pending,
        block: None,
        height: None,
        confirmations: None,
        reason: None,
        tx: TxAnswer::from(&Tx::Signed(tx.clone())),
    }
}

/// The answer for a dropped transaction.
fn dropped_answer(dropped: &crate::mempool::Dropped) -> TxLookupAnswer {
    TxLookupAnswer {
        status: TxStatus::Dropped,
        block: None,
        height: None,
        confirmations: None,
        reason: Some(dropped.reason.clone()),
        tx: TxAnswer::from(&Tx::Signed(dropped.tx.clone())),
    }
}

/// Where transaction `id` stands: pending, confirmed on the best chain
/// (with its confirmations), or dropped; `None` if the node does not know
/// it (a transaction only in a side branch's block is not confirmed).
///
/// # Errors
///
/// `store_error` if the index or the block it names cannot be read, or the
/// index is damaged (it names a block the node does not hold, or a
/// best-chain block that does not hold the transaction).
fn tx_status(v: &NodeView<'_>, id: &TxId) -> Result<Option<TxLookupAnswer>, ApiError> {
    if let Some(tx) = v.mempool.get(id) {
        return Ok(Some(pending_answer(tx)));
    }
    let indexed = v.store.tx_block(id).map_err(|e| {
        store_error(format!(
            "the transaction index cannot be read for {id}: {e}; {REMEDY}"
        ))
    })?;
    let damaged_index = |hash: &BlockHash, what: &str| {
        store_error(format!(
            "the transaction index is damaged: it puts transaction {id} in block {hash}, {what}; \
             {REMEDY}"
        ))
    };
    if let Some(hash) = &indexed
        && !v.chain.contains(hash)
    {
        return Err(damaged_index(hash, "which this node does not hold"));
    }
    // The index holds best-chain blocks only; a block of a side branch is
    // one a reorganisation not yet saved to the index left behind.
    let confirmed = indexed.filter(|h| v.chain.is_on_best_chain(h));
    let Some(hash) = confirmed else {
        let Some(dropped) = v.mempool.dropped(id) else {
            return Ok(None);
        };
        return Ok(Some(dropped_answer(dropped)));
    };
    let Some(block) = read_block(v, &hash)? else {
        return Err(damaged_index(&hash, "which this node does not hold"));
    };
    let Some(tx) = block.transactions.iter().find(|t| t.id() == *id) else {
        return Err(damaged_index(&hash, "which does not hold it"));
    };
    Ok(Some(confirmed_answer(&block, tx, v.chain.height())))
}

/// The answer for transaction `tx` of best-chain `block`, with the best
/// tip at height `tip`.
fn confirmed_answer(block: &Block<Tx>, tx: &Tx, tip: u64) -> TxLookupAnswer {
    let height = block.header.height;
    TxLookupAnswer {
        status: TxStatus::Confirmed,
        block: Some(block.hash()),
        height: Some(height),
        confirmations: Some(tip.saturating_sub(height) + 1),
        reason: None,
        tx: TxAnswer::from(tx),
    }
}

/// `GET /contracts/{id}`: from the snapshot, never waiting for the core.
pub(super) async fn contract(
    State(api): State<Api>,
    Path(id): Path<String>,
) -> Result<Json<Contract>, ApiError> {
    let prefix: IdPrefix<16> = parse(&id, true, "bad_contract_id")?;
    let snap = api.node.snapshot();
    let id = match prefix.full() {
        Some(bytes) => contract_id(bytes)?,
        None => {
            let low = contract_id(prefix.low())?;
            let high = contract_id(prefix.high())?;
            let mut m = Matches::default();
            // The pending ledger holds the confirmed contracts too, unless
            // a reorganisation is being followed: both are searched.
            for ledger in [&snap.state, &snap.pending] {
                m.extend(ledger.contracts().range(low..=high).map(|(id, _)| *id));
            }
            one(m.lookup(), "contract", &prefix.digits())?
        }
    };
    if let Some(c) = snap.state.contract(&id) {
        return Ok(Json(c.clone()));
    }
    match snap.pending.contract(&id) {
        Some(c) => Err(pending(c)),
        None => Err(ApiError::not_found(format!("no contract {id}"))),
    }
}

/// The contract id of these 16 bytes (a UUID is any 16 bytes; its simple
/// form, 32 hex digits, always parses).
fn contract_id(bytes: [u8; 16]) -> Result<ContractId, ApiError> {
    let hex = hex::encode(bytes);
    hex.parse().map_err(|e| {
        ApiError::bad_request(
            "bad_contract_id",
            format!("`{hex}` is not a contract id: {e}"),
        )
    })
}

/// The error of a contract whose creating transaction is still pending.
fn pending(c: &Contract) -> ApiError {
    let tx = c
        .history
        .iter()
        .find(|h| h.action == Action::Created)
        .map(|h| h.tx);
    let message = match tx {
        Some(tx) => format!(
            "contract {} is not created yet: its transaction {tx} is pending \
             (wait until it is mined)",
            c.id
        ),
        None => format!(
            "contract {} is not created yet: its transaction is pending \
             (wait until it is mined)",
            c.id
        ),
    };
    ApiError::contract_pending(message, tx)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::api::prefix::MIN_PREFIX_DIGITS;

    #[test]
    fn a_lookup_is_one_id_or_an_error_naming_the_matches() {
        let id = |b: u8| BlockHash::from_bytes([b; 32]);
        assert_eq!(one(Lookup::One(id(1)), "block", "01010101").unwrap(), id(1));
        let e = one(Lookup::<BlockHash>::None, "block", "01010101").unwrap_err();
        assert_eq!((e.status(), e.code()), (StatusCode::NOT_FOUND, "not_found"));
        let mut m = Matches::default();
        m.extend((0..12).map(id));
        let e = one(m.lookup(), "block", "00000000").unwrap_err();
        assert_eq!((e.status(), e.code()), (StatusCode::CONFLICT, "ambiguous"));
        assert!(format!("{e:?}").contains("and 2 more"), "{e:?}");
        assert_eq!(MIN_PREFIX_DIGITS, 8);
    }
}

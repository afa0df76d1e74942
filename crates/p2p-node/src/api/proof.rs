//! `GET /txs/{id}/proof` (a transaction's inclusion proof) and `GET
//! /headers` (the best chain's headers, for a light client to check the
//! proof against): `docs/API.md` and `docs/PROTOCOL.md`, "Inclusion
//! proofs".

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use chain_core::{Block, InclusionProof, Transaction, TxId, merkle_branch};
use escrow::Tx;
use serde::Deserialize;

use super::chain_read::{self, Read};
use super::error::ApiError;
use super::input;
use super::lookup::{read_block, store_error};
use super::state::Api;
use crate::api_types::{HeadersAnswer, ProofAnswer};
use crate::store::REMEDY;

/// Most headers one `GET /headers` answers with.
pub const MAX_HEADERS_PER_PAGE: u64 = 2_000;

/// `GET /txs/{id}/proof`: the merkle branch from the transaction to its
/// block's header, the header, and the transaction, for a confirmed
/// transaction of the best chain.
pub(super) async fn tx_proof(
    State(api): State<Api>,
    Path(id): Path<String>,
) -> Result<Json<ProofAnswer>, ApiError> {
    let id: TxId = id.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_hash",
            format!("`{id}` is not a transaction id (64 hex digits)"),
        )
    })?;
    let snap = api.node.snapshot();
    let tip = snap.height;
    let pending = snap.pool.get(&id).is_some();
    match chain_read::confirmed(snap, id).await {
        Read::Found((block, index)) => return proof_answer(id, &block, index, tip).map(Json),
        Read::Absent if pending => return Err(pending_error(id)),
        Read::Absent => return Err(not_held(id)),
        Read::AskCore => {}
    }
    // Not on the snapshot's best chain: the core tells pending from
    // unknown (and sees a block saved since the snapshot).
    api.node
        .query(move |v| {
            if v.mempool.get(&id).is_some() {
                return Err(pending_error(id));
            }
            let indexed = v.store.tx_block(&id).map_err(|e| {
                store_error(format!("the transaction index cannot be read for {id}: {e}; {REMEDY}"))
            })?;
            let Some(hash) = indexed.filter(|h| v.chain.is_on_best_chain(h)) else {
                return Err(not_held(id));
            };
            let Some(block) = read_block(v, &hash)? else {
                return Err(store_error(format!(
                    "the transaction index puts {id} in block {hash}, which this node does not hold; {REMEDY}"
                )));
            };
            let Some(index) = block.transactions.iter().position(|t| t.id() == id) else {
                return Err(store_error(format!(
                    "the transaction index puts {id} in block {hash}, which does not hold it; {REMEDY}"
                )));
            };
            proof_answer(id, &block, index, v.chain.height())
        })
        .await?
        .map(Json)
}

/// The error for a proof of pending transaction `id`.
fn pending_error(id: TxId) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "tx_pending",
        format!("transaction {id} is pending: no block holds it yet, so there is no proof"),
    )
}

/// The error for a proof of transaction `id` the best chain does not hold.
fn not_held(id: TxId) -> ApiError {
    ApiError::not_found(format!("no block of the best chain holds transaction {id}"))
}

/// The proof of transaction `id` at `index` of best-chain `block`, with
/// the best tip at height `tip`.
fn proof_answer(
    id: TxId,
    block: &Block<Tx>,
    index: usize,
    tip: u64,
) -> Result<ProofAnswer, ApiError> {
    let hash = block.hash();
    let (Some(branch), Some(tx)) = (
        merkle_branch(&block.commitments(), index),
        block.transactions.get(index),
    ) else {
        return Err(store_error(format!(
            "no merkle branch for {id} in block {hash}"
        )));
    };
    let proof = InclusionProof {
        header: block.header,
        branch,
        tx: tx.clone(),
    };
    let bytes = postcard::to_stdvec(&proof)
        .map_err(|e| store_error(format!("the proof cannot be encoded: {e}")))?;
    let tx_bytes = postcard::to_stdvec(&proof.tx)
        .map_err(|e| store_error(format!("the transaction cannot be encoded: {e}")))?;
    let height = block.header.height;
    Ok(ProofAnswer {
        tx: id,
        block: hash,
        height,
        confirmations: tip.saturating_sub(height) + 1,
        index: proof.branch.index,
        count: proof.branch.count,
        siblings: proof.branch.siblings.iter().map(hex::encode).collect(),
        header: hex::encode(block.header.to_bytes()),
        transaction: hex::encode(tx_bytes),
        proof: hex::encode(bytes),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HeadersQuery {
    #[serde(default, deserialize_with = "input::count")]
    from: Option<u64>,
    #[serde(default, deserialize_with = "input::count")]
    count: Option<u64>,
}

/// `GET /headers?from=H&count=N`: the best chain's headers from height H
/// (0 by default), at most N of them (2,000 by default and at most).
pub(super) async fn headers(
    State(api): State<Api>,
    RawQuery(q): RawQuery,
) -> Result<Json<HeadersAnswer>, ApiError> {
    let q: HeadersQuery = input::query(q.as_deref(), "bad_range")?;
    let from = q.from.unwrap_or(0);
    let count = q
        .count
        .unwrap_or(MAX_HEADERS_PER_PAGE)
        .min(MAX_HEADERS_PER_PAGE);
    // From the snapshot: the core is not asked.
    let snap = api.node.snapshot();
    let tip = snap.height;
    let to = from.saturating_add(count).min(tip.saturating_add(1));
    let headers = (from..to)
        .filter_map(|h| snap.best.at(h))
        .map(|(_, h)| hex::encode(h.to_bytes()))
        .collect();
    Ok(Json(HeadersAnswer {
        from,
        tip_height: tip,
        headers,
    }))
}

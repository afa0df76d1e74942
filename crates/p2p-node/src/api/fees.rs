//! `GET /fees/estimate` and `GET /mempool/fees`: what to pay, and the pool
//! by fee rate (`docs/API.md`, "Fees and the mempool").

use axum::Json;
use axum::extract::{RawQuery, State};
use escrow::FeeRate;
use serde::Deserialize;
use tokio::time::Instant;

use super::error::ApiError;
use super::input;
use super::state::Api;
use crate::api_types::{FeeBand, FeeEstimateAnswer, MempoolFeesAnswer};
use crate::mempool::estimate::{MAX_TARGET_BLOCKS, Pool, RECENT_BLOCKS, histogram};

/// The size of the signed transfer the estimate prices for a glance
/// (`docs/ESCROW.md`, "Example: a signed transfer").
const TRANSFER_BYTES: usize = 164;

/// The blocks an estimate is for when the query does not say.
pub const DEFAULT_TARGET_BLOCKS: u64 = 2;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EstimateQuery {
    #[serde(default, deserialize_with = "input::count")]
    blocks: Option<u64>,
}

/// `GET /fees/estimate?blocks=N`: the fee rate for confirmation within N
/// blocks (default 2, from 1 to 1,008).
pub(super) async fn estimate(
    State(api): State<Api>,
    RawQuery(q): RawQuery,
) -> Result<Json<FeeEstimateAnswer>, ApiError> {
    let q: EstimateQuery = input::query(q.as_deref(), "bad_blocks")?;
    let blocks = q.blocks.unwrap_or(DEFAULT_TARGET_BLOCKS);
    if !(1..=MAX_TARGET_BLOCKS).contains(&blocks) {
        return Err(ApiError::bad_request(
            "bad_blocks",
            format!("blocks must be from 1 to {MAX_TARGET_BLOCKS}, not {blocks}"),
        ));
    }
    // From the snapshot: its pool, and its recent blocks (which hold the
    // last RECENT_BLOCKS of the best chain).
    let snap = api.node.snapshot();
    let recent: Vec<_> = (0..RECENT_BLOCKS as u64)
        .filter_map(|back| snap.height.checked_sub(back).filter(|h| *h > 0))
        .filter_map(|h| snap.recent.best_at(h).cloned())
        .collect();
    let pool = Pool {
        floor: snap.fee_floor,
        bytes: snap.mempool_bytes,
        packages: snap.pool.packages(),
    };
    let e = pool.estimate(
        blocks,
        &snap.params,
        recent.iter().map(|b| b.as_ref()),
        Instant::now(),
    );
    Ok(Json(FeeEstimateAnswer {
        blocks,
        fee_rate: e.fee_rate.get(),
        min_fee_rate: e.min_fee_rate.get(),
        from_mempool: e.from_pool.map(FeeRate::get),
        from_blocks: e.from_blocks.map(FeeRate::get),
        transfer_fee: e.fee_rate.fee_for(TRANSFER_BYTES),
    }))
}

/// `GET /mempool/fees`: the pool's size, its minimum fee rate and its
/// histogram by fee rate.
pub(super) async fn mempool_fees(State(api): State<Api>) -> Json<MempoolFeesAnswer> {
    // From the snapshot.
    let snap = api.node.snapshot();
    Json(MempoolFeesAnswer {
        count: snap.pool.len(),
        bytes: snap.mempool_bytes,
        max_bytes: snap.pool.max_bytes(),
        min_fee_rate: snap.fee_floor.at(Instant::now()).get(),
        min_relay_fee_rate: snap.fee_floor.min_relay().get(),
        histogram: histogram(snap.pool.packages())
            .into_iter()
            .map(|b| FeeBand {
                rate_from: b.from.get(),
                rate_to: b.to.get(),
                count: b.count,
                bytes: b.bytes,
            })
            .collect(),
    })
}

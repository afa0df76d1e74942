//! `POST /dev/snapshot`, `/dev/revert` and `/dev/reset`: a `--dev` node's
//! snapshots (`crate::dev`), behind the token, refused on any other node
//! (`403 not_dev`).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

use super::error::ApiError;
use super::input::{JsonBody, NoBody};
use super::state::{Api, authorised};
use crate::api_types::{DevAnswer, RevertRequest};
use crate::dev::{DevChain, DevError};

/// How long a snapshot waits for the tip the node shows to be in its
/// store (the node commits a block, then shows it).
const COMMIT_WAIT: Duration = Duration::from_secs(10);

fn dev_chain(api: &Api) -> Result<&DevChain, ApiError> {
    api.dev.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "not_dev",
            "snapshots, revert and reset are for a throwaway chain: start the node with --dev",
        )
    })
}

fn dev_error(e: DevError) -> ApiError {
    match e {
        DevError::UnknownSnapshot(_) => {
            ApiError::new(StatusCode::NOT_FOUND, "unknown_snapshot", e.to_string())
        }
        DevError::Gone => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "stopping", e.to_string()),
    }
}

/// `POST /dev/snapshot`: saves the chain, the ledger, the contracts and the
/// mempool; answers the new id with the height and tip saved.
pub(super) async fn snapshot(
    State(api): State<Api>,
    headers: HeaderMap,
    b: Result<NoBody, ApiError>,
) -> Result<Json<DevAnswer>, ApiError> {
    authorised(&api, &headers)?;
    b?;
    let dev = dev_chain(&api)?;
    let deadline = tokio::time::Instant::now() + COMMIT_WAIT;
    loop {
        // On the core's task: no block joins the chain while the store is
        // copied, so the copy holds nothing past the tip it names (and a
        // commit of that tip still under way is waited for below).
        let chain = dev.clone();
        let (saved, height, tip) = api
            .node
            .query(move |v| {
                let (height, tip) = (v.chain.height(), v.chain.tip());
                let saved = chain.snapshot(v.mempool.txs().to_vec(), height, tip);
                (saved, height, tip)
            })
            .await?;
        if let Some(id) = saved {
            return Ok(Json(DevAnswer { id, height, tip }));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_busy",
                format!(
                    "block {tip} is not in the store after {} s",
                    COMMIT_WAIT.as_secs()
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `POST /dev/revert {"id": N}`: the node restarts on snapshot N. The answer
/// comes first; the API is back once the new node has started.
pub(super) async fn revert(
    State(api): State<Api>,
    headers: HeaderMap,
    b: Result<JsonBody<RevertRequest>, ApiError>,
) -> Result<Json<DevAnswer>, ApiError> {
    authorised(&api, &headers)?;
    let JsonBody(b) = b?;
    let dev = dev_chain(&api)?;
    let (height, tip) = dev.revert(b.id).map_err(dev_error)?;
    Ok(Json(DevAnswer {
        id: b.id,
        height,
        tip,
    }))
}

/// `POST /dev/reset`: the node restarts at genesis (answered as snapshot
/// 0: height 0, the genesis hash). Snapshots stay.
pub(super) async fn reset(
    State(api): State<Api>,
    headers: HeaderMap,
    b: Result<NoBody, ApiError>,
) -> Result<Json<DevAnswer>, ApiError> {
    authorised(&api, &headers)?;
    b?;
    let dev = dev_chain(&api)?;
    let genesis = api.node.query(|v| v.chain.genesis_hash()).await?;
    dev.reset().map_err(dev_error)?;
    Ok(Json(DevAnswer {
        id: 0,
        height: 0,
        tip: genesis,
    }))
}

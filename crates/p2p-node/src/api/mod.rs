//! The HTTP API (axum, JSON): status, blocks, transactions, accounts,
//! contracts, peers, the mempool, submitting signed transactions, mining on
//! demand, and Prometheus metrics. `docs/API.md` documents every endpoint.
//!
//! Handlers read the node from the snapshot the core publishes after each
//! event ([`NodeHandle::snapshot`]), so a read never waits for the core,
//! whatever it is doing (syncing, reorganising). Only lookups of one block
//! or transaction (by id, or by a prefix of it: [`prefix`], `lookup.rs`), a
//! page of blocks outside the snapshot's recent ones, and the mempool's
//! list, run on the core through [`NodeHandle::query`] (O(1) lookups, range
//! scans, or passes bounded by the pool or the block index). No handler
//! holds node state across an `.await`. Every JSON answer is one of the serde
//! types of [`crate::api_types`], which the client reads back. Errors are
//! JSON `{"code", "message"}` ([`ErrorAnswer`]) with a stable code.
//! Bodies and query strings follow one rule for every endpoint
//! ([`input`]); the server's limits on connections, request heads and
//! bodies are [`ApiLimits`] ([`serve`]).
//! Endpoints that change the node rather than submit a signed transaction
//! (`POST /mine`, `POST /peers`, `POST /admin/*`) need the node's token as
//! `Authorization: Bearer <token>`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};

use axum::routing::{get, post};
use axum::{Json, Router};
use escrow::{Address, Contract, Payload, SignedTx, Tx};
use serde::Deserialize;

/// The `POST /txs` body, defined with the other API types.
pub use crate::api_types::SubmitTx;
use crate::api_types::{
    AccountAnswer, BlockAnswer, MineAnswer, MineRequest, PeerAnswer, StatusAnswer, SubmitAnswer,
    TreeAnswer, TreeBlock, TxAnswer,
};
use crate::node::NodeHandle;

/// Most blocks one `GET /blocks` answers with.
pub const MAX_BLOCKS_PER_PAGE: u64 = 100;

mod bans;
mod chain_read;
use chain_read::Read;
mod dev;
pub(crate) mod error;
mod fees;
mod input;
mod lookup;
mod metrics;
pub mod prefix;
mod proof;
pub(crate) mod serve;
mod stall;
mod state;

pub use error::{ApiError, mempool_code};
use input::{JsonBody, NoBody};
pub use serve::{ApiLimits, serve};
use state::{Api, authorised};

/// The API's routes over a running node. `token` guards the endpoints
/// that change the node; without one they are refused. `limits` bound
/// request bodies (the rest of them apply in [`serve`]).
pub fn router(
    node: NodeHandle,
    token: Option<String>,
    limits: &ApiLimits,
    dev: Option<crate::dev::DevChain>,
) -> Router {
    let api = Api {
        node,
        token: token.map(Arc::from),
        limits: Arc::new(limits.clone()),
        dev,
    };
    Router::new()
        .route("/status", get(status))
        .route("/blocks/{id}", get(lookup::block_by_id))
        .route("/blocks/height/{height}", get(block_by_height))
        .route("/txs", post(submit))
        .route("/txs/{id}", get(lookup::tx_by_id))
        .route("/txs/{id}/proof", get(proof::tx_proof))
        .route("/accounts/{account}", get(account))
        .route("/contracts", get(contracts))
        .route("/contracts/{id}", get(lookup::contract))
        .route("/peers", get(peers).post(add_peer))
        .route("/bans", get(bans::bans))
        .route("/mempool", get(mempool))
        .route("/mempool/fees", get(fees::mempool_fees))
        .route("/mine", post(mine))
        .route("/admin/partition", post(partition))
        .route("/admin/heal", post(heal))
        .route("/dev/snapshot", post(dev::snapshot))
        .route("/dev/revert", post(dev::revert))
        .route("/dev/reset", post(dev::reset))
        .route("/metrics", get(metrics::metrics))
        .route("/", get(explorer))
        .route("/events", get(events))
        // Every route above takes no query parameter; those below read
        // theirs with `input::query`.
        .route_layer(axum::middleware::from_fn(input::no_query))
        .route("/blocks", get(blocks))
        .route("/tree", get(tree))
        .route("/fees/estimate", get(fees::estimate))
        .route("/headers", get(proof::headers))
        .fallback(unknown_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .with_state(api)
}

/// The explorer page: one self-contained HTML file (styles and script
/// inline, no external requests), embedded in the binary.
const EXPLORER: &str = include_str!("explorer.html");

async fn explorer() -> axum::response::Html<&'static str> {
    axum::response::Html(EXPLORER)
}

/// `GET /events`: server-sent events (`tip`, `mempool`, `peers`), each
/// with a JSON body, pushed when the node changes. The stream ends when the
/// node stops.
async fn events(
    State(api): State<Api>,
) -> axum::response::sse::Sse<
    impl futures::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>,
> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use tokio::sync::broadcast::error::RecvError;
    let rx = api.node.subscribe();
    let node = api.node.clone();
    let stream = futures::stream::unfold((rx, node), |(mut rx, node)| async move {
        loop {
            let next = tokio::select! {
                biased;
                _ = node.stopped() => return None,
                r = rx.recv() => r,
            };
            match next {
                Ok(event) => {
                    let sse = Event::default()
                        .event(event.name())
                        .json_data(&event)
                        .unwrap_or_else(|_| Event::default().event(event.name()));
                    return Some((Ok(sse), (rx, node)));
                }
                // A slow watcher missed some: the next event still comes.
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TreeQuery {
    #[serde(default, deserialize_with = "input::count")]
    depth: Option<u64>,
}

/// `GET /tree?depth=N`: every block (side branches included) of the last
/// N heights (default 30, at most 200), for drawing the block tree.
async fn tree(State(api): State<Api>, RawQuery(q): RawQuery) -> Result<Json<TreeAnswer>, ApiError> {
    let q: TreeQuery = input::query(q.as_deref(), "bad_range")?;
    let depth = q.depth.unwrap_or(30).clamp(1, 200);
    let snap = api.node.snapshot();
    let from = snap.height.saturating_sub(depth - 1);
    let mut blocks: Vec<TreeBlock> = snap
        .recent
        .since(from)
        .map(|(block, best)| TreeBlock::new(block, best))
        .collect();
    // By height, the best chain's block first (the rest by hash).
    blocks.sort_by_key(|b| (b.height, !b.best));
    Ok(Json(TreeAnswer {
        tip: snap.tip,
        height: snap.height,
        blocks,
    }))
}

async fn unknown_route(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no endpoint {}", uri.path()))
}

/// A path that exists, with a method it does not take.
async fn wrong_method(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} does not take {method}", uri.path()),
    )
}

async fn status(State(api): State<Api>) -> Json<StatusAnswer> {
    let snap = api.node.snapshot();
    Json(StatusAnswer {
        network: snap.network,
        node_id: hex::encode(snap.node_id.0),
        height: snap.height,
        tip: snap.tip,
        total_work: snap.total_work.as_f64(),
        peers: snap.peers.len(),
        mempool: snap.mempool_len,
        mempool_bytes: snap.mempool_bytes,
        min_fee_rate: snap.fee_floor.at(tokio::time::Instant::now()).get(),
        mining: snap.mining.name().to_string(),
        started_at_ms: api.node.started_at_ms(),
        sync: snap.sync.map(|s| sync_answer(&s)),
    })
}

/// The snapshot's sync progress as the API answers it.
fn sync_answer(s: &crate::core::SyncProgress) -> crate::api_types::SyncAnswer {
    crate::api_types::SyncAnswer {
        headers: s.headers,
        blocks: s.blocks,
        seconds_left: s.seconds_left.map(|x| (x * 10.0).round() / 10.0),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Range {
    #[serde(default, deserialize_with = "input::count")]
    from: Option<u64>,
    #[serde(default, deserialize_with = "input::count")]
    to: Option<u64>,
    #[serde(default, deserialize_with = "input::count")]
    last: Option<u64>,
}

/// `GET /blocks`: best-chain blocks by height, oldest first. What is
/// valid depends on the request alone, never on the chain's height (see
/// [`page`]).
async fn blocks(
    State(api): State<Api>,
    RawQuery(r): RawQuery,
) -> Result<Json<Vec<BlockAnswer>>, ApiError> {
    let r: Range = input::query(r.as_deref(), "bad_range")?;
    let snap = api.node.snapshot();
    let Some((from, to)) = page(&r, snap.height)? else {
        return Ok(Json(Vec::new()));
    };
    // From the snapshot and the store, without the core; a block the
    // store cannot give back is read by the core, which says what is wrong
    // (and fetches a good copy of a damaged block from a peer).
    if let Read::Found(blocks) = chain_read::best_range(snap, from, to).await {
        return Ok(Json(
            blocks.iter().map(|b| BlockAnswer::new(b, true)).collect(),
        ));
    }
    let v = api
        .node
        .query(move |v| {
            let Some((from, to)) = page(&r, v.chain.height())? else {
                return Ok(Vec::new());
            };
            (from..=to)
                .filter_map(|h| v.chain.hash_at_height(h))
                .map(|hash| -> Result<Option<BlockAnswer>, ApiError> {
                    let block = lookup::read_block(v, &hash)?;
                    Ok(block.map(|b| BlockAnswer::new(&b, true)))
                })
                .filter_map(Result::transpose)
                .collect::<Result<Vec<BlockAnswer>, ApiError>>()
        })
        .await??;
    Ok(Json(v))
}

/// The heights a `GET /blocks` asks for, with the best tip at `tip`:
/// `None` for none, or `bad_range`. Whether a request is valid depends on
/// it alone: `last` from 0 to [`MAX_BLOCKS_PER_PAGE`] (the last `last`
/// blocks, fewer on a shorter chain); or `from` (default 0) and `to`
/// (default `from + 99`), at most [`MAX_BLOCKS_PER_PAGE`] heights with
/// `from <= to`, the part past the tip left out.
fn page(r: &Range, tip: u64) -> Result<Option<(u64, u64)>, ApiError> {
    let max = MAX_BLOCKS_PER_PAGE;
    if let Some(n) = r.last {
        if r.from.is_some() || r.to.is_some() {
            return Err(ApiError::bad_request(
                "bad_range",
                "give either `last` or `from`/`to`, not both",
            ));
        }
        if n > max {
            return Err(ApiError::bad_request(
                "bad_range",
                format!(
                    "`last` is {n}: at most {max} blocks a request; page through longer \
                     ranges with `from` and `to` (for example `from=0&to={}`)",
                    max - 1
                ),
            ));
        }
        if n == 0 {
            return Ok(None);
        }
        return Ok(Some((tip.saturating_sub(n - 1), tip)));
    }
    let from = r.from.unwrap_or(0);
    let to = r.to.unwrap_or_else(|| from.saturating_add(max - 1));
    if from > to {
        return Err(ApiError::bad_request(
            "bad_range",
            format!("`from` ({from}) is above `to` ({to}): give from <= to"),
        ));
    }
    if to - from >= max {
        return Err(ApiError::bad_request(
            "bad_range",
            format!(
                "heights {from} to {to} are {} blocks: at most {max} a request; page through \
                 them (for example `from={from}&to={}`)",
                (to - from).saturating_add(1),
                from.saturating_add(max - 1)
            ),
        ));
    }
    if from > tip {
        return Ok(None);
    }
    Ok(Some((from, to.min(tip))))
}

async fn block_by_height(
    State(api): State<Api>,
    Path(height): Path<String>,
) -> Result<Json<BlockAnswer>, ApiError> {
    let height = input::parse_count(&height).ok_or_else(|| {
        ApiError::bad_request("bad_height", format!("`{height}` is not a block height"))
    })?;
    let not_found = move || ApiError::not_found(format!("no block at height {height}"));
    match chain_read::best_at(api.node.snapshot(), height).await {
        Read::Found(block) => return Ok(Json(BlockAnswer::new(&block, true))),
        Read::Absent => return Err(not_found()),
        Read::AskCore => {}
    }
    api.node
        .query(move |v| {
            let block = match v.chain.hash_at_height(height) {
                Some(hash) => lookup::read_block(v, &hash)?,
                None => None,
            };
            block
                .map(|b| Json(BlockAnswer::new(&b, true)))
                .ok_or_else(not_found)
        })
        .await?
}

fn parse_account(s: &str) -> Result<Address, ApiError> {
    escrow::dev::account(s).ok_or_else(|| {
        ApiError::bad_request(
            "bad_account",
            format!("`{s}` is not a dev account name or a 64-hex-digit address"),
        )
    })
}

async fn account(
    State(api): State<Api>,
    Path(account): Path<String>,
) -> Result<Json<AccountAnswer>, ApiError> {
    let address = parse_account(&account)?;
    let snap = api.node.snapshot();
    Ok(Json(AccountAnswer {
        address,
        name: escrow::dev::name_of(&address).map(str::to_string),
        balance: snap.state.balance(&address),
        nonce: snap.state.nonce(&address),
        pending_balance: snap.pending.balance(&address),
        pending_nonce: snap.pending.nonce(&address),
    }))
}

async fn contracts(State(api): State<Api>) -> Json<Vec<Contract>> {
    let snap = api.node.snapshot();
    Json(snap.state.contracts().values().cloned().collect())
}

async fn peers(State(api): State<Api>) -> Json<Vec<PeerAnswer>> {
    let snap = api.node.snapshot();
    Json(
        snap.peers
            .iter()
            .map(|p| PeerAnswer {
                node_id: hex::encode(p.node_id.0),
                remote: p.remote,
                listen_addr: p.listen_addr,
                direction: format!("{:?}", p.direction).to_lowercase(),
                best_height: p.best_height,
                penalty: p.score,
                queued_bytes: p.queued_bytes,
            })
            .collect(),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddPeer {
    addr: SocketAddr,
}

async fn add_peer(
    State(api): State<Api>,
    headers: HeaderMap,
    b: Result<JsonBody<AddPeer>, ApiError>,
) -> Result<StatusCode, ApiError> {
    authorised(&api, &headers)?;
    let JsonBody(b) = b?;
    api.node.add_peer(b.addr).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `GET /mempool`: from the snapshot's pool.
async fn mempool(State(api): State<Api>) -> Json<Vec<TxAnswer>> {
    let snap = api.node.snapshot();
    Json(
        snap.pool
            .txs()
            .map(|t| TxAnswer::from(&Tx::Signed(t.clone())))
            .collect(),
    )
}

async fn submit(
    State(api): State<Api>,
    b: Result<JsonBody<SubmitTx>, ApiError>,
) -> Result<(StatusCode, Json<SubmitAnswer>), ApiError> {
    let JsonBody(b) = b?;
    let bytes = hex::decode(b.tx.trim())
        .map_err(|e| ApiError::bad_request("bad_encoding", format!("tx is not hex: {e}")))?;
    let tx = SignedTx::from_bytes(&bytes)
        .map_err(|e| ApiError::bad_request("bad_encoding", format!("tx does not decode: {e}")))?;
    let contract = match &tx.body.payload {
        Payload::EscrowCreate { .. } => Some(escrow::ledger::contract_id_of(&tx)),
        _ => None,
    };
    let fee = tx.fee();
    let id = api.node.submit(tx).await?;
    Ok((
        StatusCode::CREATED,
        Json(SubmitAnswer { id, contract, fee }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Partition {
    /// P2P listening addresses to cut off.
    block: Vec<SocketAddr>,
}

async fn partition(
    State(api): State<Api>,
    headers: HeaderMap,
    b: Result<JsonBody<Partition>, ApiError>,
) -> Result<StatusCode, ApiError> {
    authorised(&api, &headers)?;
    let JsonBody(b) = b?;
    api.node.partition(b.block).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn heal(
    State(api): State<Api>,
    headers: HeaderMap,
    b: Result<NoBody, ApiError>,
) -> Result<StatusCode, ApiError> {
    authorised(&api, &headers)?;
    b?;
    api.node.heal().await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn mine(
    State(api): State<Api>,
    headers: HeaderMap,
    b: Result<JsonBody<MineRequest>, ApiError>,
) -> Result<Json<MineAnswer>, ApiError> {
    authorised(&api, &headers)?;
    let JsonBody(b) = b?;
    if b.blocks == 0 || b.blocks > 1_000 {
        return Err(ApiError::bad_request(
            "bad_count",
            "mine between 1 and 1000 blocks at a time",
        ));
    }
    let to = b.to.as_deref().map(parse_account).transpose()?;
    let hashes = api.node.mine_blocks_to(b.blocks, to).await?;
    Ok(Json(MineAnswer { blocks: hashes }))
}

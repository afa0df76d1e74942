//! Reads of the chain that never wait for the node's core: a block by
//! hash or by height, a page of blocks or headers, a confirmed
//! transaction. Each answers from one published [`Snapshot`] (which
//! blocks are on the best chain, up to which height) and the store's
//! bodies ([`crate::core::Bodies`]), read on tokio's blocking pool: a
//! lookup costs the same whether the core is idle or busy validating a
//! sync's blocks.
//!
//! What the snapshot cannot settle is left to the core ([`Read::AskCore`]):
//! a block the store holds off the best chain and older than the
//! snapshot's recent blocks (a side branch, or a block found invalid since
//! it was saved), a transaction the store's index puts in a block the
//! snapshot does not show on its best chain (saved since, or a
//! reorganisation being saved), and whatever the store cannot give back
//! (the core names the damage). Pending and dropped transactions are the
//! snapshot's pool's (`lookup.rs`).

use std::sync::Arc;

use chain_core::{Block, BlockHash, Transaction, TxId};
use escrow::Tx;

use crate::core::Snapshot;

/// What a read without the core found.
pub(super) enum Read<T> {
    /// The answer.
    Found(T),
    /// Nothing: the node does not hold it.
    Absent,
    /// The snapshot cannot settle it: ask the core.
    AskCore,
}

/// A block read, and whether it is on the snapshot's best chain.
pub(super) type Found = (Arc<Block<Tx>>, bool);

/// Runs `read` on the blocking pool (a store read may touch the disk);
/// [`Read::AskCore`] if it does not finish.
async fn blocking<T: Send + 'static>(read: impl FnOnce() -> Read<T> + Send + 'static) -> Read<T> {
    tokio::task::spawn_blocking(read)
        .await
        .unwrap_or(Read::AskCore)
}

/// Block `hash` from the store, or [`Read::AskCore`] if the store cannot
/// give it back (the core then says why, and has a damaged block fetched
/// again from a peer).
fn stored(snap: &Snapshot, hash: &BlockHash) -> Read<Arc<Block<Tx>>> {
    match snap.bodies.block(hash) {
        Ok(Some(block)) => Read::Found(block),
        Ok(None) => Read::Absent,
        Err(e) => {
            tracing::debug!("block {hash} read without the core: {e}");
            Read::AskCore
        }
    }
}

/// The block `hash` from the snapshot's recent blocks or the store, if
/// the snapshot can say whether it is on the best chain.
pub(super) async fn block(snap: Arc<Snapshot>, hash: BlockHash) -> Read<Found> {
    if let Some(found) = snap.recent.find(&hash) {
        return Read::Found(found);
    }
    blocking(move || match stored(&snap, &hash) {
        Read::Found(block) if snap.best.holds(block.header.height, &hash) => {
            Read::Found((block, true))
        }
        // Every block a snapshot names is saved: the node does not hold
        // it (or not yet durably).
        Read::Absent => Read::Absent,
        _ => Read::AskCore,
    })
    .await
}

/// The best chain's block at `height` ([`Read::Absent`] above the
/// snapshot's tip).
pub(super) async fn best_at(snap: Arc<Snapshot>, height: u64) -> Read<Arc<Block<Tx>>> {
    let Some(&(hash, _)) = snap.best.at(height) else {
        return Read::Absent;
    };
    if let Some(block) = snap.recent.best_at(height) {
        return Read::Found(Arc::clone(block));
    }
    blocking(move || best_body(&snap, &hash)).await
}

/// The best chain's blocks from `from` to `to` (both included, the part
/// above the tip left out), in order.
pub(super) async fn best_range(
    snap: Arc<Snapshot>,
    from: u64,
    to: u64,
) -> Read<Vec<Arc<Block<Tx>>>> {
    blocking(move || {
        let mut blocks = Vec::new();
        for height in from..=to.min(snap.height) {
            if let Some(block) = snap.recent.best_at(height) {
                blocks.push(Arc::clone(block));
                continue;
            }
            let Some(&(hash, _)) = snap.best.at(height) else {
                break;
            };
            match best_body(&snap, &hash) {
                Read::Found(block) => blocks.push(block),
                _ => return Read::AskCore,
            }
        }
        Read::Found(blocks)
    })
    .await
}

/// The body of the best chain's block `hash`: the store must hold it, so
/// a block it lacks is one for the core to look into.
fn best_body(snap: &Snapshot, hash: &BlockHash) -> Read<Arc<Block<Tx>>> {
    match stored(snap, hash) {
        Read::Found(block) => Read::Found(block),
        _ => Read::AskCore,
    }
}

/// Transaction `id` confirmed on the snapshot's best chain: its block and
/// its index there. [`Read::Absent`] if the store's index does not hold
/// it; [`Read::AskCore`] if the index puts it in a block the snapshot does
/// not show on its best chain (saved since, or a reorganisation being
/// saved), or the store cannot be read.
pub(super) async fn confirmed(snap: Arc<Snapshot>, id: TxId) -> Read<(Arc<Block<Tx>>, usize)> {
    blocking(move || {
        let hash = match snap.bodies.tx_block(&id) {
            Ok(Some(hash)) => hash,
            Ok(None) => return Read::Absent,
            Err(_) => return Read::AskCore,
        };
        let block = match snap.recent.find(&hash) {
            Some((block, true)) => block,
            Some((_, false)) => return Read::AskCore,
            None => match stored(&snap, &hash) {
                Read::Found(block) if snap.best.holds(block.header.height, &hash) => block,
                _ => return Read::AskCore,
            },
        };
        match block.transactions.iter().position(|t| t.id() == id) {
            Some(index) => Read::Found((block, index)),
            // A damaged index: the core says so.
            None => Read::AskCore,
        }
    })
    .await
}

/// The confirmed transactions whose ids lie from `low` to `high` (at most
/// `limit`), or [`Read::AskCore`] if the index cannot be read.
pub(super) async fn confirmed_in_range(
    snap: Arc<Snapshot>,
    low: TxId,
    high: TxId,
    limit: usize,
) -> Read<Vec<TxId>> {
    blocking(move || match snap.bodies.txs_in_range(&low, &high, limit) {
        Ok(ids) => Read::Found(ids),
        Err(_) => Read::AskCore,
    })
    .await
}

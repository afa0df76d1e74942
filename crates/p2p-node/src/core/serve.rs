//! Serving what peers ask for: transactions and blocks by hash
//! (`GetTxs`, `GetBlocks`), and a run of best-chain headers or blocks
//! from a locator for sync (`GetHeaders`, `GetSync`).
//!
//! Each answer is computed from the chain and the mempool without changing
//! them ([`txs`], [`blocks`], [`sync`]), then sent through the peer table
//! as the peer's upload allowance lets it ([`serve_txs`], [`serve_blocks`],
//! [`serve_sync`]): an answer that does not fit is refused, and the
//! refusal is the peer's offence, returned for the core to punish. What is
//! sent counts as known to the peer. A best-chain block a peer was never
//! sent, and headers above the highest it was sent, are free: a peer that
//! downloads the chain once is served at the speed of the link, and only
//! what it asks again is charged (`peers/served.rs`).

use chain_core::{Block, BlockHash, TxId};
use escrow::{SignedTx, Tx};
use tokio::time::Instant;
use wire::message::{MAX_HEADERS, MAX_SYNC_BLOCKS};
use wire::{Bounded, CompactBlock, Message};

use crate::core::peers::PeerTable;
use crate::core::view::{ConnId, NodeChain};
use crate::mempool::Mempool;
use crate::penalty::Offence;

/// Takes an answer's `bytes` from `conn`'s upload allowance.
///
/// # Errors
///
/// The offence, if it does not fit: the request is refused.
fn charge(peers: &mut PeerTable, conn: ConnId, bytes: usize, what: &str) -> Result<(), Offence> {
    if peers.charge_upload(conn, bytes, Instant::now()) {
        Ok(())
    } else {
        Err(Offence::UploadBudget(format!(
            "{what} of {bytes} bytes refused"
        )))
    }
}

/// Answers `GetTxs`: the pending transactions asked for, in pool order,
/// then a `NotFound` for the rest.
///
/// # Errors
///
/// The offence if the answer does not fit the peer's upload allowance (what
/// fitted before it was sent).
pub(super) fn serve_txs(
    peers: &mut PeerTable,
    mempool: &Mempool,
    conn: ConnId,
    ids: &[TxId],
) -> Result<(), Offence> {
    let (found, missing) = txs(mempool, ids);
    for tx in found {
        charge(peers, conn, tx.to_bytes().len(), "a transaction")?;
        peers.knows_txs(conn, [&tx.id()]);
        peers.send(conn, Message::Tx(tx));
    }
    if !missing.is_empty() {
        peers.send(
            conn,
            Message::NotFound {
                txs: Bounded::truncating(missing),
                blocks: Bounded::default(),
            },
        );
    }
    Ok(())
}

/// Answers `GetBlocks`: the blocks asked for that the chain holds, each
/// read back as the allowance lets it, then a `NotFound` for the rest (and
/// for a held block whose body cannot be read back: the store is failing).
///
/// # Errors
///
/// As [`serve_txs`].
pub(super) fn serve_blocks(
    peers: &mut PeerTable,
    chain: &NodeChain,
    conn: ConnId,
    hashes: &[BlockHash],
) -> Result<(), Offence> {
    let (found, mut missing) = blocks(chain, hashes);
    for hash in found {
        let Some(block) = chain.block(&hash) else {
            // Held, but its body cannot be read back (the store is
            // failing): say so rather than nothing.
            missing.push(hash);
            continue;
        };
        let height = block.header.height;
        let best = chain.is_on_best_chain(&hash);
        if !best || peers.was_sent(conn, height) {
            charge(peers, conn, block.size(), "a block")?;
        }
        peers.knows_blocks(conn, [&block.hash()]);
        if best {
            peers.mark_sent(conn, height);
            peers.saw_height(conn, height);
        }
        peers.send(conn, Message::Block((*block).clone()));
    }
    if !missing.is_empty() {
        peers.send(
            conn,
            Message::NotFound {
                txs: Bounded::default(),
                blocks: Bounded::truncating(missing),
            },
        );
    }
    Ok(())
}

/// The block `hash` as a compact block with `salt` (only its coinbase
/// prefilled), if the chain holds it and can read it back.
pub(super) fn compact_block(
    chain: &NodeChain,
    hash: &BlockHash,
    salt: u64,
) -> Option<CompactBlock> {
    let block = chain.block(hash)?;
    Some(CompactBlock::new(&block, salt, &[]))
}

/// Answers `GetCompact`: the block `hash` as a compact block with `salt`
/// for the caller to send, or a `NotFound`.
///
/// # Errors
///
/// As [`serve_txs`].
pub(super) fn serve_compact(
    peers: &mut PeerTable,
    chain: &NodeChain,
    conn: ConnId,
    hash: BlockHash,
    salt: u64,
) -> Result<Option<CompactBlock>, Offence> {
    let Some(compact) = compact_block(chain, &hash, salt) else {
        not_found_block(peers, conn, hash);
        return Ok(None);
    };
    charge(peers, conn, wire::encoded_len(&compact), "a compact block")?;
    peers.knows_blocks(conn, [&hash]);
    Ok(Some(compact))
}

/// Tells `conn` that the block `hash` is not here.
fn not_found_block(peers: &mut PeerTable, conn: ConnId, hash: BlockHash) {
    let blocks = Bounded::truncating(vec![hash]);
    let txs = Bounded::default();
    peers.send(conn, Message::NotFound { txs, blocks });
}

/// Answers `GetBlockTxn`: the block's transactions at `indexes`, or a
/// `NotFound` for a block not here.
///
/// # Errors
///
/// Indexes not increasing or past the block's end (no honest node asks
/// for those), or an answer over the peer's upload allowance.
pub(super) fn serve_block_txn(
    peers: &mut PeerTable,
    chain: &NodeChain,
    conn: ConnId,
    hash: BlockHash,
    indexes: &[u32],
) -> Result<(), Offence> {
    let Some(block) = chain.block(&hash) else {
        not_found_block(peers, conn, hash);
        return Ok(());
    };
    let increasing = indexes.windows(2).all(|w| w[0] < w[1]);
    let mut txs = Vec::with_capacity(indexes.len());
    for &i in indexes {
        match block.transactions.get(i as usize) {
            Some(tx) if increasing => txs.push(tx.clone()),
            _ => {
                return Err(Offence::Protocol(
                    "GetBlockTxn indexes out of order or range",
                ));
            }
        }
    }
    let message = Message::BlockTxn {
        block: hash,
        txs: Bounded::truncating(txs),
    };
    charge(peers, conn, wire::frame_len(&message), "block transactions")?;
    peers.send(conn, message);
    Ok(())
}

/// Answers `GetSync` with at most about `budget` bytes of blocks. An
/// answer that cannot be read back whole is never sent short: the peer is
/// told why and dropped, and syncs from another (the damage is logged
/// where it was found, and the core asks peers for a good copy).
///
/// # Errors
///
/// As [`serve_txs`].
pub(super) fn serve_sync(
    peers: &mut PeerTable,
    chain: &NodeChain,
    conn: ConnId,
    (locator, stop): (&[BlockHash], BlockHash),
    budget: usize,
) -> Result<(), Offence> {
    let (blocks, more) = match sync(chain, locator, stop, budget) {
        Ok(answer) => answer,
        Err(damaged) => {
            let text = damaged.to_string();
            tracing::warn!(conn, "a sync answer cannot be served: {text}");
            peers.drop_peer(conn, Some((wire::Reason::StoreDamaged, &text)));
            return Ok(());
        }
    };
    let again = blocks
        .iter()
        .filter(|b| peers.was_sent(conn, b.header.height));
    let size = again.map(Block::size).sum();
    charge(peers, conn, size, "a sync answer")?;
    for b in &blocks {
        peers.mark_sent(conn, b.header.height);
    }
    let hashes: Vec<BlockHash> = blocks.iter().map(Block::hash).collect();
    peers.knows_blocks(conn, &hashes);
    // The peer asked for them: once they arrive it holds them, and `/peers`
    // shows its height without waiting for it to announce a block of its
    // own (a node that only syncs announces nothing).
    if let Some(last) = blocks.last() {
        peers.saw_height(conn, last.header.height);
    }
    peers.send(
        conn,
        Message::SyncBlocks {
            blocks: Bounded::truncating(blocks),
            more,
        },
    );
    Ok(())
}

/// Answers `GetHeaders`: the best-chain headers after the first locator
/// hash on our best chain (after genesis if none is), up to `stop`, at
/// most [`MAX_HEADERS`]. Headers are in memory: no read can fail.
///
/// # Errors
///
/// As [`serve_txs`] (only headers sent before are charged, 96 bytes each).
pub(super) fn serve_headers(
    peers: &mut PeerTable,
    chain: &NodeChain,
    conn: ConnId,
    (locator, stop): (&[BlockHash], BlockHash),
) -> Result<(), Offence> {
    let headers = headers(chain, locator, stop);
    if let (Some(first), Some(last)) = (headers.first(), headers.last()) {
        let again = peers.headers_sent_again(conn, first.height, last.height);
        let bytes = usize::try_from(again)
            .unwrap_or(usize::MAX)
            .saturating_mul(96);
        charge(peers, conn, bytes, "a headers answer")?;
        peers.saw_height(conn, last.height);
    }
    peers.send(conn, Message::Headers(Bounded::truncating(headers)));
    Ok(())
}

/// The answer to `GetHeaders` (see [`serve_headers`]).
pub(crate) fn headers(
    chain: &NodeChain,
    locator: &[BlockHash],
    stop: BlockHash,
) -> Vec<chain_core::Header> {
    let start = fork_point(chain, locator) + 1;
    let mut out = Vec::new();
    for height in start..=chain.height() {
        let Some(header) = chain.hash_at_height(height).and_then(|h| chain.header(&h)) else {
            break;
        };
        out.push(header);
        if out.len() >= MAX_HEADERS || header.hash() == stop {
            break;
        }
    }
    out
}

/// The height of the first locator hash on our best chain (genesis, 0, if
/// none is).
fn fork_point(chain: &NodeChain, locator: &[BlockHash]) -> u64 {
    locator
        .iter()
        .find(|h| chain.is_on_best_chain(h))
        .and_then(|h| chain.header(h))
        .map_or(0, |h| h.height)
}

/// The pending transactions asked for, and the ids the pool does not hold.
/// An id asked for twice in one request is answered once. The transactions
/// come in the pool's order, whatever the request's: the order they apply
/// in, so a peer that admits them one by one never sees a nonce gap (a
/// request can list ids in any order, for example the retries after a
/// timeout, which follow the ids).
pub(crate) fn txs(mempool: &Mempool, ids: &[TxId]) -> (Vec<SignedTx>, Vec<TxId>) {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for id in ids.iter().filter(|id| seen.insert(**id)) {
        match (mempool.position(id), mempool.get(id)) {
            (Some(at), Some(tx)) => found.push((at, tx.clone())),
            _ => missing.push(*id),
        }
    }
    found.sort_by_key(|(at, _)| *at);
    (found.into_iter().map(|(_, tx)| tx).collect(), missing)
}

/// Of the blocks asked for (any branch), those the chain holds and the
/// hashes it does not. A hash asked for twice in one request is answered
/// once. Only the index is read: the caller reads each body as its upload
/// allowance lets it, so a request for many old blocks costs no disk reads
/// beyond what is sent.
pub(crate) fn blocks(chain: &NodeChain, hashes: &[BlockHash]) -> (Vec<BlockHash>, Vec<BlockHash>) {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for hash in hashes.iter().filter(|h| seen.insert(**h)) {
        if chain.contains(hash) {
            found.push(*hash);
        } else {
            missing.push(*hash);
        }
    }
    (found, missing)
}

/// A best-chain block that an answer must include but the store cannot
/// give back (it is damaged: the archive has logged it).
#[derive(Debug, thiserror::Error)]
#[error("block {hash} at height {height} is damaged in this node's store; sync from another peer")]
pub(crate) struct Unreadable {
    /// The block.
    pub hash: BlockHash,
    /// Its height.
    pub height: u64,
}

/// The answer to `GetSync`: best-chain blocks after the first locator hash
/// on our best chain (after genesis if none is), up to `stop`, at most
/// [`MAX_SYNC_BLOCKS`] and about `budget` bytes (at least one block), and
/// whether more follow.
///
/// # Errors
///
/// [`Unreadable`] if a block the answer would include cannot be read back:
/// an answer that stopped before it would tell the peer a chain that ends
/// there.
pub(crate) fn sync(
    chain: &NodeChain,
    locator: &[BlockHash],
    stop: BlockHash,
    budget: usize,
) -> Result<(Vec<Block<Tx>>, bool), Unreadable> {
    let start = fork_point(chain, locator) + 1;
    let mut blocks = Vec::new();
    let mut size = 0usize;
    let mut height = start;
    while blocks.len() < MAX_SYNC_BLOCKS {
        let Some(hash) = chain.hash_at_height(height) else {
            break;
        };
        let block = match chain.try_block(&hash) {
            Ok(Some(block)) => block,
            _ => return Err(Unreadable { hash, height }),
        };
        size = size.saturating_add(block.size() + 16);
        if size > budget && !blocks.is_empty() {
            break;
        }
        blocks.push((*block).clone());
        height += 1;
        if hash == stop {
            break;
        }
    }
    let more = height <= chain.height() && blocks.last().is_none_or(|b| b.hash() != stop);
    Ok((blocks, more))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::atomic::AtomicBool;

    use chain_core::miner::{MineOutcome, Miner};
    use escrow::{Amount, Genesis, Payload, dev};

    use super::*;

    /// A dev chain of `n` coinbase-only blocks.
    fn chain(n: u64) -> NodeChain {
        let genesis = Genesis::dev();
        let mut chain = genesis.chain().unwrap();
        let mut now = genesis.timestamp_ms;
        for height in 1..=n {
            now += 1_000;
            let transactions = vec![Tx::Coinbase {
                to: dev::address("eve").unwrap(),
                height,
            }];
            let template = chain.template(&transactions, now);
            let MineOutcome::Found(header) = Miner::new(1)
                .mine(&template, &AtomicBool::new(false))
                .unwrap()
            else {
                panic!("mining stopped");
            };
            chain
                .insert(
                    Block {
                        header,
                        transactions,
                    },
                    now,
                )
                .unwrap();
        }
        chain
    }

    #[test]
    fn sync_starts_after_the_locator_and_stops_at_stop_or_the_budget() {
        let c = chain(6);
        let best = c.best_chain().to_vec();
        // From genesis (a locator of just genesis).
        let (blocks, more) = sync(&c, &best[..1], BlockHash::ZERO, usize::MAX).unwrap();
        assert_eq!(blocks.len(), 6);
        assert!(!more);
        // From height 2, stopping at height 4.
        let (blocks, more) = sync(
            &c,
            &[BlockHash::from_bytes([9; 32]), best[2]],
            best[4],
            usize::MAX,
        )
        .unwrap();
        let heights: Vec<u64> = blocks.iter().map(|b| b.header.height).collect();
        assert_eq!(heights, vec![3, 4]);
        assert!(!more, "the stop hash was reached");
        // A budget of one byte still sends one block, and says more follow.
        let (blocks, more) = sync(&c, &best[..1], BlockHash::ZERO, 1).unwrap();
        assert_eq!(blocks.len(), 1);
        assert!(more);
        // A locator we do not know: from genesis.
        let (blocks, _) = sync(
            &c,
            &[BlockHash::from_bytes([7; 32])],
            BlockHash::ZERO,
            usize::MAX,
        )
        .unwrap();
        assert_eq!(blocks.first().map(|b| b.header.height), Some(1));
        // Already at the tip: nothing, and nothing more.
        let (blocks, more) = sync(&c, &best[6..], BlockHash::ZERO, usize::MAX).unwrap();
        assert!(blocks.is_empty());
        assert!(!more);
    }

    #[test]
    fn blocks_and_txs_split_found_from_missing() {
        let c = chain(2);
        let best = c.best_chain().to_vec();
        let unknown = BlockHash::from_bytes([1; 32]);
        let (found, missing) = blocks(&c, &[best[1], unknown, best[2], best[1], unknown]);
        assert_eq!(found, vec![best[1], best[2]]);
        assert_eq!(missing, vec![unknown]);

        let ledger = c.state();
        let mut pool = Mempool::new(ledger, c.height() + 1, 100, 10);
        let tx = SignedTx::sign(
            &dev::keypair("alice").unwrap(),
            0,
            escrow::Amount::new(1),
            ledger.network(),
            Payload::Transfer {
                to: dev::address("bob").unwrap(),
                amount: Amount::new(3),
            },
        );
        let id = pool.add(tx.clone(), None).unwrap();
        let other = TxId::from_bytes([2; 32]);
        let (found, missing) = txs(&pool, &[other, id]);
        assert_eq!(found, vec![tx]);
        assert_eq!(missing, vec![other]);
    }

    #[test]
    fn transactions_asked_in_any_order_come_in_the_order_they_apply() {
        let c = chain(1);
        let ledger = c.state();
        let mut pool = Mempool::new(ledger, c.height() + 1, 100, 100);
        let mut ids = Vec::new();
        for nonce in 0..12 {
            let tx = SignedTx::sign(
                &dev::keypair("alice").unwrap(),
                nonce,
                escrow::Amount::new(1),
                ledger.network(),
                Payload::Transfer {
                    to: dev::address("bob").unwrap(),
                    amount: Amount::new(1),
                },
            );
            ids.push(pool.add(tx, None).unwrap());
        }
        // Asked in the ids' order (as retries after a timeout are), or
        // backwards: served by nonce, so a peer can admit them one by one.
        let mut by_id = ids.clone();
        by_id.sort();
        for asked in [by_id, ids.iter().rev().copied().collect()] {
            let (found, missing) = txs(&pool, &asked);
            assert!(missing.is_empty());
            let nonces: Vec<u64> = found.iter().map(|t| t.body.nonce).collect();
            assert_eq!(nonces, (0..12).collect::<Vec<_>>());
        }
    }
}

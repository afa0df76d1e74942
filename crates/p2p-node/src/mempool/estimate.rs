//! Fee estimation ([`Mempool::estimate`]) and the pool's fee-rate
//! histogram ([`Mempool::fee_histogram`]).
//!
//! An estimate for confirmation within `N` blocks is the highest of three
//! rates (`docs/API.md`, "GET /fees/estimate", states it for clients):
//!
//! 1. the pool's minimum fee rate now (below it, no node takes the
//!    transaction);
//! 2. from the pool: the rate that puts a transaction among the bytes the
//!    next `N` blocks can carry, were no better transaction to arrive (the
//!    pending transactions by fee rate, highest first, until `N` blocks'
//!    worth of bytes; the rate of the last one that fits, plus the
//!    incremental rate, if the pool holds more than that; else nothing);
//! 3. from recent blocks: among the last [`RECENT_BLOCKS`] blocks of the
//!    best chain, those that were nearly full ([`FULL_SHARE`] of their
//!    byte or transaction limit): the median of the lowest fee rate each
//!    of them took. A block that was not full took whatever paid the
//!    minimum, and says nothing.

use chain_core::{Block, ChainParams};
use escrow::{FeeRate, Package, Tx};
use tokio::time::Instant;

use super::Mempool;
use super::policy::FeeFloor;

/// How many recent blocks the estimate reads.
pub const RECENT_BLOCKS: usize = 12;

/// The share of its limits at which a block counts as full.
pub const FULL_SHARE: f64 = 0.9;

/// The most blocks an estimate is asked for.
pub const MAX_TARGET_BLOCKS: u64 = 1_008;

/// An estimate and what it was made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Estimate {
    /// The rate to pay.
    pub fee_rate: FeeRate,
    /// The pool's minimum now.
    pub min_fee_rate: FeeRate,
    /// What the pool alone asks (none: the pool is not that full).
    pub from_pool: Option<FeeRate>,
    /// What recent full blocks ask (none: no recent block was full).
    pub from_blocks: Option<FeeRate>,
}

/// One band of the pool's histogram: the transactions whose own fee rate
/// is from `from` to `to` (inclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Band {
    /// The lowest rate of the band.
    pub from: FeeRate,
    /// The highest.
    pub to: FeeRate,
    /// Transactions in it.
    pub count: usize,
    /// Their bytes.
    pub bytes: usize,
}

impl Mempool {
    /// The fee rate a transaction should pay at `now` to be mined within
    /// `blocks` blocks, from the pool and `recent` (the best chain's last
    /// blocks, newest first), for a chain of `params` (see the module
    /// docs).
    pub fn estimate<'a>(
        &self,
        blocks: u64,
        params: &ChainParams,
        recent: impl IntoIterator<Item = &'a Block<Tx>>,
        now: Instant,
    ) -> Estimate {
        let pool = Pool {
            floor: self.fee_floor(),
            bytes: self.bytes(),
            packages: self.meta.iter().map(|m| m.package),
        };
        pool.estimate(blocks, params, recent, now)
    }

    /// The pending transactions by own fee rate, in bands that double:
    /// 0, 1, 2–3, 4–7, … coins per kB; only bands that hold some.
    pub fn fee_histogram(&self) -> Vec<Band> {
        histogram(self.meta.iter().map(|m| m.package))
    }
}

/// What an estimate reads of a pool: the live one's, or a snapshot's
/// ([`super::PoolView`]), so that the API answers without the core.
pub struct Pool<I> {
    /// What the pool's minimum fee rate is made of.
    pub floor: FeeFloor,
    /// The bytes of the pending transactions.
    pub bytes: usize,
    /// Each pending transaction's fee and size.
    pub packages: I,
}

impl<I: Iterator<Item = Package>> Pool<I> {
    /// See [`Mempool::estimate`].
    pub fn estimate<'a>(
        self,
        blocks: u64,
        params: &ChainParams,
        recent: impl IntoIterator<Item = &'a Block<Tx>>,
        now: Instant,
    ) -> Estimate {
        let min_fee_rate = self.floor.at(now);
        let room = usize::try_from(blocks)
            .unwrap_or(usize::MAX)
            .saturating_mul(params.max_block_bytes);
        let incremental = self.floor.incremental;
        let from_pool =
            rate_beyond(self.packages, self.bytes, room).map(|r| r.saturating_add(incremental));
        let mut lows: Vec<FeeRate> = recent
            .into_iter()
            .take(RECENT_BLOCKS)
            .filter_map(|b| lowest_if_full(b, params))
            .collect();
        lows.sort_unstable();
        let from_blocks = lows.get(lows.len() / 2).copied();
        let fee_rate = min_fee_rate
            .max(from_pool.unwrap_or(FeeRate::ZERO))
            .max(from_blocks.unwrap_or(FeeRate::ZERO));
        Estimate {
            fee_rate,
            min_fee_rate,
            from_pool,
            from_blocks,
        }
    }
}

/// The own fee rate of the last pending transaction that fits `room`
/// bytes when the pool is taken by fee rate, highest first; `None` if
/// the whole pool fits.
fn rate_beyond(
    packages: impl Iterator<Item = Package>,
    bytes: usize,
    room: usize,
) -> Option<FeeRate> {
    if bytes <= room {
        return None;
    }
    let mut by_rate: Vec<Package> = packages.collect();
    by_rate.sort_unstable_by(|a, b| b.cmp_rate(a));
    let mut used = 0usize;
    let mut last = None;
    for p in by_rate {
        used = used.saturating_add(usize::try_from(p.size).unwrap_or(usize::MAX));
        if used > room {
            break;
        }
        last = Some(p.rate());
    }
    last.or(Some(FeeRate::ZERO))
}

/// The pending transactions of `packages` by own fee rate, in bands that
/// double: 0, 1, 2–3, 4–7, … coins per kB; only bands that hold some.
pub fn histogram(packages: impl Iterator<Item = Package>) -> Vec<Band> {
    let mut bands: Vec<Band> = Vec::new();
    for package in packages {
        let rate = package.rate().get();
        let (from, to) = match rate {
            0 => (0, 0),
            r => {
                let low = 1u64 << r.ilog2();
                (low, low.saturating_mul(2).saturating_sub(1).max(low))
            }
        };
        let bytes = usize::try_from(package.size).unwrap_or(usize::MAX);
        match bands.iter_mut().find(|b| b.from.get() == from) {
            Some(b) => {
                b.count += 1;
                b.bytes = b.bytes.saturating_add(bytes);
            }
            None => bands.push(Band {
                from: FeeRate::per_kb(from),
                to: FeeRate::per_kb(to),
                count: 1,
                bytes,
            }),
        }
    }
    bands.sort_unstable_by_key(|b| b.from);
    bands
}

/// The lowest own fee rate among `block`'s signed transactions, if the
/// block was full ([`FULL_SHARE`] of its bytes or transactions).
fn lowest_if_full(block: &Block<Tx>, params: &ChainParams) -> Option<FeeRate> {
    let signed = block.transactions.iter().filter_map(|t| match t {
        Tx::Signed(s) => Some(s),
        _ => None,
    });
    let (mut count, mut bytes, mut lowest) = (0usize, 0usize, None::<FeeRate>);
    for s in signed {
        let p = s.package();
        count += 1;
        bytes = bytes.saturating_add(usize::try_from(p.size).unwrap_or(usize::MAX));
        lowest = Some(lowest.map_or(p.rate(), |l| l.min(p.rate())));
    }
    let full = bytes as f64 >= FULL_SHARE * params.max_block_bytes as f64
        || count as f64 >= FULL_SHARE * params.max_block_txs as f64;
    if full { lowest } else { None }
}

#[cfg(test)]
#[path = "estimate_tests.rs"]
mod tests;

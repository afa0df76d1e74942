//! Choosing a block's transactions by fee rate ([`Mempool::select`]).
//!
//! When the whole pool fits the block, the block takes it all in the
//! pool's order (each transaction valid after those before it): every fee
//! is collected whatever the order, so there is nothing to choose. Else:
//! A sender's transactions must go in nonce order, so what competes for a
//! block's room is a *prefix* of each sender's pending chain: the one with
//! the highest fee rate (fees over bytes) among the prefixes of what is
//! not yet chosen, as Bitcoin Core's miner chooses by ancestor fee rate. The
//! best prefix of all goes in, that sender's next best prefix competes,
//! and so on until the block is full. Each chosen transaction is applied
//! to a copy of the tip's state first: one that depends on a transaction
//! not chosen yet (a payment from another sender's pending transfer)
//! waits, and competes again once something else went in.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use escrow::{Address, Ledger, Package, PendingState, SignedTx};

use super::Mempool;

/// A sender's best prefix of what is not yet chosen, as it competes.
struct Candidate {
    /// Its fees and bytes (transactions' sizes, without their places in
    /// the block).
    package: Package,
    /// How many transactions it holds.
    len: usize,
    /// The chain's index in the pool (the earlier chain wins a tie).
    chain: usize,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Candidate {}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.package
            .cmp_rate(&other.package)
            .then_with(|| other.chain.cmp(&self.chain))
    }
}

/// A sender's pending chain: its transactions (positions in the pool, in
/// nonce order) and how many are chosen or given up.
struct Chain {
    positions: Vec<usize>,
    next: usize,
}

impl Mempool {
    /// The pending transactions a block on the tip (`ledger`, at
    /// `next_height`) should carry, at most `max_txs` of them and
    /// `max_bytes` of their bytes (each counted as [`SignedTx::size`]
    /// plus one for its place in the block): by fee rate, each sender's
    /// nonces in order, each one valid after those before it; the whole
    /// pool in its order when it all fits.
    pub fn select(
        &self,
        ledger: &Ledger,
        next_height: u64,
        max_txs: usize,
        max_bytes: usize,
    ) -> Vec<SignedTx> {
        // When the whole pool fits, every transaction goes in whatever the
        // order, and the pool's own order is valid: no choosing to do.
        let in_block = self.bytes().saturating_add(self.len());
        if self.len() <= max_txs && in_block <= max_bytes {
            return self.txs.clone();
        }
        let mut chains: Vec<Chain> = Vec::new();
        let mut by_sender: HashMap<Address, usize> = HashMap::new();
        for (i, m) in self.meta.iter().enumerate() {
            let c = *by_sender.entry(m.sender).or_insert_with(|| {
                chains.push(Chain {
                    positions: Vec::new(),
                    next: 0,
                });
                chains.len() - 1
            });
            if let Some(chain) = chains.get_mut(c) {
                chain.positions.push(i);
            }
        }
        let room = Room {
            txs: max_txs,
            bytes: max_bytes,
        };
        let mut heap: BinaryHeap<Candidate> = (0..chains.len())
            .filter_map(|c| self.best_prefix(&chains, c, room))
            .collect();
        let mut state = PendingState::new(ledger, next_height);
        let mut chosen: Vec<SignedTx> = Vec::new();
        let mut bytes = 0usize;
        let mut waiting: Vec<usize> = Vec::new();
        let mut progress = false;
        loop {
            let Some(best) = heap.pop() else {
                // What waited for another sender may apply now.
                if !progress || waiting.is_empty() {
                    break;
                }
                progress = false;
                let left = room.less(chosen.len(), bytes);
                heap.extend(
                    waiting
                        .drain(..)
                        .filter_map(|c| self.best_prefix(&chains, c, left)),
                );
                continue;
            };
            // Room shrank since it was judged: judged again within what is
            // left (a package goes in whole or competes as a smaller one).
            let left = room.less(chosen.len(), bytes);
            if best.len > left.txs
                || usize::try_from(best.package.size + best.len as u128).unwrap_or(usize::MAX)
                    > left.bytes
            {
                heap.extend(self.best_prefix(&chains, best.chain, left));
                continue;
            }
            let Some(chain) = chains.get_mut(best.chain) else {
                continue;
            };
            let mut outcome = Outcome::Done;
            for _ in 0..best.len {
                let (Some(&i), true) = (chain.positions.get(chain.next), chosen.len() < max_txs)
                else {
                    outcome = Outcome::Full;
                    break;
                };
                let (Some(tx), Some(m)) = (self.txs.get(i), self.meta.get(i)) else {
                    outcome = Outcome::Full;
                    break;
                };
                let size = usize::try_from(m.package.size).unwrap_or(usize::MAX);
                if bytes.saturating_add(size + 1) > max_bytes {
                    outcome = Outcome::Full;
                    break;
                }
                if state.admit_verified(tx).is_err() {
                    outcome = Outcome::Waits;
                    break;
                }
                bytes += size + 1;
                chosen.push(tx.clone());
                chain.next += 1;
                progress = true;
            }
            match outcome {
                // The rest of this sender's chain competes again.
                Outcome::Done => {
                    let left = room.less(chosen.len(), bytes);
                    heap.extend(self.best_prefix(&chains, best.chain, left));
                }
                Outcome::Waits => waiting.push(best.chain),
                // A transaction that does not fit ends its sender's
                // chain here; smaller ones of others may still fit.
                Outcome::Full => {}
            }
            if chosen.len() >= max_txs {
                break;
            }
        }
        chosen
    }

    /// The best-paying prefix of chain `c`'s transactions not yet chosen
    /// that fits `room`.
    fn best_prefix(&self, chains: &[Chain], c: usize, room: Room) -> Option<Candidate> {
        let chain = chains.get(c)?;
        let mut sum = Package::default();
        let mut best: Option<(Package, usize)> = None;
        for (n, &i) in chain.positions.get(chain.next..)?.iter().enumerate() {
            sum = sum.plus(self.meta.get(i)?.package);
            // Each transaction takes one byte more in a block (its tag).
            let in_block = usize::try_from(sum.size).unwrap_or(usize::MAX) + n + 1;
            if n + 1 > room.txs || in_block > room.bytes {
                break;
            }
            if best.is_none_or(|(b, _)| sum.cmp_rate(&b) == Ordering::Greater) {
                best = Some((sum, n + 1));
            }
        }
        let (package, len) = best?;
        Some(Candidate {
            package,
            len,
            chain: c,
        })
    }
}

/// What a block still has room for.
#[derive(Clone, Copy)]
struct Room {
    txs: usize,
    bytes: usize,
}

impl Room {
    /// The room left once `txs` transactions of `bytes` went in.
    fn less(self, txs: usize, bytes: usize) -> Room {
        Room {
            txs: self.txs.saturating_sub(txs),
            bytes: self.bytes.saturating_sub(bytes),
        }
    }
}

/// How taking a candidate's prefix ended.
enum Outcome {
    /// All of it went in.
    Done,
    /// One of it does not apply yet: it needs another sender's.
    Waits,
    /// The block is full for the next one.
    Full,
}

#[cfg(test)]
#[path = "select_tests.rs"]
mod tests;

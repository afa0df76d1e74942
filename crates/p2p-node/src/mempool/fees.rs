//! The pool's fee policy: the fee rate a transaction must pay to enter, the
//! eviction of the cheapest packages when the pool is full, the pool's
//! minimum fee rate that rises with each eviction and decays back, and
//! replacement by fee. `docs/API.md` ("Fees and the mempool") states the
//! rules; this module is their one implementation.
//!
//! # Packages
//!
//! A sender's pending transactions apply in nonce order, so a later one is
//! worth nothing to a miner without the earlier ones: the pool judges a
//! sender's *chain* of pending transactions together, as Bitcoin judges a
//! transaction with its ancestors. When the pool is full, the chain with
//! the lowest fee rate (its fees over its bytes) loses its last
//! transaction, and again, until the newcomer fits; a newcomer whose own
//! chain would be the one to lose is refused instead (`fee_too_low`).

use std::collections::HashMap;

use chain_core::TxId;
use escrow::{
    Address, AdmissionError, FeeRate, LedgerError, Package, PendingState, SigCheck, SignedTx,
};

use super::policy::{FeeFloor, FeePolicy};
use tokio::time::Instant;

use super::Mempool;
use super::outcome::MempoolError;

impl Mempool {
    /// The pool with this fee policy and byte bound (the defaults
    /// otherwise).
    pub fn with_policy(mut self, policy: FeePolicy) -> Mempool {
        self.policy = policy;
        self
    }

    /// Sets the fee policy and the byte bound.
    pub fn set_policy(&mut self, policy: FeePolicy) {
        self.policy = policy;
    }

    /// The fee policy.
    pub fn policy(&self) -> FeePolicy {
        self.policy
    }

    /// The bytes of the pending transactions.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// How full the pool is, 0 to 1: the larger of its count's and its
    /// bytes' share of their bounds.
    fn usage(&self) -> f64 {
        let count = self.txs.len() as f64 / self.max.max(1) as f64;
        let bytes = self.bytes as f64 / self.policy.max_bytes.max(1) as f64;
        count.max(bytes)
    }

    /// The fee rate a new transaction must pay at `now`: the minimum relay
    /// rate, or the raised minimum after evictions if higher.
    pub fn min_fee_rate(&self, now: Instant) -> FeeRate {
        self.fee_floor().at(now)
    }

    /// What the pool's minimum fee rate is made of, to be read at any
    /// time ([`FeeFloor::at`]).
    pub fn fee_floor(&self) -> FeeFloor {
        FeeFloor {
            min_relay: self.policy.min_relay,
            incremental: self.policy.incremental,
            rolling: self.rolling,
            usage: self.usage(),
        }
    }

    /// Refuses `tx` if its own fee rate is below the pool's minimum at
    /// `now`.
    pub(super) fn check_fee(&self, tx: &SignedTx, now: Instant) -> Result<(), MempoolError> {
        let min = self.min_fee_rate(now);
        let package = tx.package();
        if package.pays(min) {
            Ok(())
        } else {
            Err(MempoolError::FeeTooLow {
                rate: package.rate(),
                min,
                needed: min.fee_for(tx.size()),
            })
        }
    }

    /// Which pending transactions (positions, in eviction order) must
    /// leave so that `newcomer` from `sender` fits the pool's bounds, and
    /// the highest chain rate among them. The newcomer competes with its
    /// sender's pending ones as one chain. Refused (`fee_too_low`) if that
    /// chain would be the cheapest.
    pub(super) fn victims_for(
        &self,
        sender: Address,
        newcomer: Package,
    ) -> Result<(Vec<usize>, FeeRate), MempoolError> {
        let size = usize::try_from(newcomer.size).unwrap_or(usize::MAX);
        let mut count_over = (self.txs.len() + 1).saturating_sub(self.max);
        let mut bytes_over =
            (self.bytes.saturating_add(size)).saturating_sub(self.policy.max_bytes);
        if count_over == 0 && bytes_over == 0 {
            return Ok((Vec::new(), FeeRate::ZERO));
        }
        // The common refusal first, without walking the pool by sender:
        // the newcomer's chain pays no more than the cheapest other one.
        let own = self
            .meta
            .iter()
            .filter(|m| m.sender == sender)
            .fold(newcomer, |p, m| p.plus(m.package));
        let cheapest = self.cheapest_chains();
        if let Some((_, other)) = cheapest.iter().flatten().find(|(a, _)| *a != sender)
            && own.cmp_rate(other) != std::cmp::Ordering::Greater
        {
            let min = other.rate().saturating_add(self.policy.incremental);
            return Err(MempoolError::FeeTooLow {
                rate: newcomer.rate(),
                min,
                needed: min.fee_for(size),
            });
        }
        // Each sender's chain: its package and its positions, nonce order.
        let mut chains: HashMap<Address, (Package, Vec<usize>)> = HashMap::new();
        for (i, m) in self.meta.iter().enumerate() {
            let chain = chains.entry(m.sender).or_default();
            chain.0 = chain.0.plus(m.package);
            chain.1.push(i);
        }
        let own = chains.entry(sender).or_default();
        own.0 = own.0.plus(newcomer);
        own.1.push(NEWCOMER);
        let mut victims = Vec::new();
        let mut highest = FeeRate::ZERO;
        while count_over > 0 || bytes_over > 0 {
            // The cheapest chain; on a tie the newcomer's loses, then the
            // smaller address (an order every node agrees on).
            let cheapest = chains
                .iter()
                .filter(|(_, (_, positions))| !positions.is_empty())
                .min_by(|(a, (pa, _)), (b, (pb, _))| {
                    pa.cmp_rate(pb)
                        .then_with(|| (**b == sender).cmp(&(**a == sender)))
                        .then_with(|| a.cmp(b))
                })
                .map(|(address, _)| *address);
            let Some(address) = cheapest else {
                break;
            };
            let Some((chain, positions)) = chains.get_mut(&address) else {
                break;
            };
            let rate = chain.rate();
            let Some(tail) = positions.pop() else {
                break;
            };
            if tail == NEWCOMER {
                let min = rate.saturating_add(self.policy.incremental);
                return Err(MempoolError::FeeTooLow {
                    rate: newcomer.rate(),
                    min,
                    needed: min.fee_for(size),
                });
            }
            let Some(m) = self.meta.get(tail) else {
                break;
            };
            *chain = chain.minus(m.package);
            count_over = count_over.saturating_sub(1);
            bytes_over = bytes_over.saturating_sub(usize::try_from(m.package.size).unwrap_or(0));
            highest = highest.max(rate);
            victims.push(tail);
        }
        Ok((victims, highest))
    }

    /// The two senders whose pending chains pay the lowest fee rates, with
    /// their packages, cheapest first (ties to the smaller address):
    /// computed once per change of the pool, so that a flood refused by a
    /// full pool costs a pass over its transactions, not a map of them.
    fn cheapest_chains(&self) -> Cheapest {
        if let Some((changes, two)) = self.cheapest.get()
            && changes == self.changes
        {
            return two;
        }
        let mut chains: HashMap<Address, Package> = HashMap::new();
        for m in &self.meta {
            let chain = chains.entry(m.sender).or_default();
            *chain = chain.plus(m.package);
        }
        let mut two: Cheapest = [None, None];
        let before = |(a, pa): &(Address, Package), (b, pb): &(Address, Package)| {
            pa.cmp_rate(pb).then_with(|| a.cmp(b)) == std::cmp::Ordering::Less
        };
        for chain in chains {
            match two {
                [Some(first), _] if before(&chain, &first) => two = [Some(chain), Some(first)],
                [Some(_), Some(second)] if !before(&chain, &second) => {}
                [Some(first), _] => two = [Some(first), Some(chain)],
                [None, _] => two = [Some(chain), None],
            }
        }
        self.cheapest.set(Some((self.changes, two)));
        two
    }

    /// Evicts the pending transactions at `positions` (remembered as
    /// dropped, with why), and whatever no longer applies without them,
    /// and raises the pool's minimum fee rate above `rate`, at `now`.
    pub(super) fn evict(&mut self, positions: &[usize], rate: FeeRate, now: Instant) {
        let evicted: Vec<(TxId, SignedTx)> = positions
            .iter()
            .filter_map(|&i| Some((self.meta.get(i)?.id, self.txs.get(i)?.clone())))
            .collect();
        let gone: std::collections::HashSet<TxId> = evicted.iter().map(|(id, _)| *id).collect();
        let keep: Vec<SignedTx> = self
            .txs
            .iter()
            .zip(&self.meta)
            .filter(|(_, m)| !gone.contains(&m.id))
            .map(|(tx, _)| tx.clone())
            .collect();
        self.txs = keep;
        let base = self.base.clone();
        let next_height = self.state.next_height();
        let dropped = self.rebuild(&base, next_height, Vec::new(), |_| false);
        let reason = format!(
            "evicted: the mempool was full, and its fee rate ({rate} for its sender's chain) was the lowest"
        );
        for (id, tx) in evicted {
            self.remember_dropped(id, tx, reason.clone());
        }
        tracing::debug!(evicted = gone.len(), also_dropped = dropped.len(), %rate, "mempool full: evicted the cheapest");
        let raised = rate.saturating_add(self.policy.incremental);
        self.rolling
            .raise(raised, now, self.usage(), self.policy.incremental);
    }

    /// Replaces the pending transaction at `old` (same sender and nonce as
    /// `tx`) by `tx`, if `tx` pays for everything it makes the pool drop:
    /// its fee must be at least the replaced one's, plus the fees of every
    /// pending transaction that no longer applies after the replacement
    /// (its sender's later ones, or another sender's that spent what it
    /// moved), plus the incremental rate for its own bytes. A replacement
    /// larger than what it replaces may not take the pool past its byte
    /// bound (`mempool_full`).
    pub(super) fn replace(
        &mut self,
        old: usize,
        tx: SignedTx,
        check: Option<SigCheck>,
    ) -> Result<TxId, MempoolError> {
        let (Some(old_meta), Some(old_tx)) =
            (self.meta.get(old).cloned(), self.txs.get(old).cloned())
        else {
            return Err(MempoolError::Duplicate(tx.id()));
        };
        let id = tx.id();
        let size = tx.size();
        // Cheap before costly: the fee must at least beat the replaced
        // one's by the incremental rate before the pool is walked.
        let floor = old_meta
            .package
            .fee
            .saturating_add(u128::from(self.policy.incremental.fee_for(size).get()));
        let too_low = |needed: u128| MempoolError::ReplacementTooLow {
            replaces: old_meta.id,
            needed: escrow::Amount::new(u64::try_from(needed).unwrap_or(u64::MAX)),
        };
        if u128::from(tx.fee().get()) < floor {
            return Err(too_low(floor));
        }
        // The signature, before any walk of the pool.
        let check = match check {
            Some(check) => check,
            None => match self.state.ledger().sig_cache() {
                Some(cache) => cache.precheck(&tx),
                None => {
                    tx.check_signature()
                        .map_err(|reason| bad_signature(id, reason))?;
                    escrow::SigCache::new(1).precheck(&tx)
                }
            },
        };
        check
            .verdict()
            .map_err(|reason| bad_signature(id, reason))?;
        let mut scratch = PendingState::new(&self.base, self.state.next_height());
        let mut kept = Vec::with_capacity(self.txs.len());
        let mut lost = Vec::new();
        let mut lost_fees: u128 = 0;
        for (i, (p, m)) in self.txs.iter().zip(&self.meta).enumerate() {
            if i == old {
                scratch.admit_prechecked(&tx, check.clone())?;
                kept.push(tx.clone());
                continue;
            }
            match scratch.admit_verified(p) {
                Ok(()) => kept.push(p.clone()),
                Err(e) => {
                    lost_fees += m.package.fee;
                    lost.push((m.id, p.clone(), MempoolError::from(e).to_string()));
                }
            }
        }
        let needed = floor + lost_fees;
        if u128::from(tx.fee().get()) < needed {
            return Err(too_low(needed));
        }
        // A larger replacement may not take the pool past its byte bound
        // (replacements would otherwise grow it without an eviction).
        let lost_bytes: usize = lost.iter().map(|(_, t, _)| t.size()).sum();
        let size_old = usize::try_from(old_meta.package.size).unwrap_or(0);
        let after = (self.bytes + size).saturating_sub(size_old + lost_bytes);
        if size > size_old && after > self.policy.max_bytes {
            return Err(MempoolError::Full { max: self.max });
        }
        self.txs = kept;
        let base = self.base.clone();
        let next_height = self.state.next_height();
        self.rebuild(&base, next_height, Vec::new(), |_| false);
        self.remember_dropped(
            old_meta.id,
            old_tx,
            format!("replaced by {id}, which pays more"),
        );
        for (lost_id, lost_tx, why) in lost {
            self.remember_dropped(lost_id, lost_tx, why);
        }
        Ok(id)
    }

    /// The position of `sender`'s pending transaction of `nonce`, if any.
    pub(super) fn position_of_nonce(&self, sender: &Address, nonce: u64) -> Option<usize> {
        if nonce >= self.pending_ledger().nonce(sender) {
            return None;
        }
        self.meta
            .iter()
            .position(|m| m.sender == *sender && m.nonce == nonce)
    }
}

/// The two cheapest senders' chains, cheapest first.
pub(super) type Cheapest = [Option<(Address, Package)>; 2];

/// The newcomer's place among a chain's positions in
/// [`Mempool::victims_for`].
const NEWCOMER: usize = usize::MAX;

fn bad_signature(tx: TxId, reason: escrow::SignatureError) -> MempoolError {
    MempoolError::Invalid(AdmissionError::Invalid(LedgerError::BadSignature {
        tx,
        reason,
    }))
}

#[cfg(test)]
#[path = "fees_tests.rs"]
mod tests;

//! Fees and fee rates.
//!
//! Every signed transaction names a fee ([`crate::TxBody::fee`]): the
//! sender pays it, on top of what the payload moves, to the miner of the
//! block that includes the transaction (the coinbase's address). Fees move
//! coins; they never create or destroy them (the ledger's supply invariant
//! holds with them).
//!
//! A *fee rate* is a fee per 1,000 bytes of the transaction's canonical
//! encoding ([`crate::SignedTx::size`]): [`FeeRate`], in coins per kB.
//! Comparisons between transactions and packages are exact: [`Package`]
//! keeps the fee and the bytes and compares by cross-multiplication, so
//! no rounding decides an order.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::amount::Amount;

/// A fee per 1,000 bytes, in coins.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct FeeRate(u64);

impl FeeRate {
    /// No fee.
    pub const ZERO: FeeRate = FeeRate(0);

    /// `coins` per 1,000 bytes.
    pub const fn per_kb(coins: u64) -> FeeRate {
        FeeRate(coins)
    }

    /// Coins per 1,000 bytes.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The smallest fee that pays this rate for `size` bytes: the rate
    /// times the size, divided by 1,000 and rounded up (saturating).
    pub fn fee_for(self, size: usize) -> Amount {
        let fee = (u128::from(self.0) * size as u128).div_ceil(1000);
        Amount::new(u64::try_from(fee).unwrap_or(u64::MAX))
    }

    /// The rate `fee` pays for `size` bytes, rounded down (the largest
    /// rate that `fee` meets: `FeeRate::of(f, s).fee_for(s) <= f`).
    pub fn of(fee: Amount, size: usize) -> FeeRate {
        if size == 0 {
            return FeeRate(u64::MAX);
        }
        let rate = u128::from(fee.get()) * 1000 / size as u128;
        FeeRate(u64::try_from(rate).unwrap_or(u64::MAX))
    }

    /// The sum, saturating.
    pub fn saturating_add(self, other: FeeRate) -> FeeRate {
        FeeRate(self.0.saturating_add(other.0))
    }
}

impl fmt::Display for FeeRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/kB", self.0)
    }
}

/// Fees and bytes of one or more transactions taken together (a sender's
/// chain of nonces, a block): ordered by fee rate, exactly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Package {
    /// The fees, summed.
    pub fee: u128,
    /// The bytes, summed.
    pub size: u128,
}

impl Package {
    /// One transaction's fee and size.
    pub fn of(fee: Amount, size: usize) -> Package {
        Package {
            fee: u128::from(fee.get()),
            size: size as u128,
        }
    }

    /// Both together.
    pub fn plus(self, other: Package) -> Package {
        Package {
            fee: self.fee + other.fee,
            size: self.size + other.size,
        }
    }

    /// `self` less `other` (saturating), for a package's part.
    pub fn minus(self, other: Package) -> Package {
        Package {
            fee: self.fee.saturating_sub(other.fee),
            size: self.size.saturating_sub(other.size),
        }
    }

    /// The rate, rounded down.
    pub fn rate(self) -> FeeRate {
        if self.size == 0 {
            return FeeRate(u64::MAX);
        }
        FeeRate(u64::try_from(self.fee * 1000 / self.size).unwrap_or(u64::MAX))
    }

    /// Whether it pays at least `rate` for its bytes.
    pub fn pays(self, rate: FeeRate) -> bool {
        self.fee * 1000 >= u128::from(rate.get()) * self.size
    }

    /// Compares the two packages' fee rates exactly (an empty package's
    /// rate is infinite).
    pub fn cmp_rate(&self, other: &Package) -> Ordering {
        match (self.size, other.size) {
            (0, 0) => Ordering::Equal,
            (0, _) => Ordering::Greater,
            (_, 0) => Ordering::Less,
            _ => (self.fee * other.size).cmp(&(other.fee * self.size)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_round_so_that_the_fee_for_a_rate_pays_it() {
        let rate = FeeRate::per_kb(1);
        assert_eq!(rate.fee_for(1), Amount::new(1));
        assert_eq!(rate.fee_for(1000), Amount::new(1));
        assert_eq!(rate.fee_for(1001), Amount::new(2));
        assert_eq!(FeeRate::ZERO.fee_for(500), Amount::ZERO);
        for size in [1, 170, 999, 1000, 65_000] {
            for per_kb in [0, 1, 7, 1000, 123_456] {
                let rate = FeeRate::per_kb(per_kb);
                let fee = rate.fee_for(size);
                assert!(Package::of(fee, size).pays(rate));
                assert!(FeeRate::of(fee, size) >= rate);
                assert!(FeeRate::of(fee, size).fee_for(size) <= fee);
            }
        }
        assert_eq!(
            FeeRate::per_kb(u64::MAX).fee_for(usize::MAX).get(),
            u64::MAX
        );
    }

    #[test]
    fn packages_compare_exactly() {
        let a = Package::of(Amount::new(1), 3); // 333.3.../kB
        let b = Package::of(Amount::new(333), 1000); // 333/kB
        assert_eq!(a.rate(), b.rate().saturating_add(FeeRate::ZERO));
        assert_eq!(a.cmp_rate(&b), Ordering::Greater);
        assert_eq!(a.plus(b).minus(b), a);
        assert_eq!(Package::default().cmp_rate(&a), Ordering::Greater);
    }
}

//! [`Amount`]: a number of coins, with checked arithmetic only.
//!
//! The `u64` inside is private, so no code can add or subtract amounts
//! without going through [`Amount::checked_add`] / [`Amount::checked_sub`]:
//! an overflow is an error, never a wrap.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A number of coins.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Amount(u64);

impl Amount {
    /// No coins.
    pub const ZERO: Amount = Amount(0);

    /// The largest amount.
    pub const MAX: Amount = Amount(u64::MAX);

    /// An amount of `coins`.
    pub const fn new(coins: u64) -> Amount {
        Amount(coins)
    }

    /// The number of coins.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// Whether this is zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// `self + other`, or `None` on overflow.
    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }

    /// `self - other`, or `None` if `other` is larger.
    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        self.0.checked_sub(other.0).map(Amount)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_is_checked() {
        assert_eq!(
            Amount::new(2).checked_add(Amount::new(3)),
            Some(Amount::new(5))
        );
        assert_eq!(Amount::MAX.checked_add(Amount::new(1)), None);
        assert_eq!(Amount::new(2).checked_sub(Amount::new(3)), None);
        assert_eq!(
            Amount::new(3).checked_sub(Amount::new(3)),
            Some(Amount::ZERO)
        );
        assert!(Amount::ZERO.is_zero());
    }
}

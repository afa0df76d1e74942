//! Signed transfers for the pool's unit tests.

#![allow(clippy::unwrap_used)]

use escrow::{Address, Amount, Keypair, Ledger, Payload, SignedTx, dev};

/// `key`'s transfer of `amount` to `to`, paying `fee`.
pub(super) fn pay_from(
    ledger: &Ledger,
    key: &Keypair,
    nonce: u64,
    fee: u64,
    to: Address,
    amount: u64,
) -> SignedTx {
    SignedTx::sign(
        key,
        nonce,
        Amount::new(fee),
        ledger.network(),
        Payload::Transfer {
            to,
            amount: Amount::new(amount),
        },
    )
}

/// Dev account `who`'s transfer of `amount` to `to`, paying `fee`.
pub(super) fn pay_to(
    ledger: &Ledger,
    who: &str,
    nonce: u64,
    fee: u64,
    to: Address,
    amount: u64,
) -> SignedTx {
    pay_from(ledger, &dev::keypair(who).unwrap(), nonce, fee, to, amount)
}

/// Dev account `who`'s transfer of `amount` to dev account `to`.
pub(super) fn pay_fee(
    ledger: &Ledger,
    who: &str,
    nonce: u64,
    fee: u64,
    to: &str,
    amount: u64,
) -> SignedTx {
    pay_to(ledger, who, nonce, fee, dev::address(to).unwrap(), amount)
}

/// Dev account `who`'s transfer of 1 to bob, paying `fee`.
pub(super) fn pay(ledger: &Ledger, who: &str, nonce: u64, fee: u64) -> SignedTx {
    pay_fee(ledger, who, nonce, fee, "bob", 1)
}

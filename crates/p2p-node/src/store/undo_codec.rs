//! The `undo` table's encoding: an undo record written against its block.
//!
//! `escrow::Undo` in postcard names the full 32-byte address of every
//! balance and nonce it restores: four addresses for each transfer, some
//! 146 kB for a block of 1,000 transfers (164 kB). Almost every one of them
//! is an address the block itself names (the coinbase's, a sender's, a
//! recipient's), so the stored record names it by its place in the block's
//! [`addresses`] instead (a varint, one or two bytes), and writes a balance
//! that the record already restored once (the miner's, credited a fee by
//! every transfer) as the difference from the previous value. Decoding
//! needs the block, which is always stored with its undo record. About
//! 25 bytes a transfer.
//!
//! What is encoded is escrow's `Undo` as postcard has it: [`Change`]
//! mirrors `escrow`'s private enum variant for variant (postcard encodes
//! an enum by its variant's index, a newtype by its contents), and the
//! tests check the mirror against escrow's own encoding both ways.

use std::collections::HashMap;

use chain_core::{Block, ChainParams};
use escrow::{Address, Amount, Contract, ContractId, Payload, Tx, Undo};
use serde::{Deserialize, Serialize};

/// One change of an undo record, as escrow serializes it (`Change` in
/// `crates/escrow/src/ledger/mod.rs`): the value before the block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Change {
    Balance(Address, Option<Amount>),
    Nonce(Address, Option<u64>),
    Contract(ContractId, Option<Box<Contract>>),
    Issued(Amount),
    Reward(Amount),
    Params(Option<Box<ChainParams>>),
}

/// One change as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Stored {
    /// A balance of the block's address number `.0`.
    Balance(u32, Amount),
    /// The block's address number `.0` had no balance.
    NoBalance(u32),
    /// A balance of the block's address number `.0` that the record
    /// restored before to `Some(b)`: this one is `b + .1`.
    BalanceAgain(u32, i64),
    /// A nonce of the block's address number `.0`.
    Nonce(u32, u64),
    /// The block's address number `.0` had no nonce.
    NoNonce(u32),
    /// Anything else, as escrow has it.
    Other(Change),
}

/// The addresses `block` names, in order (with repeats): each
/// transaction's coinbase or allocation address, signer, recipient,
/// seller and arbiter.
fn addresses(block: &Block<Tx>) -> Vec<Address> {
    let mut out = Vec::with_capacity(2 * block.transactions.len());
    for tx in &block.transactions {
        match tx {
            Tx::Coinbase { to, .. } | Tx::Allocation { to, .. } => out.push(*to),
            Tx::Signed(s) => {
                out.push(s.sender());
                match &s.body.payload {
                    Payload::Transfer { to, .. } | Payload::TransferMemo { to, .. } => {
                        out.push(*to);
                    }
                    Payload::EscrowCreate {
                        seller, arbiter, ..
                    } => {
                        out.push(*seller);
                        out.push(*arbiter);
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    out
}

/// The stored bytes of `undo`, the record of `block`.
///
/// # Errors
///
/// The record does not encode (it cannot fail for a record escrow made).
pub(crate) fn encode(undo: &Undo, block: &Block<Tx>) -> Result<Vec<u8>, postcard::Error> {
    let changes: Vec<Change> = postcard::from_bytes(&postcard::to_stdvec(undo)?)?;
    let mut place: HashMap<Address, u32> = HashMap::new();
    for (i, address) in addresses(block).into_iter().enumerate() {
        place
            .entry(address)
            .or_insert(u32::try_from(i).unwrap_or(u32::MAX));
    }
    let mut last: HashMap<Address, Amount> = HashMap::new();
    let stored: Vec<Stored> = changes
        .into_iter()
        .map(|change| match change {
            Change::Balance(a, old) => match place.get(&a) {
                Some(&i) => {
                    let again = last.get(&a).zip(old).and_then(|(before, now)| {
                        i64::try_from(i128::from(now.get()) - i128::from(before.get())).ok()
                    });
                    match old {
                        Some(now) => last.insert(a, now),
                        None => last.remove(&a),
                    };
                    match (again, old) {
                        (Some(delta), _) => Stored::BalanceAgain(i, delta),
                        (None, Some(old)) => Stored::Balance(i, old),
                        (None, None) => Stored::NoBalance(i),
                    }
                }
                None => Stored::Other(Change::Balance(a, old)),
            },
            Change::Nonce(a, old) => match (place.get(&a), old) {
                (Some(&i), Some(old)) => Stored::Nonce(i, old),
                (Some(&i), None) => Stored::NoNonce(i),
                (None, _) => Stored::Other(Change::Nonce(a, old)),
            },
            other => Stored::Other(other),
        })
        .collect();
    postcard::to_stdvec(&stored)
}

/// The undo record of `block` from its stored bytes.
///
/// # Errors
///
/// The bytes do not decode, or name an address the block does not have.
pub(crate) fn decode(bytes: &[u8], block: &Block<Tx>) -> Result<Undo, String> {
    let stored: Vec<Stored> = postcard::from_bytes(bytes).map_err(|e| e.to_string())?;
    let named = addresses(block);
    let address = |i: u32| {
        named
            .get(i as usize)
            .copied()
            .ok_or_else(|| format!("it names address {i} of a block that names {}", named.len()))
    };
    let mut last: HashMap<Address, Amount> = HashMap::new();
    let mut changes = Vec::with_capacity(stored.len());
    for change in stored {
        changes.push(match change {
            Stored::Balance(i, old) => {
                let a = address(i)?;
                last.insert(a, old);
                Change::Balance(a, Some(old))
            }
            Stored::NoBalance(i) => {
                let a = address(i)?;
                last.remove(&a);
                Change::Balance(a, None)
            }
            Stored::BalanceAgain(i, delta) => {
                let a = address(i)?;
                let before = last
                    .get(&a)
                    .ok_or_else(|| format!("a balance of address {i} follows none"))?;
                let now = u64::try_from(i128::from(before.get()) + i128::from(delta))
                    .map(Amount::new)
                    .map_err(|_| format!("a balance of address {i} is out of range"))?;
                last.insert(a, now);
                Change::Balance(a, Some(now))
            }
            Stored::Nonce(i, old) => Change::Nonce(address(i)?, Some(old)),
            Stored::NoNonce(i) => Change::Nonce(address(i)?, None),
            Stored::Other(change) => change,
        });
    }
    let bytes = postcard::to_stdvec(&changes).map_err(|e| e.to_string())?;
    postcard::from_bytes(&bytes).map_err(|e| e.to_string())
}

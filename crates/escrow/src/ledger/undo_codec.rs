//! An undo record's compact encoding, written against its block.
//!
//! [`Undo`] in plain postcard names the full 32-byte address of every
//! balance and nonce it restores: four addresses for each transfer, some
//! 146 kB for a block of 1,000 transfers (164 kB). Almost every one of them
//! is an address the block itself names (the coinbase's, a sender's, a
//! recipient's), so this encoding names it by its place in the block's
//! list of addresses (`addresses`) instead (a varint, one or two bytes),
//! and writes a balance that the record already restored once (the
//! miner's, credited a fee by every transfer) as the difference from the
//! previous value. Decoding
//! needs the same block: about 25 bytes a transfer. The node stores undo
//! records this way (beside their block), so the encoding is part of its
//! store format: a change here is a new store format.
//!
//! It lives here, beside `Change`, the type it encodes: `Stored::Other`
//! carries a change as postcard writes `Change` itself (a new kind of
//! change is stored so, with no copy of the enum to fall out of step),
//! and every other variant names the kind it stands for.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{Change, Undo};
use crate::account::Address;
use crate::amount::Amount;
use crate::tx::{Payload, Tx};

/// Why stored bytes are not the undo record of the block given.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UndoDecodeError {
    /// The bytes are not an encoded record.
    #[error("the bytes do not decode: {0}")]
    Malformed(#[from] postcard::Error),
    /// The record ends before the bytes do.
    #[error("{0} bytes follow the record")]
    TrailingBytes(usize),
    /// The record names an address the block does not have.
    #[error("it names address {index} of a block that names {named}")]
    NoSuchAddress {
        /// The place named.
        index: u32,
        /// How many places the block has.
        named: usize,
    },
    /// A balance written as a difference follows no balance of its address.
    #[error("a balance of address {0} is a difference from none")]
    NoEarlierBalance(u32),
    /// A balance written as a difference is not a balance.
    #[error("a balance of address {0} is out of range")]
    BalanceOutOfRange(u32),
}

/// One change as encoded.
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
    /// Any other change, as postcard writes it.
    Other(Change),
}

/// The addresses `block` names, in order (with repeats): each
/// transaction's coinbase or allocation address, signer, recipient,
/// seller and arbiter.
fn addresses(block: &[Tx]) -> Vec<Address> {
    let mut out = Vec::with_capacity(2 * block.len());
    for tx in block {
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
                    Payload::ConfirmDelivery { .. }
                    | Payload::RaiseDispute { .. }
                    | Payload::Resolve { .. }
                    | Payload::RefundBuyer { .. } => {}
                }
            }
            Tx::Network { .. } => {}
        }
    }
    out
}

impl Undo {
    /// This record's compact encoding against `block`, the transactions of
    /// the block that made it (see the module's documentation). Any record
    /// encodes against any block: an address the block does not name is
    /// written in full. [`Undo::decode_against`] with the same block gives
    /// it back.
    pub fn encode_against(&self, block: &[Tx]) -> Vec<u8> {
        let mut place: HashMap<Address, u32> = HashMap::new();
        for (i, address) in addresses(block).into_iter().enumerate() {
            if let Ok(i) = u32::try_from(i) {
                place.entry(address).or_insert(i);
            }
        }
        let mut last: HashMap<Address, Amount> = HashMap::new();
        let stored: Vec<Stored> = self
            .0
            .iter()
            .map(|change| match change {
                Change::Balance(a, old) => match place.get(a) {
                    Some(&i) => {
                        let again = last.get(a).zip(*old).and_then(|(before, now)| {
                            i64::try_from(i128::from(now.get()) - i128::from(before.get())).ok()
                        });
                        match old {
                            Some(now) => last.insert(*a, *now),
                            None => last.remove(a),
                        };
                        match (again, old) {
                            (Some(delta), _) => Stored::BalanceAgain(i, delta),
                            (None, Some(old)) => Stored::Balance(i, *old),
                            (None, None) => Stored::NoBalance(i),
                        }
                    }
                    None => Stored::Other(change.clone()),
                },
                Change::Nonce(a, old) => match (place.get(a), old) {
                    (Some(&i), Some(old)) => Stored::Nonce(i, *old),
                    (Some(&i), None) => Stored::NoNonce(i),
                    (None, _) => Stored::Other(change.clone()),
                },
                other => Stored::Other(other.clone()),
            })
            .collect();
        // Postcard fails only on what these types never hold (maps or
        // sequences of unknown length, a full fixed buffer).
        postcard::to_stdvec(&stored).unwrap_or_default()
    }

    /// The record that [`Undo::encode_against`] encoded as `bytes` against
    /// `block`.
    ///
    /// # Errors
    ///
    /// The bytes do not decode, or do not fit `block` (they name an
    /// address it does not have). Bytes encoded against another block may
    /// also decode, to another record: the caller answers for the pairing
    /// (the node stores each record beside its block, both checksummed).
    pub fn decode_against(bytes: &[u8], block: &[Tx]) -> Result<Undo, UndoDecodeError> {
        let (stored, rest): (Vec<Stored>, &[u8]) = postcard::take_from_bytes(bytes)?;
        if !rest.is_empty() {
            return Err(UndoDecodeError::TrailingBytes(rest.len()));
        }
        let named = addresses(block);
        let address = |index: u32| {
            named
                .get(index as usize)
                .copied()
                .ok_or(UndoDecodeError::NoSuchAddress {
                    index,
                    named: named.len(),
                })
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
                    let before = last.get(&a).ok_or(UndoDecodeError::NoEarlierBalance(i))?;
                    let now = u64::try_from(i128::from(before.get()) + i128::from(delta))
                        .map(Amount::new)
                        .map_err(|_| UndoDecodeError::BalanceOutOfRange(i))?;
                    last.insert(a, now);
                    Change::Balance(a, Some(now))
                }
                Stored::Nonce(i, old) => Change::Nonce(address(i)?, Some(old)),
                Stored::NoNonce(i) => Change::Nonce(address(i)?, None),
                // (A balance written in full is of an address the block
                // does not name: no difference is ever written against it.)
                Stored::Other(change) => change,
            });
        }
        Ok(Undo(changes))
    }
}

//! Compact blocks (after Bitcoin's BIP 152): a block sent as its header,
//! a short id for each transaction and the few transactions the receiver
//! cannot have (at least the coinbase), so that a peer whose mempool holds
//! the rest rebuilds the block without its transactions crossing the link
//! a second time.
//!
//! # Short ids
//!
//! A short id is 6 bytes: the first 6 bytes of
//! `blake3::keyed_hash(key, txid)`, where `key` is
//! `blake3(header's 96 canonical bytes ‖ salt as 8 little-endian bytes)`
//! and `txid` the transaction's 32-byte id (a signed transaction's id
//! covers its body, not its signature). The sender draws `salt` for each
//! compact block it makes, so nobody can make two transactions collide in
//! every block ahead of time.
//!
//! # Rebuilding
//!
//! [`Rebuild::start`] matches each short id against candidate
//! transactions (a node's pending, orphan and recently dropped ones, those of
//! its tip's block when the compact block competes with it). Two
//! different candidates with one short id, or two slots with one short
//! id, make the block *ambiguous*: the receiver asks for the whole block. Slots
//! left empty are asked for with [`Message::GetBlockTxn`](crate::Message)
//! and filled from [`Message::BlockTxn`](crate::Message). A rebuilt block
//! is only a candidate: its merkle root must match the header's
//! ([`Rebuild::finish`]); if it does not (a short id matched the wrong
//! transaction, or a transaction with the same id and other signature
//! bytes), the receiver asks for the whole block and never takes a wrong
//! one.

use std::collections::HashMap;

use chain_core::{Block, Header, Transaction, TxId};
use escrow::{SignedTx, Tx};
use serde::{Deserialize, Serialize};

use crate::bounded::Bounded;

/// Most transactions a compact block may describe (short ids and
/// prefilled ones together). A block of this many transactions would be
/// far over any block size limit; it bounds what one message can make a
/// receiver allocate.
pub const MAX_COMPACT_TXS: usize = 100_000;

/// Most prefilled transactions in one compact block, and most indexes in
/// one [`Message::GetBlockTxn`](crate::Message) or transactions in one
/// [`Message::BlockTxn`](crate::Message): every transaction of a block can
/// be asked for at once.
pub const MAX_PREFILLED: usize = MAX_COMPACT_TXS;

/// A transaction's short id in one compact block.
pub type ShortId = [u8; 6];

/// A transaction sent whole inside a compact block, at its index in the
/// block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prefilled {
    /// The transaction's index in the block.
    pub index: u32,
    /// The transaction.
    pub tx: Tx,
}

/// A block as its header, short ids and prefilled transactions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactBlock {
    /// The block's header.
    pub header: Header,
    /// The salt of this compact block's short ids.
    pub salt: u64,
    /// The short ids of the transactions not prefilled, in block order.
    pub short_ids: Bounded<ShortId, MAX_COMPACT_TXS>,
    /// The prefilled transactions, by increasing index.
    pub prefilled: Bounded<Prefilled, MAX_PREFILLED>,
}

/// Why a compact block cannot be rebuilt at all (the sender's fault: it
/// made a message no honest node makes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompactError {
    /// More transactions than [`MAX_COMPACT_TXS`].
    #[error("a compact block of {0} transactions, more than {MAX_COMPACT_TXS}")]
    TooManyTxs(usize),
    /// A prefilled index at or past the block's end, or not above the
    /// previous one.
    #[error("prefilled index {0} out of order or past the block's end")]
    BadIndex(u32),
    /// The first transaction (the coinbase) is not prefilled.
    #[error("the coinbase (index 0) is not prefilled")]
    NoCoinbase,
}

/// The key of one compact block's short ids.
pub fn short_id_key(header: &Header, salt: u64) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&header.to_bytes());
    hasher.update(&salt.to_le_bytes());
    *hasher.finalize().as_bytes()
}

/// The short id of `id` under `key` ([`short_id_key`]).
pub fn short_id(key: &[u8; 32], id: &TxId) -> ShortId {
    let hash = blake3::keyed_hash(key, id.as_bytes());
    let mut out = [0u8; 6];
    out.copy_from_slice(&hash.as_bytes()[..6]);
    out
}

impl CompactBlock {
    /// `block` as a compact block with `salt`, the transactions at
    /// `prefill` (sorted) sent whole, and so is every transaction that is
    /// not a signed one (the coinbase first: no mempool holds those).
    pub fn new(block: &Block<Tx>, salt: u64, prefill: &[usize]) -> CompactBlock {
        let key = short_id_key(&block.header, salt);
        let mut short_ids = Vec::new();
        let mut prefilled = Vec::new();
        for (i, tx) in block.transactions.iter().enumerate() {
            // Only signed transactions can be in a receiver's mempool.
            let unsigned = !matches!(tx, Tx::Signed(_));
            if i == 0 || unsigned || prefill.binary_search(&i).is_ok() {
                let index = u32::try_from(i).unwrap_or(u32::MAX);
                prefilled.push(Prefilled {
                    index,
                    tx: tx.clone(),
                });
            } else {
                short_ids.push(short_id(&key, &tx.id()));
            }
        }
        CompactBlock {
            header: block.header,
            salt,
            short_ids: Bounded::truncating(short_ids),
            prefilled: Bounded::truncating(prefilled),
        }
    }

    /// How many transactions the block has.
    pub fn tx_count(&self) -> usize {
        self.short_ids.len() + self.prefilled.len()
    }
}

/// A compact block being rebuilt: its slots, filled or waiting.
#[derive(Debug, Clone)]
pub struct Rebuild {
    header: Header,
    slots: Vec<Option<Tx>>,
}

/// What [`Rebuild::start`] found.
#[derive(Debug)]
pub enum Started {
    /// Every slot is filled: [`Rebuild::finish`] it.
    Complete(Rebuild),
    /// These block indexes are missing: ask for them.
    Missing(Rebuild, Vec<u32>),
    /// Two candidates or two slots share a short id: ask for the whole
    /// block.
    Ambiguous,
}

impl Rebuild {
    /// Matches `compact`'s short ids against `candidates` (the receiver's
    /// signed transactions that the block may hold, each with its id; the
    /// coinbase is always prefilled).
    ///
    /// # Errors
    ///
    /// A compact block no honest sender makes ([`CompactError`]).
    pub fn start<'a>(
        compact: &CompactBlock,
        candidates: impl IntoIterator<Item = (TxId, &'a SignedTx)>,
    ) -> Result<Started, CompactError> {
        let count = compact.tx_count();
        if count > MAX_COMPACT_TXS {
            return Err(CompactError::TooManyTxs(count));
        }
        let mut slots: Vec<Option<Tx>> = vec![None; count];
        let mut next = 0u32;
        for p in compact.prefilled.iter() {
            let i = p.index as usize;
            if i >= count || p.index < next {
                return Err(CompactError::BadIndex(p.index));
            }
            next = p.index.saturating_add(1);
            if let Some(slot) = slots.get_mut(i) {
                *slot = Some(p.tx.clone());
            }
        }
        if compact.prefilled.first().map(|p| p.index) != Some(0) {
            return Err(CompactError::NoCoinbase);
        }
        // The short ids fill the slots not prefilled, in order.
        let mut by_short: HashMap<ShortId, usize> = HashMap::with_capacity(compact.short_ids.len());
        let free = slots.iter().enumerate().filter(|(_, s)| s.is_none());
        for (short, (slot, _)) in compact.short_ids.iter().zip(free) {
            if by_short.insert(*short, slot).is_some() {
                return Ok(Started::Ambiguous);
            }
        }
        let key = short_id_key(&compact.header, compact.salt);
        for (id, tx) in candidates {
            let Some(&slot) = by_short.get(&short_id(&key, &id)) else {
                continue;
            };
            match slots.get_mut(slot) {
                // The same transaction offered twice (from two sources).
                Some(Some(Tx::Signed(held))) if held == tx => {}
                Some(Some(_)) => return Ok(Started::Ambiguous),
                Some(s) => *s = Some(Tx::Signed(tx.clone())),
                None => {}
            }
        }
        let rebuild = Rebuild {
            header: compact.header,
            slots,
        };
        let missing = rebuild.missing();
        Ok(if missing.is_empty() {
            Started::Complete(rebuild)
        } else {
            Started::Missing(rebuild, missing)
        })
    }

    /// The header of the block being rebuilt.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The indexes still missing.
    pub fn missing(&self) -> Vec<u32> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_none())
            .map(|(i, _)| u32::try_from(i).unwrap_or(u32::MAX))
            .collect()
    }

    /// Fills the missing slots with `txs`, in the order of
    /// [`Rebuild::missing`]. `false` if `txs` is not exactly one
    /// transaction per missing slot (the answer does not fit the request).
    pub fn fill(&mut self, txs: Vec<Tx>) -> bool {
        let missing = self.slots.iter().filter(|s| s.is_none()).count();
        if txs.len() != missing {
            return false;
        }
        let mut txs = txs.into_iter();
        for slot in self.slots.iter_mut().filter(|s| s.is_none()) {
            *slot = txs.next();
        }
        true
    }

    /// The rebuilt block, if every slot is filled and the transactions'
    /// merkle root is the header's; `None` otherwise (ask for the whole
    /// block).
    pub fn finish(self) -> Option<Block<Tx>> {
        let transactions: Option<Vec<Tx>> = self.slots.into_iter().collect();
        let block = Block {
            header: self.header,
            transactions: transactions?,
        };
        let leaves = block.commitments();
        (chain_core::merkle::merkle_root(&leaves) == block.header.merkle_root).then_some(block)
    }
}

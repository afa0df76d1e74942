//! The state-machine trait that a block's transactions drive.
//!
//! chain-core knows nothing of accounts or escrow. It hands each block's
//! transactions to a [`StateMachine`] and keeps the undo record the machine
//! returns, so that a reorganisation can walk the state back to the fork
//! point and forward along the new branch. The escrow ledger implements this
//! trait; chain-core's own tests use a small machine of their own.

use crate::hash::BlockHash;
use crate::header::Transaction;

/// What a state machine may know about the block it applies, besides its
/// transactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockContext {
    /// The block's hash.
    pub hash: BlockHash,
    /// The block's height.
    pub height: u64,
    /// The block's timestamp, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
}

/// The application state that blocks change.
///
/// # Contract
///
/// - `apply_block` either applies *every* transaction and returns an undo
///   record, or returns an error and leaves the state exactly as it was.
/// - `undo_block(undo)` with the record from the most recent `apply_block`
///   restores the state exactly as it was before that call. Records are
///   undone in the reverse order of application.
pub trait StateMachine {
    /// The transaction type blocks carry.
    type Tx: Transaction;
    /// What `undo_block` needs to reverse one `apply_block`.
    type Undo;
    /// Why a block's transactions do not apply.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Applies all of a block's transactions, or none.
    ///
    /// # Errors
    ///
    /// The first rule a transaction breaks; the state is then unchanged.
    fn apply_block(
        &mut self,
        ctx: &BlockContext,
        txs: &[Self::Tx],
    ) -> Result<Self::Undo, Self::Error>;

    /// Reverses the most recent `apply_block` that is not yet undone.
    fn undo_block(&mut self, undo: Self::Undo);
}

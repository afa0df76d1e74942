//! The mempool's admission check, a pure function.
//!
//! A transaction is admitted if it would apply to the ledger *after* the
//! pending transactions it follows: its nonce must be the sender's next one
//! counting pending transactions (no gaps, no replays), and the pending
//! spends of the sender count against their balance, so no account can
//! overspend across transactions waiting for the same block.

use chain_core::TxId;

use crate::ledger::{Ledger, LedgerError};
use crate::tx::SignedTx;

/// Why a transaction is not admitted to the mempool.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmissionError {
    /// The transaction is already pending.
    #[error("transaction {0} is already pending")]
    AlreadyPending(TxId),
    /// It would not apply after the pending transactions.
    #[error(transparent)]
    Invalid(#[from] LedgerError),
}

/// Whether `tx` is valid against `ledger` plus `pending` (in the order they
/// would be mined), in a block at `next_height`.
///
/// Pending transactions that no longer apply are skipped, as the miner
/// would skip them. The copy of the ledger is O(1) (its maps are
/// persistent); the cost is re-applying the pending transactions, the
/// reason the node uses [`PendingState`] and keeps its pool bounded.
///
/// # Errors
///
/// [`AdmissionError`] naming the rule broken.
pub fn check_admission(
    ledger: &Ledger,
    pending: &[SignedTx],
    tx: &SignedTx,
    next_height: u64,
) -> Result<(), AdmissionError> {
    let id = tx.id();
    if pending.iter().any(|p| p.id() == id) {
        return Err(AdmissionError::AlreadyPending(id));
    }
    let verified = ledger
        .check_signature_unremembered(tx)
        .map_err(|reason| LedgerError::BadSignature { tx: id, reason })?;
    let mut state = PendingState::new(ledger, next_height);
    for p in pending {
        // Pending transactions that no longer apply are skipped, as the
        // miner would skip them; their signatures were checked on entry.
        let _ = state.apply(p);
    }
    state.apply(tx)?;
    ledger.remember_signature(verified);
    Ok(())
}

/// The ledger with a pool's pending transactions applied, kept up to date
/// one admission at a time: the incremental form of [`check_admission`],
/// for a mempool that would otherwise copy the ledger per transaction.
///
/// It holds a copy of the ledger at the best tip (an O(1) clone that
/// shares the tip's maps until a transaction changes an entry) and applies each admitted
/// transaction to it (signature checked, at `next_height`); a refused one
/// changes nothing. When the tip changes, the node builds a new one and
/// re-admits what is still pending.
///
/// A pending transaction's fee leaves its sender but reaches no one: the
/// miner is not known until a block is made. So the pending ledger's
/// supply is the chain's less the pending fees; it is not a consensus
/// state.
#[derive(Clone, Debug)]
pub struct PendingState {
    ledger: Ledger,
    next_height: u64,
    changes: Vec<crate::ledger::Change>,
}

impl PendingState {
    /// Starts from `ledger` (the state at the best tip), for a block at
    /// `next_height`.
    pub fn new(ledger: &Ledger, next_height: u64) -> PendingState {
        PendingState {
            ledger: ledger.clone(),
            next_height,
            changes: Vec::new(),
        }
    }

    /// The ledger with every admitted transaction applied.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The height the pending transactions are checked for.
    pub fn next_height(&self) -> u64 {
        self.next_height
    }

    /// Admits `tx` if it applies after everything admitted so far. The
    /// signature is checked through the ledger's [`crate::SigCache`] (a
    /// success is remembered there, so the block that carries `tx` need
    /// not check it again).
    ///
    /// # Errors
    ///
    /// The [`LedgerError`] naming the rule it breaks (bad signature, wrong
    /// network, nonce gap or replay, overspend, a contract rule); the state
    /// is unchanged then.
    pub fn admit(&mut self, tx: &SignedTx) -> Result<(), AdmissionError> {
        let verdict = self.ledger.check_signature_unremembered(tx);
        self.admit_with(tx, verdict)
    }

    /// [`PendingState::admit`] with the signature's verdict reached before
    /// (by [`crate::SigCache::precheck`] or [`crate::SigCache::precheck_all`]
    /// on another thread): the same verdicts and reasons, without the
    /// check's cost on the caller's thread. A `check` made for another
    /// transaction or by another cache than the ledger's is ignored, and
    /// the signature is checked here.
    ///
    /// # Errors
    ///
    /// As [`PendingState::admit`].
    pub fn admit_prechecked(
        &mut self,
        tx: &SignedTx,
        check: crate::signature::cache::SigCheck,
    ) -> Result<(), AdmissionError> {
        let verdict = match self.ledger.take_precheck(tx, check) {
            Some(verdict) => verdict,
            None => self.ledger.check_signature_unremembered(tx),
        };
        self.admit_with(tx, verdict)
    }

    /// Admits `tx` with its signature's verdict. A success is remembered in
    /// the signature cache only once the transaction applies: validly
    /// signed transactions that do not apply cannot flush it.
    fn admit_with(
        &mut self,
        tx: &SignedTx,
        verdict: Result<
            Option<crate::signature::cache::Verified>,
            crate::signature::SignatureError,
        >,
    ) -> Result<(), AdmissionError> {
        let verified = verdict.map_err(|reason| LedgerError::BadSignature {
            tx: tx.id(),
            reason,
        })?;
        self.apply(tx)?;
        self.ledger.remember_signature(verified);
        Ok(())
    }

    /// Admits `tx` whose signature this process has already verified: a
    /// transaction the pool admitted before, or one of a block that passed
    /// validation, re-admitted over a new tip. Everything but the
    /// signature is checked as in [`PendingState::admit`]; the signature is
    /// part of the value, so the earlier verdict still holds.
    ///
    /// # Errors
    ///
    /// As [`PendingState::admit`], without the signature's.
    pub fn admit_verified(&mut self, tx: &SignedTx) -> Result<(), AdmissionError> {
        self.apply(tx)
    }

    /// Applies `tx` (signature not checked) or, if it does not apply,
    /// leaves the state as it was.
    fn apply(&mut self, tx: &SignedTx) -> Result<(), AdmissionError> {
        let mark = self.changes.len();
        if let Err(e) = self
            .ledger
            .apply_signed(tx, self.next_height, None, &mut self.changes)
        {
            self.ledger.rollback_to(&mut self.changes, mark);
            return Err(e.into());
        }
        Ok(())
    }
}

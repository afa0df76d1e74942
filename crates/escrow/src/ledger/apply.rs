//! Applying one transaction to the ledger: a signed one's payload and fee
//! ([`Ledger::apply_signed`]), and each kind a block carries.

use crate::account::Address;
use crate::amount::Amount;
use crate::contract::{Contract, ContractError, ContractId, Payout};
use crate::tx::{Payload, SignedTx, Tx};

use super::{Change, Ledger, LedgerError};

impl Ledger {
    /// Applies one signed transaction whose signature was checked, at
    /// `height`, its fee paid to `miner` (the block's coinbase address; none
    /// in a mempool's pending state, where the fee only leaves the sender).
    /// On error the changes already recorded in `undo` must be rolled back
    /// by the caller.
    pub(crate) fn apply_signed(
        &mut self,
        tx: &SignedTx,
        height: u64,
        miner: Option<Address>,
        undo: &mut Vec<Change>,
    ) -> Result<(), LedgerError> {
        let id = tx.id();
        let sender = tx.sender();
        self.check_envelope(tx, id, &sender)?;
        let fee = tx.body.fee;
        // What the sender pays in all: the fee, plus what the payload moves.
        let with_fee = |amount: Amount| {
            amount
                .checked_add(fee)
                .ok_or(LedgerError::AmountOverflow { account: sender })
        };
        match &tx.body.payload {
            // A memo may move nothing; a plain transfer must move something.
            Payload::Transfer { to, amount } | Payload::TransferMemo { to, amount, .. } => {
                if amount.is_zero() && matches!(tx.body.payload, Payload::Transfer { .. }) {
                    return Err(LedgerError::ZeroTransfer);
                }
                self.debit(sender, with_fee(*amount)?, undo)?;
                self.credit(*to, *amount, undo)?;
            }
            Payload::EscrowCreate {
                seller,
                arbiter,
                amount,
                delivery_deadline,
                dispute_window,
            } => {
                let contract_id = ContractId::from_tx(&id);
                let contract = Contract::create(
                    contract_id,
                    sender,
                    *seller,
                    *arbiter,
                    *amount,
                    *delivery_deadline,
                    *dispute_window,
                    height,
                    id,
                )?;
                self.debit(sender, with_fee(*amount)?, undo)?;
                let old = self.contracts.insert(contract_id, contract);
                undo.push(Change::Contract(contract_id, old.map(Box::new)));
            }
            Payload::ConfirmDelivery { contract }
            | Payload::RaiseDispute { contract }
            | Payload::Resolve { contract, .. }
            | Payload::RefundBuyer { contract } => {
                let mut updated = self
                    .contracts
                    .get(contract)
                    .cloned()
                    .ok_or(ContractError::UnknownContract(*contract))?;
                let payout = match &tx.body.payload {
                    Payload::ConfirmDelivery { .. } => {
                        updated.confirm_delivery(sender, height, id)?
                    }
                    Payload::RaiseDispute { .. } => updated.raise_dispute(sender, height, id)?,
                    Payload::Resolve { to, .. } => updated.resolve(sender, *to, height, id)?,
                    _ => updated.refund_buyer(sender, height, id)?,
                };
                if let Payout::To(payee) = payout {
                    self.credit(payee, updated.amount, undo)?;
                }
                // The fee after the payout: a sender paid by this very
                // action (a buyer taking a refund) may pay it from what
                // they receive, as a Bitcoin escrow pays its fee from the
                // escrowed output.
                self.debit(sender, fee, undo)?;
                let old = self.contracts.insert(*contract, updated);
                undo.push(Change::Contract(*contract, old.map(Box::new)));
            }
        }
        if let Some(miner) = miner
            && !fee.is_zero()
        {
            self.credit(miner, fee, undo)?;
        }
        let old = self.nonces.insert(sender, tx.body.nonce.saturating_add(1));
        undo.push(Change::Nonce(sender, old));
        Ok(())
    }

    /// Applies one block transaction at `ctx`; `index` is its place in the
    /// block.
    pub(super) fn apply_tx(
        &mut self,
        tx: &Tx,
        index: usize,
        height: u64,
        miner: Option<Address>,
        undo: &mut Vec<Change>,
    ) -> Result<(), LedgerError> {
        match tx {
            Tx::Signed(s) => {
                if height == 0 {
                    return Err(LedgerError::NotAllowedHere {
                        kind: s.body.payload.kind(),
                        height,
                    });
                }
                self.apply_signed(s, height, miner, undo)
            }
            Tx::Coinbase { to, height: h } => {
                if height == 0 {
                    return Err(LedgerError::NotAllowedHere {
                        kind: "coinbase",
                        height,
                    });
                }
                if index != 0 {
                    return Err(LedgerError::MisplacedCoinbase);
                }
                if *h != height {
                    return Err(LedgerError::WrongCoinbaseHeight {
                        expected: height,
                        got: *h,
                    });
                }
                self.issue(self.reward, *to, undo)
            }
            Tx::Network {
                params,
                coinbase_reward,
                ..
            } => {
                if height != 0 || index != 0 {
                    return Err(LedgerError::NotAllowedHere {
                        kind: "network",
                        height,
                    });
                }
                undo.push(Change::Reward(self.reward));
                self.reward = *coinbase_reward;
                undo.push(Change::Params(self.params.take()));
                self.params = Some(Box::new(params.clone()));
                Ok(())
            }
            Tx::Allocation { to, amount } => {
                if height != 0 || index == 0 {
                    return Err(LedgerError::NotAllowedHere {
                        kind: "allocation",
                        height,
                    });
                }
                self.issue(*amount, *to, undo)
            }
        }
    }
}

//! The escrow contract state machine.
//!
//! ```text
//!                 ConfirmDelivery (buyer)
//!   EscrowCreate ─────────────────────────────────────────► Released (final)
//!   (buyer) │                                                  ▲
//!           ▼                                                  │ Resolve→Seller (arbiter)
//!        Funded ── RaiseDispute (buyer or seller) ──► Disputed ┤
//!           │                                           │      │ Resolve→Buyer (arbiter)
//!           │ RefundBuyer: seller any time;             │      ▼
//!           │   buyer after the delivery deadline       │   Refunded (final)
//!           └──────────────────────────────────────────►│      ▲
//!                                                       └──────┘
//!                          RefundBuyer: seller any time;
//!                          buyer once the dispute window has passed
//! ```
//!
//! Each transition is a method that checks who acts and when, and returns a
//! [`ContractError`] naming the rule broken; heights are passed in, so every
//! node decides the same way. Moving coins is the ledger's job: a
//! transition only says where the funds go ([`Payout`]).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use chain_core::TxId;

use crate::account::Address;
use crate::amount::Amount;

/// The side an arbiter resolves a dispute to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Party {
    /// Release the funds to the seller.
    Seller,
    /// Refund the funds to the buyer.
    Buyer,
}

/// A contract id: a UUID (version 8, "custom") built from the first 16
/// bytes of the creating transaction's id, so every node computes the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ContractId(pub Uuid);

impl ContractId {
    /// The id of the contract created by transaction `tx`.
    pub fn from_tx(tx: &TxId) -> ContractId {
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&tx.as_bytes()[..16]);
        ContractId(uuid::Builder::from_custom_bytes(bytes).into_uuid())
    }
}

impl std::fmt::Display for ContractId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for ContractId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(ContractId)
    }
}

/// Where a contract stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum State {
    /// The buyer's funds are locked in the contract.
    Funded,
    /// A party disputed; the arbiter decides.
    Disputed {
        /// The height of the block that recorded the dispute.
        since: u64,
    },
    /// Final: the seller was paid.
    Released,
    /// Final: the buyer was refunded.
    Refunded,
}

impl State {
    /// Whether no further action is possible.
    pub fn is_final(self) -> bool {
        matches!(self, State::Released | State::Refunded)
    }

    /// A short name.
    pub fn name(self) -> &'static str {
        match self {
            State::Funded => "Funded",
            State::Disputed { .. } => "Disputed",
            State::Released => "Released",
            State::Refunded => "Refunded",
        }
    }
}

/// What happened to a contract, for its history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    /// Created and funded by the buyer.
    Created,
    /// The buyer confirmed delivery.
    DeliveryConfirmed,
    /// A party raised a dispute.
    DisputeRaised,
    /// The arbiter resolved the dispute.
    Resolved(Party),
    /// The buyer was refunded (by the seller, or by the buyer after a
    /// deadline).
    Refunded,
}

/// One entry of a contract's history.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// What happened.
    pub action: Action,
    /// Who did it.
    pub by: Address,
    /// The height of the block that recorded it.
    pub height: u64,
    /// The transaction that did it.
    pub tx: TxId,
}

/// An escrow contract.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Contract {
    /// Its id.
    pub id: ContractId,
    /// Who locked the funds.
    pub buyer: Address,
    /// Who is paid on release.
    pub seller: Address,
    /// Who settles a dispute.
    pub arbiter: Address,
    /// The funds locked.
    pub amount: Amount,
    /// After this height, a contract still `Funded` may be refunded by the
    /// buyer.
    pub delivery_deadline: u64,
    /// Blocks after a dispute is raised before the buyer may take the refund.
    pub dispute_window: u64,
    /// Where it stands.
    pub state: State,
    /// Every action, oldest first.
    pub history: Vec<HistoryEntry>,
}

/// Where a transition sends the funds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payout {
    /// Nothing moves (a dispute).
    None,
    /// The amount goes to this address.
    To(Address),
}

/// A contract rule a transaction breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContractError {
    /// No contract has this id.
    #[error("unknown contract {0}")]
    UnknownContract(ContractId),
    /// An escrow of nothing.
    #[error("an escrow amount must be above zero")]
    ZeroAmount,
    /// Buyer and seller are the same account.
    #[error("the buyer cannot be the seller")]
    BuyerIsSeller,
    /// The arbiter is the buyer or the seller.
    #[error("the arbiter {0} is a party to the contract")]
    ArbiterIsAParty(Address),
    /// The delivery deadline is not in the future.
    #[error("the delivery deadline {deadline} is not after the current height {height}")]
    DeadlineInThePast {
        /// The deadline asked for.
        deadline: u64,
        /// The height of the block creating the contract.
        height: u64,
    },
    /// A dispute window of zero blocks.
    #[error("the dispute window must be at least one block")]
    ZeroDisputeWindow,
    /// The action is the buyer's alone.
    #[error("{actor} is not the buyer of contract {contract}")]
    NotBuyer {
        /// The contract.
        contract: ContractId,
        /// Who tried.
        actor: Address,
    },
    /// The action is the arbiter's alone.
    #[error("{actor} is not the arbiter of contract {contract}")]
    NotArbiter {
        /// The contract.
        contract: ContractId,
        /// Who tried.
        actor: Address,
    },
    /// The action is the buyer's or the seller's.
    #[error("{actor} is neither the buyer nor the seller of contract {contract}")]
    NotAParty {
        /// The contract.
        contract: ContractId,
        /// Who tried.
        actor: Address,
    },
    /// Released and Refunded are final.
    #[error("contract {contract} is already final ({state})")]
    AlreadyFinal {
        /// The contract.
        contract: ContractId,
        /// Its final state's name.
        state: &'static str,
    },
    /// The action needs the contract to be Funded.
    #[error("contract {contract} is {state}, not Funded")]
    NotFunded {
        /// The contract.
        contract: ContractId,
        /// Its state's name.
        state: &'static str,
    },
    /// The action needs the contract to be Disputed.
    #[error("contract {contract} is {state}, not Disputed")]
    NotDisputed {
        /// The contract.
        contract: ContractId,
        /// Its state's name.
        state: &'static str,
    },
    /// The buyer asked for a refund before a deadline allows it.
    #[error("the buyer may take the refund only after height {deadline} (now {height})")]
    DeadlineNotReached {
        /// The first height at which the refund is allowed, minus one.
        deadline: u64,
        /// The current height.
        height: u64,
    },
}

impl Contract {
    /// A new contract, checked: positive amount, three distinct parties,
    /// deadlines that make sense at `height`.
    ///
    /// # Errors
    ///
    /// The rule broken.
    #[allow(clippy::too_many_arguments)]
    pub fn create(
        id: ContractId,
        buyer: Address,
        seller: Address,
        arbiter: Address,
        amount: Amount,
        delivery_deadline: u64,
        dispute_window: u64,
        height: u64,
        tx: TxId,
    ) -> Result<Contract, ContractError> {
        if amount.is_zero() {
            return Err(ContractError::ZeroAmount);
        }
        if buyer == seller {
            return Err(ContractError::BuyerIsSeller);
        }
        if arbiter == buyer || arbiter == seller {
            return Err(ContractError::ArbiterIsAParty(arbiter));
        }
        if delivery_deadline <= height {
            return Err(ContractError::DeadlineInThePast {
                deadline: delivery_deadline,
                height,
            });
        }
        if dispute_window == 0 {
            return Err(ContractError::ZeroDisputeWindow);
        }
        Ok(Contract {
            id,
            buyer,
            seller,
            arbiter,
            amount,
            delivery_deadline,
            dispute_window,
            state: State::Funded,
            history: vec![HistoryEntry {
                action: Action::Created,
                by: buyer,
                height,
                tx,
            }],
        })
    }

    fn not_final(&self) -> Result<(), ContractError> {
        if self.state.is_final() {
            return Err(ContractError::AlreadyFinal {
                contract: self.id,
                state: self.state.name(),
            });
        }
        Ok(())
    }

    fn record(&mut self, action: Action, by: Address, height: u64, tx: TxId) {
        self.history.push(HistoryEntry {
            action,
            by,
            height,
            tx,
        });
    }

    /// The buyer confirms delivery (Funded → Released): the seller is paid.
    ///
    /// # Errors
    ///
    /// Not the buyer, final, or not Funded.
    pub fn confirm_delivery(
        &mut self,
        actor: Address,
        height: u64,
        tx: TxId,
    ) -> Result<Payout, ContractError> {
        self.not_final()?;
        if actor != self.buyer {
            return Err(ContractError::NotBuyer {
                contract: self.id,
                actor,
            });
        }
        if self.state != State::Funded {
            return Err(ContractError::NotFunded {
                contract: self.id,
                state: self.state.name(),
            });
        }
        self.state = State::Released;
        self.record(Action::DeliveryConfirmed, actor, height, tx);
        Ok(Payout::To(self.seller))
    }

    /// The buyer or the seller raises a dispute (Funded → Disputed).
    ///
    /// # Errors
    ///
    /// Not a party, final, or not Funded.
    pub fn raise_dispute(
        &mut self,
        actor: Address,
        height: u64,
        tx: TxId,
    ) -> Result<Payout, ContractError> {
        self.not_final()?;
        if actor != self.buyer && actor != self.seller {
            return Err(ContractError::NotAParty {
                contract: self.id,
                actor,
            });
        }
        if self.state != State::Funded {
            return Err(ContractError::NotFunded {
                contract: self.id,
                state: self.state.name(),
            });
        }
        self.state = State::Disputed { since: height };
        self.record(Action::DisputeRaised, actor, height, tx);
        Ok(Payout::None)
    }

    /// The arbiter settles a dispute (Disputed → Released or Refunded).
    ///
    /// # Errors
    ///
    /// Not the arbiter, final, or not Disputed.
    pub fn resolve(
        &mut self,
        actor: Address,
        to: Party,
        height: u64,
        tx: TxId,
    ) -> Result<Payout, ContractError> {
        self.not_final()?;
        if actor != self.arbiter {
            return Err(ContractError::NotArbiter {
                contract: self.id,
                actor,
            });
        }
        if !matches!(self.state, State::Disputed { .. }) {
            return Err(ContractError::NotDisputed {
                contract: self.id,
                state: self.state.name(),
            });
        }
        let (state, payee) = match to {
            Party::Seller => (State::Released, self.seller),
            Party::Buyer => (State::Refunded, self.buyer),
        };
        self.state = state;
        self.record(Action::Resolved(to), actor, height, tx);
        Ok(Payout::To(payee))
    }

    /// The funds go back to the buyer (→ Refunded). Allowed for the seller
    /// at any time before release; for the buyer once the delivery deadline
    /// has passed with the contract still Funded (the seller never acted),
    /// or once a dispute has stayed unresolved past its window.
    ///
    /// # Errors
    ///
    /// Final, not a party, or (for the buyer) no deadline passed yet.
    pub fn refund_buyer(
        &mut self,
        actor: Address,
        height: u64,
        tx: TxId,
    ) -> Result<Payout, ContractError> {
        self.not_final()?;
        if actor == self.seller {
            // The seller may always give the money back.
        } else if actor == self.buyer {
            let deadline = match self.state {
                State::Funded => self.delivery_deadline,
                State::Disputed { since } => since.saturating_add(self.dispute_window),
                State::Released | State::Refunded => unreachable_final(),
            };
            if height <= deadline {
                return Err(ContractError::DeadlineNotReached { deadline, height });
            }
        } else {
            return Err(ContractError::NotAParty {
                contract: self.id,
                actor,
            });
        }
        self.state = State::Refunded;
        self.record(Action::Refunded, actor, height, tx);
        Ok(Payout::To(self.buyer))
    }
}

/// `not_final` was checked first; a final state has no deadline, so the
/// largest height keeps the buyer waiting rather than panicking.
fn unreachable_final() -> u64 {
    u64::MAX
}

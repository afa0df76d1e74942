//! What a pending transaction touches: the entries of the state it reads
//! or writes (its sender's account, a transfer's recipient, the contract
//! it creates or acts on and that contract's parties), which decide what a
//! new tip makes the pool check again (see the module docs of
//! [`super`], "Following the tip incrementally").

use chain_core::TxId;
use escrow::{Address, ContractId, Ledger, Package, Payload, SignedTx};

/// An entry of the state a transaction reads or writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Entry {
    /// A balance and nonce.
    Account(Address),
    /// A contract.
    Contract(ContractId),
}

/// What the pool knows of a pending transaction without hashing or
/// encoding it again.
#[derive(Clone, Debug)]
pub(super) struct Meta {
    pub id: TxId,
    pub sender: Address,
    /// The entries it touches (see the module docs).
    pub entries: Vec<Entry>,
    /// Whether it creates or acts on a contract: its outcome depends on
    /// the height.
    pub contract: bool,
    /// Its fee and size.
    pub package: Package,
    /// Its nonce.
    pub nonce: u64,
}

impl Meta {
    /// The entries `tx` from `sender` touches; a contract's parties are
    /// read from `ledger` (where the contract is, if `tx` applied).
    pub fn of(tx: &SignedTx, id: TxId, sender: Address, ledger: &Ledger) -> Meta {
        let mut entries = vec![Entry::Account(sender)];
        let party = |entries: &mut Vec<Entry>, c: &ContractId| {
            entries.push(Entry::Contract(*c));
            if let Some(contract) = ledger.contract(c) {
                entries.push(Entry::Account(contract.buyer));
                entries.push(Entry::Account(contract.seller));
            }
        };
        let contract = match &tx.body.payload {
            Payload::Transfer { to, .. } | Payload::TransferMemo { to, .. } => {
                entries.push(Entry::Account(*to));
                false
            }
            Payload::EscrowCreate { .. } => {
                entries.push(Entry::Contract(ContractId::from_tx(&id)));
                true
            }
            Payload::ConfirmDelivery { contract }
            | Payload::RaiseDispute { contract }
            | Payload::Resolve { contract, .. }
            | Payload::RefundBuyer { contract } => {
                party(&mut entries, contract);
                true
            }
        };
        Meta {
            id,
            sender,
            entries,
            contract,
            package: tx.package(),
            nonce: tx.body.nonce,
        }
    }
}

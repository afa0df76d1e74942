//! What the node says to peers and reads from them, as values: the
//! transaction inventories it sends (announcements and requests, in
//! messages of at most `MAX_INVENTORY` ids), which refusals of a
//! transaction are its sender's fault, and whether a handshake is of this
//! network. The network part (`network.rs`) and the core use them.

use chain_core::{BlockHash, TxId};
use escrow::LedgerError;
use wire::message::{MAX_INVENTORY, TxInventory};
use wire::{Bounded, Handshake, Message, Reason};

use crate::mempool::MempoolError;
use crate::penalty::Offence;

/// `ids` as messages made by `make` (`Message::AnnounceTxs` or
/// `Message::GetTxs`), `MAX_INVENTORY` ids at most in each.
pub(super) fn tx_inventory(ids: &[TxId], make: fn(TxInventory) -> Message) -> Vec<Message> {
    ids.chunks(MAX_INVENTORY)
        .map(|chunk| make(Bounded::truncating(chunk.to_vec())))
        .collect()
}

/// The sender's offence in a transaction the mempool refused, if the
/// refusal is its fault: only a bad signature or another network's
/// transaction is (an honest peer forwards what no longer applies here).
pub(super) fn tx_offence(refusal: &MempoolError) -> Option<Offence> {
    match refusal {
        MempoolError::Invalid(escrow::AdmissionError::Invalid(
            e @ (LedgerError::BadSignature { .. } | LedgerError::WrongNetwork { .. }),
        )) => Some(Offence::InvalidTx(e.to_string())),
        _ => None,
    }
}

/// Refuses a handshake of a network other than `ours` (our genesis).
///
/// # Errors
///
/// The reason and text of the refusal notice.
pub(super) fn check_network(ours: BlockHash, hello: &Handshake) -> Result<(), (Reason, String)> {
    if hello.network == ours {
        return Ok(());
    }
    Err((
        Reason::WrongNetwork,
        format!("this node runs network {ours}, not {}", hello.network),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use chain_core::Work;
    use escrow::{AdmissionError, Genesis};
    use wire::NodeId;

    use super::*;

    fn id(i: u32) -> TxId {
        let mut bytes = [0; 32];
        bytes[..4].copy_from_slice(&i.to_le_bytes());
        TxId::from_bytes(bytes)
    }

    #[test]
    fn inventories_are_cut_at_max_inventory_in_order() {
        let ids: Vec<TxId> = (0..2_500).map(id).collect();
        let sent = tx_inventory(&ids, Message::GetTxs);
        let sizes: Vec<usize> = sent
            .iter()
            .map(|m| match m {
                Message::GetTxs(ids) => ids.len(),
                other => panic!("not a request: {other:?}"),
            })
            .collect();
        assert_eq!(sizes, vec![1_000, 1_000, 500]);
        let Message::GetTxs(last) = &sent[2] else {
            unreachable!()
        };
        assert_eq!(last[0], id(2_000));
        assert!(tx_inventory(&[], Message::AnnounceTxs).is_empty());
        assert!(matches!(
            &tx_inventory(&ids[..3], Message::AnnounceTxs)[..],
            [Message::AnnounceTxs(a)] if a.len() == 3
        ));
    }

    #[test]
    fn only_a_bad_signature_or_another_network_is_the_senders_fault() {
        let wrong = MempoolError::Invalid(AdmissionError::Invalid(LedgerError::WrongNetwork {
            tx: id(1),
            got: BlockHash::from_bytes([2; 32]),
            expected: Genesis::dev().ledger().network(),
        }));
        assert!(matches!(tx_offence(&wrong), Some(Offence::InvalidTx(_))));
        assert_eq!(tx_offence(&MempoolError::Full { max: 3 }), None);
    }

    #[test]
    fn a_handshake_of_another_network_is_refused() {
        let ours = BlockHash::from_bytes([1; 32]);
        let mut hello = Handshake {
            version: wire::PROTOCOL_VERSION,
            network: ours,
            node_id: NodeId([2; 32]),
            listen_addr: None,
            best_tip: BlockHash::ZERO,
            best_height: 0,
            total_work: Work::ZERO,
            user_agent: wire::BoundedString::truncating("test"),
        };
        assert_eq!(check_network(ours, &hello), Ok(()));
        hello.network = BlockHash::from_bytes([3; 32]);
        let (reason, text) = check_network(ours, &hello).unwrap_err();
        assert_eq!(reason, Reason::WrongNetwork);
        assert!(text.contains(&ours.to_string()), "{text}");
    }
}

//! What the core reads from peers and says to them, as values: the
//! transaction inventories it sends (announcements and requests, in
//! messages of at most `MAX_INVENTORY` ids), which refusals of a
//! transaction are its sender's fault, and whether a handshake is of this
//! network; and what a peer's blocks and announcements tell of it, as
//! functions over the peer table, the requests and the chain. The router
//! of live peers' messages (`Core::on_message`) and the glue that hands
//! each message to its part are in `mod.rs`.

use chain_core::{BlockHash, TxId};
use escrow::LedgerError;
use tokio::time::Instant;
use wire::message::{MAX_INVENTORY, TxInventory};
use wire::{Bounded, Handshake, Message, Reason};

use crate::core::peers::PeerTable;
use crate::core::requests::Requests;
use crate::core::view::{ConnId, NodeChain};
use crate::mempool::MempoolError;
use crate::penalty::Offence;

/// `conn` announced `hashes`: it knows them, those we have tell its
/// height, and the `GetBlocks` to send it for the ones we lack and have
/// not asked of anyone (recorded as asked at `now`).
pub(super) fn announced_blocks(
    (peers, requests, chain): (&mut PeerTable, &mut Requests, &NodeChain),
    conn: ConnId,
    hashes: &[BlockHash],
    now: Instant,
) -> Option<Message> {
    peers.knows_blocks(conn, hashes.iter());
    let known =
        |h: &BlockHash| chain.contains(h) || chain.is_orphan(h) || chain.is_known_invalid(h);
    let wanted = requests.want_blocks(conn, hashes, known, now);
    for hash in hashes {
        peer_has(peers, chain, conn, hash);
    }
    (!wanted.is_empty()).then(|| Message::GetBlocks(Bounded::truncating(wanted)))
}

/// `conn` sent the block `hash`, which the chain did not have before if
/// `was_new`: if it has it now, the peer gets the credit (at `now`), and
/// its height is what the block tells.
pub(super) fn sent_block(
    peers: &mut PeerTable,
    chain: &NodeChain,
    (conn, hash, was_new): (ConnId, &BlockHash, bool),
    now: impl FnOnce() -> Instant,
) {
    if was_new && chain.contains(hash) {
        peers.note_block(conn, now());
    }
    peer_has(peers, chain, conn, hash);
}

/// `conn` has the block `hash`: if we have it too, its height and work
/// update what we know of the peer.
fn peer_has(peers: &mut PeerTable, chain: &NodeChain, conn: ConnId, hash: &BlockHash) {
    if let (Some(header), Some(work)) = (chain.header(hash), chain.cumulative_work(hash)) {
        peers.saw_tip(conn, header.height, work);
    }
}

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
    fn announced_blocks_ask_once_for_what_we_lack_and_sent_ones_tell_the_height() {
        use std::net::SocketAddr;
        use std::sync::Arc;
        use std::sync::atomic::AtomicUsize;

        use crate::config::NodeConfig;
        use crate::core::view::Direction;

        let chain = Genesis::dev().chain().unwrap();
        let now = Instant::now();
        let config = Arc::new(NodeConfig::new(Genesis::dev()));
        let mut peers = PeerTable::new(config, NodeId([1; 32]), None, now, [7; 32]);
        let mut requests = Requests::default();
        let (tx, _rx) = tokio::sync::mpsc::channel(8);
        let mut hello = hello_of(chain.genesis_hash());
        hello.best_height = 0;
        let remote: SocketAddr = ([127, 0, 0, 1], 9000).into();
        let queue = (tx, Arc::new(AtomicUsize::new(0)));
        peers
            .admit(3, remote, Direction::Inbound, &hello, queue, now)
            .unwrap();
        let unknown = BlockHash::from_bytes([9; 32]);
        let parts = (&mut peers, &mut requests, &chain);
        let ask = announced_blocks(parts, 3, &[chain.tip(), unknown], now);
        assert!(matches!(ask, Some(Message::GetBlocks(h)) if h.to_vec() == vec![unknown]));
        assert!(requests.is_block_asked(&unknown));
        // Asked already: not again.
        let parts = (&mut peers, &mut requests, &chain);
        assert!(announced_blocks(parts, 3, &[unknown], now).is_none());
        // A block we have tells the peer's height (genesis: 0).
        peers.on_live(3);
        sent_block(&mut peers, &chain, (3, &chain.tip(), false), Instant::now);
        assert_eq!(peers.infos(now)[0].best_height, 0);
    }

    fn hello_of(network: BlockHash) -> Handshake {
        Handshake {
            version: wire::PROTOCOL_VERSION,
            network,
            node_id: NodeId([2; 32]),
            listen_addr: None,
            best_tip: BlockHash::ZERO,
            best_height: 5,
            total_work: Work::ZERO,
            user_agent: wire::BoundedString::truncating("test"),
        }
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

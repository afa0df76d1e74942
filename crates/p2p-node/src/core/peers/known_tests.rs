//! What each peer knows, and whom the table tells of a block or a
//! transaction, without sockets.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::tests::{addr, hello, queue, table};
use super::*;
use chain_core::BlockHash;

#[test]
fn each_live_peer_is_told_of_a_transaction_once_until_a_reorg_makes_it_news() {
    let mut t = table();
    let now = Instant::now();
    let mut receivers = Vec::new();
    for (conn, id, port) in [(2, 2, 9002), (3, 3, 9003), (4, 4, 9004)] {
        let (q, rx) = queue();
        receivers.push(rx);
        t.admit(
            conn,
            addr(port),
            Direction::Inbound,
            &hello(id, None),
            q,
            now,
        )
        .unwrap();
    }
    t.on_live(2);
    t.on_live(3);
    let tx = TxId::from_bytes([9; 32]);
    // Peer 3 announced it to us: it is not told again; 4 is not live yet.
    t.knows_txs(3, [&tx]);
    assert_eq!(t.tell_tx(tx), vec![2]);
    assert!(t.tell_tx(tx).is_empty(), "told once");
    assert_eq!(
        t.tell_txs(2, [tx, TxId::from_bytes([8; 32])]),
        vec![TxId::from_bytes([8; 32])]
    );
    t.forget_tx(&tx);
    assert_eq!(
        t.tell_tx(tx),
        vec![2, 3],
        "returned by a reorg: news to every live peer"
    );
    assert!(
        t.tell_txs(99, [tx]).is_empty(),
        "an unknown connection is told nothing"
    );
}

#[test]
fn a_block_is_announced_to_a_peer_that_does_not_have_it_once() {
    let mut t = table();
    let now = Instant::now();
    let (q, _rx) = queue();
    t.admit(2, addr(9000), Direction::Inbound, &hello(2, None), q, now)
        .unwrap();
    t.on_live(2);
    let (a, b) = (
        BlockHash::from_bytes([1; 32]),
        BlockHash::from_bytes([2; 32]),
    );
    assert!(
        !t.tell_block(2, BlockHash::ZERO),
        "its handshake's tip is known to it"
    );
    t.knows_blocks(2, [&a]);
    assert!(!t.tell_block(2, a), "it sent or announced it");
    assert!(t.tell_block(2, b));
    assert!(!t.tell_block(2, b), "told once");
    assert!(!t.tell_block(7, b), "an unknown connection is told nothing");
    t.saw_height(2, 3);
    assert_eq!(t.infos(now)[0].best_height, 7, "never backwards");
    t.saw_height(2, 12);
    assert_eq!(t.infos(now)[0].best_height, 12);
}

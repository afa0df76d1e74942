//! Saving on the core: what must wait for durability waits for the
//! commit, and is then answered as it was asked: the "mine N" answer, the
//! block in the API's snapshot, the transaction index a query reads.
//! (`core/durable_tests.rs` checks the order of commits and releases
//! without sockets.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use p2p_node::store::MemoryStore;
use p2p_node::{Node, Seams};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saving_gives_the_answers_of_what_was_saved() {
    // The simulator's mode too: commits on the core.
    init_logs();
    let a = Node::start_with(
        config(),
        Seams {
            store: Box::new(MemoryStore::default()),
            ..Seams::default()
        },
    )
    .await
    .unwrap();
    let id = a.submit(alice_pays_bob(0)).await.unwrap();
    let mined = a.mine_blocks(2).await.unwrap();
    assert_eq!(a.snapshot().tip, mined[1]);
    let block = a
        .query(move |v| v.store.tx_block(&id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(block, Some(mined[0]));
    a.shutdown().await;
}

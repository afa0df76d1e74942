//! What a message costs the node's processor, as [`Work`] counted from the
//! message (see `crate::cpu`). A core with a simulated processor charges
//! it before it acts on the message; a live core never computes it.
//!
//! Only the work the core does is counted here: a block's validation (its
//! header, its transactions applied, its bytes hashed, and the signatures
//! the node has not checked already), a transaction's admission (its
//! signature and its application to the pending ledger). The simulator
//! charges encoding and decoding on its network and commits in its store.

use chain_core::Block;
use escrow::Tx;
use wire::Message;

use crate::core::inbox::{Command, CoreMsg};
use tokio::time::Instant;

use crate::cpu::{Cpu, Work};
use crate::mempool::Mempool;

/// With a simulated processor `cpu`: charges the work of `msg` and returns
/// when it is done (`None` without one, or for no work).
pub(super) fn charge(cpu: Option<&dyn Cpu>, msg: &CoreMsg, mempool: &Mempool) -> Option<Instant> {
    let cpu = cpu?;
    let work = work_of(msg, mempool);
    (!work.is_none()).then(|| cpu.charge(work))
}

/// The work of acting on `msg`, given the node's `mempool` (whose
/// transactions' signatures the node checked when it admitted them).
pub(super) fn work_of(msg: &CoreMsg, mempool: &Mempool) -> Work {
    match msg {
        CoreMsg::Message { message, .. } => match message {
            Message::Block(block) => block_work(block, mempool),
            Message::SyncBlocks { blocks, .. } => blocks
                .iter()
                .fold(Work::default(), |w, b| w + block_work(b, mempool)),
            Message::Tx(_) => one_tx(),
            // Each header's proof of work: its 96 bytes hashed.
            Message::Headers(headers) => Work {
                hashed_bytes: 96 * headers.len() as u64,
                ..Work::default()
            },
            // Rebuilt and validated in this event if complete: a block of
            // its transactions, its message's bytes hashed (the whole
            // block's are not known before it is rebuilt).
            Message::CompactBlock(c) => Work {
                blocks: 1,
                txs: c.tx_count() as u64,
                hashed_bytes: wire::encoded_len(c) as u64,
                ..Work::default()
            },
            // The missing transactions: their signatures (not in the
            // mempool, so unchecked) in one batch, their bytes hashed.
            Message::BlockTxn { txs, .. } => Work {
                batched_signatures: txs.len() as u64,
                hashed_bytes: wire::encoded_len(txs) as u64,
                ..Work::default()
            },
            _ => Work::default(),
        },
        // Checked together on the connection's task: one batch (a batch
        // of one is a single check).
        CoreMsg::Txs { txs, .. } => {
            let n = txs.len() as u64;
            let (signatures, batched_signatures) = if n == 1 { (1, 0) } else { (0, n) };
            Work {
                signatures,
                batched_signatures,
                txs: n,
                ..Work::default()
            }
        }
        // Its signature is checked on the caller's task, on this machine.
        CoreMsg::Command(Command::SubmitTx { .. }) => one_tx(),
        _ => Work::default(),
    }
}

/// One transaction checked alone and admitted.
fn one_tx() -> Work {
    Work {
        signatures: 1,
        txs: 1,
        ..Work::default()
    }
}

/// Validating `block`: its header, every transaction applied, its bytes
/// hashed, and, in one batch, the signatures of the transactions that are
/// not in the mempool (those were checked on admission, and the node's
/// signature cache has them).
fn block_work(block: &Block<Tx>, mempool: &Mempool) -> Work {
    let unseen = block
        .transactions
        .iter()
        .filter(|tx| match tx {
            Tx::Signed(signed) => !mempool.contains(&signed.id()),
            _ => false,
        })
        .count() as u64;
    Work {
        blocks: 1,
        txs: block.transactions.len() as u64,
        hashed_bytes: wire::encoded_len(block) as u64,
        batched_signatures: unseen,
        ..Work::default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use escrow::{Genesis, Payload, SignedTx, dev};

    use super::*;

    fn signed(nonce: u64) -> SignedTx {
        let alice = dev::keypair("alice").unwrap();
        let to = dev::address("bob").unwrap();
        let network = Genesis::dev().ledger().network();
        SignedTx::sign(
            &alice,
            nonce,
            escrow::Amount::new(1),
            network,
            Payload::Transfer {
                to,
                amount: escrow::Amount::new(1),
            },
        )
    }

    #[test]
    fn a_blocks_work_counts_its_bytes_and_only_the_signatures_not_pooled() {
        let chain = Genesis::dev().chain().unwrap();
        let mut pool = Mempool::new(chain.state(), 1, 100, 10);
        let (first, second) = (signed(0), signed(1));
        pool.add(first.clone(), None).unwrap();
        let block = Block {
            header: chain.template(&[], 0),
            transactions: vec![
                Tx::Coinbase {
                    to: dev::address("eve").unwrap(),
                    height: 1,
                },
                Tx::Signed(first),
                Tx::Signed(second),
            ],
        };
        let message = CoreMsg::Message {
            conn: 1,
            message: Message::Block(block.clone()),
        };
        let work = work_of(&message, &pool);
        assert_eq!(work.blocks, 1);
        assert_eq!(work.txs, 3);
        assert_eq!(work.batched_signatures, 1, "the pooled one was checked");
        assert_eq!(work.hashed_bytes, wire::encoded_len(&block) as u64);
        // Twice the blocks, twice the work.
        let twice = CoreMsg::Message {
            conn: 1,
            message: Message::SyncBlocks {
                blocks: wire::Bounded::truncating(vec![block.clone(), block]),
                more: false,
            },
        };
        assert_eq!(work_of(&twice, &pool), work + work);
        let ping = CoreMsg::Message {
            conn: 1,
            message: Message::Ping { nonce: 1 },
        };
        assert!(work_of(&ping, &pool).is_none());
    }
}

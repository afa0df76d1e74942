//! The stored records a node reads back: block bodies, undo records, the
//! ledger snapshot, the saved mempool and the saved bans. Each input
//! replaces one record of a store as a node leaves it (`stored::Base`; the
//! undo record in its stored form, written against block 2) and
//! starts a node on it: the record is decoded by the store's own decoder
//! (`p2p_node::fuzzing`, checksum first), then the start restores the
//! chain from it (applying a stored block, undoing block 2 with a stored
//! undo record, checking a snapshot) and re-admits the mempool and the
//! bans. A start may refuse the store, naming what is wrong; it must not
//! panic, and a node that starts must answer.
//!
//! Input: byte 0 picks the record (low 3 bits: block, undo, snapshot,
//! mempool, bans) and how the rest is read (bit 4: the rest is the whole
//! record; otherwise it is XORed over the base's own encoding of that
//! record, longer input appending bytes, so an empty rest is the valid
//! record; bit 5: no checksum is added, the rest is the stored value);
//! byte 1 is the block's `fix_up` bits.

#![no_main]

use std::sync::LazyLock;

use escrow_chain_fuzz::chain::{fix_up, small_chain};
use escrow_chain_fuzz::node::start;
use escrow_chain_fuzz::stored::{Base, Replace};
use libfuzzer_sys::fuzz_target;
use p2p_node::fuzzing;
use tokio::runtime::Runtime;

static BASE: LazyLock<Base> = LazyLock::new(Base::new);

static RT: LazyLock<Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
});

/// The base's encoding of record `kind`.
fn base_bytes(kind: u8) -> Vec<u8> {
    let base = &*BASE;
    let encoded = match kind {
        0 => postcard::to_stdvec(&base.main[1]),
        1 => Ok(base.undo.encode_against(&base.main[1].transactions)),
        2 => postcard::to_stdvec(&base.snapshot),
        3 => postcard::to_stdvec(&base.mempool),
        _ => postcard::to_stdvec(&base.bans),
    };
    encoded.expect("the base encodes")
}

fuzz_target!(|data: &[u8]| {
    let Some((&[mode, fix], rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let kind = (mode & 7) % 5;
    let mut bytes = if mode & 0x10 != 0 {
        rest.to_vec()
    } else {
        let mut bytes = base_bytes(kind);
        for (i, b) in rest.iter().enumerate() {
            match bytes.get_mut(i) {
                Some(x) => *x ^= b,
                None => bytes.push(*b),
            }
        }
        bytes
    };
    if mode & 0x20 == 0 {
        bytes = fuzzing::with_checksum(&bytes);
    }
    let mut with = Replace::default();
    let decoded = match kind {
        0 => fuzzing::decode_block(&bytes).map(|mut block| {
            fix_up(&mut block, &small_chain(), fix);
            with.block = Some(block);
        }),
        1 => fuzzing::decode_undo(&bytes, &BASE.main[1]).map(|undo| {
            with.undo = Some(undo);
            with.side = true;
        }),
        2 => fuzzing::decode_snapshot(&bytes).map(|s| with.snapshot = Some(s)),
        3 => fuzzing::decode_mempool(&bytes).map(|m| with.mempool = Some(m)),
        _ => fuzzing::decode_bans(&bytes).map(|b| with.bans = Some(b)),
    };
    if decoded.is_err() {
        return;
    }
    let store = BASE.store(with);
    RT.block_on(async {
        if let Ok((node, _incoming)) = start(Box::new(store)).await {
            node.tip().await.expect("a node that started answers");
            node.shutdown().await;
        }
    });
});

//! Block decoding and validation against a small chain: the bytes after
//! the first are a wire message body (a `Block` or `SyncBlocks` as a peer
//! sends it); each decoded block is inserted into genesis plus two blocks
//! on a network whose target every hash meets. The first byte says what
//! the harness mends before inserting (`fix_up`: parent and height,
//! timestamp and target, signatures, merkle root), so that besides the
//! header rules the fuzzer reaches the merkle rule and the ledger's rules.
//! After every insert the chain must still be whole: its tip's ledger
//! holds exactly the coins the chain issued.

#![no_main]

use escrow_chain_fuzz::chain::{NOW_MS, fix_up, small_chain};
use libfuzzer_sys::fuzz_target;
use wire::{Message, decode_body};

fuzz_target!(|data: &[u8]| {
    let Some((&fix, body)) = data.split_first() else {
        return;
    };
    let blocks = match decode_body(body) {
        Ok(Message::Block(block)) => vec![block],
        Ok(Message::SyncBlocks { blocks, .. }) => blocks.into_inner(),
        _ => return,
    };
    let mut chain = small_chain();
    for mut block in blocks.into_iter().take(8) {
        fix_up(&mut block, &chain, fix);
        let _ = chain.insert(block, NOW_MS);
        let ledger = chain.state();
        assert_eq!(
            ledger.total_supply(),
            Some(ledger.issued()),
            "the best tip's ledger holds what was issued"
        );
    }
});

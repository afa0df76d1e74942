//! The genesis file: its text is read as `Genesis::load` reads it
//! (`Genesis::from_json`); a genesis that passes must give a network a
//! node can start: its chain builds (or is refused with an error), and a
//! block on it, mended to its rules, is judged without a panic whatever
//! the rules' numbers are (targets, timestamp spans, size limits,
//! retargeting). Mining is done only where the target is easy enough.

#![no_main]

use chain_core::{Block, Transaction, merkle_root};
use escrow::{Genesis, Tx};
use libfuzzer_sys::fuzz_target;

/// Hardest target the harness mines a block for (leading zero bits).
const MINE_AT_MOST_BITS: u32 = 8;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(genesis) = Genesis::from_json(text) else {
        return;
    };
    // What the file says is what the node runs: the JSON round-trips.
    let again = Genesis::from_json(&genesis.to_json()).expect("a loaded genesis reloads");
    assert_eq!(again, genesis, "a genesis survives its own JSON");
    let _ = genesis.network_id();
    let Ok(mut chain) = genesis.chain() else {
        return;
    };
    if genesis.params.initial_target_bits > MINE_AT_MOST_BITS {
        return;
    }
    let now = genesis.timestamp_ms.saturating_add(1_000);
    let transactions = vec![Tx::Coinbase {
        to: genesis
            .allocations
            .first()
            .map_or(escrow::Address::ZERO, |a| a.to),
        height: 1,
    }];
    let mut header = chain.template(&transactions, now);
    let leaves: Vec<_> = transactions.iter().map(Transaction::commitment).collect();
    header.merkle_root = merkle_root(&leaves);
    let Ok(target) = header.target.to_target() else {
        return;
    };
    for nonce in 0..(1u64 << (MINE_AT_MOST_BITS + 4)) {
        header.nonce = nonce;
        if target.is_met_by(&header.hash()) {
            break;
        }
    }
    let block = Block {
        header,
        transactions,
    };
    let _ = chain.insert(block, now);
});

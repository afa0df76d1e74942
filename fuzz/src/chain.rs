//! A trivial-target dev network and a small chain on it.

use chain_core::{Block, BlockHash, Chain, ChainParams, Transaction, merkle_root};
use escrow::genesis::DEV_GENESIS_TIME_MS;
use escrow::{Amount, Genesis, Keypair, Ledger, Payload, SignedTx, Tx, dev};

/// The clock the targets judge blocks by: an hour after genesis.
pub const NOW_MS: u64 = DEV_GENESIS_TIME_MS + 3_600_000;

/// The dev network with a target of zero leading bits: every hash meets
/// it, so the proof of work never stops a fuzzed block before the rules
/// that follow it.
pub fn genesis() -> Genesis {
    let mut g = Genesis::dev();
    g.params = ChainParams::with_target_bits(0);
    g
}

/// Dev account number `i` (modulo their count).
pub fn dev_key(i: usize) -> Keypair {
    let name = dev::DEV_ACCOUNTS[i % dev::DEV_ACCOUNTS.len()];
    dev::keypair(name).expect("a dev account has a key")
}

/// A block on the chain's tip: a coinbase to alice, then `signed`.
pub fn block_on_tip(chain: &Chain<Ledger>, signed: Vec<SignedTx>) -> Block<Tx> {
    let height = chain.height() + 1;
    let mut transactions = vec![Tx::Coinbase {
        to: dev_key(0).address(),
        height,
    }];
    transactions.extend(signed.into_iter().map(Tx::Signed));
    let header = chain.template(&transactions, NOW_MS);
    Block {
        header,
        transactions,
    }
}

/// Genesis and two blocks: alice pays bob, then bob opens an escrow with
/// charlie as seller and dave as arbiter.
pub fn small_chain() -> Chain<Ledger> {
    let g = genesis();
    let network = g.network_id();
    let mut chain = g.chain().expect("the dev genesis applies");
    let pay = SignedTx::sign(
        &dev_key(0),
        0,
        escrow::Amount::new(1),
        network,
        Payload::Transfer {
            to: dev_key(1).address(),
            amount: Amount::new(100),
        },
    );
    let b1 = block_on_tip(&chain, vec![pay]);
    chain.insert(b1, NOW_MS).expect("block 1 applies");
    let escrow = SignedTx::sign(
        &dev_key(1),
        0,
        escrow::Amount::new(1),
        network,
        Payload::EscrowCreate {
            seller: dev_key(2).address(),
            arbiter: dev_key(3).address(),
            amount: Amount::new(10),
            delivery_deadline: 10,
            dispute_window: 5,
        },
    );
    let b2 = block_on_tip(&chain, vec![escrow]);
    chain.insert(b2, NOW_MS).expect("block 2 applies");
    chain
}

/// `tx` again, signed by dev account `who` on `network`: the fuzzer picks
/// the payload and the nonce, the harness makes the signature valid, so
/// the ledger's rules see the transaction.
pub fn resign(tx: &SignedTx, who: usize, network: BlockHash) -> SignedTx {
    SignedTx::sign(
        &dev_key(who),
        tx.body.nonce,
        escrow::Amount::new(1),
        network,
        tx.body.payload.clone(),
    )
}

/// Makes a fuzzed block one that the header rules pass on `chain`'s tip,
/// as far as `fix` asks: bit 0 the parent and height, bit 1 the
/// timestamp and target, bit 2 the signatures (re-signed by dev
/// accounts), bit 3 the merkle root (last, so it commits to the rest).
pub fn fix_up(block: &mut Block<Tx>, chain: &Chain<Ledger>, fix: u8) {
    if fix & 1 != 0 {
        block.header.parent = chain.tip();
        block.header.height = chain.height() + 1;
    }
    if fix & 2 != 0 {
        block.header.timestamp_ms = chain.next_timestamp(NOW_MS);
        block.header.target = chain.next_target();
    }
    if fix & 4 != 0 {
        let network = chain.genesis_hash();
        for (i, tx) in block.transactions.iter_mut().enumerate() {
            if let Tx::Signed(s) = tx {
                *s = resign(s, i, network);
            }
        }
    }
    if fix & 8 != 0 {
        let leaves: Vec<_> = block
            .transactions
            .iter()
            .map(Transaction::commitment)
            .collect();
        block.header.merkle_root = merkle_root(&leaves);
    }
}

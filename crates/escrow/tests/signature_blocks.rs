//! Bad signatures inside blocks: the two reproductions of the bugs that made
//! the signature rule (a mixed-order signature judged differently by thread
//! count, coins taken from the identity key), and a spoiled signature applied
//! through the ledger on every verify mode and through the chain.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use chain_core::{BlockContext, BlockHash, StateMachine};
use common::crafted::{FILLER, SMALL_ORDER, Signer, bytes32, decode, small_order};
use curve25519_dalek::scalar::Scalar;
use escrow::signature::{self, SignatureError};
use escrow::{
    Amount, Genesis, Ledger, LedgerError, Payload, PublicKey, SignedTx, Tx, TxBody, VerifyMode, dev,
};

/// The first reproduction: a 600-transfer block with one mixed-order
/// signature was judged differently by 1, 2 and 16 verifying threads.
#[test]
fn a_600_transfer_block_with_a_mixed_order_signature_has_one_verdict() {
    let signer = Signer::new(21);
    let torsion = small_order();
    for (j, t) in torsion.iter().enumerate().skip(1) {
        let t = decode(t).unwrap();
        for (valid, name) in [(true, "valid"), (false, "invalid")] {
            let mut crafted = signer.sign(0, Scalar::from(4242u64 + j as u64), t, None);
            if !valid {
                crafted.signature.0[40] ^= 0x10;
            }
            for position in [0, 299, 599] {
                let mut txs: Vec<SignedTx> = FILLER[..599].to_vec();
                txs.insert(position, crafted.clone());
                let refs: Vec<&SignedTx> = txs.iter().collect();
                let verdicts: Vec<_> = [1, 2, 16]
                    .iter()
                    .map(|&threads| signature::verify_block(&refs, threads))
                    .collect();
                let single = refs
                    .iter()
                    .enumerate()
                    .try_for_each(|(i, tx)| tx.check_signature().map_err(|e| (i, e)));
                for v in &verdicts {
                    assert_eq!(*v, single, "T{j} {name} at {position}");
                }
                assert_eq!(single.is_ok(), valid, "T{j} {name} at {position}");
            }
        }
    }
}

/// The second reproduction: coins at the identity key's address were taken
/// with the signature (R = identity, S = 0) inside a block.
#[test]
fn a_block_spending_from_the_identity_key_is_refused_and_changes_nothing() {
    let identity = bytes32(SMALL_ORDER[0]);
    let victim = PublicKey(identity).address();
    let mut genesis = Genesis::dev();
    genesis.allocations.push(escrow::genesis::Allocation {
        to: victim,
        amount: Amount::new(5_000),
    });
    let mut chain = genesis.chain().unwrap();
    let before = chain.state().clone();
    let theft = SignedTx {
        body: TxBody {
            sender: PublicKey(identity),
            nonce: 0,
            fee: escrow::Amount::ZERO,
            network: before.network(),
            payload: Payload::Transfer {
                to: dev::address("eve").unwrap(),
                amount: Amount::new(5_000),
            },
        },
        signature: escrow::Signature([0; 64]),
    };
    {
        let mut sig = [0u8; 64];
        sig[0] = 1; // R = identity, S = 0
        let mut theft = theft.clone();
        theft.signature = escrow::Signature(sig);
        assert_eq!(theft.check_signature(), Err(SignatureError::WeakKey));
        // Alone and among valid transactions, on every thread count.
        let alice = dev::keypair("alice").unwrap();
        let honest = SignedTx::sign(
            &alice,
            0,
            escrow::Amount::ZERO,
            before.network(),
            Payload::Transfer {
                to: dev::address("bob").unwrap(),
                amount: Amount::new(1),
            },
        );
        for txs in [vec![theft.clone()], vec![honest.clone(), theft.clone()]] {
            let mut block_txs = vec![Tx::Coinbase {
                to: dev::address("ferdie").unwrap(),
                height: 1,
            }];
            block_txs.extend(txs.into_iter().map(Tx::Signed));
            let now = genesis.timestamp_ms + 1_000;
            let block = common::mine_on(&chain, block_txs, now);
            let err = chain.insert(block, now).unwrap_err();
            assert!(
                err.to_string().contains("small order"),
                "refused for the weak key: {err}"
            );
            assert_eq!(chain.state(), &before, "nothing moved");
            assert_eq!(chain.state().balance(&victim), Amount::new(5_000));
        }
    }
}

#[test]
fn ledgers_on_one_and_many_threads_agree_on_a_bad_block() {
    // Same test through the ledger, with a nonce error before the bad
    // signature: signatures are checked first, on every mode.
    let ledger = common::dev_ledger();
    let alice = dev::keypair("alice").unwrap();
    let mut txs = vec![Tx::Coinbase {
        to: dev::address("ferdie").unwrap(),
        height: 1,
    }];
    for nonce in 0..100u64 {
        txs.push(Tx::Signed(SignedTx::sign(
            &alice,
            nonce + 5,
            escrow::Amount::ZERO,
            ledger.network(),
            Payload::Transfer {
                to: dev::address("bob").unwrap(),
                amount: Amount::new(1),
            },
        )));
    }
    if let Some(Tx::Signed(s)) = txs.get_mut(70) {
        s.signature.0[1] ^= 1;
    }
    let ctx = BlockContext {
        hash: BlockHash::from_bytes([1; 32]),
        height: 1,
        timestamp_ms: 1,
    };
    let verdicts: Vec<Result<_, LedgerError>> = [
        VerifyMode::Single,
        VerifyMode::Batch { threads: 1 },
        VerifyMode::Batch { threads: 2 },
        VerifyMode::Batch { threads: 7 },
    ]
    .into_iter()
    .map(|mode| {
        let mut l: Ledger = ledger.clone();
        l.set_verify_mode(mode);
        l.apply_block(&ctx, &txs).map(|_| ())
    })
    .collect();
    for v in &verdicts {
        assert!(
            matches!(
                v,
                Err(LedgerError::BadSignature {
                    reason: SignatureError::Invalid,
                    ..
                })
            ),
            "{v:?}"
        );
        assert_eq!(v, &verdicts[0]);
    }
}

/// A copy of a valid block with one signature spoiled must not share the
/// valid block's hash: the merkle leaves commit to signatures, so the copy
/// fails its merkle root and the valid block is still accepted after it.
#[test]
fn a_spoiled_copy_of_a_block_does_not_poison_the_valid_one() {
    let genesis = Genesis::dev();
    let mut chain = genesis.chain().unwrap();
    let alice = dev::keypair("alice").unwrap();
    let transfer = SignedTx::sign(
        &alice,
        0,
        escrow::Amount::ZERO,
        chain.state().network(),
        Payload::Transfer {
            to: dev::address("bob").unwrap(),
            amount: Amount::new(5),
        },
    );
    let now = genesis.timestamp_ms + 1_000;
    let valid = common::mine_on(
        &chain,
        vec![
            Tx::Coinbase {
                to: dev::address("ferdie").unwrap(),
                height: 1,
            },
            Tx::Signed(transfer),
        ],
        now,
    );
    let mut spoiled = valid.clone();
    if let Some(Tx::Signed(s)) = spoiled.transactions.get_mut(1) {
        s.signature.0[3] ^= 1;
    }
    let err = chain.insert(spoiled, now).unwrap_err();
    assert!(err.to_string().contains("merkle"), "{err}");
    assert!(!chain.is_known_invalid(&valid.hash()));
    assert!(matches!(
        chain.insert(valid, now),
        Ok(chain_core::tree::Inserted::NewBest(_))
    ));
    assert_eq!(chain.height(), 1);
}

/// The state is applied while the pool checks signatures; a bad signature
/// found after the state applied must roll it back.
#[test]
fn a_bad_signature_rolls_back_a_state_applied_alongside_the_checks() {
    let ledger = common::dev_ledger();
    let alice = dev::keypair("alice").unwrap();
    let mut txs = vec![Tx::Coinbase {
        to: dev::address("ferdie").unwrap(),
        height: 1,
    }];
    for nonce in 0..200u64 {
        txs.push(Tx::Signed(SignedTx::sign(
            &alice,
            nonce,
            escrow::Amount::ZERO,
            ledger.network(),
            Payload::Transfer {
                to: dev::address("bob").unwrap(),
                amount: Amount::new(1),
            },
        )));
    }
    let ctx = BlockContext {
        hash: BlockHash::from_bytes([1; 32]),
        height: 1,
        timestamp_ms: 1,
    };
    for threads in [2, 3, 16] {
        let mut good = ledger.clone();
        good.set_verify_mode(VerifyMode::Batch { threads });
        assert!(good.apply_block(&ctx, &txs).is_ok(), "{threads} threads");
        let mut spoiled = txs.clone();
        if let Some(Tx::Signed(s)) = spoiled.get_mut(150) {
            s.signature.0[7] ^= 2;
        }
        let mut l = ledger.clone();
        l.set_verify_mode(VerifyMode::Batch { threads });
        let before = l.clone();
        let err = l.apply_block(&ctx, &spoiled).unwrap_err();
        assert!(
            matches!(
                err,
                LedgerError::BadSignature {
                    reason: SignatureError::Invalid,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(
            l, before,
            "{threads} threads: the state applied alongside was rolled back"
        );
    }
}

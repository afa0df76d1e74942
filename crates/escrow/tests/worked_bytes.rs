//! The worked example of `docs/ESCROW.md` ("Example: a signed transfer"):
//! the bytes, id and commitment written there are what the code makes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on a broken expectation

use chain_core::Transaction;
use escrow::{Amount, Genesis, Payload, SignedTx, Tx, dev};

#[test]
fn the_documented_transfer_is_what_the_code_signs() {
    let network = Genesis::dev().network_id();
    let tx = SignedTx::sign(
        &dev::keypair("alice").unwrap(),
        0,
        Amount::new(1),
        network,
        Payload::Transfer {
            to: dev::address("bob").unwrap(),
            amount: Amount::new(100),
        },
    );
    let body = tx.body.to_bytes();
    let documented_body = concat!(
        "703efb46d0db91d5f6ee62837cc2d91033d9e2ea10bd7ebd7051e8b95dd5f362",
        "00",
        "01",
        "164d7079cdf33778734edf851ead51973d8befa1e607e032b5ef9777069c05c4",
        "00",
        "48ce6d266c6bbbc3197ba9cc16222ab6d754c7ebffe260a470e4b8cbb172ac3d",
        "64",
    );
    assert_eq!(hex::encode(&body), documented_body);
    assert_eq!(body.len(), 100);
    let all = tx.to_bytes();
    assert_eq!(all.len(), 164);
    assert_eq!(tx.size(), 164);
    assert_eq!(
        hex::encode(&all[100..]),
        concat!(
            "df76cbc221385535d306910938213c4446b9b44abb40ff887b32bd884eaf2a71",
            "bcae75e2c1fa6e2382d650f5bdfb29e48fad796837db07e5e1a348d1047a8805",
        )
    );
    assert_eq!(
        tx.id().to_string(),
        "663af5f95a32ebc5414dcef607df253fc1ba9b1b94bef8db79ffdb1f4ac3be27"
    );
    assert_eq!(
        Tx::Signed(tx).commitment().to_string(),
        "3f19a4425ee1ca76645e7a871d86046e2696cbbfb6df0393988bfcc3180d369d"
    );
}

//! Inclusion proofs: `GET /txs/{id}/proof`, `GET /headers` and the
//! client's `verify-proof`, through the binary: a proof that holds, every
//! tampering of one (served by a node that lies), a pending or unknown
//! transaction, and a proof from a branch that lost.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/process.rs"]
mod process;

use std::process::{Command, Output};

use chain_core::{Header, InclusionProof};
use escrow::Tx;
use process::{NodeProcess, binary, json_of as json};
use serde_json::Value;

fn verify(node: &str, txid: &str, extra: &[&str]) -> Output {
    Command::new(binary())
        .args(["verify-proof", txid, "--json", "--node", node])
        .args(extra)
        .output()
        .unwrap()
}

fn get(url: &str) -> (u16, Value) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let r = reqwest::get(url).await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    })
}

/// A transfer from alice, mined, then `more` blocks on top; its id.
fn confirmed_transfer(node: &NodeProcess, more: u64) -> String {
    let sent = node.ok(&["transfer", "--as", "alice", "bob", "3", "--wait", "--json"]);
    let id = serde_json::from_str::<Value>(&sent).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    if more > 0 {
        node.ok(&["mine", &more.to_string()]);
    }
    id
}

/// An API that answers `/txs/{id}/proof` with `proof` and `/headers` with
/// `headers`: a node that lies about the proof.
fn lying_node(proof: Value, headers: Value) -> (String, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let app = axum::Router::new()
                .route(
                    "/txs/{id}/proof",
                    axum::routing::get(move || async move { axum::Json(proof) }),
                )
                .route(
                    "/headers",
                    axum::routing::get(move || async move { axum::Json(headers) }),
                );
            // Serves until the test's process ends.
            let _ = tokio::time::timeout(
                process::HANG_GUARD,
                axum::serve(listener, app).into_future(),
            )
            .await;
        });
    });
    (url, server)
}

#[test]
fn a_proof_verifies_at_its_depth_and_every_tampering_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), &["--dev"]);
    // A block with a few transactions, so the branch has siblings.
    for n in 1..4 {
        node.ok(&["transfer", "--as", "charlie", "dave", &n.to_string()]);
    }
    let id = confirmed_transfer(&node, 2);
    let out = verify(&node.api, &id, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = json(&out);
    assert_eq!(said["tx"], id.as_str());
    let height = said["height"].as_u64().unwrap();
    let tip = node.status()["height"].as_u64().unwrap();
    assert_eq!(said["depth"].as_u64().unwrap(), tip - height + 1);
    assert_eq!(said["chain_height"].as_u64().unwrap(), tip);

    // The API's answer agrees with the proof's bytes.
    let (status, answer) = get(&format!("{}/txs/{id}/proof", node.api));
    assert_eq!(status, 200);
    let proof: InclusionProof<Tx> =
        postcard::from_bytes(&hex::decode(answer["proof"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(proof.branch.index, answer["index"].as_u64().unwrap());
    assert_eq!(hex::encode(proof.header.to_bytes()), answer["header"]);
    assert_eq!(
        hex::encode(postcard::to_stdvec(&proof.tx).unwrap()),
        answer["transaction"]
    );
    let (_, headers) = get(&format!("{}/headers", node.api));
    assert_eq!(headers["headers"].as_array().unwrap().len() as u64, tip + 1);
    assert_eq!(headers["tip_height"].as_u64().unwrap(), tip);
    let (_, none) = get(&format!("{}/headers?from={}", node.api, tip + 1));
    assert_eq!(none["headers"].as_array().unwrap().len(), 0);

    // A lying node serves the true headers and a changed proof.
    let other_block: Header = {
        let (_, h) = get(&format!("{}/headers?from=1&count=1", node.api));
        Header::from_bytes(&hex::decode(h["headers"][0].as_str().unwrap()).unwrap()).unwrap()
    };
    let mut tampered: Vec<(&str, InclusionProof<Tx>)> = Vec::new();
    let mut leaf = proof.clone();
    leaf.branch.index = (leaf.branch.index + 1) % leaf.branch.count;
    tampered.push(("index", leaf));
    let mut sibling = proof.clone();
    sibling.branch.siblings[0][7] ^= 0x10;
    tampered.push(("sibling", sibling));
    let mut header = proof.clone();
    header.header = other_block;
    tampered.push(("header", header));
    let mut nonce = proof.clone();
    nonce.header.nonce ^= 1;
    tampered.push(("header nonce", nonce));
    let mut fee = proof.clone();
    if let Tx::Signed(s) = &mut fee.tx {
        s.body.fee = escrow::Amount::new(s.body.fee.get() + 1);
    }
    tampered.push(("leaf", fee));
    for (what, bad) in tampered {
        let mut lie = answer.clone();
        lie["proof"] = Value::String(hex::encode(postcard::to_stdvec(&bad).unwrap()));
        let (url, _server) = lying_node(lie, headers.clone());
        let out = verify(&url, &id, &[]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{what}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(json(&out)["code"], "proof_invalid", "{what}");
    }
    // Garbage for a proof.
    let mut lie = answer.clone();
    lie["proof"] = Value::String("00ff".to_string());
    let (url, _server) = lying_node(lie, headers.clone());
    assert_eq!(json(&verify(&url, &id, &[]))["code"], "proof_invalid");
    node.stop();
}

#[test]
fn a_pending_or_unknown_transaction_has_no_proof() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), &["--dev", "--mine", "off"]);
    let sent = node.ok(&["transfer", "--as", "alice", "bob", "3", "--json"]);
    let id = serde_json::from_str::<Value>(&sent).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = get(&format!("{}/txs/{id}/proof", node.api));
    assert_eq!((status, body["code"].as_str()), (409, Some("tx_pending")));
    let out = verify(&node.api, &id, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["code"], "tx_pending");
    let unknown = "ab".repeat(32);
    let (status, body) = get(&format!("{}/txs/{unknown}/proof", node.api));
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    let (status, body) = get(&format!("{}/txs/abc/proof", node.api));
    assert_eq!((status, body["code"].as_str()), (400, Some("bad_hash")));
    let (status, body) = get(&format!("{}/headers?from=x", node.api));
    assert_eq!((status, body["code"].as_str()), (400, Some("bad_range")));
    let out = verify(&node.api, "abc", &[]);
    assert_eq!(out.status.code(), Some(2));
    node.stop();
}

#[test]
fn a_proof_from_a_branch_that_lost_fails_against_the_winning_chain() {
    // Two nodes that never meet: A confirms the transaction in its block 1;
    // B mines a longer chain of its own.
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = NodeProcess::start(da.path(), &["--dev"]);
    let b = NodeProcess::start(db.path(), &["--dev", "--mine", "off"]);
    let id = confirmed_transfer(&a, 0);
    b.ok(&["mine", "3"]);
    let alone = verify(&a.api, &id, &[]);
    assert!(
        alone.status.success(),
        "{}",
        String::from_utf8_lossy(&alone.stderr)
    );
    assert_eq!(json(&alone)["depth"], 1);
    // Given B's headers too, the chain of most work is B's, without it.
    let both = verify(
        &a.api,
        &id,
        &["--headers-from", &a.api, "--headers-from", &b.api],
    );
    assert_eq!(both.status.code(), Some(1));
    let said = json(&both);
    assert_eq!(said["code"], "proof_invalid");
    assert!(
        said["message"]
            .as_str()
            .unwrap()
            .contains("not in the chain of headers"),
        "{said}"
    );
    a.stop();
    b.stop();
}

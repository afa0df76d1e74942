//! The client against a scripted API server: answers a real node gives
//! only in rare states (a dropped transaction, an ambiguous prefix, a
//! pending contract) or never (something else on the port), so each of
//! the client's handlings is checked exactly, and what it sends is
//! recorded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/process.rs"]
mod process;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use chain_core::{BlockHash, TxId};
use escrow::{Amount, ContractId, Payload, SignedTx, Tx, dev};
use p2p_node::api_types::{AccountAnswer, StatusAnswer, TxAnswer, TxLookupAnswer, TxStatus};
use serde_json::{Value, json};

/// One recorded request: method, path, authorization header, body.
type Request = (String, String, Option<String>, String);

/// A scripted API: `answer(method, path, body)` gives (status, body);
/// status 0 is no answer at all (the connection is kept open, as by a
/// node stopped with SIGSTOP).
struct Fake {
    url: String,
    seen: Arc<Mutex<Vec<Request>>>,
}

impl Fake {
    fn start(answer: fn(&str, &str, &str) -> (u16, String)) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or("").to_string();
                let path = parts.next().unwrap_or("").to_string();
                let (mut length, mut auth) = (0usize, None);
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                    let lower = h.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    if lower.starts_with("authorization:") {
                        auth = Some(h[14..].trim().to_string());
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let body = String::from_utf8_lossy(&body).into_owned();
                let (status, reply) = answer(&method, &path, &body);
                log.lock().unwrap().push((method, path, auth, body));
                if status == 0 {
                    held.push(stream);
                    continue;
                }
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
                    reply.len()
                );
            }
        });
        Fake { url, seen }
    }

    /// Runs the client against this server.
    fn cli(&self, args: &[&str]) -> Output {
        Command::new(process::binary())
            .args(args)
            .args(["--node", &self.url])
            .env_remove("P2P_NODE_DATA_DIR")
            .output()
            .unwrap()
    }

    fn requests(&self) -> Vec<Request> {
        self.seen.lock().unwrap().clone()
    }
}

fn err(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn out(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The transaction the fake drops, and the one that creates the pending
/// contract.
fn dropped_tx() -> TxId {
    TxId::from_bytes([0xd0; 32])
}
fn creating_tx() -> TxId {
    TxId::from_bytes([0xbb; 32])
}

fn status() -> String {
    serde_json::to_string(&StatusAnswer {
        network: BlockHash::from_bytes([1; 32]),
        node_id: "00".into(),
        height: 5,
        tip: BlockHash::from_bytes([2; 32]),
        total_work: 1.0,
        peers: 0,
        mempool: 0,
        mempool_bytes: 0,
        min_fee_rate: 1,
        mining: "off".into(),
        started_at_ms: 1_700_000_000_000,
        sync: None,
    })
    .unwrap()
}

#[test]
fn status_shows_a_sync_in_progress() {
    let fake = Fake::start(|method, path, body| {
        if path != "/status" {
            return answer(method, path, body);
        }
        let mut s: StatusAnswer = serde_json::from_str(&status()).unwrap();
        s.sync = Some(p2p_node::api_types::SyncAnswer {
            headers: 9,
            blocks: 5,
            seconds_left: Some(12.0),
        });
        (200, serde_json::to_string(&s).unwrap())
    });
    let o = fake.cli(&["status"]);
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(
        out.contains("syncing blocks 5 of 9 headers (55.6 %), about 12 s left"),
        "{out}"
    );
    let o = fake.cli(&["status", "--json"]);
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["sync"]["headers"], 9);
}

fn account(path: &str) -> String {
    let address = path.trim_start_matches("/accounts/").parse().unwrap();
    serde_json::to_string(&AccountAnswer {
        address,
        name: None,
        balance: Amount::new(100),
        nonce: 0,
        pending_balance: Amount::new(100),
        pending_nonce: 0,
    })
    .unwrap()
}

fn error(code: &str, message: &str, extra: Value) -> String {
    let mut e = json!({"code": code, "message": message});
    if let (Some(e), Value::Object(extra)) = (e.as_object_mut(), extra) {
        e.extend(extra);
    }
    e.to_string()
}

fn answer(method: &str, path: &str, _body: &str) -> (u16, String) {
    let alice = dev::address("alice").unwrap();
    let lookup = |status, reason: Option<String>, tx: &Tx| {
        serde_json::to_string(&TxLookupAnswer {
            status,
            block: None,
            height: None,
            confirmations: None,
            reason,
            tx: TxAnswer::from(tx),
        })
        .unwrap()
    };
    match (method, path) {
        ("GET", "/status") => (200, status()),
        ("GET", p) if p.starts_with("/accounts/") => (200, account(p)),
        ("GET", "/fees/estimate?blocks=2") => (
            200,
            json!({
                "blocks": 2, "fee_rate": 1, "min_fee_rate": 1,
                "from_mempool": null, "from_blocks": null, "transfer_fee": 1,
            })
            .to_string(),
        ),
        // Every submission gets the id the fake drops.
        ("POST", "/txs") => (201, json!({"id": dropped_tx()}).to_string()),
        ("POST", "/mine") => (
            200,
            json!({"blocks": [BlockHash::from_bytes([3; 32])]}).to_string(),
        ),
        ("GET", p) if p == format!("/txs/{}", dropped_tx()) => (
            200,
            lookup(
                TxStatus::Dropped,
                Some(format!(
                    "transaction {}: nonce 0 of {alice} was taken",
                    dropped_tx().short()
                )),
                &Tx::Coinbase {
                    to: alice,
                    height: 1,
                },
            ),
        ),
        ("GET", p) if p == format!("/txs/{}", creating_tx()) => {
            let key = dev::keypair("charlie").unwrap();
            let payload = Payload::EscrowCreate {
                seller: dev::address("dave").unwrap(),
                arbiter: dev::address("eve").unwrap(),
                amount: Amount::new(50),
                delivery_deadline: 105,
                dispute_window: 20,
            };
            let tx = Tx::Signed(SignedTx::sign(
                &key,
                0,
                escrow::Amount::new(1),
                BlockHash::from_bytes([1; 32]),
                payload,
            ));
            (200, lookup(TxStatus::Pending, None, &tx))
        }
        ("GET", "/txs/aaaaaaaa") | ("GET", "/contracts/aaaaaaaa") | ("GET", "/blocks/aaaaaaaa") => {
            (
                409,
                error(
                    "ambiguous",
                    "the prefix aaaaaaaa matches 2 ids: give more digits",
                    json!({"matches": ["a".repeat(64), format!("aaaaaaaa{}", "b".repeat(56))]}),
                ),
            )
        }
        ("GET", "/contracts/bbbbbbbb") => (
            404,
            error(
                "contract_pending",
                "the contract is not created yet",
                json!({"tx": creating_tx()}),
            ),
        ),
        ("GET", p) if p.starts_with("/contracts/") => (
            400,
            error("not_buyer", &format!("{alice} is not the buyer"), json!({})),
        ),
        // Something other than a node's API.
        ("GET", "/blocks?from=0&to=5") => (200, "<html>hello</html>".to_string()),
        _ => (404, "not json".to_string()),
    }
}

#[test]
fn wait_ends_with_the_reason_when_the_transaction_is_dropped() {
    let fake = Fake::start(answer);
    let o = fake.cli(&["transfer", "--as", "alice", "bob", "5", "--wait"]);
    assert_eq!(o.status.code(), Some(5), "{}", err(&o));
    let e = err(&o);
    assert!(
        e.contains(&format!("transaction {} was dropped", dropped_tx())),
        "{e}"
    );
    // The reason, with the dev account named.
    assert!(e.contains("was taken") && e.contains("of alice"), "{e}");
    assert!(out(&o).contains(&format!("submitted transfer {}", dropped_tx())));
    let o = fake.cli(&["transfer", "--as", "alice", "bob", "5", "--wait", "--json"]);
    assert_eq!(o.status.code(), Some(5));
    let e: Value = serde_json::from_str(err(&o).trim()).unwrap();
    assert_eq!(e["code"], "dropped");
    // `tx` shows a dropped transaction as an answer.
    let o = fake.cli(&["tx", &dropped_tx().to_string()]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(out(&o).contains("dropped: transaction"), "{}", out(&o));
}

#[test]
fn an_ambiguous_prefix_prints_its_matches() {
    let fake = Fake::start(answer);
    for args in [
        &["tx", "aaaaaaaa"][..],
        &["contract", "aaaaaaaa"],
        &["block", "aaaaaaaa"],
    ] {
        let o = fake.cli(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", err(&o));
        let e = err(&o);
        assert!(
            e.starts_with("error: the prefix aaaaaaaa matches 2 ids"),
            "{e}"
        );
        assert!(e.contains(&format!("\n  {}\n", "a".repeat(64))), "{e}");
        let o = fake.cli(&[args, &["--json"][..]].concat());
        let e: Value = serde_json::from_str(err(&o).trim()).unwrap();
        assert_eq!(e["code"], "ambiguous");
        assert_eq!(e["matches"].as_array().unwrap().len(), 2);
    }
    // Too short, or not hex: refused before asking.
    let before = fake.requests().len();
    for bad in ["aaaa", "zzzzzzzzzz", "../status", "aaaaaaaa/x"] {
        let o = fake.cli(&["tx", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}");
        assert!(err(&o).contains("at least 8 hex digits"), "{}", err(&o));
    }
    assert_eq!(fake.requests().len(), before, "a bad id was sent");
}

#[test]
fn a_pending_contract_is_shown_as_pending_and_acted_on_by_its_full_id() {
    let fake = Fake::start(answer);
    let contract = ContractId::from_tx(&creating_tx());
    let o = fake.cli(&["contract", "bbbbbbbb"]);
    assert!(o.status.success(), "{}", err(&o));
    let text = out(&o);
    assert!(
        text.contains(&format!("contract {contract} is pending")),
        "{text}"
    );
    assert!(text.contains(&creating_tx().to_string()), "{text}");
    assert!(
        text.contains("charlie locks 50 for dave with arbiter eve"),
        "{text}"
    );
    let o = fake.cli(&["contract", "bbbbbbbb", "--json"]);
    let j: Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(j["status"], "pending");
    assert_eq!(j["id"], contract.to_string());

    // An action on a prefix signs the full id the node resolved.
    let o = fake.cli(&["escrow", "dispute", "--as", "charlie", "bbbbbbbb"]);
    assert!(o.status.success(), "{}", err(&o));
    let (_, _, _, body) = fake
        .requests()
        .into_iter()
        .rfind(|r| r.0 == "POST" && r.1 == "/txs")
        .unwrap();
    let hex_tx: Value = serde_json::from_str(&body).unwrap();
    let tx = SignedTx::from_bytes(&hex::decode(hex_tx["tx"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(tx.body.payload, Payload::RaiseDispute { contract });
}

#[test]
fn refusals_name_dev_accounts_and_a_foreign_server_is_unexpected() {
    let fake = Fake::start(answer);
    let o = fake.cli(&["contract", "cccccccc-cccc"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(err(&o).trim(), "error: alice is not the buyer (not_buyer)");
    // --json keeps the API's message as it is.
    let o = fake.cli(&["contract", "cccccccc-cccc", "--json"]);
    let e: Value = serde_json::from_str(err(&o).trim()).unwrap();
    assert_eq!(e["code"], "not_buyer");

    for args in [&["blocks", "--last", "6"][..], &["peers"]] {
        let o = fake.cli(args);
        assert_eq!(o.status.code(), Some(3), "{args:?}: {}", err(&o));
        assert!(
            err(&o).contains("is --node the address of a node's API?"),
            "{}",
            err(&o)
        );
        assert_eq!(err(&o).trim().lines().count(), 1);
    }
}

#[test]
fn mine_sends_the_token_and_the_account() {
    let fake = Fake::start(answer);
    let o = fake.cli(&["mine", "2", "--to", "bob", "--token", "sesame"]);
    assert!(o.status.success(), "{}", err(&o));
    let o = fake.cli(&["mine", "1", "--token", "sesame"]);
    assert!(o.status.success(), "{}", err(&o));
    let mines: Vec<Request> = fake
        .requests()
        .into_iter()
        .filter(|r| r.1 == "/mine")
        .collect();
    assert_eq!(mines.len(), 2);
    assert_eq!(mines[0].2.as_deref(), Some("Bearer sesame"));
    let body: Value = serde_json::from_str(&mines[0].3).unwrap();
    assert_eq!(
        body,
        json!({"blocks": 2, "to": dev::address("bob").unwrap()})
    );
    let body: Value = serde_json::from_str(&mines[1].3).unwrap();
    assert_eq!(body, json!({"blocks": 1}));
}

/// [`answer`], but a transaction's lookup is never answered.
fn silent_lookups(method: &str, path: &str, body: &str) -> (u16, String) {
    if method == "GET" && path.starts_with("/txs/") {
        return (0, String::new());
    }
    answer(method, path, body)
}

#[test]
fn a_node_that_never_answers_is_given_up_on() {
    let fake = Fake::start(|_, _, _| (0, String::new()));
    let o = fake.cli(&["status", "--request-timeout", "1"]);
    let e = err(&o);
    assert_eq!(o.status.code(), Some(3), "{e}");
    assert!(
        e.contains(&format!("the node at {} accepted the connection", fake.url))
            && e.contains("did not answer within 1 s"),
        "{e}"
    );
    let o = fake.cli(&["status", "--request-timeout", "1", "--json"]);
    let e: Value = serde_json::from_str(err(&o).trim()).unwrap();
    assert_eq!(e["code"], "no_answer");

    // `--wait` stops at its --timeout even while a lookup hangs (the
    // request limit, longer, only keeps a regression from hanging here).
    let fake = Fake::start(silent_lookups);
    let o = fake.cli(&[
        "transfer",
        "--as",
        "alice",
        "bob",
        "5",
        "--wait",
        "--timeout",
        "2",
        "--request-timeout",
        "20",
    ]);
    let e = err(&o);
    assert_eq!(o.status.code(), Some(4), "{e}");
    assert!(
        e.contains(&format!("transaction {}", dropped_tx())) && e.contains("did not answer"),
        "{e}"
    );
}

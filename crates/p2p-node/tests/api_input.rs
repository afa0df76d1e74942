//! The API's one rule for bodies and query strings, endpoint by endpoint
//! and bad input by bad input, through a real HTTP socket: each is a 4xx
//! JSON error with the code `docs/API.md` gives, none changes the node,
//! and none stops it from answering. Also the conventions an independent
//! client had to find by probing: hex in either case, an account never
//! seen.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::api::*;
use escrow::dev;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A request sent as raw bytes, so that anything (not JSON, duplicate
/// keys, no content type) can be sent.
struct Raw<'a> {
    method: &'a str,
    path: String,
    content_type: Option<&'a str>,
    body: Vec<u8>,
}

impl Raw<'_> {
    fn json(method: &'static str, path: &str, body: &str) -> Raw<'static> {
        Raw {
            method,
            path: path.to_string(),
            content_type: Some("application/json"),
            body: body.as_bytes().to_vec(),
        }
    }
}

/// Sends `r` with the token; the status and the JSON error's code.
async fn send(base: &str, r: &Raw<'_>) -> (StatusCode, String, Value) {
    let method = reqwest::Method::from_bytes(r.method.as_bytes()).unwrap();
    let mut req = reqwest::Client::new()
        .request(method, format!("{base}{}", r.path))
        .bearer_auth(TOKEN)
        .body(r.body.clone());
    if let Some(ct) = r.content_type {
        req = req.header("content-type", ct);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} {}: not a JSON answer ({e}): {text}", r.method, r.path));
    let code = body["code"].as_str().unwrap_or("").to_string();
    (status, code, body)
}

/// One endpoint that takes a JSON body: a valid body, and its fields
/// with a value of the wrong type each.
struct BodyEndpoint {
    path: &'static str,
    valid: Value,
    wrong_types: Vec<(&'static str, Value)>,
}

fn body_endpoints() -> Vec<BodyEndpoint> {
    vec![
        BodyEndpoint {
            path: "/txs",
            valid: json!({"tx": "00"}),
            wrong_types: vec![("tx", json!(5)), ("tx", json!(["00"])), ("tx", Value::Null)],
        },
        BodyEndpoint {
            path: "/mine",
            valid: json!({"blocks": 1, "to": "alice"}),
            wrong_types: vec![
                ("blocks", json!("1")),
                ("blocks", json!(true)),
                ("to", json!(5)),
            ],
        },
        BodyEndpoint {
            path: "/peers",
            valid: json!({"addr": "127.0.0.1:1"}),
            wrong_types: vec![("addr", json!(5)), ("addr", json!("not an address"))],
        },
        BodyEndpoint {
            path: "/admin/partition",
            valid: json!({"block": []}),
            wrong_types: vec![("block", json!("127.0.0.1:1")), ("block", json!([5]))],
        },
        BodyEndpoint {
            path: "/admin/heal",
            valid: json!({}),
            wrong_types: vec![],
        },
    ]
}

/// With `key` set to `value` in `body` (an object).
fn with(body: &Value, key: &str, value: Value) -> String {
    let mut b = body.clone();
    b[key] = value;
    b.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_body_is_a_json_error_with_its_code_and_changes_nothing() {
    let (node, base) = api_node().await;
    let max_body = p2p_node::api::ApiLimits::default().max_body_bytes;

    let mut cases: Vec<(Raw<'static>, StatusCode, &str)> = Vec::new();
    for e in body_endpoints() {
        let p = e.path;
        let bad = |body: String, code: &'static str| (Raw::json("POST", p, &body), code);
        let mut table = vec![
            // A key the endpoint does not take.
            bad(with(&e.valid, "nope", json!(1)), "unknown_field"),
            // Not JSON: nonsense, truncated, trailing bytes.
            bad("nonsense".into(), "bad_json"),
            bad("{\"a\":".into(), "bad_json"),
            bad(format!("{} x", e.valid), "bad_json"),
            // JSON, but not an object.
            bad("null".into(), "bad_value"),
            bad("[]".into(), "bad_value"),
            bad("\"{}\"".into(), "bad_value"),
        ];
        // Not UTF-8.
        table.push((
            Raw {
                body: b"{\"a\": \"\xff\"}".to_vec(),
                ..Raw::json("POST", p, "")
            },
            "bad_json",
        ));
        if p != "/admin/heal" {
            // Empty: only `POST /admin/heal` takes no body.
            table.push(bad(String::new(), "bad_json"));
        }
        if let Some((key, value)) = e.valid.as_object().unwrap().iter().next() {
            // The same key twice.
            table.push(bad(
                format!("{{\"{key}\": {value}, \"{key}\": {value}}}"),
                "duplicate_field",
            ));
            // A required key left out (every first key is required).
            table.push(bad("{}".into(), "missing_field"));
        }
        for (key, value) in &e.wrong_types {
            table.push(bad(with(&e.valid, key, value.clone()), "bad_value"));
        }
        cases.extend(
            table
                .into_iter()
                .map(|(raw, code)| (raw, StatusCode::BAD_REQUEST, code)),
        );
        // Wrong or missing content type, whatever the body.
        for ct in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
        ] {
            cases.push((
                Raw {
                    content_type: ct,
                    ..Raw::json("POST", p, &e.valid.to_string())
                },
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
            ));
        }
        // Over the size limit (valid JSON, padded with spaces).
        let mut big = e.valid.to_string();
        big.push_str(&" ".repeat(max_body + 1));
        cases.push((
            Raw::json("POST", p, &big),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ));
        // A query string, which no POST endpoint takes.
        cases.push((
            Raw::json("POST", &format!("{p}?x=1"), &e.valid.to_string()),
            StatusCode::BAD_REQUEST,
            "unknown_field",
        ));
    }
    // Counts: negative, fractional, in exponent form, above 2^64 - 1.
    for n in ["-1", "1.5", "1e3", "18446744073709551616"] {
        cases.push((
            Raw::json("POST", "/mine", &format!("{{\"blocks\": {n}}}")),
            StatusCode::BAD_REQUEST,
            "bad_value",
        ));
    }

    for (raw, status, code) in &cases {
        let (s, c, body) = send(&base, raw).await;
        let shown = String::from_utf8_lossy(&raw.body[..raw.body.len().min(80)]).to_string();
        assert_eq!(
            (s, c.as_str()),
            (*status, *code),
            "{} {} {shown:?} ({:?}): {body}",
            raw.method,
            raw.path,
            raw.content_type
        );
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }

    // Nothing was mined, pooled or dialled, and the node still answers.
    let (s, status) = get(&format!("{base}/status")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (&status["height"], &status["mempool"], &status["peers"]),
        (&json!(0), &json!(0), &json!(0))
    );
    // The valid bodies themselves pass the body rule.
    let (s, mined) = post(&format!("{base}/mine"), json!({"blocks": 1}), Some(TOKEN)).await;
    assert_eq!(s, StatusCode::OK, "{mined}");
    for (path, body, want) in [
        (
            "/admin/partition",
            json!({"block": []}),
            StatusCode::NO_CONTENT,
        ),
        ("/admin/heal", json!({}), StatusCode::NO_CONTENT),
    ] {
        let (s, b) = post(&format!("{base}{path}"), body, Some(TOKEN)).await;
        assert_eq!(s, want, "{path}: {b}");
    }
    // Heal takes no body at all, too (no content type needed then).
    let r = reqwest::Client::new()
        .post(format!("{base}/admin/heal"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // `charset` is allowed with the JSON content type.
    let (s, _, body) = send(
        &base,
        &Raw {
            content_type: Some("application/json; charset=utf-8"),
            ..Raw::json("POST", "/mine", r#"{"blocks": 1}"#)
        },
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_query_string_and_path_number_is_a_json_error_with_its_code() {
    let (node, base) = api_node().await;
    let mut cases: Vec<(String, StatusCode, &str)> = Vec::new();
    for (path, param) in [("/blocks", "last"), ("/blocks", "from"), ("/tree", "depth")] {
        let q = |query: &str| format!("{path}?{query}");
        cases.push((q("nope=1"), StatusCode::BAD_REQUEST, "unknown_field"));
        cases.push((
            q(&format!("{param}=1&{param}=2")),
            StatusCode::BAD_REQUEST,
            "duplicate_field",
        ));
        for v in [
            "x",
            "-1",
            "1.5",
            "+5",
            "1e3",
            "",
            "18446744073709551616",
            "%31%2e",
        ] {
            cases.push((
                q(&format!("{param}={v}")),
                StatusCode::BAD_REQUEST,
                "bad_range",
            ));
        }
    }
    // Endpoints that take no parameter refuse any.
    for path in [
        "/status",
        "/accounts/alice",
        "/contracts",
        "/peers",
        "/mempool",
        "/metrics",
        "/blocks/height/0",
        &format!("/blocks/{}", "0".repeat(64)),
        &format!("/txs/{}", "0".repeat(64)),
    ] {
        cases.push((
            format!("{path}?x=1"),
            StatusCode::BAD_REQUEST,
            "unknown_field",
        ));
    }
    // A height is decimal digits within 2^64 - 1.
    for h in ["-1", "1.5", "+1", "1e3", "18446744073709551616", "0x1"] {
        cases.push((
            format!("/blocks/height/{h}"),
            StatusCode::BAD_REQUEST,
            "bad_height",
        ));
    }
    for (raw, status, code) in &cases {
        let (s, body) = get(&format!("{base}{raw}")).await;
        assert_eq!(
            (s, body["code"].as_str()),
            (*status, Some(*code)),
            "GET {raw}: {body}"
        );
    }
    // A path that exists, with a method it does not take.
    let (s, c, _) = send(&base, &Raw::json("POST", "/status", "{}")).await;
    assert_eq!(
        (s, c.as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
    // Valid ones: an empty query string is no query string; leading
    // zeros are still a decimal count.
    for ok in ["/status?", "/blocks?last=001", "/tree?depth=2", "/blocks"] {
        let (s, body) = get(&format!("{base}{ok}")).await;
        assert_eq!(s, StatusCode::OK, "GET {ok}: {body}");
    }
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hex_is_read_in_either_case_and_an_unseen_account_is_empty() {
    let (node, base) = api_node().await;
    let alice = dev::address("alice").unwrap().to_string();
    let (s, lower) = get(&format!("{base}/accounts/{alice}")).await;
    assert_eq!(s, StatusCode::OK);
    let (s, upper) = get(&format!("{base}/accounts/{}", alice.to_uppercase())).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(lower, upper);
    // Answers always write lower case.
    assert_eq!(upper["address"], json!(alice));
    assert_eq!(upper["name"], json!("alice"));

    // An address no transaction ever touched: 200, all zero.
    let unseen = "AB".repeat(32);
    let (s, body) = get(&format!("{base}/accounts/{unseen}")).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({
            "address": unseen.to_lowercase(),
            "name": null,
            "balance": 0,
            "nonce": 0,
            "pending_balance": 0,
            "pending_nonce": 0,
        })
    );
    // Dev names are lower case only; a `0x` prefix is not hex.
    for bad in ["Alice", &format!("0x{}", &alice[2..])] {
        let (s, body) = get(&format!("{base}/accounts/{bad}")).await;
        assert_eq!(
            (s, body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("bad_account")),
            "{bad}"
        );
    }

    // An upper-case address in a body (`POST /mine`'s `to`) and an
    // upper-case hash in a path name the same things as lower case.
    let (s, mined) = post(
        &format!("{base}/mine"),
        json!({"blocks": 1, "to": unseen}),
        Some(TOKEN),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{mined}");
    let hash = mined["blocks"][0].as_str().unwrap().to_string();
    let (s, block) = get(&format!("{base}/blocks/{}", hash.to_uppercase())).await;
    assert_eq!(s, StatusCode::OK, "{block}");
    assert_eq!(block["hash"], json!(hash));
    let (s, body) = get(&format!("{base}/accounts/{}", unseen.to_lowercase())).await;
    assert_eq!(s, StatusCode::OK);
    assert!(body["balance"].as_u64().unwrap() > 0, "{body}");
    node.shutdown().await;
}

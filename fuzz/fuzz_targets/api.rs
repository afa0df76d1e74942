//! Every JSON body and every path and query parameter of the HTTP API:
//! requests go to the API's router (`p2p_node::api::router`, with its
//! token, so control endpoints read their bodies too) over a real node
//! started once on in-memory seams. The first byte picks the endpoint
//! (its low six bits) and the headers (bit 6: no token, bit 7: no JSON
//! content type); the rest is the body, or the path segment or query
//! string. Bad input is a 4xx with a typed code (`400`, `401`, `413`,
//! `415`, ...), never a 5xx: the store is a healthy in-memory one, so
//! `store_error` (500, a damaged store) and `node_stopped` (503) cannot
//! be legitimate answers here. The node must keep answering.

#![no_main]

use std::sync::LazyLock;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request};
use escrow_chain_fuzz::node::{FuzzStore, start};
use libfuzzer_sys::fuzz_target;
use p2p_node::NodeHandle;
use p2p_node::api::ApiLimits;
use tokio::runtime::Runtime;
use tower::ServiceExt;

const TOKEN: &str = "fuzz-token";

/// Largest body the harness's router reads: smaller than the default so
/// that libFuzzer's inputs (4 KiB by default) reach the `413` path too.
const MAX_BODY_BYTES: usize = 1024;

/// Most blocks one `POST /mine` may ask for here: mining is not the door
/// under test, its body is, and a thousand blocks per input would make
/// every run slow.
const MINE_AT_MOST: u64 = 3;

struct Harness {
    rt: Runtime,
    node: NodeHandle,
    router: Router,
}

static HARNESS: LazyLock<Harness> = LazyLock::new(|| {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (node, _incoming) = rt
        .block_on(start(Box::new(FuzzStore::default())))
        .expect("the node starts");
    let limits = ApiLimits {
        max_body_bytes: MAX_BODY_BYTES,
        ..ApiLimits::default()
    };
    let router = p2p_node::api::router(node.clone(), Some(TOKEN.to_string()), &limits, None);
    Harness { rt, node, router }
});

/// Bytes as a path segment or query: unreserved characters (and, in a
/// query, `=` and `&`) as they are, the rest percent-encoded.
fn escape(bytes: &[u8], query: bool) -> String {
    let mut out = String::new();
    for &b in bytes {
        let keep = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (query && matches!(b, b'=' | b'&'));
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Whether a `POST /mine` body asks for more than [`MINE_AT_MOST`].
fn mines_many(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("blocks").and_then(serde_json::Value::as_u64))
        .is_some_and(|n| n > MINE_AT_MOST)
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let with_token = pick & 0x40 == 0;
    let json = pick & 0x80 == 0;
    let (method, uri, body) = match (pick & 0x3f) % 14 {
        0 => (Method::POST, "/txs".to_string(), rest.to_vec()),
        1 => (Method::POST, "/peers".to_string(), rest.to_vec()),
        2 if mines_many(rest) => return,
        2 => (Method::POST, "/mine".to_string(), rest.to_vec()),
        3 => (Method::POST, "/admin/partition".to_string(), rest.to_vec()),
        4 => (
            Method::GET,
            format!("/blocks?{}", escape(rest, true)),
            Vec::new(),
        ),
        5 => (
            Method::GET,
            format!("/tree?{}", escape(rest, true)),
            Vec::new(),
        ),
        6 => (
            Method::GET,
            format!("/blocks/{}", escape(rest, false)),
            Vec::new(),
        ),
        7 => (
            Method::GET,
            format!("/txs/{}", escape(rest, false)),
            Vec::new(),
        ),
        8 => (
            Method::GET,
            format!("/accounts/{}", escape(rest, false)),
            Vec::new(),
        ),
        9 => (
            Method::GET,
            format!("/contracts/{}", escape(rest, false)),
            Vec::new(),
        ),
        10 => (
            Method::GET,
            format!("/blocks/height/{}", escape(rest, false)),
            Vec::new(),
        ),
        // A transaction's bytes as the API receives them, in its JSON.
        11 => (
            Method::POST,
            "/txs".to_string(),
            format!("{{\"tx\":\"{}\"}}", hex::encode(rest)).into_bytes(),
        ),
        12 => (Method::POST, "/admin/heal".to_string(), rest.to_vec()),
        _ => (Method::GET, format!("/{}", escape(rest, false)), Vec::new()),
    };
    let mut request = Request::builder().method(method).uri(&uri);
    request = if json {
        request.header("content-type", "application/json")
    } else {
        request.header("content-type", "text/plain")
    };
    if with_token {
        request = request.header("authorization", format!("Bearer {TOKEN}"));
    }
    let request = request
        .body(Body::from(body))
        .expect("an escaped URI is valid");
    let h = &*HARNESS;
    h.rt.block_on(async {
        let answer = h
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = answer.status();
        if status.is_server_error() {
            let body = axum::body::to_bytes(answer.into_body(), 64 * 1024)
                .await
                .unwrap_or_default();
            panic!(
                "{uri} answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        h.node.tip().await.expect("the node still runs");
    });
});

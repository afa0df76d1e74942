//! The explorer page in a real headless Chromium (through chromedriver),
//! against a node that has run the notebook's two flows: both contracts
//! with their final states, the best chain's height, a new block appearing
//! without a reload, and a screenshot under `target/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs
//! them). Without them the test says so and passes, unless
//! `EXPLORER_TEST_REQUIRED=1` (set by CI), where their absence fails it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use escrow::{Amount, ContractId, Party, Payload, State, dev};
use fantoccini::{ClientBuilder, Locator};
use p2p_node::{MiningMode, NodeHandle, Seams, Service};
use serde_json::json;

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn mined(node: &NodeHandle, contract: ContractId, want: State) {
    wait_for("the step mined", || async {
        node.query(move |v| v.chain.state().contract(&contract).map(|c| c.state))
            .await
            .unwrap()
            == Some(want)
    })
    .await;
}

/// The notebook's two flows on one node.
async fn flows(node: &NodeHandle) -> (ContractId, ContractId) {
    let a = addr_of;
    let create = sign(
        "alice",
        0,
        Payload::EscrowCreate {
            seller: a("bob"),
            arbiter: a("eve"),
            amount: Amount::new(100),
            delivery_deadline: 1_000,
            dispute_window: 10,
        },
    );
    let first = ContractId::from_tx(&create.id());
    node.submit(create).await.unwrap();
    mined(node, first, State::Funded).await;
    node.submit(sign(
        "alice",
        1,
        Payload::ConfirmDelivery { contract: first },
    ))
    .await
    .unwrap();
    mined(node, first, State::Released).await;
    let create = sign(
        "charlie",
        0,
        Payload::EscrowCreate {
            seller: a("dave"),
            arbiter: a("eve"),
            amount: Amount::new(50),
            delivery_deadline: 1_000,
            dispute_window: 10,
        },
    );
    let second = ContractId::from_tx(&create.id());
    node.submit(create).await.unwrap();
    mined(node, second, State::Funded).await;
    node.submit(sign(
        "charlie",
        1,
        Payload::RaiseDispute { contract: second },
    ))
    .await
    .unwrap();
    wait_for("the dispute mined", || async {
        matches!(
            node.query(move |v| v.chain.state().contract(&second).map(|c| c.state))
                .await
                .unwrap(),
            Some(State::Disputed { .. })
        )
    })
    .await;
    node.submit(sign(
        "eve",
        0,
        Payload::Resolve {
            contract: second,
            to: Party::Buyer,
        },
    ))
    .await
    .unwrap();
    mined(node, second, State::Refunded).await;
    (first, second)
}

fn addr_of(name: &str) -> escrow::Address {
    dev::address(name).unwrap()
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_explorer_shows_the_flows_and_updates_live() {
    let (chromium, chromedriver) = ("/usr/bin/chromium", "/usr/bin/chromedriver");
    if !std::path::Path::new(chromium).exists() || !std::path::Path::new(chromedriver).exists() {
        assert!(
            std::env::var_os("EXPLORER_TEST_REQUIRED").is_none(),
            "chromium and chromedriver are required: apt-get install chromium chromium-driver"
        );
        eprintln!("skipped: chromium and chromium-driver are not installed");
        return;
    }
    init_logs();
    let mut c = config();
    c.api = Some("127.0.0.1:0".parse().unwrap());
    c.mining = MiningMode::WhenPending;
    let node = Service::start(c, Seams::default()).await.unwrap();
    let (first, second) = flows(&node).await;
    let url = format!("http://{}/", node.api_addr().unwrap());

    let port = free_port();
    let _driver = Driver(
        Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let profile = tempfile::tempdir().unwrap();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_string(),
        json!({
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let webdriver = format!("http://127.0.0.1:{port}");
    let mut client = None;
    for _ in 0..100 {
        match ClientBuilder::new(connector.clone())
            .capabilities(caps.clone())
            .connect(&webdriver)
            .await
        {
            Ok(c) => {
                client = Some(c);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let browser = client.expect("chromedriver answers");
    browser.goto(&url).await.unwrap();

    // Both contracts with their final states, and the height.
    let height = node.tip().await.unwrap().1;
    let read = |script: &'static str| {
        let browser = browser.clone();
        async move { browser.execute(script, vec![]).await.unwrap() }
    };
    let mut states = json!(null);
    for _ in 0..200 {
        states = read(
            "return [...document.querySelectorAll('tr[data-contract]')]\
             .map(r => [r.dataset.contract, r.dataset.state]);",
        )
        .await;
        if states.as_array().is_some_and(|a| a.len() == 2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let states = states.as_array().cloned().unwrap_or_default();
    assert!(
        states.contains(&json!([first.to_string(), "Released"])),
        "{states:?}"
    );
    assert!(
        states.contains(&json!([second.to_string(), "Refunded"])),
        "{states:?}"
    );
    let shown = read("return document.getElementById('height').textContent;").await;
    assert_eq!(shown, json!(height.to_string()));
    let best_boxes = browser
        .find_all(Locator::Css("#tree g.block.best"))
        .await
        .unwrap()
        .len();
    assert!(
        best_boxes as u64 >= height.min(24),
        "the best chain is drawn"
    );

    // A new block appears without a reload.
    read("window.__same_page = true; return 1;").await;
    node.mine_blocks(1).await.unwrap();
    let want = (height + 1).to_string();
    let mut seen = false;
    for _ in 0..200 {
        let now = read(
            "return [document.getElementById('height').textContent, \
             !!document.querySelector('#tree g.block[data-height=\"' + \
             document.getElementById('height').textContent + '\"]'), \
             window.__same_page === true];",
        )
        .await;
        if now == json!([want, true, true]) {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen, "the new block did not appear live");

    // A fork: a node that mined its own block 1 meets ours, which keeps
    // its heavier chain and draws the other block beside it.
    let other = start(&[], MiningMode::Off).await;
    let side = other.mine_blocks(1).await.unwrap()[0];
    other.add_peer(node.local_addr()).await.unwrap();
    let mut drawn = false;
    for _ in 0..200 {
        let found = read(
            "return [...document.querySelectorAll('#tree g.block.side')].map(g => g.dataset.hash);",
        )
        .await;
        if found
            .as_array()
            .is_some_and(|a| a.contains(&json!(side.to_string())))
        {
            drawn = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(drawn, "the side branch was not drawn");

    // A click opens a block with its transactions.
    browser
        .find(Locator::Css("#tree g.block.tip"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let mut opened = false;
    for _ in 0..200 {
        let text = read("return document.getElementById('block').textContent;").await;
        if text
            .as_str()
            .is_some_and(|t| t.contains("on the best chain") && t.contains("coinbase"))
        {
            opened = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(opened, "clicking a block did not open it");

    // A screenshot as an artifact.
    let png = browser.screenshot().await.unwrap();
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join("explorer.png"), &png).unwrap();
    assert!(png.starts_with(b"\x89PNG"));

    browser.close().await.unwrap();
    other.shutdown().await;
    node.shutdown().await;
}

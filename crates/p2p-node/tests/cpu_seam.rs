//! The processor seam (`p2p_node::cpu`): a simulated processor is charged
//! the work of what the core acts on; a live node has none and computes
//! nothing for it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use p2p_node::cpu::{Cpu, Work};
use p2p_node::{Node, Seams};
use tokio::time::Instant;

/// A processor that records what it is charged and takes no time.
#[derive(Default)]
struct Recorder(Mutex<Vec<Work>>);

impl Cpu for Recorder {
    fn charge(&self, work: Work) -> Instant {
        self.0.lock().unwrap().push(work);
        Instant::now()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_processor_is_charged_a_submission_and_a_live_node_needs_none() {
    init_logs();
    let recorder = Arc::new(Recorder::default());
    let seams = Seams {
        cpu: Some(recorder.clone()),
        ..Seams::default()
    };
    let simulated = Node::start_with(config(), seams).await.unwrap();
    let id = simulated.submit(alice_pays_bob(0)).await.unwrap();
    let charged = recorder.0.lock().unwrap().clone();
    assert_eq!(
        charged,
        vec![Work {
            signatures: 1,
            txs: 1,
            ..Work::default()
        }]
    );
    // The live seams have no processor; the node does the same.
    assert!(Seams::default().cpu.is_none());
    let live = Node::start(config()).await.unwrap();
    assert_eq!(live.submit(alice_pays_bob(0)).await.unwrap(), id);
    assert_eq!(
        live.snapshot().mempool_len,
        simulated.snapshot().mempool_len
    );
    simulated.shutdown().await;
    live.shutdown().await;
}

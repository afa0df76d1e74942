//! The simulated store's faults on real nodes: a failed commit stops the
//! node, which announces and answers nothing of what the commit held, and
//! restarts on what it had made durable; a slow commit stalls the node.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chain_core::ChainParams;
use escrow::Genesis;
use p2p_node::store::BlockStore;
use p2p_node::{MiningMode, Node, NodeConfig, NodeEvent, NodeHandle, Seams};
use sim::net::{HostSpec, Latency, SimNet, host_addr};
use sim::{Lottery, SimClock, SimMiner, SimStore};
use wire::NodeId;

/// Two hosts 50 ms apart; node 0 has all the hash power (a block every
/// 10 s on average), node 1 none and dials node 0.
struct Pair {
    net: SimNet,
    clock: SimClock,
    lottery: Arc<Mutex<Lottery>>,
    configs: [NodeConfig; 2],
}

impl Pair {
    fn new() -> Pair {
        let spec = HostSpec {
            region: 0,
            upload_bps: 20_000_000,
        };
        let net = SimNet::new(1, Latency::Fixed(Duration::from_millis(50)), &[spec, spec]);
        let mut genesis = Genesis::dev();
        genesis.params = ChainParams::with_target_bits(1);
        let clock = SimClock::new(genesis.timestamp_ms + 1_000);
        let lottery = Arc::new(Mutex::new(Lottery::new(
            7,
            &[1.0, 0.0],
            Duration::from_secs(10),
        )));
        let configs = [0, 1].map(|i| {
            let mut c = NodeConfig::new(genesis.clone());
            c.listen = host_addr(i);
            c.tick_interval = Duration::from_secs(1);
            c.mining = if i == 0 {
                MiningMode::Continuous
            } else {
                MiningMode::Off
            };
            if i == 1 {
                c.peers = vec![host_addr(0)];
            }
            c
        });
        Pair {
            net,
            clock,
            lottery,
            configs,
        }
    }

    async fn start(&self, i: usize, store: &SimStore, generation: u8) -> NodeHandle {
        let id = [i as u8 * 16 + generation; 32];
        let seams = Seams {
            transport: Arc::new(self.net.transport(i)),
            clock: Arc::new(self.clock),
            store: Box::new(store.clone()),
            miner: Some(Arc::new(SimMiner::new(i, self.lottery.clone(), self.clock))),
            node_id: Some(NodeId(id)),
            seed: Some(id),
            cpu: None,
        };
        Node::start_with(self.configs[i].clone(), seams)
            .await
            .unwrap()
    }
}

/// Waits for `node`'s tip to reach `height` (on its event stream).
async fn tip_at(node: &NodeHandle, height: u64) {
    let mut events = node.subscribe();
    loop {
        if node.tip().await.unwrap().1 >= height {
            return;
        }
        while !matches!(events.recv().await, Ok(NodeEvent::Tip { .. })) {}
    }
}

/// The height of the best chain a store holds.
fn stored_height(store: &SimStore) -> u64 {
    let stored = store.load().unwrap();
    stored
        .headers
        .iter()
        .map(|(_, h)| h.height)
        .max()
        .unwrap_or(0)
}

#[tokio::test(start_paused = true)]
async fn a_failed_commit_stops_the_node_which_announces_nothing_of_it() {
    let pair = Pair::new();
    let stores = [SimStore::default(), SimStore::default()];
    let miner = pair.start(0, &stores[0], 0).await;
    let peer = pair.start(1, &stores[1], 0).await;
    tip_at(&peer, 3).await;

    // The miner's next commit (its next block) fails.
    stores[0].fail_next_commit();
    miner.stopped().await;
    assert_eq!(stores[0].stats().failed, 1);
    // It answers nothing any more.
    assert!(miner.tip().await.is_err());
    let durable = stored_height(&stores[0]);
    assert!(durable >= 3, "the peer had 3 blocks from it");
    // Long after, its peer still has nothing beyond what the miner made
    // durable: the block of the failed commit was never announced (nobody
    // else mines).
    tokio::time::sleep(Duration::from_secs(120)).await;
    let (tip, height) = peer.tip().await.unwrap();
    assert_eq!(height, durable);
    assert!(stores[0].block(&tip).unwrap().is_some());
    miner.shutdown().await;

    // Restarted on the same store (its process exited: its host's
    // connections went with it), it comes back at its durable tip and
    // mines on.
    pair.net.crash(0);
    pair.net.restart(0);
    let again = pair.start(0, &stores[0].reopen(), 1).await;
    assert_eq!(again.tip().await.unwrap().1, durable);
    tip_at(&peer, durable + 1).await;
    again.shutdown().await;
    peer.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_slow_commit_stalls_the_node_for_its_latency() {
    let pair = Pair::new();
    let mut stores = [SimStore::default(), SimStore::default()];
    // As the world wires it: a stall holds the node's links.
    let net = pair.net.clone();
    stores[0].on_stall(move |d| {
        net.stall(0);
        let net = net.clone();
        tokio::spawn(async move {
            tokio::time::sleep(d).await;
            net.unstall(0);
        });
    });
    let miner = pair.start(0, &stores[0], 0).await;
    let peer = pair.start(1, &stores[1], 0).await;
    tip_at(&peer, 2).await;

    let latency = Duration::from_secs(3);
    stores[0].set_commit_latency(Some(latency));
    let mut events = miner.subscribe();
    let height = loop {
        if let Ok(NodeEvent::Tip { height, .. }) = events.recv().await {
            break height;
        }
    };
    // The miner's block is durable at once, and reaches the peer only once
    // the commit would have finished (plus the link).
    let mined = tokio::time::Instant::now();
    tip_at(&peer, height).await;
    assert!(mined.elapsed() >= latency, "{:?}", mined.elapsed());
    let stats = stores[0].stats();
    assert!(stats.slow >= 1 && stats.stalled >= latency, "{stats:?}");
    stores[0].set_commit_latency(None);
    miner.shutdown().await;
    peer.shutdown().await;
}

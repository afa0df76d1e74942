//! What the core publishes for readers that must not wait for it: a
//! [`Snapshot`] of the node, swapped in after every event that changed
//! something, once what the event accepted is saved.
//!
//! The HTTP API, tests and the simulator read the latest snapshot through
//! [`crate::NodeHandle::snapshot`] without sending the core a message, so a
//! read costs the same whether the core is idle, syncing or reorganising.
//!
//! Building a snapshot costs O(1) or O(blocks changed) per event, never
//! O(chain length): the parts that did not change are shared with the
//! previous snapshot (`Arc`s and persistent maps), the ledgers are cloned
//! only when they changed, and the recent blocks ([`RecentBlocks`]) are
//! persistent maps updated with the blocks that changed.

use std::sync::Arc;

use chain_core::{Block, BlockHash, Work};
use escrow::{Ledger, Tx};
use tokio::sync::watch;
use wire::NodeId;

use crate::config::MiningMode;
use crate::core::inbox::PublishWaiter;
use crate::core::peers::PeerTable;
use crate::core::view::{Metrics, NodeChain, NodeEvent, PeerInfo, SyncProgress};

#[path = "best_chain.rs"]
mod best_chain;
pub use best_chain::{BestChain, Bodies};

/// How many heights below the tip (the tip's included) [`RecentBlocks`]
/// keeps: enough for the deepest `GET /tree` (200) and a page of `GET
/// /blocks?last=N` (100).
pub const RECENT_HEIGHTS: u64 = 256;

/// The node as of the end of one event of the core: everything in it is
/// durable (saved) and consistent with itself.
///
/// Snapshots are published in order ([`Snapshot::seq`] grows by one each
/// time) and never show a block that is not yet saved.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// The publication's number: 0 for the first, one more each time.
    pub seq: u64,
    /// This node's id.
    pub node_id: NodeId,
    /// The network id (the genesis hash).
    pub network: BlockHash,
    /// The chain's rules.
    pub params: Arc<chain_core::ChainParams>,
    /// The best tip.
    pub tip: BlockHash,
    /// The best tip's height.
    pub height: u64,
    /// The best chain's cumulative work.
    pub total_work: Work,
    /// The ledger at the best tip.
    pub state: Arc<Ledger>,
    /// The ledger at the best tip with every pending transaction applied.
    pub pending: Arc<Ledger>,
    /// The pending transactions, and the dropped ones remembered.
    pub pool: crate::mempool::PoolView,
    /// How many transactions are pending.
    pub mempool_len: usize,
    /// Their bytes.
    pub mempool_bytes: usize,
    /// What the mempool's minimum fee rate is made of, to be read at any
    /// time.
    pub fee_floor: crate::mempool::policy::FeeFloor,
    /// Transactions the mempool admitted since the node started.
    pub tx_admitted: u64,
    /// Transactions it refused, by code ([`crate::mempool::MempoolError::code`]).
    pub tx_refused: Arc<std::collections::BTreeMap<&'static str, u64>>,
    /// Active bans.
    pub bans: usize,
    /// Each active ban and when it ends (as of the publication: one that
    /// ended since is left out by the reader).
    pub ban_list: Arc<[(crate::penalty::BanKey, tokio::time::Instant)]>,
    /// Penalties given, by offence, and peers banned, since the start.
    pub penalties: Arc<crate::penalty::PenaltyCounts>,
    /// The mining mode.
    pub mining: MiningMode,
    /// Live peers.
    pub peers: Arc<[PeerInfo]>,
    /// Monitoring counters.
    pub metrics: Arc<Metrics>,
    /// The blocks of the last [`RECENT_HEIGHTS`] heights, side branches
    /// included.
    pub recent: RecentBlocks,
    /// The best chain's hashes and headers, every height.
    pub best: BestChain,
    /// Where the bodies of the blocks it names are read.
    pub bodies: Bodies,
    /// How far a headers-first sync is, while one runs (its `blocks` is
    /// this snapshot's height).
    pub sync: Option<SyncProgress>,
}

/// The blocks of the last [`RECENT_HEIGHTS`] heights of the tree (best
/// chain and side branches), in persistent maps so that a tip change
/// costs O(blocks changed) and the previous snapshot's copy is shared.
#[derive(Clone, Debug, Default)]
pub struct RecentBlocks {
    /// The lowest height kept.
    low: u64,
    /// The best chain's hash at each height from `low` to the tip.
    best: imbl::OrdMap<u64, BlockHash>,
    /// Every block of the tree at heights from `low`, by height and hash.
    blocks: imbl::OrdMap<(u64, BlockHash), Arc<Block<Tx>>>,
}

impl RecentBlocks {
    /// The lowest height kept: every best-chain block from there to the tip
    /// is here.
    pub fn low(&self) -> u64 {
        self.low
    }

    /// The best-chain block at `height`, if that height is kept.
    pub fn best_at(&self, height: u64) -> Option<&Arc<Block<Tx>>> {
        let hash = self.best.get(&height)?;
        self.blocks.get(&(height, *hash))
    }

    /// Whether `hash` is the best-chain block at `height`.
    pub fn is_best(&self, height: u64, hash: &BlockHash) -> bool {
        self.best.get(&height) == Some(hash)
    }

    /// Every kept block at `from` and above, lowest height first (by hash
    /// within a height), each with whether it is on the best chain.
    pub fn since(&self, from: u64) -> impl Iterator<Item = (&Arc<Block<Tx>>, bool)> + '_ {
        self.blocks
            .range((from, BlockHash::default())..)
            .map(|((height, hash), block)| (block, self.is_best(*height, hash)))
    }

    /// The kept block `hash`, and whether it is on the best chain
    /// (O(blocks kept)).
    pub fn find(&self, hash: &BlockHash) -> Option<(Arc<Block<Tx>>, bool)> {
        self.blocks
            .iter()
            .find(|((_, h), _)| h == hash)
            .map(|((height, h), block)| (Arc::clone(block), self.is_best(*height, h)))
    }

    /// How many blocks are kept.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Whether no block is kept.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// The blocks of the chain's best tip's last [`RECENT_HEIGHTS`] heights,
    /// side branches included. Walks the whole tree once: for start-up only.
    fn scan(chain: &NodeChain) -> RecentBlocks {
        let mut recent = RecentBlocks::default();
        recent.follow(chain);
        let low = recent.low;
        for (hash, _) in chain.headers().filter(|(_, h)| h.height >= low) {
            if let Some(block) = chain.block(hash) {
                recent.add(&block);
            }
        }
        recent
    }

    /// Adds a block of the tree (a side branch's), if its height is kept.
    fn add(&mut self, block: &Arc<Block<Tx>>) {
        let height = block.header.height;
        if height >= self.low {
            self.blocks
                .insert((height, block.hash()), Arc::clone(block));
        }
    }

    /// Whether `hash` at `height` is kept.
    fn contains(&self, height: u64, hash: BlockHash) -> bool {
        self.blocks.contains_key(&(height, hash))
    }

    /// Follows the chain's best tip: walks down from it until the best
    /// chain kept agrees (O(blocks changed)), and lets go of the heights
    /// that fell out of the window. Blocks that left the best chain stay,
    /// as side-branch blocks, as they stay in the tree. Returns the blocks
    /// that joined the best chain kept.
    fn follow(&mut self, chain: &NodeChain) -> Vec<BlockHash> {
        let mut joined = Vec::new();
        let height = chain.height();
        let low = height.saturating_sub(RECENT_HEIGHTS - 1);
        // A reorganisation onto a shorter, heavier chain: no best block
        // above the new tip.
        while let Some(&(top, _)) = self.best.get_max() {
            if top <= height {
                break;
            }
            self.best.remove(&top);
        }
        // Normally the walk stops where the kept best chain agrees; when the
        // window moved down (the tip's height fell), it goes on to fill the
        // heights below what was kept.
        let refill = low < self.low || self.best.is_empty();
        let mut at = height;
        let mut hash = chain.tip();
        while at >= low && (refill || !self.is_best(at, &hash)) {
            let Some(block) = chain.block(&hash) else {
                break;
            };
            self.best.insert(at, hash);
            self.blocks.insert((at, hash), Arc::clone(&block));
            joined.push(hash);
            hash = block.header.parent;
            match at.checked_sub(1) {
                Some(below) => at = below,
                None => break,
            }
        }
        while let Some(&(bottom, _)) = self.best.get_min() {
            if bottom >= low {
                break;
            }
            self.best.remove(&bottom);
        }
        while let Some(&(key, _)) = self.blocks.get_min() {
            if key.0 >= low {
                break;
            }
            self.blocks.remove(&key);
        }
        self.low = low;
        joined
    }
}

/// How many orphans the publisher remembers (the chain keeps 256).
const MAX_ORPHANS: usize = 1_024;

/// The core's publisher: the latest snapshot, the channel readers watch,
/// and the events of the current step, sent to watchers once the snapshot
/// that shows them is published.
pub(crate) struct Publisher {
    sender: watch::Sender<Arc<Snapshot>>,
    /// The mempool's change count the latest snapshot shows.
    mempool_changes: u64,
    /// Events of the current step, not yet sent.
    events: Vec<NodeEvent>,
    /// Where watchers are told of events (a bounded broadcast: a watcher
    /// that falls behind misses events, never slows the core).
    watchers: tokio::sync::broadcast::Sender<NodeEvent>,
    /// The live peer count last told to watchers.
    reported_peers: usize,
    /// Blocks that waited for their parent, by parent and hash: when a
    /// block joins the tree, the orphans it connects join with it, and only
    /// the first is reported (a `Fork` event or the new tip), so the
    /// publisher looks for them here. Bounded, oldest forgotten first.
    orphans: std::collections::BTreeSet<(BlockHash, BlockHash)>,
    orphan_order: std::collections::VecDeque<(BlockHash, BlockHash)>,
    /// Handles waiting for the next publication that shows the mempool.
    waiters: Vec<PublishWaiter>,
    /// The peer table's membership count the latest peer list shows
    /// (`None`: none built yet).
    peers_membership: Option<u64>,
    /// The core ticked: the peers' figures (heights, scores, queued
    /// bytes) are read again at the next publication.
    peers_due: bool,
}

impl Publisher {
    /// A publisher whose first snapshot is `chain`'s (the rest empty until
    /// the core's first publication). Scans the tree once.
    pub fn new(
        chain: &NodeChain,
        bodies: Bodies,
        node_id: NodeId,
        mining: MiningMode,
        watchers: tokio::sync::broadcast::Sender<NodeEvent>,
    ) -> Publisher {
        let state = Arc::new(chain.state().clone());
        let first = Snapshot {
            seq: 0,
            node_id,
            network: chain.genesis_hash(),
            params: Arc::new(chain.params().clone()),
            tip: chain.tip(),
            height: chain.height(),
            total_work: chain.total_work(),
            pending: Arc::clone(&state),
            state,
            pool: crate::mempool::PoolView::default(),
            mempool_len: 0,
            mempool_bytes: 0,
            fee_floor: crate::mempool::policy::FeeFloor::default(),
            tx_admitted: 0,
            tx_refused: Arc::default(),
            bans: 0,
            ban_list: Arc::from(Vec::new()),
            penalties: Arc::default(),
            mining,
            peers: Arc::from(Vec::new()),
            metrics: Arc::new(Metrics::default()),
            recent: RecentBlocks::scan(chain),
            best: BestChain::scan(chain),
            bodies,
            sync: None,
        };
        let (sender, _) = watch::channel(Arc::new(first));
        Publisher {
            sender,
            mempool_changes: u64::MAX,
            events: Vec::new(),
            watchers,
            reported_peers: 0,
            orphans: std::collections::BTreeSet::new(),
            orphan_order: std::collections::VecDeque::new(),
            waiters: Vec::new(),
            peers_membership: None,
            peers_due: true,
        }
    }

    /// The core's tick: the next publication reads the peers again.
    pub fn peers_due(&mut self) {
        self.peers_due = true;
    }

    /// Remembers that `hash` waits for `parent` (an orphan).
    pub fn orphan(&mut self, parent: BlockHash, hash: BlockHash) {
        if self.orphans.insert((parent, hash)) {
            self.orphan_order.push_back((parent, hash));
        }
        while self.orphan_order.len() > MAX_ORPHANS {
            if let Some(old) = self.orphan_order.pop_front() {
                self.orphans.remove(&old);
            }
        }
    }

    /// Adds to `recent` the remembered orphans that joined the tree under
    /// `joined` (and under those, in turn): O(blocks joined).
    fn connect_orphans(
        &mut self,
        chain: &NodeChain,
        recent: &mut RecentBlocks,
        mut joined: Vec<BlockHash>,
    ) {
        while let Some(parent) = joined.pop() {
            if self.orphans.is_empty() {
                return;
            }
            let children: Vec<(BlockHash, BlockHash)> = self
                .orphans
                .range((parent, BlockHash::default())..)
                .take_while(|(p, _)| *p == parent)
                .copied()
                .collect();
            for key in children {
                if let Some(block) = chain.block(&key.1) {
                    self.orphans.remove(&key);
                    self.orphan_order.retain(|k| *k != key);
                    if !recent.contains(block.header.height, key.1) {
                        recent.add(&block);
                    }
                    joined.push(key.1);
                }
            }
        }
    }

    /// A receiver of the snapshots, starting at the latest.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.sender.subscribe()
    }

    /// Keeps `event` until the next publication.
    pub fn defer(&mut self, event: NodeEvent) {
        self.events.push(event);
    }

    /// `live` peers are connected now: watchers are told if the count
    /// changed since they were last told.
    pub fn live_peers(&mut self, live: usize) {
        if live != self.reported_peers {
            self.reported_peers = live;
            self.defer(NodeEvent::Peers { count: live });
        }
    }
}

/// What a publication reads: the core's parts, lent for the moment.
pub(crate) struct Sources<'a> {
    /// The chain (the tip, the ledger, the blocks).
    pub chain: &'a NodeChain,
    /// The pending transactions.
    pub mempool: &'a crate::mempool::Mempool,
    /// The mining mode.
    pub mining: MiningMode,
    /// The peer table, read for its live peers at `now`.
    pub peers: &'a PeerTable,
    /// The time the peers' scores are read at.
    pub now: tokio::time::Instant,
    /// The counters.
    pub metrics: &'a Metrics,
    /// How far a sync is.
    pub sync: Option<SyncProgress>,
}

impl Publisher {
    /// Answers `waiter` with the next publication that shows the mempool
    /// as it is now.
    pub fn wait(&mut self, waiter: PublishWaiter) {
        self.waiters.push(waiter);
    }

    /// The end of an event: publishes everything if `saved` (all accepted
    /// is durable), else, if `may_publish` (the node is not stopping),
    /// what does not wait for a save ([`Publisher::publish_unsaved`]); then
    /// answers the waiters if the mempool part is current.
    pub fn after_event(&mut self, from: &Sources<'_>, saved: bool, may_publish: bool) {
        let mempool_current = if saved {
            self.publish(from);
            true
        } else {
            may_publish && self.publish_unsaved(from)
        };
        if mempool_current {
            for waiter in self.waiters.drain(..) {
                waiter.answer();
            }
        }
    }

    /// Publishes a new snapshot if this step changed something a reader
    /// sees, then sends the step's events to watchers. Called at the end of
    /// every event, after what it accepted is saved: a snapshot never shows
    /// a block that is not durable, and a watcher told of a change finds it
    /// in the snapshot.
    pub fn publish(&mut self, from: &Sources<'_>) {
        self.publish_with(from, true);
    }

    /// Publishes what does not wait for a save while blocks do (blocks not
    /// yet saved): the peers and the counters, and the mempool if the tip
    /// is still the published one (so that the snapshot stays consistent:
    /// a transaction never leaves the pending view before its block is in
    /// the chain's view). The chain's part (tip, ledger, blocks) and its
    /// events stay as last published until [`Publisher::publish`]. Returns
    /// whether the mempool part is current: a submission is then visible
    /// without waiting for the commit.
    pub fn publish_unsaved(&mut self, from: &Sources<'_>) -> bool {
        self.publish_with(from, false)
    }

    fn publish_with(&mut self, from: &Sources<'_>, chain: bool) -> bool {
        let old = self.sender.borrow().clone();
        let mempool_current = chain || from.chain.tip() == old.tip;
        let events = if chain {
            std::mem::take(&mut self.events)
        } else {
            let (held, now_sent) =
                std::mem::take(&mut self.events)
                    .into_iter()
                    .partition(|e| match e {
                        NodeEvent::Tip { .. } | NodeEvent::Fork { .. } => true,
                        NodeEvent::Mempool { .. } => !mempool_current,
                        NodeEvent::Peers { .. } => false,
                    });
            self.events = held;
            now_sent
        };
        let mut new = Snapshot::clone(&old);
        let mut changed = false;

        let mut joined = Vec::new();
        if chain && from.chain.tip() != old.tip {
            new.tip = from.chain.tip();
            new.height = from.chain.height();
            new.total_work = from.chain.total_work();
            new.state = Arc::new(from.chain.state().clone());
            joined = new.recent.follow(from.chain);
            new.best.follow(from.chain);
            changed = true;
        }
        for event in &events {
            if let NodeEvent::Fork { hash, .. } = event
                && let Some(block) = from.chain.block(hash)
            {
                new.recent.add(&block);
                joined.push(*hash);
                changed = true;
            }
        }
        self.connect_orphans(from.chain, &mut new.recent, joined);
        let sync = from.sync.map(|s| SyncProgress {
            blocks: new.height,
            ..s
        });
        if sync != old.sync {
            new.sync = sync;
            changed = true;
        }
        let mempool_changes = from.mempool.changes();
        if mempool_current && mempool_changes != self.mempool_changes {
            self.mempool_changes = mempool_changes;
            new.pending = Arc::new(from.mempool.pending_ledger().clone());
            new.pool = from.mempool.view();
            new.mempool_len = from.mempool.len();
            new.mempool_bytes = from.mempool.bytes();
            new.fee_floor = from.mempool.fee_floor();
            changed = true;
        }
        if from.mining != old.mining {
            new.mining = from.mining;
            changed = true;
        }
        // The peer list is read when a peer went live or left, and on the
        // tick; not after every event (a node handles many).
        let membership = Some(from.peers.membership());
        let membership_changed = self.peers_due || membership != self.peers_membership;
        if membership_changed && let Some(peers) = from.peers.infos_unless(&old.peers, from.now) {
            new.peers = Arc::from(peers);
            changed = true;
        }
        self.peers_due = false;
        self.peers_membership = membership;
        if *from.metrics != *old.metrics {
            new.metrics = Arc::new(from.metrics.clone());
            changed = true;
        }
        // Refusals change no pool: the admission counts are compared.
        let (admitted, refused) = from.mempool.admissions();
        if admitted != old.tx_admitted || *refused != *old.tx_refused {
            new.tx_admitted = admitted;
            new.tx_refused = Arc::new(refused.clone());
            changed = true;
        }
        let bans = from.peers.ban_count(from.now);
        // The list is read again when the count changed, a peer came or
        // went (a ban closes its connections) or on the tick.
        if bans != old.bans || membership_changed {
            let list: Vec<_> = from
                .peers
                .bans(from.now)
                .into_iter()
                .map(|(key, left)| (key, from.now + left))
                .collect();
            if *list != *old.ban_list {
                new.ban_list = Arc::from(list);
                changed = true;
            }
        }
        if bans != old.bans {
            new.bans = bans;
            changed = true;
        }
        if *from.peers.penalties() != *old.penalties {
            new.penalties = Arc::new(from.peers.penalties().clone());
            changed = true;
        }

        if changed {
            new.seq = old.seq + 1;
            self.sender.send_replace(Arc::new(new));
        }
        for event in events {
            // No watcher is fine.
            let _ = self.watchers.send(event);
        }
        mempool_current
    }
}

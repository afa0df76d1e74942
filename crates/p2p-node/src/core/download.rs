//! Headers-first sync: the header branch ahead of the chain and the
//! download of its bodies from several peers at once.
//!
//! 1. A peer with more work than the node (its handshake, an orphan it
//!    sent) is asked for headers (`GetHeaders` from the branch's tip and
//!    the chain's locator). What it answers is checked by the chain
//!    (`Chain::add_headers`: linkage, proof of work, the difficulty rule,
//!    timestamps) before anything else: a refused answer is the sender's
//!    offence and no body is asked for. An answer of [`MAX_HEADERS`]
//!    asks the same peer for the next ones.
//! 2. The bodies of the branch's next [`WINDOW`] heights above the chain
//!    are asked of the peers whose height reaches them, in runs of
//!    consecutive heights, one `GetBlocks` per peer at a time, each peer
//!    holding at most its own allowance in flight: [`CHUNK`] at first,
//!    one more per body it delivers, halved by a request that times out,
//!    never more than [`MAX_IN_FLIGHT`] nor than [`PEER_BYTES`] at the
//!    average size of the bodies so far.
//! 3. A body that arrives is checked against its header at once
//!    (`validate::check_block`: merkle root, limits); one that does not
//!    match is the sender's offence and its height is asked of another
//!    peer. Bodies that match wait here until their parent is in the
//!    chain, and the core inserts them in height order
//!    ([`Download::next_block`]) while later ones arrive: downloading and
//!    validating overlap.
//! 4. A request unanswered after the request timeout is asked of another
//!    peer (the first answer wins; no penalty: slow is not malicious).
//! 5. On a runtime with several workers (a live node), the signatures of
//!    the bodies next in line, up to [`PRECHECK_SIGNATURES`] ahead of the
//!    chain, are checked on a thread of their own as they arrive
//!    (`escrow::SigCache::precheck_block`), and a body is inserted once
//!    its check is done (the core waits for it rather than check the same
//!    signatures twice): applying the block then finds them in the
//!    signature cache, so checking signatures overlaps with applying and
//!    saving the blocks before.
//!
//! Memory: no new height is asked while the bodies waiting for their
//! parent pass [`WAITING_BYTES`]; at most [`WINDOW`] heights are asked or
//! waiting, and each peer has about [`PEER_BYTES`] in flight.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chain_core::{Block, BlockHash, Header, HeaderBranch, HeadersAdded, validate};
use escrow::Tx;
use tokio::time::Instant;
use wire::message::{MAX_HEADERS, MAX_LOCATOR};
use wire::{Bounded, Message};

use crate::core::peers::PeerTable;
use crate::core::view::{ConnId, NodeChain, SyncProgress};
use crate::penalty::Offence;

/// The bodies a peer may have in flight at first.
pub(crate) const CHUNK: usize = 16;
/// The most bodies asked of one peer at once.
pub(crate) const MAX_IN_FLIGHT: usize = 256;
/// About the most bytes of bodies asked of one peer at once (at the
/// average size of the bodies received so far).
pub(crate) const PEER_BYTES: usize = 16 << 20;
/// No new height is asked while the bodies waiting for their parent hold
/// this many bytes.
pub(crate) const WAITING_BYTES: usize = 64 << 20;
/// The most signatures checked ahead of the chain (well within the shared
/// signature cache's capacity, so none is let go before its block is
/// applied).
pub(crate) const PRECHECK_SIGNATURES: usize = 40_000;
/// How far above the chain's height bodies are asked (in flight or
/// waiting for their parent).
pub(crate) const WINDOW: u64 = 1_024;

/// One body asked for.
struct Asked {
    hash: BlockHash,
    /// The peers asked, the current one last.
    tried: Vec<ConnId>,
    /// When the current one was asked.
    at: Instant,
    /// Whether the current one's request is still counted in flight (not
    /// timed out, not answered with a wrong body, still connected).
    open: bool,
}

/// A peer's part of the download.
struct PeerState {
    /// Bodies it may have in flight (see the module docs).
    limit: usize,
    in_flight: usize,
}

impl Default for PeerState {
    fn default() -> Self {
        PeerState {
            limit: CHUNK,
            in_flight: 0,
        }
    }
}

/// The header branch and the bodies asked and waiting (module docs).
pub(crate) struct Download {
    branch: Option<HeaderBranch>,
    /// Peers asked for headers, and when.
    headers_asked: HashMap<ConnId, Instant>,
    /// When each peer was last asked for headers.
    headers_last: HashMap<ConnId, Instant>,
    /// Bodies asked, by height.
    asked: BTreeMap<u64, Asked>,
    /// Bodies that matched their headers, waiting for their parent, by
    /// height, with their sender.
    arrived: BTreeMap<u64, (ConnId, Block<Tx>)>,
    /// Their bytes.
    arrived_bytes: usize,
    /// The average size of the bodies received (a moving average).
    average_size: usize,
    peers: HashMap<ConnId, PeerState>,
    timeout: Duration,
    /// The thread that checks signatures ahead (live nodes only).
    precheck: Option<precheck::Precheck>,
    /// When the download last started from a synced chain, and the
    /// height then (for the estimate of the time left).
    started: Option<(Instant, u64)>,
}

impl Download {
    /// A download with nothing to do; requests time out after `timeout`.
    pub fn new(timeout: Duration) -> Download {
        Download {
            branch: None,
            headers_asked: HashMap::new(),
            headers_last: HashMap::new(),
            asked: BTreeMap::new(),
            arrived: BTreeMap::new(),
            arrived_bytes: 0,
            average_size: 64 << 10,
            peers: HashMap::new(),
            timeout,
            started: None,
            precheck: precheck::Precheck::start(),
        }
    }

    /// Whether nothing is asked, nothing waits and no header waits for
    /// its body (no timer needed).
    pub fn is_idle(&self) -> bool {
        self.headers_asked.is_empty()
            && self.asked.is_empty()
            && self.arrived.is_empty()
            && self.branch.as_ref().is_none_or(HeaderBranch::is_empty)
    }

    /// Whether bodies are asked for or wait for their parent: more blocks
    /// are coming (the core batches its saves meanwhile).
    pub fn expects_bodies(&self) -> bool {
        !self.asked.is_empty() || !self.arrived.is_empty()
    }

    /// Whether `hash` is a block of the header branch (above the chain):
    /// its body is the download's, asked for or not.
    pub fn wants(&self, hash: &BlockHash) -> bool {
        self.branch
            .as_ref()
            .and_then(|b| b.height_of(hash))
            .is_some()
    }

    /// How far the sync is: headers known, blocks validated, and an
    /// estimate of the time left; `None` when no header waits for its body.
    pub fn progress(&self, chain: &NodeChain, now: Instant) -> Option<SyncProgress> {
        let branch = self.branch.as_ref().filter(|b| !b.is_empty())?;
        let (headers, blocks) = (branch.tip().1, chain.height());
        let left = headers.saturating_sub(blocks);
        let seconds_left = self.started.and_then(|(at, from)| {
            let done = blocks.checked_sub(from).filter(|d| *d > 0)?;
            let per_block = now.saturating_duration_since(at).as_secs_f64() / done as f64;
            Some(per_block * left as f64)
        });
        Some(SyncProgress {
            headers,
            blocks,
            seconds_left,
        })
    }

    // ---- headers --------------------------------------------------------

    /// Asks `conn` for headers after the branch's tip, unless it has an
    /// answer of ours to give already.
    pub fn ask_headers(
        &mut self,
        peers: &mut PeerTable,
        conn: ConnId,
        chain: &NodeChain,
        now: Instant,
    ) {
        if self.headers_asked.contains_key(&conn) {
            return;
        }
        let branch = self.branch(chain);
        let mut locator = branch.locator_head();
        locator.truncate(MAX_LOCATOR / 2);
        let tree = chain.locator();
        let room = MAX_LOCATOR - locator.len();
        // Keep genesis: the tree's locator ends with it.
        if tree.len() > room {
            locator.extend_from_slice(&tree[..room - 1]);
            locator.extend(tree.last());
        } else {
            locator.extend(tree);
        }
        let ask = Message::GetHeaders {
            locator: Bounded::truncating(locator),
            stop: BlockHash::ZERO,
        };
        if peers.send(conn, ask) {
            self.headers_asked.insert(conn, now);
            self.headers_last.insert(conn, now);
        }
    }

    /// Headers from `conn`: checked by the chain at `now_ms`, kept if they
    /// are the most-work branch, followed by a request for more (a full
    /// answer) and for bodies.
    ///
    /// # Errors
    ///
    /// The sender's offence: headers that break a rule or do not connect
    /// (nothing of them is kept; a header only too far in the future is
    /// no offence, and is dropped).
    pub fn on_headers(
        &mut self,
        peers: &mut PeerTable,
        conn: ConnId,
        headers: &[Header],
        chain: &NodeChain,
        (now, now_ms): (Instant, u64),
    ) -> Result<(), Offence> {
        self.headers_asked.remove(&conn);
        let mut branch = self.branch.take().unwrap_or_else(|| chain.header_branch());
        chain.settle_branch(&mut branch);
        let was_empty = branch.is_empty();
        let added = chain.add_headers(&mut branch, headers, now_ms);
        self.branch = Some(branch);
        match added {
            Ok(HeadersAdded::Extended { .. } | HeadersAdded::Switched { .. }) => {
                if was_empty || self.started.is_none() {
                    self.started = Some((now, chain.height()));
                }
                if let Some(last) = headers.last() {
                    peers.saw_height(conn, last.height);
                }
                if headers.len() >= MAX_HEADERS {
                    self.ask_headers(peers, conn, chain, now);
                }
                self.fill(peers, chain, now);
                Ok(())
            }
            Ok(HeadersAdded::Known | HeadersAdded::NotBetter) => Ok(()),
            Err(e) if !e.is_permanent() => {
                tracing::debug!(conn, "headers not kept for now: {e}");
                Ok(())
            }
            // Honest peers answer from a locator that may name headers the
            // node dropped since (its branch switched): as a sync answer
            // that does not connect, a small offence.
            Err(e @ chain_core::HeadersError::Unconnected { .. }) => {
                Err(Offence::Orphan(format!("headers: {e}")))
            }
            Err(e) => Err(Offence::InvalidBlock(format!("headers: {e}"))),
        }
    }

    /// The branch, settled against the chain (created at its tip).
    fn branch(&mut self, chain: &NodeChain) -> &HeaderBranch {
        let branch = self.branch.get_or_insert_with(|| chain.header_branch());
        chain.settle_branch(branch);
        branch
    }

    // ---- bodies ---------------------------------------------------------

    /// Asks for the bodies of the window's heights that are neither asked
    /// nor waiting, and again of another peer those whose request failed,
    /// of the peers with room, in chunks of consecutive heights.
    pub fn fill(&mut self, peers: &mut PeerTable, chain: &NodeChain, now: Instant) {
        self.forget_settled(chain);
        let Some(branch) = self.branch.take() else {
            return;
        };
        if !branch.is_empty() {
            let plan = self.plan(peers, &branch);
            for (conn, heights) in plan {
                let hashes: Vec<BlockHash> =
                    heights.iter().filter_map(|h| branch.hash_at(*h)).collect();
                if !peers.send(conn, Message::GetBlocks(Bounded::truncating(hashes))) {
                    continue;
                }
                for h in heights {
                    let Some(hash) = branch.hash_at(h) else {
                        continue;
                    };
                    let asked = self.asked.entry(h).or_insert(Asked {
                        hash,
                        tried: Vec::new(),
                        at: now,
                        open: false,
                    });
                    asked.tried.push(conn);
                    (asked.at, asked.open) = (now, true);
                    self.peers.entry(conn).or_default().in_flight += 1;
                }
            }
        }
        self.branch = Some(branch);
    }

    /// Who to ask for which heights: failed requests first, then the
    /// window's new heights; a height goes to a peer that reaches it, has
    /// room and was not asked for it before (any peer with room, if all
    /// were), the peer of the chunk being built while it can take more.
    fn plan(&self, peers: &PeerTable, branch: &HeaderBranch) -> BTreeMap<ConnId, Vec<u64>> {
        let (base, tip) = (branch.base_height(), branch.tip().1);
        let top = tip.min(base + WINDOW);
        let failed = self.asked.iter().filter(|(_, a)| !a.open).map(|(h, _)| *h);
        let room_to_wait = self.arrived_bytes < WAITING_BYTES;
        let fresh = (base + 1..=top).filter(|h| {
            room_to_wait && !self.asked.contains_key(h) && !self.arrived.contains_key(h)
        });
        let by_bytes = (PEER_BYTES / self.average_size.max(1)).max(1);
        let mut room: Vec<(ConnId, u64, usize)> = peers
            .live_conns()
            .into_iter()
            .filter_map(|c| peers.tip_of(c).map(|(height, _)| (c, height)))
            .map(|(c, height)| {
                let s = self.state(c);
                (c, height, s.limit.min(by_bytes).saturating_sub(s.in_flight))
            })
            .collect();
        // The highest any live peer is known to have, busy or not.
        let reach = room.iter().map(|(_, height, _)| *height).max().unwrap_or(0);
        let mut plan: BTreeMap<ConnId, Vec<u64>> = BTreeMap::new();
        let mut current: Option<usize> = None;
        for h in failed.chain(fresh).collect::<Vec<u64>>() {
            let tried: &[ConnId] = self.asked.get(&h).map_or(&[], |a| &a.tried);
            // A peer known to reach the height; if none is (their heights
            // may be older than what they have), any. Not one asked for it
            // before, unless all were.
            let fits = |(c, height, room): &(ConnId, u64, usize), untried: bool| {
                *room > 0 && (*height >= h || reach < h) && !(untried && tried.contains(c))
            };
            let keep = current.filter(|i| {
                fits(&room[*i], true) && plan.get(&room[*i].0).is_some_and(|p| p.len() < CHUNK)
            });
            let pick = keep.or_else(|| {
                let best = |untried: bool| {
                    (0..room.len())
                        .filter(|i| fits(&room[*i], untried))
                        .max_by_key(|i| (room[*i].2, std::cmp::Reverse(room[*i].0)))
                };
                best(true).or_else(|| best(false))
            });
            let Some(i) = pick else {
                continue;
            };
            room[i].2 -= 1;
            plan.entry(room[i].0).or_default().push(h);
            current = Some(i);
        }
        plan
    }

    /// A body of the branch from `conn` (asked for, or another peer's
    /// answer arriving late, or unasked): kept to be inserted in order if
    /// it matches its header and is not here already.
    ///
    /// # Errors
    ///
    /// The sender's offence if it does not match (the height is asked of
    /// another peer).
    pub fn on_block(
        &mut self,
        peers: &mut PeerTable,
        conn: ConnId,
        block: Block<Tx>,
        chain: &NodeChain,
        now: Instant,
    ) -> Result<(), Offence> {
        let hash = block.hash();
        let Some(height) = self.branch.as_ref().and_then(|b| b.height_of(&hash)) else {
            return Ok(());
        };
        if self.arrived.contains_key(&height) {
            return Ok(());
        }
        if let Err(e) = validate::check_block(&block, chain.params()) {
            if let Some(asked) = self.asked.get_mut(&height) {
                // Asked again of another peer, never of this one.
                if !asked.tried.contains(&conn) {
                    asked.tried.insert(0, conn);
                }
                if asked.open && asked.tried.last() == Some(&conn) {
                    asked.open = false;
                    self.release(conn, true);
                }
            }
            if let Some(s) = self.peers.get_mut(&conn) {
                s.limit = 1;
            }
            self.fill(peers, chain, now);
            return Err(Offence::InvalidBlock(format!(
                "block {hash} at height {height} does not match its header: {e}"
            )));
        }
        if let Some(asked) = self.asked.remove(&height)
            && asked.open
            && let Some(current) = asked.tried.last()
        {
            self.release(*current, false);
        }
        let s = self.peers.entry(conn).or_default();
        s.limit = (s.limit + 1).min(MAX_IN_FLIGHT);
        peers.saw_height(conn, height);
        let size = block.size();
        self.average_size = (self.average_size * 7 + size) / 8;
        self.arrived_bytes += size;
        self.arrived.insert(height, (conn, block));
        let base = self.branch.as_ref().map_or(0, HeaderBranch::base_height);
        self.send_prechecks(base);
        // Asked again once half its allowance is free: one request for
        // many bodies, not one per body.
        let s = self.state(conn);
        if s.in_flight <= s.limit / 2 {
            self.fill(peers, chain, now);
        }
        Ok(())
    }

    /// Hands the precheck thread the waiting bodies above `base` (the
    /// chain's height) in height order, while those handed and not yet
    /// applied hold fewer than [`PRECHECK_SIGNATURES`] transactions (the
    /// next one to insert, always).
    fn send_prechecks(&mut self, base: u64) {
        let Some(p) = &mut self.precheck else {
            return;
        };
        p.sent_to = p.sent_to.max(base);
        // Handed and not applied yet (`sent_to` is at least `base`).
        let mut ahead: usize = self
            .arrived
            .range(base..=p.sent_to)
            .filter(|(h, _)| **h > base)
            .map(|(_, (_, b))| b.transactions.len())
            .sum();
        while let Some((_, block)) = self.arrived.get(&(p.sent_to + 1)) {
            let next = p.sent_to + 1;
            if (ahead >= PRECHECK_SIGNATURES && next > base + 1)
                || p.to.send((next, block.transactions.clone())).is_err()
            {
                return;
            }
            ahead += block.transactions.len();
            p.sent_to = next;
        }
    }

    /// `conn`'s request of one body is over (answered, failed if `failed`).
    fn release(&mut self, conn: ConnId, failed: bool) {
        if let Some(s) = self.peers.get_mut(&conn) {
            s.in_flight = s.in_flight.saturating_sub(1);
            if failed {
                s.limit = (s.limit / 2).max(1);
            }
        }
    }

    /// Whether signatures are checked ahead ([`precheck`]).
    pub fn prechecks(&self) -> bool {
        self.precheck.is_some()
    }

    /// The next body to insert: the one whose parent is the chain's block
    /// the branch extends, with its sender. Unless `wait`, only once its
    /// signatures are checked (`None` while they are being checked).
    pub fn next_block(&mut self, chain: &NodeChain, wait: bool) -> Option<(ConnId, Block<Tx>)> {
        let base = self.branch(chain).base_height();
        if !self.arrived.contains_key(&(base + 1)) {
            return None;
        }
        self.send_prechecks(base);
        if let Some(p) = &mut self.precheck {
            if wait {
                p.wait_for(base + 1);
            } else if !p.is_done(base + 1) {
                return None;
            }
        }
        let next = self.arrived.remove(&(base + 1))?;
        self.arrived_bytes = self.arrived_bytes.saturating_sub(next.1.size());
        self.send_prechecks(base + 1);
        Some(next)
    }

    /// Drops what the chain no longer needs: heights it holds now, and
    /// bodies of headers no longer on the branch.
    fn forget_settled(&mut self, chain: &NodeChain) {
        let Some(mut branch) = self.branch.take() else {
            return;
        };
        chain.settle_branch(&mut branch);
        let stale = |h: &u64, hash: &BlockHash| {
            *h <= branch.base_height() || branch.hash_at(*h) != Some(*hash)
        };
        let gone: Vec<u64> = self
            .asked
            .iter()
            .filter(|(h, a)| stale(h, &a.hash))
            .map(|(h, _)| *h)
            .collect();
        for h in gone {
            if let Some(a) = self.asked.remove(&h)
                && a.open
                && let Some(current) = a.tried.last()
            {
                self.release(*current, false);
            }
        }
        let before = self.arrived.len();
        self.arrived.retain(|h, (_, b)| !stale(h, &b.hash()));
        if self.arrived.len() != before {
            self.arrived_bytes = self.arrived.values().map(|(_, b)| b.size()).sum();
        }
        if branch.is_empty() {
            self.started = None;
        }
        self.branch = Some(branch);
    }

    // ---- time and peers ---------------------------------------------------

    /// The timer: headers and bodies unanswered for the timeout are asked
    /// of other peers; a peer that let a body time out may have half as
    /// many in flight.
    pub fn on_tick(&mut self, peers: &mut PeerTable, chain: &NodeChain, now: Instant) {
        let timeout = self.timeout;
        self.headers_asked
            .retain(|_, at| now.saturating_duration_since(*at) < timeout);
        let mut late = Vec::new();
        for a in self.asked.values_mut() {
            if a.open && now.saturating_duration_since(a.at) >= timeout {
                a.open = false;
                late.extend(a.tried.last().copied());
            }
        }
        for conn in &late {
            self.release(*conn, false);
        }
        // One request that timed out halves a peer's allowance once,
        // however many bodies it held.
        late.sort_unstable();
        late.dedup();
        for conn in late {
            if let Some(s) = self.peers.get_mut(&conn) {
                s.limit = (s.limit / 2).max(1);
            }
        }
        // A peer that has said it has more work than the node and the
        // branch is asked for headers again, at most once a timeout (an
        // answer lost, or dropped for a timestamp then in the future).
        let most = self.branch(chain).tip_work().max(chain.total_work());
        for conn in peers.live_conns() {
            let ahead = peers.tip_of(conn).is_some_and(|(_, work)| work > most);
            let due = self
                .headers_last
                .get(&conn)
                .is_none_or(|at| now.saturating_duration_since(*at) >= timeout);
            if ahead && due {
                self.ask_headers(peers, conn, chain, now);
            }
        }
        self.fill(peers, chain, now);
    }

    /// `conn` is gone: what it was asked goes to others.
    pub fn on_gone(
        &mut self,
        peers: &mut PeerTable,
        conn: ConnId,
        chain: &NodeChain,
        now: Instant,
    ) {
        self.headers_asked.remove(&conn);
        self.headers_last.remove(&conn);
        self.peers.remove(&conn);
        for a in self.asked.values_mut() {
            if a.tried.last() == Some(&conn) {
                a.open = false;
            }
        }
        self.fill(peers, chain, now);
    }

    fn state(&self, conn: ConnId) -> PeerState {
        self.peers
            .get(&conn)
            .map_or_else(PeerState::default, |s| PeerState {
                limit: s.limit,
                in_flight: s.in_flight,
            })
    }
}

#[path = "precheck.rs"]
mod precheck;

#[cfg(test)]
#[path = "download_tests.rs"]
mod tests;

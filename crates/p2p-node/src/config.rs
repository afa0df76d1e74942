//! The node's configuration.

use std::net::SocketAddr;
use std::time::Duration;

use escrow::{Address, Genesis};

/// When the node mines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MiningMode {
    /// Never, except blocks asked for with `NodeHandle::mine_blocks`.
    #[default]
    Off,
    /// While transactions are pending (the notebook's behaviour).
    WhenPending,
    /// Always.
    Continuous,
}

impl MiningMode {
    /// The mode's name, as the command line and the API spell it.
    pub fn name(self) -> &'static str {
        match self {
            MiningMode::Off => "off",
            MiningMode::WhenPending => "pending",
            MiningMode::Continuous => "continuous",
        }
    }
}

impl std::str::FromStr for MiningMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "off" => Ok(MiningMode::Off),
            "pending" | "when-pending" => Ok(MiningMode::WhenPending),
            "continuous" | "on" => Ok(MiningMode::Continuous),
            other => Err(format!(
                "unknown mining mode `{other}` (expected off, pending or continuous)"
            )),
        }
    }
}

/// How a node sends new blocks to its peers (`docs/PROTOCOL.md`,
/// "Compact blocks").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Relay {
    /// Announce, then send the whole block on request.
    Legacy,
    /// Compact blocks, with every peer of protocol version 3 that wants
    /// them; the others get legacy relay.
    #[default]
    Compact,
}

/// Everything a node needs to start.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The network: its rules and initial balances.
    pub genesis: Genesis,
    /// Where to listen (`127.0.0.1:0` lets the OS choose a port).
    pub listen: SocketAddr,
    /// The address peers should dial to reach this node, told to them in
    /// the handshake; `None` means the listening address. Needed when
    /// listening on a wildcard (`0.0.0.0:5000`) across machines.
    pub advertise: Option<SocketAddr>,
    /// Peers to dial at start and to keep reconnecting to.
    pub peers: Vec<SocketAddr>,
    /// When to mine.
    pub mining: MiningMode,
    /// Who receives this node's block rewards.
    pub miner_account: Address,
    /// Compute threads for the miner.
    pub miner_threads: usize,
    /// The shortest time from the moment this node adopted a block as its
    /// best tip (on its own clock: timestamps, which may lie ahead, play
    /// no part) to a block it mines on that tip on its own
    /// ([`MiningMode::Pending`] or [`MiningMode::Continuous`]); "mine N"
    /// requests do not wait. Zero (the default) mines as soon as it can.
    /// A dev network's target is met in about a millisecond, so without
    /// it a node mining while transactions wait makes hundreds of small
    /// blocks a second, each of which every node validates, saves and
    /// relays (the geth dev mode's `--dev.period` is the same idea).
    pub block_interval: Duration,
    /// How soon transactions admitted while the miner works reach it: a
    /// running job whose template lacks them is replaced by a fresh
    /// template once this long has passed since the job started (a new
    /// tip replaces it at once). Default 2 s; zero refreshes at every
    /// mempool change.
    pub template_refresh: Duration,
    /// How new blocks go to peers: compact blocks (the default) or the
    /// legacy announcement and whole block.
    pub relay: Relay,
    /// Outbound connections the node keeps: it dials addresses from its
    /// address book (configured, then learned) until it has this many, and
    /// no more.
    pub max_outbound: usize,
    /// Most inbound connections; past it a newcomer evicts an inbound peer
    /// by the rule of `docs/PROTOCOL.md` ("Connection limits"), or is
    /// refused if every inbound peer is protected.
    pub max_inbound: usize,
    /// Most inbound connections still in their handshake, counted apart
    /// from peers; past it a silent one is closed to make room (see
    /// `listener.rs`). Sockets are cheap: the budget is large enough that
    /// a flood of a few hundred silent sockets never forces a choice, and
    /// each is closed by the handshake timeout.
    pub max_pending: usize,
    /// Largest frame accepted or sent, in bytes.
    pub max_frame: usize,
    /// Time allowed for the whole handshake.
    pub handshake_timeout: Duration,
    /// A live connection silent this long is pinged.
    pub ping_interval: Duration,
    /// A live connection silent this long is closed.
    pub idle_timeout: Duration,
    /// Penalty points at which a peer is disconnected and banned.
    pub ban_threshold: u32,
    /// How long a ban lasts.
    pub ban_duration: Duration,
    /// First delay before redialling a peer that dropped; doubled per
    /// failure up to `max_backoff`.
    pub min_backoff: Duration,
    /// Longest delay between redials.
    pub max_backoff: Duration,
    /// Most transactions in the mempool.
    pub mempool_max: usize,
    /// Most pending transactions of one account.
    pub mempool_max_per_account: usize,
    /// The mempool's fee policy and byte bound (`--min-relay-fee`,
    /// `--mempool-max-bytes`).
    pub fee_policy: crate::mempool::policy::FeePolicy,
    /// Messages queued for one peer before it counts as too slow and is
    /// dropped.
    pub peer_queue: usize,
    /// Bytes (whole frames) queued for one peer before it counts as too
    /// slow and is dropped: what a peer that never reads can cost.
    pub peer_queue_bytes: usize,
    /// How long one write may take before the peer counts as too slow
    /// and is dropped: one frame, or several small ones queued together
    /// (at most 64 KiB past the first; see `docs/PROTOCOL.md`).
    pub write_timeout: Duration,
    /// What the node uploads to one peer in answer to its requests: at most
    /// `upload_burst` bytes at once, refilled at `upload_rate` bytes per
    /// second. A request whose answer does not fit is refused and costs
    /// the peer [`crate::Offence::UploadBudget`] points.
    pub upload_burst: usize,
    /// See [`NodeConfig::upload_burst`].
    pub upload_rate: usize,
    /// How long a request for a block or transaction waits for an answer
    /// before the item may be asked of another peer.
    pub request_timeout: Duration,
    /// How often the core does its housekeeping: requests that timed out
    /// are asked again, due redials are made, bans expire, the mempool is
    /// saved. Timeouts above are exact to within this.
    pub tick_interval: Duration,
    /// A new snapshot of the ledger is saved with the blocks once this many
    /// blocks (or ten times as many transactions) were applied since the
    /// last one, and at every clean stop. A start after a crash applies
    /// again at most about that many blocks; each snapshot costs a write of
    /// the whole ledger.
    pub snapshot_every: u64,
    /// How many recent blocks keep their body and undo record in memory;
    /// older ones are read back from the store when needed.
    pub memory_window: u64,
    /// Where to serve the HTTP API, if at all (by [`crate::Service`]: a
    /// [`crate::Node`] alone does not serve it).
    pub api: Option<SocketAddr>,
    /// The token that guards the API's control endpoints (mine, peers);
    /// without one they are refused.
    pub api_token: Option<String>,
    /// The API server's limits: connections, the time to send a request
    /// head, head and body sizes (`docs/API.md`, "Limits").
    pub api_limits: crate::api::serve::ApiLimits,
    /// A dev chain's snapshots (`--dev`): with them the API serves `POST
    /// /dev/snapshot`, `/dev/revert` and `/dev/reset`; without, it refuses
    /// them (`not_dev`).
    pub dev: Option<crate::dev::DevChain>,
}

impl NodeConfig {
    /// A dev node: the dev genesis, listening on `127.0.0.1:0`, not mining,
    /// rewards to `ferdie`.
    pub fn dev() -> NodeConfig {
        NodeConfig::new(Genesis::dev())
    }

    /// Defaults for a network with this genesis.
    pub fn new(genesis: Genesis) -> NodeConfig {
        NodeConfig {
            genesis,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            advertise: None,
            peers: Vec::new(),
            mining: MiningMode::Off,
            miner_account: escrow::dev::address("ferdie").unwrap_or(Address::ZERO),
            miner_threads: 1,
            block_interval: Duration::ZERO,
            template_refresh: Duration::from_secs(2),
            relay: Relay::Compact,
            max_outbound: 8,
            max_inbound: 24,
            max_pending: 256,
            max_frame: wire::DEFAULT_MAX_FRAME,
            handshake_timeout: Duration::from_secs(5),
            ping_interval: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(45),
            ban_threshold: 100,
            ban_duration: Duration::from_secs(600),
            min_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(30),
            mempool_max: 10_000,
            mempool_max_per_account: 256,
            fee_policy: crate::mempool::policy::FeePolicy::default(),
            peer_queue: 4_096,
            peer_queue_bytes: 2 * wire::DEFAULT_MAX_FRAME,
            write_timeout: Duration::from_secs(20),
            upload_burst: 8 * wire::DEFAULT_MAX_FRAME,
            upload_rate: 2 * wire::DEFAULT_MAX_FRAME,
            request_timeout: Duration::from_secs(5),
            tick_interval: Duration::from_millis(100),
            snapshot_every: 1_000,
            memory_window: chain_core::tree::DEFAULT_MEMORY_WINDOW,
            api: None,
            api_token: None,
            api_limits: crate::api::serve::ApiLimits::default(),
            dev: None,
        }
    }
}

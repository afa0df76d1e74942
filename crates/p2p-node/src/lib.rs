//! p2p-node: the escrow chain's node.
//!
//! A node keeps the block tree and the ledger, talks the wire protocol to
//! its peers over TCP, gossips transactions and blocks, syncs from peers
//! with more work, keeps a mempool, and mines.
//!
//! # Layout
//!
//! - [`node`]: [`Node::start`] and the [`NodeHandle`] that queries, commands
//!   and stops a running node.
//! - [`core`]: the one task that owns the chain, the mempool and the store,
//!   a coordinator over parts that own the peer table, the requests in
//!   flight and the miner; everything else sends it messages.
//! - [`listener`]: the accept loop and the budget of connections still in
//!   their handshake.
//! - [`peer`]: one task per connection: handshake, then reading, writing
//!   and the timers side by side.
//! - [`mempool`]: pending transactions, bounded on admission, rebuilt on
//!   reorgs, dropped ones remembered with their reason.
//! - [`penalty`]: offences, penalty points, bans.
//! - [`config`]: [`NodeConfig`] and [`MiningMode`].
//! - [`api`]: the HTTP API (axum, JSON), `docs/API.md`.
//! - [`dev`]: a `--dev` chain's snapshots, revert and reset.
//! - [`service`]: a node and its API side by side ([`Service`]), what the
//!   binary runs; the node itself knows nothing of the API.
//! - [`api_types`]: that API's answers as serde types, defined once for
//!   the API that writes them and the client that reads them.
//! - [`client`]: the command-line client's side of that API: typed calls
//!   that return those answers.
//! - `fuzzing` (hidden): the store's record decoders, for the cargo-fuzz
//!   targets in `fuzz/`.
//! - Seams for simulation: [`transport`] (listening and dialling),
//!   [`clock`] (block timestamps), [`store`] (accepted blocks, the saved
//!   mempool and bans), [`pow`] (proof of work: the `Mine` seam), and the node id and seed
//!   in [`Seams`]. The simulator (the `sim` crate, `crates/sim`) fills
//!   them with fakes; none ships here.
//!
//! # Tasks
//!
//! Per node: the core, the accept loop, one task per connection (and one
//! per dial in progress), the miner's blocking job while it mines, and, when
//! a [`Service`] runs the API, the HTTP server (whose event streams end with
//! the node).
//! All are tracked; [`NodeHandle::shutdown`] cancels them and waits for
//! them.

pub mod api;
pub mod api_types;
pub mod client;
pub mod clock;
pub mod config;
pub mod core;
pub mod cpu;
pub mod dev;
#[doc(hidden)]
pub mod fuzzing;
pub mod listener;
pub mod mempool;
pub mod node;
pub mod peer;
pub mod penalty;
pub mod pow;
pub mod service;
pub mod store;
pub mod timings;
pub mod traffic;
pub mod transport;

pub use config::{MiningMode, NodeConfig, Relay};
pub use core::{Direction, NodeEvent, NodeView, PeerInfo, RECENT_HEIGHTS, Snapshot, SyncProgress};
pub use mempool::{Mempool, MempoolError};
pub use node::{Node, NodeError, NodeHandle, Seams};
pub use penalty::{BanKey, Offence};
pub use service::Service;

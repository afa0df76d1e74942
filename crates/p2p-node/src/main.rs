//! The `p2p-node` binary: runs a node (no subcommand, or `run`), or talks
//! to one as a client (every other subcommand) through its HTTP API.
//!
//! This file holds the command line, `main`, and running a node; the
//! client subcommands are in [`commands`].

mod commands;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use escrow::{Address, ContractId, Genesis, dev};
use p2p_node::client::COOKIE_FILE;
use p2p_node::store::RedbStore;
use p2p_node::{MiningMode, NodeConfig, Seams, Service};

/// A node of the escrow chain, and its client.
#[derive(Debug, Parser)]
#[command(name = "p2p-node", version, about)]
struct Cli {
    /// Runs a node when no subcommand is given.
    #[command(flatten)]
    run: RunArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Args, Clone)]
struct RunArgs {
    /// Address to listen on for peers.
    #[arg(long, default_value = "127.0.0.1:5000")]
    listen: SocketAddr,
    /// The address other nodes should dial to reach this one (told to peers
    /// in the handshake); the listening address if omitted. Give it when
    /// listening on 0.0.0.0.
    #[arg(long)]
    advertise: Option<SocketAddr>,
    /// Address of the HTTP API.
    #[arg(long, default_value = "127.0.0.1:8000")]
    api: SocketAddr,
    /// A peer to dial (repeat for more).
    #[arg(long = "peer")]
    peers: Vec<SocketAddr>,
    /// The node's data directory (blocks, API token); created if missing.
    #[arg(long, env = "P2P_NODE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// When to mine: off, pending (while transactions wait) or continuous.
    #[arg(long, default_value = "pending")]
    mine: MiningMode,
    /// Who receives block rewards: a dev account name or a hex address.
    #[arg(long, default_value = "ferdie")]
    miner: String,
    /// Miner threads.
    #[arg(long, default_value_t = 1)]
    miner_threads: usize,
    /// Save a snapshot of the ledger every this many blocks (and at every
    /// clean stop): a start after a crash applies at most that many again.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..))]
    snapshot_every: u64,
    /// A genesis file (JSON); the dev network if omitted.
    #[arg(long)]
    genesis: Option<PathBuf>,
    /// Log filter (for example `info` or `p2p_node=debug`); `RUST_LOG` works
    /// too.
    #[arg(long)]
    log: Option<String>,
}

#[derive(Debug, Args, Clone)]
struct ClientArgs {
    /// The node's API.
    #[arg(
        long,
        global = true,
        env = "P2P_NODE_URL",
        default_value = "http://127.0.0.1:8000"
    )]
    node: String,
    /// The node's API token (for `mine`); read from the node's data
    /// directory if omitted.
    #[arg(long, global = true)]
    token: Option<String>,
    /// Print the API's JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, Args, Clone)]
struct Signer {
    /// Sign as this dev account (alice, bob, charlie, dave, eve, ferdie).
    #[arg(long = "as", conflicts_with = "key")]
    as_account: Option<String>,
    /// Sign with the key in this file.
    #[arg(long)]
    key: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs a node (the default).
    Run,
    /// The node's status.
    Status(ClientArgs),
    /// An account's balance and nonce.
    Balance {
        /// A dev account name or a hex address.
        account: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Sends coins.
    Transfer {
        #[command(flatten)]
        signer: Signer,
        /// The receiver: a dev account name or a hex address.
        to: String,
        /// How much.
        amount: u64,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Escrow contracts.
    #[command(subcommand)]
    Escrow(EscrowCommand),
    /// One contract.
    Contract {
        /// The contract id.
        id: ContractId,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Every contract.
    Contracts(ClientArgs),
    /// The latest blocks.
    Blocks {
        /// How many.
        #[arg(long, default_value_t = 10)]
        last: u64,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Mines blocks now (dev networks; needs the node's token).
    Mine {
        /// How many.
        count: u64,
        #[command(flatten)]
        client: ClientArgs,
        /// The node's data directory, where its token is.
        #[arg(long, env = "P2P_NODE_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Makes a new key file (owner-only permissions) and prints its address.
    Keygen {
        /// Where to write it (refuses to overwrite).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum EscrowCommand {
    /// Locks coins for a seller, with an arbiter.
    Create {
        #[command(flatten)]
        signer: Signer,
        /// Who is paid on release.
        #[arg(long)]
        seller: String,
        /// Who settles a dispute.
        #[arg(long)]
        arbiter: String,
        /// How much.
        amount: u64,
        /// Blocks from now until the delivery deadline.
        #[arg(long, default_value_t = 100)]
        delivery_blocks: u64,
        /// Blocks a dispute may stay unresolved before the buyer may take
        /// the refund.
        #[arg(long, default_value_t = 20)]
        dispute_window: u64,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// The buyer confirms delivery: the seller is paid.
    Confirm(Action),
    /// The buyer or the seller disputes.
    Dispute(Action),
    /// The buyer is refunded (see docs/ESCROW.md for who may, and when).
    Refund(Action),
    /// The arbiter settles a dispute.
    Resolve {
        #[command(flatten)]
        action: Action,
        /// Who gets the funds.
        #[arg(long, value_parser = ["buyer", "seller"])]
        to: String,
    },
}

#[derive(Debug, Args)]
struct Action {
    #[command(flatten)]
    signer: Signer,
    /// The contract id.
    id: ContractId,
    #[command(flatten)]
    client: ClientArgs,
}

/// A node's data directory when none is given: one per P2P port, so that
/// nodes on one machine do not share one (the client's `mine` looks in the
/// default node's).
fn default_data_dir(listen: &SocketAddr) -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".p2p-node")
        .join(format!("node-{}", listen.port()))
}

/// An account named on the command line: a dev account name or a hex
/// address.
fn parse_account(s: &str) -> anyhow::Result<Address> {
    dev::account(s)
        .with_context(|| format!("`{s}` is neither a dev account name nor a 64-hex-digit address"))
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None | Some(Command::Run) => run(cli.run).await,
        Some(command) => commands::run(command).await,
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let filter = args
        .log
        .clone()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".to_string());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .init();
    let genesis = match &args.genesis {
        Some(path) => Genesis::load(path)
            .with_context(|| format!("cannot load the genesis file {}", path.display()))?,
        None => Genesis::dev(),
    };
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| default_data_dir(&args.listen));
    let store = RedbStore::open(&data_dir).context("cannot open the block store")?;
    if store.was_repaired() {
        eprintln!(
            "warning: the store {} was not closed cleanly; redb repaired it on open",
            store.path().display()
        );
    }
    let token = write_cookie(&data_dir)?;
    let mut config = NodeConfig::new(genesis);
    config.listen = args.listen;
    config.advertise = args.advertise;
    if args.advertise.is_none() && args.listen.ip().is_unspecified() {
        eprintln!(
            "warning: listening on {} without --advertise: peers will learn an address \
             they cannot dial; give --advertise HOST:PORT",
            args.listen
        );
    }
    config.peers = args.peers;
    config.mining = args.mine;
    config.miner_account = parse_account(&args.miner)?;
    config.miner_threads = args.miner_threads;
    config.snapshot_every = args.snapshot_every;
    config.api = Some(args.api);
    config.api_token = Some(token);
    let seams = Seams {
        store: Box::new(store),
        ..Seams::default()
    };
    let node = Service::start(config, seams)
        .await
        .context("the node could not start")?;
    let (height, tip) = node.tip().await.map(|(t, h)| (h, t))?;
    println!("data directory {}", data_dir.display());
    println!("p2p listening on {}", node.local_addr());
    if let Some(api) = node.api_addr() {
        println!("api listening on http://{api}");
    }
    println!("best tip {tip} at height {height}");
    node.run_until(async {
        wait_for_signal().await;
        println!("stopping");
    })
    .await;
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Writes a fresh random API token, readable by the owner only.
fn write_cookie(dir: &Path) -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness for the token: {e}"))?;
    let token = hex::encode(bytes);
    let path = dir.join(COOKIE_FILE);
    let _ = std::fs::remove_file(&path);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    use std::io::Write;
    let mut file = options
        .open(&path)
        .with_context(|| format!("cannot write the API token {}", path.display()))?;
    file.write_all(token.as_bytes())
        .with_context(|| format!("cannot write the API token {}", path.display()))?;
    Ok(token)
}

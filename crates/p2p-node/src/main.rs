//! The node binary: parses flags, starts a [`p2p_node::Node`], and runs it
//! until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use escrow::{Address, Genesis};
use p2p_node::{MiningMode, Node, NodeConfig};

/// Runs a node of the escrow chain.
#[derive(Debug, Parser)]
#[command(name = "p2p-node", version, about)]
struct Args {
    /// Address to listen on for peers.
    #[arg(long, default_value = "127.0.0.1:5000")]
    listen: SocketAddr,
    /// A peer to dial (repeat for more).
    #[arg(long = "peer")]
    peers: Vec<SocketAddr>,
    /// When to mine: off, pending (while transactions wait) or continuous.
    #[arg(long, default_value = "pending")]
    mine: MiningMode,
    /// Who receives block rewards: a dev account name or a 64-hex-digit
    /// address.
    #[arg(long, default_value = "ferdie")]
    miner_account: String,
    /// Miner threads.
    #[arg(long, default_value_t = 1)]
    miner_threads: usize,
    /// A genesis file (JSON); the dev network if omitted.
    #[arg(long)]
    genesis: Option<PathBuf>,
}

fn parse_account(s: &str) -> anyhow::Result<Address> {
    if let Some(a) = escrow::dev::address(s) {
        return Ok(a);
    }
    s.parse::<Address>()
        .with_context(|| format!("`{s}` is neither a dev account name nor a hex address"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let genesis = match &args.genesis {
        Some(path) => Genesis::load(path)
            .with_context(|| format!("cannot load the genesis file {}", path.display()))?,
        None => Genesis::dev(),
    };
    let mut config = NodeConfig::new(genesis);
    config.listen = args.listen;
    config.peers = args.peers;
    config.mining = args.mine;
    config.miner_account = parse_account(&args.miner_account)?;
    config.miner_threads = args.miner_threads;
    let node = Node::start(config)
        .await
        .context("the node could not start")?;
    println!("listening on {}", node.local_addr());
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    println!("stopping");
    node.shutdown().await;
    Ok(())
}

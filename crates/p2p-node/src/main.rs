//! The `p2p-node` binary: runs a node (no subcommand, or `run`), or talks
//! to one as a client (every other subcommand) through its HTTP API.
//!
//! This file holds `main` and running a node; the command line and the
//! client subcommands are in [`commands`]. `docs/CLI.md` specifies both.

/// `println!` that does not panic when stdout is closed (`p2p-node
/// completions bash | head`): what nobody reads is dropped.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

/// `eprintln!` that does not panic when stderr is closed.
macro_rules! tell {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

mod commands;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches};
use commands::args::{Cli, Command, RunArgs};
use commands::errors::{Exit, Failure, report};
use escrow::{Genesis, GenesisFileError};
use p2p_node::client::COOKIE_FILE;
use p2p_node::dev::DevChain;
use p2p_node::store::{BlockStore, RedbStore, StoreError};
use p2p_node::{NodeConfig, NodeError, Seams, Service};

fn main() -> std::process::ExitCode {
    // `--json` asks for JSON errors, the command line's own included, so
    // it is looked for before the command line is parsed.
    let json = std::env::args_os()
        .take_while(|a| a != "--")
        .any(|a| a == "--json");
    let matches = match command().try_get_matches() {
        Ok(m) => m,
        Err(e) => return usage_error(e, json),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => return usage_error(e, json),
    };
    if let Some(message) = commands::args::misplaced_option(&matches, &cli) {
        return report(&Failure::usage(message).into(), json);
    }
    let mut cli = cli;
    // `P2P_NODE_URL` is the client's: a bad one does not stop `run`.
    let client = !matches!(cli.command, None | Some(Command::Run(_)));
    if let Err(message) = cli.global.resolve(client) {
        return report(&Failure::usage(message).into(), json);
    }
    let json = cli.global.json;
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            let e = anyhow::Error::new(e).context("cannot start the async runtime");
            return report(&e, json);
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => report(&e, json),
    }
}

/// The command line, with the client-only options hidden from `run
/// --help` (`run` refuses them: [`commands::args::misplaced_option`]).
fn command() -> clap::Command {
    let mut cmd = Cli::command();
    // Builds the tree, so that `run` holds its copies of the global options.
    cmd.build();
    let hide = |ids: &'static [&'static str]| {
        move |c: clap::Command| {
            c.mut_args(|a| {
                if ids.contains(&a.get_id().as_str()) {
                    a.hide(true)
                } else {
                    a
                }
            })
        }
    };
    // What a subcommand that asks no node would only list to confuse.
    const NO_NODE: &[&str] = &["node", "token", "request_timeout", "wait_for_node"];
    const NO_NODE_NO_DIR: &[&str] = &[
        "node",
        "token",
        "request_timeout",
        "wait_for_node",
        "data_dir",
    ];
    cmd.mut_subcommand("run", hide(&commands::args::CLIENT_IDS))
        .mut_subcommand("keygen", hide(NO_NODE_NO_DIR))
        .mut_subcommand("keys", hide(NO_NODE_NO_DIR))
        .mut_subcommand("address", hide(NO_NODE_NO_DIR))
        .mut_subcommand("completions", hide(NO_NODE_NO_DIR))
        .mut_subcommand("genesis", |g| {
            g.mut_subcommand("init", hide(NO_NODE_NO_DIR))
        })
        .mut_subcommand("check", hide(NO_NODE))
        .mut_subcommand("purge", hide(NO_NODE))
}

/// A command-line error: clap's own text (help and version exit 0), or
/// with `--json` the error as JSON on stderr; exit code 2.
fn usage_error(e: clap::Error, json: bool) -> std::process::ExitCode {
    use clap::error::ErrorKind;
    let informational = matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion);
    if !json || informational {
        let _ = e.print();
        return if e.use_stderr() {
            std::process::ExitCode::from(Exit::Usage as u8)
        } else {
            std::process::ExitCode::SUCCESS
        };
    }
    if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        // clap's text is the whole help: say what is missing, in one line.
        let help = e.render().to_string();
        let usage = help
            .lines()
            .find_map(|l| l.trim().strip_prefix("Usage: "))
            .unwrap_or("p2p-node --help")
            .to_string();
        let message =
            format!("a subcommand is missing: usage: {usage}; add --help to list the subcommands");
        return report(&Failure::usage(message).into(), true);
    }
    report(&anyhow::Error::new(e), true)
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let data_dir = cli.global.data_dir.clone();
    match cli.command {
        None => run(cli.run, data_dir).await,
        Some(Command::Run(args)) => run(args, data_dir).await,
        Some(command) => commands::run(command, cli.global).await,
    }
}

/// A local failure (exit 6) with `message`.
fn local(message: String) -> anyhow::Error {
    Failure {
        exit: Exit::Local,
        code: "node_start",
        message,
    }
    .into()
}

/// Reads `--genesis FILE`, saying the path and the cause once, and what to
/// do.
fn load_genesis(path: &Path) -> anyhow::Result<Genesis> {
    Genesis::load(path).map_err(|e| match e {
        GenesisFileError::Io { path, source } => local(format!(
            "cannot read the genesis file {}: {source}; check --genesis, or write one with \
             `p2p-node genesis init --out {}`",
            path.display(),
            path.display()
        )),
        invalid @ GenesisFileError::Invalid { .. } => local(format!(
            "{invalid}; docs/CLI.md describes the format, `p2p-node genesis init` writes one"
        )),
    })
}

/// The message for a node that cannot start, with the flag to change when
/// an address cannot be listened on (in use, not this machine's, a
/// privileged port).
fn start_error(e: NodeError) -> anyhow::Error {
    match &e {
        NodeError::Listen { .. } => local(format!(
            "{e}; give this node another --listen HOST:PORT (port 0 picks a free one; then give \
             --data-dir DIR too: without it a node's data directory is ~/.p2p-node/node-PORT, \
             which every node on port 0 would share)"
        )),
        NodeError::ApiListen { .. } => local(format!(
            "{e}; give this node another --api HOST:PORT (port 0 picks a free one)"
        )),
        _ => anyhow::Error::new(e).context("the node could not start"),
    }
}

/// The message for a store that cannot be opened; a data directory in use
/// names the flag to change.
fn store_error(e: StoreError) -> anyhow::Error {
    match &e {
        StoreError::Locked { .. } => local(format!("{e} (--data-dir DIR)")),
        StoreError::Corrupt { path, .. } => local(format!(
            "{e}; list every damaged record with `p2p-node check --data-dir {}`, then move {} \
             aside and start again to sync the chain from peers",
            path.parent().unwrap_or(path).display(),
            path.display()
        )),
        _ => local(e.to_string()),
    }
}

async fn run(args: RunArgs, data_dir: Option<PathBuf>) -> anyhow::Result<()> {
    let filter = args
        .log
        .clone()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".to_string());
    let json = args.log_format == commands::args::LogFormat::Json;
    let env_filter = tracing_subscriber::EnvFilter::new(filter);
    if json {
        // One object per line: time, level, target, the event's fields
        // (its message among them) and the spans it happened in.
        tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_env_filter(env_filter)
            .init();
    } else {
        // The logs go to stdout: colour only when that is a terminal.
        tracing_subscriber::fmt()
            .with_env_filter(env_filter)
            .with_ansi(std::io::stdout().is_terminal())
            .init();
    }
    // A start-up line: plain text on stdout, or in JSON mode a log event
    // (so that every line of stdout is one JSON object).
    let announce = |line: String| {
        if json {
            tracing::info!(target: "p2p_node::startup", "{line}");
        } else {
            say!("{line}");
        }
    };
    let warn = |line: String| {
        if json {
            tracing::warn!(target: "p2p_node::startup", "{line}");
        } else {
            tell!("warning: {line}");
        }
    };
    let genesis = match &args.genesis {
        Some(path) => load_genesis(path)?,
        None => Genesis::dev(),
    };
    let data_dir = data_dir.unwrap_or_else(|| commands::default_data_dir(&args.listen));
    let (dev, restarts) = match args.dev {
        true => {
            let (chain, restarts) = DevChain::new();
            (Some(chain), Some(restarts))
        }
        false => (None, None),
    };
    let store: Box<dyn BlockStore> = if let Some(dev) = &dev {
        // The chain lives in memory; the directory holds the token only.
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("cannot create the data directory {}", data_dir.display()))
            .map_err(|e| local(commands::errors::render(&e)))?;
        Box::new(dev.live_store())
    } else {
        let store = RedbStore::open(&data_dir).map_err(store_error)?;
        if store.was_repaired() {
            warn(format!(
                "the store {} was not closed cleanly; redb repaired it on open",
                store.path().display()
            ));
        }
        Box::new(store)
    };
    // The token is written once the node has started (below): a node that
    // cannot start, its address or store in use, leaves the token of the
    // one that runs there as it was.
    let token = new_token().map_err(|e| local(commands::errors::render(&e)))?;
    let mut config = NodeConfig::new(genesis);
    config.listen = args.listen;
    config.advertise = args.advertise;
    if args.advertise.is_none() && args.listen.ip().is_unspecified() {
        warn(format!(
            "listening on {} without --advertise: peers will learn an address \
             they cannot dial; give --advertise HOST:PORT",
            args.listen
        ));
    }
    config.peers.clone_from(&args.peers);
    config.mining = args.mine;
    config.miner_account = args.miner;
    config.miner_threads = args.miner_threads;
    config.block_interval = std::time::Duration::from_millis(args.block_interval);
    config.template_refresh = std::time::Duration::from_millis(args.template_refresh);
    config.relay = args.relay;
    config.fee_policy.min_relay = escrow::FeeRate::per_kb(args.min_relay_fee);
    config.fee_policy.max_bytes = args.mempool_max_bytes;
    config.snapshot_every = args.snapshot_every;
    config.api = Some(args.api);
    config.api_token = Some(token);
    config.dev = dev;
    let dev_accounts = args.dev.then(|| dev_banner(&config, args.mine));
    let seams = Seams {
        store,
        ..Seams::default()
    };
    let node = Service::start(config.clone(), seams)
        .await
        .map_err(start_error)?;
    if let Some(token) = &config.api_token
        && let Err(e) = write_cookie(&data_dir, token)
    {
        node.shutdown().await;
        return Err(local(commands::errors::render(&e)));
    }
    let (height, tip) = node.tip().await.map(|(t, h)| (h, t))?;
    if let Some(banner) = dev_accounts {
        for line in banner {
            announce(line);
        }
        announce(format!(
            "data directory {} (the API token only: the chain is in memory)",
            data_dir.display()
        ));
    } else {
        announce(format!("data directory {}", data_dir.display()));
    }
    announce(format!("p2p listening on {}", node.local_addr()));
    if let Some(api) = node.api_addr() {
        announce(format!("api listening on http://{api}"));
    }
    announce(format!("best tip {tip} at height {height}"));
    if let Some(restarts) = restarts {
        // A restart keeps the addresses this start bound (port 0 included).
        config.listen = node.local_addr();
        config.api = node.api_addr();
        return run_dev(node, config, restarts, &announce).await;
    }
    node.run_until(async {
        wait_for_signal().await;
        announce("stopping".to_string());
    })
    .await;
    Ok(())
}

/// A `--dev` node's life: until Ctrl-C or SIGTERM, each revert or reset
/// (`crate::dev`) stops the node and starts a new one on the store it
/// hands over, on the same addresses, then submits the pending
/// transactions it saved.
async fn run_dev(
    mut node: Service,
    config: NodeConfig,
    mut restarts: tokio::sync::mpsc::UnboundedReceiver<p2p_node::dev::Restart>,
    announce: &impl Fn(String),
) -> anyhow::Result<()> {
    enum Next {
        Stop,
        Restart(p2p_node::dev::Restart),
    }
    loop {
        let next = tokio::select! {
            biased;
            () = wait_for_signal() => {
                announce("stopping".to_string());
                Next::Stop
            }
            () = node.stopped() => Next::Stop,
            r = restarts.recv() => r.map_or(Next::Stop, Next::Restart),
        };
        if matches!(next, Next::Restart(_)) {
            // The revert's own answer is on its way out: let it leave
            // before the API's connections close.
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        node.shutdown().await;
        let Next::Restart(restart) = next else {
            return Ok(());
        };
        let seams = Seams {
            store: Box::new(restart.store),
            ..Seams::default()
        };
        node = Service::start(config.clone(), seams)
            .await
            .map_err(start_error)?;
        for tx in restart.mempool {
            // One the restored chain no longer takes is dropped, as a
            // node drops it at any restart.
            let _ = node.submit(tx).await;
        }
        let (tip, height) = node.tip().await?;
        announce(format!(
            "{}: best tip {tip} at height {height}",
            restart.reason
        ));
    }
}

/// What a `--dev` node prints before its addresses, as anvil prints its
/// accounts: the chain is thrown away, who holds what, how to sign as
/// them, who mines.
fn dev_banner(config: &NodeConfig, mine: p2p_node::MiningMode) -> Vec<String> {
    let mut lines = vec![
        "dev chain: kept in memory and discarded when the node stops".to_string(),
        "accounts (keys derived from their names: sign with --as NAME; never give them \
         anything of value, docs/ESCROW.md):"
            .to_string(),
    ];
    for a in &config.genesis.allocations {
        let name = escrow::dev::name_of(&a.to).unwrap_or("");
        lines.push(format!("  {name:<8} {}  {}", a.to, a.amount.get()));
    }
    let miner = escrow::dev::name_of(&config.miner_account)
        .map_or_else(|| config.miner_account.to_string(), str::to_string);
    lines.push(match mine {
        p2p_node::MiningMode::Off => "mining: off (`p2p-node mine N` mines N blocks)".to_string(),
        p2p_node::MiningMode::WhenPending => {
            format!("mining: a block whenever transactions wait, rewards to {miner}")
        }
        p2p_node::MiningMode::Continuous => format!("mining: continuously, rewards to {miner}"),
    });
    lines
}

/// Ctrl-C or SIGTERM.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    biased;
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

/// A fresh random API token.
fn new_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness for the token: {e}"))?;
    Ok(hex::encode(bytes))
}

/// Writes the API token, readable by the owner only.
fn write_cookie(dir: &Path, token: &str) -> anyhow::Result<()> {
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
    Ok(())
}

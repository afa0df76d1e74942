//! The command line: clap's structs for the node (`run`) and every client
//! subcommand, the parsers of addresses and accounts, and the check that
//! node options and client options are not mixed up.
//!
//! `docs/CLI.md` is the specification of all of it; keep the two in step.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Parser, Subcommand};
use escrow::Address;
use p2p_node::MiningMode;

use super::args_tx::{EscrowCommand, SignArgs, Signer, WaitArgs, parse_account, parse_memo};

/// The help heading of the node's options.
const NODE: &str = "Node options";
/// The help heading of the client's options.
const CLIENT: &str = "Client options";

/// A node of the escrow chain, and its client.
///
/// With no subcommand (or `run`) it runs a node; every other subcommand
/// talks to a node's HTTP API (`--node`). See docs/CLI.md.
#[derive(Debug, Parser)]
#[command(name = "p2p-node", version, about, long_about = None)]
pub(crate) struct Cli {
    /// Options every subcommand takes, before or after it.
    #[command(flatten)]
    pub global: Global,
    /// Runs a node when no subcommand is given.
    #[command(flatten)]
    pub run: RunArgs,
    /// What to do; a node if omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The options of every subcommand, accepted before or after it.
#[derive(Debug, Args, Clone)]
pub(crate) struct Global {
    /// The node's HTTP API: HOST:PORT or http://HOST:PORT [default:
    /// P2P_NODE_URL, else http://127.0.0.1:8000].
    #[arg(
        id = "node",
        long = "node",
        global = true,
        value_name = "URL",
        value_parser = parse_node_url,
        help_heading = CLIENT
    )]
    pub node_given: Option<String>,
    /// `--node`, else `P2P_NODE_URL`, else the default ([`Global::resolve`]).
    /// Not read by clap: an environment variable or a default that clap
    /// knew of would show in every usage line as if it were required.
    #[arg(skip)]
    pub node: String,
    /// The node's API token (for `mine`); read from DATA_DIR/api.cookie if
    /// omitted.
    #[arg(long, global = true, help_heading = CLIENT)]
    pub token: Option<String>,
    /// Give up on a request the node has not answered in this many seconds
    /// (`mine`: at least 600).
    #[arg(
        long,
        global = true,
        value_name = "SECS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..),
        help_heading = CLIENT
    )]
    pub request_timeout: u64,
    /// Print answers as JSON, and errors as JSON on stderr.
    #[arg(long, global = true, help_heading = CLIENT)]
    pub json: bool,
    /// Before the command, wait up to SECS seconds for the node's API to
    /// answer (a script that has just started a node), trying again every
    /// 100 ms; exit 3 if it never does.
    #[arg(
        long,
        global = true,
        value_name = "SECS",
        value_parser = clap::value_parser!(u64).range(1..=86_400),
        help_heading = CLIENT
    )]
    pub wait_for_node: Option<u64>,
    /// The node's data directory: where `run` keeps its blocks and writes
    /// its API token, and where the client reads that token
    /// [default: P2P_NODE_DATA_DIR, else ~/.p2p-node/node-PORT, PORT the
    /// P2P port (5000 for the client)].
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// The default API address of the client.
const DEFAULT_NODE: &str = "http://127.0.0.1:8000";

impl Global {
    /// Fills in what the command line left out from the environment
    /// (`P2P_NODE_URL`, `P2P_NODE_DATA_DIR`) and the defaults; a bad
    /// `P2P_NODE_URL` is a usage error naming it.
    pub(crate) fn resolve(&mut self, client: bool) -> Result<(), String> {
        self.node = match (&self.node_given, std::env::var("P2P_NODE_URL")) {
            (Some(given), _) => given.clone(),
            (None, Ok(env)) if client && !env.is_empty() => {
                parse_node_url(&env).map_err(|e| format!("P2P_NODE_URL: {e}"))?
            }
            _ => DEFAULT_NODE.to_string(),
        };
        if self.data_dir.is_none() {
            self.data_dir = std::env::var_os("P2P_NODE_DATA_DIR")
                .filter(|d| !d.is_empty())
                .map(PathBuf::from);
        }
        Ok(())
    }
}

/// The node's options (`run`, or no subcommand).
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = NODE)]
pub(crate) struct RunArgs {
    /// Address to listen on for peers (HOST:PORT; a host name is resolved).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:5000", value_parser = parse_host_port)]
    pub listen: SocketAddr,
    /// The address other nodes should dial to reach this one (told to peers
    /// in the handshake); the listening address if omitted. Give it when
    /// listening on 0.0.0.0.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_host_port)]
    pub advertise: Option<SocketAddr>,
    /// Address of the HTTP API (HOST:PORT).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8000", value_parser = parse_host_port)]
    pub api: SocketAddr,
    /// A peer to dial, HOST:PORT (repeat for more).
    #[arg(long = "peer", value_name = "HOST:PORT", value_parser = parse_host_port)]
    pub peers: Vec<SocketAddr>,
    /// When to mine: off, pending (while transactions wait) or continuous.
    #[arg(long, value_name = "MODE", default_value = "pending")]
    pub mine: MiningMode,
    /// Who receives block rewards: a dev account name or a hex address.
    #[arg(long, value_name = "ACCOUNT", default_value = "ferdie", value_parser = parse_account)]
    pub miner: Address,
    /// Miner threads.
    #[arg(long, default_value_t = 1)]
    pub miner_threads: usize,
    /// The shortest time, in milliseconds, from the moment the node adopts
    /// a new best tip to a block it mines on it on its own (`pending` or
    /// `continuous`; "mine N" requests do not wait). 0 mines as soon as it
    /// can, which at the dev target is hundreds of blocks a second.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub block_interval: u64,
    /// How soon, in milliseconds, transactions admitted while the miner
    /// works reach its template: a job older than this whose template
    /// lacks them starts again on a fresh one.
    #[arg(long, value_name = "MS", default_value_t = 2_000)]
    pub template_refresh: u64,
    /// How new blocks go to peers: `compact` (BIP 152-style compact
    /// blocks with every peer that speaks them) or `legacy` (announce,
    /// then the whole block on request).
    #[arg(long, value_enum, default_value = "compact")]
    pub relay: p2p_node::Relay,
    /// The lowest fee rate, in coins per 1,000 bytes, of a transaction the
    /// node admits to its mempool and relays (a transaction of up to 1,000
    /// bytes pays at least this many coins when it is above zero).
    #[arg(long, value_name = "COINS_PER_KB", default_value_t = p2p_node::mempool::policy::DEFAULT_MIN_RELAY_FEE.get())]
    pub min_relay_fee: u64,
    /// The most bytes of transactions the mempool holds; past it the
    /// cheapest packages are evicted for better ones.
    #[arg(long, value_name = "BYTES", default_value_t = p2p_node::mempool::policy::DEFAULT_MAX_BYTES, value_parser = clap::builder::TypedValueParser::map(clap::value_parser!(u64).range(1..), |v| usize::try_from(v).unwrap_or(usize::MAX)))]
    pub mempool_max_bytes: usize,
    /// Save a snapshot of the ledger every this many blocks (and at every
    /// clean stop): a start after a crash applies at most that many again.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub snapshot_every: u64,
    /// A genesis file (JSON, see docs/CLI.md; `p2p-node genesis init`
    /// writes one); the dev network if omitted.
    #[arg(long, value_name = "FILE")]
    pub genesis: Option<PathBuf>,
    /// Log filter (for example `info` or `p2p_node=debug`); `RUST_LOG` works
    /// too.
    #[arg(long, value_name = "FILTER")]
    pub log: Option<String>,
    /// How log lines are written on stdout: `text` (for people) or `json`
    /// (one JSON object per line, with the event's fields and its spans,
    /// for a log pipeline; the start-up lines too).
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// A throwaway chain: blocks, ledger and mempool kept in memory and
    /// discarded when the node stops; it mines every transaction as it
    /// arrives (`--mine pending`, the default) and prints the dev accounts.
    /// The API token is written to the data directory as usual (`--data-dir`,
    /// or the default one), so the client finds it.
    #[arg(long)]
    pub dev: bool,
}

/// [`RunArgs::log_format`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines (coloured on a terminal).
    Text,
    /// One JSON object per line.
    Json,
}

/// The ids of [`RunArgs`]' options, as clap names them.
const RUN_IDS: [&str; 17] = [
    "listen",
    "advertise",
    "api",
    "peers",
    "mine",
    "miner",
    "miner_threads",
    "block_interval",
    "template_refresh",
    "relay",
    "min_relay_fee",
    "mempool_max_bytes",
    "snapshot_every",
    "genesis",
    "log",
    "log_format",
    "dev",
];

/// An account named by a dev name or an address, or by a key file.
#[derive(Debug, Args, Clone)]
pub(crate) struct AccountArg {
    /// A dev account name (alice, bob, ...), a named key (`keys`), a key
    /// file or a 64-hex-digit address.
    #[arg(value_parser = parse_account, required_unless_present = "key")]
    pub account: Option<Address>,
    /// The account of the key in this file.
    #[arg(long, conflicts_with = "account")]
    pub key: Option<PathBuf>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Runs a node (the default when no subcommand is given).
    Run(RunArgs),
    /// The node's status: network, height, tip, peers, mempool, minimum
    /// fee rate.
    Status,
    /// An account's balance and nonce.
    Balance(AccountArg),
    /// Prints an account's address (a dev account's, or a key file's).
    Address(AccountArg),
    /// Sends coins.
    Transfer {
        #[command(flatten)]
        signer: Signer,
        /// The receiver: a dev account name or a hex address.
        #[arg(value_parser = parse_account)]
        to: Address,
        /// How much (zero only with a memo).
        amount: u64,
        /// A memo the transfer carries (its UTF-8 bytes, at most 65,536):
        /// signed and kept on the chain, with no meaning to consensus.
        #[arg(long, value_parser = parse_memo)]
        memo: Option<escrow::Memo>,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Escrow contracts.
    #[command(subcommand)]
    Escrow(EscrowCommand),
    /// One transaction: pending, confirmed (block, height, confirmations)
    /// or dropped (why).
    Tx {
        /// The transaction id, or a unique prefix of at least 8 hex digits.
        id: String,
    },
    /// One block, by hash (or a unique prefix of at least 8 hex digits) or
    /// height.
    Block {
        /// A height (a number of at most 7 digits) or a block hash or prefix.
        id: String,
    },
    /// The latest blocks of the best chain, oldest first.
    Blocks {
        /// How many (any number: the client pages; 0 prints nothing).
        #[arg(long, default_value_t = 10)]
        last: u64,
    },
    /// One contract, with its history.
    Contract {
        /// The contract id, or a unique prefix of at least 8 hex digits.
        id: String,
    },
    /// Every contract.
    Contracts,
    /// The node's peer connections.
    Peers,
    /// The pending transactions, in the order they were admitted (each
    /// sender's nonces in order), with their fees and fee rates.
    Mempool,
    /// The fee rate to pay for confirmation within N blocks (the node's
    /// estimate), the mempool's minimum and its histogram by fee rate.
    Fees {
        /// The blocks to be confirmed within (1 to 1008).
        #[arg(long, default_value_t = 2)]
        blocks: u64,
    },
    /// Mines blocks now (dev networks; needs the node's token).
    Mine {
        /// How many (1 to 1000).
        #[arg(value_parser = clap::value_parser!(u64).range(1..=1_000))]
        count: u64,
        /// Who receives the rewards: a dev account name or a hex address
        /// (the node's --miner if omitted).
        #[arg(long, value_parser = parse_account)]
        to: Option<Address>,
    },
    /// Makes a new key file (owner-only permissions) and prints its address.
    #[command(group(clap::ArgGroup::new("where").required(true).args(["out", "name"])))]
    Keygen {
        /// Where to write it (refuses to overwrite).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Keep it under this name (in P2P_NODE_KEYS, else
        /// ~/.p2p-node/keys): `--as NAME`, `balance NAME` and every account
        /// argument then take the name.
        #[arg(long)]
        name: Option<String>,
    },
    /// The named keys (`keygen --name`): name and address.
    Keys,
    /// Genesis files: a network of your own.
    #[command(subcommand)]
    Genesis(GenesisCommand),
    /// Reads back every record of a stopped node's store (--data-dir) and
    /// lists the damaged ones (exit 6 if any).
    Check,
    /// Signs a transaction without sending it: prints its canonical bytes
    /// in hex and its id (for `send-raw`, or `POST /txs` from any
    /// program). Offline with --nonce, --fee and --network; otherwise the
    /// node gives what is missing.
    Sign(SignArgs),
    /// Publishes a signed transaction (`sign`'s hex, or `-` to read it from
    /// stdin).
    SendRaw {
        /// The transaction's canonical bytes in hex.
        hex: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Checks that a transaction is in the chain without trusting the node:
    /// fetches its inclusion proof and a chain of headers from genesis,
    /// checks both (proof of work, links, targets, the merkle branch) and
    /// says how deep the transaction is buried.
    VerifyProof {
        /// The transaction id (64 hex digits).
        txid: String,
        /// The network's genesis file (its rules and its genesis block's
        /// hash); the dev network if omitted.
        #[arg(long, value_name = "FILE")]
        genesis: Option<PathBuf>,
        /// A node to take the chain of headers from (repeat for more: the
        /// valid chain of most work is used); --node if omitted.
        #[arg(long = "headers-from", value_name = "URL", value_parser = parse_node_url)]
        headers_from: Vec<String>,
    },
    /// Saves a --dev node's chain, ledger, contracts and mempool; prints
    /// the snapshot's id (needs the node's token).
    Snapshot,
    /// Takes a --dev node back to a snapshot (the snapshot stays), and
    /// waits until it is back.
    Revert {
        /// The snapshot's id (`snapshot` printed it).
        id: u64,
    },
    /// Takes a --dev node back to genesis, and waits until it is back.
    Reset,
    /// Removes a stopped node's chain (--data-dir, or the default node's):
    /// its store and its API token, after asking (or with --yes).
    Purge {
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
    /// Prints a shell completion script (bash, zsh, fish, elvish,
    /// powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `genesis ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum GenesisCommand {
    /// Writes a genesis file (JSON; docs/CLI.md describes every field).
    Init(GenesisInit),
}

/// `genesis init`'s options; every one has a dev-like default.
#[derive(Debug, Args)]
pub(crate) struct GenesisInit {
    /// Where to write it (refuses to overwrite without --force); standard
    /// output if omitted.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Overwrite --out if it exists.
    #[arg(long, requires = "out")]
    pub force: bool,
    /// The network's name.
    #[arg(long, default_value = "escrow-chain local")]
    pub name: String,
    /// An initial balance, ACCOUNT=AMOUNT, ACCOUNT a dev name or a hex
    /// address (repeat for more); the six dev accounts with 1000000 each if
    /// none is given.
    #[arg(long = "alloc", value_name = "ACCOUNT=AMOUNT", value_parser = parse_alloc)]
    pub allocs: Vec<(Address, u64)>,
    /// Coins each block's coinbase creates.
    #[arg(long, default_value_t = escrow::genesis::DEV_REWARD)]
    pub reward: u64,
    /// Leading zero bits of the proof-of-work target: 16 is about 65,000
    /// hashes a block, each bit more doubles it.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(0..=255))]
    pub target_bits: u32,
    /// The genesis block's timestamp, milliseconds since the Unix epoch
    /// (now if omitted).
    #[arg(long)]
    pub timestamp_ms: Option<u64>,
}

/// `--node`: `HOST:PORT`, `http://HOST:PORT` (a path after it is kept, for
/// an API behind a proxy). Returns the base URL without a trailing slash.
pub(crate) fn parse_node_url(s: &str) -> Result<String, String> {
    let s = s.trim();
    let full = if s.contains("://") {
        s.to_string()
    } else {
        format!("http://{s}")
    };
    let url = reqwest::Url::parse(&full).map_err(|e| {
        format!("`{s}` is not a node address ({e}): give HOST:PORT or http://HOST:PORT, for example 127.0.0.1:8000")
    })?;
    if url.scheme() != "http" {
        return Err(format!(
            "`{s}`: the node's API speaks plain http, not {}: give HOST:PORT or http://HOST:PORT",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) || url.query().is_some() || url.fragment().is_some()
    {
        return Err(format!(
            "`{s}` is not a node address: give HOST:PORT or http://HOST:PORT, for example 127.0.0.1:8000"
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// A socket address given as `IP:PORT` or `HOST:PORT`; a host name is
/// resolved now, an IPv4 address preferred (`localhost` is `127.0.0.1`,
/// where nodes listen by default, not `::1`).
pub(crate) fn parse_host_port(s: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let example = "for example 127.0.0.1:5000 or localhost:5000";
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(format!("`{s}` is not HOST:PORT ({example})"));
    };
    if host.is_empty() {
        return Err(format!("`{s}` has no host ({example})"));
    }
    if port.parse::<u16>().is_err() {
        return Err(format!("`{s}`: `{port}` is not a port (0 to 65535)"));
    }
    let addrs: Vec<SocketAddr> = s
        .to_socket_addrs()
        .map_err(|e| {
            format!("cannot resolve the host `{host}` of `{s}`: {e} (check the name, or give an IP address)")
        })?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("the host `{host}` of `{s}` resolves to no address"))
}

/// `--alloc ACCOUNT=AMOUNT`.
fn parse_alloc(s: &str) -> Result<(Address, u64), String> {
    let (account, amount) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not ACCOUNT=AMOUNT (for example alice=1000000)"))?;
    let amount = amount
        .parse::<u64>()
        .map_err(|e| format!("`{amount}` in `{s}` is not an amount: {e}"))?;
    if amount == 0 {
        return Err(format!("`{s}` gives nothing: leave it out"));
    }
    Ok((parse_account(account)?, amount))
}

/// Node options given with a client subcommand, or client options given
/// to `run`: an error naming the option and what to do, instead of the
/// option being silently ignored (`p2p-node --api ADDR status` would
/// otherwise ask the default node).
pub(crate) fn misplaced_option(matches: &ArgMatches, cli: &Cli) -> Option<String> {
    let given = |m: &ArgMatches, id: &str| {
        m.try_get_raw(id).ok().flatten().is_some()
            && m.value_source(id) == Some(ValueSource::CommandLine)
    };
    let flag = |id: &str| match id {
        "peers" => "--peer".to_string(),
        other => format!("--{}", other.replace('_', "-")),
    };
    match (&cli.command, matches.subcommand()) {
        (Some(Command::Run(_)), Some((_, sub))) => {
            if let Some(id) = RUN_IDS.iter().find(|id| given(matches, id)) {
                return Some(format!(
                    "{} is given before `run`: put node options after it (`p2p-node run {} ...`), or leave `run` out",
                    flag(id),
                    flag(id)
                ));
            }
            client_option_to_run(sub)
        }
        (None, _) => client_option_to_run(matches),
        (Some(_), Some((name, _))) => RUN_IDS.iter().find(|id| given(matches, id)).map(|id| {
            let hint = if *id == "api" {
                " (to talk to the node whose API is at ADDR, give --node ADDR)"
            } else {
                ""
            };
            format!(
                "{} is an option of the node (`p2p-node run`), not of `{name}`{hint}",
                flag(id)
            )
        }),
        (Some(_), None) => None,
    }
}

/// The ids of [`Global`]'s client-only options (`--data-dir` is the
/// node's too).
pub(crate) const CLIENT_IDS: [&str; 5] =
    ["node", "token", "json", "request_timeout", "wait_for_node"];

/// A client-only option given to a node.
fn client_option_to_run(m: &ArgMatches) -> Option<String> {
    CLIENT_IDS
        .iter()
        .find(|id| m.value_source(id) == Some(ValueSource::CommandLine))
        .map(|id| {
            format!(
                "--{} is an option of the client subcommands, not of a node (`run`); a node's API address is --api",
                id.replace('_', "-")
            )
        })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn node_urls_take_every_documented_form() {
        for (given, url) in [
            ("127.0.0.1:8000", "http://127.0.0.1:8000"),
            ("localhost:8000", "http://localhost:8000"),
            ("http://localhost:8000/", "http://localhost:8000"),
            ("http://10.0.0.1:8000/api/", "http://10.0.0.1:8000/api"),
            ("[::1]:8000", "http://[::1]:8000"),
        ] {
            assert_eq!(parse_node_url(given).as_deref(), Ok(url), "{given}");
        }
        for bad in [
            "https://x:1",
            "ftp://x",
            ":8000",
            "x:99999",
            "http://x:1/?q",
            "",
        ] {
            let e = parse_node_url(bad).expect_err(bad);
            assert!(e.contains("HOST:PORT"), "{bad}: {e}");
        }
    }

    #[test]
    fn host_ports_resolve_preferring_ipv4() {
        assert_eq!(
            parse_host_port("localhost:5000"),
            Ok(SocketAddr::from(([127, 0, 0, 1], 5000)))
        );
        assert_eq!(
            parse_host_port("[::1]:7"),
            Ok(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 7)))
        );
        for bad in ["localhost", ":5000", "localhost:x", "localhost:70000"] {
            let e = parse_host_port(bad).expect_err(bad);
            assert!(e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn allocations_are_account_equals_a_positive_amount() {
        let alice = escrow::dev::address("alice");
        assert_eq!(parse_alloc("alice=5").ok(), alice.map(|a| (a, 5)));
        for bad in ["alice", "alice=0", "alice=-1", "mallory=5", "=5"] {
            assert!(parse_alloc(bad).is_err(), "{bad}");
        }
    }
}

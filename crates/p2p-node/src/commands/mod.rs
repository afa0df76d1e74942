//! The binary's client subcommands (every subcommand but `run`): each asks
//! the node through [`Client`], whose answers are the typed
//! [`p2p_node::api_types`], and prints them as text or, with `--json`, as
//! JSON.
//!
//! A module of the binary, not of the library: it is command-line glue, so
//! it returns `anyhow::Result` and its text is made for people.
//!
//! - [`args`]: the command line (clap), and its parsers.
//! - [`errors`]: exit codes, and errors as text or JSON.
//! - [`words`]: accounts by name, transactions and histories as sentences.
//! - [`send`]: signing, submitting and `--wait`; `tx`.
//! - [`chain`]: reading the chain: status, blocks, contracts, peers,
//!   mempool; `mine`.
//! - [`local`]: what needs no node: keys, addresses, genesis files,
//!   completions, checking a stopped node's store.

pub(crate) mod args;
mod chain;
pub(crate) mod errors;
mod local;
mod send;
pub(crate) mod words;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use escrow::{Keypair, dev};
use p2p_node::client::Client;
use serde::Serialize;

use args::{Command, Global, Signer};

/// Runs one client subcommand.
pub(crate) async fn run(command: Command, global: Global) -> anyhow::Result<()> {
    let ctx = Ctx { global };
    match command {
        Command::Run(_) => {
            Err(errors::Failure::usage("`run` is handled before the client commands").into())
        }
        Command::Status => chain::status(&ctx).await,
        Command::Balance(a) => chain::balance(&ctx, &local::account_of(&a)?).await,
        Command::Address(a) => local::address(&ctx, &a),
        Command::Transfer {
            signer,
            to,
            amount,
            wait,
        } => {
            let payload = escrow::Payload::Transfer {
                to,
                amount: escrow::Amount::new(amount),
            };
            send::submit(&ctx, payload, &signer, &wait).await
        }
        Command::Escrow(e) => send::escrow(&ctx, e).await,
        Command::Tx { id } => send::tx(&ctx, &id).await,
        Command::Block { id } => chain::block(&ctx, &id).await,
        Command::Blocks { last } => chain::blocks(&ctx, last).await,
        Command::Contract { id } => chain::contract(&ctx, &id).await,
        Command::Contracts => chain::contracts(&ctx).await,
        Command::Peers => chain::peers(&ctx).await,
        Command::Mempool => chain::mempool(&ctx).await,
        Command::Mine { count, to } => chain::mine(&ctx, count, to.as_ref()).await,
        Command::Keygen { out } => local::keygen(&ctx, &out),
        Command::Genesis(args::GenesisCommand::Init(g)) => local::genesis_init(&ctx, &g),
        Command::Check => local::check(&ctx),
        Command::Completions { shell } => {
            local::completions(shell);
            Ok(())
        }
    }
}

/// What every subcommand needs: the global options.
pub(crate) struct Ctx {
    global: Global,
}

impl Ctx {
    /// A client of the node `--node` names, without a token (only `mine`
    /// needs one).
    fn client(&self) -> Client {
        Client::new(&self.global.node, None).with_timeout(self.request_timeout())
    }

    /// `--request-timeout`.
    fn request_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.global.request_timeout)
    }

    /// The data directory whose token the client reads: `--data-dir`, or
    /// the default node's.
    fn data_dir(&self) -> PathBuf {
        self.global
            .data_dir
            .clone()
            .unwrap_or_else(|| default_data_dir(&SocketAddr::from(([127, 0, 0, 1], 5000))))
    }

    /// Prints `answer` as `text()`, or with `--json` as JSON. Text that is
    /// empty prints nothing (not an empty line).
    ///
    /// The JSON goes through [`serde_json::Value`], whose objects keep their
    /// keys sorted, so `--json` prints the keys in the order it always has,
    /// whatever the order of the answer's fields.
    fn print<T: Serialize>(&self, answer: &T, text: impl FnOnce() -> String) -> anyhow::Result<()> {
        if self.global.json {
            let json = serde_json::to_value(answer)
                .and_then(|v| serde_json::to_string_pretty(&v))
                .context("cannot write the answer as JSON")?;
            say!("{json}");
        } else {
            let text = text();
            if !text.is_empty() {
                say!("{text}");
            }
        }
        Ok(())
    }
}

/// A node's data directory when none is given: one per P2P port, so that
/// nodes on one machine do not share one (the client reads the token of
/// the default node's, port 5000).
pub(crate) fn default_data_dir(listen: &SocketAddr) -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".p2p-node")
        .join(format!("node-{}", listen.port()))
}

/// The key `signer` names: a dev account's or a key file's.
fn signer_key(signer: &Signer) -> anyhow::Result<Keypair> {
    match (&signer.as_account, &signer.key) {
        (Some(name), None) => dev::keypair(name).ok_or_else(|| {
            errors::Failure::usage(format!(
                "`{name}` is not a dev account ({}); sign with --as NAME or --key FILE",
                dev::DEV_ACCOUNTS.join(", ")
            ))
            .into()
        }),
        (None, Some(path)) => Ok(Keypair::load(path)?),
        _ => Err(
            errors::Failure::usage("say who signs: --as NAME (a dev account) or --key FILE").into(),
        ),
    }
}

//! The binary's client subcommands (every subcommand but `run`): each asks
//! the node through [`Client`], whose answers are the typed
//! [`p2p_node::api_types`], and prints them as text or, with `--json`, as
//! JSON.
//!
//! A module of the binary, not of the library: it is command-line glue, so
//! it returns `anyhow::Result` and its text is made for people.
//!
//! - [`args`]: the command line (clap), and its parsers; [`args_tx`] the
//!   arguments of transactions (signers, waits, escrow and `sign`).
//! - [`ctx`]: what every subcommand is given (the global options), and
//!   the default data directory.
//! - [`errors`]: exit codes, and errors as text or JSON.
//! - [`words`]: accounts by name, transactions and histories as sentences.
//! - [`send`]: signing, submitting and `--wait`; `tx`.
//! - [`raw`]: `sign` (a transaction signed, not sent) and `send-raw`.
//! - [`dev`]: a `--dev` node's `snapshot`, `revert` and `reset`.
//! - [`proof`]: `verify-proof`, a light client's check of an inclusion
//!   proof against a chain of headers.
//! - [`chain`]: reading the chain: status, blocks, contracts, peers,
//!   mempool; `mine`.
//! - [`keyring`]: named keys (`keygen --name`).
//! - [`local`]: what needs no node: keys, addresses, genesis files,
//!   completions, checking a stopped node's store.

pub(crate) mod args;
mod args_tx;
mod chain;
mod ctx;
mod dev;
pub(crate) mod errors;
mod keyring;
mod local;
mod proof;
mod raw;
mod send;
pub(crate) mod words;

use args::{Command, Global};
use ctx::Ctx;
pub(crate) use ctx::default_data_dir;

/// Runs one client subcommand.
pub(crate) async fn run(command: Command, global: Global) -> anyhow::Result<()> {
    let ctx = Ctx { global };
    let local = matches!(
        command,
        Command::Address(_)
            | Command::Keygen { .. }
            | Command::Keys
            | Command::Genesis(_)
            | Command::Check
            | Command::Purge { .. }
            | Command::Completions { .. }
    );
    if let Some(secs) = ctx.global.wait_for_node
        && !local
    {
        chain::wait_for_node(&ctx, std::time::Duration::from_secs(secs)).await?;
    }
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
            memo,
            wait,
        } => {
            let amount = escrow::Amount::new(amount);
            let payload = match memo {
                Some(memo) => escrow::Payload::TransferMemo { to, amount, memo },
                None => escrow::Payload::Transfer { to, amount },
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
        Command::Fees { blocks } => chain::fees(&ctx, blocks).await,
        Command::Mine { count, to } => chain::mine(&ctx, count, to.as_ref()).await,
        Command::Keygen { out, name } => local::keygen(&ctx, out.as_deref(), name.as_deref()),
        Command::Keys => local::keys(&ctx),
        Command::Genesis(args::GenesisCommand::Init(g)) => local::genesis_init(&ctx, &g),
        Command::Check => local::check(&ctx),
        Command::Purge { yes } => local::purge(&ctx, yes),
        Command::Sign(args) => raw::sign(&ctx, args).await,
        Command::Snapshot => dev::snapshot(&ctx).await,
        Command::Revert { id } => dev::revert(&ctx, Some(id)).await,
        Command::Reset => dev::revert(&ctx, None).await,
        Command::VerifyProof {
            txid,
            genesis,
            headers_from,
        } => proof::verify(&ctx, &txid, genesis.as_deref(), &headers_from).await,
        Command::SendRaw { hex, wait } => raw::send_raw(&ctx, &hex, &wait).await,
        Command::Completions { shell } => {
            local::completions(shell);
            Ok(())
        }
    }
}

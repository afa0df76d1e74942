//! The command line's transaction arguments: who signs ([`Signer`]),
//! waiting for confirmations ([`WaitArgs`]), the escrow commands, `sign`'s
//! transactions, and the parsers of accounts, memos and network ids.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use escrow::{Address, dev};

/// Who signs a transaction.
#[derive(Debug, Args, Clone)]
pub(crate) struct Signer {
    /// Sign as this dev account (alice, bob, charlie, dave, eve, ferdie), or
    /// as the key of this name (`keygen --name`).
    #[arg(long = "as", conflicts_with = "key")]
    pub as_account: Option<String>,
    /// Sign with the key in this file (`p2p-node keygen` writes one).
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// The fee to pay the miner, in coins; without it, the node's
    /// estimate for confirmation within 2 blocks (`GET /fees/estimate`)
    /// for the transaction's size.
    #[arg(long, value_name = "COINS")]
    pub fee: Option<u64>,
}

/// Waiting for a sent transaction's confirmations.
#[derive(Debug, Args, Clone)]
pub(crate) struct WaitArgs {
    /// Wait until the transaction has N confirmations (1 if N is left out),
    /// printing progress on stderr.
    #[arg(
        long,
        value_name = "N",
        num_args = 0..=1,
        default_missing_value = "1",
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub wait: Option<u64>,
    /// With --wait: give up after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60, requires = "wait")]
    pub timeout: u64,
}

/// `escrow ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum EscrowCommand {
    /// Locks coins for a seller, with an arbiter.
    Create {
        #[command(flatten)]
        signer: Signer,
        /// Who is paid on release.
        #[arg(long, value_parser = parse_account)]
        seller: Address,
        /// Who settles a dispute.
        #[arg(long, value_parser = parse_account)]
        arbiter: Address,
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
        wait: WaitArgs,
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

/// `sign`'s options, then the transaction as its sending command takes
/// it.
#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    #[command(flatten)]
    pub signer: Signer,
    /// The sender's nonce (its next one: `pending_nonce` of `balance`);
    /// asked of the node if omitted.
    #[arg(long)]
    pub nonce: Option<u64>,
    /// The network's id (its genesis block's hash, `status` shows it);
    /// asked of the node if omitted.
    #[arg(long, value_name = "HASH", value_parser = parse_block_hash)]
    pub network: Option<chain_core::BlockHash>,
    #[command(subcommand)]
    pub what: Unsigned,
}

/// The transaction `sign` signs.
#[derive(Debug, Subcommand)]
pub(crate) enum Unsigned {
    /// Sends coins.
    Transfer {
        /// The receiver: a dev account name or a hex address.
        #[arg(value_parser = parse_account)]
        to: Address,
        /// How much (zero only with a memo).
        amount: u64,
        /// A memo the transfer carries.
        #[arg(long, value_parser = parse_memo)]
        memo: Option<escrow::Memo>,
    },
    /// Escrow contracts.
    #[command(subcommand)]
    Escrow(UnsignedEscrow),
}

/// The escrow transactions `sign` signs.
#[derive(Debug, Subcommand)]
pub(crate) enum UnsignedEscrow {
    /// Locks coins for a seller, with an arbiter.
    Create {
        /// Who is paid on release.
        #[arg(long, value_parser = parse_account)]
        seller: Address,
        /// Who settles a dispute.
        #[arg(long, value_parser = parse_account)]
        arbiter: Address,
        /// How much.
        amount: u64,
        /// Blocks from the node's tip until the delivery deadline.
        #[arg(long, default_value_t = 100, conflicts_with = "deadline")]
        delivery_blocks: u64,
        /// The delivery deadline as a height (offline: no node asked).
        #[arg(long, value_name = "HEIGHT")]
        deadline: Option<u64>,
        /// Blocks a dispute may stay unresolved before the buyer may take
        /// the refund.
        #[arg(long, default_value_t = 20)]
        dispute_window: u64,
    },
    /// The buyer confirms delivery: the seller is paid.
    Confirm {
        /// The contract id (a prefix asks the node).
        id: String,
    },
    /// The buyer or the seller disputes.
    Dispute {
        /// The contract id (a prefix asks the node).
        id: String,
    },
    /// The buyer is refunded.
    Refund {
        /// The contract id (a prefix asks the node).
        id: String,
    },
    /// The arbiter settles a dispute.
    Resolve {
        /// The contract id (a prefix asks the node).
        id: String,
        /// Who gets the funds.
        #[arg(long, value_parser = ["buyer", "seller"])]
        to: String,
    },
}

/// An action on a contract.
#[derive(Debug, Args)]
pub(crate) struct Action {
    #[command(flatten)]
    pub signer: Signer,
    /// The contract id, or a unique prefix of at least 8 hex digits.
    pub id: String,
    #[command(flatten)]
    pub wait: WaitArgs,
}

/// `--memo TEXT`: the text's bytes.
pub(crate) fn parse_memo(s: &str) -> Result<escrow::Memo, String> {
    escrow::Memo::new(s.as_bytes()).map_err(|e| e.to_string())
}

/// An account on the command line: a dev account name or a hex address.
pub(crate) fn parse_account(s: &str) -> Result<Address, String> {
    if let Some(a) = dev::account(s) {
        return Ok(a);
    }
    // A named key (`keygen --name`), or a key file's path.
    let key = match super::keyring::load(s) {
        Some(k) => Some(k),
        None if s.contains('/') || s.ends_with(".key") => Some(escrow::Keypair::load(Path::new(s))),
        None => None,
    };
    match key {
        Some(Ok(k)) => Ok(k.address()),
        Some(Err(e)) => Err(format!("`{s}`: {e}")),
        None => Err(format!(
            "`{s}` is neither a dev account ({}), a named key (`p2p-node keys` lists them), a key \
             file nor a 64-hex-digit address",
            dev::DEV_ACCOUNTS.join(", ")
        )),
    }
}

/// A block hash (64 hex digits), for `--network`.
fn parse_block_hash(s: &str) -> Result<chain_core::BlockHash, String> {
    s.parse().map_err(|_| {
        format!("`{s}` is not a network id: give the 64 hex digits `status` shows as network")
    })
}

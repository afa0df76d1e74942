//! `loadgen`: the transaction load of `cargo xtask bench node`
//! (`net.tx_throughput` and `net.api_p99`) and the chain of full blocks of
//! `cargo xtask bench --only sync-full`, a release binary xtask builds and
//! runs so that xtask itself needs no crate of the workspace.
//!
//! Three steps, each answering with one JSON object on its standard output:
//!
//! - `loadgen prepare --accounts N --txs-per-account M --out DIR` ([`prepare`]):
//!   N accounts with fixed keys, a genesis file funding them
//!   (`DIR/genesis.json`), each account's M transfers signed in nonce
//!   order (`DIR/transfers.txt`: one line per account, its address then
//!   its transactions in hex), and the costs of a single and of a batch
//!   signature check measured on them in this process:
//!   `{"accounts":N,"transfers":T,"single_us":S,"batch_us":B}`.
//! - `loadgen submit --transfers FILE --api URL... --concurrency C` ([`submit`]):
//!   submits every transfer with `POST /txs`, account `a`'s to the `a % n`-th
//!   API in nonce order, by C concurrent requests of an async client on a
//!   runtime of two threads; retries what a full mempool refused:
//!   `{"accepted":A,"retried":R,"seconds":S,"p50_ms":P,"p99_ms":Q}`
//!   (`seconds`: from the first submission to the last answer).
//! - `loadgen chain --accounts N --blocks B --out DIR` ([`chain`]): `prepare`'s
//!   N accounts and genesis (`DIR/genesis.json`), and a node data directory
//!   `DIR/node` holding B blocks, each a coinbase and one transfer from
//!   every account, stored by a real node:
//!   `{"blocks":B,"transfers":T,"block_bytes":S,"data_dir_bytes":D,"seconds":E}`.

mod chain;
mod prepare;
mod submit;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// The command line.
#[derive(Parser, Debug)]
#[command(
    name = "loadgen",
    about = "The transaction load of cargo xtask bench node, and the chains of its sync benchmark"
)]
struct Cli {
    #[command(subcommand)]
    step: Step,
}

#[derive(Subcommand, Debug)]
enum Step {
    /// Writes the genesis and the signed transfers; measures signature checks.
    Prepare {
        /// How many funded accounts.
        #[arg(long)]
        accounts: usize,
        /// Transfers per account, nonces 0 upward.
        #[arg(long)]
        txs_per_account: u64,
        /// The directory for genesis.json and transfers.txt.
        #[arg(long)]
        out: PathBuf,
    },
    /// Submits the prepared transfers to the nodes' APIs.
    Submit {
        /// The transfers.txt that `prepare` wrote.
        #[arg(long)]
        transfers: PathBuf,
        /// A node's API (`http://127.0.0.1:PORT`); one or more.
        #[arg(long = "api", required = true)]
        apis: Vec<String>,
        /// Requests in flight at once.
        #[arg(long)]
        concurrency: usize,
    },
    /// Writes the genesis and a node data directory holding a chain of
    /// full blocks (one transfer from every account in each).
    Chain {
        /// How many funded accounts: the transfers in each block.
        #[arg(long)]
        accounts: usize,
        /// How many blocks.
        #[arg(long)]
        blocks: u64,
        /// The directory for genesis.json and the data directory `node`.
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    let answer = match Cli::parse().step {
        Step::Prepare {
            accounts,
            txs_per_account,
            out,
        } => prepare::run(accounts, txs_per_account, &out)?,
        Step::Submit {
            transfers,
            apis,
            concurrency,
        } => submit::run(&transfers, &apis, concurrency)?,
        Step::Chain {
            accounts,
            blocks,
            out,
        } => chain::run(accounts, blocks, &out)?,
    };
    println!("{answer}");
    Ok(())
}

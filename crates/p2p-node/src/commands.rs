//! The binary's client subcommands (every subcommand but `run`): each asks
//! the node through [`Client`], whose answers are the typed
//! [`p2p_node::api_types`], and prints them as text or, with `--json`, as
//! JSON.
//!
//! A module of the binary, not of the library: it is command-line glue, so
//! it returns `anyhow::Result` and its text is made for people.

use std::net::SocketAddr;

use anyhow::{Context, bail};
use escrow::{Action as HistoryAction, Address, Contract, Keypair, Party, Payload, State, dev};
use p2p_node::client::Client;
use serde::Serialize;

use super::{ClientArgs, Command, EscrowCommand, Signer, default_data_dir, parse_account};

/// Runs one client subcommand.
pub(crate) async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run => bail!("`run` is handled before the client commands"),
        Command::Keygen { out } => {
            let key = Keypair::generate().context("cannot generate a key")?;
            key.save(&out).context("cannot save the key")?;
            println!("{}", key.address());
            Ok(())
        }
        Command::Status(c) => {
            let s = client(&c).status().await?;
            print(&c, &s, || {
                format!(
                    "network {}\nheight  {}\ntip     {}\npeers   {}\nmempool {}\nmining  {}",
                    s.network, s.height, s.tip, s.peers, s.mempool, s.mining,
                )
            })
        }
        Command::Balance { account, client: c } => {
            let a = client(&c).account(&account).await?;
            print(&c, &a, || {
                format!(
                    "{account} balance {} (pending {}), nonce {} (pending {})",
                    a.balance, a.pending_balance, a.nonce, a.pending_nonce
                )
            })
        }
        Command::Transfer {
            signer,
            to,
            amount,
            client: c,
        } => {
            let key = signer_key(&signer)?;
            let payload = Payload::Transfer {
                to: parse_account(&to)?,
                amount: escrow::Amount::new(amount),
            };
            submitted(&c, payload, &key).await
        }
        Command::Escrow(e) => escrow_command(e).await,
        Command::Contract { id, client: c } => {
            let contract = client(&c).contract(&id).await?;
            print(&c, &contract, || contract_text(&contract))
        }
        Command::Contracts(c) => {
            let list = client(&c).contracts().await?;
            print(&c, &list, || {
                if list.is_empty() {
                    return "no contracts".to_string();
                }
                list.iter()
                    .map(contract_line)
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        Command::Blocks { last, client: c } => {
            let blocks = client(&c).blocks(last).await?;
            print(&c, &blocks, || {
                blocks
                    .iter()
                    .map(|b| format!("{}  {}  {} txs", b.height, b.hash, b.transactions.len()))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        Command::Mine {
            count,
            client: c,
            data_dir,
        } => {
            let token = match c.token.clone() {
                Some(t) => t,
                None => {
                    let dir = data_dir.unwrap_or_else(|| {
                        default_data_dir(&SocketAddr::from(([127, 0, 0, 1], 5000)))
                    });
                    Client::read_token(&dir)?
                }
            };
            let mined = Client::new(&c.node, Some(token)).mine(count).await?;
            print(&c, &mined, || {
                mined
                    .blocks
                    .iter()
                    .map(|h| format!("mined {h}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
    }
}

/// A client of the node `c` names, without a token (only `mine` needs one).
fn client(c: &ClientArgs) -> Client {
    Client::new(&c.node, None)
}

/// The key `signer` names: a dev account's or a key file's.
fn signer_key(signer: &Signer) -> anyhow::Result<Keypair> {
    match (&signer.as_account, &signer.key) {
        (Some(name), None) => dev::keypair(name).with_context(|| {
            format!("`{name}` is not a dev account (alice, bob, charlie, dave, eve, ferdie)")
        }),
        (None, Some(path)) => Keypair::load(path).context("cannot load the key file"),
        _ => bail!("say who signs: --as NAME (a dev account) or --key FILE"),
    }
}

/// Builds the escrow subcommand's payload, then signs and submits it.
async fn escrow_command(command: EscrowCommand) -> anyhow::Result<()> {
    let (signer, payload, c) = match command {
        EscrowCommand::Create {
            signer,
            seller,
            arbiter,
            amount,
            delivery_blocks,
            dispute_window,
            client: c,
        } => {
            // The deadline counts from the node's tip, as the user sees it.
            let height = client(&c).status().await?.height;
            let payload = Payload::EscrowCreate {
                seller: parse_account(&seller)?,
                arbiter: parse_account(&arbiter)?,
                amount: escrow::Amount::new(amount),
                delivery_deadline: height + delivery_blocks.max(1),
                dispute_window,
            };
            (signer, payload, c)
        }
        EscrowCommand::Confirm(a) => (
            a.signer,
            Payload::ConfirmDelivery { contract: a.id },
            a.client,
        ),
        EscrowCommand::Dispute(a) => (a.signer, Payload::RaiseDispute { contract: a.id }, a.client),
        EscrowCommand::Refund(a) => (a.signer, Payload::RefundBuyer { contract: a.id }, a.client),
        EscrowCommand::Resolve { action, to } => {
            let to = if to == "seller" {
                Party::Seller
            } else {
                Party::Buyer
            };
            (
                action.signer,
                Payload::Resolve {
                    contract: action.id,
                    to,
                },
                action.client,
            )
        }
    };
    let key = signer_key(&signer)?;
    submitted(&c, payload, &key).await
}

/// Signs and submits `payload`, and prints the transaction's id (and the
/// new contract's, for an escrow).
async fn submitted(c: &ClientArgs, payload: Payload, key: &Keypair) -> anyhow::Result<()> {
    let kind = payload.kind();
    let answer = client(c).sign_and_submit(key, payload).await?;
    print(c, &answer, || match answer.contract {
        Some(contract) => format!("submitted {kind} {}\ncontract {contract}", answer.id),
        None => format!("submitted {kind} {}", answer.id),
    })
}

/// A contract's state in a few words.
fn state_name(state: State) -> String {
    match state {
        State::Disputed { since } => format!("Disputed since block {since}"),
        other => other.name().to_string(),
    }
}

/// A history entry's action as the text has always shown it: the serde
/// name of the action (`Created`), or its JSON when it carries a value
/// (`{"Resolved":"Buyer"}`).
fn action_name(action: HistoryAction) -> String {
    match serde_json::to_value(action) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => format!("{action:?}"),
    }
}

/// An address as its dev name, or in hex.
fn who(address: &Address) -> String {
    dev::name_of(address).map_or_else(|| address.to_string(), str::to_string)
}

/// One line per contract, for `contracts` and atop `contract`.
fn contract_line(c: &Contract) -> String {
    format!(
        "{}  {:<22} {} from {} to {} (arbiter {})",
        c.id,
        state_name(c.state),
        c.amount,
        who(&c.buyer),
        who(&c.seller),
        who(&c.arbiter),
    )
}

/// A contract with its deadlines and history.
fn contract_text(c: &Contract) -> String {
    let mut out = contract_line(c);
    out.push_str(&format!(
        "\ndelivery deadline: block {}; dispute window: {} blocks",
        c.delivery_deadline, c.dispute_window
    ));
    for h in &c.history {
        out.push_str(&format!(
            "\n  block {}: {} by {}",
            h.height,
            action_name(h.action),
            who(&h.by)
        ));
    }
    out
}

/// Prints `answer` as `text()`, or with `--json` as JSON.
///
/// The JSON goes through [`serde_json::Value`], whose objects keep their
/// keys sorted, so `--json` prints the keys in the order it always has,
/// whatever the order of the answer's fields.
fn print<T: Serialize>(
    c: &ClientArgs,
    answer: &T,
    text: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    if c.json {
        let json = serde_json::to_value(answer)
            .and_then(|v| serde_json::to_string_pretty(&v))
            .context("cannot write the answer as JSON")?;
        println!("{json}");
    } else {
        println!("{}", text());
    }
    Ok(())
}

//! `sign`: a transaction signed and printed, not sent (offline when the
//! nonce, the fee and the network are given); `send-raw`: publishing
//! signed bytes, from this client or any program.

use std::io::Read;

use escrow::{Amount, ContractId, FeeRate, Party, Payload, SignedTx};
use p2p_node::api_types::SubmitTx;
use serde_json::json;

use super::args_tx::{SignArgs, Unsigned, UnsignedEscrow, WaitArgs};
use super::ctx::Ctx;
use super::errors::Failure;
use super::send::{contract_id, report, signer_key};

/// A contract named by its full id, or (asking the node) by a prefix.
async fn contract(ctx: &Ctx, id: &str) -> anyhow::Result<ContractId> {
    match id.parse::<ContractId>() {
        Ok(full) => Ok(full),
        Err(_) => contract_id(&ctx.client(), id).await,
    }
}

/// `sign`: prints the signed transaction's canonical hex and id.
pub(super) async fn sign(ctx: &Ctx, args: SignArgs) -> anyhow::Result<()> {
    let key = signer_key(&args.signer)?;
    let client = ctx.client();
    let payload = match args.what {
        Unsigned::Transfer { to, amount, memo } => {
            let amount = Amount::new(amount);
            match memo {
                Some(memo) => Payload::TransferMemo { to, amount, memo },
                None => Payload::Transfer { to, amount },
            }
        }
        Unsigned::Escrow(e) => match e {
            UnsignedEscrow::Create {
                seller,
                arbiter,
                amount,
                delivery_blocks,
                deadline,
                dispute_window,
            } => {
                let delivery_deadline = match deadline {
                    Some(h) => h,
                    None => client
                        .status()
                        .await?
                        .height
                        .saturating_add(delivery_blocks.max(1)),
                };
                Payload::EscrowCreate {
                    seller,
                    arbiter,
                    amount: Amount::new(amount),
                    delivery_deadline,
                    dispute_window,
                }
            }
            UnsignedEscrow::Confirm { id } => Payload::ConfirmDelivery {
                contract: contract(ctx, &id).await?,
            },
            UnsignedEscrow::Dispute { id } => Payload::RaiseDispute {
                contract: contract(ctx, &id).await?,
            },
            UnsignedEscrow::Refund { id } => Payload::RefundBuyer {
                contract: contract(ctx, &id).await?,
            },
            UnsignedEscrow::Resolve { id, to } => Payload::Resolve {
                contract: contract(ctx, &id).await?,
                to: if to == "seller" {
                    Party::Seller
                } else {
                    Party::Buyer
                },
            },
        },
    };
    let network = match args.network {
        Some(n) => n,
        None => client.status().await?.network,
    };
    let nonce = match args.nonce {
        Some(n) => n,
        None => {
            client
                .account(&key.address().to_string())
                .await?
                .pending_nonce
        }
    };
    let tx = match args.signer.fee {
        Some(coins) => SignedTx::sign(&key, nonce, Amount::new(coins), network, payload),
        None => {
            let rate = FeeRate::per_kb(client.fee_estimate(2).await?.fee_rate);
            SignedTx::sign_at_rate(&key, nonce, rate, network, payload)
        }
    };
    let hex = hex::encode(tx.to_bytes());
    let id = tx.id();
    let created =
        matches!(tx.body.payload, Payload::EscrowCreate { .. }).then(|| ContractId::from_tx(&id));
    let answer = json!({
        "tx": hex,
        "id": id.to_string(),
        "kind": tx.body.payload.kind(),
        "sender": key.address().to_string(),
        "nonce": nonce,
        "fee": tx.body.fee.get(),
        "size": tx.size(),
        "network": network.to_string(),
        "contract": created.map(|c| c.to_string()),
    });
    ctx.print(&answer, || {
        let mut text = format!("{hex}\nid {id}");
        if let Some(c) = created {
            text.push_str(&format!("\ncontract {c}"));
        }
        text
    })
}

/// `send-raw HEX`: publishes signed bytes (`-`: the first line of stdin), then
/// prints and waits as the sending commands do.
pub(super) async fn send_raw(ctx: &Ctx, hex: &str, wait: &WaitArgs) -> anyhow::Result<()> {
    let hex = if hex == "-" {
        // The first line: `sign`'s text output piped or saved whole.
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        text.lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("")
            .to_string()
    } else {
        hex.trim().to_string()
    };
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) || hex.len() % 2 != 0 {
        return Err(Failure::usage(
            "send-raw takes a signed transaction's bytes in hex (what `p2p-node sign` prints), or - \
             to read them from stdin"
                .to_string(),
        )
        .into());
    }
    // What kind it is, for the message, if the bytes say; the node judges
    // them either way.
    let kind = hex::decode(&hex)
        .ok()
        .and_then(|b| SignedTx::from_bytes(&b).ok())
        .map_or("transaction", |t| t.body.payload.kind());
    let client = ctx.client();
    let answer = client.post_json("/txs", &SubmitTx { tx: hex }).await?;
    report(ctx, &client, &answer, kind, wait).await
}

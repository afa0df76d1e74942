//! Sending transactions (`transfer`, `escrow ...`): signing, submitting,
//! and with `--wait` following the transaction to its confirmations;
//! `tx ID`.

use std::time::{Duration, Instant};

use chain_core::TxId;
use escrow::{ContractId, Keypair, Party, Payload, dev};
use p2p_node::api_types::{SubmitAnswer, TxLookupAnswer, TxStatus};
use p2p_node::client::{Client, ClientError, Fee};

use super::args_tx::{EscrowCommand, Signer, WaitArgs};
use super::ctx::Ctx;
use super::errors::{Exit, Failure};
use super::words::{describe, name_dev_accounts};

/// How often `--wait` asks the node.
const POLL: Duration = Duration::from_millis(200);

/// The contract `id` names: a full id as it is, a prefix as the node
/// resolves it (a contract whose creation is still pending included: its
/// id follows from the creating transaction's).
pub(super) async fn contract_id(client: &Client, id: &str) -> anyhow::Result<ContractId> {
    if let Ok(full) = id.parse::<ContractId>() {
        return Ok(full);
    }
    match client.contract_by_id(id).await {
        Ok(c) => Ok(c.id),
        Err(ClientError::Refused {
            code, tx: Some(tx), ..
        }) if code == "contract_pending" => {
            let tx: TxId = tx.parse().map_err(|e| ClientError::Unexpected {
                url: client.base().to_string(),
                what: format!("contract_pending with a transaction id that is not one: {e}"),
            })?;
            Ok(ContractId::from_tx(&tx))
        }
        Err(e) => Err(e.into()),
    }
}

/// `escrow ...`: builds the payload, then signs and submits it.
pub(super) async fn escrow(ctx: &Ctx, command: EscrowCommand) -> anyhow::Result<()> {
    let client = ctx.client();
    let (signer, payload, wait) = match command {
        EscrowCommand::Create {
            signer,
            seller,
            arbiter,
            amount,
            delivery_blocks,
            dispute_window,
            wait,
        } => {
            // The deadline counts from the node's tip, as the user sees it.
            let height = client.status().await?.height;
            let payload = Payload::EscrowCreate {
                seller,
                arbiter,
                amount: escrow::Amount::new(amount),
                delivery_deadline: height.saturating_add(delivery_blocks.max(1)),
                dispute_window,
            };
            (signer, payload, wait)
        }
        EscrowCommand::Confirm(a) => {
            let contract = contract_id(&client, &a.id).await?;
            (a.signer, Payload::ConfirmDelivery { contract }, a.wait)
        }
        EscrowCommand::Dispute(a) => {
            let contract = contract_id(&client, &a.id).await?;
            (a.signer, Payload::RaiseDispute { contract }, a.wait)
        }
        EscrowCommand::Refund(a) => {
            let contract = contract_id(&client, &a.id).await?;
            (a.signer, Payload::RefundBuyer { contract }, a.wait)
        }
        EscrowCommand::Resolve { action, to } => {
            let contract = contract_id(&client, &action.id).await?;
            let to = if to == "seller" {
                Party::Seller
            } else {
                Party::Buyer
            };
            (
                action.signer,
                Payload::Resolve { contract, to },
                action.wait,
            )
        }
    };
    submit(ctx, payload, &signer, &wait).await
}

/// Signs and submits `payload`, prints the transaction's id (and the new
/// contract's, for an escrow), and with `--wait` waits for its
/// confirmations.
pub(super) async fn submit(
    ctx: &Ctx,
    payload: Payload,
    signer: &Signer,
    wait: &WaitArgs,
) -> anyhow::Result<()> {
    let key = signer_key(signer)?;
    let kind = payload.kind();
    let client = ctx.client();
    let fee = signer.fee.map_or(Fee::default(), |coins| {
        Fee::Fixed(escrow::Amount::new(coins))
    });
    let answer = client.sign_and_submit(&key, payload, fee).await?;
    report(ctx, &client, &answer, kind, wait).await
}

/// Prints what the node said of a submitted transaction, and with
/// `--wait` waits for its confirmations.
pub(super) async fn report(
    ctx: &Ctx,
    client: &Client,
    answer: &SubmitAnswer,
    kind: &str,
    wait: &WaitArgs,
) -> anyhow::Result<()> {
    let answer = answer.clone();
    let submitted = |a: &SubmitAnswer| match a.contract {
        Some(contract) => format!(
            "submitted {kind} {} (fee {})\ncontract {contract}",
            a.id, a.fee
        ),
        None => format!("submitted {kind} {} (fee {})", a.id, a.fee),
    };
    let Some(confirmations) = wait.wait else {
        return ctx.print(&answer, || submitted(&answer));
    };
    if !ctx.global.json {
        // The id first, so that a wait that fails still told it.
        say!("{}", submitted(&answer));
    }
    let timeout = Duration::from_secs(wait.timeout);
    let done = wait_for(ctx, client, &answer.id, confirmations, timeout).await?;
    let mut json = serde_json::to_value(&answer)?;
    if let (Some(obj), serde_json::Value::Object(lookup)) =
        (json.as_object_mut(), serde_json::to_value(&done)?)
    {
        for key in ["status", "block", "height", "confirmations"] {
            if let Some(v) = lookup.get(key) {
                obj.insert(key.to_string(), v.clone());
            }
        }
    }
    ctx.print(&json, || confirmed_text(&done))
}

/// "confirmed in block H at height N (C confirmations)".
fn confirmed_text(l: &TxLookupAnswer) -> String {
    let block = l.block.map(|b| b.to_string()).unwrap_or_default();
    let confirmations = l.confirmations.unwrap_or(0);
    let plural = if confirmations == 1 { "" } else { "s" };
    format!(
        "confirmed in block {block} at height {} ({confirmations} confirmation{plural})",
        l.height.unwrap_or(0)
    )
}

/// Polls `GET /txs/{id}` until the transaction has `confirmations`,
/// printing each change on stderr (text mode). A dropped transaction or
/// the timeout ends the wait with an error; each poll waits only for the
/// time left, so a node that never answers cannot hold the wait past it.
async fn wait_for(
    ctx: &Ctx,
    client: &Client,
    id: &TxId,
    confirmations: u64,
    timeout: Duration,
) -> anyhow::Result<TxLookupAnswer> {
    let deadline = Instant::now() + timeout;
    let mut said = String::new();
    let mut last: Option<TxLookupAnswer> = None;
    let mut silent = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(answer) = tokio::time::timeout(left, client.tx(id)).await else {
            silent = true;
            break;
        };
        let l = answer?;
        let have = l.confirmations.unwrap_or(0);
        let now = match l.status {
            TxStatus::Dropped => {
                let reason = l.reason.as_deref().unwrap_or("no reason given");
                return Err(Failure {
                    exit: Exit::Dropped,
                    code: "dropped",
                    message: name_dev_accounts(&format!(
                        "transaction {id} was dropped: {reason}; it will not be mined (sign a new one)"
                    )),
                }
                .into());
            }
            TxStatus::Confirmed if have >= confirmations => return Ok(l),
            TxStatus::Confirmed => format!(
                "waiting: in block {} at height {}, {have} of {confirmations} confirmations",
                l.block.map(|b| b.short()).unwrap_or_default(),
                l.height.unwrap_or(0)
            ),
            TxStatus::Pending => "waiting: pending in the mempool".to_string(),
        };
        if now != said && !ctx.global.json {
            tell!("{now}");
            said = now;
        }
        last = Some(l);
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        tokio::time::sleep(POLL.min(left)).await;
    }
    let secs = timeout.as_secs();
    // The last state the node told, if it told any: the deadline may have
    // come while a poll was on its way.
    let message = match last {
        Some(l) => {
            let status = match (l.status, silent) {
                (TxStatus::Pending, false) => "still pending",
                (TxStatus::Pending, true) => "still pending when the node last answered",
                (_, false) => "confirmed",
                (_, true) => "confirmed when the node last answered",
            };
            format!(
                "transaction {id} has {} of {confirmations} confirmations after {secs} s ({status}); \
                 is the node mining? (a node run with --mine pending mines only while transactions \
                 wait: `p2p-node mine N` adds blocks); `p2p-node tx {id}` shows where it is, \
                 --timeout SECS waits longer",
                l.confirmations.unwrap_or(0)
            )
        }
        None => format!(
            "transaction {id}: the node at {} did not answer within the {secs} s of --timeout \
             (is it stopped or overloaded?); `p2p-node tx {id}` shows where it is, --timeout SECS \
             waits longer",
            client.base()
        ),
    };
    Err(Failure {
        exit: Exit::Timeout,
        code: "timeout",
        message,
    }
    .into())
}

/// `tx ID`: where a transaction is, and what it does.
pub(super) async fn tx(ctx: &Ctx, id: &str) -> anyhow::Result<()> {
    let client = ctx.client();
    let l = match client.tx_by_id(id).await {
        Ok(l) => l,
        Err(e) if matches!(&e, ClientError::Refused { code, .. } if code == "not_found") => {
            // A node keeps its pending transactions over a clean stop, but
            // after a crash only those it had saved (every 10 s): say when
            // it started, so whoever sent this one before can send it again.
            let Ok(status) = client.status().await else {
                return Err(e.into());
            };
            return Err(Failure {
                exit: Exit::Refused,
                code: "not_found",
                message: format!("{e}; {}", restarted_hint(status.started_at_ms)),
            }
            .into());
        }
        Err(e) => return Err(e.into()),
    };
    ctx.print(&l, || {
        let status = match l.status {
            TxStatus::Pending => "pending in the mempool".to_string(),
            TxStatus::Confirmed => confirmed_text(&l),
            TxStatus::Dropped => name_dev_accounts(&format!(
                "dropped: {}",
                l.reason.as_deref().unwrap_or("no reason given")
            )),
        };
        format!(
            "transaction {} ({})\n{}\n{status}",
            l.tx.id(),
            l.tx.kind(),
            describe(&l.tx)
        )
    })
}

/// What `tx` adds when a node does not know a transaction: when the node
/// started, and what a crash before then loses.
fn restarted_hint(started_at_ms: u64) -> String {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let up_s = now_ms.saturating_sub(started_at_ms) / 1_000;
    format!(
        "the node has been running for {up_s} s; a node that crashed keeps only the pending \
         transactions it had saved (every 10 s and at a clean stop), so a transaction sent \
         before it started may be gone: send it again"
    )
}

/// The key `signer` names: a dev account's or a key file's.
pub(super) fn signer_key(signer: &Signer) -> anyhow::Result<Keypair> {
    match (&signer.as_account, &signer.key) {
        (Some(name), None) => match (dev::keypair(name), super::keyring::load(name)) {
            (Some(k), _) => Ok(k),
            (None, Some(k)) => Ok(k?),
            (None, None) => Err(Failure::usage(format!(
                "`{name}` is neither a dev account ({}) nor a named key (`p2p-node keys` lists \
                 them; `p2p-node keygen --name {name}` makes one); sign with --as NAME or --key FILE",
                dev::DEV_ACCOUNTS.join(", ")
            ))
            .into()),
        },
        (None, Some(path)) => Ok(Keypair::load(path)?),
        _ => Err(Failure::usage("say who signs: --as NAME (a dev account) or --key FILE").into()),
    }
}

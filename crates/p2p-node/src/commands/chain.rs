//! Reading the chain: `status`, `balance`, `block`, `blocks`, `contract`,
//! `contracts`, `peers`, `mempool`; and `mine`.

use chain_core::TxId;
use escrow::{Address, ContractId};
use p2p_node::api_types::{BlockAnswer, TxAnswer};
use p2p_node::client::{COOKIE_FILE, Client, ClientError};
use serde_json::json;

use super::ctx::Ctx;
use super::errors::Failure;
use super::words::{contract_line, contract_text, describe, utc, who};

/// The most blocks `GET /blocks` answers in one request.
const PAGE: u64 = 100;

/// `status`.
pub(super) async fn status(ctx: &Ctx) -> anyhow::Result<()> {
    let s = ctx.client().status().await?;
    ctx.print(&s, || {
        let mut text = format!(
            "network {}\nheight  {}\ntip     {}\npeers   {}\nmempool {} ({} bytes)\nmin fee {} coins/kB\nmining  {}",
            s.network,
            s.height,
            s.tip,
            s.peers,
            s.mempool,
            s.mempool_bytes,
            s.min_fee_rate,
            s.mining,
        );
        if let Some(sync) = &s.sync {
            let left = sync
                .seconds_left
                .map_or_else(|| "estimating".to_string(), |x| format!("about {x:.0} s left"));
            let share = 100.0 * sync.blocks as f64 / sync.headers.max(1) as f64;
            text.push_str(&format!(
                "\nsyncing blocks {} of {} headers ({share:.1} %), {left}",
                sync.blocks, sync.headers
            ));
        }
        text
    })
}

/// `balance ACCOUNT | --key FILE`.
pub(super) async fn balance(ctx: &Ctx, account: &Address) -> anyhow::Result<()> {
    let a = ctx.client().account(&account.to_string()).await?;
    ctx.print(&a, || {
        format!(
            "{} balance {} (pending {}), nonce {} (pending {})",
            who(account),
            a.balance,
            a.pending_balance,
            a.nonce,
            a.pending_nonce
        )
    })
}

/// Who a block's coinbase pays.
fn miner(b: &BlockAnswer) -> Option<String> {
    b.transactions.first().and_then(|t| match t {
        TxAnswer::Coinbase { to, .. } => Some(who(to)),
        _ => None,
    })
}

/// One line per block, for `blocks`.
fn block_line(b: &BlockAnswer) -> String {
    let by = miner(b)
        .map(|m| format!("  mined by {m}"))
        .unwrap_or_default();
    format!("{}  {}  {} txs{by}", b.height, b.hash, b.transactions.len())
}

/// `block HASH|HEIGHT`: a number of at most 7 digits is a height; anything
/// else a hash or a hash prefix.
pub(super) async fn block(ctx: &Ctx, id: &str) -> anyhow::Result<()> {
    let client = ctx.client();
    let b = match id.parse::<u64>() {
        Ok(height) if id.len() < 8 => client.block_at_height(height).await?,
        _ => client.block_by_id(id).await?,
    };
    ctx.print(&b, || {
        let place = if b.on_best_chain {
            "on the best chain"
        } else {
            "on a side branch"
        };
        let mut out = format!(
            "block  {}\nheight {} ({place})\nparent {}\ntime   {}\ntarget {}  nonce {}  size {} bytes\n{} transactions:",
            b.hash,
            b.height,
            b.parent,
            utc(b.timestamp_ms),
            b.target,
            b.nonce,
            b.size,
            b.transactions.len()
        );
        for t in &b.transactions {
            out.push_str(&format!("\n  {}  {}", t.id(), describe(t)));
        }
        out
    })
}

/// `blocks --last N`: the last N best-chain blocks, oldest first, asked
/// for in pages of [`PAGE`] from the tip's height down.
pub(super) async fn blocks(ctx: &Ctx, last: u64) -> anyhow::Result<()> {
    let mut blocks: Vec<BlockAnswer> = Vec::new();
    if last > 0 {
        let client = ctx.client();
        let tip = client.status().await?.height;
        let mut from = tip.saturating_sub(last - 1);
        while from <= tip {
            let to = from.saturating_add(PAGE - 1).min(tip);
            let page = client.blocks_range(from, to).await?;
            let Some(next) = page.last().map(|b| b.height.saturating_add(1)) else {
                break;
            };
            blocks.extend(page);
            if next <= from {
                break;
            }
            from = next;
        }
    }
    ctx.print(&blocks, || {
        blocks.iter().map(block_line).collect::<Vec<_>>().join("\n")
    })
}

/// `contract ID`: the contract with its history, or, while its creation
/// is pending, that it is pending and with which transaction.
pub(super) async fn contract(ctx: &Ctx, id: &str) -> anyhow::Result<()> {
    let client = ctx.client();
    match client.contract_by_id(id).await {
        Ok(c) => {
            let height = client.status().await?.height;
            ctx.print(&c, || contract_text(&c, height))
        }
        Err(ClientError::Refused {
            code, tx: Some(tx), ..
        }) if code == "contract_pending" => pending_contract(ctx, &client, id, &tx).await,
        Err(e) => Err(e.into()),
    }
}

/// A contract whose creating transaction `tx` is not in a block yet.
async fn pending_contract(ctx: &Ctx, client: &Client, id: &str, tx: &str) -> anyhow::Result<()> {
    let contract = match (id.parse::<ContractId>(), tx.parse::<TxId>()) {
        (Ok(c), _) => Some(c),
        (_, Ok(t)) => Some(ContractId::from_tx(&t)),
        _ => None,
    };
    // What the creation does, if the node still has it (best effort: the
    // answer is the pending state either way).
    let what = client.tx_by_id(tx).await.ok().map(|l| describe(&l.tx));
    let answer = json!({"id": contract, "status": "pending", "tx": tx});
    ctx.print(&answer, || {
        let id = contract.map_or_else(|| id.to_string(), |c| c.to_string());
        let mut out = format!(
            "contract {id} is pending: its creation, transaction {tx}, is not in a block yet \
             (`p2p-node tx {tx}` follows it)"
        );
        if let Some(what) = what {
            out.push_str(&format!("\n  {what}"));
        }
        out
    })
}

/// `contracts`.
pub(super) async fn contracts(ctx: &Ctx) -> anyhow::Result<()> {
    let list = ctx.client().contracts().await?;
    ctx.print(&list, || {
        if list.is_empty() {
            return "no contracts".to_string();
        }
        list.iter()
            .map(contract_line)
            .collect::<Vec<_>>()
            .join("\n")
    })
}

/// `peers`.
pub(super) async fn peers(ctx: &Ctx) -> anyhow::Result<()> {
    let list = ctx.client().peers().await?;
    ctx.print(&list, || {
        if list.is_empty() {
            return "no peers".to_string();
        }
        list.iter()
            .map(|p| {
                let listen = p
                    .listen_addr
                    .map_or_else(|| "unknown".to_string(), |a| a.to_string());
                format!(
                    "{}  {:<8} {}  listens on {listen}  height {}  penalty {}  queued {} bytes",
                    p.node_id.get(..8).unwrap_or(&p.node_id),
                    p.direction,
                    p.remote,
                    p.best_height,
                    p.penalty,
                    p.queued_bytes
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    })
}

/// `mempool`.
pub(super) async fn mempool(ctx: &Ctx) -> anyhow::Result<()> {
    let list = ctx.client().mempool().await?;
    ctx.print(&list, || {
        if list.is_empty() {
            return "the mempool is empty".to_string();
        }
        list.iter()
            .map(|t| format!("{}  {}", t.id(), describe(t)))
            .collect::<Vec<_>>()
            .join("\n")
    })
}

/// `fees [--blocks N]`: the estimate, then the pool by fee rate.
pub(super) async fn fees(ctx: &Ctx, blocks: u64) -> anyhow::Result<()> {
    let client = ctx.client();
    let estimate = client.fee_estimate(blocks).await?;
    let pool = client.mempool_fees().await?;
    let both = serde_json::json!({ "estimate": estimate, "mempool": pool });
    ctx.print(&both, || {
        let mut lines = vec![
            format!(
                "to be mined within {} block{}: {} coins/kB ({} for a 164-byte transfer)",
                estimate.blocks,
                if estimate.blocks == 1 { "" } else { "s" },
                estimate.fee_rate,
                estimate.transfer_fee,
            ),
            format!(
                "mempool: {} transactions, {} of {} bytes; minimum {} coins/kB (floor {})",
                pool.count, pool.bytes, pool.max_bytes, pool.min_fee_rate, pool.min_relay_fee_rate,
            ),
        ];
        for band in pool.histogram.iter().rev() {
            lines.push(format!(
                "  {:>12} coins/kB  {:>6} txs  {:>10} bytes",
                format!("{}-{}", band.rate_from, band.rate_to),
                band.count,
                band.bytes
            ));
        }
        lines.join("\n")
    })
}

/// `mine N [--to ACCOUNT]`, with the token of `--token` or the data
/// directory's cookie.
pub(super) async fn mine(ctx: &Ctx, count: u64, to: Option<&Address>) -> anyhow::Result<()> {
    let (client, source) = ctx.authed_client()?;
    let mined = match to {
        Some(to) => client.mine_to(count, to).await,
        None => client.mine(count).await,
    };
    let mined = match mined {
        Err(ClientError::Refused { code, .. }) if code == "unauthorized" => {
            return Err(anyhow::Error::new(Failure {
                exit: super::errors::Exit::Refused,
                code: "unauthorized",
                message: format!(
                    "the node at {} refused {source} (unauthorized): that token is another node's, \
                     or the node restarted since; give --data-dir DIR of the node at {} \
                     (it writes its token to DIR/{COOKIE_FILE}), or --token TOKEN",
                    client.base(),
                    client.base()
                ),
            }));
        }
        other => other?,
    };
    ctx.print(&mined, || mined_text(&mined.blocks))
}

/// `mined HASH` per block up to 5 blocks; past that a summary, not a
/// screenful of hashes.
fn mined_text(blocks: &[chain_core::BlockHash]) -> String {
    const LISTED: usize = 5;
    match blocks {
        [] => String::new(),
        few if few.len() <= LISTED => few
            .iter()
            .map(|h| format!("mined {h}"))
            .collect::<Vec<_>>()
            .join("\n"),
        [first, .., last] => format!(
            "mined {} blocks, {first} to {last} (`p2p-node blocks --last {}` lists them)",
            blocks.len(),
            blocks.len()
        ),
        _ => unreachable!("a slice of more than 5 has a first and a last"),
    }
}

/// `--wait-for-node SECS`: asks for the node's status every 100 ms until it
/// answers, or says it never did (exit 3) with what the last try met.
pub(super) async fn wait_for_node(ctx: &Ctx, within: std::time::Duration) -> anyhow::Result<()> {
    // Each try gives up soon: a port that accepts and never answers must
    // not hold the wait past its end.
    let client = ctx.client().with_timeout(std::time::Duration::from_secs(2));
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let tried = client.status().await;
        match tried {
            Ok(_) => return Ok(()),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(super::errors::Failure {
                    exit: super::errors::Exit::Unreachable,
                    code: "unreachable",
                    message: format!(
                        "no node answered at {} within {} s (--wait-for-node); the last try: {e}",
                        ctx.global.node,
                        within.as_secs()
                    ),
                }
                .into());
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
}

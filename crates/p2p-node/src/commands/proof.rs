//! `verify-proof TXID`: a light client's check. The node's word is not
//! taken for anything: the proof is decoded from its bytes, the headers
//! are checked from the genesis the user holds (its hash is the network id,
//! and it carries the rules), and the transaction's depth is counted in
//! the valid chain of most work among the nodes asked.

use std::path::Path;

use chain_core::{Header, HeaderChain, InclusionProof, TxId};
use escrow::{Genesis, Tx};
use p2p_node::api_types::{HeadersAnswer, ProofAnswer};
use p2p_node::client::Client;
use serde_json::json;

use super::ctx::Ctx;
use super::errors::{Exit, Failure};

/// A proof or a chain that does not hold (exit 1, code `proof_invalid`).
fn invalid(message: String) -> anyhow::Error {
    Failure {
        exit: Exit::Refused,
        code: "proof_invalid",
        message,
    }
    .into()
}

/// Headers a source may add past the tip it named in its first page (the
/// chain grows while it is read); a source that keeps going is refused,
/// not followed until memory runs out.
const GROWTH: u64 = 10_000;

/// Every header of `client`'s best chain, from genesis, page by page.
async fn all_headers(client: &Client) -> anyhow::Result<Vec<Header>> {
    let mut headers: Vec<Header> = Vec::new();
    let mut cap: Option<u64> = None;
    loop {
        let from = headers.len() as u64;
        let page: HeadersAnswer = client.get_json(&format!("/headers?from={from}")).await?;
        if page.from != from {
            return Err(invalid(format!(
                "{}: asked for headers from {from}, got a page from {}",
                client.base(),
                page.from
            )));
        }
        let cap = *cap.get_or_insert(page.tip_height.saturating_add(GROWTH));
        if page.headers.is_empty() {
            return Ok(headers);
        }
        for text in &page.headers {
            let height = headers.len();
            let bytes = hex::decode(text).map_err(|e| {
                invalid(format!(
                    "{}: header {height} is not hex: {e}",
                    client.base()
                ))
            })?;
            let header = Header::from_bytes(&bytes).map_err(|e| {
                invalid(format!(
                    "{}: header {height} is not a header: {e}",
                    client.base()
                ))
            })?;
            headers.push(header);
        }
        if headers.len() as u64 > cap {
            return Err(invalid(format!(
                "{}: more than {cap} headers, past the tip it said it had",
                client.base()
            )));
        }
        if headers.len() as u64 > page.tip_height {
            return Ok(headers);
        }
    }
}

/// `verify-proof TXID [--genesis FILE] [--headers-from URL]...`.
pub(super) async fn verify(
    ctx: &Ctx,
    txid: &str,
    genesis: Option<&Path>,
    headers_from: &[String],
) -> anyhow::Result<()> {
    let id: TxId = txid.parse().map_err(|_| {
        Failure::usage(format!(
            "`{txid}` is not a transaction id: give its 64 hex digits"
        ))
    })?;
    let genesis = match genesis {
        Some(path) => Genesis::load(path)?,
        None => Genesis::dev(),
    };
    let (network, params) = (genesis.network_id(), genesis.params.clone());
    let client = ctx.client();
    let answer: ProofAnswer = client.get_json(&format!("/txs/{id}/proof")).await?;
    // The bytes, not the JSON around them, are what is checked.
    let bytes =
        hex::decode(&answer.proof).map_err(|e| invalid(format!("the proof is not hex: {e}")))?;
    let proof: InclusionProof<Tx> = postcard::from_bytes(&bytes)
        .map_err(|e| invalid(format!("the proof's bytes are not a proof: {e}")))?;
    let (block, in_proof) = proof
        .verify()
        .map_err(|e| invalid(format!("the proof does not hold: {e}")))?;
    if in_proof != id {
        return Err(invalid(format!(
            "the node sent a proof for transaction {in_proof}, not {id}"
        )));
    }
    let sources: Vec<String> = if headers_from.is_empty() {
        vec![ctx.global.node.clone()]
    } else {
        headers_from.to_vec()
    };
    let mut best: Option<(HeaderChain, String)> = None;
    let mut refused = Vec::new();
    // A source that could not be asked at all, for the exit code when no
    // source gave a chain (unreachable: exit 3, as every client error).
    let mut unreached: Option<anyhow::Error> = None;
    for url in &sources {
        let source = Client::new(url, None).with_timeout(ctx.request_timeout());
        let checked = match all_headers(&source).await {
            Ok(headers) => {
                HeaderChain::verify(&params, network, &headers).map_err(|e| e.to_string())
            }
            Err(e) => {
                let said = format!("{e:#}");
                if e.downcast_ref::<p2p_node::client::ClientError>().is_some() {
                    unreached.get_or_insert(e);
                }
                Err(said)
            }
        };
        match checked {
            Ok(chain) if best.as_ref().is_none_or(|(b, _)| chain.work() > b.work()) => {
                best = Some((chain, url.clone()));
            }
            Ok(_) => {}
            Err(e) => refused.push(format!("{url}: {e}")),
        }
    }
    if best.is_none()
        && refused.len() == sources.len()
        && let Some(e) = unreached
    {
        return Err(e);
    }
    let Some((chain, from)) = best else {
        return Err(invalid(format!(
            "no valid chain of headers from genesis {network}: {}",
            refused.join("; ")
        )));
    };
    let (_, depth) = proof
        .verify_in(&chain)
        .map_err(|e| invalid(e.to_string()))?;
    let height = proof.header.height;
    let out = json!({
        "tx": id.to_string(),
        "block": block.to_string(),
        "height": height,
        "depth": depth,
        "chain_height": chain.height(),
        "chain_tip": chain.tip().to_string(),
        "headers_from": from,
        "refused": refused,
    });
    ctx.print(&out, || {
        let mut text = format!(
            "transaction {id} is in block {block} at height {height}: {depth} block{} deep in a chain of {} headers checked from genesis (proof of work, links, targets), tip {}, headers from {from}",
            if depth == 1 { "" } else { "s" },
            chain.height() + 1,
            chain.tip()
        );
        for r in &refused {
            text.push_str(&format!("\nrefused: {r}"));
        }
        text
    })
}

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

/// Every header of `client`'s best chain, from genesis, page by page.
async fn all_headers(client: &Client) -> anyhow::Result<Vec<Header>> {
    let mut headers = Vec::new();
    loop {
        let page: HeadersAnswer = client
            .get_json(&format!("/headers?from={}", headers.len()))
            .await?;
        if page.headers.is_empty() {
            return Ok(headers);
        }
        for (i, text) in page.headers.iter().enumerate() {
            let bytes = hex::decode(text).map_err(|e| {
                invalid(format!(
                    "{}: header {} is not hex: {e}",
                    client.base(),
                    page.from + i as u64
                ))
            })?;
            let header = Header::from_bytes(&bytes).map_err(|e| {
                invalid(format!(
                    "{}: header {} is not a header: {e}",
                    client.base(),
                    page.from + i as u64
                ))
            })?;
            headers.push(header);
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
    for url in &sources {
        let source = Client::new(url, None).with_timeout(ctx.request_timeout());
        let checked = match all_headers(&source).await {
            Ok(headers) => {
                HeaderChain::verify(&params, network, &headers).map_err(|e| e.to_string())
            }
            Err(e) => Err(format!("{e:#}")),
        };
        match checked {
            Ok(chain) if best.as_ref().is_none_or(|(b, _)| chain.work() > b.work()) => {
                best = Some((chain, url.clone()));
            }
            Ok(_) => {}
            Err(e) => refused.push(format!("{url}: {e}")),
        }
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

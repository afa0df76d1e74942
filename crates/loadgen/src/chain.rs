//! `loadgen chain`: a node data directory holding a chain of full blocks,
//! for `cargo xtask bench --only sync-full`.
//!
//! The accounts and their genesis are `prepare`'s (fixed keys, the same
//! funds). Block `k` (height `k + 1`) holds a coinbase and then every
//! account's transfer of nonce `k`, of 1 coin to the next account: as many
//! distinct senders as accounts in every block. Each block is built on a
//! local chain (`Genesis::chain`, `Chain::template_on`, a nonce found with
//! the production kernel), inserted there, then handed to a real
//! `p2p_node::Node` on a `RedbStore` in `DIR/node` with
//! `NodeHandle::submit_block`: the store is byte for byte what a node
//! writes when it accepts those blocks one at a time.

use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail, ensure};
use chain_core::miner::{Job, Kernel};
use chain_core::{Block, Chain};
use escrow::{Amount, Keypair, Ledger, Payload, SignedTx, Tx};
use p2p_node::core::{BlockRelay, Submitted};
use p2p_node::store::RedbStore;
use p2p_node::{MiningMode, Node, NodeConfig, Seams};

/// The system clock in milliseconds since the Unix epoch (the node's
/// clock is the same, so the blocks' timestamps pass its window).
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The bytes of every file under `dir` (their lengths), recursively.
pub(crate) fn dir_bytes(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let meta = entry
            .metadata()
            .with_context(|| format!("cannot stat {}", entry.path().display()))?;
        total += if meta.is_dir() {
            dir_bytes(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

/// The next block on the local chain's tip: a coinbase to `miner`, then
/// each account's transfer of nonce `nonce` to the next account, solved
/// at the chain's target.
fn next_block(
    chain: &Chain<Ledger>,
    keys: &[Keypair],
    nonce: u64,
    miner: escrow::Address,
    kernel: Kernel,
) -> anyhow::Result<Block<Tx>> {
    let network = chain.genesis_hash();
    let parent = chain.tip();
    let height = chain.height() + 1;
    let mut transactions = Vec::with_capacity(keys.len() + 1);
    transactions.push(Tx::Coinbase { to: miner, height });
    for (i, k) in keys.iter().enumerate() {
        let to = keys[(i + 1) % keys.len()].address();
        transactions.push(Tx::Signed(SignedTx::sign(
            k,
            nonce,
            Amount::new(1),
            network,
            Payload::Transfer {
                to,
                amount: Amount::new(1),
            },
        )));
    }
    let mut header = chain
        .template_on(&parent, &transactions, now_ms())
        .context("the local chain lost its own tip")?;
    let job = Job::new(&header).context("the chain's target is not valid")?;
    header.nonce = kernel
        .scan(&job, 0, u64::MAX)
        .context("no nonce meets the target")?;
    Ok(Block {
        header,
        transactions,
    })
}

/// Writes `out/genesis.json` and a node data directory `out/node` holding
/// `blocks` full blocks; returns the JSON answer: blocks, transfers,
/// block_bytes (the sum of the blocks' sizes as the size limit counts
/// them: the header and each transaction's encoding), data_dir_bytes
/// (the node's directory once it has stopped) and seconds.
pub(crate) fn run(accounts: usize, blocks: u64, out: &Path) -> anyhow::Result<String> {
    let started = Instant::now();
    let (keys, genesis) = crate::prepare::write_genesis(accounts, out)?;
    let data_dir = out.join("node");
    if data_dir.exists() {
        bail!(
            "{} exists already: the chain is built into an empty directory",
            data_dir.display()
        );
    }
    let mut chain = genesis
        .chain()
        .map_err(|e| anyhow::anyhow!("the benchmark genesis does not start a chain: {e}"))?;
    let store = RedbStore::open(&data_dir)
        .with_context(|| format!("cannot open a store in {}", data_dir.display()))?;
    let mut config = NodeConfig::new(genesis);
    config.mining = MiningMode::Off;
    let miner = config.miner_account;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start a runtime")?;
    let kernel = Kernel::detect();
    let block_bytes = runtime.block_on(async {
        let node = Node::start_with(
            config,
            Seams {
                store: Box::new(store),
                ..Seams::default()
            },
        )
        .await
        .context("cannot start the node")?;
        let built = async {
            let mut block_bytes = 0u64;
            for nonce in 0..blocks {
                let block = next_block(&chain, &keys, nonce, miner, kernel)?;
                block_bytes += block.size() as u64;
                let height = block.header.height;
                chain
                    .insert(block.clone(), now_ms())
                    .map_err(|e| anyhow::anyhow!("block {height} does not apply: {e}"))?;
                let submitted = node
                    .submit_block(block, BlockRelay::IfBest)
                    .await
                    .context("the node stopped")?;
                if submitted != Submitted::Best {
                    bail!("the node took block {height} as {submitted:?}, not as its best tip");
                }
            }
            let (_, height) = node.tip().await.context("the node stopped")?;
            ensure!(
                height == blocks,
                "the node's height is {height}, not {blocks}"
            );
            Ok(block_bytes)
        }
        .await;
        // A clean stop on errors too: the store is closed, its last
        // snapshot saved.
        node.shutdown().await;
        built
    })?;
    drop(runtime);
    let transfers = blocks * accounts as u64;
    Ok(serde_json::json!({
        "blocks": blocks,
        "transfers": transfers,
        "block_bytes": block_bytes,
        "data_dir_bytes": dir_bytes(&data_dir)?,
        "seconds": started.elapsed().as_secs_f64(),
    })
    .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prepare::{account_key, genesis};

    #[test]
    fn the_chain_is_stored_as_a_node_writes_it_and_its_bytes_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let answer: serde_json::Value =
            serde_json::from_str(&run(20, 3, dir.path()).unwrap()).unwrap();
        assert_eq!(answer["blocks"], 3);
        assert_eq!(answer["transfers"], 60);
        // A header, a coinbase and 20 signed transfers of more than 100
        // bytes each, three times.
        let block_bytes = answer["block_bytes"].as_u64().unwrap();
        assert!(block_bytes > 3 * 20 * 100, "{answer}");
        assert!(
            answer["data_dir_bytes"].as_u64().unwrap() > block_bytes,
            "{answer}"
        );

        // A node restarted on the directory has the chain, and every
        // account has sent its three transfers.
        let keys: Vec<Keypair> = (0..20).map(account_key).collect();
        let genesis = genesis(&keys);
        let text = std::fs::read_to_string(dir.path().join("genesis.json")).unwrap();
        assert_eq!(
            escrow::Genesis::from_json(&text).unwrap().network_id(),
            genesis.network_id()
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let store = RedbStore::open(&dir.path().join("node")).unwrap();
            let node = Node::start_with(
                NodeConfig::new(genesis),
                Seams {
                    store: Box::new(store),
                    ..Seams::default()
                },
            )
            .await
            .unwrap();
            assert_eq!(node.tip().await.unwrap().1, 3);
            let nonces = node
                .query(move |view| {
                    keys.iter()
                        .map(|k| view.chain.state().nonce(&k.address()))
                        .collect::<Vec<_>>()
                })
                .await
                .unwrap();
            assert!(nonces.iter().all(|&n| n == 3), "{nonces:?}");
            node.shutdown().await;
        });

        // A second build into the same directory is refused.
        assert!(run(20, 1, dir.path()).is_err());
    }
}

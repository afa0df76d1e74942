//! `loadgen prepare`: the benchmark's accounts, their genesis, their signed
//! transfers, and what a signature check costs on this machine.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use escrow::genesis::Allocation;
use escrow::{Amount, Genesis, Keypair, Payload, SignedTx};

/// What every benchmark account holds at genesis.
const FUNDS: u64 = 1_000_000;

/// The key of benchmark account `i`: a fixed seed, so runs are alike.
pub(crate) fn account_key(i: usize) -> Keypair {
    let mut seed = *b"xtask bench account ............";
    seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
    Keypair::from_seed(seed)
}

/// Microseconds per transaction of a single signature check and of a
/// one-thread batch check, measured on `txs`: the fastest of five rounds,
/// since other work on the machine only ever slows a round down.
fn signature_costs(txs: &[SignedTx]) -> anyhow::Result<(f64, f64)> {
    let sample = &txs[..txs.len().min(1_000)];
    let refs: Vec<&SignedTx> = sample.iter().collect();
    let (mut single, mut batch) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..5 {
        let started = Instant::now();
        for tx in sample.iter().take(200) {
            escrow::signature::check(tx).context("a benchmark transaction does not verify")?;
        }
        let per_tx = started.elapsed().as_secs_f64() * 1e6 / sample.len().min(200) as f64;
        single = single.min(per_tx);
        let started = Instant::now();
        escrow::signature::verify_block(&refs, 1)
            .map_err(|(i, e)| anyhow::anyhow!("benchmark transaction {i} does not verify: {e}"))?;
        batch = batch.min(started.elapsed().as_secs_f64() * 1e6 / sample.len() as f64);
    }
    Ok((single, batch))
}

/// The dev genesis, renamed, that also funds `keys`.
pub(crate) fn genesis(keys: &[Keypair]) -> Genesis {
    let mut genesis = Genesis::dev();
    genesis.name = "escrow-chain bench".to_string();
    genesis.allocations.extend(keys.iter().map(|k| Allocation {
        to: k.address(),
        amount: Amount::new(FUNDS),
    }));
    genesis
}

/// Account `i`'s `count` transfers of 1 to account `i + 1` (the last to
/// the first), nonces 0 upward.
fn transfers(keys: &[Keypair], count: u64, genesis: &Genesis) -> Vec<Vec<SignedTx>> {
    let network = genesis.network_id();
    keys.iter()
        .enumerate()
        .map(|(i, k)| {
            let to = keys[(i + 1) % keys.len()].address();
            (0..count)
                .map(|nonce| {
                    SignedTx::sign(
                        k,
                        nonce,
                        escrow::Amount::new(1),
                        network,
                        Payload::Transfer {
                            to,
                            amount: Amount::new(1),
                        },
                    )
                })
                .collect()
        })
        .collect()
}

/// The `accounts` funded keys and their genesis, written to
/// `out/genesis.json` (`out` created if need be): what `prepare` and
/// `chain` both start from.
pub(crate) fn write_genesis(
    accounts: usize,
    out: &Path,
) -> anyhow::Result<(Vec<Keypair>, Genesis)> {
    anyhow::ensure!(accounts > 0, "--accounts must be at least 1");
    let keys: Vec<Keypair> = (0..accounts).map(account_key).collect();
    let genesis = genesis(&keys);
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let genesis_path = out.join("genesis.json");
    std::fs::write(&genesis_path, genesis.to_json())
        .with_context(|| format!("cannot write {}", genesis_path.display()))?;
    Ok((keys, genesis))
}

/// Writes `out/genesis.json` and `out/transfers.txt`; returns the JSON
/// answer (accounts, transfers, the two signature costs).
pub(crate) fn run(accounts: usize, txs_per_account: u64, out: &Path) -> anyhow::Result<String> {
    let (keys, genesis) = write_genesis(accounts, out)?;
    let signed = transfers(&keys, txs_per_account, &genesis);
    let mut text = String::new();
    for (k, txs) in keys.iter().zip(&signed) {
        write!(text, "{}", k.address())?;
        for tx in txs {
            write!(text, " {}", hex::encode(tx.to_bytes()))?;
        }
        text.push('\n');
    }
    let transfers_path = out.join("transfers.txt");
    std::fs::write(&transfers_path, text)
        .with_context(|| format!("cannot write {}", transfers_path.display()))?;
    let flat: Vec<SignedTx> = signed.into_iter().flatten().collect();
    let (single_us, batch_us) = if flat.is_empty() {
        (0.0, 0.0)
    } else {
        signature_costs(&flat)?
    };
    Ok(serde_json::json!({
        "accounts": accounts,
        "transfers": flat.len(),
        "single_us": single_us,
        "batch_us": batch_us,
    })
    .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn benchmark_accounts_are_distinct_and_their_transfers_verify() {
        let keys: Vec<Keypair> = (0..50).map(account_key).collect();
        let mut addresses: Vec<_> = keys.iter().map(Keypair::address).collect();
        addresses.sort();
        addresses.dedup();
        assert_eq!(addresses.len(), 50);
        let txs: Vec<SignedTx> = transfers(&keys, 2, &genesis(&keys))
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(txs.len(), 100);
        let (single, batch) = signature_costs(&txs).unwrap();
        assert!(single > 0.0 && batch > 0.0);
    }

    #[test]
    fn prepare_writes_a_genesis_funding_every_account_and_one_line_per_account() {
        let dir = tempfile::tempdir().unwrap();
        let answer = run(3, 4, dir.path()).unwrap();
        let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(answer["accounts"], 3);
        assert_eq!(answer["transfers"], 12);
        let genesis = std::fs::read_to_string(dir.path().join("genesis.json")).unwrap();
        let lines = std::fs::read_to_string(dir.path().join("transfers.txt")).unwrap();
        let lines: Vec<&str> = lines.lines().collect();
        assert_eq!(lines.len(), 3);
        for (i, line) in lines.iter().enumerate() {
            let fields: Vec<&str> = line.split(' ').collect();
            assert_eq!(fields.len(), 5, "an address and four transactions");
            assert_eq!(fields[0], account_key(i).address().to_string());
            assert!(genesis.contains(fields[0]), "account {i} is funded");
        }
    }
}

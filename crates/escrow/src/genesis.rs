//! The genesis: a network's name, rules, block reward and initial balances.
//!
//! [`Genesis::block`] turns it into the genesis block: a [`Tx::Network`]
//! first, then one [`Tx::Allocation`] per balance, so the genesis hash (the
//! network id every transaction names) commits to all of it. Two genesis
//! files that differ in anything are two networks.
//!
//! A genesis file is JSON:
//!
//! ```json
//! {
//!   "name": "my-net",
//!   "timestamp_ms": 1767225600000,
//!   "params": { "initial_target_bits": 16, "retarget": null, "max_future_ms": 7200000,
//!               "median_time_span": 11, "max_block_bytes": 1048576, "max_block_txs": 10000 },
//!   "coinbase_reward": 50,
//!   "allocations": [ { "to": "<64 hex digits>", "amount": 1000000 } ]
//! }
//! ```

use std::path::{Path, PathBuf};

use chain_core::{Block, BlockHash, ChainParams, HEADER_VERSION, Header, Transaction, merkle_root};
use serde::{Deserialize, Serialize};

use crate::account::Address;
use crate::amount::Amount;
use crate::dev;
use crate::ledger::Ledger;
use crate::tx::Tx;

/// The dev network's genesis timestamp: 2026-01-01T00:00:00Z.
pub const DEV_GENESIS_TIME_MS: u64 = 1_767_225_600_000;

/// Each dev account's starting balance.
pub const DEV_BALANCE: u64 = 1_000_000;

/// The dev network's block reward.
pub const DEV_REWARD: u64 = 50;

/// An initial balance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    /// Who.
    pub to: Address,
    /// How much.
    pub amount: Amount,
}

/// A network's genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    /// A human-readable name.
    pub name: String,
    /// The genesis block's timestamp.
    pub timestamp_ms: u64,
    /// The consensus rules.
    pub params: ChainParams,
    /// Coins each block's coinbase creates.
    pub coinbase_reward: Amount,
    /// Initial balances.
    pub allocations: Vec<Allocation>,
}

/// Why a genesis file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum GenesisFileError {
    /// Reading failed.
    #[error("genesis file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The JSON is not a genesis.
    #[error("genesis file {path} is not a valid genesis: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl Genesis {
    /// The dev network: every dev account holds [`DEV_BALANCE`], the reward
    /// is [`DEV_REWARD`], and the target is chain-core's dev default (16
    /// leading zero bits, the notebook's `0000`).
    pub fn dev() -> Genesis {
        Genesis {
            name: "escrow-chain dev".to_string(),
            timestamp_ms: DEV_GENESIS_TIME_MS,
            params: ChainParams::dev(),
            coinbase_reward: Amount::new(DEV_REWARD),
            allocations: dev::DEV_ACCOUNTS
                .iter()
                .filter_map(|name| dev::address(name))
                .map(|to| Allocation {
                    to,
                    amount: Amount::new(DEV_BALANCE),
                })
                .collect(),
        }
    }

    /// Reads a genesis from a JSON file.
    ///
    /// # Errors
    ///
    /// [`GenesisFileError`] naming the file and what is wrong with it.
    pub fn load(path: &Path) -> Result<Genesis, GenesisFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| GenesisFileError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Genesis::from_json(&text).map_err(|reason| GenesisFileError::Invalid {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Reads a genesis from the text of a genesis file: what
    /// [`Genesis::load`] does once the file is read (the fuzz target
    /// `genesis` calls it directly).
    ///
    /// # Errors
    ///
    /// What is wrong with the text: JSON that is not a genesis, or a
    /// genesis that breaks a rule JSON cannot express.
    pub fn from_json(text: &str) -> Result<Genesis, String> {
        let genesis: Genesis = serde_json::from_str(text).map_err(|e| e.to_string())?;
        genesis.check()?;
        Ok(genesis)
    }

    /// The genesis as pretty JSON, the form [`Genesis::load`] reads.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks what JSON cannot: a usable target and a supply that fits.
    fn check(&self) -> Result<(), String> {
        if self.params.initial_target_bits > 255 {
            return Err(format!(
                "initial_target_bits {} is above 255",
                self.params.initial_target_bits
            ));
        }
        self.allocations
            .iter()
            .try_fold(Amount::ZERO, |acc, a| acc.checked_add(a.amount))
            .ok_or_else(|| "the allocations add up to more than u64::MAX".to_string())?;
        Ok(())
    }

    /// The genesis block.
    pub fn block(&self) -> Block<Tx> {
        let mut transactions = vec![Tx::Network {
            name: self.name.clone(),
            params: self.params.clone(),
            coinbase_reward: self.coinbase_reward,
        }];
        transactions.extend(self.allocations.iter().map(|a| Tx::Allocation {
            to: a.to,
            amount: a.amount,
        }));
        let leaves: Vec<_> = transactions.iter().map(Transaction::commitment).collect();
        Block {
            header: Header {
                version: HEADER_VERSION,
                height: 0,
                parent: BlockHash::GENESIS_PARENT,
                merkle_root: merkle_root(&leaves),
                timestamp_ms: self.timestamp_ms,
                target: self.params.pow_limit().to_compact(),
                nonce: 0,
            },
            transactions,
        }
    }

    /// The network id: the genesis block's hash.
    pub fn network_id(&self) -> BlockHash {
        self.block().hash()
    }

    /// The empty ledger for this network, to hand to `chain_core::Chain::new`
    /// with [`Genesis::block`] (which fills it).
    pub fn ledger(&self) -> Ledger {
        Ledger::new(self.network_id())
    }

    /// A ready chain at genesis.
    ///
    /// # Errors
    ///
    /// The genesis block does not apply (an allocation overflows, say).
    pub fn chain(
        &self,
    ) -> Result<chain_core::Chain<Ledger>, chain_core::tree::GenesisError<crate::ledger::LedgerError>>
    {
        chain_core::Chain::new(self.params.clone(), self.block(), self.ledger())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dev_genesis_funds_every_dev_account() {
        let g = Genesis::dev();
        let chain = g.chain().unwrap();
        for name in dev::DEV_ACCOUNTS {
            assert_eq!(
                chain.state().balance(&dev::address(name).unwrap()),
                Amount::new(DEV_BALANCE)
            );
        }
        assert_eq!(chain.state().coinbase_reward(), Amount::new(DEV_REWARD));
        assert_eq!(chain.state().issued(), Amount::new(6 * DEV_BALANCE));
        assert_eq!(chain.genesis_hash(), g.network_id());
    }

    #[test]
    fn any_change_is_another_network() {
        let a = Genesis::dev();
        let mut b = Genesis::dev();
        b.coinbase_reward = Amount::new(51);
        assert_ne!(a.network_id(), b.network_id());
        let mut c = Genesis::dev();
        c.allocations.pop();
        assert_ne!(a.network_id(), c.network_id());
    }

    #[test]
    fn files_load_and_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("genesis.json");
        std::fs::write(&path, Genesis::dev().to_json()).unwrap();
        assert_eq!(Genesis::load(&path).unwrap(), Genesis::dev());
        std::fs::write(&path, "{ \"name\": 3 }").unwrap();
        let err = Genesis::load(&path).unwrap_err();
        assert!(matches!(err, GenesisFileError::Invalid { .. }));
        assert!(err.to_string().contains("genesis.json"));
        let missing = dir.path().join("missing.json");
        assert!(matches!(
            Genesis::load(&missing),
            Err(GenesisFileError::Io { .. })
        ));
        let mut huge = Genesis::dev();
        huge.allocations[0].amount = Amount::MAX;
        std::fs::write(&path, huge.to_json()).unwrap();
        assert!(
            Genesis::load(&path)
                .unwrap_err()
                .to_string()
                .contains("u64::MAX")
        );
    }
}

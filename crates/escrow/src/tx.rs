//! Transactions: the signed kind users send, and the block transaction type.
//!
//! # A signed transaction
//!
//! [`TxBody`] is what the sender signs: their public key, their next nonce,
//! the fee they pay the miner, the network id (the genesis hash) and the
//! [`Payload`]. Its canonical bytes
//! are its postcard encoding; the signature is ed25519 over exactly those
//! bytes, and the transaction id is `blake3(those bytes)`. The signature is
//! not part of the id, so it cannot be used to give one transaction two ids.
//!
//! # One encoding
//!
//! postcard accepts trailing bytes and over-long varints, so the same
//! transaction could arrive as several byte strings. [`SignedTx::from_bytes`]
//! decodes and then re-encodes: bytes that are not exactly the canonical
//! encoding are refused ([`TxDecodeError::NonCanonical`]).
//!
//! # The block transaction
//!
//! A block carries [`Tx`]s: [`Tx::Signed`] for users' transactions,
//! [`Tx::Coinbase`] first in every block after genesis (the reward to the
//! block's miner), and in the genesis block only [`Tx::Network`] and
//! [`Tx::Allocation`], so the genesis hash, the network id, commits to the
//! network's parameters and its initial balances.

use std::fmt;

use chain_core::{BlockHash, ChainParams, Transaction, TxId};
use serde::de::{self, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::account::{Address, PublicKey};
use crate::amount::Amount;
use crate::contract::{ContractId, Party};
use crate::key_file::Keypair;
use crate::memo::Memo;

/// What a signed transaction does.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Payload {
    /// Moves `amount` from the sender to `to`.
    Transfer {
        /// The receiver.
        to: Address,
        /// How much.
        amount: Amount,
    },
    /// The sender, as buyer, locks `amount` in a new escrow contract.
    EscrowCreate {
        /// Who is paid on release.
        seller: Address,
        /// Who settles a dispute; neither buyer nor seller.
        arbiter: Address,
        /// The amount locked.
        amount: Amount,
        /// The height after which, if the seller never acted (no dispute,
        /// no refund), the buyer may take the refund.
        delivery_deadline: u64,
        /// The dispute deadline, in blocks after the dispute was raised:
        /// past it, an unresolved dispute lets the buyer take the refund.
        dispute_window: u64,
    },
    /// The buyer confirms delivery: the seller is paid.
    ConfirmDelivery {
        /// The contract.
        contract: ContractId,
    },
    /// The buyer or the seller disputes the deal; the arbiter decides.
    RaiseDispute {
        /// The contract.
        contract: ContractId,
    },
    /// The arbiter settles a dispute.
    Resolve {
        /// The contract.
        contract: ContractId,
        /// Who gets the funds.
        to: Party,
    },
    /// The funds go back to the buyer (see `docs/ESCROW.md` for who may do
    /// this, and when).
    RefundBuyer {
        /// The contract.
        contract: ContractId,
    },
    /// Moves `amount` (zero allowed) from the sender to `to`, carrying a
    /// memo of at most [`MAX_MEMO_BYTES`](crate::memo::MAX_MEMO_BYTES)
    /// bytes that consensus carries but does not read. Last of the
    /// variants, so the encodings of the others did not change when it came.
    TransferMemo {
        /// The receiver.
        to: Address,
        /// How much; may be zero (a memo alone).
        amount: Amount,
        /// The bytes carried.
        memo: Memo,
    },
}

impl Payload {
    /// A short name for logs and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Payload::Transfer { .. } => "transfer",
            Payload::EscrowCreate { .. } => "escrow-create",
            Payload::ConfirmDelivery { .. } => "confirm-delivery",
            Payload::RaiseDispute { .. } => "raise-dispute",
            Payload::Resolve { .. } => "resolve",
            Payload::RefundBuyer { .. } => "refund-buyer",
            Payload::TransferMemo { .. } => "transfer-memo",
        }
    }
}

/// What the sender signs.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TxBody {
    /// The sender's public key; the sender's address is derived from it.
    pub sender: PublicKey,
    /// The sender's next nonce: 0 for their first transaction, then one
    /// more each time. Replays and reorderings are refused.
    pub nonce: u64,
    /// What the sender pays the miner of the block that includes the
    /// transaction, on top of what the payload moves (see [`crate::fee`]).
    pub fee: Amount,
    /// The genesis hash of the network the transaction is for.
    pub network: BlockHash,
    /// What it does.
    pub payload: Payload,
}

impl TxBody {
    /// The canonical bytes: what is signed and hashed.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(self)
    }

    /// The sender's address.
    pub fn sender_address(&self) -> Address {
        self.sender.address()
    }
}

/// An ed25519 signature, 64 bytes, encoded as a fixed 64-byte tuple.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; 64]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}…)", hex::encode(&self.0[..8]))
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            return serializer.serialize_str(&hex::encode(self.0));
        }
        let mut tuple = serializer.serialize_tuple(64)?;
        for b in &self.0 {
            tuple.serialize_element(b)?;
        }
        tuple.end()
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SigVisitor;
        impl<'de> Visitor<'de> for SigVisitor {
            type Value = Signature;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("64 signature bytes")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Signature, A::Error> {
                let mut bytes = [0u8; 64];
                for (i, b) in bytes.iter_mut().enumerate() {
                    *b = seq
                        .next_element()?
                        .ok_or_else(|| de::Error::invalid_length(i, &self))?;
                }
                Ok(Signature(bytes))
            }
        }
        if deserializer.is_human_readable() {
            let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
            let mut bytes = [0u8; 64];
            hex::decode_to_slice(s.as_ref(), &mut bytes).map_err(de::Error::custom)?;
            Ok(Signature(bytes))
        } else {
            deserializer.deserialize_tuple(64, SigVisitor)
        }
    }
}

/// A transaction signed by its sender.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SignedTx {
    /// What was signed.
    pub body: TxBody,
    /// ed25519 over `body.to_bytes()`.
    pub signature: Signature,
}

/// Why bytes are not a signed transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxDecodeError {
    /// postcard could not decode them.
    #[error("malformed transaction: {0}")]
    Malformed(String),
    /// Bytes follow the transaction.
    #[error("{0} trailing bytes after the transaction")]
    TrailingBytes(usize),
    /// The bytes decode, but are not the canonical encoding of what they
    /// decode to: refused rather than given a second id.
    #[error("transaction bytes are not the canonical encoding")]
    NonCanonical,
}

impl SignedTx {
    /// Signs `payload` as `keypair`'s transaction number `nonce` on
    /// `network`, paying `fee` to the miner that includes it.
    pub fn sign(
        keypair: &Keypair,
        nonce: u64,
        fee: Amount,
        network: BlockHash,
        payload: Payload,
    ) -> SignedTx {
        let body = TxBody {
            sender: keypair.public(),
            nonce,
            fee,
            network,
            payload,
        };
        let signature = Signature(keypair.sign(&body.to_bytes()));
        SignedTx { body, signature }
    }

    /// Signs `payload` as [`SignedTx::sign`] does, with the smallest fee
    /// that pays `rate` for the transaction's own size (which the fee's
    /// own bytes change: its varint grows with it).
    pub fn sign_at_rate(
        keypair: &Keypair,
        nonce: u64,
        rate: crate::fee::FeeRate,
        network: BlockHash,
        payload: Payload,
    ) -> SignedTx {
        let mut fee = Amount::ZERO;
        loop {
            let tx = SignedTx::sign(keypair, nonce, fee, network, payload.clone());
            let needed = rate.fee_for(tx.size());
            // The fee only grows, and its varint by at most 10 bytes in
            // all, so this ends after a few rounds.
            if needed <= fee {
                return tx;
            }
            fee = needed;
        }
    }

    /// The id: blake3 of the body's canonical bytes.
    pub fn id(&self) -> TxId {
        TxId::from_bytes(*blake3::hash(&self.body.to_bytes()).as_bytes())
    }

    /// The canonical bytes of the whole signed transaction.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes a signed transaction, refusing trailing bytes and
    /// non-canonical encodings. The signature is not checked here.
    ///
    /// # Errors
    ///
    /// [`TxDecodeError`].
    pub fn from_bytes(bytes: &[u8]) -> Result<SignedTx, TxDecodeError> {
        let (tx, rest) = postcard::take_from_bytes::<SignedTx>(bytes)
            .map_err(|e| TxDecodeError::Malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(TxDecodeError::TrailingBytes(rest.len()));
        }
        if tx.to_bytes() != bytes {
            return Err(TxDecodeError::NonCanonical);
        }
        Ok(tx)
    }

    /// The sender's address.
    pub fn sender(&self) -> Address {
        self.body.sender_address()
    }

    /// The fee it pays the miner.
    pub fn fee(&self) -> Amount {
        self.body.fee
    }

    /// Its size in bytes: the length of its canonical encoding, signature
    /// included, which is what fee rates are counted per
    /// ([`crate::fee::FeeRate`]).
    pub fn size(&self) -> usize {
        postcard::serialize_with_flavor(self, postcard::ser_flavors::Size::default())
            .unwrap_or(usize::MAX)
    }

    /// Its fee and size, for fee-rate comparisons.
    pub fn package(&self) -> crate::fee::Package {
        crate::fee::Package::of(self.fee(), self.size())
    }
}

/// A transaction as blocks carry it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Tx {
    /// A user's signed transaction.
    Signed(SignedTx),
    /// The block reward to the block's miner: first in every block after
    /// genesis, exactly once. The height makes every coinbase's id unique.
    Coinbase {
        /// Who mined the block.
        to: Address,
        /// The block's height.
        height: u64,
    },
    /// Genesis only, first: the network's name, its consensus rules and its
    /// block reward, so the genesis hash commits to them.
    Network {
        /// A human-readable name.
        name: String,
        /// The consensus rules.
        params: ChainParams,
        /// Coins created by each block's coinbase.
        coinbase_reward: Amount,
    },
    /// Genesis only: an initial balance.
    Allocation {
        /// Who receives it.
        to: Address,
        /// How much.
        amount: Amount,
    },
}

/// The context of a signed transaction's merkle commitment: its whole
/// canonical bytes, signature included.
const SIGNED_COMMITMENT_CONTEXT: &str = "escrow-chain 2026 signed tx commitment";

/// The context for ids of transactions that are not signed.
const UNSIGNED_ID_CONTEXT: &str = "escrow-chain 2026 unsigned tx id";

impl Tx {
    /// The canonical bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(self)
    }

    /// A short name.
    pub fn kind(&self) -> &'static str {
        match self {
            Tx::Signed(s) => s.body.payload.kind(),
            Tx::Coinbase { .. } => "coinbase",
            Tx::Network { .. } => "network",
            Tx::Allocation { .. } => "allocation",
        }
    }
}

/// The postcard bytes of a transaction or a body, into a vector sized
/// for a transfer from the start (these are encoded several times per
/// transaction and block: ids, commitments, signatures, the store). The
/// types have no maps and no unsized data: postcard cannot fail on them.
fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_extend(value, Vec::with_capacity(ENCODE_CAPACITY)).unwrap_or_default()
}

/// Bytes reserved by [`encode`]: a signed transfer's encoding fits.
const ENCODE_CAPACITY: usize = 192;

/// The key of signed commitments ([`SIGNED_COMMITMENT_CONTEXT`]), derived
/// once.
fn signed_commitment_key() -> &'static [u8; 32] {
    static KEY: std::sync::LazyLock<[u8; 32]> =
        std::sync::LazyLock::new(|| blake3::derive_key(SIGNED_COMMITMENT_CONTEXT, b""));
    &KEY
}

/// The key of unsigned ids ([`UNSIGNED_ID_CONTEXT`]), derived once.
fn unsigned_id_key() -> &'static [u8; 32] {
    static KEY: std::sync::LazyLock<[u8; 32]> =
        std::sync::LazyLock::new(|| blake3::derive_key(UNSIGNED_ID_CONTEXT, b""));
    &KEY
}

impl Transaction for Tx {
    fn id(&self) -> TxId {
        match self {
            Tx::Signed(s) => s.id(),
            other => TxId::from_bytes(
                *blake3::keyed_hash(unsigned_id_key(), &other.to_bytes()).as_bytes(),
            ),
        }
    }

    /// A signed transaction's commitment covers its signature too (the id
    /// leaves it out); other kinds commit to their id.
    fn commitment(&self) -> TxId {
        match self {
            Tx::Signed(s) => TxId::from_bytes(
                *blake3::keyed_hash(signed_commitment_key(), &s.to_bytes()).as_bytes(),
            ),
            other => other.id(),
        }
    }

    fn encoded_len(&self) -> usize {
        // Counted, not encoded: no allocation.
        postcard::serialize_with_flavor(self, postcard::ser_flavors::Size::default())
            .unwrap_or(usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dev;

    fn sample() -> SignedTx {
        let alice = dev::keypair("alice").unwrap();
        SignedTx::sign(
            &alice,
            1,
            Amount::new(2),
            BlockHash::from_bytes([9; 32]),
            Payload::Transfer {
                to: dev::address("bob").unwrap(),
                amount: Amount::new(300),
            },
        )
    }

    #[test]
    fn round_trip_and_verify() {
        let tx = sample();
        assert!(tx.verify());
        let bytes = tx.to_bytes();
        assert_eq!(SignedTx::from_bytes(&bytes).unwrap(), tx);
        assert_eq!(tx.sender(), dev::address("alice").unwrap());
        assert_eq!(tx.fee(), Amount::new(2));
        assert_eq!(tx.size(), bytes.len());
    }

    #[test]
    fn signing_at_a_rate_pays_it_for_the_size_with_the_fee() {
        let alice = dev::keypair("alice").unwrap();
        for per_kb in [0, 1, 100, 777, 10_000, 1 << 40] {
            let rate = crate::fee::FeeRate::per_kb(per_kb);
            let tx = SignedTx::sign_at_rate(
                &alice,
                3,
                rate,
                BlockHash::from_bytes([9; 32]),
                Payload::Transfer {
                    to: dev::address("bob").unwrap(),
                    amount: Amount::new(300),
                },
            );
            assert_eq!(tx.fee(), rate.fee_for(tx.size()), "the least that pays");
            assert!(tx.package().pays(rate));
            assert!(tx.verify());
        }
    }

    #[test]
    fn a_re_encoded_variant_is_refused_not_given_a_second_id() {
        let tx = sample();
        let bytes = tx.to_bytes();
        // The nonce (1) sits right after the 32-byte public key as a
        // one-byte varint (the fee follows); write it as the over-long
        // [0x81, 0x00].
        let mut padded = bytes[..32].to_vec();
        assert_eq!(bytes[32], 1);
        padded.extend_from_slice(&[0x81, 0x00]);
        padded.extend_from_slice(&bytes[33..]);
        // postcard alone accepts it as the same transaction ...
        let lenient: SignedTx = postcard::from_bytes(&padded).unwrap();
        assert_eq!(lenient, tx);
        // ... the canonical decoder does not.
        assert_eq!(
            SignedTx::from_bytes(&padded),
            Err(TxDecodeError::NonCanonical)
        );
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(
            SignedTx::from_bytes(&trailing),
            Err(TxDecodeError::TrailingBytes(1))
        );
        assert!(matches!(
            SignedTx::from_bytes(&bytes[..10]),
            Err(TxDecodeError::Malformed(_))
        ));
    }

    #[test]
    fn tampering_breaks_the_signature_and_changes_the_id() {
        let tx = sample();
        let mut forged = tx.clone();
        forged.body.payload = Payload::Transfer {
            to: dev::address("eve").unwrap(),
            amount: Amount::new(300),
        };
        assert!(!forged.verify());
        assert_ne!(forged.id(), tx.id());
        // Someone else's key over Alice's body.
        let mut wrong = tx.clone();
        wrong.body.sender = dev::keypair("eve").unwrap().public();
        assert!(!wrong.verify());
        // The signature is not part of the id.
        let mut resigned = tx.clone();
        resigned.signature = Signature([0; 64]);
        assert_eq!(resigned.id(), tx.id());
        assert!(!resigned.verify());
    }

    #[test]
    fn block_tx_ids_differ_by_kind() {
        let to = dev::address("alice").unwrap();
        let a = Tx::Coinbase { to, height: 1 };
        let b = Tx::Coinbase { to, height: 2 };
        assert_ne!(a.id(), b.id());
        assert_eq!(Tx::Signed(sample()).id(), sample().id());
        assert!(a.encoded_len() > 32);
    }
}

//! [`SignatureError`]: why the signature rule refuses a transaction, one
//! reason per step (the steps are in the parent module's docs).

/// Why a signature is refused: the first step of the rule (see the module
/// docs) that fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum SignatureError {
    /// The sender key's bytes are not a point of the curve.
    #[error("the sender key is not a point of the curve")]
    InvalidKey,
    /// The sender key is a point, but not in its canonical encoding.
    #[error("the sender key is not canonically encoded")]
    NonCanonicalKey,
    /// The sender key has small order: anyone could sign for it.
    #[error("the sender key has small order (a weak key anyone can sign for)")]
    WeakKey,
    /// The signature's `S` is not below the group order.
    #[error("the signature's S is not below the group order (non-canonical)")]
    NonCanonicalS,
    /// The verification equation does not hold.
    #[error("the signature does not verify")]
    Invalid,
}

impl SignatureError {
    /// The stable code the HTTP API reports for this reason.
    pub fn code(self) -> &'static str {
        match self {
            SignatureError::InvalidKey => "invalid_key",
            SignatureError::NonCanonicalKey => "non_canonical_key",
            SignatureError::WeakKey => "weak_key",
            SignatureError::NonCanonicalS => "non_canonical_signature",
            SignatureError::Invalid => "bad_signature",
        }
    }
}

//! Steps 1 to 3 of the signature rule (see the parent module's docs): the
//! checks on the sender key alone, which the key cache remembers passing.

use curve25519_dalek::edwards::CompressedEdwardsY;

use super::error::SignatureError;
use crate::account::PublicKey;

/// Steps 1 to 3 of the rule: whether `key` may send transactions.
///
/// # Errors
///
/// [`SignatureError::InvalidKey`], [`SignatureError::NonCanonicalKey`] or
/// [`SignatureError::WeakKey`].
pub fn check_key(key: &PublicKey) -> Result<(), SignatureError> {
    let compressed = CompressedEdwardsY(key.0);
    let point = compressed.decompress().ok_or(SignatureError::InvalidKey)?;
    if point.compress() != compressed {
        return Err(SignatureError::NonCanonicalKey);
    }
    if point.is_small_order() {
        return Err(SignatureError::WeakKey);
    }
    Ok(())
}

//! The merkle root of a block's transactions (blake3), over each
//! transaction's commitment ([`crate::Transaction::commitment`]: its id, or
//! for a signed transaction a hash that covers the signature too).
//!
//! # Rules
//!
//! - Each leaf is `blake3_keyed(LEAF_KEY, commitment)`; each inner node is
//!   `blake3_keyed(NODE_KEY, left || right)`. The two keys are derived from
//!   different context strings, so a leaf can never be read as an inner node
//!   or the other way round.
//! - **Odd-leaf rule:** when a level has an odd number of nodes, the last one
//!   is carried up to the next level unchanged. It is *not* paired with a copy
//!   of itself, as Bitcoin does: that rule gives `[a, b, c]` and `[a, b, c, c]`
//!   the same root (CVE-2012-2459), so a valid block could be mutated into an
//!   invalid one with the same hash.
//! - The root is `blake3_keyed(ROOT_KEY, count as u64 LE || top)`, where `top`
//!   is the last node standing (all zeros for an empty list): committing to
//!   the count closes any remaining length ambiguity.

use std::sync::LazyLock;

use crate::hash::{MerkleRoot, TxId};

static LEAF_KEY: LazyLock<[u8; 32]> =
    LazyLock::new(|| blake3::derive_key("escrow-chain 2026 merkle leaf", b""));
static NODE_KEY: LazyLock<[u8; 32]> =
    LazyLock::new(|| blake3::derive_key("escrow-chain 2026 merkle node", b""));
static ROOT_KEY: LazyLock<[u8; 32]> =
    LazyLock::new(|| blake3::derive_key("escrow-chain 2026 merkle root", b""));

fn node(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_keyed(&NODE_KEY);
    hasher.update(left);
    hasher.update(right);
    *hasher.finalize().as_bytes()
}

/// The merkle root of these leaves (a block's transaction commitments), in
/// order (see the module docs for the rules).
pub fn merkle_root(ids: &[TxId]) -> MerkleRoot {
    let mut level: Vec<[u8; 32]> = ids
        .iter()
        .map(|id| *blake3::keyed_hash(&LEAF_KEY, id.as_bytes()).as_bytes())
        .collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [left, right] => node(left, right),
                // The odd node out is carried up unchanged.
                [single] => *single,
                _ => unreachable!("chunks(2) yields one or two items"),
            })
            .collect();
    }
    let top = level.first().copied().unwrap_or([0; 32]);
    let mut hasher = blake3::Hasher::new_keyed(&ROOT_KEY);
    hasher.update(&(ids.len() as u64).to_le_bytes());
    hasher.update(&top);
    MerkleRoot::from_bytes(*hasher.finalize().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> TxId {
        TxId::from_bytes([n; 32])
    }

    /// Bitcoin's rule, kept here only to show the ambiguity ours avoids.
    fn duplicate_last_root(ids: &[TxId]) -> [u8; 32] {
        let mut level: Vec<[u8; 32]> = ids.iter().map(|i| i.to_bytes()).collect();
        while level.len() > 1 {
            if level.len() % 2 == 1 {
                let last = *level.last().unwrap();
                level.push(last);
            }
            level = level.chunks(2).map(|p| node(&p[0], &p[1])).collect();
        }
        level[0]
    }

    #[test]
    fn duplicated_last_leaf_does_not_collide() {
        let three = [id(1), id(2), id(3)];
        let four = [id(1), id(2), id(3), id(3)];
        // The duplicate-the-last-leaf rule is ambiguous ...
        assert_eq!(duplicate_last_root(&three), duplicate_last_root(&four));
        // ... ours is not.
        assert_ne!(merkle_root(&three), merkle_root(&four));
        let five = [id(1), id(2), id(3), id(4), id(5)];
        let six = [id(1), id(2), id(3), id(4), id(5), id(5)];
        assert_ne!(merkle_root(&five), merkle_root(&six));
    }

    #[test]
    fn order_and_content_matter() {
        assert_ne!(merkle_root(&[id(1), id(2)]), merkle_root(&[id(2), id(1)]));
        assert_ne!(merkle_root(&[id(1)]), merkle_root(&[id(2)]));
        assert_ne!(merkle_root(&[]), merkle_root(&[TxId::ZERO]));
    }

    #[test]
    fn a_leaf_is_not_an_inner_node() {
        // Two transactions versus one whose id happens to be their parent
        // node: different roots, because leaves and nodes use different keys
        // and the count is committed.
        let a = *blake3::keyed_hash(&LEAF_KEY, id(1).as_bytes()).as_bytes();
        let b = *blake3::keyed_hash(&LEAF_KEY, id(2).as_bytes()).as_bytes();
        let fake = TxId::from_bytes(node(&a, &b));
        assert_ne!(merkle_root(&[id(1), id(2)]), merkle_root(&[fake]));
    }

    #[test]
    fn golden_roots() {
        // A change to the rules breaks these, on purpose.
        assert_eq!(
            merkle_root(&[]).to_string(),
            "904a73d23a68ce91abb2e4312bda24070612c6dfa390ad0d9dc626a2a7280ee3"
        );
        assert_eq!(
            merkle_root(&[id(1), id(2), id(3)]).to_string(),
            "fa028652e63585c5fdf3a41f6259743a7e2eaa31973857ec984f3e19f0a9db3e"
        );
    }
}

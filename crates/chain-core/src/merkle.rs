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

/// The leaves of these commitments: each keyed with [`LEAF_KEY`].
fn leaves(ids: &[TxId]) -> Vec<[u8; 32]> {
    ids.iter()
        .map(|id| *blake3::keyed_hash(&LEAF_KEY, id.as_bytes()).as_bytes())
        .collect()
}

/// The level above `level`: pairs hashed in order, the odd node out
/// carried up unchanged.
fn next_level(level: &[[u8; 32]]) -> Vec<[u8; 32]> {
    level
        .chunks(2)
        .map(|pair| match pair {
            [left, right] => node(left, right),
            [single] => *single,
            _ => unreachable!("chunks(2) yields one or two items"),
        })
        .collect()
}

/// The merkle root of these leaves (a block's transaction commitments), in
/// order (see the module docs for the rules).
pub fn merkle_root(ids: &[TxId]) -> MerkleRoot {
    let mut level = leaves(ids);
    while level.len() > 1 {
        level = next_level(&level);
    }
    let top = level.first().copied().unwrap_or([0; 32]);
    let mut hasher = blake3::Hasher::new_keyed(&ROOT_KEY);
    hasher.update(&(ids.len() as u64).to_le_bytes());
    hasher.update(&top);
    MerkleRoot::from_bytes(*hasher.finalize().as_bytes())
}

/// The path from one leaf to the root: what a light client needs, besides
/// the leaf's commitment and the block's header, to check that the leaf is
/// in the block (`docs/PROTOCOL.md`, "Inclusion proofs").
///
/// The shape of the tree follows from `count`, so `siblings` holds only the
/// nodes the path is paired with, bottom up: none at a level where the
/// path's node is the odd one out and is carried up unchanged.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MerkleBranch {
    /// The leaf's position in the block (0 is the coinbase).
    pub index: u64,
    /// How many leaves the block has.
    pub count: u64,
    /// The nodes the path is paired with, from the leaves up.
    pub siblings: Vec<[u8; 32]>,
}

/// Why a [`MerkleBranch`] gives no root.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BranchError {
    /// `index` is not below `count`.
    #[error("leaf {index} of a block of {count} transactions does not exist")]
    NoSuchLeaf {
        /// The position given.
        index: u64,
        /// The leaves.
        count: u64,
    },
    /// The branch has more or fewer siblings than the tree's shape needs.
    #[error("the branch has {got} siblings; a leaf at {index} of {count} needs {needed}")]
    WrongLength {
        /// The position.
        index: u64,
        /// The leaves.
        count: u64,
        /// The siblings the shape needs.
        needed: usize,
        /// The siblings given.
        got: usize,
    },
}

/// The branch of leaf `index` among `ids`, or `None` past the end.
pub fn merkle_branch(ids: &[TxId], index: usize) -> Option<MerkleBranch> {
    if index >= ids.len() {
        return None;
    }
    let mut level = leaves(ids);
    let mut at = index;
    let mut siblings = Vec::new();
    while level.len() > 1 {
        let carried = at == level.len() - 1 && level.len() % 2 == 1;
        if !carried {
            siblings.push(level[at ^ 1]);
        }
        level = next_level(&level);
        at /= 2;
    }
    Some(MerkleBranch {
        index: index as u64,
        count: ids.len() as u64,
        siblings,
    })
}

impl MerkleBranch {
    /// The root a block whose leaf `index` is `commitment` has, if this
    /// branch is its path; compare it with the header's `merkle_root`.
    ///
    /// # Errors
    ///
    /// [`BranchError`] if the index is past the count, or the branch's
    /// length does not fit the tree's shape.
    pub fn root_for(&self, commitment: &TxId) -> Result<MerkleRoot, BranchError> {
        let (index, count) = (self.index, self.count);
        if index >= count {
            return Err(BranchError::NoSuchLeaf { index, count });
        }
        let mut needed = 0;
        let (mut at, mut width) = (index, count);
        while width > 1 {
            if !(at == width - 1 && width % 2 == 1) {
                needed += 1;
            }
            at /= 2;
            width = width.div_ceil(2);
        }
        if needed != self.siblings.len() {
            return Err(BranchError::WrongLength {
                index,
                count,
                needed,
                got: self.siblings.len(),
            });
        }
        let mut current = *blake3::keyed_hash(&LEAF_KEY, commitment.as_bytes()).as_bytes();
        let mut siblings = self.siblings.iter();
        let (mut at, mut width) = (index, count);
        while width > 1 {
            let carried = at == width - 1 && width % 2 == 1;
            if !carried && let Some(sibling) = siblings.next() {
                current = if at % 2 == 0 {
                    node(&current, sibling)
                } else {
                    node(sibling, &current)
                };
            }
            at /= 2;
            width = width.div_ceil(2);
        }
        let mut hasher = blake3::Hasher::new_keyed(&ROOT_KEY);
        hasher.update(&count.to_le_bytes());
        hasher.update(&current);
        Ok(MerkleRoot::from_bytes(*hasher.finalize().as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_leaf_of_every_small_tree_has_a_branch_to_the_root() {
        for n in 1..=33u8 {
            let ids: Vec<TxId> = (0..n).map(id).collect();
            let root = merkle_root(&ids);
            for i in 0..ids.len() {
                let branch = merkle_branch(&ids, i).unwrap();
                assert_eq!(branch.root_for(&ids[i]), Ok(root), "leaf {i} of {n}");
                // Another leaf's commitment, or this one at another index,
                // gives another root.
                let other = TxId::from_bytes([200; 32]);
                assert_ne!(branch.root_for(&other), Ok(root));
                if ids.len() > 1 {
                    let moved = MerkleBranch {
                        index: (branch.index + 1) % branch.count,
                        ..branch.clone()
                    };
                    assert_ne!(moved.root_for(&ids[i]), Ok(root), "leaf {i} of {n} moved");
                }
                for s in 0..branch.siblings.len() {
                    let mut bent = branch.clone();
                    bent.siblings[s][0] ^= 1;
                    assert_ne!(
                        bent.root_for(&ids[i]),
                        Ok(root),
                        "sibling {s} of leaf {i} of {n}"
                    );
                }
            }
            assert!(merkle_branch(&ids, ids.len()).is_none());
        }
    }

    #[test]
    fn a_branch_that_does_not_fit_the_shape_gives_no_root() {
        let ids: Vec<TxId> = (0..5).map(id).collect();
        let branch = merkle_branch(&ids, 2).unwrap();
        let mut longer = branch.clone();
        longer.siblings.push([0; 32]);
        assert!(matches!(
            longer.root_for(&ids[2]),
            Err(BranchError::WrongLength { .. })
        ));
        let past = MerkleBranch {
            index: 5,
            ..branch.clone()
        };
        assert!(matches!(
            past.root_for(&ids[2]),
            Err(BranchError::NoSuchLeaf { .. })
        ));
        // The same leaves counted as six (a duplicated last leaf) do not
        // give the five-leaf root.
        let six = MerkleBranch { count: 6, ..branch };
        assert_ne!(six.root_for(&ids[2]).ok(), Some(merkle_root(&ids)));
    }

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

//! The RFC 9162 (Certificate Transparency v2, section 2.1) Merkle tree.
//!
//! Written from the RFC's definitions rather than taken from a Merkle crate, because the exact
//! tree shape, the 0x00/0x01 domain-separation prefixes and the proof formats are what let an
//! auditor with any other RFC 9162 implementation check a MedLedger root. The hash itself is
//! SHA-256 from `sha2`.
//!
//! [`MerkleTree`] keeps every complete, aligned power-of-two subtree (level `i` holds
//! `len >> i` hashes), which is about two hashes per leaf. Any node of the tree for *any* earlier
//! size is either one of those stored hashes or a right-edge node that is the right fold of at
//! most 64 stored ones, so roots, inclusion proofs and consistency proofs for every size up to
//! `len` cost O(log² n) hashes or less and never O(n).
//!
//! The proofs themselves are [`CompleteSubtrees`]'s, so a tree kept elsewhere (the chain's
//! block history, on disk) proves exactly as this one does.

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::hash::{Digest, sha256};

/// Longest audit or consistency path a verifier accepts.
///
/// An inclusion path for a tree of at most 2^64 leaves has at most 64 hashes and a consistency
/// path at most 2·64, so anything longer is malformed; the bound stops a hostile proof from
/// making a verifier hash without limit.
pub const MAX_PROOF_HASHES: usize = 128;

/// RFC 9162 prefix for leaf hashes, so a leaf can never be passed off as an interior node.
const LEAF_PREFIX: u8 = 0x00;
/// RFC 9162 prefix for interior nodes.
const NODE_PREFIX: u8 = 0x01;

/// The RFC 9162 leaf hash: SHA-256(0x00 || data).
#[must_use]
pub fn leaf_hash(data: &[u8]) -> Digest {
    let mut hasher = sha2::Sha256::new();
    hasher.update([LEAF_PREFIX]);
    hasher.update(data);
    Digest(hasher.finalize().into())
}

/// The RFC 9162 interior node hash: SHA-256(0x01 || left || right).
#[must_use]
pub fn node_hash(left: &Digest, right: &Digest) -> Digest {
    // One 65-byte buffer and one hash call: this is the hot path of every proof.
    let mut input = [0u8; 1 + 2 * Digest::LEN];
    input[0] = NODE_PREFIX;
    input[1..=Digest::LEN].copy_from_slice(left.as_bytes());
    input[1 + Digest::LEN..].copy_from_slice(right.as_bytes());
    sha256(&input)
}

/// The root of the empty tree: SHA-256 of the empty string, as RFC 9162 defines MTH({}).
#[must_use]
pub fn empty_root() -> Digest {
    sha256(&[])
}

/// MTH over entries that are already leaf hashes (callers pass [`leaf_hash`] values).
///
/// O(n) hashes and O(log n) memory: a stack of complete subtrees, merged as they fill, then
/// folded from the right, which is exactly the RFC's split at the largest power of two.
#[must_use]
pub fn root_of(leaf_hashes: &[Digest]) -> Digest {
    // (height, hash) of complete subtrees, strictly decreasing heights from bottom to top.
    let mut stack: Vec<(u32, Digest)> = Vec::with_capacity(64);
    for leaf in leaf_hashes {
        let mut height = 0;
        let mut hash = *leaf;
        while let Some(&(top_height, top_hash)) = stack.last() {
            if top_height != height {
                break;
            }
            stack.pop();
            hash = node_hash(&top_hash, &hash);
            height += 1;
        }
        stack.push((height, hash));
    }
    let Some(&(_, mut root)) = stack.last() else {
        return empty_root();
    };
    for (_, left) in stack.iter().rev().skip(1) {
        root = node_hash(left, &root);
    }
    root
}

/// Why a proof could not be produced or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not below the tree size.
    #[error("leaf index {leaf_index} is out of range for a tree of {tree_size} leaves")]
    LeafIndexOutOfRange {
        /// The index asked about.
        leaf_index: u64,
        /// The tree size it was asked about in.
        tree_size: u64,
    },
    /// A proof was requested for a tree size larger than the tree holds.
    #[error("tree size {tree_size} is out of range: the tree holds {leaf_count} leaves")]
    TreeSizeOutOfRange {
        /// The size asked for.
        tree_size: u64,
        /// The number of leaves in the tree.
        leaf_count: u64,
    },
    /// Consistency needs 0 < first ≤ second (every tree extends the empty one, so there is
    /// nothing to prove from size 0).
    #[error("no consistency proof from tree size {first_size} to {second_size}: need 0 < first <= second")]
    InvalidConsistencySizes {
        /// The older tree size.
        first_size: u64,
        /// The newer tree size.
        second_size: u64,
    },
    /// The path is longer than any valid proof can be.
    #[error("proof path has {hash_count} hashes; no valid proof has more than {MAX_PROOF_HASHES}")]
    PathOverLimit {
        /// Number of hashes in the path.
        hash_count: usize,
    },
    /// The path does not have the number of hashes the tree sizes call for.
    #[error("proof path has {actual_hashes} hashes but these tree sizes call for {expected_hashes}")]
    WrongPathLength {
        /// Hashes the sizes call for.
        expected_hashes: usize,
        /// Hashes the path has.
        actual_hashes: usize,
    },
    /// The inclusion path leads to a different root.
    #[error("inclusion proof leads to root {computed}, not {expected}")]
    RootMismatch {
        /// Root rebuilt from the leaf and the path.
        computed: Digest,
        /// Root the proof was checked against.
        expected: Digest,
    },
    /// The consistency path rebuilds a different root for the older tree.
    #[error("consistency proof leads to first root {computed}, not {expected}")]
    FirstRootMismatch {
        /// Older root rebuilt from the path.
        computed: Digest,
        /// Older root the proof was checked against.
        expected: Digest,
    },
    /// The consistency path rebuilds a different root for the newer tree.
    #[error("consistency proof leads to second root {computed}, not {expected}")]
    SecondRootMismatch {
        /// Newer root rebuilt from the path.
        computed: Digest,
        /// Newer root the proof was checked against.
        expected: Digest,
    },
}

/// The subtrees that appending leaf `leaf_index` (hash `leaf`) completes, bottom up, as
/// `(height, position, root)`: the leaf itself at height 0, then one subtree per trailing one
/// bit of the index, each hashed from its left half `left(height, position)`, a subtree
/// completed earlier. Trees that keep their complete subtrees elsewhere (a node's block
/// history, on disk) append exactly as [`MerkleTree`] does.
///
/// # Errors
/// The first error `left` returns.
pub fn completed_subtrees<E>(
    leaf_index: u64,
    leaf: Digest,
    mut left: impl FnMut(u32, u64) -> Result<Digest, E>,
) -> Result<Vec<(u32, u64, Digest)>, E> {
    let (mut height, mut position, mut root) = (0, leaf_index, leaf);
    let mut completed = vec![(height, position, root)];
    while position & 1 == 1 {
        root = node_hash(&left(height, position - 1)?, &root);
        height += 1;
        position >>= 1;
        completed.push((height, position, root));
    }
    Ok(completed)
}

/// An append-only RFC 9162 Merkle tree over leaf hashes that can prove against any earlier size.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct MerkleTree {
    /// `levels[i]` holds the roots of the complete subtrees of 2^i leaves, left to right:
    /// `levels[i].len() == len >> i`. Level 0 is the leaf hashes.
    levels: Vec<Vec<Digest>>,
}

impl MerkleTree {
    /// An empty tree.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A tree holding `leaf_hashes` in order.
    pub fn from_leaf_hashes(leaf_hashes: impl IntoIterator<Item = Digest>) -> Self {
        let mut tree = Self::new();
        for leaf in leaf_hashes {
            tree.push(leaf);
        }
        tree
    }

    /// Appends one leaf hash (a [`leaf_hash`] value), completing subtrees as they fill.
    pub fn push(&mut self, leaf_hash: Digest) {
        let tree = &*self;
        let Ok(completed) = completed_subtrees(self.len(), leaf_hash, |height, position| {
            Ok::<_, std::convert::Infallible>(tree.complete_subtree(height, position))
        });
        for (height, _, root) in completed {
            let level = usize::try_from(height).expect("heights are below 65");
            if level == self.levels.len() {
                self.levels.push(Vec::new());
            }
            self.levels[level].push(root);
        }
        debug_assert!(self.levels_are_consistent());
    }

    /// Number of leaves.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.levels.first().map_or(0, |leaves| leaves.len() as u64)
    }

    /// Whether the tree has no leaves.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The leaf hash at `index`, if there is one.
    #[must_use]
    pub fn leaf(&self, index: u64) -> Option<Digest> {
        let index = usize::try_from(index).ok()?;
        self.levels.first()?.get(index).copied()
    }

    /// Every level holds `len >> level` nodes and none is left empty at the top.
    fn levels_are_consistent(&self) -> bool {
        let leaf_count = self.len();
        self.levels.iter().enumerate().all(|(level, nodes)| nodes.len() as u64 == leaf_count >> level)
            && self.levels.last().is_none_or(|top| !top.is_empty())
    }
}

impl std::fmt::Debug for MerkleTree {
    // A million leaf hashes are no use in a log line; the size and root identify the tree.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MerkleTree").field("len", &self.len()).field("root", &self.root()).finish()
    }
}

impl CompleteSubtrees for MerkleTree {
    fn leaf_count(&self) -> u64 {
        self.len()
    }

    fn complete_subtree(&self, height: u32, position: u64) -> Digest {
        let level = usize::try_from(height).expect("heights are below 64");
        let position = usize::try_from(position).expect("positions index an in-memory list");
        *self.levels[level].get(position).expect("callers ask only for stored complete subtrees")
    }
}

/// An append-only RFC 9162 tree that knows the root of each of its complete, aligned
/// power-of-two subtrees, wherever it keeps them ([`MerkleTree`] in memory, a node's block
/// history on disk). Roots and proofs for every earlier size follow from those alone.
pub trait CompleteSubtrees {
    /// Number of leaves.
    fn leaf_count(&self) -> u64;

    /// The root of the complete subtree of 2^`height` leaves starting at leaf
    /// `position << height`. Callers ask only for subtrees inside the tree:
    /// `(position + 1) << height <= leaf_count()`.
    fn complete_subtree(&self, height: u32, position: u64) -> Digest;

    /// The root of the whole tree.
    fn root(&self) -> Digest {
        match self.leaf_count() {
            0 => empty_root(),
            size => subtree_root(self, 0, size),
        }
    }

    /// The root the tree had when it held `size` leaves.
    fn root_at(&self, size: u64) -> Result<Digest, ProofError> {
        check_size(self, size)?;
        Ok(match size {
            0 => empty_root(),
            size => subtree_root(self, 0, size),
        })
    }

    /// RFC 9162 §2.1.3.1 `PATH(leaf_index, D[0:tree_size])`: the audit path, leaf level first.
    fn inclusion_proof(&self, leaf_index: u64, tree_size: u64) -> Result<InclusionProof, ProofError> {
        check_size(self, tree_size)?;
        if leaf_index >= tree_size {
            return Err(ProofError::LeafIndexOutOfRange { leaf_index, tree_size });
        }
        // Walk the RFC's recursion top-down without recursing; the sibling found at each split
        // is one path element, and the RFC lists them bottom-up, hence the final reverse.
        let mut audit_path = Vec::with_capacity(64);
        let (mut start, mut end) = (0, tree_size);
        while end - start > 1 {
            let middle = start + largest_power_of_two_below(end - start);
            if leaf_index < middle {
                audit_path.push(subtree_root(self, middle, end));
                end = middle;
            } else {
                audit_path.push(subtree_root(self, start, middle));
                start = middle;
            }
        }
        audit_path.reverse();
        Ok(InclusionProof { leaf_index, tree_size, audit_path })
    }

    /// RFC 9162 §2.1.4.1 `PROOF(first_size, D[0:second_size])`; empty when the sizes are equal.
    fn consistency_proof(&self, first_size: u64, second_size: u64) -> Result<ConsistencyProof, ProofError> {
        check_size(self, second_size)?;
        if first_size == 0 || first_size > second_size {
            return Err(ProofError::InvalidConsistencySizes { first_size, second_size });
        }
        // SUBPROOF(m, D[start:end], b) unrolled: `first_root_is_known` is the RFC's `b`, true
        // while the subtree that ends at `first_size` is the whole first tree, whose root the
        // verifier already has. Elements are found top-down and listed bottom-up.
        let mut path = Vec::with_capacity(2 * 64);
        let (mut start, mut end) = (0, second_size);
        let mut first_root_is_known = true;
        while first_size != end {
            let middle = start + largest_power_of_two_below(end - start);
            if first_size <= middle {
                path.push(subtree_root(self, middle, end));
                end = middle;
            } else {
                path.push(subtree_root(self, start, middle));
                start = middle;
                first_root_is_known = false;
            }
        }
        if !first_root_is_known {
            path.push(subtree_root(self, start, end));
        }
        path.reverse();
        Ok(ConsistencyProof { first_size, second_size, path })
    }
}

fn check_size<T: CompleteSubtrees + ?Sized>(tree: &T, tree_size: u64) -> Result<(), ProofError> {
    let leaf_count = tree.leaf_count();
    if tree_size > leaf_count {
        return Err(ProofError::TreeSizeOutOfRange { tree_size, leaf_count });
    }
    Ok(())
}

/// MTH(D[start:end]) for a node of some RFC 9162 tree of size ≤ the tree's.
///
/// Such a node starts at a multiple of the largest power of two not above its width, so it
/// splits into complete subtrees, one per set bit of the width, largest first; the RFC's split
/// at the largest power of two makes its hash the right fold of those.
fn subtree_root<T: CompleteSubtrees + ?Sized>(tree: &T, start: u64, end: u64) -> Digest {
    debug_assert!(start < end && end <= tree.leaf_count(), "range {start}..{end} outside the tree");
    let width = end - start;
    debug_assert!(
        start.is_multiple_of(1u64 << width.ilog2()),
        "range {start}..{end} is not a node of an RFC 9162 tree"
    );
    // Peel off the smallest piece (lowest set bit) first, since the fold starts on the right.
    let mut remaining = width;
    let mut root: Option<Digest> = None;
    while remaining != 0 {
        let height = remaining.trailing_zeros();
        remaining &= remaining - 1;
        let piece = tree.complete_subtree(height, (start + remaining) >> height);
        root = Some(match root {
            None => piece,
            Some(right) => node_hash(&piece, &right),
        });
    }
    root.expect("a non-empty range has at least one piece")
}

/// Largest power of two strictly below `width` (the RFC's `k`), for `width >= 2`.
fn largest_power_of_two_below(width: u64) -> u64 {
    debug_assert!(width >= 2);
    1 << (width - 1).ilog2()
}

/// Which side of the running hash a path element goes on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sibling {
    Left,
    Right,
}

/// The index bookkeeping shared by RFC 9162 §2.1.3.2 step 4 and §2.1.4.2 step 6: `node` is the
/// RFC's `fn` (the node on the path) and `last_node` its `sn` (the last node of that level).
#[derive(Clone, Copy)]
struct PathCursor {
    node: u64,
    last_node: u64,
}

impl PathCursor {
    /// Steps b and c for one path element: which side it goes on, then climb the levels.
    fn advance(&mut self) -> Sibling {
        let sibling = if self.node & 1 == 1 || self.node == self.last_node {
            // The node is a right child, or the last node of its level with no right sibling:
            // climb past the levels where it has no sibling to the next one where it has a left one.
            while self.node & 1 == 0 && self.node != 0 {
                self.node >>= 1;
                self.last_node >>= 1;
            }
            Sibling::Left
        } else {
            Sibling::Right
        };
        self.node >>= 1;
        self.last_node >>= 1;
        sibling
    }

    /// Path elements still needed to reach the root; used only to say what a bad path lacked.
    fn remaining_steps(mut self) -> usize {
        let mut steps = 0;
        while self.last_node != 0 {
            self.advance();
            steps += 1;
        }
        steps
    }
}

fn check_path_bound(hash_count: usize) -> Result<(), ProofError> {
    if hash_count > MAX_PROOF_HASHES {
        return Err(ProofError::PathOverLimit { hash_count });
    }
    Ok(())
}

/// Proof that a leaf is in a tree of a given size (RFC 9162 §2.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    /// Zero-based position of the leaf.
    pub leaf_index: u64,
    /// Size of the tree the proof is for.
    pub tree_size: u64,
    /// Sibling hashes from the leaf level up to just below the root.
    pub audit_path: Vec<Digest>,
}

impl InclusionProof {
    /// RFC 9162 §2.1.3.2: whether `leaf_hash` at `leaf_index` is in the tree with `root`.
    ///
    /// The hashes do not bind `tree_size` (leaf 0's path in a 3-leaf tree also passes as a
    /// 4-leaf path to the 3-leaf root), so `root` must be the signed root *for* `tree_size`,
    /// taken from a verified block header or tree head, never from the proof's sender.
    pub fn verify(&self, leaf_hash: &Digest, root: &Digest) -> Result<(), ProofError> {
        check_path_bound(self.audit_path.len())?;
        let (leaf_index, tree_size) = (self.leaf_index, self.tree_size);
        // Step 1.
        if leaf_index >= tree_size {
            return Err(ProofError::LeafIndexOutOfRange { leaf_index, tree_size });
        }
        // Steps 2 and 3.
        let start = PathCursor { node: leaf_index, last_node: tree_size - 1 };
        let mut cursor = start;
        let mut computed = *leaf_hash;
        // Step 4.
        for element in &self.audit_path {
            if cursor.last_node == 0 {
                return Err(self.wrong_length(start));
            }
            computed = match cursor.advance() {
                Sibling::Left => node_hash(element, &computed),
                Sibling::Right => node_hash(&computed, element),
            };
        }
        // Step 5.
        if cursor.last_node != 0 {
            return Err(self.wrong_length(start));
        }
        if computed != *root {
            return Err(ProofError::RootMismatch { computed, expected: *root });
        }
        Ok(())
    }

    fn wrong_length(&self, start: PathCursor) -> ProofError {
        ProofError::WrongPathLength {
            expected_hashes: start.remaining_steps(),
            actual_hashes: self.audit_path.len(),
        }
    }
}

/// Proof that a tree of `second_size` leaves extends one of `first_size` (RFC 9162 §2.1.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyProof {
    /// Size of the older tree.
    pub first_size: u64,
    /// Size of the newer tree.
    pub second_size: u64,
    /// Subtree hashes, leaf level first, as RFC 9162 PROOF lists them.
    pub path: Vec<Digest>,
}

impl ConsistencyProof {
    /// RFC 9162 §2.1.4.2: whether the tree with `second_root` extends the one with `first_root`.
    ///
    /// Equal sizes prove nothing new: the path must be empty and the roots equal. As with
    /// inclusion, the sizes are bound only by the roots, so both roots must be the signed roots
    /// for `first_size` and `second_size`.
    pub fn verify(&self, first_root: &Digest, second_root: &Digest) -> Result<(), ProofError> {
        check_path_bound(self.path.len())?;
        let (first_size, second_size) = (self.first_size, self.second_size);
        if first_size == 0 || first_size > second_size {
            return Err(ProofError::InvalidConsistencySizes { first_size, second_size });
        }
        if first_size == second_size {
            return self.verify_equal_sizes(first_root, second_root);
        }
        // Step 1.
        if self.path.is_empty() {
            return Err(self.wrong_length());
        }
        // Step 2: the RFC omits the first root from the path when the first tree is a complete
        // subtree of the second; put it back in front.
        let mut hashes = first_size.is_power_of_two().then_some(first_root).into_iter().chain(&self.path);
        // Steps 3 and 4.
        let mut cursor = PathCursor { node: first_size - 1, last_node: second_size - 1 };
        while cursor.node & 1 == 1 {
            cursor.node >>= 1;
            cursor.last_node >>= 1;
        }
        // Step 5.
        let seed = *hashes.next().expect("step 1 rejected an empty path");
        let (mut first_computed, mut second_computed) = (seed, seed);
        // Step 6.
        for element in hashes {
            if cursor.last_node == 0 {
                return Err(self.wrong_length());
            }
            match cursor.advance() {
                Sibling::Left => {
                    first_computed = node_hash(element, &first_computed);
                    second_computed = node_hash(element, &second_computed);
                }
                Sibling::Right => second_computed = node_hash(&second_computed, element),
            }
        }
        // Step 7.
        if cursor.last_node != 0 {
            return Err(self.wrong_length());
        }
        if first_computed != *first_root {
            return Err(ProofError::FirstRootMismatch { computed: first_computed, expected: *first_root });
        }
        if second_computed != *second_root {
            return Err(ProofError::SecondRootMismatch { computed: second_computed, expected: *second_root });
        }
        Ok(())
    }

    fn verify_equal_sizes(&self, first_root: &Digest, second_root: &Digest) -> Result<(), ProofError> {
        if !self.path.is_empty() {
            return Err(self.wrong_length());
        }
        if first_root != second_root {
            return Err(ProofError::SecondRootMismatch { computed: *first_root, expected: *second_root });
        }
        Ok(())
    }

    /// The error for a path of the wrong length, naming the length these sizes call for.
    fn wrong_length(&self) -> ProofError {
        ProofError::WrongPathLength {
            expected_hashes: consistency_path_len(self.first_size, self.second_size),
            actual_hashes: self.path.len(),
        }
    }
}

/// Number of hashes in `PROOF(first_size, D[0:second_size])`, for 0 < first ≤ second.
fn consistency_path_len(first_size: u64, second_size: u64) -> usize {
    if first_size == second_size {
        return 0;
    }
    let mut cursor = PathCursor { node: first_size - 1, last_node: second_size - 1 };
    while cursor.node & 1 == 1 {
        cursor.node >>= 1;
        cursor.last_node >>= 1;
    }
    // One seed plus one per step, less the first root the verifier prepends itself.
    1 + cursor.remaining_steps() - usize::from(first_size.is_power_of_two())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Leaf data of the Certificate Transparency reference tree (RFC 6962 test vectors, as
    /// published by transparency-dev/merkle), whose roots and proofs other logs agree on.
    const REFERENCE_LEAVES: [&[u8]; 8] = [
        b"",
        b"\x00",
        b"\x10",
        b"\x20\x21",
        b"\x30\x31",
        b"\x40\x41\x42\x43",
        b"\x50\x51\x52\x53\x54\x55\x56\x57",
        b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
    ];

    /// Roots of the reference tree for sizes 0 to 8.
    const REFERENCE_ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    fn digest(hex_text: &str) -> Digest {
        hex_text.parse().expect("test vectors are valid hex digests")
    }

    fn digests(hex_texts: &[&str]) -> Vec<Digest> {
        hex_texts.iter().map(|text| digest(text)).collect()
    }

    fn reference_tree() -> MerkleTree {
        MerkleTree::from_leaf_hashes(REFERENCE_LEAVES.iter().map(|data| leaf_hash(data)))
    }

    /// Leaf hashes of the single bytes 0..count, for hand-built trees.
    fn numbered_leaves(count: u8) -> Vec<Digest> {
        (0..count).map(|byte| leaf_hash(&[byte])).collect()
    }

    #[test]
    fn hashes_use_the_rfc_prefixes() {
        assert_eq!(leaf_hash(b"abc"), sha256(b"\x00abc"));
        let (left, right) = (sha256(b"l"), sha256(b"r"));
        let mut expected_input = vec![0x01];
        expected_input.extend_from_slice(left.as_bytes());
        expected_input.extend_from_slice(right.as_bytes());
        assert_eq!(node_hash(&left, &right), sha256(&expected_input));
        assert_ne!(node_hash(&left, &right), node_hash(&right, &left));
        assert_eq!(empty_root(), digest(REFERENCE_ROOTS[0]));
    }

    #[test]
    fn roots_match_the_reference_vectors_for_every_size() {
        let tree = reference_tree();
        let leaves: Vec<Digest> = REFERENCE_LEAVES.iter().map(|data| leaf_hash(data)).collect();
        for (size, expected) in REFERENCE_ROOTS.iter().enumerate() {
            let expected = digest(expected);
            assert_eq!(root_of(&leaves[..size]), expected, "root_of, size {size}");
            assert_eq!(tree.root_at(size as u64), Ok(expected), "root_at, size {size}");
            let prefix_tree = MerkleTree::from_leaf_hashes(leaves[..size].iter().copied());
            assert_eq!(prefix_tree.root(), expected, "root, size {size}");
        }
    }

    #[test]
    fn small_trees_have_the_hand_built_shape() {
        let l = numbered_leaves(8);
        let n01 = node_hash(&l[0], &l[1]);
        let n23 = node_hash(&l[2], &l[3]);
        let n45 = node_hash(&l[4], &l[5]);
        let n0123 = node_hash(&n01, &n23);
        let expected = [
            (0, empty_root()),
            (1, l[0]),
            (2, n01),
            (3, node_hash(&n01, &l[2])),
            (4, n0123),
            (5, node_hash(&n0123, &l[4])),
            (7, node_hash(&n0123, &node_hash(&n45, &l[6]))),
            (8, node_hash(&n0123, &node_hash(&n45, &node_hash(&l[6], &l[7])))),
        ];
        let tree = MerkleTree::from_leaf_hashes(l.iter().copied());
        for (size, root) in expected {
            assert_eq!(root_of(&l[..size]), root, "root_of, size {size}");
            assert_eq!(tree.root_at(size as u64), Ok(root), "root_at, size {size}");
        }
    }

    #[test]
    fn inclusion_proofs_match_the_reference_vectors() {
        let tree = reference_tree();
        let root = digest(REFERENCE_ROOTS[8]);
        let vectors = [
            (
                0,
                vec![
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                vec![
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
        ];
        for (leaf_index, path) in vectors {
            let proof = tree.inclusion_proof(leaf_index, 8).expect("index and size are in range");
            assert_eq!(proof.audit_path, digests(&path), "leaf {leaf_index}");
            let leaf = tree.leaf(leaf_index).expect("leaf exists");
            assert_eq!(proof.verify(&leaf, &root), Ok(()));
        }
    }

    #[test]
    fn consistency_proofs_match_the_reference_vectors() {
        let tree = reference_tree();
        let vectors: [(usize, usize, Vec<&str>); 4] = [
            (1, 1, vec![]),
            (
                2,
                8,
                vec![
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                6,
                8,
                vec![
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                5,
                vec![
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        for (first_size, second_size, path) in vectors {
            let proof =
                tree.consistency_proof(first_size as u64, second_size as u64).expect("sizes are in range");
            assert_eq!(proof.path, digests(&path), "{first_size} -> {second_size}");
            let first_root = digest(REFERENCE_ROOTS[first_size]);
            let second_root = digest(REFERENCE_ROOTS[second_size]);
            assert_eq!(proof.verify(&first_root, &second_root), Ok(()));
        }
    }

    #[test]
    fn three_leaf_proofs_are_the_hand_built_siblings() {
        let l = numbered_leaves(3);
        let tree = MerkleTree::from_leaf_hashes(l.iter().copied());
        let n01 = node_hash(&l[0], &l[1]);
        let path = |index| tree.inclusion_proof(index, 3).expect("in range").audit_path;
        assert_eq!(path(0), vec![l[1], l[2]]);
        assert_eq!(path(1), vec![l[0], l[2]]);
        assert_eq!(path(2), vec![n01]);
        let consistency = |first| tree.consistency_proof(first, 3).expect("in range").path;
        assert_eq!(consistency(1), vec![l[1], l[2]]);
        assert_eq!(consistency(2), vec![l[2]]);
        assert_eq!(consistency(3), vec![]);
    }

    #[test]
    fn every_proof_in_small_trees_verifies_and_has_the_expected_length() {
        let l = numbered_leaves(20);
        let tree = MerkleTree::from_leaf_hashes(l.iter().copied());
        for second_size in 1..=20 {
            let second_root = tree.root_at(second_size).expect("in range");
            for leaf_index in 0..second_size {
                let proof = tree.inclusion_proof(leaf_index, second_size).expect("in range");
                let leaf = tree.leaf(leaf_index).expect("leaf exists");
                assert_eq!(proof.verify(&leaf, &second_root), Ok(()));
            }
            for first_size in 1..=second_size {
                let first_root = tree.root_at(first_size).expect("in range");
                let proof = tree.consistency_proof(first_size, second_size).expect("in range");
                assert_eq!(proof.path.len(), consistency_path_len(first_size, second_size));
                assert_eq!(proof.verify(&first_root, &second_root), Ok(()));
            }
        }
    }

    #[test]
    fn generation_rejects_out_of_range_requests() {
        let tree = MerkleTree::from_leaf_hashes(numbered_leaves(7));
        assert_eq!(
            tree.inclusion_proof(7, 7),
            Err(ProofError::LeafIndexOutOfRange { leaf_index: 7, tree_size: 7 })
        );
        assert_eq!(
            tree.inclusion_proof(0, 8),
            Err(ProofError::TreeSizeOutOfRange { tree_size: 8, leaf_count: 7 })
        );
        assert_eq!(tree.root_at(8), Err(ProofError::TreeSizeOutOfRange { tree_size: 8, leaf_count: 7 }));
        assert_eq!(
            tree.consistency_proof(0, 3),
            Err(ProofError::InvalidConsistencySizes { first_size: 0, second_size: 3 })
        );
        assert_eq!(
            tree.consistency_proof(4, 3),
            Err(ProofError::InvalidConsistencySizes { first_size: 4, second_size: 3 })
        );
        assert_eq!(
            tree.consistency_proof(1, 8),
            Err(ProofError::TreeSizeOutOfRange { tree_size: 8, leaf_count: 7 })
        );
        assert_eq!(
            MerkleTree::new().inclusion_proof(0, 0),
            Err(ProofError::LeafIndexOutOfRange { leaf_index: 0, tree_size: 0 })
        );
    }

    #[test]
    fn verification_names_what_is_wrong() {
        let l = numbered_leaves(7);
        let tree = MerkleTree::from_leaf_hashes(l.iter().copied());
        let root = tree.root();
        let proof = tree.inclusion_proof(4, 7).expect("in range");

        let mut short = proof.clone();
        short.audit_path.pop();
        assert_eq!(
            short.verify(&l[4], &root),
            Err(ProofError::WrongPathLength { expected_hashes: 3, actual_hashes: 2 })
        );
        let mut long = proof.clone();
        long.audit_path.push(l[0]);
        assert_eq!(
            long.verify(&l[4], &root),
            Err(ProofError::WrongPathLength { expected_hashes: 3, actual_hashes: 4 })
        );
        let mut huge = proof.clone();
        huge.audit_path = vec![l[0]; MAX_PROOF_HASHES + 1];
        assert_eq!(huge.verify(&l[4], &root), Err(ProofError::PathOverLimit { hash_count: 129 }));
        let mut outside = proof.clone();
        outside.leaf_index = 7;
        assert_eq!(
            outside.verify(&l[4], &root),
            Err(ProofError::LeafIndexOutOfRange { leaf_index: 7, tree_size: 7 })
        );
        assert!(matches!(proof.verify(&l[3], &root), Err(ProofError::RootMismatch { .. })));

        let first_root = tree.root_at(3).expect("in range");
        let consistency = tree.consistency_proof(3, 7).expect("in range");
        assert!(matches!(consistency.verify(&root, &root), Err(ProofError::FirstRootMismatch { .. })));
        assert!(matches!(
            consistency.verify(&first_root, &first_root),
            Err(ProofError::SecondRootMismatch { .. })
        ));
        let mut empty = consistency.clone();
        empty.path.clear();
        assert_eq!(
            empty.verify(&first_root, &root),
            Err(ProofError::WrongPathLength { expected_hashes: 4, actual_hashes: 0 })
        );
    }

    #[test]
    fn equal_sizes_need_an_empty_path_and_equal_roots() {
        let tree = MerkleTree::from_leaf_hashes(numbered_leaves(4));
        let root = tree.root();
        let proof = tree.consistency_proof(4, 4).expect("in range");
        assert_eq!(proof.path, vec![]);
        assert_eq!(proof.verify(&root, &root), Ok(()));
        assert!(matches!(proof.verify(&root, &empty_root()), Err(ProofError::SecondRootMismatch { .. })));
        let with_hash = ConsistencyProof { path: vec![root], ..proof };
        assert_eq!(
            with_hash.verify(&root, &root),
            Err(ProofError::WrongPathLength { expected_hashes: 0, actual_hashes: 1 })
        );
        let from_empty = ConsistencyProof { first_size: 0, second_size: 4, path: vec![] };
        assert_eq!(
            from_empty.verify(&empty_root(), &root),
            Err(ProofError::InvalidConsistencySizes { first_size: 0, second_size: 4 })
        );
    }

    #[test]
    fn stored_levels_hold_only_complete_subtrees() {
        let mut tree = MerkleTree::new();
        assert!(tree.is_empty());
        for (count, leaf) in numbered_leaves(13).into_iter().enumerate() {
            tree.push(leaf);
            assert_eq!(tree.len(), count as u64 + 1);
            assert!(tree.levels_are_consistent());
        }
        // 13 = 0b1101: 13, 6, 3 and 1 complete subtrees of 1, 2, 4 and 8 leaves.
        let level_sizes: Vec<usize> = tree.levels.iter().map(Vec::len).collect();
        assert_eq!(level_sizes, vec![13, 6, 3, 1]);
        assert_eq!(tree.leaf(12), Some(leaf_hash(&[12])));
        assert_eq!(tree.leaf(13), None);
        assert_eq!(tree.leaf(u64::MAX), None);
    }
}

//! The state root: a fixed-shape Merkle tree over buckets of state entries.
//!
//! Every entry hashes to `tagged_hash(STATE_ENTRY, len(key) ‖ key ‖ value)` and falls in one of
//! [`BUCKETS`] buckets chosen by the first bytes of the tagged hash of its key. A bucket's leaf
//! is the RFC 9162 leaf hash of its entries' hashes concatenated in key order; the state root
//! is the RFC 9162 root over the [`BUCKETS`] leaves. Because the tree's shape never changes,
//! a block touching `k` keys costs `k` entry hashes plus about `k × log2(BUCKETS)` node hashes,
//! whatever the size of the state, and any entry can be proven with its bucket's entry hashes
//! and a 16-hash audit path.

use medledger_crypto::merkle::{leaf_hash, node_hash};
use medledger_crypto::{Digest, tagged_hash};
use medledger_types::tags;

/// Number of buckets. A power of two, so the tree is perfect and RFC 9162 roots need no
/// special right edge; 2^16 keeps buckets small up to tens of millions of entries while the
/// tree itself stays at 4 MiB.
pub const BUCKETS: usize = 1 << 16;

/// The bucket of a key.
#[must_use]
pub fn bucket_of(key: &[u8]) -> u16 {
    let digest = tagged_hash(tags::STATE_ENTRY, &[b"bucket", key]);
    u16::from_be_bytes([digest.0[0], digest.0[1]])
}

/// The hash of one entry.
#[must_use]
pub fn entry_hash(key: &[u8], value: &[u8]) -> Digest {
    let key_length = u32::try_from(key.len()).expect("state keys are short").to_be_bytes();
    tagged_hash(tags::STATE_ENTRY, &[&key_length, key, value])
}

/// The leaf of a bucket, from its entries' hashes in key order.
pub fn bucket_leaf<'a>(entry_hashes: impl Iterator<Item = &'a Digest>) -> Digest {
    let concatenated: Vec<u8> = entry_hashes.flat_map(|digest| digest.0).collect();
    leaf_hash(&concatenated)
}

/// The perfect binary tree over the bucket leaves, stored as an implicit heap: node 1 is the
/// root, node `i` has children `2i` and `2i + 1`, leaves are nodes `BUCKETS..2 × BUCKETS`.
#[derive(Clone)]
pub struct BucketTree {
    nodes: Vec<Digest>,
}

impl Default for BucketTree {
    fn default() -> Self {
        // Every bucket starts empty, so each level of the tree holds one repeated value.
        let mut nodes = vec![Digest::ZERO; 2 * BUCKETS];
        let mut level_value = bucket_leaf(std::iter::empty());
        let mut level_start = BUCKETS;
        while level_start >= 1 {
            nodes[level_start..2 * level_start].fill(level_value);
            level_value = node_hash(&level_value, &level_value);
            level_start /= 2;
        }
        Self { nodes }
    }
}

impl BucketTree {
    /// The state root.
    #[must_use]
    pub fn root(&self) -> Digest {
        self.nodes[1]
    }

    /// The root the tree would have with the given bucket leaves replaced, and the nodes that
    /// change, without changing the tree. `leaves` must be sorted by bucket.
    #[must_use]
    pub fn preview(&self, leaves: &[(u16, Digest)]) -> Vec<(usize, Digest)> {
        debug_assert!(leaves.windows(2).all(|pair| pair[0].0 < pair[1].0), "sorted, unique buckets");
        let mut changed: Vec<(usize, Digest)> =
            leaves.iter().map(|(bucket, leaf)| (BUCKETS + usize::from(*bucket), *leaf)).collect();
        let mut level = changed.clone();
        while level.first().is_some_and(|(index, _)| *index > 1) {
            let mut parents: Vec<(usize, Digest)> = Vec::with_capacity(level.len());
            let mut position = 0;
            while position < level.len() {
                // `level` is sorted, so a changed sibling is always the next element.
                let (index, digest) = level[position];
                let (left, right, consumed) = if index % 2 == 1 {
                    (self.nodes[index - 1], digest, 1)
                } else {
                    match level.get(position + 1) {
                        Some(&(next, next_digest)) if next == index + 1 => (digest, next_digest, 2),
                        _ => (digest, self.nodes[index + 1], 1),
                    }
                };
                parents.push((index / 2, node_hash(&left, &right)));
                position += consumed;
            }
            changed.extend_from_slice(&parents);
            level = parents;
        }
        changed
    }

    /// Installs nodes computed by [`BucketTree::preview`].
    pub fn install(&mut self, changed: &[(usize, Digest)]) {
        for (index, digest) in changed {
            self.nodes[*index] = *digest;
        }
    }

    /// The value of the root after [`BucketTree::preview`]'s changes.
    #[must_use]
    pub fn root_with(&self, changed: &[(usize, Digest)]) -> Digest {
        changed.iter().find(|(index, _)| *index == 1).map_or(self.root(), |(_, digest)| *digest)
    }

    /// The audit path proving bucket `bucket`'s leaf against the root (16 hashes).
    #[must_use]
    pub fn audit_path(&self, bucket: u16) -> Vec<Digest> {
        let mut index = BUCKETS + usize::from(bucket);
        let mut path = Vec::with_capacity(16);
        while index > 1 {
            path.push(self.nodes[index ^ 1]);
            index /= 2;
        }
        path
    }
}

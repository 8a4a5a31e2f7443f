//! The chain's history: the RFC 9162 tree whose leaf `i` is the hash of block `i + 1`, whose
//! root every header carries and which proves that one chain extends another.
//!
//! Like the state, it is read where it lies: the complete subtrees of committed blocks come
//! from a [`HistoryStore`] (a node's `chain.redb`), and memory holds only the right edge (one
//! root per set bit of the length) and the subtrees completed by blocks not yet committed. So
//! a clone costs the same at any height, and opening a chain reads at most 64 roots.

use std::sync::Arc;

use medledger_crypto::Digest;
use medledger_crypto::merkle::{CompleteSubtrees, MerkleTree, completed_subtrees, leaf_hash, node_hash};

/// Where the complete subtrees of committed blocks are kept.
///
/// Reads are infallible for the same reason as [`crate::StateStore`]'s: a node cannot go on
/// without its history, so a store that cannot read panics with the cause.
pub trait HistoryStore: Send + Sync {
    /// Number of blocks committed: the leaves the store holds.
    fn block_count(&self) -> u64;

    /// The root of the complete subtree of 2^`height` leaves at `position`, asked for only when
    /// `(position + 1) << height <= block_count()`.
    fn complete_subtree(&self, height: u32, position: u64) -> Digest;
}

/// An in-memory tree serves as the store of chains kept without one (tests, tools).
impl HistoryStore for MerkleTree {
    fn block_count(&self) -> u64 {
        self.len()
    }

    fn complete_subtree(&self, height: u32, position: u64) -> Digest {
        CompleteSubtrees::complete_subtree(self, height, position)
    }
}

/// Heights of complete subtrees: a tree of at most 2^64 leaves has 65 of them (0 to 64).
const MAX_HEIGHTS: usize = 65;

/// The block-hash tree: committed subtrees in a [`HistoryStore`], the rest in memory.
#[derive(Clone)]
pub struct History {
    base: Arc<dyn HistoryStore>,
    /// Leaves in `base`.
    base_len: u64,
    /// Leaves in the tree.
    len: u64,
    /// `pending[h]` holds the subtrees of 2^h leaves completed since `base`, from position
    /// `base_len >> h` up to `(len >> h) - 1`: the store holds those before.
    pending: Vec<Vec<Digest>>,
    /// `peaks[h]` is the root of the right-edge subtree of 2^h leaves when bit `h` of `len` is
    /// set: the tree's root is their fold, and a new leaf completes subtrees from them.
    peaks: [Option<Digest>; MAX_HEIGHTS],
}

impl History {
    /// The history committed in `base`.
    #[must_use]
    pub fn new(base: Arc<dyn HistoryStore>) -> Self {
        let len = base.block_count();
        let peaks = peaks_of(base.as_ref(), len);
        Self { base, base_len: len, len, pending: Vec::new(), peaks }
    }

    /// A history with no block.
    #[must_use]
    pub fn empty() -> Self {
        Self::new(Arc::new(MerkleTree::new()))
    }

    /// Number of blocks.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no block is in the history.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The root of the whole tree, from the right edge, without reading the store.
    #[must_use]
    pub fn root(&self) -> Digest {
        fold_peaks(&self.peaks)
    }

    /// Appends the hash of the next block.
    pub fn push(&mut self, block_hash: &Digest) {
        // The left half of every subtree the new leaf completes is a right-edge subtree.
        let peaks = &self.peaks;
        let Ok(completed) = completed_subtrees(self.len, leaf_hash(block_hash.as_bytes()), |height, _| {
            Ok::<_, std::convert::Infallible>(
                peaks[height as usize].expect("a left half is on the right edge"),
            )
        });
        for &(height, _, root) in &completed {
            self.record(height as usize, root);
            self.peaks[height as usize] = None;
        }
        let &(top, _, root) = completed.last().expect("the leaf itself is completed");
        self.peaks[top as usize] = Some(root);
        self.len += 1;
    }

    /// Keeps a subtree just completed by the leaf being pushed (`len` is still the old count).
    fn record(&mut self, height: usize, root: Digest) {
        if self.pending.len() <= height {
            self.pending.resize_with(height + 1, Vec::new);
        }
        let level = &mut self.pending[height];
        level.push(root);
        debug_assert_eq!(
            (self.base_len >> height) + level.len() as u64,
            (self.len + 1) >> height,
            "pending level {height} holds the subtrees completed since the base"
        );
    }

    /// Moves onto `base`, a store that has committed some of this history's blocks: their
    /// subtrees are dropped from memory, and the store must hold exactly what they held.
    pub fn rebase(&mut self, base: Arc<dyn HistoryStore>) {
        let committed = base.block_count();
        assert!(
            (self.base_len..=self.len).contains(&committed),
            "the store holds {committed} blocks, outside this history's {}..={}: rebase follows commit",
            self.base_len,
            self.len
        );
        let stored_root = fold_peaks(&peaks_of(base.as_ref(), committed));
        let own_root = self.root_at(committed).expect("the size was checked against the length");
        assert_eq!(stored_root, own_root, "the store committed another history than this one");
        for (height, level) in self.pending.iter_mut().enumerate() {
            let stored = (committed >> height) - (self.base_len >> height);
            level.drain(..usize::try_from(stored).expect("a pending level is in memory"));
        }
        self.base = base;
        self.base_len = committed;
    }
}

impl CompleteSubtrees for History {
    fn leaf_count(&self) -> u64 {
        self.len
    }

    fn complete_subtree(&self, height: u32, position: u64) -> Digest {
        let first_pending = self.base_len >> height;
        if position < first_pending {
            return self.base.complete_subtree(height, position);
        }
        let level = usize::try_from(height).expect("heights are below 65");
        let offset = usize::try_from(position - first_pending).expect("a pending level is in memory");
        self.pending[level][offset]
    }

    fn root(&self) -> Digest {
        History::root(self)
    }
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("History")
            .field("len", &self.len)
            .field("base_len", &self.base_len)
            .field("root", &self.root())
            .finish_non_exhaustive()
    }
}

/// The right-edge subtrees of a tree of `len` leaves kept in `store`.
fn peaks_of(store: &dyn HistoryStore, len: u64) -> [Option<Digest>; MAX_HEIGHTS] {
    let mut peaks = [None; MAX_HEIGHTS];
    for (height, peak) in peaks.iter_mut().enumerate().take(64) {
        let bit = 1u64 << height;
        if len & bit != 0 {
            let height = u32::try_from(height).expect("below 64");
            // The subtree of this height that ends where the larger ones end plus this one.
            *peak = Some(store.complete_subtree(height, (len >> height) - 1));
        }
    }
    peaks
}

/// RFC 9162's root from the right-edge subtrees: the smallest is the rightmost, so the fold
/// runs from the lowest height up.
fn fold_peaks(peaks: &[Option<Digest>; MAX_HEIGHTS]) -> Digest {
    peaks
        .iter()
        .flatten()
        .copied()
        .reduce(|right, left| node_hash(&left, &right))
        .unwrap_or_else(medledger_crypto::merkle::empty_root)
}

#[cfg(test)]
mod tests {
    //! The history against an in-memory tree of the same leaves, over random sequences of
    //! pushes and rebases onto stores of every length in between.

    use super::*;
    use crate::test_rng::splitmix;

    fn block_hash(index: u64) -> Digest {
        medledger_crypto::sha256(&index.to_be_bytes())
    }

    fn assert_same(history: &History, model: &MerkleTree, seed: u64) {
        assert_eq!(history.len(), model.len(), "seed {seed}");
        assert_eq!(history.root(), model.root(), "seed {seed}: root at {}", model.len());
        for size in 1..=model.len() {
            assert_eq!(history.root_at(size), model.root_at(size), "seed {seed}: root at {size}");
            let first = 1 + size / 3;
            assert_eq!(
                history.consistency_proof(first, size),
                model.consistency_proof(first, size),
                "seed {seed}: consistency {first}..{size}"
            );
            assert_eq!(
                history.inclusion_proof(size / 2, size),
                model.inclusion_proof(size / 2, size),
                "seed {seed}: inclusion of {} in {size}",
                size / 2
            );
        }
    }

    #[test]
    fn pushes_and_rebases_agree_with_an_in_memory_tree() {
        for seed in 0..32 {
            let mut rng = seed;
            let mut model = MerkleTree::new();
            let mut history = History::empty();
            for _ in 0..12 {
                for _ in 0..splitmix(&mut rng) % 9 {
                    let hash = block_hash(model.len());
                    model.push(leaf_hash(hash.as_bytes()));
                    history.push(&hash);
                }
                assert_same(&history, &model, seed);
                // A store that committed some prefix of the pushed blocks.
                let committed = history.base_len + splitmix(&mut rng) % (1 + history.len - history.base_len);
                let store = MerkleTree::from_leaf_hashes(
                    (0..committed).map(|index| leaf_hash(block_hash(index).as_bytes())),
                );
                history.rebase(Arc::new(store));
                assert_same(&history, &model, seed);
                // Reopening from the store alone gives the same tree up to the store's length.
                let reopened = History::new(history.base.clone());
                assert_eq!(reopened.root(), model.root_at(committed).expect("in range"), "seed {seed}");
            }
        }
    }

    #[test]
    #[should_panic(expected = "another history")]
    fn a_store_with_other_blocks_is_refused() {
        let mut history = History::empty();
        history.push(&block_hash(0));
        history.push(&block_hash(1));
        let other = MerkleTree::from_leaf_hashes([leaf_hash(block_hash(7).as_bytes())]);
        history.rebase(Arc::new(other));
    }
}

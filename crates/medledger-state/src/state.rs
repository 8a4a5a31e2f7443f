//! The key-value state: what is committed lives in a [`StateStore`] (on disk in a node), and
//! each block executed but not yet committed is a layer of writes and tree nodes above it.
//!
//! A [`State`] is cheap to clone (a shared store plus shared layers), so consensus can hold one
//! per unfinalized block without copying the state.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use jmt::storage::{LeafNode, NibblePath, Node, NodeKey, TreeReader, TreeUpdateBatch};
use jmt::{JellyfishMerkleTree, KeyHash, OwnedValue, Version};
use medledger_crypto::Digest;

use crate::commitment::{EMPTY_ROOT, StateHasher, StateProof, key_path};

type Tree<'a, R> = JellyfishMerkleTree<'a, R, StateHasher>;

/// Committed state: the entries and the tree nodes that commit to them, at one version.
///
/// Version `v` is the state after block `v`; version 0 is genesis. Reads do not fail: a store
/// that cannot read its own disk stops the process, because no block can be executed against a
/// state that cannot be read.
pub trait StateStore: Send + Sync {
    /// The committed version, `None` before genesis.
    fn version(&self) -> Option<u64>;
    /// The value under `key`.
    fn get(&self, key: &[u8]) -> Option<Vec<u8>>;
    /// A node of the state tree.
    fn node(&self, key: &NodeKey) -> Option<Node>;
    /// Entries whose key starts with `prefix` and sorts after `after`, in key order.
    fn scan<'a>(
        &'a self,
        prefix: &'a [u8],
        after: Option<&'a [u8]>,
    ) -> Box<dyn Iterator<Item = (Vec<u8>, Vec<u8>)> + 'a>;
}

/// Changes to the state computed by executing a block: `None` deletes a key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteSet {
    pub(crate) writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl WriteSet {
    /// Sets `key` to `value`.
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, Some(value));
    }

    /// Deletes `key`.
    pub fn delete(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }

    /// What this set does to `key`: `Some(None)` deletes it, `None` leaves it alone.
    #[must_use]
    pub fn get(&self, key: &[u8]) -> Option<Option<&[u8]>> {
        self.writes.get(key).map(Option::as_deref)
    }

    /// Number of keys written.
    #[must_use]
    pub fn len(&self) -> usize {
        self.writes.len()
    }

    /// Whether nothing is written.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// The writes in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> {
        self.writes.iter().map(|(key, value)| (key.as_slice(), value.as_deref()))
    }
}

/// One version's worth of changes: the writes, and the tree nodes they add and retire.
struct Layer {
    version: u64,
    parent_root: Digest,
    root: Digest,
    writes: WriteSet,
    batch: TreeUpdateBatch,
    stale: Vec<NodeKey>,
}

/// A write set applied to a state's tree: the next version, with its root. Cheap to clone.
#[derive(Clone)]
pub struct PreparedWrites(Arc<Layer>);

impl PreparedWrites {
    /// The state root after these writes.
    #[must_use]
    pub fn root(&self) -> Digest {
        self.0.root
    }

    /// The version these writes make (the block height; 0 for genesis).
    #[must_use]
    pub fn version(&self) -> u64 {
        self.0.version
    }

    /// The writes, for the store to persist.
    #[must_use]
    pub fn write_set(&self) -> &WriteSet {
        &self.0.writes
    }

    /// The tree nodes this version adds.
    pub fn new_nodes(&self) -> impl Iterator<Item = (&NodeKey, &Node)> {
        self.0.batch.node_batch.nodes().iter()
    }

    /// The tree nodes no longer reachable from this version's root, which the store deletes.
    #[must_use]
    pub fn stale_nodes(&self) -> &[NodeKey] {
        &self.0.stale
    }
}

/// The state: a committed [`StateStore`] and the versions prepared above it.
#[derive(Clone)]
pub struct State {
    base: Arc<dyn StateStore>,
    base_root: Digest,
    layers: Vec<PreparedWrites>,
}

impl State {
    /// The state committed in `base`.
    #[must_use]
    pub fn new(base: Arc<dyn StateStore>) -> Self {
        let base_root = stored_root(base.as_ref());
        Self { base, base_root, layers: Vec::new() }
    }

    /// A state holding nothing, before genesis.
    #[must_use]
    pub fn empty() -> Self {
        Self::new(Arc::new(MemoryStore::default()))
    }

    /// A genesis state (version 0) holding exactly `entries`.
    pub fn from_entries(entries: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>) -> Self {
        let mut writes = WriteSet::default();
        for (key, value) in entries {
            writes.put(key, value);
        }
        let mut state = State::empty();
        let prepared = state.prepare(writes);
        state.commit(prepared);
        state
    }

    /// The version of this state (the height of its last block; 0 at genesis), `None` before
    /// genesis.
    #[must_use]
    pub fn version(&self) -> Option<u64> {
        self.layers.last().map_or_else(|| self.base.version(), |layer| Some(layer.version()))
    }

    /// The value stored under `key`.
    #[must_use]
    pub fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        for layer in self.layers.iter().rev() {
            if let Some(write) = layer.write_set().get(key) {
                return write.map(<[u8]>::to_vec);
            }
        }
        self.base.get(key)
    }

    /// The state root.
    #[must_use]
    pub fn root(&self) -> Digest {
        self.layers.last().map_or(self.base_root, PreparedWrites::root)
    }

    /// The versions prepared above the committed store, oldest first.
    #[must_use]
    pub fn uncommitted(&self) -> &[PreparedWrites] {
        &self.layers
    }

    /// Entries whose key starts with `prefix` and sorts after `after`, in key order.
    pub fn scan<'a>(
        &'a self,
        prefix: &'a [u8],
        after: Option<&'a [u8]>,
    ) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> + 'a {
        let mut overrides: BTreeMap<&[u8], Option<&[u8]>> = BTreeMap::new();
        for layer in &self.layers {
            let written = layer
                .write_set()
                .iter()
                .filter(|(key, _)| key.starts_with(prefix) && after.is_none_or(|after| *key > after));
            overrides.extend(written);
        }
        MergedScan {
            base: self.base.scan(prefix, after).peekable(),
            overrides: overrides.into_iter().peekable(),
        }
    }

    /// Computes the next version `writes` would make, with its root, without changing the state.
    #[must_use]
    pub fn prepare(&self, writes: WriteSet) -> PreparedWrites {
        let version = self.version().map_or(0, |version| version + 1);
        let (root, batch) = self.update_tree(&writes, version, TreeUpdate::choose(&writes));
        let mut stale: Vec<NodeKey> =
            batch.stale_node_index_batch.iter().map(|index| index.node_key.clone()).collect();
        if let Some(previous) = version.checked_sub(1) {
            // An unchanged root is copied to the new version without being marked stale.
            stale.push(root_key(previous));
        }
        stale.sort();
        stale.dedup();
        PreparedWrites(Arc::new(Layer {
            version,
            parent_root: self.root(),
            root: Digest(root.0),
            writes,
            batch,
            stale,
        }))
    }

    /// The tree's new root and nodes after `writes`, by `algorithm`. Both algorithms give the
    /// same tree; the batch one, which the tree offers for puts only, builds each touched node
    /// once instead of walking from the root for every key.
    fn update_tree(
        &self,
        writes: &WriteSet,
        version: u64,
        algorithm: TreeUpdate,
    ) -> (jmt::RootHash, TreeUpdateBatch) {
        let tree = Tree::new(self);
        let updated = match algorithm {
            TreeUpdate::KeyByKey => tree.put_value_set(
                writes.iter().map(|(key, value)| (key_path(key), value.map(<[u8]>::to_vec))),
                version,
            ),
            TreeUpdate::Batch => {
                let values = writes
                    .iter()
                    .map(|(key, value)| (key_path(key), value.expect("the batch update only puts").to_vec()))
                    .collect();
                tree.batch_put_value_sets(vec![values], None, version)
                    .map(|(mut roots, batch)| (roots.pop().expect("one value set, one root"), batch))
            }
        };
        updated.unwrap_or_else(|error| panic!("the state tree is missing a node it committed: {error:#}"))
    }

    /// Makes prepared writes the state's next version. They must have been prepared against
    /// this very state.
    pub fn commit(&mut self, prepared: PreparedWrites) {
        assert_eq!(
            Some(prepared.version()),
            Some(self.version().map_or(0, |version| version + 1)),
            "writes are committed in version order"
        );
        assert_eq!(prepared.0.parent_root, self.root(), "prepared writes were applied to another state");
        self.layers.push(prepared);
    }

    /// Moves onto `base`, a store that has committed some of this state's versions: those layers
    /// are dropped, and the store must hold exactly what they held.
    pub fn rebase(&mut self, base: Arc<dyn StateStore>) {
        let Some(version) = base.version() else {
            assert!(self.base.version().is_none(), "a store never moves back before genesis");
            return;
        };
        assert!(
            self.version().is_some_and(|own| own >= version),
            "the store is ahead of this state: rebase follows commit"
        );
        let committed = self.layers.iter().take_while(|layer| layer.version() <= version).count();
        let base_root = stored_root(base.as_ref());
        let expected = match committed {
            0 => self.base_root,
            count => self.layers[count - 1].root(),
        };
        assert_eq!(
            base_root, expected,
            "the store committed another state than this one at version {version}"
        );
        self.layers.drain(..committed);
        self.base = base;
        self.base_root = base_root;
    }

    /// A proof of the value under `key` (or of its absence) against [`State::root`].
    #[must_use]
    pub fn prove(&self, key: &[u8]) -> StateProof {
        let value = self.get(key);
        let version = self.version().expect("proofs are asked of states from genesis on");
        let reader = ProofReader { state: self, path: key_path(key), value: value.clone() };
        let (proven, proof) = Tree::new(&reader)
            .get_with_proof(key_path(key), version)
            .unwrap_or_else(|error| panic!("the state tree is missing a node it committed: {error:#}"));
        debug_assert_eq!(proven, value, "the tree and the entries agree");
        StateProof::new(key.to_vec(), value, proof)
    }
}

/// How [`State::prepare`] updates the tree.
#[derive(Clone, Copy, Debug)]
enum TreeUpdate {
    /// One walk from the root per key: handles deletes and empty write sets.
    KeyByKey,
    /// Bottom-up over the sorted keys: puts only, at least one.
    Batch,
}

impl TreeUpdate {
    fn choose(writes: &WriteSet) -> Self {
        let deletes = writes.iter().any(|(_, value)| value.is_none());
        if writes.is_empty() || deletes { Self::KeyByKey } else { Self::Batch }
    }
}

/// The key of the root node at `version`.
fn root_key(version: Version) -> NodeKey {
    // The empty path; `NibblePath` offers no other public constructor for it.
    let empty: NibblePath = std::iter::empty().collect();
    NodeKey::new(version, empty)
}

/// The root of the committed version in `store`.
fn stored_root(store: &dyn StateStore) -> Digest {
    let Some(version) = store.version() else { return EMPTY_ROOT };
    let root = Tree::new(&StoreReader(store))
        .get_root_hash(version)
        .unwrap_or_else(|error| panic!("the state store has no root at its version {version}: {error:#}"));
    Digest(root.0)
}

impl TreeReader for State {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        for layer in self.layers.iter().rev() {
            if let Some(node) = layer.0.batch.node_batch.get_node(node_key) {
                return Ok(Some(node.clone()));
            }
        }
        Ok(self.base.node(node_key))
    }

    fn get_value_option(&self, _: Version, _: KeyHash) -> anyhow::Result<Option<OwnedValue>> {
        anyhow::bail!("state values are read by key, not by tree path")
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        anyhow::bail!("the state is never restored chunk by chunk")
    }
}

/// Reads a committed store's tree.
struct StoreReader<'a>(&'a dyn StateStore);

impl TreeReader for StoreReader<'_> {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        Ok(self.0.node(node_key))
    }

    fn get_value_option(&self, _: Version, _: KeyHash) -> anyhow::Result<Option<OwnedValue>> {
        anyhow::bail!("state values are read by key, not by tree path")
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        anyhow::bail!("the state is never restored chunk by chunk")
    }
}

/// A state's tree, answering the value of the one key being proven.
struct ProofReader<'a> {
    state: &'a State,
    path: KeyHash,
    value: Option<Vec<u8>>,
}

impl TreeReader for ProofReader<'_> {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        self.state.get_node_option(node_key)
    }

    fn get_value_option(&self, _: Version, path: KeyHash) -> anyhow::Result<Option<OwnedValue>> {
        anyhow::ensure!(path == self.path, "only the proven key's value is at hand");
        Ok(self.value.clone())
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        self.state.get_rightmost_leaf()
    }
}

/// A store's entries with the layers' writes merged over them, in key order.
struct MergedScan<
    'a,
    B: Iterator<Item = (Vec<u8>, Vec<u8>)>,
    O: Iterator<Item = (&'a [u8], Option<&'a [u8]>)>,
> {
    base: std::iter::Peekable<B>,
    overrides: std::iter::Peekable<O>,
}

impl<'a, B, O> Iterator for MergedScan<'a, B, O>
where
    B: Iterator<Item = (Vec<u8>, Vec<u8>)>,
    O: Iterator<Item = (&'a [u8], Option<&'a [u8]>)>,
{
    type Item = (Vec<u8>, Vec<u8>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let next_override = self.overrides.peek().map(|(key, _)| *key);
            let next_base = self.base.peek().map(|(key, _)| key.as_slice());
            match (next_base, next_override) {
                (None, None) => return None,
                (Some(base), Some(key)) if base < key => return self.base.next(),
                (Some(_), None) => return self.base.next(),
                (base, Some(key)) => {
                    if base == Some(key) {
                        self.base.next();
                    }
                    let (key, value) = self.overrides.next().expect("peeked");
                    if let Some(value) = value {
                        return Some((key.to_vec(), value.to_vec()));
                    }
                }
            }
        }
    }
}

/// A [`StateStore`] in memory: for states built without a node's store (tests, tools).
#[derive(Default)]
pub struct MemoryStore {
    version: Option<u64>,
    entries: BTreeMap<Vec<u8>, Vec<u8>>,
    nodes: HashMap<NodeKey, Node>,
}

impl MemoryStore {
    /// Commits the next version, as a node's store commits a block.
    pub fn apply(&mut self, prepared: &PreparedWrites) {
        assert_eq!(
            prepared.version(),
            self.version.map_or(0, |version| version + 1),
            "versions are applied in order"
        );
        for (key, value) in prepared.write_set().iter() {
            match value {
                Some(value) => self.entries.insert(key.to_vec(), value.to_vec()),
                None => self.entries.remove(key),
            };
        }
        for stale in prepared.stale_nodes() {
            self.nodes.remove(stale);
        }
        self.nodes.extend(prepared.new_nodes().map(|(key, node)| (key.clone(), node.clone())));
        self.version = Some(prepared.version());
    }

    /// Number of tree nodes held (for tests of what the tree retires).
    #[must_use]
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }
}

impl StateStore for MemoryStore {
    fn version(&self) -> Option<u64> {
        self.version
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.entries.get(key).cloned()
    }

    fn node(&self, key: &NodeKey) -> Option<Node> {
        self.nodes.get(key).cloned()
    }

    fn scan<'a>(
        &'a self,
        prefix: &'a [u8],
        after: Option<&'a [u8]>,
    ) -> Box<dyn Iterator<Item = (Vec<u8>, Vec<u8>)> + 'a> {
        let start = match after {
            Some(after) if after >= prefix => std::ops::Bound::Excluded(after),
            _ => std::ops::Bound::Included(prefix),
        };
        Box::new(
            self.entries
                .range::<[u8], _>((start, std::ops::Bound::Unbounded))
                .take_while(move |(key, _)| key.starts_with(prefix))
                .map(|(key, value)| (key.clone(), value.clone())),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::splitmix;

    /// Applies `writes` with `algorithm` to a copy of `state`'s store and returns the new root
    /// and the nodes the version adds and retires.
    fn apply(
        state: &State,
        writes: &WriteSet,
        algorithm: TreeUpdate,
    ) -> (Digest, Vec<(NodeKey, Node)>, Vec<NodeKey>) {
        let version = state.version().map_or(0, |version| version + 1);
        let (root, batch) = state.update_tree(writes, version, algorithm);
        let nodes = batch.node_batch.nodes().iter().map(|(key, node)| (key.clone(), node.clone())).collect();
        let stale = batch.stale_node_index_batch.iter().map(|index| index.node_key.clone()).collect();
        (Digest(root.0), nodes, stale)
    }

    #[test]
    fn the_batch_update_builds_the_same_tree_as_key_by_key() {
        for seed in 1..=32u64 {
            let mut rng = seed;
            let mut state = State::empty();
            for _ in 0..12 {
                let mut writes = WriteSet::default();
                for _ in 0..1 + splitmix(&mut rng) % 40 {
                    let key = format!("entry/{}", splitmix(&mut rng) % 200).into_bytes();
                    writes.put(key, splitmix(&mut rng).to_be_bytes().to_vec());
                }
                let key_by_key = apply(&state, &writes, TreeUpdate::KeyByKey);
                let batch = apply(&state, &writes, TreeUpdate::Batch);
                assert_eq!(key_by_key.0, batch.0, "seed {seed}: root");
                assert_eq!(key_by_key.1, batch.1, "seed {seed}: new nodes");
                assert_eq!(key_by_key.2, batch.2, "seed {seed}: retired nodes");
                let prepared = state.prepare(writes);
                state.commit(prepared);
            }
        }
    }
}

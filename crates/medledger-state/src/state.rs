//! The key-value state and its commitment.

use std::collections::BTreeMap;
use std::ops::Bound;

use medledger_crypto::Digest;

use crate::commitment::{BucketTree, bucket_leaf, bucket_of, entry_hash};

/// One stored value with its cached entry hash.
#[derive(Clone)]
struct Entry {
    value: Vec<u8>,
    hash: Digest,
}

/// The whole state: ordered key-value entries grouped by commitment bucket, and the bucket
/// tree whose root is the state root.
///
/// The state lives in memory (the store persists it and reloads it on open); every change
/// goes through [`State::prepare`] then [`State::commit`], so the root is always the root of
/// exactly the entries held.
#[derive(Clone, Default)]
pub struct State {
    entries: BTreeMap<(u16, Vec<u8>), Entry>,
    tree: BucketTree,
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

/// A write set checked against a state, with the state root it produces.
#[derive(Clone)]
pub struct PreparedWrites {
    writes: BTreeMap<(u16, Vec<u8>), Option<Entry>>,
    changed_nodes: Vec<(usize, Digest)>,
    root: Digest,
    source: WriteSet,
}

impl PreparedWrites {
    /// The state root after these writes.
    #[must_use]
    pub fn root(&self) -> Digest {
        self.root
    }

    /// The writes, for the store to persist.
    #[must_use]
    pub fn write_set(&self) -> &WriteSet {
        &self.source
    }
}

impl State {
    /// Rebuilds a state from stored entries (as the store does on open).
    pub fn from_entries(entries: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>) -> Self {
        let mut writes = WriteSet::default();
        for (key, value) in entries {
            writes.put(key, value);
        }
        let mut state = State::default();
        let prepared = state.prepare(writes);
        state.commit(prepared);
        state
    }

    /// The value stored under `key`.
    #[must_use]
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        // Allocation-free lookup would need a borrowed tuple key; keys are short.
        self.entries.get(&(bucket_of(key), key.to_vec())).map(|entry| entry.value.as_slice())
    }

    /// The state root.
    #[must_use]
    pub fn root(&self) -> Digest {
        self.tree.root()
    }

    /// Number of entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the state holds no entry.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every entry, in commitment order (by bucket, then key).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.entries.iter().map(|((_, key), entry)| (key.as_slice(), entry.value.as_slice()))
    }

    /// Computes the root `writes` would produce, without changing the state.
    #[must_use]
    pub fn prepare(&self, source: WriteSet) -> PreparedWrites {
        let writes: BTreeMap<(u16, Vec<u8>), Option<Entry>> = source
            .writes
            .iter()
            .map(|(key, value)| {
                let entry =
                    value.as_ref().map(|value| Entry { hash: entry_hash(key, value), value: value.clone() });
                ((bucket_of(key), key.clone()), entry)
            })
            .collect();
        let mut leaves: Vec<(u16, Digest)> = Vec::new();
        let mut position = writes.iter().peekable();
        while let Some(((bucket, _), _)) = position.peek() {
            let bucket = *bucket;
            let mut bucket_writes = BTreeMap::new();
            while let Some(((write_bucket, key), entry)) = position.next_if(|((b, _), _)| *b == bucket) {
                debug_assert_eq!(*write_bucket, bucket);
                bucket_writes.insert(key.as_slice(), entry.as_ref().map(|entry| entry.hash));
            }
            leaves.push((bucket, self.bucket_leaf_with(bucket, &bucket_writes)));
        }
        let changed_nodes = self.tree.preview(&leaves);
        let root = self.tree.root_with(&changed_nodes);
        PreparedWrites { writes, changed_nodes, root, source }
    }

    /// Applies writes prepared against this very state.
    pub fn commit(&mut self, prepared: PreparedWrites) {
        for (key, entry) in prepared.writes {
            match entry {
                Some(entry) => self.entries.insert(key, entry),
                None => self.entries.remove(&key),
            };
        }
        self.tree.install(&prepared.changed_nodes);
        assert_eq!(self.tree.root(), prepared.root, "prepared writes were applied to another state");
    }

    /// The leaf of `bucket` once `writes` (key → new entry hash, `None` = deleted) apply.
    fn bucket_leaf_with(&self, bucket: u16, writes: &BTreeMap<&[u8], Option<Digest>>) -> Digest {
        let start = Bound::Included((bucket, Vec::new()));
        let end = match bucket.checked_add(1) {
            Some(next) => Bound::Excluded((next, Vec::new())),
            None => Bound::Unbounded,
        };
        let mut merged: BTreeMap<&[u8], Digest> =
            self.entries.range((start, end)).map(|((_, key), entry)| (key.as_slice(), entry.hash)).collect();
        for (key, hash) in writes {
            match hash {
                Some(hash) => merged.insert(key, *hash),
                None => merged.remove(key),
            };
        }
        bucket_leaf(merged.values())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_set(pairs: &[(&[u8], Option<&[u8]>)]) -> WriteSet {
        WriteSet {
            writes: pairs.iter().map(|(key, value)| (key.to_vec(), value.map(<[u8]>::to_vec))).collect(),
        }
    }

    #[test]
    fn root_depends_only_on_contents_not_history() {
        let mut incremental = State::default();
        let empty_root = incremental.root();
        for batch in [
            write_set(&[(b"a", Some(b"1")), (b"b", Some(b"2"))]),
            write_set(&[(b"c", Some(b"3")), (b"a", None)]),
            write_set(&[(b"b", Some(b"22"))]),
        ] {
            let prepared = incremental.prepare(batch);
            incremental.commit(prepared);
        }
        let rebuilt = State::from_entries([(b"b".to_vec(), b"22".to_vec()), (b"c".to_vec(), b"3".to_vec())]);
        assert_eq!(incremental.root(), rebuilt.root());
        assert_ne!(incremental.root(), empty_root);
        assert_eq!(incremental.get(b"b"), Some(&b"22"[..]));
        assert_eq!(incremental.get(b"a"), None);
    }

    #[test]
    fn prepare_does_not_change_the_state() {
        let state = State::from_entries([(b"k".to_vec(), b"v".to_vec())]);
        let root = state.root();
        let prepared = state.prepare(write_set(&[(b"k", Some(b"w"))]));
        assert_ne!(prepared.root(), root);
        assert_eq!(state.root(), root);
        assert_eq!(state.get(b"k"), Some(&b"v"[..]));
    }
}

//! The committed state as the state machine reads it: entries and state-tree nodes in one redb
//! read transaction, with the block history of the same height.

use medledger_crypto::Digest;
use medledger_crypto::merkle::leaf_hash;
use medledger_state::tree::{Node, NodeKey};
use medledger_state::{HistoryStore, StateStore};
use redb::{ReadOnlyTable, ReadTransaction};

use crate::tables::{BLOCK_HASHES, HISTORY, STATE, STATE_NODES};
use crate::{StoreError, db_error};

/// The state committed at one height, read from `chain.redb`.
pub struct StoreSnapshot {
    version: u64,
    entries: ReadOnlyTable<&'static [u8], &'static [u8]>,
    nodes: ReadOnlyTable<&'static [u8], &'static [u8]>,
    block_hashes: ReadOnlyTable<u64, [u8; 32]>,
    history: ReadOnlyTable<(u8, u64), [u8; 32]>,
}

impl StoreSnapshot {
    pub(crate) fn new(txn: &ReadTransaction, version: u64) -> Result<Self, StoreError> {
        Ok(Self {
            version,
            entries: txn.open_table(STATE).map_err(db_error)?,
            nodes: txn.open_table(STATE_NODES).map_err(db_error)?,
            block_hashes: txn.open_table(BLOCK_HASHES).map_err(db_error)?,
            history: txn.open_table(HISTORY).map_err(db_error)?,
        })
    }
}

/// A read failed: the node cannot go on without its state (see [`StateStore`]) or history.
fn unreadable(error: impl std::fmt::Display) -> ! {
    panic!("chain.redb: the committed state or history cannot be read: {error}")
}

impl StateStore for StoreSnapshot {
    fn version(&self) -> Option<u64> {
        Some(self.version)
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let value = self.entries.get(key).unwrap_or_else(|error| unreadable(error));
        value.map(|value| value.value().to_vec())
    }

    fn node(&self, key: &NodeKey) -> Option<Node> {
        let bytes =
            self.nodes.get(encode_node_key(key).as_slice()).unwrap_or_else(|error| unreadable(error))?;
        Some(
            borsh::from_slice(bytes.value())
                .unwrap_or_else(|error| unreadable(format!("a state-tree node: {error}"))),
        )
    }

    fn scan<'a>(
        &'a self,
        prefix: &'a [u8],
        after: Option<&'a [u8]>,
    ) -> Box<dyn Iterator<Item = (Vec<u8>, Vec<u8>)> + 'a> {
        let range = match after {
            Some(after) if after >= prefix => self.entries.range::<&[u8]>(after..),
            _ => self.entries.range::<&[u8]>(prefix..),
        };
        let range = range.unwrap_or_else(|error| unreadable(error));
        Box::new(
            range
                .map(|entry| entry.unwrap_or_else(|error| unreadable(error)))
                .map(|(key, value)| (key.value().to_vec(), value.value().to_vec()))
                .skip_while(move |(key, _)| after.is_some_and(|after| key.as_slice() == after))
                .take_while(move |(key, _)| key.starts_with(prefix)),
        )
    }
}

impl HistoryStore for StoreSnapshot {
    fn block_count(&self) -> u64 {
        self.version
    }

    fn complete_subtree(&self, height: u32, position: u64) -> Digest {
        debug_assert!((position + 1) << height <= self.version, "subtree outside the stored history");
        if height == 0 {
            // Leaf `position` is block `position + 1`.
            let hash = self.block_hashes.get(position + 1).unwrap_or_else(|error| unreadable(error));
            let hash = hash.unwrap_or_else(|| unreadable(format!("no hash for block {}", position + 1)));
            return leaf_hash(&hash.value());
        }
        let height = u8::try_from(height).expect("subtree heights are below 65");
        let root = self.history.get((height, position)).unwrap_or_else(|error| unreadable(error));
        Digest(root.unwrap_or_else(|| unreadable(format!("no history subtree {height}/{position}"))).value())
    }
}

/// A state-tree node key as stored: the version big-endian first, so the nodes a block writes
/// sit side by side in the table (one run of pages, not one page per node), then the path.
pub(crate) fn encode_node_key(key: &NodeKey) -> Vec<u8> {
    let mut bytes = key.version().to_be_bytes().to_vec();
    borsh::to_writer(&mut bytes, key.nibble_path()).expect("a nibble path in memory always encodes");
    bytes
}

/// A state-tree node as stored.
pub(crate) fn encode_node(node: &Node) -> Vec<u8> {
    borsh::to_vec(node).expect("a node in memory always encodes")
}

#[cfg(test)]
mod tests {
    //! The on-disk state against a model: a plain ordered map whose root is the root of a
    //! state built from its entries in one go. Random write sets (puts, overwrites, deletes),
    //! each committed in its own redb transaction, with the file reopened now and then.

    use std::collections::BTreeMap;
    use std::sync::Arc;

    use medledger_state::{State, StateStore, WriteSet};
    use redb::{Database, ReadableDatabase, ReadableTableMetadata};

    use super::StoreSnapshot;
    use crate::tables::{BLOCK_HASHES, HISTORY, STATE, STATE_NODES, STATE_RETIRED};
    use crate::write_state;

    /// Seeds run per test run; each is a full history of `VERSIONS` versions.
    const SEEDS: u64 = 24;
    const VERSIONS: u64 = 40;
    /// Few distinct keys, so overwrites and deletes hit keys that exist.
    const KEYS: u64 = 48;

    fn splitmix(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn random_writes(rng: &mut u64) -> WriteSet {
        let mut writes = WriteSet::default();
        for _ in 0..splitmix(rng) % 12 {
            let key = format!("entry/{}", splitmix(rng) % KEYS).into_bytes();
            if splitmix(rng).is_multiple_of(4) {
                writes.delete(key);
            } else {
                let length = usize::try_from(splitmix(rng) % 40).expect("small");
                writes.put(key, splitmix(rng).to_be_bytes().repeat(length / 8 + 1)[..length].to_vec());
            }
        }
        writes
    }

    fn snapshot(db: &Database, version: u64) -> Arc<StoreSnapshot> {
        Arc::new(StoreSnapshot::new(&db.begin_read().expect("read"), version).expect("snapshot"))
    }

    fn check(db: &Database, version: u64, model: &BTreeMap<Vec<u8>, Vec<u8>>, seed: u64) {
        let stored = snapshot(db, version);
        let entries: Vec<_> = stored.scan(b"", None).collect();
        let expected: Vec<_> = model.iter().map(|(key, value)| (key.clone(), value.clone())).collect();
        assert_eq!(entries, expected, "seed {seed}, version {version}: entries");
        let state = State::new(stored);
        let model_root = if model.is_empty() {
            medledger_state::EMPTY_ROOT
        } else {
            State::from_entries(expected.clone()).root()
        };
        assert_eq!(state.root(), model_root, "seed {seed}, version {version}: root");
        for probe in [b"entry/7".to_vec(), b"entry/absent".to_vec()] {
            let proof = state.prove(&probe);
            assert_eq!(proof.value.as_ref(), model.get(&probe), "seed {seed}: proven value");
            proof.verify(state.root()).unwrap_or_else(|error| panic!("seed {seed}: {error}"));
        }
        let read = db.begin_read().expect("read");
        let nodes = read.open_table(STATE_NODES).expect("nodes").len().expect("len");
        let leaves = read.open_table(STATE).expect("state").len().expect("len");
        let retired = read.open_table(STATE_RETIRED).map_or(0, |table| table.len().expect("len"));
        // A radix tree with n leaves has fewer than n internal nodes: anything more is a
        // retired node left behind, and only those awaiting the next pruning may be.
        assert!(
            nodes <= 2 * leaves.max(1) + retired,
            "seed {seed}, version {version}: {nodes} nodes for {leaves} entries and {retired} retired"
        );
    }

    #[test]
    fn the_stored_state_matches_a_model_over_random_histories() {
        for seed in 1..=SEEDS {
            let dir = tempfile::tempdir().expect("temp dir");
            let path = dir.path().join("state.redb");
            let mut db = Database::create(&path).expect("create");
            // The snapshot opens the history's tables too; this test has no blocks to put there.
            let txn = db.begin_write().expect("write");
            txn.open_table(BLOCK_HASHES).expect("block hashes");
            txn.open_table(HISTORY).expect("history");
            txn.commit().expect("commit");
            let mut rng = seed;
            let mut model = BTreeMap::new();
            let mut state = State::empty();
            for version in 0..VERSIONS {
                let writes = random_writes(&mut rng);
                for (key, value) in writes.iter() {
                    match value {
                        Some(value) => model.insert(key.to_vec(), value.to_vec()),
                        None => model.remove(key),
                    };
                }
                let prepared = state.prepare(writes);
                let txn = db.begin_write().expect("write");
                write_state(&txn, &prepared).expect("write state");
                txn.commit().expect("commit");
                state.commit(prepared);
                if splitmix(&mut rng).is_multiple_of(5) {
                    drop(state);
                    drop(db);
                    db = Database::open(&path).expect("reopen");
                    state = State::new(snapshot(&db, version));
                } else {
                    state.rebase(snapshot(&db, version));
                }
                check(&db, version, &model, seed);
            }
        }
    }
}

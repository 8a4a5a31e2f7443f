//! MedLedger's embedded store, on redb.
//!
//! One redb file per node (`chain.redb` in the data directory) holds genesis, blocks,
//! receipts, the state and the indexes. A block is committed in one redb write transaction
//! with immediate durability: after [`Store::commit`] returns, the block, its receipts, its
//! index entries and its state changes are all on disk, and a crash at any moment leaves the
//! store at the last committed block (redb's copy-on-write commit is atomic).
//!
//! The state is read where it lies: [`Store::snapshot`] is a consistent view of the committed
//! entries and state-tree nodes (a redb read transaction), so opening a store costs the same at
//! any chain length. [`Store::open`] checks the file's format version and refuses to start
//! unless the stored tree's root equals the root in the last block's header.

mod snapshot;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use snapshot::StoreSnapshot;

use medledger_crypto::merkle::{completed_subtrees, leaf_hash};
use medledger_crypto::{Digest, PublicKey};
use medledger_state::{BlockError, Chain, History, PreparedWrites, State, VerifiedBlock};
use medledger_types::{
    Block, BlockHeader, Decode, DecodeError, Encode, Genesis, GenesisError, Receipt, TxId,
};
use redb::{Database, Durability, ReadOnlyDatabase, ReadableDatabase, ReadableTable};

/// Version of the on-disk layout below; bumped on any incompatible change. Version 3 commits to
/// the state with the state tree (ADR 0001); version 2 chains, whose headers carry bucket
/// commitments, start again from a new genesis (docs/operators.md).
pub const FORMAT_VERSION: u32 = 3;

/// Default size of redb's page cache for `chain.redb`: the upper levels of the state tree and
/// the hot entries stay in it. redb's own default (1 GiB) would be most of a node's memory.
pub const DEFAULT_CACHE_BYTES: usize = 256 << 20;

/// Smallest page cache a store accepts: below this every commit rereads the tree's upper levels.
pub const MIN_CACHE_BYTES: usize = 16 << 20;

/// How a store is opened: the memory it may use for its page cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// Size of redb's page cache, at least [`MIN_CACHE_BYTES`]: the bound on the store's memory
    /// whatever the chain's length.
    pub cache_bytes: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self { cache_bytes: DEFAULT_CACHE_BYTES }
    }
}

/// File name of the database inside a data directory.
pub const DATABASE_FILE: &str = "chain.redb";

/// The on-disk layout. Public so that tools (and tests that tamper with a copy) name the same
/// tables; nothing outside this crate writes them in normal operation.
pub mod tables {
    use redb::TableDefinition;

    /// `format_version` (u32 big-endian) and `genesis` (canonical genesis bytes).
    pub const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");
    /// Height → canonical block bytes.
    pub const BLOCKS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("blocks");
    /// Height → block hash.
    pub const BLOCK_HASHES: TableDefinition<'_, u64, [u8; 32]> = TableDefinition::new("block_hashes");
    /// Block hash → height.
    pub const BLOCK_HEIGHTS: TableDefinition<'_, [u8; 32], u64> = TableDefinition::new("block_heights");
    /// Height → canonical receipt list.
    pub const RECEIPTS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("receipts");
    /// Transaction id → (height, index in block): a transaction is in the chain at most once.
    pub const TX_INDEX: TableDefinition<'_, [u8; 32], (u64, u32)> = TableDefinition::new("tx_index");
    /// State key → value, at the committed version.
    pub const STATE: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("state");
    /// State-tree node key (version big-endian, then the Borsh path) → node (Borsh, as the
    /// `jmt` crate encodes it): the nodes reachable from the committed version's root, plus
    /// those retired since the last pruning.
    pub const STATE_NODES: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("state_nodes");
    /// Retiring version (big-endian) ‖ node key → nothing: tree nodes no longer reachable,
    /// deleted from `state_nodes` in one sorted pass every `PRUNE_INTERVAL_VERSIONS` versions.
    pub const STATE_RETIRED: TableDefinition<'_, &[u8], ()> = TableDefinition::new("state_retired");
    /// (height, position) → root of the complete subtree of 2^height block-hash leaves at that
    /// position, for heights 1 and up (height 0 is the leaf hash of `block_hashes`): the
    /// chain's history tree, written with each block so it is never rebuilt in memory.
    pub const HISTORY: TableDefinition<'_, (u8, u64), [u8; 32]> = TableDefinition::new("history");
    /// Display names of member keys: this node's own directory, never on chain nor replicated.
    pub const DIRECTORY: TableDefinition<'_, [u8; 32], &str> = TableDefinition::new("directory");
    /// Height → the consensus finalization certificate that made that block final (opaque
    /// bytes here; the consensus crate encodes and verifies them). Kept to prove finality to
    /// peers that catch up.
    pub const FINALIZATIONS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("finalizations");
}

use tables::{
    BLOCK_HASHES, BLOCK_HEIGHTS, BLOCKS, DIRECTORY, FINALIZATIONS, HISTORY, META, RECEIPTS, STATE,
    STATE_NODES, STATE_RETIRED, TX_INDEX,
};

const META_FORMAT_VERSION: &str = "format_version";
const META_GENESIS: &str = "genesis";

/// What can go wrong with the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory holds no chain.
    #[error("no chain in {0}: run `medledger init` (or `medledger dev`) first")]
    NotInitialized(PathBuf),
    /// The data directory already holds a chain.
    #[error("{0} already holds a chain; refusing to overwrite it")]
    AlreadyInitialized(PathBuf),
    /// Another process has the database open.
    #[error("{0} is in use by another process (a running node?); stop it or ask the node with --node")]
    InUse(PathBuf),
    /// The file was written by an incompatible version.
    #[error(
        "store format version {found}, but this medledger reads version {FORMAT_VERSION}{}",
        if *found < FORMAT_VERSION { " (a chain from before the state tree: see \"Store format\" in docs/operators.md)" } else { "" }
    )]
    FormatVersion {
        /// The version in the file.
        found: u32,
    },
    /// Stored bytes do not decode.
    #[error("corrupt {what} at height {height}: {source}")]
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// Where.
        height: u64,
        /// The decoding error.
        source: DecodeError,
    },
    /// The stored genesis is invalid.
    #[error("stored genesis: {0}")]
    Genesis(#[from] GenesisError),
    /// The stored state does not match the last block.
    #[error("stored state does not match the last block: {0}")]
    StateMismatch(BlockError),
    /// A table or entry that must exist is missing.
    #[error("store is missing {0}")]
    Missing(String),
    /// A block holds a transaction the chain already has: validation never lets one through.
    #[error("transaction {index} of block {height} is already in the chain; the block is not stored")]
    DuplicateTransaction {
        /// The block.
        height: u64,
        /// The transaction's position in it.
        index: u32,
    },
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] redb::Error),
    /// The directory could not be created.
    #[error("data directory {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

fn db_error(error: impl Into<redb::Error>) -> StoreError {
    StoreError::Database(error.into())
}

/// Where a transaction is in the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxLocation {
    /// The block.
    pub height: u64,
    /// Position in the block.
    pub index: u32,
}

/// The store. `Store` (read-write, one process) runs a node; `Store<ReadOnlyDatabase>` is for
/// offline tools such as `medledger verify`.
pub struct Store<D = Database> {
    db: D,
    path: PathBuf,
}

/// A store opened read-only, for offline tools.
pub type ReadOnlyStore = Store<ReadOnlyDatabase>;

/// Path of the database file in a data directory.
#[must_use]
pub fn database_path(data_dir: &Path) -> PathBuf {
    data_dir.join(DATABASE_FILE)
}

fn open_error(path: &Path, error: redb::DatabaseError) -> StoreError {
    match error {
        redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse(path.to_owned()),
        other => db_error(other),
    }
}

impl Store<Database> {
    /// Creates a new chain in `data_dir` (created if missing) from `genesis`, with the default
    /// options.
    pub fn create(data_dir: &Path, genesis: &Genesis) -> Result<(Self, Chain), StoreError> {
        Self::create_with(data_dir, genesis, StoreOptions::default())
    }

    /// Creates a new chain in `data_dir` (created if missing) from `genesis`.
    pub fn create_with(
        data_dir: &Path,
        genesis: &Genesis,
        options: StoreOptions,
    ) -> Result<(Self, Chain), StoreError> {
        genesis.validate()?;
        std::fs::create_dir_all(data_dir)
            .map_err(|source| StoreError::Io { path: data_dir.to_owned(), source })?;
        let path = database_path(data_dir);
        if path.exists() {
            return Err(StoreError::AlreadyInitialized(data_dir.to_owned()));
        }
        let db = database_builder(options).create(&path).map_err(|error| open_error(&path, error))?;
        let mut chain = Chain::from_genesis(genesis.clone());
        let mut txn = db.begin_write().map_err(db_error)?;
        txn.set_durability(Durability::Immediate).map_err(db_error)?;
        {
            let mut meta = txn.open_table(META).map_err(db_error)?;
            meta.insert(META_FORMAT_VERSION, FORMAT_VERSION.to_be_bytes().as_slice()).map_err(db_error)?;
            meta.insert(META_GENESIS, genesis.encode().as_slice()).map_err(db_error)?;
            for version in chain.state().uncommitted() {
                write_state(&txn, version)?;
            }
            for table in [BLOCKS, RECEIPTS] {
                txn.open_table(table).map_err(db_error)?;
            }
            txn.open_table(BLOCK_HASHES).map_err(db_error)?;
            txn.open_table(BLOCK_HEIGHTS).map_err(db_error)?;
            txn.open_table(HISTORY).map_err(db_error)?;
            txn.open_table(TX_INDEX).map_err(db_error)?;
            txn.open_table(DIRECTORY).map_err(db_error)?;
            txn.open_table(FINALIZATIONS).map_err(db_error)?;
        }
        txn.commit().map_err(db_error)?;
        let store = Self { db, path };
        chain.rebase(store.snapshot()?);
        Ok((store, chain))
    }

    /// Opens the chain in `data_dir` with the default options and checks it against the last
    /// block.
    pub fn open(data_dir: &Path) -> Result<(Self, Chain), StoreError> {
        Self::open_with(data_dir, StoreOptions::default())
    }

    /// Opens the chain in `data_dir`, reads the state's root and checks it against the last
    /// block.
    pub fn open_with(data_dir: &Path, options: StoreOptions) -> Result<(Self, Chain), StoreError> {
        let path = database_path(data_dir);
        if !path.exists() {
            return Err(StoreError::NotInitialized(data_dir.to_owned()));
        }
        let db = database_builder(options).open(&path).map_err(|error| open_error(&path, error))?;
        let store = Self { db, path };
        store.check_format_version()?;
        store.add_history_if_missing()?;
        let chain = store.load_chain()?;
        Ok((store, chain))
    }

    /// Sets (or with `None` removes) the display name of a member key in this node's directory.
    pub fn set_display_name(&self, key: &PublicKey, name: Option<&str>) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db_error)?;
        {
            let mut directory = txn.open_table(DIRECTORY).map_err(db_error)?;
            match name {
                Some(name) => directory.insert(key.as_bytes(), name).map_err(db_error)?,
                None => directory.remove(key.as_bytes()).map_err(db_error)?,
            };
        }
        txn.commit().map_err(db_error)
    }

    /// Persists a verified block, its receipts, index entries and state changes in one
    /// durable transaction.
    pub fn commit(&self, verified: &VerifiedBlock) -> Result<(), StoreError> {
        self.commit_final(verified, None)
    }

    /// Like [`Store::commit`], also recording the finalization certificate that proves the
    /// block final, in the same write transaction.
    pub fn commit_final(
        &self,
        verified: &VerifiedBlock,
        finalization: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let block = verified.block();
        let height = block.header.height;
        let mut txn = self.db.begin_write().map_err(db_error)?;
        txn.set_durability(Durability::Immediate).map_err(db_error)?;
        {
            txn.open_table(BLOCKS)
                .map_err(db_error)?
                .insert(height, block.encode().as_slice())
                .map_err(db_error)?;
            {
                let mut hashes = txn.open_table(BLOCK_HASHES).map_err(db_error)?;
                hashes.insert(height, verified.hash().0).map_err(db_error)?;
                let mut history = txn.open_table(HISTORY).map_err(db_error)?;
                write_history(&mut history, &hashes, height, verified.hash())?;
            }
            txn.open_table(BLOCK_HEIGHTS)
                .map_err(db_error)?
                .insert(verified.hash().0, height)
                .map_err(db_error)?;
            txn.open_table(RECEIPTS)
                .map_err(db_error)?
                .insert(height, verified.receipts().encode().as_slice())
                .map_err(db_error)?;
            let mut tx_index = txn.open_table(TX_INDEX).map_err(db_error)?;
            for (index, receipt) in verified.receipts().iter().enumerate() {
                let index = u32::try_from(index).expect("blocks hold at most MAX_BLOCK_TXS");
                // Validation admits a transaction once per chain (its signer's nonce), so an
                // entry already there means that rule broke: refuse the block, overwrite nothing.
                if tx_index.insert(receipt.tx_id.0.0, (height, index)).map_err(db_error)?.is_some() {
                    return Err(StoreError::DuplicateTransaction { height, index });
                }
            }
            if let Some(finalization) = finalization {
                txn.open_table(FINALIZATIONS)
                    .map_err(db_error)?
                    .insert(height, finalization)
                    .map_err(db_error)?;
            }
        }
        write_state(&txn, verified.prepared())?;
        txn.commit().map_err(db_error)
    }

    /// Writes the history table of a store from before it existed (format 3 as first
    /// released): one pass over the block hashes, once.
    fn add_history_if_missing(&self) -> Result<(), StoreError> {
        if self.has_history()? {
            return Ok(());
        }
        let height = self.height()?;
        let mut txn = self.db.begin_write().map_err(db_error)?;
        txn.set_durability(Durability::Immediate).map_err(db_error)?;
        {
            let hashes = txn.open_table(BLOCK_HASHES).map_err(db_error)?;
            let mut history = txn.open_table(HISTORY).map_err(db_error)?;
            for entry in hashes.range(1..=height).map_err(db_error)? {
                let (height, hash) = entry.map_err(db_error)?;
                write_history(&mut history, &hashes, height.value(), Digest(hash.value()))?;
            }
        }
        txn.commit().map_err(db_error)
    }
}

/// Adds block `height`'s hash (leaf `height - 1`) to the history: the subtrees it completes,
/// each from its left half, already stored. Leaves themselves stay in `block_hashes`.
fn write_history(
    history: &mut redb::Table<'_, (u8, u64), [u8; 32]>,
    hashes: &impl ReadableTable<u64, [u8; 32]>,
    height: u64,
    block_hash: Digest,
) -> Result<(), StoreError> {
    let left_half = |subtree: u32, position: u64| -> Result<Digest, StoreError> {
        if subtree == 0 {
            // Leaf `position` is block `position + 1`.
            let block = position + 1;
            let hash = hashes.get(block).map_err(db_error)?;
            let hash = hash.ok_or_else(|| StoreError::Missing(format!("the hash of block {block}")))?;
            return Ok(leaf_hash(&hash.value()));
        }
        let node = history.get((history_height(subtree), position)).map_err(db_error)?;
        let node =
            node.ok_or_else(|| StoreError::Missing(format!("history subtree {subtree}/{position}")))?;
        Ok(Digest(node.value()))
    };
    let completed = completed_subtrees(height - 1, leaf_hash(block_hash.as_bytes()), left_half)?;
    for (subtree, position, root) in completed.into_iter().skip(1) {
        history.insert((history_height(subtree), position), root.0).map_err(db_error)?;
    }
    Ok(())
}

/// A subtree height as the `history` table keys it.
fn history_height(height: u32) -> u8 {
    u8::try_from(height).expect("subtree heights are below 65")
}

/// The page cache bound, set on every open: redb would otherwise take 1 GiB.
fn database_builder(options: StoreOptions) -> redb::Builder {
    let mut builder = Database::builder();
    builder.set_cache_size(options.cache_bytes.max(MIN_CACHE_BYTES));
    builder
}

/// Retired tree nodes are deleted every this many versions, in one pass sorted by node key.
/// Deleting them in the commit that retires them rewrites a page at a random place for almost
/// every node (they sit with the version that wrote them); a sorted pass over many versions
/// rewrites each page once. The price is disk: up to this many versions of retired nodes.
pub const PRUNE_INTERVAL_VERSIONS: u64 = 16;

/// Writes one state version: its entries, its new tree nodes, and the nodes it retires; every
/// [`PRUNE_INTERVAL_VERSIONS`] versions, deletes the retired nodes.
fn write_state(txn: &redb::WriteTransaction, version: &PreparedWrites) -> Result<(), StoreError> {
    let mut state = txn.open_table(STATE).map_err(db_error)?;
    for (key, value) in version.write_set().iter() {
        match value {
            Some(value) => state.insert(key, value).map_err(db_error)?,
            None => state.remove(key).map_err(db_error)?,
        };
    }
    let mut nodes = txn.open_table(STATE_NODES).map_err(db_error)?;
    for (key, node) in version.new_nodes() {
        nodes
            .insert(snapshot::encode_node_key(key).as_slice(), snapshot::encode_node(node).as_slice())
            .map_err(db_error)?;
    }
    {
        let mut retired = txn.open_table(STATE_RETIRED).map_err(db_error)?;
        let prefix = version.version().to_be_bytes();
        for node in version.stale_nodes() {
            let key = [prefix.as_slice(), &snapshot::encode_node_key(node)].concat();
            retired.insert(key.as_slice(), ()).map_err(db_error)?;
        }
    }
    if (version.version() + 1).is_multiple_of(PRUNE_INTERVAL_VERSIONS) {
        prune_retired(txn, &mut nodes)?;
    }
    Ok(())
}

/// Deletes every retired node, in node-key order, and empties the retired list.
fn prune_retired(
    txn: &redb::WriteTransaction,
    nodes: &mut redb::Table<'_, &'static [u8], &'static [u8]>,
) -> Result<(), StoreError> {
    let mut keys: Vec<Vec<u8>> = {
        let retired = txn.open_table(STATE_RETIRED).map_err(db_error)?;
        retired
            .iter()
            .map_err(db_error)?
            .map(|entry| entry.map(|(key, _)| key.value()[8..].to_vec()).map_err(db_error))
            .collect::<Result<_, _>>()?
    };
    keys.sort_unstable();
    for key in &keys {
        nodes.remove(key.as_slice()).map_err(db_error)?;
    }
    txn.delete_table(STATE_RETIRED).map_err(db_error)?;
    Ok(())
}

impl Store<ReadOnlyDatabase> {
    /// Opens `data_dir` for reading only, without loading the state: for tools that check
    /// the chain block by block.
    pub fn open_read_only(data_dir: &Path) -> Result<Self, StoreError> {
        let path = database_path(data_dir);
        if !path.exists() {
            return Err(StoreError::NotInitialized(data_dir.to_owned()));
        }
        let db = match ReadOnlyDatabase::open(&path) {
            Err(redb::DatabaseError::RepairAborted) => {
                // The last writer was killed: a read-only handle cannot recover, so let redb
                // roll the file back to its last committed transaction first. This is the
                // same recovery a restarting node performs; no committed block is lost.
                Database::open(&path).map_err(|error| open_error(&path, error))?;
                ReadOnlyDatabase::open(&path).map_err(|error| open_error(&path, error))?
            }
            other => other.map_err(|error| open_error(&path, error))?,
        };
        let store = Self { db, path };
        store.check_format_version()?;
        if !store.has_history()? {
            // A store from before the history table: let a read-write open add it, as a
            // restarting node would, then read the result.
            let Self { db, path } = store;
            drop(db);
            let writer = Store { db: Database::open(&path).map_err(|error| open_error(&path, error))?, path };
            writer.add_history_if_missing()?;
            let Store { db, path } = writer;
            drop(db);
            let db = ReadOnlyDatabase::open(&path).map_err(|error| open_error(&path, error))?;
            return Ok(Self { db, path });
        }
        Ok(store)
    }
}

impl<D: ReadableDatabase> Store<D> {
    /// Path of the database file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the store has its history table (every store created since the table exists).
    fn has_history(&self) -> Result<bool, StoreError> {
        let txn = self.db.begin_read().map_err(db_error)?;
        match txn.open_table(HISTORY) {
            Ok(_) => Ok(true),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(false),
            Err(error) => Err(db_error(error)),
        }
    }

    fn check_format_version(&self) -> Result<(), StoreError> {
        let txn = self.db.begin_read().map_err(db_error)?;
        let meta = txn.open_table(META).map_err(db_error)?;
        let version = meta
            .get(META_FORMAT_VERSION)
            .map_err(db_error)?
            .ok_or_else(|| StoreError::Missing("the format version".into()))?;
        let bytes: [u8; 4] =
            version.value().try_into().map_err(|_| StoreError::Missing("a 4-byte format version".into()))?;
        match u32::from_be_bytes(bytes) {
            FORMAT_VERSION => Ok(()),
            found => Err(StoreError::FormatVersion { found }),
        }
    }

    /// The chain at the stored head, over the stored state and history, checked against the
    /// head's roots.
    pub fn load_chain(&self) -> Result<Chain, StoreError> {
        self.check_format_version()?;
        let genesis = self.genesis()?;
        let head = match self.height()? {
            0 => None,
            height => Some(self.header(height)?),
        };
        let snapshot = self.snapshot()?;
        let state = State::new(snapshot.clone());
        Chain::restore(genesis, state, head, History::new(snapshot)).map_err(StoreError::StateMismatch)
    }

    /// A consistent view of the committed state, for execution and proofs. Later commits do not
    /// change it; hold it only as long as needed, since redb keeps its pages until it is dropped.
    pub fn snapshot(&self) -> Result<Arc<StoreSnapshot>, StoreError> {
        let txn = self.db.begin_read().map_err(db_error)?;
        let height = last_height(&txn)?;
        Ok(Arc::new(StoreSnapshot::new(&txn, height)?))
    }

    /// The chain's genesis.
    pub fn genesis(&self) -> Result<Genesis, StoreError> {
        let txn = self.db.begin_read().map_err(db_error)?;
        let meta = txn.open_table(META).map_err(db_error)?;
        let bytes =
            meta.get(META_GENESIS).map_err(db_error)?.ok_or_else(|| StoreError::Missing("genesis".into()))?;
        Ok(Genesis::from_canonical(bytes.value())?)
    }

    /// Height of the last committed block (0 if none).
    pub fn height(&self) -> Result<u64, StoreError> {
        last_height(&self.db.begin_read().map_err(db_error)?)
    }

    /// The canonical bytes of the block at `height`.
    pub fn block_bytes(&self, height: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(db_error)?;
        let blocks = txn.open_table(BLOCKS).map_err(db_error)?;
        Ok(blocks.get(height).map_err(db_error)?.map(|bytes| bytes.value().to_vec()))
    }

    /// The block at `height`.
    pub fn block(&self, height: u64) -> Result<Option<Block>, StoreError> {
        self.block_bytes(height)?
            .map(|bytes| {
                Block::decode(&bytes).map_err(|source| StoreError::Corrupt { what: "block", height, source })
            })
            .transpose()
    }

    /// The header of the block at `height`, which must exist.
    pub fn header(&self, height: u64) -> Result<BlockHeader, StoreError> {
        let bytes =
            self.block_bytes(height)?.ok_or_else(|| StoreError::Missing(format!("block {height}")))?;
        let mut reader = medledger_types::Reader::new(&bytes);
        BlockHeader::decode_from(&mut reader).map_err(|source| StoreError::Corrupt {
            what: "block header",
            height,
            source,
        })
    }

    /// The height of the block with hash `hash`.
    pub fn height_of(&self, hash: &Digest) -> Result<Option<u64>, StoreError> {
        let txn = self.db.begin_read().map_err(db_error)?;
        let heights = txn.open_table(BLOCK_HEIGHTS).map_err(db_error)?;
        Ok(heights.get(hash.0).map_err(db_error)?.map(|height| height.value()))
    }

    /// The receipts of the block at `height`.
    pub fn receipts(&self, height: u64) -> Result<Option<Vec<Receipt>>, StoreError> {
        let txn = self.db.begin_read().map_err(db_error)?;
        let receipts = txn.open_table(RECEIPTS).map_err(db_error)?;
        receipts
            .get(height)
            .map_err(db_error)?
            .map(|bytes| {
                Vec::<Receipt>::decode(bytes.value()).map_err(|source| StoreError::Corrupt {
                    what: "receipts",
                    height,
                    source,
                })
            })
            .transpose()
    }

    /// Where transaction `id` was first included.
    pub fn tx_location(&self, id: &TxId) -> Result<Option<TxLocation>, StoreError> {
        let txn = self.db.begin_read().map_err(db_error)?;
        let index = txn.open_table(TX_INDEX).map_err(db_error)?;
        Ok(index.get(id.0.0).map_err(db_error)?.map(|location| {
            let (height, index) = location.value();
            TxLocation { height, index }
        }))
    }

    /// The lowest height at or above `height` that has a stored finalization certificate,
    /// with the certificate's bytes.
    pub fn finalization_at_or_above(&self, height: u64) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        let txn = self.db.begin_read().map_err(db_error)?;
        let finalizations = match txn.open_table(FINALIZATIONS) {
            Ok(table) => table,
            // A store written by a single-validator node before it joined a network.
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(error) => return Err(db_error(error)),
        };
        let mut range = finalizations.range(height..).map_err(db_error)?;
        Ok(range
            .next()
            .transpose()
            .map_err(db_error)?
            .map(|(height, bytes)| (height.value(), bytes.value().to_vec())))
    }

    /// The display name of a member key in this node's directory.
    pub fn display_name(&self, key: &PublicKey) -> Result<Option<String>, StoreError> {
        let txn = self.db.begin_read().map_err(db_error)?;
        let directory = txn.open_table(DIRECTORY).map_err(db_error)?;
        Ok(directory.get(key.as_bytes()).map_err(db_error)?.map(|name| name.value().to_owned()))
    }
}

fn last_height(txn: &redb::ReadTransaction) -> Result<u64, StoreError> {
    let hashes = txn.open_table(BLOCK_HASHES).map_err(db_error)?;
    Ok(hashes.last().map_err(db_error)?.map_or(0, |(height, _)| height.value()))
}

//! `medledger verify`: replay a chain from genesis and check everything.

use std::path::{Path, PathBuf};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use medledger_api::StateProofView;
use medledger_crypto::Digest;
use medledger_state::{HistoryStore, StateProof, StateStore, keys};
use medledger_store::{ReadOnlyStore, Store, StoreSnapshot};
use medledger_types::{Block, BlockHeader, Decode, Genesis, Receipt};
use serde::Deserialize;

use crate::client::Client;
use crate::{Cli, CliError, Target};

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Fail unless the chain's genesis has this hash (pin the chain you expect).
    #[arg(long, value_name = "HASH")]
    genesis_hash: Option<Digest>,
    /// Check a state proof saved from `GET /v1/state/proof` instead of a chain: offline, against
    /// the block header it carries.
    #[arg(long, value_name = "FILE", conflicts_with = "genesis_hash")]
    state_proof: Option<PathBuf>,
    /// With --state-proof: fail unless the proof's header is this block (pin the block you trust).
    #[arg(long, value_name = "HASH", requires = "state_proof")]
    block_hash: Option<Digest>,
}

/// Where the blocks come from.
trait BlockSource {
    fn genesis(&self) -> Result<Genesis, CliError>;
    fn height(&self) -> Result<u64, CliError>;
    fn block_bytes(&self, height: u64) -> Result<Vec<u8>, CliError>;
    fn receipts(&self, height: u64) -> Result<Vec<Receipt>, CliError>;
    /// The state the source holds, to compare with the replayed one; `None` when it cannot be
    /// read directly (a node over HTTP).
    fn state(&self) -> Result<Option<std::sync::Arc<StoreSnapshot>>, CliError> {
        Ok(None)
    }
}

impl BlockSource for ReadOnlyStore {
    fn genesis(&self) -> Result<Genesis, CliError> {
        Ok(ReadOnlyStore::genesis(self)?)
    }

    fn height(&self) -> Result<u64, CliError> {
        Ok(ReadOnlyStore::height(self)?)
    }

    fn block_bytes(&self, height: u64) -> Result<Vec<u8>, CliError> {
        ReadOnlyStore::block_bytes(self, height)?
            .ok_or(CliError::Verification { height, reason: "the block is missing from the store".into() })
    }

    fn receipts(&self, height: u64) -> Result<Vec<Receipt>, CliError> {
        match ReadOnlyStore::receipts(self, height) {
            Ok(Some(receipts)) => Ok(receipts),
            Ok(None) => {
                Err(CliError::Verification { height, reason: "the block's receipts are missing".into() })
            }
            Err(error) => Err(CliError::Verification { height, reason: error.to_string() }),
        }
    }

    fn state(&self) -> Result<Option<std::sync::Arc<StoreSnapshot>>, CliError> {
        Ok(Some(self.snapshot()?))
    }
}

impl BlockSource for Client {
    fn genesis(&self) -> Result<Genesis, CliError> {
        Genesis::from_canonical(&self.get_bytes("/v1/genesis")?)
            .map_err(|error| CliError::Verification { height: 0, reason: format!("genesis: {error}") })
    }

    fn height(&self) -> Result<u64, CliError> {
        #[derive(Deserialize)]
        struct Status {
            height: u64,
        }
        Ok(self.get_json::<Status>("/v1/status")?.height)
    }

    fn block_bytes(&self, height: u64) -> Result<Vec<u8>, CliError> {
        self.get_bytes(&format!("/v1/blocks/{height}"))
    }

    fn receipts(&self, height: u64) -> Result<Vec<Receipt>, CliError> {
        #[derive(Deserialize)]
        struct Receipts {
            receipts: Vec<Receipt>,
        }
        Ok(self.get_json::<Receipts>(&format!("/v1/blocks/{height}/receipts"))?.receipts)
    }
}

pub fn run(cli: &Cli, args: &VerifyArgs) -> Result<(), CliError> {
    if let Some(path) = &args.state_proof {
        return check_state_proof(path, args.block_hash);
    }
    match cli.target()? {
        Target::DataDir(dir) => verify(&ReadOnlyStore::open_read_only(&dir)?, args),
        Target::Node(url) => verify(&Client::new(&url), args),
    }
}

/// Replays every block from genesis; returns the first failure.
fn verify(source: &impl BlockSource, args: &VerifyArgs) -> Result<(), CliError> {
    let genesis = source.genesis()?;
    let genesis_hash = genesis.hash();
    if let Some(expected) = args.genesis_hash
        && expected != genesis_hash
    {
        return Err(CliError::Verification {
            height: 0,
            reason: format!("genesis hash is {genesis_hash}, expected {expected}"),
        });
    }
    let height = source.height()?;
    let progress = ProgressBar::new(height).with_style(
        ProgressStyle::with_template("verifying {bar:40} {pos}/{len} blocks ({per_sec}, {eta} left)")
            .expect("the progress template is valid"),
    );
    // The replay writes its state to a scratch store, so it is read from disk as a node reads
    // it, and memory stays bounded whatever the chain's length.
    let scratch = tempfile::tempdir().map_err(CliError::io(std::env::temp_dir()))?;
    let (replay, mut chain) = Store::create(scratch.path(), &genesis)?;
    let mut transactions = 0usize;
    for height in 1..=height {
        let fail = |reason: String| CliError::Verification { height, reason };
        let block = Block::decode(&source.block_bytes(height)?)
            .map_err(|error| fail(format!("undecodable block: {error}")))?;
        let verified = chain.validate(block).map_err(|error| fail(error.to_string()))?;
        if source.receipts(height)? != verified.receipts() {
            return Err(fail("stored receipts differ from the receipts the block produces".into()));
        }
        transactions += verified.block().transactions.len();
        replay.commit(&verified)?;
        chain.commit(verified);
        chain.rebase(replay.snapshot()?);
        progress.inc(1);
    }
    if let Some(stored) = source.state()? {
        let replayed = replay.snapshot()?;
        compare_states(stored.as_ref(), replayed.as_ref())
            .and_then(|()| compare_histories(stored.as_ref(), replayed.as_ref()))
            .map_err(|reason| CliError::Verification { height, reason })?;
    }
    progress.finish_and_clear();
    println!("verified {height} blocks and {transactions} transactions from genesis {genesis_hash}");
    println!("  head      {}", chain.head_hash());
    println!("  state     {}", chain.state().root());
    println!("  history   {}", chain.history().root());
    Ok(())
}

/// Compares a stored state, entry by entry, with the state the replay produced: the stored
/// entries are what a node executes against, while only the tree is checked at start-up.
fn compare_states(stored: &dyn StateStore, replayed: &dyn StateStore) -> Result<(), String> {
    let mut stored_entries = stored.scan(b"", None);
    let mut replayed_entries = replayed.scan(b"", None);
    for position in 0usize.. {
        match (stored_entries.next(), replayed_entries.next()) {
            (None, None) => return Ok(()),
            (stored, replayed) if stored == replayed => {}
            (stored, replayed) => {
                // Name the entry's kind, never its key: keys hold pseudonymous patient ids.
                let key = stored.or(replayed).map(|(key, _)| key).unwrap_or_default();
                return Err(format!(
                    "the stored state differs from the replayed state at entry {position} ({})",
                    keys::kind_of(&key)
                ));
            }
        }
    }
    unreachable!("the loop returns when both states end")
}

/// Compares every stored subtree of the block history with the replay's: opening a store
/// checks only those under the head's history root, and consistency proofs read all of them.
fn compare_histories(stored: &dyn HistoryStore, replayed: &dyn HistoryStore) -> Result<(), String> {
    let blocks = replayed.block_count();
    if stored.block_count() != blocks {
        return Err(format!("the stored history holds {} blocks, not {blocks}", stored.block_count()));
    }
    for height in 1..=blocks.checked_ilog2().unwrap_or(0) {
        for position in 0..blocks >> height {
            if stored.complete_subtree(height, position) != replayed.complete_subtree(height, position) {
                let first = (position << height) + 1;
                let last = (position + 1) << height;
                return Err(format!(
                    "the stored history differs from the replayed one over blocks {first} to {last}"
                ));
            }
        }
    }
    Ok(())
}

/// Checks a saved state proof: the header hashes to the block named, and the proof leads from
/// the key and value (or the key's absence) to the header's state root.
fn check_state_proof(path: &Path, expected_block: Option<Digest>) -> Result<(), CliError> {
    let text = std::fs::read_to_string(path).map_err(CliError::io(path))?;
    let file: StateProofView = serde_json::from_str(&text)
        .map_err(|error| CliError::Config(format!("{}: not a state proof: {error}", path.display())))?;
    let fail = |reason: String| CliError::Verification { height: file.height, reason };
    let hex_field =
        |name: &str, value: &str| hex::decode(value).map_err(|_| fail(format!("the {name} is not hex")));
    let header = BlockHeader::decode(&hex_field("header", &file.header)?)
        .map_err(|error| fail(format!("the header does not decode: {error}")))?;
    let block_hash = header.hash();
    if block_hash != file.block_hash || header.height != file.height || header.state_root != file.state_root {
        return Err(fail(
            "the header does not match the block hash, height or state root given with it".into(),
        ));
    }
    if let Some(expected) = expected_block
        && expected != block_hash
    {
        return Err(fail(format!("the proof is for block {block_hash}, expected {expected}")));
    }
    let key = hex_field("key", &file.key)?;
    let value = file.value.as_deref().map(|value| hex_field("value", value)).transpose()?;
    let proof = StateProof::from_parts(key, value, &hex_field("proof", &file.proof)?)
        .map_err(|error| fail(error.to_string()))?;
    proof.verify(header.state_root).map_err(|error| fail(error.to_string()))?;
    let holds = proof
        .value
        .as_ref()
        .map_or_else(|| "is absent".to_owned(), |value| format!("holds {} bytes", value.len()));
    println!("state proof holds: the key {holds} at height {} (block {block_hash})", header.height);
    println!("  state     {}", header.state_root);
    Ok(())
}

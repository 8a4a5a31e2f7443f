//! `medledger verify`: replay a chain from genesis and check everything.

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use medledger_crypto::Digest;
use medledger_state::Chain;
use medledger_store::ReadOnlyStore;
use medledger_types::{Block, Decode, Genesis, Receipt};
use serde::Deserialize;

use crate::client::Client;
use crate::{Cli, CliError, Target};

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Fail unless the chain's genesis has this hash (pin the chain you expect).
    #[arg(long, value_name = "HASH")]
    genesis_hash: Option<Digest>,
}

/// Where the blocks come from.
trait BlockSource {
    fn genesis(&self) -> Result<Genesis, CliError>;
    fn height(&self) -> Result<u64, CliError>;
    fn block_bytes(&self, height: u64) -> Result<Vec<u8>, CliError>;
    fn receipts(&self, height: u64) -> Result<Vec<Receipt>, CliError>;
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
    let mut chain = Chain::from_genesis(genesis);
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
        chain.commit(verified);
        progress.inc(1);
    }
    progress.finish_and_clear();
    println!("verified {height} blocks and {transactions} transactions from genesis {genesis_hash}");
    println!("  head      {}", chain.head_hash());
    println!("  state     {}", chain.state().root());
    println!("  history   {}", chain.history().root());
    Ok(())
}

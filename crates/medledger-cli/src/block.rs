//! `medledger block`: show blocks from a data directory or a node.

use clap::Subcommand;
use medledger_crypto::Digest;
use medledger_store::{ReadOnlyStore, Store};
use serde_json::{Value, json};

use crate::client::Client;
use crate::tx::print_json;
use crate::{Cli, CliError, Target};

#[derive(Debug, Subcommand)]
pub enum BlockCommand {
    /// Show one block with its receipts: by height, by 64-hex hash, or `latest`.
    Show {
        /// Height, hash or `latest`.
        #[arg(default_value = "latest")]
        reference: String,
    },
}

pub fn run(cli: &Cli, command: &BlockCommand) -> Result<(), CliError> {
    let BlockCommand::Show { reference } = command;
    let view = match cli.target()? {
        Target::Node(url) => {
            let client = Client::new(&url);
            let mut view: Value = client.get_json(&format!("/v1/blocks/{reference}"))?;
            let receipts: Value = client.get_json(&format!("/v1/blocks/{reference}/receipts"))?;
            view["receipts"] = receipts["receipts"].clone();
            view
        }
        Target::DataDir(dir) => {
            let store = Store::open_read_only(&dir)?;
            let height = resolve(&store, reference)?;
            let block = store
                .block(height)?
                .ok_or_else(|| CliError::Usage(format!("no block at height {height}")))?;
            let receipts = store.receipts(height)?;
            json!({ "hash": block.hash(), "block": block, "receipts": receipts })
        }
    };
    print_json(&view);
    Ok(())
}

fn resolve(store: &ReadOnlyStore, reference: &str) -> Result<u64, CliError> {
    let height = if reference == "latest" {
        store.height()?
    } else if let Ok(hash) = reference.parse::<Digest>() {
        store.height_of(&hash)?.ok_or_else(|| CliError::Usage(format!("no block with hash {hash}")))?
    } else {
        reference
            .parse()
            .map_err(|_| CliError::Usage("name a block by height, 64-hex hash, or 'latest'".into()))?
    };
    if height == 0 {
        return Err(CliError::Usage("no block yet: the chain holds only its genesis".into()));
    }
    Ok(height)
}

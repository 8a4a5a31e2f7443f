//! `medledger init`: a new chain in a data directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use medledger_crypto::SigningKey;
use medledger_store::Store;
use medledger_types::{ChainId, Genesis, GenesisMember};

use crate::config::NodeFile;
use crate::{Cli, CliError, DEFAULT_LISTEN};

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Chain id for a new genesis.
    #[arg(long, default_value = "medledger-local")]
    chain_id: String,
    /// Use this genesis file instead of creating one (to join an existing chain).
    #[arg(long, value_name = "FILE")]
    genesis: Option<PathBuf>,
    /// Use this node key instead of generating one.
    #[arg(long, value_name = "FILE")]
    node_key: Option<PathBuf>,
    /// API address written into node.toml.
    #[arg(long, default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
}

/// Paths `init` creates inside a data directory.
pub struct Layout {
    pub keys_dir: PathBuf,
    pub node_key: PathBuf,
    pub genesis: PathBuf,
    pub config: PathBuf,
}

impl Layout {
    pub fn of(data_dir: &Path) -> Self {
        let keys_dir = data_dir.join("keys");
        Self {
            node_key: keys_dir.join("node.pem"),
            keys_dir,
            genesis: data_dir.join("genesis.json"),
            config: data_dir.join("node.toml"),
        }
    }
}

pub fn run(cli: &Cli, args: &InitArgs) -> Result<(), CliError> {
    let data_dir = cli.data_dir.clone().ok_or_else(|| CliError::Usage("init needs --data-dir DIR".into()))?;
    let layout = Layout::of(&data_dir);
    if medledger_store::database_path(&data_dir).exists() {
        return Err(CliError::Usage(format!("{} already holds a chain", data_dir.display())));
    }
    std::fs::create_dir_all(&layout.keys_dir).map_err(CliError::io(&layout.keys_dir))?;
    let node_key = match &args.node_key {
        Some(path) => SigningKey::load(path)?,
        None => generate_key(&layout.node_key)?,
    };
    let genesis = match &args.genesis {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(CliError::io(path))?;
            Genesis::from_json(&text)
                .map_err(|error| CliError::Config(format!("{}: {error}", path.display())))?
        }
        None => {
            let chain_id =
                ChainId::new(args.chain_id.clone()).map_err(|error| CliError::Usage(error.to_string()))?;
            let admin = generate_key(&layout.keys_dir.join("admin.pem"))?;
            Genesis {
                chain_id,
                genesis_time_ms: crate::dev::now_ms(),
                validators: vec![node_key.public_key()],
                members: vec![GenesisMember { public_key: admin.public_key(), admin: true }],
            }
        }
    };
    std::fs::write(&layout.genesis, genesis.to_json()).map_err(CliError::io(&layout.genesis))?;
    Store::create(&data_dir, &genesis)?;
    let key_file = match &args.node_key {
        // The config resolves relative paths against its own directory, so store this one whole.
        Some(path) => std::fs::canonicalize(path).map_err(CliError::io(path))?,
        None => PathBuf::from("keys/node.pem"),
    };
    NodeFile {
        data_dir: PathBuf::from("."),
        listen: args.listen,
        key_file,
        block_interval_ms: medledger_node::NodeConfig::default().block_interval_ms,
        max_block_txs: medledger_node::NodeConfig::default().max_block_txs,
        mempool_max_txs: medledger_node::NodeConfig::default().mempool_max_txs,
    }
    .save(&layout.config)?;
    println!("initialised chain '{}' in {}", genesis.chain_id, data_dir.display());
    println!("  genesis hash  {}", genesis.hash());
    println!("  node key      {} ({})", node_key.public_key(), layout.node_key.display());
    println!("  config        {}", layout.config.display());
    println!("run it with:    medledger node --config {}", layout.config.display());
    Ok(())
}

/// Generates a key into `path` (mode 0600).
pub fn generate_key(path: &Path) -> Result<SigningKey, CliError> {
    let key = SigningKey::generate()?;
    key.save(path)?;
    Ok(key)
}

//! `medledger init`: a new chain in a data directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use medledger_crypto::{Digest, SigningKey};
use medledger_store::Store;
use medledger_types::{
    ChainId, Genesis, GenesisMember, GenesisOrganization, NodeAddress, NodeIdentity, OrgId, OrgKind, OrgSpec,
    Parameters, Role,
};

use crate::config::NodeFile;
use crate::{Cli, CliError, DEFAULT_LISTEN};

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Chain id for a new genesis.
    #[arg(long, default_value = "medledger-local")]
    chain_id: String,
    /// Use this genesis file instead of creating one (to join an existing chain).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["founders", "org_id"])]
    genesis: Option<PathBuf>,
    /// With --genesis: the genesis hash the consortium announced (64 hex digits); init
    /// refuses a genesis file with any other hash.
    #[arg(long, value_name = "HASH", requires = "genesis")]
    expect_genesis_hash: Option<Digest>,
    /// Create the genesis of a consortium from this JSON file of founding organisations
    /// (see docs/operators.md); this node's key must be one of their node keys.
    #[arg(long, value_name = "FILE", conflicts_with = "org_id")]
    founders: Option<PathBuf>,
    /// For a one-organisation chain: the founding organisation's id.
    #[arg(long, default_value = "founding-org")]
    org_id: String,
    /// For a one-organisation chain: its kind.
    #[arg(long, default_value = "hospital")]
    org_kind: OrgKind,
    /// For a one-organisation chain: its node's peer-to-peer address.
    #[arg(long, default_value = "127.0.0.1:9080")]
    p2p_address: String,
    /// Use this node key instead of generating one.
    #[arg(long, value_name = "FILE")]
    node_key: Option<PathBuf>,
    /// API address written into node.toml.
    #[arg(long, default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Peer-to-peer listening address written into node.toml. Required with --genesis when
    /// this node is not a founding organisation's: the registry does not know its address
    /// until governance admits it.
    #[arg(long, value_name = "ADDRESS")]
    p2p_listen: Option<SocketAddr>,
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

    /// The single founding organisation's administrator key.
    pub fn admin_key(&self) -> PathBuf {
        self.keys_dir.join("admin.pem")
    }
}

pub fn run(cli: &Cli, args: &InitArgs) -> Result<(), CliError> {
    let data_dir = cli.data_dir.clone().ok_or_else(|| CliError::Usage("init needs --data-dir DIR".into()))?;
    let layout = Layout::of(&data_dir);
    if medledger_store::database_path(&data_dir).exists() {
        return Err(CliError::Usage(format!("{} already holds a chain", data_dir.display())));
    }
    // Everything is checked before anything is written, so a refused init leaves no files.
    let node_key = match &args.node_key {
        Some(path) => SigningKey::load(path)?,
        None => SigningKey::generate()?,
    };
    let mut admin_key = None;
    let genesis = match (&args.genesis, &args.founders) {
        (Some(path), _) => Genesis::from_json(&read_text(path)?)
            .map_err(|error| CliError::Config(format!("{}: {error}", path.display())))?,
        (None, Some(path)) => founders_genesis(path, &read_text(path)?)?,
        (None, None) => {
            let admin = SigningKey::generate()?;
            let genesis = single_founder_genesis(args, &node_key, &admin)?;
            admin_key = Some(admin);
            genesis
        }
    };
    if let Some(expected) = &args.expect_genesis_hash
        && *expected != genesis.hash()
    {
        return Err(CliError::Config(format!(
            "the genesis file's hash is {}, not the expected {expected}: this is not the consortium's chain",
            genesis.hash()
        )));
    }
    let founding_node = genesis.validators().contains(&node_key.public_key());
    if !founding_node && (args.genesis.is_none() || args.p2p_listen.is_none()) {
        return Err(CliError::Config(format!(
            "the node key {} is not the node key of any founding organisation{}",
            node_key.public_key(),
            if args.genesis.is_some() {
                "; to join as a new organisation's node, give --p2p-listen (see docs/deploy.md)"
            } else {
                ""
            }
        )));
    }
    std::fs::create_dir_all(&layout.keys_dir).map_err(CliError::io(&layout.keys_dir))?;
    if args.node_key.is_none() {
        node_key.save(&layout.node_key)?;
    }
    if let Some(admin) = &admin_key {
        admin.save(&layout.admin_key())?;
    }
    std::fs::write(&layout.genesis, genesis.to_json()).map_err(CliError::io(&layout.genesis))?;
    Store::create(&data_dir, &genesis)?;
    let key_file = match &args.node_key {
        // The config resolves relative paths against its own directory, so store this one whole.
        Some(path) => std::fs::canonicalize(path).map_err(CliError::io(path))?,
        None => PathBuf::from("keys/node.pem"),
    };
    NodeFile::new(args.listen, key_file, args.p2p_listen, genesis.hash()).save(&layout.config)?;
    println!("initialised chain '{}' in {}", genesis.chain_id, data_dir.display());
    println!("  genesis hash  {} (every node of the chain must show the same)", genesis.hash());
    let node_key_path = args.node_key.as_ref().unwrap_or(&layout.node_key);
    println!("  node key      {} ({})", node_key.public_key(), node_key_path.display());
    if let Some(admin) = &admin_key {
        println!("  admin key     {} ({})", admin.public_key(), layout.admin_key().display());
    }
    println!("  config        {}", layout.config.display());
    if !founding_node {
        println!(
            "this node follows the chain; it joins consensus once governance admits its organisation \
             with node key {} (medledger org propose admit --node-key …)",
            node_key.public_key()
        );
    }
    println!("run it with:    medledger node --config {}", layout.config.display());
    Ok(())
}

/// Generates a key into `path` (mode 0600).
pub fn generate_key(path: &Path) -> Result<SigningKey, CliError> {
    let key = SigningKey::generate()?;
    key.save(path)?;
    Ok(key)
}

fn read_text(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(CliError::io(path))
}

/// A chain of one organisation: this node's, with one administrator.
fn single_founder_genesis(
    args: &InitArgs,
    node_key: &SigningKey,
    admin: &SigningKey,
) -> Result<Genesis, CliError> {
    let usage = |error: medledger_types::TextError| CliError::Usage(error.to_string());
    Ok(Genesis {
        chain_id: ChainId::new(args.chain_id.clone()).map_err(usage)?,
        genesis_time_ms: medledger_node::now_ms(),
        parameters: Parameters::default(),
        organizations: vec![GenesisOrganization {
            id: OrgId::new(args.org_id.clone()).map_err(usage)?,
            kind: args.org_kind,
            node: Some(NodeIdentity {
                public_key: node_key.public_key(),
                address: NodeAddress::new(args.p2p_address.clone()).map_err(usage)?,
            }),
            members: vec![GenesisMember {
                public_key: admin.public_key(),
                role: Role::Administrator,
                patient_id: None,
            }],
        }],
    })
}

/// The founders file: the chain id, optional parameters, and the founding organisations in
/// the same form governance admits organisations.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Founders {
    chain_id: ChainId,
    #[serde(default)]
    parameters: Parameters,
    organizations: Vec<OrgSpec>,
}

fn founders_genesis(path: &Path, text: &str) -> Result<Genesis, CliError> {
    let invalid = |error: &dyn std::fmt::Display| CliError::Config(format!("{}: {error}", path.display()));
    let founders: Founders = serde_json::from_str(text).map_err(|error| invalid(&error))?;
    let genesis = Genesis {
        chain_id: founders.chain_id,
        genesis_time_ms: medledger_node::now_ms(),
        parameters: founders.parameters,
        organizations: founders
            .organizations
            .into_iter()
            .map(|org| GenesisOrganization {
                id: org.id,
                kind: org.kind,
                node: org.node,
                members: org
                    .administrators
                    .into_iter()
                    .map(|public_key| GenesisMember {
                        public_key,
                        role: Role::Administrator,
                        patient_id: None,
                    })
                    .collect(),
            })
            .collect(),
    };
    genesis.validate().map_err(|error| invalid(&error))?;
    Ok(genesis)
}

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
    /// With --genesis: the genesis hash (64 hex digits) another organisation of the
    /// consortium announced, obtained out of band; init refuses a genesis file with any other
    /// hash, and warns when this is missing.
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
    let plan = Plan::check(args)?;
    let key_file = plan.write(args, &data_dir, &layout)?;
    plan.report(args, &data_dir, &layout);
    if key_file.is_absolute() {
        warn_key_outside(&key_file, &data_dir);
    }
    if args.genesis.is_some() && args.expect_genesis_hash.is_none() {
        warn_unchecked_genesis(&plan.genesis.hash());
    }
    Ok(())
}

/// What `init` writes, every part checked before anything is written.
struct Plan {
    node_key: SigningKey,
    /// The `--node-key` file, canonical; `None` when the key is generated.
    given_key_path: Option<PathBuf>,
    /// The single founding organisation's administrator key, generated.
    admin_key: Option<SigningKey>,
    genesis: Genesis,
    /// Whether the node key is a founding organisation's (else the node only follows).
    founding_node: bool,
}

impl Plan {
    fn check(args: &InitArgs) -> Result<Self, CliError> {
        let (node_key, given_key_path) = match &args.node_key {
            Some(path) => {
                (SigningKey::load(path)?, Some(std::fs::canonicalize(path).map_err(CliError::io(path))?))
            }
            None => (SigningKey::generate()?, None),
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
        Ok(Self { node_key, given_key_path, admin_key, genesis, founding_node })
    }

    /// Writes keys, genesis, store and `node.toml`; answers the config's `key_file`.
    fn write(&self, args: &InitArgs, data_dir: &Path, layout: &Layout) -> Result<PathBuf, CliError> {
        std::fs::create_dir_all(&layout.keys_dir).map_err(CliError::io(&layout.keys_dir))?;
        if self.given_key_path.is_none() {
            self.node_key.save(&layout.node_key)?;
        }
        if let Some(admin) = &self.admin_key {
            admin.save(&layout.admin_key())?;
        }
        let genesis = &self.genesis;
        std::fs::write(&layout.genesis, genesis.to_json()).map_err(CliError::io(&layout.genesis))?;
        Store::create(data_dir, genesis)?;
        let key_file = match &self.given_key_path {
            Some(path) => key_file_entry(path, data_dir)?,
            None => PathBuf::from("keys/node.pem"),
        };
        NodeFile::new(args.listen, key_file.clone(), args.p2p_listen, genesis.hash()).save(&layout.config)?;
        Ok(key_file)
    }

    fn report(&self, args: &InitArgs, data_dir: &Path, layout: &Layout) {
        let Self { node_key, genesis, .. } = self;
        println!("initialised chain '{}' in {}", genesis.chain_id, data_dir.display());
        println!("  genesis hash  {} (every node of the chain must show the same)", genesis.hash());
        let node_key_path = args.node_key.as_ref().unwrap_or(&layout.node_key);
        println!("  node key      {} ({})", node_key.public_key(), node_key_path.display());
        if let Some(admin) = &self.admin_key {
            println!("  admin key     {} ({})", admin.public_key(), layout.admin_key().display());
        }
        println!("  config        {}", layout.config.display());
        if !self.founding_node {
            println!(
                "this node follows the chain; it joins consensus once governance admits its organisation \
                 with node key {} (medledger org propose admit --node-key …)",
                node_key.public_key()
            );
        }
        println!("run it with:    medledger node --config {}", layout.config.display());
    }
}

/// How `node.toml` names a given node key (`key`, canonical): relative to the data directory
/// when the key lies inside it, so a data directory restored or moved under another path still
/// finds its key; absolute otherwise.
fn key_file_entry(key: &Path, data_dir: &Path) -> Result<PathBuf, CliError> {
    let data_dir = std::fs::canonicalize(data_dir).map_err(CliError::io(data_dir))?;
    Ok(key.strip_prefix(&data_dir).map_or_else(|_| key.to_owned(), Path::to_owned))
}

fn warn_key_outside(key_file: &Path, data_dir: &Path) {
    eprintln!(
        "warning: the node key {} lies outside the data directory {}.\n  \
         node.toml names it by that absolute path, and a copy of the data directory will not \
         include it:\n  back the key up on its own, and put it at the same path (or change \
         key_file) wherever the data directory is restored.",
        key_file.display(),
        data_dir.display()
    );
}

/// Joining without `--expect-genesis-hash` works, but nothing checked that the file is the
/// consortium's: say so loudly, with the hash to compare.
fn warn_unchecked_genesis(hash: &Digest) {
    eprintln!(
        "warning: this genesis file was NOT checked against the consortium's announced hash \
         (--expect-genesis-hash).\n  \
         An unchecked genesis is how an operator joins the wrong chain: a file swapped or \
         altered on its way starts this node on someone else's.\n  \
         Its hash is {hash}\n  \
         Compare it with the hash another organisation of the consortium gave you out of band \
         (read out on a call, in signed minutes), never with one that came with the file.\n  \
         If they differ, stop: delete this data directory and run init again with the right \
         genesis and --expect-genesis-hash."
    );
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

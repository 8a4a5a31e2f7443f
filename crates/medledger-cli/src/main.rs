//! `medledger`: run a MedLedger node or a dev chain, manage keys, submit transactions, inspect
//! and verify chains, and benchmark ingest.

mod bench;
mod block;
mod client;
mod config;
mod demo_records;
mod dev;
mod init;
mod keys;
mod member;
mod org;
mod record;
mod run;
mod tx;
mod vault;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Default API address of a local node.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// MedLedger: a permissioned ledger for healthcare consortia.
#[derive(Debug, Parser)]
#[command(name = "medledger", version, about, propagate_version = true)]
struct Cli {
    /// Work on the store in this data directory (offline).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Talk to the node at this URL.
    #[arg(long, global = true, value_name = "URL", env = "MEDLEDGER_NODE")]
    node: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a single-node dev chain with demo identities and transactions.
    Dev(dev::DevArgs),
    /// Create a new chain: keys, genesis, node config and an empty store.
    Init(init::InitArgs),
    /// Run a node from its config file.
    Node(run::NodeArgs),
    /// Generate and inspect Ed25519 key files.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// The organisation registry and consortium governance.
    #[command(subcommand)]
    Org(org::OrgCommand),
    /// Enrol, rotate, revoke and list member keys.
    #[command(subcommand)]
    Member(Box<member::MemberCommand>),
    /// Build, sign and submit transactions.
    #[command(subcommand)]
    Tx(tx::TxCommand),
    /// Show blocks.
    #[command(subcommand)]
    Block(block::BlockCommand),
    /// Patient records through the node's FHIR API: put, get, history, verify.
    #[command(subcommand)]
    Record(record::RecordCommand),
    /// Open a bearer session for a member key and print its token (for FHIR clients, curl).
    Session(record::SessionArgs),
    /// The node's vault key: seal a plain one with a passphrase.
    #[command(subcommand)]
    Vault(vault::VaultCommand),
    /// Verify a whole chain: every hash link, signature, transaction root and state root.
    Verify(verify::VerifyArgs),
    /// Measure performance.
    Bench(bench::BenchArgs),
}

/// What the user's command names as its chain.
pub enum Target {
    /// A data directory, read offline.
    DataDir(PathBuf),
    /// A node's API.
    Node(String),
}

impl Cli {
    /// `--data-dir` if given, else `--node`, else the default local node.
    fn target(&self) -> Result<Target, CliError> {
        match (&self.data_dir, &self.node) {
            (Some(_), Some(_)) => Err(CliError::Usage("give either --data-dir or --node, not both".into())),
            (Some(dir), None) => Ok(Target::DataDir(dir.clone())),
            (None, Some(url)) => Ok(Target::Node(url.clone())),
            (None, None) => Ok(Target::Node(format!("http://{DEFAULT_LISTEN}"))),
        }
    }

    /// The node URL for commands that submit transactions: `--node`, or the API address in
    /// `--data-dir`'s `node.toml` (a running node owns its store, so writes go through it).
    fn write_node_url(&self) -> Result<String, CliError> {
        match self.target()? {
            Target::Node(url) => Ok(url),
            Target::DataDir(dir) => {
                let config = config::NodeFile::load(&dir.join("node.toml"))?;
                let mut listen = config.listen;
                if listen.ip().is_unspecified() {
                    listen.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                }
                Ok(format!("http://{listen}"))
            }
        }
    }

    /// The node URL for commands that need a running node.
    fn node_url(&self) -> Result<String, CliError> {
        match self.target()? {
            Target::Node(url) => Ok(url),
            Target::DataDir(_) => {
                Err(CliError::Usage("this command talks to a running node: pass --node URL".into()))
            }
        }
    }
}

/// Errors the CLI reports before exiting with a non-zero status.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line is inconsistent.
    #[error("{0}")]
    Usage(String),
    /// A key file problem.
    #[error(transparent)]
    Key(#[from] medledger_crypto::KeyError),
    /// The store failed or holds no chain.
    #[error(transparent)]
    Store(#[from] medledger_store::StoreError),
    /// The node failed to start or run.
    #[error(transparent)]
    Node(#[from] medledger_node::NodeError),
    /// The record vault could not be opened.
    #[error(transparent)]
    Vault(#[from] medledger_vault::VaultError),
    /// The node answered with an error or could not be reached.
    #[error("{0}")]
    Remote(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A configuration or genesis file is invalid.
    #[error("{0}")]
    Config(String),
    /// `--wait` ended without the transaction in a block.
    #[error("transaction {tx_id} is not in a block: {why}")]
    NotInBlock {
        /// The transaction.
        tx_id: String,
        /// What the node last said, and what to do.
        why: String,
    },
    /// The transaction is in a block, but execution refused it (its nonce is used).
    #[error("transaction {tx_id} is in a block but was rejected: {reason}")]
    Rejected {
        /// The transaction.
        tx_id: String,
        /// The receipt's reason.
        reason: String,
    },
    /// A chain failed verification.
    #[error("verification failed at height {height}: {reason}")]
    Verification {
        /// The first bad height.
        height: u64,
        /// What is wrong there.
        reason: String,
    },
}

impl CliError {
    /// The process's exit status for this error; the codes are part of the CLI's interface
    /// (docs/cli.md): 1 any other failure, 2 a usage error (as clap's own), 3 a chain or
    /// proof that does not verify, 4 `--wait` ended without the transaction in a block,
    /// 5 the transaction is in a block but was rejected.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            CliError::Usage(_) => 2,
            CliError::Verification { .. } => 3,
            CliError::NotInBlock { .. } => 4,
            CliError::Rejected { .. } => 5,
            _ => 1,
        })
    }

    /// Wraps an I/O error with the path involved.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> CliError {
        let path = path.into();
        move |source| CliError::Io { path, source }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MEDLEDGER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let result = match &cli.command {
        Command::Dev(args) => dev::run(&cli, args),
        Command::Init(args) => init::run(&cli, args),
        Command::Node(args) => run::run(args),
        Command::Keys(command) => keys::run(command),
        Command::Org(command) => org::run(&cli, command),
        Command::Member(command) => member::run(&cli, command),
        Command::Tx(command) => tx::run(&cli, command),
        Command::Block(command) => block::run(&cli, command),
        Command::Record(command) => record::run(&cli, command),
        Command::Session(args) => record::session(&cli, args),
        Command::Vault(command) => vault::run(&cli, command),
        Command::Verify(args) => verify::run(&cli, args),
        Command::Bench(command) => bench::run(&cli, command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            error.exit_code()
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}

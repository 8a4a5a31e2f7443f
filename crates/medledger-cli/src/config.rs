//! `node.toml`: how one node runs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use medledger_crypto::Digest;
use medledger_node::NodeConfig;
use serde::{Deserialize, Serialize};

use crate::CliError;

/// The node configuration file. A relative `data_dir` is relative to the file's directory; a
/// relative `key_file` is relative to `data_dir`, so a data directory restored or moved under
/// another path still finds its key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeFile {
    /// Data directory holding `chain.redb`.
    pub data_dir: PathBuf,
    /// Address the HTTP API listens on.
    pub listen: SocketAddr,
    /// The node's validator key (PKCS#8 PEM, mode 0600); relative to `data_dir`.
    pub key_file: PathBuf,
    /// Address the validator listens on for its peers; by default the address the registry
    /// holds for this node key (set this when that address is not local, e.g. behind NAT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p2p_listen: Option<SocketAddr>,
    /// The hash of the chain's genesis: the node refuses to start on a store holding any
    /// other chain. Every node of a chain has the same one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genesis_hash: Option<Digest>,
    /// Longest wait before pending transactions go into a block.
    #[serde(default = "defaults::block_interval_ms")]
    pub block_interval_ms: u64,
    /// Most transactions per block.
    #[serde(default = "defaults::max_block_txs")]
    pub max_block_txs: usize,
    /// Mempool capacity in transactions.
    #[serde(default = "defaults::mempool_max_txs")]
    pub mempool_max_txs: usize,
    /// With nothing pending, one empty block this often (the idle chain's heartbeat).
    #[serde(default = "defaults::empty_block_interval_ms")]
    pub empty_block_interval_ms: u64,
    /// Data keys the vault keeps unwrapped (each for at most five minutes) so reads of hot
    /// records skip the HPKE unwrap; 0 unwraps on every read.
    #[serde(default = "defaults::vault_key_cache_entries")]
    pub vault_key_cache_entries: usize,
    /// The chain store's page cache in MiB (at least 16): with the mempool, what bounds the
    /// node's memory whatever the chain's length.
    #[serde(default = "defaults::store_cache_mib")]
    pub store_cache_mib: usize,
}

/// Smallest `store_cache_mib` a node accepts.
const MIN_STORE_CACHE_MIB: usize = medledger_store::MIN_CACHE_BYTES >> 20;

/// Largest `store_cache_mib` a node accepts (1 TiB): beyond, the value is a typo.
const MAX_STORE_CACHE_MIB: usize = 1 << 20;

mod defaults {
    use medledger_node::NodeConfig;

    pub fn block_interval_ms() -> u64 {
        NodeConfig::default().block_interval_ms
    }
    pub fn max_block_txs() -> usize {
        NodeConfig::default().max_block_txs
    }
    pub fn mempool_max_txs() -> usize {
        NodeConfig::default().mempool_max_txs
    }
    pub fn empty_block_interval_ms() -> u64 {
        NodeConfig::default().empty_block_interval_ms
    }
    pub fn vault_key_cache_entries() -> usize {
        medledger_vault::DEFAULT_CACHED_KEYS
    }
    pub fn store_cache_mib() -> usize {
        medledger_store::DEFAULT_CACHE_BYTES >> 20
    }
}

impl NodeFile {
    /// A config for a node in the file's own directory, with the default settings.
    pub fn new(
        listen: SocketAddr,
        key_file: PathBuf,
        p2p_listen: Option<SocketAddr>,
        genesis_hash: Digest,
    ) -> Self {
        Self {
            data_dir: PathBuf::from("."),
            listen,
            key_file,
            p2p_listen,
            genesis_hash: Some(genesis_hash),
            block_interval_ms: defaults::block_interval_ms(),
            max_block_txs: defaults::max_block_txs(),
            mempool_max_txs: defaults::mempool_max_txs(),
            empty_block_interval_ms: defaults::empty_block_interval_ms(),
            vault_key_cache_entries: defaults::vault_key_cache_entries(),
            store_cache_mib: defaults::store_cache_mib(),
        }
    }

    /// Reads and checks a config file: `data_dir` is resolved against the file's directory,
    /// then `key_file` against `data_dir` (absolute paths stay as they are).
    pub fn load(path: &Path) -> Result<Self, CliError> {
        let text = std::fs::read_to_string(path).map_err(CliError::io(path))?;
        Self::parse(&text, path)
    }

    fn parse(text: &str, path: &Path) -> Result<Self, CliError> {
        let mut file: NodeFile =
            toml::from_str(text).map_err(|error| CliError::Config(format!("{}: {error}", path.display())))?;
        if !(MIN_STORE_CACHE_MIB..=MAX_STORE_CACHE_MIB).contains(&file.store_cache_mib) {
            return Err(CliError::Config(format!(
                "{}: store_cache_mib must be between {MIN_STORE_CACHE_MIB} and {MAX_STORE_CACHE_MIB}, not {}",
                path.display(),
                file.store_cache_mib
            )));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        file.data_dir = base.join(&file.data_dir);
        file.key_file = file.data_dir.join(&file.key_file);
        Ok(file)
    }

    /// Writes the file.
    pub fn save(&self, path: &Path) -> Result<(), CliError> {
        let text = toml::to_string_pretty(self).map_err(|error| CliError::Config(error.to_string()))?;
        std::fs::write(path, text).map_err(CliError::io(path))
    }

    /// How the chain store is opened.
    pub fn store_options(&self) -> medledger_store::StoreOptions {
        medledger_store::StoreOptions { cache_bytes: self.store_cache_mib << 20 }
    }

    /// The node settings.
    pub fn node_config(&self) -> NodeConfig {
        NodeConfig {
            block_interval_ms: self.block_interval_ms,
            max_block_txs: self.max_block_txs,
            mempool_max_txs: self.mempool_max_txs,
            empty_block_interval_ms: self.empty_block_interval_ms,
            ..NodeConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GENESIS_HASH: &str =
        "genesis_hash = \"0000000000000000000000000000000000000000000000000000000000000000\"";

    fn parse(text: &str) -> NodeFile {
        NodeFile::parse(
            &format!("{text}\nlisten = \"127.0.0.1:8080\"\n{GENESIS_HASH}\n"),
            Path::new("/etc/medledger/node.toml"),
        )
        .expect("a valid config")
    }

    #[test]
    fn data_dir_is_relative_to_the_config_and_key_file_to_the_data_dir() {
        let file = parse("data_dir = \"../../srv/medledger\"\nkey_file = \"keys/node.pem\"");
        assert_eq!(file.data_dir, Path::new("/etc/medledger/../../srv/medledger"));
        assert_eq!(file.key_file, Path::new("/etc/medledger/../../srv/medledger/keys/node.pem"));

        let beside = parse("data_dir = \".\"\nkey_file = \"keys/node.pem\"");
        assert_eq!(beside.key_file, Path::new("/etc/medledger/./keys/node.pem"));
    }

    #[test]
    fn the_store_cache_has_a_default_and_bounds() {
        let file = parse("data_dir = \".\"\nkey_file = \"keys/node.pem\"");
        assert_eq!(file.store_options(), medledger_store::StoreOptions::default());
        let small = parse("data_dir = \".\"\nkey_file = \"k.pem\"\nstore_cache_mib = 64");
        assert_eq!(small.store_options().cache_bytes, 64 << 20);
        let refused = NodeFile::parse(
            &format!(
                "data_dir = \".\"\nkey_file = \"k.pem\"\nstore_cache_mib = 4\nlisten = \"127.0.0.1:8080\"\n{GENESIS_HASH}\n"
            ),
            Path::new("node.toml"),
        );
        let Err(CliError::Config(message)) = refused else { panic!("a 4 MiB cache is refused") };
        assert!(message.contains("store_cache_mib must be between 16 and"), "{message}");
    }

    #[test]
    fn absolute_paths_stay_absolute() {
        let file = parse("data_dir = \"/var/lib/medledger\"\nkey_file = \"/etc/medledger/node.pem\"");
        assert_eq!(file.data_dir, Path::new("/var/lib/medledger"));
        assert_eq!(file.key_file, Path::new("/etc/medledger/node.pem"));
    }
}

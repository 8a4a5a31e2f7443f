//! `medledger node`: run a node from its config, and the serving loop `dev` shares.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use clap::Args;
use medledger_consensus::Timing;
use medledger_consensus::exchange::Exchange;
use medledger_consensus::network::{Service, Settings};
use medledger_crypto::{Digest, SigningKey};
use medledger_node::{Node, NodeConfig, NodeError};
use medledger_records::{RecordError, Records};
use medledger_store::Store;
use medledger_vault::Vault;

use crate::CliError;
use crate::config::NodeFile;

#[derive(Debug, Args)]
pub struct NodeArgs {
    /// The node's config file (written by `medledger init`).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Listen here instead of the config's address.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
}

pub fn run(args: &NodeArgs) -> Result<(), CliError> {
    let file = NodeFile::load(&args.config)?;
    let key = SigningKey::load(&file.key_file)?;
    let node = open_node(
        &file.data_dir,
        SigningKey::from_seed(&key.seed()),
        file.node_config(),
        file.store_options(),
        file.genesis_hash.as_ref(),
    )?;
    let listener = bind(args.listen.unwrap_or(file.listen))?;
    let status = node.status();
    println!("MedLedger node for chain '{}', genesis {}", status.chain_id, status.genesis_hash);
    let exchange = Exchange::new();
    let sequencer = Sequencer::start(&node, &key, &file.data_dir, file.p2p_listen, &exchange)?;
    let records =
        open_records(&node, &file.data_dir, file.vault_key_cache_entries, sequencer.exchange(exchange))?;
    let address = local_addr(&listener)?;
    serve_all(vec![Served { node, records, listener, sequencer }], || {
        println!("MedLedger node listening on http://{address}");
    })
}

/// Environment variable holding the passphrase the vault key file is sealed with.
pub const VAULT_PASSPHRASE_ENV: &str = "MEDLEDGER_VAULT_PASSPHRASE";

/// The vault passphrase from the environment, if set.
pub fn vault_passphrase() -> Option<zeroize::Zeroizing<Vec<u8>>> {
    std::env::var_os(VAULT_PASSPHRASE_ENV).map(|value| zeroize::Zeroizing::new(value.into_encoded_bytes()))
}

/// Opens the records service of a node whose key is its organisation's node: the vault in
/// `data_dir` (its key created on first start, sealed with [`VAULT_PASSPHRASE_ENV`] if set)
/// keeping up to `key_cache_entries` data keys unwrapped. `None` for a node whose key no
/// organisation registered.
pub fn open_records(
    node: &Arc<Node>,
    data_dir: &std::path::Path,
    key_cache_entries: usize,
    exchange: Option<Exchange>,
) -> Result<Option<Records>, CliError> {
    let passphrase = vault_passphrase();
    let passphrase = passphrase.as_ref().map(|passphrase| passphrase.as_slice());
    if !medledger_vault::key_path(data_dir).exists() {
        medledger_vault::create_key(data_dir, passphrase)?;
        let sealing =
            if passphrase.is_some() { "sealed with the passphrase" } else { "unsealed (mode 0600)" };
        println!("Created the vault key {} ({sealing})", medledger_vault::key_path(data_dir).display());
    } else if passphrase.is_some() && !medledger_vault::key_is_sealed(data_dir)? {
        tracing::warn!(
            "{VAULT_PASSPHRASE_ENV} is set, but the vault key {} is plain and the passphrase protects nothing: \
             stop the node and seal it with `medledger --data-dir {} vault seal`",
            medledger_vault::key_path(data_dir).display(),
            data_dir.display()
        );
    }
    let vault = Arc::new(Vault::open(data_dir, passphrase)?.with_key_cache(key_cache_entries));
    match Records::start(Arc::clone(node), vault, exchange) {
        Ok(records) => Ok(Some(records)),
        Err(RecordError::NoVault) => {
            tracing::warn!("this node's key is no organisation's node: the FHIR API is off");
            Ok(None)
        }
        Err(error) => Err(CliError::Config(error.to_string())),
    }
}

/// Opens the store (checking it and, when given, that it holds the chain of this genesis
/// hash) and wraps it in a node.
pub fn open_node(
    data_dir: &std::path::Path,
    key: SigningKey,
    config: NodeConfig,
    store_options: medledger_store::StoreOptions,
    genesis_hash: Option<&Digest>,
) -> Result<Arc<Node>, CliError> {
    let (store, chain) = Store::open_with(data_dir, store_options)?;
    if let Some(expected) = genesis_hash
        && *expected != chain.genesis_hash()
    {
        return Err(CliError::Config(format!(
            "{} holds the chain with genesis {}, but the config expects genesis {expected}",
            data_dir.display(),
            chain.genesis_hash()
        )));
    }
    tracing::info!(height = chain.height(), state_root = %chain.state().root(), "store opened and checked");
    Ok(Arc::new(Node::new(store, chain, key, config)?))
}

/// Binds the API address.
pub fn bind(address: SocketAddr) -> Result<TcpListener, CliError> {
    let listener = TcpListener::bind(address)
        .map_err(|error| CliError::Config(format!("cannot listen on {address}: {error}")))?;
    listener.set_nonblocking(true).map_err(|error| CliError::Config(format!("listener: {error}")))?;
    Ok(listener)
}

/// The bound address (useful with port 0).
pub fn local_addr(listener: &TcpListener) -> Result<SocketAddr, CliError> {
    listener.local_addr().map_err(|error| CliError::Config(format!("listener: {error}")))
}

/// The block producer on its own thread (it does blocking fsyncs).
pub struct Producer {
    node: Arc<Node>,
    stop: Arc<AtomicBool>,
    exited: Option<tokio::sync::oneshot::Receiver<()>>,
    thread: JoinHandle<Result<(), NodeError>>,
}

impl Producer {
    /// Starts producing blocks.
    pub fn start(node: &Arc<Node>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        // The sender is dropped when the thread ends, which wakes whoever holds the receiver.
        let (exited_sender, exited) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("block-producer".into())
            .spawn({
                let node = Arc::clone(node);
                let stop = Arc::clone(&stop);
                move || {
                    let _exited_sender = exited_sender;
                    let result = node.run_producer(&stop);
                    if let Err(error) = &result {
                        tracing::error!(%error, "the block producer failed; the node stops");
                    }
                    result
                }
            })
            .expect("spawning the producer thread");
        Self { node: Arc::clone(node), stop, exited: Some(exited), thread }
    }

    /// Resolves when the producer thread ends, for whatever reason. The first call gets that
    /// future; any later call gets one that never resolves.
    pub fn exited(&mut self) -> impl Future<Output = ()> + use<> {
        let exited = self.exited.take();
        async move {
            match exited {
                Some(exited) => _ = exited.await,
                None => std::future::pending().await,
            }
        }
    }

    /// Stops after the block in progress, if any.
    pub fn stop(self) -> Result<(), CliError> {
        self.stop.store(true, Ordering::Release);
        self.node.wake_producer();
        self.thread
            .join()
            .map_err(|_| CliError::Remote("the block producer panicked".into()))?
            .map_err(CliError::from)
    }
}

/// What orders blocks: the node itself when it is the chain's only validator, Simplex
/// consensus with the other validators otherwise.
pub enum Sequencer {
    /// The only validator: a block is final when this node commits it.
    Solo(Producer),
    /// One validator of several.
    Consensus(Service),
}

impl Sequencer {
    /// Starts whichever the chain needs.
    pub fn start(
        node: &Arc<Node>,
        key: &SigningKey,
        data_dir: &std::path::Path,
        p2p_listen: Option<SocketAddr>,
        exchange: &Exchange,
    ) -> Result<Self, CliError> {
        if node.is_sole_validator() {
            return Ok(Self::Solo(Producer::start(node)));
        }
        let validators = node.status().validators.len();
        let settings = Settings {
            listen: p2p_listen,
            storage_dir: data_dir.join("consensus"),
            timing: Timing::new(node.config().block_interval_ms, node.config().empty_block_interval_ms),
        };
        let service = Service::start(node, key, settings, exchange.clone())
            .map_err(|error| CliError::Config(error.to_string()))?;
        if node.with_chain(|chain| chain.is_validator(&key.public_key())) {
            println!("MedLedger validator: one of {validators}, ordering blocks with Simplex BFT consensus");
        } else {
            println!("MedLedger follower: not a validator now; following the {validators} validators' chain");
        }
        Ok(Self::Consensus(service))
    }

    /// `exchange` if this sequencer carries it to other nodes (a single node has none).
    #[must_use]
    pub fn exchange(&self, exchange: Exchange) -> Option<Exchange> {
        matches!(self, Self::Consensus(_)).then_some(exchange)
    }

    /// Resolves when block ordering stops on its own (a failure).
    fn exited(&mut self) -> impl Future<Output = ()> + use<> {
        let producer = match self {
            Self::Solo(producer) => Some(producer.exited()),
            Self::Consensus(_) => None,
        };
        let watch = match self {
            Self::Consensus(service) => Some(service.exit_watch()),
            Self::Solo(_) => None,
        };
        async move {
            match (producer, watch) {
                (Some(producer), _) => producer.await,
                (None, Some(watch)) => {
                    while !watch.has_exited() {
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    }
                }
                (None, None) => std::future::pending().await,
            }
        }
    }

    /// Stops ordering blocks.
    pub fn stop(self) -> Result<(), CliError> {
        match self {
            Self::Solo(producer) => producer.stop(),
            Self::Consensus(service) => {
                service.stop();
                Ok(())
            }
        }
    }
}

/// One node to serve: its API listener and what orders its blocks.
pub struct Served {
    /// The node.
    pub node: Arc<Node>,
    /// Its records service (the FHIR API), if it keeps records.
    pub records: Option<Records>,
    /// Where its API listens.
    pub listener: TcpListener,
    /// What orders its blocks.
    pub sequencer: Sequencer,
}

/// Serves nodes' APIs (several in one process for `medledger dev --nodes N`) while their
/// sequencers order blocks, until Ctrl-C or SIGTERM, or until block ordering fails (a node
/// that cannot commit blocks must not keep accepting transactions); all stop together.
/// `ready` runs (to say the node is up) once a signal would stop the nodes cleanly: a
/// supervisor that sends SIGTERM right after must not kill the process mid-write.
pub fn serve_all(nodes: Vec<Served>, ready: impl FnOnce()) -> Result<(), CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| CliError::Config(format!("tokio runtime: {error}")))?;
    let mut sequencers = Vec::with_capacity(nodes.len());
    let mut exits = Vec::with_capacity(nodes.len());
    let mut servers = Vec::with_capacity(nodes.len());
    for Served { node, records, listener, mut sequencer } in nodes {
        exits.push(sequencer.exited());
        sequencers.push(sequencer);
        servers.push((node, records, listener));
    }
    let served = runtime.block_on(async {
        let shutdown = shutdown_signal()?;
        let (stop_sender, stop) = tokio::sync::watch::channel(false);
        let mut tasks = tokio::task::JoinSet::new();
        for (node, records, listener) in servers {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            let mut stop = stop.clone();
            tasks.spawn(medledger_api::serve(node, records, listener, async move {
                let _ = stop.wait_for(|stopped| *stopped).await;
            }));
        }
        let any_exit = async move {
            let mut exits: tokio::task::JoinSet<()> = exits.into_iter().collect();
            let _ = exits.join_next().await;
        };
        ready();
        tokio::select! {
            () = shutdown => {}
            () = any_exit => {}
        }
        let _ = stop_sender.send(true);
        let mut result = Ok(());
        while let Some(joined) = tasks.join_next().await {
            if let Ok(Err(error)) = joined {
                result = Err(error);
            }
        }
        result
    });
    tracing::info!("shutting down");
    for sequencer in sequencers {
        sequencer.stop()?;
    }
    served.map_err(|error| CliError::Config(format!("API server: {error}")))
}

/// Ctrl-C or SIGTERM. The handlers are installed when this returns, not when the future is
/// first polled.
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

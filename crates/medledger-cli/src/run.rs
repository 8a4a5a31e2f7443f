//! `medledger node`: run a node from its config, and the serving loop `dev` shares.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use clap::Args;
use medledger_crypto::{Digest, SigningKey};
use medledger_node::{Node, NodeConfig};
use medledger_store::{Store, StoreError};

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
    let node = open_node(&file.data_dir, key, file.node_config(), file.genesis_hash.as_ref())?;
    let listener = bind(args.listen.unwrap_or(file.listen))?;
    println!("MedLedger node for chain '{}', genesis {}", node.status().chain_id, node.status().genesis_hash);
    println!("MedLedger node listening on http://{}", local_addr(&listener)?);
    serve(&node, listener)
}

/// Opens the store (checking it and, when given, that it holds the chain of this genesis
/// hash) and wraps it in a node.
pub fn open_node(
    data_dir: &std::path::Path,
    key: SigningKey,
    config: NodeConfig,
    genesis_hash: Option<&Digest>,
) -> Result<Arc<Node>, CliError> {
    let (store, chain) = Store::open(data_dir)?;
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
    thread: JoinHandle<Result<(), StoreError>>,
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

/// Serves the API and produces blocks until Ctrl-C or SIGTERM, or until the producer fails
/// (a node that cannot commit blocks must not keep accepting transactions).
pub fn serve(node: &Arc<Node>, listener: TcpListener) -> Result<(), CliError> {
    let mut producer = Producer::start(node);
    let producer_exited = producer.exited();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| CliError::Config(format!("tokio runtime: {error}")))?;
    let served = runtime.block_on(async {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let shutdown = async move {
            tokio::select! {
                () = shutdown_signal() => {}
                () = producer_exited => {}
            }
        };
        medledger_api::serve(Arc::clone(node), listener, shutdown).await
    });
    tracing::info!("shutting down");
    producer.stop()?;
    served.map_err(|error| CliError::Config(format!("API server: {error}")))
}

async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

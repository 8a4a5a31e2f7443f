//! Production wiring: a validator on the tokio runtime with authenticated, encrypted p2p.
//!
//! The validator runs on its own thread with its own commonware tokio runtime, beside the
//! node's HTTP API. Peers are exactly the validators in the chain's registry, dialled at
//! their registered addresses; a connection from any other key or address is refused. The
//! handshake authenticates each side with its node key and encrypts the stream
//! (`commonware-stream`: SAKE key agreement, ChaCha20-Poly1305).

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use commonware_cryptography::ChaCha20Poly1305;
use commonware_macros::select;
use commonware_p2p::authenticated::lookup;
use commonware_p2p::{Address, AddressableManager as _};
use commonware_runtime::{Quota, Runner as _, Supervisor as _, tokio as cw_tokio};
use commonware_stream::cups::{self, Cups};
use commonware_stream::sake::{self, Sake};
use commonware_utils::channel::oneshot;
use commonware_utils::ordered::Map;
use commonware_utils::{NZU32, NZUsize};
use medledger_crypto::{PublicKey, SigningKey};
use medledger_node::Node;

use crate::application::Channels;
use crate::engine::{self, Timing, Validator};
use crate::keys::{ConsensusKey, consensus_key, consensus_signer};
use crate::wire::{MAX_MESSAGE_BYTES, channel};

/// Namespace of p2p handshakes, distinct from consensus signatures.
const P2P_NAMESPACE: &[u8] = b"medledger/p2p/v1";

/// Messages per second each peer may send on each channel (bursts up to this many).
const CHANNEL_QUOTA: Quota = Quota::per_second(NZU32!(10_000));

/// Handshakes older than this are refused; clocks of validators must agree within it.
const HANDSHAKE_MAX_AGE: Duration = Duration::from_secs(10);

/// Why the validator network could not start.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// A registered validator address does not resolve.
    #[error("validator {key} has address '{address}', which does not resolve: {reason}")]
    Address {
        /// The validator's node key (hex).
        key: String,
        /// Its registered address.
        address: String,
        /// Why.
        reason: String,
    },
    /// This node's key is not a validator.
    #[error("node key {0} is not a validator of this chain, so it cannot join consensus")]
    NotAValidator(String),
    /// The runtime thread could not be started.
    #[error("starting the consensus thread: {0}")]
    Thread(String),
}

/// Where and how a validator runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to listen on for peers (defaults to this node's registered address).
    pub listen: Option<SocketAddr>,
    /// Directory for the engine's journal.
    pub storage_dir: PathBuf,
    /// Timing.
    pub timing: Timing,
}

/// A validator running on its own thread.
pub struct Service {
    stop: Option<oneshot::Sender<()>>,
    exited: ExitWatch,
    thread: Option<JoinHandle<()>>,
}

/// Tells whether the validator thread has ended.
#[derive(Clone)]
pub struct ExitWatch(Arc<AtomicBool>);

impl ExitWatch {
    /// Whether the validator has stopped.
    #[must_use]
    pub fn has_exited(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

impl Service {
    /// Starts the validator for `node`, signing with `key`.
    pub fn start(node: &Arc<Node>, key: &SigningKey, settings: Settings) -> Result<Self, NetworkError> {
        let me = key.public_key();
        let peers = registered_peers(node)?;
        let Some(own_address) = peers.iter().find(|(key, _, _)| *key == me).map(|(_, address, _)| *address)
        else {
            return Err(NetworkError::NotAValidator(me.to_string()));
        };
        let listen = settings.listen.unwrap_or(own_address);
        let (stop, stopped) = oneshot::channel();
        let exited = ExitWatch(Arc::new(AtomicBool::new(false)));
        let exit_signal = ExitSignal(Arc::clone(&exited.0));
        let node = Arc::clone(node);
        let key = SigningKey::from_seed(&key.seed());
        let thread = std::thread::Builder::new()
            .name("consensus".into())
            .spawn(move || {
                let _exit_signal = exit_signal;
                let runtime = cw_tokio::Config::new()
                    .with_worker_threads(2)
                    .with_storage_directory(&settings.storage_dir);
                cw_tokio::Runner::new(runtime).start(|context| async move {
                    run(context, node, key, listen, peers, settings.timing, stopped).await;
                });
            })
            .map_err(|error| NetworkError::Thread(error.to_string()))?;
        Ok(Self { stop: Some(stop), exited, thread: Some(thread) })
    }

    /// A watch on the validator thread: it ends on its own only on a failure.
    #[must_use]
    pub fn exit_watch(&self) -> ExitWatch {
        self.exited.clone()
    }

    /// Stops the validator and waits for its thread.
    pub fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Dropped when the consensus thread ends, whatever the reason (a panic included).
struct ExitSignal(Arc<AtomicBool>);

impl Drop for ExitSignal {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Every consensus participant (see [`engine::participants`]) with its resolved p2p address
/// from the registry and the registered text.
fn registered_peers(node: &Node) -> Result<Vec<(PublicKey, SocketAddr, String)>, NetworkError> {
    node.with_chain(|chain| {
        let validators = chain.genesis().validators();
        let mut peers = Vec::with_capacity(validators.len());
        for org in &chain.registry().organizations {
            let Some(identity) = org.node.as_ref() else { continue };
            if !validators.contains(&identity.public_key) {
                continue;
            }
            let text = identity.address.as_str().to_owned();
            let resolved = text
                .to_socket_addrs()
                .map_err(|error| error.to_string())
                .and_then(|mut addresses| addresses.next().ok_or_else(|| "no address".to_owned()))
                .map_err(|reason| NetworkError::Address {
                    key: identity.public_key.to_string(),
                    address: text.clone(),
                    reason,
                })?;
            peers.push((identity.public_key, resolved, text));
        }
        Ok(peers)
    })
}

async fn run(
    context: cw_tokio::Context,
    node: Arc<Node>,
    key: SigningKey,
    listen: SocketAddr,
    peers: Vec<(PublicKey, SocketAddr, String)>,
    timing: Timing,
    stopped: oneshot::Receiver<()>,
) {
    let signer = consensus_signer(&key);
    let handshake = Cups::<_, ChaCha20Poly1305>::new(
        Sake {
            signer,
            synchrony_bound: HANDSHAKE_MAX_AGE / 2,
            max_handshake_age: HANDSHAKE_MAX_AGE,
            version: sake::Version::V1,
        },
        cups::Version::V1,
    );
    let mut config = lookup::Config::recommended(
        handshake,
        P2P_NAMESPACE,
        listen,
        NZUsize!(peers.len().max(1)),
        u32::try_from(MAX_MESSAGE_BYTES).expect("fits in u32"),
        NZUsize!(1024),
    );
    // Consortium nodes often sit on private networks or VPNs, and only registered keys at
    // registered addresses may connect at all; reconnect quickly after a restart.
    config.allow_private_ips = true;
    config.peer_connection_cooldown = Duration::from_secs(1);
    config.dial_frequency = Duration::from_secs(1);
    config.ping_frequency = Duration::from_secs(5);
    let (mut network, mut oracle) = lookup::Network::new(context.child("p2p"), config);
    let addresses: Vec<(ConsensusKey, Address)> =
        peers.iter().map(|(key, address, _)| (consensus_key(key), Address::from(*address))).collect();
    let Ok(addresses) = Map::try_from(addresses) else {
        tracing::error!("two validators share a node key");
        return;
    };
    let _ = oracle.track(0, addresses);
    let mut register = |id| network.register(id, CHANNEL_QUOTA);
    let votes = register(channel::VOTES);
    let certificates = register(channel::CERTIFICATES);
    let resolver = register(channel::RESOLVER);
    let application = Channels {
        blocks: register(channel::BLOCKS),
        transactions: register(channel::TRANSACTIONS),
        sync: register(channel::SYNC),
    };
    let network_handle = network.start();
    let me = key.public_key();
    let validator = Validator {
        partition: "medledger-simplex".into(),
        timing,
        peers: peers
            .iter()
            .filter(|(key, _, _)| *key != me)
            .map(|(key, _, text)| (consensus_key(key), text.clone()))
            .collect(),
    };
    let endpoints = engine::Network { votes, certificates, resolver, application, blocker: oracle };
    let (application, engine) =
        match engine::start(&context.child("validator"), &node, &key, validator, endpoints) {
            Ok(handles) => handles,
            Err(error) => {
                tracing::error!(%error, "consensus did not start");
                return;
            }
        };
    tracing::info!(%listen, validators = peers.len(), "consensus running");
    select! {
        _ = stopped => tracing::info!("consensus stopping"),
        _ = application => tracing::error!("the consensus application stopped"),
        _ = engine => tracing::error!("the consensus engine stopped"),
        _ = network_handle => tracing::error!("the p2p network stopped"),
    }
}

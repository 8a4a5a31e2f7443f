//! Production wiring: a validator on the tokio runtime with authenticated, encrypted p2p.
//!
//! The node's consensus side runs on its own thread with its own commonware tokio runtime,
//! beside the node's HTTP API. Peers are exactly the nodes of the chain's registry: the
//! validators of the next block and of any scheduled change, and the nodes of the other
//! active organisations, dialled at their registered addresses; a connection from any other
//! key or address is refused. The peer set follows the registry as the chain changes it. The
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
use commonware_p2p::{Address, AddressableManager as _, AddressableTrackedPeers};
use commonware_runtime::{Clock as _, Quota, Runner as _, Spawner as _, Supervisor as _, tokio as cw_tokio};
use commonware_stream::cups::{self, Cups};
use commonware_stream::sake::{self, Sake};
use commonware_utils::channel::oneshot;
use commonware_utils::ordered::Map;
use commonware_utils::{NZU32, NZUsize};
use medledger_crypto::{PublicKey, SigningKey};
use medledger_node::Node;
use medledger_types::limits::MAX_ORGANIZATIONS;

use crate::application::Channels;
use crate::engine::{self, Timing, Validator};
use crate::exchange::Exchange;
use crate::keys::{ConsensusKey, consensus_key, consensus_signer};
use crate::wire::{MAX_MESSAGE_BYTES, channel};

/// Namespace of p2p handshakes, distinct from consensus signatures.
const P2P_NAMESPACE: &[u8] = b"medledger/p2p/v1";

/// Messages per second each peer may send on each channel, in bursts of at most
/// [`CHANNEL_BURST`]. Transactions travel in batches, so this is far above need.
const CHANNEL_MESSAGES_PER_SECOND: u32 = 10_000;

/// Messages a peer may send on a channel at once, before the rate above paces it (inbound,
/// the p2p layer waits for the limiter; it drops nothing).
///
/// This is also what the p2p layer's memory is sized by: every channel gets an inbound
/// queue, and the shared outbound queue a share, of `CHANNEL_BURST` slots for each peer it
/// may retain (`MAX_ORGANIZATIONS` × [`TRACKED_PEER_SETS`]), allocated and touched up front.
/// At 128 with four peer sets that was about 480 MiB per validator before any traffic; at
/// 16 with two it is a sixteenth of that (measured: 1,967 MiB → 189 MiB for four validators
/// in one process, `bench cluster --rate 400 --seconds 2`).
const CHANNEL_BURST: u32 = 16;

/// Peer sets the p2p layer keeps addresses for: the current one and the one before it, so
/// a node leaving at a governance change stays reachable while its peers catch up.
const TRACKED_PEER_SETS: usize = 2;

/// Handshakes older than this are refused; clocks of validators must agree within it.
const HANDSHAKE_MAX_AGE: Duration = Duration::from_secs(10);

/// Handshakes accepted per second from one IP address. The p2p layer's default (one per
/// five seconds) assumes one node per address; several organisations' nodes behind one
/// address (a NAT, a shared host, loopback) then take 5 s each to connect. Only registered
/// addresses may start a handshake at all, so a higher rate exposes nothing new.
const HANDSHAKES_PER_SECOND_PER_IP: u32 = 8;

/// How often the address of a validator this node does not hear from is checked.
const PROBE_INTERVAL: Duration = Duration::from_secs(10);

/// How long a check of a validator's address waits for the TCP connection.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

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
    /// The node has no registered address and none was configured.
    #[error("node key {0} has no registered p2p address; set p2p_listen in node.toml")]
    NoListenAddress(String),
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
    pub fn start(
        node: &Arc<Node>,
        key: &SigningKey,
        settings: Settings,
        exchange: Exchange,
    ) -> Result<Self, NetworkError> {
        let me = key.public_key();
        let peers = PeerSet::of(node)?;
        let Some(listen) = settings.listen.or_else(|| peers.address_of(&me)) else {
            return Err(NetworkError::NoListenAddress(me.to_string()));
        };
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
                    let wiring = Wiring { listen, peers, timing: settings.timing, exchange };
                    run(context, node, key, wiring, stopped).await;
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

/// How often the registry is checked for a changed peer set.
const PEER_SET_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The nodes this node talks to, from the committed chain's registry: validators of the next
/// block and of any scheduled change first (they drive consensus), then the nodes of the
/// other active organisations (they follow it).
#[derive(Debug, Clone, PartialEq, Eq)]
struct PeerSet {
    /// Height of the chain it was read from; it names the set to the p2p layer.
    height: u64,
    primary: Vec<(PublicKey, SocketAddr)>,
    secondary: Vec<(PublicKey, SocketAddr)>,
}

impl PeerSet {
    fn of(node: &Node) -> Result<Self, NetworkError> {
        node.with_chain(|chain| {
            let schedule = chain.validator_schedule();
            let next = schedule.next.iter().flat_map(|(_, validators)| validators);
            let validators: Vec<PublicKey> =
                schedule.at(chain.height() + 1).iter().chain(next).copied().collect();
            let mut set = Self { height: chain.height(), primary: Vec::new(), secondary: Vec::new() };
            for organization in &chain.registry().organizations {
                let Some(identity) = organization.node.as_ref() else { continue };
                let is_validator = validators.contains(&identity.public_key);
                if !is_validator && !organization.active {
                    continue;
                }
                let entry = (identity.public_key, resolve(identity.public_key, identity.address.as_str())?);
                if is_validator { set.primary.push(entry) } else { set.secondary.push(entry) }
            }
            Ok(set)
        })
    }

    fn address_of(&self, key: &PublicKey) -> Option<SocketAddr> {
        self.primary.iter().chain(&self.secondary).find(|(peer, _)| peer == key).map(|(_, address)| *address)
    }

    fn len(&self) -> usize {
        self.primary.len() + self.secondary.len()
    }

    /// The set as the p2p layer tracks it; `None` if two organisations share a node key.
    fn tracked(&self) -> Option<AddressableTrackedPeers<ConsensusKey>> {
        let map = |peers: &[(PublicKey, SocketAddr)]| {
            Map::try_from(
                peers
                    .iter()
                    .map(|(key, address)| (consensus_key(key), Address::from(*address)))
                    .collect::<Vec<_>>(),
            )
            .ok()
        };
        Some(AddressableTrackedPeers::new(map(&self.primary)?, map(&self.secondary)?))
    }

    /// Whether `other` has the same peers (whatever height it was read at).
    fn same_peers(&self, other: &Self) -> bool {
        self.primary == other.primary && self.secondary == other.secondary
    }
}

fn resolve(key: PublicKey, address: &str) -> Result<SocketAddr, NetworkError> {
    address
        .to_socket_addrs()
        .map_err(|error| error.to_string())
        .and_then(|mut addresses| addresses.next().ok_or_else(|| "no address".to_owned()))
        .map_err(|reason| NetworkError::Address { key: key.to_string(), address: address.to_owned(), reason })
}

/// Keeps the p2p layer's peer set equal to the registry's as blocks change it.
async fn follow_peer_set(
    context: cw_tokio::Context,
    node: Arc<Node>,
    mut oracle: lookup::Oracle<ConsensusKey>,
    mut current: PeerSet,
) {
    loop {
        context.sleep(PEER_SET_CHECK_INTERVAL).await;
        let next = match PeerSet::of(&node) {
            Ok(next) => next,
            Err(error) => {
                tracing::warn!(%error, "the registry's peer set cannot be used; keeping the previous one");
                continue;
            }
        };
        if next.same_peers(&current) {
            continue;
        }
        let Some(tracked) = next.tracked() else { continue };
        tracing::info!(validators = next.primary.len(), followers = next.secondary.len(), "peer set changed");
        let _ = oracle.track(next.height, tracked);
        current = next;
    }
}

/// Checks the registered address of every validator this node does not hear from, and
/// records (in `/v1/status`) and logs what it found. The p2p layer's own dial errors carry
/// no reason, and "not connected" alone does not tell an operator at 3 a.m. whether the
/// peer is down, firewalled, at another address, or refusing this node's handshake.
async fn probe_silent_validators(context: cw_tokio::Context, node: Arc<Node>) {
    loop {
        context.sleep(PROBE_INTERVAL).await;
        for peer in node.status().peers {
            let finding = if peer.connected { None } else { Some(probe(&peer.address).await) };
            let previous = node.set_peer_error(peer.node_key, finding.clone());
            if let Some(finding) = finding.filter(|finding| previous.as_ref() != Some(finding)) {
                tracing::warn!(
                    organization = %peer.organization,
                    address = %peer.address,
                    node_key = %peer.node_key,
                    %finding,
                    "cannot reach validator"
                );
            }
        }
    }
}

/// What connecting to `address` over TCP finds, in words for an operator.
async fn probe(address: &str) -> String {
    let connect = tokio::net::TcpStream::connect(address);
    match tokio::time::timeout(PROBE_TIMEOUT, connect).await {
        Err(_) => format!(
            "no answer from {address} within {} s: host down, a firewall dropping p2p, or a wrong address",
            PROBE_TIMEOUT.as_secs()
        ),
        Ok(Err(error)) if error.kind() == std::io::ErrorKind::ConnectionRefused => {
            format!("connection refused at {address}: no node is listening there (stopped, or another port)")
        }
        Ok(Err(error)) => format!("cannot connect to {address}: {error}"),
        Ok(Ok(_stream)) => format!(
            "{address} accepts TCP but no authenticated session forms: check that the node there runs this \
             chain with the node key the registry holds, and that both clocks agree within {} s",
            HANDSHAKE_MAX_AGE.as_secs() / 2
        ),
    }
}

/// Where a node listens, whom it talks to, and what runs beside consensus.
struct Wiring {
    listen: SocketAddr,
    peers: PeerSet,
    timing: Timing,
    exchange: Exchange,
}

async fn run(
    context: cw_tokio::Context,
    node: Arc<Node>,
    key: SigningKey,
    wiring: Wiring,
    stopped: oneshot::Receiver<()>,
) {
    let Wiring { listen, peers, timing, exchange } = wiring;
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
        NZUsize!(MAX_ORGANIZATIONS),
        u32::try_from(MAX_MESSAGE_BYTES).expect("fits in u32"),
        NZUsize!(1024),
    );
    // Consortium nodes often sit on private networks or VPNs, and only registered keys at
    // registered addresses may connect at all; reconnect quickly after a restart.
    config.allow_private_ips = true;
    config.allowed_handshake_rate_per_ip = Quota::per_second(NZU32!(HANDSHAKES_PER_SECOND_PER_IP));
    config.peer_connection_cooldown = Duration::from_secs(1);
    config.dial_frequency = Duration::from_secs(1);
    config.ping_frequency = Duration::from_secs(5);
    config.tracked_peer_sets = NZUsize!(TRACKED_PEER_SETS);
    let (mut network, mut oracle) = lookup::Network::new(context.child("p2p"), config);
    let Some(tracked) = peers.tracked() else {
        tracing::error!("two organisations share a node key");
        return;
    };
    let _ = oracle.track(peers.height, tracked);
    let quota = Quota::per_second(NZU32!(CHANNEL_MESSAGES_PER_SECOND)).allow_burst(NZU32!(CHANNEL_BURST));
    let mut register = |id| network.register(id, quota);
    let votes = register(channel::VOTES);
    let certificates = register(channel::CERTIFICATES);
    let resolver = register(channel::RESOLVER);
    let application = Channels {
        blocks: register(channel::BLOCKS),
        transactions: register(channel::TRANSACTIONS),
        sync: register(channel::SYNC),
    };
    let exchange_channel = register(channel::EXCHANGE);
    let network_handle = network.start();
    context.child("exchange").spawn(move |context| crate::exchange::run(context, exchange, exchange_channel));
    tracing::info!(%listen, peers = peers.len(), "consensus network running");
    context.child("peers").spawn({
        let (node, oracle) = (Arc::clone(&node), oracle.clone());
        move |context| follow_peer_set(context, node, oracle, peers)
    });
    context.child("probe").spawn({
        let node = Arc::clone(&node);
        move |context| probe_silent_validators(context, node)
    });
    let validator = Validator { partition: "medledger-simplex".into(), timing };
    let endpoints = engine::Network { votes, certificates, resolver, application, blocker: oracle };
    let handles = engine::start(&context.child("consensus"), &node, &key, validator, endpoints);
    select! {
        _ = stopped => tracing::info!("consensus stopping"),
        _ = handles.application => tracing::error!("the consensus application stopped"),
        _ = handles.orchestrator => tracing::error!("the consensus orchestrator stopped"),
        _ = network_handle => tracing::error!("the p2p network stopped"),
    }
}

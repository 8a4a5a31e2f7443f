//! One validator: the Simplex engine and the application actor, over any runtime and network.
//!
//! Production runs this on the tokio runtime with authenticated p2p ([`crate::network`]);
//! simulation tests run it on the deterministic runtime with a simulated network. Nothing
//! here knows which.

use std::sync::Arc;
use std::time::Duration;

use commonware_consensus::simplex::Engine;
use commonware_consensus::simplex::config::{Config as EngineConfig, Floor, ForwardPolicy, SkipPolicy};
use commonware_consensus::simplex::elector::RoundRobin;
use commonware_consensus::simplex::scheme::ed25519::Scheme;
use commonware_consensus::types::{Epoch, ViewDelta};
use commonware_cryptography::Sha256;
use commonware_p2p::{Blocker, Receiver, Sender};
use commonware_parallel::Sequential;
use commonware_runtime::buffer::paged::CacheRef;
use commonware_runtime::{Clock, Handle, Metrics, Spawner, Storage};
use commonware_utils::ordered::Set;
use commonware_utils::{NZDuration, NZU16, NZUsize};
use medledger_crypto::SigningKey;
use medledger_node::Node;
use rand_core::CryptoRng;

use crate::application::{self, Actor, Channels};
use crate::keys::{ConsensusKey, consensus_digest, consensus_key, consensus_signer};

/// Namespace of every consensus signature, so votes can never be replayed as anything else.
pub const NAMESPACE: &[u8] = b"medledger/consensus/v1";

/// Timing of consensus and block production.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// How long a view waits for its leader's proposal before voting to skip it.
    pub leader_timeout: Duration,
    /// How long a view waits for a proposal to be notarized and certified.
    pub certification_timeout: Duration,
    /// Longest wait before pending transactions go into a proposal.
    pub block_interval_ms: u64,
    /// Wait before proposing an empty block.
    pub empty_block_interval_ms: u64,
}

impl Timing {
    /// Timing for a node whose block interval is `block_interval_ms`.
    #[must_use]
    pub fn for_block_interval(block_interval_ms: u64) -> Self {
        Self {
            leader_timeout: Duration::from_secs(2),
            certification_timeout: Duration::from_secs(3),
            block_interval_ms,
            empty_block_interval_ms: EMPTY_BLOCK_INTERVAL_MS.max(block_interval_ms),
        }
    }
}

/// With nothing to do, a block a second keeps every node's view of finality current.
const EMPTY_BLOCK_INTERVAL_MS: u64 = 1_000;

/// The network endpoints one validator needs.
pub struct Network<S, R, B> {
    /// Consensus votes.
    pub votes: (S, R),
    /// Consensus certificates.
    pub certificates: (S, R),
    /// The engine's certificate fetching.
    pub resolver: (S, R),
    /// The application's channels.
    pub application: Channels<S, R>,
    /// Blocks peers that misbehave at the network level.
    pub blocker: B,
}

/// Errors starting a validator.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The node key is not among the validators.
    #[error("node key {0} is not a validator of this chain")]
    NotAValidator(String),
}

/// The engine's participant set: the genesis validators.
///
/// Every node must run the engine with the same set whatever height it starts at, and the
/// engine runs one set for its whole epoch. Validator-set changes that governance schedules
/// after genesis are not yet carried into consensus (that needs an engine per epoch); the state
/// machine still refuses a block whose proposer is not a validator at its height.
#[must_use]
pub fn participants(node: &Node) -> Set<ConsensusKey> {
    let (genesis, current) =
        node.with_chain(|chain| (chain.genesis().validators(), chain.validators_at(chain.height() + 1)));
    if genesis != current {
        tracing::warn!(
            genesis = genesis.len(),
            current = current.len(),
            "the validator set changed since genesis; consensus still runs with the genesis validators"
        );
    }
    Set::from_iter_dedup(genesis.iter().map(consensus_key))
}

/// One validator's settings.
#[derive(Debug, Clone)]
pub struct Validator {
    /// Storage partition of the engine's journal (votes and certificates it must not forget
    /// across a restart). Unique per validator sharing one runtime's storage.
    pub partition: String,
    /// Timing.
    pub timing: Timing,
    /// The other validators' node keys and p2p addresses, for status.
    pub peers: Vec<(ConsensusKey, String)>,
}

/// Starts the engine and the application for `node` signing with `key`. Returns the
/// application's and the engine's task handles.
pub fn start<E, S, R, B>(
    context: &E,
    node: &Arc<Node>,
    key: &SigningKey,
    validator: Validator,
    network: Network<S, R, B>,
) -> Result<(Handle<()>, Handle<()>), StartError>
where
    E: Clock + CryptoRng + Spawner + Storage + Metrics,
    S: Sender<PublicKey = ConsensusKey>,
    R: Receiver<PublicKey = ConsensusKey>,
    B: Blocker<PublicKey = ConsensusKey>,
{
    let participants = participants(node);
    let signer = Scheme::signer(NAMESPACE, participants.clone(), consensus_signer(key))
        .ok_or_else(|| StartError::NotAValidator(key.public_key().to_string()))?;
    let verifier = Scheme::verifier(NAMESPACE, participants);
    let genesis_hash = node.with_chain(medledger_state::Chain::genesis_hash);
    let Validator { partition, timing, peers } = validator;
    let config = application::Config {
        block_interval_ms: timing.block_interval_ms,
        empty_block_interval_ms: timing.empty_block_interval_ms,
    };
    let (actor, mailbox) = Actor::new(
        context.child("application"),
        config,
        Arc::clone(node),
        verifier,
        peers,
        network.application,
    );
    let engine = Engine::new(
        context.child("engine"),
        EngineConfig {
            scheme: signer,
            elector: RoundRobin::<Sha256>::shuffled(genesis_hash.as_bytes()),
            blocker: network.blocker,
            automaton: mailbox.clone(),
            relay: mailbox.clone(),
            reporter: mailbox,
            track_historical_votes: false,
            strategy: Sequential,
            partition,
            mailbox_size: NZUsize!(1024),
            epoch: Epoch::new(0),
            floor: Floor::Genesis(consensus_digest(&genesis_hash)),
            replay_buffer: NZUsize!(1 << 20),
            write_buffer: NZUsize!(1 << 20),
            page_cache: CacheRef::new(NZU16!(4096), NZUsize!(64)),
            leader_timeout: timing.leader_timeout,
            certification_timeout: timing.certification_timeout,
            // After a timed-out view, nullify votes are re-sent this often: validators that
            // start at different times find each other within a second or so.
            timeout_retry: Duration::from_secs(1),
            view_retention: ViewDelta::new(32),
            skip: SkipPolicy::Disabled,
            fetch_timeout: NZDuration!(Duration::from_secs(1)),
            fetch_retry_delay: Duration::from_millis(100),
            forward: ForwardPolicy::SilentVoters,
        },
    );
    let application = actor.start();
    let engine = engine.start(network.votes, network.certificates, network.resolver);
    Ok((application, engine))
}

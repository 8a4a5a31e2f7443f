//! One node in the validator network: the application and, per epoch, a Simplex engine, over
//! any runtime and network.
//!
//! Production runs this on the tokio runtime with authenticated p2p ([`crate::network`]);
//! simulation tests run it on the deterministic runtime with a simulated network. Nothing
//! here knows which.
//!
//! Each validator set in force is one epoch (see `ValidatorSchedule`). The application tells
//! the orchestrator here when its committed head reaches a new epoch; the orchestrator stops
//! the old engine and, if this node is among the new validators, starts one for the new set,
//! rooted at the last block of the previous epoch. Votes, certificates and the engine's
//! fetches travel on one muxed subchannel per epoch, so engines of two epochs never read
//! each other's messages.

use std::sync::Arc;
use std::time::Duration;

use commonware_consensus::simplex::Engine;
use commonware_consensus::simplex::config::{Config as EngineConfig, Floor, ForwardPolicy, SkipPolicy};
use commonware_consensus::simplex::elector::RoundRobin;
use commonware_consensus::simplex::scheme::ed25519::Scheme;
use commonware_consensus::types::{Epoch, ViewDelta};
use commonware_cryptography::Sha256;
use commonware_p2p::utils::mux::{MuxHandle, Muxer};
use commonware_p2p::{Blocker, Receiver, Sender};
use commonware_parallel::Sequential;
use commonware_runtime::buffer::paged::CacheRef;
use commonware_runtime::{Clock, Handle, Metrics, Spawner, Storage};
use commonware_utils::channel::mpsc;
use commonware_utils::ordered::Set;
use commonware_utils::{NZDuration, NZU16, NZUsize};
use medledger_crypto::{Digest, PublicKey, SigningKey};
use medledger_node::Node;
use rand_core::CryptoRng;

use crate::application::{self, Actor, Channels, Mailbox};
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
    /// With nothing pending, the wait before proposing an empty block (the heartbeat).
    pub empty_block_interval_ms: u64,
}

impl Timing {
    /// Timing for a node whose block interval is `block_interval_ms` and whose idle
    /// heartbeat is `empty_block_interval_ms` (at least the block interval).
    #[must_use]
    pub fn new(block_interval_ms: u64, empty_block_interval_ms: u64) -> Self {
        Self {
            leader_timeout: Duration::from_secs(2),
            certification_timeout: Duration::from_secs(3),
            block_interval_ms,
            empty_block_interval_ms: empty_block_interval_ms.max(block_interval_ms),
        }
    }
}

/// The network endpoints one node needs.
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

/// A node's consensus settings.
#[derive(Debug, Clone)]
pub struct Validator {
    /// Storage partition prefix of the engines' journals (votes and certificates an engine
    /// must not forget across a restart); each epoch appends its number. Unique per node
    /// sharing one runtime's storage.
    pub partition: String,
    /// Timing.
    pub timing: Timing,
}

/// An epoch the committed chain has reached: its validators and the block it starts after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochStart {
    /// The epoch number.
    pub epoch: u64,
    /// Its validators.
    pub validators: Vec<PublicKey>,
    /// The hash of the last block before the epoch (the genesis hash for epoch 0): every
    /// engine of the epoch builds its first block on it.
    pub floor: Digest,
}

/// Handles of a running node's tasks.
pub struct Handles {
    /// The application actor.
    pub application: Handle<()>,
    /// The orchestrator, which runs one engine per epoch.
    pub orchestrator: Handle<()>,
}

/// Starts the application and the orchestrator for `node` signing with `key`. The node runs
/// an engine in every epoch whose validators include it and follows the chain otherwise.
pub fn start<E, S, R, B>(
    context: &E,
    node: &Arc<Node>,
    key: &SigningKey,
    validator: Validator,
    network: Network<S, R, B>,
) -> Handles
where
    E: Clock + CryptoRng + Spawner + Storage + Metrics,
    S: Sender<PublicKey = ConsensusKey>,
    R: Receiver<PublicKey = ConsensusKey>,
    B: Blocker<PublicKey = ConsensusKey> + Clone + Sync,
{
    let Validator { partition, timing } = validator;
    let config = application::Config {
        block_interval_ms: timing.block_interval_ms,
        empty_block_interval_ms: timing.empty_block_interval_ms,
    };
    let (epochs_sender, epochs) = mpsc::unbounded_channel();
    let (actor, mailbox) = Actor::new(
        context.child("application"),
        config,
        Arc::clone(node),
        epochs_sender,
        network.application,
    );
    let application = actor.start();
    let key = SigningKey::from_seed(&key.seed());
    let Network { votes, certificates, resolver, blocker, .. } = network;
    // Spawned from the orchestrator's own context, the muxers and engines stop with it.
    let orchestrator = context.child("orchestrator").spawn(move |context| {
        let mux = |name: &'static str, (sender, receiver): (S, R)| {
            let (muxer, handle) = Muxer::new(context.child(name), sender, receiver);
            muxer.start();
            handle
        };
        let orchestrator = Orchestrator {
            votes: mux("votes", votes),
            certificates: mux("certificates", certificates),
            resolver: mux("resolver", resolver),
            context,
            key,
            partition,
            timing,
            blocker,
            mailbox,
            epochs,
        };
        orchestrator.run()
    });
    Handles { application, orchestrator }
}

/// Runs the engine of the current epoch, replacing it when the chain enters the next.
struct Orchestrator<E, S: Sender, B> {
    context: E,
    key: SigningKey,
    partition: String,
    timing: Timing,
    blocker: B,
    votes: MuxHandle<S>,
    certificates: MuxHandle<S>,
    resolver: MuxHandle<S>,
    mailbox: Mailbox,
    epochs: mpsc::UnboundedReceiver<EpochStart>,
}

impl<E, S, B> Orchestrator<E, S, B>
where
    E: Clock + CryptoRng + Spawner + Storage + Metrics,
    S: Sender<PublicKey = ConsensusKey>,
    B: Blocker<PublicKey = ConsensusKey> + Clone + Sync,
{
    async fn run(mut self) {
        let mut running: Option<(u64, Handle<()>)> = None;
        while let Some(start) = self.epochs.recv().await {
            if running.as_ref().is_some_and(|(epoch, _)| *epoch >= start.epoch) {
                continue;
            }
            if let Some((epoch, engine)) = running.take() {
                engine.abort();
                self.forget(epoch).await;
            }
            let me = self.key.public_key();
            if !start.validators.contains(&me) {
                tracing::info!(
                    epoch = start.epoch,
                    validators = start.validators.len(),
                    "following: not a validator in this epoch"
                );
                continue;
            }
            match self.start_engine(&start).await {
                Some(engine) => {
                    tracing::info!(
                        epoch = start.epoch,
                        validators = start.validators.len(),
                        "consensus epoch started"
                    );
                    running = Some((start.epoch, engine));
                }
                None => return,
            }
        }
    }

    /// Starts the engine of `start`'s epoch; `None` if the muxers have stopped.
    async fn start_engine(&mut self, start: &EpochStart) -> Option<Handle<()>> {
        let participants = Set::from_iter_dedup(start.validators.iter().map(consensus_key));
        let signer = Scheme::signer(NAMESPACE, participants, consensus_signer(&self.key))
            .expect("checked: this node is a validator of the epoch");
        let epoch = start.epoch;
        let (Ok(votes), Ok(certificates), Ok(resolver)) = (
            self.votes.register(epoch).await,
            self.certificates.register(epoch).await,
            self.resolver.register(epoch).await,
        ) else {
            tracing::error!(epoch, "the consensus channels are closed");
            return None;
        };
        let engine = Engine::new(
            self.context.child("engine").with_attribute("epoch", start.epoch),
            EngineConfig {
                scheme: signer,
                elector: RoundRobin::<Sha256>::shuffled(start.floor.as_bytes()),
                blocker: self.blocker.clone(),
                automaton: self.mailbox.clone(),
                relay: self.mailbox.clone(),
                reporter: self.mailbox.clone(),
                track_historical_votes: false,
                strategy: Sequential,
                partition: self.partition_of(start.epoch),
                mailbox_size: NZUsize!(1024),
                epoch: Epoch::new(start.epoch),
                floor: Floor::Genesis(consensus_digest(&start.floor)),
                replay_buffer: NZUsize!(1 << 20),
                write_buffer: NZUsize!(1 << 20),
                page_cache: CacheRef::new(NZU16!(4096), NZUsize!(64)),
                leader_timeout: self.timing.leader_timeout,
                certification_timeout: self.timing.certification_timeout,
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
        Some(engine.start(votes, certificates, resolver))
    }

    fn partition_of(&self, epoch: u64) -> String {
        format!("{}-epoch-{epoch}", self.partition)
    }

    /// Removes a finished epoch's journal: its last block is final, so nothing in it is
    /// needed again.
    async fn forget(&self, epoch: u64) {
        if let Err(error) = self.context.remove(&self.partition_of(epoch), None).await {
            tracing::warn!(epoch, %error, "could not remove the journal of a finished epoch");
        }
    }
}

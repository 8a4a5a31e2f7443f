//! The application side of consensus: what the Simplex engine asks of MedLedger.
//!
//! The engine agrees on block hashes; this actor owns everything about blocks:
//! - **propose**: build a block on the parent consensus names, from the mempool, once a full
//!   block is pending or the block interval has passed;
//! - **verify**: fetch the proposal (relayed by its proposer, or asked of peers), check it is
//!   the leader's and runs on its parent (every signature, the state transition, all roots),
//!   and only then let the engine vote for it;
//! - **finalize**: when the engine reports a finalization, commit that block and any of its
//!   not yet committed ancestors to the store, with the certificate;
//! - **catch up**: learn peers' finalized heights, fetch the final blocks this node lacks with
//!   the certificate of the last, and check certificate, hash links and every state root
//!   before committing them;
//! - **gossip**: send client transactions admitted here to every validator's mempool;
//! - **epochs**: tell the orchestrator when the committed chain enters a new validator set's
//!   epoch, and refuse to propose or vote for a block outside the engine's own epoch, so each
//!   epoch's engine ends with the epoch's last block.
//!
//! Blocks that are verified but not final are kept with the chain state after them, so a
//! proposal on a parent that is notarized but not yet final can be built and checked.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use commonware_actor::Feedback;
use commonware_codec::{Copying, Decode as _, Encode as _};
use commonware_consensus::simplex::Plan;
use commonware_consensus::simplex::scheme::ed25519::Scheme;
use commonware_consensus::simplex::types::{Activity, Context, Finalization};
use commonware_consensus::{Automaton, CertifiableAutomaton, Relay, Reporter};
use commonware_cryptography::certificate::Verifier as _;
use commonware_macros::select_loop;
use commonware_p2p::{Receiver, Recipients, Sender};
use commonware_parallel::Sequential;
use commonware_runtime::{Clock, ContextCell, Handle, Spawner, spawn_cell};
use commonware_utils::channel::fallible::OneshotExt as _;
use commonware_utils::channel::{mpsc, oneshot};
use commonware_utils::ordered::Set;
use medledger_crypto::{Digest, PublicKey};
use medledger_node::{NetworkView, Node, PeerStatus};
use medledger_state::{Chain, VerifiedBlock};
use medledger_types::{Block, Decode as _, Encode as _};
use rand_core::CryptoRng;

use crate::engine::{EpochStart, NAMESPACE};
use crate::keys::{
    ConsensusDigest, ConsensusKey, consensus_digest, consensus_key, ledger_digest, ledger_key,
};
use crate::wire::{MAX_FINALIZATION_BYTES, MAX_GOSSIP_TXS, MAX_SYNC_BLOCKS, Message};

/// What the engine's context says about a proposal.
pub type ProposalContext = Context<ConsensusDigest, ConsensusKey>;

/// How often the actor looks at timers: pending proposals, retries, gossip, status.
const TICK: Duration = Duration::from_millis(10);

/// How often a node announces its finalized height.
const HELLO_INTERVAL: Duration = Duration::from_secs(1);

/// A peer not heard from for this long is shown as disconnected.
const PEER_SILENCE: Duration = Duration::from_secs(3);

/// How long before asking peers again for a block or for final blocks.
const RETRY_INTERVAL: Duration = Duration::from_millis(500);

/// Most proposals' blocks held before they are verified; the oldest go first. Consensus
/// only needs the few around the current view.
const MAX_UNVERIFIED_BLOCKS: usize = 256;

/// Most verified, not yet final blocks kept (each with its chain state).
const MAX_CANDIDATES: usize = 64;

/// Most blocks remembered as invalid.
const MAX_INVALID: usize = 1_024;

/// A proposal's timestamp may be at most this far ahead of this node's clock; a proposal
/// further ahead waits (the clocks may be skewed) rather than being refused.
const MAX_CLOCK_AHEAD_MS: u64 = 2_000;

/// Gossip batches sent per tick at most, so gossip cannot starve consensus work.
const MAX_GOSSIP_BATCHES_PER_TICK: usize = 4;

/// While a validator change is scheduled, empty blocks come this often so the change takes
/// effect within seconds rather than heartbeats.
const SCHEDULED_CHANGE_BLOCK_INTERVAL_MS: u64 = 1_000;

/// A catch-up of at most this many blocks is logged at debug level only: a validator that
/// missed a vote or two fetches a block or two in passing.
const ROUTINE_CATCH_UP_BLOCKS: u64 = 8;

/// Catch-up progress is logged at most this often.
const CATCH_UP_LOG_INTERVAL: Duration = Duration::from_secs(5);

/// A validator's connection changes are logged at most this often, so a flapping link does
/// not flood the log.
const PEER_LOG_INTERVAL: Duration = Duration::from_secs(30);

/// A validator not heard from at all this long after start is reported: a mesh on one
/// network forms within a few seconds.
const NEVER_HEARD_WARN_AFTER: Duration = Duration::from_secs(10);

/// Epochs whose certificate verifiers are kept; catch-up rarely spans more.
const MAX_VERIFIERS: usize = 4;

/// Settings of the application actor.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Longest wait before a proposal takes the pending transactions.
    pub block_interval_ms: u64,
    /// Wait before proposing an empty block when nothing is pending (keeps finality moving
    /// without filling the chain with empty blocks).
    pub empty_block_interval_ms: u64,
}

enum Request {
    Propose { context: ProposalContext, response: oneshot::Sender<ConsensusDigest> },
    Verify { context: ProposalContext, payload: ConsensusDigest, response: oneshot::Sender<bool> },
    Broadcast { payload: ConsensusDigest, plan: Plan<ConsensusKey> },
    Finalized(Finalization<Scheme, ConsensusDigest>),
}

/// The engine's handle on the application: [`Automaton`], [`Relay`] and [`Reporter`].
#[derive(Clone)]
pub struct Mailbox {
    sender: mpsc::UnboundedSender<Request>,
}

impl Automaton for Mailbox {
    type Context = ProposalContext;
    type Digest = ConsensusDigest;

    async fn propose(&mut self, context: ProposalContext) -> oneshot::Receiver<ConsensusDigest> {
        let (response, receiver) = oneshot::channel();
        // A closed mailbox drops `response`, which tells the engine there is no proposal.
        let _sent = self.sender.send(Request::Propose { context, response });
        receiver
    }

    async fn verify(
        &mut self,
        context: ProposalContext,
        payload: ConsensusDigest,
    ) -> oneshot::Receiver<bool> {
        let (response, receiver) = oneshot::channel();
        let _sent = self.sender.send(Request::Verify { context, payload, response });
        receiver
    }
}

impl CertifiableAutomaton for Mailbox {}

impl Relay for Mailbox {
    type Digest = ConsensusDigest;
    type PublicKey = ConsensusKey;
    type Plan = Plan<ConsensusKey>;

    fn broadcast(&mut self, payload: ConsensusDigest, plan: Plan<ConsensusKey>) -> Feedback {
        feedback(self.sender.send(Request::Broadcast { payload, plan }).is_ok())
    }
}

impl Reporter for Mailbox {
    type Activity = Activity<Scheme, ConsensusDigest>;

    fn report(&mut self, activity: Self::Activity) -> Feedback {
        match activity {
            Activity::Finalization(finalization) => {
                feedback(self.sender.send(Request::Finalized(finalization)).is_ok())
            }
            Activity::ConflictingNotarize(_)
            | Activity::ConflictingFinalize(_)
            | Activity::NullifyFinalize(_) => {
                tracing::warn!("consensus saw a validator sign conflicting messages");
                Feedback::Ok
            }
            _ => Feedback::Ok,
        }
    }
}

const fn feedback(sent: bool) -> Feedback {
    if sent { Feedback::Ok } else { Feedback::Closed }
}

/// A verified block that is not final yet, and the chain after it.
struct Candidate {
    verified: VerifiedBlock,
    chain: Arc<Chain>,
}

struct PendingVerify {
    context: ProposalContext,
    payload: Digest,
    response: oneshot::Sender<bool>,
}

struct PendingPropose {
    context: ProposalContext,
    response: oneshot::Sender<ConsensusDigest>,
}

/// What a validator last said about itself.
struct PeerSeen {
    finalized_height: u64,
    at: SystemTime,
}

/// What the log last said about a validator's connection.
struct PeerLogged {
    connected: bool,
    at: SystemTime,
}

/// A catch-up in progress, for its progress log.
struct CatchUp {
    started: SystemTime,
    from_height: u64,
    logged: SystemTime,
}

/// The network endpoints of the application's three channels.
pub struct Channels<S, R> {
    /// Blocks.
    pub blocks: (S, R),
    /// Transaction gossip.
    pub transactions: (S, R),
    /// Heights and catch-up.
    pub sync: (S, R),
}

/// The application actor.
pub struct Actor<E, S, R>
where
    E: Clock + Spawner + CryptoRng,
    S: Sender<PublicKey = ConsensusKey>,
    R: Receiver<PublicKey = ConsensusKey>,
{
    context: ContextCell<E>,
    config: Config,
    node: Arc<Node>,
    /// Verifiers of finalization certificates of blocks fetched to catch up, by epoch.
    verifiers: BTreeMap<u64, Scheme>,
    /// Where the epochs the committed chain enters are announced.
    epochs: mpsc::UnboundedSender<EpochStart>,
    /// The last epoch announced.
    announced_epoch: Option<u64>,
    mailbox: mpsc::UnboundedReceiver<Request>,
    /// The committed head and the chain after it.
    head: Arc<Chain>,
    /// Proposals' blocks not verified yet, by hash, with their arrival order for eviction.
    unverified: HashMap<Digest, Block>,
    unverified_order: VecDeque<Digest>,
    candidates: HashMap<Digest, Candidate>,
    invalid: HashSet<Digest>,
    invalid_order: VecDeque<Digest>,
    verifies: Vec<PendingVerify>,
    proposals: Vec<PendingPropose>,
    /// The latest finalization not applied yet (its block or an ancestor is missing).
    finalization: Option<Finalization<Scheme, ConsensusDigest>>,
    /// Blocks asked of peers, and when.
    requested: HashMap<Digest, SystemTime>,
    catch_up_requested: Option<SystemTime>,
    seen: BTreeMap<ConsensusKey, PeerSeen>,
    peer_log: BTreeMap<PublicKey, PeerLogged>,
    catching_up: Option<CatchUp>,
    started: SystemTime,
    next_hello: SystemTime,
    channels: Option<Channels<S, R>>,
}

impl<E, S, R> Actor<E, S, R>
where
    E: Clock + Spawner + CryptoRng,
    S: Sender<PublicKey = ConsensusKey>,
    R: Receiver<PublicKey = ConsensusKey>,
{
    /// An actor for `node`, talking to the other nodes over `channels` and announcing on
    /// `epochs` each epoch its committed chain enters (the current one first).
    pub fn new(
        context: E,
        config: Config,
        node: Arc<Node>,
        epochs: mpsc::UnboundedSender<EpochStart>,
        channels: Channels<S, R>,
    ) -> (Self, Mailbox) {
        let (sender, mailbox) = mpsc::unbounded_channel();
        let head = Arc::new(node.with_chain(Chain::clone));
        node.enable_gossip();
        let now = context.current();
        let actor = Self {
            context: ContextCell::new(context),
            config,
            node,
            verifiers: BTreeMap::new(),
            epochs,
            announced_epoch: None,
            mailbox,
            head,
            unverified: HashMap::new(),
            unverified_order: VecDeque::new(),
            candidates: HashMap::new(),
            invalid: HashSet::new(),
            invalid_order: VecDeque::new(),
            verifies: Vec::new(),
            proposals: Vec::new(),
            finalization: None,
            requested: HashMap::new(),
            catch_up_requested: None,
            seen: BTreeMap::new(),
            peer_log: BTreeMap::new(),
            catching_up: None,
            started: now,
            next_hello: now,
            channels: Some(channels),
        };
        (actor, Mailbox { sender })
    }

    /// Runs the actor until its context stops.
    pub fn start(mut self) -> Handle<()> {
        spawn_cell!(self.context, self.run())
    }

    async fn run(mut self) {
        let Channels { blocks, transactions, sync } = self.channels.take().expect("channels are taken once");
        let (mut block_sender, mut block_receiver) = blocks;
        let (mut tx_sender, mut tx_receiver) = transactions;
        let (mut sync_sender, mut sync_receiver) = sync;
        let mut senders =
            Senders { blocks: &mut block_sender, transactions: &mut tx_sender, sync: &mut sync_sender };
        let mut next_tick = self.context.current() + TICK;
        self.announce_epoch();
        select_loop! {
            self.context,
            on_stopped => {
                tracing::debug!("consensus application stopping");
            },
            Some(request) = self.mailbox.recv() else break => {
                self.on_request(request, &mut senders);
            },
            Ok((peer, bytes)) = block_receiver.recv() else break => {
                self.on_message(&peer, bytes.as_ref(), &mut senders);
            },
            Ok((peer, bytes)) = sync_receiver.recv() else break => {
                self.on_message(&peer, bytes.as_ref(), &mut senders);
            },
            Ok((peer, bytes)) = tx_receiver.recv() else break => {
                self.on_message(&peer, bytes.as_ref(), &mut senders);
            },
            () = self.context.sleep_until(next_tick) => {
                self.on_tick(&mut senders);
                next_tick = self.context.current() + TICK;
            },
        }
    }

    fn now(&self) -> SystemTime {
        self.context.current()
    }

    fn now_ms(&self) -> u64 {
        let since_epoch = self.now().duration_since(UNIX_EPOCH).unwrap_or_default();
        u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
    }

    fn on_request(&mut self, request: Request, senders: &mut Senders<'_, S>) {
        match request {
            Request::Propose { context, response } => {
                self.proposals.push(PendingPropose { context, response });
                self.try_proposals(senders);
            }
            Request::Verify { context, payload, response } => {
                self.verifies.push(PendingVerify { context, payload: ledger_digest(&payload), response });
                self.try_verifies(senders);
            }
            Request::Broadcast { payload, plan } => self.relay(&ledger_digest(&payload), plan, senders),
            Request::Finalized(finalization) => {
                let newer = self
                    .finalization
                    .as_ref()
                    .is_none_or(|held| held.proposal.round < finalization.proposal.round);
                if newer {
                    self.finalization = Some(finalization);
                }
                self.try_finalize(senders);
            }
        }
    }

    fn on_message(&mut self, peer: &ConsensusKey, bytes: &[u8], senders: &mut Senders<'_, S>) {
        let message = match Message::decode(bytes) {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(%peer, %error, "undecodable message from a validator");
                return;
            }
        };
        match message {
            Message::Block(block) => self.on_block(*block, senders),
            Message::GetBlock(hash) => self.serve_block(peer, &hash, senders),
            Message::Transactions(txs) => {
                let count = txs.len();
                let admitted = self.node.admit_from_peer(txs);
                tracing::trace!(%peer, count, admitted, "gossiped transactions");
            }
            Message::Hello { finalized_height } => {
                let now = self.now();
                let returning = self
                    .seen
                    .get(peer)
                    .is_none_or(|seen| now.duration_since(seen.at).unwrap_or_default() >= PEER_SILENCE);
                self.seen.insert(peer.clone(), PeerSeen { finalized_height, at: now });
                if returning {
                    self.resend_pending(peer, senders);
                }
            }
            Message::GetFinalized { from_height } => self.serve_finalized(peer, from_height, senders),
            Message::Finalized { blocks, finalization } => {
                self.on_finalized_blocks(peer, blocks, &finalization);
            }
        }
    }

    fn on_tick(&mut self, senders: &mut Senders<'_, S>) {
        self.try_proposals(senders);
        self.try_verifies(senders);
        self.try_finalize(senders);
        self.gossip(senders);
        let now = self.now();
        if now >= self.next_hello {
            self.next_hello = now + HELLO_INTERVAL;
            let hello = Message::Hello { finalized_height: self.head.height() };
            send(senders.sync, Recipients::All, &hello);
            self.publish_peers();
        }
        self.catch_up(senders);
    }

    // ---- proposing -------------------------------------------------------------------------

    fn try_proposals(&mut self, senders: &mut Senders<'_, S>) {
        let mut waiting = Vec::new();
        for proposal in std::mem::take(&mut self.proposals) {
            if proposal.response.is_closed() {
                continue;
            }
            let parent = ledger_digest(&proposal.context.parent.1);
            let Some(chain) = self.chain_after(&parent, senders) else {
                waiting.push(proposal);
                continue;
            };
            if chain.epoch_at(chain.height() + 1) != proposal.context.round.epoch().get() {
                // The next block belongs to another epoch's engine: no proposal (the dropped
                // response tells the engine so).
                continue;
            }
            if !self.ready_to_propose(&chain) {
                waiting.push(proposal);
                continue;
            }
            let verified = self.node.build_on(&chain, self.now_ms());
            let hash = verified.hash();
            tracing::debug!(height = verified.block().header.height, txs = verified.block().transactions.len(), %hash, "proposing");
            let mut after = Chain::clone(&chain);
            after.commit(verified.clone());
            self.insert_candidate(hash, Candidate { verified, chain: Arc::new(after) });
            proposal.response.send_lossy(consensus_digest(&hash));
        }
        self.proposals = waiting;
    }

    /// A block is proposed once a full block is pending, or the block interval has passed
    /// since the parent with something pending, or the empty-block interval (the heartbeat)
    /// with nothing. Until then the leader holds its proposal: an idle view times out and
    /// is skipped (nullified), which costs a few votes and nothing on disk.
    fn ready_to_propose(&self, parent: &Chain) -> bool {
        let pending = self.node.pending_count();
        if pending >= self.node.config().max_block_txs {
            return true;
        }
        let parent_ms = parent.head().map_or(parent.genesis().genesis_time_ms, |head| head.timestamp_ms);
        let wait_ms = if pending > 0 {
            self.config.block_interval_ms
        } else if parent.validator_schedule().next.is_some() {
            // A validator change waits for its height: reach it without the idle heartbeat.
            SCHEDULED_CHANGE_BLOCK_INTERVAL_MS.max(self.config.block_interval_ms)
        } else {
            self.config.empty_block_interval_ms
        };
        self.now_ms() >= parent_ms.saturating_add(wait_ms)
    }

    // ---- verifying -------------------------------------------------------------------------

    fn try_verifies(&mut self, senders: &mut Senders<'_, S>) {
        let mut waiting = Vec::new();
        for pending in std::mem::take(&mut self.verifies) {
            if pending.response.is_closed() {
                continue;
            }
            match self.verdict(&pending.context, &pending.payload, senders) {
                Some(valid) => {
                    pending.response.send_lossy(valid);
                }
                None => waiting.push(pending),
            }
        }
        self.verifies = waiting;
    }

    /// `Some(valid)` once the proposal can be judged; `None` while its block or parent is
    /// missing or its timestamp is ahead of this node's clock.
    fn verdict(
        &mut self,
        context: &ProposalContext,
        payload: &Digest,
        senders: &mut Senders<'_, S>,
    ) -> Option<bool> {
        if self.invalid.contains(payload) {
            return Some(false);
        }
        let parent = ledger_digest(&context.parent.1);
        let leader = ledger_key(&context.leader);
        if let Some(candidate) = self.candidates.get(payload) {
            let header = &candidate.verified.block().header;
            return Some(
                header.parent_hash == parent
                    && Some(header.proposer) == leader
                    && in_epoch(&candidate.chain, context),
            );
        }
        let Some(block) = self.unverified.get(payload) else {
            self.request_block(payload, senders);
            return None;
        };
        let header = &block.header;
        if header.parent_hash != parent || Some(header.proposer) != leader {
            tracing::warn!(%payload, "proposal does not match the leader or parent consensus named");
            self.mark_invalid(*payload);
            return Some(false);
        }
        if header.timestamp_ms > self.now_ms().saturating_add(MAX_CLOCK_AHEAD_MS) {
            return None;
        }
        self.chain_after(payload, senders)
            .map(|chain| in_epoch(&chain, context))
            .or_else(|| self.invalid.contains(payload).then_some(false))
    }

    /// The chain after block `hash`: the committed head, a candidate, or a received block
    /// validated now on its parent's chain. `None` if the block, or an ancestor, is missing
    /// (it is asked of peers) or invalid (it is remembered as such).
    fn chain_after(&mut self, hash: &Digest, senders: &mut Senders<'_, S>) -> Option<Arc<Chain>> {
        if *hash == self.head.head_hash() {
            return Some(Arc::clone(&self.head));
        }
        if let Some(candidate) = self.candidates.get(hash) {
            return Some(Arc::clone(&candidate.chain));
        }
        // Walk back to a known chain, then validate forwards.
        let mut path = Vec::new();
        let mut cursor = *hash;
        let base = loop {
            if self.invalid.contains(&cursor) {
                return None;
            }
            if let Some(chain) = self.known_chain(&cursor) {
                break chain;
            }
            let Some(block) = self.unverified.get(&cursor) else {
                self.request_block(&cursor, senders);
                return None;
            };
            if block.header.height <= self.head.height() || path.len() >= MAX_CANDIDATES {
                // Not on top of the committed chain: a fork consensus abandoned.
                return None;
            }
            path.push(cursor);
            cursor = block.header.parent_hash;
        };
        let mut chain = base;
        for hash in path.into_iter().rev() {
            let block = self.unverified.remove(&hash).expect("the walk found it");
            match self.node.validate_on(&chain, block) {
                Ok(verified) => {
                    let mut after = Chain::clone(&chain);
                    after.commit(verified.clone());
                    chain = Arc::new(after);
                    self.insert_candidate(hash, Candidate { verified, chain: Arc::clone(&chain) });
                }
                Err(error) => {
                    tracing::warn!(%hash, %error, "invalid block");
                    self.mark_invalid(hash);
                    return None;
                }
            }
        }
        Some(chain)
    }

    fn known_chain(&self, hash: &Digest) -> Option<Arc<Chain>> {
        if *hash == self.head.head_hash() {
            return Some(Arc::clone(&self.head));
        }
        self.candidates.get(hash).map(|candidate| Arc::clone(&candidate.chain))
    }

    fn insert_candidate(&mut self, hash: Digest, candidate: Candidate) {
        if self.candidates.len() >= MAX_CANDIDATES {
            // Forget the lowest: consensus has moved past it or it lost to another block.
            if let Some(lowest) =
                self.candidates.iter().min_by_key(|(_, c)| c.chain.height()).map(|(hash, _)| *hash)
            {
                self.candidates.remove(&lowest);
            }
        }
        self.candidates.insert(hash, candidate);
    }

    fn mark_invalid(&mut self, hash: Digest) {
        self.unverified.remove(&hash);
        if self.invalid.insert(hash) {
            self.invalid_order.push_back(hash);
            if self.invalid_order.len() > MAX_INVALID
                && let Some(oldest) = self.invalid_order.pop_front()
            {
                self.invalid.remove(&oldest);
            }
        }
    }

    // ---- blocks on the wire ----------------------------------------------------------------

    fn on_block(&mut self, block: Block, senders: &mut Senders<'_, S>) {
        let hash = block.hash();
        self.requested.remove(&hash);
        if block.header.height <= self.head.height()
            || self.candidates.contains_key(&hash)
            || self.invalid.contains(&hash)
            || self.unverified.contains_key(&hash)
        {
            return;
        }
        if self.unverified_order.len() >= MAX_UNVERIFIED_BLOCKS
            && let Some(oldest) = self.unverified_order.pop_front()
        {
            self.unverified.remove(&oldest);
        }
        self.unverified.insert(hash, block);
        self.unverified_order.push_back(hash);
        self.try_verifies(senders);
        self.try_proposals(senders);
        self.try_finalize(senders);
    }

    fn relay(&mut self, hash: &Digest, plan: Plan<ConsensusKey>, senders: &mut Senders<'_, S>) {
        let recipients = match plan {
            Plan::Propose { .. } => Recipients::All,
            Plan::Forward { recipients, .. } => recipients,
            // Proposals are built only when asked for, never staged ahead.
            Plan::Prepare { .. } => return,
        };
        if let Some(block) = self.block(hash) {
            send(senders.blocks, recipients, &Message::Block(Box::new(block)));
        }
    }

    /// A block this node knows, final or not.
    fn block(&self, hash: &Digest) -> Option<Block> {
        if let Some(candidate) = self.candidates.get(hash) {
            return Some(candidate.verified.block().clone());
        }
        if let Some(block) = self.unverified.get(hash) {
            return Some(block.clone());
        }
        let store = self.node.store();
        let height = store.height_of(hash).ok().flatten()?;
        store.block(height).ok().flatten()
    }

    fn serve_block(&self, peer: &ConsensusKey, hash: &Digest, senders: &mut Senders<'_, S>) {
        if let Some(block) = self.block(hash) {
            send(senders.blocks, Recipients::One(peer.clone()), &Message::Block(Box::new(block)));
        }
    }

    fn request_block(&mut self, hash: &Digest, senders: &mut Senders<'_, S>) {
        let now = self.now();
        let recent = self
            .requested
            .get(hash)
            .is_some_and(|at| now.duration_since(*at).unwrap_or_default() < RETRY_INTERVAL);
        if recent {
            return;
        }
        self.requested.insert(*hash, now);
        send(senders.blocks, Recipients::All, &Message::GetBlock(*hash));
    }

    // ---- finality --------------------------------------------------------------------------

    /// Commits the block of the latest finalization and its missing ancestors, if all are
    /// here and valid.
    fn try_finalize(&mut self, senders: &mut Senders<'_, S>) {
        let Some(finalization) = self.finalization.as_ref() else {
            return;
        };
        let target = ledger_digest(&finalization.proposal.payload);
        if self.node.store().height_of(&target).ok().flatten().is_some() {
            self.finalization = None;
            return;
        }
        if self.chain_after(&target, senders).is_none() {
            return;
        }
        // Collect the path from the head to the target.
        let mut path = Vec::new();
        let mut cursor = target;
        while cursor != self.head.head_hash() {
            let Some(candidate) = self.candidates.get(&cursor) else {
                tracing::error!(%target, "a finalized block does not descend from the committed head");
                self.finalization = None;
                return;
            };
            path.push(cursor);
            cursor = candidate.verified.block().header.parent_hash;
        }
        let certificate = self.finalization.take().expect("checked above").encode().to_vec();
        for hash in path.into_iter().rev() {
            let candidate = self.candidates.remove(&hash).expect("on the path");
            let last = hash == target;
            if !self.commit(candidate, last.then_some(certificate.as_slice())) {
                return;
            }
        }
    }

    /// Commits a final block; `false` if the store failed (the node then stops serving).
    fn commit(&mut self, candidate: Candidate, finalization: Option<&[u8]>) -> bool {
        let height = candidate.chain.height();
        match self.node.commit_final(candidate.verified, finalization) {
            Ok(committed) => {
                tracing::debug!(height, txs = committed.receipts.len(), "finalized block committed");
                self.head = candidate.chain;
                self.prune_below(height);
                self.announce_epoch();
                true
            }
            Err(error) => {
                tracing::error!(%error, height, "committing a final block failed");
                false
            }
        }
    }

    fn prune_below(&mut self, height: u64) {
        self.candidates.retain(|_, candidate| candidate.chain.height() > height);
        let unverified = &mut self.unverified;
        unverified.retain(|_, block| block.header.height > height);
        self.unverified_order.retain(|hash| unverified.contains_key(hash));
        let now = self.now();
        self.requested.retain(|_, at| now.duration_since(*at).unwrap_or_default() < RETRY_INTERVAL);
    }

    // ---- catch-up ---------------------------------------------------------------------------

    /// Asks the most advanced peer for final blocks when this node is behind.
    fn catch_up(&mut self, senders: &mut Senders<'_, S>) {
        let height = self.head.height();
        let Some((peer, _)) = self
            .seen
            .iter()
            .filter(|(_, seen)| seen.finalized_height > height)
            .max_by_key(|(_, seen)| seen.finalized_height)
        else {
            return;
        };
        let now = self.now();
        if self
            .catch_up_requested
            .is_some_and(|at| now.duration_since(at).unwrap_or_default() < RETRY_INTERVAL)
        {
            return;
        }
        self.catch_up_requested = Some(now);
        let peer = peer.clone();
        send(senders.sync, Recipients::One(peer), &Message::GetFinalized { from_height: height + 1 });
    }

    fn serve_finalized(&self, peer: &ConsensusKey, from_height: u64, senders: &mut Senders<'_, S>) {
        let store = self.node.store();
        let Ok(Some((last, finalization))) = store.finalization_at_or_above(from_height) else {
            return;
        };
        if from_height == 0 || last - from_height >= MAX_SYNC_BLOCKS as u64 {
            tracing::warn!(from_height, last, "no certificate close enough to serve this catch-up");
            return;
        }
        let blocks: Option<Vec<Block>> =
            (from_height..=last).map(|height| store.block(height).ok().flatten()).collect();
        if let Some(blocks) = blocks {
            send(senders.sync, Recipients::One(peer.clone()), &Message::Finalized { blocks, finalization });
        }
    }

    fn on_finalized_blocks(&mut self, peer: &ConsensusKey, blocks: Vec<Block>, certificate: &[u8]) {
        self.catch_up_requested = None;
        match self.check_finalized(blocks, certificate) {
            Ok(verified) => {
                let before = self.head.height();
                let last = verified.len().saturating_sub(1);
                for (index, (candidate, _)) in verified.into_iter().enumerate() {
                    if !self.commit(candidate, (index == last).then_some(certificate)) {
                        return;
                    }
                }
                self.log_catch_up(peer, before);
            }
            Err(reason) => tracing::warn!(%peer, reason, "refused catch-up blocks"),
        }
    }

    /// Logs catch-up progress (blocks fetched since `before`, the height before this batch):
    /// where it stands against the highest height peers announced, at most every few
    /// seconds, and once when this node reaches it.
    fn log_catch_up(&mut self, peer: &ConsensusKey, before: u64) {
        let now = self.now();
        let height = self.head.height();
        let target = self.highest_announced().unwrap_or(height).max(height);
        let progress =
            self.catching_up.get_or_insert(CatchUp { started: now, from_height: before, logged: now });
        let elapsed = now.duration_since(progress.started).unwrap_or_default();
        if height >= target {
            let blocks = height - progress.from_height;
            // A block or two fetched in passing is routine; a real catch-up is news.
            if blocks > ROUTINE_CATCH_UP_BLOCKS {
                tracing::info!(%peer, height, blocks, elapsed_ms = elapsed.as_millis(), "caught up with the network");
            } else {
                tracing::debug!(%peer, height, blocks, "caught up with the network");
            }
            self.catching_up = None;
        } else if now.duration_since(progress.logged).unwrap_or_default() >= CATCH_UP_LOG_INTERVAL {
            progress.logged = now;
            let behind = target - height;
            let done = height - progress.from_height;
            let per_second = u128::from(done) * 1_000 / elapsed.as_millis().max(1);
            tracing::info!(%peer, height, target, behind, blocks_per_second = per_second, "catching up");
        }
    }

    /// The highest final height a peer announced.
    fn highest_announced(&self) -> Option<u64> {
        self.seen.values().map(|seen| seen.finalized_height).max()
    }

    /// Checks fetched final blocks: every block validates (signatures, execution, state root)
    /// in turn on the head, and the certificate finalizes the last one, signed by the
    /// validators of its epoch. Blocks are validated first because they may change those
    /// validators; only authenticated peers can send them.
    fn check_finalized(
        &mut self,
        blocks: Vec<Block>,
        certificate: &[u8],
    ) -> Result<Vec<(Candidate, Digest)>, &'static str> {
        let Some(last_hash) = blocks.last().map(Block::hash) else {
            return Err("no blocks");
        };
        if certificate.len() > MAX_FINALIZATION_BYTES {
            return Err("certificate too large");
        }
        let mut chain = Arc::clone(&self.head);
        let mut verified_blocks = Vec::with_capacity(blocks.len());
        for block in blocks {
            let hash = block.hash();
            let verified = self
                .node
                .validate_on(&chain, block)
                .map_err(|_| "a block does not validate on its parent")?;
            let mut after = Chain::clone(&chain);
            after.commit(verified.clone());
            chain = Arc::new(after);
            verified_blocks.push((Candidate { verified, chain: Arc::clone(&chain) }, hash));
        }
        let schedule = chain.validator_schedule();
        let verifier = self.verifier(schedule.epoch, &schedule.current);
        let cfg = verifier.certificate_codec_config();
        let finalization = Finalization::<Scheme, ConsensusDigest>::decode_cfg(Copying(certificate), &cfg)
            .map_err(|_| "undecodable certificate")?;
        if ledger_digest(&finalization.proposal.payload) != last_hash {
            return Err("the certificate is for another block");
        }
        if finalization.proposal.round.epoch().get() != schedule.epoch {
            return Err("the certificate is from another epoch");
        }
        if !finalization.verify(&mut *self.context, &verifier, &Sequential) {
            return Err("the certificate does not verify");
        }
        Ok(verified_blocks)
    }

    /// The certificate verifier of `epoch`, whose validators are `validators`.
    fn verifier(&mut self, epoch: u64, validators: &[PublicKey]) -> Scheme {
        if let Some(verifier) = self.verifiers.get(&epoch) {
            return verifier.clone();
        }
        let verifier =
            Scheme::verifier(NAMESPACE, Set::from_iter_dedup(validators.iter().map(consensus_key)));
        if self.verifiers.len() >= MAX_VERIFIERS {
            self.verifiers.pop_first();
        }
        self.verifiers.insert(epoch, verifier.clone());
        verifier
    }

    // ---- epochs ----------------------------------------------------------------------------

    /// Tells the orchestrator when the next block to commit is in a new epoch.
    fn announce_epoch(&mut self) {
        let next_height = self.head.height() + 1;
        let schedule = self.head.validator_schedule();
        let epoch = schedule.epoch_at(next_height);
        if self.announced_epoch == Some(epoch) {
            return;
        }
        let first_height = if epoch == schedule.epoch { schedule.since_height } else { next_height };
        let Some(floor) = self.hash_at(first_height - 1) else {
            tracing::error!(epoch, first_height, "the block before the epoch is missing from the store");
            return;
        };
        self.announced_epoch = Some(epoch);
        let validators = schedule.at(next_height).to_vec();
        tracing::debug!(epoch, first_height, validators = validators.len(), "entering epoch");
        let _sent = self.epochs.send(EpochStart { epoch, validators, floor });
    }

    /// The hash of the committed block at `height` (the genesis hash at 0).
    fn hash_at(&self, height: u64) -> Option<Digest> {
        if height == self.head.height() {
            return Some(self.head.head_hash());
        }
        if height == 0 {
            return Some(self.head.genesis_hash());
        }
        self.node.store().header(height).ok().map(|header| header.hash())
    }

    // ---- gossip and status -----------------------------------------------------------------

    fn gossip(&mut self, senders: &mut Senders<'_, S>) {
        for _ in 0..MAX_GOSSIP_BATCHES_PER_TICK {
            let txs = self.node.take_outbox(MAX_GOSSIP_TXS);
            if txs.is_empty() {
                return;
            }
            send(senders.transactions, Recipients::All, &Message::Transactions(txs));
        }
    }

    /// Sends a validator that (re)appears what is pending here: it missed the gossip while
    /// it was down or cut off, and a missing transaction would hold back its signer's later ones.
    fn resend_pending(&self, peer: &ConsensusKey, senders: &mut Senders<'_, S>) {
        let pending = self.node.pending(MAX_GOSSIP_TXS * MAX_GOSSIP_BATCHES_PER_TICK);
        for batch in pending.chunks(MAX_GOSSIP_TXS) {
            send(senders.transactions, Recipients::One(peer.clone()), &Message::Transactions(batch.to_vec()));
        }
    }

    /// Publishes to the node's status what is known of the other validators of the next
    /// block, and logs each one's connection changes.
    fn publish_peers(&mut self) {
        let now = self.now();
        let me = self.node.node_key();
        let validators = self.head.validators_at(self.head.height() + 1);
        let mut peers = Vec::new();
        for organization in &self.head.registry().organizations {
            let Some(identity) = organization.node.as_ref() else { continue };
            if identity.public_key == me || !validators.contains(&identity.public_key) {
                continue;
            }
            let seen = self.seen.get(&consensus_key(&identity.public_key));
            let silence = seen.map(|seen| now.duration_since(seen.at).unwrap_or_default());
            peers.push(PeerStatus {
                node_key: identity.public_key,
                organization: organization.id.to_string(),
                address: identity.address.as_str().to_owned(),
                connected: silence.is_some_and(|silence| silence < PEER_SILENCE),
                finalized_height: seen.map(|seen| seen.finalized_height),
                last_seen_ms_ago: silence
                    .map(|silence| u64::try_from(silence.as_millis()).unwrap_or(u64::MAX)),
                last_error: None,
            });
        }
        for peer in &peers {
            self.log_peer_change(peer, now);
        }
        let highest_announced_height = self.highest_announced();
        self.node.set_network(NetworkView { peers, highest_announced_height });
    }

    /// Logs a validator connecting or going silent, at most every [`PEER_LOG_INTERVAL`] per
    /// validator (a change within it is logged when the interval ends, if it still holds).
    /// A validator never heard from is reported once this node has run [`NEVER_HEARD_WARN_AFTER`].
    fn log_peer_change(&mut self, peer: &PeerStatus, now: SystemTime) {
        let previous = self.peer_log.get(&peer.node_key);
        let changed = previous.map_or(peer.connected, |logged| logged.connected != peer.connected);
        let never_heard = previous.is_none()
            && !peer.connected
            && now.duration_since(self.started).unwrap_or_default() >= NEVER_HEARD_WARN_AFTER;
        let quiet = previous
            .is_none_or(|logged| now.duration_since(logged.at).unwrap_or_default() >= PEER_LOG_INTERVAL);
        if !(changed || never_heard) || !quiet {
            return;
        }
        let (organization, address) = (&peer.organization, &peer.address);
        if peer.connected {
            tracing::info!(%organization, %address, node_key = %peer.node_key, "validator connected");
        } else {
            tracing::warn!(
                %organization,
                %address,
                node_key = %peer.node_key,
                last_seen_ms_ago = ?peer.last_seen_ms_ago,
                "validator not connected (its reachability is in /v1/status peers[].last_error)"
            );
        }
        self.peer_log.insert(peer.node_key, PeerLogged { connected: peer.connected, at: now });
    }
}

/// Whether the block after which `chain` stands is in the epoch of the engine asking.
fn in_epoch(chain: &Chain, context: &ProposalContext) -> bool {
    chain.validator_schedule().epoch == context.round.epoch().get()
}

struct Senders<'a, S> {
    blocks: &'a mut S,
    transactions: &'a mut S,
    sync: &'a mut S,
}

/// Sends `message`; a peer that is offline or slow misses it, and the retries above cover that.
fn send<S: Sender<PublicKey = ConsensusKey>>(
    sender: &mut S,
    recipients: Recipients<ConsensusKey>,
    message: &Message,
) {
    let _delivered = sender.send(recipients, message.encode(), false);
}

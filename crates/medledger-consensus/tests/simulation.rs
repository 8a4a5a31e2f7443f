//! Deterministic simulation of a MedLedger validator network.
//!
//! Real nodes (real mempools, state machines and redb stores on temporary directories) run
//! the real engine on commonware's deterministic runtime over its simulated network, so a
//! seed fixes every message delay, loss, timer and random choice. Each seed picks 4 or 7
//! validators and one fault: lossy links, a partition that heals, a validator crashed and
//! restarted, or a Byzantine validator signing conflicting votes. After every run:
//! - agreement: no two honest nodes have different blocks at a height;
//! - every transaction acknowledged as final is in every honest chain exactly once;
//! - honest nodes at the same height have the same state root;
//! - after the fault heals, every honest node keeps finalizing.
//!
//! `MEDLEDGER_SIM_SEEDS=10000 cargo test --release -p medledger-consensus --test simulation
//! many_seeds` runs more seeds; `MEDLEDGER_SIM_SEED=<seed>` instead replays one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use commonware_consensus::simplex::mocks::conflicter::{Config as ConflicterConfig, Conflicter};
use commonware_consensus::simplex::scheme::ed25519::Scheme;
use commonware_cryptography::Sha256;
use commonware_p2p::simulated::{Config as NetworkConfig, Link, Network as SimulatedNetwork, Oracle};
use commonware_p2p::utils::mux::Muxer;
use commonware_runtime::{Clock, Quota, Runner as _, Supervisor as _, deterministic};
use commonware_utils::{NZU32, NZUsize, Probability};
use medledger_consensus::application::Channels;
use medledger_consensus::keys::{ConsensusKey, consensus_key, consensus_signer};
use medledger_consensus::wire::{MAX_MESSAGE_BYTES, channel};
use medledger_consensus::{Handles, NAMESPACE, Network, Timing, Validator};
use medledger_crypto::{Digest, SigningKey, sha256};
use medledger_node::{Node, NodeConfig, TxStatus};
use medledger_store::Store;
use medledger_types::{
    ChainId, Genesis, GenesisMember, GenesisOrganization, GovernanceAction, Label, NodeAddress, NodeIdentity,
    OrgId, OrgKind, OrgSpec, Outcome as TxOutcome, Parameters, Payload, Role, Transaction, TxBody, TxId,
};
use rand_core::Rng as _;

/// Seeds CI runs; `MEDLEDGER_SIM_SEEDS` overrides.
const CI_SEEDS: u64 = 200;

/// Transactions the client sends per run, one every [`SUBMIT_EVERY`].
const TXS_PER_RUN: u64 = 40;
const SUBMIT_EVERY: Duration = Duration::from_millis(250);

/// When the fault starts and heals, in simulated time.
const FAULT_AT: Duration = Duration::from_secs(3);
const HEAL_AT: Duration = Duration::from_secs(8);

/// How long after the load the network has to converge and show progress.
const CONVERGE_WITHIN: Duration = Duration::from_secs(60);

/// Blocks every honest node must finalize after the fault heals.
const PROGRESS_BLOCKS: u64 = 3;

/// The whole simulated run may take at most this long; past it the run fails.
const SIMULATED_LIMIT: Duration = Duration::from_secs(600);

/// The fault runs' heartbeat: a block a second while idle, so their progress checks see
/// blocks without load (the production default is a minute; `an_idle_network_…` tests it).
const FAULT_RUN_EMPTY_BLOCK_INTERVAL_MS: u64 = 1_000;

const QUOTA: Quota = Quota::per_second(NZU32!(100_000));

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    LossyLinks,
    Partition,
    CrashRestart,
    Byzantine,
}

#[derive(Debug, Clone, Copy)]
struct Scenario {
    seed: u64,
    validators: usize,
    fault: Fault,
}

impl Scenario {
    fn from_seed(seed: u64) -> Self {
        let validators = if seed.is_multiple_of(2) { 4 } else { 7 };
        let fault = match (seed / 2) % 4 {
            0 => Fault::LossyLinks,
            1 => Fault::Partition,
            2 => Fault::CrashRestart,
            _ => Fault::Byzantine,
        };
        Self { seed, validators, fault }
    }

    /// The validator that crashes or is Byzantine: always the last.
    fn faulty(&self) -> usize {
        self.validators - 1
    }

    fn is_honest(&self, index: usize) -> bool {
        !(self.fault == Fault::Byzantine && index == self.faulty())
    }
}

/// What a run leaves behind: every honest node's block hashes, for replay comparisons.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    chains: Vec<Vec<Digest>>,
    acknowledged: usize,
}

struct Identity {
    node: SigningKey,
    physician: SigningKey,
}

fn identities(count: usize) -> Vec<Identity> {
    (0..count)
        .map(|index| {
            let byte = u8::try_from(index).expect("few validators");
            Identity {
                node: SigningKey::from_seed(&[byte + 1; 32]),
                physician: SigningKey::from_seed(&[byte + 101; 32]),
            }
        })
        .collect()
}

fn chain_id() -> ChainId {
    ChainId::new("simulation").expect("chain id")
}

fn genesis(identities: &[Identity]) -> Genesis {
    let organizations = identities
        .iter()
        .enumerate()
        .map(|(index, identity)| {
            let administrator = SigningKey::from_seed(&[u8::try_from(index).expect("few") + 51; 32]);
            GenesisOrganization {
                id: OrgId::new(format!("hospital-{index}")).expect("org id"),
                kind: OrgKind::Hospital,
                node: Some(NodeIdentity {
                    public_key: identity.node.public_key(),
                    address: NodeAddress::new(format!("127.0.0.1:{}", 9_000 + index)).expect("address"),
                }),
                members: vec![
                    GenesisMember {
                        public_key: administrator.public_key(),
                        role: Role::Administrator,
                        patient_id: None,
                    },
                    GenesisMember {
                        public_key: identity.physician.public_key(),
                        role: Role::Physician,
                        patient_id: None,
                    },
                ],
            }
        })
        .collect();
    Genesis { chain_id: chain_id(), genesis_time_ms: 0, parameters: Parameters::default(), organizations }
}

fn anchor(key: &SigningKey, nonce: u64) -> Transaction {
    let label = format!("lab-report/{nonce}");
    TxBody {
        chain_id: chain_id(),
        signer: key.public_key(),
        nonce,
        payload: Payload::Anchor {
            label: Label::new(&label).expect("label"),
            digest: sha256(label.as_bytes()),
        },
    }
    .sign(key)
}

fn temp_dir() -> tempfile::TempDir {
    // tmpfs when there is one: the simulation commits thousands of blocks and fsync on a
    // real disk would dominate its run time without testing anything more.
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        tempfile::tempdir_in(shm).expect("temp dir")
    } else {
        tempfile::tempdir().expect("temp dir")
    }
}

type SimOracle = Oracle<ConsensusKey, deterministic::Context>;

/// A running honest node.
struct Running {
    node: Arc<Node>,
    handles: Handles,
}

struct Cluster {
    context: deterministic::Context,
    oracle: SimOracle,
    identities: Vec<Identity>,
    genesis: Genesis,
    dirs: Vec<tempfile::TempDir>,
    running: Vec<Option<Running>>,
    scenario: Scenario,
    /// The validators' idle heartbeat.
    empty_block_interval_ms: u64,
}

impl Cluster {
    /// One node per identity on a started simulated network, none launched yet.
    async fn new(
        context: &deterministic::Context,
        identities: Vec<Identity>,
        genesis: Genesis,
        scenario: Scenario,
    ) -> Self {
        let count = identities.len();
        let keys: Vec<ConsensusKey> =
            identities.iter().map(|identity| consensus_key(&identity.node.public_key())).collect();
        let (network, oracle) = SimulatedNetwork::new_with_peers(
            context.child("network"),
            NetworkConfig {
                max_size: u32::try_from(MAX_MESSAGE_BYTES).expect("fits"),
                max_peers_per_set: NZUsize!(count),
                disconnect_on_block: true,
                tracked_peer_sets: NZUsize!(1),
            },
            keys,
        )
        .await;
        network.start();
        Self {
            context: context.child("cluster"),
            oracle,
            genesis,
            dirs: (0..count).map(|_| temp_dir()).collect(),
            running: (0..count).map(|_| None).collect(),
            identities,
            scenario,
            empty_block_interval_ms: FAULT_RUN_EMPTY_BLOCK_INTERVAL_MS,
        }
    }

    fn keys(&self) -> Vec<ConsensusKey> {
        self.identities.iter().map(|identity| consensus_key(&identity.node.public_key())).collect()
    }

    async fn register(
        &self,
        index: usize,
    ) -> Vec<(
        impl commonware_p2p::Sender<PublicKey = ConsensusKey>,
        impl commonware_p2p::Receiver<PublicKey = ConsensusKey>,
    )> {
        let control = self.oracle.control(self.keys()[index].clone());
        let mut channels = Vec::new();
        for id in [
            channel::VOTES,
            channel::CERTIFICATES,
            channel::RESOLVER,
            channel::BLOCKS,
            channel::TRANSACTIONS,
            channel::SYNC,
        ] {
            channels.push(control.register(id, QUOTA).await.expect("register channel"));
        }
        channels
    }

    async fn launch(&mut self, index: usize) {
        let identity = &self.identities[index];
        let dir = self.dirs[index].path();
        let (store, chain) = if medledger_store::database_path(dir).exists() {
            Store::open(dir).expect("reopen store")
        } else {
            Store::create(dir, &self.genesis).expect("create store")
        };
        let config = NodeConfig {
            block_interval_ms: 100,
            empty_block_interval_ms: self.empty_block_interval_ms,
            ..NodeConfig::default()
        };
        let node = Arc::new(
            Node::new(store, chain, SigningKey::from_seed(&identity.node.seed()), config).expect("node"),
        );
        let mut channels = self.register(index).await.into_iter();
        let mut next = || channels.next().expect("six channels");
        let network = Network {
            votes: next(),
            certificates: next(),
            resolver: next(),
            application: Channels { blocks: next(), transactions: next(), sync: next() },
            blocker: self.oracle.control(self.keys()[index].clone()),
        };
        let timing = Timing::new(config.block_interval_ms, config.empty_block_interval_ms);
        let validator = Validator { partition: format!("simplex-{index}"), timing };
        let context = self.context.child("validator").with_attribute("index", index);
        let handles = medledger_consensus::start(&context, &node, &identity.node, validator, network);
        self.running[index] = Some(Running { node, handles });
    }

    async fn launch_byzantine(&mut self, index: usize) {
        let identity = &self.identities[index];
        let participants = commonware_utils::ordered::Set::from_iter_dedup(self.keys());
        let scheme =
            Scheme::signer(NAMESPACE, participants, consensus_signer(&identity.node)).expect("a validator");
        let mut channels = self.register(index).await.into_iter();
        let (sender, receiver) = channels.next().expect("votes");
        // Honest engines read epoch 0's votes on subchannel 0.
        let (muxer, mut mux) = Muxer::new(self.context.child("byzantine_mux"), sender, receiver);
        muxer.start();
        let votes = mux.register(0).await.expect("subchannel");
        let conflicter =
            Conflicter::<_, _, Sha256>::new(self.context.child("byzantine"), ConflicterConfig { scheme });
        conflicter.start(votes);
    }

    fn crash(&mut self, index: usize) {
        let running = self.running[index].take().expect("running");
        running.handles.application.abort();
        running.handles.orchestrator.abort();
        drop(running.node);
    }

    async fn link_all(&self, link: &Link) {
        let keys = self.keys();
        for (from, to) in pairs(keys.len()) {
            self.oracle.add_link(keys[from].clone(), keys[to].clone(), link.clone()).await.expect("link");
        }
    }

    /// Cuts the network in two halves, neither with a quorum.
    async fn partition(&self) {
        let keys = self.keys();
        let half = keys.len() / 2;
        for (from, to) in pairs(keys.len()) {
            if (from < half) != (to < half) {
                self.oracle.remove_link(keys[from].clone(), keys[to].clone()).await.expect("unlink");
            }
        }
    }

    async fn heal(&self, link: &Link) {
        let keys = self.keys();
        let half = keys.len() / 2;
        for (from, to) in pairs(keys.len()) {
            if (from < half) != (to < half) {
                self.oracle
                    .add_link(keys[from].clone(), keys[to].clone(), link.clone())
                    .await
                    .expect("relink");
            }
        }
    }

    fn honest_nodes(&self) -> Vec<Arc<Node>> {
        self.running.iter().flatten().map(|running| Arc::clone(&running.node)).collect()
    }

    fn min_height(&self) -> u64 {
        self.honest_nodes().iter().map(|node| node.status().height).min().unwrap_or(0)
    }
}

fn pairs(count: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..count).flat_map(move |from| (0..count).filter(move |to| *to != from).map(move |to| (from, to)))
}

fn link(fault: Fault) -> Link {
    Link {
        latency: Duration::from_millis(40),
        jitter: Duration::from_millis(20),
        success_rate: if fault == Fault::LossyLinks {
            Probability::from_f64(0.875).expect("exact")
        } else {
            Probability::from_f64(1.0).expect("exact")
        },
    }
}

/// Runs one scenario and checks every invariant; panics (naming the seed) on a violation.
fn run(scenario: Scenario) -> Outcome {
    let config = deterministic::Config::new()
        .with_seed(scenario.seed)
        .with_start_time(UNIX_EPOCH + Duration::from_secs(1))
        .with_timeout(Some(SIMULATED_LIMIT));
    deterministic::Runner::new(config).start(|context| async move { simulate(context, scenario).await })
}

async fn simulate(context: deterministic::Context, scenario: Scenario) -> Outcome {
    let identities = identities(scenario.validators);
    let genesis = genesis(&identities);
    let mut cluster = Cluster::new(&context, identities, genesis, scenario).await;
    let link = link(scenario.fault);
    cluster.link_all(&link).await;
    for index in 0..scenario.validators {
        if scenario.is_honest(index) {
            cluster.launch(index).await;
        } else {
            cluster.launch_byzantine(index).await;
        }
    }

    let submitted = Arc::new(Mutex::new(Vec::<TxId>::new()));
    let started = context.current();
    let mut nonces = vec![0u64; scenario.validators];
    let mut fault_started = false;
    let mut healed = false;
    let mut rng = context.child("client");
    for count in 0..TXS_PER_RUN {
        context.sleep(SUBMIT_EVERY).await;
        let elapsed = context.current().duration_since(started).unwrap_or_default();
        if !fault_started && elapsed >= FAULT_AT {
            fault_started = true;
            match scenario.fault {
                Fault::Partition => cluster.partition().await,
                Fault::CrashRestart => cluster.crash(scenario.faulty()),
                Fault::LossyLinks | Fault::Byzantine => {}
            }
        }
        if fault_started && !healed && elapsed >= HEAL_AT {
            healed = true;
            match scenario.fault {
                Fault::Partition => cluster.heal(&link).await,
                Fault::CrashRestart => cluster.launch(scenario.faulty()).await,
                Fault::LossyLinks | Fault::Byzantine => {}
            }
        }
        // Each honest validator's physician signs in turn, sending to a random live node.
        let signer = usize::try_from(count).expect("small") % scenario.validators;
        if !scenario.is_honest(signer) {
            continue;
        }
        let live: Vec<usize> =
            (0..scenario.validators).filter(|index| cluster.running[*index].is_some()).collect();
        let target = live[usize::try_from(rng.next_u64() % live.len() as u64).expect("small")];
        let tx = anchor(&cluster.identities[signer].physician, nonces[signer]);
        let node = &cluster.running[target].as_ref().expect("live").node;
        if let Ok(id) = node.submit(tx) {
            nonces[signer] += 1;
            submitted.lock().expect("lock").push(id);
        }
    }
    assert!(healed || !fault_started, "seed {}: the load ended before the fault healed", scenario.seed);

    // Liveness: every honest node finalizes PROGRESS_BLOCKS beyond the highest height seen
    // now, and every transaction a node accepted becomes final everywhere.
    let submitted = submitted.lock().expect("lock").clone();
    let target =
        cluster.honest_nodes().iter().map(|node| node.status().height).max().unwrap_or(0) + PROGRESS_BLOCKS;
    let deadline = context.current() + CONVERGE_WITHIN;
    while cluster.min_height() < target || !all_final(&cluster.honest_nodes(), &submitted) {
        assert!(
            context.current() < deadline,
            "seed {} ({scenario:?}): no progress after the fault healed: heights {:?}, target {target}",
            scenario.seed,
            cluster.honest_nodes().iter().map(|node| node.status().height).collect::<Vec<_>>()
        );
        context.sleep(Duration::from_millis(100)).await;
    }
    let outcome = check(&cluster, &submitted);
    for index in 0..scenario.validators {
        if cluster.running[index].is_some() {
            cluster.crash(index);
        }
    }
    outcome
}

fn all_final(nodes: &[Arc<Node>], txs: &[TxId]) -> bool {
    txs.iter().all(|id| nodes.iter().all(|node| matches!(node.tx_status(id), Ok(TxStatus::Committed { .. }))))
}

/// Checks agreement, exactly-once inclusion of acknowledged transactions, and state roots.
fn check(cluster: &Cluster, submitted: &[TxId]) -> Outcome {
    let seed = cluster.scenario.seed;
    let nodes = cluster.honest_nodes();
    let height = cluster.min_height();
    let mut chains = Vec::new();
    let mut counts: Vec<HashMap<TxId, usize>> = Vec::new();
    for node in &nodes {
        let store = node.store();
        let mut hashes = Vec::new();
        let mut seen = HashMap::new();
        for h in 1..=node.status().height {
            let block = store.block(h).expect("store").expect("block");
            if h <= height {
                hashes.push(block.hash());
            }
            for tx in &block.transactions {
                *seen.entry(tx.id()).or_insert(0) += 1;
            }
        }
        chains.push(hashes);
        counts.push(seen);
    }
    for (index, chain) in chains.iter().enumerate().skip(1) {
        if let Some(h) = (0..chain.len()).find(|h| chain[*h] != chains[0][*h]) {
            panic!("seed {seed}: agreement violated at height {}: node {index} differs from node 0", h + 1);
        }
    }
    for node in &nodes {
        let header = node.store().header(height).expect("header at the common height");
        let first = nodes[0].store().header(height).expect("header");
        assert_eq!(header.state_root, first.state_root, "seed {seed}: state roots differ at height {height}");
    }
    for id in submitted {
        for (index, seen) in counts.iter().enumerate() {
            let times = seen.get(id).copied().unwrap_or(0);
            assert_eq!(
                times, 1,
                "seed {seed}: final transaction {id} is {times} times in node {index}'s chain"
            );
        }
    }
    Outcome { chains, acknowledged: submitted.len() }
}

fn run_reporting(seed: u64) -> Outcome {
    let scenario = Scenario::from_seed(seed);
    let result = std::panic::catch_unwind(|| run(scenario));
    match result {
        Ok(outcome) => {
            println!(
                "seed {seed} ({scenario:?}): {} blocks agreed, {} transactions final",
                outcome.chains[0].len(),
                outcome.acknowledged
            );
            outcome
        }
        Err(panic) => {
            eprintln!(
                "simulation failed for seed {seed} ({scenario:?}); replay it with\n  \
                 MEDLEDGER_SIM_SEED={seed} cargo test -p medledger-consensus --test simulation many_seeds"
            );
            std::panic::resume_unwind(panic)
        }
    }
}

fn seed_count() -> u64 {
    std::env::var("MEDLEDGER_SIM_SEEDS").ok().and_then(|value| value.parse().ok()).unwrap_or(CI_SEEDS)
}

#[test]
fn every_fault_keeps_agreement_exactly_once_and_progress() {
    for seed in 0..8 {
        let outcome = run_reporting(seed);
        assert!(outcome.chains[0].len() as u64 >= PROGRESS_BLOCKS, "seed {seed}: too few blocks");
    }
}

/// `CI_SEEDS` seeds, or `MEDLEDGER_SIM_SEEDS`, or just the seed `MEDLEDGER_SIM_SEED`.
#[test]
fn many_seeds() {
    if let Some(seed) = std::env::var("MEDLEDGER_SIM_SEED").ok().and_then(|value| value.parse().ok()) {
        run_reporting(seed);
        return;
    }
    for seed in 8..8 + seed_count() {
        run_reporting(seed);
    }
}

#[test]
fn a_seed_replays_identically() {
    for seed in [2, 5] {
        assert_eq!(
            run(Scenario::from_seed(seed)),
            run(Scenario::from_seed(seed)),
            "seed {seed} diverged on replay"
        );
    }
}

// ---- validator-set changes -------------------------------------------------------------------

/// Blocks after a governance change before its validator set takes effect.
const CHANGE_DELAY_BLOCKS: u64 = 3;

/// The longest a governance transaction or an epoch change may take, in simulated time.
const GOVERNANCE_WITHIN: Duration = Duration::from_secs(60);

fn administrator(index: usize) -> SigningKey {
    SigningKey::from_seed(&[u8::try_from(index).expect("few") + 51; 32])
}

fn governance(key: &SigningKey, nonce: u64, payload: Payload) -> Transaction {
    TxBody { chain_id: chain_id(), signer: key.public_key(), nonce, payload }.sign(key)
}

/// Submits `tx` to `node` and waits until every running node has it applied.
async fn settle(
    context: &deterministic::Context,
    cluster: &Cluster,
    node: usize,
    tx: Transaction,
    seed: u64,
) -> TxId {
    let id = cluster.running[node].as_ref().expect("running").node.submit(tx).expect("accepted");
    let deadline = context.current() + GOVERNANCE_WITHIN;
    loop {
        let statuses: Vec<_> =
            cluster.honest_nodes().iter().map(|node| node.tx_status(&id).expect("status")).collect();
        if statuses.iter().all(|status| matches!(status, TxStatus::Committed { .. })) {
            for status in statuses {
                let TxStatus::Committed { receipt, .. } = status else { unreachable!() };
                assert_eq!(
                    receipt.outcome,
                    TxOutcome::Applied,
                    "seed {seed}: governance transaction refused"
                );
            }
            return id;
        }
        assert!(
            context.current() < deadline,
            "seed {seed}: transaction {id} not final on every node in time"
        );
        context.sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until every running node's chain is in `epoch` and has `blocks` blocks in it; returns
/// the epoch's first height.
async fn reach_epoch(
    context: &deterministic::Context,
    cluster: &Cluster,
    epoch: u64,
    blocks: u64,
    seed: u64,
) -> u64 {
    let deadline = context.current() + GOVERNANCE_WITHIN;
    loop {
        let schedules: Vec<_> = cluster
            .honest_nodes()
            .iter()
            .map(|node| node.with_chain(|chain| (chain.height(), chain.validator_schedule())))
            .collect();
        if schedules
            .iter()
            .all(|(height, schedule)| schedule.epoch == epoch && *height >= schedule.since_height + blocks)
        {
            return schedules[0].1.since_height;
        }
        assert!(
            context.current() < deadline,
            "seed {seed}: epoch {epoch} not reached: {:?}",
            schedules.iter().map(|(height, schedule)| (height, schedule.epoch)).collect::<Vec<_>>()
        );
        context.sleep(Duration::from_millis(100)).await;
    }
}

fn proposers(node: &Node, from_height: u64) -> Vec<medledger_crypto::PublicKey> {
    let store = node.store();
    (from_height..=node.status().height)
        .map(|height| store.header(height).expect("header").proposer)
        .collect()
}

/// Four founding validators and a fifth organisation's node that follows. Governance admits
/// the fifth organisation (its node becomes a validator at epoch 1 and proposes blocks; one
/// founder's node is down across that change and catches up over the boundary), then
/// suspends the first (its node leaves at epoch 2 and only follows); the chain keeps
/// finalizing throughout and every node agrees on it.
async fn change_validators(context: deterministic::Context, seed: u64) -> Outcome {
    let identities = identities(5);
    let mut genesis = genesis(&identities[..4]);
    genesis.parameters.validator_change_delay_blocks = CHANGE_DELAY_BLOCKS;
    let scenario = Scenario { seed, validators: 5, fault: Fault::LossyLinks };
    let mut cluster = Cluster::new(&context, identities, genesis, scenario).await;
    let link = Link { success_rate: Probability::from_f64(1.0).expect("exact"), ..link(Fault::LossyLinks) };
    cluster.link_all(&link).await;
    for index in 0..5 {
        cluster.launch(index).await;
    }
    let newcomer = cluster.identities[4].node.public_key();
    let leaver = cluster.identities[0].node.public_key();

    // Admit hospital-4 with its node: 3 of 4 organisations approve.
    let admission = GovernanceAction::AdmitOrganization {
        organization: Box::new(OrgSpec {
            id: OrgId::new("hospital-4").expect("org id"),
            kind: OrgKind::Hospital,
            node: Some(NodeIdentity {
                public_key: newcomer,
                address: NodeAddress::new("127.0.0.1:9004").expect("address"),
            }),
            administrators: vec![administrator(4).public_key()],
        }),
    };
    let mut nonces = [0u64; 5];
    let mut sign = |admin: usize, payload: Payload| {
        let tx = governance(&administrator(admin), nonces[admin], payload);
        nonces[admin] += 1;
        tx
    };
    let proposal = settle(&context, &cluster, 1, sign(0, Payload::Propose { action: admission }), seed).await;
    // hospital-3's node is down across the change: it must catch up over the epoch boundary.
    cluster.crash(3);
    for admin in [1, 2] {
        settle(&context, &cluster, 4, sign(admin, Payload::Vote { proposal, approve: true }), seed).await;
    }
    settle(&context, &cluster, 2, sign(0, Payload::ExecuteProposal { proposal }), seed).await;
    reach_epoch(&context, &cluster, 1, 3, seed).await;
    cluster.launch(3).await;
    let epoch_1 = reach_epoch(&context, &cluster, 1, 12, seed).await;
    let node_0 = Arc::clone(&cluster.running[0].as_ref().expect("running").node);
    assert!(
        proposers(&node_0, epoch_1).contains(&newcomer),
        "seed {seed}: the admitted organisation's node proposed no block in epoch 1"
    );

    // Suspend hospital-0: 4 of 5 approve, the newcomer's administrator among them.
    let suspension =
        GovernanceAction::SuspendOrganization { organization: OrgId::new("hospital-0").expect("id") };
    let proposal =
        settle(&context, &cluster, 3, sign(1, Payload::Propose { action: suspension }), seed).await;
    for admin in [2, 3, 4] {
        settle(&context, &cluster, 4, sign(admin, Payload::Vote { proposal, approve: true }), seed).await;
    }
    settle(&context, &cluster, 1, sign(1, Payload::ExecuteProposal { proposal }), seed).await;
    let epoch_2 = reach_epoch(&context, &cluster, 2, 12, seed).await;
    let proposed = proposers(&node_0, epoch_2);
    assert!(!proposed.contains(&leaver), "seed {seed}: a suspended organisation's node proposed in epoch 2");
    assert!(proposed.contains(&newcomer), "seed {seed}: the newcomer stopped proposing");
    let outcome = check(&cluster, &[]);
    for index in 0..5 {
        cluster.crash(index);
    }
    outcome
}

fn run_change(seed: u64) -> Outcome {
    let config = deterministic::Config::new()
        .with_seed(seed)
        .with_start_time(UNIX_EPOCH + Duration::from_secs(1))
        .with_timeout(Some(SIMULATED_LIMIT));
    deterministic::Runner::new(config).start(|context| async move { change_validators(context, seed).await })
}

#[test]
fn validator_set_changes_take_effect_at_their_epoch() {
    for seed in 0..3 {
        match std::panic::catch_unwind(|| run_change(seed)) {
            Ok(outcome) => {
                println!(
                    "seed {seed}: {} blocks agreed across two validator-set changes",
                    outcome.chains[0].len()
                );
            }
            Err(panic) => {
                eprintln!("validator-change simulation failed for seed {seed}");
                std::panic::resume_unwind(panic)
            }
        }
    }
}

// ---- idleness ---------------------------------------------------------------------------------

/// The heartbeat of the idle run.
const IDLE_HEARTBEAT_MS: u64 = 30_000;

/// How long the idle run stays idle, in simulated time.
const IDLE_FOR: Duration = Duration::from_secs(600);

/// Four validators with nothing to do make one empty block per heartbeat, no more (the views
/// in between time out and are skipped), and a transaction sent in the middle of that
/// idleness is final within a couple of seconds, as on a busy chain.
async fn stay_idle(context: deterministic::Context, seed: u64) {
    let identities = identities(4);
    let genesis = genesis(&identities);
    let scenario = Scenario { seed, validators: 4, fault: Fault::LossyLinks };
    let mut cluster = Cluster::new(&context, identities, genesis, scenario).await;
    cluster.empty_block_interval_ms = IDLE_HEARTBEAT_MS;
    let link = Link { success_rate: Probability::from_f64(1.0).expect("exact"), ..link(Fault::LossyLinks) };
    cluster.link_all(&link).await;
    for index in 0..4 {
        cluster.launch(index).await;
    }
    context.sleep(IDLE_FOR).await;
    let heights: Vec<u64> = cluster.honest_nodes().iter().map(|node| node.status().height).collect();
    let heartbeats = IDLE_FOR.as_millis() / u128::from(IDLE_HEARTBEAT_MS);
    let most = u64::try_from(heartbeats).expect("small") + 1;
    assert!(
        heights.iter().all(|height| (most / 2..=most).contains(height)),
        "seed {seed}: {} s idle with a {IDLE_HEARTBEAT_MS} ms heartbeat made heights {heights:?} (expected {}..={most})",
        IDLE_FOR.as_secs(),
        most / 2
    );

    let sent = context.current();
    let id = settle(&context, &cluster, 2, anchor(&cluster.identities[1].physician, 0), seed).await;
    let latency = context.current().duration_since(sent).unwrap_or_default();
    assert!(
        latency <= IDLE_FINALITY_WITHIN,
        "seed {seed}: transaction {id} sent to an idle network took {latency:?} to be final everywhere"
    );
    check(&cluster, &[id]);
    for index in 0..4 {
        cluster.crash(index);
    }
}

/// A transaction sent to an idle network is final within this (simulated) time: the leader
/// holding its proposal takes it at once, or the next leader does after one view timeout.
const IDLE_FINALITY_WITHIN: Duration = Duration::from_secs(5);

#[test]
fn an_idle_network_makes_one_block_per_heartbeat_and_takes_a_transaction_at_once() {
    for seed in 0..2 {
        let config = deterministic::Config::new()
            .with_seed(seed)
            .with_start_time(UNIX_EPOCH + Duration::from_secs(1))
            .with_timeout(Some(SIMULATED_LIMIT * 2));
        deterministic::Runner::new(config).start(|context| async move { stay_idle(context, seed).await });
    }
}

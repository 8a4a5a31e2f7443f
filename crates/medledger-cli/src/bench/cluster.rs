//! `medledger bench cluster`: validators on this machine running real consensus over loopback
//! p2p, under a steady offered load; reports finalized tx/s and submit-to-finality latency.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use medledger_consensus::exchange::Exchange;
use medledger_crypto::{SigningKey, sha256};
use medledger_node::{Node, NodeConfig, SubmitError};
use medledger_store::Store;
use medledger_types::{
    ChainId, Genesis, GenesisMember, GenesisOrganization, Label, NodeAddress, NodeIdentity, OrgId, OrgKind,
    Parameters, Payload, Role, Transaction, TxBody, TxId,
};

use super::{cpu_model, percentile_ms, seeded_key, verification_only_rate};
use crate::CliError;
use crate::run::Sequencer;

/// Longest the validators may take to connect to each other.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest the load may take to become final after the last submission.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Longest a whole run may offer load.
const MAX_SECONDS: u64 = 300;

#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Validators (each its own store, consensus engine and p2p endpoint).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=16))]
    nodes: u16,
    /// Offered load in transactions per second, spread over the validators.
    #[arg(long, default_value_t = 6_000)]
    rate: u64,
    /// How long the load is offered.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=MAX_SECONDS))]
    seconds: u64,
    /// Distinct signing members.
    #[arg(long, default_value_t = 2_000)]
    signers: usize,
    /// Transactions per submission batch (one batch signature verification each).
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// Longest wait before pending transactions go into a proposal.
    #[arg(long, default_value_t = 50)]
    block_interval_ms: u64,
    /// Most transactions per block.
    #[arg(long, default_value_t = 5_000)]
    block_txs: usize,
    /// Seed for keys and transactions.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

struct Validator {
    node: Arc<Node>,
    sequencer: Sequencer,
    _dir: tempfile::TempDir,
}

pub fn run(args: &ClusterArgs) -> Result<(), CliError> {
    if args.rate == 0 || args.batch == 0 || args.signers == 0 {
        return Err(CliError::Usage("--rate, --batch and --signers must be positive".into()));
    }
    let nodes = usize::from(args.nodes);
    let chain_id = ChainId::new("medledger-bench-cluster").expect("valid chain id");
    let node_keys: Vec<SigningKey> = (0..nodes).map(|index| seeded_key(args.seed, "node", index)).collect();
    let signers: Vec<SigningKey> =
        (0..args.signers).map(|index| seeded_key(args.seed, "signer", index)).collect();
    let genesis = cluster_genesis(&chain_id, args.seed, &node_keys, &signers)?;
    let config = NodeConfig {
        block_interval_ms: args.block_interval_ms,
        max_block_txs: args.block_txs,
        ..NodeConfig::default()
    };
    let validators = start_validators(&genesis, node_keys, config)?;
    wait_connected(&validators)?;

    let total =
        usize::try_from(args.rate * args.seconds).map_err(|_| CliError::Usage("too much load".into()))?;
    let streams = sign_streams(&chain_id, &signers, total, nodes, args.seed);
    eprintln!("signed {total} transactions (not part of the measurement)");
    let baseline = verification_only_rate(&streams, args.batch);

    let (submitted, finalized) = std::thread::scope(|scope| {
        let watcher = scope.spawn(|| watch_finality(&validators[0].node, total));
        let submitted = offer_load(&validators, streams, args);
        (submitted, watcher.join().expect("the watcher does not panic"))
    });
    report(&submitted, &finalized, args, baseline);
    for validator in validators {
        validator.sequencer.stop()?;
    }
    Ok(())
}

/// One hospital per validator; the signers are physicians spread over them.
fn cluster_genesis(
    chain_id: &ChainId,
    seed: u64,
    node_keys: &[SigningKey],
    signers: &[SigningKey],
) -> Result<Genesis, CliError> {
    let organizations =
        node_keys
            .iter()
            .enumerate()
            .map(|(index, node_key)| {
                let address = free_loopback_address()?;
                let mut members = vec![GenesisMember {
                    public_key: seeded_key(seed, "administrator", index).public_key(),
                    role: Role::Administrator,
                    patient_id: None,
                }];
                members.extend(signers.iter().skip(index).step_by(node_keys.len()).map(|key| {
                    GenesisMember { public_key: key.public_key(), role: Role::Physician, patient_id: None }
                }));
                Ok(GenesisOrganization {
                    id: OrgId::new(format!("bench-hospital-{index}")).expect("valid id"),
                    kind: OrgKind::Hospital,
                    node: Some(NodeIdentity {
                        public_key: node_key.public_key(),
                        address: NodeAddress::new(address.to_string()).expect("a socket address is valid"),
                    }),
                    members,
                })
            })
            .collect::<Result<Vec<_>, CliError>>()?;
    Ok(Genesis {
        chain_id: chain_id.clone(),
        genesis_time_ms: 0,
        parameters: Parameters::default(),
        organizations,
    })
}

fn free_loopback_address() -> Result<SocketAddr, CliError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(CliError::io("a free loopback port"))?;
    listener.local_addr().map_err(CliError::io("a free loopback port"))
}

fn start_validators(
    genesis: &Genesis,
    node_keys: Vec<SigningKey>,
    config: NodeConfig,
) -> Result<Vec<Validator>, CliError> {
    node_keys
        .into_iter()
        .map(|key| {
            let dir = tempfile::Builder::new()
                .prefix("medledger-bench-cluster-")
                .tempdir()
                .map_err(CliError::io("temporary directory"))?;
            let (store, chain) = Store::create(dir.path(), genesis)?;
            let node = Arc::new(Node::new(store, chain, SigningKey::from_seed(&key.seed()), config)?);
            let sequencer = Sequencer::start(&node, &key, dir.path(), None, &Exchange::new())?;
            Ok(Validator { node, sequencer, _dir: dir })
        })
        .collect()
}

/// Waits until the validators are connected and finalizing (two empty blocks), so the
/// measurement sees the network's steady state rather than its start.
fn wait_connected(validators: &[Validator]) -> Result<(), CliError> {
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    let ready = |validator: &Validator| {
        let status = validator.node.status();
        status.height >= 2 && status.peers.iter().all(|peer| peer.connected)
    };
    while !validators.iter().all(ready) {
        if Instant::now() > deadline {
            return Err(CliError::Remote("the validators did not connect to each other".into()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Pre-signed anchors, one stream per validator; each signer always goes to the same one.
fn sign_streams(
    chain_id: &ChainId,
    signers: &[SigningKey],
    total: usize,
    nodes: usize,
    seed: u64,
) -> Vec<Vec<Transaction>> {
    let mut streams: Vec<Vec<Transaction>> =
        (0..nodes).map(|_| Vec::with_capacity(total / nodes + 1)).collect();
    for index in 0..total {
        let signer = index % signers.len();
        let key = &signers[signer];
        let nonce = (index / signers.len()) as u64;
        let label = Label::new(format!("bench/{seed}/{index}")).expect("valid label");
        let payload = Payload::Anchor { label, digest: sha256(&index.to_be_bytes()) };
        let tx = TxBody { chain_id: chain_id.clone(), signer: key.public_key(), nonce, payload }.sign(key);
        streams[signer % nodes].push(tx);
    }
    streams
}

/// Submits batches at the offered rate, rotating over the validators; returns each
/// transaction's submission time.
fn offer_load(
    validators: &[Validator],
    streams: Vec<Vec<Transaction>>,
    args: &ClusterArgs,
) -> HashMap<TxId, Instant> {
    let mut submitted = HashMap::new();
    let mut streams: Vec<std::vec::IntoIter<Transaction>> = streams.into_iter().map(Vec::into_iter).collect();
    let started = Instant::now();
    let batch_interval = Duration::from_secs_f64(args.batch as f64 / args.rate as f64);
    let mut batch_index = 0u32;
    loop {
        let target = validators.len();
        let mut any = false;
        for (stream, validator) in streams.iter_mut().zip(validators).take(target) {
            let chunk: Vec<Transaction> = stream.by_ref().take(args.batch).collect();
            if chunk.is_empty() {
                continue;
            }
            any = true;
            if let Some(wait) =
                (started + batch_interval * batch_index).checked_duration_since(Instant::now())
            {
                std::thread::sleep(wait);
            }
            batch_index += 1;
            submit(&validator.node, chunk, &mut submitted);
        }
        if !any {
            return submitted;
        }
    }
}

fn submit(node: &Node, mut chunk: Vec<Transaction>, submitted: &mut HashMap<TxId, Instant>) {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while !chunk.is_empty() && Instant::now() < deadline {
        let now = Instant::now();
        let results = node.submit_batch(chunk.clone());
        let mut retry = Vec::new();
        for (tx, result) in chunk.into_iter().zip(results) {
            match result {
                Ok(id) => {
                    submitted.insert(id, now);
                }
                Err(SubmitError::MempoolFull { .. }) => retry.push(tx),
                Err(error) => tracing::warn!(%error, "benchmark transaction refused"),
            }
        }
        chunk = retry;
        if !chunk.is_empty() {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Records when each transaction becomes final on the first validator.
fn watch_finality(node: &Node, expected: usize) -> HashMap<TxId, Instant> {
    let mut finalized = HashMap::with_capacity(expected);
    let mut seen_height = node.with_chain(medledger_state::Chain::height);
    let mut last_progress = Instant::now();
    while finalized.len() < expected && last_progress.elapsed() < DRAIN_TIMEOUT {
        let height = node.with_chain(medledger_state::Chain::height);
        let now = Instant::now();
        for committed in seen_height + 1..=height {
            if let Ok(Some(block)) = node.store().block(committed) {
                finalized.extend(block.transactions.iter().map(|tx| (tx.id(), now)));
                last_progress = now;
            }
        }
        seen_height = height;
        std::thread::sleep(Duration::from_millis(1));
    }
    finalized
}

fn report(
    submitted: &HashMap<TxId, Instant>,
    finalized: &HashMap<TxId, Instant>,
    args: &ClusterArgs,
    baseline: f64,
) {
    let mut latencies: Vec<Duration> = submitted
        .iter()
        .filter_map(|(id, at)| finalized.get(id).map(|final_at| final_at.saturating_duration_since(*at)))
        .collect();
    latencies.sort_unstable();
    let first = submitted.values().min().copied();
    let last = finalized.values().max().copied();
    let span = match (first, last) {
        (Some(first), Some(last)) => last.saturating_duration_since(first),
        _ => Duration::ZERO,
    };
    let rate = latencies.len() as f64 / span.as_secs_f64().max(f64::EPSILON);
    let percentile = |per_mille| percentile_ms(&latencies, per_mille);
    println!(
        "cluster: {} validators, offered {} tx/s for {} s: {} of {} submitted transactions final in {:.2} s = {rate:.0} tx/s",
        args.nodes,
        args.rate,
        args.seconds,
        latencies.len(),
        submitted.len(),
        span.as_secs_f64()
    );
    println!(
        "submit-to-finality latency: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        percentile(500),
        percentile(990),
        percentile(1_000)
    );
    println!("baseline: batch signature verification alone on this machine: {baseline:.0} tx/s");
    println!(
        "machine: {} cores, {}",
        std::thread::available_parallelism().map_or(1, usize::from),
        cpu_model()
    );
}

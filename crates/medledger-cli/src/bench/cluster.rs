//! `medledger bench cluster`: validators on this machine running real consensus over loopback
//! p2p, under a steady offered load; reports finalized tx/s and submit-to-finality latency.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use medledger_consensus::exchange::Exchange;
use medledger_crypto::SigningKey;
use medledger_node::{Node, NodeConfig, SubmitError};
use medledger_store::{Store, StoreOptions};
use medledger_types::{
    ChainId, Genesis, GenesisMember, GenesisOrganization, NodeAddress, NodeIdentity, OrgId, OrgKind,
    Parameters, Role, Transaction, TxId,
};
use serde::{Deserialize, Serialize};

use super::load::AnchorLoad;
use super::{Machine, percentile_ms, progress_bar, seeded_key, write_report};
use crate::CliError;
use crate::run::Sequencer;

/// Longest the validators may take to connect to each other and finalize their first blocks:
/// seconds on a quiet machine, generous because a loaded 2-core one is many times slower.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

/// Longest the load may take to become final after the last submission.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

/// The idle heartbeat during the bench: the warm-up sees the network finalize within a second.
const WARM_UP_EMPTY_BLOCK_INTERVAL_MS: u64 = 200;

/// Longest a whole run may offer load.
const MAX_SECONDS: u64 = 300;

#[derive(Clone, Debug, Args)]
pub struct ClusterArgs {
    /// Validators (each its own store, consensus engine and p2p endpoint).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub nodes: u16,
    /// Offered load in transactions per second, spread over the validators.
    #[arg(long, default_value_t = 6_000)]
    pub rate: u64,
    /// How long the load is offered.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=MAX_SECONDS))]
    pub seconds: u64,
    /// Distinct signing members.
    #[arg(long, default_value_t = 2_000)]
    pub signers: usize,
    /// Transactions per submission batch (one batch signature verification each).
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// Longest wait before pending transactions go into a proposal.
    #[arg(long, default_value_t = 50)]
    pub block_interval_ms: u64,
    /// Most transactions per block.
    #[arg(long, default_value_t = 5_000)]
    pub block_txs: usize,
    /// Seed for keys and transactions.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Each validator's store page cache, in MiB (node.toml's `store_cache_mib`).
    #[arg(long, default_value_t = medledger_store::DEFAULT_CACHE_BYTES >> 20)]
    pub store_cache_mib: usize,
}

impl ClusterArgs {
    /// These arguments as `medledger bench` flags.
    pub(crate) fn command_line(&self) -> Vec<String> {
        super::flags([
            ("--nodes", self.nodes.to_string()),
            ("--rate", self.rate.to_string()),
            ("--seconds", self.seconds.to_string()),
            ("--signers", self.signers.to_string()),
            ("--batch", self.batch.to_string()),
            ("--block-interval-ms", self.block_interval_ms.to_string()),
            ("--block-txs", self.block_txs.to_string()),
            ("--seed", self.seed.to_string()),
            ("--store-cache-mib", self.store_cache_mib.to_string()),
        ])
    }
}

struct Validator {
    node: Arc<Node>,
    sequencer: Sequencer,
    dir: tempfile::TempDir,
}

/// What one cluster run measured.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) struct ClusterResult {
    /// Transactions the validators accepted.
    pub submitted: usize,
    /// Of those, how many became final on the first validator.
    pub finalized: usize,
    /// Finalized transactions per second, from the first submission to the last finalization.
    pub finalized_tx_per_s: f64,
    /// Submit-to-finality latency percentiles, in milliseconds.
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    pub latency_max_ms: f64,
    /// Peak resident memory of the process, all validators together.
    pub peak_rss_bytes: u64,
}

pub fn run(args: &ClusterArgs) -> Result<ClusterResult, CliError> {
    if args.rate == 0 || args.batch == 0 || args.signers == 0 {
        return Err(CliError::Usage("--rate, --batch and --signers must be positive".into()));
    }
    let nodes = usize::from(args.nodes);
    let load = AnchorLoad::new("medledger-bench-cluster", args.seed, args.signers);
    let node_keys: Vec<SigningKey> = (0..nodes).map(|index| seeded_key(args.seed, "node", index)).collect();
    let genesis = cluster_genesis(load.chain_id(), args.seed, &node_keys, load.signers())?;
    let config = NodeConfig {
        block_interval_ms: args.block_interval_ms,
        max_block_txs: args.block_txs,
        // The warm-up waits for empty blocks: a fast heartbeat, not the idle chain's minute.
        empty_block_interval_ms: WARM_UP_EMPTY_BLOCK_INTERVAL_MS.max(args.block_interval_ms),
        ..NodeConfig::default()
    };
    let store = StoreOptions { cache_bytes: args.store_cache_mib << 20 };
    let validators = start_validators(&genesis, node_keys, config, store)?;
    wait_connected(&validators)?;

    let total = args.rate * args.seconds;
    let (submitted, finalized) = std::thread::scope(|scope| {
        let watcher = scope.spawn(|| watch_finality(&validators[0].node, total));
        let submitted = offer_load(&validators, &load, total, args);
        (submitted, watcher.join().expect("the watcher does not panic"))
    });
    let result = summarise(&submitted, &finalized);
    let machine = Machine::measure(validators[0].dir.path())?;
    for validator in validators {
        validator.sequencer.stop()?;
    }
    print(&result, args);
    machine.print();
    let parameters = serde_json::json!({
        "nodes": args.nodes, "rate": args.rate, "seconds": args.seconds, "signers": args.signers,
        "batch": args.batch, "block_interval_ms": args.block_interval_ms, "block_txs": args.block_txs,
        "store_cache_mib": args.store_cache_mib,
    });
    write_report("cluster", args.seed, &parameters, &machine, &result)?;
    Ok(result)
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
    store: StoreOptions,
) -> Result<Vec<Validator>, CliError> {
    node_keys
        .into_iter()
        .map(|key| {
            let dir = tempfile::Builder::new()
                .prefix("medledger-bench-cluster-")
                .tempdir()
                .map_err(CliError::io("temporary directory"))?;
            let (store, chain) = Store::create_with(dir.path(), genesis, store)?;
            let node = Arc::new(Node::new(store, chain, SigningKey::from_seed(&key.seed()), config)?);
            let sequencer = Sequencer::start(&node, &key, dir.path(), None, &Exchange::new())?;
            Ok(Validator { node, sequencer, dir })
        })
        .collect()
}

/// Waits until the validators are connected and finalizing (two empty blocks), so the
/// measurement sees the network's steady state rather than its start.
fn wait_connected(validators: &[Validator]) -> Result<(), CliError> {
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    let ready = |validator: &Validator| {
        // A sole validator has no one to connect to and makes blocks only when there are
        // transactions: it is ready at once.
        if validator.node.is_sole_validator() {
            return true;
        }
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

/// Offers `total` anchors at the offered rate in batches, signed just before they are sent,
/// rotating over the validators (each signer always to the same one); returns each
/// transaction's submission time.
fn offer_load(
    validators: &[Validator],
    load: &AnchorLoad,
    total: u64,
    args: &ClusterArgs,
) -> HashMap<TxId, Instant> {
    let nodes = validators.len();
    let mut streams: Vec<_> = (0..nodes)
        .map(|validator| (0..total).filter(move |&index| load.signer_of(index) % nodes == validator))
        .collect();
    let mut submitted = HashMap::new();
    let progress = progress_bar("offering", total);
    let started = Instant::now();
    let batch_interval = Duration::from_secs_f64(args.batch as f64 / args.rate as f64);
    let mut batch_index = 0u32;
    loop {
        let mut any = false;
        for (stream, validator) in streams.iter_mut().zip(validators) {
            let chunk: Vec<Transaction> =
                stream.by_ref().take(args.batch).map(|index| load.anchor(index)).collect();
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
            progress.set_position(submitted.len() as u64);
        }
        if !any {
            progress.finish_and_clear();
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
fn watch_finality(node: &Node, expected: u64) -> HashMap<TxId, Instant> {
    let mut finalized = HashMap::with_capacity(usize::try_from(expected).unwrap_or(0));
    let mut seen_height = node.with_chain(medledger_state::Chain::height);
    let mut last_progress = Instant::now();
    while (finalized.len() as u64) < expected && last_progress.elapsed() < DRAIN_TIMEOUT {
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

fn summarise(submitted: &HashMap<TxId, Instant>, finalized: &HashMap<TxId, Instant>) -> ClusterResult {
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
    ClusterResult {
        submitted: submitted.len(),
        finalized: latencies.len(),
        finalized_tx_per_s: latencies.len() as f64 / span.as_secs_f64().max(f64::EPSILON),
        latency_p50_ms: percentile_ms(&latencies, 500),
        latency_p99_ms: percentile_ms(&latencies, 990),
        latency_max_ms: percentile_ms(&latencies, 1_000),
        peak_rss_bytes: super::scale::peak_resident_bytes(),
    }
}

fn print(result: &ClusterResult, args: &ClusterArgs) {
    println!(
        "cluster: {} validators, offered {} tx/s for {} s: {} of {} submitted transactions final = {:.0} tx/s",
        args.nodes, args.rate, args.seconds, result.finalized, result.submitted, result.finalized_tx_per_s
    );
    println!(
        "submit-to-finality latency: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; peak RSS {:.0} MiB for all {} validators",
        result.latency_p50_ms,
        result.latency_p99_ms,
        result.latency_max_ms,
        result.peak_rss_bytes as f64 / f64::from(1 << 20),
        args.nodes
    );
}

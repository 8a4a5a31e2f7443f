//! `medledger bench`: end-to-end performance measurements on this machine.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use medledger_crypto::{SigningKey, sha256};
use medledger_node::{Node, NodeConfig, SubmitError};
use medledger_store::Store;
use medledger_types::{ChainId, Genesis, Label, Payload, Transaction, TxBody};

use crate::run::Producer;
use crate::{Cli, CliError};

mod cluster;
mod fhir;
mod scale;

/// Longest an ingest run may take before it gives up: every benchmark stops by itself.
const MAX_INGEST_DURATION: Duration = Duration::from_secs(600);

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Signed transactions through admission (signature verification), block building
    /// (execution and state root), and durable commit on one node, end to end.
    Ingest(IngestArgs),
    /// A network of validators on this machine (real consensus over loopback p2p) under a
    /// steady offered load: finalized tx/s and submit-to-finality latency.
    Cluster(cluster::ClusterArgs),
    /// Creates and reads of a 2 KiB Observation through a running node's FHIR API.
    Fhir(fhir::FhirArgs),
    /// A long ingest (10 M transactions by default) that reports rate, memory, store size per
    /// transaction and start-up time at every million.
    Scale(scale::ScaleArgs),
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Transactions to ingest.
    #[arg(long, default_value_t = 200_000)]
    txs: usize,
    /// Distinct signing members.
    #[arg(long, default_value_t = 1_000)]
    signers: usize,
    /// Transactions per block.
    #[arg(long, default_value_t = 2_000)]
    block_txs: usize,
    /// Longest wait before a partial block is built.
    #[arg(long, default_value_t = 20)]
    block_interval_ms: u64,
    /// Threads submitting transactions (and signing them beforehand).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Transactions per batch submission (one batch signature verification each).
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Seed for keys and transactions.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

pub fn run(cli: &Cli, command: &BenchCommand) -> Result<(), CliError> {
    match command {
        BenchCommand::Ingest(args) => ingest(cli, args),
        BenchCommand::Cluster(args) => cluster::run(args),
        BenchCommand::Fhir(args) => fhir::run(cli, args),
        BenchCommand::Scale(args) => scale::run(cli, args),
    }
}

/// Where reports go: `target/bench/NAME.json` under the current directory.
const REPORT_DIRECTORY: &str = "target/bench";

/// Writes a benchmark's results as JSON beside the printed table, and says where.
pub(crate) fn write_report(name: &str, report: &serde_json::Value) -> Result<(), CliError> {
    let directory = std::path::Path::new(REPORT_DIRECTORY);
    std::fs::create_dir_all(directory).map_err(CliError::io(directory))?;
    let path = directory.join(format!("{name}.json"));
    let text = serde_json::to_string_pretty(report).expect("reports serialise");
    std::fs::write(&path, text + "\n").map_err(CliError::io(&path))?;
    println!("report: {}", path.display());
    Ok(())
}

/// The nearest-rank percentile (`per_mille` thousandths) of sorted latencies, in milliseconds.
pub(crate) fn percentile_ms(sorted: &[Duration], per_mille: usize) -> f64 {
    sorted
        .get((sorted.len() * per_mille).div_ceil(1_000).saturating_sub(1))
        .map_or(f64::NAN, |latency| latency.as_secs_f64() * 1_000.0)
}

pub(crate) fn seeded_key(seed: u64, purpose: &str, index: usize) -> SigningKey {
    SigningKey::from_seed(&sha256(format!("medledger-bench/{seed}/{purpose}/{index}").as_bytes()).0)
}

fn ingest(cli: &Cli, args: &IngestArgs) -> Result<(), CliError> {
    if args.signers == 0 || args.threads == 0 || args.batch == 0 || args.txs == 0 {
        return Err(CliError::Usage("--txs, --signers, --threads and --batch must be positive".into()));
    }
    let temporary = tempfile::Builder::new()
        .prefix("medledger-bench-")
        .tempdir()
        .map_err(CliError::io("temporary directory"))?;
    let data_dir: PathBuf = cli.data_dir.clone().unwrap_or_else(|| temporary.path().to_owned());
    let chain_id = ChainId::new("medledger-bench").expect("valid chain id");
    let node_key = seeded_key(args.seed, "node", 0);
    let signers: Vec<SigningKey> =
        (0..args.signers).map(|index| seeded_key(args.seed, "signer", index)).collect();
    // One hospital whose physicians anchor documents: the busiest kind of writer.
    let genesis = Genesis::single_hospital(
        chain_id.clone(),
        0,
        node_key.public_key(),
        seeded_key(args.seed, "administrator", 0).public_key(),
        signers.iter().map(SigningKey::public_key),
    );
    let (store, chain) = Store::create(&data_dir, &genesis)?;
    let config = NodeConfig {
        block_interval_ms: args.block_interval_ms,
        max_block_txs: args.block_txs,
        ..NodeConfig::default()
    };
    let node = Arc::new(Node::new(store, chain, node_key, config)?);

    let signing_started = Instant::now();
    let per_thread = sign_transactions(args, &chain_id, &signers);
    let signing = signing_started.elapsed();
    eprintln!(
        "signed {} transactions in {:.2} s (not part of the measurement)",
        args.txs,
        signing.as_secs_f64()
    );

    let baseline = verification_only_rate(&per_thread, args.batch);

    let started = Instant::now();
    let producer = Producer::start(&node);
    let committed = std::thread::scope(|scope| {
        for txs in per_thread {
            let node = Arc::clone(&node);
            scope.spawn(move || submit_all(&node, &txs, args.batch, started));
        }
        watch_commits(&node, args.txs, started)
    });
    let elapsed = started.elapsed();
    producer.stop()?;
    let (blocks, transactions) = committed?;
    let rate = transactions as f64 / elapsed.as_secs_f64();
    println!(
        "ingest: {transactions} transactions in {blocks} blocks in {:.2} s = {rate:.0} tx/s (verify + apply + durable commit)",
        elapsed.as_secs_f64()
    );
    println!(
        "baseline: batch signature verification alone, same threads and batches: {baseline:.0} tx/s (ingest reaches {:.0}% of it)",
        100.0 * rate / baseline
    );
    println!(
        "machine: {} cores, {}",
        std::thread::available_parallelism().map_or(1, usize::from),
        cpu_model()
    );
    Ok(())
}

/// The ceiling for ingest: the same transactions through batch signature verification only,
/// with the same threads and batch size, nothing stored.
pub(crate) fn verification_only_rate(per_thread: &[Vec<Transaction>], batch: usize) -> f64 {
    let started = Instant::now();
    let verified: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = per_thread
            .iter()
            .map(|txs| {
                scope.spawn(move || {
                    txs.chunks(batch)
                        .map(|chunk| {
                            medledger_state::VerifiedTx::verify_batch(chunk.to_vec()).map_or(0, |ok| ok.len())
                        })
                        .sum::<usize>()
                })
            })
            .collect();
        handles.into_iter().map(|handle| handle.join().expect("verification threads do not panic")).sum()
    });
    verified as f64 / started.elapsed().as_secs_f64()
}

/// Anchor transactions, pre-signed and split so each thread submits whole signers in nonce order.
fn sign_transactions(args: &IngestArgs, chain_id: &ChainId, signers: &[SigningKey]) -> Vec<Vec<Transaction>> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..args.threads)
            .map(|thread| {
                scope.spawn(move || {
                    (0..args.txs)
                        .filter(|index| (index % signers.len()) % args.threads == thread)
                        .map(|index| {
                            let key = &signers[index % signers.len()];
                            let nonce = (index / signers.len()) as u64;
                            let label =
                                Label::new(format!("bench/{}/{index}", args.seed)).expect("valid label");
                            let payload = Payload::Anchor { label, digest: sha256(&index.to_be_bytes()) };
                            TxBody { chain_id: chain_id.clone(), signer: key.public_key(), nonce, payload }
                                .sign(key)
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|handle| handle.join().expect("signing threads do not panic")).collect()
    })
}

/// Submits in batches, retrying (bounded in time) while the mempool is full.
fn submit_all(node: &Node, txs: &[Transaction], batch: usize, started: Instant) {
    let deadline = started + MAX_INGEST_DURATION;
    for chunk in txs.chunks(batch) {
        submit_retrying(node, chunk.to_vec(), deadline);
    }
}

/// Submits a batch, resubmitting (bounded by `deadline`) what a full mempool turned away.
pub(crate) fn submit_retrying(node: &Node, mut batch: Vec<Transaction>, deadline: Instant) {
    while !batch.is_empty() && Instant::now() < deadline {
        let results = node.submit_batch(batch.clone());
        let mut retry = Vec::new();
        for (tx, result) in batch.into_iter().zip(results) {
            match result {
                Ok(_) => {}
                Err(SubmitError::MempoolFull { .. }) => retry.push(tx),
                Err(error) => panic!("benchmark transaction refused: {error}"),
            }
        }
        if !retry.is_empty() {
            std::thread::sleep(Duration::from_millis(2));
        }
        batch = retry;
    }
}

/// Prints each committed block and returns (blocks, transactions) once `expected` are in.
fn watch_commits(node: &Node, expected: usize, started: Instant) -> Result<(u64, usize), CliError> {
    let mut seen_height = 0;
    let mut transactions = 0usize;
    let mut stdout = std::io::stdout().lock();
    while transactions < expected {
        if started.elapsed() > MAX_INGEST_DURATION {
            return Err(CliError::Remote(format!("ingest did not finish within {MAX_INGEST_DURATION:?}")));
        }
        let height = node.with_chain(medledger_state::Chain::height);
        for committed in seen_height + 1..=height {
            transactions += node.store().header(committed)?.tx_count as usize;
            // Flushed per block: crash tests read these lines as the acknowledged heights.
            writeln!(stdout, "committed height {committed} ({transactions} transactions)")
                .and_then(|()| stdout.flush())
                .ok();
        }
        seen_height = height;
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok((seen_height, transactions))
}

pub(crate) fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split(':').nth(1))
                .map(|model| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

//! `medledger bench scale`: one long ingest, reporting at every checkpoint how the node's rate,
//! memory, store size and start-up time change as the chain grows.
//!
//! The load is signed as it is sent (one thread signs and submits batches), so memory measures
//! the node, not a pre-signed queue. At each checkpoint the node is stopped and its store
//! reopened, and the reopen is timed: that is the start-up a restarted node would pay.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use medledger_crypto::{SigningKey, sha256};
use medledger_node::{Node, NodeConfig};
use medledger_store::Store;
use medledger_types::{ChainId, Genesis, Label, Payload, Transaction, TxBody};
use serde_json::json;

use super::{cpu_model, seeded_key, submit_retrying, write_report};
use crate::run::Producer;
use crate::{Cli, CliError};

/// Transactions per batch submission (one batch signature verification each).
const SUBMIT_BATCH: u64 = 256;

#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// Transactions to ingest in all.
    #[arg(long, default_value_t = 10_000_000)]
    txs: u64,
    /// Report (and reopen the store) every this many transactions.
    #[arg(long, default_value_t = 1_000_000)]
    checkpoint: u64,
    /// Distinct signing members.
    #[arg(long, default_value_t = 1_000)]
    signers: u64,
    /// Transactions per block.
    #[arg(long, default_value_t = 2_000)]
    block_txs: usize,
    /// Seed for keys and transactions.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Stop after this many minutes whatever the count: every benchmark stops by itself.
    #[arg(long, default_value_t = 180)]
    max_minutes: u64,
}

/// State proofs timed at each checkpoint: half for anchors that exist, half for absent ones.
const PROOFS_PER_CHECKPOINT: u64 = 2_000;

/// One checkpoint's measurements.
struct Checkpoint {
    transactions: u64,
    rate: f64,
    rss_bytes: u64,
    store_bytes: u64,
    startup: Duration,
    proofs: ProofTimes,
}

/// Median and 99th-percentile times to generate and to verify a state proof.
#[derive(Clone, Copy)]
struct ProofTimes {
    generate_median: Duration,
    generate_p99: Duration,
    verify_median: Duration,
    verify_p99: Duration,
}

pub fn run(cli: &Cli, args: &ScaleArgs) -> Result<(), CliError> {
    if args.txs == 0 || args.checkpoint == 0 || args.signers == 0 || args.block_txs == 0 {
        return Err(CliError::Usage(
            "--txs, --checkpoint, --signers and --block-txs must be positive".into(),
        ));
    }
    let temporary = tempfile::Builder::new()
        .prefix("medledger-scale-")
        .tempdir()
        .map_err(CliError::io("temporary directory"))?;
    let data_dir = cli.data_dir.clone().unwrap_or_else(|| temporary.path().to_owned());
    let chain_id = ChainId::new("medledger-bench").expect("valid chain id");
    let signers: Vec<SigningKey> = (0..args.signers)
        .map(|index| {
            seeded_key(args.seed, "signer", usize::try_from(index).expect("a signer count fits in memory"))
        })
        .collect();
    let genesis = Genesis::single_hospital(
        chain_id.clone(),
        0,
        seeded_key(args.seed, "node", 0).public_key(),
        seeded_key(args.seed, "administrator", 0).public_key(),
        signers.iter().map(SigningKey::public_key),
    );
    let config = NodeConfig { max_block_txs: args.block_txs, block_interval_ms: 20, ..NodeConfig::default() };
    let (store, chain) = Store::create(&data_dir, &genesis)?;
    let mut node = Arc::new(Node::new(store, chain, seeded_key(args.seed, "node", 0), config)?);
    let deadline = Instant::now() + Duration::from_secs(args.max_minutes * 60);
    println!(
        "{:>12} {:>10} {:>10} {:>12} {:>10}",
        "transactions", "tx/s", "RSS MiB", "store B/tx", "start-up"
    );
    let mut checkpoints = Vec::new();
    let mut counter = CommitCounter::default();
    let mut sent = 0;
    while sent < args.txs && Instant::now() < deadline {
        let segment = args.checkpoint.min(args.txs - sent);
        let load = Load { chain_id: &chain_id, signers: &signers, seed: args.seed };
        let rate = ingest_segment(&node, &mut counter, &load, sent..sent + segment, deadline)?;
        sent += segment;
        let store_bytes = std::fs::metadata(medledger_store::database_path(&data_dir))
            .map_err(CliError::io(&data_dir))?
            .len();
        let rss_bytes = resident_bytes();
        let (reopened, startup) = reopen(node, &data_dir, config, args.seed)?;
        node = reopened;
        let proofs = time_proofs(&node, args.seed, sent)?;
        let checkpoint = Checkpoint { transactions: sent, rate, rss_bytes, store_bytes, startup, proofs };
        let micros = |duration: Duration| duration.as_secs_f64() * 1e6;
        println!(
            "{:>12} {:>10.0} {:>10.0} {:>12.0} {:>8.0}ms {:>18} {:>18}",
            checkpoint.transactions,
            checkpoint.rate,
            checkpoint.rss_bytes as f64 / f64::from(1 << 20),
            checkpoint.store_bytes as f64 / checkpoint.transactions as f64,
            checkpoint.startup.as_secs_f64() * 1_000.0,
            format!("{:.1}/{:.1}", micros(proofs.generate_median), micros(proofs.generate_p99)),
            format!("{:.1}/{:.1}", micros(proofs.verify_median), micros(proofs.verify_p99)),
        );
        checkpoints.push(checkpoint);
    }
    if sent < args.txs {
        println!("stopped at {sent} transactions: --max-minutes {} reached", args.max_minutes);
    }
    report(args, &checkpoints)
}

/// Sends transactions `range` (signing each batch as it goes) and waits until all are committed;
/// returns the rate from first submission to last commit.
fn ingest_segment(
    node: &Arc<Node>,
    counter: &mut CommitCounter,
    load: &Load<'_>,
    range: std::ops::Range<u64>,
    deadline: Instant,
) -> Result<f64, CliError> {
    let progress = ProgressBar::new(range.end - range.start).with_style(
        ProgressStyle::with_template("  ingesting {bar:40} {pos}/{len} ({per_sec}, {eta} left)")
            .expect("the progress template is valid"),
    );
    let committed_before = counter.update(node)?;
    let started = Instant::now();
    let producer = Producer::start(node);
    let mut next = range.start;
    while next < range.end {
        if Instant::now() > deadline {
            break;
        }
        let end = (next + SUBMIT_BATCH).min(range.end);
        let batch: Vec<Transaction> = (next..end).map(|index| load.anchor(index)).collect();
        submit_retrying(node, batch, deadline);
        next = end;
        progress.set_position(counter.update(node)? - committed_before);
    }
    let target = committed_before + (next - range.start);
    while counter.update(node)? < target && Instant::now() < deadline {
        progress.set_position(counter.transactions - committed_before);
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = started.elapsed();
    producer.stop()?;
    progress.finish_and_clear();
    Ok((counter.update(node)? - committed_before) as f64 / elapsed.as_secs_f64())
}

/// What the load is made of: anchors by seeded members of one hospital.
struct Load<'a> {
    chain_id: &'a ChainId,
    signers: &'a [SigningKey],
    seed: u64,
}

impl Load<'_> {
    /// The anchor transaction number `index` of the run: its signer and nonce follow from it.
    fn anchor(&self, index: u64) -> Transaction {
        let count = self.signers.len() as u64;
        let key = &self.signers[usize::try_from(index % count).expect("signer index fits")];
        let label = Label::new(format!("scale/{}/{index}", self.seed)).expect("valid label");
        let payload = Payload::Anchor { label, digest: sha256(&index.to_be_bytes()) };
        TxBody { chain_id: self.chain_id.clone(), signer: key.public_key(), nonce: index / count, payload }
            .sign(key)
    }
}

/// Counts committed transactions, reading only the headers of blocks it has not seen.
#[derive(Default)]
struct CommitCounter {
    height: u64,
    transactions: u64,
}

impl CommitCounter {
    fn update(&mut self, node: &Node) -> Result<u64, CliError> {
        let height = node.with_chain(medledger_state::Chain::height);
        for committed in self.height + 1..=height {
            self.transactions += u64::from(node.store().header(committed)?.tx_count);
        }
        self.height = height;
        Ok(self.transactions)
    }
}

/// Stops the node, reopens its store as a restarting node would, and times the reopen.
fn reopen(
    node: Arc<Node>,
    data_dir: &Path,
    config: NodeConfig,
    seed: u64,
) -> Result<(Arc<Node>, Duration), CliError> {
    drop(Arc::into_inner(node).expect("the producer has stopped: nothing else holds the node"));
    let started = Instant::now();
    let (store, chain) = Store::open(data_dir)?;
    let startup = started.elapsed();
    Ok((Arc::new(Node::new(store, chain, seeded_key(seed, "node", 0), config)?), startup))
}

/// Times state proofs against the head, just after a reopen (the page cache is cold): anchors
/// picked pseudo-randomly among the `sent`, and as many labels never anchored.
fn time_proofs(node: &Node, seed: u64, sent: u64) -> Result<ProofTimes, CliError> {
    let chain = node.with_chain(medledger_state::Chain::clone);
    let root = chain.state().root();
    let mut generate = Vec::new();
    let mut verify = Vec::new();
    for probe in 0..PROOFS_PER_CHECKPOINT {
        let spread = probe.wrapping_mul(0x9e37_79b9_7f4a_7c15) % sent;
        let index = if probe.is_multiple_of(2) { spread } else { sent + spread };
        let label = Label::new(format!("scale/{seed}/{index}")).expect("valid label");
        let key = medledger_state::keys::anchor(&label);
        let started = Instant::now();
        let proof = chain.prove(&key);
        generate.push(started.elapsed());
        if proof.value.is_some() != (index < sent) {
            return Err(CliError::Remote(format!(
                "the state proof for anchor {index} has the wrong presence"
            )));
        }
        let started = Instant::now();
        proof
            .verify(root)
            .map_err(|error| CliError::Remote(format!("a state proof does not verify: {error}")))?;
        verify.push(started.elapsed());
    }
    generate.sort_unstable();
    verify.sort_unstable();
    let at = |sorted: &[Duration], per_mille: usize| {
        sorted[(sorted.len() * per_mille / 1_000).min(sorted.len() - 1)]
    };
    Ok(ProofTimes {
        generate_median: at(&generate, 500),
        generate_p99: at(&generate, 990),
        verify_median: at(&verify, 500),
        verify_p99: at(&verify, 990),
    })
}

/// This process's resident memory (the node runs in it).
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kib| kib * 1024)
}

fn report(args: &ScaleArgs, checkpoints: &[Checkpoint]) -> Result<(), CliError> {
    let rows: Vec<_> = checkpoints
        .iter()
        .map(|checkpoint| {
            json!({
                "transactions": checkpoint.transactions,
                "tx_per_s": checkpoint.rate,
                "rss_bytes": checkpoint.rss_bytes,
                "store_bytes": checkpoint.store_bytes,
                "startup_ms": checkpoint.startup.as_secs_f64() * 1_000.0,
                "proof_generate_us": { "p50": checkpoint.proofs.generate_median.as_secs_f64() * 1e6, "p99": checkpoint.proofs.generate_p99.as_secs_f64() * 1e6 },
                "proof_verify_us": { "p50": checkpoint.proofs.verify_median.as_secs_f64() * 1e6, "p99": checkpoint.proofs.verify_p99.as_secs_f64() * 1e6 },
            })
        })
        .collect();
    let machine =
        format!("{} cores, {}", std::thread::available_parallelism().map_or(1, usize::from), cpu_model());
    println!("machine: {machine}");
    write_report(
        "scale",
        &json!({
            "bench": "scale",
            "seed": args.seed,
            "block_txs": args.block_txs,
            "signers": args.signers,
            "machine": machine,
            "checkpoints": rows,
        }),
    )
}

//! `medledger bench scale`: one long ingest, reporting at every checkpoint how the node's rate,
//! memory, store size and start-up time change as the chain grows.
//!
//! The load is signed as it is sent (one thread signs and submits batches), so memory measures
//! the node, not a pre-signed queue. At each checkpoint the node is stopped and its store
//! reopened, and the reopen is timed: that is the start-up a restarted node would pay. Then
//! state proofs and transaction inclusion proofs are timed against the reopened store.
//! `medledger bench proof` is the same with one checkpoint.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use medledger_crypto::merkle::leaf_hash;
use medledger_node::{Node, NodeConfig};
use medledger_store::{Store, StoreOptions};
use medledger_types::{Encode as _, Transaction};
use serde::{Deserialize, Serialize};

use super::load::AnchorLoad;
use super::{CommitCounter, Machine, progress_bar, seeded_key, submit_retrying, write_report};
use crate::run::Producer;
use crate::{Cli, CliError};

/// Transactions per batch submission (one batch signature verification each).
const SUBMIT_BATCH: u64 = 256;

/// State proofs timed at each checkpoint: half for anchors that exist, half for absent ones.
const STATE_PROOFS_PER_CHECKPOINT: u64 = 2_000;

/// Transaction inclusion proofs timed at each checkpoint (each reads and rehashes its block).
const INCLUSION_PROOFS_PER_CHECKPOINT: u64 = 500;

#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// Transactions to ingest in all.
    #[arg(long, default_value_t = 10_000_000)]
    pub txs: u64,
    /// Report (and reopen the store) every this many transactions.
    #[arg(long, default_value_t = 1_000_000)]
    pub checkpoint: u64,
    /// Distinct signing members.
    #[arg(long, default_value_t = 1_000)]
    pub signers: usize,
    /// Transactions per block.
    #[arg(long, default_value_t = 2_000)]
    pub block_txs: usize,
    /// Seed for keys and transactions.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Stop after this many minutes whatever the count: every benchmark stops by itself.
    #[arg(long, default_value_t = 180)]
    pub max_minutes: u64,
    /// The store's page cache, in MiB (node.toml's `store_cache_mib`).
    #[arg(long, default_value_t = medledger_store::DEFAULT_CACHE_BYTES >> 20)]
    pub store_cache_mib: usize,
}

impl ScaleArgs {
    /// These arguments as `medledger bench` flags.
    pub(crate) fn command_line(&self) -> Vec<String> {
        super::flags([
            ("--txs", self.txs.to_string()),
            ("--checkpoint", self.checkpoint.to_string()),
            ("--signers", self.signers.to_string()),
            ("--block-txs", self.block_txs.to_string()),
            ("--seed", self.seed.to_string()),
            ("--max-minutes", self.max_minutes.to_string()),
            ("--store-cache-mib", self.store_cache_mib.to_string()),
        ])
    }
}

#[derive(Debug, Args)]
pub struct ProofArgs {
    /// Transactions (anchors, so as many state keys) on the chain the proofs are made from.
    #[arg(long, default_value_t = 1_000_000)]
    pub txs: u64,
    /// Distinct signing members.
    #[arg(long, default_value_t = 1_000)]
    pub signers: usize,
    /// Transactions per block.
    #[arg(long, default_value_t = 2_000)]
    pub block_txs: usize,
    /// Seed for keys and transactions.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

impl ProofArgs {
    /// These arguments as `medledger bench` flags.
    pub(crate) fn command_line(&self) -> Vec<String> {
        super::flags([
            ("--txs", self.txs.to_string()),
            ("--signers", self.signers.to_string()),
            ("--block-txs", self.block_txs.to_string()),
            ("--seed", self.seed.to_string()),
        ])
    }
}

/// One checkpoint's measurements.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) struct Checkpoint {
    /// Transactions on the chain.
    pub transactions: u64,
    /// Ingest rate of the segment before the checkpoint.
    pub tx_per_s: f64,
    /// This process's resident memory (the node runs in it).
    pub rss_bytes: u64,
    /// Size of `chain.redb`.
    pub store_bytes: u64,
    /// Bytes this process sent to storage during the segment, per transaction of it: what the
    /// store rewrites, against what it keeps (`store_bytes`).
    pub written_per_tx_bytes: f64,
    /// Time to reopen the store, as a restarting node does.
    pub startup_ms: f64,
    /// State proofs against the head.
    pub state_proof: ProofTimes,
    /// Transaction inclusion proofs against their block's header.
    pub inclusion_proof: ProofTimes,
}

/// Times, in microseconds, to generate and to verify a proof.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) struct ProofTimes {
    pub generate_p50_us: f64,
    pub generate_p99_us: f64,
    pub verify_p50_us: f64,
    pub verify_p99_us: f64,
}

impl ProofTimes {
    fn of(mut generate: Vec<Duration>, mut verify: Vec<Duration>) -> Self {
        generate.sort_unstable();
        verify.sort_unstable();
        let micros = |sorted: &[Duration], per_mille| super::percentile_ms(sorted, per_mille) * 1_000.0;
        Self {
            generate_p50_us: micros(&generate, 500),
            generate_p99_us: micros(&generate, 990),
            verify_p50_us: micros(&verify, 500),
            verify_p99_us: micros(&verify, 990),
        }
    }

    fn cell(self) -> String {
        format!(
            "{:.1}/{:.1} {:.1}/{:.1}",
            self.generate_p50_us, self.generate_p99_us, self.verify_p50_us, self.verify_p99_us
        )
    }
}

/// What a run of checkpoints is asked to do.
struct Plan {
    txs: u64,
    checkpoint: u64,
    signers: usize,
    block_txs: usize,
    seed: u64,
    deadline: Instant,
    store: StoreOptions,
}

pub fn run(cli: &Cli, args: &ScaleArgs) -> Result<Vec<Checkpoint>, CliError> {
    let plan = Plan {
        txs: args.txs,
        checkpoint: args.checkpoint,
        signers: args.signers,
        block_txs: args.block_txs,
        seed: args.seed,
        deadline: Instant::now() + Duration::from_secs(args.max_minutes * 60),
        store: StoreOptions { cache_bytes: args.store_cache_mib << 20 },
    };
    let (checkpoints, machine) = measure(cli, &plan)?;
    if checkpoints.last().is_none_or(|last| last.transactions < args.txs) {
        println!("stopped early: --max-minutes {} reached", args.max_minutes);
    }
    let parameters = serde_json::json!({
        "txs": args.txs, "checkpoint": args.checkpoint, "signers": args.signers, "block_txs": args.block_txs,
        "store_cache_mib": args.store_cache_mib,
    });
    write_report("scale", args.seed, &parameters, &machine, &checkpoints)?;
    Ok(checkpoints)
}

/// `bench proof`: one checkpoint at --txs.
pub fn run_proof(cli: &Cli, args: &ProofArgs) -> Result<Checkpoint, CliError> {
    let plan = Plan {
        txs: args.txs,
        checkpoint: args.txs,
        signers: args.signers,
        block_txs: args.block_txs,
        seed: args.seed,
        deadline: Instant::now() + Duration::from_secs(MAX_PROOF_BENCH_MINUTES * 60),
        store: StoreOptions::default(),
    };
    let (checkpoints, machine) = measure(cli, &plan)?;
    let checkpoint = *checkpoints.last().filter(|last| last.transactions == args.txs).ok_or_else(|| {
        CliError::Remote(format!("the chain did not reach {} transactions in time", args.txs))
    })?;
    let parameters =
        serde_json::json!({ "txs": args.txs, "signers": args.signers, "block_txs": args.block_txs });
    write_report("proof", args.seed, &parameters, &machine, &checkpoint)?;
    Ok(checkpoint)
}

/// Longest `bench proof` may spend building its chain.
const MAX_PROOF_BENCH_MINUTES: u64 = 60;

/// Ingests `plan.txs` in segments of `plan.checkpoint`; after each, measures the store,
/// reopens it, and times proofs. Prints a row per checkpoint.
fn measure(cli: &Cli, plan: &Plan) -> Result<(Vec<Checkpoint>, Machine), CliError> {
    if plan.txs == 0 || plan.checkpoint == 0 || plan.signers == 0 || plan.block_txs == 0 {
        return Err(CliError::Usage(
            "--txs, --checkpoint, --signers and --block-txs must be positive".into(),
        ));
    }
    let (_temporary, data_dir) = super::chain_directory(cli)?;
    let load = AnchorLoad::new("medledger-bench", plan.seed, plan.signers);
    let config = NodeConfig { max_block_txs: plan.block_txs, block_interval_ms: 20, ..NodeConfig::default() };
    let (store, chain) = Store::create_with(&data_dir, &load.single_hospital_genesis(), plan.store)?;
    let mut node = Arc::new(Node::new(store, chain, seeded_key(plan.seed, "node", 0), config)?);
    println!(
        "{:>12} {:>9} {:>8} {:>10} {:>12} {:>9}  {:<24} {:<24}",
        "transactions",
        "tx/s",
        "RSS MiB",
        "store B/tx",
        "written B/tx",
        "start-up",
        "state proof µs gen/verify",
        "inclusion proof µs"
    );
    let mut checkpoints = Vec::new();
    let mut counter = CommitCounter::default();
    let mut sent = 0;
    while sent < plan.txs && Instant::now() < plan.deadline {
        let segment = plan.checkpoint.min(plan.txs - sent);
        let written_before = written_bytes();
        let rate = ingest_segment(&node, &mut counter, &load, sent..sent + segment, plan.deadline)?;
        let written = written_bytes().saturating_sub(written_before);
        sent += segment;
        let store_bytes = std::fs::metadata(medledger_store::database_path(&data_dir))
            .map_err(CliError::io(&data_dir))?
            .len();
        let rss_bytes = resident_bytes();
        let (reopened, startup) = reopen(node, &data_dir, config, plan)?;
        node = reopened;
        let checkpoint = Checkpoint {
            transactions: sent,
            tx_per_s: rate,
            rss_bytes,
            store_bytes,
            written_per_tx_bytes: written as f64 / segment as f64,
            startup_ms: startup.as_secs_f64() * 1_000.0,
            state_proof: time_state_proofs(&node, &load, sent)?,
            inclusion_proof: time_inclusion_proofs(&node, &load, sent)?,
        };
        println!(
            "{:>12} {:>9.0} {:>8.0} {:>10.0} {:>12.0} {:>7.0}ms  {:<24} {:<24}",
            checkpoint.transactions,
            checkpoint.tx_per_s,
            checkpoint.rss_bytes as f64 / f64::from(1 << 20),
            checkpoint.store_bytes as f64 / checkpoint.transactions as f64,
            checkpoint.written_per_tx_bytes,
            checkpoint.startup_ms,
            checkpoint.state_proof.cell(),
            checkpoint.inclusion_proof.cell(),
        );
        checkpoints.push(checkpoint);
    }
    let machine = Machine::measure(&data_dir)?;
    machine.print();
    Ok((checkpoints, machine))
}

/// Sends transactions `range` (signing each batch as it goes) and waits until all are committed;
/// returns the rate from first submission to last commit.
fn ingest_segment(
    node: &Arc<Node>,
    counter: &mut CommitCounter,
    load: &AnchorLoad,
    range: std::ops::Range<u64>,
    deadline: Instant,
) -> Result<f64, CliError> {
    let progress = progress_bar("ingesting", range.end - range.start);
    let committed_before = counter.update(node)?;
    let started = Instant::now();
    let producer = Producer::start(node);
    let mut next = range.start;
    while next < range.end && Instant::now() < deadline {
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

/// Stops the node, reopens its store as a restarting node would, and times the reopen.
fn reopen(
    node: Arc<Node>,
    data_dir: &Path,
    config: NodeConfig,
    plan: &Plan,
) -> Result<(Arc<Node>, Duration), CliError> {
    drop(Arc::into_inner(node).expect("the producer has stopped: nothing else holds the node"));
    let started = Instant::now();
    let (store, chain) = Store::open_with(data_dir, plan.store)?;
    let startup = started.elapsed();
    Ok((Arc::new(Node::new(store, chain, seeded_key(plan.seed, "node", 0), config)?), startup))
}

/// The `probe`th of a checkpoint's pseudo-random picks among `0..sent`.
fn spread(probe: u64, sent: u64) -> u64 {
    probe.wrapping_mul(0x9e37_79b9_7f4a_7c15) % sent
}

/// Times state proofs against the head, just after a reopen (the page cache is cold): anchors
/// picked pseudo-randomly among the `sent`, and as many labels never anchored.
fn time_state_proofs(node: &Node, load: &AnchorLoad, sent: u64) -> Result<ProofTimes, CliError> {
    let chain = node.with_chain(medledger_state::Chain::clone);
    let root = chain.state().root();
    let mut generate = Vec::new();
    let mut verify = Vec::new();
    for probe in 0..STATE_PROOFS_PER_CHECKPOINT {
        let index = if probe.is_multiple_of(2) { spread(probe, sent) } else { sent + spread(probe, sent) };
        let key = medledger_state::keys::anchor(&load.label(index));
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
    Ok(ProofTimes::of(generate, verify))
}

/// Times transaction inclusion proofs (the transaction's leaf under its block's `tx_root`) for
/// transactions picked pseudo-randomly among the `sent`.
fn time_inclusion_proofs(node: &Node, load: &AnchorLoad, sent: u64) -> Result<ProofTimes, CliError> {
    let mut generate = Vec::new();
    let mut verify = Vec::new();
    for probe in 0..INCLUSION_PROOFS_PER_CHECKPOINT {
        let transaction = load.anchor(spread(probe, sent));
        let id = transaction.id();
        let started = Instant::now();
        let inclusion = node
            .tx_inclusion(&id)?
            .ok_or_else(|| CliError::Remote(format!("transaction {id} has no inclusion proof")))?;
        generate.push(started.elapsed());
        let started = Instant::now();
        let leaf = leaf_hash(&transaction.encode());
        let verified = leaf == inclusion.leaf_hash
            && inclusion.proof.verify(&leaf, &inclusion.block.header.tx_root).is_ok();
        verify.push(started.elapsed());
        if !verified {
            return Err(CliError::Remote(format!("the inclusion proof of transaction {id} does not verify")));
        }
    }
    Ok(ProofTimes::of(generate, verify))
}

/// This process's resident memory (the node runs in it).
pub(crate) fn resident_bytes() -> u64 {
    proc_status_kib("VmRSS:") * 1024
}

/// This process's peak resident memory so far.
pub(crate) fn peak_resident_bytes() -> u64 {
    proc_status_kib("VmHWM:") * 1024
}

/// Bytes this process has caused to be sent to storage (`write_bytes` of `/proc/self/io`; 0 where
/// the kernel does not account it).
fn written_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|io| io.lines().find_map(|line| line.strip_prefix("write_bytes:")?.trim().parse().ok()))
        .unwrap_or(0)
}

fn proc_status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|line| line.starts_with(field))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .unwrap_or(0)
}

//! `medledger bench`: end-to-end performance measurements on this machine.
//!
//! Every bench is seeded, prints a table, shows a progress bar on a terminal, and writes its
//! results as JSON under `target/bench/` with the machine and its measured limits
//! ([`limits`]). `bench all` runs them in turn and, given PostgreSQL servers
//! (`scripts/bench-baseline.sh` starts them), runs the same workloads against PostgreSQL and
//! prints the ratios from the one run.

use std::path::Path;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use medledger_crypto::{SigningKey, sha256};
use medledger_node::{Node, SubmitError};
use medledger_types::Transaction;
use serde::Serialize;

use crate::{Cli, CliError};

mod all;
mod cluster;
mod fhir;
mod ingest;
mod limits;
mod load;
mod postgres;
mod scale;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    #[command(subcommand)]
    command: Option<BenchCommand>,
    /// With no bench named: every bench at a small size, as a smoke test (`bench all --quick`).
    #[arg(long)]
    quick: bool,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Signed transactions through admission (signature verification), block building
    /// (execution and state root), and durable commit on one node, end to end.
    Ingest(ingest::IngestArgs),
    /// A network of validators on this machine (real consensus over loopback p2p) under a
    /// steady offered load: finalized tx/s and submit-to-finality latency.
    Cluster(cluster::ClusterArgs),
    /// Creates and reads of a 2 KiB Observation through a node's FHIR API: a running node's,
    /// or a dev node the bench starts.
    Fhir(fhir::FhirArgs),
    /// State proofs and transaction inclusion proofs on a chain of --txs transactions: time
    /// to generate and to verify.
    Proof(scale::ProofArgs),
    /// A long ingest (10 M transactions by default) that reports rate, memory, store size per
    /// transaction, start-up time and proof times at every million.
    Scale(scale::ScaleArgs),
    /// This machine's limits: Ed25519 checks per second per core, SHA-256 GB/s, fsync latency.
    Limits,
    /// Every bench in turn, with MedLedger / PostgreSQL ratios when given PostgreSQL servers.
    All(all::AllArgs),
}

pub fn run(cli: &Cli, args: &BenchArgs) -> Result<(), CliError> {
    match &args.command {
        Some(BenchCommand::Ingest(args)) => ingest::run(cli, args).map(drop),
        Some(BenchCommand::Cluster(args)) => cluster::run(args).map(drop),
        Some(BenchCommand::Fhir(args)) => fhir::run(cli, args).map(drop),
        Some(BenchCommand::Proof(args)) => scale::run_proof(cli, args).map(drop),
        Some(BenchCommand::Scale(args)) => scale::run(cli, args).map(drop),
        Some(BenchCommand::Limits) => limits_command(cli),
        Some(BenchCommand::All(args)) => all::run(args),
        None if args.quick => all::run(&all::AllArgs::quick()),
        None => Err(CliError::Usage("name a bench (see `medledger bench --help`) or pass --quick".into())),
    }
}

fn limits_command(cli: &Cli) -> Result<(), CliError> {
    let directory = cli.data_dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&directory).map_err(CliError::io(&directory))?;
    let machine = Machine::measure(&directory)?;
    machine.print();
    write_report("limits", 0, &serde_json::json!({}), &machine, &machine.limits)
}

/// The machine a bench ran on, with its measured limits.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Machine {
    /// Cores this process may use.
    pub cores: usize,
    /// The CPU model.
    pub cpu: String,
    /// What the hardware allows.
    pub limits: limits::Limits,
}

impl Machine {
    /// Describes this machine, timing its fsync in `directory` (where the bench's store is).
    pub(crate) fn measure(directory: &Path) -> Result<Self, CliError> {
        Ok(Self { cores: cores(), cpu: cpu_model(), limits: limits::Limits::measure(directory)? })
    }

    /// Prints the machine and its limits under a bench's table.
    pub(crate) fn print(&self) {
        println!("machine: {} cores, {}", self.cores, self.cpu);
        println!("{}", self.limits.describe());
    }
}

/// Where a bench keeps its chain: `--data-dir` when given (and kept), or else a temporary
/// directory, removed when the returned guard is dropped.
pub(crate) fn chain_directory(
    cli: &Cli,
) -> Result<(Option<tempfile::TempDir>, std::path::PathBuf), CliError> {
    if let Some(directory) = &cli.data_dir {
        return Ok((None, directory.clone()));
    }
    let temporary = tempfile::Builder::new()
        .prefix("medledger-bench-")
        .tempdir()
        .map_err(CliError::io("temporary directory"))?;
    let directory = temporary.path().to_owned();
    Ok((Some(temporary), directory))
}

/// `(flag, value)` pairs as command-line arguments: what `bench all` passes to each bench.
pub(crate) fn flags<const N: usize>(pairs: [(&str, String); N]) -> Vec<String> {
    pairs.into_iter().flat_map(|(flag, value)| [flag.to_owned(), value]).collect()
}

/// Cores this process may use.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// A progress bar on standard error (hidden when it is not a terminal).
pub(crate) fn progress_bar(what: &str, total: u64) -> ProgressBar {
    ProgressBar::new(total).with_style(
        ProgressStyle::with_template(&format!(
            "  {what} {{bar:40}} {{pos}}/{{len}} ({{per_sec}}, {{eta}} left)"
        ))
        .expect("the progress template is valid"),
    )
}

/// Where reports go: `target/bench/NAME.json` under the current directory.
const REPORT_DIRECTORY: &str = "target/bench";

/// Where bench `name` writes its report.
pub(crate) fn report_path(name: &str) -> std::path::PathBuf {
    Path::new(REPORT_DIRECTORY).join(format!("{name}.json"))
}

/// Writes a benchmark's results as JSON beside the printed table, and says where.
pub(crate) fn write_report(
    name: &str,
    seed: u64,
    parameters: &serde_json::Value,
    machine: &Machine,
    results: &impl Serialize,
) -> Result<(), CliError> {
    let report = serde_json::json!({
        "bench": name,
        "seed": seed,
        "parameters": parameters,
        "machine": machine,
        "results": results,
    });
    let path = report_path(name);
    let directory = Path::new(REPORT_DIRECTORY);
    std::fs::create_dir_all(directory).map_err(CliError::io(directory))?;
    let text = serde_json::to_string_pretty(&report).expect("reports serialise");
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

/// Counts committed transactions, reading only the headers of blocks it has not seen.
#[derive(Default)]
pub(crate) struct CommitCounter {
    /// The last height counted.
    pub height: u64,
    /// Transactions in blocks up to it.
    pub transactions: u64,
}

impl CommitCounter {
    /// Counts the blocks committed since the last call; returns the running total.
    pub(crate) fn update(&mut self, node: &Node) -> Result<u64, CliError> {
        self.update_with(node, |_, _| {})
    }

    /// The same, calling `on_block(height, total)` after each newly counted block.
    pub(crate) fn update_with(
        &mut self,
        node: &Node,
        mut on_block: impl FnMut(u64, u64),
    ) -> Result<u64, CliError> {
        let height = node.with_chain(medledger_state::Chain::height);
        for committed in self.height + 1..=height {
            self.transactions += u64::from(node.store().header(committed)?.tx_count);
            on_block(committed, self.transactions);
        }
        self.height = height;
        Ok(self.transactions)
    }
}

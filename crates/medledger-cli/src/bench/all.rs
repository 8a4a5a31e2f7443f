//! `medledger bench all`: every bench in turn (ingest, proof, cluster, FHIR, scale), and with
//! `--postgres` the same workloads against PostgreSQL, with the ratios printed and written to
//! `target/bench/all.json`. `--quick` runs each at a small size: a smoke test that checks
//! counts, never timings.
//!
//! Each MedLedger bench runs in its own process (this binary, `medledger bench NAME …`), so
//! the memory one reports is its own and not what an earlier one left allocated; its results
//! are read back from its JSON report. The PostgreSQL workloads run here: they are clients.

use clap::Args;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::cluster::{ClusterArgs, ClusterResult};
use super::fhir::{FhirArgs, FhirResult};
use super::ingest::{IngestArgs, IngestResult};
use super::scale::{Checkpoint, ProofArgs, ScaleArgs};
use super::{Machine, postgres, write_report};
use crate::CliError;

#[derive(Debug, Args)]
pub struct AllArgs {
    /// Each bench at a small size (seconds, not minutes): a smoke test of every bench.
    #[arg(long)]
    quick: bool,
    /// A PostgreSQL server to run the baseline workloads on (libpq connection string, e.g.
    /// "host=127.0.0.1 port=54320 user=postgres"); `scripts/bench-baseline.sh` starts one.
    #[arg(long, value_name = "CONNINFO")]
    postgres: Option<String>,
    /// A PostgreSQL primary with synchronous standbys, the counterpart of the validators of
    /// `bench cluster`.
    #[arg(long, value_name = "CONNINFO", requires = "postgres")]
    postgres_replicated: Option<String>,
    /// Leave out `bench scale` (the longest bench: 10 M transactions).
    #[arg(long)]
    skip_scale: bool,
    /// Seed for every bench.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

impl AllArgs {
    /// `bench --quick`.
    pub fn quick() -> Self {
        Self { quick: true, postgres: None, postgres_replicated: None, skip_scale: false, seed: 1 }
    }
}

/// The sizes each bench runs at.
struct Plan {
    ingest: IngestArgs,
    proof: ProofArgs,
    cluster: ClusterArgs,
    fhir: FhirArgs,
    scale: ScaleArgs,
}

impl Plan {
    fn full(seed: u64) -> Self {
        Self {
            ingest: IngestArgs {
                txs: 200_000,
                signers: 1_000,
                block_txs: 2_000,
                block_interval_ms: 20,
                threads: 2,
                batch: 256,
                seed,
                print_commits: false,
            },
            proof: ProofArgs { txs: 1_000_000, signers: 1_000, block_txs: 2_000, seed },
            // Offered at the target (#24: 12,000 tx/s final with p99 ≤ 1 s), so what is final
            // is the network's capacity, comparable with the replicated server's.
            cluster: ClusterArgs {
                nodes: 4,
                rate: 12_000,
                seconds: 10,
                signers: 2_000,
                batch: 128,
                block_interval_ms: 50,
                block_txs: 5_000,
                seed,
                store_cache_mib: medledger_store::DEFAULT_CACHE_BYTES >> 20,
            },
            fhir: FhirArgs { creates: 20_000, reads: 50_000, clients: 16, ..FhirArgs::own_node() },
            scale: ScaleArgs {
                txs: 10_000_000,
                checkpoint: 1_000_000,
                signers: 1_000,
                block_txs: 2_000,
                seed,
                max_minutes: 180,
                store_cache_mib: medledger_store::DEFAULT_CACHE_BYTES >> 20,
            },
        }
    }

    fn quick(seed: u64) -> Self {
        let full = Self::full(seed);
        Self {
            ingest: IngestArgs { txs: 2_000, signers: 100, block_txs: 200, batch: 100, ..full.ingest },
            proof: ProofArgs { txs: 2_000, signers: 100, block_txs: 200, seed },
            cluster: ClusterArgs { rate: 400, seconds: 2, signers: 100, batch: 50, ..full.cluster },
            fhir: FhirArgs { creates: 100, reads: 200, clients: 4, ..full.fhir },
            scale: ScaleArgs {
                txs: 3_000,
                checkpoint: 1_000,
                signers: 100,
                block_txs: 200,
                max_minutes: 10,
                ..full.scale
            },
        }
    }
}

/// What `bench all` measured, MedLedger beside PostgreSQL where a baseline ran.
#[derive(Debug, Serialize)]
struct Summary {
    ingest: IngestResult,
    ingest_postgres: Option<IngestResult>,
    proof: Checkpoint,
    cluster: ClusterResult,
    cluster_postgres_replicated: Option<IngestResult>,
    fhir: FhirResult,
    fhir_postgres: Option<FhirResult>,
    scale: Option<Vec<Checkpoint>>,
    postgres_version: Option<String>,
    quick: bool,
    comparisons: Vec<Comparison>,
}

/// One MedLedger / PostgreSQL ratio.
#[derive(Debug, Serialize)]
struct Comparison {
    workload: &'static str,
    medledger: f64,
    postgres: f64,
    ratio: f64,
    target_ratio: f64,
}

pub fn run(args: &AllArgs) -> Result<(), CliError> {
    let plan = if args.quick { Plan::quick(args.seed) } else { Plan::full(args.seed) };
    let section = |name: &str| println!("\n== bench {name}");
    let postgres = args.postgres.as_deref();
    let postgres_version = postgres.map(postgres::server_version).transpose()?;

    section("ingest");
    let ingest: IngestResult = run_alone("ingest", &plan.ingest.command_line())?;
    let ingest_postgres = postgres.map(|conninfo| postgres::ingest(conninfo, &plan.ingest)).transpose()?;
    check_count("ingest", ingest.transactions, plan.ingest.txs)?;

    section("proof");
    let proof: Checkpoint = run_alone("proof", &plan.proof.command_line())?;

    section("cluster");
    let cluster: ClusterResult = run_alone("cluster", &plan.cluster.command_line())?;
    let cluster_postgres_replicated = args
        .postgres_replicated
        .as_deref()
        .map(|conninfo| postgres::ingest(conninfo, &plan.ingest))
        .transpose()?;
    check_count("cluster", cluster.finalized as u64, plan.cluster.rate * plan.cluster.seconds)?;

    section("fhir");
    let fhir: FhirResult = run_alone("fhir", &plan.fhir.command_line())?;
    let fhir_postgres = postgres
        .map(|conninfo| postgres::fhir(conninfo, plan.fhir.creates, plan.fhir.reads, plan.fhir.clients))
        .transpose()?;
    check_count(
        "fhir create",
        fhir.create.map_or(0, |phase| phase.requests as u64),
        plan.fhir.creates as u64,
    )?;
    check_count("fhir read", fhir.read.map_or(0, |phase| phase.requests as u64), plan.fhir.reads as u64)?;

    let scale = if args.skip_scale {
        None
    } else {
        section("scale");
        let checkpoints: Vec<Checkpoint> = run_alone("scale", &plan.scale.command_line())?;
        check_count("scale", checkpoints.last().map_or(0, |last| last.transactions), plan.scale.txs)?;
        Some(checkpoints)
    };

    let mut summary = Summary {
        ingest,
        ingest_postgres,
        proof,
        cluster,
        cluster_postgres_replicated,
        fhir,
        fhir_postgres,
        scale,
        postgres_version,
        quick: args.quick,
        comparisons: Vec::new(),
    };
    summary.comparisons = comparisons(&summary);
    print_comparisons(&summary);
    let machine = Machine::measure(&std::env::temp_dir())?;
    let parameters = serde_json::json!({ "quick": args.quick, "postgres": postgres.is_some() });
    write_report("all", args.seed, &parameters, &machine, &summary)
}

/// Runs `medledger bench NAME ARGS` as a child process, in this directory and with this
/// process's output, and reads its results back from its report.
fn run_alone<T: DeserializeOwned>(name: &str, args: &[String]) -> Result<T, CliError> {
    let executable = std::env::current_exe().map_err(CliError::io("the medledger executable"))?;
    let status = std::process::Command::new(executable)
        .arg("bench")
        .arg(name)
        .args(args)
        .status()
        .map_err(CliError::io("medledger bench"))?;
    if !status.success() {
        return Err(CliError::Remote(format!("bench {name} failed ({status})")));
    }
    let path = super::report_path(name);
    let text = std::fs::read(&path).map_err(CliError::io(&path))?;
    let mut report: serde_json::Value = serde_json::from_slice(&text)
        .map_err(|error| CliError::Remote(format!("{}: {error}", path.display())))?;
    serde_json::from_value(report["results"].take())
        .map_err(|error| CliError::Remote(format!("{}: results: {error}", path.display())))
}

/// A bench that ran but did less than asked fails `bench all` (and so the smoke test).
fn check_count(bench: &str, done: u64, asked: u64) -> Result<(), CliError> {
    if done == asked {
        Ok(())
    } else {
        Err(CliError::Remote(format!("bench {bench}: {done} of {asked} done")))
    }
}

fn comparisons(summary: &Summary) -> Vec<Comparison> {
    let mut rows = Vec::new();
    let mut compare = |workload, medledger: f64, postgres: Option<f64>, target_ratio| {
        if let Some(postgres) = postgres {
            rows.push(Comparison {
                workload,
                medledger,
                postgres,
                ratio: medledger / postgres,
                target_ratio,
            });
        }
    };
    compare(
        "ingest, tx/s (one node / one server)",
        summary.ingest.tx_per_s,
        summary.ingest_postgres.map(|result| result.tx_per_s),
        1.0,
    );
    compare(
        "replicated ingest, tx/s (4 BFT validators / primary + 3 synchronous standbys)",
        summary.cluster.finalized_tx_per_s,
        summary.cluster_postgres_replicated.map(|result| result.tx_per_s),
        1.0,
    );
    let phase = |result: Option<&FhirResult>, pick: fn(&FhirResult) -> Option<super::fhir::PhaseResult>| {
        result.and_then(pick).map(|phase| phase.per_s)
    };
    compare(
        "FHIR create, /s",
        phase(Some(&summary.fhir), |result| result.create).unwrap_or(0.0),
        phase(summary.fhir_postgres.as_ref(), |result| result.create),
        0.5,
    );
    compare(
        "FHIR read, /s",
        phase(Some(&summary.fhir), |result| result.read).unwrap_or(0.0),
        phase(summary.fhir_postgres.as_ref(), |result| result.read),
        0.6,
    );
    rows
}

fn print_comparisons(summary: &Summary) {
    let Some(version) = &summary.postgres_version else {
        println!("\nno PostgreSQL baseline (scripts/bench-baseline.sh runs one)");
        return;
    };
    println!("\n== MedLedger / PostgreSQL, one run ({version})");
    if summary.quick {
        println!("(--quick: sizes too small for the ratios to mean anything)");
    }
    println!("{:<80} {:>11} {:>11} {:>7} {:>7}", "workload", "MedLedger", "PostgreSQL", "ratio", "target");
    for row in &summary.comparisons {
        println!(
            "{:<80} {:>11.0} {:>11.0} {:>7.2} {:>7.2}",
            row.workload, row.medledger, row.postgres, row.ratio, row.target_ratio
        );
    }
}

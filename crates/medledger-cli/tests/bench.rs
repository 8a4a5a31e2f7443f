//! Every bench runs, through the command line, and reports what it did: the smoke form of
//! `medledger bench` (counts only: timings never decide a test), `bench scale`'s checkpoints,
//! and the PostgreSQL baseline script.

mod support;

use std::path::Path;
use std::process::Output;

use serde_json::Value;
use support::{path_str, run};

fn stdout_of(output: &Output) -> String {
    assert!(output.status.success(), "failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn report(dir: &Path, name: &str) -> Value {
    let path = dir.join("target/bench").join(format!("{name}.json"));
    let text = std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_json::from_slice(&text).expect("a report is JSON")
}

/// What `bench --quick` asks of each bench (see `AllArgs::quick`).
fn assert_quick_counts(summary: &Value) {
    assert_eq!(summary["ingest"]["transactions"], 2_000);
    assert_eq!(summary["proof"]["transactions"], 2_000);
    assert_eq!(summary["cluster"]["finalized"], 800);
    assert_eq!(summary["fhir"]["create"]["requests"], 100);
    assert_eq!(summary["fhir"]["read"]["requests"], 200);
}

#[test]
fn bench_quick_runs_every_bench_and_writes_their_reports() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output =
        support::medledger().current_dir(dir.path()).args(["bench", "--quick"]).output().expect("bench");
    let stdout = stdout_of(&output);
    for bench in ["ingest", "proof", "cluster", "fhir", "scale"] {
        assert!(stdout.contains(&format!("== bench {bench}")), "{bench} ran: {stdout}");
        let bench_report = report(dir.path(), bench);
        assert_eq!(bench_report["bench"], bench);
        let limits = &bench_report["machine"]["limits"];
        assert!(limits["ed25519_batch_verify_per_s_per_core"].as_f64().is_some_and(|rate| rate > 0.0));
        assert!(limits["fsync_p50_ms"].as_f64().is_some_and(|latency| latency > 0.0));
    }
    let summary = &report(dir.path(), "all")["results"];
    assert_quick_counts(summary);
    let scale: Vec<u64> = summary["scale"]
        .as_array()
        .expect("scale checkpoints")
        .iter()
        .map(|row| row["transactions"].as_u64().expect("a count"))
        .collect();
    assert_eq!(scale, [1_000, 2_000, 3_000]);
    assert!(summary["comparisons"].as_array().is_some_and(Vec::is_empty), "no baseline was asked for");
}

#[test]
fn bench_scale_reports_every_checkpoint_with_a_reopen_and_proofs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("chain");
    let output = support::medledger()
        .current_dir(dir.path())
        .args(["--data-dir", path_str(&data_dir), "bench", "scale", "--txs", "3000", "--checkpoint", "1000"])
        .args(["--signers", "20", "--block-txs", "400"])
        .output()
        .expect("running medledger");
    let stdout = stdout_of(&output);
    let rows: Vec<&str> =
        stdout.lines().filter(|line| line.trim_start().starts_with(char::is_numeric)).collect();
    assert_eq!(rows.len(), 3, "one row per checkpoint: {stdout}");
    let scale = report(dir.path(), "scale");
    let checkpoints = scale["results"].as_array().expect("checkpoints");
    let counts: Vec<u64> =
        checkpoints.iter().map(|row| row["transactions"].as_u64().expect("count")).collect();
    assert_eq!(counts, [1000, 2000, 3000]);
    for row in checkpoints {
        assert!(row["store_bytes"].as_u64().expect("bytes") > 0);
        assert!(row["state_proof"]["verify_p50_us"].as_f64().is_some());
        assert!(row["inclusion_proof"]["generate_p50_us"].as_f64().is_some());
    }
    // The store the bench wrote is a chain like any other: it verifies from genesis.
    let verified = stdout_of(&run(&["verify", "--data-dir", path_str(&data_dir)]));
    assert!(verified.contains("and 3000 transactions"), "{verified}");
}

/// The baseline script installs PostgreSQL if it must, starts a server and a primary with
/// three synchronous standbys, and runs the same workloads against them in one run.
#[test]
fn bench_baseline_script_compares_with_postgresql_in_one_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/bench-baseline.sh");
    let output = std::process::Command::new("bash")
        .arg(&script)
        .args(["--quick", "--skip-scale"])
        .current_dir(dir.path())
        .env("MEDLEDGER_BIN", env!("CARGO_BIN_EXE_medledger"))
        .env("MEDLEDGER_LOG", "warn")
        .output()
        .expect("running the baseline script");
    let stdout = stdout_of(&output);
    assert!(stdout.contains("MedLedger / PostgreSQL"), "{stdout}");
    let summary = &report(dir.path(), "all")["results"];
    assert_quick_counts(summary);
    assert!(summary["postgres_version"].as_str().is_some_and(|version| version.starts_with("PostgreSQL")));
    assert_eq!(summary["ingest_postgres"]["transactions"], 2_000);
    assert_eq!(summary["cluster_postgres_replicated"]["transactions"], 2_000);
    assert_eq!(summary["fhir_postgres"]["read"]["requests"], 200);
    let comparisons = summary["comparisons"].as_array().expect("comparisons");
    assert_eq!(comparisons.len(), 4, "ingest, replicated ingest, FHIR create and read");
    for row in comparisons {
        assert!(row["ratio"].as_f64().is_some_and(|ratio| ratio > 0.0), "{row}");
    }
}

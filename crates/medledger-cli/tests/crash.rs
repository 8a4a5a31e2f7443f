//! A store killed with SIGKILL during heavy writes reopens at its last committed block, and the
//! whole chain still verifies.

mod support;

use std::time::Duration;

use medledger_store::Store;
use support::{Process, path_str, run};

/// Kill points: this many runs, each with its own seed.
const SEEDS: u64 = 20;

/// Longest the reader of a killed process's stdout may take to see the pipe close.
const STDOUT_CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn sigkill_during_ingest_never_loses_or_corrupts_committed_blocks() {
    for seed in 1..=SEEDS {
        let dir = tempfile::tempdir().expect("temp dir");
        // Run where its report (target/bench/ingest.json) lands in the temp dir, not the tree.
        let mut command = support::medledger();
        command.current_dir(dir.path()).args([
            "bench",
            "ingest",
            "--data-dir",
            path_str(dir.path()),
            "--txs",
            "40000",
            "--signers",
            "200",
            "--block-txs",
            "400",
            "--seed",
            &seed.to_string(),
            "--print-commits",
        ]);
        let mut ingest = Process::spawn_command(command);
        let first =
            ingest.wait_for_line(Duration::from_secs(120), |line| line.starts_with("committed height"));
        assert!(first.is_some(), "seed {seed}: ingest never committed a block");
        // Let it write for a seed-dependent while, then kill it mid-stream.
        std::thread::sleep(Duration::from_millis(50 + (seed * 7919) % 600));
        ingest.kill();
        // Every line it printed before it died counts, including those the reader thread
        // had not passed on yet: read to the end of its stdout.
        let acknowledged = ingest
            .remaining_lines(STDOUT_CLOSE_TIMEOUT)
            .into_iter()
            .chain(first)
            .filter_map(|line| line.strip_prefix("committed height ")?.split(' ').next()?.parse::<u64>().ok())
            .max()
            .expect("at least one acknowledged height");

        // Offline verification first: it must cope with a store whose writer was killed.
        let output = run(&["verify", "--data-dir", path_str(dir.path())]);
        assert!(
            output.status.success(),
            "seed {seed}: verify failed after SIGKILL: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let (_store, chain) = Store::open(dir.path())
            .unwrap_or_else(|error| panic!("seed {seed}: the store does not reopen after SIGKILL: {error}"));
        eprintln!(
            "seed {seed}: killed after acknowledged height {acknowledged}; reopened at {}",
            chain.height()
        );
        assert!(
            chain.height() >= acknowledged,
            "seed {seed}: acknowledged height {acknowledged} but reopened at {}",
            chain.height()
        );
        assert!(
            chain.height() < 100,
            "seed {seed}: the kill came after ingest finished; it must land mid-run"
        );
    }
}

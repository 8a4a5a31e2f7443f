//! `medledger verify` finds a single tampered byte in a stored block and names its height, and
//! finds a stored state entry that differs from the state the blocks produce.

mod support;

use std::path::Path;

use medledger_store::tables::{BLOCKS, HISTORY, STATE};
use redb::{ReadableDatabase as _, ReadableTable as _};
use support::{path_str, run};

/// Builds a chain of several blocks in `dir` with the real ingest path.
fn build_chain(dir: &Path) {
    // Run where its report (target/bench/ingest.json) lands beside the chain, not the tree.
    let output = support::medledger()
        .current_dir(dir)
        .args(["bench", "ingest", "--data-dir", path_str(dir), "--txs", "1200", "--signers", "40"])
        .args(["--block-txs", "100"])
        .output()
        .expect("running medledger");
    assert!(output.status.success(), "ingest failed: {}", String::from_utf8_lossy(&output.stderr));
}

/// A tiny deterministic generator (SplitMix64), so each case is reproducible from its seed.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn flip_byte(database: &Path, height: u64, position: usize) {
    let db = redb::Database::open(database).expect("open the copy");
    let mut bytes = {
        let read = db.begin_read().expect("read");
        let blocks = read.open_table(BLOCKS).expect("blocks table");
        blocks.get(height).expect("get").expect("block exists").value().to_vec()
    };
    let position = position % bytes.len();
    bytes[position] ^= 0x01;
    let write = db.begin_write().expect("write");
    write.open_table(BLOCKS).expect("blocks table").insert(height, bytes.as_slice()).expect("insert");
    write.commit().expect("commit");
}

#[test]
fn verify_passes_on_an_intact_chain() {
    let dir = tempfile::tempdir().expect("temp dir");
    build_chain(dir.path());
    let output = run(&["verify", "--data-dir", path_str(dir.path())]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("verified 12 blocks and 1200 transactions"), "{stdout}");
}

#[test]
fn verify_points_at_the_block_with_one_tampered_byte() {
    let pristine = tempfile::tempdir().expect("temp dir");
    build_chain(pristine.path());
    let database = medledger_store::database_path(pristine.path());
    for seed in 1..=8u64 {
        let mut state = seed;
        let height = 1 + splitmix(&mut state) % 12;
        let position = usize::try_from(splitmix(&mut state) % 1_000_000).expect("small");
        let copy = tempfile::tempdir().expect("temp dir");
        std::fs::copy(&database, medledger_store::database_path(copy.path())).expect("copy the store");
        flip_byte(&medledger_store::database_path(copy.path()), height, position);
        let output = run(&["verify", "--data-dir", path_str(copy.path())]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(3), "seed {seed}: verify of a tampered block {height} exits 3");
        assert!(
            stderr.contains(&format!("verification failed at height {height}:")),
            "seed {seed}: tampered block {height} (byte {position}), verify said: {stderr}"
        );
    }
}

#[test]
fn verify_finds_a_stored_state_entry_the_blocks_do_not_produce() {
    let dir = tempfile::tempdir().expect("temp dir");
    build_chain(dir.path());
    {
        let db = redb::Database::open(medledger_store::database_path(dir.path())).expect("open");
        let key = {
            let read = db.begin_read().expect("read");
            let state = read.open_table(STATE).expect("state table");
            let (key, _) = state.first().expect("read").expect("an entry");
            key.value().to_vec()
        };
        let write = db.begin_write().expect("write");
        write
            .open_table(STATE)
            .expect("state table")
            .insert(key.as_slice(), b"tampered".as_slice())
            .expect("insert");
        write.commit().expect("commit");
    }
    let output = run(&["verify", "--data-dir", path_str(dir.path())]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("the stored state differs from the replayed state at entry 0 (account)"),
        "{stderr}"
    );
}

#[test]
fn verify_finds_a_stored_history_subtree_the_blocks_do_not_produce() {
    let dir = tempfile::tempdir().expect("temp dir");
    build_chain(dir.path());
    {
        // Blocks 1 and 2: not under the head's history root (12 blocks are 8 + 4), so only a
        // consistency proof, and verify, would read it.
        let db = redb::Database::open(medledger_store::database_path(dir.path())).expect("open");
        let write = db.begin_write().expect("write");
        write.open_table(HISTORY).expect("history table").insert((1u8, 0u64), [9u8; 32]).expect("insert");
        write.commit().expect("commit");
    }
    let output = run(&["verify", "--data-dir", path_str(dir.path())]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("the stored history differs from the replayed one over blocks 1 to 2"),
        "{stderr}"
    );
}

#[test]
fn verify_of_a_missing_chain_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = run(&["verify", "--data-dir", path_str(dir.path())]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no chain in"));
}

//! This machine's limits, measured by the bench itself so each result can be read as a
//! fraction of what the hardware allows: signature checks per second per core, SHA-256
//! throughput, and the latency of one durable write (fsync) on the disk the store uses.

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use medledger_crypto::{PublicKey, Signature, sha256, verify_batch};
use serde::Serialize;

use super::seeded_key;
use crate::CliError;

/// Signatures checked per measurement: enough for a stable rate in well under a second.
const SIGNATURES: usize = 4_096;

/// Signatures per batch verification, as admission batches them.
const BATCH: usize = 256;

/// Bytes hashed per SHA-256 measurement.
const HASHED_BYTES: usize = 64 << 20;

/// Durable 4 KiB writes timed for the fsync latency.
const FSYNCS: usize = 200;

/// What one core of this machine can do, and what one durable write costs.
#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct Limits {
    /// Ed25519 signature checks per second on one core, one at a time.
    pub ed25519_verify_per_s_per_core: f64,
    /// Ed25519 signature checks per second on one core, in batches of 256.
    pub ed25519_batch_verify_per_s_per_core: f64,
    /// SHA-256 over large buffers, GB/s on one core.
    pub sha256_gb_per_s: f64,
    /// Median latency of a 4 KiB write plus `fsync` (fdatasync) in the store's directory.
    pub fsync_p50_ms: f64,
    /// 99th percentile of the same.
    pub fsync_p99_ms: f64,
}

impl Limits {
    /// Measures, writing its fsync probe file in `directory` (removed afterwards).
    pub(crate) fn measure(directory: &Path) -> Result<Self, CliError> {
        let (single, batch) = signature_rates();
        let (fsync_p50_ms, fsync_p99_ms) = fsync_latency(directory)?;
        Ok(Self {
            ed25519_verify_per_s_per_core: single,
            ed25519_batch_verify_per_s_per_core: batch,
            sha256_gb_per_s: sha256_rate(),
            fsync_p50_ms,
            fsync_p99_ms,
        })
    }

    /// The ceiling for ingest on this machine: every core batch-verifying, nothing else.
    pub(crate) fn batch_verify_ceiling(&self) -> f64 {
        self.ed25519_batch_verify_per_s_per_core * super::cores() as f64
    }

    /// One line for the printed table.
    pub(crate) fn describe(&self) -> String {
        format!(
            "limits: Ed25519 {:.0}/s per core ({:.0}/s batched), SHA-256 {:.2} GB/s, fsync p50 {:.2} ms p99 {:.2} ms",
            self.ed25519_verify_per_s_per_core,
            self.ed25519_batch_verify_per_s_per_core,
            self.sha256_gb_per_s,
            self.fsync_p50_ms,
            self.fsync_p99_ms
        )
    }
}

fn signature_rates() -> (f64, f64) {
    let keys: Vec<_> = (0..16).map(|index| seeded_key(0, "limits", index)).collect();
    let messages: Vec<Vec<u8>> =
        (0..SIGNATURES).map(|index| sha256(&index.to_be_bytes()).0.to_vec()).collect();
    let signatures: Vec<Signature> =
        messages.iter().enumerate().map(|(index, message)| keys[index % keys.len()].sign(message)).collect();
    let public_keys: Vec<PublicKey> =
        (0..SIGNATURES).map(|index| keys[index % keys.len()].public_key()).collect();
    let started = Instant::now();
    for ((message, signature), key) in messages.iter().zip(&signatures).zip(&public_keys) {
        key.verify(message, signature).expect("the probe signs its own messages");
    }
    let single = SIGNATURES as f64 / started.elapsed().as_secs_f64();
    let message_refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    let started = Instant::now();
    for start in (0..SIGNATURES).step_by(BATCH) {
        let end = (start + BATCH).min(SIGNATURES);
        verify_batch(&message_refs[start..end], &signatures[start..end], &public_keys[start..end])
            .expect("the probe signs its own messages");
    }
    (single, SIGNATURES as f64 / started.elapsed().as_secs_f64())
}

fn sha256_rate() -> f64 {
    let buffer = vec![0x5a_u8; 1 << 20];
    let started = Instant::now();
    let mut last = sha256(&[]);
    for _ in 0..HASHED_BYTES / buffer.len() {
        last = sha256(&buffer);
    }
    std::hint::black_box(last);
    HASHED_BYTES as f64 / started.elapsed().as_secs_f64() / 1e9
}

fn fsync_latency(directory: &Path) -> Result<(f64, f64), CliError> {
    let probe = tempfile::Builder::new()
        .prefix(".medledger-fsync-probe-")
        .tempfile_in(directory)
        .map_err(CliError::io(directory))?;
    let mut file = probe.as_file();
    let page = [0xa5_u8; 4096];
    let mut latencies: Vec<Duration> = Vec::with_capacity(FSYNCS);
    for _ in 0..FSYNCS {
        let started = Instant::now();
        file.write_all(&page).and_then(|()| file.sync_data()).map_err(CliError::io(probe.path()))?;
        latencies.push(started.elapsed());
    }
    latencies.sort_unstable();
    Ok((super::percentile_ms(&latencies, 500), super::percentile_ms(&latencies, 990)))
}

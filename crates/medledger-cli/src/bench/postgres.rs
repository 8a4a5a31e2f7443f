//! The baseline a hospital's architect would otherwise pick, measured with the same load and
//! the same guarantees: PostgreSQL with an append-only, hash-chained audit table.
//!
//! - Ingest: the same anchor transactions as `bench ingest`, signed as they are sent by the
//!   same number of threads and batch-verified (Ed25519) by the client, then appended by one
//!   writer in transactions of `--block-txs` rows with `COPY … BINARY`. Each row carries a
//!   SHA-256 hash chain column; `UNIQUE (signer, nonce)` refuses replays;
//!   `synchronous_commit = on`, so a commit returns once the WAL is flushed (on the primary
//!   and, for the replicated server, on its synchronous standbys).
//! - FHIR: the same 2 KiB Observation, AES-256-GCM-sealed by the client (a random nonce per
//!   row, the row id as associated data), one row per `INSERT` transaction from concurrent
//!   clients, read back by primary key and opened. No HTTP, authorization or validation in
//!   front: the ceiling a PostgreSQL-backed FHIR server could reach, not such a server.
//!
//! The tables live in schema `medledger_bench`, dropped and recreated by each run.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};
use std::time::{Duration, Instant};

use medledger_crypto::{DataKey, Sha256Stream, open, seal};
use medledger_state::VerifiedTx;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::Type;
use postgres::{Client, NoTls};

use super::fhir::{FhirResult, PhaseResult};
use super::ingest::{IngestArgs, IngestResult};
use super::load::AnchorLoad;
use crate::CliError;
use crate::demo_records::{BENCH_OBSERVATION, BENCH_OBSERVATION_SUBJECT};

/// Verified batches queued between the signing threads and the writer: bounds the memory.
const QUEUED_BATCHES: usize = 64;

/// Longest a baseline run may take: every benchmark stops by itself.
const MAX_RUN_DURATION: Duration = Duration::from_secs(900);

const SCHEMA: &str = "
    DROP SCHEMA IF EXISTS medledger_bench CASCADE;
    CREATE SCHEMA medledger_bench;
    CREATE TABLE medledger_bench.ledger (
        position    bigint PRIMARY KEY,
        signer      bytea  NOT NULL,
        nonce       bigint NOT NULL,
        transaction bytea  NOT NULL,
        chain_hash  bytea  NOT NULL,
        UNIQUE (signer, nonce)
    );
    CREATE TABLE medledger_bench.observation (
        id      text  PRIMARY KEY,
        patient text  NOT NULL,
        sealed  bytea NOT NULL
    );
    CREATE INDEX ON medledger_bench.observation (patient);
";

fn connect(conninfo: &str) -> Result<Client, CliError> {
    let mut client = Client::connect(conninfo, NoTls)
        .map_err(|error| CliError::Remote(format!("PostgreSQL at {conninfo}: {error}")))?;
    client.batch_execute("SET synchronous_commit = on").map_err(pg_error)?;
    Ok(client)
}

#[allow(clippy::needless_pass_by_value, reason = "used as map_err(pg_error)")]
fn pg_error(error: postgres::Error) -> CliError {
    CliError::Remote(format!("PostgreSQL: {error}"))
}

/// Recreates the bench schema.
fn reset(conninfo: &str) -> Result<(), CliError> {
    connect(conninfo)?.batch_execute(SCHEMA).map_err(pg_error)
}

/// The server's version line, for the report.
pub(crate) fn server_version(conninfo: &str) -> Result<String, CliError> {
    let row = connect(conninfo)?.query_one("SELECT version()", &[]).map_err(pg_error)?;
    Ok(row.get(0))
}

/// Ingest: sign, batch-verify, hash-chain and append `args.txs` anchors.
pub(crate) fn ingest(conninfo: &str, args: &IngestArgs) -> Result<IngestResult, CliError> {
    reset(conninfo)?;
    let mut client = connect(conninfo)?;
    let load = AnchorLoad::new("medledger-bench", args.seed, args.signers);
    let (sender, receiver) = sync_channel::<Vec<VerifiedTx>>(QUEUED_BATCHES);
    let started = Instant::now();
    let deadline = started + MAX_RUN_DURATION;
    let written = std::thread::scope(|scope| {
        for thread in 0..args.threads {
            let (sender, load) = (sender.clone(), &load);
            scope.spawn(move || {
                let mut share =
                    (0..args.txs).filter(|&index| load.signer_of(index) % args.threads == thread).peekable();
                while share.peek().is_some() && Instant::now() < deadline {
                    let batch = share.by_ref().take(args.batch).map(|index| load.anchor(index)).collect();
                    let verified = VerifiedTx::verify_batch(batch).expect("the bench signs its own load");
                    if sender.send(verified).is_err() {
                        return;
                    }
                }
            });
        }
        drop(sender);
        // The receiver goes with the writer: if the writer fails, the signers' sends fail
        // too and they stop, rather than wait on a full queue.
        append_chain(&mut client, receiver, args.block_txs)
    })?;
    let seconds = started.elapsed().as_secs_f64();
    if written.0 != args.txs {
        return Err(CliError::Remote(format!("PostgreSQL ingest wrote {} of {} rows", written.0, args.txs)));
    }
    let result = IngestResult {
        transactions: written.0,
        blocks: written.1,
        seconds,
        tx_per_s: written.0 as f64 / seconds,
    };
    println!(
        "PostgreSQL ingest: {} rows in {} transactions in {seconds:.2} s = {:.0} tx/s",
        result.transactions, result.blocks, result.tx_per_s
    );
    Ok(result)
}

/// The writer: hash-chains verified transactions in arrival order and appends them in
/// transactions of `rows_per_commit` rows. Returns (rows, commits).
fn append_chain(
    client: &mut Client,
    receiver: Receiver<Vec<VerifiedTx>>,
    rows_per_commit: usize,
) -> Result<(u64, u64), CliError> {
    let mut chain_hash = [0u8; 32];
    let mut pending: Vec<VerifiedTx> = Vec::with_capacity(rows_per_commit);
    let (mut rows, mut commits) = (0u64, 0u64);
    let mut flush = |pending: &mut Vec<VerifiedTx>, rows: &mut u64| -> Result<(), CliError> {
        let mut transaction = client.transaction().map_err(pg_error)?;
        let sink = transaction
            .copy_in("COPY medledger_bench.ledger (position, signer, nonce, transaction, chain_hash) FROM STDIN BINARY")
            .map_err(pg_error)?;
        let mut writer =
            BinaryCopyInWriter::new(sink, &[Type::INT8, Type::BYTEA, Type::INT8, Type::BYTEA, Type::BYTEA]);
        for verified in pending.drain(..) {
            let mut hasher = Sha256Stream::new();
            hasher.update(&chain_hash);
            hasher.update(verified.encoded());
            chain_hash = hasher.finalize();
            let body = &verified.tx().body;
            let position = i64::try_from(*rows).expect("row counts fit in i64");
            let nonce = i64::try_from(body.nonce).expect("bench nonces fit in i64");
            writer
                .write(&[
                    &position,
                    &body.signer.as_bytes().as_slice(),
                    &nonce,
                    &verified.encoded(),
                    &chain_hash.as_slice(),
                ])
                .map_err(pg_error)?;
            *rows += 1;
        }
        writer.finish().map_err(pg_error)?;
        transaction.commit().map_err(pg_error)
    };
    for batch in receiver {
        for verified in batch {
            pending.push(verified);
            if pending.len() == rows_per_commit {
                flush(&mut pending, &mut rows)?;
                commits += 1;
            }
        }
    }
    if !pending.is_empty() {
        flush(&mut pending, &mut rows)?;
        commits += 1;
    }
    Ok((rows, commits))
}

/// FHIR: `creates` sealed Observation rows from `clients` connections, then `reads` reads of
/// them by primary key.
pub(crate) fn fhir(
    conninfo: &str,
    creates: usize,
    reads: usize,
    clients: usize,
) -> Result<FhirResult, CliError> {
    reset(conninfo)?;
    let body = BENCH_OBSERVATION.replace(BENCH_OBSERVATION_SUBJECT, "Patient/pt-bench");
    let body: serde_json::Value = serde_json::from_str(&body).expect("the bench observation is JSON");
    let body = serde_json::to_vec(&body).expect("serializes");
    let key = DataKey::generate();
    let ids: Vec<String> = (0..creates).map(|index| format!("obs-{index:08}")).collect();
    let create = run_clients(conninfo, clients, creates, |client, index| {
        let id = &ids[index];
        let sealed = seal(&key, &body, id.as_bytes());
        client
            .execute(
                "INSERT INTO medledger_bench.observation (id, patient, sealed) VALUES ($1, $2, $3)",
                &[id, &"pt-bench", &sealed],
            )
            .map(drop)
    })?;
    create.print("PostgreSQL create");
    let read = (creates > 0 && reads > 0)
        .then(|| {
            run_clients(conninfo, clients, reads, |client, index| {
                let id = &ids[index % ids.len()];
                let row = client
                    .query_one("SELECT sealed FROM medledger_bench.observation WHERE id = $1", &[id])?;
                let sealed: Vec<u8> = row.get(0);
                let plain = open(&key, &sealed, id.as_bytes()).expect("rows the bench sealed open");
                assert_eq!(plain.len(), body.len(), "the row read is the row written");
                Ok(())
            })
        })
        .transpose()?;
    if let Some(read) = &read {
        read.print("PostgreSQL read");
    }
    Ok(FhirResult { create: Some(create), read })
}

/// Runs `count` operations over `clients` connections (one thread each).
fn run_clients(
    conninfo: &str,
    clients: usize,
    count: usize,
    operation: impl Fn(&mut Client, usize) -> Result<(), postgres::Error> + Sync,
) -> Result<PhaseResult, CliError> {
    let connections = (0..clients).map(|_| connect(conninfo)).collect::<Result<Vec<_>, _>>()?;
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    let per_client: Vec<Result<Vec<Duration>, CliError>> = std::thread::scope(|scope| {
        let workers: Vec<_> = connections
            .into_iter()
            .map(|mut connection| {
                let (next, operation) = (&next, &operation);
                scope.spawn(move || {
                    let mut latencies = Vec::new();
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        if index >= count || started.elapsed() > MAX_RUN_DURATION {
                            return Ok(latencies);
                        }
                        let sent = Instant::now();
                        operation(&mut connection, index).map_err(pg_error)?;
                        latencies.push(sent.elapsed());
                    }
                })
            })
            .collect();
        workers.into_iter().map(|worker| worker.join().expect("a baseline client panicked")).collect()
    });
    let elapsed = started.elapsed();
    let mut latencies = Vec::with_capacity(count);
    for result in per_client {
        latencies.extend(result?);
    }
    Ok(PhaseResult::of(latencies, elapsed))
}

//! `medledger bench fhir`: creates and reads of a 2 KiB Observation through a running node's
//! FHIR API, over HTTP with a bearer session, from concurrent clients: throughput and
//! latency percentiles. Run against a `medledger dev` node for one organisation's own
//! records, or against another organisation's node (`medledger dev --nodes 4`) for reads
//! that cross organisations.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::Value;

use crate::client::Client;
use crate::demo_records::{BENCH_OBSERVATION, BENCH_OBSERVATION_SUBJECT};
use crate::{Cli, CliError};

/// Most requests of each kind one run makes: every benchmark stops by itself.
const MAX_REQUESTS: usize = 1_000_000;

/// Longest one request may take before the run fails.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Args)]
pub struct FhirArgs {
    /// Member key that writes (a clinician of the node's organisation).
    #[arg(long, value_name = "FILE")]
    key: std::path::PathBuf,
    /// The patient the Observations are about (`pt-…`).
    #[arg(long)]
    patient: String,
    /// Observations to create.
    #[arg(long, default_value_t = 20_000)]
    creates: usize,
    /// Reads (spread over the records created, or over --read).
    #[arg(long, default_value_t = 50_000)]
    reads: usize,
    /// Read these records (`Type/id`, repeatable) instead of creating any: with another
    /// organisation's node and a key of its organisation, this measures reads across
    /// organisations.
    #[arg(long = "read", value_name = "TYPE/ID")]
    read: Vec<String>,
    /// Node to read from, if not --node (e.g. another organisation's node).
    #[arg(long, value_name = "URL")]
    read_node: Option<String>,
    /// Key that reads, if not --key.
    #[arg(long, value_name = "FILE")]
    read_key: Option<std::path::PathBuf>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 32)]
    clients: usize,
}

/// What one phase measured.
struct Phase {
    requests: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Phase {
    fn report(&self, name: &str) {
        let rate = self.requests as f64 / self.elapsed.as_secs_f64();
        let percentile = |per_mille| super::percentile_ms(&self.latencies, per_mille);
        println!(
            "{name:<8} {:>8} requests in {:>6.2} s = {rate:>8.0}/s   p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>6.2} ms",
            self.requests,
            self.elapsed.as_secs_f64(),
            percentile(500),
            percentile(990),
            percentile(1_000),
        );
    }
}

pub fn run(cli: &Cli, args: &FhirArgs) -> Result<(), CliError> {
    if args.clients == 0 || args.creates > MAX_REQUESTS || args.reads > MAX_REQUESTS {
        return Err(CliError::Usage(format!("--clients ≥ 1, at most {MAX_REQUESTS} creates and reads")));
    }
    let url = cli.node_url()?;
    let client = Client::new(&url);
    let key = medledger_crypto::SigningKey::load(&args.key)?;
    let token = session(&client, &key)?;
    let body = BENCH_OBSERVATION.replace(BENCH_OBSERVATION_SUBJECT, &format!("Patient/{}", args.patient));
    let body: Value = serde_json::from_str(&body).expect("the bench observation is JSON");
    let body = serde_json::to_vec(&body).expect("serializes");
    println!(
        "MedLedger FHIR benchmark: {} bytes per Observation, {} clients, node {url}",
        body.len(),
        args.clients
    );
    let mut targets = args.read.clone();
    if targets.is_empty() && args.creates > 0 {
        let (phase, created) = creates(&url, &token, &body, args)?;
        phase.report("create");
        targets = created;
    }
    if targets.is_empty() || args.reads == 0 {
        return Ok(());
    }
    let read_url = args.read_node.clone().unwrap_or(url);
    let read_token = match &args.read_key {
        Some(path) => session(&Client::new(&read_url), &medledger_crypto::SigningKey::load(path)?)?,
        None if args.read_node.is_some() => session(&Client::new(&read_url), &key)?,
        None => token,
    };
    reads(&read_url, &read_token, &targets, args)?.report("read");
    Ok(())
}

fn session(client: &Client, key: &medledger_crypto::SigningKey) -> Result<String, CliError> {
    let answer: Value = client.signed(key).post_json("/v1/sessions", &serde_json::json!({}))?;
    answer["token"].as_str().map(str::to_owned).ok_or_else(|| CliError::Remote("no session token".into()))
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(REQUEST_TIMEOUT))
        .build()
        .into()
}

/// Runs `count` requests over the clients; `request(index)` makes one and answers its
/// result (a record reference for creates).
fn drive<T: Send>(
    clients: usize,
    count: usize,
    request: impl Fn(&ureq::Agent, usize) -> Result<T, CliError> + Sync,
) -> Result<(Phase, Vec<T>), CliError> {
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    let results: Vec<Result<Vec<(Duration, T)>, CliError>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..clients)
            .map(|_| {
                scope.spawn(|| {
                    let agent = agent();
                    let mut done = Vec::new();
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        if index >= count {
                            return Ok(done);
                        }
                        let sent = Instant::now();
                        let result = request(&agent, index)?;
                        done.push((sent.elapsed(), result));
                    }
                })
            })
            .collect();
        workers.into_iter().map(|worker| worker.join().expect("a bench client panicked")).collect()
    });
    let elapsed = started.elapsed();
    let mut latencies = Vec::with_capacity(count);
    let mut outputs = Vec::with_capacity(count);
    for result in results {
        for (latency, output) in result? {
            latencies.push(latency);
            outputs.push(output);
        }
    }
    latencies.sort_unstable();
    Ok((Phase { requests: count, elapsed, latencies }, outputs))
}

fn creates(url: &str, token: &str, body: &[u8], args: &FhirArgs) -> Result<(Phase, Vec<String>), CliError> {
    let endpoint = format!("{url}/fhir/Observation");
    drive(args.clients, args.creates, |agent, _| {
        let response = agent
            .post(&endpoint)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/fhir+json")
            .header("prefer", "return=minimal")
            .send(body)
            .map_err(|error| CliError::Remote(format!("create: {error}")))?;
        if response.status() != 201 {
            return Err(CliError::Remote(format!("create answered {}", response.status())));
        }
        let location = response.headers().get("location").and_then(|value| value.to_str().ok()).unwrap_or("");
        let id = location.split('/').rev().nth(2).unwrap_or_default();
        Ok(format!("Observation/{id}"))
    })
}

fn reads(url: &str, token: &str, targets: &[String], args: &FhirArgs) -> Result<Phase, CliError> {
    drive(args.clients, args.reads, |agent, index| {
        let target = &targets[index % targets.len()];
        let mut response = agent
            .get(&format!("{url}/fhir/{target}"))
            .header("authorization", format!("Bearer {token}"))
            .call()
            .map_err(|error| CliError::Remote(format!("read: {error}")))?;
        let status = response.status();
        let _body =
            response.body_mut().read_to_vec().map_err(|error| CliError::Remote(format!("read: {error}")))?;
        if status != 200 {
            return Err(CliError::Remote(format!("read of {target} answered {status}")));
        }
        Ok(())
    })
    .map(|(phase, _)| phase)
}

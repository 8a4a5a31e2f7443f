//! `medledger bench fhir`: creates and reads of a 2 KiB Observation through a node's FHIR API,
//! over HTTP with a bearer session, from concurrent clients: throughput and latency
//! percentiles. Without `--key` the bench starts a `medledger dev` node of its own (a child
//! process on a loopback port and a temporary directory) and writes as its demo physician.
//! Run against another organisation's node (`medledger dev --nodes 4`) for reads that cross
//! organisations.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Machine, progress_bar, write_report};
use crate::client::Client;
use crate::demo_records::{BENCH_OBSERVATION, BENCH_OBSERVATION_SUBJECT};
use crate::{Cli, CliError};

/// Most requests of each kind one run makes: every benchmark stops by itself.
const MAX_REQUESTS: usize = 1_000_000;

/// Longest one request may take before the run fails.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

impl FhirArgs {
    /// Against a dev node the bench starts itself, at the default sizes.
    pub(crate) fn own_node() -> Self {
        Self {
            key: None,
            patient: None,
            creates: 20_000,
            reads: 50_000,
            read: Vec::new(),
            read_node: None,
            read_key: None,
            clients: 16,
        }
    }
}

/// The bench's own dev node logs here, in its temporary directory.
const DEV_NODE_LOG: &str = "dev.log";

/// Lines of that log an error about the node quotes.
const DEV_NODE_LOG_TAIL_LINES: usize = 20;

/// Longest the bench's own dev node may take to load its demo and answer.
const DEV_NODE_START_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Clone, Debug, Args)]
pub struct FhirArgs {
    /// Member key that writes (a clinician of the --node's organisation). Without it, the
    /// bench starts its own dev node and writes as its demo physician.
    #[arg(long, value_name = "FILE", requires = "patient")]
    pub key: Option<PathBuf>,
    /// The patient the Observations are about (`pt-…`); with the bench's own node, the
    /// demo's first patient.
    #[arg(long)]
    pub patient: Option<String>,
    /// Observations to create.
    #[arg(long, default_value_t = 20_000)]
    pub creates: usize,
    /// Reads (spread over the records created, or over --read).
    #[arg(long, default_value_t = 50_000)]
    pub reads: usize,
    /// Read these records (`Type/id`, repeatable) instead of creating any: with another
    /// organisation's node and a key of its organisation, this measures reads across
    /// organisations.
    #[arg(long = "read", value_name = "TYPE/ID")]
    pub read: Vec<String>,
    /// Node to read from, if not --node (e.g. another organisation's node).
    #[arg(long, value_name = "URL")]
    pub read_node: Option<String>,
    /// Key that reads, if not --key.
    #[arg(long, value_name = "FILE")]
    pub read_key: Option<PathBuf>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
}

impl FhirArgs {
    /// These arguments as `medledger bench` flags.
    pub(crate) fn command_line(&self) -> Vec<String> {
        let mut line = super::flags([
            ("--creates", self.creates.to_string()),
            ("--reads", self.reads.to_string()),
            ("--clients", self.clients.to_string()),
        ]);
        let paths = [("--key", &self.key), ("--read-key", &self.read_key)];
        for (flag, path) in paths {
            if let Some(path) = path {
                line.extend([flag.to_owned(), path.display().to_string()]);
            }
        }
        let texts = [("--patient", &self.patient), ("--read-node", &self.read_node)];
        for (flag, text) in texts {
            if let Some(text) = text {
                line.extend([flag.to_owned(), text.clone()]);
            }
        }
        for target in &self.read {
            line.extend(["--read".to_owned(), target.clone()]);
        }
        line
    }
}

/// What one phase measured.
struct Phase {
    elapsed: Duration,
    latencies: Vec<Duration>,
}

/// A phase's throughput and latency, as reported.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) struct PhaseResult {
    pub requests: usize,
    pub per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Phase {
    fn result(self) -> PhaseResult {
        PhaseResult::of(self.latencies, self.elapsed)
    }
}

impl PhaseResult {
    /// Throughput and percentiles of `latencies`, requests made in `elapsed`.
    pub(crate) fn of(mut latencies: Vec<Duration>, elapsed: Duration) -> Self {
        latencies.sort_unstable();
        let percentile = |per_mille| super::percentile_ms(&latencies, per_mille);
        Self {
            requests: latencies.len(),
            per_s: latencies.len() as f64 / elapsed.as_secs_f64(),
            p50_ms: percentile(500),
            p99_ms: percentile(990),
            max_ms: percentile(1_000),
        }
    }

    /// One row of the printed table.
    pub(crate) fn print(&self, name: &str) {
        println!(
            "{name:<8} {:>8} requests = {:>8.0}/s   p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>6.2} ms",
            self.requests, self.per_s, self.p50_ms, self.p99_ms, self.max_ms,
        );
    }
}

/// What one FHIR run measured.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) struct FhirResult {
    pub create: Option<PhaseResult>,
    pub read: Option<PhaseResult>,
}

pub fn run(cli: &Cli, args: &FhirArgs) -> Result<FhirResult, CliError> {
    if args.clients == 0 || args.creates > MAX_REQUESTS || args.reads > MAX_REQUESTS {
        return Err(CliError::Usage(format!("--clients ≥ 1, at most {MAX_REQUESTS} creates and reads")));
    }
    match (&args.key, &args.patient) {
        (Some(key), Some(patient)) => {
            let url = cli.node_url()?;
            let key = medledger_crypto::SigningKey::load(key)?;
            measure(&url, &key, patient, args)
        }
        _ => {
            let dev = DevNode::start()?;
            let key = medledger_crypto::SigningKey::load(&dev.physician_key())?;
            let patient = dev.first_patient(&key)?;
            measure(&dev.url, &key, &patient, args)
        }
    }
}

fn measure(
    url: &str,
    key: &medledger_crypto::SigningKey,
    patient: &str,
    args: &FhirArgs,
) -> Result<FhirResult, CliError> {
    let token = session(&Client::new(url), key)?;
    let body = BENCH_OBSERVATION.replace(BENCH_OBSERVATION_SUBJECT, &format!("Patient/{patient}"));
    let body: Value = serde_json::from_str(&body).expect("the bench observation is JSON");
    let body = serde_json::to_vec(&body).expect("serializes");
    println!(
        "MedLedger FHIR benchmark: {} bytes per Observation, {} clients, node {url}",
        body.len(),
        args.clients
    );
    let mut result = FhirResult { create: None, read: None };
    let mut targets = args.read.clone();
    if targets.is_empty() && args.creates > 0 {
        let (phase, created) = creates(url, &token, &body, args)?;
        let create = phase.result();
        create.print("create");
        result.create = Some(create);
        targets = created;
        wait_until_anchored(url)?;
    }
    if !targets.is_empty() && args.reads > 0 {
        let read_url = args.read_node.clone().unwrap_or_else(|| url.to_owned());
        let read_token = match &args.read_key {
            Some(path) => session(&Client::new(&read_url), &medledger_crypto::SigningKey::load(path)?)?,
            None if args.read_node.is_some() => session(&Client::new(&read_url), key)?,
            None => token,
        };
        let read = reads(&read_url, &read_token, &targets, args)?.result();
        read.print("read");
        result.read = Some(read);
    }
    let machine = Machine::measure(&std::env::temp_dir())?;
    machine.print();
    let parameters = serde_json::json!({
        "creates": args.creates, "reads": args.reads, "clients": args.clients,
        "observation_bytes": body.len(), "read_across_organisations": args.read_node.is_some(),
    });
    write_report("fhir", 0, &parameters, &machine, &result)?;
    Ok(result)
}

/// Longest the node may take to put the created records' anchors into blocks.
const ANCHOR_TIMEOUT: Duration = Duration::from_secs(120);

/// Waits until the node's mempool is empty: a create answers once its anchor is admitted, and
/// reads measured while the node still builds blocks of those anchors would measure both.
fn wait_until_anchored(url: &str) -> Result<(), CliError> {
    let client = Client::new(url);
    let deadline = Instant::now() + ANCHOR_TIMEOUT;
    loop {
        let status: Value = client.get_json("/v1/status")?;
        if status["mempool_size"].as_u64() == Some(0) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(CliError::Remote(format!(
                "the created records were not anchored within {ANCHOR_TIMEOUT:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A `medledger dev` node the bench started (this same binary, as a child process) on a
/// loopback port and a temporary directory; killed and removed when dropped.
struct DevNode {
    child: Child,
    url: String,
    directory: tempfile::TempDir,
}

impl DevNode {
    fn start() -> Result<Self, CliError> {
        let directory = tempfile::Builder::new()
            .prefix("medledger-bench-fhir-")
            .tempdir()
            .map_err(CliError::io("temporary directory"))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(CliError::io("a free loopback port"))?
            .port();
        let executable = std::env::current_exe().map_err(CliError::io("the medledger executable"))?;
        let log_path = directory.path().join(DEV_NODE_LOG);
        let log = std::fs::File::create(&log_path).map_err(CliError::io(&log_path))?;
        let child = Command::new(executable)
            .arg("--data-dir")
            .arg(directory.path().join("chain"))
            .args(["dev", "--listen", &format!("127.0.0.1:{port}"), "--block-interval-ms", "20"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(CliError::io("medledger dev"))?;
        let mut node = Self { child, url: format!("http://127.0.0.1:{port}"), directory };
        node.wait_until_serving()?;
        Ok(node)
    }

    /// Waits until the node answers; fails at once, with the end of its log, if it exits.
    fn wait_until_serving(&mut self) -> Result<(), CliError> {
        let agent: ureq::Agent =
            ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(2))).build().into();
        let deadline = Instant::now() + DEV_NODE_START_TIMEOUT;
        while Instant::now() < deadline {
            if agent.get(&format!("{}/v1/status", self.url)).call().is_ok() {
                return Ok(());
            }
            if let Ok(Some(exit)) = self.child.try_wait() {
                return Err(CliError::Remote(format!(
                    "the bench's dev node exited ({exit}): {}",
                    self.log_tail()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(CliError::Remote(format!(
            "the bench's dev node did not answer within {DEV_NODE_START_TIMEOUT:?}: {}",
            self.log_tail()
        )))
    }

    /// The last lines the node logged.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.directory.path().join(DEV_NODE_LOG)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(DEV_NODE_LOG_TAIL_LINES)..].join("\n")
    }

    /// The demo physician of the first organisation (a clinician at the node's hospital).
    fn physician_key(&self) -> PathBuf {
        crate::init::Layout::of(&self.directory.path().join("chain"))
            .keys_dir
            .join("st-mary-hospital")
            .join("dr-ana-ruiz.pem")
    }

    /// The first patient the demo registered.
    fn first_patient(&self, key: &medledger_crypto::SigningKey) -> Result<String, CliError> {
        let bundle: Value = Client::new(&self.url).signed(key).get_json("/fhir/Patient?_count=1")?;
        bundle["entry"][0]["resource"]["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| CliError::Remote("the bench's dev node lists no patient".into()))
    }
}

impl Drop for DevNode {
    fn drop(&mut self) {
        // A throw-away node in a directory removed next: nothing to shut down cleanly.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
    let done_count = AtomicU64::new(0);
    let progress = progress_bar("requests", count as u64);
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
                        progress.set_position(done_count.fetch_add(1, Ordering::Relaxed) + 1);
                    }
                })
            })
            .collect();
        workers.into_iter().map(|worker| worker.join().expect("a bench client panicked")).collect()
    });
    let elapsed = started.elapsed();
    progress.finish_and_clear();
    let mut latencies = Vec::with_capacity(count);
    let mut outputs = Vec::with_capacity(count);
    for result in results {
        for (latency, output) in result? {
            latencies.push(latency);
            outputs.push(output);
        }
    }
    latencies.sort_unstable();
    Ok((Phase { elapsed, latencies }, outputs))
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

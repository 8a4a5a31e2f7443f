//! Shared helpers for the end-to-end tests: real `medledger` processes on loopback.

#![allow(dead_code, reason = "each test binary uses a different subset of the helpers")]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use medledger_crypto::SigningKey;
use serde_json::Value;

/// Longest a node may take to start listening.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Longest a test waits for something another process brings about: a block reaching a node,
/// a peer connecting, a transaction being committed. An upper bound only, generous because a
/// loaded 2-core CI machine runs these processes many times slower than a quiet one.
pub const CONDITION_TIMEOUT: Duration = Duration::from_secs(60);

/// How often a condition is polled: rare enough not to load the nodes being waited on.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The `medledger` binary under test.
pub fn medledger() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_medledger"));
    command.env("MEDLEDGER_LOG", "warn").env_remove("MEDLEDGER_NODE");
    command
}

/// Runs `medledger` with `args` to completion.
pub fn run(args: &[&str]) -> Output {
    medledger().args(args).stdin(Stdio::null()).output().expect("running medledger")
}

/// A child process whose stdout lines arrive on a channel; killed when dropped.
pub struct Process {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
}

impl Process {
    /// Starts `medledger` with `args`, reading stdout in the background.
    pub fn spawn(args: &[&str]) -> Self {
        Self::spawn_with_env(args, &[])
    }

    /// Starts `medledger` with `args` and these environment variables set.
    pub fn spawn_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = medledger();
        command.args(args).envs(env.iter().copied());
        Self::spawn_command(command)
    }

    /// Starts `command` (stdin closed, stderr inherited), reading its stdout in the background.
    pub fn spawn_command(mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning the process");
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// The next stdout line that satisfies `accept`, within `timeout`.
    pub fn wait_for_line(&self, timeout: Duration, accept: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if accept(&line) => return Some(line),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    }

    /// The stdout lines not read yet, up to the end of the stream, for a process that has
    /// exited (its pipe is then closed and the reader thread finishes within `timeout`).
    pub fn remaining_lines(&self, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut lines = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => lines.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => return lines,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("stdout of an exited process did not close within {timeout:?}")
                }
            }
        }
    }

    /// Asks the process to stop (SIGTERM) and waits for it.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let status =
            Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("kill");
        assert!(status.success(), "signalling the process");
        self.child.wait().expect("reaping the process")
    }

    /// Sends SIGTERM and asserts that `what` exits with success, naming the status if not.
    pub fn stop_cleanly(&mut self, what: &str) {
        let status = self.terminate();
        assert!(status.success(), "{what} stops cleanly on SIGTERM, but exited with {status}");
    }

    /// Kills the process with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        let _already_exited = self.child.kill();
        let _reaped = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `medledger dev` node on a loopback port chosen by the OS.
pub struct DevNode {
    pub process: Process,
    pub url: String,
    pub data_dir: tempfile::TempDir,
}

impl DevNode {
    /// Starts a dev chain (demo identities and transactions) in a fresh temporary directory.
    pub fn start() -> Self {
        Self::start_in(tempfile::tempdir().expect("temp dir"))
    }

    /// Starts the dev chain of `data_dir` (a new one if it is empty).
    pub fn start_in(data_dir: tempfile::TempDir) -> Self {
        let dir = data_dir.path().to_str().expect("utf-8 temp path").to_owned();
        let process = Process::spawn(&[
            "dev",
            "--data-dir",
            &dir,
            "--listen",
            "127.0.0.1:0",
            "--block-interval-ms",
            "20",
        ]);
        let line = process
            .wait_for_line(STARTUP_TIMEOUT, |line| line.contains("listening on http://"))
            .expect("the dev node starts listening");
        let url = line.rsplit(' ').next().expect("the line ends with the URL").to_owned();
        Self { process, url, data_dir }
    }

    /// Path of a demo member's key file: `keys/<organisation>/<member>.pem`.
    pub fn key_path(&self, org: &str, member: &str) -> PathBuf {
        self.data_dir.path().join("keys").join(org).join(format!("{member}.pem"))
    }

    /// A demo member's key.
    pub fn key(&self, org: &str, member: &str) -> SigningKey {
        SigningKey::load(&self.key_path(org, member)).expect("demo key")
    }

    /// A demo key file path as a string.
    pub fn key_arg(&self, org: &str, member: &str) -> String {
        path_str(&self.key_path(org, member)).to_owned()
    }

    /// Data directory path as a string.
    pub fn dir(&self) -> &str {
        self.data_dir.path().to_str().expect("utf-8 temp path")
    }
}

/// An HTTP response as the tests see it.
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub headers: ureq::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!("body is not JSON ({error}): {}", String::from_utf8_lossy(&self.body))
        })
    }

    /// A response header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// Asserts a FHIR OperationOutcome with this status and issue code, and returns it.
    pub fn assert_outcome(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status, status, "status; body: {}", String::from_utf8_lossy(&self.body));
        assert!(self.content_type.starts_with("application/fhir+json"), "content type {}", self.content_type);
        let outcome = self.json();
        assert_eq!(outcome["resourceType"], "OperationOutcome", "{outcome}");
        assert_eq!(outcome["issue"][0]["code"], code, "{outcome}");
        let diagnostics = outcome["issue"][0]["diagnostics"].as_str().unwrap_or_default();
        assert!(!diagnostics.is_empty(), "the outcome says what was wrong: {outcome}");
        outcome
    }

    /// Asserts an RFC 9457 problem with this status and problem slug, and returns it.
    pub fn assert_problem(&self, status: u16, slug: &str) -> Value {
        assert_eq!(self.status, status, "status; body: {}", String::from_utf8_lossy(&self.body));
        assert_eq!(self.content_type, "application/problem+json");
        let problem = self.json();
        assert_eq!(problem["type"], format!("urn:medledger:problem:{slug}"), "problem: {problem}");
        assert_eq!(problem["status"], status);
        assert!(problem["detail"].as_str().is_some_and(|detail| !detail.is_empty()), "problem has a detail");
        problem
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn reply(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let (parts, mut body) = response.expect("the node answers").into_parts();
    let content_type =
        parts.headers.get("content-type").and_then(|value| value.to_str().ok()).unwrap_or("").to_owned();
    let body = body.with_config().limit(64 << 20).read_to_vec().expect("reading the body");
    Reply { status: parts.status.as_u16(), content_type, headers: parts.headers, body }
}

/// GET `url`.
pub fn get(url: &str) -> Reply {
    reply(agent().get(url).call())
}

/// GET `url` asking for canonical bytes.
pub fn get_bytes(url: &str) -> Reply {
    reply(agent().get(url).header("accept", "application/octet-stream").call())
}

/// POST `body` with a content type.
pub fn post(url: &str, content_type: &str, body: &[u8]) -> Reply {
    reply(agent().post(url).header("content-type", content_type).send(body))
}

/// POST a JSON value.
pub fn post_json(url: &str, value: &Value) -> Reply {
    post(url, "application/json", value.to_string().as_bytes())
}

/// Status fields that must not move when a request is rejected.
pub fn ledger_fingerprint(url: &str) -> (u64, String, u64) {
    let status = get(&format!("{url}/v1/status")).json();
    (
        status["height"].as_u64().expect("height"),
        status["state_root"].as_str().expect("state root").to_owned(),
        status["mempool_size"].as_u64().expect("mempool size"),
    )
}

/// A path as `&str`.
pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// Sends a request built by the test.
pub fn send(request: ureq::http::Request<Vec<u8>>) -> Reply {
    reply(agent().run(request))
}

/// Polls `probe` until it answers `Ok`, for at most `timeout`, and returns its answer. `Err`
/// describes what was seen instead; on timeout the panic names `what` was awaited and the
/// last thing seen, so a failure says which condition never held.
pub fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        let seen = match probe() {
            Ok(value) => return value,
            Err(seen) => seen,
        };
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting until {what}; last seen: {seen}"
        );
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// The finalized height of the node at `url`, from `/v1/status`.
pub fn finalized_height(url: &str) -> u64 {
    let status = get(&format!("{url}/v1/status")).json();
    status["finalized_height"]
        .as_u64()
        .unwrap_or_else(|| panic!("{url}/v1/status has no finalized height: {status}"))
}

/// Waits until the node at `url` holds the final block at `height` (and so every block and
/// state change up to it); returns the height it reached.
pub fn wait_until_height(url: &str, height: u64) -> u64 {
    wait_for(&format!("{url} reaches finalized height {height}"), CONDITION_TIMEOUT, || {
        let reached = finalized_height(url);
        if reached >= height { Ok(reached) } else { Err(format!("finalized height {reached}")) }
    })
}

/// Where the node at `url` has transaction `tx_id` in a block: its height and its receipt
/// (applied or rejected), or `None` while it is pending there or unknown to it. The one place
/// that reads the shape of `GET /v1/txs/{id}`.
pub fn committed(url: &str, tx_id: &str) -> Option<(u64, Value)> {
    let reply = get(&format!("{url}/v1/txs/{tx_id}"));
    assert_eq!(reply.status, 200, "{url}/v1/txs/{tx_id}: {}", String::from_utf8_lossy(&reply.body));
    let view = reply.json();
    if !matches!(view["status"].as_str(), Some("committed" | "rejected")) {
        return None;
    }
    let height =
        view["height"].as_u64().unwrap_or_else(|| panic!("a committed transaction's height: {view}"));
    Some((height, view["receipt"].clone()))
}

/// The height of the block in which the node at `url` committed `tx_id`, if it did.
pub fn committed_height(url: &str, tx_id: &str) -> Option<u64> {
    committed(url, tx_id).map(|(height, _)| height)
}

/// Waits until the node at `url` committed `tx_id`; returns its block height and receipt.
pub fn wait_until_committed(url: &str, tx_id: &str) -> (u64, Value) {
    wait_for(&format!("{url} commits transaction {tx_id}"), CONDITION_TIMEOUT, || {
        committed(url, tx_id).ok_or_else(|| {
            let reply = get(&format!("{url}/v1/txs/{tx_id}"));
            format!("{}: {}", reply.status, String::from_utf8_lossy(&reply.body))
        })
    })
}

//! A small blocking HTTP client for a node's API (`--node URL`).

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::CliError;

/// Longest any single API call may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Largest response body read (a maximal block).
const MAX_RESPONSE_BYTES: u64 = medledger_types::limits::MAX_BLOCK_BYTES as u64 + 1024 * 1024;

/// Talks to one node.
pub struct Client {
    agent: ureq::Agent,
    base: String,
}

impl Client {
    /// A client for the node at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .build()
            .into();
        Self { agent, base: base.trim_end_matches('/').to_owned() }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET a JSON document.
    pub fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        let response = self.agent.get(&self.url(path)).call();
        self.json(&self.success_body(response)?)
    }

    /// GET canonical bytes.
    pub fn get_bytes(&self, path: &str) -> Result<Vec<u8>, CliError> {
        let response = self.agent.get(&self.url(path)).header("accept", "application/octet-stream").call();
        self.success_body(response)
    }

    /// POST JSON, read JSON.
    pub fn post_json<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T, CliError> {
        let response = self.agent.post(&self.url(path)).send_json(body);
        self.json(&self.success_body(response)?)
    }

    /// The body of a successful response; an error response becomes its problem's detail.
    fn success_body(
        &self,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Vec<u8>, CliError> {
        let (parts, mut body) = response.map_err(|error| self.unreachable(&error))?.into_parts();
        let bytes = body
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_vec()
            .map_err(|error| self.unreachable(&error))?;
        if parts.status.is_success() { Ok(bytes) } else { Err(problem_error(parts.status.as_u16(), &bytes)) }
    }

    fn json<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CliError> {
        serde_json::from_slice(bytes).map_err(|error| {
            CliError::Remote(format!("unexpected response from the node at {}: {error}", self.base))
        })
    }

    fn unreachable(&self, error: &ureq::Error) -> CliError {
        CliError::Remote(format!("cannot reach the node at {}: {error}", self.base))
    }
}

/// Turns an error response (RFC 9457 problem) into a CLI error that shows its detail.
fn problem_error(status: u16, body: &[u8]) -> CliError {
    let detail = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|problem| problem.get("detail").and_then(|detail| detail.as_str()).map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(200).collect());
    CliError::Remote(format!("the node answered {status}: {detail}"))
}

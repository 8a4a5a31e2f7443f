//! A small blocking HTTP client for a node's API (`--node URL`).

use std::time::Duration;

use medledger_crypto::SigningKey;
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

    /// A view of this client that signs every request with a member key (RFC 9421), for the
    /// endpoints that serve members only.
    pub fn signed<'k>(&self, key: &'k SigningKey) -> SignedClient<'_, 'k> {
        SignedClient { client: self, key }
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

/// Signs each request with a member key; see `docs/api-auth.md`.
pub struct SignedClient<'c, 'k> {
    client: &'c Client,
    key: &'k SigningKey,
}

impl SignedClient<'_, '_> {
    /// GET a JSON document from an authenticated endpoint.
    pub fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        let mut request = self.client.agent.get(&self.client.url(path));
        for (name, value) in self.sign("GET", path, b"")? {
            request = request.header(name, value);
        }
        self.client.json(&self.client.success_body(request.call())?)
    }

    /// PUT JSON to an authenticated endpoint; the answer's body is ignored.
    pub fn put_json(&self, path: &str, body: &impl Serialize) -> Result<(), CliError> {
        let bytes = serde_json::to_vec(body).expect("JSON values always serialise");
        let mut request =
            self.client.agent.put(&self.client.url(path)).header("content-type", "application/json");
        for (name, value) in self.sign("PUT", path, &bytes)? {
            request = request.header(name, value);
        }
        self.client.success_body(request.send(&bytes[..]))?;
        Ok(())
    }

    /// POST JSON to an authenticated endpoint, read JSON.
    pub fn post_json<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T, CliError> {
        let bytes = serde_json::to_vec(body).expect("JSON values always serialise");
        let answer = self.send("POST", path, Some(("application/json", &bytes)), &[])?;
        self.client.json(&answer)
    }

    /// Sends a signed request with an optional body (media type, bytes) and extra headers;
    /// answers the body of a successful response.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, &[u8])>,
        extra_headers: &[(&str, String)],
    ) -> Result<Vec<u8>, CliError> {
        let bytes = body.map_or(&[][..], |(_, bytes)| bytes);
        let mut headers = self.sign(method, path, bytes)?;
        headers.extend(extra_headers.iter().map(|(name, value)| (*name, value.clone())));
        if let Some((media_type, _)) = body {
            headers.push(("content-type", media_type.to_owned()));
        }
        let url = self.client.url(path);
        let agent = &self.client.agent;
        let response = match method {
            "GET" => {
                let request = headers
                    .into_iter()
                    .fold(agent.get(&url), |request, (name, value)| request.header(name, value));
                request.call()
            }
            "POST" | "PUT" => {
                let request = if method == "POST" { agent.post(&url) } else { agent.put(&url) };
                let request =
                    headers.into_iter().fold(request, |request, (name, value)| request.header(name, value));
                request.send(bytes)
            }
            other => return Err(CliError::Usage(format!("unsupported method {other}"))),
        };
        self.client.success_body(response)
    }

    /// The signature headers for a request to `path_and_query`.
    /// `Host` is among them, set to exactly the signed authority: left to the HTTP library, a
    /// default port could be dropped and the signature would no longer match.
    fn sign(
        &self,
        method: &str,
        path_and_query: &str,
        body: &[u8],
    ) -> Result<Vec<(&'static str, String)>, CliError> {
        let uri: ureq::http::Uri = self
            .client
            .url(path_and_query)
            .parse()
            .map_err(|error| CliError::Usage(format!("bad node URL {}: {error}", self.client.base)))?;
        let authority = uri
            .authority()
            .map(|authority| authority.as_str().to_owned())
            .ok_or_else(|| CliError::Usage(format!("node URL {} has no host", self.client.base)))?;
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        let request = medledger_httpsig::RequestParts {
            method,
            authority: &authority,
            path: uri.path(),
            query: uri.query(),
            content_digest: None,
            body,
            signature_input: None,
            signature: None,
        };
        let signed =
            medledger_httpsig::sign_request(self.key, &request, created, &medledger_httpsig::new_nonce());
        let mut headers = vec![
            ("host", authority),
            ("signature-input", signed.signature_input),
            ("signature", signed.signature),
        ];
        if let Some(digest) = signed.content_digest {
            headers.push(("content-digest", digest));
        }
        Ok(headers)
    }
}

/// Turns an error response (an RFC 9457 problem, or a FHIR OperationOutcome) into a CLI error
/// that shows what the node said.
fn problem_error(status: u16, body: &[u8]) -> CliError {
    let detail = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|answer| {
            let detail = answer.get("detail").or_else(|| answer.pointer("/issue/0/diagnostics"));
            detail.and_then(|detail| detail.as_str()).map(str::to_owned)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(200).collect());
    CliError::Remote(format!("the node answered {status}: {detail}"))
}

//! Authenticated reads: requests signed by an active member key (RFC 9421 HTTP message
//! signatures, see `docs/api-auth.md`), checked for freshness and replay.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use medledger_crypto::PublicKey;
use medledger_httpsig::{AuthError, ReplayCache, RequestParts, verify_request};
use medledger_node::Node;
use medledger_state::{Account, Organization};
use serde::de::DeserializeOwned;

use crate::problem::Problem;

/// Largest body an authenticated request may carry (directory updates and the like, never
/// documents).
pub const MAX_AUTHENTICATED_BODY_BYTES: usize = 64 * 1024;

/// What the API remembers between authenticated requests: the nonces it has seen.
#[derive(Debug, Default)]
pub struct AuthState {
    replay: Mutex<ReplayCache>,
}

/// A request signed by an active member key of an active organisation, with its body.
#[derive(Debug)]
pub struct Authenticated {
    /// The member key that signed the request.
    pub key: PublicKey,
    /// Its account.
    pub account: Account,
    /// Its organisation.
    pub organization: Organization,
    body: Bytes,
}

impl Authenticated {
    /// The signed body, parsed strictly as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Problem> {
        serde_json::from_slice(&self.body)
            .map_err(|error| Problem::bad_request("bad-json", error.to_string()))
    }
}

impl FromRequest<Arc<Node>> for Authenticated {
    type Rejection = Problem;

    async fn from_request(request: Request, node: &Arc<Node>) -> Result<Self, Problem> {
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(body, MAX_AUTHENTICATED_BODY_BYTES).await.map_err(|_| {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                "Body too large",
                format!("authenticated request bodies are at most {MAX_AUTHENTICATED_BODY_BYTES} bytes"),
            )
        })?;
        let state = parts.extensions.get::<Arc<AuthState>>().expect("the router installs the auth state");
        let headers = &parts.headers;
        let request_parts = RequestParts {
            method: parts.method.as_str(),
            authority: header_text(headers, header::HOST.as_str())?.unwrap_or_default(),
            path: parts.uri.path(),
            query: parts.uri.query(),
            content_digest: header_text(headers, "content-digest")?,
            body: &body,
            signature_input: header_text(headers, "signature-input")?,
            signature: header_text(headers, "signature")?,
        };
        let now = unix_seconds();
        let verified = verify_request(&request_parts, now).map_err(|error| auth_problem(&error))?;
        let (account, organization) =
            node.with_chain(|chain| chain.active_member(&verified.key)).ok_or_else(|| {
                Problem::forbidden(
                    "not-an-active-member",
                    "the signing key is not an active member key of an active organisation",
                )
            })?;
        // Only members reach the replay cache, so strangers cannot fill it.
        state
            .replay
            .lock()
            .expect("replay cache lock poisoned")
            .check_and_insert(&verified.key, &verified.nonce, verified.created, now)
            .map_err(|error| auth_problem(&error))?;
        Ok(Self { key: verified.key, account, organization, body })
    }
}

fn auth_problem(error: &AuthError) -> Problem {
    let status = StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::UNAUTHORIZED);
    let title = if status == StatusCode::UNAUTHORIZED { "Unauthorized" } else { "Try again later" };
    Problem::new(status, error.slug(), title, error.to_string())
}

/// The one value of a header, if present. A header sent twice is refused: the signature covers
/// one value, and a second could smuggle a different one past a proxy.
fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, Problem> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(Problem::unauthorized(
            "repeated-header",
            format!("the {name} header appears more than once"),
        ));
    }
    value
        .to_str()
        .map(Some)
        .map_err(|_| Problem::bad_request("bad-header", format!("{name} is not visible ASCII")))
}

fn unix_seconds() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs())
}

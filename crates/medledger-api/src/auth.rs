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
    /// Bearer sessions opened with a signed request.
    pub sessions: Mutex<Sessions>,
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
        let body = read_body(body, MAX_AUTHENTICATED_BODY_BYTES).await?;
        let state = parts.extensions.get::<Arc<AuthState>>().expect("the router installs the auth state");
        let member = verify_member(&parts, &body, node, state)?;
        Ok(Self { key: member.key, account: member.account, organization: member.organization, body })
    }
}

/// An authenticated member, as the chain knows it now.
#[derive(Debug, Clone)]
pub struct Member {
    /// The member's key.
    pub key: PublicKey,
    /// Its account.
    pub account: Account,
    /// Its organisation.
    pub organization: Organization,
}

/// Reads a body of at most `max_bytes`.
pub(crate) async fn read_body(body: axum::body::Body, max_bytes: usize) -> Result<Bytes, Problem> {
    axum::body::to_bytes(body, max_bytes).await.map_err(|_| {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "Body too large",
            format!("this request's body may be at most {max_bytes} bytes"),
        )
    })
}

/// Checks an RFC 9421 signature by an active member key, then the nonce against replay.
pub(crate) fn verify_signed(
    parts: &axum::http::request::Parts,
    body: &[u8],
    node: &Node,
    state: &AuthState,
) -> Result<Member, Problem> {
    let headers = &parts.headers;
    let request_parts = RequestParts {
        method: parts.method.as_str(),
        authority: header_text(headers, header::HOST.as_str())?.unwrap_or_default(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        content_digest: header_text(headers, "content-digest")?,
        body,
        signature_input: header_text(headers, "signature-input")?,
        signature: header_text(headers, "signature")?,
    };
    let now = unix_seconds();
    let verified = verify_request(&request_parts, now).map_err(|error| auth_problem(&error))?;
    let member = active_member(node, verified.key)?;
    // Only members reach the replay cache, so strangers cannot fill it.
    state
        .replay
        .lock()
        .expect("replay cache lock poisoned")
        .check_and_insert(&verified.key, &verified.nonce, verified.created, now)
        .map_err(|error| auth_problem(&error))?;
    Ok(member)
}

/// A request authenticated either by signature or by a session's bearer token.
pub(crate) fn verify_member(
    parts: &axum::http::request::Parts,
    body: &[u8],
    node: &Node,
    state: &AuthState,
) -> Result<Member, Problem> {
    let bearer = header_text(&parts.headers, header::AUTHORIZATION.as_str())?
        .and_then(|value| value.strip_prefix("Bearer "));
    match bearer {
        Some(token) => {
            let key = state.sessions.lock().expect("session lock poisoned").key_of(token, unix_seconds())?;
            active_member(node, key)
        }
        None => verify_signed(parts, body, node, state),
    }
}

fn active_member(node: &Node, key: PublicKey) -> Result<Member, Problem> {
    let (account, organization) = node.with_chain(|chain| chain.active_member(&key)).ok_or_else(|| {
        Problem::forbidden(
            "not-an-active-member",
            "the signing key is not an active member key of an active organisation",
        )
    })?;
    Ok(Member { key, account, organization })
}

/// How long a session token lasts: a clinical shift's worth, not longer.
pub const SESSION_TTL_SECONDS: u64 = 8 * 60 * 60;

/// Most live sessions a node keeps; the oldest goes first when full.
pub const MAX_SESSIONS: usize = 10_000;

/// Bearer sessions: random tokens, kept only as their SHA-256, each bound to one member key.
#[derive(Debug, Default)]
pub struct Sessions {
    by_token: std::collections::HashMap<[u8; 32], (PublicKey, u64)>,
    order: std::collections::VecDeque<[u8; 32]>,
}

impl Sessions {
    /// Opens a session for `key`; returns the token and its expiry (Unix seconds).
    pub fn open(&mut self, key: PublicKey, now: u64) -> (String, u64) {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).expect("the operating system provides randomness");
        let token = hex::encode(secret);
        let digest = medledger_crypto::sha256(token.as_bytes());
        if self.order.len() >= MAX_SESSIONS
            && let Some(oldest) = self.order.pop_front()
        {
            self.by_token.remove(&oldest);
        }
        let expires = now + SESSION_TTL_SECONDS;
        self.by_token.insert(*digest.as_bytes(), (key, expires));
        self.order.push_back(*digest.as_bytes());
        (token, expires)
    }

    fn key_of(&self, token: &str, now: u64) -> Result<PublicKey, Problem> {
        let digest = medledger_crypto::sha256(token.as_bytes());
        match self.by_token.get(digest.as_bytes()) {
            Some((key, expires)) if *expires > now => Ok(*key),
            Some(_) => {
                Err(Problem::unauthorized("session-expired", "the session has expired; open a new one"))
            }
            None => Err(Problem::unauthorized(
                "unknown-session",
                "the bearer token is not a session of this node",
            )),
        }
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

/// Seconds since the Unix epoch, by the node's clock.
pub(crate) fn unix_seconds() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs())
}

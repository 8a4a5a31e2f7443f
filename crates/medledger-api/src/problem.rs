//! RFC 9457 problem details: every error the API returns.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use medledger_node::SubmitError;
use medledger_store::StoreError;
use serde::Serialize;

/// Media type of problem bodies.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem: what went wrong, in a body a client can act on. Never carries personal data.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// A URN naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short, fixed summary of the kind.
    pub title: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// What exactly was wrong with this request.
    pub detail: String,
}

impl Problem {
    /// A problem of kind `slug` with an HTTP status.
    pub fn new(status: StatusCode, slug: &str, title: &'static str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("urn:medledger:problem:{slug}"),
            title,
            status: status.as_u16(),
            detail: detail.into(),
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(slug: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, slug, "Bad request", detail)
    }

    /// 401: the request is not (validly) signed by a member key.
    pub fn unauthorized(slug: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, slug, "Unauthorized", detail)
    }

    /// 422: well-formed, but not something this endpoint will do.
    pub fn unprocessable(slug: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, slug, "Unprocessable request", detail)
    }

    /// 403: a valid signature by a key that may not do this.
    pub fn forbidden(slug: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, slug, "Forbidden", detail)
    }

    /// 404: nothing there.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    /// 500: the node failed. Logged; the body does not leak internals.
    pub fn internal(error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, "internal error serving a request");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the node failed to serve this request",
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(&self)).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<StoreError> for Problem {
    fn from(error: StoreError) -> Self {
        Problem::internal(&error)
    }
}

impl From<SubmitError> for Problem {
    fn from(error: SubmitError) -> Self {
        let detail = error.to_string();
        let (status, slug, title) = match error {
            SubmitError::BadSignature => (StatusCode::UNPROCESSABLE_ENTITY, "bad-signature", "Bad signature"),
            SubmitError::WrongChain { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "wrong-chain", "Wrong chain")
            }
            SubmitError::UnknownSigner(_) => (StatusCode::FORBIDDEN, "unknown-signer", "Unknown signer"),
            SubmitError::InactiveSigner(_) => (StatusCode::FORBIDDEN, "inactive-signer", "Inactive signer"),
            SubmitError::NonceReplayed { .. } => {
                (StatusCode::CONFLICT, "nonce-replayed", "Nonce already used")
            }
            SubmitError::NonceTooFarAhead { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "nonce-too-far-ahead", "Nonce too far ahead")
            }
            SubmitError::AlreadyPending => (StatusCode::CONFLICT, "already-pending", "Already pending"),
            SubmitError::AlreadyCommitted { .. } => {
                (StatusCode::CONFLICT, "already-committed", "Already committed")
            }
            SubmitError::MempoolFull { .. } | SubmitError::EarlierRefused => {
                (StatusCode::SERVICE_UNAVAILABLE, "mempool-full", "Mempool full")
            }
            SubmitError::Store(message) => return Problem::internal(&message),
        };
        Problem::new(status, slug, title, detail)
    }
}

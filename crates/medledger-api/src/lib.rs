//! MedLedger's HTTP API.
//!
//! Versioned under `/v1`, with the FHIR R4 API under `/fhir` (errors there are FHIR
//! `OperationOutcome`s); every error is an RFC 9457 `application/problem+json` body with a
//! 4xx status that says what was wrong (a 5xx means the node itself failed). Request bodies
//! are bounded; JSON is parsed strictly (unknown fields are errors).

mod auth;
mod fhir;
mod identity;
mod problem;
mod routes;

use std::future::Future;
use std::sync::Arc;

use medledger_node::Node;
use medledger_records::Records;
use tokio::net::TcpListener;

pub use problem::{PROBLEM_JSON, Problem};
pub use routes::{MAX_BATCH_TXS, StateProofView, router};

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    node: Arc<Node>,
    records: Option<Records>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(node, records)).with_graceful_shutdown(shutdown).await
}

//! Routes and handlers.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use medledger_crypto::merkle::{CompleteSubtrees, ConsistencyProof, InclusionProof};
use medledger_crypto::{Digest, PublicKey};
use medledger_node::{Node, TxStatus};
use medledger_records::Records;
use medledger_types::limits::MAX_TX_BYTES;
use medledger_types::{Block, Decode, Encode, Outcome, Receipt, Transaction, TxId};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::{AuthState, MAX_AUTHENTICATED_BODY_BYTES};
use crate::identity;
use crate::problem::Problem;

/// Most transactions in one batch submission.
pub const MAX_BATCH_TXS: usize = 1_000;

/// Largest single-transaction request body: the JSON form of a maximal transaction is about
/// twice its canonical size (hex), plus field names.
const MAX_TX_REQUEST_BYTES: usize = 2 * MAX_TX_BYTES + 4 * 1024;

/// Largest batch request body. Batches carry ordinary (small) transactions; 8 MiB is about
/// 20,000 of them, well above [`MAX_BATCH_TXS`].
const MAX_BATCH_REQUEST_BYTES: usize = 8 * 1024 * 1024;

/// Longest a client may ask `?wait=true` to wait for its transaction to be in a block: a
/// request must not hold a connection for long (a client that wants longer asks again).
const MAX_WAIT_MS: u64 = 30_000;

/// How long `?wait=true` waits when the client names no `timeout_ms`.
const DEFAULT_WAIT_MS: u64 = 10_000;

const OCTET_STREAM: &str = "application/octet-stream";

type Shared = State<Arc<Node>>;
type ApiResult<T> = Result<T, Problem>;

/// The API's routes over a node; the FHIR API under `/fhir` when the node keeps records.
pub fn router(node: Arc<Node>, records: Option<Records>) -> Router {
    let metrics = Router::new()
        .route("/metrics", get(metrics))
        .with_state(Metrics { node: Arc::clone(&node), records: records.clone() });
    let fhir = crate::fhir::router(Arc::clone(&node), records);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/status", get(status))
        .route("/v1/genesis", get(genesis))
        .route("/v1/txs", post(submit_tx).layer(DefaultBodyLimit::max(MAX_TX_REQUEST_BYTES)))
        .route("/v1/txs/batch", post(submit_batch).layer(DefaultBodyLimit::max(MAX_BATCH_REQUEST_BYTES)))
        .route("/v1/txs/{id}", get(get_tx))
        .route("/v1/txs/{id}/receipt", get(get_receipt))
        .route("/v1/txs/{id}/proof", get(get_tx_proof))
        .route("/v1/blocks/{reference}", get(get_block))
        .route("/v1/blocks/{reference}/receipts", get(get_block_receipts))
        .route("/v1/proofs/consistency", get(get_consistency_proof))
        .route("/v1/state/proof", get(get_state_proof))
        .route("/v1/accounts/{public_key}", get(get_account))
        .route("/v1/orgs", get(identity::list_orgs))
        .route("/v1/orgs/{id}", get(identity::get_org))
        .route("/v1/proposals/{id}", get(identity::get_proposal))
        .route("/v1/authorization", get(identity::authorization_table))
        .route("/v1/whoami", get(identity::whoami))
        .route("/v1/sessions", post(open_session))
        .route("/v1/members", get(identity::list_members))
        .route("/v1/members/{public_key}", get(identity::get_member))
        .route(
            "/v1/members/{public_key}/display-name",
            put(identity::set_display_name).layer(DefaultBodyLimit::max(MAX_AUTHENTICATED_BODY_BYTES)),
        )
        .fallback(|| async { Problem::not_found("no such endpoint; see the API documentation") })
        .method_not_allowed_fallback(|| async {
            Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
                "this endpoint does not accept that method",
            )
        })
        .with_state(node)
        .merge(metrics)
        .nest("/fhir", fhir)
        .layer(axum::Extension(Arc::new(AuthState::default())))
}

#[derive(Clone)]
struct Metrics {
    node: Arc<Node>,
    records: Option<Records>,
}

/// Prometheus text exposition of what operators alarm on.
async fn metrics(State(metrics): State<Metrics>) -> Response {
    let status = metrics.node.status();
    let integrity_failures = metrics.records.as_ref().map_or(0, Records::tampered_count);
    let body = format!(
        "# HELP medledger_height Height of the last committed block.\n\
         # TYPE medledger_height gauge\n\
         medledger_height {}\n\
         # HELP medledger_pending_transactions Transactions waiting in the mempool.\n\
         # TYPE medledger_pending_transactions gauge\n\
         medledger_pending_transactions {}\n\
         # HELP medledger_vault_integrity_failures_total Record versions that failed their integrity check at rest since start (alarm on any).\n\
         # TYPE medledger_vault_integrity_failures_total counter\n\
         medledger_vault_integrity_failures_total {integrity_failures}\n",
        status.height,
        metrics.node.pending_count(),
    );
    ([(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"))], body).into_response()
}

async fn healthz(State(node): Shared) -> Response {
    let height = node.with_chain(medledger_state::Chain::height);
    if node.is_healthy() {
        Json(json!({ "status": "ok", "height": height })).into_response()
    } else {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unhealthy",
            "Unhealthy",
            "the store and the chain disagree",
        )
        .into_response()
    }
}

/// Opens a bearer session for the member who signed the request (for FHIR clients and `curl`,
/// which cannot sign each request).
async fn open_session(
    axum::Extension(auth): axum::Extension<Arc<crate::auth::AuthState>>,
    member: crate::auth::Authenticated,
) -> Response {
    let now = crate::auth::unix_seconds();
    let (token, expires_at) = auth.sessions.lock().expect("session lock poisoned").open(member.key, now);
    (
        StatusCode::CREATED,
        Json(json!({
            "token": token,
            "token_type": "Bearer",
            "expires_at": expires_at,
            "member": member.key,
            "organization": member.organization.id,
        })),
    )
        .into_response()
}

async fn status(State(node): Shared) -> Json<medledger_node::Status> {
    Json(node.status())
}

async fn genesis(State(node): Shared, headers: HeaderMap) -> Response {
    let genesis = node.with_chain(|chain| chain.genesis().clone());
    if wants_octet_stream(&headers) {
        return octet_stream(genesis.encode());
    }
    Json(json!({ "hash": genesis.hash(), "genesis": genesis })).into_response()
}

fn wants_octet_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains(OCTET_STREAM))
}

fn octet_stream(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static(OCTET_STREAM))], bytes).into_response()
}

/// Reads a request body, turning an oversize or broken body into a problem.
fn body_bytes(body: Result<Bytes, BytesRejection>) -> ApiResult<Bytes> {
    body.map_err(|rejection| {
        let status = rejection.status();
        let slug = if status == StatusCode::PAYLOAD_TOO_LARGE { "body-too-large" } else { "unreadable-body" };
        Problem::new(status, slug, "Unreadable body", rejection.body_text())
    })
}

fn content_type(headers: &HeaderMap) -> &str {
    headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or("")
}

/// Parses one transaction from a JSON or canonical binary body.
fn parse_tx(headers: &HeaderMap, body: &[u8]) -> ApiResult<Transaction> {
    let media_type = content_type(headers);
    if media_type.starts_with(OCTET_STREAM) {
        return Transaction::decode(body).map_err(|error| {
            Problem::bad_request("non-canonical-encoding", format!("transaction bytes: {error}"))
        });
    }
    if !media_type.starts_with("application/json") {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            "send application/json or application/octet-stream (canonical bytes)",
        ));
    }
    parse_json(body)
}

fn parse_json<T: for<'de> Deserialize<'de>>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body)
        .map_err(|error| Problem::bad_request("malformed-json", format!("request JSON: {error}")))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WaitQuery {
    #[serde(default)]
    wait: bool,
    timeout_ms: Option<u64>,
}

impl WaitQuery {
    /// How long to wait for a block, if asked to: `timeout_ms`, default 10 s, at most 30 s.
    fn timeout(&self) -> Option<Duration> {
        self.wait.then(|| Duration::from_millis(self.timeout_ms.unwrap_or(DEFAULT_WAIT_MS).min(MAX_WAIT_MS)))
    }
}

/// Where a transaction stands, as this node sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum TxState {
    /// In this node's mempool, not yet in a block.
    Pending,
    /// In a block (final) and applied.
    Committed,
    /// In a block (final), but execution refused it: the receipt says why; its nonce is used.
    Rejected,
    /// Neither in a block nor in this node's mempool (never received here, or dropped).
    Unknown,
}

/// The one JSON shape of a transaction's status, whatever its state: every field is always
/// present, `null` where the state has no value. Served by `POST /v1/txs` and
/// `GET /v1/txs/{id}` alike, and printed by `medledger tx show` and `--wait`.
#[derive(Serialize)]
struct TxView {
    tx_id: TxId,
    status: TxState,
    /// The block holding it (committed or rejected).
    height: Option<u64>,
    /// Its position in that block.
    index: Option<u32>,
    /// What execution did with it (committed or rejected).
    receipt: Option<Receipt>,
    /// The transaction itself, when this node has it.
    transaction: Option<Transaction>,
}

impl TxView {
    /// The view of `status`; `transaction` is the caller's copy when it has one.
    fn new(node: &Node, tx_id: TxId, status: TxStatus, transaction: Option<Transaction>) -> ApiResult<Self> {
        let view = |status, transaction| Self {
            tx_id,
            status,
            height: None,
            index: None,
            receipt: None,
            transaction,
        };
        Ok(match status {
            TxStatus::Pending => view(TxState::Pending, transaction),
            TxStatus::Unknown => view(TxState::Unknown, None),
            TxStatus::Committed { height, index, receipt } => {
                let transaction = match transaction {
                    Some(transaction) => transaction,
                    None => transaction_at(&stored_block(node, height)?, index)?.clone(),
                };
                let state = match receipt.outcome {
                    Outcome::Applied => TxState::Committed,
                    Outcome::Rejected(_) => TxState::Rejected,
                };
                Self {
                    height: Some(height),
                    index: Some(index),
                    receipt: Some(receipt),
                    ..view(state, Some(transaction))
                }
            }
        })
    }

    /// A submission's answer: `200 OK` once the transaction is in a block, `202 Accepted`
    /// while it is not.
    fn into_response(self) -> Response {
        let code = if self.height.is_some() { StatusCode::OK } else { StatusCode::ACCEPTED };
        (code, Json(self)).into_response()
    }
}

async fn submit_tx(
    State(node): Shared,
    query: Result<Query<WaitQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let Query(query) = query.map_err(|rejection| Problem::bad_request("bad-query", rejection.body_text()))?;
    let tx = parse_tx(&headers, &body_bytes(body)?)?;
    let id = node.submit(tx.clone())?;
    let status = match query.timeout() {
        Some(timeout) => wait_for_block(&node, &id, timeout).await?,
        None => TxStatus::Pending,
    };
    Ok(TxView::new(&node, id, status, Some(tx))?.into_response())
}

/// Waits (bounded) until `id` is in a block, is unknown, or the timeout passes.
async fn wait_for_block(node: &Node, id: &TxId, timeout: Duration) -> ApiResult<TxStatus> {
    let mut heights = node.subscribe_height();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let status = node.tx_status(id)?;
        if !matches!(status, TxStatus::Pending) {
            return Ok(status);
        }
        if tokio::time::timeout_at(deadline, heights.changed()).await.is_err() {
            return Ok(status);
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchRequest {
    transactions: Vec<Transaction>,
}

#[derive(Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
enum BatchItem {
    Accepted { tx_id: TxId },
    Rejected { problem: Problem },
}

async fn submit_batch(
    State(node): Shared,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let body = body_bytes(body)?;
    if !content_type(&headers).starts_with("application/json") {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            "send application/json",
        ));
    }
    let request: BatchRequest = parse_json(&body)?;
    if request.transactions.is_empty() || request.transactions.len() > MAX_BATCH_TXS {
        return Err(Problem::bad_request(
            "batch-size",
            format!("a batch holds 1 to {MAX_BATCH_TXS} transactions, got {}", request.transactions.len()),
        ));
    }
    let results = tokio::task::spawn_blocking(move || node.submit_batch(request.transactions))
        .await
        .map_err(|error| Problem::internal(&error))?;
    let items: Vec<BatchItem> = results
        .into_iter()
        .map(|result| match result {
            Ok(tx_id) => BatchItem::Accepted { tx_id },
            Err(error) => BatchItem::Rejected { problem: error.into() },
        })
        .collect();
    Ok((StatusCode::ACCEPTED, Json(json!({ "results": items }))).into_response())
}

fn parse_tx_id(text: &str) -> ApiResult<TxId> {
    text.parse().map_err(|_| Problem::bad_request("bad-tx-id", "a transaction id is 64 hex characters"))
}

async fn get_tx(
    State(node): Shared,
    Path(id): Path<String>,
    query: Result<Query<WaitQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let Query(query) = query.map_err(|rejection| Problem::bad_request("bad-query", rejection.body_text()))?;
    let id = parse_tx_id(&id)?;
    let status = match query.timeout() {
        Some(timeout) => wait_for_block(&node, &id, timeout).await?,
        None => node.tx_status(&id)?,
    };
    // The status of a transaction always exists, even when it says "unknown".
    Ok(Json(TxView::new(&node, id, status, None)?).into_response())
}

fn committed_receipt(node: &Node, id: &TxId) -> ApiResult<(u64, u32, Receipt)> {
    match node.tx_status(id)? {
        TxStatus::Committed { height, index, receipt } => Ok((height, index, receipt)),
        TxStatus::Pending => {
            Err(Problem::not_found(format!("transaction {id} is pending, not yet in a block")))
        }
        TxStatus::Unknown => {
            Err(Problem::not_found(format!("transaction {id} is neither pending nor committed")))
        }
    }
}

async fn get_receipt(State(node): Shared, Path(id): Path<String>) -> ApiResult<Json<serde_json::Value>> {
    let id = parse_tx_id(&id)?;
    let (height, index, receipt) = committed_receipt(&node, &id)?;
    Ok(Json(json!({ "height": height, "index": index, "receipt": receipt })))
}

#[derive(Serialize)]
struct TxProof {
    tx_id: TxId,
    height: u64,
    block_hash: Digest,
    tx_root: Digest,
    /// Canonical transaction bytes, hex: the Merkle leaf is `leaf_hash(these bytes)`.
    transaction_bytes: String,
    leaf_hash: Digest,
    proof: InclusionProof,
}

async fn get_tx_proof(State(node): Shared, Path(id): Path<String>) -> ApiResult<Json<TxProof>> {
    let id = parse_tx_id(&id)?;
    let inclusion = node.tx_inclusion(&id)?.ok_or_else(|| match node.tx_status(&id) {
        Ok(TxStatus::Pending) => {
            Problem::not_found(format!("transaction {id} is pending, not yet in a block"))
        }
        _ => Problem::not_found(format!("transaction {id} is neither pending nor committed")),
    })?;
    let transaction_bytes = inclusion.transaction().encode();
    Ok(Json(TxProof {
        tx_id: id,
        height: inclusion.block.header.height,
        block_hash: inclusion.block.hash(),
        tx_root: inclusion.block.header.tx_root,
        leaf_hash: inclusion.leaf_hash,
        transaction_bytes: hex::encode(transaction_bytes),
        proof: inclusion.proof,
    }))
}

/// The transaction the index says is at `index`; a miss means the store is inconsistent.
fn transaction_at(block: &Block, index: u32) -> ApiResult<&Transaction> {
    block.transactions.get(index as usize).ok_or_else(|| {
        Problem::internal(&format!("tx index points past the end of block {}", block.header.height))
    })
}

fn stored_block(node: &Node, height: u64) -> ApiResult<Block> {
    node.store().block(height)?.ok_or_else(|| Problem::not_found(format!("no block at height {height}")))
}

/// Resolves `latest`, a decimal height or a 64-hex block hash to a height.
fn resolve_block(node: &Node, reference: &str) -> ApiResult<u64> {
    let height = if reference == "latest" {
        node.with_chain(medledger_state::Chain::height)
    } else if reference.len() == 64 {
        let hash: Digest = reference
            .parse()
            .map_err(|_| Problem::bad_request("bad-block-reference", "a block hash is 64 hex characters"))?;
        node.store()
            .height_of(&hash)?
            .ok_or_else(|| Problem::not_found(format!("no block with hash {hash}")))?
    } else {
        reference.parse::<u64>().map_err(|_| {
            Problem::bad_request("bad-block-reference", "name a block by height, 64-hex hash, or 'latest'")
        })?
    };
    if height == 0 {
        return Err(Problem::not_found("no block yet: the chain holds only its genesis"));
    }
    Ok(height)
}

async fn get_block(
    State(node): Shared,
    Path(reference): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let height = resolve_block(&node, &reference)?;
    if wants_octet_stream(&headers) {
        let bytes = node
            .store()
            .block_bytes(height)?
            .ok_or_else(|| Problem::not_found(format!("no block at height {height}")))?;
        return Ok(octet_stream(bytes));
    }
    let block = stored_block(&node, height)?;
    Ok(Json(json!({ "hash": block.hash(), "block": block })).into_response())
}

async fn get_block_receipts(
    State(node): Shared,
    Path(reference): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let height = resolve_block(&node, &reference)?;
    let receipts = node
        .store()
        .receipts(height)?
        .ok_or_else(|| Problem::not_found(format!("no block at height {height}")))?;
    Ok(Json(json!({ "height": height, "receipts": receipts })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsistencyQuery {
    first: u64,
    second: u64,
}

/// Proves that the chain at height `second` extends the chain at height `first`: an RFC 9162
/// consistency proof between the Merkle trees of block hashes 1..=first and 1..=second.
async fn get_consistency_proof(
    State(node): Shared,
    query: Result<Query<ConsistencyQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let Query(query) = query.map_err(|rejection| Problem::bad_request("bad-query", rejection.body_text()))?;
    node.with_chain(|chain| {
        let history = chain.history();
        if query.first == 0 || query.first > query.second || query.second > history.len() {
            return Err(Problem::bad_request(
                "bad-range",
                format!("need 1 <= first <= second <= {} (the current height)", history.len()),
            ));
        }
        let proof: ConsistencyProof = history
            .consistency_proof(query.first, query.second)
            .map_err(|error| Problem::internal(&error))?;
        let first_root = history.root_at(query.first).map_err(|error| Problem::internal(&error))?;
        let second_root = history.root_at(query.second).map_err(|error| Problem::internal(&error))?;
        Ok(Json(json!({ "first_root": first_root, "second_root": second_root, "proof": proof })))
    })
}

/// Longest state key a proof is asked for: every key the state machine writes is far shorter.
const MAX_STATE_KEY_BYTES: usize = 512;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateProofQuery {
    /// The state key, hex.
    key: String,
}

/// A state key's value, or its absence, proven against the head's state root: the answer of
/// `GET /v1/state/proof`, which `medledger verify --state-proof` reads back.
#[derive(Debug, Serialize, Deserialize)]
pub struct StateProofView {
    /// Height of the head proven against.
    pub height: u64,
    /// Its hash.
    pub block_hash: Digest,
    /// Its state root.
    pub state_root: Digest,
    /// The canonical header bytes, hex: its hash is `block_hash`, its `state_root` the root.
    pub header: String,
    /// The key, hex.
    pub key: String,
    /// The value, hex; `None` when the key is absent.
    pub value: Option<String>,
    /// The state-tree path from the key's leaf (or the gap where it would be) to the root,
    /// hex of its Borsh encoding.
    pub proof: String,
}

async fn get_state_proof(
    State(node): Shared,
    query: Result<Query<StateProofQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<StateProofView>> {
    let Query(query) = query.map_err(|rejection| Problem::bad_request("bad-query", rejection.body_text()))?;
    if query.key.len() > 2 * MAX_STATE_KEY_BYTES {
        return Err(Problem::bad_request(
            "bad-state-key",
            format!("a state key is at most {MAX_STATE_KEY_BYTES} bytes"),
        ));
    }
    let key = hex::decode(&query.key)
        .map_err(|_| Problem::bad_request("bad-state-key", "the key is hex: two characters per byte"))?;
    node.with_chain(|chain| {
        let head = chain
            .head()
            .ok_or_else(|| Problem::not_found("no block yet: the chain holds only its genesis"))?;
        let proof = chain.prove(&key);
        Ok(Json(StateProofView {
            height: head.height,
            block_hash: chain.head_hash(),
            state_root: head.state_root,
            header: hex::encode(head.encode()),
            key: query.key.to_ascii_lowercase(),
            value: proof.value.as_ref().map(hex::encode),
            proof: hex::encode(proof.proof_bytes()),
        }))
    })
}

async fn get_account(
    State(node): Shared,
    Path(public_key): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let public_key: PublicKey =
        public_key.parse().map_err(|error| Problem::bad_request("bad-public-key", format!("{error}")))?;
    let (account, pending_nonce) = node
        .account(&public_key)
        .ok_or_else(|| Problem::not_found(format!("{public_key} is not a member")))?;
    Ok(Json(json!({
        "public_key": public_key,
        "account": account,
        "pending_nonce": pending_nonce,
    })))
}

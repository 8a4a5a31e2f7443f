//! The FHIR R4 API under `/fhir`: `application/fhir+json`, every error an `OperationOutcome`.
//!
//! Requests are authenticated like the rest of the API (an RFC 9421 signature by a member
//! key, or a bearer session opened with one), except the CapabilityStatement and the
//! `$verify` OperationDefinition, which describe the server to anyone.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, OriginalUri, Path, RawQuery, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use medledger_fhir::{
    FHIR_JSON_MEDIA_TYPE, FhirError, Handling, HistoryVersion, IssueType, MAX_BUNDLE_BYTES, ResourceType,
    SearchQuery, Severity, operation_outcome,
};
use medledger_node::Node;
use medledger_records::{ReadVersion, RecordError, Records, Requester, Verification, Written};
use serde_json::{Value, json};

use crate::auth::{AuthState, read_body, verify_member};

/// What the FHIR handlers share.
#[derive(Clone)]
pub(crate) struct FhirState {
    node: Arc<Node>,
    records: Option<Records>,
}

type Shared = State<FhirState>;
type FhirResult = Result<Response, Outcome>;

/// The `/fhir` routes.
pub(crate) fn router(node: Arc<Node>, records: Option<Records>) -> Router {
    Router::new()
        .route("/metadata", get(metadata))
        .route("/OperationDefinition/verify", get(verify_definition))
        .route("/", axum::routing::post(transaction))
        .route("/{type}", get(search).post(create))
        .route("/{type}/{id}", get(read).put(update))
        .route("/{type}/{id}/_history", get(history))
        .route("/{type}/{id}/_history/{version}", get(vread))
        .route("/{type}/{id}/{operation}", get(operation))
        .fallback(|| async {
            Outcome::new(StatusCode::NOT_FOUND, IssueType::NotSupported, "no such FHIR endpoint")
        })
        .method_not_allowed_fallback(|| async {
            Outcome::new(
                StatusCode::METHOD_NOT_ALLOWED,
                IssueType::NotSupported,
                "this FHIR endpoint does not support that interaction; see /fhir/metadata",
            )
        })
        .with_state(FhirState { node, records })
}

/// An `OperationOutcome` answer with its status.
#[derive(Debug)]
pub(crate) struct Outcome {
    status: StatusCode,
    body: Value,
}

impl Outcome {
    fn new(status: StatusCode, code: IssueType, diagnostics: &str) -> Self {
        Self { status, body: operation_outcome(Severity::Error, code, diagnostics) }
    }

    fn bad_request(diagnostics: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, IssueType::Invalid, diagnostics)
    }
}

impl IntoResponse for Outcome {
    fn into_response(self) -> Response {
        let mut response = fhir_json(self.status, &self.body);
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<FhirError> for Outcome {
    fn from(error: FhirError) -> Self {
        let status = StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
        Self { status, body: error.to_operation_outcome() }
    }
}

impl From<crate::problem::Problem> for Outcome {
    fn from(problem: crate::problem::Problem) -> Self {
        let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let code = match status {
            StatusCode::UNAUTHORIZED => IssueType::Login,
            StatusCode::FORBIDDEN => IssueType::Forbidden,
            StatusCode::PAYLOAD_TOO_LARGE => IssueType::TooLong,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => IssueType::Transient,
            status if status.is_server_error() => IssueType::Exception,
            _ => IssueType::Invalid,
        };
        Self::new(status, code, &problem.detail)
    }
}

impl From<RecordError> for Outcome {
    fn from(error: RecordError) -> Self {
        let detail = error.to_string();
        let (status, code) = match &error {
            RecordError::Invalid(fhir) => return fhir.clone().into(),
            RecordError::NotFound { .. } => (StatusCode::NOT_FOUND, IssueType::NotFound),
            RecordError::MissingReference { .. } => (StatusCode::UNPROCESSABLE_ENTITY, IssueType::NotFound),
            RecordError::Denied(_)
            | RecordError::RemoteDenied(_)
            | RecordError::WriteNotAllowed { .. }
            | RecordError::NotCustodian { .. }
            | RecordError::NotYourNode { .. } => (StatusCode::FORBIDDEN, IssueType::Forbidden),
            RecordError::VersionConflict { .. } => (StatusCode::CONFLICT, IssueType::Conflict),
            RecordError::PatientChanged => (StatusCode::UNPROCESSABLE_ENTITY, IssueType::BusinessRule),
            RecordError::Remote(_) => (StatusCode::BAD_GATEWAY, IssueType::Transient),
            RecordError::Busy | RecordError::AnchorRefused(_) | RecordError::Unavailable => {
                (StatusCode::SERVICE_UNAVAILABLE, IssueType::Transient)
            }
            RecordError::Tampered => {
                // Detected at rest: the alarm counter is up (see /metrics); never served.
                tracing::error!("a record version failed its integrity check; not served");
                (StatusCode::INTERNAL_SERVER_ERROR, IssueType::Exception)
            }
            RecordError::Vault(_) | RecordError::NoVault => {
                tracing::error!(%error, "record service failure");
                return Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    IssueType::Exception,
                    "the node failed to serve this request",
                );
            }
        };
        Self::new(status, code, &detail)
    }
}

/// A FHIR JSON response.
fn fhir_json(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).expect("JSON values serialize");
    fhir_bytes(status, bytes)
}

fn fhir_bytes(status: StatusCode, bytes: Vec<u8>) -> Response {
    let mut response = (status, bytes).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/fhir+json; charset=utf-8"));
    response
}

/// `[scheme]://[host]/fhir`, as the client addressed this node.
fn base_url(headers: &HeaderMap) -> String {
    let host = headers.get(header::HOST).and_then(|value| value.to_str().ok()).unwrap_or("localhost");
    format!("http://{host}/fhir")
}

fn parse_type(name: &str) -> Result<ResourceType, Outcome> {
    name.parse().map_err(|_| {
        Outcome::new(
            StatusCode::NOT_FOUND,
            IssueType::NotSupported,
            "MedLedger does not keep that resource type; see /fhir/metadata",
        )
    })
}

/// The records service, or why this node has none.
fn records(state: &FhirState) -> Result<&Records, Outcome> {
    state.records.as_ref().ok_or_else(|| {
        Outcome::new(StatusCode::SERVICE_UNAVAILABLE, IssueType::NotSupported, "this node keeps no records")
    })
}

/// An authenticated FHIR request: the member and the body.
pub(crate) struct FhirRequest {
    who: Requester,
    body: Bytes,
}

impl FromRequest<FhirState> for FhirRequest {
    type Rejection = Outcome;

    async fn from_request(request: Request, state: &FhirState) -> Result<Self, Outcome> {
        let (mut parts, body): (Parts, Body) = request.into_parts();
        // Nesting under /fhir strips the prefix; the signature covers the path as sent.
        if let Some(OriginalUri(original)) = parts.extensions.get::<OriginalUri>() {
            parts.uri = original.clone();
        }
        let body = read_body(body, MAX_BUNDLE_BYTES).await?;
        if !body.is_empty() {
            check_content_type(&parts.headers)?;
        }
        let auth = parts.extensions.get::<Arc<AuthState>>().expect("the router installs the auth state");
        let member = verify_member(&parts, &body, &state.node, auth)?;
        let who = Requester { key: member.key, account: member.account, organization: member.organization };
        Ok(Self { who, body })
    }
}

/// FHIR JSON only; XML is not offered.
fn check_content_type(headers: &HeaderMap) -> Result<(), Outcome> {
    let media_type = headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or("");
    let essence = media_type.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case(FHIR_JSON_MEDIA_TYPE) || essence.eq_ignore_ascii_case("application/json")
    {
        return Ok(());
    }
    Err(Outcome::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        IssueType::NotSupported,
        "send application/fhir+json (FHIR XML is not supported)",
    ))
}

/// Refuses a request whose `Accept` allows no JSON.
pub(crate) struct AcceptsJson;

impl<S: Send + Sync> FromRequestParts<S> for AcceptsJson {
    type Rejection = Outcome;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Outcome> {
        let accept = parts.headers.get(header::ACCEPT).and_then(|value| value.to_str().ok()).unwrap_or("*/*");
        let acceptable = accept.split(',').any(|range| {
            let essence = range.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            matches!(essence.as_str(), "*/*" | "application/*" | "application/json" | "application/fhir+json")
        });
        if acceptable {
            Ok(Self)
        } else {
            Err(Outcome::new(
                StatusCode::NOT_ACCEPTABLE,
                IssueType::NotSupported,
                "this server answers application/fhir+json only",
            ))
        }
    }
}

async fn metadata(_: AcceptsJson, headers: HeaderMap) -> Response {
    let statement = medledger_fhir::capability_statement(&base_url(&headers), env!("CARGO_PKG_VERSION"));
    fhir_json(StatusCode::OK, &statement)
}

async fn verify_definition(_: AcceptsJson, headers: HeaderMap) -> Response {
    fhir_json(StatusCode::OK, &medledger_fhir::verify_operation_definition(&base_url(&headers)))
}

/// `W/"3"` → 3. Strong ETags and other forms are refused.
fn parse_if_match(headers: &HeaderMap) -> Result<Option<u64>, Outcome> {
    let Some(value) = headers.get(header::IF_MATCH) else { return Ok(None) };
    let text = value.to_str().unwrap_or("").trim();
    text.strip_prefix("W/\"")
        .and_then(|rest| rest.strip_suffix('"'))
        .and_then(|version| version.parse().ok())
        .map(Some)
        .ok_or_else(|| Outcome::bad_request("If-Match must be a weak ETag of a version, e.g. W/\"1\""))
}

/// Headers of an answer about one version.
fn version_headers(response: &mut Response, version: u64, last_updated_ms: u64) {
    let headers = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&format!("W/\"{version}\"")) {
        headers.insert(header::ETAG, etag);
    }
    let modified =
        httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_millis(last_updated_ms));
    if let Ok(modified) = HeaderValue::from_str(&modified) {
        headers.insert(header::LAST_MODIFIED, modified);
    }
}

/// The answer to a create or update: the resource (or nothing with `Prefer: return=minimal`),
/// `Location`, `ETag`, `Last-Modified`, and a link to the version's Provenance.
fn written_response(status: StatusCode, headers: &HeaderMap, written: &Written) -> Response {
    let base = base_url(headers);
    let minimal = headers
        .get("prefer")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|prefer| prefer.contains("return=minimal"));
    let mut response =
        if minimal { fhir_bytes(status, Vec::new()) } else { fhir_json(status, &written.resource) };
    version_headers(&mut response, written.version, written.last_updated_ms);
    let location = format!("{base}/{}/{}/_history/{}", written.resource_type, written.id, written.version);
    let provenance = format!(
        "<{base}/Provenance/{}>; rel=\"provenance\"",
        medledger_records::provenance_id(&written.anchor_tx)
    );
    for (name, value) in [(header::LOCATION, location), (header::LINK, provenance)] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

async fn create(
    State(state): Shared,
    Path(resource_type): Path<String>,
    headers: HeaderMap,
    request: FhirRequest,
) -> FhirResult {
    let resource_type = parse_type(&resource_type)?;
    let written = records(&state)?.create(&request.who, resource_type, &request.body).await?;
    Ok(written_response(StatusCode::CREATED, &headers, &written))
}

async fn update(
    State(state): Shared,
    Path((resource_type, id)): Path<(String, String)>,
    headers: HeaderMap,
    request: FhirRequest,
) -> FhirResult {
    let resource_type = parse_type(&resource_type)?;
    let if_match = parse_if_match(&headers)?;
    let updated = records(&state)?.update(&request.who, resource_type, &id, &request.body, if_match).await;
    match updated {
        Ok(written) => Ok(written_response(StatusCode::OK, &headers, &written)),
        Err(RecordError::VersionConflict { current }) if if_match.is_some() => Err(Outcome::new(
            StatusCode::PRECONDITION_FAILED,
            IssueType::Conflict,
            &format!("If-Match names another version; the current version is {current}"),
        )),
        Err(error) => Err(error.into()),
    }
}

/// One version as FHIR JSON with its headers.
fn version_response(read: &ReadVersion) -> Response {
    let mut response = fhir_bytes(StatusCode::OK, read.body.to_vec());
    version_headers(&mut response, read.version, read.last_updated_ms);
    response
}

async fn read(
    State(state): Shared,
    Path((resource_type, id)): Path<(String, String)>,
    _: AcceptsJson,
    request: FhirRequest,
) -> FhirResult {
    let resource_type = parse_type(&resource_type)?;
    let records = records(&state)?;
    // A Provenance whose id is a transaction id is the one the chain keeps for that anchor.
    if resource_type == ResourceType::Provenance && id.len() == 64 {
        return Ok(fhir_json(StatusCode::OK, &records.provenance(&request.who, &id)?));
    }
    Ok(version_response(&records.read(&request.who, resource_type, &id, None).await?))
}

async fn vread(
    State(state): Shared,
    Path((resource_type, id, version)): Path<(String, String, String)>,
    _: AcceptsJson,
    request: FhirRequest,
) -> FhirResult {
    let resource_type = parse_type(&resource_type)?;
    let version: u64 =
        version.parse().map_err(|_| Outcome::bad_request("a version id is a positive integer"))?;
    Ok(version_response(&records(&state)?.read(&request.who, resource_type, &id, Some(version)).await?))
}

async fn history(
    State(state): Shared,
    Path((resource_type, id)): Path<(String, String)>,
    headers: HeaderMap,
    _: AcceptsJson,
    request: FhirRequest,
) -> FhirResult {
    let resource_type = parse_type(&resource_type)?;
    let versions = records(&state)?.history(&request.who, resource_type, &id).await?;
    let versions = versions
        .into_iter()
        .map(|read| {
            let resource = serde_json::from_slice(&read.body).map_err(|_| RecordError::Tampered)?;
            Ok(HistoryVersion { version: read.version, last_updated_ms: read.last_updated_ms, resource })
        })
        .collect::<Result<Vec<_>, RecordError>>()?;
    let bundle = medledger_fhir::history_bundle(&base_url(&headers), resource_type, &id, versions);
    Ok(fhir_json(StatusCode::OK, &bundle))
}

async fn search(
    State(state): Shared,
    Path(resource_type): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    _: AcceptsJson,
    request: FhirRequest,
) -> FhirResult {
    let resource_type = parse_type(&resource_type)?;
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    let prefer = headers.get("prefer").and_then(|value| value.to_str().ok());
    let query = SearchQuery::parse(resource_type, &pairs, Handling::from_prefer(prefer))?;
    let records = records(&state)?.clone();
    let searched = query.clone();
    let page = tokio::task::spawn_blocking(move || records.search(&request.who, &searched))
        .await
        .map_err(|error| Outcome::from(crate::problem::Problem::internal(&error)))??;
    let bundle = medledger_fhir::searchset_bundle(&base_url(&headers), &query, page.total, page.resources);
    Ok(fhir_json(StatusCode::OK, &bundle))
}

async fn transaction(State(state): Shared, request: FhirRequest) -> FhirResult {
    let entries = medledger_fhir::parse_transaction(&request.body)?;
    let written = records(&state)?.transaction(&request.who, entries).await?;
    let responses = written
        .iter()
        .map(|written| medledger_fhir::EntryResponse {
            status: if written.version == 1 { 201 } else { 200 },
            location: Some(format!("{}/{}/_history/{}", written.resource_type, written.id, written.version)),
            version: Some(written.version),
            last_modified_ms: Some(written.last_updated_ms),
        })
        .collect();
    Ok(fhir_json(StatusCode::OK, &medledger_fhir::transaction_response_bundle(responses)))
}

/// `GET [type]/[id]/$verify[?version=n]`.
async fn operation(
    State(state): Shared,
    Path((resource_type, id, operation)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    _: AcceptsJson,
    request: FhirRequest,
) -> FhirResult {
    if operation != format!("${}", medledger_fhir::VERIFY_OPERATION) {
        return Err(Outcome::new(StatusCode::NOT_FOUND, IssueType::NotSupported, "no such operation"));
    }
    let resource_type = parse_type(&resource_type)?;
    let mut version = None;
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match name.as_ref() {
            "version" => {
                let parsed = value.parse::<u64>().ok().filter(|version| *version > 0);
                version = Some(parsed.ok_or_else(|| Outcome::bad_request("version is a positive integer"))?);
            }
            _ => return Err(Outcome::bad_request("$verify takes one parameter: version")),
        }
    }
    let verification = records(&state)?.verify(&request.who, resource_type, &id, version).await?;
    Ok(fhir_json(StatusCode::OK, &verification_parameters(&base_url(&headers), &verification)))
}

/// The `$verify` answer as a FHIR `Parameters` resource.
fn verification_parameters(base: &str, verification: &Verification) -> Value {
    let proof = verification.proof();
    let mut parameters = vec![
        json!({ "name": "verified", "valueBoolean": verification.verified }),
        json!({ "name": "version", "valuePositiveInt": verification.version }),
        json!({ "name": "ciphertextDigest", "valueString": verification.ciphertext_digest.to_string() }),
        json!({ "name": "blockHeight", "valueUnsignedInt": verification.inclusion.block.header.height }),
        json!({ "name": "blockHash", "valueString": verification.block_hash().to_string() }),
        json!({ "name": "txRoot", "valueString": verification.inclusion.block.header.tx_root.to_string() }),
        json!({ "name": "transaction", "valueString": verification.anchor_tx.to_string() }),
        json!({ "name": "leafHash", "valueString": verification.inclusion.leaf_hash.to_string() }),
        json!({ "name": "leafIndex", "valueUnsignedInt": proof.leaf_index }),
        json!({ "name": "treeSize", "valueUnsignedInt": proof.tree_size }),
        json!({
            "name": "provenance",
            "valueReference": {
                "reference": format!("{base}/Provenance/{}", medledger_records::provenance_id(&verification.anchor_tx))
            },
        }),
    ];
    parameters.extend(
        proof.audit_path.iter().map(|hash| json!({ "name": "auditPath", "valueString": hash.to_string() })),
    );
    if let Some(problem) = &verification.problem {
        parameters.push(json!({ "name": "problem", "valueString": problem }));
    }
    json!({ "resourceType": "Parameters", "parameter": parameters })
}

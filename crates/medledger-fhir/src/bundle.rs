//! Bundles: searchset and history answers, transaction requests and their responses.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use medledger_types::ResourceType;
use serde_json::{Map, Value, json};

use crate::outcome::{IssueType, Severity, operation_outcome};
use crate::reference::{Target, is_fhir_id, is_urn_uuid, rewrite_references};
use crate::resource::{Resource, parse_value};
use crate::search::SearchQuery;
use crate::{FhirError, MAX_BUNDLE_BYTES, MAX_BUNDLE_ENTRIES, datetime, json};

fn trimmed(base_url: &str) -> &str {
    base_url.trim_end_matches('/')
}

fn link(relation: &str, url: &str) -> Value {
    json!({ "relation": relation, "url": url })
}

/// A `searchset` Bundle for one page of `query`: `total` matches in all, `resources` the
/// page (stamped, so each has its `id`). Links: `self`, `next` when more matches follow,
/// `previous` when this is not the first page. Parameters the query ignored are reported in
/// an OperationOutcome entry (search mode `outcome`), as R4 asks for lenient handling.
#[must_use]
pub fn searchset_bundle(base_url: &str, query: &SearchQuery, total: u64, resources: Vec<Value>) -> Value {
    let base = trimmed(base_url);
    let type_url = format!("{base}/{}", query.resource_type());
    let page_url = |offset: u64| format!("{type_url}?{}", query.page_link_query(offset));
    let count = u64::from(query.count());
    let mut links = vec![link("self", &page_url(query.offset()))];
    if query.offset().saturating_add(count) < total {
        links.push(link("next", &page_url(query.offset() + count)));
    }
    if query.offset() > 0 {
        links.push(link("previous", &page_url(query.offset().saturating_sub(count))));
    }
    let mut entries: Vec<Value> = resources
        .into_iter()
        .map(|resource| {
            let mut entry = Map::new();
            if let Some(id) = resource.get("id").and_then(Value::as_str) {
                entry.insert("fullUrl".to_owned(), Value::String(format!("{type_url}/{id}")));
            }
            entry.insert("resource".to_owned(), resource);
            entry.insert("search".to_owned(), json!({ "mode": "match" }));
            Value::Object(entry)
        })
        .collect();
    if !query.ignored().is_empty() {
        let diagnostics = format!("ignored unsupported search parameters: {}", query.ignored().join(", "));
        let outcome = operation_outcome(Severity::Warning, IssueType::NotSupported, &diagnostics);
        entries.push(json!({ "resource": outcome, "search": { "mode": "outcome" } }));
    }
    let mut bundle = json!({ "resourceType": "Bundle", "type": "searchset", "total": total, "link": links });
    if !entries.is_empty() {
        bundle["entry"] = Value::Array(entries);
    }
    bundle
}

/// One version of a resource, for a history Bundle.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryVersion {
    /// The version number (1 for the create).
    pub version: u64,
    /// When the version was written (block time), in milliseconds since the Unix epoch.
    pub last_updated_ms: u64,
    /// The resource as stamped for that version.
    pub resource: Value,
}

/// A `history` Bundle of one resource (`GET [type]/[id]/_history`), newest version first as
/// R4 requires. Version 1 is shown as its create (POST), later ones as updates (PUT).
#[must_use]
pub fn history_bundle(
    base_url: &str,
    resource_type: ResourceType,
    id: &str,
    mut versions: Vec<HistoryVersion>,
) -> Value {
    let base = trimmed(base_url);
    versions.sort_by_key(|version| std::cmp::Reverse(version.version));
    let total = versions.len();
    let entries: Vec<Value> = versions
        .into_iter()
        .map(|version| {
            let (method, url, status) = if version.version == 1 {
                ("POST", resource_type.as_str().to_owned(), "201 Created")
            } else {
                ("PUT", format!("{resource_type}/{id}"), "200 OK")
            };
            json!({
                "fullUrl": format!("{base}/{resource_type}/{id}"),
                "resource": version.resource,
                "request": { "method": method, "url": url },
                "response": {
                    "status": status,
                    "etag": format!("W/\"{}\"", version.version),
                    "lastModified": datetime::format_instant(version.last_updated_ms),
                },
            })
        })
        .collect();
    let mut bundle = json!({
        "resourceType": "Bundle",
        "type": "history",
        "total": total,
        "link": [link("self", &format!("{base}/{resource_type}/{id}/_history"))],
    });
    if !entries.is_empty() {
        bundle["entry"] = Value::Array(entries);
    }
    bundle
}

/// What a transaction entry asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransactionMethod {
    /// `POST [type]`: create, the server assigns the id.
    Create,
    /// `PUT [type]/[id]`: update.
    Update {
        /// The logical id.
        id: String,
        /// The version `request.ifMatch` requires (`W/"[version]"`), if any.
        if_match: Option<u64>,
    },
}

/// One entry of a transaction Bundle, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct TransactionEntry {
    /// `fullUrl`: a `urn:uuid:` other entries may reference (required form for creates).
    pub full_url: Option<String>,
    /// Create or update.
    pub method: TransactionMethod,
    /// The resource, validated against the type of `request.url`. Its `urn:uuid:` references
    /// are not yet resolved: see [`TransactionEntry::resolve`].
    pub resource: Resource,
}

impl TransactionEntry {
    /// Rewrites the entry's `urn:uuid:` references with `map` (see [`urn_map`]) and validates
    /// it again, so its keys (patient, references) are final.
    pub fn resolve(&self, map: &HashMap<String, String>) -> Result<Resource, FhirError> {
        let mut value = self.resource.json().clone();
        rewrite_references(&mut value, map);
        parse_value(value, self.resource.resource_type())
    }
}

/// The `urn:uuid:` → `Type/id` map for [`rewrite_references`], given the id each entry ends up
/// with (`ids[i]` for `entries[i]`: the assigned id of a create, the URL id of an update).
#[must_use]
pub fn urn_map(entries: &[TransactionEntry], ids: &[String]) -> HashMap<String, String> {
    debug_assert_eq!(entries.len(), ids.len(), "one id per entry");
    entries
        .iter()
        .zip(ids)
        .filter_map(|(entry, id)| {
            let urn = entry.full_url.as_ref().filter(|url| is_urn_uuid(url))?;
            Some((urn.clone(), format!("{}/{id}", entry.resource.resource_type())))
        })
        .collect()
}

/// Parses and validates a `transaction` Bundle: at most [`MAX_BUNDLE_ENTRIES`] entries, each
/// `POST [type]` (create) or `PUT [type]/[id]` (update) with a resource valid for that type.
/// `batch` Bundles are refused (their entries succeed or fail one by one, which MedLedger does
/// not offer). Every `urn:uuid:` reference must be the `fullUrl` of an entry of a type the
/// element may reference; no fullUrl or update target may appear twice.
pub fn parse_transaction(body: &[u8]) -> Result<Vec<TransactionEntry>, FhirError> {
    if body.len() > MAX_BUNDLE_BYTES {
        return Err(FhirError::TooLarge { size_bytes: body.len(), max_bytes: MAX_BUNDLE_BYTES });
    }
    let mut bundle = json::parse_object(body)?;
    check_bundle_header(&bundle)?;
    let Some(Value::Array(items)) = bundle.remove("entry") else {
        return Err(FhirError::bundle("Bundle.entry", "a transaction has at least one entry"));
    };
    if items.len() > MAX_BUNDLE_ENTRIES {
        return Err(FhirError::TooManyEntries { count: items.len(), max: MAX_BUNDLE_ENTRIES });
    }
    if items.is_empty() {
        return Err(FhirError::bundle("Bundle.entry", "a transaction has at least one entry"));
    }
    let entries = items
        .into_iter()
        .enumerate()
        .map(|(index, item)| parse_entry(index, item))
        .collect::<Result<Vec<_>, _>>()?;
    check_links(&entries)?;
    Ok(entries)
}

const BUNDLE_ELEMENTS: &[&str] =
    &["resourceType", "id", "meta", "implicitRules", "language", "identifier", "type", "timestamp", "entry"];

fn check_bundle_header(bundle: &Map<String, Value>) -> Result<(), FhirError> {
    if let Some(name) = bundle.keys().find(|name| !BUNDLE_ELEMENTS.contains(&name.as_str())) {
        return Err(FhirError::unknown_element("Bundle", name));
    }
    match bundle.get("resourceType").and_then(Value::as_str) {
        Some("Bundle") => {}
        _ => return Err(FhirError::bundle("Bundle.resourceType", "must be Bundle")),
    }
    match bundle.get("type").and_then(Value::as_str) {
        Some("transaction") => {}
        Some("batch") => {
            return Err(FhirError::bundle(
                "Bundle.type",
                "batch is not supported: send a transaction (all or nothing)",
            ));
        }
        _ => return Err(FhirError::bundle("Bundle.type", "must be transaction")),
    }
    if bundle.get("id").is_some_and(|id| !id.as_str().is_some_and(is_fhir_id)) {
        return Err(FhirError::invalid("Bundle.id", "must be a FHIR id"));
    }
    let timestamp = bundle.get("timestamp").map(|value| value.as_str().map(crate::DateRange::parse_instant));
    if matches!(timestamp, Some(None | Some(Err(_)))) {
        return Err(FhirError::invalid("Bundle.timestamp", "must be a FHIR instant"));
    }
    Ok(())
}

const ENTRY_ELEMENTS: &[&str] = &["fullUrl", "resource", "request"];
const REQUEST_ELEMENTS: &[&str] =
    &["method", "url", "ifMatch", "ifNoneExist", "ifNoneMatch", "ifModifiedSince"];

fn parse_entry(index: usize, item: Value) -> Result<TransactionEntry, FhirError> {
    let path = format!("Bundle.entry[{index}]");
    let Value::Object(mut entry) = item else {
        return Err(FhirError::bundle(&path, "must be a JSON object"));
    };
    if let Some(name) = entry.keys().find(|name| !ENTRY_ELEMENTS.contains(&name.as_str())) {
        return Err(FhirError::unknown_element(&path, name));
    }
    let request = entry
        .get("request")
        .and_then(Value::as_object)
        .ok_or_else(|| FhirError::missing(&format!("{path}.request")))?;
    let (resource_type, method) = parse_request(request, &format!("{path}.request"))?;
    let full_url = match entry.get("fullUrl") {
        None => None,
        Some(value) => Some(check_full_url(value, &resource_type, &method, &format!("{path}.fullUrl"))?),
    };
    let value = entry.remove("resource").ok_or_else(|| FhirError::missing(&format!("{path}.resource")))?;
    let resource = parse_value(value, resource_type).map_err(|error| relocate(error, &path))?;
    if let TransactionMethod::Update { id, .. } = &method
        && resource.id() != Some(id.as_str())
    {
        return Err(FhirError::bundle(
            &format!("{path}.resource.id"),
            "must be present and equal the id in request.url",
        ));
    }
    Ok(TransactionEntry { full_url, method, resource })
}

/// Moves an error of a resource into its Bundle entry: `Observation.status` becomes
/// `Bundle.entry[2].resource.status`.
fn relocate(error: FhirError, entry_path: &str) -> FhirError {
    if let FhirError::WrongResourceType { .. } = error {
        return FhirError::bundle(
            &format!("{entry_path}.resource.resourceType"),
            "must be the type in request.url",
        );
    }
    let mut error = error;
    if let Some(path) = error.path_mut() {
        *path = in_entry(entry_path, path);
    }
    error
}

/// The FHIRPath, within a Bundle entry, of a path within its resource.
fn in_entry(entry_path: &str, resource_path: &str) -> String {
    let inner = resource_path.split_once('.').map_or(resource_path, |(_, rest)| rest);
    format!("{entry_path}.resource.{inner}")
}

fn parse_request(
    request: &Map<String, Value>,
    path: &str,
) -> Result<(ResourceType, TransactionMethod), FhirError> {
    if let Some(name) = request.keys().find(|name| !REQUEST_ELEMENTS.contains(&name.as_str())) {
        return Err(FhirError::unknown_element(path, name));
    }
    for conditional in ["ifNoneExist", "ifNoneMatch", "ifModifiedSince"] {
        if request.contains_key(conditional) {
            return Err(FhirError::bundle(
                &format!("{path}.{conditional}"),
                "conditional requests are not supported",
            ));
        }
    }
    let text = |name: &str| request.get(name).and_then(Value::as_str);
    let url = text("url").ok_or_else(|| FhirError::missing(&format!("{path}.url")))?;
    let url_error =
        || FhirError::bundle(&format!("{path}.url"), "must be [type] for POST or [type]/[id] for PUT");
    match text("method") {
        Some("POST") => {
            if request.contains_key("ifMatch") {
                return Err(FhirError::bundle(&format!("{path}.ifMatch"), "applies to PUT only"));
            }
            Ok((url.parse().map_err(|_| url_error())?, TransactionMethod::Create))
        }
        Some("PUT") => {
            let (type_name, id) = url.split_once('/').ok_or_else(url_error)?;
            let resource_type = type_name.parse().map_err(|_| url_error())?;
            if !is_fhir_id(id) {
                return Err(url_error());
            }
            let if_match = text("ifMatch").map(|tag| parse_if_match(tag, path)).transpose()?;
            Ok((resource_type, TransactionMethod::Update { id: id.to_owned(), if_match }))
        }
        Some(_) => Err(FhirError::bundle(
            &format!("{path}.method"),
            "only POST (create) and PUT (update) are supported",
        )),
        None => Err(FhirError::missing(&format!("{path}.method"))),
    }
}

/// `W/"[version]"` (or a strong `"[version]"`) as a version number.
fn parse_if_match(tag: &str, path: &str) -> Result<u64, FhirError> {
    let quoted = tag.strip_prefix("W/").unwrap_or(tag);
    let version = quoted.strip_prefix('"').and_then(|rest| rest.strip_suffix('"'));
    version
        .and_then(|version| version.parse().ok())
        .ok_or_else(|| FhirError::bundle(&format!("{path}.ifMatch"), "must be W/\"[version]\""))
}

fn check_full_url(
    value: &Value,
    resource_type: &ResourceType,
    method: &TransactionMethod,
    path: &str,
) -> Result<String, FhirError> {
    let url = value.as_str().ok_or_else(|| FhirError::invalid(path, "must be a JSON string"))?;
    if is_urn_uuid(url) {
        return Ok(url.to_owned());
    }
    let matches_update = match method {
        TransactionMethod::Update { id, .. } => {
            let local = format!("{resource_type}/{id}");
            url == local || url.ends_with(&format!("/{local}"))
        }
        TransactionMethod::Create => false,
    };
    if matches_update {
        return Ok(url.to_owned());
    }
    Err(FhirError::bundle(path, "must be urn:uuid:[uuid] (or, for PUT, the URL of [type]/[id])"))
}

/// Cross-entry rules: unique fullUrls and update targets; every `urn:uuid:` reference names an
/// entry of a type its element may reference.
fn check_links(entries: &[TransactionEntry]) -> Result<(), FhirError> {
    let mut full_urls = BTreeMap::new();
    let mut targets = BTreeSet::new();
    for (index, entry) in entries.iter().enumerate() {
        let resource_type = entry.resource.resource_type();
        if let Some(url) = &entry.full_url
            && full_urls.insert(url.as_str(), resource_type).is_some()
        {
            return Err(FhirError::bundle(
                &format!("Bundle.entry[{index}].fullUrl"),
                "appears in more than one entry",
            ));
        }
        if let TransactionMethod::Update { id, .. } = &entry.method
            && !targets.insert((resource_type, id.as_str()))
        {
            return Err(FhirError::bundle(
                &format!("Bundle.entry[{index}].request.url"),
                "updates a resource twice",
            ));
        }
    }
    for (index, entry) in entries.iter().enumerate() {
        for reference in entry.resource.references() {
            let Target::Urn(urn) = &reference.target else { continue };
            let path = in_entry(&format!("Bundle.entry[{index}]"), &reference.path);
            match full_urls.get(urn.as_str()) {
                None => return Err(FhirError::bundle(&path, "urn:uuid: names no fullUrl of this Bundle")),
                Some(target) if !reference.allowed_types().contains(target) => {
                    return Err(FhirError::bundle(
                        &path,
                        "names an entry of a type this element may not reference",
                    ));
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

/// The outcome of one transaction entry, for [`transaction_response_bundle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryResponse {
    /// HTTP status: 201 for a create, 200 for an update.
    pub status: u16,
    /// `[type]/[id]/_history/[version]` of the version written.
    pub location: Option<String>,
    /// The version written, for the ETag `W/"[version]"`.
    pub version: Option<u64>,
    /// When it was written, in milliseconds since the Unix epoch.
    pub last_modified_ms: Option<u64>,
}

fn status_text(status: u16) -> String {
    let reason = match status {
        200 => " OK",
        201 => " Created",
        400 => " Bad Request",
        404 => " Not Found",
        409 => " Conflict",
        412 => " Precondition Failed",
        422 => " Unprocessable Entity",
        _ => "",
    };
    format!("{status}{reason}")
}

/// A `transaction-response` Bundle: one entry per request entry, in the same order.
#[must_use]
pub fn transaction_response_bundle(responses: Vec<EntryResponse>) -> Value {
    let entries: Vec<Value> = responses
        .into_iter()
        .map(|response| {
            let mut fields = Map::new();
            fields.insert("status".to_owned(), Value::String(status_text(response.status)));
            if let Some(location) = response.location {
                fields.insert("location".to_owned(), Value::String(location));
            }
            if let Some(version) = response.version {
                fields.insert("etag".to_owned(), Value::String(format!("W/\"{version}\"")));
            }
            if let Some(last_modified_ms) = response.last_modified_ms {
                fields.insert(
                    "lastModified".to_owned(),
                    Value::String(datetime::format_instant(last_modified_ms)),
                );
            }
            json!({ "response": fields })
        })
        .collect();
    let mut bundle = json!({ "resourceType": "Bundle", "type": "transaction-response" });
    if !entries.is_empty() {
        bundle["entry"] = Value::Array(entries);
    }
    bundle
}

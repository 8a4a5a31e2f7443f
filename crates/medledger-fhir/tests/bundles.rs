//! Bundles through the public API: transaction parsing with urn:uuid resolution and its
//! limits, and the searchset, history, transaction-response and OperationOutcome builders.

mod common;

use common::{PATIENT_ID, example, example_bytes};
use medledger_fhir::{
    EntryResponse, FhirError, Handling, HistoryVersion, IssueType, MAX_BUNDLE_ENTRIES, ResourceType,
    SearchQuery, Severity, Target, TransactionMethod, history_bundle, operation_outcome, parse_transaction,
    rewrite_references, searchset_bundle, stamp, transaction_response_bundle, urn_map,
};
use serde_json::{Value, json};

const BASE: &str = "https://node-a.example.invalid/fhir/";
const PATIENT_URN: &str = "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a";

fn transaction(mutate: impl FnOnce(&mut Value)) -> Result<Vec<medledger_fhir::TransactionEntry>, FhirError> {
    let mut bundle = example("transaction-bundle");
    mutate(&mut bundle);
    parse_transaction(&serde_json::to_vec(&bundle).expect("serialise"))
}

#[test]
fn the_example_transaction_parses_and_resolves() {
    let entries = parse_transaction(&example_bytes("transaction-bundle")).expect("valid transaction");
    let types: Vec<ResourceType> = entries.iter().map(|entry| entry.resource.resource_type()).collect();
    assert_eq!(
        types,
        [
            ResourceType::Patient,
            ResourceType::Observation,
            ResourceType::Provenance,
            ResourceType::Organization
        ]
    );
    assert_eq!(entries[0].method, TransactionMethod::Create);
    assert_eq!(
        entries[3].method,
        TransactionMethod::Update { id: "a0b1c2d3e4f5061728394a5b6c7d8e9f".to_owned(), if_match: Some(3) }
    );
    let observation = &entries[1].resource;
    assert_eq!(observation.patient_reference(), None, "the subject is still a urn:uuid");
    assert!(matches!(&observation.references()[0].target, Target::Urn(urn) if urn == PATIENT_URN));

    let ids: Vec<String> = vec![
        "pt-00000000000000000000000000000001".to_owned(),
        "00000000000000000000000000000002".to_owned(),
        "00000000000000000000000000000003".to_owned(),
        "a0b1c2d3e4f5061728394a5b6c7d8e9f".to_owned(),
    ];
    let map = urn_map(&entries, &ids);
    assert_eq!(map.len(), 3);
    let observation = entries[1].resolve(&map).expect("resolves");
    assert_eq!(observation.patient_reference(), Some("pt-00000000000000000000000000000001"));
    assert_eq!(observation.json()["subject"]["reference"], "Patient/pt-00000000000000000000000000000001");
    let provenance = entries[2].resolve(&map).expect("resolves");
    assert_eq!(provenance.json()["target"][0]["reference"], "Observation/00000000000000000000000000000002");

    let mut untouched = json!({"subject": {"reference": "Patient/x"}, "note": [{"text": PATIENT_URN}]});
    rewrite_references(&mut untouched, &map);
    assert_eq!(untouched["subject"]["reference"], "Patient/x");
    assert_eq!(untouched["note"][0]["text"], PATIENT_URN, "only Reference.reference is rewritten");
}

type BundleMutation = (&'static str, fn(&mut Value), &'static str);

const BAD_TRANSACTIONS: &[BundleMutation] = &[
    ("batch", |b| b["type"] = json!("batch"), "Bundle.type"),
    ("searchset", |b| b["type"] = json!("searchset"), "Bundle.type"),
    ("not a Bundle", |b| b["resourceType"] = json!("Patient"), "Bundle.resourceType"),
    ("no entries", |b| b["entry"] = json!([]), "Bundle.entry"),
    ("unknown Bundle element", |b| b["total"] = json!(4), "Bundle.total"),
    (
        "unknown entry element",
        |b| b["entry"][0]["search"] = json!({"mode": "match"}),
        "Bundle.entry[0].search",
    ),
    ("DELETE", |b| b["entry"][3]["request"]["method"] = json!("DELETE"), "Bundle.entry[3].request.method"),
    (
        "conditional create",
        |b| b["entry"][0]["request"]["ifNoneExist"] = json!("identifier=x"),
        "Bundle.entry[0].request.ifNoneExist",
    ),
    (
        "POST with a query",
        |b| b["entry"][0]["request"]["url"] = json!("Patient?name=x"),
        "Bundle.entry[0].request.url",
    ),
    (
        "PUT without an id",
        |b| b["entry"][3]["request"]["url"] = json!("Organization"),
        "Bundle.entry[3].request.url",
    ),
    ("PUT id differs", |b| b["entry"][3]["resource"]["id"] = json!("ffff"), "Bundle.entry[3].resource.id"),
    ("bad ifMatch", |b| b["entry"][3]["request"]["ifMatch"] = json!("3"), "Bundle.entry[3].request.ifMatch"),
    (
        "create fullUrl not urn:uuid",
        |b| b["entry"][0]["fullUrl"] = json!("Patient/1"),
        "Bundle.entry[0].fullUrl",
    ),
    (
        "resource type differs from url",
        |b| b["entry"][0]["request"]["url"] = json!("Practitioner"),
        "Bundle.entry[0].resource.resourceType",
    ),
    ("duplicate fullUrl", |b| b["entry"][1]["fullUrl"] = json!(PATIENT_URN), "Bundle.entry[1].fullUrl"),
    (
        "update twice",
        |b| {
            let entry = b["entry"][3].clone();
            b["entry"].as_array_mut().expect("entries").push(entry);
        },
        "Bundle.entry[4].request.url",
    ),
    (
        "dangling urn:uuid",
        |b| {
            b["entry"][1]["resource"]["subject"]["reference"] =
                json!("urn:uuid:00000000-0000-4000-8000-000000000000");
        },
        "Bundle.entry[1].resource.subject",
    ),
    (
        "urn:uuid of the wrong type",
        |b| {
            b["entry"][1]["resource"]["subject"]["reference"] =
                json!("urn:uuid:88f151c0-a954-468a-88bd-5ae15c08e059");
        },
        "Bundle.entry[1].resource.subject",
    ),
];

#[test]
fn bad_transactions_are_refused_with_a_path() {
    for &(what, mutate, path) in BAD_TRANSACTIONS {
        let error = transaction(mutate).expect_err(what);
        assert_eq!(error.path(), Some(path), "{what}: {error}");
        assert_eq!(error.http_status(), 400, "{what}");
    }
}

#[test]
fn an_invalid_resource_in_a_transaction_is_reported_at_its_entry() {
    let error =
        transaction(|bundle| bundle["entry"][1]["resource"]["status"] = json!("done")).expect_err("bad code");
    assert!(
        matches!(&error, FhirError::InvalidCode { path, .. } if path == "Bundle.entry[1].resource.status"),
        "{error}"
    );
    let error = transaction(|bundle| {
        bundle["entry"][1]["resource"].as_object_mut().expect("object").remove("code");
    })
    .expect_err("missing code");
    assert_eq!(error.path(), Some("Bundle.entry[1].resource.code"));
}

#[test]
fn transactions_are_bounded() {
    let error = transaction(|bundle| {
        let entry = bundle["entry"][2].clone();
        let entries = bundle["entry"].as_array_mut().expect("entries");
        entries.clear();
        entries.resize(MAX_BUNDLE_ENTRIES + 1, entry);
    })
    .expect_err("too many");
    assert_eq!(error, FhirError::TooManyEntries { count: MAX_BUNDLE_ENTRIES + 1, max: MAX_BUNDLE_ENTRIES });
    let error = transaction(|bundle| {
        let entry = json!({"resource": {"resourceType": "Practitioner", "active": true}, "request": {"method": "POST", "url": "Practitioner"}});
        let entries = bundle["entry"].as_array_mut().expect("entries");
        entries.clear();
        entries.resize(MAX_BUNDLE_ENTRIES, entry);
    });
    assert_eq!(error.expect("exactly the limit").len(), MAX_BUNDLE_ENTRIES);
}

fn observation_query(text: &str) -> SearchQuery {
    let pairs: Vec<(String, String)> = text
        .split('&')
        .map(|pair| {
            pair.split_once('=').map(|(name, value)| (name.to_owned(), value.to_owned())).expect("pair")
        })
        .collect();
    SearchQuery::parse(ResourceType::Observation, &pairs, Handling::Lenient).expect("query")
}

#[test]
fn searchset_bundles_link_pages_and_report_ignored_parameters() {
    let query = observation_query(&format!("patient={PATIENT_ID}&_count=2&_offset=2&_elements=code"));
    let resources = vec![example("observation-blood-pressure"), example("observation-hba1c")];
    let bundle = searchset_bundle(BASE, &query, 5, resources);
    assert_eq!((bundle["type"].as_str(), bundle["total"].as_u64()), (Some("searchset"), Some(5)));
    let base = "https://node-a.example.invalid/fhir/Observation";
    let links: Vec<(&str, &str)> = bundle["link"]
        .as_array()
        .expect("links")
        .iter()
        .map(|link| (link["relation"].as_str().expect("relation"), link["url"].as_str().expect("url")))
        .collect();
    assert_eq!(
        links,
        [
            ("self", format!("{base}?patient=Patient/{PATIENT_ID}&_count=2&_offset=2").as_str()),
            ("next", format!("{base}?patient=Patient/{PATIENT_ID}&_count=2&_offset=4").as_str()),
            ("previous", format!("{base}?patient=Patient/{PATIENT_ID}&_count=2").as_str()),
        ]
    );
    let entries = bundle["entry"].as_array().expect("entries");
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0]["fullUrl"], format!("{base}/7e1c3b2a9f8d4e6c8b0a1d2e3f405162"));
    assert_eq!(entries[0]["search"]["mode"], "match");
    assert_eq!(entries[2]["search"]["mode"], "outcome");
    assert_eq!(entries[2]["resource"]["issue"][0]["severity"], "warning");
    assert!(entries[2]["resource"]["issue"][0]["diagnostics"].as_str().expect("text").contains("_elements"));

    let last_page = searchset_bundle(BASE, &observation_query("_count=2&_offset=4"), 5, vec![]);
    let relations: Vec<&str> = last_page["link"]
        .as_array()
        .expect("links")
        .iter()
        .filter_map(|link| link["relation"].as_str())
        .collect();
    assert_eq!(relations, ["self", "previous"]);
    assert!(last_page.get("entry").is_none(), "FHIR JSON has no empty arrays");
}

#[test]
fn history_bundles_list_versions_newest_first() {
    let versions: Vec<HistoryVersion> = (1..=3)
        .map(|version| {
            let mut resource = example("condition");
            stamp(&mut resource, "9b8a7c6d5e4f30211f2e3d4c5b6a7980", version, 1_709_632_800_000 + version);
            HistoryVersion { version, last_updated_ms: 1_709_632_800_000 + version, resource }
        })
        .collect();
    let bundle = history_bundle(BASE, ResourceType::Condition, "9b8a7c6d5e4f30211f2e3d4c5b6a7980", versions);
    assert_eq!((bundle["type"].as_str(), bundle["total"].as_u64()), (Some("history"), Some(3)));
    let entries = bundle["entry"].as_array().expect("entries");
    assert_eq!(entries[0]["resource"]["meta"]["versionId"], "3");
    assert_eq!(
        entries[0]["request"],
        json!({"method": "PUT", "url": "Condition/9b8a7c6d5e4f30211f2e3d4c5b6a7980"})
    );
    assert_eq!(entries[0]["response"]["etag"], "W/\"3\"");
    assert_eq!(entries[2]["request"], json!({"method": "POST", "url": "Condition"}));
    assert_eq!(entries[2]["response"]["status"], "201 Created");
    assert_eq!(entries[2]["response"]["lastModified"], "2024-03-05T10:00:00.001Z");
    assert_eq!(
        bundle["link"][0]["url"],
        "https://node-a.example.invalid/fhir/Condition/9b8a7c6d5e4f30211f2e3d4c5b6a7980/_history"
    );
}

#[test]
fn transaction_responses_and_outcomes_are_well_formed() {
    let bundle = transaction_response_bundle(vec![
        EntryResponse {
            status: 201,
            location: Some("Patient/pt-00000000000000000000000000000001/_history/1".to_owned()),
            version: Some(1),
            last_modified_ms: Some(0),
        },
        EntryResponse { status: 200, location: None, version: Some(4), last_modified_ms: None },
    ]);
    assert_eq!(bundle["type"], "transaction-response");
    assert_eq!(bundle["entry"][0]["response"]["status"], "201 Created");
    assert_eq!(bundle["entry"][0]["response"]["etag"], "W/\"1\"");
    assert_eq!(bundle["entry"][0]["response"]["lastModified"], "1970-01-01T00:00:00.000Z");
    assert_eq!(bundle["entry"][1]["response"], json!({"status": "200 OK", "etag": "W/\"4\""}));

    let outcome = operation_outcome(Severity::Error, IssueType::Forbidden, "no consent for this patient");
    assert_eq!(
        outcome["issue"][0],
        json!({"severity": "error", "code": "forbidden", "diagnostics": "no consent for this patient"})
    );
    assert!(IssueType::ALL.iter().any(|issue| issue.as_str() == "throttled"));

    let error = parse_transaction(b"{}").expect_err("not a transaction");
    let outcome = error.to_operation_outcome();
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    assert_eq!(outcome["issue"][0]["expression"], json!(["Bundle.resourceType"]));
}

//! The FHIR R4 API end to end: a real `medledger dev` process, its demo charts, bearer
//! sessions opened with the CLI, and plain HTTP.

mod support;

use redb::ReadableTable as _;
use serde_json::{Value, json};
use support::{DevNode, Reply};

/// A bearer token for a demo member, opened with `medledger session`.
fn token(node: &DevNode, org: &str, member: &str) -> String {
    let output = support::run(&["--node", &node.url, "session", "--key", &node.key_arg(org, member)]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("utf-8").trim().to_owned()
}

fn request(method: &str, url: &str, token: &str, body: Option<&Value>, headers: &[(&str, &str)]) -> Reply {
    let mut builder = ureq::http::Request::builder()
        .method(method)
        .uri(url)
        .header("authorization", format!("Bearer {token}"));
    if body.is_some() {
        builder = builder.header("content-type", "application/fhir+json");
    }
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let bytes = body.map(|body| body.to_string().into_bytes()).unwrap_or_default();
    support::send(builder.body(bytes).expect("a valid request"))
}

/// The demo Patient `index` (0-based, in id order) as Dr Ruiz sees it.
fn demo_patient_ids(node: &DevNode, token: &str) -> Vec<String> {
    let bundle = request("GET", &format!("{}/fhir/Patient", node.url), token, None, &[]);
    assert_eq!(bundle.status, 200, "{}", String::from_utf8_lossy(&bundle.body));
    let bundle = bundle.json();
    assert_eq!(bundle["total"], 3, "three demo patients: {bundle}");
    bundle["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|entry| entry["resource"]["id"].as_str().expect("an id").to_owned())
        .collect()
}

fn glucose(patient: &str, value: f64) -> Value {
    json!({
        "resourceType": "Observation",
        "status": "final",
        "category": [{ "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "laboratory",
        }] }],
        "code": { "coding": [{ "system": "http://loinc.org", "code": "2339-0", "display": "Glucose" }] },
        "subject": { "reference": format!("Patient/{patient}") },
        "effectiveDateTime": "2026-11-20T08:30:00Z",
        "valueQuantity": { "value": value, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL" },
    })
}

#[test]
fn a_clinician_creates_reads_updates_searches_and_verifies_records() {
    let node = DevNode::start();
    let base = format!("{}/fhir", node.url);
    let doctor = token(&node, "st-mary-hospital", "dr-ana-ruiz");

    let metadata = support::get(&format!("{base}/metadata"));
    assert_eq!(metadata.status, 200);
    assert!(metadata.content_type.starts_with("application/fhir+json"));
    assert_eq!(metadata.json()["fhirVersion"], "4.0.1");

    let patients = demo_patient_ids(&node, &doctor);
    let patient = &patients[0];
    let created =
        request("POST", &format!("{base}/Observation"), &doctor, Some(&glucose(patient, 98.0)), &[]);
    assert_eq!(created.status, 201, "{}", String::from_utf8_lossy(&created.body));
    assert_eq!(created.header("etag"), Some("W/\"1\""));
    let location = created.header("location").expect("a Location").to_owned();
    let id = created.json()["id"].as_str().expect("an assigned id").to_owned();
    assert_eq!(location, format!("{base}/Observation/{id}/_history/1"));
    assert_eq!(created.json()["meta"]["versionId"], "1");

    let read = request("GET", &format!("{base}/Observation/{id}"), &doctor, None, &[]);
    assert_eq!(read.status, 200);
    assert_eq!(read.json()["valueQuantity"]["value"], 98.0);

    let mut changed = glucose(patient, 104.0);
    changed["id"] = json!(id);
    let url = format!("{base}/Observation/{id}");
    let updated = request("PUT", &url, &doctor, Some(&changed), &[("if-match", "W/\"1\"")]);
    assert_eq!(updated.status, 200, "{}", String::from_utf8_lossy(&updated.body));
    assert_eq!(updated.header("etag"), Some("W/\"2\""));
    // A writer who saw version 1 is told the record moved on; nothing is written.
    request("PUT", &url, &doctor, Some(&changed), &[("if-match", "W/\"1\"")]).assert_outcome(412, "conflict");

    let first = request("GET", &format!("{url}/_history/1"), &doctor, None, &[]);
    assert_eq!(first.json()["valueQuantity"]["value"], 98.0);
    let history = request("GET", &format!("{url}/_history"), &doctor, None, &[]).json();
    assert_eq!(history["type"], "history");
    assert_eq!(history["total"], 2);
    assert_eq!(history["entry"][0]["resource"]["meta"]["versionId"], "2");

    let search = format!("{base}/Observation?patient={patient}&code=http://loinc.org|2339-0");
    let found = request("GET", &search, &doctor, None, &[]).json();
    assert_eq!(found["type"], "searchset");
    assert_eq!(found["total"], 1, "{found}");
    assert_eq!(found["entry"][0]["resource"]["valueQuantity"]["value"], 104.0);
    let all =
        request("GET", &format!("{base}/Observation?subject=Patient/{patient}&_count=1"), &doctor, None, &[]);
    let all = all.json();
    assert!(all["total"].as_u64().expect("a total") > 1, "the demo chart has observations: {all}");
    let links = all["link"].as_array().expect("links");
    assert!(links.iter().any(|link| link["relation"] == "next"), "{all}");

    // Once its anchor is in a block, each version has a Provenance on the chain and verifies
    // against its anchor.
    let provenance_url = provenance_url(&updated);
    wait_until_anchored(&node, &provenance_url);
    let provenance = request("GET", &provenance_url, &doctor, None, &[]).json();
    assert_eq!(provenance["resourceType"], "Provenance");
    assert_eq!(provenance["target"][0]["reference"], format!("Observation/{id}/_history/2"));
    assert_eq!(provenance["agent"][0]["onBehalfOf"]["identifier"]["value"], "st-mary-hospital");
    let verify = request("GET", &format!("{url}/$verify"), &doctor, None, &[]).json();
    let parameter = |name: &str| {
        verify["parameter"].as_array().expect("parameters").iter().find(|p| p["name"] == name).cloned()
    };
    assert_eq!(parameter("verified").expect("verified")["valueBoolean"], true, "{verify}");
    assert_eq!(parameter("version").expect("version")["valuePositiveInt"], 2);

    // The CLI speaks the same API.
    let key = node.key_arg("st-mary-hospital", "dr-ana-ruiz");
    let reference = format!("Observation/{id}");
    let output = support::run(&["--node", &node.url, "record", "verify", &reference, "--key", &key]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let output =
        support::run(&["--node", &node.url, "record", "get", &reference, "--version-id", "1", "--key", &key]);
    let read: Value = serde_json::from_slice(&output.stdout).expect("FHIR JSON");
    assert_eq!(read["valueQuantity"]["value"], 98.0);
}

#[test]
fn bad_requests_get_operation_outcomes_and_write_nothing() {
    let node = DevNode::start();
    let base = format!("{}/fhir", node.url);
    let doctor = token(&node, "st-mary-hospital", "dr-ana-ruiz");
    let patient = demo_patient_ids(&node, &doctor)[0].clone();
    let before = support::ledger_fingerprint(&node.url);
    let post = |body: &Value| request("POST", &format!("{base}/Observation"), &doctor, Some(body), &[]);

    let raw = ureq::http::Request::builder()
        .method("POST")
        .uri(format!("{base}/Observation"))
        .header("authorization", format!("Bearer {doctor}"))
        .header("content-type", "application/fhir+json")
        .body(b"{\"resourceType\": \"Observation\",".to_vec())
        .expect("a request");
    support::send(raw).assert_outcome(400, "structure");
    let mut wrong_type = glucose(&patient, 1.0);
    wrong_type["resourceType"] = json!("Condition");
    post(&wrong_type).assert_outcome(400, "invalid");
    let mut missing = glucose(&patient, 1.0);
    missing.as_object_mut().expect("an object").remove("status");
    post(&missing).assert_outcome(400, "required");
    post(&glucose("pt-0123456789abcdef0123456789abcdef", 1.0)).assert_outcome(422, "not-found");
    let document = json!({
        "resourceType": "DocumentReference",
        "status": "current",
        "subject": { "reference": format!("Patient/{patient}") },
        "content": [{ "attachment": { "contentType": "application/pdf", "data": "A".repeat(6 * 1024 * 1024) } }],
    });
    request("POST", &format!("{base}/DocumentReference"), &doctor, Some(&document), &[])
        .assert_outcome(413, "too-long");
    let strict = [("prefer", "handling=strict")];
    request("GET", &format!("{base}/Observation?colour=blue"), &doctor, None, &strict)
        .assert_outcome(400, "not-supported");
    let lenient = request("GET", &format!("{base}/Observation?colour=blue"), &doctor, None, &[]).json();
    assert_eq!(lenient["type"], "searchset");
    request("GET", &format!("{base}/Observation/{}", "ab".repeat(16)), &doctor, None, &[])
        .assert_outcome(404, "not-found");
    request("DELETE", &format!("{base}/Observation/{}", "ab".repeat(16)), &doctor, None, &[])
        .assert_outcome(405, "not-supported");

    // Without credentials, or with a role that may not write: refused.
    support::get(&format!("{base}/Patient/{patient}")).assert_outcome(401, "login");
    let pharmacist = token(&node, "city-pharmacy", "pharm-maria-lopez");
    request("POST", &format!("{base}/Observation"), &pharmacist, Some(&glucose(&patient, 1.0)), &[])
        .assert_outcome(403, "forbidden");
    assert_eq!(support::ledger_fingerprint(&node.url), before, "nothing was written");
}

#[test]
fn reading_across_organisations_follows_care_relationships_and_the_patient_sees_their_own() {
    let node = DevNode::start();
    let base = format!("{}/fhir", node.url);
    let doctor = token(&node, "st-mary-hospital", "dr-ana-ruiz");
    let patients = demo_patient_ids(&node, &doctor);
    let chart = |token: &str, patient: &str| {
        request("GET", &format!("{base}/Condition?patient={patient}"), token, None, &[])
    };
    // Dr Ruiz referred patient-1 to Lakeside General in the demo: its physician reads that
    // chart, not the others.
    let lakeside = token(&node, "lakeside-general-hospital", "dr-sam-okafor");
    let referred = demo_patient(&node, &doctor, "patient-1", &patients);
    let read = request("GET", &format!("{base}/Patient/{referred}"), &lakeside, None, &[]);
    assert_eq!(read.status, 200, "{}", String::from_utf8_lossy(&read.body));
    assert!(chart(&lakeside, &referred).json()["total"].as_u64().expect("a total") >= 1);
    for other in patients.iter().filter(|patient| **patient != referred) {
        request("GET", &format!("{base}/Patient/{other}"), &lakeside, None, &[])
            .assert_outcome(403, "forbidden");
        assert_eq!(chart(&lakeside, other).json()["total"], 0, "search leaves out what may not be read");
    }
    // The patient reads their own chart, and no one else's.
    let patient_token = token(&node, "patient-link", "patient-1");
    let own = request("GET", &format!("{base}/Patient/{referred}"), &patient_token, None, &[]);
    assert_eq!(own.status, 200, "{}", String::from_utf8_lossy(&own.body));
    let stranger = patients.iter().find(|patient| **patient != referred).expect("another patient");
    request("GET", &format!("{base}/Patient/{stranger}"), &patient_token, None, &[])
        .assert_outcome(403, "forbidden");
}

/// The URL of the Provenance a create or update links to.
fn provenance_url(written: &Reply) -> String {
    let link = written.header("link").expect("a provenance link");
    link.trim_start_matches('<').split('>').next().expect("a URL").to_owned()
}

/// Waits until the anchor of a written version is in a block: the Provenance's id is the
/// anchor's transaction id.
fn wait_until_anchored(node: &DevNode, provenance_url: &str) {
    let anchor_tx = provenance_url.rsplit('/').next().expect("the Provenance id");
    support::wait_until_committed(&node.url, anchor_tx);
}

/// The id of the demo chart enrolled as `member` (its Patient's id is the member's patient id).
fn demo_patient(node: &DevNode, token: &str, member: &str, patients: &[String]) -> String {
    let key = node.key("patient-link", member).public_key();
    let account = request("GET", &format!("{}/v1/members/{key}", node.url), token, None, &[]).json();
    let patient = account["patient_id"].as_str().expect("a patient id").to_owned();
    assert!(patients.contains(&patient), "{account}");
    patient
}

#[test]
fn a_ciphertext_changed_at_rest_is_refused_with_an_alarm() {
    let (data_dir, _, id) = stopped_node_with_one_observation();
    flip_a_ciphertext_byte(data_dir.path(), &id);
    let node = DevNode::start_in(data_dir);
    let base = format!("{}/fhir", node.url);
    let doctor = token(&node, "st-mary-hospital", "dr-ana-ruiz");
    request("GET", &format!("{base}/Observation/{id}"), &doctor, None, &[]).assert_outcome(500, "exception");
    let metrics = String::from_utf8(support::get(&format!("{}/metrics", node.url)).body).expect("text");
    assert!(metrics.contains("medledger_vault_integrity_failures_total 1"), "{metrics}");
    let verify = request("GET", &format!("{base}/Observation/{id}/$verify"), &doctor, None, &[]).json();
    assert_eq!(verify["parameter"][0], json!({ "name": "verified", "valueBoolean": false }), "{verify}");
}

/// A dev node's data directory after Dr Ruiz created one glucose Observation for the first
/// demo patient, it was committed and the node stopped: (data dir, patient id, record id).
fn stopped_node_with_one_observation() -> (tempfile::TempDir, String, String) {
    let mut node = DevNode::start();
    let base = format!("{}/fhir", node.url);
    let doctor = token(&node, "st-mary-hospital", "dr-ana-ruiz");
    let patient = demo_patient_ids(&node, &doctor)[0].clone();
    let created =
        request("POST", &format!("{base}/Observation"), &doctor, Some(&glucose(&patient, 91.0)), &[]);
    assert_eq!(created.status, 201);
    let id = created.json()["id"].as_str().expect("an id").to_owned();
    wait_until_anchored(&node, &provenance_url(&created));
    node.process.stop_cleanly("the dev node");
    let data_dir = std::mem::replace(&mut node.data_dir, tempfile::tempdir().expect("temp dir"));
    (data_dir, patient, id)
}

/// Flips one byte in the middle of the stored version of Observation `id`, as someone with
/// access to the disk might.
fn flip_a_ciphertext_byte(data_dir: &std::path::Path, id: &str) {
    let record = hex::decode(id).expect("a hex id");
    let db = redb::Database::open(data_dir.join("vault.redb")).expect("the vault database");
    let table: redb::TableDefinition<'_, &[u8], &[u8]> = redb::TableDefinition::new("versions");
    let write = db.begin_write().expect("a write transaction");
    {
        let mut versions = write.open_table(table).expect("the versions table");
        let (key, mut value) = versions
            .iter()
            .expect("iterate")
            .map(|entry| entry.expect("an entry"))
            .map(|(key, value)| (key.value().to_vec(), value.value().to_vec()))
            .find(|(key, _)| key.windows(record.len()).any(|window| window == record.as_slice()))
            .expect("the version is stored");
        let middle = value.len() / 2;
        value[middle] ^= 0x01;
        versions.insert(key.as_slice(), value.as_slice()).expect("tampered");
    }
    write.commit().expect("committed");
}

#[test]
fn a_version_the_chain_does_not_name_is_anchored_at_the_next_start() {
    let (data_dir, patient, id) = stopped_node_with_one_observation();
    // What a node stopped between its vault commit and its anchor leaves behind: version 2,
    // durable in the vault, that no transaction names.
    write_unanchored_second_version(data_dir.path(), &id, 97.0);
    let node = DevNode::start_in(data_dir);
    let base = format!("{}/fhir", node.url);
    let url = format!("{base}/Observation/{id}");
    let doctor = token(&node, "st-mary-hospital", "dr-ana-ruiz");
    // The node anchors the version on its record writer's thread, after it started serving:
    // wait until `$verify` (which checks the newest anchored version) reaches version 2.
    let verify = support::wait_for("version 2 is anchored", support::CONDITION_TIMEOUT, || {
        let verify = request("GET", &format!("{url}/$verify"), &doctor, None, &[]).json();
        let anchored = verify["parameter"]
            .as_array()
            .expect("parameters")
            .iter()
            .find(|parameter| parameter["name"] == "version")
            .map(|parameter| parameter["valuePositiveInt"].clone());
        if anchored == Some(json!(2)) { Ok(verify) } else { Err(verify.to_string()) }
    });
    let parameter = |name: &str| {
        verify["parameter"].as_array().expect("parameters").iter().find(|p| p["name"] == name).cloned()
    };
    assert_eq!(parameter("verified").expect("verified")["valueBoolean"], true, "{verify}");
    let read = request("GET", &url, &doctor, None, &[]);
    assert_eq!(read.header("etag"), Some("W/\"2\""));
    assert_eq!(read.json()["valueQuantity"]["value"], 97.0);
    // The record takes updates again: its next anchor follows the chain's head.
    let mut changed = glucose(&patient, 99.0);
    changed["id"] = json!(id);
    let updated = request("PUT", &url, &doctor, Some(&changed), &[("if-match", "W/\"2\"")]);
    assert_eq!(updated.status, 200, "{}", String::from_utf8_lossy(&updated.body));
    assert_eq!(updated.header("etag"), Some("W/\"3\""));
}

/// Seals version 2 of Observation `id` with another value straight into the stopped node's
/// vault, with its key, as the node itself would have.
fn write_unanchored_second_version(data_dir: &std::path::Path, id: &str, value: f64) {
    use medledger_types::{RecordId, ResourceType};
    let record = RecordId(hex::decode(id).expect("a hex id").try_into().expect("16 bytes"));
    let vault = medledger_vault::Vault::open(data_dir, None).expect("the dev vault opens with its key");
    let first = vault.get(ResourceType::Observation, record, 1).expect("read").expect("version 1 is stored");
    let mut body: Value =
        serde_json::from_slice(&vault.decrypt(&first, None).expect("decrypts")).expect("JSON");
    body["meta"]["versionId"] = json!("2");
    body["valueQuantity"]["value"] = json!(value);
    let plaintext = serde_json::to_vec(&body).expect("JSON");
    let sealed = vault.seal(ResourceType::Observation, record, 2, &plaintext);
    let second = medledger_vault::StoredVersion {
        version: 2,
        last_updated_ms: first.last_updated_ms + 1,
        ciphertext: sealed.ciphertext,
        digest: sealed.digest,
        wrapped_key: sealed.wrapped_key,
        ..first
    };
    vault.commit(&[second]).expect("version 2 is durable");
}

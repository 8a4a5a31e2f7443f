//! Resource validation through the public API: every example is accepted and keeps its
//! content; each mutation that breaks an R4 rule is refused with the right issue code and
//! path, and without echoing the value sent.

mod common;

use common::{EXAMPLES, PATIENT_ID, at, example, example_bytes, parse, parse_json, reject, remove};
use medledger_fhir::{
    DateRange, FhirError, MAX_ATTACHMENT_BYTES, MAX_RESOURCE_BYTES, ResourceType, Target, Token,
    parse_resource, parse_value, stamp,
};
use serde_json::{Value, json};

#[test]
fn every_example_is_valid_and_unchanged() {
    for &(name, resource_type) in EXAMPLES {
        let resource = parse(name);
        assert_eq!(resource.resource_type(), resource_type);
        assert_eq!(resource.json(), &example(name), "{name}: validation must not change the content");
    }
}

#[test]
fn every_resource_type_has_an_example() {
    for resource_type in ResourceType::ALL {
        assert!(EXAMPLES.iter().any(|(_, example_type)| example_type == resource_type), "{resource_type}");
    }
}

/// One mutation: example, what it breaks, the change, the expected issue code and path.
type Mutation = (&'static str, &'static str, fn(&mut Value), &'static str, Option<&'static str>);

const MUTATIONS: &[Mutation] = &[
    (
        "patient",
        "gender outside AdministrativeGender",
        |v| v["gender"] = json!("F"),
        "code-invalid",
        Some("Patient.gender"),
    ),
    (
        "patient",
        "US-style birth date",
        |v| v["birthDate"] = json!("04/12/1968"),
        "value",
        Some("Patient.birthDate"),
    ),
    (
        "patient",
        "unknown element",
        |v| v["socialSecurityNumber"] = json!("000-00-0000"),
        "structure",
        Some("Patient.socialSecurityNumber"),
    ),
    ("patient", "id with an underscore", |v| v["id"] = json!("pt_0123"), "value", Some("Patient.id")),
    (
        "patient",
        "two deceased[x] types",
        |v| v["deceasedDateTime"] = json!("2020-01-01"),
        "value",
        Some("Patient.deceased[x]"),
    ),
    (
        "patient",
        "contact without details (pat-1)",
        |v| remove_contact_details(v),
        "invariant",
        Some("Patient.contact[0]"),
    ),
    (
        "patient",
        "extension without url",
        |v| remove(at(v, "/extension/0"), "url"),
        "required",
        Some("Patient.extension[0].url"),
    ),
    ("patient", "name as an object", |v| v["name"] = v["name"][0].clone(), "value", Some("Patient.name")),
    (
        "patient",
        "narrative without XHTML namespace",
        |v| v["text"]["div"] = json!("<div>x</div>"),
        "value",
        Some("Patient.text.div"),
    ),
    ("patient", "empty array", |v| v["address"] = json!([]), "value", Some("Patient.address")),
    (
        "patient",
        "contained resource",
        |v| v["contained"] = json!([{"resourceType": "Organization", "name": "x"}]),
        "value",
        Some("Patient.contained"),
    ),
    (
        "practitioner",
        "qualification without code",
        |v| remove(at(v, "/qualification/0"), "code"),
        "required",
        Some("Practitioner.qualification[0].code"),
    ),
    (
        "practitioner",
        "given name as a string",
        |v| v["name"][0]["given"] = json!("Morgan"),
        "value",
        Some("Practitioner.name[0].given"),
    ),
    (
        "practitioner",
        "telecom value without system (cpt-2)",
        |v| remove(at(v, "/telecom/0"), "system"),
        "invariant",
        Some("Practitioner.telecom[0]"),
    ),
    (
        "organization",
        "neither name nor identifier (org-1)",
        |v| {
            remove(v, "name");
            remove(v, "identifier");
        },
        "invariant",
        Some("Organization"),
    ),
    (
        "organization",
        "home address (org-2)",
        |v| v["address"][0]["use"] = json!("home"),
        "invariant",
        Some("Organization"),
    ),
    (
        "organization",
        "reference to an Endpoint",
        |v| v["endpoint"] = json!([{"reference": "Endpoint/1"}]),
        "value",
        Some("Organization.endpoint[0].reference"),
    ),
    (
        "observation-blood-pressure",
        "no status",
        |v| remove(v, "status"),
        "required",
        Some("Observation.status"),
    ),
    (
        "observation-blood-pressure",
        "status outside ObservationStatus",
        |v| v["status"] = json!("done"),
        "code-invalid",
        Some("Observation.status"),
    ),
    (
        "observation-blood-pressure",
        "subject is a Practitioner",
        |v| v["subject"]["reference"] = json!("Practitioner/5c2f0e8a9b1d4c3e8f7a6b5c4d3e2f10"),
        "value",
        Some("Observation.subject.reference"),
    ),
    (
        "observation-blood-pressure",
        "absolute reference",
        |v| v["subject"]["reference"] = json!("https://other.example/fhir/Patient/1"),
        "value",
        Some("Observation.subject.reference"),
    ),
    (
        "observation-blood-pressure",
        "reference type disagrees",
        |v| v["subject"]["type"] = json!("Group"),
        "value",
        Some("Observation.subject.type"),
    ),
    (
        "observation-blood-pressure",
        "quantity value as a string",
        |v| v["component"][0]["valueQuantity"]["value"] = json!("128"),
        "value",
        Some("Observation.component[0].valueQuantity.value"),
    ),
    (
        "observation-blood-pressure",
        "dateTime without time zone",
        |v| v["effectiveDateTime"] = json!("2024-03-05T09:30:00"),
        "value",
        Some("Observation.effectiveDateTime"),
    ),
    (
        "observation-blood-pressure",
        "component without code",
        |v| remove(at(v, "/component/1"), "code"),
        "required",
        Some("Observation.component[1].code"),
    ),
    (
        "observation-blood-pressure",
        "wrong resourceType",
        |v| v["resourceType"] = json!("Condition"),
        "invalid",
        None,
    ),
    ("observation-hba1c", "no code", |v| remove(v, "code"), "required", Some("Observation.code")),
    (
        "observation-hba1c",
        "two value[x] types",
        |v| v["valueString"] = json!("7.2 %"),
        "value",
        Some("Observation.value[x]"),
    ),
    (
        "observation-hba1c",
        "dataAbsentReason with a value (obs-6)",
        |v| v["dataAbsentReason"] = json!({"text": "n/a"}),
        "invariant",
        Some("Observation"),
    ),
    (
        "observation-hba1c",
        "empty reference range (obs-3)",
        |v| v["referenceRange"] = json!([{"type": {"text": "normal"}}]),
        "invariant",
        Some("Observation.referenceRange[0]"),
    ),
    (
        "observation-hba1c",
        "unit code without system (qty-3)",
        |v| remove(at(v, "/valueQuantity"), "system"),
        "invariant",
        Some("Observation.valueQuantity"),
    ),
    (
        "observation-hba1c",
        "issued not an instant",
        |v| v["issued"] = json!("2024-03-05"),
        "value",
        Some("Observation.issued"),
    ),
    (
        "observation-hba1c",
        "empty object",
        |v| v["bodySite"] = json!({}),
        "invariant",
        Some("Observation.bodySite"),
    ),
    ("condition", "no subject", |v| remove(v, "subject"), "required", Some("Condition.subject")),
    (
        "condition",
        "clinicalStatus outside its value set",
        |v| v["clinicalStatus"]["coding"][0]["code"] = json!("current"),
        "code-invalid",
        Some("Condition.clinicalStatus.coding"),
    ),
    (
        "condition",
        "clinicalStatus from another system",
        |v| v["clinicalStatus"]["coding"][0]["system"] = json!("http://snomed.info/sct"),
        "code-invalid",
        Some("Condition.clinicalStatus.coding"),
    ),
    (
        "condition",
        "entered-in-error with a clinicalStatus (con-5)",
        |v| v["verificationStatus"]["coding"][0]["code"] = json!("entered-in-error"),
        "invariant",
        Some("Condition"),
    ),
    (
        "condition",
        "abated but active (con-4)",
        |v| v["abatementDateTime"] = json!("2023-01-01"),
        "invariant",
        Some("Condition"),
    ),
    (
        "condition",
        "a day that does not exist",
        |v| v["onsetDateTime"] = json!("2019-06-31"),
        "value",
        Some("Condition.onsetDateTime"),
    ),
    (
        "allergy-intolerance",
        "no patient",
        |v| remove(v, "patient"),
        "required",
        Some("AllergyIntolerance.patient"),
    ),
    (
        "allergy-intolerance",
        "criticality outside its value set",
        |v| v["criticality"] = json!("severe"),
        "code-invalid",
        Some("AllergyIntolerance.criticality"),
    ),
    (
        "allergy-intolerance",
        "category outside its value set",
        |v| v["category"] = json!(["drug"]),
        "code-invalid",
        Some("AllergyIntolerance.category[0]"),
    ),
    (
        "allergy-intolerance",
        "no clinicalStatus (ait-1)",
        |v| remove(v, "clinicalStatus"),
        "invariant",
        Some("AllergyIntolerance"),
    ),
    (
        "allergy-intolerance",
        "reaction without manifestation",
        |v| remove(at(v, "/reaction/0"), "manifestation"),
        "required",
        Some("AllergyIntolerance.reaction[0].manifestation"),
    ),
    (
        "medication-request",
        "no intent",
        |v| remove(v, "intent"),
        "required",
        Some("MedicationRequest.intent"),
    ),
    (
        "medication-request",
        "intent outside its value set",
        |v| v["intent"] = json!("prescription"),
        "code-invalid",
        Some("MedicationRequest.intent"),
    ),
    (
        "medication-request",
        "no medication[x]",
        |v| remove(v, "medicationCodeableConcept"),
        "required",
        Some("MedicationRequest.medication[x]"),
    ),
    (
        "medication-request",
        "medication by reference (Medication is not kept)",
        |v| {
            remove(v, "medicationCodeableConcept");
            v["medicationReference"] = json!({"reference": "Medication/1"});
        },
        "value",
        Some("MedicationRequest.medicationReference.reference"),
    ),
    (
        "medication-request",
        "no subject",
        |v| remove(v, "subject"),
        "required",
        Some("MedicationRequest.subject"),
    ),
    (
        "medication-request",
        "period without periodUnit (tim-2)",
        |v| remove(at(v, "/dosageInstruction/0/timing/repeat"), "periodUnit"),
        "invariant",
        Some("MedicationRequest.dosageInstruction[0].timing.repeat"),
    ),
    (
        "medication-request",
        "repeats as a decimal",
        |v| v["dispenseRequest"]["numberOfRepeatsAllowed"] = json!(3.5),
        "value",
        Some("MedicationRequest.dispenseRequest.numberOfRepeatsAllowed"),
    ),
    (
        "medication-dispense",
        "status outside its value set",
        |v| v["status"] = json!("dispensed"),
        "code-invalid",
        Some("MedicationDispense.status"),
    ),
    (
        "medication-dispense",
        "handed over before prepared (mdd-1)",
        |v| v["whenHandedOver"] = json!("2024-03-06T12:00:00+01:00"),
        "invariant",
        Some("MedicationDispense"),
    ),
    (
        "medication-dispense",
        "substitution without wasSubstituted",
        |v| v["substitution"] = json!({"type": {"text": "generic"}}),
        "required",
        Some("MedicationDispense.substitution.wasSubstituted"),
    ),
    (
        "medication-dispense",
        "no medication[x]",
        |v| remove(v, "medicationCodeableConcept"),
        "required",
        Some("MedicationDispense.medication[x]"),
    ),
    (
        "document-reference",
        "no content",
        |v| remove(v, "content"),
        "required",
        Some("DocumentReference.content"),
    ),
    (
        "document-reference",
        "content without attachment",
        |v| remove(at(v, "/content/0"), "attachment"),
        "required",
        Some("DocumentReference.content[0].attachment"),
    ),
    (
        "document-reference",
        "status outside its value set",
        |v| v["status"] = json!("final"),
        "code-invalid",
        Some("DocumentReference.status"),
    ),
    (
        "document-reference",
        "data not base64",
        |v| v["content"][0]["attachment"]["data"] = json!("not base64!"),
        "value",
        Some("DocumentReference.content[0].attachment.data"),
    ),
    (
        "document-reference",
        "size disagrees with data",
        |v| v["content"][0]["attachment"]["size"] = json!(1),
        "value",
        Some("DocumentReference.content[0].attachment.size"),
    ),
    (
        "document-reference",
        "hash disagrees with data",
        |v| v["content"][0]["attachment"]["hash"] = json!("2jmj7l5rSw0yVb/vlWAYkK/YBwk="),
        "value",
        Some("DocumentReference.content[0].attachment.hash"),
    ),
    (
        "document-reference",
        "data without contentType (att-1)",
        |v| remove(at(v, "/content/0/attachment"), "contentType"),
        "invariant",
        Some("DocumentReference.content[0].attachment"),
    ),
    (
        "document-reference",
        "date without time",
        |v| v["date"] = json!("2024-03-07"),
        "value",
        Some("DocumentReference.date"),
    ),
    (
        "document-reference",
        "period ends before it starts (per-1)",
        |v| v["context"]["period"]["end"] = json!("2024-03-01"),
        "invariant",
        Some("DocumentReference.context.period"),
    ),
    ("provenance", "no recorded", |v| remove(v, "recorded"), "required", Some("Provenance.recorded")),
    (
        "provenance",
        "agent without who",
        |v| remove(at(v, "/agent/0"), "who"),
        "required",
        Some("Provenance.agent[0].who"),
    ),
    ("provenance", "no target", |v| v["target"] = json!([]), "value", Some("Provenance.target")),
    (
        "provenance",
        "contained reference",
        |v| v["target"][0]["reference"] = json!("#obs1"),
        "value",
        Some("Provenance.target[0].reference"),
    ),
    (
        "provenance",
        "bad urn:uuid",
        |v| v["target"][0]["reference"] = json!("urn:uuid:1234"),
        "value",
        Some("Provenance.target[0].reference"),
    ),
    (
        "provenance",
        "two patients among the targets",
        |v| v["target"] = json!([{"reference": "Patient/a"}, {"reference": "Patient/b"}]),
        "value",
        Some("Provenance.target"),
    ),
    (
        "provenance",
        "signature without when",
        |v| remove(at(v, "/signature/0"), "when"),
        "required",
        Some("Provenance.signature[0].when"),
    ),
];

fn remove_contact_details(value: &mut Value) {
    let contact = at(value, "/contact/0");
    remove(contact, "name");
    remove(contact, "telecom");
}

#[test]
fn mutations_that_break_r4_are_refused() {
    for &(name, what, mutate, issue_code, path) in MUTATIONS {
        let error = reject(name, mutate);
        assert_eq!((error.issue_code(), error.path()), (issue_code, path), "{name}: {what}: {error}");
        assert_eq!(error.http_status(), 400, "{name}: {what}");
    }
}

#[test]
fn every_resource_type_has_refused_mutations() {
    for &(name, _) in EXAMPLES {
        assert!(MUTATIONS.iter().filter(|mutation| mutation.0 == name).count() >= 2, "{name}");
    }
}

#[test]
fn errors_never_echo_the_value_sent() {
    let secret = "Jane-Secret-Doe-1968";
    let mutations: [fn(&mut Value, &str); 6] = [
        |v, s| v[s] = json!(1),
        |v, s| v["gender"] = json!(s),
        |v, s| v["birthDate"] = json!(s),
        |v, s| v["managingOrganization"]["reference"] = json!(format!("Organization/{s} x")),
        |v, s| v["resourceType"] = json!(s),
        |v, s| v["name"][0]["family"] = json!(s.len()),
    ];
    for mutate in mutations {
        let error = reject("patient", |value| mutate(value, secret));
        let outcome = error.to_operation_outcome().to_string();
        assert!(!error.to_string().contains("Secret") && !outcome.contains("Secret"), "{error}");
    }
    let error = reject("patient", |value| value["gender"] = json!(secret));
    assert!(error.to_string().contains("male, female, other, unknown"), "allowed codes are listed: {error}");
}

#[test]
fn body_level_problems_are_refused() {
    let too_large = vec![b' '; MAX_RESOURCE_BYTES + 1];
    let error = parse_resource(&too_large, ResourceType::Patient).expect_err("too large");
    assert!(matches!(error, FhirError::TooLarge { .. }) && error.http_status() == 413);
    for (body, what) in [
        (&b"not json"[..], "syntax"),
        (b"[]", "array"),
        (b"{\"resourceType\": \"Patient\", \"gender\": \"male\", \"gender\": \"female\"}", "duplicate key"),
        (b"{\"resourceType\": \"Patient\"", "truncated"),
    ] {
        let error = parse_resource(body, ResourceType::Patient).expect_err(what);
        assert!(matches!(error, FhirError::NotJson(_)), "{what}: {error}");
        assert_eq!(error.issue_code(), "structure");
    }
    let error =
        parse_resource(b"{\"gender\": \"male\"}", ResourceType::Patient).expect_err("no resourceType");
    assert_eq!(error.path(), Some("resourceType"));
    let error =
        parse_resource(&example_bytes("condition"), ResourceType::Observation).expect_err("wrong type");
    assert_eq!(
        error,
        FhirError::WrongResourceType {
            expected: ResourceType::Observation,
            found: Some(ResourceType::Condition)
        }
    );
    assert!(error.to_string().contains("wrong resourceType for this endpoint"));
}

#[test]
fn oversized_attachments_are_refused_with_their_own_error() {
    let data = "A".repeat((MAX_ATTACHMENT_BYTES + 3) / 3 * 4);
    let error = reject("document-reference", |value| {
        let attachment = at(value, "/content/0/attachment");
        attachment["data"] = json!(data);
        remove(attachment, "size");
        remove(attachment, "hash");
    });
    assert!(
        matches!(error, FhirError::AttachmentTooLarge { max_bytes: MAX_ATTACHMENT_BYTES, .. }),
        "{error}"
    );
    assert_eq!((error.http_status(), error.issue_code()), (413, "too-long"));
}

#[test]
fn primitive_extensions_and_extensions_are_accepted() {
    let mut value = example("patient");
    value["_birthDate"] = json!({"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime",
        "valueDateTime": "1968-04-12T05:20:00+02:00"}]});
    value["name"][0]["_given"] = json!([null, {"extension": [{"url": "http://example.org/fhir/StructureDefinition/x", "valueString": "y"}]}]);
    value["modifierExtension"] =
        json!([{"url": "http://example.org/fhir/StructureDefinition/m", "valueBoolean": true}]);
    parse_json(&value, ResourceType::Patient).expect("valid extensions");
    value["_unknown"] = json!({"extension": []});
    assert_eq!(parse_json(&value, ResourceType::Patient).expect_err("unknown").issue_code(), "structure");
}

fn token(system: &str, code: &str) -> Token {
    Token { system: Some(system.to_owned()), code: code.to_owned() }
}

fn instant_ms(text: &str) -> i64 {
    DateRange::parse_instant(text).expect("instant").start_ms
}

#[test]
fn observation_keys_are_extracted() {
    let blood_pressure = parse("observation-blood-pressure");
    assert_eq!(blood_pressure.patient_reference(), Some(PATIENT_ID));
    assert_eq!(blood_pressure.codes(), [token("http://loinc.org", "85354-9")]);
    assert_eq!(
        blood_pressure.categories(),
        [token("http://terminology.hl7.org/CodeSystem/observation-category", "vital-signs")]
    );
    let [date] = blood_pressure.dates() else { panic!("one date") };
    assert_eq!(date.param, "date");
    let start_ms = instant_ms("2024-03-05T08:30:00Z");
    assert_eq!(date.range, DateRange { start_ms, end_ms: start_ms + 1_000 });
    let mut paths: Vec<&str> =
        blood_pressure.references().iter().map(|reference| reference.path.as_str()).collect();
    paths.sort_unstable();
    assert_eq!(paths, ["Observation.performer[0]", "Observation.subject"]);
}

#[test]
fn keys_of_the_other_types_are_extracted() {
    let condition = parse("condition");
    assert_eq!(condition.patient_reference(), Some(PATIENT_ID));
    assert!(condition.codes().contains(&token("http://snomed.info/sct", "44054006")));
    let onset = condition.dates().iter().find(|key| key.param == "onset-date").expect("onset");
    assert_eq!(onset.range, DateRange::parse_date("2019-06").expect("june"));

    let allergy = parse("allergy-intolerance");
    assert_eq!(allergy.patient_reference(), Some(PATIENT_ID));
    assert_eq!(
        allergy.categories(),
        [token("http://hl7.org/fhir/allergy-intolerance-category", "medication")]
    );
    assert!(allergy.codes().contains(&token("http://www.nlm.nih.gov/research/umls/rxnorm", "7980")));

    let request = parse("medication-request");
    assert_eq!(request.codes(), [token("http://www.nlm.nih.gov/research/umls/rxnorm", "860975")]);
    assert!(request.dates().iter().any(|key| key.param == "authoredon"));

    let document = parse("document-reference");
    assert_eq!(document.codes(), [token("http://loinc.org", "18842-5")]);
    let period = document.dates().iter().find(|key| key.param == "period").expect("period");
    assert_eq!(period.range.end_ms, DateRange::parse_date("2024-03-07").expect("end").end_ms);

    assert_eq!(parse("patient").patient_reference(), Some(PATIENT_ID));
    assert!(parse("patient").dates().iter().any(|key| key.param == "birthdate"));
    assert_eq!(parse("practitioner").patient_reference(), None);
    assert_eq!(parse("organization").patient_reference(), None);
    assert_eq!(parse("medication-dispense").patient_reference(), Some(PATIENT_ID));
}

#[test]
fn provenance_names_its_patient_only_through_a_patient_target() {
    let provenance = parse("provenance");
    assert_eq!(provenance.patient_reference(), None);
    let references = provenance.references();
    let target =
        references.iter().find(|reference| reference.path == "Provenance.target[0]").expect("target");
    assert!(
        matches!(&target.target, Target::Resource { resource_type: ResourceType::Observation, version: Some(version), .. } if version == "1")
    );
    let mut value = example("provenance");
    value["target"]
        .as_array_mut()
        .expect("targets")
        .push(json!({"reference": format!("Patient/{PATIENT_ID}")}));
    let resource = parse_json(&value, ResourceType::Provenance).expect("valid");
    assert_eq!(resource.patient_reference(), Some(PATIENT_ID));
}

#[test]
fn stamping_sets_id_version_and_last_updated_and_stays_valid() {
    let mut value = example("patient");
    stamp(&mut value, "pt-ffffffffffffffffffffffffffffffff", 3, 1_709_632_800_123);
    assert_eq!(value["id"], "pt-ffffffffffffffffffffffffffffffff");
    assert_eq!(value["meta"]["versionId"], "3");
    assert_eq!(value["meta"]["lastUpdated"], "2024-03-05T10:00:00.123Z");
    assert_eq!(
        value["meta"]["profile"][0],
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"
    );
    let resource = parse_value(value, ResourceType::Patient).expect("a stamped resource is valid");
    assert_eq!(resource.patient_reference(), Some("pt-ffffffffffffffffffffffffffffffff"));

    let mut created = example("patient");
    remove(&mut created, "id");
    let mut resource = parse_json(&created, ResourceType::Patient).expect("valid without id");
    assert_eq!(resource.patient_reference(), None);
    resource.stamp(PATIENT_ID, 1, 0);
    assert_eq!((resource.id(), resource.patient_reference()), (Some(PATIENT_ID), Some(PATIENT_ID)));
    assert_eq!(resource.json()["meta"]["lastUpdated"], "1970-01-01T00:00:00.000Z");
}

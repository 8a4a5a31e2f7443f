//! Search through the public API: parsing (strict and lenient handling, token forms, date
//! prefixes and partial dates, paging bounds) and matching against the example resources.

mod common;

use common::{PATIENT_ID, example, parse, parse_json};
use medledger_fhir::{
    DEFAULT_PAGE_SIZE, FhirError, Handling, MAX_PAGE_SIZE, MAX_SEARCH_PARAMETERS, Resource, ResourceType,
    SearchQuery,
};
use serde_json::json;

fn pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

fn query(resource_type: ResourceType, text: &str) -> SearchQuery {
    SearchQuery::parse(resource_type, &pairs(text), Handling::Strict)
        .unwrap_or_else(|error| panic!("{text}: {error}"))
}

fn refused(resource_type: ResourceType, text: &str, handling: Handling) -> FhirError {
    match SearchQuery::parse(resource_type, &pairs(text), handling) {
        Ok(_) => panic!("{text}: accepted"),
        Err(error) => error,
    }
}

fn matches(resource: &Resource, text: &str) -> bool {
    query(resource.resource_type(), text).matches(resource)
}

#[test]
fn a_typical_search_is_parsed_and_normalised() {
    let search = query(
        ResourceType::Observation,
        &format!("subject={PATIENT_ID}&code=http://loinc.org|4548-4&date=ge2024-03&_count=500&_offset=40"),
    );
    assert_eq!(search.patient(), Some(PATIENT_ID));
    assert_eq!((search.count(), search.offset()), (MAX_PAGE_SIZE, 40));
    assert_eq!(
        search.self_link_query(),
        format!(
            "subject=Patient/{PATIENT_ID}&code=http://loinc.org%7C4548-4&date=ge2024-03&_count=100&_offset=40"
        )
    );
    assert_eq!(
        search.page_link_query(0),
        format!("subject=Patient/{PATIENT_ID}&code=http://loinc.org%7C4548-4&date=ge2024-03&_count=100")
    );
    let default = query(ResourceType::Observation, "");
    assert_eq!((default.count(), default.offset(), default.patient()), (DEFAULT_PAGE_SIZE, 0, None));
}

#[test]
fn unknown_parameters_depend_on_handling() {
    let error = refused(ResourceType::Observation, "code=4548-4&_sort=date", Handling::Strict);
    assert_eq!(error, FhirError::UnknownSearchParameter { name: "_sort".to_owned() });
    assert_eq!(error.issue_code(), "not-supported");
    let lenient = SearchQuery::parse(
        ResourceType::Observation,
        &pairs("code=4548-4&_sort=date&foo=1&_sort=x"),
        Handling::Lenient,
    )
    .expect("lenient");
    assert_eq!(lenient.ignored(), ["_sort", "foo"]);
    assert_eq!(lenient.self_link_query(), "code=4548-4&_count=20");
    // A parameter of another type is unknown here; chained and reverse-chained ones too.
    for text in ["date=2019", "subject.name=x", "_has:Observation:patient:code=1", "_summary=count"] {
        assert!(
            matches!(
                refused(ResourceType::Condition, text, Handling::Strict),
                FhirError::UnknownSearchParameter { .. }
            ),
            "{text}"
        );
    }
    let garbage = refused(ResourceType::Condition, "<script>=1", Handling::Strict);
    assert!(!garbage.to_string().contains("script"), "{garbage}");
    // HTTP-level parameters are the API's: neither searched nor reported.
    let formatted = query(ResourceType::Observation, "_format=json&_pretty=true");
    assert!(formatted.ignored().is_empty());
}

#[test]
fn malformed_values_and_modifiers_are_refused_in_both_modes() {
    for handling in [Handling::Strict, Handling::Lenient] {
        for text in [
            "_count=0",
            "_count=ten",
            "_count=-1",
            "_count=5&_count=6",
            "_offset=10001",
            "date=2024-13",
            "date=lt2024-03-05T10",
            "date=",
            "code=|",
            "code=a|b|c",
            "code=a,,b",
            "subject=Practitioner/5c2f0e8a9b1d4c3e8f7a6b5c4d3e2f10",
            "patient=a,b",
            "_id=has space",
        ] {
            let error = refused(ResourceType::Observation, text, handling);
            assert!(matches!(error, FhirError::InvalidSearchValue { .. }), "{text}: {error}");
        }
        let modifier = refused(ResourceType::Observation, "code:text=glucose", handling);
        assert!(matches!(modifier, FhirError::UnsupportedModifier { .. }), "{modifier}");
    }
    let many = "code=1&".repeat(MAX_SEARCH_PARAMETERS + 1);
    assert!(matches!(
        refused(ResourceType::Observation, &many, Handling::Lenient),
        FhirError::TooManySearchParameters { .. }
    ));
}

#[test]
fn token_forms_match_as_r4_says() {
    let hba1c = parse("observation-hba1c");
    for (text, expected) in [
        ("code=4548-4", true),
        ("code=http://loinc.org|4548-4", true),
        ("code=http://loinc.org|", true),
        ("code=|4548-4", false),
        ("code=http://snomed.info/sct|4548-4", false),
        ("code=http://snomed.info/sct|", false),
        ("code=85354-9,4548-4", true),
        ("code=85354-9&code=4548-4", false),
        ("category=laboratory", true),
        ("category=vital-signs", false),
        (&format!("patient=Patient/{PATIENT_ID}"), true),
        (&format!("subject={PATIENT_ID}&patient={PATIENT_ID}"), true),
        ("patient=pt-ffffffffffffffffffffffffffffffff", false),
        ("_id=3d9a7c1e5b2f4a6d8c0e9f1a2b3c4d5e", true),
        ("_id=nope,3d9a7c1e5b2f4a6d8c0e9f1a2b3c4d5e", true),
        ("_id=nope", false),
    ] {
        assert_eq!(matches(&hba1c, text), expected, "{text}");
    }
    let allergy = parse("allergy-intolerance");
    assert!(matches(&allergy, "category=http://hl7.org/fhir/allergy-intolerance-category|medication"));
    assert!(matches(&allergy, "code=http://www.nlm.nih.gov/research/umls/rxnorm|7980"));
    let document = parse("document-reference");
    assert!(matches(&document, "type=http://loinc.org|18842-5&category=clinical-note"));
    assert!(!query(ResourceType::Condition, "code=4548-4").matches(&hba1c), "another type never matches");
}

#[test]
fn date_prefixes_compare_ranges() {
    // effectiveDateTime 2024-03-04T07:45:00+01:00, i.e. 06:45:00Z for one second.
    let hba1c = parse("observation-hba1c");
    for (text, expected) in [
        ("date=2024-03-04", true),
        ("date=2024-03", true),
        ("date=2024", true),
        ("date=2024-03-05", false),
        ("date=2024-03-04T06:45:00Z", true),
        ("date=2024-03-04T06:45Z", true),
        ("date=2024-03-04T07:45:00+01:00", true),
        ("date=2024-03-04T07:45:00Z", false),
        ("date=ge2024-03-04", true),
        ("date=gt2024-03-04", false),
        ("date=gt2024-03-03", true),
        ("date=le2024-03-04", true),
        ("date=lt2024-03-04", false),
        ("date=lt2024-03-05", true),
        ("date=sa2024-03-03", true),
        ("date=sa2024-03-04", false),
        ("date=eb2024-03-05", true),
        ("date=eb2024-03-04", false),
        ("date=ne2024-03-05", true),
        ("date=ne2024-03", false),
        ("date=ap2024-03-04", true),
        ("date=ap2024-02", false),
        ("date=ge2024-03-01&date=lt2024-04-01", true),
        ("date=ge2024-03-05&date=lt2024-04-01", false),
        ("date=2023,2024", true),
    ] {
        assert_eq!(matches(&hba1c, text), expected, "{text}");
    }
}

#[test]
fn partial_and_open_dates_in_resources() {
    // onsetDateTime "2019-06" covers the whole month.
    let condition = parse("condition");
    for (text, expected) in [
        ("onset-date=2019-06", true),
        ("onset-date=2019", true),
        ("onset-date=2019-06-15", false),
        ("onset-date=ge2019-06-15", true),
        ("onset-date=le2019-06-15", true),
        ("onset-date=sa2019-05", true),
        ("recorded-date=2019-07-02", true),
        ("abatement-date=2019", false),
    ] {
        assert_eq!(matches(&condition, text), expected, "{text}");
    }
    // A period without an end is ongoing.
    let mut ongoing = example("observation-hba1c");
    ongoing.as_object_mut().expect("object").remove("effectiveDateTime");
    ongoing["effectivePeriod"] = json!({ "start": "2024-03-01T00:00:00Z" });
    let ongoing = parse_json(&ongoing, ResourceType::Observation).expect("valid");
    assert!(matches(&ongoing, "date=gt2030"));
    assert!(!matches(&ongoing, "date=lt2024-02"));
    assert!(!matches(&ongoing, "date=2024"), "an open period is not within a year");
    // Dates are searched per parameter: a birth date is not an observation date.
    let patient = parse("patient");
    assert!(matches(&patient, "birthdate=1968-04"));
    assert!(!matches(&patient, "birthdate=1968-05"));
}

#[test]
fn patient_compartment_parameters_follow_r4_per_type() {
    assert!(query(ResourceType::AllergyIntolerance, &format!("patient={PATIENT_ID}")).patient().is_some());
    assert!(matches!(
        refused(ResourceType::AllergyIntolerance, &format!("subject={PATIENT_ID}"), Handling::Strict),
        FhirError::UnknownSearchParameter { .. }
    ));
    assert!(matches!(
        refused(ResourceType::Patient, &format!("patient={PATIENT_ID}"), Handling::Strict),
        FhirError::UnknownSearchParameter { .. }
    ));
    let mut provenance = example("provenance");
    provenance["target"]
        .as_array_mut()
        .expect("targets")
        .push(json!({"reference": format!("Patient/{PATIENT_ID}")}));
    let provenance = parse_json(&provenance, ResourceType::Provenance).expect("valid");
    assert!(matches(&provenance, &format!("patient={PATIENT_ID}&recorded=2024-03-05")));
}

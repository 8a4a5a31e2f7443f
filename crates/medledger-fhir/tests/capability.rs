//! The CapabilityStatement states exactly what the crate does: every resource type, the
//! interactions, every search parameter the parser accepts (and only those), `$verify`.

use medledger_fhir::{
    FHIR_VERSION, Handling, INTERACTIONS, ResourceType, SearchQuery, capability_statement,
    supported_parameters, verify_operation_definition, verify_operation_url,
};
use serde_json::Value;

const BASE: &str = "https://node-a.example.invalid/fhir";

fn resource_entry(statement: &Value, resource_type: ResourceType) -> &Value {
    let resources = statement["rest"][0]["resource"].as_array().expect("resources");
    resources.iter().find(|entry| entry["type"] == resource_type.as_str()).expect("listed")
}

fn strings(value: &Value, field: &str) -> Vec<String> {
    value
        .as_array()
        .expect("array")
        .iter()
        .map(|item| item[field].as_str().expect("string").to_owned())
        .collect()
}

#[test]
fn the_statement_lists_every_type_with_its_interactions() {
    let statement = capability_statement(BASE, "0.1.0");
    assert_eq!(statement["resourceType"], "CapabilityStatement");
    assert_eq!(statement["fhirVersion"], FHIR_VERSION);
    assert_eq!(statement["kind"], "instance");
    assert!(
        statement["format"]
            .as_array()
            .expect("formats")
            .iter()
            .any(|format| format == "application/fhir+json")
    );
    let rest = &statement["rest"][0];
    assert_eq!(rest["mode"], "server");
    assert_eq!(strings(&rest["interaction"], "code"), ["transaction"]);
    assert!(rest["security"]["description"].as_str().expect("security").contains("RFC 9421"));
    assert_eq!(rest["resource"].as_array().expect("resources").len(), ResourceType::ALL.len());
    for &resource_type in ResourceType::ALL {
        let entry = resource_entry(&statement, resource_type);
        assert_eq!(strings(&entry["interaction"], "code"), INTERACTIONS, "{resource_type}");
        assert_eq!(
            (entry["versioning"].as_str(), entry["readHistory"].as_bool()),
            (Some("versioned"), Some(true))
        );
        assert_eq!(
            (entry["updateCreate"].as_bool(), entry["conditionalCreate"].as_bool()),
            (Some(false), Some(false))
        );
        assert_eq!(entry["operation"][0]["name"], "verify");
        assert_eq!(entry["operation"][0]["definition"], verify_operation_url(BASE));
    }
}

/// A value of the right type for a search parameter, to check the parser takes it.
fn sample_value(param_type: &str) -> &'static str {
    match param_type {
        "token" => "x",
        "date" => "ge2024",
        "reference" => "Patient/pt-0123456789abcdef0123456789abcdef",
        "number" => "1",
        other => panic!("unexpected search parameter type {other}"),
    }
}

#[test]
fn search_parameters_are_exactly_those_the_parser_accepts() {
    let statement = capability_statement(BASE, "0.1.0");
    for &resource_type in ResourceType::ALL {
        let params = &resource_entry(&statement, resource_type)["searchParam"];
        assert_eq!(strings(params, "name"), supported_parameters(resource_type), "{resource_type}");
        for param in params.as_array().expect("params") {
            let name = param["name"].as_str().expect("name").to_owned();
            let value = sample_value(param["type"].as_str().expect("type")).to_owned();
            let parsed = SearchQuery::parse(resource_type, &[(name.clone(), value)], Handling::Strict);
            assert!(parsed.is_ok(), "{resource_type}?{name}: {parsed:?}");
        }
        let unlisted =
            SearchQuery::parse(resource_type, &[("identifier".to_owned(), "x".to_owned())], Handling::Strict);
        assert!(unlisted.is_err(), "{resource_type}: identifier is not advertised, so it is refused");
    }
    let observation = supported_parameters(ResourceType::Observation);
    for name in ["_id", "_count", "_offset", "patient", "subject", "code", "category", "date"] {
        assert!(observation.contains(&name), "{name}");
    }
}

#[test]
fn the_verify_operation_is_defined_for_every_type() {
    let definition = verify_operation_definition(&format!("{BASE}/"));
    assert_eq!(definition["resourceType"], "OperationDefinition");
    assert_eq!(definition["url"], verify_operation_url(BASE));
    assert_eq!((definition["code"].as_str(), definition["instance"].as_bool()), (Some("verify"), Some(true)));
    let types: Vec<&str> =
        definition["resource"].as_array().expect("types").iter().filter_map(Value::as_str).collect();
    let expected: Vec<&str> = ResourceType::ALL.iter().map(|resource_type| resource_type.as_str()).collect();
    assert_eq!(types, expected);
}

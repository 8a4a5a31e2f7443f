//! Helpers shared by the integration tests: the example resources under `tests/examples`.

#![allow(dead_code, reason = "each test binary uses a different part of these helpers")]

use medledger_fhir::{FhirError, Resource, ResourceType, parse_resource};
use serde_json::Value;

/// The example resources: file name (without `.json`) and type.
pub const EXAMPLES: &[(&str, ResourceType)] = &[
    ("patient", ResourceType::Patient),
    ("practitioner", ResourceType::Practitioner),
    ("organization", ResourceType::Organization),
    ("observation-blood-pressure", ResourceType::Observation),
    ("observation-hba1c", ResourceType::Observation),
    ("condition", ResourceType::Condition),
    ("allergy-intolerance", ResourceType::AllergyIntolerance),
    ("medication-request", ResourceType::MedicationRequest),
    ("medication-dispense", ResourceType::MedicationDispense),
    ("document-reference", ResourceType::DocumentReference),
    ("provenance", ResourceType::Provenance),
];

/// The patient every example belongs to.
pub const PATIENT_ID: &str = "pt-0123456789abcdef0123456789abcdef";

/// The bytes of an example file.
pub fn example_bytes(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/examples/{name}.json", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|error| panic!("reading {path}: {error}"))
}

/// An example file as JSON.
pub fn example(name: &str) -> Value {
    serde_json::from_slice(&example_bytes(name)).expect("examples are JSON")
}

/// The type of an example.
pub fn type_of(name: &str) -> ResourceType {
    EXAMPLES
        .iter()
        .find(|(example, _)| *example == name)
        .map(|(_, resource_type)| *resource_type)
        .expect("known example")
}

/// An example, validated.
pub fn parse(name: &str) -> Resource {
    parse_resource(&example_bytes(name), type_of(name)).unwrap_or_else(|error| panic!("{name}: {error}"))
}

/// Validates `value` as a resource of `resource_type`.
pub fn parse_json(value: &Value, resource_type: ResourceType) -> Result<Resource, FhirError> {
    parse_resource(&serde_json::to_vec(value).expect("serialise"), resource_type)
}

/// An example changed by `mutate`, which must be refused; returns the error.
pub fn reject(name: &str, mutate: impl FnOnce(&mut Value)) -> FhirError {
    let mut value = example(name);
    mutate(&mut value);
    match parse_json(&value, type_of(name)) {
        Ok(_) => panic!("{name}: the mutated example was accepted"),
        Err(error) => error,
    }
}

/// The object at a JSON pointer, for mutations.
pub fn at<'a>(value: &'a mut Value, pointer: &str) -> &'a mut Value {
    value.pointer_mut(pointer).unwrap_or_else(|| panic!("no {pointer}"))
}

/// Removes a top-level element.
pub fn remove(value: &mut Value, name: &str) {
    value.as_object_mut().expect("object").remove(name).unwrap_or_else(|| panic!("no {name}"));
}

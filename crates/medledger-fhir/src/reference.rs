//! Literal references. MedLedger accepts only what it can resolve itself: relative
//! `Type/id` (optionally `/_history/version`) to a type it keeps, and `urn:uuid:` inside a
//! transaction Bundle. Absolute URLs would point at other servers; `#id` would need
//! `contained`, which MedLedger refuses.

use std::collections::HashMap;

use medledger_types::ResourceType;
use serde_json::Value;

use crate::FhirError;

/// Where a literal reference points.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// `Type/id` or `Type/id/_history/version` on this server.
    Resource {
        /// The type.
        resource_type: ResourceType,
        /// The logical id.
        id: String,
        /// The version, for a version-specific reference.
        version: Option<String>,
    },
    /// `urn:uuid:…`: the `fullUrl` of another entry of the same transaction Bundle.
    Urn(String),
}

/// A literal reference found in a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// FHIRPath of the Reference element, e.g. `Observation.performer[0]`.
    pub path: String,
    /// Where it points.
    pub target: Target,
    allowed: &'static [ResourceType],
}

impl Reference {
    /// The types R4 allows this element to reference, among those MedLedger keeps.
    #[must_use]
    pub fn allowed_types(&self) -> &'static [ResourceType] {
        self.allowed
    }
}

/// Whether `text` is a FHIR id: 1 to 64 of `A-Z a-z 0-9 - .`.
#[must_use]
pub fn is_fhir_id(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'.')
}

/// Whether `text` is a UUID in its canonical text form (8-4-4-4-12 hex digits).
fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    let lengths = groups.iter().map(|group| group.len());
    groups.len() == 5
        && lengths.eq([8, 4, 4, 4, 12])
        && groups.iter().all(|group| group.bytes().all(|byte| byte.is_ascii_hexdigit()))
}

/// Whether `text` is `urn:uuid:` and a UUID.
pub(crate) fn is_urn_uuid(text: &str) -> bool {
    text.strip_prefix("urn:uuid:").is_some_and(is_uuid)
}

const UNKNOWN_TYPE: &str = "names a resource type MedLedger does not keep";

/// Parses the text of `Reference.reference`.
pub(crate) fn parse_target(text: &str) -> Result<Target, &'static str> {
    if text.starts_with("urn:uuid:") {
        return if is_urn_uuid(text) {
            Ok(Target::Urn(text.to_owned()))
        } else {
            Err("urn:uuid: must be followed by a UUID")
        };
    }
    if text.starts_with('#') {
        return Err("references to contained resources (#…) are not supported");
    }
    if text.contains(':') {
        return Err("only relative references (Type/id) and urn:uuid: are accepted, not absolute URLs");
    }
    let parts: Vec<&str> = text.split('/').collect();
    let (type_name, id, version) = match parts.as_slice() {
        [type_name, id] => (*type_name, *id, None),
        [type_name, id, "_history", version] => (*type_name, *id, Some(*version)),
        _ => return Err("must be Type/id or Type/id/_history/version"),
    };
    let resource_type: ResourceType =
        type_name.parse().map_err(|_| "names a resource type MedLedger does not keep")?;
    if !is_fhir_id(id) || !version.is_none_or(is_fhir_id) {
        return Err("the id (and version) must be FHIR ids: 1 to 64 of A-Z a-z 0-9 - .");
    }
    Ok(Target::Resource { resource_type, id: id.to_owned(), version: version.map(str::to_owned) })
}

/// The type named by `Reference.type`: a type name or its R4 StructureDefinition URL.
fn named_type(text: &str) -> Option<ResourceType> {
    text.strip_prefix("http://hl7.org/fhir/StructureDefinition/").unwrap_or(text).parse().ok()
}

fn allowed_list(allowed: &[ResourceType]) -> String {
    if allowed.is_empty() {
        return "no type MedLedger keeps: leave reference out (use identifier or display)".to_owned();
    }
    allowed.iter().map(|resource_type| resource_type.as_str()).collect::<Vec<_>>().join(", ")
}

/// Checks a Reference (already checked to have only Reference elements) against the types the
/// element may point to, and returns it if it is literal.
pub(crate) fn check(
    value: &Value,
    allowed: &'static [ResourceType],
    path: &str,
) -> Result<Option<Reference>, FhirError> {
    let declared = match value.get("type").and_then(Value::as_str) {
        Some(text) => {
            Some(named_type(text).filter(|declared| allowed.contains(declared)).ok_or_else(|| {
                FhirError::invalid(
                    &format!("{path}.type"),
                    format!("must be one of: {}", allowed_list(allowed)),
                )
            })?)
        }
        None => None,
    };
    let Some(text) = value.get("reference").and_then(Value::as_str) else { return Ok(None) };
    let reference_path = format!("{path}.reference");
    let target = parse_target(text).map_err(|reason| match reason {
        UNKNOWN_TYPE => FhirError::invalid(
            &reference_path,
            format!("{reason}; it may reference {}", allowed_list(allowed)),
        ),
        _ => FhirError::invalid(&reference_path, reason),
    })?;
    if let Target::Resource { resource_type, .. } = &target {
        if !allowed.contains(resource_type) {
            return Err(FhirError::invalid(
                &reference_path,
                format!("may only reference {}", allowed_list(allowed)),
            ));
        }
        if declared.is_some_and(|declared| declared != *resource_type) {
            return Err(FhirError::invalid(
                &format!("{path}.type"),
                "must be the type the reference points to",
            ));
        }
    }
    Ok(Some(Reference { path: path.to_owned(), target, allowed }))
}

/// Replaces every `Reference.reference` that is a key of `map` (a `urn:uuid:` fullUrl of a
/// transaction entry) by its value (the `Type/id` assigned to that entry). Walks the whole
/// value: in validated resources only Reference elements have a `reference` string.
pub fn rewrite_references(value: &mut Value, map: &HashMap<String, String>) {
    match value {
        Value::Object(object) => {
            if let Some(Value::String(reference)) = object.get_mut("reference")
                && let Some(replacement) = map.get(reference.as_str())
            {
                replacement.clone_into(reference);
            }
            object.values_mut().for_each(|child| rewrite_references(child, map));
        }
        Value::Array(items) => items.iter_mut().for_each(|child| rewrite_references(child, map)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_strictly() {
        let patient = parse_target("Patient/pt-0123456789abcdef0123456789abcdef").expect("patient");
        assert!(matches!(
            patient,
            Target::Resource { resource_type: ResourceType::Patient, version: None, .. }
        ));
        assert!(matches!(
            parse_target("Observation/abc/_history/2"),
            Ok(Target::Resource { version: Some(_), .. })
        ));
        assert!(parse_target("urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a").is_ok());
        for bad in [
            "urn:uuid:not-a-uuid",
            "#contained",
            "http://example.org/fhir/Patient/1",
            "Encounter/1",
            "Patient/",
            "Patient/a/b",
            "Patient/has space",
            "patient/1",
        ] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
    }
}

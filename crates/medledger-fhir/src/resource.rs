//! A validated resource with the keys MedLedger stores and searches it by.

use medledger_types::ResourceType;
use serde_json::{Map, Value, json};

use crate::reference::{Reference, Target, is_fhir_id};
use crate::resources::{CategorySource, PatientSource, TypeSpec, spec};
use crate::search::{ParamKind, Token};
use crate::{DateRange, FhirError, MAX_RESOURCE_BYTES, datetime, json, validate};

/// One date a resource can be searched by: the search parameter and the instants it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateKey {
    /// The search parameter, e.g. `date` or `onset-date`.
    pub param: &'static str,
    /// The instants the value covers.
    pub range: DateRange,
}

/// A resource that passed [`parse_resource`]: its JSON and its keys.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    resource_type: ResourceType,
    json: Value,
    references: Vec<Reference>,
    patient_reference: Option<String>,
    codes: Vec<Token>,
    categories: Vec<Token>,
    dates: Vec<DateKey>,
}

/// Parses and validates a resource of type `expected` from a request body, before anything is
/// written. See the crate documentation for what is checked.
pub fn parse_resource(body: &[u8], expected: ResourceType) -> Result<Resource, FhirError> {
    if body.len() > MAX_RESOURCE_BYTES {
        return Err(FhirError::TooLarge { size_bytes: body.len(), max_bytes: MAX_RESOURCE_BYTES });
    }
    parse_value(Value::Object(json::parse_object(body)?), expected)
}

/// Validates an already parsed resource of type `expected` (e.g. a transaction entry after
/// [`crate::rewrite_references`]).
pub fn parse_value(value: Value, expected: ResourceType) -> Result<Resource, FhirError> {
    let Value::Object(map) = &value else {
        return Err(FhirError::NotJson(format!(
            "a resource is a JSON object, not {}",
            json::kind_of(&value)
        )));
    };
    check_resource_type(map, expected)?;
    let spec = spec(expected);
    let references = validate::validate_resource(map, spec)?;
    let patient_reference = patient_of(map, spec, &references)?;
    Ok(Resource {
        resource_type: expected,
        codes: spec
            .code_paths
            .iter()
            .flat_map(|path| values_at(map, path))
            .flat_map(concept_tokens)
            .collect(),
        categories: categories_of(map, spec),
        dates: dates_of(map, spec),
        references,
        patient_reference,
        json: value,
    })
}

fn check_resource_type(map: &Map<String, Value>, expected: ResourceType) -> Result<(), FhirError> {
    let found = map.get("resourceType").ok_or_else(|| FhirError::missing("resourceType"))?;
    let found = found.as_str().ok_or_else(|| FhirError::invalid("resourceType", "must be a JSON string"))?;
    if found == expected.as_str() {
        return Ok(());
    }
    Err(FhirError::WrongResourceType { expected, found: found.parse().ok() })
}

impl Resource {
    /// The resource type.
    #[must_use]
    pub fn resource_type(&self) -> ResourceType {
        self.resource_type
    }

    /// The validated JSON (an object).
    #[must_use]
    pub fn json(&self) -> &Value {
        &self.json
    }

    /// The validated JSON, consumed.
    #[must_use]
    pub fn into_json(self) -> Value {
        self.json
    }

    /// The logical id, if the resource has one.
    #[must_use]
    pub fn id(&self) -> Option<&str> {
        self.json.get("id").and_then(Value::as_str)
    }

    /// Every literal reference in the resource.
    #[must_use]
    pub fn references(&self) -> &[Reference] {
        &self.references
    }

    /// The logical id of the Patient whose compartment the resource is in: a Patient's own
    /// id; the `Patient/[id]` of `subject` (or AllergyIntolerance `patient`, a Provenance
    /// target). `None` when there is none, or while it is still a `urn:uuid:` of a
    /// transaction (re-validate with [`parse_value`] after rewriting references).
    #[must_use]
    pub fn patient_reference(&self) -> Option<&str> {
        self.patient_reference.as_deref()
    }

    /// The codes searched by `code` (DocumentReference: `type`).
    #[must_use]
    pub fn codes(&self) -> &[Token] {
        &self.codes
    }

    /// The categories searched by `category`.
    #[must_use]
    pub fn categories(&self) -> &[Token] {
        &self.categories
    }

    /// The dates searched by the type's date parameters.
    #[must_use]
    pub fn dates(&self) -> &[DateKey] {
        &self.dates
    }

    /// Sets `id`, `meta.versionId` and `meta.lastUpdated` (see [`stamp`]), and the patient key
    /// of a Patient, whose id is assigned here.
    pub fn stamp(&mut self, id: &str, version: u64, last_updated_ms: u64) {
        stamp(&mut self.json, id, version, last_updated_ms);
        if matches!(spec(self.resource_type).patient, PatientSource::OwnId) {
            self.patient_reference = Some(id.to_owned());
        }
    }
}

/// Sets the server-assigned `id`, `meta.versionId` (the version as a string) and
/// `meta.lastUpdated` (UTC, milliseconds) of a resource, keeping the rest of `meta`.
pub fn stamp(resource: &mut Value, id: &str, version: u64, last_updated_ms: u64) {
    debug_assert!(is_fhir_id(id), "server-assigned ids are FHIR ids");
    let Some(object) = resource.as_object_mut() else {
        debug_assert!(false, "only a validated resource (a JSON object) is stamped");
        return;
    };
    object.insert("id".to_owned(), Value::String(id.to_owned()));
    let meta = object.entry("meta").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    if let Some(meta) = meta.as_object_mut() {
        meta.insert("versionId".to_owned(), Value::String(version.to_string()));
        meta.insert("lastUpdated".to_owned(), Value::String(datetime::format_instant(last_updated_ms)));
    }
}

fn patient_of(
    map: &Map<String, Value>,
    spec: &TypeSpec,
    references: &[Reference],
) -> Result<Option<String>, FhirError> {
    let path_of = |name: &str| format!("{}.{name}", spec.resource_type);
    let patient_id = |reference: &Reference| match &reference.target {
        Target::Resource { resource_type: ResourceType::Patient, id, .. } => Some(id.clone()),
        _ => None,
    };
    match spec.patient {
        PatientSource::None => Ok(None),
        PatientSource::OwnId => Ok(map.get("id").and_then(Value::as_str).map(str::to_owned)),
        PatientSource::Element(name) => {
            let path = path_of(name);
            Ok(references.iter().find(|reference| reference.path == path).and_then(patient_id))
        }
        PatientSource::AmongTargets(name) => {
            let prefix = format!("{}[", path_of(name));
            let mut patients: Vec<String> = references
                .iter()
                .filter(|reference| reference.path.starts_with(&prefix))
                .filter_map(patient_id)
                .collect();
            patients.sort_unstable();
            patients.dedup();
            if patients.len() > 1 {
                return Err(FhirError::invalid(
                    &path_of(name),
                    "names more than one Patient; a MedLedger record belongs to one patient",
                ));
            }
            Ok(patients.pop())
        }
    }
}

/// The values at a dot-separated path, through arrays.
pub(crate) fn values_at<'a>(map: &'a Map<String, Value>, path: &str) -> Vec<&'a Value> {
    let mut names = path.split('.');
    let first = names.next().and_then(|name| map.get(name));
    let mut current: Vec<&Value> = first.into_iter().collect();
    for name in names {
        current = current.into_iter().flat_map(as_items).filter_map(|value| value.get(name)).collect();
    }
    current.into_iter().flat_map(as_items).collect()
}

fn as_items(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    }
}

/// The (system, code) tokens of a CodeableConcept.
fn concept_tokens(concept: &Value) -> Vec<Token> {
    let codings = concept.get("coding").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    codings
        .iter()
        .filter_map(|coding| {
            let code = coding.get("code").and_then(Value::as_str)?;
            Some(Token {
                system: coding.get("system").and_then(Value::as_str).map(str::to_owned),
                code: code.to_owned(),
            })
        })
        .collect()
}

fn categories_of(map: &Map<String, Value>, spec: &TypeSpec) -> Vec<Token> {
    match spec.category {
        CategorySource::None => Vec::new(),
        CategorySource::Concept(path) => values_at(map, path).into_iter().flat_map(concept_tokens).collect(),
        CategorySource::Code { element, system } => values_at(map, element)
            .into_iter()
            .filter_map(Value::as_str)
            .map(|code| Token { system: Some(system.to_owned()), code: code.to_owned() })
            .collect(),
    }
}

fn dates_of(map: &Map<String, Value>, spec: &TypeSpec) -> Vec<DateKey> {
    let mut dates = Vec::new();
    for param in spec.search {
        let ParamKind::Date(paths) = param.kind else { continue };
        for value in paths.iter().flat_map(|path| values_at(map, path)) {
            dates.extend(date_range_of(value).map(|range| DateKey { param: param.name, range }));
        }
    }
    dates
}

/// The range of a validated date, dateTime, instant or Period.
fn date_range_of(value: &Value) -> Option<DateRange> {
    if let Some(text) = value.as_str() {
        return DateRange::parse_date_time(text).ok();
    }
    let bound = |name: &str| {
        value.get(name).and_then(Value::as_str).and_then(|text| DateRange::parse_date_time(text).ok())
    };
    let start_ms = bound("start").map_or(i64::MIN, |start| start.start_ms);
    let end_ms = bound("end").map_or(i64::MAX, |end| end.end_ms);
    Some(DateRange { start_ms, end_ms })
}

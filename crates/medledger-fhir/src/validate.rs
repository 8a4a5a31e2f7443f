//! The walker: checks a JSON object against an element table, recursively, and collects the
//! literal references it passes. Every error carries the FHIRPath of the element at fault.

use serde_json::{Map, Value};

use crate::datatypes::{CODEABLE_CONCEPT_TYPE, PRIMITIVE_EXTENSION, REFERENCE_TYPE, check_base64};
use crate::reference::{self, Reference, is_fhir_id};
use crate::resources::TypeSpec;
use crate::schema::{BACKBONE_BASE, Binding, Complex, ELEMENT_BASE, Element, Kind, Primitive, RESOURCE_BASE};
use crate::{DateRange, FhirError, MAX_STRING_BYTES};

/// Validates one resource and returns the literal references in it.
pub(crate) fn validate_resource(
    map: &Map<String, Value>,
    spec: &TypeSpec,
) -> Result<Vec<Reference>, FhirError> {
    let mut walker = Walker { references: Vec::new() };
    let path = spec.resource_type.as_str();
    walker.object(map, &[RESOURCE_BASE, spec.elements], path, true)?;
    if let Some(rule) = spec.rule {
        rule(map, path)?;
    }
    Ok(walker.references)
}

struct Walker {
    references: Vec<Reference>,
}

fn find(tables: &[&'static [Element]], name: &str) -> Option<&'static Element> {
    tables.iter().flat_map(|table| table.iter()).find(|element| element.name == name)
}

impl Walker {
    fn object(
        &mut self,
        map: &Map<String, Value>,
        tables: &[&'static [Element]],
        path: &str,
        is_resource: bool,
    ) -> Result<(), FhirError> {
        if map.is_empty() {
            return Err(FhirError::invariant(path, "ele-1", "an element has a value or children"));
        }
        for (name, value) in map {
            // A resource's own object names its type; the caller has checked it.
            if is_resource && name == "resourceType" {
                continue;
            }
            if let Some(primitive_name) = name.strip_prefix('_') {
                self.primitive_extension(tables, primitive_name, value, path)?;
                continue;
            }
            let element = find(tables, name).ok_or_else(|| FhirError::unknown_element(path, name))?;
            self.element(element, value, &format!("{path}.{name}"))?;
        }
        for table in tables {
            check_cardinality(map, table, path)?;
        }
        Ok(())
    }

    fn element(&mut self, element: &Element, value: &Value, path: &str) -> Result<(), FhirError> {
        if matches!(element.kind, Kind::Contained) {
            return Err(FhirError::invalid(
                path,
                "contained resources are not supported: send each resource on its own, or together in a transaction Bundle",
            ));
        }
        if !element.many {
            if value.is_array() {
                return Err(FhirError::invalid(path, "must be a single value, not an array"));
            }
            return self.value(element.kind, value, path);
        }
        let items = value.as_array().ok_or_else(|| FhirError::invalid(path, "must be a JSON array"))?;
        if items.is_empty() {
            return Err(FhirError::invalid(
                path,
                "an array has at least one item (leave the element out instead)",
            ));
        }
        for (index, item) in items.iter().enumerate() {
            self.value(element.kind, item, &format!("{path}[{index}]"))?;
        }
        Ok(())
    }

    fn value(&mut self, kind: Kind, value: &Value, path: &str) -> Result<(), FhirError> {
        match kind {
            Kind::Primitive(primitive) => {
                check_primitive(primitive, value).map_err(|reason| FhirError::invalid(path, reason))
            }
            Kind::Code(codes) => check_code(value, codes, path),
            Kind::Complex(complex) => self.complex(complex, value, path),
            Kind::BoundConcept(binding) => {
                self.complex(&CODEABLE_CONCEPT_TYPE, value, path)?;
                check_binding(value, binding, path)
            }
            Kind::Reference(targets) => {
                self.complex(&REFERENCE_TYPE, value, path)?;
                self.references.extend(reference::check(value, targets, path)?);
                Ok(())
            }
            Kind::Contained => Err(FhirError::invalid(path, "contained resources are not supported")),
        }
    }

    fn complex(&mut self, complex: &Complex, value: &Value, path: &str) -> Result<(), FhirError> {
        let map = value.as_object().ok_or_else(|| FhirError::invalid(path, "must be a JSON object"))?;
        if complex.backbone {
            self.object(map, &[ELEMENT_BASE, BACKBONE_BASE, complex.elements], path, false)?;
        } else {
            self.object(map, &[ELEMENT_BASE, complex.elements], path, false)?;
        }
        match complex.rule {
            Some(rule) => rule(map, path),
            None => Ok(()),
        }
    }

    /// `_name`: the id and extensions of primitive element `name` (an array of objects or
    /// nulls if `name` repeats).
    fn primitive_extension(
        &mut self,
        tables: &[&'static [Element]],
        name: &str,
        value: &Value,
        path: &str,
    ) -> Result<(), FhirError> {
        let element = find(tables, name)
            .filter(|element| matches!(element.kind, Kind::Primitive(_) | Kind::Code(_)))
            .ok_or_else(|| FhirError::unknown_element(path, &format!("_{name}")))?;
        let path = format!("{path}._{name}");
        if !element.many {
            return self.complex(&PRIMITIVE_EXTENSION, value, &path);
        }
        let items = value.as_array().ok_or_else(|| FhirError::invalid(&path, "must be a JSON array"))?;
        for (index, item) in items.iter().enumerate().filter(|(_, item)| !item.is_null()) {
            self.complex(&PRIMITIVE_EXTENSION, item, &format!("{path}[{index}]"))?;
        }
        Ok(())
    }
}

/// Required elements present; at most one type of each choice, and one if it is required.
/// The members of a choice group are next to each other in a table.
fn check_cardinality(map: &Map<String, Value>, table: &[Element], path: &str) -> Result<(), FhirError> {
    for (index, element) in table.iter().enumerate() {
        let Some(group) = element.choice else {
            if element.required && !map.contains_key(element.name) {
                return Err(FhirError::missing(&format!("{path}.{}", element.name)));
            }
            continue;
        };
        if index > 0 && table[index - 1].choice == Some(group) {
            continue;
        }
        let members = table[index..].iter().take_while(|member| member.choice == Some(group));
        let present = members.filter(|member| map.contains_key(member.name)).count();
        if present > 1 {
            return Err(FhirError::invalid(
                &format!("{path}.{group}"),
                "only one of its types may be present",
            ));
        }
        if present == 0 && element.required {
            return Err(FhirError::missing(&format!("{path}.{group}")));
        }
    }
    Ok(())
}

fn check_code(value: &Value, codes: &[&str], path: &str) -> Result<(), FhirError> {
    let text = value.as_str().ok_or_else(|| FhirError::invalid(path, "must be a JSON string"))?;
    if codes.contains(&text) {
        return Ok(());
    }
    Err(FhirError::InvalidCode { path: path.to_owned(), allowed: codes.join(", ") })
}

/// A required binding on a CodeableConcept: a coding from the bound system, and every coding
/// of that system with an allowed code.
fn check_binding(value: &Value, binding: &Binding, path: &str) -> Result<(), FhirError> {
    let codings = value.get("coding").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let bound: Vec<&Value> = codings
        .iter()
        .filter(|coding| coding.get("system").and_then(Value::as_str) == Some(binding.system))
        .collect();
    let allowed = |coding: &&Value| {
        coding.get("code").and_then(Value::as_str).is_some_and(|code| binding.codes.contains(&code))
    };
    if bound.is_empty() || !bound.iter().all(allowed) {
        return Err(FhirError::InvalidCode {
            path: format!("{path}.coding"),
            allowed: format!("{} from {}", binding.codes.join(", "), binding.system),
        });
    }
    Ok(())
}

fn check_primitive(primitive: Primitive, value: &Value) -> Result<(), &'static str> {
    let in_int32 = |number: i64| i32::try_from(number).is_ok();
    let number = value.as_i64();
    let (valid, rule) = match primitive {
        Primitive::Boolean => (value.is_boolean(), "must be true or false (a JSON boolean)"),
        Primitive::Integer => (number.is_some_and(in_int32), "must be a whole JSON number within 32 bits"),
        Primitive::UnsignedInt => (
            number.is_some_and(|number| number >= 0 && in_int32(number)),
            "must be a whole JSON number from 0 within 32 bits",
        ),
        Primitive::PositiveInt => (
            number.is_some_and(|number| number >= 1 && in_int32(number)),
            "must be a whole JSON number from 1 within 32 bits",
        ),
        Primitive::Decimal => (value.is_number(), "must be a JSON number"),
        _ => {
            return value
                .as_str()
                .ok_or("must be a JSON string")
                .and_then(|text| check_text(primitive, text));
        }
    };
    if valid { Ok(()) } else { Err(rule) }
}

fn check_text(primitive: Primitive, text: &str) -> Result<(), &'static str> {
    match primitive {
        Primitive::String | Primitive::Markdown => check_string(text),
        Primitive::Uri | Primitive::Url | Primitive::Canonical => {
            if text.is_empty() || text.chars().any(char::is_whitespace) {
                return Err("must be a URI without whitespace");
            }
            Ok(())
        }
        Primitive::Code => check_code_text(text),
        Primitive::Id => {
            if is_fhir_id(text) {
                Ok(())
            } else {
                Err("must be a FHIR id: 1 to 64 of A-Z a-z 0-9 - .")
            }
        }
        Primitive::Date => DateRange::parse_date(text).map(drop),
        Primitive::DateTime => DateRange::parse_date_time(text).map(drop),
        Primitive::Instant => DateRange::parse_instant(text).map(drop),
        Primitive::Time => crate::datetime::check_time(text),
        Primitive::Base64Binary => check_base64(text),
        Primitive::Xhtml => check_xhtml(text),
        Primitive::Boolean
        | Primitive::Integer
        | Primitive::UnsignedInt
        | Primitive::PositiveInt
        | Primitive::Decimal => Err("must be a JSON number or boolean, not a string"),
    }
}

/// R4 strings: not empty, not over 1 MiB, no control characters besides tab, CR and LF.
fn check_string(text: &str) -> Result<(), &'static str> {
    if text.trim().is_empty() {
        return Err("must not be empty or whitespace only");
    }
    if text.len() > MAX_STRING_BYTES {
        return Err("must not be longer than 1 MiB");
    }
    if text.chars().any(|character| character.is_control() && !matches!(character, '\t' | '\r' | '\n')) {
        return Err("must not contain control characters other than tab, CR and LF");
    }
    Ok(())
}

/// R4 code: no leading or trailing whitespace, single spaces inside.
fn check_code_text(text: &str) -> Result<(), &'static str> {
    let well_spaced = !text.is_empty()
        && text.trim() == text
        && !text.contains("  ")
        && !text.chars().any(|character| character.is_whitespace() && character != ' ');
    if well_spaced { Ok(()) } else { Err("must be a code: no leading, trailing or repeated whitespace") }
}

/// The narrative's `div`: an XHTML div in the XHTML namespace, without script (txt-1 in
/// part). The web pages must still escape or sanitise narrative before showing it.
fn check_xhtml(text: &str) -> Result<(), &'static str> {
    let trimmed = text.trim();
    let opening = trimmed.split_once('>').map_or("", |(tag, _)| tag);
    if !trimmed.starts_with("<div")
        || !trimmed.ends_with("</div>")
        || !opening.contains("http://www.w3.org/1999/xhtml")
    {
        return Err("must be an XHTML <div xmlns=\"http://www.w3.org/1999/xhtml\"> element");
    }
    let lower = trimmed.to_ascii_lowercase();
    if lower.contains("<script") || lower.contains("javascript:") {
        return Err("must not contain script (txt-1)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn primitives_are_checked_by_type() {
        assert!(check_primitive(Primitive::Boolean, &json!(true)).is_ok());
        assert!(check_primitive(Primitive::Boolean, &json!("true")).is_err());
        assert!(check_primitive(Primitive::PositiveInt, &json!(0)).is_err());
        assert!(check_primitive(Primitive::Integer, &json!(1.5)).is_err());
        assert!(check_primitive(Primitive::Integer, &json!(3_000_000_000_i64)).is_err());
        assert!(check_primitive(Primitive::Decimal, &json!(7.2)).is_ok());
        assert!(check_primitive(Primitive::Code, &json!(" final")).is_err());
        assert!(check_primitive(Primitive::String, &json!("")).is_err());
        assert!(check_primitive(Primitive::String, &json!("a\u{0}b")).is_err());
        assert!(check_primitive(Primitive::Uri, &json!("http://loinc.org")).is_ok());
        assert!(check_primitive(Primitive::Xhtml, &json!("<div>no namespace</div>")).is_err());
        assert_eq!(crate::json::kind_of(&json!(null)), "null");
    }
}

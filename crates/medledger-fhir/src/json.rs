//! Strict JSON: a duplicate key is an error, not "the last one wins". FHIR JSON forbids
//! duplicate properties, and two readers picking different duplicates is how content that was
//! validated differs from content that is stored. Nesting stays within `serde_json`'s
//! recursion limit (128), so hostile depth cannot exhaust the stack.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::FhirError;

/// Parses `body` as one JSON value, refusing duplicate keys.
pub(crate) fn parse_strict(body: &[u8]) -> Result<Value, FhirError> {
    // serde_json's errors name the fault and its position, never the text at it; duplicate
    // keys are reported without the key.
    serde_json::from_slice::<StrictValue>(body)
        .map(|value| value.0)
        .map_err(|error| FhirError::NotJson(error.to_string()))
}

/// Parses `body` as a JSON object.
pub(crate) fn parse_object(body: &[u8]) -> Result<Map<String, Value>, FhirError> {
    match parse_strict(body)? {
        Value::Object(map) => Ok(map),
        other => Err(FhirError::NotJson(format!("the body is {}, not an object", kind_of(&other)))),
    }
}

/// The JSON kind of a value, for messages that must not quote the value.
pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Value, E> {
        Number::from_f64(value).map(Value::Number).ok_or_else(|| E::custom("a number that is not finite"))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let StrictValue(value) = access.next_value()?;
            if map.insert(key, value).is_some() {
                return Err(de::Error::custom("an object has the same key twice"));
            }
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_and_deep_nesting_are_refused() {
        assert!(parse_strict(br#"{"a": 1, "b": {"c": 2}}"#).is_ok());
        let duplicate = parse_strict(br#"{"a": "secret", "a": 2}"#).expect_err("duplicate");
        assert!(!duplicate.to_string().contains("secret"));
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(parse_strict(deep.as_bytes()).is_err());
        assert!(parse_object(b"[1]").is_err());
        assert!(parse_object(b"{\"a\": \"\xff\"}").is_err());
    }
}

//! The R4 general-purpose datatypes MedLedger's resources use, as element tables, with the
//! datatype invariants (per-1, qty-3, cpt-2, att-1, ext-1, tim-1, tim-2) and the attachment
//! limits.

use base64::Engine as _;
use serde_json::{Map, Value};
use sha1::{Digest as _, Sha1};

use crate::schema::{
    ANY_REFERENCE, BASE64_BINARY, BOOLEAN, CANONICAL, CODE, Complex, DATE, DATE_TIME, DECIMAL, Element, ID,
    INSTANT, INTEGER, Kind, MARKDOWN, POSITIVE_INT, STRING, TIME, UNSIGNED_INT, URI, URL, XHTML, many, one,
    pick, reference, req, req_many,
};
use crate::{DateRange, FhirError, MAX_ATTACHMENT_BYTES};
use medledger_types::ResourceType::{Organization, Patient, Practitioner};

const fn complex(elements: &'static [Element], rule: Option<crate::schema::Rule>) -> Complex {
    Complex { elements, backbone: false, rule }
}

pub(crate) const CODING: Kind = Kind::Complex(&CODING_TYPE);
pub(crate) const CODEABLE_CONCEPT: Kind = Kind::Complex(&CODEABLE_CONCEPT_TYPE);
pub(crate) const IDENTIFIER: Kind = Kind::Complex(&IDENTIFIER_TYPE);
pub(crate) const HUMAN_NAME: Kind = Kind::Complex(&HUMAN_NAME_TYPE);
pub(crate) const CONTACT_POINT: Kind = Kind::Complex(&CONTACT_POINT_TYPE);
pub(crate) const ADDRESS: Kind = Kind::Complex(&ADDRESS_TYPE);
pub(crate) const PERIOD: Kind = Kind::Complex(&PERIOD_TYPE);
pub(crate) const QUANTITY: Kind = Kind::Complex(&QUANTITY_TYPE);
/// R4 `SimpleQuantity`: a Quantity without a comparator (sqty-1).
pub(crate) const SIMPLE_QUANTITY: Kind = Kind::Complex(&SIMPLE_QUANTITY_TYPE);
/// R4 `Age`, `Duration`, `Count` and `Distance` have the elements of Quantity.
pub(crate) const AGE: Kind = QUANTITY;
/// See [`AGE`].
pub(crate) const DURATION: Kind = QUANTITY;
pub(crate) const RANGE: Kind = Kind::Complex(&RANGE_TYPE);
pub(crate) const RATIO: Kind = Kind::Complex(&RATIO_TYPE);
pub(crate) const ANNOTATION: Kind = Kind::Complex(&ANNOTATION_TYPE);
pub(crate) const ATTACHMENT: Kind = Kind::Complex(&ATTACHMENT_TYPE);
pub(crate) const SAMPLED_DATA: Kind = Kind::Complex(&SAMPLED_DATA_TYPE);
pub(crate) const SIGNATURE: Kind = Kind::Complex(&SIGNATURE_TYPE);
pub(crate) const TIMING: Kind = Kind::Complex(&TIMING_TYPE);
pub(crate) const DOSAGE: Kind = Kind::Complex(&DOSAGE_TYPE);
pub(crate) const META: Kind = Kind::Complex(&META_TYPE);
pub(crate) const NARRATIVE: Kind = Kind::Complex(&NARRATIVE_TYPE);
pub(crate) const EXTENSION: Kind = Kind::Complex(&EXTENSION_TYPE);
/// The elements of a `Reference`; the walker adds the checks on `reference` itself.
pub(crate) static REFERENCE_TYPE: Complex = complex(
    &[one("reference", STRING), one("type", URI), one("identifier", IDENTIFIER), one("display", STRING)],
    None,
);
/// The `_element` object that carries a primitive's `id` and extensions.
pub(crate) static PRIMITIVE_EXTENSION: Complex = complex(&[], None);

static CODING_TYPE: Complex = complex(
    &[
        one("system", URI),
        one("version", STRING),
        one("code", CODE),
        one("display", STRING),
        one("userSelected", BOOLEAN),
    ],
    None,
);

pub(crate) static CODEABLE_CONCEPT_TYPE: Complex =
    complex(&[many("coding", CODING), one("text", STRING)], None);

static IDENTIFIER_TYPE: Complex = complex(
    &[
        one("use", Kind::Code(&["usual", "official", "temp", "secondary", "old"])),
        one("type", CODEABLE_CONCEPT),
        one("system", URI),
        one("value", STRING),
        one("period", PERIOD),
        one("assigner", reference(&[Organization])),
    ],
    None,
);

static HUMAN_NAME_TYPE: Complex = complex(
    &[
        one("use", Kind::Code(&["usual", "official", "temp", "nickname", "anonymous", "old", "maiden"])),
        one("text", STRING),
        one("family", STRING),
        many("given", STRING),
        many("prefix", STRING),
        many("suffix", STRING),
        one("period", PERIOD),
    ],
    None,
);

static CONTACT_POINT_TYPE: Complex = complex(
    &[
        one("system", Kind::Code(&["phone", "fax", "email", "pager", "url", "sms", "other"])),
        one("value", STRING),
        one("use", Kind::Code(&["home", "work", "temp", "old", "mobile"])),
        one("rank", POSITIVE_INT),
        one("period", PERIOD),
    ],
    Some(contact_point_rule),
);

static ADDRESS_TYPE: Complex = complex(
    &[
        one("use", Kind::Code(&["home", "work", "temp", "old", "billing"])),
        one("type", Kind::Code(&["postal", "physical", "both"])),
        one("text", STRING),
        many("line", STRING),
        one("city", STRING),
        one("district", STRING),
        one("state", STRING),
        one("postalCode", STRING),
        one("country", STRING),
        one("period", PERIOD),
    ],
    None,
);

static PERIOD_TYPE: Complex = complex(&[one("start", DATE_TIME), one("end", DATE_TIME)], Some(period_rule));

static QUANTITY_TYPE: Complex = complex(
    &[
        one("value", DECIMAL),
        one("comparator", Kind::Code(&["<", "<=", ">=", ">"])),
        one("unit", STRING),
        one("system", URI),
        one("code", CODE),
    ],
    Some(quantity_rule),
);

static SIMPLE_QUANTITY_TYPE: Complex = complex(
    &[one("value", DECIMAL), one("unit", STRING), one("system", URI), one("code", CODE)],
    Some(quantity_rule),
);

static RANGE_TYPE: Complex = complex(&[one("low", SIMPLE_QUANTITY), one("high", SIMPLE_QUANTITY)], None);

static RATIO_TYPE: Complex = complex(&[one("numerator", QUANTITY), one("denominator", QUANTITY)], None);

static ANNOTATION_TYPE: Complex = complex(
    &[
        pick("author[x]", "authorReference", reference(&[Practitioner, Patient, Organization])),
        pick("author[x]", "authorString", STRING),
        one("time", DATE_TIME),
        req("text", MARKDOWN),
    ],
    None,
);

static ATTACHMENT_TYPE: Complex = complex(
    &[
        one("contentType", CODE),
        one("language", CODE),
        one("data", BASE64_BINARY),
        one("url", URL),
        one("size", UNSIGNED_INT),
        one("hash", BASE64_BINARY),
        one("title", STRING),
        one("creation", DATE_TIME),
    ],
    Some(attachment_rule),
);

static SAMPLED_DATA_TYPE: Complex = complex(
    &[
        req("origin", SIMPLE_QUANTITY),
        req("period", DECIMAL),
        one("factor", DECIMAL),
        one("lowerLimit", DECIMAL),
        one("upperLimit", DECIMAL),
        req("dimensions", POSITIVE_INT),
        one("data", STRING),
    ],
    None,
);

static SIGNATURE_TYPE: Complex = complex(
    &[
        req_many("type", CODING),
        req("when", INSTANT),
        req("who", reference(&[Practitioner, Patient, Organization])),
        one("onBehalfOf", reference(&[Practitioner, Patient, Organization])),
        one("targetFormat", CODE),
        one("sigFormat", CODE),
        one("data", BASE64_BINARY),
    ],
    None,
);

/// R4 UnitsOfTime (required binding).
const UNITS_OF_TIME: &[&str] = &["s", "min", "h", "d", "wk", "mo", "a"];

/// R4 EventTiming (required binding).
const EVENT_TIMING: &[&str] = &[
    "MORN",
    "MORN.early",
    "MORN.late",
    "NOON",
    "AFT",
    "AFT.early",
    "AFT.late",
    "EVE",
    "EVE.early",
    "EVE.late",
    "NIGHT",
    "PHS",
    "HS",
    "WAKE",
    "C",
    "CM",
    "CD",
    "CV",
    "AC",
    "ACM",
    "ACD",
    "ACV",
    "PC",
    "PCM",
    "PCD",
    "PCV",
];

static TIMING_TYPE: Complex = Complex {
    elements: &[
        many("event", DATE_TIME),
        one("repeat", Kind::Complex(&TIMING_REPEAT)),
        one("code", CODEABLE_CONCEPT),
    ],
    backbone: true,
    rule: None,
};

static TIMING_REPEAT: Complex = complex(
    &[
        pick("bounds[x]", "boundsDuration", DURATION),
        pick("bounds[x]", "boundsRange", RANGE),
        pick("bounds[x]", "boundsPeriod", PERIOD),
        one("count", POSITIVE_INT),
        one("countMax", POSITIVE_INT),
        one("duration", DECIMAL),
        one("durationMax", DECIMAL),
        one("durationUnit", Kind::Code(UNITS_OF_TIME)),
        one("frequency", POSITIVE_INT),
        one("frequencyMax", POSITIVE_INT),
        one("period", DECIMAL),
        one("periodMax", DECIMAL),
        one("periodUnit", Kind::Code(UNITS_OF_TIME)),
        many("dayOfWeek", Kind::Code(&["mon", "tue", "wed", "thu", "fri", "sat", "sun"])),
        many("timeOfDay", TIME),
        many("when", Kind::Code(EVENT_TIMING)),
        one("offset", UNSIGNED_INT),
    ],
    Some(timing_repeat_rule),
);

static DOSAGE_TYPE: Complex = Complex {
    elements: &[
        one("sequence", INTEGER),
        one("text", STRING),
        many("additionalInstruction", CODEABLE_CONCEPT),
        one("patientInstruction", STRING),
        one("timing", TIMING),
        pick("asNeeded[x]", "asNeededBoolean", BOOLEAN),
        pick("asNeeded[x]", "asNeededCodeableConcept", CODEABLE_CONCEPT),
        one("site", CODEABLE_CONCEPT),
        one("route", CODEABLE_CONCEPT),
        one("method", CODEABLE_CONCEPT),
        many("doseAndRate", Kind::Complex(&DOSE_AND_RATE)),
        one("maxDosePerPeriod", RATIO),
        one("maxDosePerAdministration", SIMPLE_QUANTITY),
        one("maxDosePerLifetime", SIMPLE_QUANTITY),
    ],
    backbone: true,
    rule: None,
};

static DOSE_AND_RATE: Complex = complex(
    &[
        one("type", CODEABLE_CONCEPT),
        pick("dose[x]", "doseRange", RANGE),
        pick("dose[x]", "doseQuantity", SIMPLE_QUANTITY),
        pick("rate[x]", "rateRatio", RATIO),
        pick("rate[x]", "rateRange", RANGE),
        pick("rate[x]", "rateQuantity", SIMPLE_QUANTITY),
    ],
    None,
);

static META_TYPE: Complex = complex(
    &[
        one("versionId", ID),
        one("lastUpdated", INSTANT),
        one("source", URI),
        many("profile", CANONICAL),
        many("security", CODING),
        many("tag", CODING),
    ],
    None,
);

static NARRATIVE_TYPE: Complex = complex(
    &[req("status", Kind::Code(&["generated", "extensions", "additional", "empty"])), req("div", XHTML)],
    None,
);

/// An extension: `url` and either nested extensions or one `value[x]` of the types below.
static EXTENSION_TYPE: Complex = complex(
    &[
        req("url", URI),
        pick("value[x]", "valueBase64Binary", BASE64_BINARY),
        pick("value[x]", "valueBoolean", BOOLEAN),
        pick("value[x]", "valueCanonical", CANONICAL),
        pick("value[x]", "valueCode", CODE),
        pick("value[x]", "valueDate", DATE),
        pick("value[x]", "valueDateTime", DATE_TIME),
        pick("value[x]", "valueDecimal", DECIMAL),
        pick("value[x]", "valueId", ID),
        pick("value[x]", "valueInstant", INSTANT),
        pick("value[x]", "valueInteger", INTEGER),
        pick("value[x]", "valueMarkdown", MARKDOWN),
        pick("value[x]", "valuePositiveInt", POSITIVE_INT),
        pick("value[x]", "valueString", STRING),
        pick("value[x]", "valueTime", TIME),
        pick("value[x]", "valueUnsignedInt", UNSIGNED_INT),
        pick("value[x]", "valueUri", URI),
        pick("value[x]", "valueUrl", URL),
        pick("value[x]", "valueAddress", ADDRESS),
        pick("value[x]", "valueAge", AGE),
        pick("value[x]", "valueAnnotation", ANNOTATION),
        pick("value[x]", "valueAttachment", ATTACHMENT),
        pick("value[x]", "valueCodeableConcept", CODEABLE_CONCEPT),
        pick("value[x]", "valueCoding", CODING),
        pick("value[x]", "valueContactPoint", CONTACT_POINT),
        pick("value[x]", "valueCount", QUANTITY),
        pick("value[x]", "valueDistance", QUANTITY),
        pick("value[x]", "valueDuration", DURATION),
        pick("value[x]", "valueHumanName", HUMAN_NAME),
        pick("value[x]", "valueIdentifier", IDENTIFIER),
        pick("value[x]", "valuePeriod", PERIOD),
        pick("value[x]", "valueQuantity", QUANTITY),
        pick("value[x]", "valueRange", RANGE),
        pick("value[x]", "valueRatio", RATIO),
        pick("value[x]", "valueReference", ANY_REFERENCE),
        pick("value[x]", "valueSampledData", SAMPLED_DATA),
        pick("value[x]", "valueSignature", SIGNATURE),
        pick("value[x]", "valueTiming", TIMING),
        pick("value[x]", "valueDosage", DOSAGE),
    ],
    Some(extension_rule),
);

fn extension_rule(map: &Map<String, Value>, path: &str) -> Result<(), FhirError> {
    let has_value = map.keys().any(|key| key.starts_with("value"));
    if has_value == map.contains_key("extension") {
        return Err(FhirError::invariant(
            path,
            "ext-1",
            "an extension has either extensions or a value[x], not both",
        ));
    }
    Ok(())
}

fn contact_point_rule(map: &Map<String, Value>, path: &str) -> Result<(), FhirError> {
    if map.contains_key("value") && !map.contains_key("system") {
        return Err(FhirError::invariant(path, "cpt-2", "a contact point with a value needs a system"));
    }
    Ok(())
}

fn quantity_rule(map: &Map<String, Value>, path: &str) -> Result<(), FhirError> {
    if map.contains_key("code") && !map.contains_key("system") {
        return Err(FhirError::invariant(path, "qty-3", "a quantity with a unit code needs its system"));
    }
    Ok(())
}

fn period_rule(map: &Map<String, Value>, path: &str) -> Result<(), FhirError> {
    let bound = |name: &str| {
        map.get(name).and_then(Value::as_str).and_then(|text| DateRange::parse_date_time(text).ok())
    };
    if let (Some(start), Some(end)) = (bound("start"), bound("end"))
        && start.start_ms >= end.end_ms
    {
        return Err(FhirError::invariant(path, "per-1", "a period's start is not after its end"));
    }
    Ok(())
}

fn timing_repeat_rule(map: &Map<String, Value>, path: &str) -> Result<(), FhirError> {
    if map.contains_key("duration") && !map.contains_key("durationUnit") {
        return Err(FhirError::invariant(path, "tim-1", "a duration needs its durationUnit"));
    }
    if map.contains_key("period") && !map.contains_key("periodUnit") {
        return Err(FhirError::invariant(path, "tim-2", "a period needs its periodUnit"));
    }
    Ok(())
}

/// Decodes base64Binary text. R4 allows whitespace between the groups of four.
pub(crate) fn decode_base64(text: &str) -> Result<Vec<u8>, &'static str> {
    let compact: String = text.chars().filter(|character| !character.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| "must be base64 (RFC 4648 with padding)")
}

/// The decoded length of well-formed base64 text: three bytes per four characters, less the
/// padding.
fn decoded_len(text: &str) -> usize {
    let significant = text.bytes().filter(|byte| !byte.is_ascii_whitespace());
    let (count, padding) = significant
        .fold((0_usize, 0_usize), |(count, padding), byte| (count + 1, padding + usize::from(byte == b'=')));
    (count / 4 * 3).saturating_sub(padding)
}

/// Checks the shape of base64Binary text without decoding it: the R4 alphabet, whitespace
/// between groups, whole groups of four, padding only at the end.
pub(crate) fn check_base64(text: &str) -> Result<(), &'static str> {
    const RULE: &str = "must be base64 (RFC 4648 with padding)";
    let mut count = 0_usize;
    let mut padding = 0_usize;
    for byte in text.bytes().filter(|byte| !byte.is_ascii_whitespace()) {
        match byte {
            b'=' => padding += 1,
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' if padding == 0 => {}
            _ => return Err(RULE),
        }
        count += 1;
    }
    if count == 0 || !count.is_multiple_of(4) || padding > 2 { Err(RULE) } else { Ok(()) }
}

/// att-1, the inline size limit, `size` and `hash` against `data`.
fn attachment_rule(map: &Map<String, Value>, path: &str) -> Result<(), FhirError> {
    let Some(data) = map.get("data").and_then(Value::as_str) else {
        return check_hash_shape(map, path);
    };
    if !map.contains_key("contentType") {
        return Err(FhirError::invariant(path, "att-1", "an attachment with data needs its contentType"));
    }
    // Refuse what is too large before allocating for it.
    let size_bytes = decoded_len(data);
    if size_bytes > MAX_ATTACHMENT_BYTES {
        return Err(FhirError::AttachmentTooLarge { size_bytes, max_bytes: MAX_ATTACHMENT_BYTES });
    }
    let bytes = decode_base64(data).map_err(|reason| FhirError::invalid(&format!("{path}.data"), reason))?;
    if let Some(size) = map.get("size").and_then(Value::as_u64)
        && usize::try_from(size).ok() != Some(bytes.len())
    {
        return Err(FhirError::invalid(&format!("{path}.size"), "must be the number of bytes in data"));
    }
    if let Some(hash) = map.get("hash").and_then(Value::as_str) {
        let hash =
            decode_base64(hash).map_err(|reason| FhirError::invalid(&format!("{path}.hash"), reason))?;
        if hash.as_slice() != Sha1::digest(&bytes).as_slice() {
            return Err(FhirError::invalid(&format!("{path}.hash"), "must be the base64 SHA-1 of data"));
        }
    }
    Ok(())
}

fn check_hash_shape(map: &Map<String, Value>, path: &str) -> Result<(), FhirError> {
    let Some(hash) = map.get("hash").and_then(Value::as_str) else { return Ok(()) };
    let hash_path = format!("{path}.hash");
    let hash = decode_base64(hash).map_err(|reason| FhirError::invalid(&hash_path, reason))?;
    if hash.len() != 20 {
        return Err(FhirError::invalid(&hash_path, "must be a base64 SHA-1 (20 bytes)"));
    }
    Ok(())
}

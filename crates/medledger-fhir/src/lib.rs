//! FHIR R4 JSON for MedLedger: strict validation of the ten resource types it keeps, the keys
//! records are stored and searched by, search, bundles, `OperationOutcome` and the
//! CapabilityStatement. Pure: no I/O, no clock, no randomness.
//!
//! # What validation covers
//! - Size ([`MAX_RESOURCE_BYTES`]), UTF-8 JSON, no duplicate keys, bounded nesting.
//! - `resourceType` equal to the endpoint's type ([`FhirError::WrongResourceType`]).
//! - Every element against the R4 definition of its resource: unknown elements refused,
//!   cardinality (required elements, arrays non-empty, single values not arrays), choice types
//!   (`value[x]`: one type at most), primitive formats (id, code, uri, date, dateTime,
//!   instant, time, integer ranges, base64Binary, strings without control characters), the
//!   general datatypes (CodeableConcept, Coding, Quantity, Period, Attachment, Identifier,
//!   HumanName, Reference, Timing, Dosage, …), required value-set bindings (codes listed in
//!   errors), extensions (`url` plus one value or nested extensions) and `_element`
//!   primitive extensions, and these R4 invariants: ele-1, ext-1, per-1, qty-3, cpt-2, att-1,
//!   tim-1, tim-2, pat-1, org-1, org-2, org-3, obs-3, obs-6, con-1, con-2, con-4, con-5,
//!   ait-1, ait-2, mdd-1.
//! - References: only `Type/id[/_history/vid]` to types MedLedger keeps and allowed by R4 for
//!   the element, or `urn:uuid:` (resolved within a transaction).
//! - Inline attachments: `contentType` with `data`, decoded size at most
//!   [`MAX_ATTACHMENT_BYTES`], `size` and SHA-1 `hash` matching the data.
//!
//! # What it does not cover
//! - Terminology beyond required bindings: LOINC, SNOMED CT, RxNorm and UCUM codes are not
//!   looked up, and extensible or preferred bindings are not checked.
//! - Profiles named in `meta.profile`, and what extensions mean (modifier extensions included).
//! - `contained` resources (refused), the XHTML of narrative beyond its outer `div` and the
//!   absence of script, and whether referenced resources exist (the store's job).
//! - Decimal precision: numbers are held as `f64`, so `1.50` is stored as `1.5`.
//!
//! Error messages name paths, rules and allowed codes, never the values sent.

mod bundle;
mod capability;
mod datatypes;
mod datetime;
mod error;
mod json;
mod outcome;
mod reference;
mod resource;
mod resources;
mod schema;
mod search;
mod validate;

pub use bundle::{
    EntryResponse, HistoryVersion, TransactionEntry, TransactionMethod, history_bundle, parse_transaction,
    searchset_bundle, transaction_response_bundle, urn_map,
};
pub use capability::{
    CAPABILITY_STATEMENT_DATE, INTERACTIONS, VERIFY_OPERATION, capability_statement,
    verify_operation_definition, verify_operation_url,
};
pub use datetime::{DateRange, format_instant};
pub use error::FhirError;
pub use medledger_types::ResourceType;
pub use outcome::{IssueType, Severity, operation_outcome};
pub use reference::{Reference, Target, is_fhir_id, rewrite_references};
pub use resource::{DateKey, Resource, parse_resource, parse_value, stamp};
pub use search::{
    DEFAULT_PAGE_SIZE, DatePrefix, Handling, MAX_PAGE_SIZE, MAX_SEARCH_OFFSET, MAX_SEARCH_PARAMETERS,
    MAX_SEARCH_VALUES, SearchQuery, Token, supported_parameters,
};

/// The FHIR version MedLedger speaks.
pub const FHIR_VERSION: &str = "4.0.1";

/// The media type of FHIR JSON.
pub const FHIR_JSON_MEDIA_TYPE: &str = "application/fhir+json";

/// Largest resource body. An attachment of [`MAX_ATTACHMENT_BYTES`] is 5⅓ MiB in base64;
/// 8 MiB leaves room for the rest of the document while bounding what one request makes the
/// node parse and hold (the parsed tree is a few times the body).
pub const MAX_RESOURCE_BYTES: usize = 8 * 1024 * 1024;

/// Largest inline attachment, decoded. Records are encrypted whole and fetched whole across
/// organisations, so a large file (imaging, video) belongs in its own store with a `url`;
/// 4 MiB holds typical clinical PDFs and letters.
pub const MAX_ATTACHMENT_BYTES: usize = 4 * 1024 * 1024;

/// Largest FHIR `string` or `markdown` value: R4 says strings SHALL NOT exceed 1 MB.
pub const MAX_STRING_BYTES: usize = 1024 * 1024;

/// Most entries in a transaction Bundle: all of them are validated, encrypted and anchored
/// together, so one request's work stays bounded (a patient's intake is a few dozen records).
pub const MAX_BUNDLE_ENTRIES: usize = 100;

/// Largest transaction Bundle body: room for one maximal attachment and many small records,
/// bounded like every request body.
pub const MAX_BUNDLE_BYTES: usize = 16 * 1024 * 1024;

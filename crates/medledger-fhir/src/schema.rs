//! The shape of FHIR R4 content as data: each datatype, backbone element and resource is a
//! table of [`Element`]s, read by one walker in `validate`. Tables rather than code keep the
//! element lists reviewable against the R4 specification line by line.

use medledger_types::ResourceType;
use serde_json::{Map, Value};

use crate::FhirError;

/// A FHIR primitive type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Primitive {
    String,
    Markdown,
    Uri,
    Url,
    Canonical,
    Code,
    Id,
    Boolean,
    Integer,
    UnsignedInt,
    PositiveInt,
    Decimal,
    Date,
    DateTime,
    Instant,
    Time,
    Base64Binary,
    /// Narrative XHTML (`Narrative.div`).
    Xhtml,
}

/// What an element holds.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Primitive(Primitive),
    /// A `code` with a required binding: one of these codes.
    Code(&'static [&'static str]),
    /// A datatype or backbone element with its own table.
    Complex(&'static Complex),
    /// A `CodeableConcept` with a required binding to one code system.
    BoundConcept(&'static Binding),
    /// A `Reference` to one of these types.
    Reference(&'static [ResourceType]),
    /// `Resource.contained`, which MedLedger refuses.
    Contained,
}

/// A required binding of a `CodeableConcept` to the codes of one code system.
pub(crate) struct Binding {
    pub system: &'static str,
    pub codes: &'static [&'static str],
}

/// An invariant over one object: gets the object and its FHIRPath.
pub(crate) type Rule = fn(&Map<String, Value>, &str) -> Result<(), FhirError>;

/// A datatype, or a backbone element of a resource.
pub(crate) struct Complex {
    pub elements: &'static [Element],
    /// Backbone elements (and the Dosage and Timing datatypes) may carry `modifierExtension`.
    pub backbone: bool,
    pub rule: Option<Rule>,
}

/// One element: its JSON name, kind and cardinality.
#[derive(Clone, Copy)]
pub(crate) struct Element {
    pub name: &'static str,
    pub kind: Kind,
    /// Minimum cardinality 1. For a choice member: the choice group is required.
    pub required: bool,
    /// Maximum cardinality `*`: a non-empty JSON array.
    pub many: bool,
    /// The choice group (`value[x]`) this element is a member of.
    pub choice: Option<&'static str>,
}

/// 0..1
pub(crate) const fn one(name: &'static str, kind: Kind) -> Element {
    Element { name, kind, required: false, many: false, choice: None }
}

/// 1..1
pub(crate) const fn req(name: &'static str, kind: Kind) -> Element {
    Element { name, kind, required: true, many: false, choice: None }
}

/// 0..*
pub(crate) const fn many(name: &'static str, kind: Kind) -> Element {
    Element { name, kind, required: false, many: true, choice: None }
}

/// 1..*
pub(crate) const fn req_many(name: &'static str, kind: Kind) -> Element {
    Element { name, kind, required: true, many: true, choice: None }
}

/// One type of an optional choice element `group` (e.g. `value[x]`).
pub(crate) const fn pick(group: &'static str, name: &'static str, kind: Kind) -> Element {
    Element { name, kind, required: false, many: false, choice: Some(group) }
}

/// One type of a required choice element `group`.
pub(crate) const fn req_pick(group: &'static str, name: &'static str, kind: Kind) -> Element {
    Element { name, kind, required: true, many: false, choice: Some(group) }
}

/// A reference to one of `targets`.
pub(crate) const fn reference(targets: &'static [ResourceType]) -> Kind {
    Kind::Reference(targets)
}

/// A reference to any type MedLedger keeps (R4 `Reference(Any)`).
pub(crate) const ANY_REFERENCE: Kind = Kind::Reference(ResourceType::ALL);

pub(crate) const STRING: Kind = Kind::Primitive(Primitive::String);
pub(crate) const MARKDOWN: Kind = Kind::Primitive(Primitive::Markdown);
pub(crate) const URI: Kind = Kind::Primitive(Primitive::Uri);
pub(crate) const URL: Kind = Kind::Primitive(Primitive::Url);
pub(crate) const CANONICAL: Kind = Kind::Primitive(Primitive::Canonical);
pub(crate) const CODE: Kind = Kind::Primitive(Primitive::Code);
pub(crate) const ID: Kind = Kind::Primitive(Primitive::Id);
pub(crate) const BOOLEAN: Kind = Kind::Primitive(Primitive::Boolean);
pub(crate) const INTEGER: Kind = Kind::Primitive(Primitive::Integer);
pub(crate) const UNSIGNED_INT: Kind = Kind::Primitive(Primitive::UnsignedInt);
pub(crate) const POSITIVE_INT: Kind = Kind::Primitive(Primitive::PositiveInt);
pub(crate) const DECIMAL: Kind = Kind::Primitive(Primitive::Decimal);
pub(crate) const DATE: Kind = Kind::Primitive(Primitive::Date);
pub(crate) const DATE_TIME: Kind = Kind::Primitive(Primitive::DateTime);
pub(crate) const INSTANT: Kind = Kind::Primitive(Primitive::Instant);
pub(crate) const TIME: Kind = Kind::Primitive(Primitive::Time);
pub(crate) const BASE64_BINARY: Kind = Kind::Primitive(Primitive::Base64Binary);
pub(crate) const XHTML: Kind = Kind::Primitive(Primitive::Xhtml);

/// Elements every datatype and element may carry.
pub(crate) static ELEMENT_BASE: &[Element] =
    &[one("id", STRING), many("extension", crate::datatypes::EXTENSION)];

/// Elements every backbone element may carry, on top of [`ELEMENT_BASE`].
pub(crate) static BACKBONE_BASE: &[Element] = &[many("modifierExtension", crate::datatypes::EXTENSION)];

/// Elements every resource may carry (R4 `Resource` and `DomainResource`).
pub(crate) static RESOURCE_BASE: &[Element] = &[
    one("id", ID),
    one("meta", crate::datatypes::META),
    one("implicitRules", URI),
    one("language", CODE),
    one("text", crate::datatypes::NARRATIVE),
    one("contained", Kind::Contained),
    many("extension", crate::datatypes::EXTENSION),
    many("modifierExtension", crate::datatypes::EXTENSION),
];

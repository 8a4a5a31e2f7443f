//! The one error type of this crate. Messages name element paths, rules and allowed codes,
//! never the values a client sent: a rejected record may carry personal health information,
//! and error text ends up in logs and in `OperationOutcome.diagnostics`.

use medledger_types::ResourceType;

use crate::outcome::IssueType;

/// Why FHIR JSON or a search request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FhirError {
    /// The body is larger than the limit for its kind.
    #[error("the body is {size_bytes} bytes; the limit is {max_bytes}")]
    TooLarge {
        /// The body's size.
        size_bytes: usize,
        /// The limit.
        max_bytes: usize,
    },
    /// The body is not a JSON object (syntax error, duplicate key, too deep, not an object).
    #[error("the body is not a FHIR JSON object: {0}")]
    NotJson(String),
    /// `resourceType` names another type than the endpoint takes.
    #[error("wrong resourceType for this endpoint: expected {expected}, found {}", found_name(*.found))]
    WrongResourceType {
        /// The type this endpoint takes.
        expected: ResourceType,
        /// The type the body names, if it is one MedLedger keeps.
        found: Option<ResourceType>,
    },
    /// A required element (R4 minimum cardinality 1, or a rule) is absent.
    #[error("{path} is required")]
    Missing {
        /// FHIRPath of the element.
        path: String,
    },
    /// An element that R4 does not define here, or that MedLedger does not accept.
    #[error("{path} is not an element MedLedger accepts here")]
    UnknownElement {
        /// FHIRPath of the element.
        path: String,
    },
    /// An element has the wrong JSON type or format.
    #[error("{path}: {reason}")]
    Invalid {
        /// FHIRPath of the element.
        path: String,
        /// The rule it breaks.
        reason: String,
    },
    /// A code outside its required value set.
    #[error("{path} must be one of: {allowed}")]
    InvalidCode {
        /// FHIRPath of the element.
        path: String,
        /// The allowed codes, comma-separated.
        allowed: String,
    },
    /// An R4 invariant (constraint key such as `con-5`) does not hold.
    #[error("{path} breaks FHIR rule {key}: {rule}")]
    Invariant {
        /// FHIRPath of the element the rule is on.
        path: String,
        /// The R4 constraint key.
        key: &'static str,
        /// What the rule says.
        rule: &'static str,
    },
    /// An inline attachment is larger than MedLedger keeps inline.
    #[error("an attachment holds {size_bytes} bytes; the limit is {max_bytes}")]
    AttachmentTooLarge {
        /// Decoded size of the attachment data.
        size_bytes: usize,
        /// The limit.
        max_bytes: usize,
    },
    /// A search parameter this server does not support for the type (with `handling=strict`).
    #[error("unknown search parameter {name}")]
    UnknownSearchParameter {
        /// The parameter's name (or a placeholder if the name itself is malformed).
        name: String,
    },
    /// A supported parameter with a modifier this server does not support.
    #[error("search parameter {name} does not support modifier :{modifier}")]
    UnsupportedModifier {
        /// The parameter's name.
        name: String,
        /// The modifier.
        modifier: String,
    },
    /// A supported search parameter with a malformed value.
    #[error("search parameter {name}: {reason}")]
    InvalidSearchValue {
        /// The parameter's name.
        name: String,
        /// What is wrong with the value.
        reason: String,
    },
    /// A search with more parameters or values than the limit.
    #[error("the search has {count} parameters or values; the limit is {max}")]
    TooManySearchParameters {
        /// How many there were.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A transaction Bundle breaks a Bundle or transaction rule.
    #[error("invalid transaction Bundle: {path}: {reason}")]
    InvalidBundle {
        /// FHIRPath of the offending element.
        path: String,
        /// The rule it breaks.
        reason: String,
    },
    /// A transaction Bundle has more entries than the limit.
    #[error("the Bundle has {count} entries; the limit is {max}")]
    TooManyEntries {
        /// How many entries there were.
        count: usize,
        /// The limit.
        max: usize,
    },
}

fn found_name(found: Option<ResourceType>) -> &'static str {
    found.map_or("a type MedLedger does not keep", ResourceType::as_str)
}

impl FhirError {
    /// The R4 `OperationOutcome.issue.code` (IssueType) for this error.
    #[must_use]
    pub fn issue_type(&self) -> IssueType {
        match self {
            Self::TooLarge { .. } | Self::AttachmentTooLarge { .. } | Self::TooManyEntries { .. } => {
                IssueType::TooLong
            }
            Self::NotJson(_) | Self::UnknownElement { .. } => IssueType::Structure,
            Self::WrongResourceType { .. } | Self::InvalidBundle { .. } => IssueType::Invalid,
            Self::Missing { .. } => IssueType::Required,
            Self::Invalid { .. } | Self::InvalidSearchValue { .. } => IssueType::Value,
            Self::InvalidCode { .. } => IssueType::CodeInvalid,
            Self::Invariant { .. } => IssueType::Invariant,
            Self::UnknownSearchParameter { .. } | Self::UnsupportedModifier { .. } => IssueType::NotSupported,
            Self::TooManySearchParameters { .. } => IssueType::TooCostly,
        }
    }

    /// The R4 IssueType code for this error, e.g. `"required"`.
    #[must_use]
    pub fn issue_code(&self) -> &'static str {
        self.issue_type().as_str()
    }

    /// The HTTP status the FHIR API answers with: 413 for size limits, 400 otherwise (R4
    /// answers 400 for content that fails parsing or basic validation, and for bad searches).
    #[must_use]
    pub fn http_status(&self) -> u16 {
        match self {
            Self::TooLarge { .. } | Self::AttachmentTooLarge { .. } => 413,
            _ => 400,
        }
    }

    /// FHIRPath of the element at fault, where there is one (for `issue.expression`).
    #[must_use]
    pub fn path(&self) -> Option<&str> {
        match self {
            Self::Missing { path }
            | Self::UnknownElement { path }
            | Self::Invalid { path, .. }
            | Self::InvalidCode { path, .. }
            | Self::Invariant { path, .. }
            | Self::InvalidBundle { path, .. } => Some(path),
            _ => None,
        }
    }

    /// This error as an `OperationOutcome` with one issue of severity `error`.
    #[must_use]
    pub fn to_operation_outcome(&self) -> serde_json::Value {
        let mut outcome = crate::outcome::operation_outcome(
            crate::outcome::Severity::Error,
            self.issue_type(),
            &self.to_string(),
        );
        if let (Some(path), Some(issue)) = (self.path(), outcome["issue"][0].as_object_mut()) {
            issue.insert("expression".to_owned(), serde_json::json!([path]));
        }
        outcome
    }

    /// The path, for moving an error of a resource into the Bundle entry it came in.
    pub(crate) fn path_mut(&mut self) -> Option<&mut String> {
        match self {
            Self::Missing { path }
            | Self::UnknownElement { path }
            | Self::Invalid { path, .. }
            | Self::InvalidCode { path, .. }
            | Self::Invariant { path, .. }
            | Self::InvalidBundle { path, .. } => Some(path),
            _ => None,
        }
    }

    /// An element that is not allowed where it is, named only if its name looks like a FHIR
    /// element name (a JSON key can hold anything, personal data included).
    pub(crate) fn unknown_element(parent: &str, name: &str) -> Self {
        let plausible = (1..=64).contains(&name.len())
            && name.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
            && !name.starts_with(|character: char| character.is_ascii_digit());
        let name = if plausible { name } else { "(an element with a malformed name)" };
        Self::UnknownElement { path: format!("{parent}.{name}") }
    }

    pub(crate) fn invalid(path: &str, reason: impl Into<String>) -> Self {
        Self::Invalid { path: path.to_owned(), reason: reason.into() }
    }

    pub(crate) fn missing(path: &str) -> Self {
        Self::Missing { path: path.to_owned() }
    }

    pub(crate) fn invariant(path: &str, key: &'static str, rule: &'static str) -> Self {
        Self::Invariant { path: path.to_owned(), key, rule }
    }

    pub(crate) fn bundle(path: &str, reason: impl Into<String>) -> Self {
        Self::InvalidBundle { path: path.to_owned(), reason: reason.into() }
    }
}

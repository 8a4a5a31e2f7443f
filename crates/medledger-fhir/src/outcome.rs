//! `OperationOutcome`: how every FHIR error and warning is answered.

use serde_json::{Value, json};

/// R4 `OperationOutcome.issue.severity` (IssueSeverity, a required binding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The action failed and the server cannot go on.
    Fatal,
    /// The action failed.
    Error,
    /// The action succeeded, with a caveat.
    Warning,
    /// For information only.
    Information,
}

impl Severity {
    /// The R4 code.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fatal => "fatal",
            Self::Error => "error",
            Self::Warning => "warning",
            Self::Information => "information",
        }
    }
}

macro_rules! issue_types {
    ($($(#[$doc:meta])* $variant:ident => $code:literal,)+) => {
        /// R4 `OperationOutcome.issue.code` (IssueType, a required binding).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum IssueType {
            $($(#[$doc])* $variant,)+
        }

        impl IssueType {
            /// Every IssueType of R4.
            pub const ALL: &'static [IssueType] = &[$(IssueType::$variant),+];

            /// The R4 code.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $code,)+ }
            }
        }
    };
}

issue_types! {
    /// Content invalid against the specification or a profile.
    Invalid => "invalid",
    /// A structural issue in the content (unknown element, not JSON).
    Structure => "structure",
    /// A required element is missing.
    Required => "required",
    /// An element or header value is invalid.
    Value => "value",
    /// A content validation rule failed.
    Invariant => "invariant",
    /// An authentication or authorization problem.
    Security => "security",
    /// The client needs to authenticate.
    Login => "login",
    /// The user or system is not known.
    Unknown => "unknown",
    /// The session or credentials expired.
    Expired => "expired",
    /// Authenticated but not allowed.
    Forbidden => "forbidden",
    /// Some information was withheld.
    Suppressed => "suppressed",
    /// Processing problems not covered elsewhere.
    Processing => "processing",
    /// The request is not supported.
    NotSupported => "not-supported",
    /// A duplicate of something that exists.
    Duplicate => "duplicate",
    /// Several matches where one was expected.
    MultipleMatches => "multiple-matches",
    /// The reference could not be resolved.
    NotFound => "not-found",
    /// The resource was deleted.
    Deleted => "deleted",
    /// Content too long.
    TooLong => "too-long",
    /// The code is not in its value set.
    CodeInvalid => "code-invalid",
    /// An extension was not recognised.
    Extension => "extension",
    /// The operation was too costly to perform.
    TooCostly => "too-costly",
    /// A business rule was broken.
    BusinessRule => "business-rule",
    /// An edit conflict (version mismatch).
    Conflict => "conflict",
    /// A transient problem: try again.
    Transient => "transient",
    /// A lock could not be obtained.
    LockError => "lock-error",
    /// Nothing can be stored at this time.
    NoStore => "no-store",
    /// An unexpected internal error.
    Exception => "exception",
    /// An internal timeout.
    Timeout => "timeout",
    /// Not all data sources answered.
    Incomplete => "incomplete",
    /// The client sent too many requests.
    Throttled => "throttled",
    /// Information only, no problem.
    Informational => "informational",
}

/// An `OperationOutcome` with one issue. `diagnostics` must not contain personal data: it
/// ends up in logs and in the client's hands.
#[must_use]
pub fn operation_outcome(severity: Severity, code: IssueType, diagnostics: &str) -> Value {
    json!({
        "resourceType": "OperationOutcome",
        "issue": [{
            "severity": severity.as_str(),
            "code": code.as_str(),
            "diagnostics": diagnostics,
        }],
    })
}

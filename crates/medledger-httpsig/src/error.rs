//! Why a signed request was refused.

/// Why a request's signature was not accepted, or why the replay cache refused it.
///
/// Messages name the header, component or parameter at fault and the numbers involved. They never
/// repeat signature bytes, and anything they quote from the request is bounded by the header
/// size limits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// `Signature-Input` or `Signature` is absent.
    #[error("the request has no {header} header; members-only endpoints need an RFC 9421 signature")]
    MissingSignature {
        /// The absent header, in lowercase.
        header: &'static str,
    },
    /// The signature covers `content-digest` (required for a body) but the header is absent.
    #[error("the request covers content-digest but has no content-digest header (RFC 9530, sha-256)")]
    MissingContentDigest,
    /// A header is longer than its limit.
    #[error("the {header} header is {length_bytes} bytes; at most {max_bytes} are accepted")]
    HeaderTooLarge {
        /// The header, in lowercase.
        header: &'static str,
        /// Its length.
        length_bytes: usize,
        /// The limit.
        max_bytes: usize,
    },
    /// `Signature-Input` is not a structured-field dictionary with one canonical `sig1` inner list.
    #[error("malformed signature-input header: {0}")]
    MalformedSignatureInput(String),
    /// `Signature` is not a dictionary with one `sig1` byte sequence of 64 bytes.
    #[error("malformed signature header: {0}")]
    MalformedSignature(String),
    /// `Content-Digest` is not a dictionary with a 32-byte `sha-256` byte sequence.
    #[error("malformed content-digest header: {0}")]
    MalformedContentDigest(String),
    /// A covered component outside the profile.
    #[error(
        "covered component {0:?} is not allowed; cover \"@method\" \"@authority\" \"@path\" \"@query\" and, with a body, \"content-digest\""
    )]
    UnknownComponent(String),
    /// A covered component listed twice.
    #[error("covered component {0:?} is listed twice")]
    DuplicateComponent(String),
    /// A required component is not covered.
    #[error("covered components lack {0:?}")]
    MissingComponent(&'static str),
    /// The right components in the wrong order.
    #[error(
        "covered components must be in the order \"@method\" \"@authority\" \"@path\" \"@query\" \"content-digest\""
    )]
    WrongComponentOrder,
    /// A required signature parameter is absent.
    #[error("signature parameter {0} is missing")]
    MissingParameter(&'static str),
    /// A signature parameter outside the profile.
    #[error("signature parameter {0:?} is not allowed; use created, expires, nonce, keyid and alg")]
    UnknownParameter(String),
    /// A signature parameter of the wrong type or range.
    #[error("signature parameter {name}: {reason}")]
    BadParameter {
        /// The parameter.
        name: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `alg` is not `ed25519`.
    #[error("signature algorithm {0:?} is not accepted; use \"ed25519\"")]
    WrongAlgorithm(String),
    /// `keyid` is not an Ed25519 public key as 64 lowercase hex digits.
    #[error("keyid: {0}")]
    BadKeyId(&'static str),
    /// `nonce` has the wrong length or characters.
    #[error("nonce: {0}")]
    BadNonce(&'static str),
    /// `created` is too far in the past.
    #[error(
        "signature created at {created} is more than {max_skew_seconds} s before the server's time {now}; sign again with a correct clock"
    )]
    StaleSignature {
        /// The `created` parameter.
        created: u64,
        /// The verifier's clock.
        now: u64,
        /// The allowed difference.
        max_skew_seconds: u64,
    },
    /// `created` is too far in the future.
    #[error(
        "signature created at {created} is more than {max_skew_seconds} s after the server's time {now}; check the client's clock"
    )]
    FutureSignature {
        /// The `created` parameter.
        created: u64,
        /// The verifier's clock.
        now: u64,
        /// The allowed difference.
        max_skew_seconds: u64,
    },
    /// `expires` is not after `created`, or too long after it.
    #[error("expires {expires} must be after created {created} and at most {max_lifetime_seconds} s later")]
    BadExpires {
        /// The `created` parameter.
        created: u64,
        /// The `expires` parameter.
        expires: u64,
        /// The longest lifetime allowed.
        max_lifetime_seconds: u64,
    },
    /// `expires` has passed.
    #[error("signature expired at {expires}; the server's time is {now}")]
    ExpiredSignature {
        /// The `expires` parameter.
        expires: u64,
        /// The verifier's clock.
        now: u64,
    },
    /// A component value that cannot go into a signature base (empty, or not visible ASCII).
    #[error("component {component:?}: {reason}")]
    BadComponentValue {
        /// The component.
        component: String,
        /// What is wrong with its value.
        reason: &'static str,
    },
    /// Method, authority, path and query are too long together.
    #[error("method, authority, path and query are {length_bytes} bytes; at most {max_bytes} are accepted")]
    TargetTooLong {
        /// Their total length.
        length_bytes: usize,
        /// The limit.
        max_bytes: usize,
    },
    /// The body's SHA-256 is not the one in `Content-Digest`.
    #[error("the body does not match its content-digest header")]
    ContentDigestMismatch,
    /// The signature does not verify with the `keyid` key over the request as received.
    #[error("the signature does not verify with the keyid key over this request")]
    BadSignature,
    /// The (key, nonce) pair was used within the freshness window.
    #[error("this nonce was already used with this key; sign each request with a new nonce")]
    Replayed,
    /// The replay cache holds its maximum of live entries.
    #[error("the server is tracking its maximum of {max_entries} recent signed requests; retry shortly")]
    ReplayCacheFull {
        /// The cache's capacity.
        max_entries: usize,
    },
}

impl AuthError {
    /// A stable kebab-case name for the kind of error, for `urn:medledger:problem:<slug>`.
    #[must_use]
    pub fn slug(&self) -> &'static str {
        match self {
            Self::MissingSignature { .. } => "missing-signature",
            Self::MissingContentDigest => "missing-content-digest",
            Self::HeaderTooLarge { .. } => "header-too-large",
            Self::MalformedSignatureInput(_) => "bad-signature-input",
            Self::MalformedSignature(_) => "bad-signature-header",
            Self::MalformedContentDigest(_) => "bad-content-digest",
            Self::UnknownComponent(_) => "unknown-component",
            Self::DuplicateComponent(_) => "duplicate-component",
            Self::MissingComponent(_) => "missing-component",
            Self::WrongComponentOrder => "wrong-component-order",
            Self::MissingParameter(_) => "missing-signature-parameter",
            Self::UnknownParameter(_) => "unknown-signature-parameter",
            Self::BadParameter { .. } => "bad-signature-parameter",
            Self::WrongAlgorithm(_) => "wrong-algorithm",
            Self::BadKeyId(_) => "bad-keyid",
            Self::BadNonce(_) => "bad-nonce",
            Self::StaleSignature { .. } => "stale-signature",
            Self::FutureSignature { .. } => "future-signature",
            Self::BadExpires { .. } => "bad-expires",
            Self::ExpiredSignature { .. } => "expired-signature",
            Self::BadComponentValue { .. } => "bad-component-value",
            Self::TargetTooLong { .. } => "request-target-too-long",
            Self::ContentDigestMismatch => "content-digest-mismatch",
            Self::BadSignature => "bad-request-signature",
            Self::Replayed => "replayed-request",
            Self::ReplayCacheFull { .. } => "replay-cache-full",
        }
    }

    /// The HTTP status the API answers with: 503 when the replay cache is full (the server is
    /// overloaded, the request may be fine), 401 for everything else.
    #[must_use]
    pub fn http_status(&self) -> u16 {
        match self {
            Self::ReplayCacheFull { .. } => 503,
            _ => 401,
        }
    }
}

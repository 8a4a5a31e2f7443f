//! Signing a request (clients) and verifying one (the API).

use base64::Engine as _;
use medledger_crypto::{PublicKey, SigningKey};

use crate::digest::{check_content_digest, content_digest};
use crate::freshness::check_lifetime;
use crate::params::{SignatureParams, parse_signature, parse_signature_input, serialise_for_signing};
use crate::{
    AuthError, CONTENT_DIGEST_COMPONENT, MAX_SIGNATURE_HEADER_BYTES, MAX_SIGNATURE_INPUT_BYTES,
    MAX_SIGNED_TARGET_BYTES, NONCE_RANDOM_BYTES, REQUIRED_COMPONENTS, SIGNATURE_LABEL, signature_base,
};

/// The `Signature-Input` header name, in lowercase.
const SIGNATURE_INPUT_HEADER: &str = "signature-input";

/// The `Signature` header name, in lowercase.
const SIGNATURE_HEADER: &str = "signature";

/// The parts of an HTTP request that authentication reads, as plain text and bytes.
///
/// Headers are their field values as received (one line each; `None` when absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestParts<'a> {
    /// The method, e.g. `GET`, as sent (case matters).
    pub method: &'a str,
    /// Host and optional port: the `Host` header on the server, the URL's authority on the client.
    pub authority: &'a str,
    /// The path as sent, percent-encoding untouched, starting with `/`.
    pub path: &'a str,
    /// The query string without its `?`; `None` when the target has no `?`.
    pub query: Option<&'a str>,
    /// The `Content-Digest` header (ignored by [`sign_request`], which computes it).
    pub content_digest: Option<&'a str>,
    /// The body as received (empty when there is none).
    pub body: &'a [u8],
    /// The `Signature-Input` header (ignored by [`sign_request`]).
    pub signature_input: Option<&'a str>,
    /// The `Signature` header (ignored by [`sign_request`]).
    pub signature: Option<&'a str>,
}

/// The headers a client adds to a request it signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// Value of `Signature-Input`.
    pub signature_input: String,
    /// Value of `Signature`.
    pub signature: String,
    /// Value of `Content-Digest`, when the body is not empty.
    pub content_digest: Option<String>,
}

/// Who signed a request, once [`verify_request`] has accepted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRequest {
    /// The key that signed it (not yet known to be a member's).
    pub key: PublicKey,
    /// Its nonce, for [`ReplayCache::check_and_insert`](crate::ReplayCache::check_and_insert).
    pub nonce: String,
    /// Its `created` time, unix seconds.
    pub created: u64,
    /// Its `expires` time, unix seconds, if it had one.
    pub expires: Option<u64>,
}

/// Signs a request with a member key: covers method, authority, path and query, and the body
/// through `Content-Digest` when it is not empty.
///
/// `created` is the client's clock in unix seconds; `nonce` a fresh [`new_nonce`]. Ignores the
/// header fields of `parts`.
///
/// # Panics
///
/// On values only a programming error produces: a nonce that is not 16 to 64 characters of
/// `A-Z a-z 0-9 - _`, an empty method or authority, or one that is not visible ASCII (values
/// from a parsed URL always are).
#[must_use]
pub fn sign_request(key: &SigningKey, parts: &RequestParts<'_>, created: u64, nonce: &str) -> SignedHeaders {
    let content_digest = (!parts.body.is_empty()).then(|| content_digest(parts.body));
    let components = covered_components(content_digest.is_some());
    let public_key = key.public_key();
    let signature_params = serialise_for_signing(&components, created, nonce, &public_key);
    let base = request_signature_base(parts, content_digest.as_deref(), &signature_params)
        .unwrap_or_else(|error| panic!("cannot sign this request: {error}"));
    let signature = key.sign(base.as_bytes());
    let mut signature_header = sfv::DictSerializer::new();
    let _ = signature_header.bare_item(sfv::KeyRef::constant(SIGNATURE_LABEL), signature.0.as_slice());
    SignedHeaders {
        signature_input: format!("{SIGNATURE_LABEL}={signature_params}"),
        signature: signature_header.finish().expect("a dictionary with one member always serialises"),
        content_digest,
    }
}

/// Verifies a signed request at `now_seconds` (the server's clock, unix seconds): header format,
/// covered components, freshness, the body's digest and the signature.
///
/// It does not check that the key belongs to an active member, nor that the nonce is new: the
/// caller does both, in that order (see the crate documentation).
pub fn verify_request(parts: &RequestParts<'_>, now_seconds: u64) -> Result<VerifiedRequest, AuthError> {
    let input = bounded_header(parts.signature_input, SIGNATURE_INPUT_HEADER, MAX_SIGNATURE_INPUT_BYTES)?;
    let signature = bounded_header(parts.signature, SIGNATURE_HEADER, MAX_SIGNATURE_HEADER_BYTES)?;
    let params = parse_signature_input(input)?;
    let signature = parse_signature(signature)?;
    let covers_digest = check_components(&params.components, parts.body.is_empty())?;
    check_lifetime(params.created, params.expires, now_seconds)?;
    let content_digest =
        if covers_digest { Some(check_content_digest(parts.content_digest, parts.body)?) } else { None };
    check_target_length(parts)?;
    let base = request_signature_base(parts, content_digest, &params.serialised)?;
    params.key.verify(base.as_bytes(), &signature).map_err(|_| AuthError::BadSignature)?;
    let SignatureParams { key, nonce, created, expires, .. } = params;
    Ok(VerifiedRequest { key, nonce, created, expires })
}

/// A fresh nonce: [`NONCE_RANDOM_BYTES`] from the operating system, base64url without padding.
///
/// # Panics
///
/// If the operating system's random number generator fails; no request can be signed safely
/// then.
#[must_use]
pub fn new_nonce() -> String {
    let mut bytes = [0u8; NONCE_RANDOM_BYTES];
    getrandom::fill(&mut bytes).expect("the operating system's random number generator failed");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn covered_components(with_content_digest: bool) -> Vec<&'static str> {
    let mut components = REQUIRED_COMPONENTS.to_vec();
    if with_content_digest {
        components.push(CONTENT_DIGEST_COMPONENT);
    }
    components
}

fn bounded_header<'h>(
    value: Option<&'h str>,
    header: &'static str,
    max_bytes: usize,
) -> Result<&'h str, AuthError> {
    let value = value.ok_or(AuthError::MissingSignature { header })?;
    if value.len() > max_bytes {
        return Err(AuthError::HeaderTooLarge { header, length_bytes: value.len(), max_bytes });
    }
    Ok(value)
}

/// Checks the covered components against the profile; returns whether `content-digest` is one.
fn check_components(found: &[String], body_is_empty: bool) -> Result<bool, AuthError> {
    let allowed = |name: &str| REQUIRED_COMPONENTS.contains(&name) || name == CONTENT_DIGEST_COMPONENT;
    for (index, name) in found.iter().enumerate() {
        if !allowed(name) {
            return Err(AuthError::UnknownComponent(name.clone()));
        }
        if found[..index].contains(name) {
            return Err(AuthError::DuplicateComponent(name.clone()));
        }
    }
    for required in REQUIRED_COMPONENTS {
        if !found.iter().any(|name| name == required) {
            return Err(AuthError::MissingComponent(required));
        }
    }
    let covers_digest = found.iter().any(|name| name == CONTENT_DIGEST_COMPONENT);
    if !covers_digest && !body_is_empty {
        return Err(AuthError::MissingComponent(CONTENT_DIGEST_COMPONENT));
    }
    if found.iter().map(String::as_str).ne(covered_components(covers_digest)) {
        return Err(AuthError::WrongComponentOrder);
    }
    Ok(covers_digest)
}

fn check_target_length(parts: &RequestParts<'_>) -> Result<(), AuthError> {
    let length_bytes =
        parts.method.len() + parts.authority.len() + parts.path.len() + parts.query.map_or(0, str::len);
    if length_bytes > MAX_SIGNED_TARGET_BYTES {
        return Err(AuthError::TargetTooLong { length_bytes, max_bytes: MAX_SIGNED_TARGET_BYTES });
    }
    Ok(())
}

/// The signature base of a request under the profile.
fn request_signature_base(
    parts: &RequestParts<'_>,
    content_digest: Option<&str>,
    signature_params: &str,
) -> Result<String, AuthError> {
    let authority = parts.authority.to_ascii_lowercase();
    let path = if parts.path.is_empty() { "/" } else { parts.path };
    let query = format!("?{}", parts.query.unwrap_or(""));
    let mut components = vec![
        (REQUIRED_COMPONENTS[0], parts.method),
        (REQUIRED_COMPONENTS[1], authority.as_str()),
        (REQUIRED_COMPONENTS[2], path),
        (REQUIRED_COMPONENTS[3], query.as_str()),
    ];
    if let Some(content_digest) = content_digest {
        components.push((CONTENT_DIGEST_COMPONENT, content_digest));
    }
    signature_base(&components, signature_params)
}

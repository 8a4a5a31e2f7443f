//! Helpers shared by the integration tests.

#![allow(dead_code, reason = "each test file uses a different subset")]

use base64::Engine as _;
use medledger_crypto::SigningKey;
use medledger_httpsig::{RequestParts, SignedHeaders, signature_base};

/// A fixed "now" for deterministic tests: 2026-01-01T00:00:00Z.
pub const NOW: u64 = 1_767_225_600;

/// A nonce of the right shape.
pub const NONCE: &str = "AAECAwQFBgcICQoLDA0ODw";

/// A member key for tests. Predictable, so never a real member's.
pub fn member_key() -> SigningKey {
    SigningKey::from_seed(&[7; 32])
}

/// Another key, for "signed by someone else".
pub fn other_key() -> SigningKey {
    SigningKey::from_seed(&[8; 32])
}

/// A GET with a query and no body, unsigned.
pub fn get_request() -> RequestParts<'static> {
    RequestParts {
        method: "GET",
        authority: "node1.example.org:8443",
        path: "/v1/members",
        query: Some("organization=st-mary-hospital&limit=10"),
        content_digest: None,
        body: b"",
        signature_input: None,
        signature: None,
    }
}

/// A PUT with a JSON body, unsigned.
pub fn put_request() -> RequestParts<'static> {
    RequestParts {
        method: "PUT",
        authority: "node1.example.org:8443",
        path: "/v1/members/0123/display-name",
        query: None,
        content_digest: None,
        body: br#"{"display_name":"Dr. A. Example"}"#,
        signature_input: None,
        signature: None,
    }
}

/// `parts` carrying the headers of `signed`.
pub fn with_headers<'a>(parts: RequestParts<'a>, signed: &'a SignedHeaders) -> RequestParts<'a> {
    RequestParts {
        content_digest: signed.content_digest.as_deref(),
        signature_input: Some(&signed.signature_input),
        signature: Some(&signed.signature),
        ..parts
    }
}

/// Signs `inner_list` (a hand-written `Signature-Input` value after `sig1=`) over `components`
/// with the low-level API, for tests of inputs `sign_request` never produces.
pub fn sign_by_hand(key: &SigningKey, components: &[(&str, &str)], inner_list: &str) -> SignedHeaders {
    let base = signature_base(components, inner_list).expect("test components are valid");
    let signature = key.sign(base.as_bytes());
    SignedHeaders {
        signature_input: format!("sig1={inner_list}"),
        signature: format!("sig1=:{}:", base64::engine::general_purpose::STANDARD.encode(signature.0)),
        content_digest: None,
    }
}

/// The component values of [`get_request`] as the profile covers them.
pub fn get_components() -> Vec<(&'static str, &'static str)> {
    vec![
        ("@method", "GET"),
        ("@authority", "node1.example.org:8443"),
        ("@path", "/v1/members"),
        ("@query", "?organization=st-mary-hospital&limit=10"),
    ]
}

/// A valid `sig1` inner list for `key` over the four required components, with extra
/// parameters appended verbatim.
pub fn inner_list(key: &SigningKey, components: &str, created: u64, extra: &str) -> String {
    format!(
        "({components});created={created};keyid=\"{}\";alg=\"ed25519\";nonce=\"{NONCE}\"{extra}",
        key.public_key()
    )
}

/// The four required components, serialised.
pub const REQUIRED: &str = "\"@method\" \"@authority\" \"@path\" \"@query\"";

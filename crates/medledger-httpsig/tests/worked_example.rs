//! The worked example of `docs/api-auth.md`: its values are what this code produces, and the
//! document shows them.

use medledger_crypto::SigningKey;
use medledger_httpsig::{
    RequestParts, SignedHeaders, content_digest, sign_request, signature_base, verify_request,
};

/// The secret key of RFC 8032 §7.1 TEST 1: a published test key, never a member's.
const SEED_HEX: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const PUBLIC_KEY_HEX: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
/// 2026-01-01T00:00:00Z.
const CREATED: u64 = 1_767_225_600;
/// The bytes 0 to 15, base64url.
const NONCE: &str = "AAECAwQFBgcICQoLDA0ODw";
const AUTHORITY: &str = "node1.example.org:8443";

const GET_PATH: &str = "/v1/members";
const GET_QUERY: &str = "organization=st-mary-hospital&limit=10";
const GET_SIGNATURE_INPUT: &str = r#"sig1=("@method" "@authority" "@path" "@query");created=1767225600;keyid="d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";alg="ed25519";nonce="AAECAwQFBgcICQoLDA0ODw""#;
const GET_SIGNATURE: &str =
    "sig1=:QnCgGwMpNPn+eL2vsZcmyZ4KYRQrfBuCSyotZa0cO2pPr0ozenO2iED8wx27UEkfuvjyXAeQXnO3hH13fBlDBA==:";
const GET_SIGNATURE_BASE: &str = r#""@method": GET
"@authority": node1.example.org:8443
"@path": /v1/members
"@query": ?organization=st-mary-hospital&limit=10
"@signature-params": ("@method" "@authority" "@path" "@query");created=1767225600;keyid="d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";alg="ed25519";nonce="AAECAwQFBgcICQoLDA0ODw""#;

const PUT_PATH: &str =
    "/v1/members/d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a/display-name";
const PUT_BODY: &str = r#"{"display_name":"Dr. A. Example"}"#;
const PUT_CONTENT_DIGEST: &str = "sha-256=:cNNHh3PtEZvxu8JCaNp5Qkr7CCpRVbYI3HCWzV0A4e4=:";
const PUT_SIGNATURE_INPUT: &str = r#"sig1=("@method" "@authority" "@path" "@query" "content-digest");created=1767225600;keyid="d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";alg="ed25519";nonce="AAECAwQFBgcICQoLDA0ODw""#;
const PUT_SIGNATURE: &str =
    "sig1=:cTnD8uYueoAXtXM/JCY7f2VU2jPrlYsSxd7AxvcqStvJt4K1JEj2If1KwO4gWaDg2T2CDXWhuvIkoWE1JOm9Bw==:";
const PUT_SIGNATURE_BASE: &str = r#""@method": PUT
"@authority": node1.example.org:8443
"@path": /v1/members/d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a/display-name
"@query": ?
"content-digest": sha-256=:cNNHh3PtEZvxu8JCaNp5Qkr7CCpRVbYI3HCWzV0A4e4=:
"@signature-params": ("@method" "@authority" "@path" "@query" "content-digest");created=1767225600;keyid="d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";alg="ed25519";nonce="AAECAwQFBgcICQoLDA0ODw""#;

fn example_key() -> SigningKey {
    let mut seed = [0u8; 32];
    hex::decode_to_slice(SEED_HEX, &mut seed).expect("64 hex digits");
    SigningKey::from_seed(&seed)
}

fn request<'a>(method: &'a str, path: &'a str, query: Option<&'a str>, body: &'a [u8]) -> RequestParts<'a> {
    RequestParts {
        method,
        authority: AUTHORITY,
        path,
        query,
        content_digest: None,
        body,
        signature_input: None,
        signature: None,
    }
}

fn sign_and_verify(parts: RequestParts<'_>) -> SignedHeaders {
    let headers = sign_request(&example_key(), &parts, CREATED, NONCE);
    let received = RequestParts {
        content_digest: headers.content_digest.as_deref(),
        signature_input: Some(&headers.signature_input),
        signature: Some(&headers.signature),
        ..parts
    };
    assert!(verify_request(&received, CREATED).is_ok(), "the example verifies");
    headers
}

fn params_of(signature_input: &str) -> &str {
    signature_input.strip_prefix("sig1=").expect("labelled sig1")
}

#[test]
fn the_get_example_is_what_the_code_produces() {
    assert_eq!(example_key().public_key().to_string(), PUBLIC_KEY_HEX);
    let headers = sign_and_verify(request("GET", GET_PATH, Some(GET_QUERY), b""));
    assert_eq!(headers.signature_input, GET_SIGNATURE_INPUT);
    assert_eq!(headers.signature, GET_SIGNATURE);
    assert_eq!(headers.content_digest, None);
    let components = [
        ("@method", "GET"),
        ("@authority", AUTHORITY),
        ("@path", GET_PATH),
        ("@query", "?organization=st-mary-hospital&limit=10"),
    ];
    let base = signature_base(&components, params_of(GET_SIGNATURE_INPUT)).expect("valid components");
    assert_eq!(base, GET_SIGNATURE_BASE);
}

#[test]
fn the_put_example_is_what_the_code_produces() {
    let headers = sign_and_verify(request("PUT", PUT_PATH, None, PUT_BODY.as_bytes()));
    assert_eq!(headers.signature_input, PUT_SIGNATURE_INPUT);
    assert_eq!(headers.signature, PUT_SIGNATURE);
    assert_eq!(headers.content_digest.as_deref(), Some(PUT_CONTENT_DIGEST));
    assert_eq!(content_digest(PUT_BODY.as_bytes()), PUT_CONTENT_DIGEST);
    let components = [
        ("@method", "PUT"),
        ("@authority", AUTHORITY),
        ("@path", PUT_PATH),
        ("@query", "?"),
        ("content-digest", PUT_CONTENT_DIGEST),
    ];
    let base = signature_base(&components, params_of(PUT_SIGNATURE_INPUT)).expect("valid components");
    assert_eq!(base, PUT_SIGNATURE_BASE);
}

#[test]
fn docs_api_auth_shows_the_example() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api-auth.md");
    let doc = std::fs::read_to_string(path).expect("docs/api-auth.md exists");
    let shown = [
        SEED_HEX,
        PUBLIC_KEY_HEX,
        NONCE,
        GET_SIGNATURE_INPUT,
        GET_SIGNATURE,
        GET_SIGNATURE_BASE,
        PUT_BODY,
        PUT_CONTENT_DIGEST,
        PUT_SIGNATURE_INPUT,
        PUT_SIGNATURE,
        PUT_SIGNATURE_BASE,
    ];
    for value in shown {
        assert!(doc.contains(value), "docs/api-auth.md does not show:\n{value}");
    }
}

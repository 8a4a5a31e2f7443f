//! The Ed25519 test vector of RFC 9421 Appendix B.2.6, with the test key of Appendix B.1.4.
//!
//! The RFC covers other components than MedLedger's profile, so this checks the building blocks:
//! the signature base construction, byte for byte, and Ed25519 over it.

use base64::Engine as _;
use medledger_crypto::{PublicKey, Signature, SigningKey};
use medledger_httpsig::{AuthError, RequestParts, signature_base, verify_request};

/// `test-key-ed25519`, RFC 9421 Appendix B.1.4 (PKCS#8 private key).
const RFC_PRIVATE_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF
-----END PRIVATE KEY-----
";

/// `test-key-ed25519`, RFC 9421 Appendix B.1.4: the public key `x` of the JWK (base64url).
const RFC_PUBLIC_KEY_JWK_X: &str = "JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs";

/// The covered components of Appendix B.2.6, from the test request of Appendix B.2.
const RFC_COMPONENTS: [(&str, &str); 6] = [
    ("date", "Tue, 20 Apr 2021 02:07:55 GMT"),
    ("@method", "POST"),
    ("@path", "/foo"),
    ("@authority", "example.com"),
    ("content-type", "application/json"),
    ("content-length", "18"),
];

/// `Signature-Input` of Appendix B.2.6 after `sig-b26=` (RFC 8792 line folding undone).
const RFC_SIGNATURE_PARAMS: &str = r#"("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519""#;

/// The signature base of Appendix B.2.6 (RFC 8792 line folding undone).
const RFC_SIGNATURE_BASE: &str = r#""date": Tue, 20 Apr 2021 02:07:55 GMT
"@method": POST
"@path": /foo
"@authority": example.com
"content-type": application/json
"content-length": 18
"@signature-params": ("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519""#;

/// `Signature` of Appendix B.2.6, the byte sequence between the colons.
const RFC_SIGNATURE_BASE64: &str =
    "wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==";

fn rfc_public_key() -> PublicKey {
    let bytes =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(RFC_PUBLIC_KEY_JWK_X).expect("RFC base64url");
    PublicKey::from_bytes(&bytes.try_into().expect("32 bytes")).expect("the RFC key is a valid point")
}

fn rfc_signature() -> Signature {
    let bytes = base64::engine::general_purpose::STANDARD.decode(RFC_SIGNATURE_BASE64).expect("RFC base64");
    Signature(bytes.try_into().expect("64 bytes"))
}

#[test]
fn signature_base_is_the_rfc_one_byte_for_byte() {
    let base = signature_base(&RFC_COMPONENTS, RFC_SIGNATURE_PARAMS).expect("RFC components are valid");
    assert_eq!(base, RFC_SIGNATURE_BASE);
    assert!(!base.ends_with('\n'), "RFC 9421 §2.5: no newline after @signature-params");
}

#[test]
fn rfc_signature_verifies_with_the_rfc_public_key() {
    let base = signature_base(&RFC_COMPONENTS, RFC_SIGNATURE_PARAMS).expect("RFC components are valid");
    assert_eq!(rfc_public_key().verify(base.as_bytes(), &rfc_signature()), Ok(()));

    let tampered = base.replace("POST", "PUT");
    assert!(rfc_public_key().verify(tampered.as_bytes(), &rfc_signature()).is_err());
}

#[test]
fn signing_the_base_with_the_rfc_private_key_gives_the_rfc_signature() {
    // Ed25519 is deterministic, so our signing path must reproduce the RFC's bytes exactly.
    let key = SigningKey::from_pkcs8_pem(RFC_PRIVATE_KEY_PEM).expect("the RFC key is PKCS#8");
    assert_eq!(key.public_key(), rfc_public_key());
    let base = signature_base(&RFC_COMPONENTS, RFC_SIGNATURE_PARAMS).expect("RFC components are valid");
    assert_eq!(key.sign(base.as_bytes()), rfc_signature());
}

#[test]
fn the_rfc_request_is_outside_the_medledger_profile() {
    // Same signature, but labelled sig-b26 and without our required components and parameters.
    let request = RequestParts {
        method: "POST",
        authority: "example.com",
        path: "/foo",
        query: Some("param=Value&Pet=dog"),
        content_digest: Some(
            "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:",
        ),
        body: br#"{"hello": "world"}"#,
        signature_input: Some(&format!("sig-b26={RFC_SIGNATURE_PARAMS}")),
        signature: Some(&format!("sig-b26=:{RFC_SIGNATURE_BASE64}:")),
    };
    let result = verify_request(&request, 1_618_884_473);
    assert!(matches!(result, Err(AuthError::MalformedSignatureInput(_))), "{result:?}");
}

//! Signing and verifying requests through the public API: round trips, tampering, and every
//! way a signature can be outside the profile.

mod common;

use common::{
    NONCE, NOW, REQUIRED, get_components, get_request, inner_list, member_key, other_key, put_request,
    sign_by_hand, with_headers,
};
use medledger_httpsig::{
    AuthError, MAX_CLOCK_SKEW_SECONDS, MAX_SIGNATURE_INPUT_BYTES, MAX_SIGNED_TARGET_BYTES, RequestParts,
    SignedHeaders, VerifiedRequest, new_nonce, sign_request, verify_request,
};

fn signed(parts: &RequestParts<'_>) -> SignedHeaders {
    sign_request(&member_key(), parts, NOW, NONCE)
}

fn verify_by_hand(signed: &SignedHeaders) -> Result<VerifiedRequest, AuthError> {
    verify_request(&with_headers(get_request(), signed), NOW)
}

#[test]
fn get_and_put_round_trip() {
    for parts in [get_request(), put_request()] {
        let headers = signed(&parts);
        assert_eq!(headers.content_digest.is_some(), !parts.body.is_empty());
        let verified =
            verify_request(&with_headers(parts, &headers), NOW).expect("a signed request verifies");
        assert_eq!(
            verified,
            VerifiedRequest {
                key: member_key().public_key(),
                nonce: NONCE.to_owned(),
                created: NOW,
                expires: None
            }
        );
    }
}

#[test]
fn get_signature_input_is_the_profile() {
    let key = member_key().public_key();
    assert_eq!(
        signed(&get_request()).signature_input,
        format!("sig1=({REQUIRED});created={NOW};keyid=\"{key}\";alg=\"ed25519\";nonce=\"{NONCE}\"")
    );
    assert!(
        signed(&put_request()).signature_input.starts_with(&format!("sig1=({REQUIRED} \"content-digest\");"))
    );
}

#[test]
fn tampering_with_any_covered_part_fails() {
    let request = put_request();
    let headers = signed(&request);
    let good = with_headers(request, &headers);
    let other_digest = medledger_httpsig::content_digest(b"{}");
    let cases: [(&str, RequestParts<'_>, AuthError); 7] = [
        ("method", RequestParts { method: "POST", ..good }, AuthError::BadSignature),
        ("authority", RequestParts { authority: "node2.example.org:8443", ..good }, AuthError::BadSignature),
        ("path", RequestParts { path: "/v1/members/0124/display-name", ..good }, AuthError::BadSignature),
        ("query", RequestParts { query: Some("x=1"), ..good }, AuthError::BadSignature),
        (
            "body",
            RequestParts { body: br#"{"display_name":"Dr. B. Example"}"#, ..good },
            AuthError::ContentDigestMismatch,
        ),
        (
            "body and its digest",
            RequestParts { body: b"{}", content_digest: Some(&other_digest), ..good },
            AuthError::BadSignature,
        ),
        ("digest header", RequestParts { content_digest: None, ..good }, AuthError::MissingContentDigest),
    ];
    for (what, parts, expected) in cases {
        assert_eq!(verify_request(&parts, NOW), Err(expected), "tampered {what}");
    }
}

#[test]
fn tampering_with_signature_parameters_or_bytes_fails() {
    let headers = signed(&get_request());
    let other = other_key().public_key().to_string();
    let member = member_key().public_key().to_string();
    let input_edits = [
        ("created", headers.signature_input.replace(&NOW.to_string(), &(NOW + 1).to_string())),
        ("nonce", headers.signature_input.replace(NONCE, "AAECAwQFBgcICQoLDA0OEA")),
        ("keyid", headers.signature_input.replace(&member, &other)),
    ];
    for (what, signature_input) in input_edits {
        assert_ne!(signature_input, headers.signature_input, "{what} was edited");
        let tampered = SignedHeaders { signature_input, ..headers.clone() };
        assert_eq!(verify_by_hand(&tampered), Err(AuthError::BadSignature), "tampered {what}");
    }
    let mut signature = headers.signature.clone().into_bytes();
    // Change one base64 character in the middle of the byte sequence.
    signature[20] = if signature[20] == b'A' { b'B' } else { b'A' };
    let tampered = SignedHeaders { signature: String::from_utf8(signature).expect("ASCII"), ..headers };
    assert_eq!(verify_by_hand(&tampered), Err(AuthError::BadSignature));
}

#[test]
fn a_signature_by_another_key_under_my_keyid_fails() {
    let inner = inner_list(&member_key(), REQUIRED, NOW, "");
    let forged = sign_by_hand(&other_key(), &get_components(), &inner);
    assert_eq!(verify_by_hand(&forged), Err(AuthError::BadSignature));
    let honest = sign_by_hand(&member_key(), &get_components(), &inner);
    assert!(verify_by_hand(&honest).is_ok(), "the same input signed by the right key verifies");
}

#[test]
fn stale_and_future_created_fail() {
    let headers = signed(&get_request());
    let parts = with_headers(get_request(), &headers);
    assert!(verify_request(&parts, NOW + MAX_CLOCK_SKEW_SECONDS).is_ok());
    assert!(verify_request(&parts, NOW - MAX_CLOCK_SKEW_SECONDS).is_ok());
    assert_eq!(
        verify_request(&parts, NOW + MAX_CLOCK_SKEW_SECONDS + 1),
        Err(AuthError::StaleSignature {
            created: NOW,
            now: NOW + MAX_CLOCK_SKEW_SECONDS + 1,
            max_skew_seconds: MAX_CLOCK_SKEW_SECONDS
        })
    );
    assert!(matches!(
        verify_request(&parts, NOW - MAX_CLOCK_SKEW_SECONDS - 1),
        Err(AuthError::FutureSignature { created: NOW, .. })
    ));
}

#[test]
fn expires_is_honoured() {
    let key = member_key();
    let by_hand = |expires: u64| {
        let inner = inner_list(&key, REQUIRED, NOW, &format!(";expires={expires}"));
        verify_by_hand(&sign_by_hand(&key, &get_components(), &inner))
    };
    assert_eq!(by_hand(NOW + 60).map(|verified| verified.expires), Ok(Some(NOW + 60)));
    assert!(matches!(by_hand(NOW + MAX_CLOCK_SKEW_SECONDS + 1), Err(AuthError::BadExpires { .. })));
    assert!(matches!(by_hand(NOW), Err(AuthError::BadExpires { .. })));
    let inner = inner_list(&key, REQUIRED, NOW - 100, &format!(";expires={}", NOW - 1));
    assert_eq!(
        verify_by_hand(&sign_by_hand(&key, &get_components(), &inner)),
        Err(AuthError::ExpiredSignature { expires: NOW - 1, now: NOW })
    );
}

#[test]
fn missing_duplicate_unknown_and_misordered_components_fail() {
    let key = member_key();
    let cases = [
        (r#""@method" "@authority" "@path""#, AuthError::MissingComponent("@query")),
        (r#""@method" "@path" "@query""#, AuthError::MissingComponent("@authority")),
        (
            r#""@method" "@authority" "@path" "@query" "@query""#,
            AuthError::DuplicateComponent("@query".into()),
        ),
        (r#""@method" "@authority" "@path" "@query" "date""#, AuthError::UnknownComponent("date".into())),
        (
            r#""@method" "@authority" "@target-uri" "@query""#,
            AuthError::UnknownComponent("@target-uri".into()),
        ),
        (r#""@authority" "@method" "@path" "@query""#, AuthError::WrongComponentOrder),
        (r#""content-digest" "@method" "@authority" "@path" "@query""#, AuthError::WrongComponentOrder),
    ];
    for (components, expected) in cases {
        let inner = inner_list(&key, components, NOW, "");
        // Signed over what it claims, so only the profile check can refuse it.
        let headers = sign_by_hand(&key, &get_components(), &inner);
        assert_eq!(verify_by_hand(&headers), Err(expected), "{components}");
    }
}

#[test]
fn a_body_must_be_covered_by_content_digest() {
    let request = put_request();
    let mut headers = signed(&RequestParts { body: b"", ..request });
    headers.content_digest = Some(medledger_httpsig::content_digest(request.body));
    assert_eq!(
        verify_request(&with_headers(request, &headers), NOW),
        Err(AuthError::MissingComponent("content-digest"))
    );
}

#[test]
fn an_empty_body_may_be_covered_by_content_digest() {
    let key = member_key();
    let digest = medledger_httpsig::content_digest(b"");
    let mut components = get_components();
    components.push(("content-digest", &digest));
    let inner = inner_list(&key, &format!("{REQUIRED} \"content-digest\""), NOW, "");
    let mut headers = sign_by_hand(&key, &components, &inner);
    assert_eq!(verify_by_hand(&headers), Err(AuthError::MissingContentDigest));
    headers.content_digest = Some(digest);
    assert!(verify_by_hand(&headers).is_ok());
}

#[test]
fn missing_unknown_and_wrong_parameters_fail() {
    let key = member_key();
    let public = key.public_key();
    let lines = [
        (
            format!("({REQUIRED});keyid=\"{public}\";alg=\"ed25519\";nonce=\"{NONCE}\""),
            AuthError::MissingParameter("created"),
        ),
        (
            format!("({REQUIRED});created={NOW};alg=\"ed25519\";nonce=\"{NONCE}\""),
            AuthError::MissingParameter("keyid"),
        ),
        (
            format!("({REQUIRED});created={NOW};keyid=\"{public}\";nonce=\"{NONCE}\""),
            AuthError::MissingParameter("alg"),
        ),
        (
            format!("({REQUIRED});created={NOW};keyid=\"{public}\";alg=\"ed25519\""),
            AuthError::MissingParameter("nonce"),
        ),
        (inner_list(&key, REQUIRED, NOW, ";tag=\"app\""), AuthError::UnknownParameter("tag".into())),
        (
            format!("({REQUIRED});created={NOW};keyid=\"{public}\";alg=\"rsa-pss-sha512\";nonce=\"{NONCE}\""),
            AuthError::WrongAlgorithm("rsa-pss-sha512".into()),
        ),
        (
            format!("({REQUIRED});created=-1;keyid=\"{public}\";alg=\"ed25519\";nonce=\"{NONCE}\""),
            AuthError::BadParameter { name: "created", reason: "must not be negative" },
        ),
        (
            format!("({REQUIRED});created=\"{NOW}\";keyid=\"{public}\";alg=\"ed25519\";nonce=\"{NONCE}\""),
            AuthError::BadParameter { name: "created", reason: "must be an integer" },
        ),
        (
            format!("({REQUIRED});created={NOW};keyid=42;alg=\"ed25519\";nonce=\"{NONCE}\""),
            AuthError::BadParameter { name: "keyid", reason: "must be a quoted string" },
        ),
    ];
    for (inner, expected) in lines {
        let headers = sign_by_hand(&key, &get_components(), &inner);
        assert_eq!(verify_by_hand(&headers), Err(expected), "{inner}");
    }
}

#[test]
fn bad_keyids_and_nonces_fail() {
    let key = member_key();
    let public = key.public_key().to_string();
    let keyids =
        [public.to_uppercase(), public[..62].to_owned(), format!("01{}", "0".repeat(62)), "key-1".to_owned()];
    for keyid in keyids {
        let inner = inner_list(&key, REQUIRED, NOW, "").replace(&public, &keyid);
        let result = verify_by_hand(&sign_by_hand(&key, &get_components(), &inner));
        assert!(matches!(result, Err(AuthError::BadKeyId(_))), "{keyid}: {result:?}");
    }
    for nonce in ["short", "AAECAwQFBgcICQoL+A0ODw", "AAECAwQFBgcICQoL.A0ODw", &"a".repeat(65)] {
        let inner = inner_list(&key, REQUIRED, NOW, "").replace(NONCE, nonce);
        let result = verify_by_hand(&sign_by_hand(&key, &get_components(), &inner));
        assert!(matches!(result, Err(AuthError::BadNonce(_))), "{nonce}: {result:?}");
    }
}

#[test]
fn only_one_canonical_sig1_is_accepted() {
    let key = member_key();
    let inner = inner_list(&key, REQUIRED, NOW, "");
    let good = sign_by_hand(&key, &get_components(), &inner);
    let bad_inputs = [
        format!("sig2={inner}"),
        format!("{}, sig2={inner}", good.signature_input),
        format!("sig1={}", inner.replacen(' ', "  ", 1)),
        format!("sig1={}", inner.replacen('(', "( ", 1)),
        format!("sig1={inner};created={NOW}"),
        format!("sig1={inner}, sig1={inner}"),
        "sig1=\"@method\"".to_owned(),
        "sig1=(@method)".to_owned(),
        format!("sig1={}", inner.replace("\"@path\"", "\"@path\";req")),
        "not a dictionary (".to_owned(),
    ];
    for signature_input in bad_inputs {
        let headers = SignedHeaders { signature_input: signature_input.clone(), ..good.clone() };
        let result = verify_by_hand(&headers);
        assert!(
            matches!(result, Err(AuthError::MalformedSignatureInput(_))),
            "{signature_input}: {result:?}"
        );
    }
    let spaced = SignedHeaders { signature_input: format!("  {}\t", good.signature_input), ..good.clone() };
    assert!(verify_by_hand(&spaced).is_ok(), "whitespace around the field value is not part of it");
}

#[test]
fn malformed_signature_headers_fail() {
    let good = signed(&get_request());
    let bytes = &good.signature["sig1=".len()..];
    let bad_signatures = [
        format!("sig2={bytes}"),
        format!("{}, sig2={bytes}", good.signature),
        "sig1=:AAAA:".to_owned(),
        "sig1=\"x\"".to_owned(),
        format!("sig1={bytes};a=1"),
        "sig1=:!:".to_owned(),
    ];
    let unpadded = good.signature.replace("==:", ":");
    // The last base64 character before "==:" carries 2 bits of the signature and 4 unused low
    // bits; the next character of the alphabet sets one of those and decodes to the same bytes.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut stray_bits = good.signature.clone().into_bytes();
    let last = stray_bits.len() - 4;
    let value = ALPHABET.iter().position(|&c| c == stray_bits[last]).expect("a base64 character");
    assert_eq!(value % 16, 0, "canonical encodings leave the unused bits zero");
    stray_bits[last] = ALPHABET[value + 1];
    let stray_bits = String::from_utf8(stray_bits).expect("ASCII");
    assert!(good.signature.ends_with("==:") && unpadded != good.signature);
    let bad_signatures = bad_signatures.into_iter().chain([unpadded, stray_bits]);
    for signature in bad_signatures {
        let headers = SignedHeaders { signature: signature.clone(), ..good.clone() };
        let result = verify_by_hand(&headers);
        assert!(matches!(result, Err(AuthError::MalformedSignature(_))), "{signature}: {result:?}");
    }
}

#[test]
fn missing_and_oversize_headers_fail() {
    let good = signed(&get_request());
    let parts = with_headers(get_request(), &good);
    assert_eq!(
        verify_request(&RequestParts { signature_input: None, ..parts }, NOW),
        Err(AuthError::MissingSignature { header: "signature-input" })
    );
    assert_eq!(
        verify_request(&RequestParts { signature: None, ..parts }, NOW),
        Err(AuthError::MissingSignature { header: "signature" })
    );
    let oversize = format!("{}{}", good.signature_input, " ".repeat(MAX_SIGNATURE_INPUT_BYTES));
    assert!(matches!(
        verify_request(&RequestParts { signature_input: Some(&oversize), ..parts }, NOW),
        Err(AuthError::HeaderTooLarge {
            header: "signature-input",
            max_bytes: MAX_SIGNATURE_INPUT_BYTES,
            ..
        })
    ));
    let oversize = format!("{}{}", good.signature, " ".repeat(256));
    assert!(matches!(
        verify_request(&RequestParts { signature: Some(&oversize), ..parts }, NOW),
        Err(AuthError::HeaderTooLarge { header: "signature", .. })
    ));
}

#[test]
fn empty_authority_and_oversize_targets_fail() {
    let headers = signed(&get_request());
    let parts = with_headers(get_request(), &headers);
    assert!(matches!(
        verify_request(&RequestParts { authority: "", ..parts }, NOW),
        Err(AuthError::BadComponentValue { ref component, .. }) if component == "@authority"
    ));
    let long_query = "a".repeat(MAX_SIGNED_TARGET_BYTES);
    assert!(matches!(
        verify_request(&RequestParts { query: Some(&long_query), ..parts }, NOW),
        Err(AuthError::TargetTooLong { max_bytes: MAX_SIGNED_TARGET_BYTES, .. })
    ));
}

#[test]
fn authority_case_and_empty_query_forms_are_equivalent() {
    let request = RequestParts { authority: "Node1.Example.ORG:8443", query: None, ..get_request() };
    let headers = signed(&request);
    let lowercase = RequestParts { authority: "node1.example.org:8443", query: Some(""), ..request };
    assert!(verify_request(&with_headers(lowercase, &headers), NOW).is_ok());
    let with_query = RequestParts { query: Some("a=1"), ..lowercase };
    assert_eq!(verify_request(&with_headers(with_query, &headers), NOW), Err(AuthError::BadSignature));
}

#[test]
fn new_nonces_are_valid_and_distinct() {
    let nonces: Vec<String> = (0..64).map(|_| new_nonce()).collect();
    for nonce in &nonces {
        assert_eq!(nonce.len(), 22);
        let headers = sign_request(&member_key(), &get_request(), NOW, nonce);
        assert!(verify_request(&with_headers(get_request(), &headers), NOW).is_ok());
    }
    let mut unique = nonces.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), nonces.len());
}

#[test]
#[should_panic(expected = "is not 16 to 64 characters")]
fn signing_with_a_bad_nonce_panics() {
    let _ = sign_request(&member_key(), &get_request(), NOW, "too short");
}

#[test]
fn slugs_are_unique_kebab_case_and_statuses_are_401_or_503() {
    let errors = [
        AuthError::MissingSignature { header: "signature" },
        AuthError::MissingContentDigest,
        AuthError::HeaderTooLarge { header: "signature", length_bytes: 2, max_bytes: 1 },
        AuthError::MalformedSignatureInput(String::new()),
        AuthError::MalformedSignature(String::new()),
        AuthError::MalformedContentDigest(String::new()),
        AuthError::UnknownComponent(String::new()),
        AuthError::DuplicateComponent(String::new()),
        AuthError::MissingComponent("@query"),
        AuthError::WrongComponentOrder,
        AuthError::MissingParameter("nonce"),
        AuthError::UnknownParameter(String::new()),
        AuthError::BadParameter { name: "created", reason: "" },
        AuthError::WrongAlgorithm(String::new()),
        AuthError::BadKeyId(""),
        AuthError::BadNonce(""),
        AuthError::StaleSignature { created: 0, now: 0, max_skew_seconds: 0 },
        AuthError::FutureSignature { created: 0, now: 0, max_skew_seconds: 0 },
        AuthError::BadExpires { created: 0, expires: 0, max_lifetime_seconds: 0 },
        AuthError::ExpiredSignature { expires: 0, now: 0 },
        AuthError::BadComponentValue { component: String::new(), reason: "" },
        AuthError::TargetTooLong { length_bytes: 0, max_bytes: 0 },
        AuthError::ContentDigestMismatch,
        AuthError::BadSignature,
        AuthError::Replayed,
        AuthError::ReplayCacheFull { max_entries: 1 },
    ];
    let mut slugs: Vec<&str> = errors.iter().map(AuthError::slug).collect();
    for slug in &slugs {
        let kebab =
            slug.split('-').all(|word| !word.is_empty() && word.bytes().all(|b| b.is_ascii_lowercase()));
        assert!(kebab, "{slug} is not kebab-case");
    }
    slugs.sort_unstable();
    slugs.dedup();
    assert_eq!(slugs.len(), errors.len(), "every variant has its own slug");
    for error in &errors {
        let expected = if matches!(error, AuthError::ReplayCacheFull { .. }) { 503 } else { 401 };
        assert_eq!(error.http_status(), expected, "{error:?}");
    }
}

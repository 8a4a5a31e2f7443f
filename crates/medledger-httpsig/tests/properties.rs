//! Property tests: any request signs and verifies; any change to the body or to the signature
//! headers is refused. proptest prints the failing case and its seed.

mod common;

use common::{NOW, member_key, with_headers};
use medledger_httpsig::{AuthError, RequestParts, SignedHeaders, new_nonce, sign_request, verify_request};
use proptest::prelude::*;

fn method() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["GET", "PUT", "POST", "DELETE", "PATCH"])
}

fn path() -> impl Strategy<Value = String> {
    "(/[A-Za-z0-9._~%!$&'()*+,;=:@-]{0,24}){1,6}"
}

fn query() -> impl Strategy<Value = Option<String>> {
    prop::option::of("[A-Za-z0-9._~%!$&'()*+,;=:@/?-]{0,64}")
}

fn authority() -> impl Strategy<Value = String> {
    "[A-Za-z0-9.-]{1,40}(:[0-9]{1,5})?"
}

fn request<'a>(
    method: &'a str,
    authority: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    body: &'a [u8],
) -> RequestParts<'a> {
    RequestParts {
        method,
        authority,
        path,
        query,
        content_digest: None,
        body,
        signature_input: None,
        signature: None,
    }
}

proptest! {
    #[test]
    fn any_request_round_trips(
        method in method(),
        authority in authority(),
        path in path(),
        query in query(),
        body in prop::collection::vec(any::<u8>(), 0..512),
        created_offset in 0u64..600,
    ) {
        let created = NOW - 300 + created_offset;
        let parts = request(method, &authority, &path, query.as_deref(), &body);
        let nonce = new_nonce();
        let headers = sign_request(&member_key(), &parts, created, &nonce);
        let verified = verify_request(&with_headers(parts, &headers), NOW).expect("a signed request verifies");
        prop_assert_eq!(verified.key, member_key().public_key());
        prop_assert_eq!(verified.nonce, nonce);
        prop_assert_eq!(verified.created, created);
    }

    #[test]
    fn any_single_byte_body_change_is_refused(
        path in path(),
        body in prop::collection::vec(any::<u8>(), 1..512),
        index in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let parts = request("PUT", "node1.example.org", &path, None, &body);
        let headers = sign_request(&member_key(), &parts, NOW, &new_nonce());
        let mut tampered = body.clone();
        let position = index.index(tampered.len());
        tampered[position] ^= flip;
        let result = verify_request(&with_headers(RequestParts { body: &tampered, ..parts }, &headers), NOW);
        prop_assert_eq!(result, Err(AuthError::ContentDigestMismatch));
    }

    #[test]
    fn any_single_byte_change_to_the_signature_headers_is_refused(
        path in path(),
        query in query(),
        body in prop::collection::vec(any::<u8>(), 0..64),
        in_signature_input in any::<bool>(),
        index in any::<prop::sample::Index>(),
        replacement in 0x20u8..0x7f,
    ) {
        let parts = request("POST", "node1.example.org", &path, query.as_deref(), &body);
        let headers = sign_request(&member_key(), &parts, NOW, &new_nonce());
        let mut edited = headers.clone();
        let text = if in_signature_input { &mut edited.signature_input } else { &mut edited.signature };
        let position = index.index(text.len());
        prop_assume!(text.as_bytes()[position] != replacement);
        let mut bytes = std::mem::take(text).into_bytes();
        bytes[position] = replacement;
        *text = String::from_utf8(bytes).expect("printable ASCII");
        let result = verify_request(&with_headers(parts, &edited), NOW);
        prop_assert!(result.is_err(), "accepted an edited header: {:?}", edited);
    }

    #[test]
    fn changing_path_or_query_is_refused(
        path in path(),
        other_path in path(),
        query in query(),
        other_query in query(),
    ) {
        prop_assume!(path != other_path || query != other_query);
        // "?" alone and no query are the same @query by RFC 9421 §2.2.7.
        prop_assume!(query.as_deref().unwrap_or("") != other_query.as_deref().unwrap_or("") || path != other_path);
        let parts = request("GET", "node1.example.org", &path, query.as_deref(), b"");
        let headers: SignedHeaders = sign_request(&member_key(), &parts, NOW, &new_nonce());
        let moved = RequestParts { path: &other_path, query: other_query.as_deref(), ..parts };
        prop_assert_eq!(verify_request(&with_headers(moved, &headers), NOW), Err(AuthError::BadSignature));
    }
}

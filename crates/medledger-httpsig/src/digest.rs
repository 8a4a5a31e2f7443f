//! RFC 9530 `Content-Digest` with SHA-256.

use sfv::{DictSerializer, Dictionary, KeyRef, ListEntry, Parser, Version};

use crate::{AuthError, MAX_CONTENT_DIGEST_HEADER_BYTES};

/// The `Content-Digest` header name, in lowercase.
pub(crate) const CONTENT_DIGEST_HEADER: &str = "content-digest";

/// The one digest algorithm MedLedger checks, by its name in the Hash Algorithms for HTTP
/// Digest Fields registry.
const SHA_256: &KeyRef = KeyRef::constant("sha-256");

/// Length of a SHA-256 digest in bytes.
const SHA_256_BYTES: usize = 32;

/// The `Content-Digest` header value for `body`: `sha-256=:<base64 of SHA-256(body)>:`.
#[must_use]
pub fn content_digest(body: &[u8]) -> String {
    let digest = medledger_crypto::sha256(body);
    let mut serializer = DictSerializer::new();
    let _ = serializer.bare_item(SHA_256, digest.as_bytes().as_slice());
    serializer.finish().expect("a dictionary with one member always serialises")
}

/// Checks a `Content-Digest` header against the body and returns the header value to sign.
pub(crate) fn check_content_digest<'h>(header: Option<&'h str>, body: &[u8]) -> Result<&'h str, AuthError> {
    let header = header.ok_or(AuthError::MissingContentDigest)?;
    if header.len() > MAX_CONTENT_DIGEST_HEADER_BYTES {
        return Err(AuthError::HeaderTooLarge {
            header: CONTENT_DIGEST_HEADER,
            length_bytes: header.len(),
            max_bytes: MAX_CONTENT_DIGEST_HEADER_BYTES,
        });
    }
    let dictionary: Dictionary = Parser::new(header)
        .with_version(Version::Rfc8941)
        .parse()
        .map_err(|error| AuthError::MalformedContentDigest(error.to_string()))?;
    let claimed = match dictionary.get(SHA_256) {
        Some(ListEntry::Item(item)) if item.params.is_empty() => item.bare_item.as_byte_sequence(),
        Some(_) => None,
        None => return Err(AuthError::MalformedContentDigest("no sha-256 member; send sha-256".to_owned())),
    };
    let claimed = claimed.filter(|bytes| bytes.len() == SHA_256_BYTES).ok_or_else(|| {
        AuthError::MalformedContentDigest("sha-256 must be a 32-byte byte sequence".to_owned())
    })?;
    if claimed != medledger_crypto::sha256(body).as_bytes() {
        return Err(AuthError::ContentDigestMismatch);
    }
    Ok(header.trim_matches([' ', '\t']))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON body of the examples in RFC 9530 and RFC 9421 Appendix B.2, and its SHA-256.
    const RFC_BODY: &[u8] = b"{\"hello\": \"world\"}";
    const RFC_SHA_256: &str = "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:";

    #[test]
    fn digest_of_the_rfc_example_body() {
        assert_eq!(content_digest(RFC_BODY), RFC_SHA_256);
        assert_eq!(check_content_digest(Some(RFC_SHA_256), RFC_BODY), Ok(RFC_SHA_256));
    }

    #[test]
    fn other_algorithms_are_ignored_but_sha_256_is_required() {
        let both = format!("sha-512=:AAAA:, {RFC_SHA_256}");
        assert_eq!(check_content_digest(Some(&both), RFC_BODY), Ok(both.as_str()));
        let only_other = "sha-512=:AAAA:";
        assert!(matches!(
            check_content_digest(Some(only_other), RFC_BODY),
            Err(AuthError::MalformedContentDigest(_))
        ));
    }

    #[test]
    fn wrong_body_wrong_shape_and_oversize_are_refused() {
        assert_eq!(
            check_content_digest(Some(RFC_SHA_256), b"{\"hello\": \"World\"}"),
            Err(AuthError::ContentDigestMismatch)
        );
        assert_eq!(check_content_digest(None, RFC_BODY), Err(AuthError::MissingContentDigest));
        for malformed in [
            "sha-256=:AAAA:",
            "sha-256=\"abc\"",
            "sha-256",
            "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:;a=1",
            "(",
            "",
        ] {
            assert!(
                matches!(
                    check_content_digest(Some(malformed), RFC_BODY),
                    Err(AuthError::MalformedContentDigest(_))
                ),
                "{malformed:?}"
            );
        }
        let oversize = format!("{RFC_SHA_256}{}", " ".repeat(MAX_CONTENT_DIGEST_HEADER_BYTES));
        assert!(matches!(
            check_content_digest(Some(&oversize), RFC_BODY),
            Err(AuthError::HeaderTooLarge { .. })
        ));
    }
}

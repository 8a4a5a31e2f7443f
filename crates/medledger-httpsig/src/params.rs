//! `Signature-Input` and `Signature`: RFC 8941 dictionaries holding the one `sig1` signature.

use medledger_crypto::{PublicKey, Signature};
use sfv::{
    BareItem, Dictionary, FieldType as _, InnerList, Integer, KeyRef, ListEntry, ListSerializer, Parameters,
    Parser, StringRef, Version,
};

use crate::{AuthError, MAX_NONCE_CHARS, MIN_NONCE_CHARS, SIGNATURE_ALGORITHM, SIGNATURE_LABEL};

const CREATED: &KeyRef = KeyRef::constant("created");
const NONCE: &KeyRef = KeyRef::constant("nonce");
const KEY_ID: &KeyRef = KeyRef::constant("keyid");
const ALGORITHM: &KeyRef = KeyRef::constant("alg");

/// Length of a `keyid`: an Ed25519 public key in hex.
const KEY_ID_HEX_CHARS: usize = 2 * PublicKey::LEN;

/// What `Signature-Input` says about the one signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SignatureParams {
    /// Covered component names, in order.
    pub components: Vec<String>,
    /// `created`, unix seconds.
    pub created: u64,
    /// `expires`, unix seconds.
    pub expires: Option<u64>,
    /// `nonce`.
    pub nonce: String,
    /// `keyid`, parsed.
    pub key: PublicKey,
    /// The inner list with its parameters as RFC 8941 serialises it: the `@signature-params`
    /// value, and what follows `sig1=` in the header.
    pub serialised: String,
}

/// Parameters as found, before the required ones are known to be there.
#[derive(Default)]
struct FoundParams {
    created: Option<u64>,
    expires: Option<u64>,
    nonce: Option<String>,
    key_id: Option<String>,
    algorithm: Option<String>,
}

/// Parses a `Signature-Input` header value (already checked against its size limit).
pub(crate) fn parse_signature_input(text: &str) -> Result<SignatureParams, AuthError> {
    let malformed = |reason: &str| AuthError::MalformedSignatureInput(reason.to_owned());
    let dictionary = parse_dictionary(text).map_err(|error| malformed(&error.to_string()))?;
    let ListEntry::InnerList(inner_list) = only_member(&dictionary).map_err(malformed)? else {
        return Err(malformed("sig1 must be an inner list of covered components"));
    };
    if dictionary.serialize().as_deref() != Some(text.trim_matches([' ', '\t'])) {
        return Err(malformed(
            "not in canonical RFC 8941 form (single spaces between components, no repeated parameters)",
        ));
    }
    let components = component_names(inner_list)?;
    let found = read_params(&inner_list.params)?;
    let key = parse_key_id(found.key_id.as_deref().ok_or(AuthError::MissingParameter("keyid"))?)?;
    let algorithm = found.algorithm.ok_or(AuthError::MissingParameter("alg"))?;
    if algorithm != SIGNATURE_ALGORITHM {
        return Err(AuthError::WrongAlgorithm(algorithm));
    }
    let nonce = found.nonce.ok_or(AuthError::MissingParameter("nonce"))?;
    check_nonce(&nonce)?;
    Ok(SignatureParams {
        components,
        created: found.created.ok_or(AuthError::MissingParameter("created"))?,
        expires: found.expires,
        nonce,
        key,
        serialised: serialise_inner_list(inner_list),
    })
}

/// Parses a `Signature` header value (already checked against its size limit).
pub(crate) fn parse_signature(text: &str) -> Result<Signature, AuthError> {
    let malformed = |reason: &str| AuthError::MalformedSignature(reason.to_owned());
    let dictionary = parse_dictionary(text).map_err(|error| malformed(&error.to_string()))?;
    let bytes = match only_member(&dictionary).map_err(malformed)? {
        ListEntry::Item(item) if item.params.is_empty() => item.bare_item.as_byte_sequence(),
        _ => None,
    };
    let bytes = bytes.ok_or_else(|| malformed("sig1 must be a byte sequence without parameters"))?;
    // RFC 8941 parsing tolerates missing padding and stray low bits; one signature has one header.
    if dictionary.serialize().as_deref() != Some(text.trim_matches([' ', '\t'])) {
        return Err(malformed("not in canonical RFC 8941 form (padded base64 without stray bits)"));
    }
    let bytes =
        <[u8; Signature::LEN]>::try_from(bytes).map_err(|_| malformed("an Ed25519 signature is 64 bytes"))?;
    Ok(Signature(bytes))
}

/// Serialises the `sig1` inner list for a request the caller signs now.
///
/// # Panics
///
/// If `created` is beyond the RFC 8941 integer range (about 31 million years from now) or
/// `nonce` is not a valid nonce: both are the signer's own values, not outside input.
pub(crate) fn serialise_for_signing(
    components: &[&str],
    created: u64,
    nonce: &str,
    key: &PublicKey,
) -> String {
    assert!(check_nonce(nonce).is_ok(), "nonce {nonce:?} is not 16 to 64 characters of A-Z a-z 0-9 - _");
    let created = Integer::try_from(created).expect("unix seconds fit an RFC 8941 integer");
    let key_id = key.to_string();
    let mut list = ListSerializer::new();
    {
        let mut inner = list.inner_list();
        for component in components {
            let _ =
                inner.bare_item(StringRef::from_str(component).expect("component names are plain strings"));
        }
        let _ = inner
            .finish()
            .parameter(CREATED, created)
            .parameter(KEY_ID, StringRef::from_str(&key_id).expect("hex is a plain string"))
            .parameter(ALGORITHM, StringRef::constant(SIGNATURE_ALGORITHM))
            .parameter(NONCE, StringRef::from_str(nonce).expect("a checked nonce is a plain string"));
    }
    list.finish().expect("the list has its one inner list")
}

fn parse_dictionary(text: &str) -> Result<Dictionary, sfv::Error> {
    Parser::new(text).with_version(Version::Rfc8941).parse()
}

fn only_member(dictionary: &Dictionary) -> Result<&ListEntry, &'static str> {
    match dictionary.get(KeyRef::constant(SIGNATURE_LABEL)) {
        Some(entry) if dictionary.len() == 1 => Ok(entry),
        _ => Err("expected exactly one signature, labelled sig1"),
    }
}

fn component_names(inner_list: &InnerList) -> Result<Vec<String>, AuthError> {
    inner_list
        .items
        .iter()
        .map(|item| match (&item.bare_item, item.params.is_empty()) {
            (BareItem::String(name), true) => Ok(name.as_str().to_owned()),
            (BareItem::String(_), false) => Err(AuthError::MalformedSignatureInput(
                "covered components take no parameters (such as ;sf or ;req)".to_owned(),
            )),
            _ => Err(AuthError::MalformedSignatureInput(
                "covered components must be quoted strings".to_owned(),
            )),
        })
        .collect()
}

fn read_params(params: &Parameters) -> Result<FoundParams, AuthError> {
    let mut found = FoundParams::default();
    for (name, value) in params {
        match name.as_str() {
            "created" => found.created = Some(unix_seconds("created", value)?),
            "expires" => found.expires = Some(unix_seconds("expires", value)?),
            "nonce" => found.nonce = Some(plain_string("nonce", value)?),
            "keyid" => found.key_id = Some(plain_string("keyid", value)?),
            "alg" => found.algorithm = Some(plain_string("alg", value)?),
            other => return Err(AuthError::UnknownParameter(other.to_owned())),
        }
    }
    Ok(found)
}

fn unix_seconds(name: &'static str, value: &BareItem) -> Result<u64, AuthError> {
    let integer = value.as_integer().ok_or(AuthError::BadParameter { name, reason: "must be an integer" })?;
    u64::try_from(integer).map_err(|_| AuthError::BadParameter { name, reason: "must not be negative" })
}

fn plain_string(name: &'static str, value: &BareItem) -> Result<String, AuthError> {
    value
        .as_string()
        .map(|string| string.as_str().to_owned())
        .ok_or(AuthError::BadParameter { name, reason: "must be a quoted string" })
}

fn parse_key_id(key_id: &str) -> Result<PublicKey, AuthError> {
    let is_lower_hex = |byte: u8| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte);
    if key_id.len() != KEY_ID_HEX_CHARS || !key_id.bytes().all(is_lower_hex) {
        return Err(AuthError::BadKeyId(
            "expected the member's Ed25519 public key as 64 lowercase hex digits",
        ));
    }
    key_id.parse().map_err(|_| AuthError::BadKeyId("not a valid Ed25519 public key"))
}

/// A nonce is 16 to 64 characters of the base64url alphabet (so any base64url or alphanumeric
/// encoding of random bytes).
pub(crate) fn check_nonce(nonce: &str) -> Result<(), AuthError> {
    if !(MIN_NONCE_CHARS..=MAX_NONCE_CHARS).contains(&nonce.len()) {
        return Err(AuthError::BadNonce("must be 16 to 64 characters"));
    }
    if !nonce.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_') {
        return Err(AuthError::BadNonce("must be characters of A-Z a-z 0-9 - _"));
    }
    Ok(())
}

fn serialise_inner_list(inner_list: &InnerList) -> String {
    let mut list = ListSerializer::new();
    {
        let mut inner = list.inner_list();
        inner.items(&inner_list.items);
        let _ = inner.finish().parameters(&inner_list.params);
    }
    list.finish().expect("the list has its one inner list")
}

#[cfg(test)]
mod tests {
    use super::*;
    use medledger_crypto::SigningKey;

    /// RFC 9421 Appendix B.2.6, `Signature-Input` after the label.
    const RFC_INNER_LIST: &str = r#"("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519""#;

    #[test]
    fn the_rfc_inner_list_reserialises_to_itself() {
        let dictionary = parse_dictionary(&format!("sig-b26={RFC_INNER_LIST}")).expect("RFC header parses");
        let Some(ListEntry::InnerList(inner_list)) = dictionary.get(KeyRef::constant("sig-b26")) else {
            panic!("sig-b26 is an inner list");
        };
        assert_eq!(serialise_inner_list(inner_list), RFC_INNER_LIST);
    }

    #[test]
    fn what_we_serialise_parses_back() {
        let key = SigningKey::from_seed(&[3; 32]).public_key();
        let serialised =
            serialise_for_signing(&["@method", "@query"], 1_767_225_600, "abcdefghijklmnop", &key);
        let params = parse_signature_input(&format!("sig1={serialised}")).expect("our own output parses");
        assert_eq!(
            params,
            SignatureParams {
                components: vec!["@method".to_owned(), "@query".to_owned()],
                created: 1_767_225_600,
                expires: None,
                nonce: "abcdefghijklmnop".to_owned(),
                key,
                serialised,
            }
        );
    }

    #[test]
    fn nonce_bounds_are_inclusive() {
        assert_eq!(check_nonce(&"a".repeat(MIN_NONCE_CHARS)), Ok(()));
        assert_eq!(check_nonce(&"Z".repeat(MAX_NONCE_CHARS)), Ok(()));
        assert!(check_nonce(&"a".repeat(MIN_NONCE_CHARS - 1)).is_err());
        assert!(check_nonce(&"a".repeat(MAX_NONCE_CHARS + 1)).is_err());
        assert_eq!(check_nonce("0123456789-_abcdEF"), Ok(()));
        assert!(check_nonce("0123456789abcdef=").is_err());
    }
}

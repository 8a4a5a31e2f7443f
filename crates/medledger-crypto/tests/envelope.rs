//! Envelope encryption: round trips, and every alteration refused.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use medledger_crypto::envelope::{
    DataKey, EnvelopeError, KeyFileError, VaultSecretKey, WrappedKey, open, seal, unwrap_key, wrap_key,
};
use proptest::prelude::*;

#[test]
fn sealed_data_opens_only_with_its_key_and_context() {
    let key = DataKey::generate();
    let sealed = seal(&key, b"{\"resourceType\":\"Observation\"}", b"Observation/1/v1");
    assert_eq!(
        open(&key, &sealed, b"Observation/1/v1").expect("opens").as_slice(),
        b"{\"resourceType\":\"Observation\"}"
    );
    assert_ne!(seal(&key, b"same", b""), seal(&key, b"same", b""), "a fresh nonce per seal");
    assert_eq!(open(&key, &sealed, b"Observation/1/v2"), Err(EnvelopeError::Decrypt));
    assert_eq!(open(&DataKey::generate(), &sealed, b"Observation/1/v1"), Err(EnvelopeError::Decrypt));
    assert_eq!(open(&key, &sealed[..10], b""), Err(EnvelopeError::Decrypt));
    for index in 0..sealed.len() {
        let mut altered = sealed.clone();
        altered[index] ^= 0x01;
        assert_eq!(open(&key, &altered, b"Observation/1/v1"), Err(EnvelopeError::Decrypt), "byte {index}");
    }
}

#[test]
fn wrapped_keys_open_only_for_their_recipient_and_context() {
    let custodian = VaultSecretKey::generate();
    let other = VaultSecretKey::generate();
    let key = DataKey::generate();
    let sealed = seal(&key, b"record", b"ctx");
    let wrapped = wrap_key(&custodian.public_key(), &key, b"ctx");
    let unwrapped = unwrap_key(&custodian, &wrapped, b"ctx").expect("unwraps");
    assert_eq!(open(&unwrapped, &sealed, b"ctx").expect("opens").as_slice(), b"record");
    assert!(unwrap_key(&other, &wrapped, b"ctx").is_err());
    assert!(unwrap_key(&custodian, &wrapped, b"other ctx").is_err());
    for index in 0..wrapped.as_bytes().len() {
        let mut bytes = wrapped.as_bytes().to_vec();
        bytes[index] ^= 0x80;
        let altered = WrappedKey::from_bytes(bytes).expect("same length");
        assert!(unwrap_key(&custodian, &altered, b"ctx").is_err(), "byte {index}");
    }
    assert!(matches!(WrappedKey::from_bytes(vec![0; 3]), Err(EnvelopeError::MalformedWrappedKey { .. })));
    let text = custodian.public_key().to_string();
    assert_eq!(text.parse::<medledger_crypto::envelope::VaultPublicKey>(), Ok(custodian.public_key()));
}

#[test]
fn key_files_round_trip_plain_and_sealed_and_refuse_misuse() {
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = VaultSecretKey::generate();
    let plain = dir.path().join("keys/plain.key");
    secret.write_file(&plain, None).expect("writes");
    assert_eq!(VaultSecretKey::read_file(&plain, None).expect("reads").public_key(), secret.public_key());
    assert!(matches!(secret.write_file(&plain, None), Err(KeyFileError::Exists)));

    let sealed = dir.path().join("keys/sealed.key");
    secret.write_file(&sealed, Some(b"correct horse")).expect("writes");
    assert!(
        !fs::read_to_string(&sealed).expect("text").contains(&hex::encode(secret.index_key().token("", "")))
    );
    let read = VaultSecretKey::read_file(&sealed, Some(b"correct horse")).expect("opens");
    assert_eq!(read.public_key(), secret.public_key());
    assert!(matches!(VaultSecretKey::read_file(&sealed, Some(b"wrong")), Err(KeyFileError::WrongPassphrase)));
    assert!(matches!(VaultSecretKey::read_file(&sealed, None), Err(KeyFileError::PassphraseRequired)));

    fs::set_permissions(&plain, fs::Permissions::from_mode(0o644)).expect("chmod");
    assert!(matches!(
        VaultSecretKey::read_file(&plain, None),
        Err(KeyFileError::Permissions { mode: 0o644 })
    ));

    let hostile = dir.path().join("hostile.key");
    for text in [
        "not a key\n00\n",
        "medledger-vault-key v1 plain\nzz\n",
        "medledger-vault-key v1 argon2id m=99999999 t=2 p=1 salt=00000000000000000000000000000000\n00\n",
    ] {
        let _ = fs::remove_file(&hostile);
        fs::write(&hostile, text).expect("write");
        fs::set_permissions(&hostile, fs::Permissions::from_mode(0o600)).expect("chmod");
        assert!(
            matches!(VaultSecretKey::read_file(&hostile, Some(b"x")), Err(KeyFileError::Format(_))),
            "{text:?}"
        );
    }
}

proptest! {
    #[test]
    fn tokens_are_deterministic_per_key_and_separate_fields_and_values(field in "[a-z]{1,8}", value in ".{0,16}", other in ".{0,16}") {
        let secret = VaultSecretKey::generate();
        let index = secret.index_key();
        prop_assert_eq!(index.token(&field, &value), index.token(&field, &value));
        prop_assert_ne!(index.token(&field, &value), VaultSecretKey::generate().index_key().token(&field, &value));
        if value != other {
            prop_assert_ne!(index.token(&field, &value), index.token(&field, &other));
        }
        // The field name is length-prefixed: ("ab", "c") is not ("a", "bc").
        prop_assert_ne!(index.token(&format!("{field}x"), &value), index.token(&field, &format!("x{value}")));
    }
}

//! Envelope encryption through the crate's public API: round trips, every alteration refused,
//! key files on a real temporary directory, and blind tokens.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use hmac::{Hmac, KeyInit as _, Mac as _};
use medledger_crypto::envelope::{
    DataKey, EnvelopeError, KeyFileError, MAX_INFO_BYTES, SEAL_OVERHEAD_BYTES, VaultPublicKey,
    VaultSecretKey, WRAPPED_KEY_BYTES, WrappedKey, open, seal, unwrap_key, wrap_key,
};
use proptest::prelude::*;

const AAD: &[u8] = b"Observation/0123456789abcdef/v1";

/// A key file written by the first version of this module (commit b37c173): the format must
/// keep opening it. Its secret is published here, so it protects nothing.
const PLAIN_V1_FILE: &str =
    "medledger-vault-key v1 plain\n17bc91dd2c5b633d672a0c006d3234ca1877e26cf61f994a945745805a07e0bb\n";
/// The same secret sealed by that version under [`V1_PASSPHRASE`].
const SEALED_V1_FILE: &str = "medledger-vault-key v1 argon2id m=19456 t=2 p=1 salt=7675268df949de76d21f6595d64e08e2\n\
     cc2bbf85dacfe08fbb39da46c3dc00dc7c3a99bd15d590d9d066e3c5b141fe474039ac4fcacfc65634df66c44ddca49ca99754b6dfdcd464395e6a95\n";
const V1_PASSPHRASE: &[u8] = b"correct horse battery staple";
const V1_PUBLIC_KEY: &str = "74b0b69f6d7d57e1f695bc1614b830983cd5e47a885f18bb0c32dcb7d4c4b245";

fn write_with_mode(path: &Path, contents: impl AsRef<[u8]>, mode: u32) {
    fs::write(path, contents).expect("write test file");
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

#[test]
fn sealed_data_opens_only_with_its_key_and_aad() {
    let key = DataKey::generate();
    let plaintext = b"{\"resourceType\":\"Observation\"}";
    let sealed = seal(&key, plaintext, AAD);
    assert_eq!(sealed.len(), plaintext.len() + SEAL_OVERHEAD_BYTES);
    assert_eq!(open(&key, &sealed, AAD).expect("opens").as_slice(), plaintext);
    assert_eq!(open(&DataKey::generate(), &sealed, AAD), Err(EnvelopeError::Decrypt));
    assert_eq!(open(&key, &sealed, b""), Err(EnvelopeError::Decrypt));
    for index in 0..AAD.len() {
        let mut aad = AAD.to_vec();
        aad[index] ^= 0x01;
        assert_eq!(open(&key, &sealed, &aad), Err(EnvelopeError::Decrypt), "aad byte {index}");
    }
    for index in 0..sealed.len() {
        for mask in [0x01, 0x80] {
            let mut altered = sealed.clone();
            altered[index] ^= mask;
            assert_eq!(open(&key, &altered, AAD), Err(EnvelopeError::Decrypt), "byte {index} ^ {mask:#x}");
        }
    }
    assert_eq!(open(&key, &sealed[..sealed.len() - 1], AAD), Err(EnvelopeError::Decrypt));
    assert_eq!(open(&key, &[sealed.as_slice(), &[0]].concat(), AAD), Err(EnvelopeError::Decrypt));
    assert_eq!(open(&key, &[], AAD), Err(EnvelopeError::Decrypt));
}

#[test]
fn every_seal_uses_a_fresh_nonce() {
    let key = DataKey::generate();
    let first = seal(&key, b"same plaintext", AAD);
    let second = seal(&key, b"same plaintext", AAD);
    assert_ne!(first[..12], second[..12], "nonces differ");
    assert_ne!(first, second);
}

#[test]
fn wrapped_keys_open_only_for_their_recipient_and_info() {
    let custodian = VaultSecretKey::generate();
    let other = VaultSecretKey::generate();
    let key = DataKey::generate();
    let sealed = seal(&key, b"record", AAD);
    let wrapped = wrap_key(&custodian.public_key(), &key, AAD);
    assert_eq!(wrapped.as_bytes().len(), WRAPPED_KEY_BYTES);
    let unwrapped = unwrap_key(&custodian, &wrapped, AAD).expect("unwraps");
    assert_eq!(open(&unwrapped, &sealed, AAD).expect("opens").as_slice(), b"record");
    assert_ne!(wrap_key(&custodian.public_key(), &key, AAD), wrapped, "a fresh encapsulation each time");

    assert_eq!(unwrap_key(&other, &wrapped, AAD).err(), Some(EnvelopeError::Decrypt));
    assert_eq!(unwrap_key(&custodian, &wrapped, b"").err(), Some(EnvelopeError::Decrypt));
    for index in 0..AAD.len() {
        let mut info = AAD.to_vec();
        info[index] ^= 0x01;
        assert_eq!(
            unwrap_key(&custodian, &wrapped, &info).err(),
            Some(EnvelopeError::Decrypt),
            "info byte {index}"
        );
    }
    for index in 0..WRAPPED_KEY_BYTES {
        for mask in [0x01, 0x80] {
            let mut bytes = wrapped.as_bytes().to_vec();
            bytes[index] ^= mask;
            let altered = WrappedKey::from_bytes(bytes).expect("same length");
            assert_eq!(
                unwrap_key(&custodian, &altered, AAD).err(),
                Some(EnvelopeError::Decrypt),
                "byte {index} ^ {mask:#x}"
            );
        }
    }
}

#[test]
fn wrapped_key_lengths_and_info_bounds_are_checked() {
    for length in [0, 1, WRAPPED_KEY_BYTES - 1, WRAPPED_KEY_BYTES + 1, 256] {
        assert_eq!(
            WrappedKey::from_bytes(vec![0; length]),
            Err(EnvelopeError::MalformedWrappedKey { expected: WRAPPED_KEY_BYTES, found: length })
        );
    }
    let custodian = VaultSecretKey::generate();
    let key = DataKey::generate();
    let longest = vec![7; MAX_INFO_BYTES];
    let wrapped = wrap_key(&custodian.public_key(), &key, &longest);
    assert!(unwrap_key(&custodian, &wrapped, &longest).is_ok());
    assert_eq!(
        unwrap_key(&custodian, &wrapped, &[7; MAX_INFO_BYTES + 1]).err(),
        Some(EnvelopeError::InfoTooLong { found: MAX_INFO_BYTES + 1 })
    );
}

#[test]
#[should_panic(expected = "HPKE info")]
fn wrapping_with_an_oversized_info_is_a_caller_bug() {
    let custodian = VaultSecretKey::generate();
    let _ = wrap_key(&custodian.public_key(), &DataKey::generate(), &[0; MAX_INFO_BYTES + 1]);
}

#[test]
fn public_keys_round_trip_as_lowercase_hex() {
    let public = VaultSecretKey::from_seed(&[9; 32]).public_key();
    let text = public.to_string();
    assert_eq!(text.len(), 64);
    assert_eq!(text, text.to_lowercase());
    assert_eq!(text.parse::<VaultPublicKey>(), Ok(public));
    assert_eq!(VaultPublicKey::from_bytes(public.as_bytes()), Ok(public));
    let json = serde_json::to_string(&public).expect("serialises");
    assert_eq!(json, format!("\"{text}\""));
    assert_eq!(serde_json::from_str::<VaultPublicKey>(&json).expect("deserialises"), public);
    assert!(serde_json::from_str::<VaultPublicKey>("\"00\"").is_err());
    for bad in ["", "00", &text[..63], &format!("{text}00"), &format!("{}zz", &text[..62])] {
        assert!(bad.parse::<VaultPublicKey>().is_err(), "{bad:?}");
    }
}

#[test]
fn low_order_and_non_canonical_public_keys_are_refused() {
    let p_minus = |minus: u8| {
        let mut bytes = [0xff; 32];
        bytes[0] = 0xed - minus;
        bytes[31] = 0x7f;
        bytes
    };
    let mut one = [0; 32];
    one[0] = 1;
    let low_order: [[u8; 32]; 5] = [
        [0; 32],
        one,
        p_minus(1),
        // The two points of order 8 (the list libsodium refuses).
        hex_32("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
        hex_32("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    ];
    for bytes in low_order {
        assert_eq!(
            VaultPublicKey::from_bytes(&bytes),
            Err(EnvelopeError::InvalidPublicKey("a low-order point")),
            "{}",
            hex::encode(bytes)
        );
        assert!(hex::encode(bytes).parse::<VaultPublicKey>().is_err());
    }
    // p, p + 1 (the non-canonical forms of 0 and 1) and any value with the top bit set.
    let mut top_bit = *VaultSecretKey::from_seed(&[1; 32]).public_key().as_bytes();
    top_bit[31] |= 0x80;
    let mut p_plus_one = p_minus(0);
    p_plus_one[0] += 1;
    for bytes in [p_minus(0), p_plus_one, top_bit, [0xff; 32]] {
        assert!(
            matches!(VaultPublicKey::from_bytes(&bytes), Err(EnvelopeError::InvalidPublicKey(_))),
            "{}",
            hex::encode(bytes)
        );
    }
}

fn hex_32(text: &str) -> [u8; 32] {
    let mut bytes = [0; 32];
    hex::decode_to_slice(text, &mut bytes).expect("test vector is hex");
    bytes
}

#[test]
fn secrets_are_never_printed() {
    let secret = VaultSecretKey::from_seed(&[5; 32]);
    let debug = format!("{secret:?} {:?} {:?}", secret.index_key(), DataKey::generate());
    assert!(debug.contains(&secret.public_key().to_string()));
    assert!(debug.contains("IndexKey(..)") && debug.contains("DataKey(..)"));
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("vault.key");
    secret.write_file(&path, None).expect("writes");
    let secret_hex = fs::read_to_string(&path).expect("reads").lines().nth(1).expect("two lines").to_owned();
    assert!(!debug.contains(&secret_hex));
}

#[test]
fn plain_key_file_round_trip_with_mode_0600_and_no_overwrite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("data/keys/vault.key");
    let secret = VaultSecretKey::generate();
    secret.write_file(&path, None).expect("writes");
    assert_eq!(mode_of(&path), 0o600);
    assert_eq!(mode_of(path.parent().expect("has a parent")), 0o700);
    let text = fs::read_to_string(&path).expect("reads");
    assert!(text.starts_with("medledger-vault-key v1 plain\n"), "{text}");
    let read = VaultSecretKey::read_file(&path, None).expect("reads back");
    assert_eq!(read.public_key(), secret.public_key());
    assert_eq!(read.index_key().token("code", "4548-4"), secret.index_key().token("code", "4548-4"));
    // A passphrase given for a plain key is not needed, and not an error.
    assert!(VaultSecretKey::read_file(&path, Some(b"unused")).is_ok());

    let other = VaultSecretKey::generate();
    assert!(matches!(other.write_file(&path, None), Err(KeyFileError::Exists)));
    assert!(matches!(other.write_file(&path, Some(b"pass")), Err(KeyFileError::Exists)));
    assert_eq!(fs::read_to_string(&path).expect("reads"), text, "the existing key is untouched");
}

#[test]
fn sealed_key_file_needs_the_right_passphrase() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("vault.key");
    let secret = VaultSecretKey::generate();
    secret.write_file(&path, Some(b"correct horse")).expect("writes");
    assert_eq!(mode_of(&path), 0o600);
    let text = fs::read_to_string(&path).expect("reads");
    assert!(text.starts_with("medledger-vault-key v1 argon2id m=19456 t=2 p=1 salt="), "{text}");

    let read = VaultSecretKey::read_file(&path, Some(b"correct horse")).expect("opens");
    assert_eq!(read.public_key(), secret.public_key());
    let wrong = VaultSecretKey::read_file(&path, Some(b"correct horsE")).expect_err("wrong passphrase");
    assert!(matches!(wrong, KeyFileError::WrongPassphrase));
    assert_eq!(wrong.to_string(), "wrong passphrase or corrupted key file");
    let missing = VaultSecretKey::read_file(&path, None).expect_err("no passphrase");
    assert!(matches!(missing, KeyFileError::PassphraseRequired));
    assert_eq!(missing.to_string(), "this vault key is sealed; set a passphrase");
    assert!(matches!(
        secret.write_file(&dir.path().join("empty.key"), Some(b"")),
        Err(KeyFileError::EmptyPassphrase)
    ));
    assert!(!dir.path().join("empty.key").exists());
}

#[test]
fn a_plain_key_file_is_sealed_in_place_as_the_same_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("vault.key");
    let secret = VaultSecretKey::generate();
    secret.write_file(&path, None).expect("writes");
    assert!(!VaultSecretKey::file_is_sealed(&path).expect("reads the header"));
    let plain = fs::read_to_string(&path).expect("reads");

    assert!(matches!(VaultSecretKey::seal_file(&path, b""), Err(KeyFileError::EmptyPassphrase)));
    assert_eq!(fs::read_to_string(&path).expect("reads"), plain, "a refused seal leaves the key as it was");

    // A copy left by an interrupted attempt is replaced, not trusted.
    fs::write(dir.path().join("vault.key.sealing"), "half a key").expect("writes");
    VaultSecretKey::seal_file(&path, b"correct horse").expect("seals");
    assert!(VaultSecretKey::file_is_sealed(&path).expect("reads the header"));
    assert_eq!(mode_of(&path), 0o600);
    assert!(!dir.path().join("vault.key.sealing").exists(), "nothing is left beside the key");
    let read = VaultSecretKey::read_file(&path, Some(b"correct horse")).expect("opens");
    assert_eq!(read.public_key(), secret.public_key(), "the same key, now sealed");
    assert!(matches!(VaultSecretKey::read_file(&path, None), Err(KeyFileError::PassphraseRequired)));
    assert!(matches!(VaultSecretKey::seal_file(&path, b"another"), Err(KeyFileError::AlreadySealed)));
}

#[test]
fn altering_a_sealed_key_file_fails_the_passphrase() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("vault.key");
    VaultSecretKey::generate().write_file(&path, Some(b"pass")).expect("writes");
    let text = fs::read_to_string(&path).expect("reads");
    let (header, body) = text.split_once('\n').expect("two lines");
    // The header is authenticated: a changed salt or cost fails like a wrong passphrase.
    let lowered_cost = header.replace(" t=2 ", " t=1 ");
    let flipped_salt =
        format!("{}{}", &header[..header.len() - 1], if header.ends_with('0') { '1' } else { '0' });
    let flipped_body =
        format!("{}{}\n", if body.starts_with('0') { '1' } else { '0' }, &body[1..body.len() - 1]);
    for (name, altered) in [
        ("cost", format!("{lowered_cost}\n{body}")),
        ("salt", format!("{flipped_salt}\n{body}")),
        ("body", format!("{header}\n{flipped_body}")),
    ] {
        let altered_path = dir.path().join(name);
        write_with_mode(&altered_path, altered, 0o600);
        assert!(
            matches!(
                VaultSecretKey::read_file(&altered_path, Some(b"pass")),
                Err(KeyFileError::WrongPassphrase)
            ),
            "{name}"
        );
    }
}

#[test]
fn files_written_by_the_first_version_still_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    let plain = dir.path().join("plain.key");
    let sealed = dir.path().join("sealed.key");
    write_with_mode(&plain, PLAIN_V1_FILE, 0o600);
    write_with_mode(&sealed, SEALED_V1_FILE, 0o600);
    let from_plain = VaultSecretKey::read_file(&plain, None).expect("plain v1 reads");
    let from_sealed = VaultSecretKey::read_file(&sealed, Some(V1_PASSPHRASE)).expect("sealed v1 opens");
    assert_eq!(from_plain.public_key().to_string(), V1_PUBLIC_KEY);
    assert_eq!(from_sealed.public_key().to_string(), V1_PUBLIC_KEY);
}

#[test]
fn index_tokens_are_hkdf_then_hmac_of_the_length_prefixed_field_and_value() {
    // Recomputed here from the primitives, so a change of derivation cannot pass unnoticed.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("plain.key");
    write_with_mode(&path, PLAIN_V1_FILE, 0o600);
    let secret = VaultSecretKey::read_file(&path, None).expect("reads");
    // The derivation takes the secret in its one canonical (RFC 7748 clamped) form, so every
    // encoding of a key gives the same index key; the first version stored some unclamped.
    let mut secret_bytes = hex_32(PLAIN_V1_FILE.lines().nth(1).expect("two lines"));
    secret_bytes[0] &= 0b1111_1000;
    secret_bytes[31] = (secret_bytes[31] & 0b0111_1111) | 0b0100_0000;
    let mut index_key = [0; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(None, &secret_bytes)
        .expand(b"medledger/vault-index/v1", &mut index_key)
        .expect("32-byte output");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&index_key).expect("any key length");
    mac.update(&4u64.to_be_bytes());
    mac.update(b"code");
    mac.update(b"4548-4");
    let expected: [u8; 32] = mac.finalize().into_bytes().into();
    assert_eq!(secret.index_key().token("code", "4548-4"), expected);
}

#[test]
fn key_files_others_can_read_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("vault.key");
    VaultSecretKey::generate().write_file(&path, None).expect("writes");
    for mode in [0o644, 0o640, 0o604, 0o660, 0o606, 0o610] {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
        assert!(
            matches!(VaultSecretKey::read_file(&path, None), Err(KeyFileError::Permissions { mode: found }) if found == mode),
            "{mode:o}"
        );
    }
    fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).expect("chmod");
    assert!(VaultSecretKey::read_file(&path, None).is_ok(), "owner read-only is fine");
    assert!(matches!(
        VaultSecretKey::read_file(&dir.path().join("missing.key"), None),
        Err(KeyFileError::Io { .. })
    ));
}

#[test]
fn malformed_oversized_and_future_key_files_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("hostile.key");
    let secret_line = PLAIN_V1_FILE.lines().nth(1).expect("two lines");
    let salt = "000102030405060708090a0b0c0d0e0f";
    let sealed_line = "00".repeat(60);
    let malformed = [
        String::new(),
        "not a key\n00\n".to_owned(),
        format!("medledger-vault-key v1 plain\n{secret_line}"),
        format!("medledger-vault-key v1 plain\n{secret_line}\n\n"),
        format!("medledger-vault-key v1 plain\r\n{secret_line}\r\n"),
        format!("medledger-vault-key v1 plain\n{}\n", &secret_line[..62]),
        format!("medledger-vault-key v1 plain\n{secret_line}00\n"),
        format!("medledger-vault-key v1 plain\n{}zz\n", &secret_line[..62]),
        format!("medledger-vault-key v1 sealed\n{secret_line}\n"),
        format!("medledger-vault-key v1 argon2id m=19456 t=2 p=1 salt={salt}\n00\n"),
        format!("medledger-vault-key v1 argon2id m=99999999 t=2 p=1 salt={salt}\n{sealed_line}\n"),
        format!("medledger-vault-key v1 argon2id m=19456 t=4294967295 p=1 salt={salt}\n{sealed_line}\n"),
        format!("medledger-vault-key v1 argon2id m=19456 t=2 p=1000 salt={salt}\n{sealed_line}\n"),
        // Under Argon2's own minimum of 8 KiB per lane: refused by `argon2`, reported as format.
        format!("medledger-vault-key v1 argon2id m=8 t=2 p=8 salt={salt}\n{sealed_line}\n"),
    ];
    for text in &malformed {
        let _ = fs::remove_file(&path);
        write_with_mode(&path, text, 0o600);
        let error = VaultSecretKey::read_file(&path, Some(b"pass")).expect_err("refused");
        assert!(matches!(error, KeyFileError::Format(_)), "{text:?}: {error:?}");
        assert!(!error.to_string().contains(secret_line), "no key material in {error}");
    }

    let _ = fs::remove_file(&path);
    write_with_mode(&path, vec![b'a'; 4097], 0o600);
    assert!(matches!(
        VaultSecretKey::read_file(&path, None),
        Err(KeyFileError::TooLarge { max_bytes: 4096 })
    ));
    let _ = fs::remove_file(&path);
    write_with_mode(&path, format!("medledger-vault-key v2 plain\n{secret_line}\n"), 0o600);
    assert!(matches!(
        VaultSecretKey::read_file(&path, None),
        Err(KeyFileError::UnsupportedVersion { found: 2 })
    ));
    let _ = fs::remove_file(&path);
    write_with_mode(&path, [0xff, 0xfe, b'\n', b'0', b'\n'], 0o600);
    assert!(matches!(VaultSecretKey::read_file(&path, None), Err(KeyFileError::Format(_))));
    assert!(
        matches!(VaultSecretKey::read_file(dir.path(), None), Err(KeyFileError::Format(_))),
        "a directory"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn seal_open_round_trips_and_any_flipped_bit_fails(
        plaintext in proptest::collection::vec(any::<u8>(), 0..4096),
        aad in proptest::collection::vec(any::<u8>(), 0..64),
        position in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let key = DataKey::generate();
        let sealed = seal(&key, &plaintext, &aad);
        let opened = open(&key, &sealed, &aad).expect("opens");
        prop_assert_eq!(opened.as_slice(), plaintext.as_slice());
        let mut altered = sealed.clone();
        altered[position.index(sealed.len())] ^= 1 << bit;
        prop_assert_eq!(open(&key, &altered, &aad), Err(EnvelopeError::Decrypt));
    }

    #[test]
    fn wrap_unwrap_round_trips_for_any_recipient_and_info(
        seed in any::<[u8; 32]>(),
        other_seed in any::<[u8; 32]>(),
        info in proptest::collection::vec(any::<u8>(), 0..128),
    ) {
        prop_assume!(seed != other_seed);
        let vault = VaultSecretKey::from_seed(&seed);
        let key = DataKey::generate();
        let sealed = seal(&key, b"record", &info);
        let wrapped = wrap_key(&vault.public_key(), &key, &info);
        let unwrapped = unwrap_key(&vault, &wrapped, &info).expect("unwraps");
        let opened = open(&unwrapped, &sealed, &info).expect("opens");
        prop_assert_eq!(opened.as_slice(), b"record");
        prop_assert_eq!(unwrap_key(&VaultSecretKey::from_seed(&other_seed), &wrapped, &info).err(), Some(EnvelopeError::Decrypt));
    }

    #[test]
    fn tokens_are_deterministic_per_key_and_separate_keys_fields_and_values(
        seed in any::<[u8; 32]>(),
        other_seed in any::<[u8; 32]>(),
        field in "[a-z_.]{0,12}",
        other_field in "[a-z_.]{0,12}",
        value in "\\PC{0,24}",
        other_value in "\\PC{0,24}",
    ) {
        let index = VaultSecretKey::from_seed(&seed).index_key();
        let token = index.token(&field, &value);
        prop_assert_eq!(token, VaultSecretKey::from_seed(&seed).index_key().token(&field, &value));
        if seed != other_seed {
            prop_assert_ne!(token, VaultSecretKey::from_seed(&other_seed).index_key().token(&field, &value));
        }
        if field != other_field {
            prop_assert_ne!(token, index.token(&other_field, &value));
        }
        if value != other_value {
            prop_assert_ne!(token, index.token(&field, &other_value));
        }
        // The field name is length-prefixed: moving bytes between field and value changes the token.
        prop_assert_ne!(index.token(&format!("{field}x"), &value), index.token(&field, &format!("x{value}")));
    }
}

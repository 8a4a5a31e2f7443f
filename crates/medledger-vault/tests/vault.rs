//! The vault on a real redb file in a temp dir: versions in order, integrity checked on every
//! read, blind-token search, and re-wrapping for another organisation.

use medledger_crypto::envelope::{DataKey, seal, wrap_key};
use medledger_crypto::{SigningKey, sha256};
use medledger_types::{OrgId, PatientId, RecordId, ResourceType};
use medledger_vault::{OwnWrappedKey, StoredVersion, Vault, VaultError, create_key};
use redb::{Database, ReadableDatabase as _, ReadableTable, TableDefinition};

/// The vault's format marker, as stored.
const META: TableDefinition<'_, &str, u32> = TableDefinition::new("meta");

const RECORD: RecordId = RecordId([7; 16]);

fn version(vault: &Vault, version: u64, text: &str) -> StoredVersion {
    let sealed = vault.seal(ResourceType::Observation, RECORD, version, text.as_bytes());
    StoredVersion {
        resource_type: ResourceType::Observation,
        record: RECORD,
        version,
        custodian: OrgId::new("st-mary-hospital").expect("id"),
        patient: Some(PatientId([1; 16])),
        author: SigningKey::from_seed(&[3; 32]).public_key(),
        last_updated_ms: 1_000 + version,
        ciphertext: sealed.ciphertext,
        digest: sealed.digest,
        wrapped_key: sealed.wrapped_key,
        tokens: vec![vault.token("patient", "pt-1"), vault.token("code", "4548-4")],
    }
}

fn open_vault(dir: &std::path::Path) -> Vault {
    Vault::open(dir, Some(b"passphrase")).expect("opens")
}

#[test]
fn versions_commit_in_order_and_read_back_checked() {
    let dir = tempfile::tempdir().expect("temp dir");
    create_key(dir.path(), Some(b"passphrase")).expect("key");
    let vault = open_vault(dir.path());
    let first = version(&vault, 1, "{\"v\":1}");
    assert!(matches!(
        vault.commit(&[version(&vault, 2, "x")]),
        Err(VaultError::VersionConflict { expected: 1 })
    ));
    vault.commit(std::slice::from_ref(&first)).expect("v1");
    vault.commit(&[version(&vault, 2, "{\"v\":2}")]).expect("v2");
    assert_eq!(vault.head(ResourceType::Observation, RECORD).expect("head"), Some(2));
    // The head and a version in one read: the latest by default, nothing outside 1..=head.
    let read = |version| vault.head_and_version(ResourceType::Observation, RECORD, version).expect("read");
    let (latest, stored) = read(None).expect("the record is held");
    assert_eq!((latest, stored.map(|stored| stored.version)), (2, Some(2)));
    assert_eq!(read(Some(1)).map(|(latest, stored)| (latest, stored.map(|s| s.version))), Some((2, Some(1))));
    assert!(read(Some(0)).is_some_and(|(_, stored)| stored.is_none()));
    assert!(read(Some(3)).is_some_and(|(_, stored)| stored.is_none()));
    let unknown = vault.head_and_version(ResourceType::Observation, RecordId([8; 16]), None).expect("read");
    assert!(unknown.is_none(), "a record the vault does not hold");

    let stored = vault.get(ResourceType::Observation, RECORD, 1).expect("get").expect("v1 stored");
    assert_eq!(vault.decrypt(&stored, Some(&first.digest)).expect("decrypts").as_slice(), b"{\"v\":1}");
    // A digest other than the anchor's is tampering: never decrypted, and the alarm goes up.
    assert!(matches!(vault.decrypt(&stored, Some(&sha256(b"other"))), Err(VaultError::Tampered)));
    assert_eq!(vault.tampered_count(), 1);

    let found = vault.find(&vault.token("code", "4548-4"), ResourceType::Observation).expect("find");
    assert_eq!(found, vec![(RECORD, 2)]);
    assert!(vault.find(&vault.token("code", "other"), ResourceType::Observation).expect("find").is_empty());
    assert_eq!(vault.list(ResourceType::Observation, None, 10).expect("list"), vec![(RECORD, 2)]);
    assert!(vault.list(ResourceType::Condition, None, 10).expect("list").is_empty());

    // Removing the latest version restores the previous head.
    let latest = vault.get(ResourceType::Observation, RECORD, 2).expect("get").expect("v2");
    vault.remove_latest(&[latest]).expect("removes");
    assert_eq!(vault.head(ResourceType::Observation, RECORD).expect("head"), Some(1));
}

#[test]
fn a_ciphertext_changed_at_rest_is_detected_and_not_served() {
    let dir = tempfile::tempdir().expect("temp dir");
    create_key(dir.path(), None).expect("key");
    let anchor = {
        let vault = Vault::open(dir.path(), None).expect("opens");
        let first = version(&vault, 1, "{\"v\":1}");
        vault.commit(std::slice::from_ref(&first)).expect("v1");
        first.digest
    };
    // Flip one byte of the sealed record inside the database file, as an attacker with disk
    // access would.
    {
        let db = Database::open(dir.path().join("vault.redb")).expect("db");
        let table: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("versions");
        let write = db.begin_write().expect("write");
        {
            let mut versions = write.open_table(table).expect("table");
            let (key, mut value) = {
                let (key, value) = versions.first().expect("read").expect("one version");
                (key.value().to_vec(), value.value().to_vec())
            };
            let middle = value.len() / 2;
            value[middle] ^= 0x01;
            versions.insert(key.as_slice(), value.as_slice()).expect("tamper");
        }
        write.commit().expect("commit");
    }
    let vault = Vault::open(dir.path(), None).expect("opens");
    let stored = vault.get(ResourceType::Observation, RECORD, 1).expect("get").expect("stored");
    assert!(matches!(vault.decrypt(&stored, Some(&anchor)), Err(VaultError::Tampered)));
    assert_eq!(vault.tampered_count(), 1);
}

#[test]
fn another_organisation_opens_a_rewrapped_version_only_with_the_anchor() {
    let custodian_dir = tempfile::tempdir().expect("temp dir");
    let reader_dir = tempfile::tempdir().expect("temp dir");
    create_key(custodian_dir.path(), None).expect("key");
    create_key(reader_dir.path(), None).expect("key");
    let custodian = Vault::open(custodian_dir.path(), None).expect("opens");
    let reader = Vault::open(reader_dir.path(), None).expect("opens");
    let first = version(&custodian, 1, "{\"v\":1}");
    custodian.commit(std::slice::from_ref(&first)).expect("v1");
    let wrapped = custodian.rewrap(&first, &first.digest, &reader.public_key()).expect("rewraps");
    let opened = reader
        .open_foreign(ResourceType::Observation, RECORD, 1, &first.ciphertext, &wrapped, &first.digest)
        .expect("opens");
    assert_eq!(opened.as_slice(), b"{\"v\":1}");
    assert!(matches!(
        reader.open_foreign(ResourceType::Observation, RECORD, 2, &first.ciphertext, &wrapped, &first.digest),
        Err(VaultError::Tampered)
    ));
    assert!(matches!(
        reader.open_foreign(ResourceType::Observation, RECORD, 1, &first.ciphertext, &wrapped, &sha256(b"x")),
        Err(VaultError::Tampered)
    ));
    assert!(custodian.rewrap(&first, &sha256(b"x"), &reader.public_key()).is_err());
}

#[test]
fn cached_data_keys_never_spare_the_integrity_checks() {
    for cached_keys in [medledger_vault::DEFAULT_CACHED_KEYS, 0] {
        let dir = tempfile::tempdir().expect("temp dir");
        create_key(dir.path(), None).expect("key");
        let vault = Vault::open(dir.path(), None).expect("opens").with_key_cache(cached_keys);
        let first = version(&vault, 1, "{\"v\":1}");
        vault.commit(std::slice::from_ref(&first)).expect("v1");
        let stored = vault.get(ResourceType::Observation, RECORD, 1).expect("get").expect("v1 stored");
        for _ in 0..2 {
            let body = vault.decrypt(&stored, Some(&first.digest)).expect("decrypts");
            assert_eq!(body.as_slice(), b"{\"v\":1}", "cache of {cached_keys}");
        }

        // A ciphertext changed together with the digest the vault recorded: the anchor catches
        // it, and for a version not anchored yet the AEAD tag does, cached key or not.
        let mut changed = stored.clone();
        changed.ciphertext[20] ^= 0x01;
        changed.digest = sha256(&changed.ciphertext);
        assert!(matches!(vault.decrypt(&changed, Some(&first.digest)), Err(VaultError::Tampered)));
        assert!(matches!(vault.decrypt(&changed, None), Err(VaultError::Tampered)));

        // A wrapped key swapped for another version's: no cache hit, and it opens nothing here.
        let mut swapped = stored.clone();
        swapped.wrapped_key = version(&vault, 2, "{\"v\":2}").wrapped_key;
        assert!(matches!(vault.decrypt(&swapped, Some(&first.digest)), Err(VaultError::Tampered)));
        assert_eq!(vault.tampered_count(), 3, "cache of {cached_keys}");
    }
}

#[test]
fn a_format_2_vault_opens_and_its_hpke_wrapped_keys_still_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    create_key(dir.path(), None).expect("key");
    let first = {
        let vault = Vault::open(dir.path(), None).expect("opens").with_key_cache(0);
        let mut first = version(&vault, 1, "{\"v\":1}");
        assert!(matches!(first.wrapped_key, OwnWrappedKey::Local(_)), "new versions are wrapped locally");
        // A version as format 2 sealed it: its data key wrapped to the vault's public key.
        let stored = vault.get(ResourceType::Observation, RECORD, 1).expect("get");
        assert!(stored.is_none());
        // What the vault binds a version's key and ciphertext to: its type, id and version.
        let context = [
            b"medledger/record/v1".as_slice(),
            &[ResourceType::Observation.tag_byte()],
            &RECORD.0,
            &1u64.to_be_bytes(),
        ]
        .concat();
        let data_key = DataKey::generate();
        let plaintext = b"{\"v\":\"format 2\"}";
        first.ciphertext = seal(&data_key, plaintext, &context);
        first.digest = sha256(&first.ciphertext);
        first.wrapped_key = OwnWrappedKey::Hpke(wrap_key(&vault.public_key(), &data_key, &context));
        vault.commit(std::slice::from_ref(&first)).expect("v1");
        first
    };
    {
        let db = Database::open(dir.path().join(medledger_vault::DATABASE_FILE)).expect("open");
        let write = db.begin_write().expect("write");
        write.open_table(META).expect("meta").insert("format_version", 2).expect("insert");
        write.commit().expect("commit");
    }
    let vault = Vault::open(dir.path(), None).expect("a format-2 vault opens").with_key_cache(0);
    let stored = vault.get(ResourceType::Observation, RECORD, 1).expect("get").expect("v1 stored");
    assert!(matches!(stored.wrapped_key, OwnWrappedKey::Hpke(_)));
    let body = vault.decrypt(&stored, Some(&first.digest)).expect("an HPKE-wrapped key opens");
    assert_eq!(body.as_slice(), b"{\"v\":\"format 2\"}");
    vault.commit(&[version(&vault, 2, "{\"v\":2}")]).expect("v2");
    let second = vault.get(ResourceType::Observation, RECORD, 2).expect("get").expect("v2 stored");
    assert!(vault.decrypt(&second, None).is_ok());
    drop(vault);
    let db = Database::open(dir.path().join(medledger_vault::DATABASE_FILE)).expect("open");
    let read = db.begin_read().expect("read");
    let format =
        read.open_table(META).expect("meta").get("format_version").expect("get").expect("set").value();
    assert_eq!(format, medledger_vault::FORMAT_VERSION, "marked as the current format");
}

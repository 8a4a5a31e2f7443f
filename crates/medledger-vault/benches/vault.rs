//! Cost of reading one record version back from the vault on a real redb file: fetch the
//! stored version, check its ciphertext against the anchor, get its data key, decrypt. "cold"
//! unwraps the data key with HPKE on every read (`with_key_cache(0)`); "warm" finds it in the
//! vault's key cache. Both check the digest and the AEAD tag.
//!
//! Run with `cargo bench -p medledger-vault --bench vault` (add `-- --quick` for a rough number).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use medledger_crypto::SigningKey;
use medledger_types::{OrgId, PatientId, RecordId, ResourceType};
use medledger_vault::{DEFAULT_CACHED_KEYS, StoredVersion, Vault, create_key};

/// Plaintext size: the 2 KiB Observation of the FHIR benchmark.
const RECORD_BYTES: usize = 2 * 1024;
/// Records in the vault: reads cycle over them, all within the default cache.
const RECORDS: u8 = 64;
/// How long each benchmark measures.
const MEASUREMENT_TIME: Duration = Duration::from_secs(3);
/// Warm-up before each measurement.
const WARM_UP_TIME: Duration = Duration::from_secs(1);
/// Samples per benchmark; criterion's statistics need at least 10.
const SAMPLE_SIZE: usize = 20;

fn stored(vault: &Vault, record: RecordId) -> StoredVersion {
    let sealed = vault.seal(ResourceType::Observation, record, 1, &[b'x'; RECORD_BYTES]);
    StoredVersion {
        resource_type: ResourceType::Observation,
        record,
        version: 1,
        custodian: OrgId::new("st-mary-hospital").expect("a valid id"),
        patient: Some(PatientId([1; 16])),
        author: SigningKey::from_seed(&[3; 32]).public_key(),
        last_updated_ms: 1_000,
        ciphertext: sealed.ciphertext,
        digest: sealed.digest,
        wrapped_key: sealed.wrapped_key,
        tokens: vec![vault.token("patient", "pt-1")],
    }
}

fn read(c: &mut Criterion) {
    let mut group = c.benchmark_group("vault_read_2KiB");
    group.measurement_time(MEASUREMENT_TIME).warm_up_time(WARM_UP_TIME).sample_size(SAMPLE_SIZE);
    group.throughput(Throughput::Elements(1));
    for (name, cached_keys) in [("cold", 0), ("warm", DEFAULT_CACHED_KEYS)] {
        let dir = tempfile::tempdir().expect("temp dir");
        create_key(dir.path(), None).expect("vault key");
        let vault = Vault::open(dir.path(), None).expect("opens").with_key_cache(cached_keys);
        let records: Vec<RecordId> = (0..RECORDS).map(|n| RecordId([n; 16])).collect();
        let versions: Vec<StoredVersion> = records.iter().map(|&record| stored(&vault, record)).collect();
        vault.commit(&versions).expect("committed");
        let mut next = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                let version = &versions[next % versions.len()];
                next += 1;
                let stored =
                    vault.get(ResourceType::Observation, version.record, 1).expect("read").expect("stored");
                let body = vault.decrypt(black_box(&stored), Some(&version.digest)).expect("decrypts");
                assert_eq!(body.len(), RECORD_BYTES);
            });
        });
    }
    group.finish();
}

criterion_group!(benches, read);
criterion_main!(benches);

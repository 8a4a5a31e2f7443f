//! Cost of envelope encryption per record version: sealing and opening a typical FHIR
//! resource with its data key (AES-256-GCM), wrapping and unwrapping that key for a vault
//! (HPKE: a fixed-base X25519 multiplication and a Diffie-Hellman on each side), and checking a
//! vault public key parsed from outside (one X25519 multiplication to refuse low-order points).
//!
//! Run with `cargo bench -p medledger-crypto --bench envelope` (add `-- --quick` for a rough
//! number). Each benchmark measures for a few seconds so the whole file finishes in well under
//! a minute.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use medledger_crypto::envelope::{DataKey, VaultPublicKey, VaultSecretKey, open, seal, unwrap_key, wrap_key};

/// Plaintext size: a typical FHIR Observation or Condition as JSON is one to a few KiB.
const RECORD_BYTES: usize = 2 * 1024;
/// Associated data and HPKE context of the size the vault uses (a record id and a version).
const CONTEXT: &[u8] = b"medledger/record/v1 Observation 0123456789abcdef version 42";
/// How long each benchmark measures.
const MEASUREMENT_TIME: Duration = Duration::from_secs(3);
/// Warm-up before each measurement.
const WARM_UP_TIME: Duration = Duration::from_secs(1);
/// Samples per benchmark; criterion's statistics need at least 10.
const SAMPLE_SIZE: usize = 20;

fn data_encryption(c: &mut Criterion) {
    let key = DataKey::generate();
    let plaintext = vec![b'x'; RECORD_BYTES];
    let sealed = seal(&key, &plaintext, CONTEXT);
    assert_eq!(open(&key, &sealed, CONTEXT).expect("opens").as_slice(), plaintext.as_slice());

    let mut group = c.benchmark_group("envelope_aes_256_gcm");
    group.measurement_time(MEASUREMENT_TIME).warm_up_time(WARM_UP_TIME).sample_size(SAMPLE_SIZE);
    group.throughput(Throughput::Bytes(RECORD_BYTES as u64));
    group.bench_function("seal_open_2KiB", |b| {
        b.iter(|| {
            let sealed = seal(&key, black_box(&plaintext), CONTEXT);
            open(&key, black_box(&sealed), CONTEXT).expect("opens")
        });
    });
    group.bench_function("seal_2KiB", |b| b.iter(|| seal(&key, black_box(&plaintext), CONTEXT)));
    group.bench_function("open_2KiB", |b| b.iter(|| open(&key, black_box(&sealed), CONTEXT).expect("opens")));
    group.finish();
}

fn key_wrapping(c: &mut Criterion) {
    let vault = VaultSecretKey::from_seed(&[7; 32]);
    let recipient = vault.public_key();
    let key = DataKey::generate();
    let wrapped = wrap_key(&recipient, &key, CONTEXT);

    let mut group = c.benchmark_group("envelope_hpke_x25519");
    group.measurement_time(MEASUREMENT_TIME).warm_up_time(WARM_UP_TIME).sample_size(SAMPLE_SIZE);
    group.throughput(Throughput::Elements(1));
    group.bench_function("wrap_unwrap", |b| {
        b.iter(|| {
            let wrapped = wrap_key(black_box(&recipient), &key, CONTEXT);
            unwrap_key(&vault, black_box(&wrapped), CONTEXT).expect("unwraps")
        });
    });
    group.bench_function("wrap", |b| b.iter(|| wrap_key(black_box(&recipient), &key, CONTEXT)));
    group.bench_function("unwrap", |b| {
        b.iter(|| unwrap_key(&vault, black_box(&wrapped), CONTEXT).expect("unwraps"));
    });
    group.bench_function("public_key_from_bytes", |b| {
        b.iter(|| VaultPublicKey::from_bytes(black_box(recipient.as_bytes())).expect("valid"));
    });
    group.finish();

    // The vault's own copy: XChaCha20-Poly1305 under its key-encryption key.
    let key_encryption_key = vault.key_encryption_key();
    let local = key_encryption_key.wrap(&key, CONTEXT);
    let mut group = c.benchmark_group("envelope_local_xchacha20poly1305");
    group.measurement_time(MEASUREMENT_TIME).warm_up_time(WARM_UP_TIME).sample_size(SAMPLE_SIZE);
    group.throughput(Throughput::Elements(1));
    group.bench_function("wrap", |b| b.iter(|| key_encryption_key.wrap(black_box(&key), CONTEXT)));
    group.bench_function("unwrap", |b| {
        b.iter(|| key_encryption_key.unwrap(black_box(&local), CONTEXT).expect("unwraps"));
    });
    group.finish();
}

criterion_group!(benches, data_encryption, key_wrapping);
criterion_main!(benches);

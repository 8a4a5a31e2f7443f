//! Speed of the primitives a block's validation is made of: Ed25519 verification, single and
//! batched, and RFC 9162 proofs over a tree the size of a long-running ledger's history.
//!
//! Run with `cargo bench -p medledger-crypto --bench crypto` (add `-- --quick` for a rough
//! number). Each benchmark measures for a few seconds so the whole file finishes in under a
//! minute.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use medledger_crypto::merkle::{CompleteSubtrees, InclusionProof, MerkleTree, leaf_hash};
use medledger_crypto::{PublicKey, Signature, SigningKey, verify_batch};

/// Signatures per batch: the order of a full block's transactions.
const BATCH_SIGNATURES: usize = 1_000;
/// Leaves in the benchmark tree: a million blocks or transactions of history. Deliberately
/// not a power of two, so proofs include recomputed right-edge subtrees.
const TREE_LEAVES: u64 = 1_000_000;
/// Odd and not a multiple of 5, so stepping by it modulo 10^6 visits every index before
/// repeating, spread across the whole tree rather than neighbouring leaves.
const INDEX_STRIDE: u64 = 618_033;
/// Distinct inclusion proofs cycled through by the verification benchmark.
const PRECOMPUTED_PROOFS: usize = 1_024;
/// How long each benchmark measures; short, so the file runs in under a minute.
const MEASUREMENT_TIME: Duration = Duration::from_secs(3);
/// Warm-up before each measurement.
const WARM_UP_TIME: Duration = Duration::from_secs(1);
/// Samples per benchmark; criterion's statistics need at least 10.
const SAMPLE_SIZE: usize = 20;

/// A deterministic key per index: benchmarks need distinct keys, not secret ones.
fn key(index: usize) -> SigningKey {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(index as u64).to_le_bytes());
    SigningKey::from_seed(&seed)
}

struct SignedMessages {
    messages: Vec<Vec<u8>>,
    signatures: Vec<Signature>,
    public_keys: Vec<PublicKey>,
}

fn signed_messages(count: usize) -> SignedMessages {
    let keys: Vec<SigningKey> = (0..count).map(key).collect();
    let messages: Vec<Vec<u8>> =
        (0..count).map(|index| format!("medledger/bench/v1 message {index}").into_bytes()).collect();
    let signatures = keys.iter().zip(&messages).map(|(key, message)| key.sign(message)).collect();
    let public_keys = keys.iter().map(SigningKey::public_key).collect();
    SignedMessages { messages, signatures, public_keys }
}

fn ed25519(c: &mut Criterion) {
    let signed = signed_messages(BATCH_SIGNATURES);
    let message_refs: Vec<&[u8]> = signed.messages.iter().map(Vec::as_slice).collect();
    // Benchmark the path that succeeds: a failing batch falls back to one-by-one verification.
    assert_eq!(verify_batch(&message_refs, &signed.signatures, &signed.public_keys), Ok(()));

    let mut group = c.benchmark_group("ed25519");
    group.measurement_time(MEASUREMENT_TIME).warm_up_time(WARM_UP_TIME).sample_size(SAMPLE_SIZE);
    group.throughput(Throughput::Elements(1));
    group.bench_function("verify_single", |b| {
        b.iter(|| signed.public_keys[0].verify(black_box(message_refs[0]), black_box(&signed.signatures[0])));
    });
    group.throughput(Throughput::Elements(BATCH_SIGNATURES as u64));
    group.bench_function("verify_batch_1000", |b| {
        b.iter(|| verify_batch(black_box(&message_refs), black_box(&signed.signatures), &signed.public_keys));
    });
    group.finish();
}

/// Indices spread over the whole tree, a different one on every call.
fn index_sequence() -> impl FnMut() -> u64 {
    let mut index = 0;
    move || {
        index = (index + INDEX_STRIDE) % TREE_LEAVES;
        index
    }
}

fn merkle(c: &mut Criterion) {
    let leaves: Vec<_> = (0..TREE_LEAVES).map(|index| leaf_hash(&index.to_le_bytes())).collect();
    let tree = MerkleTree::from_leaf_hashes(leaves.iter().copied());
    let root = tree.root();
    let mut next_index = index_sequence();
    let proofs: Vec<(InclusionProof, _)> = (0..PRECOMPUTED_PROOFS)
        .map(|_| {
            let index = next_index();
            let proof = tree.inclusion_proof(index, TREE_LEAVES).expect("index is below the tree size");
            (proof, leaves[usize::try_from(index).expect("index fits in usize")])
        })
        .collect();
    assert!(proofs.iter().all(|(proof, leaf)| proof.verify(leaf, &root).is_ok()));

    let mut group = c.benchmark_group("merkle");
    group.measurement_time(MEASUREMENT_TIME).warm_up_time(WARM_UP_TIME).sample_size(SAMPLE_SIZE);
    group.throughput(Throughput::Elements(1));
    group.bench_function("inclusion_proof_generate_1m", |b| {
        b.iter(|| tree.inclusion_proof(black_box(next_index()), TREE_LEAVES));
    });
    let mut proof_cycle = proofs.iter().cycle();
    group.bench_function("inclusion_proof_verify_1m", |b| {
        b.iter(|| {
            let (proof, leaf) = proof_cycle.next().expect("a cycle over a non-empty list never ends");
            black_box(proof).verify(leaf, &root)
        });
    });
    group.bench_function("consistency_proof_generate_1m", |b| {
        b.iter(|| tree.consistency_proof(black_box(next_index() + 1), TREE_LEAVES));
    });
    // Building the whole tree is half a second; ten samples is criterion's minimum.
    group.throughput(Throughput::Elements(TREE_LEAVES));
    group.sample_size(10);
    group.bench_function("append_1m", |b| {
        b.iter(|| MerkleTree::from_leaf_hashes(black_box(&leaves).iter().copied()));
    });
    group.finish();
}

criterion_group!(benches, ed25519, merkle);
criterion_main!(benches);

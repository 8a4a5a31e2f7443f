//! Codec benchmarks: what a node pays per transaction it receives and per block it reads.
//!
//! `cargo bench -p medledger-types --bench codec`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use medledger_crypto::{Digest, SigningKey};
use medledger_types::{Block, BlockHeader, ChainId, Decode, Encode, Label, Payload, Transaction, TxBody};

/// Transactions in the block benchmark: a busy block, a tenth of `MAX_BLOCK_TXS`.
const BLOCK_TXS: usize = 1_000;

/// Distinct signers in the block benchmark, so decoding parses many different keys.
const BLOCK_SIGNERS: usize = 64;

fn seed(index: usize) -> [u8; 32] {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&u64::try_from(index).expect("small index").to_be_bytes());
    seed
}

fn anchor_transaction(key: &SigningKey, nonce: u64) -> Transaction {
    TxBody {
        chain_id: ChainId::new("medledger-bench").expect("valid chain id"),
        signer: key.public_key(),
        nonce,
        payload: Payload::Anchor {
            label: Label::new(format!("lab-report/2026/{nonce:06}")).expect("valid label"),
            digest: Digest([0xab; 32]),
        },
    }
    .sign(key)
}

fn block_of(tx_count: usize) -> Block {
    let keys: Vec<SigningKey> = (0..BLOCK_SIGNERS).map(|index| SigningKey::from_seed(&seed(index))).collect();
    let transactions: Vec<Transaction> = (0..tx_count)
        .map(|index| {
            let nonce = u64::try_from(index / BLOCK_SIGNERS).expect("small nonce");
            anchor_transaction(&keys[index % BLOCK_SIGNERS], nonce)
        })
        .collect();
    let proposer = SigningKey::from_seed(&seed(usize::MAX));
    let header = BlockHeader {
        height: 1,
        parent_hash: Digest::ZERO,
        timestamp_ms: 1_767_225_600_000,
        proposer: proposer.public_key(),
        tx_count: u32::try_from(tx_count).expect("at most MAX_BLOCK_TXS"),
        tx_root: Digest([1; 32]),
        receipts_root: Digest([2; 32]),
        state_root: Digest([3; 32]),
        history_root: Digest([4; 32]),
    };
    Block::seal(header, transactions, &proposer)
}

fn transaction_benches(criterion: &mut Criterion) {
    let tx = anchor_transaction(&SigningKey::from_seed(&seed(1)), 7);
    let bytes = tx.encode();
    let mut group = criterion.benchmark_group("tx");
    group.throughput(Throughput::Elements(1));
    group.bench_function("decode_verify", |bencher| {
        bencher.iter(|| {
            let decoded = Transaction::decode(black_box(&bytes)).expect("canonical bytes decode");
            decoded.verify_signature().expect("signed by its signer");
            decoded
        });
    });
    group.bench_function("encode", |bencher| bencher.iter(|| black_box(&tx).encode()));
    group.bench_function("id", |bencher| bencher.iter(|| black_box(&tx).id()));
    group.finish();
}

fn block_benches(criterion: &mut Criterion) {
    let bytes = block_of(BLOCK_TXS).encode();
    let mut group = criterion.benchmark_group("block");
    group.throughput(Throughput::Elements(u64::try_from(BLOCK_TXS).expect("small count")));
    group.bench_function("decode_1000", |bencher| {
        bencher.iter(|| Block::decode(black_box(&bytes)).expect("canonical bytes decode"));
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).sample_size(20);
    targets = transaction_benches, block_benches
}
criterion_main!(benches);

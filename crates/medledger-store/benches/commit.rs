//! Block apply and durable commit of 1,000 transactions on a real redb file.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use medledger_crypto::{SigningKey, sha256};
use medledger_state::{Chain, VerifiedTx};
use medledger_store::Store;
use medledger_types::{ChainId, Genesis, Label, Payload, TxBody};

const BLOCK_TXS: usize = 1_000;
const SIGNERS: usize = 100;

struct Setup {
    proposer: SigningKey,
    signers: Vec<SigningKey>,
    genesis: Genesis,
}

fn setup() -> Setup {
    let proposer = SigningKey::from_seed(&[1; 32]);
    let signers: Vec<SigningKey> =
        (0..SIGNERS).map(|index| SigningKey::from_seed(&sha256(&index.to_be_bytes()).0)).collect();
    let genesis = Genesis::single_hospital(
        ChainId::new("bench").expect("chain id"),
        0,
        proposer.public_key(),
        SigningKey::from_seed(&[2; 32]).public_key(),
        signers.iter().map(SigningKey::public_key),
    );
    Setup { proposer, signers, genesis }
}

/// The `block`-th block's transactions: each signer anchors with its next nonce.
fn block_txs(setup: &Setup, block: usize) -> Vec<VerifiedTx> {
    let per_signer = BLOCK_TXS / SIGNERS;
    (0..BLOCK_TXS)
        .map(|index| {
            let key = &setup.signers[index % SIGNERS];
            let nonce = (block * per_signer + index / SIGNERS) as u64;
            let label = Label::new(format!("bench/{block}/{index}")).expect("label");
            let tx = TxBody {
                chain_id: setup.genesis.chain_id.clone(),
                signer: key.public_key(),
                nonce,
                payload: Payload::Anchor { label, digest: sha256(&index.to_be_bytes()) },
            }
            .sign(key);
            VerifiedTx::verify(tx).expect("valid")
        })
        .collect()
}

fn apply_and_commit(c: &mut Criterion) {
    let setup = setup();
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, mut chain) = Store::create(dir.path(), &setup.genesis).expect("store");
    let mut block = 0;
    let mut group = c.benchmark_group("block");
    group.throughput(Throughput::Elements(BLOCK_TXS as u64)).sample_size(10);
    group.bench_function("apply_commit_1000", |bencher| {
        bencher.iter_batched(
            || {
                block += 1;
                block_txs(&setup, block - 1)
            },
            |txs| {
                let verified = chain.build(&txs, 1, &setup.proposer);
                store.commit(&verified).expect("commit");
                chain.commit(verified);
            },
            BatchSize::PerIteration,
        );
    });

    let fresh = Chain::from_genesis(setup.genesis.clone());
    let candidate = fresh.build(&block_txs(&setup, 0), 1, &setup.proposer).block().clone();
    group.bench_function("validate_1000", |bencher| {
        bencher.iter_batched(
            || candidate.clone(),
            |block| fresh.validate(block).expect("valid block"),
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(benches, apply_and_commit);
criterion_main!(benches);

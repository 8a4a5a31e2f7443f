//! The node over a real store in a temporary directory: admission, the mempool's bounds, and
//! block production.

use medledger_crypto::{SigningKey, sha256};
use medledger_node::{Node, NodeConfig, NodeError, SubmitError, TxStatus};
use medledger_store::Store;
use medledger_types::{ChainId, Genesis, Label, Outcome, Payload, RejectReason, Transaction, TxBody};

struct Fixture {
    _dir: tempfile::TempDir,
    node: Node,
    administrator: SigningKey,
    members: Vec<SigningKey>,
}

fn fixture(config: NodeConfig) -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let validator = SigningKey::from_seed(&[1; 32]);
    let members: Vec<SigningKey> = (10u8..13).map(|seed| SigningKey::from_seed(&[seed; 32])).collect();
    let administrator = SigningKey::from_seed(&[2; 32]);
    let chain_id = ChainId::new("node-test").expect("chain id");
    let genesis = Genesis::single_hospital(
        chain_id,
        1_000,
        validator.public_key(),
        administrator.public_key(),
        members.iter().map(SigningKey::public_key),
    );
    let (store, chain) = Store::create(dir.path(), &genesis).expect("create store");
    let node = Node::new(store, chain, validator, config).expect("node");
    Fixture { _dir: dir, node, administrator, members }
}

fn anchor(key: &SigningKey, nonce: u64, label: &str) -> Transaction {
    TxBody {
        chain_id: ChainId::new("node-test").expect("chain id"),
        signer: key.public_key(),
        nonce,
        payload: Payload::Anchor {
            label: Label::new(label).expect("label"),
            digest: sha256(label.as_bytes()),
        },
    }
    .sign(key)
}

#[test]
fn a_full_mempool_refuses_clearly_and_admits_nothing() {
    let fixture = fixture(NodeConfig { mempool_max_txs: 3, ..NodeConfig::default() });
    let key = &fixture.members[1];
    for nonce in 0..3 {
        fixture.node.submit(anchor(key, nonce, &format!("a/{nonce}"))).expect("room for three");
    }
    let refused = fixture.node.submit(anchor(key, 3, "a/3"));
    assert_eq!(refused, Err(SubmitError::MempoolFull { capacity: 3 }));
    assert_eq!(fixture.node.status().mempool_size, 3);
    assert!(matches!(fixture.node.tx_status(&anchor(key, 3, "a/3").id()), Ok(TxStatus::Unknown)));
}

#[test]
fn pending_transactions_become_committed_with_receipts() {
    let fixture = fixture(NodeConfig::default());
    let key = &fixture.members[2];
    let ids: Vec<_> = (0..5)
        .map(|nonce| fixture.node.submit(anchor(key, nonce, &format!("b/{nonce}"))).expect("admitted"))
        .collect();
    assert!(matches!(fixture.node.tx_status(&ids[0]), Ok(TxStatus::Pending)));
    let committed = fixture.node.produce_block().expect("store works").expect("a block");
    assert_eq!(committed.block.header.height, 1);
    assert_eq!(committed.receipts.len(), 5);
    for (index, id) in ids.iter().enumerate() {
        match fixture.node.tx_status(id).expect("store works") {
            TxStatus::Committed { height, index: position, receipt } => {
                assert_eq!((height, position as usize), (1, index));
                assert_eq!(receipt.outcome, Outcome::Applied);
            }
            other => panic!("transaction {index} is {other:?}"),
        }
    }
    assert_eq!(fixture.node.status().mempool_size, 0, "committed transactions leave the mempool");
    assert!(fixture.node.produce_block().expect("store works").is_none(), "no empty blocks");
}

#[test]
fn out_of_order_nonces_wait_for_the_gap_to_fill() {
    let fixture = fixture(NodeConfig::default());
    let key = &fixture.members[1];
    fixture.node.submit(anchor(key, 1, "c/1")).expect("queued ahead");
    assert!(
        fixture.node.produce_block().expect("store works").is_none(),
        "nonce 1 cannot run before nonce 0"
    );
    fixture.node.submit(anchor(key, 0, "c/0")).expect("fills the gap");
    let committed = fixture.node.produce_block().expect("store works").expect("a block");
    let nonces: Vec<u64> = committed.block.transactions.iter().map(|tx| tx.body.nonce).collect();
    assert_eq!(nonces, vec![0, 1]);
}

#[test]
fn blocks_respect_the_configured_size() {
    let fixture = fixture(NodeConfig { max_block_txs: 4, ..NodeConfig::default() });
    let key = &fixture.members[1];
    for nonce in 0..10 {
        fixture.node.submit(anchor(key, nonce, &format!("d/{nonce}"))).expect("admitted");
    }
    let sizes: Vec<usize> = std::iter::from_fn(|| fixture.node.produce_block().expect("store works"))
        .map(|committed| committed.receipts.len())
        .collect();
    assert_eq!(sizes, vec![4, 4, 2]);
}

#[test]
fn admission_rejects_duplicates_replays_and_far_future_nonces() {
    let fixture = fixture(NodeConfig::default());
    let key = &fixture.members[1];
    let tx = anchor(key, 0, "e/0");
    fixture.node.submit(tx.clone()).expect("admitted");
    assert_eq!(fixture.node.submit(tx.clone()), Err(SubmitError::AlreadyPending));
    assert_eq!(
        fixture.node.submit(anchor(key, 0, "e/other")),
        Err(SubmitError::NonceReplayed { expected: 1 }),
        "a second transaction with a queued nonce is a replay"
    );
    assert!(matches!(
        fixture.node.submit(anchor(key, 1_000_000, "e/far")),
        Err(SubmitError::NonceTooFarAhead { expected: 0, .. })
    ));
    fixture.node.produce_block().expect("store works");
    assert_eq!(fixture.node.submit(tx), Err(SubmitError::AlreadyCommitted { height: 1 }));
    assert_eq!(fixture.node.status().mempool_size, 0);
}

#[test]
fn a_node_whose_key_is_not_a_validator_follows_and_never_builds_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let member = SigningKey::from_seed(&[2; 32]);
    let chain_id = ChainId::new("node-test").expect("chain id");
    let validator = SigningKey::from_seed(&[1; 32]).public_key();
    let genesis = Genesis::single_hospital(chain_id, 0, validator, member.public_key(), []);
    let (store, chain) = Store::create(dir.path(), &genesis).expect("create store");
    let node = Node::new(store, chain, member, NodeConfig::default()).expect("a follower starts");
    assert!(!node.is_sole_validator());
    let stop = std::sync::atomic::AtomicBool::new(false);
    assert!(matches!(node.run_producer(&stop), Err(NodeError::NotSoleValidator { height: 1 })));
    assert_eq!(node.status().height, 0, "it built nothing");
}

/// The administrator's transaction revoking `member`.
fn revoke(administrator: &SigningKey, nonce: u64, member: &SigningKey) -> Transaction {
    TxBody {
        chain_id: ChainId::new("node-test").expect("chain id"),
        signer: administrator.public_key(),
        nonce,
        payload: Payload::RevokeMember { public_key: member.public_key() },
    }
    .sign(administrator)
}

#[test]
fn a_revoked_key_loses_its_pending_transactions_and_cannot_submit_more() {
    let fixture = fixture(NodeConfig::default());
    let revoked = &fixture.members[0];
    let revocation = revoke(&fixture.administrator, 0, revoked);
    fixture.node.submit(revocation).expect("admitted");
    fixture.node.produce_block().expect("store works");
    assert!(matches!(
        fixture.node.submit(anchor(revoked, 0, "late")),
        Err(SubmitError::InactiveSigner(RejectReason::KeyRevoked))
    ));
    assert_eq!(fixture.node.status().mempool_size, 0, "nothing of the revoked key is queued");
}

#[test]
fn pending_transactions_of_a_key_revoked_in_a_block_are_dropped() {
    let fixture = fixture(NodeConfig::default());
    let revoked = &fixture.members[1];
    for nonce in 0..3 {
        fixture.node.submit(anchor(revoked, nonce, &format!("queued/{nonce}"))).expect("admitted");
    }
    let revocation = revoke(&fixture.administrator, 0, revoked);
    fixture.node.submit(revocation).expect("admitted");
    let committed = fixture.node.produce_block().expect("store works").expect("a block");
    assert_eq!(committed.receipts.len(), 4);
    // Whatever ran after the revocation in the block was refused; nothing is left queued.
    assert_eq!(fixture.node.status().mempool_size, 0);
    assert!(fixture.node.produce_block().expect("store works").is_none(), "no block of leftovers");
}

/// Validating a proposal skips the signature checks of transactions this node verified into
/// its mempool, but only for that exact transaction: the same body with another signature is
/// checked, and refused.
#[test]
fn validation_trusts_only_the_exact_transactions_it_verified() {
    let fixture = fixture(NodeConfig::default());
    let key = &fixture.members[0];
    fixture.node.submit(anchor(key, 0, "c/0")).expect("admitted");
    let chain = fixture.node.with_chain(medledger_state::Chain::clone);
    let proposal = fixture.node.build_on(&chain, 2_000).block().clone();
    assert_eq!(proposal.transactions.len(), 1);
    assert!(fixture.node.validate_on(&chain, proposal.clone()).is_ok(), "the honest proposal validates");

    let mut forged = proposal.transactions.clone();
    forged[0].signature.0[5] ^= 1;
    let leaves: Vec<_> = forged
        .iter()
        .map(|tx| medledger_crypto::merkle::leaf_hash(&medledger_types::Encode::encode(tx)))
        .collect();
    let header = medledger_types::BlockHeader {
        tx_root: medledger_crypto::merkle::root_of(&leaves),
        ..proposal.header
    };
    let resealed = medledger_types::Block::seal(header, forged, &SigningKey::from_seed(&[1; 32]));
    assert_eq!(
        fixture.node.validate_on(&chain, resealed).err(),
        Some(medledger_state::BlockError::TransactionSignature { index: 0 })
    );
}

//! The state machine's rules through its public API: execution outcomes, block validation,
//! and determinism across independent replicas.

use medledger_crypto::{Digest, SigningKey, sha256};
use medledger_state::{BlockError, Chain, History, State, VerifiedTx};
use medledger_types::{
    Block, BlockHeader, ChainId, Genesis, GenesisMember, GenesisOrganization, Label, NodeAddress,
    NodeIdentity, OrgId, OrgKind, Outcome, Parameters, Payload, RejectReason, Role, Transaction, TxBody,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

struct World {
    proposer: SigningKey,
    admin: SigningKey,
    members: Vec<SigningKey>,
    chain: Chain,
}

fn world() -> World {
    let proposer = SigningKey::from_seed(&[1; 32]);
    let admin = SigningKey::from_seed(&[2; 32]);
    let members: Vec<SigningKey> = (3u8..6).map(|seed| SigningKey::from_seed(&[seed; 32])).collect();
    let member =
        |key: &SigningKey, role| GenesisMember { public_key: key.public_key(), role, patient_id: None };
    let mut genesis_members = vec![member(&admin, Role::Administrator)];
    genesis_members.extend(members.iter().map(|key| member(key, Role::Physician)));
    let genesis = Genesis {
        chain_id: ChainId::new("state-test").expect("chain id"),
        genesis_time_ms: 1_000,
        parameters: Parameters::default(),
        organizations: vec![GenesisOrganization {
            id: OrgId::new("test-hospital").expect("org id"),
            kind: OrgKind::Hospital,
            node: Some(NodeIdentity {
                public_key: proposer.public_key(),
                address: NodeAddress::new("127.0.0.1:9000").expect("address"),
            }),
            members: genesis_members,
        }],
    };
    World { chain: Chain::from_genesis(genesis), proposer, admin, members }
}

fn sign(key: &SigningKey, nonce: u64, payload: Payload) -> Transaction {
    TxBody {
        chain_id: ChainId::new("state-test").expect("chain id"),
        signer: key.public_key(),
        nonce,
        payload,
    }
    .sign(key)
}

fn anchor(key: &SigningKey, nonce: u64, label: &str) -> Transaction {
    sign(
        key,
        nonce,
        Payload::Anchor { label: Label::new(label).expect("label"), digest: sha256(label.as_bytes()) },
    )
}

fn enrol(key: &SigningKey, role: Role) -> Payload {
    Payload::EnrolMember { public_key: key.public_key(), role, patient_id: None }
}

fn verified(txs: &[Transaction]) -> Vec<VerifiedTx> {
    txs.iter().map(|tx| VerifiedTx::verify(tx.clone()).expect("valid signature")).collect()
}

impl World {
    /// Builds, validates on a replica, and commits a block; returns the outcomes.
    fn run_block(&mut self, txs: &[Transaction]) -> Vec<Outcome> {
        let built = self.chain.build(&verified(txs), 2_000 + self.chain.height(), &self.proposer);
        let outcomes = built.receipts().iter().map(|receipt| receipt.outcome).collect();
        self.chain.commit(built);
        outcomes
    }

    fn next_nonce(&self, key: &SigningKey) -> Option<u64> {
        self.chain.account(&key.public_key()).map(|account| account.next_nonce)
    }
}

#[test]
fn a_transaction_signed_in_process_is_the_one_verification_would_give() {
    let key = SigningKey::from_seed(&[7; 32]);
    let label = Label::new("lab-report/1").expect("label");
    let body = TxBody {
        chain_id: ChainId::new("state-test").expect("chain id"),
        signer: key.public_key(),
        nonce: 3,
        payload: Payload::Anchor { digest: sha256(label.as_str().as_bytes()), label },
    };
    let signed = VerifiedTx::sign(body.clone(), &key);
    let verified = VerifiedTx::verify(body.clone().sign(&key)).expect("a fresh signature verifies");
    assert_eq!(signed.id(), verified.id());
    assert_eq!(signed.encoded(), verified.encoded());
    let other = SigningKey::from_seed(&[8; 32]);
    let refused = std::panic::catch_unwind(|| VerifiedTx::sign(body, &other));
    assert!(refused.is_err(), "a key that is not the body's signer is refused");
}

#[test]
fn a_transaction_executes_exactly_once() {
    let mut world = world();
    let tx = anchor(&world.members[0], 0, "doc/1");
    assert_eq!(world.run_block(std::slice::from_ref(&tx)), vec![Outcome::Applied]);
    let root = world.chain.state().root();
    assert_eq!(world.run_block(&[tx]), vec![Outcome::Rejected(RejectReason::NonceReplayed { expected: 1 })]);
    assert_eq!(world.chain.state().root(), root, "a replay changes nothing");
    assert_eq!(world.next_nonce(&world.members[0]), Some(1));
}

#[test]
fn gaps_unknown_signers_and_other_chains_change_nothing() {
    let mut world = world();
    let root = world.chain.state().root();
    let stranger = SigningKey::from_seed(&[99; 32]);
    let other_chain = TxBody {
        chain_id: ChainId::new("other").expect("chain id"),
        signer: world.members[1].public_key(),
        nonce: 0,
        payload: Payload::Anchor { label: Label::new("x").expect("label"), digest: Digest::ZERO },
    }
    .sign(&world.members[1]);
    let outcomes = world.run_block(&[
        anchor(&world.members[0], 5, "gap"),
        anchor(&stranger, 0, "stranger"),
        other_chain,
    ]);
    assert_eq!(
        outcomes,
        vec![
            Outcome::Rejected(RejectReason::NonceGap { expected: 0 }),
            Outcome::Rejected(RejectReason::UnknownSigner),
            Outcome::Rejected(RejectReason::WrongChain),
        ]
    );
    assert_eq!(world.chain.state().root(), root);
    assert_eq!(world.next_nonce(&world.members[0]), Some(0));
    assert_eq!(world.next_nonce(&stranger), None);
}

#[test]
fn rejected_payloads_consume_the_nonce_and_nothing_else() {
    let mut world = world();
    let newcomer = SigningKey::from_seed(&[50; 32]);
    let add_by_member = sign(&world.members[0], 0, enrol(&newcomer, Role::Nurse));
    assert_eq!(world.run_block(&[add_by_member]), vec![Outcome::Rejected(RejectReason::NotAuthorized)]);
    assert_eq!(world.next_nonce(&world.members[0]), Some(1), "the nonce is consumed");
    assert_eq!(world.next_nonce(&newcomer), None, "nobody was enrolled");

    let add = sign(&world.admin, 0, enrol(&newcomer, Role::Physician));
    let add_again = sign(&world.admin, 1, enrol(&newcomer, Role::Administrator));
    assert_eq!(
        world.run_block(&[add, add_again]),
        vec![Outcome::Applied, Outcome::Rejected(RejectReason::MemberExists)]
    );
    let account = world.chain.account(&newcomer.public_key()).expect("enrolled");
    assert_eq!(account.role, Role::Physician, "the rejected second enrolment changed nothing");

    assert_eq!(
        world.run_block(&[anchor(&newcomer, 0, "doc/n")]),
        vec![Outcome::Applied],
        "new members can sign"
    );
    assert_eq!(
        world.run_block(&[anchor(&world.members[1], 0, "doc/n")]),
        vec![Outcome::Rejected(RejectReason::AnchorExists)]
    );
}

/// A valid next block and the key that sealed it, to be broken one rule at a time.
fn candidate(world: &World) -> Block {
    let txs = [
        anchor(&world.members[0], 0, "a"),
        anchor(&world.members[1], 0, "b"),
        anchor(&world.members[2], 0, "c"),
    ];
    world.chain.build(&verified(&txs), 5_000, &world.proposer).block().clone()
}

fn reseal(world: &World, header: BlockHeader, transactions: Vec<Transaction>) -> Block {
    Block::seal(header, transactions, &world.proposer)
}

#[test]
fn validate_accepts_what_build_makes() {
    let world = world();
    let block = candidate(&world);
    let verified = world.chain.validate(block.clone()).expect("a built block is valid");
    assert_eq!(verified.hash(), block.hash());
}

#[test]
fn restore_names_a_state_or_history_out_of_step_with_the_head() {
    let world = world();
    let mut chain = world.chain.clone();
    let committed = chain.validate(candidate(&world)).expect("valid");
    chain.commit(committed);
    let head = chain.head().cloned();
    let genesis = chain.genesis().clone();
    let restore =
        |state: State, history: History| Chain::restore(genesis.clone(), state, head.clone(), history);
    assert!(restore(chain.state().clone(), chain.history().clone()).is_ok(), "the chain's own parts");
    assert_eq!(
        restore(chain.state().clone(), History::empty()).err(),
        Some(BlockError::StoredHeight { what: "history", head: 1, found: 0 })
    );
    assert_eq!(
        restore(world.chain.state().clone(), chain.history().clone()).err(),
        Some(BlockError::StoredHeight { what: "state", head: 1, found: 0 })
    );
}

#[test]
fn validate_rejects_each_broken_rule_and_changes_nothing() {
    let world = world();
    let root = world.chain.state().root();
    let block = candidate(&world);
    let header = block.header.clone();
    let txs = block.transactions.clone();
    let check = |broken: Block, expected: &dyn Fn(&BlockError) -> bool| {
        let error = world.chain.validate(broken).err().expect("the broken block is rejected");
        assert!(expected(&error), "unexpected error: {error}");
        assert_eq!(world.chain.state().root(), root);
        assert_eq!(world.chain.height(), 0);
    };

    check(reseal(&world, BlockHeader { height: 2, ..header.clone() }, txs.clone()), &|e| {
        matches!(e, BlockError::Height { head: 0, found: 2 })
    });
    check(reseal(&world, BlockHeader { parent_hash: Digest::ZERO, ..header.clone() }, txs.clone()), &|e| {
        matches!(e, BlockError::ParentHash { .. })
    });
    check(reseal(&world, BlockHeader { timestamp_ms: 999, ..header.clone() }, txs.clone()), &|e| {
        matches!(e, BlockError::Timestamp { parent: 1_000, found: 999 })
    });
    check(reseal(&world, BlockHeader { history_root: Digest::ZERO, ..header.clone() }, txs.clone()), &|e| {
        matches!(e, BlockError::RootMismatch { what: "history", .. })
    });
    let outsider = SigningKey::from_seed(&[77; 32]);
    let by_outsider = Block::seal(
        BlockHeader { proposer: outsider.public_key(), ..header.clone() },
        txs.clone(),
        &outsider,
    );
    check(by_outsider, &|e| matches!(e, BlockError::UnknownProposer(_)));
    let mut bad_seal = block.clone();
    bad_seal.signature.0[0] ^= 1;
    check(bad_seal, &|e| matches!(e, BlockError::ProposerSignature));
    // `Block::seal` refuses a wrong count, so sign this one by hand, as a faulty proposer would.
    let miscounted = BlockHeader { tx_count: 2, ..header.clone() };
    let signature = world.proposer.sign(&BlockHeader::signing_message(&miscounted.hash()));
    check(Block { header: miscounted, transactions: txs.clone(), signature }, &|e| {
        matches!(e, BlockError::TransactionCount { header: 2, body: 3 })
    });
    let mut swapped = txs.clone();
    swapped.swap(0, 2);
    check(reseal(&world, header.clone(), swapped), &|e| {
        matches!(e, BlockError::RootMismatch { what: "transaction", .. })
    });
    check(reseal(&world, BlockHeader { state_root: Digest::ZERO, ..header.clone() }, txs.clone()), &|e| {
        matches!(e, BlockError::RootMismatch { what: "state", .. })
    });
    check(reseal(&world, BlockHeader { receipts_root: Digest::ZERO, ..header.clone() }, txs.clone()), &|e| {
        matches!(e, BlockError::RootMismatch { what: "receipts", .. })
    });
}

#[test]
fn validate_names_the_forged_transaction_and_duplicates() {
    let world = world();
    let block = candidate(&world);
    let with_root = |txs: Vec<Transaction>| {
        let leaves: Vec<Digest> = txs
            .iter()
            .map(|tx| medledger_crypto::merkle::leaf_hash(&medledger_types::Encode::encode(tx)))
            .collect();
        let header = BlockHeader {
            tx_root: medledger_crypto::merkle::root_of(&leaves),
            tx_count: u32::try_from(txs.len()).expect("small"),
            ..block.header.clone()
        };
        reseal(&world, header, txs)
    };
    let mut forged = block.transactions.clone();
    forged[1].signature.0[5] ^= 1;
    assert_eq!(
        world.chain.validate(with_root(forged)).err(),
        Some(BlockError::TransactionSignature { index: 1 })
    );
    let mut duplicated = block.transactions.clone();
    duplicated.push(duplicated[0].clone());
    assert_eq!(
        world.chain.validate(with_root(duplicated)).err(),
        Some(BlockError::DuplicateTransaction { index: 3 })
    );
}

/// One step of a random history.
#[derive(Debug, Clone)]
enum Step {
    Anchor { signer: usize, label: u8 },
    Replay { signer: usize },
    Gap { signer: usize },
    UnauthorizedAdd { signer: usize },
    EndBlock,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0..3usize, 0..12u8).prop_map(|(signer, label)| Step::Anchor { signer, label }),
        1 => (0..3usize).prop_map(|signer| Step::Replay { signer }),
        1 => (0..3usize).prop_map(|signer| Step::Gap { signer }),
        1 => (0..3usize).prop_map(|signer| Step::UnauthorizedAdd { signer }),
        2 => Just(Step::EndBlock),
    ]
}

/// What a proposer does before sealing: replays of a transaction in the same block are
/// duplicates (the first is kept), and a nonce used in an earlier block would make the
/// whole block invalid (so no transaction is ever in the chain twice), which the replica
/// must refuse; such replays are left out.
fn end_block(builder: &World, replica: &Chain, pending: &mut Vec<Transaction>) -> Result<(), TestCaseError> {
    let mut seen = std::collections::HashSet::new();
    pending.retain(|tx| seen.insert(tx.id()));
    let (stale, fresh): (Vec<_>, Vec<_>) = pending.drain(..).partition(|tx| {
        builder.chain.account(&tx.body.signer).is_some_and(|account| tx.body.nonce < account.next_nonce)
    });
    if !stale.is_empty() {
        let replaying = builder.chain.build(&verified(&stale), 10_000, &builder.proposer);
        let refused = matches!(
            replica.validate(replaying.block().clone()),
            Err(BlockError::ReplayedTransaction { index: 0 })
        );
        prop_assert!(refused, "a block replaying a used nonce must be refused");
    }
    *pending = fresh;
    Ok(())
}

proptest! {
    #![proptest_config(Config { cases: 48, failure_persistence: Some(Box::new(FileFailurePersistence::Off)), ..Config::default() })]

    /// Random histories: a replica validating every block agrees with the builder on every
    /// root; nonces count exactly the transactions that passed the nonce check; each label is
    /// anchored once.
    #[test]
    fn replicas_agree_and_nonces_count_exactly_once(steps in proptest::collection::vec(step(), 1..60)) {
        let mut builder = world();
        let mut replica = Chain::from_genesis(builder.chain.genesis().clone());
        let mut planned = [0u64; 3];
        let mut pending: Vec<Transaction> = Vec::new();
        let mut labels = std::collections::BTreeSet::new();
        let mut applied_anchors = 0;
        let mut flush = |builder: &mut World, replica: &mut Chain, pending: &mut Vec<Transaction>| {
            let built = builder.chain.build(&verified(pending), 10_000, &builder.proposer);
            let checked = replica.validate(built.block().clone()).expect("replica accepts the builder's block");
            prop_assert_eq!(checked.receipts(), built.receipts());
            applied_anchors += built
                .receipts()
                .iter()
                .zip(pending.iter())
                .filter(|(receipt, tx)| receipt.outcome == Outcome::Applied && matches!(tx.body.payload, Payload::Anchor { .. }))
                .count();
            builder.chain.commit(built);
            replica.commit(checked);
            prop_assert_eq!(replica.state().root(), builder.chain.state().root());
            prop_assert_eq!(replica.head_hash(), builder.chain.head_hash());
            pending.clear();
            Ok(())
        };
        for step in steps {
            match step {
                Step::Anchor { signer, label } => {
                    let key = &builder.members[signer];
                    pending.push(anchor(key, planned[signer], &format!("label/{label}")));
                    planned[signer] += 1;
                    labels.insert(label);
                }
                Step::Replay { signer } if planned[signer] > 0 => {
                    pending.push(anchor(&builder.members[signer], planned[signer] - 1, "replayed"));
                }
                Step::Replay { .. } => {}
                Step::Gap { signer } => pending.push(anchor(&builder.members[signer], planned[signer] + 3, "gap")),
                Step::UnauthorizedAdd { signer } => {
                    let newcomer = SigningKey::from_seed(&[200; 32]).public_key();
                    let payload = Payload::EnrolMember { public_key: newcomer, role: Role::Nurse, patient_id: None };
                    pending.push(sign(&builder.members[signer], planned[signer], payload));
                    planned[signer] += 1;
                }
                Step::EndBlock => {
                    end_block(&builder, &replica, &mut pending)?;
                    flush(&mut builder, &mut replica, &mut pending)?;
                }
            }
        }
        end_block(&builder, &replica, &mut pending)?;
        flush(&mut builder, &mut replica, &mut pending)?;
        for (signer, key) in builder.members.iter().enumerate() {
            prop_assert_eq!(builder.next_nonce(key), Some(planned[signer]));
        }
        prop_assert_eq!(applied_anchors, labels.len());
        let rebuilt = State::from_entries(builder.chain.state().scan(b"", None));
        prop_assert_eq!(rebuilt.root(), builder.chain.state().root());
    }
}

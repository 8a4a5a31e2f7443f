//! Identity and governance rules through the state machine's public API: the authorization
//! table (exhaustively), member enrolment, rotation and revocation, and consortium governance.
//! Every rejection is checked to change nothing but, where the rules say so, the signer's nonce.

use std::collections::BTreeMap;

use medledger_crypto::{SigningKey, sha256};
use medledger_state::authorization::{may_submit, role_exists_in};
use medledger_state::{BlockError, Chain, VerifiedTx, keys};
use medledger_types::{
    ChainId, Genesis, GenesisMember, GenesisOrganization, GovernanceAction, Label, NodeAddress, NodeIdentity,
    OrgId, OrgKind, OrgSpec, Outcome, Parameters, PatientId, Payload, RecordAnchor, RecordId, RejectReason,
    ResourceType, Role, Transaction, TxBody, TxId, TxKind,
};

const CHAIN: &str = "identity-test";
const PROPOSAL_TTL_MS: u64 = 60_000;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_seed(&[seed; 32])
}

fn org_id(id: &str) -> OrgId {
    OrgId::new(id).expect("valid org id")
}

fn node(seed: u8) -> NodeIdentity {
    NodeIdentity {
        public_key: key(seed).public_key(),
        address: NodeAddress::new("127.0.0.1:9000").expect("address"),
    }
}

fn member(key: &SigningKey, role: Role) -> GenesisMember {
    let patient_id =
        (role == Role::Patient).then(|| PatientId(key.public_key().as_bytes()[..16].try_into().expect("16")));
    GenesisMember { public_key: key.public_key(), role, patient_id }
}

/// A consortium under test: a chain, its proposer, and block time that moves on per block.
struct Consortium {
    chain: Chain,
    proposer: SigningKey,
    nonces: BTreeMap<[u8; 32], u64>,
    time_ms: u64,
}

impl Consortium {
    fn new(organizations: Vec<GenesisOrganization>) -> Self {
        let genesis = Genesis {
            chain_id: ChainId::new(CHAIN).expect("chain id"),
            genesis_time_ms: 1_000,
            parameters: Parameters { proposal_ttl_ms: PROPOSAL_TTL_MS, validator_change_delay_blocks: 3 },
            organizations,
        };
        genesis.validate().expect("test genesis is valid");
        Self {
            chain: Chain::from_genesis(genesis),
            proposer: key(1),
            nonces: BTreeMap::new(),
            time_ms: 2_000,
        }
    }

    /// Four organisations: a hospital running the node (admin 10, physician 11, nurse 12), a
    /// laboratory (admin 20, technician 21), a pharmacy (admin 30) and a patient service
    /// (admin 40, patient 41).
    fn standard() -> Self {
        let organization =
            |id: &str, kind, node, members| GenesisOrganization { id: org_id(id), kind, node, members };
        Self::new(vec![
            organization(
                "st-mary-hospital",
                OrgKind::Hospital,
                Some(node(1)),
                vec![
                    member(&key(10), Role::Administrator),
                    member(&key(11), Role::Physician),
                    member(&key(12), Role::Nurse),
                ],
            ),
            organization(
                "northside-lab",
                OrgKind::Laboratory,
                Some(node(2)),
                vec![member(&key(20), Role::Administrator), member(&key(21), Role::LaboratoryTechnician)],
            ),
            organization(
                "city-pharmacy",
                OrgKind::Pharmacy,
                None,
                vec![member(&key(30), Role::Administrator)],
            ),
            organization(
                "patient-link",
                OrgKind::PatientService,
                None,
                vec![member(&key(40), Role::Administrator), member(&key(41), Role::Patient)],
            ),
        ])
    }

    /// Signs with the signer's next planned nonce.
    fn tx(&mut self, signer: &SigningKey, payload: Payload) -> Transaction {
        let nonce = self.nonces.entry(*signer.public_key().as_bytes()).or_insert(0);
        let tx = TxBody {
            chain_id: ChainId::new(CHAIN).expect("chain id"),
            signer: signer.public_key(),
            nonce: *nonce,
            payload,
        }
        .sign(signer);
        *nonce += 1;
        tx
    }

    /// Builds the block, has a replica validate it, commits it; returns the outcomes.
    fn run(&mut self, txs: &[Transaction]) -> Vec<Outcome> {
        let verified: Vec<VerifiedTx> =
            txs.iter().map(|tx| VerifiedTx::verify(tx.clone()).expect("signed")).collect();
        let built = self.chain.build(&verified, self.time_ms, &self.proposer);
        self.time_ms += 1_000;
        let replica = self.chain.validate(built.block().clone()).expect("a replica accepts the block");
        assert_eq!(replica.receipts(), built.receipts());
        let outcomes = built.receipts().iter().map(|receipt| receipt.outcome).collect();
        self.chain.commit(built);
        outcomes
    }

    /// Runs one transaction and returns its outcome.
    fn run_one(&mut self, signer: &SigningKey, payload: Payload) -> Outcome {
        let tx = self.tx(signer, payload);
        self.run(&[tx])[0]
    }

    /// Runs one transaction that must be rejected for `reason` without changing anything but,
    /// when `nonce_consumed`, the signer's nonce.
    fn rejects(&mut self, signer: &SigningKey, payload: Payload, reason: RejectReason, nonce_consumed: bool) {
        let before = self.entries_except(signer);
        let nonce_before = self.chain.account(&signer.public_key()).map(|account| account.next_nonce);
        let outcome = self.run_one(signer, payload);
        assert_eq!(outcome, Outcome::Rejected(reason));
        assert_eq!(self.entries_except(signer), before, "a rejected {reason:?} changed the state");
        let nonce_after = self.chain.account(&signer.public_key()).map(|account| account.next_nonce);
        let expected = if nonce_consumed { nonce_before.map(|nonce| nonce + 1) } else { nonce_before };
        assert_eq!(nonce_after, expected, "nonce after {reason:?}");
        if !nonce_consumed {
            // The transaction did not count: the next one must reuse its nonce.
            *self.nonces.get_mut(signer.public_key().as_bytes()).expect("signed before") -= 1;
        }
    }

    fn entries_except(&self, signer: &SigningKey) -> Vec<(Vec<u8>, Vec<u8>)> {
        let signer_key = keys::account(&signer.public_key());
        let mut entries: Vec<_> =
            self.chain.state().scan(b"", None).filter(|(key, _)| *key != signer_key).collect();
        entries.sort();
        entries
    }

    fn is_active(&self, key: &SigningKey) -> bool {
        self.chain.active_member(&key.public_key()).is_some()
    }
}

fn enrol(key: &SigningKey, role: Role) -> Payload {
    let patient_id = (role == Role::Patient).then_some(PatientId([key.public_key().as_bytes()[0]; 16]));
    Payload::EnrolMember { public_key: key.public_key(), role, patient_id }
}

fn anchor(label: &str) -> Payload {
    Payload::Anchor { label: Label::new(label).expect("label"), digest: sha256(label.as_bytes()) }
}

fn admit(id: &str, kind: OrgKind, node: Option<NodeIdentity>, admin: &SigningKey) -> GovernanceAction {
    GovernanceAction::AdmitOrganization {
        organization: Box::new(OrgSpec {
            id: org_id(id),
            kind,
            node,
            administrators: vec![admin.public_key()],
        }),
    }
}

/// The table as the product specification states it, written independently of the code:
/// administrators govern and manage members everywhere, every member may rotate its own key,
/// and clinical producers (physician, nurse, laboratory technician, pharmacist) at care
/// providers (hospital, clinic, laboratory, pharmacy) anchor documents and refer patients,
/// and only a care provider's node anchors records. Nothing else.
fn specified(kind: OrgKind, role: Role, tx: TxKind) -> bool {
    let role_exists = match role {
        Role::Administrator | Role::Auditor => true,
        Role::Physician | Role::Nurse => [OrgKind::Hospital, OrgKind::Clinic].contains(&kind),
        Role::Pharmacist => {
            [OrgKind::Pharmacy, OrgKind::Hospital, OrgKind::Manufacturer, OrgKind::Distributor]
                .contains(&kind)
        }
        Role::LaboratoryTechnician => [OrgKind::Laboratory, OrgKind::Hospital].contains(&kind),
        Role::RegulatorInspector => kind == OrgKind::Regulator,
        Role::Patient => kind == OrgKind::PatientService,
        // Nodes are not enrolled; an organisation's node only anchors its vault's records.
        Role::Node => {
            return tx == TxKind::Record
                && [OrgKind::Hospital, OrgKind::Clinic, OrgKind::Laboratory, OrgKind::Pharmacy]
                    .contains(&kind);
        }
    };
    let administrative =
        [TxKind::EnrolMember, TxKind::RevokeMember, TxKind::Propose, TxKind::Vote, TxKind::ExecuteProposal];
    let clinical_producer = [Role::Physician, Role::Nurse, Role::LaboratoryTechnician, Role::Pharmacist];
    let care_provider = [OrgKind::Hospital, OrgKind::Clinic, OrgKind::Laboratory, OrgKind::Pharmacy];
    role_exists
        && (tx == TxKind::RotateKey
            || (administrative.contains(&tx) && role == Role::Administrator)
            || ([TxKind::Anchor, TxKind::Refer].contains(&tx)
                && clinical_producer.contains(&role)
                && care_provider.contains(&kind)))
}

#[test]
fn authorization_table_matches_the_specification_for_every_combination() {
    let mut checked = 0;
    for kind in OrgKind::ALL {
        for role in Role::ALL {
            // A node holds an account without being a role members are enrolled in.
            assert_eq!(
                role_exists_in(*kind, *role)
                    || (*role == Role::Node && may_submit(*kind, *role, TxKind::Record)),
                TxKind::ALL.iter().any(|tx| specified(*kind, *role, *tx)),
                "{role} in {kind}"
            );
            for tx in TxKind::ALL {
                assert_eq!(
                    may_submit(*kind, *role, *tx),
                    specified(*kind, *role, *tx),
                    "{role} in {kind}: {tx}"
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, OrgKind::ALL.len() * Role::ALL.len() * TxKind::ALL.len());
}

/// A payload of `kind` the signer could plausibly send, so only authorization can refuse it.
fn sample_payload(kind: TxKind, signer: &SigningKey, index: u8) -> Payload {
    let fresh = key(200u8.wrapping_add(index));
    match kind {
        TxKind::Anchor => anchor(&format!("doc/{index}")),
        TxKind::EnrolMember => enrol(&fresh, Role::Auditor),
        TxKind::RotateKey => Payload::RotateKey { old_key: signer.public_key(), new_key: fresh.public_key() },
        TxKind::RevokeMember => Payload::RevokeMember { public_key: signer.public_key() },
        TxKind::Propose => Payload::Propose {
            action: GovernanceAction::ChangeParameters {
                parameters: Parameters {
                    proposal_ttl_ms: PROPOSAL_TTL_MS * 2,
                    validator_change_delay_blocks: 3,
                },
            },
        },
        TxKind::Vote => Payload::Vote { proposal: TxId(sha256(b"no such proposal")), approve: true },
        TxKind::ExecuteProposal => Payload::ExecuteProposal { proposal: TxId(sha256(b"no such proposal")) },
        TxKind::Record => Payload::Record(RecordAnchor {
            resource_type: ResourceType::Practitioner,
            record: RecordId([index; 16]),
            version: 1,
            patient: None,
            ciphertext_digest: sha256(&[index]),
            author: signer.public_key(),
        }),
        TxKind::Refer => {
            Payload::Refer { patient: PatientId([index; 16]), organization: org_id("st-mary-hospital") }
        }
    }
}

#[test]
fn execution_enforces_the_table_for_every_role_in_every_kind_of_organisation() {
    let mut cases = 0;
    for kind in OrgKind::ALL {
        for role in Role::ALL.iter().filter(|role| role_exists_in(*kind, **role)) {
            for (index, tx_kind) in (0u8..).zip(TxKind::ALL) {
                let signer = key(100);
                let mut members = vec![member(&key(99), Role::Administrator)];
                if *role != Role::Administrator {
                    members.push(member(&signer, *role));
                } else {
                    members.push(member(&signer, Role::Administrator));
                }
                let organization = GenesisOrganization {
                    id: org_id("org-under-test"),
                    kind: *kind,
                    node: Some(node(1)),
                    members,
                };
                let mut consortium = Consortium::new(vec![organization]);
                let outcome = consortium.run_one(&signer, sample_payload(*tx_kind, &signer, index));
                let refused = outcome == Outcome::Rejected(RejectReason::NotAuthorized);
                assert_eq!(
                    !refused,
                    may_submit(*kind, *role, *tx_kind),
                    "{role} in {kind}: {tx_kind} gave {outcome:?}"
                );
                cases += 1;
            }
        }
    }
    assert!(cases > 100, "only {cases} combinations ran");
}

#[test]
fn administrators_enrol_members_in_their_own_organisation_only_with_roles_it_has() {
    let mut consortium = Consortium::standard();
    let (hospital_admin, lab_admin, patient_admin) = (key(10), key(20), key(40));
    assert_eq!(consortium.run_one(&hospital_admin, enrol(&key(13), Role::Pharmacist)), Outcome::Applied);
    let enrolled = consortium.chain.account(&key(13).public_key()).expect("enrolled");
    assert_eq!((enrolled.organization.as_str(), enrolled.role), ("st-mary-hospital", Role::Pharmacist));

    consortium.rejects(&lab_admin, enrol(&key(22), Role::Physician), RejectReason::RoleNotAllowed, true);
    consortium.rejects(&lab_admin, enrol(&key(11), Role::Auditor), RejectReason::MemberExists, true);
    let patient_without_id =
        Payload::EnrolMember { public_key: key(42).public_key(), role: Role::Patient, patient_id: None };
    consortium.rejects(&patient_admin, patient_without_id, RejectReason::PatientIdMismatch, true);
    let nurse_with_id = Payload::EnrolMember {
        public_key: key(14).public_key(),
        role: Role::Nurse,
        patient_id: Some(PatientId([7; 16])),
    };
    consortium.rejects(&hospital_admin, nurse_with_id, RejectReason::PatientIdMismatch, true);
    let taken = consortium.chain.account(&key(41).public_key()).expect("genesis patient").patient_id;
    let duplicate =
        Payload::EnrolMember { public_key: key(42).public_key(), role: Role::Patient, patient_id: taken };
    consortium.rejects(&patient_admin, duplicate, RejectReason::PatientIdExists, true);
    consortium.rejects(&key(11), enrol(&key(15), Role::Nurse), RejectReason::NotAuthorized, true);
    consortium.rejects(&key(77), enrol(&key(15), Role::Nurse), RejectReason::UnknownSigner, false);
}

#[test]
fn a_revoked_key_is_refused_from_the_transaction_after_its_revocation_on() {
    let mut consortium = Consortium::standard();
    let (admin, physician) = (key(10), key(11));
    let revoke = consortium.tx(&admin, Payload::RevokeMember { public_key: physician.public_key() });
    let later_in_same_block = consortium.tx(&physician, anchor("after-revocation"));
    assert_eq!(
        consortium.run(&[revoke, later_in_same_block]),
        vec![Outcome::Applied, Outcome::Rejected(RejectReason::KeyRevoked)]
    );
    assert!(!consortium.is_active(&physician));
    *consortium.nonces.get_mut(physician.public_key().as_bytes()).expect("signed") -= 1;
    consortium.rejects(&physician, anchor("next-block"), RejectReason::KeyRevoked, false);
    consortium.rejects(
        &admin,
        Payload::RevokeMember { public_key: physician.public_key() },
        RejectReason::MemberInactive,
        true,
    );
    consortium.rejects(
        &admin,
        Payload::RevokeMember { public_key: key(88).public_key() },
        RejectReason::UnknownMember,
        true,
    );
    consortium.rejects(
        &admin,
        Payload::RevokeMember { public_key: key(21).public_key() },
        RejectReason::NotAuthorized,
        true,
    );
    consortium.rejects(
        &admin,
        Payload::RevokeMember { public_key: admin.public_key() },
        RejectReason::LastAdministrator,
        true,
    );
}

#[test]
fn a_rotated_key_hands_over_role_and_patient_id_and_stops_signing() {
    let mut consortium = Consortium::standard();
    let (patient, new_patient_key) = (key(41), key(43));
    let patient_id =
        consortium.chain.account(&patient.public_key()).expect("patient").patient_id.expect("has id");
    let rotation =
        Payload::RotateKey { old_key: patient.public_key(), new_key: new_patient_key.public_key() };
    assert_eq!(consortium.run_one(&patient, rotation), Outcome::Applied, "members rotate their own key");
    assert_eq!(consortium.chain.patient_key(&patient_id), Some(new_patient_key.public_key()));
    let replacement = consortium.chain.account(&new_patient_key.public_key()).expect("replacement");
    assert_eq!((replacement.role, replacement.next_nonce), (Role::Patient, 0));
    consortium.rejects(
        &patient,
        Payload::RotateKey { old_key: patient.public_key(), new_key: key(44).public_key() },
        RejectReason::KeyRotated,
        false,
    );

    // A nurse may not rotate a colleague's key; an administrator may, but not to a member key.
    let (nurse, physician, admin) = (key(12), key(11), key(10));
    consortium.rejects(
        &nurse,
        Payload::RotateKey { old_key: physician.public_key(), new_key: key(16).public_key() },
        RejectReason::NotAuthorized,
        true,
    );
    consortium.rejects(
        &admin,
        Payload::RotateKey { old_key: physician.public_key(), new_key: nurse.public_key() },
        RejectReason::MemberExists,
        true,
    );
    consortium.rejects(
        &admin,
        Payload::RotateKey { old_key: key(21).public_key(), new_key: key(16).public_key() },
        RejectReason::NotAuthorized,
        true,
    );
    assert_eq!(
        consortium.run_one(
            &admin,
            Payload::RotateKey { old_key: physician.public_key(), new_key: key(16).public_key() }
        ),
        Outcome::Applied
    );
    assert!(!consortium.is_active(&physician) && consortium.is_active(&key(16)));
}

/// Proposes with the hospital; returns the proposal id.
fn propose(consortium: &mut Consortium, action: GovernanceAction) -> TxId {
    let tx = consortium.tx(&key(10), Payload::Propose { action });
    assert_eq!(consortium.run(std::slice::from_ref(&tx)), vec![Outcome::Applied]);
    tx.id()
}

#[test]
fn a_proposal_passes_with_more_than_two_thirds_of_active_organisations() {
    let mut consortium = Consortium::standard();
    let clinic_admin = key(50);
    let proposal = propose(&mut consortium, admit("harbor-clinic", OrgKind::Clinic, None, &clinic_admin));
    // 1 of 4 approves: not enough. 2 of 4: 6 > 8 is false. 3 of 4 passes.
    consortium.rejects(&key(10), Payload::ExecuteProposal { proposal }, RejectReason::NotEnoughVotes, true);
    assert_eq!(consortium.run_one(&key(20), Payload::Vote { proposal, approve: true }), Outcome::Applied);
    consortium.rejects(
        &key(20),
        Payload::Vote { proposal, approve: false },
        RejectReason::AlreadyVoted,
        true,
    );
    consortium.rejects(
        &key(11),
        Payload::Vote { proposal, approve: true },
        RejectReason::NotAuthorized,
        true,
    );
    consortium.rejects(&key(10), Payload::ExecuteProposal { proposal }, RejectReason::NotEnoughVotes, true);
    assert_eq!(consortium.run_one(&key(30), Payload::Vote { proposal, approve: true }), Outcome::Applied);
    assert_eq!(consortium.run_one(&key(40), Payload::ExecuteProposal { proposal }), Outcome::Applied);

    let clinic = consortium.chain.registry().get(&org_id("harbor-clinic")).cloned().expect("admitted");
    assert!(clinic.active && clinic.kind == OrgKind::Clinic);
    assert_eq!(consortium.run_one(&clinic_admin, enrol(&key(51), Role::Physician)), Outcome::Applied);
    consortium.rejects(&key(10), Payload::ExecuteProposal { proposal }, RejectReason::ProposalClosed, true);
    consortium.rejects(
        &key(10),
        Payload::Vote { proposal: TxId(sha256(b"none")), approve: true },
        RejectReason::UnknownProposal,
        true,
    );
    let again = Payload::Propose { action: admit("harbor-clinic", OrgKind::Clinic, None, &key(52)) };
    consortium.rejects(&key(10), again, RejectReason::OrganizationExists, true);
}

#[test]
fn an_expired_proposal_can_no_longer_be_voted_or_executed() {
    let mut consortium = Consortium::standard();
    let proposal = propose(&mut consortium, admit("harbor-clinic", OrgKind::Clinic, None, &key(50)));
    consortium.time_ms += PROPOSAL_TTL_MS + 1;
    consortium.rejects(
        &key(20),
        Payload::Vote { proposal, approve: true },
        RejectReason::ProposalExpired,
        true,
    );
    consortium.rejects(&key(10), Payload::ExecuteProposal { proposal }, RejectReason::ProposalExpired, true);
    assert!(consortium.chain.registry().get(&org_id("harbor-clinic")).is_none());
}

fn pass(consortium: &mut Consortium, action: GovernanceAction) {
    let proposal = propose(consortium, action);
    for voter in [20, 30, 40] {
        assert_eq!(
            consortium.run_one(&key(voter), Payload::Vote { proposal, approve: true }),
            Outcome::Applied
        );
    }
    assert_eq!(consortium.run_one(&key(10), Payload::ExecuteProposal { proposal }), Outcome::Applied);
}

#[test]
fn a_suspended_organisation_cannot_sign_until_reinstated() {
    let mut consortium = Consortium::standard();
    let pharmacy = org_id("city-pharmacy");
    pass(&mut consortium, GovernanceAction::SuspendOrganization { organization: pharmacy.clone() });
    consortium.rejects(&key(30), anchor("suspended"), RejectReason::OrganizationSuspended, false);
    let suspend_again =
        Payload::Propose { action: GovernanceAction::SuspendOrganization { organization: pharmacy.clone() } };
    consortium.rejects(&key(10), suspend_again, RejectReason::OrganizationStatus, true);
    let unknown =
        Payload::Propose { action: GovernanceAction::SuspendOrganization { organization: org_id("nobody") } };
    consortium.rejects(&key(10), unknown, RejectReason::UnknownOrganization, true);
    // Three active organisations now: the hospital, lab and patient service must all approve.
    let proposal =
        propose(&mut consortium, GovernanceAction::ReinstateOrganization { organization: pharmacy });
    assert_eq!(consortium.run_one(&key(20), Payload::Vote { proposal, approve: true }), Outcome::Applied);
    consortium.rejects(&key(10), Payload::ExecuteProposal { proposal }, RejectReason::NotEnoughVotes, true);
    assert_eq!(consortium.run_one(&key(40), Payload::Vote { proposal, approve: true }), Outcome::Applied);
    assert_eq!(consortium.run_one(&key(10), Payload::ExecuteProposal { proposal }), Outcome::Applied);
    assert!(consortium.is_active(&key(30)));
}

#[test]
fn validator_changes_take_effect_after_the_configured_delay() {
    let mut consortium = Consortium::standard();
    let new_node = key(3);
    let admission = admit("harbor-clinic", OrgKind::Clinic, Some(node(3)), &key(50));
    pass(&mut consortium, admission);
    let executed_at = consortium.chain.height();
    let schedule = consortium.chain.validator_schedule();
    let (from_height, next) = schedule.next.clone().expect("a change is scheduled");
    assert_eq!(from_height, executed_at + 3, "delay of 3 blocks");
    assert!(next.contains(&new_node.public_key()) && !schedule.current.contains(&new_node.public_key()));
    assert_eq!((schedule.epoch, schedule.since_height), (0, 1), "still the genesis epoch");
    assert_eq!(consortium.chain.epoch_at(from_height - 1), 0);
    assert_eq!(consortium.chain.epoch_at(from_height), 1, "the change starts epoch 1");

    // The new node may not propose before its set takes effect, and may at that height.
    let early =
        Chain::build(&consortium.chain, &Vec::<VerifiedTx>::new(), consortium.time_ms, &consortium.proposer);
    let forged = medledger_types::Block::seal(
        medledger_types::BlockHeader { proposer: new_node.public_key(), ..early.block().header.clone() },
        Vec::new(),
        &new_node,
    );
    assert!(matches!(consortium.chain.validate(forged), Err(BlockError::UnknownProposer(_))));
    while consortium.chain.height() + 1 < from_height {
        consortium.run(&[]);
    }
    let proposer = std::mem::replace(&mut consortium.proposer, new_node);
    consortium.run(&[]);
    let promoted = consortium.chain.validator_schedule();
    assert_eq!(promoted.current, next);
    assert!(promoted.next.is_none());
    assert_eq!((promoted.epoch, promoted.since_height), (1, from_height));
    consortium.proposer = proposer;

    // Suspending the organisation takes its node out again, after the same delay.
    pass(&mut consortium, GovernanceAction::SuspendOrganization { organization: org_id("harbor-clinic") });
    let (_, after_suspension) = consortium.chain.validator_schedule().next.expect("scheduled");
    assert!(!after_suspension.contains(&key(3).public_key()));
}

#[test]
fn malformed_governance_actions_are_refused_at_proposal() {
    let mut consortium = Consortium::standard();
    let bad_parameters = GovernanceAction::ChangeParameters {
        parameters: Parameters { proposal_ttl_ms: 1, validator_change_delay_blocks: 3 },
    };
    consortium.rejects(
        &key(10),
        Payload::Propose { action: bad_parameters },
        RejectReason::InvalidAction,
        true,
    );
    let no_admins = GovernanceAction::AdmitOrganization {
        organization: Box::new(OrgSpec {
            id: org_id("empty-org"),
            kind: OrgKind::Clinic,
            node: None,
            administrators: vec![],
        }),
    };
    consortium.rejects(&key(10), Payload::Propose { action: no_admins }, RejectReason::InvalidAction, true);
    let member_as_admin = admit("copy-org", OrgKind::Clinic, None, &key(11));
    consortium.rejects(
        &key(10),
        Payload::Propose { action: member_as_admin },
        RejectReason::MemberExists,
        true,
    );
    let node_in_use = admit("copy-node", OrgKind::Clinic, Some(node(1)), &key(60));
    consortium.rejects(&key(10), Payload::Propose { action: node_in_use }, RejectReason::InvalidAction, true);
    consortium.rejects(
        &key(11),
        Payload::Propose { action: admit("x-org", OrgKind::Clinic, None, &key(61)) },
        RejectReason::NotAuthorized,
        true,
    );
}

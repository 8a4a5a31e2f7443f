//! Record anchors and treating relationships through the state machine: only a care
//! provider's node anchors, for its own organisation, versions in order, by an author whose
//! role writes that type; read access follows custodianship, referrals and the patient.

use medledger_crypto::{SigningKey, sha256};
use medledger_state::access::{AccessBasis, AccessDenied, Reader, authorize_read};
use medledger_state::{CareRelationship, Chain, VerifiedTx};
use medledger_types::{
    ChainId, Genesis, GenesisMember, GenesisOrganization, NodeAddress, NodeIdentity, OrgId, OrgKind, Outcome,
    Parameters, PatientId, Payload, RecordAnchor, RecordId, RejectReason, ResourceType, Role, TxBody,
};

const CHAIN: &str = "records-test";

fn key(seed: u8) -> SigningKey {
    SigningKey::from_seed(&[seed; 32])
}

fn org(id: &str) -> OrgId {
    OrgId::new(id).expect("org id")
}

/// A hospital (node 1: admin 10, physician 11, nurse 12), a laboratory (node 2: technician 21),
/// a pharmacy without a node (pharmacist 31) and a patient service (patient 41).
struct Ledger {
    chain: Chain,
    time_ms: u64,
}

const PATIENT: PatientId = PatientId([41; 16]);

impl Ledger {
    fn new() -> Self {
        let member = |seed, role| GenesisMember {
            public_key: key(seed).public_key(),
            role,
            patient_id: (role == Role::Patient).then_some(PATIENT),
        };
        let node = |seed| {
            Some(NodeIdentity {
                public_key: key(seed).public_key(),
                address: NodeAddress::new("127.0.0.1:9000").expect("address"),
            })
        };
        let organization =
            |id: &str, kind, node, members| GenesisOrganization { id: org(id), kind, node, members };
        let genesis = Genesis {
            chain_id: ChainId::new(CHAIN).expect("chain id"),
            genesis_time_ms: 1_000,
            parameters: Parameters { proposal_ttl_ms: 60_000, validator_change_delay_blocks: 3 },
            organizations: vec![
                organization(
                    "st-mary-hospital",
                    OrgKind::Hospital,
                    node(1),
                    vec![
                        member(10, Role::Administrator),
                        member(11, Role::Physician),
                        member(12, Role::Nurse),
                    ],
                ),
                organization(
                    "northside-lab",
                    OrgKind::Laboratory,
                    node(2),
                    vec![member(20, Role::Administrator), member(21, Role::LaboratoryTechnician)],
                ),
                organization(
                    "city-pharmacy",
                    OrgKind::Pharmacy,
                    None,
                    vec![member(30, Role::Administrator), member(31, Role::Pharmacist)],
                ),
                organization(
                    "patient-link",
                    OrgKind::PatientService,
                    None,
                    vec![member(40, Role::Administrator), member(41, Role::Patient)],
                ),
            ],
        };
        genesis.validate().expect("valid genesis");
        Self { chain: Chain::from_genesis(genesis), time_ms: 2_000 }
    }

    fn run(&mut self, signer: u8, payload: Payload) -> Outcome {
        let signer = key(signer);
        let nonce = self.chain.account(&signer.public_key()).expect("registered").next_nonce;
        let body = TxBody {
            chain_id: ChainId::new(CHAIN).expect("id"),
            signer: signer.public_key(),
            nonce,
            payload,
        };
        let tx = VerifiedTx::verify(body.sign(&signer)).expect("signed");
        let built = self.chain.build(&[tx], self.time_ms, &key(1));
        self.time_ms += 1_000;
        let replica = self.chain.validate(built.block().clone()).expect("a replica accepts the block");
        assert_eq!(replica.receipts(), built.receipts());
        let outcome = built.receipts()[0].outcome;
        self.chain.commit(built);
        outcome
    }

    fn read(
        &self,
        reader: u8,
        resource_type: ResourceType,
        record: RecordId,
    ) -> Result<AccessBasis, AccessDenied> {
        let (account, organization) = self.chain.active_member(&key(reader).public_key()).expect("active");
        let head = self.chain.record(resource_type, &record).expect("anchored");
        authorize_read(&self.chain, &Reader { account: &account, organization: &organization }, &head)
    }
}

fn anchor(
    resource_type: ResourceType,
    record: u8,
    version: u64,
    patient: Option<PatientId>,
    author: u8,
) -> Payload {
    Payload::Record(RecordAnchor {
        resource_type,
        record: RecordId([record; 16]),
        version,
        patient,
        ciphertext_digest: sha256(&[record, u8::try_from(version).expect("small")]),
        author: key(author).public_key(),
    })
}

fn patient_record() -> Payload {
    anchor(ResourceType::Patient, 41, 1, Some(PATIENT), 11)
}

#[test]
fn a_node_anchors_versions_in_order_for_its_own_organisation() {
    let mut ledger = Ledger::new();
    assert_eq!(ledger.run(1, patient_record()), Outcome::Applied);
    let observation = |version| anchor(ResourceType::Observation, 7, version, Some(PATIENT), 12);
    assert_eq!(ledger.run(1, observation(2)), Outcome::Rejected(RejectReason::RecordVersion { expected: 1 }));
    assert_eq!(ledger.run(1, observation(1)), Outcome::Applied);
    assert_eq!(ledger.run(1, observation(1)), Outcome::Rejected(RejectReason::RecordVersion { expected: 2 }));
    assert_eq!(ledger.run(1, observation(2)), Outcome::Applied);

    let head = ledger.chain.record(ResourceType::Observation, &RecordId([7; 16])).expect("head");
    assert_eq!((head.custodian.as_str(), head.patient, head.version), ("st-mary-hospital", Some(PATIENT), 2));
    let first = ledger.chain.record_version(ResourceType::Observation, &RecordId([7; 16]), 1).expect("v1");
    assert_eq!(first.ciphertext_digest, sha256(&[7, 1]));
    assert_eq!(first.node, key(1).public_key());
    assert!(matches!(
        ledger.chain.care_relationship(&PATIENT, &org("st-mary-hospital")),
        Some(CareRelationship::Custodian { .. })
    ));
    // The same logical id under another type is another record.
    assert!(ledger.chain.record(ResourceType::Condition, &RecordId([7; 16])).is_none());
}

#[test]
fn anchors_break_no_rule_of_custody_authorship_or_patient() {
    let mut ledger = Ledger::new();
    assert_eq!(ledger.run(1, patient_record()), Outcome::Applied);
    let rejected = |reason| Outcome::Rejected(reason);
    // Another organisation's node cannot update the hospital's record.
    let update = anchor(ResourceType::Patient, 41, 2, Some(PATIENT), 21);
    assert_eq!(ledger.run(2, update), rejected(RejectReason::RecordCustodian));
    // The author must belong to the node's organisation, and its role write that type.
    let foreign_author = anchor(ResourceType::Observation, 8, 1, Some(PATIENT), 21);
    assert_eq!(ledger.run(1, foreign_author), rejected(RejectReason::RecordAuthor));
    let nurse_prescribes = anchor(ResourceType::MedicationRequest, 8, 1, Some(PATIENT), 12);
    assert_eq!(ledger.run(1, nurse_prescribes), rejected(RejectReason::RecordAuthor));
    // Patient data needs a registered Patient record; directory data has no patient.
    let unknown_patient = anchor(ResourceType::Observation, 8, 1, Some(PatientId([9; 16])), 11);
    assert_eq!(ledger.run(1, unknown_patient), rejected(RejectReason::RecordPatient));
    let no_patient = anchor(ResourceType::Condition, 8, 1, None, 11);
    assert_eq!(ledger.run(1, no_patient), rejected(RejectReason::RecordPatient));
    let practitioner_with_patient = anchor(ResourceType::Practitioner, 8, 1, Some(PATIENT), 10);
    assert_eq!(ledger.run(1, practitioner_with_patient), rejected(RejectReason::RecordPatient));
    let patient_not_itself = anchor(ResourceType::Patient, 8, 1, Some(PATIENT), 11);
    assert_eq!(ledger.run(1, patient_not_itself), rejected(RejectReason::RecordPatient));
    // Members do not anchor records; nodes do nothing else.
    assert_eq!(
        ledger.run(11, anchor(ResourceType::Observation, 8, 1, Some(PATIENT), 11)),
        rejected(RejectReason::NotAuthorized)
    );
    let enrol =
        Payload::EnrolMember { public_key: key(99).public_key(), role: Role::Nurse, patient_id: None };
    assert_eq!(ledger.run(1, enrol), rejected(RejectReason::NotAuthorized));
    // A node key is not an administrator's to rotate or revoke.
    let rotate = Payload::RotateKey { old_key: key(1).public_key(), new_key: key(98).public_key() };
    assert_eq!(ledger.run(10, rotate), rejected(RejectReason::NodeKey));
    assert_eq!(
        ledger.run(10, Payload::RevokeMember { public_key: key(1).public_key() }),
        rejected(RejectReason::NodeKey)
    );
    // Nothing above left a trace of the refused records.
    assert!(ledger.chain.record(ResourceType::Observation, &RecordId([8; 16])).is_none());
    assert!(ledger.chain.care_relationship(&PATIENT, &org("northside-lab")).is_none());
}

#[test]
fn clinicians_read_what_their_organisation_holds_or_treats_and_patients_their_own() {
    let mut ledger = Ledger::new();
    assert_eq!(ledger.run(1, patient_record()), Outcome::Applied);
    assert_eq!(ledger.run(1, anchor(ResourceType::Condition, 5, 1, Some(PATIENT), 11)), Outcome::Applied);
    assert_eq!(ledger.run(1, anchor(ResourceType::Practitioner, 6, 1, None, 10)), Outcome::Applied);
    let condition = RecordId([5; 16]);

    assert_eq!(ledger.read(12, ResourceType::Condition, condition), Ok(AccessBasis::Custodian));
    assert_eq!(ledger.read(41, ResourceType::Condition, condition), Ok(AccessBasis::OwnRecord));
    assert_eq!(
        ledger.read(10, ResourceType::Condition, condition),
        Err(AccessDenied::Role(Role::Administrator))
    );
    assert_eq!(
        ledger.read(21, ResourceType::Condition, condition),
        Err(AccessDenied::NoTreatingRelationship)
    );
    assert_eq!(ledger.read(31, ResourceType::Practitioner, RecordId([6; 16])), Ok(AccessBasis::Directory));

    // The pharmacy cannot refer a patient it does not treat; the hospital refers to the lab.
    let refer = |organization: &str| Payload::Refer { patient: PATIENT, organization: org(organization) };
    assert_eq!(ledger.run(31, refer("northside-lab")), Outcome::Rejected(RejectReason::NoCareRelationship));
    assert_eq!(ledger.run(11, refer("patient-link")), Outcome::Rejected(RejectReason::OrganizationStatus));
    assert_eq!(ledger.run(11, refer("northside-lab")), Outcome::Applied);
    assert_eq!(ledger.read(21, ResourceType::Condition, condition), Ok(AccessBasis::TreatingRelationship));
    // The lab now treats the patient and may write its results (it holds them itself).
    assert_eq!(ledger.run(2, anchor(ResourceType::Observation, 9, 1, Some(PATIENT), 21)), Outcome::Applied);
    assert_eq!(
        ledger.read(11, ResourceType::Observation, RecordId([9; 16])),
        Ok(AccessBasis::TreatingRelationship)
    );
}

//! Property tests of the canonical encoding, through the crate's public API.
//!
//! Every value here is built from proptest-chosen seeds; a failure prints the shrunk input, and
//! `PROPTEST_RNG_SEED=<u64>` replays a whole run. Failure persistence files are off because CI
//! checkouts may be read-only. Case counts are kept small where a case signs or verifies,
//! because elliptic-curve arithmetic is slow in debug builds.

use std::fmt::Debug;

use medledger_crypto::{Digest, PublicKey, Signature, SigningKey};
use medledger_types::limits::{
    MAX_BLOCK_TXS, MAX_CHAIN_ID_BYTES, MAX_LABEL_BYTES, MAX_ORG_ADMINS, MAX_ORGANIZATIONS, MAX_TX_BYTES,
};
use medledger_types::{
    Block, BlockHeader, ChainId, Decode, DecodeError, Encode, Genesis, GenesisMember, GenesisOrganization,
    GovernanceAction, Label, NodeAddress, NodeIdentity, OrgId, OrgKind, OrgSpec, Outcome, Parameters,
    PatientId, Payload, Reader, Receipt, RecordAnchor, RecordId, RejectReason, ResourceType, Role,
    Transaction, TxBody, TxId,
};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

fn chain_id() -> impl Strategy<Value = ChainId> {
    "[a-z0-9._-]{1,64}".prop_map(|text| ChainId::new(text).expect("the pattern only yields valid chain ids"))
}

fn label() -> impl Strategy<Value = Label> {
    "[!-~]{1,128}".prop_map(|text| Label::new(text).expect("the pattern only yields valid labels"))
}

fn digest() -> impl Strategy<Value = Digest> {
    any::<[u8; 32]>().prop_map(Digest)
}

fn public_key() -> impl Strategy<Value = PublicKey> {
    any::<[u8; 32]>().prop_map(|seed| SigningKey::from_seed(&seed).public_key())
}

fn org_id() -> impl Strategy<Value = OrgId> {
    "[a-z0-9][a-z0-9-]{1,62}[a-z0-9]"
        .prop_map(|text| OrgId::new(text).expect("the pattern only yields valid ids"))
}

fn org_kind() -> impl Strategy<Value = OrgKind> {
    prop::sample::select(OrgKind::ALL)
}

fn role() -> impl Strategy<Value = Role> {
    prop::sample::select(Role::ALL)
}

fn patient_id() -> impl Strategy<Value = PatientId> {
    any::<[u8; 16]>().prop_map(PatientId)
}

fn node_identity() -> impl Strategy<Value = NodeIdentity> {
    (public_key(), "[a-z0-9.-]{1,40}", 1..=u16::MAX).prop_map(|(public_key, host, port)| NodeIdentity {
        public_key,
        address: NodeAddress::new(format!("{host}:{port}")).expect("host:port is a valid address"),
    })
}

/// Parameters as the codec sees them: bounds are a rule check, so any values.
fn parameters() -> impl Strategy<Value = Parameters> {
    (any::<u64>(), any::<u64>()).prop_map(|(proposal_ttl_ms, validator_change_delay_blocks)| Parameters {
        proposal_ttl_ms,
        validator_change_delay_blocks,
    })
}

fn org_spec() -> impl Strategy<Value = OrgSpec> {
    (
        org_id(),
        org_kind(),
        prop::option::of(node_identity()),
        prop::collection::vec(public_key(), 0..=MAX_ORG_ADMINS),
    )
        .prop_map(|(id, kind, node, administrators)| OrgSpec { id, kind, node, administrators })
}

fn governance_action() -> impl Strategy<Value = GovernanceAction> {
    prop_oneof![
        org_spec().prop_map(|organization| GovernanceAction::AdmitOrganization {
            organization: Box::new(organization)
        }),
        org_id().prop_map(|organization| GovernanceAction::SuspendOrganization { organization }),
        org_id().prop_map(|organization| GovernanceAction::ReinstateOrganization { organization }),
        parameters().prop_map(|parameters| GovernanceAction::ChangeParameters { parameters }),
    ]
}

fn anchor() -> impl Strategy<Value = Payload> {
    (label(), digest()).prop_map(|(label, digest)| Payload::Anchor { label, digest })
}

/// Enrolments as the codec sees them: whether a role takes a patient id is a rule check.
fn enrol_member() -> impl Strategy<Value = Payload> {
    (public_key(), role(), prop::option::of(patient_id()))
        .prop_map(|(public_key, role, patient_id)| Payload::EnrolMember { public_key, role, patient_id })
}

fn vote() -> impl Strategy<Value = Payload> {
    (digest(), any::<bool>())
        .prop_map(|(proposal, approve)| Payload::Vote { proposal: TxId(proposal), approve })
}

/// Record anchors as the codec sees them: which types carry a patient is a rule check.
fn record_anchor() -> impl Strategy<Value = RecordAnchor> {
    (
        prop::sample::select(ResourceType::ALL),
        any::<[u8; 16]>(),
        any::<u64>(),
        prop::option::of(patient_id()),
        digest(),
        public_key(),
    )
        .prop_map(|(resource_type, record, version, patient, ciphertext_digest, author)| RecordAnchor {
            resource_type,
            record: RecordId(record),
            version,
            patient,
            ciphertext_digest,
            author,
        })
}

/// Every payload kind. The match makes this fail to compile when a kind is added.
fn payload() -> impl Strategy<Value = Payload> {
    let _every_kind_is_generated = |payload: &Payload| match payload {
        Payload::Anchor { .. }
        | Payload::EnrolMember { .. }
        | Payload::RotateKey { .. }
        | Payload::RevokeMember { .. }
        | Payload::Propose { .. }
        | Payload::Vote { .. }
        | Payload::ExecuteProposal { .. }
        | Payload::Record(_)
        | Payload::Refer { .. } => {}
    };
    prop_oneof![
        anchor(),
        enrol_member(),
        (public_key(), public_key()).prop_map(|(old_key, new_key)| Payload::RotateKey { old_key, new_key }),
        public_key().prop_map(|public_key| Payload::RevokeMember { public_key }),
        governance_action().prop_map(|action| Payload::Propose { action }),
        vote(),
        digest().prop_map(|proposal| Payload::ExecuteProposal { proposal: TxId(proposal) }),
        record_anchor().prop_map(Payload::Record),
        (patient_id(), org_id()).prop_map(|(patient, organization)| Payload::Refer { patient, organization }),
    ]
}

/// A transaction signed by the key derived from a proptest-chosen seed.
fn signed(payload: impl Strategy<Value = Payload>) -> impl Strategy<Value = Transaction> {
    (any::<[u8; 32]>(), chain_id(), any::<u64>(), payload).prop_map(|(seed, chain_id, nonce, payload)| {
        let key = SigningKey::from_seed(&seed);
        TxBody { chain_id, signer: key.public_key(), nonce, payload }.sign(&key)
    })
}

fn transaction() -> impl Strategy<Value = Transaction> {
    signed(payload())
}

fn block_header() -> impl Strategy<Value = BlockHeader> {
    (
        (any::<u64>(), digest(), any::<u64>(), public_key(), any::<u32>()),
        (digest(), digest(), digest(), digest()),
    )
        .prop_map(
            |(
                (height, parent_hash, timestamp_ms, proposer, tx_count),
                (tx_root, receipts_root, state_root, history_root),
            )| BlockHeader {
                height,
                parent_hash,
                timestamp_ms,
                proposer,
                tx_count,
                tx_root,
                receipts_root,
                state_root,
                history_root,
            },
        )
}

/// A sealed block of `tx_counts` signed transactions.
fn block(tx_counts: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = Block> {
    (any::<[u8; 32]>(), block_header(), prop::collection::vec(transaction(), tx_counts)).prop_map(
        |(proposer_seed, mut header, transactions)| {
            let proposer = SigningKey::from_seed(&proposer_seed);
            header.proposer = proposer.public_key();
            header.tx_count = u32::try_from(transactions.len()).expect("at most a few dozen transactions");
            Block::seal(header, transactions, &proposer)
        },
    )
}

fn reject_reason() -> impl Strategy<Value = RejectReason> {
    (any::<u64>(), any::<prop::sample::Index>()).prop_map(|(expected, index)| {
        let reasons = every_reject_reason(expected);
        reasons[index.index(reasons.len())]
    })
}

fn receipt() -> impl Strategy<Value = Receipt> {
    let outcome = prop_oneof![Just(Outcome::Applied), reject_reason().prop_map(Outcome::Rejected)];
    (digest(), outcome).prop_map(|(tx_id, outcome)| Receipt { tx_id: TxId(tx_id), outcome })
}

/// Genesis values as the codec sees them: `Genesis::validate` is a separate rule check, so
/// empty and duplicate lists are generated too.
fn genesis(organizations: std::ops::Range<usize>) -> impl Strategy<Value = Genesis> {
    let member = (public_key(), role(), prop::option::of(patient_id()))
        .prop_map(|(public_key, role, patient_id)| GenesisMember { public_key, role, patient_id });
    let organization =
        (org_id(), org_kind(), prop::option::of(node_identity()), prop::collection::vec(member, 0..4))
            .prop_map(|(id, kind, node, members)| GenesisOrganization { id, kind, node, members });
    (chain_id(), any::<u64>(), parameters(), prop::collection::vec(organization, organizations)).prop_map(
        |(chain_id, genesis_time_ms, parameters, organizations)| Genesis {
            chain_id,
            genesis_time_ms,
            parameters,
            organizations,
        },
    )
}

fn suffix() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 1..64)
}

/// Every reject reason, once. The match makes this fail to compile when a variant is added.
fn every_reject_reason(expected: u64) -> Vec<RejectReason> {
    use RejectReason as R;
    let reasons = vec![
        R::UnknownSigner,
        R::NonceReplayed { expected },
        R::NonceGap { expected },
        R::NotAuthorized,
        R::MemberExists,
        R::AnchorExists,
        R::WrongChain,
        R::KeyRevoked,
        R::KeyRotated,
        R::OrganizationSuspended,
        R::RoleNotAllowed,
        R::PatientIdMismatch,
        R::PatientIdExists,
        R::UnknownMember,
        R::MemberInactive,
        R::LastAdministrator,
        R::UnknownOrganization,
        R::OrganizationExists,
        R::OrganizationStatus,
        R::UnknownProposal,
        R::ProposalExpired,
        R::ProposalClosed,
        R::AlreadyVoted,
        R::NotEnoughVotes,
        R::InvalidAction,
        R::RegistryFull,
        R::NoValidatorLeft,
        R::RecordVersion { expected: 7 },
        R::RecordCustodian,
        R::RecordPatient,
        R::RecordAuthor,
        R::NodeKey,
        R::NoCareRelationship,
    ];
    for reason in &reasons {
        match reason {
            R::UnknownSigner
            | R::NonceReplayed { .. }
            | R::NonceGap { .. }
            | R::NotAuthorized
            | R::MemberExists
            | R::AnchorExists
            | R::WrongChain
            | R::KeyRevoked
            | R::KeyRotated
            | R::OrganizationSuspended
            | R::RoleNotAllowed
            | R::PatientIdMismatch
            | R::PatientIdExists
            | R::UnknownMember
            | R::MemberInactive
            | R::LastAdministrator
            | R::UnknownOrganization
            | R::OrganizationExists
            | R::OrganizationStatus
            | R::UnknownProposal
            | R::ProposalExpired
            | R::ProposalClosed
            | R::AlreadyVoted
            | R::NotEnoughVotes
            | R::InvalidAction
            | R::RegistryFull
            | R::NoValidatorLeft
            | R::RecordVersion { .. }
            | R::RecordCustodian
            | R::RecordPatient
            | R::RecordAuthor
            | R::NodeKey
            | R::NoCareRelationship => {}
        }
    }
    reasons
}

// ---------------------------------------------------------------------------------------------
// Checks shared by every encoded kind
// ---------------------------------------------------------------------------------------------

/// `decode(encode(value)) == value` and `encode(decode(bytes)) == bytes`; returns the bytes.
fn check_round_trip<T>(value: &T) -> Result<Vec<u8>, TestCaseError>
where
    T: Encode + Decode + PartialEq + Debug,
{
    let bytes = value.encode();
    prop_assert!(
        bytes.len() <= T::MAX_ENCODED_BYTES,
        "{} of {} bytes is over its own limit",
        T::NAME,
        bytes.len()
    );
    let decoded = T::decode(&bytes).map_err(|error| TestCaseError::fail(format!("{}: {error}", T::NAME)))?;
    prop_assert_eq!(&decoded, value);
    prop_assert_eq!(decoded.encode(), bytes.clone());
    Ok(bytes)
}

/// Every strict prefix of a canonical encoding is reported as truncated.
fn check_every_prefix_is_truncated<T: Decode + Debug>(bytes: &[u8]) -> Result<(), TestCaseError> {
    for length in 0..bytes.len() {
        let result = T::decode(&bytes[..length]);
        prop_assert!(
            matches!(result, Err(DecodeError::Truncated { .. })),
            "{length}-byte prefix of a {}-byte {} gave {result:?}",
            bytes.len(),
            T::NAME
        );
    }
    Ok(())
}

/// A canonical encoding followed by `suffix` is rejected: as trailing bytes, or as oversize
/// input when the suffix pushes it past the kind's limit. A reader positioned after the value
/// always reports the trailing bytes.
fn check_suffix_is_rejected<T: Decode + Debug + PartialEq>(
    bytes: &[u8],
    suffix: &[u8],
) -> Result<(), TestCaseError> {
    prop_assert!(!suffix.is_empty());
    let extended = [bytes, suffix].concat();
    let expected = if extended.len() <= T::MAX_ENCODED_BYTES {
        DecodeError::TrailingBytes { what: T::NAME, count: suffix.len() }
    } else {
        DecodeError::TooLong { what: T::NAME, length: extended.len(), max: T::MAX_ENCODED_BYTES }
    };
    prop_assert_eq!(T::decode(&extended), Err(expected));
    let mut reader = Reader::new(&extended);
    T::decode_from(&mut reader).map_err(|error| TestCaseError::fail(format!("{}: {error}", T::NAME)))?;
    prop_assert_eq!(
        reader.finish(T::NAME),
        Err(DecodeError::TrailingBytes { what: T::NAME, count: suffix.len() })
    );
    Ok(())
}

/// Bytes that decode re-encode to themselves: there is no second encoding of any value.
fn check_decodes_canonically_or_not_at_all<T: Encode + Decode>(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(value) = T::decode(bytes) {
        prop_assert_eq!(value.encode(), bytes.to_vec(), "accepted a non-canonical {}", T::NAME);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Byte positions in a transaction's canonical encoding
// ---------------------------------------------------------------------------------------------

const LENGTH_PREFIX_BYTES: usize = 4;
const NONCE_BYTES: usize = 8;
const TAG_BYTES: usize = 1;
/// Two u64 parameters.
const PARAMETERS_BYTES: usize = 16;

fn signer_offset(body: &TxBody) -> usize {
    LENGTH_PREFIX_BYTES + body.chain_id.as_str().len()
}

fn payload_tag_offset(body: &TxBody) -> usize {
    signer_offset(body) + PublicKey::LEN + NONCE_BYTES
}

/// Offset of the first payload field: Anchor's label length prefix, EnrolMember's key,
/// Vote's proposal id.
fn payload_field_offset(body: &TxBody) -> usize {
    payload_tag_offset(body) + TAG_BYTES
}

/// Where the transaction count prefix sits in a block: right after the fixed-size header.
const BLOCK_TX_LIST_OFFSET: usize = BlockHeader::MAX_ENCODED_BYTES;
/// Where `tx_count` sits in a header: after height, parent hash, timestamp and proposer.
const HEADER_TX_COUNT_OFFSET: usize = 8 + 32 + 8 + 32;

/// `bytes` with the length-prefixed string at `offset` replaced by `raw`.
fn splice_string(bytes: &[u8], offset: usize, raw: &[u8]) -> Vec<u8> {
    let prefix: [u8; 4] = bytes[offset..offset + 4].try_into().expect("four bytes");
    let old_length = usize::try_from(u32::from_be_bytes(prefix)).expect("u32 fits in usize");
    let new_length = u32::try_from(raw.len()).expect("test strings are short");
    [&bytes[..offset], &new_length.to_be_bytes()[..], raw, &bytes[offset + 4 + old_length..]].concat()
}

fn as_u32(limit: usize) -> u32 {
    u32::try_from(limit).expect("limits fit in a u32 length prefix")
}

fn set_u32(bytes: &mut [u8], offset: usize, value: u32) {
    bytes[offset..offset + 4].copy_from_slice(&value.to_be_bytes());
}

fn anchor_transaction(seed: u8) -> Transaction {
    let key = SigningKey::from_seed(&[seed; 32]);
    TxBody {
        chain_id: ChainId::new("medledger-test").expect("valid chain id"),
        signer: key.public_key(),
        nonce: u64::from(seed),
        payload: Payload::Anchor {
            label: Label::new(format!("lab-report/2026/{seed:06}")).expect("valid label"),
            digest: Digest([seed; 32]),
        },
    }
    .sign(&key)
}

fn public_key_from_hex(text: &str) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(text, &mut bytes).expect("32 bytes of hex");
    bytes
}

// ---------------------------------------------------------------------------------------------
// Round trips, truncation, trailing bytes
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn transactions_of_every_kind_round_trip(tx in transaction()) {
        check_round_trip(&tx)?;
        check_round_trip(&tx.body)?;
        prop_assert!(tx.verify_signature().is_ok(), "a freshly signed transaction must verify");
    }

    #[test]
    fn block_headers_round_trip(header in block_header()) {
        let bytes = check_round_trip(&header)?;
        prop_assert_eq!(bytes.len(), BlockHeader::MAX_ENCODED_BYTES, "headers have a fixed size");
    }

    #[test]
    fn receipts_round_trip(receipts in prop::collection::vec(receipt(), 0..50)) {
        for receipt in &receipts {
            check_round_trip(receipt)?;
        }
        check_round_trip(&receipts)?;
    }

    #[test]
    fn genesis_round_trips(genesis in genesis(0..6)) {
        check_round_trip(&genesis)?;
    }

    #[test]
    fn strict_prefixes_of_transactions_are_truncated(tx in transaction()) {
        check_every_prefix_is_truncated::<Transaction>(&tx.encode())?;
        check_every_prefix_is_truncated::<TxBody>(&tx.body.encode())?;
    }

    #[test]
    fn strict_prefixes_of_small_values_are_truncated(
        header in block_header(),
        receipts in prop::collection::vec(receipt(), 0..4),
        genesis in genesis(0..3),
    ) {
        check_every_prefix_is_truncated::<BlockHeader>(&header.encode())?;
        check_every_prefix_is_truncated::<Vec<Receipt>>(&receipts.encode())?;
        check_every_prefix_is_truncated::<Genesis>(&genesis.encode())?;
    }

    #[test]
    fn suffixes_are_trailing_bytes(
        tx in transaction(),
        header in block_header(),
        receipts in prop::collection::vec(receipt(), 0..20),
        genesis in genesis(0..6),
        suffix in suffix(),
    ) {
        check_suffix_is_rejected::<Transaction>(&tx.encode(), &suffix)?;
        check_suffix_is_rejected::<TxBody>(&tx.body.encode(), &suffix)?;
        check_suffix_is_rejected::<BlockHeader>(&header.encode(), &suffix)?;
        if let Some(receipt) = receipts.first() {
            check_suffix_is_rejected::<Receipt>(&receipt.encode(), &suffix)?;
        }
        check_suffix_is_rejected::<Vec<Receipt>>(&receipts.encode(), &suffix)?;
        check_suffix_is_rejected::<Genesis>(&genesis.encode(), &suffix)?;
    }
}

proptest! {
    #![proptest_config(config(32))]

    #[test]
    fn blocks_round_trip(block in block(0..=20), suffix in suffix()) {
        let bytes = check_round_trip(&block)?;
        check_suffix_is_rejected::<Block>(&bytes, &suffix)?;
    }

    #[test]
    fn strict_prefixes_of_small_blocks_are_truncated(block in block(0..=3)) {
        check_every_prefix_is_truncated::<Block>(&block.encode())?;
    }

    #[test]
    fn overwritten_bytes_decode_canonically_or_not_at_all(
        block in block(0..=4),
        receipts in prop::collection::vec(receipt(), 1..20),
        genesis in genesis(1..6),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut encodings = [block.encode(), receipts.encode(), genesis.encode()];
        for bytes in &mut encodings {
            for (index, value) in &edits {
                let position = index.index(bytes.len());
                bytes[position] = *value;
            }
        }
        check_decodes_canonically_or_not_at_all::<Block>(&encodings[0])?;
        check_decodes_canonically_or_not_at_all::<Vec<Receipt>>(&encodings[1])?;
        check_decodes_canonically_or_not_at_all::<Genesis>(&encodings[2])?;
    }
}

#[test]
fn every_reject_reason_round_trips_with_its_own_tag() {
    let tx_id = TxId(Digest([9; 32]));
    let mut receipts = vec![Receipt { tx_id, outcome: Outcome::Applied }];
    for expected in [0, 1, u64::MAX] {
        receipts.extend(
            every_reject_reason(expected)
                .into_iter()
                .map(|reason| Receipt { tx_id, outcome: Outcome::Rejected(reason) }),
        );
    }
    let mut outcome_tags = std::collections::BTreeSet::new();
    for receipt in &receipts {
        let bytes = receipt.encode();
        assert_eq!(Receipt::decode(&bytes).as_ref(), Ok(receipt));
        outcome_tags.insert(bytes[Digest::LEN]);
    }
    assert_eq!(outcome_tags.len(), 1 + every_reject_reason(0).len(), "each outcome has its own tag");
    assert_eq!(Vec::<Receipt>::decode(&receipts.encode()), Ok(receipts));
}

// ---------------------------------------------------------------------------------------------
// Non-canonical and oversize forms
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn approve_flag_other_than_0_or_1_is_rejected(tx in signed(vote()), flag in 2u8..=255) {
        let expected = DecodeError::NonCanonical { what: "approve flag", reason: "boolean byte is not 0 or 1" };
        let mut bytes = tx.encode();
        bytes[payload_field_offset(&tx.body) + Digest::LEN] = flag;
        prop_assert_eq!(Transaction::decode(&bytes).err(), Some(expected));
    }

    #[test]
    fn option_tags_other_than_0_or_1_are_rejected(
        tx in signed(enrol_member()),
        genesis in genesis(1..4),
        tag in 2u8..=255,
    ) {
        // EnrolMember: key, role byte, then the patient id's option tag.
        let mut bytes = tx.encode();
        bytes[payload_field_offset(&tx.body) + PublicKey::LEN + TAG_BYTES] = tag;
        prop_assert_eq!(Transaction::decode(&bytes).err(), Some(DecodeError::UnknownTag { what: "patient id", tag }));

        // Genesis: chain id, time, parameters, organisation count, first id, kind, node option tag.
        let first = &genesis.organizations[0];
        let node_tag = LENGTH_PREFIX_BYTES + genesis.chain_id.as_str().len() + 8 + PARAMETERS_BYTES
            + LENGTH_PREFIX_BYTES + LENGTH_PREFIX_BYTES + first.id.as_str().len() + TAG_BYTES;
        let mut bytes = genesis.encode();
        bytes[node_tag] = tag;
        prop_assert_eq!(Genesis::decode(&bytes).err(), Some(DecodeError::UnknownTag { what: "node", tag }));
    }

    #[test]
    fn unknown_role_and_kind_tags_are_rejected(
        tx in signed(enrol_member()),
        genesis in genesis(1..4),
        tag in any::<u8>().prop_filter("unknown to both", |tag| {
            Role::ALL.iter().all(|role| role.tag_byte() != *tag)
                && OrgKind::ALL.iter().all(|kind| kind.tag_byte() != *tag)
        }),
    ) {
        let mut bytes = tx.encode();
        bytes[payload_field_offset(&tx.body) + PublicKey::LEN] = tag;
        prop_assert_eq!(Transaction::decode(&bytes).err(), Some(DecodeError::UnknownTag { what: "role", tag }));

        let first = &genesis.organizations[0];
        let kind = LENGTH_PREFIX_BYTES + genesis.chain_id.as_str().len() + 8 + PARAMETERS_BYTES
            + LENGTH_PREFIX_BYTES + LENGTH_PREFIX_BYTES + first.id.as_str().len();
        let mut bytes = genesis.encode();
        bytes[kind] = tag;
        prop_assert_eq!(Genesis::decode(&bytes).err(), Some(DecodeError::UnknownTag { what: "organisation kind", tag }));
    }

    #[test]
    fn unknown_governance_action_tag_is_rejected(
        action in governance_action(),
        tag in any::<u8>().prop_filter("unknown", |tag| !(1..=4).contains(tag)),
    ) {
        let tx = TxBody {
            chain_id: ChainId::new("medledger-test").expect("valid chain id"),
            signer: SigningKey::from_seed(&[1; 32]).public_key(),
            nonce: 0,
            payload: Payload::Propose { action },
        };
        let mut bytes = tx.encode();
        bytes[payload_field_offset(&tx)] = tag;
        prop_assert_eq!(TxBody::decode(&bytes).err(), Some(DecodeError::UnknownTag { what: "governance action", tag }));
    }

    #[test]
    fn unknown_payload_tag_is_rejected(tx in transaction(), tag in any::<u8>().prop_filter("unknown", |tag| !(2..=10).contains(tag))) {
        let mut bytes = tx.encode();
        bytes[payload_tag_offset(&tx.body)] = tag;
        prop_assert_eq!(Transaction::decode(&bytes), Err(DecodeError::UnknownTag { what: "transaction kind", tag }));
    }

    #[test]
    fn unknown_receipt_outcome_tag_is_rejected(receipts in prop::collection::vec(receipt(), 1..10), index in any::<prop::sample::Index>(), tag in 34u8..=255) {
        let mut bytes = receipts[0].encode();
        bytes[Digest::LEN] = tag;
        let expected = DecodeError::UnknownTag { what: "receipt outcome", tag };
        prop_assert_eq!(Receipt::decode(&bytes).err(), Some(expected.clone()));

        let target = index.index(receipts.len());
        let offset = LENGTH_PREFIX_BYTES + receipts[..target].iter().map(|receipt| receipt.encode().len()).sum::<usize>() + Digest::LEN;
        let mut bytes = receipts.encode();
        bytes[offset] = tag;
        prop_assert_eq!(Vec::<Receipt>::decode(&bytes).err(), Some(expected));
    }

    #[test]
    fn length_prefixes_over_the_limit_are_too_long(
        tx in signed(anchor()),
        label_length in (as_u32(MAX_LABEL_BYTES) + 1)..=u32::MAX,
        chain_id_length in (as_u32(MAX_CHAIN_ID_BYTES) + 1)..=u32::MAX,
    ) {
        let mut bytes = tx.encode();
        set_u32(&mut bytes, payload_field_offset(&tx.body), label_length);
        let length = usize::try_from(label_length).expect("u32 fits in usize");
        prop_assert_eq!(Transaction::decode(&bytes), Err(DecodeError::TooLong { what: "label", length, max: MAX_LABEL_BYTES }));

        let mut bytes = tx.encode();
        set_u32(&mut bytes, 0, chain_id_length);
        let length = usize::try_from(chain_id_length).expect("u32 fits in usize");
        prop_assert_eq!(Transaction::decode(&bytes), Err(DecodeError::TooLong { what: "chain id", length, max: MAX_CHAIN_ID_BYTES }));
    }

    #[test]
    fn labels_and_chain_ids_with_disallowed_bytes_are_rejected(
        tx in signed(anchor()),
        position in any::<prop::sample::Index>(),
        byte in any::<u8>().prop_filter("disallowed in labels", |byte| !byte.is_ascii_graphic()),
        chain_byte in any::<u8>().prop_filter("disallowed in chain ids", |byte| {
            !(byte.is_ascii_lowercase() || byte.is_ascii_digit() || matches!(byte, b'-' | b'.' | b'_'))
        }),
    ) {
        let Payload::Anchor { label, .. } = &tx.body.payload else { unreachable!("anchor strategy") };
        let mut raw = label.as_str().as_bytes().to_vec();
        let index = position.index(raw.len());
        raw[index] = byte;
        let bytes = splice_string(&tx.encode(), payload_field_offset(&tx.body), &raw);
        let result = Transaction::decode(&bytes);
        prop_assert!(matches!(result, Err(DecodeError::Invalid { what: "label", .. })), "label {:?}: {:?}", raw, result);

        let mut raw = tx.body.chain_id.as_str().as_bytes().to_vec();
        let index = position.index(raw.len());
        raw[index] = chain_byte;
        let bytes = splice_string(&tx.encode(), 0, &raw);
        let result = Transaction::decode(&bytes);
        prop_assert!(matches!(result, Err(DecodeError::Invalid { what: "chain id", .. })), "chain id {:?}: {:?}", raw, result);
    }

    #[test]
    fn block_tx_count_disagreeing_with_the_header_is_rejected(
        block in block(0..=3),
        other_count in 0..=as_u32(MAX_BLOCK_TXS),
        over_limit in (as_u32(MAX_BLOCK_TXS) + 1)..=u32::MAX,
    ) {
        prop_assume!(other_count != block.header.tx_count);
        let invalid_list = |result| matches!(result, Err(DecodeError::Invalid { what: "transaction list", .. }));
        // The list prefix disagrees with the header ...
        let mut bytes = block.encode();
        set_u32(&mut bytes, BLOCK_TX_LIST_OFFSET, other_count);
        prop_assert!(invalid_list(Block::decode(&bytes)));
        // ... or the header disagrees with the list.
        let mut bytes = block.encode();
        set_u32(&mut bytes, HEADER_TX_COUNT_OFFSET, other_count);
        prop_assert!(invalid_list(Block::decode(&bytes)));
        // A list prefix over the limit is refused before anything else.
        let mut bytes = block.encode();
        set_u32(&mut bytes, BLOCK_TX_LIST_OFFSET, over_limit);
        let length = usize::try_from(over_limit).expect("u32 fits in usize");
        prop_assert_eq!(Block::decode(&bytes), Err(DecodeError::TooLong { what: "transaction list", length, max: MAX_BLOCK_TXS }));
    }

    #[test]
    fn any_signer_bytes_decode_to_themselves_or_fail(tx in signed(anchor()), signer in any::<[u8; 32]>()) {
        let mut bytes = tx.encode();
        let offset = signer_offset(&tx.body);
        bytes[offset..offset + PublicKey::LEN].copy_from_slice(&signer);
        match Transaction::decode(&bytes) {
            Ok(decoded) => {
                prop_assert_eq!(decoded.body.signer.as_bytes(), &signer);
                prop_assert_eq!(decoded.encode(), bytes);
            }
            Err(error) => prop_assert!(matches!(error, DecodeError::Invalid { what: "signer", .. }), "{error:?}"),
        }
    }
}

#[test]
fn list_counts_over_the_limit_are_too_long() {
    let key = SigningKey::from_seed(&[1; 32]);
    let genesis = Genesis::single_hospital(
        ChainId::new("medledger-test").expect("valid chain id"),
        0,
        key.public_key(),
        SigningKey::from_seed(&[2; 32]).public_key(),
        [],
    );
    let organization_list_offset =
        LENGTH_PREFIX_BYTES + genesis.chain_id.as_str().len() + 8 + PARAMETERS_BYTES;
    let mut bytes = genesis.encode();
    set_u32(&mut bytes, organization_list_offset, u32::try_from(MAX_ORGANIZATIONS + 1).expect("small"));
    assert_eq!(
        Genesis::decode(&bytes),
        Err(DecodeError::TooLong {
            what: "organisation list",
            length: MAX_ORGANIZATIONS + 1,
            max: MAX_ORGANIZATIONS
        })
    );

    let mut bytes = vec![Receipt { tx_id: TxId(Digest::ZERO), outcome: Outcome::Applied }].encode();
    set_u32(&mut bytes, 0, u32::MAX);
    assert!(matches!(Vec::<Receipt>::decode(&bytes), Err(DecodeError::TooLong { what: "receipt list", .. })));

    // A transaction inside a block carries its own length prefix, bounded by MAX_TX_BYTES.
    let block = Block::seal(
        BlockHeader {
            height: 1,
            parent_hash: Digest::ZERO,
            timestamp_ms: 0,
            proposer: key.public_key(),
            tx_count: 1,
            tx_root: Digest::ZERO,
            receipts_root: Digest::ZERO,
            state_root: Digest::ZERO,
            history_root: Digest::ZERO,
        },
        vec![anchor_transaction(2)],
        &key,
    );
    let mut bytes = block.encode();
    set_u32(
        &mut bytes,
        BLOCK_TX_LIST_OFFSET + LENGTH_PREFIX_BYTES,
        u32::try_from(MAX_TX_BYTES + 1).expect("small"),
    );
    assert_eq!(
        Block::decode(&bytes),
        Err(DecodeError::TooLong { what: "transaction", length: MAX_TX_BYTES + 1, max: MAX_TX_BYTES })
    );
}

/// Input one byte over a kind's limit is refused before parsing; input at the limit is parsed.
fn check_size_limit<T: Decode + Debug>() {
    let max = T::MAX_ENCODED_BYTES;
    let oversize = vec![0u8; max + 1];
    assert_eq!(
        T::decode(&oversize).err(),
        Some(DecodeError::TooLong { what: T::NAME, length: max + 1, max })
    );
    let at_limit = vec![0u8; max];
    assert!(
        !matches!(T::decode(&at_limit), Err(DecodeError::TooLong { what, .. }) if what == T::NAME),
        "{} of exactly {max} bytes must not be refused as oversize",
        T::NAME
    );
}

#[test]
fn input_over_the_kind_limit_is_too_long() {
    check_size_limit::<Transaction>();
    check_size_limit::<TxBody>();
    check_size_limit::<BlockHeader>();
    check_size_limit::<Block>();
    check_size_limit::<Receipt>();
    check_size_limit::<Vec<Receipt>>();
    check_size_limit::<Genesis>();
}

#[test]
fn labels_with_invalid_utf8_non_ascii_or_no_bytes_are_rejected() {
    let tx = anchor_transaction(3);
    let label_offset = payload_field_offset(&tx.body);
    let bytes = tx.encode();
    let invalid: [&[u8]; 9] = [
        b"\xff",
        b"lab\x80report",  // lone continuation byte
        b"\xc0\xaf",       // overlong '/'
        b"\xed\xa0\x80",   // UTF-16 surrogate
        b"lab\xe2\x82",    // sequence cut short
        "café".as_bytes(), // valid UTF-8, but not ASCII
        b"lab report",     // space
        b"lab\x7freport",  // DEL
        b"",               // empty
    ];
    for raw in invalid {
        let result = Transaction::decode(&splice_string(&bytes, label_offset, raw));
        assert!(
            matches!(result, Err(DecodeError::Invalid { what: "label", .. })),
            "label {raw:?} gave {result:?}"
        );
    }
    let longest = "x".repeat(MAX_LABEL_BYTES);
    let spliced = splice_string(&bytes, label_offset, longest.as_bytes());
    let decoded = Transaction::decode(&spliced).expect("a label of exactly the maximum length is valid");
    assert!(matches!(&decoded.body.payload, Payload::Anchor { label, .. } if label.as_str() == longest));
}

#[test]
fn invalid_and_small_order_public_keys_are_rejected() {
    // Encodings of the eight small-order points, including non-canonical ones ("negative
    // zero" x, y ≥ 2^255 − 19). The identity is 0x01 followed by 31 zero bytes.
    let small_order = [
        "0100000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000080",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000080",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    ];
    // y = 2 is not the y-coordinate of any curve point.
    let not_a_point = "0200000000000000000000000000000000000000000000000000000000000000";
    let key = SigningKey::from_seed(&[4; 32]);
    for text in small_order.iter().chain([&not_a_point]) {
        let bytes = public_key_from_hex(text);
        assert!(PublicKey::from_bytes(&bytes).is_err(), "{text} must not be a usable key");
        let tx = TxBody {
            chain_id: ChainId::new("medledger-test").expect("valid chain id"),
            signer: key.public_key(),
            nonce: 0,
            payload: Payload::EnrolMember {
                public_key: key.public_key(),
                role: Role::Nurse,
                patient_id: None,
            },
        }
        .sign(&key);
        let mut encoded = tx.encode();
        let signer = signer_offset(&tx.body);
        encoded[signer..signer + PublicKey::LEN].copy_from_slice(&bytes);
        assert!(
            matches!(Transaction::decode(&encoded), Err(DecodeError::Invalid { what: "signer", .. })),
            "signer {text}"
        );
        let mut encoded = tx.encode();
        let member = payload_tag_offset(&tx.body) + TAG_BYTES;
        encoded[member..member + PublicKey::LEN].copy_from_slice(&bytes);
        assert!(
            matches!(
                Transaction::decode(&encoded),
                Err(DecodeError::Invalid { what: "member public key", .. })
            ),
            "member key {text}"
        );
    }
}

/// A point with y-coordinate 3 has two 32-byte encodings: y = 3 and y = 3 + (2^255 − 19).
/// Accepting both gives one key two identities (two members, two ids for one body).
#[test]
fn non_canonical_public_key_encodings_are_rejected() {
    let canonical = public_key_from_hex("0300000000000000000000000000000000000000000000000000000000000000");
    assert!(PublicKey::from_bytes(&canonical).is_ok(), "y = 3 is a valid, large-order point");
    let key = SigningKey::from_seed(&[5; 32]);
    let tx = TxBody {
        chain_id: ChainId::new("medledger-test").expect("valid chain id"),
        signer: key.public_key(),
        nonce: 0,
        payload: Payload::EnrolMember {
            public_key: PublicKey::from_bytes(&canonical).expect("valid"),
            role: Role::Nurse,
            patient_id: None,
        },
    }
    .sign(&key);
    let member = payload_tag_offset(&tx.body) + TAG_BYTES;
    for excess in 0u8..19 {
        for sign_bit in [0u8, 0x80] {
            // y = (2^255 − 19) + excess, little-endian, with the x sign bit on top.
            let mut bytes = [0xff_u8; 32];
            bytes[0] = 0xed + excess;
            bytes[31] = 0x7f | sign_bit;
            let mut encoded = tx.encode();
            encoded[member..member + PublicKey::LEN].copy_from_slice(&bytes);
            assert!(Transaction::decode(&encoded).is_err(), "y = p + {excess}, sign {sign_bit:#x}");
            assert!(PublicKey::from_bytes(&bytes).is_err(), "y = p + {excess}, sign {sign_bit:#x}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Signatures
// ---------------------------------------------------------------------------------------------

proptest! {
    // Each case verifies a few hundred signatures, about 3 s in a debug build whose
    // dependencies are not optimised: keep the count small.
    #![proptest_config(config(2))]

    /// No single bit flip turns a signed transaction into another accepted encoding of it or
    /// into a transaction that still verifies under the same id.
    #[test]
    fn no_single_bit_flip_yields_another_valid_transaction(tx in transaction()) {
        check_every_bit_flip(&tx, true)?;
    }
}

proptest! {
    #![proptest_config(config(32))]

    /// The cheap half of the check above, on more transactions: every flip that decodes is a
    /// canonical encoding of a different transaction or differs only in its signature.
    #[test]
    fn bit_flips_never_decode_to_a_second_encoding(tx in transaction()) {
        check_every_bit_flip(&tx, false)?;
    }
}

/// Flips each bit of `tx`'s encoding in turn. A flip that decodes must be canonical; if it
/// keeps the id (the body is unchanged), only the signature changed, and with `verify` the
/// changed signature must not verify.
fn check_every_bit_flip(tx: &Transaction, verify: bool) -> Result<(), TestCaseError> {
    prop_assert!(tx.verify_signature().is_ok());
    let bytes = tx.encode();
    let id = tx.id();
    for bit in 0..bytes.len() * 8 {
        let mut flipped = bytes.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        let Ok(decoded) = Transaction::decode(&flipped) else { continue };
        prop_assert_eq!(decoded.encode(), flipped, "bit {} gave a non-canonical encoding", bit);
        if decoded.id() == id {
            prop_assert_eq!(&decoded.body, &tx.body, "bit {}: same id, different body", bit);
            if verify {
                prop_assert!(
                    decoded.verify_signature().is_err(),
                    "bit {} yields a valid twin of the transaction",
                    bit
                );
            }
        }
    }
    Ok(())
}

#[test]
fn a_signature_binds_the_signer_and_the_body() {
    let tx = anchor_transaction(6);
    assert!(tx.verify_signature().is_ok());
    let mut other_nonce = tx.clone();
    other_nonce.body.nonce += 1;
    assert!(other_nonce.verify_signature().is_err());
    let mut other_signer = tx.clone();
    other_signer.body.signer = SigningKey::from_seed(&[7; 32]).public_key();
    assert!(other_signer.verify_signature().is_err());
    let mut zeroed = tx;
    zeroed.signature = Signature([0; 64]);
    assert!(zeroed.verify_signature().is_err());
}

// ---------------------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------------------

/// Every field name a transaction's JSON may use.
const JSON_FIELD_NAMES: &[&str] = &[
    "body",
    "signature",
    "chain_id",
    "signer",
    "nonce",
    "payload",
    "type",
    "label",
    "digest",
    "public_key",
    "role",
    "patient_id",
    "old_key",
    "new_key",
    "action",
    "organization",
    "id",
    "kind",
    "node",
    "address",
    "administrators",
    "parameters",
    "proposal_ttl_ms",
    "validator_change_delay_blocks",
    "proposal",
    "approve",
];

fn json_of(tx: &Transaction) -> serde_json::Value {
    serde_json::to_value(tx).expect("transactions serialise")
}

fn parse(value: &serde_json::Value) -> Result<Transaction, serde_json::Error> {
    serde_json::from_str(&value.to_string())
}

/// A string of 128 characters that is not hex, or hex of the wrong length.
fn bad_signature_hex() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-f]{0,127}",
        "[0-9a-f]{129,160}",
        ("[0-9a-f]{128}", any::<prop::sample::Index>(), "[g-zG-Z !#/:]").prop_map(|(hex, index, bad)| {
            let position = index.index(hex.len());
            format!("{}{bad}{}", &hex[..position], &hex[position + 1..])
        }),
    ]
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn json_round_trips(tx in transaction()) {
        let text = serde_json::to_string(&tx).expect("transactions serialise");
        let parsed: Transaction = serde_json::from_str(&text).map_err(|error| TestCaseError::fail(error.to_string()))?;
        prop_assert_eq!(&parsed, &tx);
        prop_assert_eq!(parsed.encode(), tx.encode());
    }

    #[test]
    fn json_rejects_unknown_fields(tx in transaction(), field in "[a-z_]{1,12}") {
        prop_assume!(!JSON_FIELD_NAMES.contains(&field.as_str()));
        let paths: [&[&str]; 3] = [&[], &["body"], &["body", "payload"]];
        for path in paths {
            let mut value = json_of(&tx);
            let mut object = &mut value;
            for key in path {
                object = &mut object[*key];
            }
            object.as_object_mut().expect("an object").insert(field.clone(), serde_json::Value::from(1));
            let error = parse(&value).expect_err("unknown field accepted");
            prop_assert!(error.to_string().contains("unknown field"), "at {:?}: {}", path, error);
        }
    }

    #[test]
    fn json_rejects_a_bad_signature(tx in transaction(), signature in bad_signature_hex()) {
        let mut value = json_of(&tx);
        value["signature"] = serde_json::Value::from(signature);
        prop_assert!(parse(&value).is_err());
    }
}

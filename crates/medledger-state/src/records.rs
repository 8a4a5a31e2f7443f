//! What the state stores, each with its canonical encoding, and where (`keys`).
//!
//! Values are written only by `execute`, always canonically, so reading one back can only fail
//! if the state itself is corrupt — which the state root check on open rules out.

use medledger_crypto::{Digest, PublicKey};
use medledger_types::limits::{MAX_ORGANIZATIONS, MAX_VALIDATORS};
use medledger_types::{
    Decode, DecodeError, Encode, GovernanceAction, NodeIdentity, OrgId, OrgKind, PatientId, Reader, Role,
    TxId, Writer,
};
use serde::Serialize;

/// State keys. Each kind of entry has its own prefix so keys of different kinds never collide.
pub mod keys {
    use medledger_crypto::PublicKey;
    use medledger_types::{Label, OrgId, PatientId, RecordId, ResourceType, TxId};

    /// Prefix of member accounts.
    pub const ACCOUNT_PREFIX: &[u8] = b"account/";
    /// Prefix of anchors.
    pub const ANCHOR_PREFIX: &[u8] = b"anchor/";
    /// Prefix of the patient-id index.
    pub const PATIENT_PREFIX: &[u8] = b"patient/";
    /// Prefix of governance proposals.
    pub const PROPOSAL_PREFIX: &[u8] = b"proposal/";
    /// The organisation registry (one entry).
    pub const ORGANIZATIONS: &[u8] = b"organizations";
    /// The chain parameters (one entry).
    pub const PARAMETERS: &[u8] = b"parameters";
    /// The validator schedule (one entry).
    pub const VALIDATORS: &[u8] = b"validators";

    /// The kind of entry `key` holds (its prefix, or the singleton's name), to name an entry
    /// without showing its key.
    #[must_use]
    pub fn kind_of(key: &[u8]) -> &'static str {
        const KINDS: [(&[u8], &str); 10] = [
            (ACCOUNT_PREFIX, "account"),
            (ANCHOR_PREFIX, "anchor"),
            (PATIENT_PREFIX, "patient index"),
            (PROPOSAL_PREFIX, "proposal"),
            (RECORD_VERSION_PREFIX, "record version"),
            (RECORD_PREFIX, "record head"),
            (CARE_PREFIX, "care relationship"),
            (ORGANIZATIONS, "organisation registry"),
            (PARAMETERS, "parameters"),
            (VALIDATORS, "validator schedule"),
        ];
        KINDS.iter().find(|(prefix, _)| key.starts_with(prefix)).map_or("unknown kind", |(_, kind)| kind)
    }

    /// The key of a member's account.
    #[must_use]
    pub fn account(public_key: &PublicKey) -> Vec<u8> {
        [ACCOUNT_PREFIX, public_key.as_bytes()].concat()
    }

    /// The key of an anchor.
    #[must_use]
    pub fn anchor(label: &Label) -> Vec<u8> {
        [ANCHOR_PREFIX, label.as_str().as_bytes()].concat()
    }

    /// The key of a patient id's entry (the patient's current member key).
    #[must_use]
    pub fn patient(patient_id: &PatientId) -> Vec<u8> {
        [PATIENT_PREFIX, &patient_id.0].concat()
    }

    /// The key of a proposal.
    #[must_use]
    pub fn proposal(id: &TxId) -> Vec<u8> {
        [PROPOSAL_PREFIX, id.0.as_bytes()].concat()
    }

    /// Prefix of record heads.
    pub const RECORD_PREFIX: &[u8] = b"record/";
    /// Prefix of record versions.
    pub const RECORD_VERSION_PREFIX: &[u8] = b"record-version/";
    /// Prefix of treating relationships.
    pub const CARE_PREFIX: &[u8] = b"care/";

    /// The key of a record's head (custodian, patient, latest version).
    #[must_use]
    pub fn record(resource_type: ResourceType, record: &RecordId) -> Vec<u8> {
        [RECORD_PREFIX, &[resource_type.tag_byte()], &record.0].concat()
    }

    /// The key of one version of a record.
    #[must_use]
    pub fn record_version(resource_type: ResourceType, record: &RecordId, version: u64) -> Vec<u8> {
        [RECORD_VERSION_PREFIX, &[resource_type.tag_byte()], &record.0, &version.to_be_bytes()].concat()
    }

    /// The key of an organisation's treating relationship with a patient.
    #[must_use]
    pub fn care(patient: &PatientId, organization: &OrgId) -> Vec<u8> {
        [CARE_PREFIX, &patient.0, organization.as_str().as_bytes()].concat()
    }
}

/// Whether a member key may still sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum MemberStatus {
    /// The key signs for its member.
    Active,
    /// The key was revoked in block `height`.
    Revoked {
        /// The block of the revocation.
        height: u64,
    },
    /// The key was replaced by `new_key` in block `height`.
    Rotated {
        /// The replacement key.
        new_key: PublicKey,
        /// The block of the rotation.
        height: u64,
    },
}

/// A member key: which organisation it belongs to, in which role, and its nonce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    /// The nonce the member's next transaction must carry.
    pub next_nonce: u64,
    /// The member's organisation.
    pub organization: OrgId,
    /// The member's role there.
    pub role: Role,
    /// The patient's pseudonymous id, for patients only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient_id: Option<PatientId>,
    /// Whether the key may still sign.
    #[serde(flatten)]
    pub status: MemberStatus,
}

impl Account {
    /// Whether the key may sign.
    #[must_use]
    pub fn is_active(&self) -> bool {
        self.status == MemberStatus::Active
    }
}

impl Encode for Account {
    fn encode_to(&self, writer: &mut Writer) {
        writer.u64(self.next_nonce);
        self.organization.encode_to(writer);
        self.role.encode_to(writer);
        writer.option(self.patient_id.as_ref(), |writer, id| id.encode_to(writer));
        match self.status {
            MemberStatus::Active => writer.u8(0),
            MemberStatus::Revoked { height } => {
                writer.u8(1);
                writer.u64(height);
            }
            MemberStatus::Rotated { new_key, height } => {
                writer.u8(2);
                writer.public_key(&new_key);
                writer.u64(height);
            }
        }
    }
}

impl Decode for Account {
    const NAME: &'static str = "account";
    const MAX_ENCODED_BYTES: usize = 256;

    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            next_nonce: reader.u64("next nonce")?,
            organization: OrgId::decode_from(reader)?,
            role: Role::decode_from(reader)?,
            patient_id: reader.option("patient id", PatientId::decode_from)?,
            status: match reader.u8("member status")? {
                0 => MemberStatus::Active,
                1 => MemberStatus::Revoked { height: reader.u64("revocation height")? },
                2 => MemberStatus::Rotated {
                    new_key: reader.public_key("new key")?,
                    height: reader.u64("rotation height")?,
                },
                tag => return Err(DecodeError::UnknownTag { what: "member status", tag }),
            },
        })
    }
}

/// An organisation of the consortium.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Organization {
    /// Its id.
    pub id: OrgId,
    /// What it is.
    pub kind: OrgKind,
    /// Its node, if it runs one.
    pub node: Option<NodeIdentity>,
    /// Whether it is active (its members may sign, its node validates) or suspended.
    pub active: bool,
    /// How many of its administrator keys are active; never zero.
    pub active_administrators: u32,
    /// The block that admitted it (0 for founders).
    pub admitted_height: u64,
}

/// Every organisation, by id. One state entry: governance changes are rare and the
/// registry is small ([`MAX_ORGANIZATIONS`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registry {
    /// The organisations, sorted by id.
    pub organizations: Vec<Organization>,
}

impl Registry {
    /// The organisation with `id`.
    #[must_use]
    pub fn get(&self, id: &OrgId) -> Option<&Organization> {
        self.position(id).ok().map(|index| &self.organizations[index])
    }

    /// The organisation with `id`, to change.
    pub fn get_mut(&mut self, id: &OrgId) -> Option<&mut Organization> {
        self.position(id).ok().map(|index| &mut self.organizations[index])
    }

    /// Adds an organisation whose id is not taken yet.
    pub fn insert(&mut self, organization: Organization) {
        let index = self.position(&organization.id).expect_err("organisation ids are checked to be new");
        self.organizations.insert(index, organization);
    }

    fn position(&self, id: &OrgId) -> Result<usize, usize> {
        self.organizations.binary_search_by(|org| org.id.cmp(id))
    }

    /// How many organisations are active.
    #[must_use]
    pub fn active_count(&self) -> usize {
        self.organizations.iter().filter(|org| org.active).count()
    }

    /// The validator set these organisations imply: the node keys of the active ones.
    #[must_use]
    pub fn validators(&self) -> Vec<PublicKey> {
        self.organizations
            .iter()
            .filter(|org| org.active)
            .filter_map(|org| org.node.as_ref().map(|node| node.public_key))
            .collect()
    }

    /// Whether any organisation, active or not, uses `key` as its node key.
    #[must_use]
    pub fn uses_node_key(&self, key: &PublicKey) -> bool {
        self.organizations.iter().any(|org| org.node.as_ref().is_some_and(|node| &node.public_key == key))
    }
}

impl Encode for Registry {
    fn encode_to(&self, writer: &mut Writer) {
        writer.list(&self.organizations, |writer, org| {
            org.id.encode_to(writer);
            org.kind.encode_to(writer);
            writer.option(org.node.as_ref(), |writer, node| node.encode_to(writer));
            writer.bool(org.active);
            writer.u32(org.active_administrators);
            writer.u64(org.admitted_height);
        });
    }
}

impl Decode for Registry {
    const NAME: &'static str = "organisation registry";
    const MAX_ENCODED_BYTES: usize = 4 + MAX_ORGANIZATIONS * 512;

    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let organizations = reader.list(MAX_ORGANIZATIONS, "organisations", |reader| {
            Ok(Organization {
                id: OrgId::decode_from(reader)?,
                kind: OrgKind::decode_from(reader)?,
                node: reader.option("node", NodeIdentity::decode_from)?,
                active: reader.bool("active flag")?,
                active_administrators: reader.u32("administrator count")?,
                admitted_height: reader.u64("admission height")?,
            })
        })?;
        Ok(Self { organizations })
    }
}

/// A governance proposal and its votes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Proposal {
    /// What it does once executed.
    pub action: GovernanceAction,
    /// The organisation that proposed it.
    pub proposed_by: OrgId,
    /// Block time of the proposal.
    pub created_ms: u64,
    /// Block time after which it can no longer be voted on or executed.
    pub expires_ms: u64,
    /// Organisations in favour, sorted.
    pub approvals: Vec<OrgId>,
    /// Organisations against, sorted.
    pub rejections: Vec<OrgId>,
    /// The block that executed it, once executed.
    pub executed_height: Option<u64>,
}

impl Proposal {
    /// Whether `organization` has voted.
    #[must_use]
    pub fn has_voted(&self, organization: &OrgId) -> bool {
        self.approvals.binary_search(organization).is_ok()
            || self.rejections.binary_search(organization).is_ok()
    }

    /// Records a vote by an organisation that has not voted yet.
    pub fn record_vote(&mut self, organization: OrgId, approve: bool) {
        let votes = if approve { &mut self.approvals } else { &mut self.rejections };
        let index = votes.binary_search(&organization).expect_err("double votes are refused before");
        votes.insert(index, organization);
    }
}

impl Encode for Proposal {
    fn encode_to(&self, writer: &mut Writer) {
        self.action.encode_to(writer);
        self.proposed_by.encode_to(writer);
        writer.u64(self.created_ms);
        writer.u64(self.expires_ms);
        for votes in [&self.approvals, &self.rejections] {
            writer.list(votes, |writer, org| org.encode_to(writer));
        }
        writer.option(self.executed_height.as_ref(), |writer, height| writer.u64(*height));
    }
}

impl Decode for Proposal {
    const NAME: &'static str = "proposal";
    const MAX_ENCODED_BYTES: usize = 64 * 1024;

    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            action: GovernanceAction::decode_from(reader)?,
            proposed_by: OrgId::decode_from(reader)?,
            created_ms: reader.u64("proposal time")?,
            expires_ms: reader.u64("proposal expiry")?,
            approvals: reader.list(MAX_ORGANIZATIONS, "approvals", OrgId::decode_from)?,
            rejections: reader.list(MAX_ORGANIZATIONS, "rejections", OrgId::decode_from)?,
            executed_height: reader.option("execution height", |reader| reader.u64("execution height"))?,
        })
    }
}

/// The validators now, and the next set with the height it takes effect at.
///
/// Each set in force is one consensus epoch: epoch 0 is the genesis set from height 1, and
/// every change that takes effect starts the next epoch at its height.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValidatorSchedule {
    /// The epoch of `current`.
    pub epoch: u64,
    /// The first height `current` validates.
    pub since_height: u64,
    /// The validators until `next` takes effect.
    pub current: Vec<PublicKey>,
    /// The next set and the first height it validates.
    pub next: Option<(u64, Vec<PublicKey>)>,
}

impl ValidatorSchedule {
    /// The validators of the block at `height`.
    #[must_use]
    pub fn at(&self, height: u64) -> &[PublicKey] {
        match &self.next {
            Some((from_height, next)) if *from_height <= height => next,
            _ => &self.current,
        }
    }

    /// The epoch of the block at `height` (at or above `since_height`).
    #[must_use]
    pub fn epoch_at(&self, height: u64) -> u64 {
        match &self.next {
            Some((from_height, _)) if *from_height <= height => self.epoch + 1,
            _ => self.epoch,
        }
    }
}

impl Encode for ValidatorSchedule {
    fn encode_to(&self, writer: &mut Writer) {
        writer.u64(self.epoch);
        writer.u64(self.since_height);
        writer.list(&self.current, Writer::public_key);
        writer.option(self.next.as_ref(), |writer, (from_height, next)| {
            writer.u64(*from_height);
            writer.list(next, Writer::public_key);
        });
    }
}

impl Decode for ValidatorSchedule {
    const NAME: &'static str = "validator schedule";
    const MAX_ENCODED_BYTES: usize = 8 + 8 + 1 + 8 + 2 * (4 + MAX_VALIDATORS * 32);

    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let read_keys = |reader: &mut Reader<'_>| {
            reader.list(MAX_VALIDATORS, "validators", |r| r.public_key("validator"))
        };
        Ok(Self {
            epoch: reader.u64("epoch")?,
            since_height: reader.u64("first height of the epoch")?,
            current: read_keys(reader)?,
            next: reader
                .option("next validators", |reader| Ok((reader.u64("from height")?, read_keys(reader)?)))?,
        })
    }
}

/// A digest anchored under a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnchorRecord {
    /// The anchored SHA-256 digest.
    pub digest: Digest,
    /// Who anchored it.
    pub signer: PublicKey,
    /// The block that anchored it.
    pub height: u64,
}

impl Encode for AnchorRecord {
    fn encode_to(&self, writer: &mut Writer) {
        writer.digest(&self.digest);
        writer.public_key(&self.signer);
        writer.u64(self.height);
    }
}

impl Decode for AnchorRecord {
    const NAME: &'static str = "anchor record";
    const MAX_ENCODED_BYTES: usize = 32 + 32 + 8;

    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            digest: reader.digest("anchor digest")?,
            signer: reader.public_key("anchor signer")?,
            height: reader.u64("anchor height")?,
        })
    }
}

/// A record as the chain knows it: who holds it, whose it is, and its latest version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordHead {
    /// The organisation whose vault holds the record.
    pub custodian: OrgId,
    /// The patient the record is about, for patient data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient: Option<PatientId>,
    /// The latest version.
    pub version: u64,
}

impl Encode for RecordHead {
    fn encode_to(&self, writer: &mut Writer) {
        self.custodian.encode_to(writer);
        writer.option(self.patient.as_ref(), |writer, patient| patient.encode_to(writer));
        writer.u64(self.version);
    }
}

impl Decode for RecordHead {
    const NAME: &'static str = "record head";
    const MAX_ENCODED_BYTES: usize = 4 + 64 + 1 + 16 + 8;

    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            custodian: OrgId::decode_from(reader)?,
            patient: reader.option("record patient", PatientId::decode_from)?,
            version: reader.u64("record version")?,
        })
    }
}

/// One anchored version of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RecordVersion {
    /// SHA-256 of the version's ciphertext.
    pub ciphertext_digest: Digest,
    /// The member who wrote it.
    pub author: PublicKey,
    /// The node that anchored it.
    pub node: PublicKey,
    /// The anchoring transaction.
    pub tx_id: TxId,
    /// The block that anchored it.
    pub height: u64,
    /// That block's time.
    pub time_ms: u64,
}

impl Encode for RecordVersion {
    fn encode_to(&self, writer: &mut Writer) {
        writer.digest(&self.ciphertext_digest);
        writer.public_key(&self.author);
        writer.public_key(&self.node);
        writer.digest(&self.tx_id.0);
        writer.u64(self.height);
        writer.u64(self.time_ms);
    }
}

impl Decode for RecordVersion {
    const NAME: &'static str = "record version";
    const MAX_ENCODED_BYTES: usize = 32 * 4 + 16;

    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            ciphertext_digest: reader.digest("ciphertext digest")?,
            author: reader.public_key("record author")?,
            node: reader.public_key("record node")?,
            tx_id: TxId(reader.digest("record transaction")?),
            height: reader.u64("record height")?,
            time_ms: reader.u64("record time")?,
        })
    }
}

/// Why an organisation may treat a patient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "basis", rename_all = "snake_case")]
pub enum CareRelationship {
    /// It holds a record about the patient.
    Custodian {
        /// The block of its first record about the patient.
        since_height: u64,
    },
    /// Another organisation referred the patient to it.
    Referral {
        /// The referring organisation.
        referred_by: OrgId,
        /// The block of the referral.
        since_height: u64,
    },
}

impl Encode for CareRelationship {
    fn encode_to(&self, writer: &mut Writer) {
        match self {
            CareRelationship::Custodian { since_height } => {
                writer.u8(1);
                writer.u64(*since_height);
            }
            CareRelationship::Referral { referred_by, since_height } => {
                writer.u8(2);
                referred_by.encode_to(writer);
                writer.u64(*since_height);
            }
        }
    }
}

impl Decode for CareRelationship {
    const NAME: &'static str = "care relationship";
    const MAX_ENCODED_BYTES: usize = 1 + 4 + 64 + 8;

    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match reader.u8("care basis")? {
            1 => CareRelationship::Custodian { since_height: reader.u64("since height")? },
            2 => CareRelationship::Referral {
                referred_by: OrgId::decode_from(reader)?,
                since_height: reader.u64("since height")?,
            },
            tag => return Err(DecodeError::UnknownTag { what: "care basis", tag }),
        })
    }
}

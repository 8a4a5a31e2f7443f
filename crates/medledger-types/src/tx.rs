//! Transactions: a body signed by a member key.

use std::fmt;
use std::str::FromStr;

use medledger_crypto::{Digest, DigestParseError, PublicKey, Signature, SigningKey, tagged_hash};
use serde::{Deserialize, Serialize};

use crate::codec::{Decode, DecodeError, Encode, Reader, Writer};
use crate::identity::{GovernanceAction, PatientId, Role, named_enum};
use crate::limits::MAX_TX_BYTES;
use crate::record::RecordAnchor;
use crate::tags;
use crate::text::{ChainId, Label, OrgId};

/// What a transaction asks the ledger to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Payload {
    /// A member anchors the SHA-256 digest of an off-chain document under a label.
    /// Anchors are write-once: the first anchor of a label stands.
    Anchor {
        /// Where the digest is filed.
        label: Label,
        /// SHA-256 of the off-chain document.
        digest: Digest,
    },
    /// An administrator enrols a new member key in the administrator's own organisation.
    EnrolMember {
        /// The new member's Ed25519 public key.
        public_key: PublicKey,
        /// The new member's role (it must exist in the organisation's kind).
        role: Role,
        /// The patient's pseudonymous id: required for patients, absent for everyone else.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        patient_id: Option<PatientId>,
    },
    /// Replaces a member's key by a new one, keeping role and organisation. An administrator
    /// rotates keys of its own organisation's members; any member may rotate its own key.
    RotateKey {
        /// The key being replaced; refused from this transaction on.
        old_key: PublicKey,
        /// The replacement.
        new_key: PublicKey,
    },
    /// An administrator revokes a member key of its own organisation.
    RevokeMember {
        /// The key to revoke.
        public_key: PublicKey,
    },
    /// An administrator proposes a governance action; the proposal counts as its
    /// organisation's first vote in favour.
    Propose {
        /// What the proposal does once executed.
        action: GovernanceAction,
    },
    /// An administrator votes on an open proposal for its organisation (one vote per organisation).
    Vote {
        /// The proposal: the id of the transaction that proposed it.
        proposal: TxId,
        /// In favour or against.
        approve: bool,
    },
    /// An administrator executes a proposal that more than two thirds of the active
    /// organisations have approved.
    ExecuteProposal {
        /// The proposal.
        proposal: TxId,
    },
    /// A custodian organisation's node anchors one version of a patient record held in its
    /// vault. Only a node signs these: the record's author is named inside.
    Record(RecordAnchor),
    /// A clinician refers a patient of its organisation to another organisation, which gains
    /// a treating relationship with the patient (and so may read the patient's records).
    Refer {
        /// The patient.
        patient: PatientId,
        /// The organisation the patient is referred to.
        organization: OrgId,
    },
}

named_enum!(
    /// The kind of a [`Payload`], without its fields: what the authorization table speaks of.
    TxKind, "transaction kind" {
        /// [`Payload::Anchor`].
        Anchor = 2, "anchor";
        /// [`Payload::EnrolMember`].
        EnrolMember = 3, "enrol_member";
        /// [`Payload::RotateKey`].
        RotateKey = 4, "rotate_key";
        /// [`Payload::RevokeMember`].
        RevokeMember = 5, "revoke_member";
        /// [`Payload::Propose`].
        Propose = 6, "propose";
        /// [`Payload::Vote`].
        Vote = 7, "vote";
        /// [`Payload::ExecuteProposal`].
        ExecuteProposal = 8, "execute_proposal";
        /// [`Payload::Record`].
        Record = 9, "record";
        /// [`Payload::Refer`].
        Refer = 10, "refer";
    }
);

impl Payload {
    /// The kind, for authorization, logs and metrics.
    #[must_use]
    pub fn kind(&self) -> TxKind {
        match self {
            Payload::Anchor { .. } => TxKind::Anchor,
            Payload::EnrolMember { .. } => TxKind::EnrolMember,
            Payload::RotateKey { .. } => TxKind::RotateKey,
            Payload::RevokeMember { .. } => TxKind::RevokeMember,
            Payload::Propose { .. } => TxKind::Propose,
            Payload::Vote { .. } => TxKind::Vote,
            Payload::ExecuteProposal { .. } => TxKind::ExecuteProposal,
            Payload::Record(_) => TxKind::Record,
            Payload::Refer { .. } => TxKind::Refer,
        }
    }
}

impl Encode for Payload {
    fn encode_to(&self, writer: &mut Writer) {
        self.kind().encode_to(writer);
        match self {
            Payload::Anchor { label, digest } => {
                label.encode_to(writer);
                writer.digest(digest);
            }
            Payload::EnrolMember { public_key, role, patient_id } => {
                writer.public_key(public_key);
                role.encode_to(writer);
                writer.option(patient_id.as_ref(), |writer, id| id.encode_to(writer));
            }
            Payload::RotateKey { old_key, new_key } => {
                writer.public_key(old_key);
                writer.public_key(new_key);
            }
            Payload::RevokeMember { public_key } => writer.public_key(public_key),
            Payload::Propose { action } => action.encode_to(writer),
            Payload::Vote { proposal, approve } => {
                writer.digest(&proposal.0);
                writer.bool(*approve);
            }
            Payload::ExecuteProposal { proposal } => writer.digest(&proposal.0),
            Payload::Record(anchor) => anchor.encode_to(writer),
            Payload::Refer { patient, organization } => {
                patient.encode_to(writer);
                organization.encode_to(writer);
            }
        }
    }
}

impl Payload {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match TxKind::decode_from(reader)? {
            TxKind::Anchor => Payload::Anchor {
                label: Label::decode_from(reader)?,
                digest: reader.digest("anchor digest")?,
            },
            TxKind::EnrolMember => Payload::EnrolMember {
                public_key: reader.public_key("member public key")?,
                role: Role::decode_from(reader)?,
                patient_id: reader.option("patient id", PatientId::decode_from)?,
            },
            TxKind::RotateKey => Payload::RotateKey {
                old_key: reader.public_key("old key")?,
                new_key: reader.public_key("new key")?,
            },
            TxKind::RevokeMember => Payload::RevokeMember { public_key: reader.public_key("revoked key")? },
            TxKind::Propose => Payload::Propose { action: GovernanceAction::decode_from(reader)? },
            TxKind::Vote => Payload::Vote {
                proposal: TxId(reader.digest("proposal")?),
                approve: reader.bool("approve flag")?,
            },
            TxKind::ExecuteProposal => {
                Payload::ExecuteProposal { proposal: TxId(reader.digest("proposal")?) }
            }
            TxKind::Record => Payload::Record(RecordAnchor::decode_from(reader)?),
            TxKind::Refer => Payload::Refer {
                patient: PatientId::decode_from(reader)?,
                organization: OrgId::decode_from(reader)?,
            },
        })
    }
}

/// The signed part of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TxBody {
    /// The chain this transaction is for; other chains reject it.
    pub chain_id: ChainId,
    /// The member key that signs it.
    pub signer: PublicKey,
    /// The signer's sequence number: each nonce is executed at most once, in order.
    pub nonce: u64,
    /// What to do.
    pub payload: Payload,
}

impl Encode for TxBody {
    fn encode_to(&self, writer: &mut Writer) {
        self.chain_id.encode_to(writer);
        writer.public_key(&self.signer);
        writer.u64(self.nonce);
        self.payload.encode_to(writer);
    }
}

impl Decode for TxBody {
    const NAME: &'static str = "transaction body";
    const MAX_ENCODED_BYTES: usize = MAX_TX_BYTES;

    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            chain_id: ChainId::decode_from(reader)?,
            signer: reader.public_key("signer")?,
            nonce: reader.u64("nonce")?,
            payload: Payload::decode_from(reader)?,
        })
    }
}

impl TxBody {
    /// The bytes the signer signs: the domain tag, then the canonical body.
    #[must_use]
    pub fn signing_message(&self) -> Vec<u8> {
        let mut writer = Writer::with_capacity(256);
        writer.fixed(tags::TX_SIGNATURE);
        self.encode_to(&mut writer);
        writer.into_bytes()
    }

    /// The transaction id: a hash of the canonical body (independent of the signature, so a
    /// re-signed copy of a body is the same transaction).
    #[must_use]
    pub fn id(&self) -> TxId {
        TxId(tagged_hash(tags::TX_ID, &[&self.encode()]))
    }

    /// Signs the body with `key`, which must be the key named as signer.
    #[must_use]
    pub fn sign(self, key: &SigningKey) -> Transaction {
        debug_assert_eq!(key.public_key(), self.signer, "signing key must match the signer");
        let signature = key.sign(&self.signing_message());
        Transaction { body: self, signature }
    }
}

/// A signed transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transaction {
    /// What is signed.
    pub body: TxBody,
    /// Ed25519 signature of [`TxBody::signing_message`] by `body.signer`.
    pub signature: Signature,
}

impl Transaction {
    /// The transaction id (see [`TxBody::id`]).
    #[must_use]
    pub fn id(&self) -> TxId {
        self.body.id()
    }

    /// Checks the signature against the signer named in the body.
    pub fn verify_signature(&self) -> Result<(), medledger_crypto::SignatureError> {
        self.body.signer.verify(&self.body.signing_message(), &self.signature)
    }
}

impl Encode for Transaction {
    fn encode_to(&self, writer: &mut Writer) {
        self.body.encode_to(writer);
        writer.signature(&self.signature);
    }
}

impl Decode for Transaction {
    const NAME: &'static str = "transaction";
    const MAX_ENCODED_BYTES: usize = MAX_TX_BYTES;

    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self { body: TxBody::decode_from(reader)?, signature: reader.signature("signature")? })
    }
}

/// A transaction id: the tagged SHA-256 of its canonical body.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TxId(pub Digest);

impl fmt::Display for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TxId({})", self.0)
    }
}

impl FromStr for TxId {
    type Err = DigestParseError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.parse().map(TxId)
    }
}

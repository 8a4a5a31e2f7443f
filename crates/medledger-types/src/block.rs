//! Blocks, their headers, and the receipts that applying them yields.

use std::fmt;

use medledger_crypto::{Digest, PublicKey, Signature, SigningKey, tagged_hash};
use serde::{Deserialize, Serialize};

use crate::codec::{Decode, DecodeError, Encode, Reader, Writer};
use crate::limits::{MAX_BLOCK_BYTES, MAX_BLOCK_TXS, MAX_RECEIPTS_BYTES, MAX_TX_BYTES};
use crate::tags;
use crate::tx::{Transaction, TxId};

/// Everything a block commits to. Its hash identifies the block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockHeader {
    /// Position in the chain; the first block after genesis has height 1.
    pub height: u64,
    /// Hash of the previous block's header (the genesis hash for height 1).
    pub parent_hash: Digest,
    /// Proposer's clock in milliseconds since the Unix epoch; never before the parent's.
    pub timestamp_ms: u64,
    /// The validator that built and signed the block.
    pub proposer: PublicKey,
    /// Number of transactions in the block.
    pub tx_count: u32,
    /// RFC 9162 Merkle root over the canonical bytes of the block's transactions.
    pub tx_root: Digest,
    /// RFC 9162 Merkle root over the canonical bytes of the block's receipts.
    pub receipts_root: Digest,
    /// Commitment to the whole state after applying this block.
    pub state_root: Digest,
    /// RFC 9162 Merkle root over the hashes of every earlier block (heights 1 to height − 1),
    /// so any later header proves the whole history before it.
    pub history_root: Digest,
}

impl BlockHeader {
    /// The block hash: tagged SHA-256 of the canonical header.
    #[must_use]
    pub fn hash(&self) -> Digest {
        tagged_hash(tags::BLOCK_HEADER, &[&self.encode()])
    }

    /// The bytes a proposer signs: the domain tag, then the block hash.
    #[must_use]
    pub fn signing_message(hash: &Digest) -> Vec<u8> {
        [tags::BLOCK_SIGNATURE, hash.as_bytes()].concat()
    }
}

impl Encode for BlockHeader {
    fn encode_to(&self, writer: &mut Writer) {
        writer.u64(self.height);
        writer.digest(&self.parent_hash);
        writer.u64(self.timestamp_ms);
        writer.public_key(&self.proposer);
        writer.u32(self.tx_count);
        writer.digest(&self.tx_root);
        writer.digest(&self.receipts_root);
        writer.digest(&self.state_root);
        writer.digest(&self.history_root);
    }
}

impl Decode for BlockHeader {
    const NAME: &'static str = "block header";
    const MAX_ENCODED_BYTES: usize = 8 + 32 + 8 + 32 + 4 + 4 * 32;

    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            height: reader.u64("height")?,
            parent_hash: reader.digest("parent hash")?,
            timestamp_ms: reader.u64("timestamp")?,
            proposer: reader.public_key("proposer")?,
            tx_count: reader.u32("transaction count")?,
            tx_root: reader.digest("transaction root")?,
            receipts_root: reader.digest("receipts root")?,
            state_root: reader.digest("state root")?,
            history_root: reader.digest("history root")?,
        })
    }
}

/// A header, its transactions, and the proposer's signature over the header hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Block {
    /// The header.
    pub header: BlockHeader,
    /// The transactions, in execution order.
    pub transactions: Vec<Transaction>,
    /// The proposer's signature of [`BlockHeader::signing_message`].
    pub signature: Signature,
}

impl Block {
    /// Signs `header` with the proposer's key.
    #[must_use]
    pub fn seal(header: BlockHeader, transactions: Vec<Transaction>, proposer: &SigningKey) -> Self {
        debug_assert_eq!(proposer.public_key(), header.proposer, "sealing key must be the proposer");
        debug_assert_eq!(header.tx_count as usize, transactions.len());
        let signature = proposer.sign(&BlockHeader::signing_message(&header.hash()));
        Self { header, transactions, signature }
    }

    /// The block hash.
    #[must_use]
    pub fn hash(&self) -> Digest {
        self.header.hash()
    }
}

impl Encode for Block {
    fn encode_to(&self, writer: &mut Writer) {
        self.header.encode_to(writer);
        writer.length(self.transactions.len());
        for tx in &self.transactions {
            // Each transaction is length-prefixed so a reader can skip or hash it whole.
            writer.bytes(&tx.encode());
        }
        writer.signature(&self.signature);
    }
}

impl Decode for Block {
    const NAME: &'static str = "block";
    const MAX_ENCODED_BYTES: usize = MAX_BLOCK_BYTES;

    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let header = BlockHeader::decode_from(reader)?;
        let count = reader.length(MAX_BLOCK_TXS, "transaction list")?;
        if count != header.tx_count as usize {
            return Err(DecodeError::Invalid {
                what: "transaction list",
                reason: format!("header says {} transactions, body has {count}", header.tx_count),
            });
        }
        let mut transactions = Vec::with_capacity(count);
        for _ in 0..count {
            transactions.push(Transaction::decode(reader.bytes(MAX_TX_BYTES, "transaction")?)?);
        }
        let signature = reader.signature("block signature")?;
        Ok(Self { header, transactions, signature })
    }
}

/// Why a transaction in a block changed nothing but (sometimes) its signer's nonce.
///
/// Reasons checked before the nonce (unknown, revoked or rotated signer, suspended
/// organisation, wrong chain, nonce replay or gap) consume nothing; every later reason
/// consumes the nonce, so the same signed transaction never runs twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum RejectReason {
    /// The signer is not a registered member. The nonce is not consumed.
    UnknownSigner,
    /// The nonce was already used by this signer. Nothing changes.
    NonceReplayed {
        /// The nonce the signer must use next.
        expected: u64,
    },
    /// The nonce skips ahead of the signer's next nonce. Nothing changes.
    NonceGap {
        /// The nonce the signer must use next.
        expected: u64,
    },
    /// The signer's role in its kind of organisation may not submit this kind of transaction, or may not act on this target. The nonce is consumed.
    NotAuthorized,
    /// The key to enrol or rotate to is already a member key. The nonce is consumed.
    MemberExists,
    /// The label already has an anchor. The nonce is consumed.
    AnchorExists,
    /// The transaction names another chain. Nothing changes.
    WrongChain,
    /// The signer's key was revoked. The nonce is not consumed.
    KeyRevoked,
    /// The signer's key was rotated out. The nonce is not consumed.
    KeyRotated,
    /// The signer's organisation is suspended. The nonce is not consumed.
    OrganizationSuspended,
    /// The role does not exist in the organisation's kind (e.g. a pharmacist at a laboratory). The nonce is consumed.
    RoleNotAllowed,
    /// A patient was enrolled without a patient id, or a non-patient with one. The nonce is consumed.
    PatientIdMismatch,
    /// The patient id is already taken. The nonce is consumed.
    PatientIdExists,
    /// The target key is not a member key. The nonce is consumed.
    UnknownMember,
    /// The target key is already revoked or rotated out. The nonce is consumed.
    MemberInactive,
    /// The change would leave the organisation without an active administrator. The nonce is consumed.
    LastAdministrator,
    /// No organisation has that id. The nonce is consumed.
    UnknownOrganization,
    /// An organisation with that id already exists. The nonce is consumed.
    OrganizationExists,
    /// The organisation is not in the status the action needs (suspending a suspended organisation, reinstating an active one). The nonce is consumed.
    OrganizationStatus,
    /// No proposal has that id. The nonce is consumed.
    UnknownProposal,
    /// The proposal's voting period is over. The nonce is consumed.
    ProposalExpired,
    /// The proposal was already executed. The nonce is consumed.
    ProposalClosed,
    /// The signer's organisation already voted on the proposal. The nonce is consumed.
    AlreadyVoted,
    /// Not more than two thirds of the active organisations approve the proposal yet. The nonce is consumed.
    NotEnoughVotes,
    /// The proposed action is malformed: parameters out of bounds, an organisation without administrators, a node key already in use. The nonce is consumed.
    InvalidAction,
    /// The organisation registry or the validator set is at its limit. The nonce is consumed.
    RegistryFull,
    /// The change would leave the chain without a validator. The nonce is consumed.
    NoValidatorLeft,
    /// A record version is not the next one (1 for a new record). The nonce is consumed.
    RecordVersion {
        /// The version the record's next anchor must carry.
        expected: u64,
    },
    /// The record is held by another organisation. The nonce is consumed.
    RecordCustodian,
    /// The record's patient is missing, not allowed for its resource type, not a registered
    /// Patient record, or differs from the record's earlier versions. The nonce is consumed.
    RecordPatient,
    /// The record's author is not an active member of the node's organisation whose role may
    /// write that resource type. The nonce is consumed.
    RecordAuthor,
    /// A node's key changes only with its organisation's registration, through governance.
    /// The nonce is consumed.
    NodeKey,
    /// The signer's organisation has no treating relationship with the patient. The nonce is
    /// consumed.
    NoCareRelationship,
}

impl RejectReason {
    fn tag(self) -> u8 {
        match self {
            RejectReason::UnknownSigner => 1,
            RejectReason::NonceReplayed { .. } => 2,
            RejectReason::NonceGap { .. } => 3,
            RejectReason::NotAuthorized => 4,
            RejectReason::MemberExists => 5,
            RejectReason::AnchorExists => 6,
            RejectReason::WrongChain => 7,
            RejectReason::KeyRevoked => 8,
            RejectReason::KeyRotated => 9,
            RejectReason::OrganizationSuspended => 10,
            RejectReason::RoleNotAllowed => 11,
            RejectReason::PatientIdMismatch => 12,
            RejectReason::PatientIdExists => 13,
            RejectReason::UnknownMember => 14,
            RejectReason::MemberInactive => 15,
            RejectReason::LastAdministrator => 16,
            RejectReason::UnknownOrganization => 17,
            RejectReason::OrganizationExists => 18,
            RejectReason::OrganizationStatus => 19,
            RejectReason::UnknownProposal => 20,
            RejectReason::ProposalExpired => 21,
            RejectReason::ProposalClosed => 22,
            RejectReason::AlreadyVoted => 23,
            RejectReason::NotEnoughVotes => 24,
            RejectReason::InvalidAction => 25,
            RejectReason::RegistryFull => 26,
            RejectReason::NoValidatorLeft => 27,
            RejectReason::RecordVersion { .. } => 28,
            RejectReason::RecordCustodian => 29,
            RejectReason::RecordPatient => 30,
            RejectReason::RecordAuthor => 31,
            RejectReason::NodeKey => 32,
            RejectReason::NoCareRelationship => 33,
        }
    }

    fn decode_from(tag: u8, reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match tag {
            1 => RejectReason::UnknownSigner,
            2 => RejectReason::NonceReplayed { expected: reader.u64("expected nonce")? },
            3 => RejectReason::NonceGap { expected: reader.u64("expected nonce")? },
            4 => RejectReason::NotAuthorized,
            5 => RejectReason::MemberExists,
            6 => RejectReason::AnchorExists,
            7 => RejectReason::WrongChain,
            8 => RejectReason::KeyRevoked,
            9 => RejectReason::KeyRotated,
            10 => RejectReason::OrganizationSuspended,
            11 => RejectReason::RoleNotAllowed,
            12 => RejectReason::PatientIdMismatch,
            13 => RejectReason::PatientIdExists,
            14 => RejectReason::UnknownMember,
            15 => RejectReason::MemberInactive,
            16 => RejectReason::LastAdministrator,
            17 => RejectReason::UnknownOrganization,
            18 => RejectReason::OrganizationExists,
            19 => RejectReason::OrganizationStatus,
            20 => RejectReason::UnknownProposal,
            21 => RejectReason::ProposalExpired,
            22 => RejectReason::ProposalClosed,
            23 => RejectReason::AlreadyVoted,
            24 => RejectReason::NotEnoughVotes,
            25 => RejectReason::InvalidAction,
            26 => RejectReason::RegistryFull,
            27 => RejectReason::NoValidatorLeft,
            28 => RejectReason::RecordVersion { expected: reader.u64("expected record version")? },
            29 => RejectReason::RecordCustodian,
            30 => RejectReason::RecordPatient,
            31 => RejectReason::RecordAuthor,
            32 => RejectReason::NodeKey,
            33 => RejectReason::NoCareRelationship,
            tag => return Err(DecodeError::UnknownTag { what: "receipt outcome", tag }),
        })
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            RejectReason::NonceReplayed { expected } => {
                return write!(f, "nonce already used (next nonce is {expected})");
            }
            RejectReason::NonceGap { expected } => {
                return write!(f, "nonce skips ahead (next nonce is {expected})");
            }
            RejectReason::UnknownSigner => "the signer is not a registered member",
            RejectReason::NotAuthorized => "the signer's role or organisation may not do this",
            RejectReason::MemberExists => "the key is already a member key",
            RejectReason::AnchorExists => "the label is already anchored",
            RejectReason::WrongChain => "the transaction is for another chain",
            RejectReason::KeyRevoked => "the signer's key was revoked",
            RejectReason::KeyRotated => "the signer's key was rotated out",
            RejectReason::OrganizationSuspended => "the signer's organisation is suspended",
            RejectReason::RoleNotAllowed => "the role does not exist in this kind of organisation",
            RejectReason::PatientIdMismatch => "patients need a patient id and only patients have one",
            RejectReason::PatientIdExists => "the patient id is already taken",
            RejectReason::UnknownMember => "the target key is not a member key",
            RejectReason::MemberInactive => "the target key is already revoked or rotated out",
            RejectReason::LastAdministrator => "the organisation would have no active administrator left",
            RejectReason::UnknownOrganization => "no organisation has that id",
            RejectReason::OrganizationExists => "an organisation with that id already exists",
            RejectReason::OrganizationStatus => "the organisation's status does not allow this action",
            RejectReason::UnknownProposal => "no proposal has that id",
            RejectReason::ProposalExpired => "the proposal has expired",
            RejectReason::ProposalClosed => "the proposal was already executed",
            RejectReason::AlreadyVoted => "the organisation already voted on this proposal",
            RejectReason::NotEnoughVotes => "more than two thirds of active organisations must approve first",
            RejectReason::InvalidAction => "the proposed action is invalid",
            RejectReason::RegistryFull => "the organisation registry or validator set is full",
            RejectReason::NoValidatorLeft => "the change would leave no validator",
            RejectReason::RecordVersion { expected } => {
                return write!(f, "the record's next version is {expected}");
            }
            RejectReason::RecordCustodian => "the record is held by another organisation",
            RejectReason::RecordPatient => {
                "the record's patient does not fit its type or its earlier versions"
            }
            RejectReason::RecordAuthor => "the author may not write this record for the node's organisation",
            RejectReason::NodeKey => "a node key changes only through governance",
            RejectReason::NoCareRelationship => {
                "the organisation has no treating relationship with the patient"
            }
        };
        f.write_str(text)
    }
}

/// What happened to one transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// The transaction changed the state as asked.
    Applied,
    /// The transaction was rejected; see the reason.
    Rejected(RejectReason),
}

/// The outcome of one transaction in a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The transaction.
    pub tx_id: TxId,
    /// What happened.
    #[serde(flatten)]
    pub outcome: Outcome,
}

impl Encode for Receipt {
    fn encode_to(&self, writer: &mut Writer) {
        writer.digest(&self.tx_id.0);
        match self.outcome {
            Outcome::Applied => writer.u8(0),
            Outcome::Rejected(reason) => {
                writer.u8(reason.tag());
                if let RejectReason::NonceReplayed { expected }
                | RejectReason::NonceGap { expected }
                | RejectReason::RecordVersion { expected } = reason
                {
                    writer.u64(expected);
                }
            }
        }
    }
}

impl Decode for Receipt {
    const NAME: &'static str = "receipt";
    const MAX_ENCODED_BYTES: usize = 32 + 1 + 8;

    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let tx_id = TxId(reader.digest("receipt transaction id")?);
        let outcome = match reader.u8("receipt outcome")? {
            0 => Outcome::Applied,
            tag => Outcome::Rejected(RejectReason::decode_from(tag, reader)?),
        };
        Ok(Self { tx_id, outcome })
    }
}

/// The receipts of one block, in transaction order.
impl Encode for [Receipt] {
    fn encode_to(&self, writer: &mut Writer) {
        writer.length(self.len());
        for receipt in self {
            receipt.encode_to(writer);
        }
    }
}

/// The same encoding, for the list a block's receipts are decoded into.
impl Encode for Vec<Receipt> {
    fn encode_to(&self, writer: &mut Writer) {
        self.as_slice().encode_to(writer);
    }
}

impl Decode for Vec<Receipt> {
    const NAME: &'static str = "receipt list";
    const MAX_ENCODED_BYTES: usize = MAX_RECEIPTS_BYTES;

    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let count = reader.length(MAX_BLOCK_TXS, "receipt list")?;
        (0..count).map(|_| Receipt::decode_from(reader)).collect()
    }
}

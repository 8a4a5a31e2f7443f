//! Transactions: a body signed by a member key.

use std::fmt;
use std::str::FromStr;

use medledger_crypto::{Digest, DigestParseError, PublicKey, Signature, SigningKey, tagged_hash};
use serde::{Deserialize, Serialize};

use crate::codec::{Decode, DecodeError, Encode, Reader, Writer};
use crate::limits::MAX_TX_BYTES;
use crate::tags;
use crate::text::{ChainId, Label};

/// What a transaction asks the ledger to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Payload {
    /// An administrator enrols a new member key.
    AddMember {
        /// The new member's Ed25519 public key.
        public_key: PublicKey,
        /// Whether the new member may enrol others.
        admin: bool,
    },
    /// A member anchors the SHA-256 digest of an off-chain document under a label.
    /// Anchors are write-once: the first anchor of a label stands.
    Anchor {
        /// Where the digest is filed.
        label: Label,
        /// SHA-256 of the off-chain document.
        digest: Digest,
    },
}

impl Payload {
    const ADD_MEMBER: u8 = 1;
    const ANCHOR: u8 = 2;

    /// A short name of the kind, for logs and metrics.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Payload::AddMember { .. } => "add_member",
            Payload::Anchor { .. } => "anchor",
        }
    }
}

impl Encode for Payload {
    fn encode_to(&self, writer: &mut Writer) {
        match self {
            Payload::AddMember { public_key, admin } => {
                writer.u8(Self::ADD_MEMBER);
                writer.public_key(public_key);
                writer.bool(*admin);
            }
            Payload::Anchor { label, digest } => {
                writer.u8(Self::ANCHOR);
                label.encode_to(writer);
                writer.digest(digest);
            }
        }
    }
}

impl Payload {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.u8("payload tag")? {
            Self::ADD_MEMBER => Ok(Payload::AddMember {
                public_key: reader.public_key("member public key")?,
                admin: reader.bool("admin flag")?,
            }),
            Self::ANCHOR => Ok(Payload::Anchor {
                label: Label::decode_from(reader)?,
                digest: reader.digest("anchor digest")?,
            }),
            tag => Err(DecodeError::UnknownTag { what: "payload", tag }),
        }
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

//! Reading a record another organisation holds: the request a node sends the custodian's node
//! over the authenticated node-to-node channel, and how the custodian answers it.
//!
//! The requesting node names the reader (a member of its own organisation), the version, and
//! its vault's public key. The custodian's node checks that the asking node is the reader's
//! organisation's node, runs the same access decision on its own chain, and answers with the
//! ciphertext and the data key wrapped for the requester's vault. The requester checks the
//! ciphertext against the anchor on its own chain before it decrypts, and keeps nothing.

use medledger_consensus::exchange::ExchangeHandler;
use medledger_crypto::PublicKey;
use medledger_crypto::envelope::{VaultPublicKey, WrappedKey};
use medledger_state::access::Reader as AccessReader;
use medledger_state::access::authorize_read;
use medledger_types::{Decode, DecodeError, Encode, Reader, RecordId, ResourceType, Writer};

use crate::{RecordError, Records};

/// Domain tag of fetch requests, so their bytes can never be read as anything else.
const FETCH_REQUEST_TAG: &[u8; 24] = b"medledger/record-get/v1\0";

/// Longest refusal reason carried back.
const MAX_REASON_BYTES: usize = 512;

/// Largest wrapped key accepted in an answer.
const MAX_WRAPPED_KEY_BYTES: usize = 256;

/// A node asking the custodian's node for one version of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FetchRequest {
    /// The member who reads (of the asking node's organisation).
    pub reader: PublicKey,
    /// The type.
    pub resource_type: ResourceType,
    /// The record.
    pub record: RecordId,
    /// The version.
    pub version: u64,
    /// The asking node's vault key: the data key is wrapped for it.
    pub recipient: VaultPublicKey,
}

impl Encode for FetchRequest {
    fn encode_to(&self, writer: &mut Writer) {
        writer.fixed(FETCH_REQUEST_TAG);
        writer.public_key(&self.reader);
        self.resource_type.encode_to(writer);
        self.record.encode_to(writer);
        writer.u64(self.version);
        writer.fixed(self.recipient.as_bytes());
    }
}

impl Decode for FetchRequest {
    const NAME: &'static str = "record fetch request";
    const MAX_ENCODED_BYTES: usize = 256;

    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        if &reader.array::<24>("fetch request tag")? != FETCH_REQUEST_TAG {
            return Err(DecodeError::Invalid {
                what: "fetch request tag",
                reason: "not a record fetch".into(),
            });
        }
        let request_reader = reader.public_key("reader")?;
        let resource_type = ResourceType::decode_from(reader)?;
        let record = RecordId::decode_from(reader)?;
        let version = reader.u64("version")?;
        let recipient =
            VaultPublicKey::from_bytes(&reader.array::<32>("recipient vault key")?).map_err(|error| {
                DecodeError::Invalid { what: "recipient vault key", reason: error.to_string() }
            })?;
        Ok(Self { reader: request_reader, resource_type, record, version, recipient })
    }
}

/// Why the custodian's node did not serve a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Malformed request.
    BadRequest = 1,
    /// Not held there, or no such version anchored.
    NotFound = 2,
    /// The access decision refused the reader, or the asking node does not speak for them.
    Denied = 3,
    /// The custodian's copy failed its integrity check (its alarm is raised).
    Tampered = 4,
    /// The custodian's node failed.
    Unavailable = 5,
}

impl Refusal {
    fn from_tag(tag: u8) -> Result<Self, DecodeError> {
        Ok(match tag {
            1 => Self::BadRequest,
            2 => Self::NotFound,
            3 => Self::Denied,
            4 => Self::Tampered,
            5 => Self::Unavailable,
            tag => return Err(DecodeError::UnknownTag { what: "refusal", tag }),
        })
    }

    /// The error a reader gets for this refusal.
    pub fn into_error(self, resource_type: ResourceType, id: &str, reason: String) -> RecordError {
        match self {
            Self::NotFound => RecordError::NotFound { resource_type, id: id.into() },
            Self::Denied => RecordError::RemoteDenied(reason),
            Self::Tampered => RecordError::Remote("the custodian's copy failed its integrity check".into()),
            Self::BadRequest | Self::Unavailable => RecordError::Remote(reason),
        }
    }
}

/// The custodian's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FetchAnswer {
    /// The version, sealed, with its data key wrapped for the requester's vault.
    Served { last_updated_ms: u64, ciphertext: Vec<u8>, wrapped_key: WrappedKey },
    /// Not served, and why (rules and identifiers only, never record content).
    Refused { refusal: Refusal, reason: String },
}

impl Encode for FetchAnswer {
    fn encode_to(&self, writer: &mut Writer) {
        match self {
            Self::Served { last_updated_ms, ciphertext, wrapped_key } => {
                writer.u8(0);
                writer.u64(*last_updated_ms);
                writer.bytes(ciphertext);
                writer.bytes(wrapped_key.as_bytes());
            }
            Self::Refused { refusal, reason } => {
                writer.u8(*refusal as u8);
                writer.bytes(reason.as_bytes());
            }
        }
    }
}

impl Decode for FetchAnswer {
    const NAME: &'static str = "record fetch answer";
    const MAX_ENCODED_BYTES: usize = medledger_consensus::exchange::MAX_EXCHANGE_BYTES;

    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.u8("answer tag")? {
            0 => {
                let last_updated_ms = reader.u64("last updated")?;
                let ciphertext = reader.bytes(medledger_vault::MAX_SEALED_BYTES, "ciphertext")?.to_vec();
                let wrapped = reader.bytes(MAX_WRAPPED_KEY_BYTES, "wrapped key")?.to_vec();
                let wrapped_key = WrappedKey::from_bytes(wrapped).map_err(|error| DecodeError::Invalid {
                    what: "wrapped key",
                    reason: error.to_string(),
                })?;
                Ok(Self::Served { last_updated_ms, ciphertext, wrapped_key })
            }
            tag => {
                let refusal = Refusal::from_tag(tag)?;
                let reason = String::from_utf8_lossy(reader.bytes(MAX_REASON_BYTES, "reason")?).into_owned();
                Ok(Self::Refused { refusal, reason })
            }
        }
    }
}

fn refused(refusal: Refusal, reason: impl Into<String>) -> FetchAnswer {
    let mut reason: String = reason.into();
    if reason.len() > MAX_REASON_BYTES {
        let mut end = MAX_REASON_BYTES;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    FetchAnswer::Refused { refusal, reason }
}

/// Answers other nodes' fetch requests for the records this node holds.
pub(crate) struct Server {
    records: Records,
}

impl Server {
    pub fn new(records: Records) -> Self {
        Self { records }
    }
}

impl ExchangeHandler for Server {
    fn answer(&self, peer: &PublicKey, request: &[u8]) -> Vec<u8> {
        let answer = match FetchRequest::decode(request) {
            Ok(request) => self.records.serve_fetch(peer, &request),
            Err(error) => refused(Refusal::BadRequest, format!("fetch request: {error}")),
        };
        answer.encode()
    }
}

impl Records {
    /// The answer to `peer` (a node) asking for a version of a record this node holds.
    pub(crate) fn serve_fetch(&self, peer: &PublicKey, request: &FetchRequest) -> FetchAnswer {
        let FetchRequest { reader, resource_type, record, version, recipient } = request;
        let decided = self.node.with_chain(|chain| {
            let (account, organization) = chain
                .active_member(reader)
                .ok_or_else(|| refused(Refusal::Denied, "the reader is not an active member"))?;
            if organization.node.as_ref().is_none_or(|node| node.public_key != *peer) {
                return Err(refused(
                    Refusal::Denied,
                    format!("node {peer} is not the node of the reader's organisation {}", organization.id),
                ));
            }
            let head = chain
                .record(*resource_type, record)
                .filter(|head| head.custodian == self.custodian)
                .ok_or_else(|| refused(Refusal::NotFound, "no such record held here"))?;
            authorize_read(chain, &AccessReader { account: &account, organization: &organization }, &head)
                .map_err(|denied| refused(Refusal::Denied, denied.to_string()))?;
            chain
                .record_version(*resource_type, record, *version)
                .ok_or_else(|| refused(Refusal::NotFound, "no such version anchored"))
        });
        let anchor = match decided {
            Ok(anchor) => anchor,
            Err(answer) => return answer,
        };
        let stored = match self.vault.get(*resource_type, *record, *version) {
            Ok(Some(stored)) => stored,
            Ok(None) => return refused(Refusal::Unavailable, "the version is anchored but not in the vault"),
            Err(error) => return refused(Refusal::Unavailable, error.to_string()),
        };
        match self.vault.rewrap(&stored, &anchor.ciphertext_digest, recipient) {
            Ok(wrapped_key) => FetchAnswer::Served {
                last_updated_ms: stored.last_updated_ms,
                ciphertext: stored.ciphertext,
                wrapped_key,
            },
            Err(medledger_vault::VaultError::Tampered) => {
                tracing::error!(%resource_type, "a record version failed its integrity check at rest");
                refused(Refusal::Tampered, "integrity check failed")
            }
            Err(error) => refused(Refusal::Unavailable, error.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use medledger_crypto::SigningKey;
    use medledger_crypto::envelope::VaultSecretKey;

    use super::*;

    #[test]
    fn requests_and_answers_round_trip() {
        let request = FetchRequest {
            reader: SigningKey::from_seed(&[1; 32]).public_key(),
            resource_type: ResourceType::Observation,
            record: RecordId([7; 16]),
            version: 3,
            recipient: VaultSecretKey::from_seed(&[2; 32]).public_key(),
        };
        assert_eq!(FetchRequest::decode(&request.encode()), Ok(request.clone()));
        let mut wrong_tag = request.encode();
        wrong_tag[0] ^= 1;
        assert!(FetchRequest::decode(&wrong_tag).is_err());
        let answers = [
            FetchAnswer::Served {
                last_updated_ms: 9,
                ciphertext: vec![1, 2, 3],
                wrapped_key: WrappedKey::from_bytes(vec![5; medledger_crypto::envelope::WRAPPED_KEY_BYTES])
                    .expect("right length"),
            },
            refused(Refusal::Denied, "no"),
        ];
        for answer in answers {
            assert_eq!(FetchAnswer::decode(&answer.encode()), Ok(answer));
        }
        assert_eq!(refused(Refusal::Denied, "é".repeat(400)).encode().len(), 1 + 4 + MAX_REASON_BYTES);
    }
}

//! A stored record version and its canonical bytes, and the vault's table keys.

use medledger_crypto::Digest;
use medledger_crypto::PublicKey;
use medledger_crypto::envelope::{LOCAL_WRAPPED_KEY_BYTES, LocalWrappedKey, WRAPPED_KEY_BYTES, WrappedKey};
use medledger_types::{Decode, Encode, OrgId, PatientId, Reader, RecordId, ResourceType, Writer};

use crate::{MAX_SEALED_BYTES, MAX_TOKENS_PER_VERSION, VaultError};

/// Largest wrapped data key: an HPKE encapsulated key, the sealed 32-byte key and its tag.
const MAX_WRAPPED_KEY_BYTES: usize = 256;

/// The custodian's own copy of a version's data key, as the vault keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnWrappedKey {
    /// Wrapped under the vault's key-encryption key: every version sealed since vault format 3.
    Local(LocalWrappedKey),
    /// Wrapped to the vault's public key with HPKE: versions sealed before format 3.
    Hpke(WrappedKey),
}

impl OwnWrappedKey {
    /// The wrapped bytes as stored.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Local(wrapped) => wrapped.as_bytes(),
            Self::Hpke(wrapped) => wrapped.as_bytes(),
        }
    }

    /// Stored bytes read back. The two schemes have different fixed lengths, which is what
    /// tells them apart.
    fn from_bytes(bytes: &[u8]) -> Result<Self, medledger_crypto::EnvelopeError> {
        match bytes.len() {
            WRAPPED_KEY_BYTES => WrappedKey::from_bytes(bytes.to_vec()).map(Self::Hpke),
            _ => LocalWrappedKey::from_bytes(bytes).map(Self::Local),
        }
    }
}

const _: () = assert!(LOCAL_WRAPPED_KEY_BYTES != WRAPPED_KEY_BYTES, "the lengths tell the schemes apart");

/// Ciphertext of a new version with its wrapped data key and the digest its anchor carries.
#[derive(Debug, Clone)]
pub struct SealedVersion {
    /// nonce ‖ AES-256-GCM ciphertext ‖ tag.
    pub ciphertext: Vec<u8>,
    /// The data key, wrapped for the vault itself.
    pub wrapped_key: OwnWrappedKey,
    /// SHA-256 of `ciphertext`: what the chain anchors.
    pub digest: Digest,
}

/// One record version as the vault keeps it: sealed, with what the node needs to serve it
/// without decrypting (custodian, patient, author, time, search tokens).
#[derive(Debug, Clone)]
pub struct StoredVersion {
    /// The FHIR resource type.
    pub resource_type: ResourceType,
    /// The record's id.
    pub record: RecordId,
    /// The version.
    pub version: u64,
    /// The custodian organisation.
    pub custodian: OrgId,
    /// The patient, for patient data.
    pub patient: Option<PatientId>,
    /// The member who wrote it.
    pub author: PublicKey,
    /// When the node accepted it (`meta.lastUpdated`).
    pub last_updated_ms: u64,
    /// nonce ‖ ciphertext ‖ tag.
    pub ciphertext: Vec<u8>,
    /// SHA-256 of `ciphertext` as computed when sealing.
    pub digest: Digest,
    /// The data key wrapped for the vault itself.
    pub wrapped_key: OwnWrappedKey,
    /// Blind tokens of its searchable values.
    pub tokens: Vec<[u8; 32]>,
}

impl StoredVersion {
    pub(crate) fn check_bounds(&self) -> Result<(), VaultError> {
        if self.ciphertext.len() > MAX_SEALED_BYTES {
            return Err(VaultError::TooLarge { what: "sealed record", max: MAX_SEALED_BYTES });
        }
        if self.tokens.len() > MAX_TOKENS_PER_VERSION {
            return Err(VaultError::TooLarge { what: "search tokens", max: MAX_TOKENS_PER_VERSION });
        }
        Ok(())
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, VaultError> {
        <Self as Decode>::decode(bytes).map_err(|error| VaultError::Corrupt(error.to_string()))
    }
}

impl Encode for StoredVersion {
    fn encode_to(&self, writer: &mut Writer) {
        self.resource_type.encode_to(writer);
        self.record.encode_to(writer);
        writer.u64(self.version);
        self.custodian.encode_to(writer);
        writer.option(self.patient.as_ref(), |writer, patient| patient.encode_to(writer));
        writer.public_key(&self.author);
        writer.u64(self.last_updated_ms);
        writer.bytes(&self.ciphertext);
        writer.digest(&self.digest);
        writer.bytes(self.wrapped_key.as_bytes());
        writer.list(&self.tokens, |writer, token| writer.fixed(token));
    }
}

impl Decode for StoredVersion {
    const NAME: &'static str = "stored record version";
    const MAX_ENCODED_BYTES: usize = MAX_SEALED_BYTES + 4 * 1024;

    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, medledger_types::DecodeError> {
        Ok(Self {
            resource_type: ResourceType::decode_from(reader)?,
            record: RecordId::decode_from(reader)?,
            version: reader.u64("version")?,
            custodian: OrgId::decode_from(reader)?,
            patient: reader.option("patient", PatientId::decode_from)?,
            author: reader.public_key("author")?,
            last_updated_ms: reader.u64("last updated")?,
            ciphertext: reader.bytes(MAX_SEALED_BYTES, "ciphertext")?.to_vec(),
            digest: reader.digest("ciphertext digest")?,
            wrapped_key: OwnWrappedKey::from_bytes(reader.bytes(MAX_WRAPPED_KEY_BYTES, "wrapped key")?)
                .map_err(|error| medledger_types::DecodeError::Invalid {
                    what: "wrapped key",
                    reason: error.to_string(),
                })?,
            tokens: reader.list(MAX_TOKENS_PER_VERSION, "tokens", |reader| reader.array("token"))?,
        })
    }
}

/// What a version's ciphertext and wrapped key are bound to: its type, id and version, so a
/// ciphertext moved to another record or version no longer decrypts.
pub(crate) fn context(resource_type: ResourceType, record: RecordId, version: u64) -> Vec<u8> {
    [b"medledger/record/v1".as_slice(), &[resource_type.tag_byte()], &record.0, &version.to_be_bytes()]
        .concat()
}

pub(crate) fn record_key(resource_type: ResourceType, record: RecordId) -> Vec<u8> {
    [[resource_type.tag_byte()].as_slice(), &record.0].concat()
}

pub(crate) fn version_key(resource_type: ResourceType, record: RecordId, version: u64) -> Vec<u8> {
    [record_key(resource_type, record).as_slice(), &version.to_be_bytes()].concat()
}

pub(crate) fn index_key(token: &[u8; 32], resource_type: ResourceType, record: RecordId) -> Vec<u8> {
    [token.as_slice(), &record_key(resource_type, record)].concat()
}

pub(crate) fn record_of_record_key(key: &[u8]) -> RecordId {
    RecordId(key[1..17].try_into().expect("record keys are type ‖ 16-byte id"))
}

pub(crate) fn record_of_index_key(key: &[u8]) -> RecordId {
    record_of_record_key(&key[32..])
}

//! Patient records: what happens between a FHIR request and the vault and chain.
//!
//! - **Write**: the resource is validated ([`medledger_fhir`]), its references and author
//!   checked against the chain, stamped with its id, version and time, sealed with a fresh
//!   data key ([`Vault::seal`]), committed to the vault, and its anchor is signed by the node
//!   and admitted ([`writer`]). Only then is the write answered.
//! - **Read** ([`read`]): the chain says who holds the record and [`authorize_read`] (the one
//!   access decision) says whether the reader may see it. A record this node holds is checked
//!   against its anchor and decrypted here; a record another organisation holds is fetched
//!   from that organisation's node ([`remote`]), checked against the anchor on this node's
//!   own chain, decrypted in memory and never stored.
//! - **Proof** ([`proof`]): each anchored version as a FHIR Provenance, and `$verify`.
//!
//! [`authorize_read`]: medledger_state::access::authorize_read

mod proof;
mod read;
mod remote;
mod writer;

use std::sync::Arc;

use medledger_consensus::exchange::Exchange;
use medledger_crypto::PublicKey;
use medledger_fhir::{FhirError, Resource, Target, TransactionEntry, TransactionMethod};
use medledger_node::Node;
use medledger_state::access::{AccessBasis, AccessDenied};
use medledger_state::{Account, Organization, RecordVersion};
use medledger_types::{OrgId, PatientId, RecordId, ResourceType, Role, TxId};
use medledger_vault::{StoredVersion, Vault, VaultError};
use serde_json::Value;
use zeroize::Zeroizing;

pub use proof::{Verification, provenance_id};
pub use read::{MAX_SEARCH_CANDIDATES, SearchPage};
pub use writer::MAX_QUEUED_WRITES;

/// Why a record request failed. Messages name rules and identifiers, never record content.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The resource or request is not valid FHIR.
    #[error(transparent)]
    Invalid(#[from] FhirError),
    /// No such record (or version) on this chain.
    #[error("{resource_type}/{id} is not on this chain")]
    NotFound {
        /// The type.
        resource_type: ResourceType,
        /// The logical id asked for.
        id: String,
    },
    /// A reference names a record that does not exist.
    #[error("{path} references {target}, which is not on this chain")]
    MissingReference {
        /// Where the reference is.
        path: String,
        /// What it names.
        target: String,
    },
    /// The reader may not read it.
    #[error("access denied: {0}")]
    Denied(#[from] AccessDenied),
    /// The writer may not write this type at this node.
    #[error("a {role} of {organization} may not write {resource_type} records at this node")]
    WriteNotAllowed {
        /// The writer's role.
        role: Role,
        /// The writer's organisation.
        organization: OrgId,
        /// The type.
        resource_type: ResourceType,
    },
    /// The record is held by another organisation's node.
    #[error("{resource_type}/{id} is held by {custodian}; only its node writes it")]
    NotCustodian {
        /// The type.
        resource_type: ResourceType,
        /// The id.
        id: String,
        /// Who holds it.
        custodian: OrgId,
    },
    /// A member asked a node of another organisation for a record neither holds.
    #[error("ask your own organisation's node ({organization}) for records other organisations hold")]
    NotYourNode {
        /// The reader's organisation.
        organization: OrgId,
    },
    /// `If-Match` named another version, or a concurrent write got there first.
    #[error("version conflict: the current version is {current}")]
    VersionConflict {
        /// The current version (0: none).
        current: u64,
    },
    /// The update names another patient than the record's.
    #[error("an update cannot move a record to another patient")]
    PatientChanged,
    /// The custodian's node refused the reader.
    #[error("the custodian's node refused: {0}")]
    RemoteDenied(String),
    /// The version failed its integrity check at rest (or in transit); it is not served.
    #[error("the record version failed its integrity check")]
    Tampered,
    /// The record lives on another node that could not be asked or refused.
    #[error("the custodian's node did not serve the record: {0}")]
    Remote(String),
    /// Too many writes are waiting.
    #[error("too many record writes waiting; retry shortly")]
    Busy,
    /// The node refused the anchor (a full mempool, for instance).
    #[error("the record's anchor was refused: {0}")]
    AnchorRefused(String),
    /// The vault failed.
    #[error("vault: {0}")]
    Vault(String),
    /// The record service is shutting down.
    #[error("the record service is not running")]
    Unavailable,
    /// This node's key is not an organisation's node on this chain.
    #[error("this node is not an organisation's node on this chain")]
    NoVault,
}

impl From<VaultError> for RecordError {
    fn from(error: VaultError) -> Self {
        match error {
            VaultError::Tampered => RecordError::Tampered,
            VaultError::VersionConflict { expected } => {
                RecordError::VersionConflict { current: expected.saturating_sub(1) }
            }
            other => RecordError::Vault(other.to_string()),
        }
    }
}

/// Who asks: an authenticated member, as the chain knows it now.
#[derive(Debug, Clone)]
pub struct Requester {
    /// The member's key.
    pub key: PublicKey,
    /// The member's account.
    pub account: Account,
    /// The member's organisation.
    pub organization: Organization,
}

/// A version written.
#[derive(Debug, Clone)]
pub struct Written {
    /// The type.
    pub resource_type: ResourceType,
    /// Its logical id.
    pub id: String,
    /// Its version.
    pub version: u64,
    /// When the node accepted it (`meta.lastUpdated`).
    pub last_updated_ms: u64,
    /// The resource as stored (with id and meta).
    pub resource: Value,
    /// The anchor transaction (also the id of the version's Provenance).
    pub anchor_tx: TxId,
}

/// A version read.
#[derive(Debug)]
pub struct ReadVersion {
    /// Its version.
    pub version: u64,
    /// When it was written.
    pub last_updated_ms: u64,
    /// The resource, as FHIR JSON bytes.
    pub body: Zeroizing<Vec<u8>>,
    /// The anchor on chain, once final.
    pub anchor: Option<RecordVersion>,
    /// Why the reader may read it.
    pub basis: AccessBasis,
}

/// The records service of one node.
#[derive(Clone)]
pub struct Records {
    node: Arc<Node>,
    vault: Arc<Vault>,
    custodian: OrgId,
    writer: writer::Writer,
    exchange: Option<Exchange>,
}

impl std::fmt::Debug for Records {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Records").field("custodian", &self.custodian).finish_non_exhaustive()
    }
}

/// One version ready for the writer, with what its answer needs.
struct Prepared {
    stored: StoredVersion,
    resource: Value,
    id: String,
}

impl Records {
    /// The service for `node`, whose organisation's vault is `vault`. With an `exchange`, it
    /// answers other nodes' requests for records and fetches records other nodes hold.
    ///
    /// # Errors
    /// [`RecordError::NoVault`] if the node's key is not an organisation's node.
    pub fn start(
        node: Arc<Node>,
        vault: Arc<Vault>,
        exchange: Option<Exchange>,
    ) -> Result<Self, RecordError> {
        let custodian = node
            .with_chain(|chain| chain.account(&node.node_key()))
            .map(|account| account.organization)
            .ok_or(RecordError::NoVault)?;
        let writer = writer::Writer::start(Arc::clone(&vault), Arc::clone(&node));
        let records = Self { node, vault, custodian, writer, exchange };
        if let Some(exchange) = &records.exchange {
            exchange.set_handler(Arc::new(remote::Server::new(records.clone())));
        }
        Ok(records)
    }

    /// The organisation whose records this node holds.
    #[must_use]
    pub fn custodian(&self) -> &OrgId {
        &self.custodian
    }

    /// How many integrity failures the vault has met since the node started (an alarm).
    #[must_use]
    pub fn tampered_count(&self) -> u64 {
        self.vault.tampered_count()
    }

    /// The node.
    #[must_use]
    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// Creates a record from a FHIR resource; its id is chosen here.
    ///
    /// # Errors
    /// Invalid resource, missing reference, a writer who may not write it, or a storage failure.
    pub async fn create(
        &self,
        who: &Requester,
        resource_type: ResourceType,
        body: &[u8],
    ) -> Result<Written, RecordError> {
        let resource = medledger_fhir::parse_resource(body, resource_type)?;
        let prepared = self.prepare(who, resource, new_record_id(resource_type), 1, None)?;
        self.commit(vec![prepared]).await.map(|mut written| written.remove(0))
    }

    /// Writes a new version of a record this node holds. `if_match` is the version the writer
    /// last saw, if it said.
    ///
    /// # Errors
    /// As [`Records::create`], plus not found, another custodian, or a version conflict.
    pub async fn update(
        &self,
        who: &Requester,
        resource_type: ResourceType,
        id: &str,
        body: &[u8],
        if_match: Option<u64>,
    ) -> Result<Written, RecordError> {
        let resource = medledger_fhir::parse_resource(body, resource_type)?;
        check_body_id(&resource, id)?;
        let (record, next, patient) = self.next_version(resource_type, id, if_match)?;
        let prepared = self.prepare(who, resource, record, next, Some(patient))?;
        self.commit(vec![prepared]).await.map(|mut written| written.remove(0))
    }

    /// Writes every entry of a transaction Bundle, all or nothing: `urn:uuid:` references
    /// become the ids assigned here, every entry is checked before any is written, and the
    /// versions are committed to the vault in one transaction.
    ///
    /// # Errors
    /// The first entry that fails, as for [`Records::create`] and [`Records::update`].
    pub async fn transaction(
        &self,
        who: &Requester,
        entries: Vec<TransactionEntry>,
    ) -> Result<Vec<Written>, RecordError> {
        let mut targets = Vec::with_capacity(entries.len());
        for entry in &entries {
            let resource_type = entry.resource.resource_type();
            targets.push(match &entry.method {
                TransactionMethod::Create => (new_record_id(resource_type), 1, None),
                TransactionMethod::Update { id, if_match } => {
                    check_body_id(&entry.resource, id)?;
                    let (record, next, patient) = self.next_version(resource_type, id, *if_match)?;
                    (record, next, Some(patient))
                }
            });
        }
        let ids: Vec<String> = entries
            .iter()
            .zip(&targets)
            .map(|(entry, (record, _, _))| record.fhir_id(entry.resource.resource_type()))
            .collect();
        let urns = medledger_fhir::urn_map(&entries, &ids);
        let in_bundle: Vec<(ResourceType, RecordId)> = entries
            .iter()
            .zip(&targets)
            .map(|(entry, (record, _, _))| (entry.resource.resource_type(), *record))
            .collect();
        let mut prepared = Vec::with_capacity(entries.len());
        for (entry, (record, version, patient)) in entries.iter().zip(targets) {
            let resource = entry.resolve(&urns)?;
            prepared.push(self.prepare_with(who, resource, record, version, patient, &in_bundle)?);
        }
        // Patients are anchored first: the chain accepts patient data only for a Patient
        // record it already holds. The answer keeps the Bundle's order.
        let mut order: Vec<usize> = (0..prepared.len()).collect();
        order.sort_by_key(|&index| prepared[index].stored.resource_type != ResourceType::Patient);
        let mut slots: Vec<Option<Prepared>> = prepared.into_iter().map(Some).collect();
        let anchored_first =
            order.iter().map(|&index| slots[index].take().expect("each entry once")).collect();
        let written = self.commit(anchored_first).await?;
        let mut answers: Vec<Option<Written>> = (0..order.len()).map(|_| None).collect();
        for (index, written) in order.into_iter().zip(written) {
            answers[index] = Some(written);
        }
        Ok(answers.into_iter().map(|written| written.expect("every entry written")).collect())
    }

    /// The record an update names, its next version and its patient; checks custody and
    /// `If-Match`.
    fn next_version(
        &self,
        resource_type: ResourceType,
        id: &str,
        if_match: Option<u64>,
    ) -> Result<(RecordId, u64, Option<PatientId>), RecordError> {
        let record = parse_id(resource_type, id)?;
        let Some(current) = self.vault.head(resource_type, record)? else {
            return match self.node.with_chain(|chain| chain.record(resource_type, &record)) {
                Some(head) => {
                    Err(RecordError::NotCustodian { resource_type, id: id.into(), custodian: head.custodian })
                }
                None => Err(RecordError::NotFound { resource_type, id: id.into() }),
            };
        };
        if if_match.is_some_and(|expected| expected != current) {
            return Err(RecordError::VersionConflict { current });
        }
        let previous = self.vault.get(resource_type, record, current)?.ok_or(RecordError::Tampered)?;
        Ok((record, current + 1, previous.patient))
    }

    fn prepare(
        &self,
        who: &Requester,
        resource: Resource,
        record: RecordId,
        version: u64,
        previous_patient: Option<Option<PatientId>>,
    ) -> Result<Prepared, RecordError> {
        self.prepare_with(who, resource, record, version, previous_patient, &[])
    }

    /// Checks what only the node can check (the writer, references, the patient), then stamps
    /// and seals one version. `in_bundle` are records written by the same transaction.
    fn prepare_with(
        &self,
        who: &Requester,
        mut resource: Resource,
        record: RecordId,
        version: u64,
        previous_patient: Option<Option<PatientId>>,
        in_bundle: &[(ResourceType, RecordId)],
    ) -> Result<Prepared, RecordError> {
        let resource_type = resource.resource_type();
        let may_write = who.organization.id == self.custodian
            && medledger_state::authorization::may_write_record(
                who.organization.kind,
                who.account.role,
                resource_type,
            );
        if !may_write {
            return Err(RecordError::WriteNotAllowed {
                role: who.account.role,
                organization: who.organization.id.clone(),
                resource_type,
            });
        }
        self.check_references(&resource, in_bundle)?;
        let id = record.fhir_id(resource_type);
        let last_updated_ms = medledger_node::now_ms();
        resource.stamp(&id, version, last_updated_ms);
        let patient = patient_of(&resource)?;
        if previous_patient.is_some_and(|previous| previous != patient) {
            return Err(RecordError::PatientChanged);
        }
        let tokens = self.tokens(&resource, patient);
        let json = resource.into_json();
        let plaintext = Zeroizing::new(serde_json::to_vec(&json).expect("JSON values serialize"));
        let sealed = self.vault.seal(resource_type, record, version, &plaintext);
        let stored = StoredVersion {
            resource_type,
            record,
            version,
            custodian: self.custodian.clone(),
            patient,
            author: who.key,
            last_updated_ms,
            ciphertext: sealed.ciphertext,
            digest: sealed.digest,
            wrapped_key: sealed.wrapped_key,
            tokens,
        };
        Ok(Prepared { stored, resource: json, id })
    }

    async fn commit(&self, prepared: Vec<Prepared>) -> Result<Vec<Written>, RecordError> {
        let mut versions = Vec::with_capacity(prepared.len());
        let mut answers = Vec::with_capacity(prepared.len());
        for Prepared { stored, resource, id } in prepared {
            answers.push((stored.resource_type, id, stored.version, stored.last_updated_ms, resource));
            versions.push(stored);
        }
        let anchors = self.writer.write(versions).await?;
        Ok(answers
            .into_iter()
            .zip(anchors)
            .map(|((resource_type, id, version, last_updated_ms, resource), anchor_tx)| Written {
                resource_type,
                id,
                version,
                last_updated_ms,
                resource,
                anchor_tx,
            })
            .collect())
    }

    /// Every literal reference must name a record on this chain, one this node has written
    /// and is anchoring, or one written by the same transaction.
    fn check_references(
        &self,
        resource: &Resource,
        in_bundle: &[(ResourceType, RecordId)],
    ) -> Result<(), RecordError> {
        for reference in resource.references() {
            let Target::Resource { resource_type, id, .. } = &reference.target else {
                // Unresolved urn:uuid: references are refused by validation after resolving.
                continue;
            };
            let known = match RecordId::parse_fhir_id(*resource_type, id) {
                Err(_) => false,
                Ok(record) => {
                    in_bundle.contains(&(*resource_type, record))
                        || self.node.with_chain(|chain| chain.record(*resource_type, &record).is_some())
                        // A vault failure is the node's fault, not a missing reference.
                        || self.vault.head(*resource_type, record)?.is_some()
                }
            };
            if !known {
                return Err(RecordError::MissingReference {
                    path: reference.path.clone(),
                    target: format!("{resource_type}/{id}"),
                });
            }
        }
        Ok(())
    }

    /// The blind tokens a version is found by: its patient, codes and categories.
    fn tokens(&self, resource: &Resource, patient: Option<PatientId>) -> Vec<[u8; 32]> {
        let patient = patient.map(|patient| self.vault.token("patient", &patient.to_string()));
        let codes = resource.codes().iter().map(|token| self.vault.token("code", &token.code));
        let categories = resource.categories().iter().map(|token| self.vault.token("category", &token.code));
        let mut tokens: Vec<[u8; 32]> = patient.into_iter().chain(codes).chain(categories).collect();
        tokens.sort_unstable();
        tokens.dedup();
        tokens.truncate(medledger_vault::MAX_TOKENS_PER_VERSION);
        tokens
    }
}

/// An update's body may leave `id` out, or must repeat the URL's.
fn check_body_id(resource: &Resource, id: &str) -> Result<(), RecordError> {
    match resource.id() {
        Some(body_id) if body_id != id => {
            Err(FhirError::Invalid { path: "id".into(), reason: "must equal the id in the URL".into() }
                .into())
        }
        _ => Ok(()),
    }
}

/// The pseudonymous patient a stamped resource belongs to.
fn patient_of(resource: &Resource) -> Result<Option<PatientId>, RecordError> {
    let Some(reference) = resource.patient_reference() else {
        return Ok(None);
    };
    let record = RecordId::parse_fhir_id(ResourceType::Patient, reference).map_err(|_| {
        RecordError::MissingReference { path: "subject".into(), target: format!("Patient/{reference}") }
    })?;
    Ok(Some(PatientId(record.0)))
}

pub(crate) fn parse_id(resource_type: ResourceType, id: &str) -> Result<RecordId, RecordError> {
    RecordId::parse_fhir_id(resource_type, id)
        .map_err(|_| RecordError::NotFound { resource_type, id: id.into() })
}

/// Leading bytes of a time-ordered record id: the milliseconds since the Unix epoch, big-endian
/// (48 bits last until the year 10889).
const RECORD_ID_TIME_BYTES: usize = 6;

/// A fresh record id.
///
/// A Patient's id is its pseudonymous patient id: 128 random bits, derived from nothing. Any
/// other record's id starts with the time it was created, in milliseconds, followed by 80
/// random bits, as a UUIDv7 does: new records then sort after the older ones, so the vault's
/// and the chain's tables keyed by record id take them at their right edge instead of
/// rewriting a page at a random place for each. The time reveals nothing the chain does not
/// already show: the block that anchors version 1 carries it.
fn new_record_id(resource_type: ResourceType) -> RecordId {
    let mut bytes = [0; 16];
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    if resource_type != ResourceType::Patient {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX));
        bytes[..RECORD_ID_TIME_BYTES].copy_from_slice(&now_ms.to_be_bytes()[8 - RECORD_ID_TIME_BYTES..]);
    }
    RecordId(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time_prefix_ms(id: RecordId) -> u64 {
        let mut bytes = [0; 8];
        bytes[8 - RECORD_ID_TIME_BYTES..].copy_from_slice(&id.0[..RECORD_ID_TIME_BYTES]);
        u64::from_be_bytes(bytes)
    }

    #[test]
    fn record_ids_sort_by_creation_and_patient_ids_stay_random() {
        let now_ms = || {
            let since =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970");
            u64::try_from(since.as_millis()).expect("fits")
        };
        let before = now_ms();
        let first = new_record_id(ResourceType::Observation);
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = new_record_id(ResourceType::Observation);
        let after = now_ms();
        assert!(first < second, "a later record sorts after an earlier one");
        for id in [first, second] {
            assert!((before..=after).contains(&time_prefix_ms(id)), "the id starts with its creation time");
        }
        assert_ne!(first.0[RECORD_ID_TIME_BYTES..], second.0[RECORD_ID_TIME_BYTES..], "80 random bits");
        // A patient id is a pseudonym: nothing in it is the time (a 2^-48 chance of a false alarm).
        let patient = new_record_id(ResourceType::Patient);
        assert!(!(before..=after).contains(&time_prefix_ms(patient)), "no time in a patient id");
    }
}

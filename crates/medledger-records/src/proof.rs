//! What the chain proves about a record version: its FHIR Provenance (who wrote it, for which
//! organisation, when, signed by the custodian's node) and `$verify` (its ciphertext matches
//! the anchor, and the anchor is in a committed block).

use base64::Engine as _;
use medledger_crypto::Digest;
use medledger_crypto::merkle::InclusionProof;
use medledger_fhir::format_instant;
use medledger_node::TxInclusion;
use medledger_state::RecordVersion;
use medledger_types::{Payload, RecordAnchor, ResourceType, TxId};
use serde_json::{Value, json};

use crate::{RecordError, Records, Requester, parse_id};

/// Identifier system of member keys (hex Ed25519 public keys) in Provenance.
const MEMBER_KEY_SYSTEM: &str = "urn:medledger:member-key";
/// Identifier system of node keys.
const NODE_KEY_SYSTEM: &str = "urn:medledger:node-key";
/// Identifier system of organisation ids.
const ORGANIZATION_SYSTEM: &str = "urn:medledger:organization";
/// Identifier system of a version's ciphertext digest (hex SHA-256).
const CIPHERTEXT_SYSTEM: &str = "urn:medledger:ciphertext-sha256";
/// ASTM E1762-95 signature types; 1.2.840.10065.1.12.1.14 is a source signature: the
/// custodian's node signing the anchor of what it holds.
const SIGNATURE_TYPE_SYSTEM: &str = "urn:iso-astm:E1762-95:2013";
const SOURCE_SIGNATURE: &str = "1.2.840.10065.1.12.1.14";

/// The Provenance id of the version anchored by transaction `anchor_tx`.
#[must_use]
pub fn provenance_id(anchor_tx: &TxId) -> String {
    anchor_tx.to_string()
}

/// The outcome of `$verify` for one version.
#[derive(Debug, Clone)]
pub struct Verification {
    /// The version checked.
    pub version: u64,
    /// Whether the ciphertext matches the anchor and decrypts, and the anchor is committed.
    pub verified: bool,
    /// Why not, when not.
    pub problem: Option<String>,
    /// The anchored SHA-256 of the ciphertext.
    pub ciphertext_digest: Digest,
    /// The anchoring transaction.
    pub anchor_tx: TxId,
    /// Its block and inclusion proof.
    pub inclusion: TxInclusion,
}

impl Verification {
    /// The block hash of the anchor's block.
    #[must_use]
    pub fn block_hash(&self) -> Digest {
        self.inclusion.block.hash()
    }

    /// The proof of the anchor's inclusion under the block's `tx_root`.
    #[must_use]
    pub fn proof(&self) -> &InclusionProof {
        &self.inclusion.proof
    }
}

impl Records {
    /// The Provenance of the version anchored by `provenance_id` (its anchor transaction).
    ///
    /// # Errors
    /// Not found (no such anchor), or the reader may not read the record.
    pub fn provenance(&self, who: &Requester, provenance_id: &str) -> Result<Value, RecordError> {
        let not_found =
            || RecordError::NotFound { resource_type: ResourceType::Provenance, id: provenance_id.into() };
        let tx_id: TxId = provenance_id.parse().map_err(|_| not_found())?;
        let inclusion =
            self.node.tx_inclusion(&tx_id).map_err(|error| RecordError::Vault(error.to_string()))?;
        let inclusion = inclusion.ok_or_else(not_found)?;
        let Payload::Record(anchor) = &inclusion.transaction().body.payload else { return Err(not_found()) };
        let (head, version) = self.node.with_chain(|chain| {
            (
                chain.record(anchor.resource_type, &anchor.record),
                chain.record_version(anchor.resource_type, &anchor.record, anchor.version),
            )
        });
        // A rejected anchor (its receipt says why) anchors nothing.
        let (Some(head), Some(version)) = (head, version) else { return Err(not_found()) };
        if version.tx_id != tx_id {
            return Err(not_found());
        }
        self.authorize(who, &head)?;
        Ok(provenance_json(anchor, &version, &head.custodian.to_string(), &inclusion))
    }

    /// Checks a version of a record against its anchor: the ciphertext the custodian holds
    /// hashes to the anchored digest and decrypts, and the anchor is in a committed block.
    ///
    /// # Errors
    /// Not found, or the reader may not read the record. A version that fails its check is
    /// not an error: the answer says so.
    pub async fn verify(
        &self,
        who: &Requester,
        resource_type: ResourceType,
        id: &str,
        version: Option<u64>,
    ) -> Result<Verification, RecordError> {
        let record = parse_id(resource_type, id)?;
        let not_found = || RecordError::NotFound { resource_type, id: id.into() };
        let head =
            self.node.with_chain(|chain| chain.record(resource_type, &record)).ok_or_else(not_found)?;
        self.authorize(who, &head)?;
        let version = version.unwrap_or(head.version);
        let anchor = self
            .node
            .with_chain(|chain| chain.record_version(resource_type, &record, version))
            .ok_or_else(not_found)?;
        let inclusion = self
            .node
            .tx_inclusion(&anchor.tx_id)
            .map_err(|error| RecordError::Vault(error.to_string()))?
            .ok_or_else(not_found)?;
        let checked = match inclusion.proof.verify(&inclusion.leaf_hash, &inclusion.block.header.tx_root) {
            Err(error) => Err(format!("the inclusion proof does not verify: {error}")),
            Ok(()) => match self.read(who, resource_type, id, Some(version)).await {
                Ok(_) => Ok(()),
                Err(RecordError::Tampered) => {
                    Err("the stored ciphertext does not match its anchor or does not decrypt".to_owned())
                }
                Err(error) => return Err(error),
            },
        };
        Ok(Verification {
            version,
            verified: checked.is_ok(),
            problem: checked.err(),
            ciphertext_digest: anchor.ciphertext_digest,
            anchor_tx: anchor.tx_id,
            inclusion,
        })
    }
}

fn identifier(system: &str, value: &dyn std::fmt::Display) -> Value {
    json!({ "identifier": { "system": system, "value": value.to_string() } })
}

/// The Provenance of one anchored version.
fn provenance_json(
    anchor: &RecordAnchor,
    version: &RecordVersion,
    custodian: &str,
    inclusion: &TxInclusion,
) -> Value {
    let id = anchor.record.fhir_id(anchor.resource_type);
    let recorded = format_instant(version.time_ms);
    let activity = if anchor.version == 1 { "CREATE" } else { "UPDATE" };
    let signature = inclusion.transaction().signature;
    json!({
        "resourceType": "Provenance",
        "id": provenance_id(&version.tx_id),
        "meta": { "versionId": "1", "lastUpdated": recorded },
        "target": [{ "reference": format!("{}/{id}/_history/{}", anchor.resource_type, anchor.version) }],
        "recorded": recorded,
        "policy": [format!("urn:medledger:tx:{}", version.tx_id)],
        "activity": { "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
            "code": activity,
        }] },
        "agent": [
            {
                "type": { "coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                    "code": "author",
                }] },
                "who": identifier(MEMBER_KEY_SYSTEM, &version.author),
                "onBehalfOf": identifier(ORGANIZATION_SYSTEM, &custodian),
            },
            {
                "type": { "coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                    "code": "custodian",
                }] },
                "who": identifier(NODE_KEY_SYSTEM, &version.node),
                "onBehalfOf": identifier(ORGANIZATION_SYSTEM, &custodian),
            },
        ],
        "entity": [{ "role": "source", "what": identifier(CIPHERTEXT_SYSTEM, &anchor.ciphertext_digest) }],
        "signature": [{
            "type": [{ "system": SIGNATURE_TYPE_SYSTEM, "code": SOURCE_SIGNATURE }],
            "when": recorded,
            "who": identifier(NODE_KEY_SYSTEM, &version.node),
            "targetFormat": "application/octet-stream",
            "sigFormat": "application/octet-stream",
            "data": base64::engine::general_purpose::STANDARD.encode(signature.0),
        }],
    })
}

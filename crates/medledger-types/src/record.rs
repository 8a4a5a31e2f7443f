//! Patient records as the chain sees them: which FHIR resource, which version, whose patient,
//! held by which organisation, and the SHA-256 of its ciphertext. The record itself never
//! leaves its custodian's vault.

use std::fmt;
use std::str::FromStr;

use medledger_crypto::{Digest, PublicKey};
use serde::{Deserialize, Serialize};

use crate::codec::{DecodeError, Reader, Writer};
use crate::identity::{PatientId, named_enum};

named_enum!(
    /// The FHIR R4 resource types MedLedger keeps as records.
    ResourceType, "resource type" {
        /// Demographics of a patient (its logical id is the pseudonymous [`PatientId`]).
        Patient = 1, "Patient";
        /// A person who provides care.
        Practitioner = 2, "Practitioner";
        /// A care organisation.
        Organization = 3, "Organization";
        /// A measurement or assertion about a patient.
        Observation = 4, "Observation";
        /// A problem, diagnosis or other clinical condition.
        Condition = 5, "Condition";
        /// An allergy or intolerance.
        AllergyIntolerance = 6, "AllergyIntolerance";
        /// An order for a medication.
        MedicationRequest = 7, "MedicationRequest";
        /// A medication handed out against an order.
        MedicationDispense = 8, "MedicationDispense";
        /// A clinical document with its attachment.
        DocumentReference = 9, "DocumentReference";
        /// Who created or changed a record, when, and with which signature.
        Provenance = 10, "Provenance";
    }
);

impl ResourceType {
    /// Whether resources of this type belong to one patient's compartment (and so carry a
    /// pseudonymous patient id on chain).
    #[must_use]
    pub fn is_patient_data(self) -> bool {
        !matches!(self, ResourceType::Practitioner | ResourceType::Organization)
    }
}

/// A record's logical id: 128 bits chosen by its custodian's node, never derived from the
/// record's contents. For a Patient resource it is the patient's random [`PatientId`]; other
/// records' ids start with their creation time (see `medledger-records`), then 80 random bits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordId(pub [u8; 16]);

/// Why text is not a record id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a record id is 32 lowercase hex digits (\"pt-\" and 32 for a Patient)")]
pub struct RecordIdParseError;

impl RecordId {
    /// The FHIR logical id of a resource of type `resource_type` with this record id.
    #[must_use]
    pub fn fhir_id(self, resource_type: ResourceType) -> String {
        match resource_type {
            ResourceType::Patient => PatientId(self.0).to_string(),
            _ => hex::encode(self.0),
        }
    }

    /// Parses the FHIR logical id of a resource of type `resource_type`.
    pub fn parse_fhir_id(resource_type: ResourceType, text: &str) -> Result<Self, RecordIdParseError> {
        if resource_type == ResourceType::Patient {
            return text.parse::<PatientId>().map(|id| Self(id.0)).map_err(|_| RecordIdParseError);
        }
        text.parse()
    }

    /// Appends the canonical encoding.
    pub fn encode_to(self, writer: &mut Writer) {
        writer.fixed(&self.0);
    }

    /// Reads the canonical encoding.
    pub fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        reader.array("record id").map(Self)
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecordId({self})")
    }
}

impl FromStr for RecordId {
    type Err = RecordIdParseError;
    fn from_str(text: &str) -> Result<Self, RecordIdParseError> {
        if text.len() != 32 || text.bytes().any(|byte| byte.is_ascii_uppercase()) {
            return Err(RecordIdParseError);
        }
        let mut bytes = [0; 16];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| RecordIdParseError)?;
        Ok(Self(bytes))
    }
}

medledger_crypto::serde_as_text!(RecordId);

/// One version of a record, as anchored on chain by its custodian's node. It names no person:
/// the patient is a random pseudonym and the content is only the SHA-256 of its ciphertext.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordAnchor {
    /// The FHIR resource type.
    pub resource_type: ResourceType,
    /// The record's logical id.
    pub record: RecordId,
    /// The version: 1 when created, one more for every update.
    pub version: u64,
    /// The patient the record is about, for patient data (see [`ResourceType::is_patient_data`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<PatientId>,
    /// SHA-256 of the version's ciphertext in the custodian's vault.
    pub ciphertext_digest: Digest,
    /// The member of the custodian organisation who wrote this version.
    pub author: PublicKey,
}

impl RecordAnchor {
    /// Appends the canonical encoding.
    pub fn encode_to(&self, writer: &mut Writer) {
        self.resource_type.encode_to(writer);
        self.record.encode_to(writer);
        writer.u64(self.version);
        writer.option(self.patient.as_ref(), |writer, patient| patient.encode_to(writer));
        writer.digest(&self.ciphertext_digest);
        writer.public_key(&self.author);
    }

    /// Reads the canonical encoding.
    pub fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            resource_type: ResourceType::decode_from(reader)?,
            record: RecordId::decode_from(reader)?,
            version: reader.u64("record version")?,
            patient: reader.option("record patient", PatientId::decode_from)?,
            ciphertext_digest: reader.digest("ciphertext digest")?,
            author: reader.public_key("record author")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fhir_ids_round_trip_per_resource_type() {
        let id = RecordId([0xab; 16]);
        for &resource_type in ResourceType::ALL {
            let text = id.fhir_id(resource_type);
            assert_eq!(RecordId::parse_fhir_id(resource_type, &text), Ok(id));
        }
        assert_eq!(id.fhir_id(ResourceType::Patient), format!("pt-{}", "ab".repeat(16)));
        assert!(RecordId::parse_fhir_id(ResourceType::Observation, &"AB".repeat(16)).is_err());
        assert!(RecordId::parse_fhir_id(ResourceType::Patient, &"ab".repeat(16)).is_err());
        assert!(RecordId::parse_fhir_id(ResourceType::Observation, "123").is_err());
    }

    #[test]
    fn resource_type_names_are_fhir_names() {
        assert_eq!("DocumentReference".parse(), Ok(ResourceType::DocumentReference));
        assert!("documentreference".parse::<ResourceType>().is_err());
        assert!(!ResourceType::Practitioner.is_patient_data());
        assert!(ResourceType::Provenance.is_patient_data());
    }
}

//! Who may read a record: **the** read-access decision. The API, the CLI and the custodian
//! node answering another node all ask here, against the replicated state, so every node
//! decides alike. Patient consent will plug in here as one more basis.

use medledger_types::Role;
use serde::Serialize;

use crate::Chain;
use crate::authorization::is_clinician;
use crate::records::{Account, CareRelationship, Organization, RecordHead};

/// Why a read is allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessBasis {
    /// The reader's organisation holds the record.
    Custodian,
    /// The reader's organisation treats the patient.
    TreatingRelationship,
    /// The reader is the patient the record is about.
    OwnRecord,
    /// The record is directory data (a practitioner or organisation), open to every member.
    Directory,
}

/// Why a read is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum AccessDenied {
    /// The reader's key is unknown, revoked or rotated out, or its organisation suspended.
    #[error("the reader is not an active member")]
    InactiveReader,
    /// The reader's role does not read patient records.
    #[error("a {0} does not read patient records")]
    Role(Role),
    /// The reader's organisation has no treating relationship with the record's patient.
    #[error("the reader's organisation has no treating relationship with the patient")]
    NoTreatingRelationship,
}

/// The reader as the decision sees it.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    /// The reader's account.
    pub account: &'a Account,
    /// The reader's organisation.
    pub organization: &'a Organization,
}

/// Decides whether `reader` may read the record whose head is `head`, at the chain's head.
///
/// # Errors
/// The reason for a refusal; a refusal names no patient and no record content.
pub fn authorize_read(
    chain: &Chain,
    reader: &Reader<'_>,
    head: &RecordHead,
) -> Result<AccessBasis, AccessDenied> {
    if !reader.account.is_active() || !reader.organization.active {
        return Err(AccessDenied::InactiveReader);
    }
    let Some(patient) = head.patient else {
        return Ok(AccessBasis::Directory);
    };
    if reader.account.role == Role::Patient {
        return if reader.account.patient_id == Some(patient) {
            Ok(AccessBasis::OwnRecord)
        } else {
            Err(AccessDenied::Role(Role::Patient))
        };
    }
    if !is_clinician(reader.account.role) {
        return Err(AccessDenied::Role(reader.account.role));
    }
    if reader.organization.id == head.custodian {
        return Ok(AccessBasis::Custodian);
    }
    // Either basis of a relationship (its own record, or a referral) lets a clinician read.
    match chain.care_relationship(&patient, &reader.organization.id) {
        Some(CareRelationship::Custodian { .. } | CareRelationship::Referral { .. }) => {
            Ok(AccessBasis::TreatingRelationship)
        }
        None => Err(AccessDenied::NoTreatingRelationship),
    }
}

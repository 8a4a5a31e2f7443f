//! Patient records: a node anchors the versions its vault holds, and clinicians refer patients
//! to other organisations. Both build the treating relationships read access rests on.

use medledger_types::{OrgId, PatientId, RecordAnchor, RejectReason, ResourceType};

use super::{Call, PayloadResult};
use crate::authorization::{is_care_provider, may_write_record};
use crate::records::{CareRelationship, RecordHead, RecordVersion, keys};

/// Anchors one version of a record held by the signing node's organisation.
pub(super) fn record(call: &mut Call<'_, '_, '_>, anchor: &RecordAnchor) -> PayloadResult {
    let head_key = keys::record(anchor.resource_type, &anchor.record);
    let previous = call.overlay.read::<RecordHead>(&head_key);
    if previous.as_ref().is_some_and(|head| head.custodian != call.organization.id) {
        return Err(RejectReason::RecordCustodian);
    }
    check_author(call, anchor)?;
    check_patient(call, anchor)?;
    let expected = match previous {
        None => 1,
        Some(head) if head.patient != anchor.patient => return Err(RejectReason::RecordPatient),
        Some(head) => head.version + 1,
    };
    if anchor.version != expected {
        return Err(RejectReason::RecordVersion { expected });
    }
    let head = RecordHead {
        custodian: call.organization.id.clone(),
        patient: anchor.patient,
        version: anchor.version,
    };
    call.overlay.put(head_key, &head);
    let version = RecordVersion {
        ciphertext_digest: anchor.ciphertext_digest,
        author: anchor.author,
        node: call.signer_key,
        tx_id: call.tx_id,
        height: call.context.height,
        time_ms: call.context.time_ms,
    };
    call.overlay.put(keys::record_version(anchor.resource_type, &anchor.record, anchor.version), &version);
    if let Some(patient) = &anchor.patient {
        let care = keys::care(patient, &call.organization.id);
        if !call.overlay.contains(&care) {
            call.overlay.put(care, &CareRelationship::Custodian { since_height: call.context.height });
        }
    }
    Ok(())
}

/// The author is an active member of the node's organisation whose role writes this type.
fn check_author(call: &Call<'_, '_, '_>, anchor: &RecordAnchor) -> PayloadResult {
    let author = call.overlay.account(&anchor.author).ok_or(RejectReason::RecordAuthor)?;
    let allowed = author.is_active()
        && author.organization == call.organization.id
        && may_write_record(call.organization.kind, author.role, anchor.resource_type);
    if allowed { Ok(()) } else { Err(RejectReason::RecordAuthor) }
}

/// A Patient record is its own patient; the directory (practitioners, organisations) has none;
/// every other record is about a patient whose Patient record is on the chain, except that a
/// Provenance may also be about a directory record.
fn check_patient(call: &Call<'_, '_, '_>, anchor: &RecordAnchor) -> PayloadResult {
    let fits = match (anchor.resource_type, &anchor.patient) {
        (ResourceType::Patient, Some(patient)) => patient.0 == anchor.record.0,
        (ResourceType::Practitioner | ResourceType::Organization, patient) => patient.is_none(),
        (ResourceType::Provenance, None) => true,
        (_, Some(patient)) => {
            call.overlay.contains(&keys::record(ResourceType::Patient, &medledger_types::RecordId(patient.0)))
        }
        (_, None) => false,
    };
    if fits { Ok(()) } else { Err(RejectReason::RecordPatient) }
}

/// Refers a patient the signer's organisation treats to another care provider.
pub(super) fn refer(call: &mut Call<'_, '_, '_>, patient: &PatientId, organization: &OrgId) -> PayloadResult {
    if !call.overlay.contains(&keys::care(patient, &call.organization.id)) {
        return Err(RejectReason::NoCareRelationship);
    }
    let target = call.overlay.registry().get(organization).ok_or(RejectReason::UnknownOrganization)?;
    if !target.active || !is_care_provider(target.kind) {
        return Err(RejectReason::OrganizationStatus);
    }
    let care = keys::care(patient, organization);
    // A relationship the organisation already has stands: its first basis is the one kept.
    if !call.overlay.contains(&care) {
        let referral = CareRelationship::Referral {
            referred_by: call.organization.id.clone(),
            since_height: call.context.height,
        };
        call.overlay.put(care, &referral);
    }
    Ok(())
}

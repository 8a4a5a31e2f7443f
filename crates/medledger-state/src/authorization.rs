//! The authorization table: which role, in which kind of organisation, may submit which kind
//! of transaction. This is the only place that decides it; `execute` asks here before running
//! any payload, and the API and CLI show this table rather than restating it.
//!
//! The table says what a role may *attempt*. Rules about the target — an administrator acts
//! only on its own organisation's members, a non-administrator rotates only its own key — are
//! checked by the transaction's execution.

use medledger_types::{OrgKind, ResourceType, Role, TxKind};

/// Whether a member with `role` can exist in an organisation of `kind` (the rule lives with
/// the identity types, so genesis validation uses it too).
#[must_use]
pub fn role_exists_in(kind: OrgKind, role: Role) -> bool {
    kind.admits_role(role)
}

/// Whether a member with `role` in an organisation of `kind` may submit a transaction of
/// kind `tx`.
#[must_use]
pub fn may_submit(kind: OrgKind, role: Role, tx: TxKind) -> bool {
    // An organisation's node signs only the anchors of the records its vault holds; its key
    // changes with the organisation's registration, never by rotation.
    if role == Role::Node {
        return tx == TxKind::Record && is_care_provider(kind);
    }
    if !role_exists_in(kind, role) {
        return false;
    }
    match tx {
        // Every member may replace its own key.
        TxKind::RotateKey => true,
        TxKind::Record => false,
        // Those who treat a patient refer the patient onward.
        TxKind::Refer => is_clinician(role) && is_care_provider(kind),
        TxKind::EnrolMember
        | TxKind::RevokeMember
        | TxKind::Propose
        | TxKind::Vote
        | TxKind::ExecuteProposal => role == Role::Administrator,
        // Clinical documents are anchored by those who produce them.
        TxKind::Anchor => {
            matches!(role, Role::Physician | Role::Nurse | Role::LaboratoryTechnician | Role::Pharmacist)
                && matches!(
                    kind,
                    OrgKind::Hospital | OrgKind::Clinic | OrgKind::Laboratory | OrgKind::Pharmacy
                )
        }
    }
}

/// Organisations that hold patient records: they treat, test or dispense.
#[must_use]
pub fn is_care_provider(kind: OrgKind) -> bool {
    matches!(kind, OrgKind::Hospital | OrgKind::Clinic | OrgKind::Laboratory | OrgKind::Pharmacy)
}

/// Roles that take part in a patient's care.
#[must_use]
pub fn is_clinician(role: Role) -> bool {
    matches!(role, Role::Physician | Role::Nurse | Role::LaboratoryTechnician | Role::Pharmacist)
}

/// Whether a member with `role` in an organisation of `kind` may author records of
/// `resource_type` (the node anchors them; the chain checks the author against this).
#[must_use]
pub fn may_write_record(kind: OrgKind, role: Role, resource_type: ResourceType) -> bool {
    use ResourceType as R;
    if !is_care_provider(kind) || !role_exists_in(kind, role) {
        return false;
    }
    match resource_type {
        // The directory of who and what provides care is kept by administrators.
        R::Practitioner | R::Organization => role == Role::Administrator,
        R::Patient => matches!(role, Role::Administrator | Role::Physician | Role::Nurse),
        R::Observation | R::DocumentReference | R::Provenance => is_clinician(role),
        R::Condition | R::AllergyIntolerance => matches!(role, Role::Physician | Role::Nurse),
        R::MedicationRequest => role == Role::Physician,
        R::MedicationDispense => role == Role::Pharmacist,
    }
}

/// Every (organisation kind, role, transaction kind) the table allows, for display.
pub fn allowed() -> impl Iterator<Item = (OrgKind, Role, TxKind)> {
    OrgKind::ALL.iter().flat_map(|kind| {
        Role::ALL.iter().flat_map(move |role| {
            TxKind::ALL
                .iter()
                .filter(move |tx| may_submit(*kind, *role, **tx))
                .map(move |tx| (*kind, *role, *tx))
        })
    })
}

//! Member keys: enrolment, rotation and revocation, each by the member's own organisation.

use medledger_crypto::PublicKey;
use medledger_types::{PatientId, RejectReason, Role};

use super::{Call, PayloadResult};
use crate::authorization::role_exists_in;
use crate::records::{Account, MemberStatus, keys};

/// Enrols a new key in the signer's organisation.
pub(super) fn enrol(
    call: &mut Call<'_, '_, '_>,
    public_key: &PublicKey,
    role: Role,
    patient_id: Option<PatientId>,
) -> PayloadResult {
    if !role_exists_in(call.organization.kind, role) {
        return Err(RejectReason::RoleNotAllowed);
    }
    if (role == Role::Patient) != patient_id.is_some() {
        return Err(RejectReason::PatientIdMismatch);
    }
    if call.overlay.contains(&keys::account(public_key)) {
        return Err(RejectReason::MemberExists);
    }
    if let Some(patient_id) = &patient_id {
        if call.overlay.contains(&keys::patient(patient_id)) {
            return Err(RejectReason::PatientIdExists);
        }
        call.overlay.put(keys::patient(patient_id), public_key);
    }
    let account = Account {
        next_nonce: 0,
        organization: call.organization.id.clone(),
        role,
        patient_id,
        status: MemberStatus::Active,
    };
    call.overlay.put(keys::account(public_key), &account);
    if role == Role::Administrator {
        change_administrator_count(call, 1);
    }
    Ok(())
}

/// Replaces `old_key` by `new_key`: same organisation, role and patient id, fresh nonce.
pub(super) fn rotate(call: &mut Call<'_, '_, '_>, old_key: &PublicKey, new_key: &PublicKey) -> PayloadResult {
    let old = own_active_member(call, old_key)?;
    if old_key != &call.signer_key && call.signer.role != Role::Administrator {
        return Err(RejectReason::NotAuthorized);
    }
    if call.overlay.contains(&keys::account(new_key)) {
        return Err(RejectReason::MemberExists);
    }
    let height = call.context.height;
    let replacement = Account { next_nonce: 0, status: MemberStatus::Active, ..old.clone() };
    if let Some(patient_id) = &old.patient_id {
        call.overlay.put(keys::patient(patient_id), new_key);
    }
    call.overlay.put(keys::account(new_key), &replacement);
    call.overlay.put(
        keys::account(old_key),
        &Account { status: MemberStatus::Rotated { new_key: *new_key, height }, ..old },
    );
    Ok(())
}

/// Revokes a key of the signer's organisation; the last active administrator stays.
pub(super) fn revoke(call: &mut Call<'_, '_, '_>, public_key: &PublicKey) -> PayloadResult {
    let member = own_active_member(call, public_key)?;
    let is_administrator = member.role == Role::Administrator;
    if is_administrator && call.organization.active_administrators <= 1 {
        return Err(RejectReason::LastAdministrator);
    }
    let height = call.context.height;
    call.overlay
        .put(keys::account(public_key), &Account { status: MemberStatus::Revoked { height }, ..member });
    if is_administrator {
        change_administrator_count(call, -1);
    }
    Ok(())
}

/// The active member `key` of the signer's organisation.
fn own_active_member(call: &Call<'_, '_, '_>, key: &PublicKey) -> Result<Account, RejectReason> {
    let member = call.overlay.account(key).ok_or(RejectReason::UnknownMember)?;
    if member.organization != call.organization.id {
        return Err(RejectReason::NotAuthorized);
    }
    if !member.is_active() {
        return Err(RejectReason::MemberInactive);
    }
    // The registry names the node key; only governance may change it.
    if member.role == Role::Node {
        return Err(RejectReason::NodeKey);
    }
    Ok(member)
}

fn change_administrator_count(call: &mut Call<'_, '_, '_>, change: i32) {
    let mut registry = call.overlay.registry().clone();
    let organization =
        registry.get_mut(&call.organization.id).expect("the signer's organisation is registered");
    organization.active_administrators = organization
        .active_administrators
        .checked_add_signed(change)
        .expect("the administrator count never goes below one");
    call.overlay.set_registry(registry);
}

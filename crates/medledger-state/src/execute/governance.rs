//! Consortium governance: a proposal passes when administrators of more than two thirds of
//! the active organisations approve it (one vote per organisation) before it expires.

use std::collections::BTreeSet;

use medledger_types::limits::{MAX_ORGANIZATIONS, MAX_VALIDATORS};
use medledger_types::{GovernanceAction, OrgId, OrgSpec, Parameters, RejectReason, Role, TxId};

use super::{Call, Overlay, PayloadResult};
use crate::records::{Account, MemberStatus, Organization, Proposal, Registry, ValidatorSchedule, keys};

/// Opens a proposal, with the proposer's organisation as its first approval.
pub(super) fn propose(call: &mut Call<'_, '_, '_>, action: &GovernanceAction) -> PayloadResult {
    check_action(call.overlay, action)?;
    let parameters: Parameters = call.overlay.read(keys::PARAMETERS).expect("written at genesis");
    let proposal = Proposal {
        action: action.clone(),
        proposed_by: call.organization.id.clone(),
        created_ms: call.context.time_ms,
        expires_ms: call.context.time_ms.saturating_add(parameters.proposal_ttl_ms),
        approvals: vec![call.organization.id.clone()],
        rejections: Vec::new(),
        executed_height: None,
    };
    // The transaction id is unique (nonces), so the key is new.
    call.overlay.put(keys::proposal(&call.tx_id), &proposal);
    Ok(())
}

/// Records the signer's organisation's vote.
pub(super) fn vote(call: &mut Call<'_, '_, '_>, id: &TxId, approve: bool) -> PayloadResult {
    let mut proposal = open_proposal(call, id)?;
    if proposal.has_voted(&call.organization.id) {
        return Err(RejectReason::AlreadyVoted);
    }
    proposal.record_vote(call.organization.id.clone(), approve);
    call.overlay.put(keys::proposal(id), &proposal);
    Ok(())
}

/// Carries out a proposal that has enough approvals.
pub(super) fn execute_proposal(call: &mut Call<'_, '_, '_>, id: &TxId) -> PayloadResult {
    let mut proposal = open_proposal(call, id)?;
    let registry = call.overlay.registry();
    let active_approvals =
        proposal.approvals.iter().filter(|org| registry.get(org).is_some_and(|org| org.active)).count();
    if !passes(active_approvals, registry.active_count()) {
        return Err(RejectReason::NotEnoughVotes);
    }
    // The state may have changed since the proposal: check the action again.
    check_action(call.overlay, &proposal.action)?;
    apply_action(call.overlay, &proposal.action, call.context.height);
    proposal.executed_height = Some(call.context.height);
    call.overlay.put(keys::proposal(id), &proposal);
    Ok(())
}

/// More than two thirds of the active organisations approve.
#[must_use]
pub fn passes(approvals: usize, active_organizations: usize) -> bool {
    approvals * 3 > active_organizations * 2
}

fn open_proposal(call: &Call<'_, '_, '_>, id: &TxId) -> Result<Proposal, RejectReason> {
    let proposal: Proposal = call.overlay.read(&keys::proposal(id)).ok_or(RejectReason::UnknownProposal)?;
    if proposal.executed_height.is_some() {
        return Err(RejectReason::ProposalClosed);
    }
    if call.context.time_ms > proposal.expires_ms {
        return Err(RejectReason::ProposalExpired);
    }
    Ok(proposal)
}

/// Whether `action` can be carried out on the current state.
fn check_action(overlay: &Overlay<'_>, action: &GovernanceAction) -> PayloadResult {
    let registry = overlay.registry();
    match action {
        GovernanceAction::AdmitOrganization { organization } => {
            check_admission(overlay, registry, organization)
        }
        GovernanceAction::SuspendOrganization { organization } => {
            let org = registry.get(organization).ok_or(RejectReason::UnknownOrganization)?;
            if !org.active {
                return Err(RejectReason::OrganizationStatus);
            }
            if registry.active_count() == 1 {
                return Err(RejectReason::NoValidatorLeft);
            }
            let validators_after = registry.validators().len() - usize::from(org.node.is_some());
            if validators_after == 0 { Err(RejectReason::NoValidatorLeft) } else { Ok(()) }
        }
        GovernanceAction::ReinstateOrganization { organization } => {
            let org = registry.get(organization).ok_or(RejectReason::UnknownOrganization)?;
            if org.active {
                return Err(RejectReason::OrganizationStatus);
            }
            if org.node.is_some() && registry.validators().len() >= MAX_VALIDATORS {
                return Err(RejectReason::RegistryFull);
            }
            Ok(())
        }
        GovernanceAction::ChangeParameters { parameters } => {
            parameters.validate().map_err(|_| RejectReason::InvalidAction)
        }
    }
}

fn check_admission(overlay: &Overlay<'_>, registry: &Registry, spec: &OrgSpec) -> PayloadResult {
    if registry.get(&spec.id).is_some() {
        return Err(RejectReason::OrganizationExists);
    }
    if registry.organizations.len() >= MAX_ORGANIZATIONS {
        return Err(RejectReason::RegistryFull);
    }
    let administrators: BTreeSet<_> = spec.administrators.iter().collect();
    if administrators.is_empty() || administrators.len() != spec.administrators.len() {
        return Err(RejectReason::InvalidAction);
    }
    if administrators.iter().any(|key| overlay.contains(&keys::account(key))) {
        return Err(RejectReason::MemberExists);
    }
    if let Some(node) = &spec.node {
        if registry.uses_node_key(&node.public_key) || administrators.contains(&node.public_key) {
            return Err(RejectReason::InvalidAction);
        }
        if overlay.contains(&keys::account(&node.public_key)) {
            return Err(RejectReason::MemberExists);
        }
        if registry.validators().len() >= MAX_VALIDATORS {
            return Err(RejectReason::RegistryFull);
        }
    }
    Ok(())
}

fn apply_action(overlay: &mut Overlay<'_>, action: &GovernanceAction, height: u64) {
    let mut registry = overlay.registry().clone();
    match action {
        GovernanceAction::AdmitOrganization { organization: spec } => {
            admit(overlay, &mut registry, spec, height);
        }
        GovernanceAction::SuspendOrganization { organization } => {
            set_active(&mut registry, organization, false);
        }
        GovernanceAction::ReinstateOrganization { organization } => {
            set_active(&mut registry, organization, true);
        }
        GovernanceAction::ChangeParameters { parameters } => {
            overlay.put(keys::PARAMETERS.to_vec(), parameters);
            return;
        }
    }
    schedule_validators(overlay, &registry, height);
    overlay.set_registry(registry);
}

fn admit(overlay: &mut Overlay<'_>, registry: &mut Registry, spec: &OrgSpec, height: u64) {
    let node = spec.node.as_ref().map(|node| (&node.public_key, Role::Node));
    for (key, role) in spec.administrators.iter().map(|key| (key, Role::Administrator)).chain(node) {
        let account = Account {
            next_nonce: 0,
            organization: spec.id.clone(),
            role,
            patient_id: None,
            status: MemberStatus::Active,
        };
        overlay.put(keys::account(key), &account);
    }
    registry.insert(Organization {
        id: spec.id.clone(),
        kind: spec.kind,
        node: spec.node.clone(),
        active: true,
        active_administrators: u32::try_from(spec.administrators.len()).expect("bounded by MAX_ORG_ADMINS"),
        admitted_height: height,
    });
}

fn set_active(registry: &mut Registry, organization: &OrgId, active: bool) {
    registry.get_mut(organization).expect("checked by check_action").active = active;
}

/// Schedules the validator set the registry now implies, `validator_change_delay_blocks`
/// after this block, unless it is the set already in force.
fn schedule_validators(overlay: &mut Overlay<'_>, registry: &Registry, height: u64) {
    let parameters: Parameters = overlay.read(keys::PARAMETERS).expect("written at genesis");
    let mut schedule: ValidatorSchedule = overlay.read(keys::VALIDATORS).expect("written at genesis");
    let validators = registry.validators();
    schedule.next = (validators != schedule.current)
        .then(|| (height + parameters.validator_change_delay_blocks, validators));
    overlay.put(keys::VALIDATORS.to_vec(), &schedule);
}

//! Transaction execution: what each transaction kind does to the state.
//!
//! Every transaction first passes the signer checks (registered, active key, active
//! organisation, right chain, right nonce), which consume nothing when they fail. Then its
//! nonce is consumed, the [authorization table](crate::authorization) is asked, and the
//! payload runs; a payload that breaks a rule changes nothing but the nonce.

mod governance;
mod members;
mod records;

pub use governance::passes as passes_governance;

use std::borrow::Cow;
use std::collections::BTreeMap;

use medledger_crypto::{Digest, PublicKey};
use medledger_types::{
    ChainId, Decode, Encode, Label, Outcome, Payload, Receipt, RejectReason, Transaction, TxId,
};

use crate::authorization::may_submit;
use crate::records::{Account, AnchorRecord, MemberStatus, Organization, Registry, ValidatorSchedule, keys};
use crate::state::{State, WriteSet};

/// Reads through pending writes to the base state.
struct Overlay<'a> {
    base: &'a State,
    writes: BTreeMap<Vec<u8>, Vec<u8>>,
    /// The registry as of the pending writes, decoded once per block rather than per signer.
    registry: Registry,
}

impl Overlay<'_> {
    fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        match self.writes.get(key) {
            Some(value) => Some(Cow::Borrowed(value)),
            None => self.base.get(key).map(Cow::Owned),
        }
    }

    fn contains(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// The value under `key`, which `execute` wrote canonically.
    fn read<T: Decode>(&self, key: &[u8]) -> Option<T> {
        let bytes = self.get(key)?;
        Some(
            T::decode(&bytes)
                .unwrap_or_else(|error| panic!("state entry of kind {} is corrupt: {error}", T::NAME)),
        )
    }

    fn account(&self, public_key: &PublicKey) -> Option<Account> {
        self.read(&keys::account(public_key))
    }

    fn registry(&self) -> &Registry {
        &self.registry
    }

    fn set_registry(&mut self, registry: Registry) {
        self.put(keys::ORGANIZATIONS.to_vec(), &registry);
        self.registry = registry;
    }

    fn put(&mut self, key: Vec<u8>, value: &impl Encode) {
        self.writes.insert(key, value.encode());
    }
}

/// Where and when a block executes.
#[derive(Debug, Clone)]
pub struct ExecutionContext<'a> {
    /// The chain's id; transactions for other chains are rejected.
    pub chain_id: &'a ChainId,
    /// Height of the block being executed.
    pub height: u64,
    /// The block's timestamp, which is the only clock the state machine knows.
    pub time_ms: u64,
}

/// What a payload sees: the state so far, the block, and the verified signer.
struct Call<'o, 'b, 'c> {
    overlay: &'o mut Overlay<'b>,
    context: &'c ExecutionContext<'c>,
    tx_id: TxId,
    signer_key: PublicKey,
    signer: Account,
    organization: Organization,
}

/// Executes `transactions` in order against `state`, returning one receipt per transaction
/// and the writes to apply. Does not change `state`.
#[must_use]
pub fn execute<'t>(
    state: &State,
    context: &ExecutionContext<'_>,
    transactions: impl IntoIterator<Item = &'t Transaction>,
) -> (Vec<Receipt>, WriteSet) {
    let registry = state
        .get(keys::ORGANIZATIONS)
        .map(|bytes| Registry::decode(&bytes).expect("the registry in state is canonical"))
        .expect("the registry is written at genesis");
    let mut overlay = Overlay { base: state, writes: BTreeMap::new(), registry };
    promote_validators(&mut overlay, context.height);
    let receipts = transactions
        .into_iter()
        .map(|tx| {
            let tx_id = tx.id();
            Receipt { tx_id, outcome: execute_one(&mut overlay, context, tx_id, tx) }
        })
        .collect();
    let mut write_set = WriteSet::default();
    for (key, value) in overlay.writes {
        write_set.put(key, value);
    }
    (receipts, write_set)
}

/// A scheduled validator set becomes the current one at its height.
fn promote_validators(overlay: &mut Overlay<'_>, height: u64) {
    let mut schedule: ValidatorSchedule = overlay.read(keys::VALIDATORS).expect("written at genesis");
    if let Some((from_height, next)) = schedule.next.take_if(|(from_height, _)| *from_height <= height) {
        debug_assert_eq!(from_height, height, "a scheduled set is promoted at exactly its height");
        schedule.current = next;
        schedule.epoch += 1;
        schedule.since_height = from_height;
        overlay.put(keys::VALIDATORS.to_vec(), &schedule);
    }
}

fn execute_one(
    overlay: &mut Overlay<'_>,
    context: &ExecutionContext<'_>,
    tx_id: TxId,
    tx: &Transaction,
) -> Outcome {
    let body = &tx.body;
    if &body.chain_id != context.chain_id {
        return Outcome::Rejected(RejectReason::WrongChain);
    }
    let (mut signer, organization) = match active_signer(overlay, &body.signer) {
        Ok(found) => found,
        Err(reason) => return Outcome::Rejected(reason),
    };
    let expected = signer.next_nonce;
    if body.nonce < expected {
        return Outcome::Rejected(RejectReason::NonceReplayed { expected });
    }
    if body.nonce > expected {
        return Outcome::Rejected(RejectReason::NonceGap { expected });
    }
    // From here on the nonce is consumed whatever the payload's outcome, so the same signed
    // transaction can never execute twice.
    signer.next_nonce = expected.checked_add(1).expect("a signer cannot sign 2^64 transactions");
    overlay.put(keys::account(&body.signer), &signer);
    if !may_submit(organization.kind, signer.role, body.payload.kind()) {
        return Outcome::Rejected(RejectReason::NotAuthorized);
    }
    let mut call = Call { overlay, context, tx_id, signer_key: body.signer, signer, organization };
    let result = match &body.payload {
        Payload::Anchor { label, digest } => anchor(&mut call, label, digest),
        Payload::EnrolMember { public_key, role, patient_id } => {
            members::enrol(&mut call, public_key, *role, *patient_id)
        }
        Payload::RotateKey { old_key, new_key } => members::rotate(&mut call, old_key, new_key),
        Payload::RevokeMember { public_key } => members::revoke(&mut call, public_key),
        Payload::Propose { action } => governance::propose(&mut call, action),
        Payload::Vote { proposal, approve } => governance::vote(&mut call, proposal, *approve),
        Payload::ExecuteProposal { proposal } => governance::execute_proposal(&mut call, proposal),
        Payload::Record(anchor) => records::record(&mut call, anchor),
        Payload::Refer { patient, organization } => records::refer(&mut call, patient, organization),
    };
    match result {
        Ok(()) => Outcome::Applied,
        Err(reason) => Outcome::Rejected(reason),
    }
}

/// The signer's account and organisation, if the key may sign at all.
fn active_signer(overlay: &Overlay<'_>, key: &PublicKey) -> Result<(Account, Organization), RejectReason> {
    let account = overlay.account(key).ok_or(RejectReason::UnknownSigner)?;
    match account.status {
        MemberStatus::Active => {}
        MemberStatus::Revoked { .. } => return Err(RejectReason::KeyRevoked),
        MemberStatus::Rotated { .. } => return Err(RejectReason::KeyRotated),
    }
    let organization = overlay
        .registry()
        .get(&account.organization)
        .cloned()
        .expect("every member's organisation is registered");
    if !organization.active {
        return Err(RejectReason::OrganizationSuspended);
    }
    Ok((account, organization))
}

/// A payload's result: the reason it changed nothing, if it did not apply.
type PayloadResult = Result<(), RejectReason>;

fn anchor(call: &mut Call<'_, '_, '_>, label: &Label, digest: &Digest) -> PayloadResult {
    let key = keys::anchor(label);
    if call.overlay.contains(&key) {
        return Err(RejectReason::AnchorExists);
    }
    let record = AnchorRecord { digest: *digest, signer: call.signer_key, height: call.context.height };
    call.overlay.put(key, &record);
    Ok(())
}

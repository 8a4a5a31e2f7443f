//! Transaction execution: what each transaction kind does to the state.

use std::borrow::Cow;
use std::collections::BTreeMap;

use medledger_crypto::{Digest, PublicKey};
use medledger_types::{
    ChainId, Decode, DecodeError, Encode, Label, Outcome, Payload, Reader, Receipt, RejectReason,
    Transaction, Writer,
};

use crate::state::{State, WriteSet};

/// State keys. Each kind of entry has its own prefix so keys of different kinds never collide.
pub mod keys {
    use medledger_crypto::PublicKey;
    use medledger_types::Label;

    /// Prefix of member accounts.
    pub const ACCOUNT_PREFIX: &[u8] = b"account/";
    /// Prefix of anchors.
    pub const ANCHOR_PREFIX: &[u8] = b"anchor/";

    /// The key of a member's account.
    #[must_use]
    pub fn account(public_key: &PublicKey) -> Vec<u8> {
        [ACCOUNT_PREFIX, public_key.as_bytes()].concat()
    }

    /// The key of an anchor.
    #[must_use]
    pub fn anchor(label: &Label) -> Vec<u8> {
        [ANCHOR_PREFIX, label.as_str().as_bytes()].concat()
    }
}

/// A registered member key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    /// The nonce the member's next transaction must carry.
    pub next_nonce: u64,
    /// Whether the member may enrol others.
    pub admin: bool,
}

impl Encode for Account {
    fn encode_to(&self, writer: &mut Writer) {
        writer.u64(self.next_nonce);
        writer.bool(self.admin);
    }
}

impl Decode for Account {
    const NAME: &'static str = "account";
    const MAX_ENCODED_BYTES: usize = 9;

    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self { next_nonce: reader.u64("next nonce")?, admin: reader.bool("admin flag")? })
    }
}

/// A digest anchored under a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnchorRecord {
    /// The anchored SHA-256 digest.
    pub digest: Digest,
    /// Who anchored it.
    pub signer: PublicKey,
    /// The block that anchored it.
    pub height: u64,
}

impl Encode for AnchorRecord {
    fn encode_to(&self, writer: &mut Writer) {
        writer.digest(&self.digest);
        writer.public_key(&self.signer);
        writer.u64(self.height);
    }
}

impl Decode for AnchorRecord {
    const NAME: &'static str = "anchor record";
    const MAX_ENCODED_BYTES: usize = 32 + 32 + 8;

    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            digest: reader.digest("anchor digest")?,
            signer: reader.public_key("anchor signer")?,
            height: reader.u64("anchor height")?,
        })
    }
}

/// Reads through pending writes to the base state.
struct Overlay<'a> {
    base: &'a State,
    writes: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Overlay<'_> {
    fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        match self.writes.get(key) {
            Some(value) => Some(Cow::Borrowed(value)),
            None => self.base.get(key).map(Cow::Borrowed),
        }
    }

    fn contains(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    fn account(&self, public_key: &PublicKey) -> Option<Account> {
        let bytes = self.get(&keys::account(public_key))?;
        Some(Account::decode(&bytes).expect("accounts in state are written canonically by execute"))
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
}

/// Executes `transactions` in order against `state`, returning one receipt per transaction
/// and the writes to apply. Does not change `state`.
#[must_use]
pub fn execute<'t>(
    state: &State,
    context: &ExecutionContext<'_>,
    transactions: impl IntoIterator<Item = &'t Transaction>,
) -> (Vec<Receipt>, WriteSet) {
    let mut overlay = Overlay { base: state, writes: BTreeMap::new() };
    let receipts = transactions
        .into_iter()
        .map(|tx| Receipt { tx_id: tx.id(), outcome: execute_one(&mut overlay, context, tx) })
        .collect();
    let mut write_set = WriteSet::default();
    for (key, value) in overlay.writes {
        write_set.put(key, value);
    }
    (receipts, write_set)
}

fn execute_one(overlay: &mut Overlay<'_>, context: &ExecutionContext<'_>, tx: &Transaction) -> Outcome {
    let body = &tx.body;
    if &body.chain_id != context.chain_id {
        return Outcome::Rejected(RejectReason::WrongChain);
    }
    let Some(mut account) = overlay.account(&body.signer) else {
        return Outcome::Rejected(RejectReason::UnknownSigner);
    };
    let expected = account.next_nonce;
    if body.nonce < expected {
        return Outcome::Rejected(RejectReason::NonceReplayed { expected });
    }
    if body.nonce > expected {
        return Outcome::Rejected(RejectReason::NonceGap { expected });
    }
    // From here on the nonce is consumed whatever the payload's outcome, so the same signed
    // transaction can never execute twice.
    account.next_nonce = expected.checked_add(1).expect("a signer cannot sign 2^64 transactions");
    overlay.put(keys::account(&body.signer), &account);
    match &body.payload {
        Payload::AddMember { public_key, admin } => add_member(overlay, &account, public_key, *admin),
        Payload::Anchor { label, digest } => anchor(overlay, context, &body.signer, label, digest),
    }
}

fn add_member(overlay: &mut Overlay<'_>, signer: &Account, public_key: &PublicKey, admin: bool) -> Outcome {
    if !signer.admin {
        return Outcome::Rejected(RejectReason::NotAuthorized);
    }
    let key = keys::account(public_key);
    if overlay.contains(&key) {
        return Outcome::Rejected(RejectReason::MemberExists);
    }
    overlay.put(key, &Account { next_nonce: 0, admin });
    Outcome::Applied
}

fn anchor(
    overlay: &mut Overlay<'_>,
    context: &ExecutionContext<'_>,
    signer: &PublicKey,
    label: &Label,
    digest: &Digest,
) -> Outcome {
    let key = keys::anchor(label);
    if overlay.contains(&key) {
        return Outcome::Rejected(RejectReason::AnchorExists);
    }
    overlay.put(key, &AnchorRecord { digest: *digest, signer: *signer, height: context.height });
    Outcome::Applied
}

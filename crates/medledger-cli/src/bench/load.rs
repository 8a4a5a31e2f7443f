//! The load every chain benchmark sends: anchor transactions from seeded members of one
//! hospital, each one derived from its index so it can be signed just before it is sent.

use medledger_crypto::{SigningKey, sha256};
use medledger_types::{ChainId, Genesis, Label, Payload, Transaction, TxBody};

use super::seeded_key;

/// Anchors by `signers` seeded physicians; transaction `index` is signed by signer
/// `index % signers` with nonce `index / signers`, so any slice of indexes can be generated
/// anywhere, in any thread, and each signer's nonces still arrive in order if its indexes do.
pub(crate) struct AnchorLoad {
    chain_id: ChainId,
    signers: Vec<SigningKey>,
    seed: u64,
}

impl AnchorLoad {
    /// The load for `seed`, with `signers` distinct members (at least one).
    pub(crate) fn new(chain_id: &str, seed: u64, signers: usize) -> Self {
        assert!(signers > 0, "a load needs at least one signer");
        Self {
            chain_id: ChainId::new(chain_id).expect("bench chain ids are valid"),
            signers: (0..signers).map(|index| seeded_key(seed, "signer", index)).collect(),
            seed,
        }
    }

    /// Its chain id.
    pub(crate) fn chain_id(&self) -> &ChainId {
        &self.chain_id
    }

    /// Its signing members.
    pub(crate) fn signers(&self) -> &[SigningKey] {
        &self.signers
    }

    /// A one-hospital genesis (a node key, an administrator, the signers as physicians).
    pub(crate) fn single_hospital_genesis(&self) -> Genesis {
        Genesis::single_hospital(
            self.chain_id.clone(),
            0,
            seeded_key(self.seed, "node", 0).public_key(),
            seeded_key(self.seed, "administrator", 0).public_key(),
            self.signers.iter().map(SigningKey::public_key),
        )
    }

    /// Which signer sends transaction `index`.
    pub(crate) fn signer_of(&self, index: u64) -> usize {
        usize::try_from(index % self.signers.len() as u64).expect("a signer index fits in usize")
    }

    /// The label anchored by transaction `index` (also what a proof looks up).
    pub(crate) fn label(&self, index: u64) -> Label {
        Label::new(format!("bench/{}/{index}", self.seed)).expect("bench labels are valid")
    }

    /// Transaction number `index`, signed.
    pub(crate) fn anchor(&self, index: u64) -> Transaction {
        let key = &self.signers[self.signer_of(index)];
        let payload = Payload::Anchor { label: self.label(index), digest: sha256(&index.to_be_bytes()) };
        let nonce = index / self.signers.len() as u64;
        TxBody { chain_id: self.chain_id.clone(), signer: key.public_key(), nonce, payload }.sign(key)
    }
}

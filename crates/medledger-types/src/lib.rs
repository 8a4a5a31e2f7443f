//! The data that flows through MedLedger — transactions, blocks, receipts, genesis — and
//! its one canonical binary encoding.
//!
//! Anything that is signed or hashed is encoded by [`codec`] and nothing else: fixed-width
//! big-endian integers, length-prefixed byte strings with explicit maxima, one tag byte per
//! enum variant. Decoding rejects truncated input, trailing bytes, oversize fields and every
//! non-canonical form, so each value has exactly one encoding and each encoding one value.

mod block;
pub mod codec;
mod genesis;
mod identity;
pub mod limits;
mod record;
mod text;
mod tx;

pub use block::{Block, BlockHeader, Outcome, Receipt, RejectReason};
pub use codec::{Decode, DecodeError, Encode, Reader, Writer};
pub use genesis::{Genesis, GenesisError, GenesisMember, GenesisOrganization};
pub use identity::{
    GovernanceAction, NodeIdentity, OrgKind, OrgSpec, Parameters, ParametersError, PatientId,
    PatientIdParseError, Role, UnknownName,
};
pub use record::{RecordAnchor, RecordId, RecordIdParseError, ResourceType};
pub use text::{ChainId, Label, NodeAddress, OrgId, TextError};
pub use tx::{Payload, Transaction, TxBody, TxId, TxKind};

/// Domain-separation tags, one per signed or hashed kind. Changing the encoding of a kind
/// means a new tag version, never a silent reinterpretation of old bytes.
pub mod tags {
    /// Ed25519 message prefix for transaction bodies.
    pub const TX_SIGNATURE: &[u8] = b"medledger/tx-signature/v1";
    /// Transaction id: hash of the canonical body.
    pub const TX_ID: &[u8] = b"medledger/tx-id/v1";
    /// Block hash: hash of the canonical header.
    pub const BLOCK_HEADER: &[u8] = b"medledger/block-header/v1";
    /// Ed25519 message prefix for a proposer's signature over a block hash.
    pub const BLOCK_SIGNATURE: &[u8] = b"medledger/block-signature/v1";
    /// Genesis hash: hash of the canonical genesis.
    pub const GENESIS: &[u8] = b"medledger/genesis/v1";
    /// Hash of one state entry (key and value) in the state commitment.
    pub const STATE_ENTRY: &[u8] = b"medledger/state-entry/v1";
    /// Path of a state key in the state tree: the tree is keyed by this hash of the key.
    pub const STATE_KEY: &[u8] = b"medledger/state-key/v1";
}

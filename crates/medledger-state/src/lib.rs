//! MedLedger's state machine.
//!
//! Pure: no I/O, no clock, no randomness, no hash-map iteration order. Applying the same
//! block to the same state gives the same receipts and the same state root on every machine,
//! which is what lets any node — or `medledger verify`, offline — replay a chain and check
//! every header.
//!
//! - [`State`] is the key-value state with its [`commitment`] (the state root): committed
//!   versions in a [`StateStore`] (a node's is on disk), prepared ones in layers above it.
//! - [`History`] is the tree of block hashes whose root every header carries: committed
//!   subtrees in a [`HistoryStore`], the right edge and uncommitted blocks in memory.
//! - [`execute`] runs a block's transactions against a state, yielding receipts and a
//!   [`WriteSet`] without changing the state.
//! - [`Chain`] ties it together: it validates a block against its parent (hash links, proposer
//!   signature, transaction root, batch-verified transaction signatures, state, receipts and
//!   history roots), builds new blocks, and commits them.

pub mod access;
pub mod authorization;
mod chain;
pub mod commitment;
mod execute;
mod history;
mod records;
mod state;
#[cfg(test)]
mod test_rng;

pub use chain::{BlockError, Chain, ChainStore, Committed, VerifiedBlock, VerifiedTx};
pub use commitment::{EMPTY_ROOT, StateProof, StateProofError};
pub use execute::{ExecutionContext, execute, passes_governance};
pub use history::{History, HistoryStore};
pub use records::{
    Account, AnchorRecord, CareRelationship, MemberStatus, Organization, Proposal, RecordHead, RecordVersion,
    Registry, ValidatorSchedule, keys,
};
pub use state::{MemoryStore, PreparedWrites, State, StateStore, WriteSet};
/// The state tree's node types, for stores that persist them.
pub mod tree {
    pub use jmt::storage::{Node, NodeKey};
}

//! A MedLedger node: admits signed transactions into a bounded mempool, builds blocks from
//! it at a configured interval and size, commits them durably to the store, and answers the
//! queries the HTTP API and the CLI need.
//!
//! Single-validator block production lives here; multi-organisation consensus replaces the
//! producer, not the rest.

mod mempool;
mod node;

pub use mempool::{Mempool, MempoolLimits};
pub use node::{
    DEFAULT_EMPTY_BLOCK_INTERVAL_MS, NetworkView, Node, NodeConfig, NodeError, PeerStatus, Status,
    SubmitError, TxInclusion, TxStatus, now_ms,
};

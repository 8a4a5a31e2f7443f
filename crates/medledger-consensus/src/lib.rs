//! MedLedger's validator network.
//!
//! Each organisation's node is a validator. Validators order blocks with Simplex BFT from
//! `commonware-consensus` (n = 3f + 1 tolerates f faulty validators), talk over
//! `commonware-p2p` (authenticated and encrypted, only the registry's validators), and run on
//! `commonware-runtime` (tokio in production, the deterministic runtime in simulation).
//!
//! - [`keys`]: one Ed25519 identity for registry, p2p and votes; block hash = payload.
//! - [`wire`]: the messages validators exchange besides votes.
//! - [`application`]: propose, verify, finalize, catch up, gossip.
//! - [`engine`]: one node over any runtime and network, an engine per validator-set epoch.
//! - [`network`]: production wiring on tokio with authenticated p2p.
//! - [`exchange`]: requests and answers between organisations' nodes (records).

pub mod application;
pub mod engine;
pub mod exchange;
pub mod keys;
pub mod network;
pub mod wire;

pub use engine::{EpochStart, Handles, NAMESPACE, Network, Timing, Validator, start};

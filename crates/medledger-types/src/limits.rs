//! Every bound MedLedger enforces, in one place, with the reason for its size.

/// Largest encoded transaction. Transactions carry anchors and identities, never documents:
/// 64 KiB leaves ample room for later kinds (consent with many provisions) while keeping a
/// block of [`MAX_BLOCK_TXS`] small transactions far below [`MAX_BLOCK_BYTES`].
pub const MAX_TX_BYTES: usize = 64 * 1024;

/// Most transactions in one block: bounds apply time and memory of a block (about 0.1 s of
/// signature verification on one core).
pub const MAX_BLOCK_TXS: usize = 10_000;

/// Largest encoded block: header, transactions and signature.
pub const MAX_BLOCK_BYTES: usize = 32 * 1024 * 1024;

/// Longest chain id in bytes.
pub const MAX_CHAIN_ID_BYTES: usize = 64;

/// Longest anchor label in bytes.
pub const MAX_LABEL_BYTES: usize = 128;

/// Most validators: a consortium, not a public network. BFT message cost grows with the
/// square of the validator count.
pub const MAX_VALIDATORS: usize = 128;

/// Most organisations in the registry (active or suspended). The registry is one state entry
/// rewritten by each governance change, so it must stay small.
pub const MAX_ORGANIZATIONS: usize = 256;

/// Most first administrators named when an organisation is admitted.
pub const MAX_ORG_ADMINS: usize = 16;

/// Longest organisation id in bytes.
pub const MAX_ORG_ID_BYTES: usize = 64;

/// Longest node address (`host:port`) in bytes: a DNS name is at most 253 bytes.
pub const MAX_NODE_ADDRESS_BYTES: usize = 260;

/// Most members named in genesis (benchmarks create many signers at once).
pub const MAX_GENESIS_MEMBERS: usize = 100_000;

/// Shortest governance proposal lifetime: long enough for administrators to see and vote.
pub const MIN_PROPOSAL_TTL_MS: u64 = 60 * 1000;

/// Longest governance proposal lifetime: stale proposals must not linger and pass by surprise.
pub const MAX_PROPOSAL_TTL_MS: u64 = 90 * 24 * 60 * 60 * 1000;

/// Longest delay before a validator set change takes effect.
pub const MAX_VALIDATOR_CHANGE_DELAY_BLOCKS: u64 = 100_000;

/// Largest encoded genesis.
pub const MAX_GENESIS_BYTES: usize = 8 * 1024 * 1024;

/// Largest encoded receipt list of a block (one small receipt per transaction).
pub const MAX_RECEIPTS_BYTES: usize = MAX_BLOCK_TXS * 64 + 4;

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

/// Most validators named in genesis: a consortium, not a public network.
pub const MAX_VALIDATORS: usize = 128;

/// Most members named in genesis (benchmarks create many signers at once).
pub const MAX_GENESIS_MEMBERS: usize = 100_000;

/// Largest encoded genesis.
pub const MAX_GENESIS_BYTES: usize = 8 * 1024 * 1024;

/// Largest encoded receipt list of a block (one small receipt per transaction).
pub const MAX_RECEIPTS_BYTES: usize = MAX_BLOCK_TXS * 64 + 4;

//! Cryptographic building blocks of MedLedger.
//!
//! Nothing here is a home-made primitive: SHA-256 comes from `sha2`, Ed25519 from
//! `ed25519-dalek`, AES-256-GCM from `aes-gcm`, XChaCha20-Poly1305 from `chacha20poly1305`, HPKE from `hpke`, Argon2id from `argon2`.
//! This crate only fixes *how* MedLedger uses them: digests with a domain-separation tag,
//! member keys stored as PKCS#8 PEM with mode 0600, batch signature verification, the RFC 9162
//! Merkle tree with inclusion and consistency proofs, and envelope encryption of records
//! ([`envelope`]).

pub mod envelope;
mod hash;
mod keys;
pub mod merkle;

pub use envelope::{
    DataKey, EnvelopeError, IndexKey, KeyFileError, VaultPublicKey, VaultSecretKey, WrappedKey, open, seal,
    unwrap_key, wrap_key,
};
pub use hash::{Digest, DigestParseError, Sha256Stream, sha256, tagged_hash};
pub use keys::{KeyError, PublicKey, Signature, SignatureError, SigningKey, verify_batch};
pub use merkle::{CompleteSubtrees, ConsistencyProof, InclusionProof, MerkleTree, ProofError};

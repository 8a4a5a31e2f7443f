//! The state root: a Jellyfish Merkle tree (a sparse Merkle tree of radix 16) over the state.
//!
//! Every entry sits at the path `tagged_hash(STATE_KEY, key)`; its leaf commits to that path
//! and to the SHA-256 of the value. The root depends only on the entries held, never on the
//! order or the blocks they were written in, so a replay, a rebuild from a snapshot and an
//! incremental update all agree. An update costs about `log16(n)` node reads and writes,
//! and any key's value, or its absence, is provable with about `log16(n) × 15` hashes
//! (ADR 0001 says why this structure and how it was measured).
//!
//! The tree itself is the `jmt` crate's; this module fixes the choices that make its root a
//! consensus rule: the hasher, the key path and the proof encoding.

use jmt::proof::SparseMerkleProof;
use jmt::{KeyHash, RootHash, SimpleHasher};
use medledger_crypto::{Digest, Sha256Stream, tagged_hash};
use medledger_types::tags;

/// SHA-256 as the state tree's hasher.
pub struct StateHasher(Sha256Stream);

impl SimpleHasher for StateHasher {
    fn new() -> Self {
        Self(Sha256Stream::new())
    }

    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    fn finalize(self) -> [u8; 32] {
        self.0.finalize()
    }
}

/// The root of a state holding nothing (the tree's placeholder for an empty subtree).
pub const EMPTY_ROOT: Digest = Digest(*b"SPARSE_MERKLE_PLACEHOLDER_HASH__");

/// The path of `key` in the state tree.
#[must_use]
pub fn key_path(key: &[u8]) -> KeyHash {
    KeyHash(tagged_hash(tags::STATE_KEY, &[key]).0)
}

/// Why a state proof does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateProofError {
    /// The proof bytes do not decode.
    #[error("the proof does not decode: {0}")]
    Encoding(String),
    /// The proof does not lead from the key and value to the root.
    #[error("the proof does not verify against state root {root}: {reason}")]
    Mismatch {
        /// The root checked against.
        root: Digest,
        /// What failed.
        reason: String,
    },
}

/// Proof that a key holds a value, or nothing, in the state with a given root.
#[derive(Clone, Debug, PartialEq)]
pub struct StateProof {
    /// The key proven.
    pub key: Vec<u8>,
    /// Its value, `None` when the proof shows the key absent.
    pub value: Option<Vec<u8>>,
    proof: SparseMerkleProof<StateHasher>,
}

impl StateProof {
    pub(crate) fn new(key: Vec<u8>, value: Option<Vec<u8>>, proof: SparseMerkleProof<StateHasher>) -> Self {
        Self { key, value, proof }
    }

    /// Rebuilds a proof from its parts as [`StateProof::proof_bytes`] wrote them.
    pub fn from_parts(
        key: Vec<u8>,
        value: Option<Vec<u8>>,
        proof_bytes: &[u8],
    ) -> Result<Self, StateProofError> {
        let proof =
            borsh::from_slice(proof_bytes).map_err(|error| StateProofError::Encoding(error.to_string()))?;
        Ok(Self { key, value, proof })
    }

    /// The Merkle path, encoded (Borsh, as the `jmt` crate defines it).
    #[must_use]
    pub fn proof_bytes(&self) -> Vec<u8> {
        borsh::to_vec(&self.proof).expect("a proof in memory always encodes")
    }

    /// Checks the proof against `root`: the key holds exactly `value` (or is absent).
    pub fn verify(&self, root: Digest) -> Result<(), StateProofError> {
        self.proof
            .verify(RootHash(root.0), key_path(&self.key), self.value.as_deref())
            .map_err(|error| StateProofError::Mismatch { root, reason: error.to_string() })
    }
}

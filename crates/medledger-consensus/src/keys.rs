//! Conversions between MedLedger's keys and digests and the consensus engine's.
//!
//! Both sides use Ed25519 and SHA-256 with the same 32-byte encodings, so a node key is one
//! identity in the chain's registry, in p2p authentication and in consensus votes, and a block
//! hash is the payload consensus agrees on.

use commonware_codec::{Copying, DecodeExt};
use commonware_cryptography::{ed25519, sha256};
use medledger_crypto::{Digest, PublicKey, SigningKey};

/// The consensus engine's view of a node key.
pub type ConsensusKey = ed25519::PublicKey;

/// The consensus engine's view of a block hash.
pub type ConsensusDigest = sha256::Digest;

/// A checked MedLedger public key as the engine's key type.
#[must_use]
pub fn consensus_key(key: &PublicKey) -> ConsensusKey {
    ed25519::PublicKey::decode(Copying(key.as_bytes().as_slice()))
        .expect("a checked Ed25519 public key decodes")
}

/// The engine's key as a MedLedger key (`None` if it is not a valid MedLedger key).
#[must_use]
pub fn ledger_key(key: &ConsensusKey) -> Option<PublicKey> {
    let bytes: &[u8; 32] = key.as_ref().try_into().ok()?;
    PublicKey::from_bytes(bytes).ok()
}

/// The node's signing key for the consensus engine and p2p handshakes.
#[must_use]
pub fn consensus_signer(key: &SigningKey) -> ed25519::PrivateKey {
    ed25519::PrivateKey::decode(Copying(key.seed().as_slice())).expect("a 32-byte Ed25519 seed decodes")
}

/// A block hash as a consensus payload.
#[must_use]
pub fn consensus_digest(digest: &Digest) -> ConsensusDigest {
    sha256::Digest::decode(Copying(digest.0.as_slice())).expect("a 32-byte digest decodes")
}

/// A consensus payload as a block hash.
#[must_use]
pub fn ledger_digest(digest: &ConsensusDigest) -> Digest {
    Digest(digest.as_ref().try_into().expect("a SHA-256 digest is 32 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_cryptography::Signer as _;

    #[test]
    fn keys_and_digests_round_trip() {
        let key = SigningKey::from_seed(&[7; 32]);
        let converted = consensus_signer(&key).public_key();
        assert_eq!(converted, consensus_key(&key.public_key()));
        assert_eq!(ledger_key(&converted), Some(key.public_key()));
        let digest = Digest([9; 32]);
        assert_eq!(ledger_digest(&consensus_digest(&digest)), digest);
    }
}

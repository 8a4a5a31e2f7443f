//! Organisations' X25519 vault keys and HPKE key wrapping.

use std::fmt;
use std::str::FromStr;

use hpke::aead::AesGcm256;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable as _, Kem as _, OpModeR, OpModeS, Serializable as _};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::data_key::TAG_BYTES;
use super::{DataKey, EnvelopeError, fill_random};
use crate::serde_as_text;

/// The HPKE KEM: DHKEM(X25519, HKDF-SHA256).
type Kem = X25519HkdfSha256;
type HpkePrivateKey = <Kem as hpke::Kem>::PrivateKey;
type HpkePublicKey = <Kem as hpke::Kem>::PublicKey;
type HpkeEncapsulatedKey = <Kem as hpke::Kem>::EncappedKey;

/// Bytes of an X25519 key, secret or public, and of an HPKE encapsulated key.
const X25519_KEY_BYTES: usize = 32;
/// Bytes of a wrapped data key: encapsulated key ‖ encrypted data key ‖ tag.
pub const WRAPPED_KEY_BYTES: usize = X25519_KEY_BYTES + DataKey::LEN + TAG_BYTES;
/// Longest HPKE context (`info`) accepted. Callers pass a record id and version (tens of
/// bytes); `hpke` itself panics near 64 KiB, so the bound is checked here first.
pub const MAX_INFO_BYTES: usize = 1024;
/// A fixed X25519 scalar for probing public keys: after clamping, every scalar maps exactly the
/// low-order points to the all-zero shared secret, so which scalar is used does not matter.
const LOW_ORDER_PROBE_SCALAR: [u8; X25519_KEY_BYTES] = *b"medledger/vault-key/low-order/v1";

/// An organisation's X25519 vault secret key: the HPKE recipient key that opens its records'
/// data keys. Zeroized on drop; `Debug` shows only the public half.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct VaultSecretKey(pub(super) [u8; X25519_KEY_BYTES]);

impl VaultSecretKey {
    /// A fresh key from the operating system's random number generator.
    ///
    /// # Panics
    /// If the operating system cannot provide randomness.
    #[must_use]
    pub fn generate() -> Self {
        let mut seed = Zeroizing::new([0; X25519_KEY_BYTES]);
        fill_random(seed.as_mut());
        Self::from_seed(&seed)
    }

    /// The key RFC 9180's `DeriveKeyPair` makes from `seed`. For deterministic tests,
    /// simulations and benchmarks only: a predictable seed is a published key.
    #[must_use]
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let (secret, _) = Kem::derive_keypair(seed);
        Self::from_hpke(&secret)
    }

    /// A key from its 32 secret bytes, kept in their one canonical (clamped) form so that every
    /// encoding of a key gives the same index key.
    pub(super) fn from_secret_bytes(bytes: &[u8; 32]) -> Self {
        Self::from_hpke(&HpkePrivateKey::from_bytes(bytes).expect("32 bytes are an X25519 secret key"))
    }

    /// Stores `secret` in its (clamped) serialised form, the one invariant of `self.0`.
    fn from_hpke(secret: &HpkePrivateKey) -> Self {
        let mut key = Self([0; X25519_KEY_BYTES]);
        secret.write_exact(&mut key.0);
        key
    }

    fn hpke_secret(&self) -> HpkePrivateKey {
        HpkePrivateKey::from_bytes(&self.0).expect("a stored secret is 32 bytes")
    }

    /// The public half: what other organisations wrap data keys to.
    #[must_use]
    pub fn public_key(&self) -> VaultPublicKey {
        let mut bytes = [0; X25519_KEY_BYTES];
        Kem::sk_to_pk(&self.hpke_secret()).write_exact(&mut bytes);
        VaultPublicKey(bytes)
    }
}

impl fmt::Debug for VaultSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VaultSecretKey(public: {})", self.public_key())
    }
}

/// An organisation's X25519 vault public key. Checked on construction: canonical encoding and
/// not a low-order point, so wrapping to it always yields a secret only its owner can open.
/// Displayed and serialised as 64 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VaultPublicKey([u8; X25519_KEY_BYTES]);

impl VaultPublicKey {
    /// Length of an encoded public key in bytes.
    pub const LEN: usize = X25519_KEY_BYTES;

    /// The 32 encoded bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Checks and wraps 32 bytes.
    ///
    /// # Errors
    /// [`EnvelopeError::InvalidPublicKey`] for a non-canonical encoding (the unused top bit set,
    /// or a u-coordinate of 2^255 - 19 or more) or a low-order point, the all-zero key among
    /// them: HPKE with such a key fails or gives a secret anyone can compute.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, EnvelopeError> {
        if bytes[31] & 0x80 != 0 {
            return Err(EnvelopeError::InvalidPublicKey("the unused top bit is set"));
        }
        // u-coordinates p..2^255 - 1 (p = 2^255 - 19) name the same points as u - p; reject them
        // so each key has one encoding: low byte >= 0xed, then 30 bytes of 0xff, then 0x7f.
        if bytes[0] >= 0xed && bytes[1..31].iter().all(|&byte| byte == 0xff) && bytes[31] == 0x7f {
            return Err(EnvelopeError::InvalidPublicKey("non-canonical u-coordinate (u >= 2^255 - 19)"));
        }
        let probe = x25519_dalek::StaticSecret::from(LOW_ORDER_PROBE_SCALAR);
        if !probe.diffie_hellman(&x25519_dalek::PublicKey::from(*bytes)).was_contributory() {
            return Err(EnvelopeError::InvalidPublicKey("a low-order point"));
        }
        Ok(Self(*bytes))
    }

    fn hpke_public(&self) -> HpkePublicKey {
        HpkePublicKey::from_bytes(&self.0).expect("a stored public key is 32 bytes")
    }
}

impl fmt::Display for VaultPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for VaultPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VaultPublicKey({self})")
    }
}

impl FromStr for VaultPublicKey {
    type Err = EnvelopeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0; X25519_KEY_BYTES];
        hex::decode_to_slice(text, &mut bytes)
            .map_err(|_| EnvelopeError::InvalidPublicKey("expected 64 hex characters"))?;
        Self::from_bytes(&bytes)
    }
}

serde_as_text!(VaultPublicKey);

/// A data key wrapped for one recipient with HPKE base mode: encapsulated key ‖ encrypted
/// data key ‖ tag, [`WRAPPED_KEY_BYTES`] long. Self-contained: the recipient's secret key and
/// the same `info` open it.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey(Vec<u8>);

impl WrappedKey {
    /// The encoded bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Takes encoded bytes, checking only their length: whether they open is for
    /// [`unwrap_key`] to find out.
    ///
    /// # Errors
    /// [`EnvelopeError::MalformedWrappedKey`] for any length but [`WRAPPED_KEY_BYTES`].
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, EnvelopeError> {
        if bytes.len() != WRAPPED_KEY_BYTES {
            return Err(EnvelopeError::MalformedWrappedKey {
                expected: WRAPPED_KEY_BYTES,
                found: bytes.len(),
            });
        }
        Ok(Self(bytes))
    }
}

impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WrappedKey({} bytes)", self.0.len())
    }
}

/// Wraps `key` for `recipient` with HPKE base mode (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
/// AES-256-GCM). `info` binds the context (the record id and version), so a wrapped key moved
/// to another record does not open.
///
/// # Panics
/// If `info` is longer than [`MAX_INFO_BYTES`] (callers pass short, fixed-layout contexts) or
/// the operating system cannot provide randomness.
#[must_use]
pub fn wrap_key(recipient: &VaultPublicKey, key: &DataKey, info: &[u8]) -> WrappedKey {
    assert!(info.len() <= MAX_INFO_BYTES, "HPKE info of {} bytes is over {MAX_INFO_BYTES}", info.len());
    let (encapsulated, encrypted) = hpke::single_shot_seal::<AesGcm256, HkdfSha256, Kem>(
        &OpModeS::Base,
        &recipient.hpke_public(),
        info,
        &key.0,
        &[],
    )
    .expect("HPKE seals to a public key checked not to be of low order");
    let mut bytes = Vec::with_capacity(WRAPPED_KEY_BYTES);
    bytes.extend_from_slice(&encapsulated.to_bytes());
    bytes.extend_from_slice(&encrypted);
    assert_eq!(bytes.len(), WRAPPED_KEY_BYTES, "HPKE output has a fixed length");
    WrappedKey(bytes)
}

/// Unwraps a data key that [`wrap_key`] wrapped for `secret`'s public key with the same `info`.
///
/// # Errors
/// [`EnvelopeError::Decrypt`] if it was wrapped for another key or another context, or
/// altered; [`EnvelopeError::InfoTooLong`] if `info` is over [`MAX_INFO_BYTES`].
pub fn unwrap_key(
    secret: &VaultSecretKey,
    wrapped: &WrappedKey,
    info: &[u8],
) -> Result<DataKey, EnvelopeError> {
    if info.len() > MAX_INFO_BYTES {
        return Err(EnvelopeError::InfoTooLong { found: info.len() });
    }
    let (encapsulated, encrypted) = wrapped.0.split_at(X25519_KEY_BYTES);
    let encapsulated = HpkeEncapsulatedKey::from_bytes(encapsulated).map_err(|_| EnvelopeError::Decrypt)?;
    let opened = Zeroizing::new(
        hpke::single_shot_open::<AesGcm256, HkdfSha256, Kem>(
            &OpModeR::Base,
            &secret.hpke_secret(),
            &encapsulated,
            info,
            encrypted,
            &[],
        )
        .map_err(|_| EnvelopeError::Decrypt)?,
    );
    let mut key = DataKey([0; DataKey::LEN]);
    key.0.copy_from_slice(&opened);
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_keys_are_canonical_and_accepted() {
        for seed in 0u8..16 {
            let public = VaultSecretKey::from_seed(&[seed; 32]).public_key();
            assert_eq!(VaultPublicKey::from_bytes(public.as_bytes()), Ok(public));
        }
    }

    #[test]
    fn debug_shows_only_public_material() {
        let secret = VaultSecretKey::from_seed(&[3; 32]);
        let debug = format!("{secret:?}");
        assert!(debug.contains(&secret.public_key().to_string()));
        assert!(!debug.contains(&hex::encode(secret.0)));
    }
}

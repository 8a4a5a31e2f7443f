//! A vault's own data keys, wrapped under a symmetric key-encryption key.
//!
//! HPKE is what another organisation's vault needs: a key wrapped to its public key. For the
//! custodian's own copy, HPKE's ephemeral X25519 key pair and Diffie-Hellman are pure cost (about
//! 90 µs per wrap, 70 per unwrap): the vault holds the secret itself. So its own copies are wrapped
//! with XChaCha20-Poly1305 under a key derived from the vault secret, binding the record version
//! as associated data, exactly as the HPKE `info` does.

use std::fmt;

use chacha20poly1305::aead::{AeadInOut as _, KeyInit as _};
use chacha20poly1305::{Tag, XChaCha20Poly1305};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::data_key::TAG_BYTES;
use super::{DataKey, EnvelopeError, VaultSecretKey, fill_random};

/// HKDF-SHA256 `info` deriving the key-encryption key from a vault secret: used for nothing
/// else, and a new derivation gets a new version.
const KEY_ENCRYPTION_KEY_INFO: &[u8] = b"medledger/vault-key-encryption/v1";
/// Bytes of an XChaCha20 nonce: 192 random bits never repeat in practice, whatever the number
/// of wraps under one key.
const NONCE_BYTES: usize = 24;
/// Bytes of a locally wrapped key: nonce ‖ encrypted data key ‖ tag.
pub const LOCAL_WRAPPED_KEY_BYTES: usize = NONCE_BYTES + DataKey::LEN + TAG_BYTES;

/// The key a vault wraps its own data keys under, derived from its secret key. Zeroized on
/// drop, never printed.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct KeyEncryptionKey([u8; 32]);

impl VaultSecretKey {
    /// The key-encryption key for this vault's own data keys: HKDF-SHA256 of this secret with
    /// `info` `"medledger/vault-key-encryption/v1"`, independent of the X25519 key and of the
    /// index key.
    #[must_use]
    pub fn key_encryption_key(&self) -> KeyEncryptionKey {
        let mut key = KeyEncryptionKey([0; 32]);
        hkdf::Hkdf::<Sha256>::new(None, &self.0)
            .expand(KEY_ENCRYPTION_KEY_INFO, &mut key.0)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        key
    }
}

impl KeyEncryptionKey {
    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&self.0.into())
    }

    /// Wraps `key` under a fresh random nonce, bound to `context` (the record version).
    ///
    /// # Panics
    /// If the operating system cannot provide randomness.
    #[must_use]
    pub fn wrap(&self, key: &DataKey, context: &[u8]) -> LocalWrappedKey {
        let mut bytes = [0; LOCAL_WRAPPED_KEY_BYTES];
        let (nonce, rest) = bytes.split_at_mut(NONCE_BYTES);
        fill_random(nonce);
        let (encrypted, tag) = rest.split_at_mut(DataKey::LEN);
        encrypted.copy_from_slice(&key.0);
        let nonce: [u8; NONCE_BYTES] = (&*nonce).try_into().expect("split at the nonce length");
        let computed = self
            .cipher()
            .encrypt_inout_detached(&nonce.into(), context, encrypted.into())
            .expect("XChaCha20-Poly1305 encrypts a 32-byte key");
        tag.copy_from_slice(&computed);
        LocalWrappedKey(bytes)
    }

    /// Unwraps what [`KeyEncryptionKey::wrap`] produced with the same key and `context`.
    ///
    /// # Errors
    /// [`EnvelopeError::Decrypt`] if the key, the context or any byte differs.
    pub fn unwrap(&self, wrapped: &LocalWrappedKey, context: &[u8]) -> Result<DataKey, EnvelopeError> {
        let (nonce, rest) = wrapped.0.split_at(NONCE_BYTES);
        let (encrypted, tag) = rest.split_at(DataKey::LEN);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().expect("split at the nonce length");
        let tag = Tag::try_from(tag).expect("split at the tag length");
        let mut key = DataKey([0; DataKey::LEN]);
        key.0.copy_from_slice(encrypted);
        self.cipher()
            .decrypt_inout_detached(&nonce.into(), context, key.0.as_mut_slice().into(), &tag)
            .map_err(|_| EnvelopeError::Decrypt)?;
        Ok(key)
    }
}

impl fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyEncryptionKey(..)")
    }
}

/// A data key wrapped under a vault's [`KeyEncryptionKey`]: only that vault opens it.
#[derive(Clone, PartialEq, Eq)]
pub struct LocalWrappedKey([u8; LOCAL_WRAPPED_KEY_BYTES]);

impl LocalWrappedKey {
    /// The wrapped bytes: nonce ‖ encrypted key ‖ tag.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Wrapped bytes read back.
    ///
    /// # Errors
    /// [`EnvelopeError::MalformedWrappedKey`] unless `bytes` has the wrapped length.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let bytes = bytes.try_into().map_err(|_| EnvelopeError::MalformedWrappedKey {
            expected: LOCAL_WRAPPED_KEY_BYTES,
            found: bytes.len(),
        })?;
        Ok(Self(bytes))
    }
}

impl fmt::Debug for LocalWrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalWrappedKey({LOCAL_WRAPPED_KEY_BYTES} bytes)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTEXT: &[u8] = b"medledger/record/v1 Observation 1";

    #[test]
    fn a_wrapped_key_opens_only_with_its_vault_and_context() {
        let vault = VaultSecretKey::generate();
        let key = DataKey::generate();
        let wrapped = vault.key_encryption_key().wrap(&key, CONTEXT);
        let unwrapped = vault.key_encryption_key().unwrap(&wrapped, CONTEXT).expect("unwraps");
        assert_eq!(unwrapped.0, key.0);
        assert_ne!(&wrapped.as_bytes()[NONCE_BYTES..NONCE_BYTES + DataKey::LEN], &key.0, "encrypted");
        assert_ne!(wrapped, vault.key_encryption_key().wrap(&key, CONTEXT), "a fresh nonce each time");

        let other = VaultSecretKey::generate().key_encryption_key();
        assert_eq!(other.unwrap(&wrapped, CONTEXT).map(|_| ()), Err(EnvelopeError::Decrypt));
        let moved = vault.key_encryption_key().unwrap(&wrapped, b"medledger/record/v1 Observation 2");
        assert_eq!(moved.map(|_| ()), Err(EnvelopeError::Decrypt));
        for position in [0, NONCE_BYTES, LOCAL_WRAPPED_KEY_BYTES - 1] {
            let mut bytes = wrapped.as_bytes().to_vec();
            bytes[position] ^= 1;
            let flipped = LocalWrappedKey::from_bytes(&bytes).expect("same length");
            let opened = vault.key_encryption_key().unwrap(&flipped, CONTEXT);
            assert_eq!(opened.map(|_| ()), Err(EnvelopeError::Decrypt), "byte {position} flipped");
        }
    }

    #[test]
    fn the_key_encryption_key_is_its_own_derivation() {
        let vault = VaultSecretKey::from_seed(&[4; 32]);
        assert_ne!(vault.key_encryption_key().0, vault.0, "never the X25519 secret itself");
        assert_eq!(vault.key_encryption_key().0, VaultSecretKey::from_seed(&[4; 32]).key_encryption_key().0);
        assert_eq!(
            LocalWrappedKey::from_bytes(&[0; 10]).map(|_| ()),
            Err(EnvelopeError::MalformedWrappedKey { expected: LOCAL_WRAPPED_KEY_BYTES, found: 10 })
        );
    }
}

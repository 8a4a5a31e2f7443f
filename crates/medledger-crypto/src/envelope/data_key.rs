//! Record data keys and AES-256-GCM sealing.

use std::fmt;

use aes_gcm::aead::{AeadInOut as _, KeyInit as _};
use aes_gcm::{Aes256Gcm, Tag};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::{EnvelopeError, fill_random};

/// Bytes of an AES-GCM nonce: the 96 bits GCM is specified for.
pub(super) const NONCE_BYTES: usize = 12;
/// Bytes of an AES-GCM authentication tag (the full 128 bits; never truncated).
pub(super) const TAG_BYTES: usize = 16;
/// Bytes [`seal`] adds to a plaintext: the nonce in front and the tag behind.
pub const SEAL_OVERHEAD_BYTES: usize = NONCE_BYTES + TAG_BYTES;

/// A record version's 256-bit data key. Random, zeroized on drop, never printed.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct DataKey(pub(super) [u8; DataKey::LEN]);

impl DataKey {
    /// Length of a data key in bytes.
    pub const LEN: usize = 32;

    /// A fresh key from the operating system's random number generator.
    ///
    /// # Panics
    /// If the operating system cannot provide randomness.
    #[must_use]
    pub fn generate() -> Self {
        let mut key = Self([0; Self::LEN]);
        fill_random(&mut key.0);
        key
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&self.0.into())
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(..)")
    }
}

/// Encrypts `plaintext` with AES-256-GCM under a fresh random 96-bit nonce, binding `aad`.
/// Returns nonce ‖ ciphertext ‖ tag, [`SEAL_OVERHEAD_BYTES`] longer than the plaintext.
///
/// Random nonces are safe for one data key per record version: the 2^-32 collision bound of
/// NIST SP 800-38D is reached only after about 2^32 seals under one key.
///
/// # Panics
/// If the operating system cannot provide randomness, or the plaintext is over AES-GCM's limit
/// of about 64 GiB (records are bounded far below that).
#[must_use]
pub fn seal(key: &DataKey, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    let mut nonce = [0; NONCE_BYTES];
    fill_random(&mut nonce);
    let mut sealed = Vec::with_capacity(plaintext.len() + SEAL_OVERHEAD_BYTES);
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(plaintext);
    let tag = key
        .cipher()
        .encrypt_inout_detached(&nonce.into(), aad, sealed[NONCE_BYTES..].as_mut().into())
        .expect("AES-GCM encrypts any message under its 64 GiB limit");
    sealed.extend_from_slice(&tag);
    debug_assert_eq!(sealed.len(), plaintext.len() + SEAL_OVERHEAD_BYTES);
    sealed
}

/// Decrypts what [`seal`] produced with the same key and `aad`. The plaintext is zeroized
/// when dropped.
///
/// # Errors
/// [`EnvelopeError::Decrypt`] if the key, the associated data or any byte differs, or the
/// input is too short to be sealed bytes.
pub fn open(key: &DataKey, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
    if sealed.len() < SEAL_OVERHEAD_BYTES {
        return Err(EnvelopeError::Decrypt);
    }
    let (nonce, rest) = sealed.split_at(NONCE_BYTES);
    let (ciphertext, tag) = rest.split_at(rest.len() - TAG_BYTES);
    let nonce: [u8; NONCE_BYTES] = nonce.try_into().expect("split at the nonce length");
    let tag = Tag::try_from(tag).expect("split at the tag length");
    let mut plaintext = Zeroizing::new(ciphertext.to_vec());
    key.cipher()
        .decrypt_inout_detached(&nonce.into(), aad, plaintext.as_mut_slice().into(), &tag)
        .map_err(|_| EnvelopeError::Decrypt)?;
    Ok(plaintext)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_layout_is_nonce_ciphertext_tag() {
        let key = DataKey::generate();
        let sealed = seal(&key, b"abc", b"");
        assert_eq!(sealed.len(), 3 + SEAL_OVERHEAD_BYTES);
        assert_eq!(open(&key, &sealed, b"").expect("opens").as_slice(), b"abc");
        let empty = seal(&key, b"", b"aad");
        assert_eq!(empty.len(), SEAL_OVERHEAD_BYTES);
        assert_eq!(open(&key, &empty, b"aad").expect("opens").as_slice(), b"");
        assert_eq!(open(&key, &empty[..SEAL_OVERHEAD_BYTES - 1], b"aad"), Err(EnvelopeError::Decrypt));
    }

    #[test]
    fn debug_does_not_print_the_key() {
        let key = DataKey([0xab; DataKey::LEN]);
        assert_eq!(format!("{key:?}"), "DataKey(..)");
    }
}

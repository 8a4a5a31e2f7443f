//! Envelope encryption for patient records.
//!
//! - Each record version gets its own random 256-bit [`DataKey`]; [`seal`] encrypts with
//!   AES-256-GCM (`aes-gcm`) under a fresh random 96-bit nonce, binding caller-chosen
//!   associated data.
//! - Data keys are wrapped for an organisation's [`VaultPublicKey`] with HPKE base mode
//!   (RFC 9180: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM; the `hpke` crate), with
//!   `info` binding the record version, so a wrapped key moved to another record does not open.
//! - A vault's own copy of each data key is wrapped under its [`KeyEncryptionKey`]
//!   (XChaCha20-Poly1305 under a key derived from the vault secret with HKDF-SHA256), which
//!   costs about a microsecond where HPKE costs about ninety.
//! - [`IndexKey`] makes blind search tokens (HMAC-SHA256 under a key derived from the vault
//!   secret with HKDF-SHA256), so a vault can index values without storing them.
//! - A vault key lives in a file with mode 0600, plain (for keys mounted from a KMS or secret
//!   store) or sealed with a passphrase (Argon2id, then AES-256-GCM); see [`KeyFileError`].
//!
//! Every secret is zeroized when dropped and never printed; no error message carries key
//! material or plaintext.

mod data_key;
mod index;
mod key_file;
mod local_wrap;
mod vault_key;

pub use data_key::{DataKey, SEAL_OVERHEAD_BYTES, open, seal};
pub use index::IndexKey;
pub use key_file::KeyFileError;
pub use local_wrap::{KeyEncryptionKey, LOCAL_WRAPPED_KEY_BYTES, LocalWrappedKey};
pub use vault_key::{
    MAX_INFO_BYTES, VaultPublicKey, VaultSecretKey, WRAPPED_KEY_BYTES, WrappedKey, unwrap_key, wrap_key,
};

/// Why opening, unwrapping or parsing failed. Says nothing about keys or contents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The ciphertext, its associated data or context, or the key is wrong: it does not decrypt.
    #[error("the ciphertext does not decrypt with this key and context")]
    Decrypt,
    /// A wrapped key has the wrong length.
    #[error("a wrapped data key is {expected} bytes, got {found}")]
    MalformedWrappedKey {
        /// The expected length.
        expected: usize,
        /// The length found.
        found: usize,
    },
    /// The bytes or text are not a usable X25519 public key.
    #[error("not an X25519 vault public key: {0}")]
    InvalidPublicKey(&'static str),
    /// The HPKE context (`info`) is longer than [`MAX_INFO_BYTES`].
    #[error("the key-wrapping context is {found} bytes, over the limit of {MAX_INFO_BYTES}")]
    InfoTooLong {
        /// The length given.
        found: usize,
    },
}

/// Fills `bytes` from the operating system's random number generator.
///
/// # Panics
/// If the operating system cannot provide randomness, which on the systems MedLedger runs on
/// happens only before the kernel's generator is seeded at boot; going on without it would be
/// worse than stopping.
fn fill_random(bytes: &mut [u8]) {
    getrandom::fill(bytes).expect("the operating system's random number generator works");
}

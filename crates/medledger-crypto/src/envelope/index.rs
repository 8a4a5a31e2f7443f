//! Blind search-index tokens.

use std::fmt;

use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::VaultSecretKey;

/// HKDF-SHA256 `info` deriving the index key from a vault secret: this key is used for
/// nothing else, and a new derivation gets a new version.
const INDEX_KEY_INFO: &[u8] = b"medledger/vault-index/v1";
/// Bytes of an index key and of a token (HMAC-SHA256 output).
const INDEX_KEY_BYTES: usize = 32;

/// The key of a vault's blind search-index tokens, derived from its secret key. Zeroized on
/// drop, never printed.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct IndexKey([u8; INDEX_KEY_BYTES]);

impl VaultSecretKey {
    /// The key for blind index tokens: HKDF-SHA256 of this secret with `info`
    /// `"medledger/vault-index/v1"`, so tokens reveal nothing about the secret key and the
    /// secret key is never used directly as a MAC key.
    #[must_use]
    pub fn index_key(&self) -> IndexKey {
        let mut key = IndexKey([0; INDEX_KEY_BYTES]);
        hkdf::Hkdf::<Sha256>::new(None, &self.0)
            .expand(INDEX_KEY_INFO, &mut key.0)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        key
    }
}

impl IndexKey {
    /// HMAC-SHA256 over the field name's length (8 bytes, big-endian), the field name and the
    /// value: the same `(field, value)` always gives the same token under one key, no two
    /// different pairs share an input, and nothing about the value can be learned without
    /// the key.
    #[must_use]
    pub fn token(&self, field: &str, value: &str) -> [u8; 32] {
        let field_len = u64::try_from(field.len()).expect("a length fits in 64 bits");
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(&field_len.to_be_bytes());
        mac.update(field.as_bytes());
        mac.update(value.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for IndexKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IndexKey(..)")
    }
}

//! Ed25519 member and node keys.
//!
//! Secret keys live on disk as PKCS#8 PEM files with mode 0600 and are zeroized when dropped
//! (`ed25519-dalek` with its `zeroize` feature). Public keys and signatures are fixed-size
//! byte strings that serialise as hex.

use std::fmt;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::serde_as_text;
use ed25519_dalek::Signer as _;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, spki::der::pem::LineEnding};
use zeroize::Zeroizing;

/// File mode for secret key files: owner read/write only.
const SECRET_KEY_FILE_MODE: u32 = 0o600;

/// Problems loading, parsing or storing keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read or written.
    #[error("key file {path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The key file exists already; keys are never silently overwritten.
    #[error("key file {0} already exists; refusing to overwrite a key")]
    AlreadyExists(PathBuf),
    /// The key file can be read by other users.
    #[error(
        "key file {path} has mode {mode:o}; secret keys must not be readable by group or others (chmod 600)"
    )]
    InsecurePermissions {
        /// The file involved.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file is not a PKCS#8 PEM Ed25519 private key.
    #[error("key file {0} is not a PKCS#8 PEM Ed25519 private key")]
    NotPkcs8Pem(PathBuf),
    /// The operating system's random number generator failed.
    #[error("the system random number generator failed: {0}")]
    Random(String),
    /// Bytes or hex that are not an Ed25519 public key.
    #[error("not an Ed25519 public key: {0}")]
    InvalidPublicKey(&'static str),
    /// Bytes or hex that are not an Ed25519 signature.
    #[error("not an Ed25519 signature: expected 64 bytes as 128 hex characters")]
    InvalidSignature,
}

/// An Ed25519 signing key. Zeroized on drop.
pub struct SigningKey(ed25519_dalek::SigningKey);

impl SigningKey {
    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut()).map_err(|error| KeyError::Random(error.to_string()))?;
        Ok(Self(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    /// A key from a 32-byte seed. For deterministic tests, simulations and benchmarks only:
    /// a predictable seed is a published key.
    #[must_use]
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(ed25519_dalek::SigningKey::from_bytes(seed))
    }

    /// The 32-byte secret seed, for handing this key to the consensus engine's signer (a
    /// different Ed25519 implementation of the same key). Zeroized when dropped.
    #[must_use]
    pub fn seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The public half.
    #[must_use]
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Signs `message` (which callers build with a domain-separation tag).
    #[must_use]
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.0.sign(message).to_bytes())
    }

    /// PKCS#8 PEM text of the secret key.
    pub fn to_pkcs8_pem(&self) -> Zeroizing<String> {
        self.0.to_pkcs8_pem(LineEnding::LF).expect("encoding a valid Ed25519 key as PKCS#8 cannot fail")
    }

    /// Parses PKCS#8 PEM text.
    pub fn from_pkcs8_pem(pem: &str) -> Option<Self> {
        ed25519_dalek::SigningKey::from_pkcs8_pem(pem).ok().map(Self)
    }

    /// Writes the key to a new file with mode 0600. Never overwrites an existing file.
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        let io_error = |source| KeyError::Io { path: path.to_owned(), source };
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(SECRET_KEY_FILE_MODE)
            .open(path)
            .map_err(|source| {
                if source.kind() == std::io::ErrorKind::AlreadyExists {
                    KeyError::AlreadyExists(path.to_owned())
                } else {
                    io_error(source)
                }
            })?;
        file.write_all(self.to_pkcs8_pem().as_bytes()).map_err(io_error)?;
        file.sync_all().map_err(io_error)
    }

    /// Reads a key file written by [`SigningKey::save`], refusing files others can read.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let io_error = |source| KeyError::Io { path: path.to_owned(), source };
        let mode = fs::metadata(path).map_err(io_error)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::InsecurePermissions { path: path.to_owned(), mode });
        }
        let pem = Zeroizing::new(fs::read_to_string(path).map_err(io_error)?);
        Self::from_pkcs8_pem(&pem).ok_or_else(|| KeyError::NotPkcs8Pem(path.to_owned()))
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey(public: {})", self.public_key())
    }
}

/// Checked public keys by encoding. Only keys that passed every check of
/// [`PublicKey::from_bytes`] go in, so a hit returns exactly what parsing would.
mod key_cache {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};

    use super::PublicKey;

    /// Most keys remembered (about 10 MB); the cache starts over when full.
    const MAX_CACHED_KEYS: usize = 65_536;

    fn cache() -> &'static Mutex<HashMap<[u8; 32], PublicKey>> {
        static CACHE: OnceLock<Mutex<HashMap<[u8; 32], PublicKey>>> = OnceLock::new();
        CACHE.get_or_init(|| Mutex::new(HashMap::new()))
    }

    pub(super) fn get(bytes: &[u8; 32]) -> Option<PublicKey> {
        cache().lock().ok()?.get(bytes).copied()
    }

    pub(super) fn insert(bytes: [u8; 32], key: PublicKey) {
        if let Ok(mut cache) = cache().lock() {
            if cache.len() >= MAX_CACHED_KEYS {
                cache.clear();
            }
            cache.insert(bytes, key);
        }
    }
}

/// An Ed25519 public key, checked to be a valid curve point that is not of small order.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl PublicKey {
    /// Length of an encoded public key in bytes.
    pub const LEN: usize = 32;

    /// Parses 32 bytes, rejecting invalid points and weak (small-order) keys.
    ///
    /// Decompressing a point costs about as much as a third of a signature check, and a
    /// validator parses the same members' keys over and over (in every gossiped transaction
    /// and every block), so keys that passed every check are remembered in a bounded cache.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        if let Some(key) = key_cache::get(bytes) {
            return Ok(key);
        }
        let key = Self::parse(bytes)?;
        key_cache::insert(*bytes, key);
        Ok(key)
    }

    fn parse(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        let key = ed25519_dalek::VerifyingKey::from_bytes(bytes)
            .map_err(|_| KeyError::InvalidPublicKey("not a valid curve point"))?;
        if key.is_weak() {
            return Err(KeyError::InvalidPublicKey("small-order (weak) key"));
        }
        // A y-coordinate (low 255 bits, little-endian) at or above p = 2^255 - 19 names the same
        // point as its reduced form; reject it so each key has exactly one encoding. Those are the
        // values p..2^255 - 1: low byte >= 0xed, then 30 bytes of 0xff, then 0x7f under the sign bit.
        if bytes[0] >= 0xed && bytes[1..31].iter().all(|&byte| byte == 0xff) && bytes[31] & 0x7f == 0x7f {
            return Err(KeyError::InvalidPublicKey("non-canonical point encoding (y >= 2^255 - 19)"));
        }
        Ok(Self(key))
    }

    /// The 32 encoded bytes.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The 32 encoded bytes, borrowed.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// Verifies one signature with the strict rules (no malleable or small-order components).
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), SignatureError> {
        let signature = ed25519_dalek::Signature::from_bytes(&signature.0);
        self.0.verify_strict(message, &signature).map_err(|_| SignatureError { index: 0 })
    }
}

impl PartialOrd for PublicKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PublicKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.as_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes)
            .map_err(|_| KeyError::InvalidPublicKey("expected 64 hex characters"))?;
        Self::from_bytes(&bytes)
    }
}

/// An Ed25519 signature (64 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; 64]);

impl Signature {
    /// Length of a signature in bytes.
    pub const LEN: usize = 64;
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({self})")
    }
}

impl FromStr for Signature {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0u8; 64];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| KeyError::InvalidSignature)?;
        Ok(Self(bytes))
    }
}

serde_as_text!(PublicKey, Signature);

/// A signature that did not verify; `index` is its position in the batch (0 for one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("signature {index} does not verify")]
pub struct SignatureError {
    /// Position of the first failing signature in the batch.
    pub index: usize,
}

/// Verifies many signatures at once (about twice as fast per signature as one by one).
///
/// On failure, falls back to one-by-one verification to name the first bad signature, so a
/// block with one forged transaction is rejected with that transaction's index.
pub fn verify_batch(
    messages: &[&[u8]],
    signatures: &[Signature],
    public_keys: &[PublicKey],
) -> Result<(), SignatureError> {
    assert_eq!(messages.len(), signatures.len(), "one signature per message");
    assert_eq!(messages.len(), public_keys.len(), "one public key per message");
    if messages.is_empty() {
        return Ok(());
    }
    let dalek_signatures: Vec<_> =
        signatures.iter().map(|signature| ed25519_dalek::Signature::from_bytes(&signature.0)).collect();
    let dalek_keys: Vec<_> = public_keys.iter().map(|key| key.0).collect();
    if ed25519_dalek::verify_batch(messages, &dalek_signatures, &dalek_keys).is_ok() {
        return Ok(());
    }
    for (index, ((message, signature), key)) in messages.iter().zip(signatures).zip(public_keys).enumerate() {
        key.verify(message, signature).map_err(|_| SignatureError { index })?;
    }
    // Batch and single verification disagree only for crafted signatures with torsion
    // components; treat such a batch as invalid rather than guess.
    Err(SignatureError { index: 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_reject_other_message() {
        let key = SigningKey::from_seed(&[7; 32]);
        let signature = key.sign(b"medledger");
        assert!(key.public_key().verify(b"medledger", &signature).is_ok());
        assert!(key.public_key().verify(b"medledgeR", &signature).is_err());
    }

    #[test]
    fn pem_file_round_trip_with_mode_0600() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("member.pem");
        let key = SigningKey::generate().expect("rng");
        key.save(&path).expect("save");
        let mode = fs::metadata(&path).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let loaded = SigningKey::load(&path).expect("load");
        assert_eq!(loaded.public_key(), key.public_key());
        assert!(matches!(key.save(&path), Err(KeyError::AlreadyExists(_))));
    }

    #[test]
    fn load_refuses_world_readable_and_garbage() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("member.pem");
        SigningKey::generate().expect("rng").save(&path).expect("save");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(matches!(SigningKey::load(&path), Err(KeyError::InsecurePermissions { .. })));
        fs::write(&path, "not a key").expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        assert!(matches!(SigningKey::load(&path), Err(KeyError::NotPkcs8Pem(_))));
    }

    #[test]
    fn weak_and_invalid_public_keys_are_rejected() {
        // The identity point encodes as 1 followed by zeros: small order.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(PublicKey::from_bytes(&identity).is_err());
        assert!("00".parse::<PublicKey>().is_err());
    }

    #[test]
    fn batch_names_the_forged_signature() {
        let keys: Vec<_> = (0u8..8).map(|seed| SigningKey::from_seed(&[seed; 32])).collect();
        let messages: Vec<Vec<u8>> = (0u8..8).map(|index| vec![index; 10]).collect();
        let mut signatures: Vec<_> =
            keys.iter().zip(&messages).map(|(key, message)| key.sign(message)).collect();
        let public_keys: Vec<_> = keys.iter().map(SigningKey::public_key).collect();
        let message_refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        assert_eq!(verify_batch(&message_refs, &signatures, &public_keys), Ok(()));
        signatures[5].0[3] ^= 1;
        assert_eq!(verify_batch(&message_refs, &signatures, &public_keys), Err(SignatureError { index: 5 }));
    }
}

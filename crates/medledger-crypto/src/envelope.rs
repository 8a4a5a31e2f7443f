//! Envelope encryption for patient records.
//!
//! - Each record version gets its own random 256-bit [`DataKey`]; [`seal`] encrypts with
//!   AES-256-GCM (`aes-gcm`) under a fresh random 96-bit nonce, binding caller-chosen
//!   associated data.
//! - Data keys are wrapped for an organisation's [`VaultPublicKey`] with HPKE base mode
//!   (RFC 9180: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM; the `hpke` crate).
//! - [`IndexKey`] makes blind search tokens (HMAC-SHA256) so a vault can index values without
//!   storing them.
//! - A vault key lives in a file, plain (mode 0600, for keys mounted from a KMS or secret
//!   store) or sealed with a passphrase (Argon2id, then AES-256-GCM).
//!
//! Every secret is zeroized when dropped and never printed.

use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::str::FromStr;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use hpke::aead::AesGcm256;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

type Kem = X25519HkdfSha256;

/// Bytes of an AES-GCM nonce.
const NONCE_BYTES: usize = 12;
/// Bytes of an AES-GCM tag.
const TAG_BYTES: usize = 16;
/// Bytes of an X25519 encapsulated key.
const ENCAPSULATED_BYTES: usize = 32;
/// Bytes of a wrapped data key: encapsulated key, sealed key, tag.
pub const WRAPPED_KEY_BYTES: usize = ENCAPSULATED_BYTES + 32 + TAG_BYTES;

/// Largest key file read: a sealed key is a few hundred bytes.
const MAX_KEY_FILE_BYTES: u64 = 4 * 1024;
/// Argon2id parameters for new key files (OWASP's minimum: 19 MiB, 2 passes, 1 lane).
const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
const ARGON2_ITERATIONS: u32 = 2;
const ARGON2_LANES: u32 = 1;
/// Upper bounds on parameters read from a file, so a hostile file cannot exhaust memory.
const MAX_ARGON2_MEMORY_KIB: u32 = 1024 * 1024;
const MAX_ARGON2_ITERATIONS: u32 = 64;
const MAX_ARGON2_LANES: u32 = 16;
/// First word of every key file line 1.
const KEY_FILE_MAGIC: &str = "medledger-vault-key v1";

/// Why sealing or opening failed. Says nothing about keys or contents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The ciphertext, its associated data or the key is wrong: it does not decrypt.
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
    /// The bytes are not an X25519 public key.
    #[error("not an X25519 public key")]
    InvalidPublicKey,
}

/// A record version's data key: 256 random bits, zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DataKey([u8; 32]);

impl DataKey {
    /// A fresh random key.
    #[must_use]
    pub fn generate() -> Self {
        Self(random())
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(..)")
    }
}

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0; N];
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    bytes
}

/// Encrypts `plaintext` with AES-256-GCM under a fresh random nonce, binding `aad`.
/// Returns nonce ‖ ciphertext ‖ tag.
#[must_use]
pub fn seal(key: &DataKey, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new_from_slice(&key.0).expect("a 32-byte key");
    let nonce: [u8; NONCE_BYTES] = random();
    let ciphertext = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad })
        .expect("AES-GCM encrypts any message under its size limit");
    [nonce.as_slice(), &ciphertext].concat()
}

/// Decrypts what [`seal`] produced with the same key and `aad`.
///
/// # Errors
/// [`EnvelopeError::Decrypt`] if any byte, the key or the associated data differs.
pub fn open(key: &DataKey, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
    if sealed.len() < NONCE_BYTES + TAG_BYTES {
        return Err(EnvelopeError::Decrypt);
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
    let cipher = Aes256Gcm::new_from_slice(&key.0).expect("a 32-byte key");
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad })
        .map(Zeroizing::new)
        .map_err(|_| EnvelopeError::Decrypt)
}

/// An organisation's vault key pair secret: X25519, zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct VaultSecretKey([u8; 32]);

impl fmt::Debug for VaultSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VaultSecretKey(public: {})", self.public_key())
    }
}

/// An organisation's vault public key: what data keys are wrapped to.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct VaultPublicKey([u8; 32]);

impl VaultSecretKey {
    /// A fresh random key.
    #[must_use]
    pub fn generate() -> Self {
        let (secret, _) = Kem::derive_keypair(&random::<32>());
        let mut bytes = [0; 32];
        bytes.copy_from_slice(&secret.to_bytes());
        Self(bytes)
    }

    fn hpke_secret(&self) -> <Kem as hpke::Kem>::PrivateKey {
        <Kem as hpke::Kem>::PrivateKey::from_bytes(&self.0).expect("stored secrets are valid X25519 scalars")
    }

    /// The public half.
    #[must_use]
    pub fn public_key(&self) -> VaultPublicKey {
        let public = Kem::sk_to_pk(&self.hpke_secret());
        let mut bytes = [0; 32];
        bytes.copy_from_slice(&public.to_bytes());
        VaultPublicKey(bytes)
    }

    /// The key for blind index tokens, derived from this secret.
    #[must_use]
    pub fn index_key(&self) -> IndexKey {
        let mut mac =
            <Hmac<sha2_v010::Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(b"medledger/vault-index/v1");
        IndexKey(mac.finalize().into_bytes().into())
    }
}

impl VaultPublicKey {
    /// The raw 32 bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Checks and wraps 32 bytes.
    ///
    /// # Errors
    /// [`EnvelopeError::InvalidPublicKey`] for bytes HPKE refuses.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, EnvelopeError> {
        <Kem as hpke::Kem>::PublicKey::from_bytes(bytes).map_err(|_| EnvelopeError::InvalidPublicKey)?;
        if bytes == &[0; 32] {
            return Err(EnvelopeError::InvalidPublicKey);
        }
        Ok(Self(*bytes))
    }

    fn hpke_public(&self) -> <Kem as hpke::Kem>::PublicKey {
        <Kem as hpke::Kem>::PublicKey::from_bytes(&self.0).expect("checked on construction")
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
    fn from_str(text: &str) -> Result<Self, EnvelopeError> {
        let mut bytes = [0; 32];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| EnvelopeError::InvalidPublicKey)?;
        Self::from_bytes(&bytes)
    }
}

impl Serialize for VaultPublicKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for VaultPublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

/// A data key wrapped for one recipient: encapsulated key ‖ sealed data key ‖ tag.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey(Vec<u8>);

impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WrappedKey({} bytes)", self.0.len())
    }
}

impl WrappedKey {
    /// The bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Checks the length of wrapped-key bytes.
    ///
    /// # Errors
    /// [`EnvelopeError::MalformedWrappedKey`] for any other length.
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

/// Wraps `key` for `recipient` with HPKE base mode; `info` binds the context (the record
/// version), so a wrapped key moved to another record does not open.
#[must_use]
pub fn wrap_key(recipient: &VaultPublicKey, key: &DataKey, info: &[u8]) -> WrappedKey {
    let mut rng = rand_core::UnwrapErr(rand_core::OsRng);
    let (encapsulated, sealed) = hpke::single_shot_seal::<AesGcm256, HkdfSha256, Kem, _>(
        &OpModeS::Base,
        &recipient.hpke_public(),
        info,
        &key.0,
        &[],
        &mut rng,
    )
    .expect("HPKE seals to a checked public key");
    WrappedKey([encapsulated.to_bytes().as_slice(), &sealed].concat())
}

/// Unwraps a data key wrapped for `secret`'s public key with the same `info`.
///
/// # Errors
/// [`EnvelopeError::Decrypt`] if it was wrapped for someone else, for another context, or
/// altered.
pub fn unwrap_key(
    secret: &VaultSecretKey,
    wrapped: &WrappedKey,
    info: &[u8],
) -> Result<DataKey, EnvelopeError> {
    let (encapsulated, sealed) = wrapped.0.split_at(ENCAPSULATED_BYTES);
    let encapsulated =
        <Kem as hpke::Kem>::EncappedKey::from_bytes(encapsulated).map_err(|_| EnvelopeError::Decrypt)?;
    let opened = Zeroizing::new(
        hpke::single_shot_open::<AesGcm256, HkdfSha256, Kem>(
            &OpModeR::Base,
            &secret.hpke_secret(),
            &encapsulated,
            info,
            sealed,
            &[],
        )
        .map_err(|_| EnvelopeError::Decrypt)?,
    );
    let bytes: [u8; 32] = opened.as_slice().try_into().map_err(|_| EnvelopeError::Decrypt)?;
    Ok(DataKey(bytes))
}

/// The key of blind search tokens; zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct IndexKey([u8; 32]);

impl fmt::Debug for IndexKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IndexKey(..)")
    }
}

impl IndexKey {
    /// HMAC-SHA256 over the length-prefixed field name and the value: equal inputs give equal
    /// tokens, and nothing about the value can be learned without the key.
    #[must_use]
    pub fn token(&self, field: &str, value: &str) -> [u8; 32] {
        let mut mac =
            <Hmac<sha2_v010::Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(&u32::try_from(field.len()).unwrap_or(u32::MAX).to_be_bytes());
        mac.update(field.as_bytes());
        mac.update(value.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// Why a vault key file could not be read or written. Never shows key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// File-system trouble.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The file exists; keys are never overwritten.
    #[error("the key file exists already; refusing to overwrite it")]
    Exists,
    /// Group or others may read the file.
    #[error("the key file has mode {mode:o}; it must not be readable by group or others (chmod 600)")]
    Permissions {
        /// The file's mode bits.
        mode: u32,
    },
    /// The file is not a vault key file of a known version.
    #[error("not a MedLedger vault key file: {0}")]
    Format(String),
    /// The passphrase does not open the key.
    #[error("wrong passphrase or corrupted key file")]
    WrongPassphrase,
    /// The key is sealed and no passphrase was given.
    #[error("this vault key is sealed; set MEDLEDGER_VAULT_PASSPHRASE")]
    PassphraseRequired,
}

impl VaultSecretKey {
    /// Writes the key to a new file with mode 0600: sealed with Argon2id and AES-256-GCM when a
    /// passphrase is given, plain otherwise (for a key kept on a KMS-mounted secret volume).
    ///
    /// # Errors
    /// If the file exists or cannot be written.
    pub fn write_file(&self, path: &Path, passphrase: Option<&[u8]>) -> Result<(), KeyFileError> {
        let text = match passphrase {
            None => Zeroizing::new(format!("{KEY_FILE_MAGIC} plain\n{}\n", hex::encode(self.0))),
            Some(passphrase) => {
                let salt: [u8; 16] = random();
                let header = format!(
                    "{KEY_FILE_MAGIC} argon2id m={ARGON2_MEMORY_KIB} t={ARGON2_ITERATIONS} p={ARGON2_LANES} salt={}",
                    hex::encode(salt)
                );
                let kek = DataKey(derive_kek(
                    passphrase,
                    &salt,
                    ARGON2_MEMORY_KIB,
                    ARGON2_ITERATIONS,
                    ARGON2_LANES,
                )?);
                let sealed = seal(&kek, &self.0, header.as_bytes());
                Zeroizing::new(format!("{header}\n{}\n", hex::encode(sealed)))
            }
        };
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        let mut file =
            fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(|error| {
                if error.kind() == std::io::ErrorKind::AlreadyExists {
                    KeyFileError::Exists
                } else {
                    error.into()
                }
            })?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        Ok(())
    }

    /// Reads a key file written by [`VaultSecretKey::write_file`].
    ///
    /// # Errors
    /// Readable by others, malformed, sealed without passphrase, or a wrong passphrase.
    pub fn read_file(path: &Path, passphrase: Option<&[u8]>) -> Result<Self, KeyFileError> {
        let metadata = fs::metadata(path)?;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyFileError::Permissions { mode });
        }
        if metadata.len() > MAX_KEY_FILE_BYTES {
            return Err(KeyFileError::Format(format!("larger than {MAX_KEY_FILE_BYTES} bytes")));
        }
        let text = Zeroizing::new(fs::read_to_string(path)?);
        let (header, body) = text
            .trim_end_matches('\n')
            .split_once('\n')
            .ok_or_else(|| KeyFileError::Format("expected a header line and a key line".into()))?;
        let kind =
            header.strip_prefix(KEY_FILE_MAGIC).and_then(|rest| rest.strip_prefix(' ')).ok_or_else(|| {
                KeyFileError::Format(format!("the first line must start with \"{KEY_FILE_MAGIC}\""))
            })?;
        let secret = if kind == "plain" {
            Zeroizing::new(decode_hex::<32>(body)?)
        } else {
            let passphrase = passphrase.ok_or(KeyFileError::PassphraseRequired)?;
            let (memory, iterations, lanes, salt) = parse_argon2_header(kind)?;
            let kek = DataKey(derive_kek(passphrase, &salt, memory, iterations, lanes)?);
            let sealed =
                hex::decode(body).map_err(|_| KeyFileError::Format("the key line is not hex".into()))?;
            let opened = open(&kek, &sealed, header.as_bytes()).map_err(|_| KeyFileError::WrongPassphrase)?;
            Zeroizing::new(
                opened.as_slice().try_into().map_err(|_| KeyFileError::Format("a key is 32 bytes".into()))?,
            )
        };
        <Kem as hpke::Kem>::PrivateKey::from_bytes(secret.as_slice())
            .map_err(|_| KeyFileError::Format("not an X25519 secret key".into()))?;
        Ok(Self(*secret))
    }
}

fn decode_hex<const N: usize>(text: &str) -> Result<[u8; N], KeyFileError> {
    let mut bytes = [0; N];
    hex::decode_to_slice(text, &mut bytes)
        .map_err(|_| KeyFileError::Format(format!("expected {N} hex bytes")))?;
    Ok(bytes)
}

/// Parses `argon2id m=… t=… p=… salt=…`, refusing parameters beyond sane maxima.
fn parse_argon2_header(kind: &str) -> Result<(u32, u32, u32, [u8; 16]), KeyFileError> {
    let format =
        || KeyFileError::Format("expected \"argon2id m=<KiB> t=<passes> p=<lanes> salt=<hex>\"".into());
    let mut fields = kind.split(' ');
    if fields.next() != Some("argon2id") {
        return Err(format());
    }
    let mut value = |name: &str| fields.next().and_then(|field| field.strip_prefix(name)).ok_or_else(format);
    let number =
        |text: &str, max: u32| text.parse::<u32>().ok().filter(|n| (1..=max).contains(n)).ok_or_else(format);
    let memory = number(value("m=")?, MAX_ARGON2_MEMORY_KIB)?;
    let iterations = number(value("t=")?, MAX_ARGON2_ITERATIONS)?;
    let lanes = number(value("p=")?, MAX_ARGON2_LANES)?;
    let salt = decode_hex::<16>(value("salt=")?)?;
    Ok((memory, iterations, lanes, salt))
}

fn derive_kek(
    passphrase: &[u8],
    salt: &[u8],
    memory: u32,
    iterations: u32,
    lanes: u32,
) -> Result<[u8; 32], KeyFileError> {
    let params = argon2::Params::new(memory, iterations, lanes, Some(32))
        .map_err(|error| KeyFileError::Format(format!("argon2 parameters: {error}")))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut kek = [0; 32];
    argon
        .hash_password_into(passphrase, salt, &mut kek)
        .map_err(|error| KeyFileError::Format(format!("argon2: {error}")))?;
    Ok(kek)
}

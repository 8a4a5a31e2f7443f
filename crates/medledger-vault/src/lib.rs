//! MedLedger's record vault: where an organisation's patient records live, encrypted, off chain.
//!
//! Each record version is sealed with its own random data key (AES-256-GCM, bound to the
//! record's type, id and version as associated data); the data key is wrapped under the vault's
//! key-encryption key (XChaCha20-Poly1305, derived from the vault key; HPKE-wrapped keys of
//! versions sealed before format 3 still open), and with HPKE for another organisation's vault
//! when a version is shared. The chain holds only the SHA-256 of the sealed bytes, so a version
//! read back is checked twice: against its anchor, and by the AEAD tag. Either failing means
//! tampering at rest: the version is never served and the [`Vault::tampered_count`] alarm goes
//! up.
//!
//! Search never needs plaintext at rest: each version stores blind tokens (HMAC under a key
//! derived from the vault key) of its searchable values, indexed by token.
//!
//! One redb file, `vault.redb`, beside the chain's store; one vault key per node, in
//! `keys/vault.key` (see `docs/operators.md`).

mod entry;
mod key_cache;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use medledger_crypto::envelope::{
    DataKey, EnvelopeError, IndexKey, KeyEncryptionKey, KeyFileError, VaultPublicKey, VaultSecretKey,
    WrappedKey, open, seal, unwrap_key, wrap_key,
};
use medledger_crypto::{Digest, sha256};
use medledger_types::{Encode, RecordId, ResourceType};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use zeroize::Zeroizing;

pub use entry::{OwnWrappedKey, SealedVersion, StoredVersion};
pub use key_cache::{DEFAULT_CACHED_KEYS, MAX_KEY_AGE};

use crate::key_cache::KeyCache;

/// File name of the vault database inside a data directory.
pub const DATABASE_FILE: &str = "vault.redb";

/// Version of the on-disk layout; bumped on any incompatible change. Version 3 wraps new
/// versions' data keys under the key-encryption key; a version-2 vault is marked 3 when opened,
/// and its HPKE-wrapped keys still open.
pub const FORMAT_VERSION: u32 = 3;

/// The format before locally wrapped keys: readable as is.
const FORMAT_VERSION_HPKE_ONLY: u32 = 2;

/// Most index tokens one version may carry: a resource has a handful of codes, categories and
/// a patient; anything beyond this is not a clinical resource.
pub const MAX_TOKENS_PER_VERSION: usize = 64;

/// Most candidates one token lookup returns: searches page through at most this many records
/// per token, which bounds the work a single search can cause.
pub const MAX_TOKEN_MATCHES: usize = 10_000;

/// Largest sealed record version: an 8 MiB resource with its attachment, plus AEAD overhead.
pub const MAX_SEALED_BYTES: usize = 8 * 1024 * 1024 + 1024;

mod tables {
    use redb::TableDefinition;

    /// `format_version`.
    pub const META: TableDefinition<'_, &str, u32> = TableDefinition::new("meta");
    /// type ‖ record id ‖ version (big-endian) → canonical [`super::StoredVersion`].
    pub const VERSIONS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("versions");
    /// type ‖ record id → latest version.
    pub const HEADS: TableDefinition<'_, &[u8], u64> = TableDefinition::new("heads");
    /// token ‖ type ‖ record id → latest version carrying the token.
    pub const INDEX: TableDefinition<'_, &[u8], u64> = TableDefinition::new("index");
}

/// What can go wrong in the vault.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// File-system trouble.
    #[error("vault I/O at {path}: {source}")]
    Io {
        /// Where.
        path: PathBuf,
        /// What.
        source: std::io::Error,
    },
    /// The database failed.
    #[error("vault database: {0}")]
    Database(String),
    /// The vault key file could not be read or written.
    #[error("vault key {path}: {source}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// Why.
        source: KeyFileError,
    },
    /// The file was written by an incompatible version.
    #[error("vault format version {found}, but this medledger reads version {FORMAT_VERSION}")]
    FormatVersion {
        /// The version in the file.
        found: u32,
    },
    /// A new version is not the record's next one.
    #[error("version conflict: the record's next version is {expected}")]
    VersionConflict {
        /// The version expected.
        expected: u64,
    },
    /// A stored version failed its integrity check: its ciphertext does not match its anchor
    /// or does not decrypt. It is never served.
    #[error("record version failed its integrity check at rest")]
    Tampered,
    /// A stored entry does not decode.
    #[error("corrupt vault entry: {0}")]
    Corrupt(String),
    /// Too large or too many tokens.
    #[error("{what} over the limit of {max}")]
    TooLarge {
        /// What.
        what: &'static str,
        /// The limit.
        max: usize,
    },
    /// Encryption failed (a wrapped key for another recipient, for instance).
    #[error("envelope: {0}")]
    Envelope(#[from] EnvelopeError),
}

impl VaultError {
    fn database(error: impl std::fmt::Display) -> Self {
        VaultError::Database(error.to_string())
    }
}

/// A node's vault: its organisation's records, sealed, and the key that opens them.
pub struct Vault {
    db: Database,
    secret: VaultSecretKey,
    public: VaultPublicKey,
    index_key: IndexKey,
    /// Wraps the vault's own copies of data keys.
    key_encryption_key: KeyEncryptionKey,
    keys: KeyCache,
    tampered: AtomicU64,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault").field("public_key", &self.public).finish_non_exhaustive()
    }
}

/// The key file's path in a data directory.
#[must_use]
pub fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("keys").join("vault.key")
}

/// Creates a new vault key in `data_dir` (sealed with `passphrase` if given).
///
/// # Errors
/// If the key file exists or cannot be written.
pub fn create_key(data_dir: &Path, passphrase: Option<&[u8]>) -> Result<VaultPublicKey, VaultError> {
    let path = key_path(data_dir);
    let secret = VaultSecretKey::generate();
    secret.write_file(&path, passphrase).map_err(|source| VaultError::Key { path, source })?;
    Ok(secret.public_key())
}

/// Whether the vault key of `data_dir` is sealed with a passphrase.
///
/// # Errors
/// If the key file is missing or unreadable.
pub fn key_is_sealed(data_dir: &Path) -> Result<bool, VaultError> {
    let path = key_path(data_dir);
    VaultSecretKey::file_is_sealed(&path).map_err(|source| VaultError::Key { path, source })
}

/// Seals the plain vault key of `data_dir` with `passphrase`, in place (see
/// [`VaultSecretKey::seal_file`]).
///
/// # Errors
/// If the key is sealed already, the passphrase is empty, or the file cannot be replaced.
pub fn seal_key(data_dir: &Path, passphrase: &[u8]) -> Result<(), VaultError> {
    let path = key_path(data_dir);
    VaultSecretKey::seal_file(&path, passphrase).map_err(|source| VaultError::Key { path, source })
}

impl Vault {
    /// Opens (creating if needed) the vault of `data_dir` with its key, keeping up to
    /// [`DEFAULT_CACHED_KEYS`] data keys unwrapped (see [`Vault::with_key_cache`]).
    ///
    /// # Errors
    /// If the key is missing, sealed with another passphrase, or the database is unusable.
    pub fn open(data_dir: &Path, passphrase: Option<&[u8]>) -> Result<Self, VaultError> {
        let path = key_path(data_dir);
        let secret = VaultSecretKey::read_file(&path, passphrase)
            .map_err(|source| VaultError::Key { path, source })?;
        let file = data_dir.join(DATABASE_FILE);
        let db = Database::create(&file).map_err(VaultError::database)?;
        check_format(&db)?;
        let public = secret.public_key();
        let index_key = secret.index_key();
        let key_encryption_key = secret.key_encryption_key();
        let keys = KeyCache::new(DEFAULT_CACHED_KEYS);
        Ok(Self { db, secret, public, index_key, key_encryption_key, keys, tampered: AtomicU64::new(0) })
    }

    /// Keeps at most `entries` data keys of versions sealed or read lately unwrapped, each
    /// for at most [`MAX_KEY_AGE`], so reads of hot records skip the HPKE unwrap; 0 unwraps
    /// on every read.
    #[must_use]
    pub fn with_key_cache(mut self, entries: usize) -> Self {
        self.keys = KeyCache::new(entries);
        self
    }

    /// The vault's public key: what other nodes wrap data keys to.
    #[must_use]
    pub fn public_key(&self) -> VaultPublicKey {
        self.public
    }

    /// The blind token of a searchable `(field, value)`.
    #[must_use]
    pub fn token(&self, field: &str, value: &str) -> [u8; 32] {
        self.index_key.token(field, value)
    }

    /// Seals `plaintext` as `version` of a record: a fresh data key, wrapped under this vault's
    /// key-encryption key.
    #[must_use]
    pub fn seal(
        &self,
        resource_type: ResourceType,
        record: RecordId,
        version: u64,
        plaintext: &[u8],
    ) -> SealedVersion {
        let context = entry::context(resource_type, record, version);
        let data_key = DataKey::generate();
        let ciphertext = seal(&data_key, plaintext, &context);
        let wrapped_key = OwnWrappedKey::Local(self.key_encryption_key.wrap(&data_key, &context));
        // A version just written is the likeliest to be read next.
        self.keys.insert((resource_type, record, version), &wrapped_key, Arc::new(data_key));
        SealedVersion { digest: sha256(&ciphertext), ciphertext, wrapped_key }
    }

    /// The latest version of a record in this vault.
    ///
    /// # Errors
    /// If the database fails.
    pub fn head(&self, resource_type: ResourceType, record: RecordId) -> Result<Option<u64>, VaultError> {
        let read = self.db.begin_read().map_err(VaultError::database)?;
        let table = open_table(&read, tables::HEADS)?;
        let Some(table) = table else { return Ok(None) };
        let head =
            table.get(entry::record_key(resource_type, record).as_slice()).map_err(VaultError::database)?;
        Ok(head.map(|value| value.value()))
    }

    /// Writes versions durably in one transaction; each must be its record's next version
    /// (counting earlier versions of the same batch). Nothing is written if one is not.
    ///
    /// # Errors
    /// [`VaultError::VersionConflict`] naming the first conflicting version, or a database
    /// failure.
    pub fn commit(&self, versions: &[StoredVersion]) -> Result<(), VaultError> {
        let mut write = self.db.begin_write().map_err(VaultError::database)?;
        write.set_durability(Durability::Immediate).map_err(VaultError::database)?;
        {
            let mut heads = write.open_table(tables::HEADS).map_err(VaultError::database)?;
            let mut stored = write.open_table(tables::VERSIONS).map_err(VaultError::database)?;
            let mut index = write.open_table(tables::INDEX).map_err(VaultError::database)?;
            for version in versions {
                version.check_bounds()?;
                let record_key = entry::record_key(version.resource_type, version.record);
                let head = heads.get(record_key.as_slice()).map_err(VaultError::database)?.map(|v| v.value());
                let expected = head.map_or(1, |head| head + 1);
                if version.version != expected {
                    return Err(VaultError::VersionConflict { expected });
                }
                heads.insert(record_key.as_slice(), version.version).map_err(VaultError::database)?;
                let key = entry::version_key(version.resource_type, version.record, version.version);
                stored.insert(key.as_slice(), version.encode().as_slice()).map_err(VaultError::database)?;
                for token in &version.tokens {
                    let key = entry::index_key(token, version.resource_type, version.record);
                    index.insert(key.as_slice(), version.version).map_err(VaultError::database)?;
                }
            }
        }
        write.commit().map_err(VaultError::database)
    }

    /// Removes the latest versions named (compensating a write whose anchor was refused):
    /// each must still be its record's head.
    ///
    /// # Errors
    /// If the database fails.
    pub fn remove_latest(&self, versions: &[StoredVersion]) -> Result<(), VaultError> {
        let mut write = self.db.begin_write().map_err(VaultError::database)?;
        write.set_durability(Durability::Immediate).map_err(VaultError::database)?;
        {
            let mut heads = write.open_table(tables::HEADS).map_err(VaultError::database)?;
            let mut stored = write.open_table(tables::VERSIONS).map_err(VaultError::database)?;
            let mut index = write.open_table(tables::INDEX).map_err(VaultError::database)?;
            for version in versions.iter().rev() {
                let record_key = entry::record_key(version.resource_type, version.record);
                let key = entry::version_key(version.resource_type, version.record, version.version);
                stored.remove(key.as_slice()).map_err(VaultError::database)?;
                if version.version > 1 {
                    heads.insert(record_key.as_slice(), version.version - 1).map_err(VaultError::database)?;
                } else {
                    heads.remove(record_key.as_slice()).map_err(VaultError::database)?;
                }
                for token in &version.tokens {
                    index
                        .remove(entry::index_key(token, version.resource_type, version.record).as_slice())
                        .map_err(VaultError::database)?;
                }
            }
        }
        write.commit().map_err(VaultError::database)
    }

    /// A record's latest version and, read in the same transaction, its version `version`
    /// (the latest when `None`), still sealed: `None` for a version that is 0 or above the
    /// latest. `None` altogether if the vault holds no such record. Both come from one
    /// snapshot: with [`Vault::head`] then [`Vault::get`], a latest version removed in between
    /// (an anchor refused) would turn a read of an existing record into "not found".
    ///
    /// # Errors
    /// If the database fails or the entry is corrupt.
    pub fn head_and_version(
        &self,
        resource_type: ResourceType,
        record: RecordId,
        version: Option<u64>,
    ) -> Result<Option<(u64, Option<StoredVersion>)>, VaultError> {
        let read = self.db.begin_read().map_err(VaultError::database)?;
        let Some(heads) = open_table(&read, tables::HEADS)? else { return Ok(None) };
        let head =
            heads.get(entry::record_key(resource_type, record).as_slice()).map_err(VaultError::database)?;
        let Some(latest) = head.map(|value| value.value()) else { return Ok(None) };
        let Some(wanted) = requested_version(version, latest) else { return Ok(Some((latest, None))) };
        let Some(versions) = open_table(&read, tables::VERSIONS)? else { return Ok(Some((latest, None))) };
        let key = entry::version_key(resource_type, record, wanted);
        let stored = versions.get(key.as_slice()).map_err(VaultError::database)?;
        let stored = stored.map(|bytes| StoredVersion::decode(bytes.value())).transpose()?;
        Ok(Some((latest, stored)))
    }

    /// A stored version, still sealed.
    ///
    /// # Errors
    /// If the database fails or the entry is corrupt.
    pub fn get(
        &self,
        resource_type: ResourceType,
        record: RecordId,
        version: u64,
    ) -> Result<Option<StoredVersion>, VaultError> {
        let read = self.db.begin_read().map_err(VaultError::database)?;
        let Some(table) = open_table(&read, tables::VERSIONS)? else { return Ok(None) };
        let key = entry::version_key(resource_type, record, version);
        let Some(bytes) = table.get(key.as_slice()).map_err(VaultError::database)? else { return Ok(None) };
        StoredVersion::decode(bytes.value()).map(Some)
    }

    /// Decrypts a stored version after checking its ciphertext against `anchor` (the digest on
    /// chain; `None` only for a version whose anchor is not final yet, checked by its AEAD
    /// tag and the digest the vault recorded).
    ///
    /// # Errors
    /// [`VaultError::Tampered`] (and the alarm counter goes up) if either check fails.
    pub fn decrypt(
        &self,
        stored: &StoredVersion,
        anchor: Option<&Digest>,
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let data_key = self.checked_data_key(stored, anchor)?;
        let context = entry::context(stored.resource_type, stored.record, stored.version);
        open(&data_key, &stored.ciphertext, &context).map_err(|_| self.alarm())
    }

    /// The data key of a stored version, wrapped for `recipient` (another organisation's
    /// vault) after the same integrity checks as [`Vault::decrypt`].
    ///
    /// # Errors
    /// [`VaultError::Tampered`] if the version fails its checks.
    pub fn rewrap(
        &self,
        stored: &StoredVersion,
        anchor: &Digest,
        recipient: &VaultPublicKey,
    ) -> Result<WrappedKey, VaultError> {
        let data_key = self.checked_data_key(stored, Some(anchor))?;
        let context = entry::context(stored.resource_type, stored.record, stored.version);
        Ok(wrap_key(recipient, &data_key, &context))
    }

    /// Records matching a token, with the version that carries it, at most
    /// [`MAX_TOKEN_MATCHES`].
    ///
    /// # Errors
    /// If the database fails.
    pub fn find(
        &self,
        token: &[u8; 32],
        resource_type: ResourceType,
    ) -> Result<Vec<(RecordId, u64)>, VaultError> {
        let read = self.db.begin_read().map_err(VaultError::database)?;
        let Some(table) = open_table(&read, tables::INDEX)? else { return Ok(Vec::new()) };
        let start = entry::index_key(token, resource_type, RecordId([0; 16]));
        let end = entry::index_key(token, resource_type, RecordId([0xff; 16]));
        let mut found = Vec::new();
        for item in table
            .range(start.as_slice()..=end.as_slice())
            .map_err(VaultError::database)?
            .take(MAX_TOKEN_MATCHES)
        {
            let (key, version) = item.map_err(VaultError::database)?;
            found.push((entry::record_of_index_key(key.value()), version.value()));
        }
        Ok(found)
    }

    /// Every record of a type in this vault with its latest version, in id order, from
    /// `after` on, at most `limit`.
    ///
    /// # Errors
    /// If the database fails.
    pub fn list(
        &self,
        resource_type: ResourceType,
        after: Option<RecordId>,
        limit: usize,
    ) -> Result<Vec<(RecordId, u64)>, VaultError> {
        let read = self.db.begin_read().map_err(VaultError::database)?;
        let Some(table) = open_table(&read, tables::HEADS)? else { return Ok(Vec::new()) };
        let start = entry::record_key(resource_type, after.unwrap_or(RecordId([0; 16])));
        let end = entry::record_key(resource_type, RecordId([0xff; 16]));
        let mut found = Vec::new();
        for item in table.range(start.as_slice()..=end.as_slice()).map_err(VaultError::database)? {
            let (key, version) = item.map_err(VaultError::database)?;
            let record = entry::record_of_record_key(key.value());
            if Some(record) == after {
                continue;
            }
            found.push((record, version.value()));
            if found.len() >= limit {
                break;
            }
        }
        Ok(found)
    }

    /// How many integrity failures reads have met since the vault opened: anything above
    /// zero is an alarm (tampering or corruption at rest).
    #[must_use]
    pub fn tampered_count(&self) -> u64 {
        self.tampered.load(Ordering::Relaxed)
    }

    /// The data key of a stored version whose ciphertext matches the digest recorded with it
    /// and `anchor` (if given); any mismatch raises the alarm. Cached keys spare the unwrap.
    fn checked_data_key(
        &self,
        stored: &StoredVersion,
        anchor: Option<&Digest>,
    ) -> Result<Arc<DataKey>, VaultError> {
        let digest = sha256(&stored.ciphertext);
        if digest != stored.digest || anchor.is_some_and(|anchor| anchor != &digest) {
            return Err(self.alarm());
        }
        let id = (stored.resource_type, stored.record, stored.version);
        if let Some(key) = self.keys.get(id, &stored.wrapped_key) {
            return Ok(key);
        }
        let context = entry::context(stored.resource_type, stored.record, stored.version);
        let unwrapped = match &stored.wrapped_key {
            OwnWrappedKey::Local(wrapped) => self.key_encryption_key.unwrap(wrapped, &context),
            OwnWrappedKey::Hpke(wrapped) => unwrap_key(&self.secret, wrapped, &context),
        };
        let key = Arc::new(unwrapped.map_err(|_| self.alarm())?);
        self.keys.insert(id, &stored.wrapped_key, Arc::clone(&key));
        Ok(key)
    }

    fn alarm(&self) -> VaultError {
        self.tampered.fetch_add(1, Ordering::Relaxed);
        VaultError::Tampered
    }

    /// Opens a version another organisation's node sent: its data key wrapped for this vault.
    ///
    /// # Errors
    /// [`VaultError::Tampered`] if the ciphertext does not match `anchor` or does not decrypt
    /// (the sender's copy, not ours; the alarm counter is not raised).
    pub fn open_foreign(
        &self,
        resource_type: ResourceType,
        record: RecordId,
        version: u64,
        ciphertext: &[u8],
        wrapped_key: &WrappedKey,
        anchor: &Digest,
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        if &sha256(ciphertext) != anchor {
            return Err(VaultError::Tampered);
        }
        let context = entry::context(resource_type, record, version);
        let data_key = unwrap_key(&self.secret, wrapped_key, &context).map_err(|_| VaultError::Tampered)?;
        open(&data_key, ciphertext, &context).map_err(|_| VaultError::Tampered)
    }
}

/// The version a read asks for (`version`, or else the latest), if it is one of `1..=latest`.
#[must_use]
pub fn requested_version(version: Option<u64>, latest: u64) -> Option<u64> {
    let wanted = version.unwrap_or(latest);
    (1..=latest).contains(&wanted).then_some(wanted)
}

/// A table for reading; `None` before anything was written to it.
fn open_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    read: &redb::ReadTransaction,
    definition: TableDefinition<'_, K, V>,
) -> Result<Option<redb::ReadOnlyTable<K, V>>, VaultError> {
    match read.open_table(definition) {
        Ok(table) => Ok(Some(table)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(error) => Err(VaultError::database(error)),
    }
}

fn check_format(db: &Database) -> Result<(), VaultError> {
    let write = db.begin_write().map_err(VaultError::database)?;
    {
        let mut meta = write.open_table(tables::META).map_err(VaultError::database)?;
        let found = meta.get("format_version").map_err(VaultError::database)?.map(|value| value.value());
        match found {
            Some(FORMAT_VERSION) => {}
            // Format 3 only adds a key-wrapping scheme: older versions are read as they are.
            Some(FORMAT_VERSION_HPKE_ONLY) | None => {
                meta.insert("format_version", FORMAT_VERSION).map_err(VaultError::database)?;
            }
            Some(found) => return Err(VaultError::FormatVersion { found }),
        }
    }
    write.commit().map_err(VaultError::database)
}

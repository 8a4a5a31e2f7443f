//! Vault key files: plain, or sealed under a passphrase with Argon2id and AES-256-GCM.
//!
//! A key file is two lines of text:
//!
//! ```text
//! medledger-vault-key v1 plain
//! <the 32-byte secret, hex>
//! ```
//!
//! ```text
//! medledger-vault-key v1 argon2id m=<KiB> t=<passes> p=<lanes> salt=<16 bytes, hex>
//! <nonce ‖ encrypted secret ‖ tag, hex>
//! ```
//!
//! The sealed form's first line is the associated data of its encryption, so its Argon2
//! parameters and salt cannot be changed without the passphrase failing. The parameters are
//! stored so new files can use stronger ones while old ones still open; what a file may ask
//! for is bounded, so a hostile file cannot make us allocate gigabytes or spin for minutes.

use std::fs;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::data_key::SEAL_OVERHEAD_BYTES;
use super::{DataKey, VaultSecretKey, fill_random, open, seal};

/// File mode of key files: owner read/write only.
const KEY_FILE_MODE: u32 = 0o600;
/// Mode of the directories `write_file` creates: the owner's alone.
const KEY_DIRECTORY_MODE: u32 = 0o700;
/// Largest key file read: a sealed key file is about 200 bytes.
const MAX_KEY_FILE_BYTES: usize = 4 * 1024;
/// First word of every key file.
const KEY_FILE_MAGIC: &str = "medledger-vault-key";
/// The format version this code writes and reads.
const KEY_FILE_VERSION: u32 = 1;
/// Bytes of a secret key in a file.
const SECRET_BYTES: usize = 32;
/// Bytes of a sealed secret: nonce, encrypted secret, tag.
const SEALED_SECRET_BYTES: usize = SECRET_BYTES + SEAL_OVERHEAD_BYTES;
/// Bytes of an Argon2 salt (the 128 bits RFC 9106 recommends).
const SALT_BYTES: usize = 16;
/// Argon2id parameters of new files: OWASP's minimum (19 MiB, 2 passes, 1 lane), about 50 ms.
const ARGON2_PARAMETERS: Argon2Parameters = Argon2Parameters { memory_kib: 19 * 1024, passes: 2, lanes: 1 };
/// Most memory a key file may ask Argon2 for: 256 MiB, thirteen times today's setting.
const MAX_ARGON2_MEMORY_KIB: u32 = 256 * 1024;
/// Most passes a key file may ask for; with the memory bound, a few seconds at worst.
const MAX_ARGON2_PASSES: u32 = 16;
/// Most lanes a key file may ask for (lanes run one after another here).
const MAX_ARGON2_LANES: u32 = 8;

/// Why a vault key file could not be written or read. Never shows key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file or its directory could not be read, created or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file exists already; keys are never overwritten.
    #[error("the key file exists already; refusing to overwrite a key")]
    Exists,
    /// Group or others have access to the file.
    #[error("the key file has mode {mode:o}; it must not be readable by group or others (chmod 600)")]
    Permissions {
        /// The file's permission bits.
        mode: u32,
    },
    /// The file is larger than any key file.
    #[error("the key file is over {max_bytes} bytes; not a vault key file")]
    TooLarge {
        /// The largest key file read.
        max_bytes: usize,
    },
    /// The file is not a well-formed vault key file.
    #[error("not a MedLedger vault key file: {0}")]
    Format(String),
    /// The file has a format version this code does not read.
    #[error("vault key file format version {found}, but this medledger reads version {KEY_FILE_VERSION}")]
    UnsupportedVersion {
        /// The version in the file.
        found: u32,
    },
    /// The passphrase does not open the key.
    #[error("wrong passphrase or corrupted key file")]
    WrongPassphrase,
    /// The key is sealed and no passphrase was given.
    #[error("this vault key is sealed; set a passphrase")]
    PassphraseRequired,
    /// Sealing was asked of a key that is sealed already.
    #[error("this vault key is sealed already")]
    AlreadySealed,
    /// An empty passphrase was given to seal a key: it would protect nothing.
    #[error("refusing to seal a vault key with an empty passphrase")]
    EmptyPassphrase,
}

impl VaultSecretKey {
    /// Writes the key to a new file with mode 0600, creating missing parent directories
    /// (mode 0700). With a passphrase the secret is sealed: Argon2id (16-byte random salt,
    /// 19 MiB, 2 passes, 1 lane, all stored in the file) derives a key-encryption key and
    /// AES-256-GCM seals the secret with the header line as associated data. Without one it is
    /// stored plain, for a key kept on a KMS-mounted secret volume or in development.
    ///
    /// # Errors
    /// [`KeyFileError::Exists`] if the file exists (it is left alone),
    /// [`KeyFileError::EmptyPassphrase`], or [`KeyFileError::Io`].
    pub fn write_file(&self, path: &Path, passphrase: Option<&[u8]>) -> Result<(), KeyFileError> {
        let text = match passphrase {
            None => self.plain_text(),
            Some([]) => return Err(KeyFileError::EmptyPassphrase),
            Some(passphrase) => self.sealed_text(passphrase),
        };
        let directory = parent_directory(path);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(KEY_DIRECTORY_MODE)
            .create(directory)
            .map_err(|source| KeyFileError::Io { path: directory.to_owned(), source })?;
        write_new_file(path, text.as_bytes())?;
        // The new directory entry must be durable too, or a crash can lose the only copy of a key.
        fs::File::open(directory)
            .and_then(|directory| directory.sync_all())
            .map_err(|source| KeyFileError::Io { path: directory.to_owned(), source })
    }

    fn plain_text(&self) -> Zeroizing<String> {
        let header = format!("{} plain", header_prefix());
        let secret_hex = Zeroizing::new(hex::encode(self.0));
        // Sized up front: growing would leave copies of the secret in freed memory.
        let mut text = Zeroizing::new(String::with_capacity(header.len() + secret_hex.len() + 2));
        text.push_str(&header);
        text.push('\n');
        text.push_str(&secret_hex);
        text.push('\n');
        text
    }

    fn sealed_text(&self, passphrase: &[u8]) -> Zeroizing<String> {
        let mut salt = [0; SALT_BYTES];
        fill_random(&mut salt);
        let Argon2Parameters { memory_kib, passes, lanes } = ARGON2_PARAMETERS;
        let header = format!(
            "{} argon2id m={memory_kib} t={passes} p={lanes} salt={}",
            header_prefix(),
            hex::encode(salt)
        );
        let kek = derive_kek(passphrase, &salt, ARGON2_PARAMETERS)
            .expect("the default Argon2 parameters are valid");
        let sealed = seal(&kek, &self.0, header.as_bytes());
        Zeroizing::new(format!("{header}\n{}\n", hex::encode(sealed)))
    }

    /// Reads a key file written by [`VaultSecretKey::write_file`]. A passphrase given for a
    /// plain file is not needed and is ignored.
    ///
    /// # Errors
    /// [`KeyFileError::Permissions`] if group or others have access to the file,
    /// [`KeyFileError::TooLarge`], [`KeyFileError::Format`] for malformed content or Argon2
    /// parameters over the bounds, [`KeyFileError::UnsupportedVersion`],
    /// [`KeyFileError::PassphraseRequired`] for a sealed file without passphrase,
    /// [`KeyFileError::WrongPassphrase`], or [`KeyFileError::Io`].
    pub fn read_file(path: &Path, passphrase: Option<&[u8]>) -> Result<Self, KeyFileError> {
        let bytes = read_bounded(path)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| format_error("not UTF-8 text"))?;
        let (header, body) = split_lines(text)?;
        let secret = match parse_header(header)? {
            Protection::Plain => decode_hex::<SECRET_BYTES>(body, "the secret key line")?,
            Protection::Argon2id { parameters, salt } => {
                let sealed = decode_hex::<SEALED_SECRET_BYTES>(body, "the sealed key line")?;
                let passphrase = passphrase.ok_or(KeyFileError::PassphraseRequired)?;
                let kek = derive_kek(passphrase, &salt, parameters)
                    .map_err(|error| KeyFileError::Format(format!("Argon2 parameters: {error}")))?;
                let opened = open(&kek, sealed.as_slice(), header.as_bytes())
                    .map_err(|_| KeyFileError::WrongPassphrase)?;
                let mut secret = Zeroizing::new([0; SECRET_BYTES]);
                secret.copy_from_slice(&opened);
                secret
            }
        };
        Ok(Self::from_secret_bytes(&secret))
    }
}

impl VaultSecretKey {
    /// Whether the key file at `path` is sealed with a passphrase (plain otherwise).
    ///
    /// # Errors
    /// As [`VaultSecretKey::read_file`] for a file it cannot read or parse.
    pub fn file_is_sealed(path: &Path) -> Result<bool, KeyFileError> {
        let bytes = read_bounded(path)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| format_error("not UTF-8 text"))?;
        let (header, _) = split_lines(text)?;
        Ok(matches!(parse_header(header)?, Protection::Argon2id { .. }))
    }

    /// Replaces the plain key file at `path` by the same key sealed with `passphrase`. The
    /// sealed copy is written beside it (mode 0600, synced), read back and checked to be the
    /// same key, and only then renamed over the plain file, so a crash leaves one of the two
    /// whole. The file system may keep the plain file's old blocks: sealing protects copies
    /// made from now on.
    ///
    /// # Errors
    /// [`KeyFileError::AlreadySealed`], [`KeyFileError::EmptyPassphrase`], or any error of
    /// reading the plain file or writing the sealed one.
    pub fn seal_file(path: &Path, passphrase: &[u8]) -> Result<(), KeyFileError> {
        if Self::file_is_sealed(path)? {
            return Err(KeyFileError::AlreadySealed);
        }
        let key = Self::read_file(path, None)?;
        let mut sealing = path.as_os_str().to_owned();
        sealing.push(".sealing");
        let sealing = PathBuf::from(sealing);
        // Left by an interrupted earlier attempt: the plain file is still the key.
        match fs::remove_file(&sealing) {
            Err(source) if source.kind() != std::io::ErrorKind::NotFound => {
                return Err(KeyFileError::Io { path: sealing, source });
            }
            _ => {}
        }
        key.write_file(&sealing, Some(passphrase))?;
        if Self::read_file(&sealing, Some(passphrase))?.public_key() != key.public_key() {
            let _ = fs::remove_file(&sealing);
            return Err(format_error("the sealed copy does not read back as the same key"));
        }
        fs::rename(&sealing, path).map_err(|source| KeyFileError::Io { path: path.to_owned(), source })?;
        let directory = parent_directory(path);
        fs::File::open(directory)
            .and_then(|directory| directory.sync_all())
            .map_err(|source| KeyFileError::Io { path: directory.to_owned(), source })
    }
}

/// What protects the secret in a file.
enum Protection {
    Plain,
    Argon2id { parameters: Argon2Parameters, salt: [u8; SALT_BYTES] },
}

/// Argon2id cost parameters.
#[derive(Clone, Copy)]
struct Argon2Parameters {
    memory_kib: u32,
    passes: u32,
    lanes: u32,
}

fn header_prefix() -> String {
    format!("{KEY_FILE_MAGIC} v{KEY_FILE_VERSION}")
}

fn format_error(what: &str) -> KeyFileError {
    KeyFileError::Format(what.to_owned())
}

/// The directory `path` is in; `.` for a bare file name.
fn parent_directory(path: &Path) -> &Path {
    path.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// Creates `path` with mode 0600 and writes `contents`; removes it again if writing fails, so
/// a half-written key never blocks writing a good one.
fn write_new_file(path: &Path, contents: &[u8]) -> Result<(), KeyFileError> {
    let io_error = |source| KeyFileError::Io { path: path.to_owned(), source };
    let mut file =
        fs::OpenOptions::new().write(true).create_new(true).mode(KEY_FILE_MODE).open(path).map_err(
            |source| match source.kind() {
                std::io::ErrorKind::AlreadyExists => KeyFileError::Exists,
                _ => io_error(source),
            },
        )?;
    let written = file.write_all(contents).and_then(|()| file.sync_all());
    if let Err(source) = written {
        drop(file);
        let _ = fs::remove_file(path);
        return Err(io_error(source));
    }
    Ok(())
}

/// Reads at most [`MAX_KEY_FILE_BYTES`] of a regular file that only its owner can access. The
/// checks use the opened file, so the file checked is the file read.
fn read_bounded(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyFileError> {
    let io_error = |source| KeyFileError::Io { path: path.to_owned(), source };
    let file = fs::File::open(path).map_err(io_error)?;
    let metadata = file.metadata().map_err(io_error)?;
    if !metadata.is_file() {
        return Err(format_error("not a regular file"));
    }
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Permissions { mode });
    }
    // Room for one byte past the limit, so an oversized file is seen without reallocating
    // (which would leave a copy of the secret behind).
    let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_KEY_FILE_BYTES + 1));
    let limit = u64::try_from(MAX_KEY_FILE_BYTES + 1).expect("a small constant");
    file.take(limit).read_to_end(&mut bytes).map_err(io_error)?;
    if bytes.len() > MAX_KEY_FILE_BYTES {
        return Err(KeyFileError::TooLarge { max_bytes: MAX_KEY_FILE_BYTES });
    }
    Ok(bytes)
}

/// The header and body of a file of exactly two `\n`-terminated lines.
fn split_lines(text: &str) -> Result<(&str, &str), KeyFileError> {
    let shape = || format_error("expected exactly two lines, each ending in a newline");
    let lines = text.strip_suffix('\n').ok_or_else(shape)?;
    let (header, body) = lines.split_once('\n').ok_or_else(shape)?;
    if body.contains('\n') {
        return Err(shape());
    }
    Ok((header, body))
}

/// Parses the header line: magic, version, then `plain` or the Argon2id parameters and salt.
fn parse_header(header: &str) -> Result<Protection, KeyFileError> {
    let mut words = header.split(' ');
    if words.next() != Some(KEY_FILE_MAGIC) {
        return Err(KeyFileError::Format(format!("the first line must start with \"{KEY_FILE_MAGIC}\"")));
    }
    let version = words
        .next()
        .and_then(|word| word.strip_prefix('v'))
        .and_then(|digits| digits.parse::<u32>().ok())
        .ok_or_else(|| format_error("expected a format version such as \"v1\" after the file type"))?;
    if version != KEY_FILE_VERSION {
        return Err(KeyFileError::UnsupportedVersion { found: version });
    }
    let protection = match words.next() {
        Some("plain") => Protection::Plain,
        Some("argon2id") => parse_argon2id(&mut words)?,
        _ => return Err(format_error("expected \"plain\" or \"argon2id\" after the version")),
    };
    if words.next().is_some() {
        return Err(format_error("unexpected words at the end of the first line"));
    }
    Ok(protection)
}

/// Parses `m=<KiB> t=<passes> p=<lanes> salt=<hex>`, in that order, within the bounds.
fn parse_argon2id<'a>(words: &mut impl Iterator<Item = &'a str>) -> Result<Protection, KeyFileError> {
    let shape = || format_error("expected \"argon2id m=<KiB> t=<passes> p=<lanes> salt=<32 hex digits>\"");
    let mut field = |name: &str| words.next().and_then(|word| word.strip_prefix(name)).ok_or_else(shape);
    let bounded = |text: &str, name: &str, max: u32| {
        let value = text.parse::<u32>().map_err(|_| shape())?;
        if value == 0 || value > max {
            return Err(KeyFileError::Format(format!("Argon2 {name} {value} is outside 1..={max}")));
        }
        Ok(value)
    };
    let memory_kib = bounded(field("m=")?, "memory (KiB)", MAX_ARGON2_MEMORY_KIB)?;
    let passes = bounded(field("t=")?, "passes", MAX_ARGON2_PASSES)?;
    let lanes = bounded(field("p=")?, "lanes", MAX_ARGON2_LANES)?;
    let salt = decode_hex::<SALT_BYTES>(field("salt=")?, "the salt")?;
    Ok(Protection::Argon2id { parameters: Argon2Parameters { memory_kib, passes, lanes }, salt: *salt })
}

/// Exactly `N` bytes as `2 * N` hex digits.
fn decode_hex<const N: usize>(text: &str, what: &str) -> Result<Zeroizing<[u8; N]>, KeyFileError> {
    let mut bytes = Zeroizing::new([0; N]);
    hex::decode_to_slice(text, bytes.as_mut())
        .map_err(|_| KeyFileError::Format(format!("{what} must be {} hex digits", 2 * N)))?;
    Ok(bytes)
}

/// The key-encryption key Argon2id derives from a passphrase.
fn derive_kek(
    passphrase: &[u8],
    salt: &[u8],
    parameters: Argon2Parameters,
) -> Result<DataKey, argon2::Error> {
    let Argon2Parameters { memory_kib, passes, lanes } = parameters;
    let parameters = argon2::Params::new(memory_kib, passes, lanes, Some(DataKey::LEN))?;
    let argon2 = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, parameters);
    let mut kek = DataKey([0; DataKey::LEN]);
    argon2.hash_password_into(passphrase, salt, &mut kek.0)?;
    Ok(kek)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse_strictly() {
        assert!(matches!(parse_header("medledger-vault-key v1 plain"), Ok(Protection::Plain)));
        let sealed = "medledger-vault-key v1 argon2id m=19456 t=2 p=1 salt=000102030405060708090a0b0c0d0e0f";
        let Ok(Protection::Argon2id { parameters, salt }) = parse_header(sealed) else {
            panic!("a well-formed sealed header parses");
        };
        assert_eq!((parameters.memory_kib, parameters.passes, parameters.lanes), (19456, 2, 1));
        assert_eq!(salt[15], 0x0f);
        assert!(matches!(
            parse_header("medledger-vault-key v2 plain"),
            Err(KeyFileError::UnsupportedVersion { found: 2 })
        ));
        for bad in [
            "",
            "medledger-vault-key",
            "medledger-vault-key v1",
            "medledger-vault-key v1 plain extra",
            "medledger-vault-key v1  plain",
            "medledger-vault-key v1 rot13",
            "medledger-vault-key vx plain",
            "medledger-vault-keys v1 plain",
            "medledger-vault-key v1 argon2id m=19456 t=2 p=1",
            "medledger-vault-key v1 argon2id t=2 m=19456 p=1 salt=000102030405060708090a0b0c0d0e0f",
            "medledger-vault-key v1 argon2id m=0 t=2 p=1 salt=000102030405060708090a0b0c0d0e0f",
            "medledger-vault-key v1 argon2id m=262145 t=2 p=1 salt=000102030405060708090a0b0c0d0e0f",
            "medledger-vault-key v1 argon2id m=19456 t=17 p=1 salt=000102030405060708090a0b0c0d0e0f",
            "medledger-vault-key v1 argon2id m=19456 t=2 p=9 salt=000102030405060708090a0b0c0d0e0f",
            "medledger-vault-key v1 argon2id m=19456 t=2 p=1 salt=0001",
            "medledger-vault-key v1 argon2id m=-1 t=2 p=1 salt=000102030405060708090a0b0c0d0e0f",
        ] {
            assert!(matches!(parse_header(bad), Err(KeyFileError::Format(_))), "{bad:?}");
        }
    }

    #[test]
    fn files_are_exactly_two_terminated_lines() {
        assert_eq!(split_lines("a\nb\n").ok(), Some(("a", "b")));
        for bad in ["a\nb", "a\n", "a\nb\n\n", "a\nb\nc\n", "", "\n"] {
            assert!(split_lines(bad).is_err(), "{bad:?}");
        }
    }
}

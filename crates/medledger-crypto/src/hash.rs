//! SHA-256 digests and domain-separated hashing.

use std::fmt;
use std::str::FromStr;

use sha2::Digest as _;

/// A SHA-256 digest. Displayed and serialised as 64 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// Length of a digest in bytes.
    pub const LEN: usize = 32;
    /// The all-zero digest, used as the parent of nothing.
    pub const ZERO: Digest = Digest([0; 32]);

    /// The raw bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex form.
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// SHA-256 of `data`.
#[must_use]
pub fn sha256(data: &[u8]) -> Digest {
    Digest(sha2::Sha256::digest(data).into())
}

/// SHA-256 over a domain-separation tag followed by `parts`.
///
/// Every hashed kind of object has its own tag (e.g. `b"medledger/tx/v1"`), so a digest of one
/// kind can never be passed off as a digest of another. The tag is length-prefixed so that
/// no tag is a prefix-collision of another tag plus data.
#[must_use]
pub fn tagged_hash(tag: &[u8], parts: &[&[u8]]) -> Digest {
    let tag_len = u8::try_from(tag.len()).expect("domain tags are short constants");
    let mut hasher = sha2::Sha256::new();
    hasher.update([tag_len]);
    hasher.update(tag);
    for part in parts {
        hasher.update(part);
    }
    Digest(hasher.finalize().into())
}

/// Incremental SHA-256, for structures that feed a hash in pieces (the state tree).
#[derive(Clone, Default)]
pub struct Sha256Stream(sha2::Sha256);

impl Sha256Stream {
    /// A hasher with nothing fed yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds `data`.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The digest of everything fed.
    #[must_use]
    pub fn finalize(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

/// A string that is not 64 hex characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a SHA-256 digest as 64 hex characters")]
pub struct DigestParseError;

impl FromStr for Digest {
    type Err = DigestParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| DigestParseError)?;
        Ok(Digest(bytes))
    }
}

/// Serialises a type as its `Display` text and deserialises it with its `FromStr`, so JSON
/// shows digests, keys, signatures and ids as the same text a person reads everywhere else.
/// The calling crate needs `serde`.
#[macro_export]
macro_rules! serde_as_text {
    ($($type:ty),+) => {$(
        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    )+};
}

serde_as_text!(Digest);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_known_vector() {
        assert_eq!(
            sha256(b"abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn tags_separate_domains() {
        assert_ne!(tagged_hash(b"a", &[b"bc"]), tagged_hash(b"ab", &[b"c"]));
    }

    #[test]
    fn hex_round_trip_and_rejects_bad_text() {
        let digest = sha256(b"x");
        assert_eq!(digest.to_hex().parse::<Digest>(), Ok(digest));
        assert_eq!("zz".parse::<Digest>(), Err(DigestParseError));
        assert!(digest.to_hex()[..63].parse::<Digest>().is_err());
    }
}

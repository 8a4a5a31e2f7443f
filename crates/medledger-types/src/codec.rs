//! The canonical binary encoding.
//!
//! Rules, which make every encoding unique:
//! - integers are fixed-width big-endian;
//! - booleans are one byte, `0` or `1`;
//! - variable-length byte strings and lists carry a `u32` length prefix and a per-field maximum
//!   that the decoder checks before it allocates;
//! - enums are one tag byte followed by the variant's fields; unknown tags are errors;
//! - a whole value must consume its input exactly: trailing bytes are an error.

use medledger_crypto::{Digest, PublicKey, Signature};

/// Why bytes are not the canonical encoding of a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended before the value did.
    #[error("truncated: {what} needs {needed} more bytes at offset {offset}")]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Bytes missing.
        needed: usize,
        /// Where reading stopped.
        offset: usize,
    },
    /// Bytes remain after a complete value.
    #[error("{count} trailing bytes after a complete {what}")]
    TrailingBytes {
        /// The value decoded.
        what: &'static str,
        /// How many bytes were left.
        count: usize,
    },
    /// A length exceeds the field's maximum.
    #[error("{what} is {length} long, over the limit of {max}")]
    TooLong {
        /// The field.
        what: &'static str,
        /// Its declared length.
        length: usize,
        /// The maximum allowed.
        max: usize,
    },
    /// An enum tag that names no variant.
    #[error("unknown {what} tag {tag}")]
    UnknownTag {
        /// The enum.
        what: &'static str,
        /// The tag byte.
        tag: u8,
    },
    /// A field whose bytes are well-formed but not in canonical form.
    #[error("non-canonical {what}: {reason}")]
    NonCanonical {
        /// The field.
        what: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A field whose bytes are not a valid value of its type.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// The field.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// Appends canonical encodings to a buffer.
#[derive(Debug, Default)]
pub struct Writer {
    buffer: Vec<u8>,
}

impl Writer {
    /// An empty writer with room for `capacity` bytes.
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        Self { buffer: Vec::with_capacity(capacity) }
    }

    /// The bytes written so far.
    #[must_use]
    pub fn into_bytes(self) -> Vec<u8> {
        self.buffer
    }

    /// One byte.
    pub fn u8(&mut self, value: u8) {
        self.buffer.push(value);
    }

    /// Big-endian `u16`.
    pub fn u16(&mut self, value: u16) {
        self.buffer.extend_from_slice(&value.to_be_bytes());
    }

    /// Big-endian `u32`.
    pub fn u32(&mut self, value: u32) {
        self.buffer.extend_from_slice(&value.to_be_bytes());
    }

    /// Big-endian `u64`.
    pub fn u64(&mut self, value: u64) {
        self.buffer.extend_from_slice(&value.to_be_bytes());
    }

    /// `0` or `1`.
    pub fn bool(&mut self, value: bool) {
        self.buffer.push(u8::from(value));
    }

    /// Bytes of a length fixed by the type (digests, keys, signatures).
    pub fn fixed(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// A `u32` length prefix followed by the bytes.
    pub fn bytes(&mut self, bytes: &[u8]) {
        self.length(bytes.len());
        self.buffer.extend_from_slice(bytes);
    }

    /// A `u32` length or count prefix.
    pub fn length(&mut self, length: usize) {
        self.u32(u32::try_from(length).expect("encoded lengths are bounded far below 4 GiB"));
    }

    /// A digest.
    pub fn digest(&mut self, digest: &Digest) {
        self.fixed(digest.as_bytes());
    }

    /// A public key.
    pub fn public_key(&mut self, key: &PublicKey) {
        self.fixed(key.as_bytes());
    }

    /// A signature.
    pub fn signature(&mut self, signature: &Signature) {
        self.fixed(&signature.0);
    }

    /// A count prefix, then each item.
    pub fn list<T>(&mut self, items: &[T], mut write_item: impl FnMut(&mut Self, &T)) {
        self.length(items.len());
        for item in items {
            write_item(self, item);
        }
    }

    /// `0` for none, or `1` then the value.
    pub fn option<T>(&mut self, value: Option<&T>, write_value: impl FnOnce(&mut Self, &T)) {
        match value {
            None => self.u8(0),
            Some(value) => {
                self.u8(1);
                write_value(self, value);
            }
        }
    }
}

/// Reads canonical encodings from a byte slice.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    #[must_use]
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, offset: 0 }
    }

    /// Bytes not yet read.
    #[must_use]
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.offset
    }

    /// Fails unless every byte has been read.
    pub fn finish(self, what: &'static str) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes { what, count }),
        }
    }

    /// The next `length` bytes.
    pub fn take(&mut self, length: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < length {
            return Err(DecodeError::Truncated {
                what,
                needed: length - self.remaining(),
                offset: self.offset,
            });
        }
        let slice = &self.bytes[self.offset..self.offset + length];
        self.offset += length;
        Ok(slice)
    }

    /// The next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let slice = self.take(N, what)?;
        Ok(slice.try_into().expect("take returned exactly N bytes"))
    }

    /// One byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    /// Big-endian `u16`.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    /// Big-endian `u32`.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    /// Big-endian `u64`.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    /// A boolean; any byte but `0` or `1` is non-canonical.
    pub fn bool(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::NonCanonical { what, reason: "boolean byte is not 0 or 1" }),
        }
    }

    /// A `u32` length or count prefix, checked against `max` before anything is allocated.
    pub fn length(&mut self, max: usize, what: &'static str) -> Result<usize, DecodeError> {
        let length = usize::try_from(self.u32(what)?).expect("u32 fits in usize on supported targets");
        if length > max {
            return Err(DecodeError::TooLong { what, length, max });
        }
        Ok(length)
    }

    /// A length-prefixed byte string of at most `max` bytes.
    pub fn bytes(&mut self, max: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let length = self.length(max, what)?;
        self.take(length, what)
    }

    /// A digest.
    pub fn digest(&mut self, what: &'static str) -> Result<Digest, DecodeError> {
        Ok(Digest(self.array(what)?))
    }

    /// A public key, which must be a valid, non-weak Ed25519 point.
    pub fn public_key(&mut self, what: &'static str) -> Result<PublicKey, DecodeError> {
        let bytes = self.array(what)?;
        PublicKey::from_bytes(&bytes)
            .map_err(|error| DecodeError::Invalid { what, reason: error.to_string() })
    }

    /// A signature (checked later, against its message).
    pub fn signature(&mut self, what: &'static str) -> Result<Signature, DecodeError> {
        Ok(Signature(self.array(what)?))
    }

    /// A count prefix of at most `max`, then that many items.
    pub fn list<T>(
        &mut self,
        max: usize,
        what: &'static str,
        mut read_item: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let count = self.length(max, what)?;
        (0..count).map(|_| read_item(self)).collect()
    }

    /// `0` for none, or `1` then the value; any other tag is an error.
    pub fn option<T>(
        &mut self,
        what: &'static str,
        read_value: impl FnOnce(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, DecodeError> {
        match self.u8(what)? {
            0 => Ok(None),
            1 => read_value(self).map(Some),
            tag => Err(DecodeError::UnknownTag { what, tag }),
        }
    }
}

/// A value with a canonical encoding.
pub trait Encode {
    /// Appends the canonical encoding to `writer`.
    fn encode_to(&self, writer: &mut Writer);

    /// The canonical encoding.
    fn encode(&self) -> Vec<u8> {
        let mut writer = Writer::default();
        self.encode_to(&mut writer);
        writer.into_bytes()
    }
}

/// A value that can be read back from its canonical encoding.
pub trait Decode: Sized {
    /// Name used in error messages.
    const NAME: &'static str;
    /// Largest canonical encoding; longer input is rejected before parsing.
    const MAX_ENCODED_BYTES: usize;

    /// Reads one value, leaving the reader after it.
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Reads exactly one value from `bytes`: oversize input and trailing bytes are errors.
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > Self::MAX_ENCODED_BYTES {
            return Err(DecodeError::TooLong {
                what: Self::NAME,
                length: bytes.len(),
                max: Self::MAX_ENCODED_BYTES,
            });
        }
        let mut reader = Reader::new(bytes);
        let value = Self::decode_from(&mut reader)?;
        reader.finish(Self::NAME)?;
        Ok(value)
    }
}

impl Encode for PublicKey {
    fn encode_to(&self, writer: &mut Writer) {
        writer.public_key(self);
    }
}

impl Decode for PublicKey {
    const NAME: &'static str = "public key";
    const MAX_ENCODED_BYTES: usize = PublicKey::LEN;

    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        reader.public_key("public key")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_rejects_truncation_and_bad_booleans() {
        let mut reader = Reader::new(&[0, 1]);
        assert!(matches!(reader.u32("n"), Err(DecodeError::Truncated { needed: 2, .. })));
        let mut reader = Reader::new(&[2]);
        assert!(matches!(reader.bool("flag"), Err(DecodeError::NonCanonical { .. })));
    }

    #[test]
    fn length_is_checked_before_allocation() {
        let mut reader = Reader::new(&[0xff, 0xff, 0xff, 0xff]);
        assert!(matches!(reader.bytes(10, "label"), Err(DecodeError::TooLong { max: 10, .. })));
    }
}

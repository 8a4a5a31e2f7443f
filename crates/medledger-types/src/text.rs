//! Short validated strings that appear on chain.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::codec::{DecodeError, Reader, Writer};
use crate::limits::{MAX_CHAIN_ID_BYTES, MAX_LABEL_BYTES, MAX_NODE_ADDRESS_BYTES, MAX_ORG_ID_BYTES};

/// Why a string is not a valid chain id or label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// Empty or longer than allowed.
    #[error("{what} must be 1 to {max} bytes long, got {length}")]
    Length {
        /// The kind of string.
        what: &'static str,
        /// Its length.
        length: usize,
        /// The maximum.
        max: usize,
    },
    /// Contains a character outside the allowed set.
    #[error("{what} may contain only {allowed}")]
    Character {
        /// The kind of string.
        what: &'static str,
        /// The allowed characters.
        allowed: &'static str,
    },
    /// Has the right characters but not the right shape.
    #[error("{what} must be {expected}")]
    Format {
        /// The kind of string.
        what: &'static str,
        /// The expected shape.
        expected: &'static str,
    },
}

/// A shape check on top of the character set, and what it expects (for the error).
type Shape = (fn(&str) -> bool, &'static str);

fn check(
    text: &str,
    what: &'static str,
    max: usize,
    allowed: &'static str,
    is_allowed: fn(u8) -> bool,
    shape: Option<Shape>,
) -> Result<(), TextError> {
    if text.is_empty() || text.len() > max {
        return Err(TextError::Length { what, length: text.len(), max });
    }
    if !text.bytes().all(is_allowed) {
        return Err(TextError::Character { what, allowed });
    }
    match shape {
        Some((has_shape, expected)) if !has_shape(text) => Err(TextError::Format { what, expected }),
        _ => Ok(()),
    }
}

macro_rules! validated_string {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:expr, $allowed:literal, $is_allowed:expr $(, $shape:expr)?) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps `text`.
            pub fn new(text: impl Into<String>) -> Result<Self, TextError> {
                let text = text.into();
                check(&text, $what, $max, $allowed, $is_allowed, None $(.or(Some($shape)))?)?;
                Ok(Self(text))
            }

            /// The text.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Appends the canonical encoding.

            pub fn encode_to(&self, writer: &mut Writer) {
                writer.bytes(self.0.as_bytes());
            }

            /// Reads the canonical encoding.

            pub fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
                let bytes = reader.bytes($max, $what)?;
                let text = std::str::from_utf8(bytes).map_err(|_| DecodeError::Invalid {
                    what: $what,
                    reason: "not UTF-8".into(),
                })?;
                Self::new(text).map_err(|error| DecodeError::Invalid { what: $what, reason: error.to_string() })
            }
        }

        impl TryFrom<String> for $name {
            type Error = TextError;
            fn try_from(text: String) -> Result<Self, TextError> {
                Self::new(text)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
    };
}

validated_string!(
    /// The name of a chain, e.g. `medledger-dev`. Every transaction names its chain, so a
    /// transaction signed for one network can never be replayed on another.
    ChainId,
    "chain id",
    MAX_CHAIN_ID_BYTES,
    "lowercase ASCII letters, digits, '-', '.' and '_'",
    |byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || matches!(byte, b'-' | b'.' | b'_')
);

validated_string!(
    /// The name under which a digest is anchored, e.g. `lab-report/2026/000123`.
    /// Labels are public: they must never contain personal data.
    Label,
    "label",
    MAX_LABEL_BYTES,
    "visible ASCII characters (no spaces)",
    |byte| byte.is_ascii_graphic()
);

validated_string!(
    /// An organisation's id, e.g. `st-mary-hospital`: public, stable, chosen at admission.
    OrgId,
    "organisation id",
    MAX_ORG_ID_BYTES,
    "lowercase ASCII letters, digits and '-'",
    |byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-',
    (|text: &str| text.len() >= 3 && !text.starts_with('-') && !text.ends_with('-'), "3 or more characters, not starting or ending with '-'")
);

validated_string!(
    /// A node's peer-to-peer address, `host:port` (a DNS name, IPv4, or `[IPv6]`).
    NodeAddress,
    "node address",
    MAX_NODE_ADDRESS_BYTES,
    "visible ASCII characters (no spaces)",
    |byte| byte.is_ascii_graphic(),
    (has_host_and_port, "host:port with a port from 1 to 65535")
);

fn has_host_and_port(text: &str) -> bool {
    text.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty() && port.parse::<u16>().is_ok_and(|port| port != 0) && !port.starts_with('0')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_are_validated() {
        assert!(ChainId::new("medledger-dev").is_ok());
        assert!(matches!(ChainId::new(""), Err(TextError::Length { .. })));
        assert!(matches!(ChainId::new("Main Net"), Err(TextError::Character { .. })));
        assert!(ChainId::new("a".repeat(MAX_CHAIN_ID_BYTES + 1)).is_err());
    }

    #[test]
    fn labels_reject_whitespace_and_control_characters() {
        assert!(Label::new("lab-report/2026/1").is_ok());
        assert!(Label::new("has space").is_err());
        assert!(Label::new("tab\t").is_err());
    }

    #[test]
    fn org_ids_and_node_addresses_have_a_shape() {
        assert!(OrgId::new("st-mary-hospital").is_ok());
        assert!(matches!(OrgId::new("ab"), Err(TextError::Format { .. })));
        assert!(matches!(OrgId::new("-lab"), Err(TextError::Format { .. })));
        assert!(matches!(OrgId::new("St-Mary"), Err(TextError::Character { .. })));
        assert!(NodeAddress::new("node1.st-mary.example:9000").is_ok());
        assert!(NodeAddress::new("[::1]:9000").is_ok());
        for bad in ["node1", "node1:", ":9000", "node1:0", "node1:65536", "node1:09000"] {
            assert!(matches!(NodeAddress::new(bad), Err(TextError::Format { .. })), "{bad}");
        }
    }
}

//! Genesis: the agreed starting point of a chain.

use std::collections::BTreeSet;

use medledger_crypto::{Digest, PublicKey, tagged_hash};
use serde::{Deserialize, Serialize};

use crate::codec::{Decode, DecodeError, Encode, Reader, Writer};
use crate::limits::{MAX_GENESIS_BYTES, MAX_GENESIS_MEMBERS, MAX_VALIDATORS};
use crate::tags;
use crate::text::ChainId;

/// A member key registered at genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisMember {
    /// The member's Ed25519 public key.
    pub public_key: PublicKey,
    /// Whether the member may enrol others.
    pub admin: bool,
}

/// The chain's starting point; every node of a chain holds the same genesis, and block 1
/// names its hash as parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// The chain id every transaction must name.
    pub chain_id: ChainId,
    /// When the chain starts, in milliseconds since the Unix epoch; blocks are never earlier.
    pub genesis_time_ms: u64,
    /// Node keys allowed to propose blocks.
    pub validators: Vec<PublicKey>,
    /// Member keys registered from the start.
    pub members: Vec<GenesisMember>,
}

/// Why a genesis is unusable.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    /// Not valid genesis JSON.
    #[error("genesis is not valid JSON for this format: {0}")]
    Json(String),
    /// Not a canonical genesis encoding.
    #[error("genesis bytes: {0}")]
    Decode(#[from] DecodeError),
    /// Violates a rule of the format.
    #[error("invalid genesis: {0}")]
    Invalid(String),
}

impl Genesis {
    /// The genesis hash, the parent of block 1.
    #[must_use]
    pub fn hash(&self) -> Digest {
        tagged_hash(tags::GENESIS, &[&self.encode()])
    }

    /// Checks the rules a genesis must satisfy.
    pub fn validate(&self) -> Result<(), GenesisError> {
        let invalid = |message: String| Err(GenesisError::Invalid(message));
        if self.validators.is_empty() || self.validators.len() > MAX_VALIDATORS {
            return invalid(format!("needs 1 to {MAX_VALIDATORS} validators, has {}", self.validators.len()));
        }
        if self.validators.iter().collect::<BTreeSet<_>>().len() != self.validators.len() {
            return invalid("a validator key is listed twice".into());
        }
        if self.members.len() > MAX_GENESIS_MEMBERS {
            return invalid(format!("at most {MAX_GENESIS_MEMBERS} members, has {}", self.members.len()));
        }
        if self.members.iter().map(|member| member.public_key).collect::<BTreeSet<_>>().len()
            != self.members.len()
        {
            return invalid("a member key is listed twice".into());
        }
        if !self.members.iter().any(|member| member.admin) {
            return invalid("at least one member must be an admin".into());
        }
        Ok(())
    }

    /// Parses and validates genesis JSON.
    pub fn from_json(text: &str) -> Result<Self, GenesisError> {
        let genesis: Genesis =
            serde_json::from_str(text).map_err(|error| GenesisError::Json(error.to_string()))?;
        genesis.validate()?;
        Ok(genesis)
    }

    /// Pretty JSON, as written by `medledger init`.
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("genesis always serialises")
    }

    /// Parses and validates the canonical encoding.
    pub fn from_canonical(bytes: &[u8]) -> Result<Self, GenesisError> {
        let genesis = Self::decode(bytes)?;
        genesis.validate()?;
        Ok(genesis)
    }
}

impl Encode for Genesis {
    fn encode_to(&self, writer: &mut Writer) {
        self.chain_id.encode_to(writer);
        writer.u64(self.genesis_time_ms);
        writer.length(self.validators.len());
        for validator in &self.validators {
            writer.public_key(validator);
        }
        writer.length(self.members.len());
        for member in &self.members {
            writer.public_key(&member.public_key);
            writer.bool(member.admin);
        }
    }
}

impl Decode for Genesis {
    const NAME: &'static str = "genesis";
    const MAX_ENCODED_BYTES: usize = MAX_GENESIS_BYTES;

    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let chain_id = ChainId::decode_from(reader)?;
        let genesis_time_ms = reader.u64("genesis time")?;
        let validator_count = reader.length(MAX_VALIDATORS, "validator list")?;
        let validators =
            (0..validator_count).map(|_| reader.public_key("validator")).collect::<Result<_, _>>()?;
        let member_count = reader.length(MAX_GENESIS_MEMBERS, "member list")?;
        let members = (0..member_count)
            .map(|_| {
                Ok(GenesisMember {
                    public_key: reader.public_key("member public key")?,
                    admin: reader.bool("admin flag")?,
                })
            })
            .collect::<Result<_, DecodeError>>()?;
        Ok(Self { chain_id, genesis_time_ms, validators, members })
    }
}

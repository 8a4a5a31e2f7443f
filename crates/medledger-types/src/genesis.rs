//! Genesis: the agreed starting point of a chain.

use std::collections::BTreeSet;

use medledger_crypto::{Digest, PublicKey, tagged_hash};
use serde::{Deserialize, Serialize};

use crate::codec::{Decode, DecodeError, Encode, Reader, Writer};
use crate::identity::{NodeIdentity, OrgKind, Parameters, PatientId, Role};
use crate::limits::{MAX_GENESIS_BYTES, MAX_GENESIS_MEMBERS, MAX_ORGANIZATIONS, MAX_VALIDATORS};
use crate::tags;
use crate::text::{ChainId, NodeAddress, OrgId};

/// A member key registered at genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisMember {
    /// The member's Ed25519 public key.
    pub public_key: PublicKey,
    /// The member's role in its organisation.
    pub role: Role,
    /// The patient's pseudonymous id: required for patients, absent for everyone else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient_id: Option<PatientId>,
}

/// A founding organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisOrganization {
    /// The organisation's id.
    pub id: OrgId,
    /// What it is.
    pub kind: OrgKind,
    /// Its node, if it runs one; the nodes of the founding organisations are the first
    /// validators.
    #[serde(default)]
    pub node: Option<NodeIdentity>,
    /// Its members, at least one of them an administrator.
    pub members: Vec<GenesisMember>,
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
    /// The chain parameters at the start.
    pub parameters: Parameters,
    /// The founding organisations.
    pub organizations: Vec<GenesisOrganization>,
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

    /// A one-organisation chain: a hospital running one node, with one administrator and the
    /// given physicians (who may anchor documents). Benchmarks and tests use it.
    #[must_use]
    pub fn single_hospital(
        chain_id: ChainId,
        genesis_time_ms: u64,
        node_key: PublicKey,
        administrator: PublicKey,
        physicians: impl IntoIterator<Item = PublicKey>,
    ) -> Self {
        let member = |public_key, role| GenesisMember { public_key, role, patient_id: None };
        let members = std::iter::once(member(administrator, Role::Administrator))
            .chain(physicians.into_iter().map(|key| member(key, Role::Physician)))
            .collect();
        Self {
            chain_id,
            genesis_time_ms,
            parameters: Parameters::default(),
            organizations: vec![GenesisOrganization {
                id: OrgId::new("single-hospital").expect("a valid organisation id"),
                kind: OrgKind::Hospital,
                node: Some(NodeIdentity {
                    public_key: node_key,
                    address: NodeAddress::new("127.0.0.1:9080").expect("a valid node address"),
                }),
                members,
            }],
        }
    }

    /// The first validators: the node keys of the founding organisations, in genesis order.
    #[must_use]
    pub fn validators(&self) -> Vec<PublicKey> {
        self.organizations.iter().filter_map(|org| org.node.as_ref()).map(|node| node.public_key).collect()
    }

    /// Every member of every founding organisation, with its organisation.
    pub fn members(&self) -> impl Iterator<Item = (&GenesisOrganization, &GenesisMember)> {
        self.organizations.iter().flat_map(|org| org.members.iter().map(move |member| (org, member)))
    }

    /// Checks the rules a genesis must satisfy.
    pub fn validate(&self) -> Result<(), GenesisError> {
        let invalid = |message: String| Err(GenesisError::Invalid(message));
        self.parameters.validate().map_err(|error| GenesisError::Invalid(error.to_string()))?;
        if self.organizations.is_empty() || self.organizations.len() > MAX_ORGANIZATIONS {
            return invalid(format!(
                "needs 1 to {MAX_ORGANIZATIONS} organisations, has {}",
                self.organizations.len()
            ));
        }
        if !all_distinct(self.organizations.iter().map(|org| &org.id)) {
            return invalid("an organisation id is listed twice".into());
        }
        let validators = self.validators();
        if validators.is_empty() || validators.len() > MAX_VALIDATORS {
            return invalid(format!(
                "needs 1 to {MAX_VALIDATORS} organisations with a node, has {}",
                validators.len()
            ));
        }
        if !all_distinct(validators.iter()) {
            return invalid("a node key is listed twice".into());
        }
        let member_count = self.members().count();
        if member_count > MAX_GENESIS_MEMBERS {
            return invalid(format!("at most {MAX_GENESIS_MEMBERS} members, has {member_count}"));
        }
        if !all_distinct(
            self.members().map(|(_, member)| member.public_key).chain(validators.iter().copied()),
        ) {
            return invalid("a member key is listed twice, or is also a node key".into());
        }
        if !all_distinct(self.members().filter_map(|(_, member)| member.patient_id)) {
            return invalid("a patient id is listed twice".into());
        }
        for org in &self.organizations {
            if !org.members.iter().any(|member| member.role == Role::Administrator) {
                return invalid(format!("organisation {} has no administrator", org.id));
            }
            if let Some(member) = org.members.iter().find(|member| !org.kind.admits_role(member.role)) {
                return invalid(format!(
                    "a {} cannot be a member of a {} ({})",
                    member.role, org.kind, org.id
                ));
            }
            if org.members.iter().any(|member| (member.role == Role::Patient) != member.patient_id.is_some())
            {
                return invalid(format!(
                    "in {}, patients need a patient id and only patients have one",
                    org.id
                ));
            }
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

impl Encode for GenesisMember {
    fn encode_to(&self, writer: &mut Writer) {
        writer.public_key(&self.public_key);
        self.role.encode_to(writer);
        writer.option(self.patient_id.as_ref(), |writer, id| id.encode_to(writer));
    }
}

impl GenesisMember {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            public_key: reader.public_key("member public key")?,
            role: Role::decode_from(reader)?,
            patient_id: reader.option("patient id", PatientId::decode_from)?,
        })
    }
}

impl Encode for Genesis {
    fn encode_to(&self, writer: &mut Writer) {
        self.chain_id.encode_to(writer);
        writer.u64(self.genesis_time_ms);
        self.parameters.encode_to(writer);
        writer.list(&self.organizations, |writer, org| {
            org.id.encode_to(writer);
            org.kind.encode_to(writer);
            writer.option(org.node.as_ref(), |writer, node| node.encode_to(writer));
            writer.list(&org.members, |writer, member| member.encode_to(writer));
        });
    }
}

impl Decode for Genesis {
    const NAME: &'static str = "genesis";
    const MAX_ENCODED_BYTES: usize = MAX_GENESIS_BYTES;

    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            chain_id: ChainId::decode_from(reader)?,
            genesis_time_ms: reader.u64("genesis time")?,
            parameters: Parameters::decode_from(reader)?,
            organizations: reader.list(MAX_ORGANIZATIONS, "organisation list", |reader| {
                Ok(GenesisOrganization {
                    id: OrgId::decode_from(reader)?,
                    kind: OrgKind::decode_from(reader)?,
                    node: reader.option("node", NodeIdentity::decode_from)?,
                    members: reader.list(MAX_GENESIS_MEMBERS, "member list", GenesisMember::decode_from)?,
                })
            })?,
        })
    }
}

fn all_distinct<T: Ord>(items: impl Iterator<Item = T>) -> bool {
    let mut seen = BTreeSet::new();
    items.into_iter().all(|item| seen.insert(item))
}

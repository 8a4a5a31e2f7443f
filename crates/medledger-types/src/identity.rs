//! Who is who on a MedLedger chain: organisations, their kinds and nodes, member roles,
//! pseudonymous patient ids, chain parameters and governance actions.

use std::fmt;
use std::str::FromStr;

use medledger_crypto::PublicKey;
use serde::{Deserialize, Serialize};

use crate::codec::{DecodeError, Reader, Writer};
use crate::limits::{
    MAX_ORG_ADMINS, MAX_PROPOSAL_TTL_MS, MAX_VALIDATOR_CHANGE_DELAY_BLOCKS, MIN_PROPOSAL_TTL_MS,
};
use crate::text::{NodeAddress, OrgId};

/// A fieldless enum with a stable tag byte and a stable kebab-case name, used on chain, in
/// JSON and on the command line alike.
macro_rules! named_enum {
    ($(#[$doc:meta])* $name:ident, $what:literal { $($(#[$variant_doc:meta])* $variant:ident = $tag:literal, $text:literal;)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $($(#[$variant_doc])* $variant,)+
        }

        impl $name {
            /// Every variant, in tag order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable name, as in JSON and on the command line.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }

            /// The stable tag byte of the canonical encoding (also used in state keys).
            #[must_use]
            pub fn tag_byte(self) -> u8 {
                match self { $($name::$variant => $tag,)+ }
            }

            /// Appends the canonical encoding.
            pub fn encode_to(self, writer: &mut Writer) {
                writer.u8(self.tag_byte());
            }

            /// Reads the canonical encoding.
            pub fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
                match reader.u8($what)? {
                    $($tag => Ok($name::$variant),)+
                    tag => Err(DecodeError::UnknownTag { what: $what, tag }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = $crate::identity::UnknownName;
            fn from_str(text: &str) -> Result<Self, $crate::identity::UnknownName> {
                $name::ALL.iter().copied().find(|value| value.as_str() == text).ok_or_else(|| $crate::identity::UnknownName {
                    what: $what,
                    allowed: $name::ALL.iter().map(|value| value.as_str()).collect::<Vec<_>>().join(", "),
                })
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use named_enum;

/// A name that is not one of an enum's names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what}; expected one of: {allowed}")]
pub struct UnknownName {
    /// The enum.
    pub what: &'static str,
    /// Its names, comma-separated.
    pub allowed: String,
}

named_enum!(
    /// What an organisation of the consortium is; with a member's [`Role`] it decides what the
    /// member may do.
    OrgKind, "organisation kind" {
        /// Inpatient and outpatient care.
        Hospital = 1, "hospital";
        /// Outpatient care.
        Clinic = 2, "clinic";
        /// A diagnostic laboratory.
        Laboratory = 3, "laboratory";
        /// A dispensing pharmacy.
        Pharmacy = 4, "pharmacy";
        /// A medicine manufacturer (commissions product serials).
        Manufacturer = 5, "manufacturer";
        /// A wholesale distributor.
        Distributor = 6, "distributor";
        /// A health or medicines regulator.
        Regulator = 7, "regulator";
        /// Holds patients' memberships and keys on their behalf.
        PatientService = 8, "patient-service";
    }
);

named_enum!(
    /// What a member does within its organisation.
    Role, "role" {
        /// Manages the organisation's members and votes in governance.
        Administrator = 1, "administrator";
        /// A physician.
        Physician = 2, "physician";
        /// A nurse.
        Nurse = 3, "nurse";
        /// A pharmacist.
        Pharmacist = 4, "pharmacist";
        /// A laboratory technician.
        LaboratoryTechnician = 5, "laboratory-technician";
        /// Reads audit trails.
        Auditor = 6, "auditor";
        /// A regulator's inspector.
        RegulatorInspector = 7, "regulator-inspector";
        /// A patient, known on chain only by a pseudonymous [`PatientId`].
        Patient = 8, "patient";
        /// An organisation's node: it anchors the records its vault holds. Node accounts come
        /// from genesis and admission, never from enrolment.
        Node = 9, "node";
    }
);

impl OrgKind {
    /// Whether a member with `role` can exist in an organisation of this kind.
    #[must_use]
    pub fn admits_role(self, role: Role) -> bool {
        use OrgKind::{
            Clinic, Distributor, Hospital, Laboratory, Manufacturer, PatientService, Pharmacy, Regulator,
        };
        match role {
            Role::Administrator | Role::Auditor => true,
            Role::Physician | Role::Nurse => matches!(self, Hospital | Clinic),
            Role::Pharmacist => matches!(self, Pharmacy | Hospital | Manufacturer | Distributor),
            Role::LaboratoryTechnician => matches!(self, Laboratory | Hospital),
            Role::RegulatorInspector => self == Regulator,
            Role::Patient => self == PatientService,
            // A node is not a member an administrator enrols: its account comes with the
            // organisation's node identity.
            Role::Node => false,
        }
    }
}

/// A patient's pseudonymous id: 128 random bits chosen by the patient-service organisation
/// when it enrols the patient. It is never derived from a name, record number or any other
/// personal data, so it reveals nothing and cannot be recomputed from such data.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PatientId(pub [u8; 16]);

/// Why text is not a patient id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a patient id is \"pt-\" followed by 32 lowercase hex digits")]
pub struct PatientIdParseError;

impl PatientId {
    const PREFIX: &'static str = "pt-";

    /// Appends the canonical encoding.
    pub fn encode_to(self, writer: &mut Writer) {
        writer.fixed(&self.0);
    }

    /// Reads the canonical encoding.
    pub fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        reader.array("patient id").map(Self)
    }
}

impl fmt::Display for PatientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", Self::PREFIX, hex::encode(self.0))
    }
}

impl fmt::Debug for PatientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PatientId({self})")
    }
}

impl FromStr for PatientId {
    type Err = PatientIdParseError;
    fn from_str(text: &str) -> Result<Self, PatientIdParseError> {
        let digits = text.strip_prefix(Self::PREFIX).ok_or(PatientIdParseError)?;
        if digits.len() != 32 || digits.bytes().any(|byte| byte.is_ascii_uppercase()) {
            return Err(PatientIdParseError);
        }
        let mut bytes = [0; 16];
        hex::decode_to_slice(digits, &mut bytes).map_err(|_| PatientIdParseError)?;
        Ok(Self(bytes))
    }
}

medledger_crypto::serde_as_text!(PatientId);

/// The node an organisation runs: the key it signs blocks and votes with, and where its peers
/// reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeIdentity {
    /// The node's Ed25519 public key (a validator key while the organisation is active).
    pub public_key: PublicKey,
    /// `host:port` of the node's peer-to-peer endpoint.
    pub address: NodeAddress,
}

impl NodeIdentity {
    /// Appends the canonical encoding.
    pub fn encode_to(&self, writer: &mut Writer) {
        writer.public_key(&self.public_key);
        self.address.encode_to(writer);
    }

    /// Reads the canonical encoding.
    pub fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self { public_key: reader.public_key("node key")?, address: NodeAddress::decode_from(reader)? })
    }
}

/// Chain parameters that governance may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parameters {
    /// How long a governance proposal stays open for votes and execution, in milliseconds of
    /// block time.
    pub proposal_ttl_ms: u64,
    /// How many blocks after the change is executed a new validator set takes effect, so every
    /// node learns of it before it must use it.
    pub validator_change_delay_blocks: u64,
}

impl Default for Parameters {
    fn default() -> Self {
        Self { proposal_ttl_ms: 7 * 24 * 60 * 60 * 1000, validator_change_delay_blocks: 10 }
    }
}

/// Why parameters are out of bounds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParametersError {
    /// The proposal lifetime is too short or too long.
    #[error("proposal_ttl_ms must be {MIN_PROPOSAL_TTL_MS} to {MAX_PROPOSAL_TTL_MS}, got {0}")]
    ProposalTtl(u64),
    /// The validator change delay is zero or too long.
    #[error("validator_change_delay_blocks must be 1 to {MAX_VALIDATOR_CHANGE_DELAY_BLOCKS}, got {0}")]
    ValidatorChangeDelay(u64),
}

impl Parameters {
    /// Checks the bounds.
    pub fn validate(&self) -> Result<(), ParametersError> {
        if !(MIN_PROPOSAL_TTL_MS..=MAX_PROPOSAL_TTL_MS).contains(&self.proposal_ttl_ms) {
            return Err(ParametersError::ProposalTtl(self.proposal_ttl_ms));
        }
        if !(1..=MAX_VALIDATOR_CHANGE_DELAY_BLOCKS).contains(&self.validator_change_delay_blocks) {
            return Err(ParametersError::ValidatorChangeDelay(self.validator_change_delay_blocks));
        }
        Ok(())
    }

    /// Appends the canonical encoding.
    pub fn encode_to(self, writer: &mut Writer) {
        writer.u64(self.proposal_ttl_ms);
        writer.u64(self.validator_change_delay_blocks);
    }

    /// Reads the canonical encoding.
    pub fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            proposal_ttl_ms: reader.u64("proposal ttl")?,
            validator_change_delay_blocks: reader.u64("validator change delay")?,
        })
    }
}

/// An organisation to admit: its id, kind, node if it runs one, and first administrators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgSpec {
    /// The organisation's id, e.g. `st-mary-hospital`.
    pub id: OrgId,
    /// What it is.
    pub kind: OrgKind,
    /// Its node, if it runs one (organisations without a node use another member's node).
    #[serde(default)]
    pub node: Option<NodeIdentity>,
    /// Its first administrators' keys (at least one).
    pub administrators: Vec<PublicKey>,
}

impl OrgSpec {
    /// Appends the canonical encoding.
    pub fn encode_to(&self, writer: &mut Writer) {
        self.id.encode_to(writer);
        self.kind.encode_to(writer);
        writer.option(self.node.as_ref(), |writer, node| node.encode_to(writer));
        writer.list(&self.administrators, Writer::public_key);
    }

    /// Reads the canonical encoding.
    pub fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            id: OrgId::decode_from(reader)?,
            kind: OrgKind::decode_from(reader)?,
            node: reader.option("node", NodeIdentity::decode_from)?,
            administrators: reader
                .list(MAX_ORG_ADMINS, "administrators", |reader| reader.public_key("administrator"))?,
        })
    }
}

/// What a governance proposal does once executed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum GovernanceAction {
    /// Admit a new organisation.
    AdmitOrganization {
        /// The organisation (boxed: public keys make it the largest action by far).
        organization: Box<OrgSpec>,
    },
    /// Suspend an active organisation: its members' transactions are refused and its node
    /// leaves the validator set.
    SuspendOrganization {
        /// The organisation.
        organization: OrgId,
    },
    /// Reinstate a suspended organisation.
    ReinstateOrganization {
        /// The organisation.
        organization: OrgId,
    },
    /// Replace the chain parameters.
    ChangeParameters {
        /// The new parameters.
        parameters: Parameters,
    },
}

impl GovernanceAction {
    const ADMIT: u8 = 1;
    const SUSPEND: u8 = 2;
    const REINSTATE: u8 = 3;
    const PARAMETERS: u8 = 4;

    /// Appends the canonical encoding.
    pub fn encode_to(&self, writer: &mut Writer) {
        match self {
            GovernanceAction::AdmitOrganization { organization } => {
                writer.u8(Self::ADMIT);
                organization.encode_to(writer);
            }
            GovernanceAction::SuspendOrganization { organization } => {
                writer.u8(Self::SUSPEND);
                organization.encode_to(writer);
            }
            GovernanceAction::ReinstateOrganization { organization } => {
                writer.u8(Self::REINSTATE);
                organization.encode_to(writer);
            }
            GovernanceAction::ChangeParameters { parameters } => {
                writer.u8(Self::PARAMETERS);
                parameters.encode_to(writer);
            }
        }
    }

    /// Reads the canonical encoding.
    pub fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match reader.u8("governance action tag")? {
            Self::ADMIT => {
                GovernanceAction::AdmitOrganization { organization: Box::new(OrgSpec::decode_from(reader)?) }
            }
            Self::SUSPEND => {
                GovernanceAction::SuspendOrganization { organization: OrgId::decode_from(reader)? }
            }
            Self::REINSTATE => {
                GovernanceAction::ReinstateOrganization { organization: OrgId::decode_from(reader)? }
            }
            Self::PARAMETERS => {
                GovernanceAction::ChangeParameters { parameters: Parameters::decode_from(reader)? }
            }
            tag => return Err(DecodeError::UnknownTag { what: "governance action", tag }),
        })
    }
}

impl crate::codec::Encode for Parameters {
    fn encode_to(&self, writer: &mut Writer) {
        Parameters::encode_to(*self, writer);
    }
}

impl crate::codec::Decode for Parameters {
    const NAME: &'static str = "parameters";
    const MAX_ENCODED_BYTES: usize = 16;

    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Parameters::decode_from(reader)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_list_the_allowed_ones() {
        for kind in OrgKind::ALL {
            assert_eq!(kind.as_str().parse::<OrgKind>(), Ok(*kind));
        }
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(*role));
        }
        let error = "surgeon".parse::<Role>().expect_err("not a role");
        assert!(error.to_string().contains("laboratory-technician"), "{error}");
    }

    #[test]
    fn patient_ids_parse_only_their_canonical_text() {
        let id = PatientId([0xab; 16]);
        assert_eq!(id.to_string().parse::<PatientId>(), Ok(id));
        assert!("pt-ABABABABABABABABABABABABABABABAB".parse::<PatientId>().is_err());
        assert!("abababababababababababababababab".parse::<PatientId>().is_err());
        assert!("pt-abab".parse::<PatientId>().is_err());
    }

    #[test]
    fn parameter_bounds_are_enforced() {
        assert_eq!(Parameters::default().validate(), Ok(()));
        let short = Parameters { proposal_ttl_ms: MIN_PROPOSAL_TTL_MS - 1, ..Parameters::default() };
        assert!(matches!(short.validate(), Err(ParametersError::ProposalTtl(_))));
        let no_delay = Parameters { validator_change_delay_blocks: 0, ..Parameters::default() };
        assert!(matches!(no_delay.validate(), Err(ParametersError::ValidatorChangeDelay(0))));
    }
}

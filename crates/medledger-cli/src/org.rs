//! `medledger org`: the organisation registry and consortium governance.

use clap::{Args, Subcommand};
use medledger_crypto::PublicKey;
use medledger_store::ReadOnlyStore;
use medledger_types::{
    GovernanceAction, NodeAddress, NodeIdentity, OrgId, OrgKind, OrgSpec, Parameters, Payload, TxId,
};
use serde_json::{Value, json};

use crate::client::Client;
use crate::tx::{SignerArgs, print_json, sign_and_submit};
use crate::{Cli, CliError, Target};

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// List the organisations, the validator schedule and the chain parameters.
    List,
    /// Propose a governance action (administrators only); your organisation's vote is counted.
    Propose {
        #[command(flatten)]
        signer: SignerArgs,
        #[command(subcommand)]
        action: ActionArgs,
    },
    /// Vote on an open proposal for your organisation (administrators only).
    Vote {
        /// The proposal id (the id of the transaction that proposed it).
        proposal: TxId,
        /// Vote in favour.
        #[arg(long, conflicts_with = "reject", required_unless_present = "reject")]
        approve: bool,
        /// Vote against.
        #[arg(long)]
        reject: bool,
        #[command(flatten)]
        signer: SignerArgs,
    },
    /// Execute a proposal that more than two thirds of the active organisations approve.
    Execute {
        /// The proposal id.
        proposal: TxId,
        #[command(flatten)]
        signer: SignerArgs,
    },
    /// Show a proposal, its votes and its tally.
    Proposal {
        /// The proposal id.
        proposal: TxId,
    },
}

#[derive(Debug, Subcommand)]
pub enum ActionArgs {
    /// Admit a new organisation.
    Admit(Box<AdmitArgs>),
    /// Suspend an active organisation.
    Suspend {
        /// The organisation id.
        #[arg(long)]
        org: String,
    },
    /// Reinstate a suspended organisation.
    Reinstate {
        /// The organisation id.
        #[arg(long)]
        org: String,
    },
    /// Replace the chain parameters.
    Parameters {
        /// How long proposals stay open, in milliseconds.
        #[arg(long)]
        proposal_ttl_ms: u64,
        /// Blocks between a validator change and its effect.
        #[arg(long)]
        validator_change_delay_blocks: u64,
    },
}

/// The organisation a proposal would admit.
#[derive(Debug, Args)]
pub struct AdmitArgs {
    /// Its id, e.g. `harbor-clinic`.
    #[arg(long)]
    id: String,
    /// Its kind.
    #[arg(long)]
    kind: OrgKind,
    /// Its first administrator's public key (repeat for several).
    #[arg(long = "admin", value_name = "PUBLIC_KEY", required = true)]
    administrators: Vec<PublicKey>,
    /// Its node's public key, if it runs a node.
    #[arg(long, requires = "node_address")]
    node_key: Option<PublicKey>,
    /// Its node's peer-to-peer address (`host:port`).
    #[arg(long, requires = "node_key")]
    node_address: Option<String>,
}

pub fn run(cli: &Cli, command: &OrgCommand) -> Result<(), CliError> {
    match command {
        OrgCommand::List => print_json(&list(cli)?),
        OrgCommand::Propose { signer, action } => {
            let action = build_action(action)?;
            let client = Client::new(&cli.write_node_url()?);
            sign_and_submit(&client, signer, Payload::Propose { action })?;
        }
        OrgCommand::Vote { proposal, approve, reject: _, signer } => {
            let client = Client::new(&cli.write_node_url()?);
            sign_and_submit(&client, signer, Payload::Vote { proposal: *proposal, approve: *approve })?;
        }
        OrgCommand::Execute { proposal, signer } => {
            let client = Client::new(&cli.write_node_url()?);
            sign_and_submit(&client, signer, Payload::ExecuteProposal { proposal: *proposal })?;
        }
        OrgCommand::Proposal { proposal } => print_json(&show_proposal(cli, proposal)?),
    }
    Ok(())
}

fn list(cli: &Cli) -> Result<Value, CliError> {
    match cli.target()? {
        Target::Node(url) => Client::new(&url).get_json("/v1/orgs"),
        Target::DataDir(dir) => {
            let chain = ReadOnlyStore::open_read_only(&dir)?.load_chain()?;
            Ok(json!({
                "organizations": chain.registry().organizations,
                "validators": chain.validator_schedule(),
                "parameters": chain.parameters(),
            }))
        }
    }
}

fn show_proposal(cli: &Cli, id: &TxId) -> Result<Value, CliError> {
    match cli.target()? {
        Target::Node(url) => Client::new(&url).get_json(&format!("/v1/proposals/{id}")),
        Target::DataDir(dir) => {
            let chain = ReadOnlyStore::open_read_only(&dir)?.load_chain()?;
            let proposal = chain.proposal(id).ok_or_else(|| CliError::Usage(format!("no proposal {id}")))?;
            Ok(json!({ "id": id, "proposal": proposal }))
        }
    }
}

fn build_action(args: &ActionArgs) -> Result<GovernanceAction, CliError> {
    let org_id = |text: &str| OrgId::new(text).map_err(|error| CliError::Usage(error.to_string()));
    Ok(match args {
        ActionArgs::Admit(admit) => {
            let AdmitArgs { id, kind, administrators, node_key, node_address } = admit.as_ref();
            let node = match (node_key, node_address) {
                (Some(public_key), Some(address)) => Some(NodeIdentity {
                    public_key: *public_key,
                    address: NodeAddress::new(address.clone())
                        .map_err(|error| CliError::Usage(error.to_string()))?,
                }),
                _ => None,
            };
            GovernanceAction::AdmitOrganization {
                organization: Box::new(OrgSpec {
                    id: org_id(id)?,
                    kind: *kind,
                    node,
                    administrators: administrators.clone(),
                }),
            }
        }
        ActionArgs::Suspend { org } => GovernanceAction::SuspendOrganization { organization: org_id(org)? },
        ActionArgs::Reinstate { org } => {
            GovernanceAction::ReinstateOrganization { organization: org_id(org)? }
        }
        ActionArgs::Parameters { proposal_ttl_ms, validator_change_delay_blocks } => {
            let parameters = Parameters {
                proposal_ttl_ms: *proposal_ttl_ms,
                validator_change_delay_blocks: *validator_change_delay_blocks,
            };
            parameters.validate().map_err(|error| CliError::Usage(error.to_string()))?;
            GovernanceAction::ChangeParameters { parameters }
        }
    })
}

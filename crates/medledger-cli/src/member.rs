//! `medledger member`: enrol, rotate, revoke and list member keys.

use std::path::PathBuf;

use clap::Subcommand;
use medledger_crypto::{PublicKey, SigningKey};
use medledger_store::ReadOnlyStore;
use medledger_types::{OrgId, PatientId, Payload, Role};
use serde_json::{Value, json};

use crate::client::Client;
use crate::tx::{SignerArgs, print_json, sign_and_submit};
use crate::{Cli, CliError, Target};

#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// Enrol a member key in your organisation (administrators only).
    Add {
        /// The new member's public key (see `medledger keys gen`).
        #[arg(long)]
        public_key: PublicKey,
        /// The new member's role.
        #[arg(long)]
        role: Role,
        /// The patient's pseudonymous id (`pt-` + 32 hex digits); patients only. Omit it for
        /// a patient to have a fresh random one chosen.
        #[arg(long)]
        patient_id: Option<PatientId>,
        /// A display name for this node's directory (never written on chain).
        #[arg(long)]
        display_name: Option<String>,
        #[command(flatten)]
        signer: SignerArgs,
    },
    /// Replace a member key (your own, or, as administrator, one of your organisation's).
    Rotate {
        /// The key being replaced.
        #[arg(long)]
        old: PublicKey,
        /// The replacement key.
        #[arg(long)]
        new: PublicKey,
        #[command(flatten)]
        signer: SignerArgs,
    },
    /// Revoke a member key of your organisation (administrators only).
    Revoke {
        /// The key to revoke.
        #[arg(long)]
        public_key: PublicKey,
        #[command(flatten)]
        signer: SignerArgs,
    },
    /// List member keys, with display names from the node's directory.
    List {
        /// Only members of this organisation.
        #[arg(long)]
        org: Option<String>,
        /// Your key file: the node's member directory is for members only (not needed with
        /// --data-dir, which reads the store offline).
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
    },
}

pub fn run(cli: &Cli, command: &MemberCommand) -> Result<(), CliError> {
    match command {
        MemberCommand::Add { public_key, role, patient_id, display_name, signer } => {
            if *role == Role::Patient && display_name.is_some() {
                return Err(CliError::Usage(
                    "patients are pseudonymous: the directory holds no display names for them".into(),
                ));
            }
            let patient_id = match (role, patient_id) {
                (Role::Patient, None) => Some(random_patient_id()?),
                (_, patient_id) => *patient_id,
            };
            let client = Client::new(&cli.write_node_url()?);
            let payload = Payload::EnrolMember { public_key: *public_key, role: *role, patient_id };
            sign_and_submit(&client, signer, payload)?;
            if let Some(name) = display_name {
                let key = SigningKey::load(&signer.key)?;
                let body = json!({ "display_name": name });
                client.signed(&key).put_json(&format!("/v1/members/{public_key}/display-name"), &body)?;
            }
        }
        MemberCommand::Rotate { old, new, signer } => {
            let client = Client::new(&cli.write_node_url()?);
            sign_and_submit(&client, signer, Payload::RotateKey { old_key: *old, new_key: *new })?;
        }
        MemberCommand::Revoke { public_key, signer } => {
            let client = Client::new(&cli.write_node_url()?);
            sign_and_submit(&client, signer, Payload::RevokeMember { public_key: *public_key })?;
        }
        MemberCommand::List { org, key } => print_json(&list(cli, org.as_deref(), key.as_ref())?),
    }
    Ok(())
}

fn list(cli: &Cli, org: Option<&str>, key: Option<&PathBuf>) -> Result<Value, CliError> {
    let org = org.map(OrgId::new).transpose().map_err(|error| CliError::Usage(error.to_string()))?;
    match cli.target()? {
        Target::Node(url) => {
            let key =
                key.ok_or_else(|| CliError::Usage("member list from a node needs --key FILE".into()))?;
            let key = SigningKey::load(key)?;
            let client = Client::new(&url);
            let signed = client.signed(&key);
            let mut members = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let mut path = String::from("/v1/members?limit=1000");
                if let Some(org) = &org {
                    path.push_str(&format!("&organization={org}"));
                }
                if let Some(after) = &after {
                    path.push_str(&format!("&after={after}"));
                }
                let page: Value = signed.get_json(&path)?;
                members.extend(page["members"].as_array().cloned().unwrap_or_default());
                match page["next_after"].as_str() {
                    Some(next) => after = Some(next.to_owned()),
                    None => break,
                }
            }
            Ok(json!({ "members": members }))
        }
        Target::DataDir(dir) => {
            let store = ReadOnlyStore::open_read_only(&dir)?;
            let chain = store.load_chain()?;
            let accounts = chain.members_page(None, usize::MAX, |account| {
                org.as_ref().is_none_or(|org| &account.organization == org)
            });
            let members = accounts
                .into_iter()
                .map(|(public_key, account)| {
                    let display_name = store.display_name(&public_key)?;
                    let mut view = json!({ "public_key": public_key, "display_name": display_name });
                    merge(&mut view, serde_json::to_value(&account).expect("accounts serialise"));
                    Ok(view)
                })
                .collect::<Result<Vec<_>, CliError>>()?;
            Ok(json!({ "members": members }))
        }
    }
}

fn merge(into: &mut Value, from: Value) {
    if let (Some(into), Value::Object(from)) = (into.as_object_mut(), from) {
        into.extend(from);
    }
}

/// A fresh pseudonymous patient id: 128 random bits, derived from nothing about the patient.
pub fn random_patient_id() -> Result<PatientId, CliError> {
    let mut bytes = [0; 16];
    getrandom::fill(&mut bytes).map_err(|error| CliError::Config(format!("system randomness: {error}")))?;
    Ok(PatientId(bytes))
}

//! `medledger tx`: build, sign and submit transactions to a node.

use std::path::PathBuf;

use clap::Subcommand;
use medledger_crypto::{Digest, PublicKey, SigningKey, sha256};
use medledger_types::{ChainId, Label, Payload, TxBody};
use serde::Deserialize;
use serde_json::Value;

use crate::client::Client;
use crate::{Cli, CliError};

#[derive(Debug, Subcommand)]
pub enum TxCommand {
    /// Sign a transaction with a key file and submit it to the node.
    Submit {
        /// The signer's key file.
        #[arg(long, value_name = "FILE", global = true)]
        key: Option<PathBuf>,
        /// Use this nonce instead of asking the node for the next one.
        #[arg(long, global = true)]
        nonce: Option<u64>,
        /// Wait until the transaction is in a block and print its receipt.
        #[arg(long, global = true)]
        wait: bool,
        #[command(subcommand)]
        payload: PayloadArgs,
    },
    /// Show a transaction and its status.
    Show {
        /// Transaction id (64 hex characters).
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum PayloadArgs {
    /// Enrol a member key (admins only).
    AddMember {
        /// The new member's public key (64 hex characters).
        #[arg(long)]
        public_key: String,
        /// Let the new member enrol others.
        #[arg(long)]
        admin: bool,
    },
    /// Anchor a document's SHA-256 under a label (the document itself never leaves you).
    Anchor {
        /// The label, e.g. `lab-report/2026/004217`. Public: never put personal data in it.
        #[arg(long)]
        label: String,
        /// The SHA-256 digest to anchor (64 hex characters).
        #[arg(long, conflicts_with = "file", required_unless_present = "file")]
        digest: Option<Digest>,
        /// Compute the digest of this file.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
}

#[derive(Deserialize)]
struct StatusView {
    chain_id: ChainId,
}

#[derive(Deserialize)]
struct AccountView {
    pending_nonce: u64,
}

pub fn run(cli: &Cli, command: &TxCommand) -> Result<(), CliError> {
    let client = Client::new(&cli.node_url()?);
    match command {
        TxCommand::Submit { key, nonce, wait, payload } => {
            let key = key.as_ref().ok_or_else(|| CliError::Usage("tx submit needs --key FILE".into()))?;
            let key = SigningKey::load(key)?;
            let payload = build_payload(payload)?;
            let status: StatusView = client.get_json("/v1/status")?;
            let nonce = match nonce {
                Some(nonce) => *nonce,
                None => {
                    client
                        .get_json::<AccountView>(&format!("/v1/accounts/{}", key.public_key()))?
                        .pending_nonce
                }
            };
            let tx =
                TxBody { chain_id: status.chain_id, signer: key.public_key(), nonce, payload }.sign(&key);
            let path = if *wait { "/v1/txs?wait=true" } else { "/v1/txs" };
            let answer: Value = client.post_json(path, &tx)?;
            print_json(&answer);
        }
        TxCommand::Show { id } => print_json(&client.get_json::<Value>(&format!("/v1/txs/{id}"))?),
    }
    Ok(())
}

fn build_payload(args: &PayloadArgs) -> Result<Payload, CliError> {
    Ok(match args {
        PayloadArgs::AddMember { public_key, admin } => {
            let public_key: PublicKey = public_key.parse()?;
            Payload::AddMember { public_key, admin: *admin }
        }
        PayloadArgs::Anchor { label, digest, file } => {
            let label = Label::new(label.clone()).map_err(|error| CliError::Usage(error.to_string()))?;
            let digest = match (digest, file) {
                (Some(digest), _) => *digest,
                (None, Some(file)) => sha256(&std::fs::read(file).map_err(CliError::io(file))?),
                (None, None) => {
                    return Err(CliError::Usage("anchor needs --digest or --file".into()));
                }
            };
            Payload::Anchor { label, digest }
        }
    })
}

/// Prints a JSON value for humans and scripts alike. A closed pipe (`| head`) is not an error.
pub fn print_json(value: &impl serde::Serialize) {
    use std::io::Write as _;
    let text = serde_json::to_string_pretty(value).expect("JSON values always serialise");
    let _closed_pipe_is_fine = writeln!(std::io::stdout(), "{text}");
}

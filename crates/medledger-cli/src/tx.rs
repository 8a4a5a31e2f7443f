//! `medledger tx`: build, sign and submit transactions to a node.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use medledger_crypto::{Digest, SigningKey, sha256};
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

/// How a write command signs: the key file, and optionally the nonce and whether to wait.
#[derive(Debug, Args)]
pub struct SignerArgs {
    /// The signer's key file (PKCS#8 PEM).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// Use this nonce instead of asking the node for the next one.
    #[arg(long)]
    pub nonce: Option<u64>,
    /// Wait until the transaction is in a block and print its receipt.
    #[arg(long)]
    pub wait: bool,
}

/// Signs `payload` with the key file and submits it; prints and returns the node's answer.
pub fn sign_and_submit(client: &Client, signer: &SignerArgs, payload: Payload) -> Result<Value, CliError> {
    let key = SigningKey::load(&signer.key)?;
    submit_signed(client, &key, signer.nonce, signer.wait, payload)
}

/// Signs `payload` with `key` and submits it; prints and returns the node's answer.
pub fn submit_signed(
    client: &Client,
    key: &SigningKey,
    nonce: Option<u64>,
    wait: bool,
    payload: Payload,
) -> Result<Value, CliError> {
    let status: StatusView = client.get_json("/v1/status")?;
    let nonce = match nonce {
        Some(nonce) => nonce,
        None => client.get_json::<AccountView>(&format!("/v1/accounts/{}", key.public_key()))?.pending_nonce,
    };
    let tx = TxBody { chain_id: status.chain_id, signer: key.public_key(), nonce, payload }.sign(key);
    let path = if wait { "/v1/txs?wait=true" } else { "/v1/txs" };
    let answer: Value = client.post_json(path, &tx)?;
    print_json(&answer);
    Ok(answer)
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
    match command {
        TxCommand::Submit { key, nonce, wait, payload } => {
            let client = Client::new(&cli.write_node_url()?);
            let key = key.as_ref().ok_or_else(|| CliError::Usage("tx submit needs --key FILE".into()))?;
            let signer = SignerArgs { key: key.clone(), nonce: *nonce, wait: *wait };
            sign_and_submit(&client, &signer, build_payload(payload)?)?;
        }
        TxCommand::Show { id } => {
            let client = Client::new(&cli.node_url()?);
            print_json(&client.get_json::<Value>(&format!("/v1/txs/{id}"))?);
        }
    }
    Ok(())
}

fn build_payload(args: &PayloadArgs) -> Result<Payload, CliError> {
    let PayloadArgs::Anchor { label, digest, file } = args;
    let label = Label::new(label.clone()).map_err(|error| CliError::Usage(error.to_string()))?;
    let digest = match (digest, file) {
        (Some(digest), _) => *digest,
        (None, Some(file)) => sha256(&std::fs::read(file).map_err(CliError::io(file))?),
        (None, None) => return Err(CliError::Usage("anchor needs --digest or --file".into())),
    };
    Ok(Payload::Anchor { label, digest })
}

/// Prints a JSON value for humans and scripts alike. A closed pipe (`| head`) is not an error.
pub fn print_json(value: &impl serde::Serialize) {
    use std::io::Write as _;
    let text = serde_json::to_string_pretty(value).expect("JSON values always serialise");
    let _closed_pipe_is_fine = writeln!(std::io::stdout(), "{text}");
}

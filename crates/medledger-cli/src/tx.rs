//! `medledger tx`: build, sign and submit transactions to a node.

use std::path::PathBuf;
use std::time::{Duration, Instant};

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
        /// Wait until the transaction is in a block. Exits 4 if it is not within --timeout,
        /// 5 if the block refused it.
        #[arg(long, global = true)]
        wait: bool,
        /// With --wait: how many seconds to wait for the block.
        #[arg(long, global = true, value_name = "SECONDS", default_value_t = DEFAULT_WAIT_SECS, requires = "wait")]
        timeout: u64,
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
    /// Wait until the transaction is in a block. Exits 4 if it is not within --timeout, 5 if
    /// the block refused it.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: how many seconds to wait for the block.
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_WAIT_SECS, requires = "wait")]
    pub timeout: u64,
}

/// How long `--wait` waits by default: a healthy network makes a block within a second or
/// two; a minute covers a view change or two and a busy node.
const DEFAULT_WAIT_SECS: u64 = 60;

/// Longest one waiting request asks the node to hold (the API's own bound is 30 s); a longer
/// `--timeout` asks again.
const WAIT_PER_REQUEST_MS: u64 = 25_000;

impl SignerArgs {
    /// How long to wait for the block, if at all.
    fn wait_for(&self) -> Option<Duration> {
        self.wait.then(|| Duration::from_secs(self.timeout))
    }
}

/// Signs `payload` with the key file and submits it; prints and returns the node's answer.
pub fn sign_and_submit(client: &Client, signer: &SignerArgs, payload: Payload) -> Result<Value, CliError> {
    let key = SigningKey::load(&signer.key)?;
    submit_signed(client, &key, signer.nonce, signer.wait_for(), payload)
}

/// Signs `payload` with `key` and submits it; prints the node's answer (the transaction's
/// status) and returns it. With `wait`, waits that long for the transaction's block: a
/// transaction still not in a block is [`CliError::NotInBlock`], one the block refused
/// [`CliError::Rejected`], each after the answer is printed.
pub fn submit_signed(
    client: &Client,
    key: &SigningKey,
    nonce: Option<u64>,
    wait: Option<Duration>,
    payload: Payload,
) -> Result<Value, CliError> {
    let status: StatusView = client.get_json("/v1/status")?;
    let nonce = match nonce {
        Some(nonce) => nonce,
        None => client.get_json::<AccountView>(&format!("/v1/accounts/{}", key.public_key()))?.pending_nonce,
    };
    let tx = TxBody { chain_id: status.chain_id, signer: key.public_key(), nonce, payload }.sign(key);
    let Some(wait) = wait else {
        let answer: Value = client.post_json("/v1/txs", &tx)?;
        print_json(&answer);
        return Ok(answer);
    };
    let deadline = Instant::now() + wait;
    let mut answer: Value = client.post_json(&format!("/v1/txs?{}", wait_query(deadline)), &tx)?;
    while answer["status"] == "pending" && Instant::now() < deadline {
        answer = client.get_json(&format!("/v1/txs/{}?{}", tx.id(), wait_query(deadline)))?;
    }
    print_json(&answer);
    check_in_block(&answer, wait)?;
    Ok(answer)
}

/// `wait=true&timeout_ms=…` for the time left before `deadline`, in pieces the API accepts.
fn wait_query(deadline: Instant) -> String {
    let left_ms = deadline.saturating_duration_since(Instant::now()).as_millis();
    let timeout_ms = u64::try_from(left_ms).unwrap_or(u64::MAX).clamp(1, WAIT_PER_REQUEST_MS);
    format!("wait=true&timeout_ms={timeout_ms}")
}

/// Turns a status that is not "in a block and applied" into the error (and exit code) a
/// script can act on.
fn check_in_block(answer: &Value, waited: Duration) -> Result<(), CliError> {
    let tx_id = answer["tx_id"].as_str().unwrap_or("?").to_owned();
    match answer["status"].as_str() {
        Some("committed") => Ok(()),
        Some("rejected") => Err(CliError::Rejected {
            tx_id,
            reason: answer["receipt"]["reason"].as_str().unwrap_or("unknown").to_owned(),
        }),
        Some("pending") => Err(CliError::NotInBlock {
            tx_id,
            why: format!(
                "still pending after {} s: no block was finalized in time (is a quorum of validators up? see /v1/status)",
                waited.as_secs()
            ),
        }),
        _ => Err(CliError::NotInBlock {
            tx_id,
            why: "the node no longer knows it: dropped from its mempool (a restart, or the signer's key was revoked); check, then submit again".into(),
        }),
    }
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
        TxCommand::Submit { key, nonce, wait, timeout, payload } => {
            let client = Client::new(&cli.write_node_url()?);
            let key = key.as_ref().ok_or_else(|| CliError::Usage("tx submit needs --key FILE".into()))?;
            let signer = SignerArgs { key: key.clone(), nonce: *nonce, wait: *wait, timeout: *timeout };
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

//! `medledger record`: FHIR records through a node's FHIR API, FHIR JSON in and out, and
//! `medledger session`: a bearer token for FHIR clients and `curl`.

use std::io::Read as _;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use medledger_crypto::SigningKey;
use serde_json::Value;

use crate::client::Client;
use crate::{Cli, CliError};

const FHIR_JSON: &str = "application/fhir+json";

/// Largest FHIR file `record put` reads (a transaction Bundle at its limit).
const MAX_INPUT_BYTES: u64 = medledger_fhir::MAX_BUNDLE_BYTES as u64;

#[derive(Debug, Subcommand)]
pub enum RecordCommand {
    /// Create a record from a FHIR resource (or write a transaction Bundle); with --id,
    /// write a new version of that record.
    Put(PutArgs),
    /// Read a record (its latest version, or --version-id).
    Get(RecordArgs),
    /// Every version of a record, as a FHIR history Bundle.
    History(RecordArgs),
    /// Check a version against its anchor on chain: ciphertext digest and Merkle inclusion.
    /// Exits non-zero if it does not verify.
    Verify(RecordArgs),
}

/// Who signs.
#[derive(Debug, Args)]
pub struct KeyArg {
    /// The member key that signs the request.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
}

#[derive(Debug, Args)]
pub struct PutArgs {
    /// FHIR JSON file (`-` for standard input).
    file: PathBuf,
    /// Update this record (its logical id) instead of creating one.
    #[arg(long)]
    id: Option<String>,
    /// With --id: only if the current version is this one.
    #[arg(long, requires = "id")]
    if_match: Option<u64>,
    #[command(flatten)]
    key: KeyArg,
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// The record, as `Type/id` (e.g. `Observation/0f3a…`).
    reference: String,
    /// A version other than the latest (its FHIR versionId).
    #[arg(long, value_name = "N")]
    version_id: Option<u64>,
    #[command(flatten)]
    key: KeyArg,
}

pub fn run(cli: &Cli, command: &RecordCommand) -> Result<(), CliError> {
    let client = Client::new(&cli.node_url()?);
    match command {
        RecordCommand::Put(args) => put(&client, args),
        RecordCommand::Get(args) => {
            let key = SigningKey::load(&args.key.key)?;
            let path = match args.version_id {
                Some(version) => format!("/fhir/{}/_history/{version}", reference(&args.reference)?),
                None => format!("/fhir/{}", reference(&args.reference)?),
            };
            print_json(&client.signed(&key).send("GET", &path, None, &[])?)
        }
        RecordCommand::History(args) => {
            let key = SigningKey::load(&args.key.key)?;
            let path = format!("/fhir/{}/_history", reference(&args.reference)?);
            print_json(&client.signed(&key).send("GET", &path, None, &[])?)
        }
        RecordCommand::Verify(args) => verify(&client, args),
    }
}

/// Checks `Type/id` and answers it (it becomes part of a URL path).
fn reference(text: &str) -> Result<&str, CliError> {
    let valid = text.split_once('/').is_some_and(|(resource_type, id)| {
        resource_type.parse::<medledger_fhir::ResourceType>().is_ok() && medledger_fhir::is_fhir_id(id)
    });
    if valid {
        Ok(text)
    } else {
        Err(CliError::Usage(format!("'{text}' is not Type/id of a record type MedLedger keeps")))
    }
}

fn put(client: &Client, args: &PutArgs) -> Result<(), CliError> {
    let key = SigningKey::load(&args.key.key)?;
    let body = read_input(&args.file)?;
    let value: Value = serde_json::from_slice(&body)
        .map_err(|error| CliError::Usage(format!("{} is not JSON: {error}", args.file.display())))?;
    let resource_type = value.get("resourceType").and_then(Value::as_str).unwrap_or_default();
    let (method, path) = match (&args.id, resource_type) {
        (None, "Bundle") => ("POST", "/fhir".to_owned()),
        (None, resource_type) => ("POST", format!("/fhir/{resource_type}")),
        (Some(id), resource_type) => {
            ("PUT", format!("/fhir/{}", reference(&format!("{resource_type}/{id}"))?))
        }
    };
    let headers: Vec<(&str, String)> =
        args.if_match.map(|version| ("if-match", format!("W/\"{version}\""))).into_iter().collect();
    print_json(&client.signed(&key).send(method, &path, Some((FHIR_JSON, &body)), &headers)?)
}

fn verify(client: &Client, args: &RecordArgs) -> Result<(), CliError> {
    let key = SigningKey::load(&args.key.key)?;
    let query = args.version_id.map(|version| format!("?version={version}")).unwrap_or_default();
    let path = format!("/fhir/{}/$verify{query}", reference(&args.reference)?);
    let answer = client.signed(&key).send("GET", &path, None, &[])?;
    print_json(&answer)?;
    let parameters: Value = serde_json::from_slice(&answer)
        .map_err(|error| CliError::Remote(format!("unexpected $verify answer: {error}")))?;
    let verified = parameters["parameter"]
        .as_array()
        .and_then(|parameters| parameters.iter().find(|parameter| parameter["name"] == "verified"))
        .and_then(|parameter| parameter["valueBoolean"].as_bool());
    match verified {
        Some(true) => Ok(()),
        _ => Err(CliError::Verification { height: 0, reason: format!("{} does not verify", args.reference) }),
    }
}

fn read_input(file: &PathBuf) -> Result<Vec<u8>, CliError> {
    let mut bytes = Vec::new();
    if file.as_os_str() == "-" {
        std::io::stdin()
            .take(MAX_INPUT_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(CliError::io("standard input"))?;
    } else {
        let opened = std::fs::File::open(file).map_err(CliError::io(file))?;
        opened.take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes).map_err(CliError::io(file))?;
    }
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(CliError::Usage(format!("{} is over {MAX_INPUT_BYTES} bytes", file.display())));
    }
    Ok(bytes)
}

fn print_json(bytes: &[u8]) -> Result<(), CliError> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|error| CliError::Remote(format!("the node answered something other than JSON: {error}")))?;
    println!("{}", serde_json::to_string_pretty(&value).expect("JSON values serialize"));
    Ok(())
}

#[derive(Debug, Args)]
pub struct SessionArgs {
    #[command(flatten)]
    key: KeyArg,
}

/// Opens a bearer session with a signed request and prints the token (only the token, so
/// `TOKEN=$(medledger session --key …)` works).
pub fn session(cli: &Cli, args: &SessionArgs) -> Result<(), CliError> {
    let key = SigningKey::load(&args.key.key)?;
    let client = Client::new(&cli.node_url()?);
    let answer: Value = client.signed(&key).post_json("/v1/sessions", &serde_json::json!({}))?;
    let token =
        answer["token"].as_str().ok_or_else(|| CliError::Remote("the session answer has no token".into()))?;
    println!("{token}");
    Ok(())
}

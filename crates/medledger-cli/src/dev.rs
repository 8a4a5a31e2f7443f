//! `medledger dev`: a working single-node chain with demo identities and transactions.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Args;
use medledger_crypto::{SigningKey, sha256};
use medledger_node::{Node, NodeConfig};
use medledger_store::Store;
use medledger_types::{ChainId, Genesis, GenesisMember, Label, Payload, TxBody};

use crate::config::NodeFile;
use crate::init::{Layout, generate_key};
use crate::run::{bind, local_addr, open_node, serve};
use crate::{Cli, CliError, DEFAULT_LISTEN};

/// Chain id of dev chains.
const DEV_CHAIN_ID: &str = "medledger-dev";

/// Demo members the genesis admin enrols: organisations of a small consortium.
const DEMO_MEMBERS: [&str; 3] = ["st-mary-hospital", "northside-lab", "city-pharmacy"];

#[derive(Debug, Args)]
pub struct DevArgs {
    /// API address.
    #[arg(long, default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Block interval in milliseconds.
    #[arg(long, default_value_t = NodeConfig::default().block_interval_ms)]
    block_interval_ms: u64,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

pub fn run(cli: &Cli, args: &DevArgs) -> Result<(), CliError> {
    // Without --data-dir the chain lives in a temporary directory removed on exit.
    let temporary = match &cli.data_dir {
        Some(_) => None,
        None => Some(
            tempfile::Builder::new()
                .prefix("medledger-dev-")
                .tempdir()
                .map_err(CliError::io("temporary directory"))?,
        ),
    };
    let data_dir: PathBuf = match (&cli.data_dir, &temporary) {
        (Some(dir), _) => dir.clone(),
        (None, Some(temporary)) => temporary.path().to_owned(),
        (None, None) => unreachable!("a temporary directory exists when no --data-dir is given"),
    };
    let layout = Layout::of(&data_dir);
    let fresh = !medledger_store::database_path(&data_dir).exists();
    if fresh {
        create_demo_chain(&data_dir, &layout, args.listen)?;
    }
    let config = NodeConfig { block_interval_ms: args.block_interval_ms, ..NodeConfig::default() };
    let node = open_node(&data_dir, SigningKey::load(&layout.node_key)?, config)?;
    if fresh {
        load_demo_transactions(&node, &layout)?;
    }
    let listener = bind(args.listen)?;
    print_banner(&node, &data_dir, &layout, local_addr(&listener)?, temporary.is_some());
    serve(&node, listener)
}

fn create_demo_chain(data_dir: &Path, layout: &Layout, listen: SocketAddr) -> Result<(), CliError> {
    std::fs::create_dir_all(&layout.keys_dir).map_err(CliError::io(&layout.keys_dir))?;
    let node_key = generate_key(&layout.node_key)?;
    let admin = generate_key(&layout.keys_dir.join("admin.pem"))?;
    for member in DEMO_MEMBERS {
        generate_key(&layout.keys_dir.join(format!("{member}.pem")))?;
    }
    let genesis = Genesis {
        chain_id: ChainId::new(DEV_CHAIN_ID).expect("the dev chain id is valid"),
        genesis_time_ms: now_ms(),
        validators: vec![node_key.public_key()],
        members: vec![GenesisMember { public_key: admin.public_key(), admin: true }],
    };
    std::fs::write(&layout.genesis, genesis.to_json()).map_err(CliError::io(&layout.genesis))?;
    Store::create(data_dir, &genesis)?;
    NodeFile {
        data_dir: PathBuf::from("."),
        listen,
        key_file: PathBuf::from("keys/node.pem"),
        block_interval_ms: NodeConfig::default().block_interval_ms,
        max_block_txs: NodeConfig::default().max_block_txs,
        mempool_max_txs: NodeConfig::default().mempool_max_txs,
    }
    .save(&layout.config)
}

/// Submits a believable first day of the demo consortium, in two blocks: the admin enrols
/// the members, then the members anchor documents (and one tries something it may not do).
fn load_demo_transactions(node: &Node, layout: &Layout) -> Result<(), CliError> {
    let chain_id = ChainId::new(DEV_CHAIN_ID).expect("the dev chain id is valid");
    let admin = SigningKey::load(&layout.keys_dir.join("admin.pem"))?;
    let members: Vec<SigningKey> = DEMO_MEMBERS
        .iter()
        .map(|member| SigningKey::load(&layout.keys_dir.join(format!("{member}.pem"))))
        .collect::<Result<_, _>>()?;
    let sign = |key: &SigningKey, nonce: u64, payload: Payload| {
        TxBody { chain_id: chain_id.clone(), signer: key.public_key(), nonce, payload }.sign(key)
    };
    for (nonce, member) in (0..).zip(&members) {
        submit(
            node,
            sign(&admin, nonce, Payload::AddMember { public_key: member.public_key(), admin: false }),
        )?;
    }
    node.produce_block()?;
    let anchors = [
        (&members[0], "discharge-summary/2026/000101", "demo discharge summary, encrypted at St Mary's"),
        (&members[1], "lab-report/2026/004217", "demo lab report, encrypted at Northside Lab"),
        (&members[2], "dispense-record/2026/000877", "demo dispense record, encrypted at City Pharmacy"),
    ];
    for (key, label, document) in anchors {
        let label = Label::new(label).expect("demo labels are valid");
        submit(node, sign(key, 0, Payload::Anchor { label, digest: sha256(document.as_bytes()) }))?;
    }
    // A pharmacy may not enrol members: this lands in the chain with a rejected receipt.
    let intruder = SigningKey::generate()?;
    submit(
        node,
        sign(&members[2], 1, Payload::AddMember { public_key: intruder.public_key(), admin: false }),
    )?;
    node.produce_block()?;
    Ok(())
}

fn submit(node: &Node, tx: medledger_types::Transaction) -> Result<(), CliError> {
    node.submit(tx)
        .map(|_| ())
        .map_err(|error| CliError::Remote(format!("demo transaction refused: {error}")))
}

fn print_banner(node: &Node, data_dir: &Path, layout: &Layout, address: SocketAddr, temporary: bool) {
    let status = node.status();
    let url = format!("http://{address}");
    let keys = layout.keys_dir.display();
    println!("MedLedger dev chain '{}' is running (height {}).", status.chain_id, status.height);
    println!("MedLedger node listening on {url}");
    let lifetime = if temporary { " (temporary: deleted when you stop)" } else { "" };
    println!("  data dir  {}{lifetime}", data_dir.display());
    println!("  keys      {keys}/admin.pem (genesis admin), {keys}/{{{}}}.pem", DEMO_MEMBERS.join(","));
    println!();
    println!("Try:");
    println!("  curl -s {url}/v1/status");
    println!("  curl -s {url}/v1/blocks/latest");
    println!("  medledger --node {url} block show 2");
    println!(
        "  medledger --node {url} tx submit --key {keys}/st-mary-hospital.pem anchor --label referral/2026/000007 --digest {} --wait",
        sha256(b"referral letter")
    );
    println!("  medledger --node {url} verify");
    println!("Press Ctrl-C to stop.");
}

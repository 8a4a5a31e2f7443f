//! `medledger dev`: a working chain with demo identities and transactions: one node, or with
//! `--nodes N` a local network of N validators running consensus on loopback.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use medledger_consensus::exchange::Exchange;
use medledger_crypto::{SigningKey, sha256};
use medledger_node::{Node, NodeConfig};
use medledger_records::Records;
use medledger_store::Store;
use medledger_types::{
    ChainId, Genesis, GenesisMember, GenesisOrganization, GovernanceAction, Label, NodeAddress, NodeIdentity,
    OrgId, OrgKind, OrgSpec, Parameters, Payload, Role, TxBody, TxId,
};

use crate::config::NodeFile;
use crate::demo_records;
use crate::init::{Layout, generate_key};
use crate::run::{Sequencer, Served, bind, local_addr, open_node, open_records, serve_all};
use crate::{Cli, CliError, DEFAULT_LISTEN};

/// Chain id of dev chains.
const DEV_CHAIN_ID: &str = "medledger-dev";

/// An organisation of the demo consortium: its administrator is a founder; its other
/// members are enrolled by that administrator in the first demo block.
struct DemoOrg {
    id: &'static str,
    kind: OrgKind,
    /// Members other than the administrator: key file stem, role, display name (patients
    /// get none: their names never reach the ledger nor the directory).
    members: &'static [(&'static str, Role, Option<&'static str>)],
}

/// The demo consortium. The first organisation runs the dev node.
const DEMO_ORGS: &[DemoOrg] = &[
    DemoOrg {
        id: "st-mary-hospital",
        kind: OrgKind::Hospital,
        members: &[
            ("dr-ana-ruiz", Role::Physician, Some("Dr Ana Ruiz")),
            ("nurse-tom-becker", Role::Nurse, Some("Tom Becker, RN")),
            ("auditor-kim-ng", Role::Auditor, Some("Kim Ng (privacy office)")),
        ],
    },
    DemoOrg {
        id: "lakeside-general-hospital",
        kind: OrgKind::Hospital,
        members: &[("dr-sam-okafor", Role::Physician, Some("Dr Sam Okafor"))],
    },
    DemoOrg {
        id: "northside-lab",
        kind: OrgKind::Laboratory,
        members: &[("tech-lee-park", Role::LaboratoryTechnician, Some("Lee Park"))],
    },
    DemoOrg {
        id: "city-pharmacy",
        kind: OrgKind::Pharmacy,
        members: &[("pharm-maria-lopez", Role::Pharmacist, Some("Maria Lopez, PharmD"))],
    },
    DemoOrg {
        id: "helix-pharma",
        kind: OrgKind::Manufacturer,
        members: &[("qp-omar-haddad", Role::Pharmacist, Some("Omar Haddad (qualified person)"))],
    },
    DemoOrg { id: "medroute-distribution", kind: OrgKind::Distributor, members: &[] },
    DemoOrg {
        id: "national-medicines-agency",
        kind: OrgKind::Regulator,
        members: &[("inspector-jo-hale", Role::RegulatorInspector, Some("Jo Hale"))],
    },
    DemoOrg {
        id: "patient-link",
        kind: OrgKind::PatientService,
        members: &[("patient-1", Role::Patient, None), ("patient-2", Role::Patient, None)],
    },
];

/// The organisation the demo proposes to admit, so governance is on the chain from the start.
const DEMO_CANDIDATE: &str = "harbor-clinic";

#[derive(Debug, Args)]
pub struct DevArgs {
    /// API address of the first node; node i listens on the next port after node i-1.
    #[arg(long, default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Validators to run: 1 (a single node) or up to one per demo organisation, each with its
    /// own data directory, API port and p2p port, agreeing on blocks with Simplex BFT.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=MAX_DEV_NODES))]
    nodes: u16,
    /// First p2p port (node i uses this plus i); by default the API port plus 1000.
    #[arg(long)]
    p2p_port: Option<u16>,
    /// Block interval in milliseconds.
    #[arg(long, default_value_t = NodeConfig::default().block_interval_ms)]
    block_interval_ms: u64,
    /// With --nodes: with nothing pending, one empty block this often (the heartbeat).
    #[arg(long, default_value_t = NodeConfig::default().empty_block_interval_ms)]
    empty_block_interval_ms: u64,
    /// Data keys each vault keeps unwrapped for reads of hot records (0: unwrap every read).
    #[arg(long, default_value_t = medledger_vault::DEFAULT_CACHED_KEYS)]
    vault_key_cache_entries: usize,
}

/// One validator per demo organisation at most.
const MAX_DEV_NODES: i64 = 8;

/// How long the demo waits for each of its steps to become final on a multi-node network.
const DEMO_STEP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Where each dev node lives and listens.
struct DevNode {
    org: &'static str,
    data_dir: PathBuf,
    layout: Layout,
    api: SocketAddr,
    p2p: SocketAddr,
}

fn dev_nodes(data_dir: &Path, args: &DevArgs) -> Result<Vec<DevNode>, CliError> {
    let count = usize::from(args.nodes);
    if count > 1 && args.listen.port() == 0 {
        return Err(CliError::Usage(
            "--nodes needs a fixed --listen port: the nodes take consecutive ports".into(),
        ));
    }
    let p2p_base = match args.p2p_port {
        Some(port) => port,
        None => {
            args.listen.port().checked_add(1000).ok_or_else(|| CliError::Usage("choose --p2p-port".into()))?
        }
    };
    (0..count)
        .map(|index| {
            let offset = u16::try_from(index).expect("at most eight nodes");
            let port = |base: u16| {
                base.checked_add(offset)
                    .ok_or_else(|| CliError::Usage(format!("port {base} + {offset} overflows")))
            };
            let api_port = if count == 1 { args.listen.port() } else { port(args.listen.port())? };
            let node_dir =
                if index == 0 { data_dir.to_owned() } else { data_dir.join(format!("node-{index}")) };
            Ok(DevNode {
                org: DEMO_ORGS[index].id,
                layout: Layout::of(&node_dir),
                data_dir: node_dir,
                api: SocketAddr::new(args.listen.ip(), api_port),
                p2p: SocketAddr::new(args.listen.ip(), port(p2p_base)?),
            })
        })
        .collect()
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
    let dev_nodes = dev_nodes(&data_dir, args)?;
    let fresh = !medledger_store::database_path(&data_dir).exists();
    if fresh {
        create_demo_chain(&layout, &dev_nodes)?;
    }
    let config = NodeConfig {
        block_interval_ms: args.block_interval_ms,
        empty_block_interval_ms: args.empty_block_interval_ms,
        ..NodeConfig::default()
    };
    let mut nodes = Vec::with_capacity(dev_nodes.len());
    for dev_node in &dev_nodes {
        let key = SigningKey::load(&dev_node.layout.node_key)?;
        let node = open_node(
            &dev_node.data_dir,
            SigningKey::from_seed(&key.seed()),
            config,
            medledger_store::StoreOptions::default(),
            None,
        )?;
        if node.status().validators.len() != dev_nodes.len() {
            return Err(CliError::Usage(format!(
                "{} holds a chain of {} validators; run it with --nodes {}",
                data_dir.display(),
                node.status().validators.len(),
                node.status().validators.len()
            )));
        }
        nodes.push((node, key));
    }
    let first = Arc::clone(&nodes[0].0);
    let mut running = Vec::with_capacity(nodes.len());
    if dev_nodes.len() == 1 {
        if fresh {
            load_demo_transactions(&first, &layout, &|node| {
                node.produce_block().map(drop).map_err(CliError::from)
            })?;
        }
        let (node, key) = nodes.pop().expect("one node");
        running.push((node, key, None));
    } else {
        for ((node, key), dev_node) in nodes.into_iter().zip(&dev_nodes) {
            running.push((node, key, Some(dev_node.p2p)));
        }
    }
    let mut served = Vec::with_capacity(running.len());
    for ((node, key, p2p), dev_node) in running.into_iter().zip(&dev_nodes) {
        let exchange = Exchange::new();
        let sequencer = Sequencer::start(&node, &key, &dev_node.data_dir, p2p, &exchange)?;
        let records = open_records(
            &node,
            &dev_node.data_dir,
            args.vault_key_cache_entries,
            sequencer.exchange(exchange),
        )?;
        served.push(Served { node, records, listener: bind(dev_node.api)?, sequencer });
    }
    if fresh && dev_nodes.len() > 1 {
        load_demo_transactions(&first, &layout, &wait_until_final)?;
    }
    if fresh {
        let records = served[0].records.as_ref().ok_or_else(|| {
            CliError::Config("the first dev node keeps no records (its key is no organisation's node)".into())
        })?;
        load_demo_records(&first, records, &layout)?;
    }
    if dev_nodes.len() > 1 {
        wait_until_every_node_caught_up(&served, &dev_nodes)?;
    }
    let addresses: Vec<SocketAddr> =
        served.iter().map(|served| local_addr(&served.listener)).collect::<Result<_, _>>()?;
    serve_all(served, || {
        print_banner(&first, &data_dir, &layout, &addresses, &dev_nodes, temporary.is_some());
    })
}

/// Waits until everything pending on `node` is in a final block.
fn wait_until_final(node: &Node) -> Result<(), CliError> {
    wait_for_demo(
        || node.pending_count() == 0,
        || "the dev network did not finalize the demo transactions".into(),
    )
}

/// Waits until every node of a dev network holds the highest block any of them holds. The
/// demo is final once the first node committed it, but the others may still be committing its
/// last blocks: until they do, they refuse the demo's members (not enrolled yet on their
/// chain), and the banner, which names every node's API, must be true of each.
fn wait_until_every_node_caught_up(served: &[Served], dev_nodes: &[DevNode]) -> Result<(), CliError> {
    let height = |served: &Served| served.node.with_chain(medledger_state::Chain::height);
    let target = served.iter().map(height).max().unwrap_or(0);
    for (served, dev_node) in served.iter().zip(dev_nodes) {
        wait_for_demo(
            || height(served) >= target,
            || {
                format!(
                    "the node of {} is at height {}, not {target}: it did not catch up with the dev network",
                    dev_node.org,
                    height(served)
                )
            },
        )?;
    }
    Ok(())
}

/// Polls `done` until it holds, for at most [`DEMO_STEP_TIMEOUT`]; `failure` says what did not
/// happen.
fn wait_for_demo(done: impl Fn() -> bool, failure: impl FnOnce() -> String) -> Result<(), CliError> {
    let deadline = std::time::Instant::now() + DEMO_STEP_TIMEOUT;
    while !done() {
        if std::time::Instant::now() > deadline {
            return Err(CliError::Remote(failure()));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Ok(())
}

fn key_path(layout: &Layout, org: &str, stem: &str) -> PathBuf {
    layout.keys_dir.join(org).join(format!("{stem}.pem"))
}

fn load_key(layout: &Layout, org: &str, stem: &str) -> Result<SigningKey, CliError> {
    Ok(SigningKey::load(&key_path(layout, org, stem))?)
}

fn create_demo_chain(layout: &Layout, dev_nodes: &[DevNode]) -> Result<(), CliError> {
    let mut node_keys = Vec::with_capacity(dev_nodes.len());
    for dev_node in dev_nodes {
        std::fs::create_dir_all(&dev_node.layout.keys_dir)
            .map_err(CliError::io(&dev_node.layout.keys_dir))?;
        node_keys.push(generate_key(&dev_node.layout.node_key)?);
    }
    let mut organizations = Vec::new();
    for (index, org) in DEMO_ORGS.iter().enumerate() {
        let org_dir = layout.keys_dir.join(org.id);
        std::fs::create_dir_all(&org_dir).map_err(CliError::io(&org_dir))?;
        let admin = generate_key(&key_path(layout, org.id, "admin"))?;
        for (stem, _, _) in org.members {
            generate_key(&key_path(layout, org.id, stem))?;
        }
        organizations.push(GenesisOrganization {
            id: OrgId::new(org.id).expect("demo organisation ids are valid"),
            kind: org.kind,
            node: dev_nodes.get(index).map(|dev_node| NodeIdentity {
                public_key: node_keys[index].public_key(),
                address: NodeAddress::new(dev_node.p2p.to_string())
                    .expect("a socket address is a valid address"),
            }),
            members: vec![GenesisMember {
                public_key: admin.public_key(),
                role: Role::Administrator,
                patient_id: None,
            }],
        });
    }
    let candidate_dir = layout.keys_dir.join(DEMO_CANDIDATE);
    std::fs::create_dir_all(&candidate_dir).map_err(CliError::io(&candidate_dir))?;
    generate_key(&key_path(layout, DEMO_CANDIDATE, "admin"))?;
    let genesis = Genesis {
        chain_id: ChainId::new(DEV_CHAIN_ID).expect("the dev chain id is valid"),
        genesis_time_ms: medledger_node::now_ms(),
        parameters: Parameters::default(),
        organizations,
    };
    for dev_node in dev_nodes {
        std::fs::write(&dev_node.layout.genesis, genesis.to_json())
            .map_err(CliError::io(&dev_node.layout.genesis))?;
        Store::create(&dev_node.data_dir, &genesis)?;
        NodeFile::new(dev_node.api, PathBuf::from("keys/node.pem"), None, genesis.hash())
            .save(&dev_node.layout.config)?;
    }
    Ok(())
}

/// Signs demo transactions, keeping each key's nonce.
struct DemoSigner<'a> {
    node: &'a Node,
    chain_id: ChainId,
    nonces: std::collections::BTreeMap<medledger_crypto::PublicKey, u64>,
}

impl DemoSigner<'_> {
    fn submit(&mut self, key: &SigningKey, payload: Payload) -> Result<TxId, CliError> {
        let node = self.node;
        let pending_nonce = || node.account(&key.public_key()).map_or(0, |(_, pending)| pending);
        let nonce = self.nonces.entry(key.public_key()).or_insert_with(pending_nonce);
        let tx = TxBody { chain_id: self.chain_id.clone(), signer: key.public_key(), nonce: *nonce, payload }
            .sign(key);
        *nonce += 1;
        self.node.submit(tx).map_err(|error| CliError::Remote(format!("demo transaction refused: {error}")))
    }
}

/// A believable first day of the demo consortium, in four blocks: administrators enrol their
/// members; clinicians anchor documents (and a pharmacist tries something it may not do) while
/// St Mary's proposes admitting a clinic; five more organisations approve; St Mary's executes
/// the proposal and the clinic is in.
/// `settle` makes everything submitted so far final before the next step.
fn load_demo_transactions(
    node: &Node,
    layout: &Layout,
    settle: &dyn Fn(&Node) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let mut signer = DemoSigner {
        node,
        chain_id: ChainId::new(DEV_CHAIN_ID).expect("the dev chain id is valid"),
        nonces: std::collections::BTreeMap::new(),
    };
    for org in DEMO_ORGS {
        let admin = load_key(layout, org.id, "admin")?;
        node.store().set_display_name(&admin.public_key(), Some(&format!("{} administrator", org.id)))?;
        // Patients are enrolled once their charts exist (see `load_demo_records`).
        for (stem, role, display_name) in org.members.iter().filter(|(_, role, _)| *role != Role::Patient) {
            let member = load_key(layout, org.id, stem)?;
            signer.submit(
                &admin,
                Payload::EnrolMember { public_key: member.public_key(), role: *role, patient_id: None },
            )?;
            node.store().set_display_name(&member.public_key(), *display_name)?;
        }
    }
    settle(node)?;
    let anchors = [
        ("st-mary-hospital", "dr-ana-ruiz", "discharge-summary/2026/000101", "demo discharge summary"),
        ("northside-lab", "tech-lee-park", "lab-report/2026/004217", "demo lab report"),
        ("city-pharmacy", "pharm-maria-lopez", "dispense-record/2026/000877", "demo dispense record"),
    ];
    for (org, stem, label, document) in anchors {
        let label = Label::new(label).expect("demo labels are valid");
        signer.submit(
            &load_key(layout, org, stem)?,
            Payload::Anchor { label, digest: sha256(document.as_bytes()) },
        )?;
    }
    // A pharmacist may not enrol members: this lands in the chain with a rejected receipt.
    let intruder = SigningKey::generate()?;
    signer.submit(
        &load_key(layout, "city-pharmacy", "pharm-maria-lopez")?,
        Payload::EnrolMember { public_key: intruder.public_key(), role: Role::Pharmacist, patient_id: None },
    )?;
    let st_mary_admin = load_key(layout, "st-mary-hospital", "admin")?;
    let candidate_admin = load_key(layout, DEMO_CANDIDATE, "admin")?;
    let action = GovernanceAction::AdmitOrganization {
        organization: Box::new(OrgSpec {
            id: OrgId::new(DEMO_CANDIDATE).expect("a valid id"),
            kind: OrgKind::Clinic,
            node: None,
            administrators: vec![candidate_admin.public_key()],
        }),
    };
    let proposal = signer.submit(&st_mary_admin, Payload::Propose { action })?;
    settle(node)?;
    for org in &DEMO_ORGS[1..6] {
        signer.submit(&load_key(layout, org.id, "admin")?, Payload::Vote { proposal, approve: true })?;
    }
    settle(node)?;
    signer.submit(&st_mary_admin, Payload::ExecuteProposal { proposal })?;
    settle(node)?;
    Ok(())
}

/// St Mary's Dr Ruiz writes the demo charts; the patients with member keys are enrolled under
/// their charts' patient ids (so they can read their own records); Dr Ruiz refers patient-1
/// to Lakeside General, whose clinicians may then read that chart from their own node.
fn load_demo_records(node: &Node, records: &Records, layout: &Layout) -> Result<(), CliError> {
    let author = demo_records::requester(node, &load_key(layout, "st-mary-hospital", "dr-ana-ruiz")?)?;
    let patients = demo_records::load(records, &author)?;
    wait_until_final(node)?;
    let mut signer = DemoSigner {
        node,
        chain_id: ChainId::new(DEV_CHAIN_ID).expect("the dev chain id is valid"),
        nonces: std::collections::BTreeMap::new(),
    };
    let patient_service =
        DEMO_ORGS.iter().find(|org| org.kind == OrgKind::PatientService).expect("a patient service");
    let admin = load_key(layout, patient_service.id, "admin")?;
    for (stem, patient) in &patients {
        if patient_service.members.iter().any(|(member, _, _)| member == stem) {
            let member = load_key(layout, patient_service.id, stem)?;
            let payload = Payload::EnrolMember {
                public_key: member.public_key(),
                role: Role::Patient,
                patient_id: Some(*patient),
            };
            signer.submit(&admin, payload)?;
        }
    }
    let referral = Payload::Refer {
        patient: patients[0].1,
        organization: OrgId::new("lakeside-general-hospital").expect("a valid id"),
    };
    signer.submit(&load_key(layout, "st-mary-hospital", "dr-ana-ruiz")?, referral)?;
    wait_until_final(node)
}

fn print_banner(
    node: &Node,
    data_dir: &Path,
    layout: &Layout,
    addresses: &[SocketAddr],
    dev_nodes: &[DevNode],
    temporary: bool,
) {
    let status = node.status();
    let url = format!("http://{}", addresses[0]);
    let keys = layout.keys_dir.display();
    println!("MedLedger dev chain '{}' is running (height {}).", status.chain_id, status.height);
    if dev_nodes.len() > 1 {
        println!(
            "{} validators agree on every block with Simplex BFT (tolerates {} faulty):",
            dev_nodes.len(),
            (dev_nodes.len() - 1) / 3
        );
        for (dev_node, address) in dev_nodes.iter().zip(addresses) {
            println!(
                "  {:<28} API http://{address}  p2p {}  data {}",
                dev_node.org,
                dev_node.p2p,
                dev_node.data_dir.display()
            );
        }
    }
    println!("MedLedger node listening on {url}");
    let lifetime = if temporary { " (temporary: deleted when you stop)" } else { "" };
    println!("  data dir  {}{lifetime}", data_dir.display());
    println!();
    println!("Demo consortium (key files under {keys}/):");
    for (index, org) in DEMO_ORGS.iter().enumerate() {
        let members: Vec<String> =
            org.members.iter().map(|(stem, role, _)| format!("{stem}.pem ({role})")).collect();
        let node_note = if index < dev_nodes.len() { ", runs a validator" } else { "" };
        println!("  {:<28} {:<16} admin.pem{}{node_note}", org.id, org.kind.as_str(), prefixed(&members));
    }
    println!("  {DEMO_CANDIDATE:<28} {:<16} admin.pem (admitted by governance in the demo)", "clinic");
    println!();
    println!("Try:");
    println!("  curl -s {url}/v1/status");
    println!("  curl -s {url}/v1/orgs");
    println!("  curl -s {url}/v1/blocks/2/receipts");
    println!(
        "  medledger --node {url} member list --org st-mary-hospital --key {keys}/st-mary-hospital/admin.pem"
    );
    println!(
        "  medledger --node {url} tx submit --key {keys}/st-mary-hospital/dr-ana-ruiz.pem anchor --label referral/2026/000007 --digest {} --wait",
        sha256(b"referral letter")
    );
    println!("  medledger --node {url} verify");
    println!("Patient records over FHIR R4 (three demo charts held by St Mary's):");
    println!("  TOKEN=$(medledger --node {url} session --key {keys}/st-mary-hospital/dr-ana-ruiz.pem)");
    println!("  curl -s -H \"Authorization: Bearer $TOKEN\" {url}/fhir/Patient");
    println!("  curl -s {url}/fhir/metadata");
    println!("Press Ctrl-C to stop.");
}

fn prefixed(items: &[String]) -> String {
    items.iter().map(|item| format!(", {item}")).collect()
}

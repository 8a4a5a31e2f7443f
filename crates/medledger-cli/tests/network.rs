//! Real `medledger node` processes on loopback running consensus.
//! - Four run under client load; one is killed with SIGKILL and restarted mid-run. Every
//!   transaction a node accepted ends up final on all four, and `medledger verify` passes on
//!   every data directory.
//! - A fifth organisation's node joins from the genesis file: it follows the chain, governance
//!   admits its organisation, and from the epoch that change starts it proposes blocks.
//! - With two of four nodes up the chain halts: `--wait` exits 4 with the pending status, the
//!   status says the node is not in sync and why each silent peer cannot be reached; a third
//!   node brings the transaction into a block.

mod support;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use medledger_crypto::{SigningKey, sha256};
use medledger_types::{ChainId, Label, Payload, Transaction, TxBody};
use serde_json::{Value, json};
use support::{
    Process, committed_height, finalized_height, get, path_str, post_json, run, wait_until_height,
};

const NODES: usize = 4;

/// The node that is killed and restarted.
const VICTIM: usize = 3;

/// Client load: batches of this many transactions, one batch per [`BATCH_EVERY`], until the
/// nodes accepted [`LOAD_TXS`]. The victim is killed once a quarter is accepted and restarted
/// once half is and the others made blocks without it, so it must catch up under load.
/// Counted, not timed: a slow machine makes the run longer, not different.
const BATCH_TXS: usize = 20;
const BATCH_EVERY: Duration = Duration::from_millis(100);
const LOAD_TXS: usize = 1_000;
const KILL_AFTER_TXS: usize = LOAD_TXS / 4;
const RESTART_AFTER_TXS: usize = LOAD_TXS / 2;

/// Longest the client load may take (an upper bound only: about 10 s on a quiet machine).
const LOAD_WITHIN: Duration = Duration::from_secs(180);

/// How long every node has to make the whole load final after it ends, and how long the
/// joiner has for each of its steps.
const SETTLE_WITHIN: Duration = Duration::from_secs(90);

const STARTUP: Duration = Duration::from_secs(60);

/// Longest `medledger dev --nodes 4` may take to print its banner: it loads the demo in
/// several steps, each waiting for consensus to finalize it, then waits until all four nodes
/// hold it. An upper bound only.
const DEV_NETWORK_STARTUP: Duration = Duration::from_secs(180);

/// API ports come from `API_PORTS_FROM..P2P_PORTS_FROM` and p2p ports from as many ports
/// above, in slots of `SLOT_PORTS`: two ranges that never overlap, both below Linux's
/// ephemeral ports (32768 on), which outgoing connections could take between check and bind.
const API_PORTS_FROM: u16 = 20_000;
const P2P_PORTS_FROM: u16 = 26_000;
const SLOT_PORTS: u16 = 8;
const PORT_SLOTS: u16 = (P2P_PORTS_FROM - API_PORTS_FROM) / SLOT_PORTS;

/// Slots tried before giving up.
const MAX_PORT_ATTEMPTS: u16 = 200;

/// A block of `count` consecutive free loopback ports for the API and another for p2p.
fn free_ports(count: u16) -> (u16, u16) {
    assert!(count <= SLOT_PORTS, "{count} ports do not fit a slot");
    // The process id keeps test processes apart (nextest runs each test in its own); the
    // counter keeps the tests of one process apart (cargo test runs them on threads, all
    // with the same process id).
    static NEXT_SLOT: AtomicU16 = AtomicU16::new(0);
    let process_slot = u16::try_from(std::process::id() % u32::from(PORT_SLOTS)).expect("below PORT_SLOTS");
    for _ in 0..MAX_PORT_ATTEMPTS {
        let slot = (process_slot + NEXT_SLOT.fetch_add(1, Ordering::Relaxed) % PORT_SLOTS) % PORT_SLOTS;
        let (api, p2p) = (API_PORTS_FROM + slot * SLOT_PORTS, P2P_PORTS_FROM + slot * SLOT_PORTS);
        let free =
            |base: u16| (0..count).all(|offset| TcpListener::bind(("127.0.0.1", base + offset)).is_ok());
        if free(api) && free(p2p) {
            return (api, p2p);
        }
    }
    panic!("no free block of loopback ports in {MAX_PORT_ATTEMPTS} slots");
}

struct Cluster {
    data_dir: tempfile::TempDir,
    api_base: u16,
    p2p_base: u16,
    /// The height `medledger dev` announced in its banner: the demo's last block.
    demo_height: u64,
    processes: Vec<Option<Process>>,
}

impl Cluster {
    fn config(&self, index: usize) -> PathBuf {
        let dir = if index == 0 { self.data_dir.path().to_owned() } else { self.node_dir(index) };
        dir.join("node.toml")
    }

    fn node_dir(&self, index: usize) -> PathBuf {
        if index == 0 {
            self.data_dir.path().to_owned()
        } else {
            self.data_dir.path().join(format!("node-{index}"))
        }
    }

    fn url(&self, index: usize) -> String {
        format!("http://127.0.0.1:{}", self.api_base + u16::try_from(index).expect("few nodes"))
    }

    fn start(&mut self, index: usize) {
        let config = self.config(index);
        let process = Process::spawn(&["node", "--config", path_str(&config)]);
        process
            .wait_for_line(STARTUP, |line| line.contains("listening on http://"))
            .unwrap_or_else(|| panic!("node {index} starts"));
        self.processes[index] = Some(process);
    }

    /// Starts every node and waits until each holds the demo's last block: a node restarted
    /// behind the others catches up from its peers, and until then it knows nothing of the
    /// demo's members or records.
    fn start_all(&mut self) {
        for index in 0..NODES {
            self.start(index);
        }
        for index in 0..NODES {
            wait_until_height(&self.url(index), self.demo_height);
        }
    }

    fn key(&self, org: &str, member: &str) -> SigningKey {
        SigningKey::load(&self.data_dir.path().join("keys").join(org).join(format!("{member}.pem")))
            .expect("demo key")
    }
}

/// Creates the 4-validator demo network with `medledger dev --nodes 4`, then stops it.
fn create_network() -> Cluster {
    let data_dir = tempfile::tempdir().expect("temp dir");
    // One more port of each kind for a node that joins later.
    let (api_base, p2p_base) = free_ports(u16::try_from(NODES + 1).expect("few nodes"));
    let mut dev = Process::spawn(&[
        "dev",
        "--nodes",
        "4",
        "--data-dir",
        path_str(data_dir.path()),
        "--listen",
        &format!("127.0.0.1:{api_base}"),
        "--p2p-port",
        &p2p_base.to_string(),
        "--block-interval-ms",
        "50",
    ]);
    let running = dev
        .wait_for_line(DEV_NETWORK_STARTUP, |line| line.contains("is running (height"))
        .expect("the dev network starts");
    let demo_height = running
        .rsplit("(height ")
        .next()
        .and_then(|rest| rest.split(')').next())
        .and_then(|height| height.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("the banner names the height: {running}"));
    dev.wait_for_line(STARTUP, |line| line.contains("Press Ctrl-C")).expect("the dev banner ends");
    dev.stop_cleanly("the dev network");
    let cluster =
        Cluster { data_dir, api_base, p2p_base, demo_height, processes: (0..NODES).map(|_| None).collect() };
    // The banner names every node's API: each must hold the demo by then, not only the first.
    for index in 0..NODES {
        let stored = stored_height(&cluster.node_dir(index));
        assert!(
            stored >= demo_height,
            "node {index} held height {stored} when the dev banner announced height {demo_height}"
        );
    }
    cluster
}

/// The height of the last block in the stopped node's data directory, read with the CLI.
fn stored_height(dir: &Path) -> u64 {
    let output = run(&["--data-dir", path_str(dir), "block", "show"]);
    assert!(output.status.success(), "block show: {}", String::from_utf8_lossy(&output.stderr));
    let latest: Value = serde_json::from_slice(&output.stdout).expect("JSON output");
    latest["block"]["header"]["height"].as_u64().unwrap_or_else(|| panic!("a height: {latest}"))
}

fn anchor(key: &SigningKey, nonce: u64) -> Transaction {
    let label = format!("lab-report/{nonce}");
    TxBody {
        chain_id: ChainId::new("medledger-dev").expect("chain id"),
        signer: key.public_key(),
        nonce,
        payload: Payload::Anchor {
            label: Label::new(label.clone()).expect("label"),
            digest: sha256(label.as_bytes()),
        },
    }
    .sign(key)
}

fn next_nonce(url: &str, key: &SigningKey) -> u64 {
    get(&format!("{url}/v1/accounts/{}", key.public_key())).json()["pending_nonce"].as_u64().expect("nonce")
}

#[test]
fn four_processes_survive_a_sigkill_and_every_accepted_transaction_is_final_everywhere() {
    let mut cluster = create_network();
    cluster.start_all();
    // Each signer always sends to the same live node (never the victim), so no accepted
    // transaction can be lost with a killed mempool.
    let signers: Vec<(SigningKey, usize)> = [
        ("lakeside-general-hospital", "dr-sam-okafor", 0),
        ("st-mary-hospital", "nurse-tom-becker", 1),
        ("northside-lab", "tech-lee-park", 2),
        ("helix-pharma", "qp-omar-haddad", 0),
    ]
    .into_iter()
    .map(|(org, member, node)| (cluster.key(org, member), node))
    .collect();
    let mut nonces: Vec<u64> =
        signers.iter().map(|(key, node)| next_nonce(&cluster.url(*node), key)).collect();
    let mut accepted: BTreeMap<String, usize> = BTreeMap::new();
    let load_deadline = Instant::now() + LOAD_WITHIN;
    // The height the others had when the victim was killed, once it was.
    let mut killed_at: Option<u64> = None;
    let mut restarted = false;
    let mut round = 0usize;
    while accepted.len() < LOAD_TXS || !restarted {
        assert!(
            Instant::now() < load_deadline,
            "within {LOAD_WITHIN:?} the nodes accepted {} of {LOAD_TXS} transactions (victim killed at \
             height {killed_at:?}, restarted: {restarted}, node 0 at height {})",
            accepted.len(),
            finalized_height(&cluster.url(0))
        );
        if killed_at.is_none() && accepted.len() >= KILL_AFTER_TXS {
            cluster.processes[VICTIM].take().expect("running").kill();
            killed_at = Some(finalized_height(&cluster.url(0)));
        }
        if let Some(height) = killed_at
            && !restarted
            && accepted.len() >= RESTART_AFTER_TXS
            && finalized_height(&cluster.url(0)) > height
        {
            cluster.start(VICTIM);
            restarted = true;
        }
        let signer = round % signers.len();
        round += 1;
        let (key, node) = &signers[signer];
        let batch: Vec<Transaction> =
            (0..BATCH_TXS as u64).map(|offset| anchor(key, nonces[signer] + offset)).collect();
        let body = json!({ "transactions": batch });
        let reply = post_json(&format!("{}/v1/txs/batch", cluster.url(*node)), &body);
        assert_eq!(reply.status, 202, "batch accepted: {}", String::from_utf8_lossy(&reply.body));
        let results = reply.json();
        for (tx, result) in batch.iter().zip(results["results"].as_array().expect("results")) {
            if result["result"] == "accepted" {
                accepted.insert(tx.id().to_string(), *node);
                nonces[signer] += 1;
            }
        }
        std::thread::sleep(BATCH_EVERY);
    }

    // Each node is checked for every accepted transaction, the four in parallel.
    let deadline = Instant::now() + SETTLE_WITHIN;
    std::thread::scope(|scope| {
        for index in 0..NODES {
            let url = cluster.url(index);
            let accepted = &accepted;
            scope.spawn(move || {
                for id in accepted.keys() {
                    while committed_height(&url, id).is_none() {
                        assert!(
                            Instant::now() < deadline,
                            "transaction {id} is not final on node {index} (at height {})",
                            finalized_height(&url)
                        );
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            });
        }
    });
    let statuses: Vec<Value> =
        (0..NODES).map(|index| get(&format!("{}/v1/status", cluster.url(index))).json()).collect();
    for status in &statuses {
        assert_eq!(status["peers"].as_array().expect("peers").len(), NODES - 1, "{status}");
        assert_eq!(status["finalized_height"], status["height"]);
    }
    for index in 0..NODES {
        let mut process = cluster.processes[index].take().expect("running");
        process.stop_cleanly(&format!("node {index}"));
        verify(&cluster.node_dir(index), index);
    }
}

fn verify(dir: &Path, index: usize) {
    let output = run(&["--data-dir", path_str(dir), "verify"]);
    assert!(
        output.status.success(),
        "medledger verify on node {index}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs `medledger --node URL args…`, asserts success and parses the JSON it prints.
fn cli_json(url: &str, args: &[&str]) -> Value {
    let output = run(&[&["--node", url], args].concat());
    assert!(output.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("JSON output")
}

/// Runs a write command `medledger --node URL args…`, waits until that node committed its
/// transaction, and returns the transaction id, its block height and its receipt. The wait is
/// the test's own, on the node's answer to `GET /v1/txs/{id}`, not `--wait` (whose server-side
/// bound a loaded machine can exceed while consensus is slow).
fn submit(url: &str, args: &[&str]) -> (String, u64, Value) {
    let answer = cli_json(url, args);
    let tx_id = answer["tx_id"].as_str().unwrap_or_else(|| panic!("{args:?} printed no tx id: {answer}"));
    let (height, receipt) = support::wait_until_committed(url, tx_id);
    (tx_id.to_owned(), height, receipt)
}

fn applied(what: &str, receipt: &Value) {
    assert_eq!(receipt["status"], "applied", "{what}: {receipt}");
}

fn status(url: &str) -> Value {
    get(&format!("{url}/v1/status")).json()
}

fn proposer(url: &str, height: u64) -> String {
    let block = get(&format!("{url}/v1/blocks/{height}")).json();
    block["block"]["header"]["proposer"].as_str().expect("proposer").to_owned()
}

/// Waits up to [`SETTLE_WITHIN`] until `probe` answers `Ok`; `Err` says what it saw instead.
fn wait_until(what: &str, probe: impl FnMut() -> Result<(), String>) {
    support::wait_for(what, SETTLE_WITHIN, probe);
}

/// `Ok` when `holds`, else what was seen.
fn seen(holds: bool, seen: impl FnOnce() -> String) -> Result<(), String> {
    if holds { Ok(()) } else { Err(seen()) }
}

#[test]
fn a_new_organisations_node_follows_then_validates_from_its_epoch() {
    let mut cluster = create_network();
    cluster.start_all();
    let url = cluster.url(0);
    let genesis_hash = status(&url)["genesis_hash"].as_str().expect("hash").to_owned();

    // The joining organisation sets up its node from the consortium's genesis file.
    let joiner_dir = cluster.data_dir.path().join("joiner");
    let offset = u16::try_from(NODES).expect("few");
    let (joiner_api, joiner_p2p) = (
        format!("127.0.0.1:{}", cluster.api_base + offset),
        format!("127.0.0.1:{}", cluster.p2p_base + offset),
    );
    let genesis = cluster.data_dir.path().join("genesis.json");
    let init = run(&[
        "init",
        "--data-dir",
        path_str(&joiner_dir),
        "--genesis",
        path_str(&genesis),
        "--expect-genesis-hash",
        &genesis_hash,
        "--listen",
        &joiner_api,
        "--p2p-listen",
        &joiner_p2p,
    ]);
    assert!(init.status.success(), "init: {}", String::from_utf8_lossy(&init.stderr));
    let joiner_key = SigningKey::load(&joiner_dir.join("keys").join("node.pem")).expect("node key");
    let joiner_node_key = joiner_key.public_key().to_string();
    let is_validator = |url: &str| {
        status(url)["validators"].as_array().expect("validators").iter().any(|key| key == &joiner_node_key)
    };

    // Governance admits its organisation with that node: 7 of the 9 organisations approve.
    // Until then the consortium's nodes refuse the joiner's connections.
    let admin =
        |org: &str| path_str(&cluster.data_dir.path().join("keys").join(org).join("admin.pem")).to_owned();
    let joiner_admin = joiner_dir.join("admin.pem");
    let generated = run(&["keys", "gen", "--out", path_str(&joiner_admin)]);
    assert!(generated.status.success());
    let joiner_admin_key = String::from_utf8_lossy(&generated.stdout).trim().to_owned();
    let (id, proposed_at, receipt) = submit(
        &url,
        &[
            "org",
            "propose",
            "--key",
            &admin("st-mary-hospital"),
            "admit",
            "--id",
            "harbor-lab",
            "--kind",
            "laboratory",
            "--admin",
            &joiner_admin_key,
            "--node-key",
            &joiner_node_key,
            "--node-address",
            &joiner_p2p,
        ],
    );
    applied("the admission proposal", &receipt);
    // Votes go through another node, which must hold the proposal's block first.
    wait_until_height(&cluster.url(1), proposed_at);
    let mut last_vote_at = proposed_at;
    for org in [
        "lakeside-general-hospital",
        "northside-lab",
        "city-pharmacy",
        "helix-pharma",
        "medroute-distribution",
        "national-medicines-agency",
    ] {
        let (_, voted_at, receipt) =
            submit(&cluster.url(1), &["org", "vote", &id, "--approve", "--key", &admin(org)]);
        applied(&format!("{org}'s vote"), &receipt);
        last_vote_at = last_vote_at.max(voted_at);
    }
    assert!(!is_validator(&url), "not a validator before the admission executes");
    // A third node executes it: it must hold every vote, and St Mary's proposal (whose nonce
    // it reads for the execution).
    wait_until_height(&cluster.url(2), last_vote_at);
    let (_, executed_at, receipt) =
        submit(&cluster.url(2), &["org", "execute", &id, "--key", &admin("st-mary-hospital")]);
    applied("the admission's execution", &receipt);

    // The joiner starts from genesis, catches up from its peers while it only follows, and
    // from the epoch the change starts it is a validator and proposes blocks.
    let mut joiner = Process::spawn(&["node", "--config", path_str(&joiner_dir.join("node.toml"))]);
    joiner.wait_for_line(STARTUP, |line| line.contains("listening on http://")).expect("the joiner starts");
    let joiner_url = format!("http://{joiner_api}");
    wait_until(&format!("the joiner catches up past the admission at height {executed_at}"), || {
        let height = finalized_height(&joiner_url);
        seen(height >= executed_at, || format!("the joiner at height {height}"))
    });
    wait_until("the joiner is a validator", || {
        let (on_node, on_joiner) = (is_validator(&url), is_validator(&joiner_url));
        seen(on_node && on_joiner, || format!("a validator on node 0: {on_node}, on the joiner: {on_joiner}"))
    });
    let mut checked = executed_at;
    // An idle network makes a block only per heartbeat: keep transactions coming so the
    // joiner gets its turns to propose.
    let physician = cluster.key("st-mary-hospital", "dr-ana-ruiz");
    let mut nonce = next_nonce(&url, &physician);
    wait_until("the joiner proposes a final block", || {
        let tx = anchor(&physician, nonce);
        if post_json(&format!("{url}/v1/txs"), &serde_json::to_value(&tx).expect("JSON")).status == 202 {
            nonce += 1;
        }
        let head = finalized_height(&url);
        let proposed = (checked + 1..=head).any(|height| proposer(&url, height) == joiner_node_key);
        checked = head;
        seen(proposed, || format!("no block up to height {head} proposed by the joiner"))
    });

    // Every node, the joiner included, agrees on the chain and sees four connected peers.
    let common = (0..NODES).map(|index| finalized_height(&cluster.url(index))).min().expect("nodes");
    wait_until_height(&joiner_url, common);
    let reference = get(&format!("{url}/v1/blocks/{common}")).json()["hash"].clone();
    for node in (0..NODES).map(|index| cluster.url(index)).chain([joiner_url.clone()]) {
        assert_eq!(get(&format!("{node}/v1/blocks/{common}")).json()["hash"], reference, "{node} agrees");
    }
    wait_until("the joiner sees its four peers", || {
        let connected = connected_peers(&joiner_url);
        seen(connected.len() == NODES, || format!("connected peers {connected:?}"))
    });
    joiner.stop_cleanly("the joiner");
    verify(&joiner_dir, NODES);
    for index in 0..NODES {
        let mut process = cluster.processes[index].take().expect("running");
        process.stop_cleanly(&format!("node {index}"));
        verify(&cluster.node_dir(index), index);
    }
}

/// The node keys of the peers the node at `url` heard from recently.
fn connected_peers(url: &str) -> Vec<String> {
    status(url)["peers"]
        .as_array()
        .expect("peers")
        .iter()
        .filter(|peer| peer["connected"] == true)
        .map(|peer| peer["node_key"].as_str().expect("a node key").to_owned())
        .collect()
}

/// A bearer session for a demo member at node `index`.
fn bearer_token(cluster: &Cluster, index: usize, org: &str, member: &str) -> String {
    let key = cluster.data_dir.path().join("keys").join(org).join(format!("{member}.pem"));
    let output = run(&["--node", &cluster.url(index), "session", "--key", path_str(&key)]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("utf-8").trim().to_owned()
}

fn fhir_get(url: &str, token: &str) -> support::Reply {
    let request = ureq::http::Request::builder()
        .uri(url)
        .header("authorization", format!("Bearer {token}"))
        .body(Vec::new())
        .expect("a valid request");
    support::send(request)
}

#[test]
fn a_clinician_reads_another_organisations_record_through_their_own_node() {
    let mut cluster = create_network();
    // Lakeside's node must hold the blocks that enrol Dr Okafor and record the referral.
    cluster.start_all();
    let st_mary = bearer_token(&cluster, 0, "st-mary-hospital", "dr-ana-ruiz");
    let lakeside = bearer_token(&cluster, 1, "lakeside-general-hospital", "dr-sam-okafor");
    let patients: Vec<String> =
        fhir_get(&format!("{}/fhir/Patient", cluster.url(0)), &st_mary).json()["entry"]
            .as_array()
            .expect("the demo charts")
            .iter()
            .map(|entry| entry["resource"]["id"].as_str().expect("an id").to_owned())
            .collect();
    let patient_key = cluster.key("patient-link", "patient-1").public_key();
    let member = fhir_get(&format!("{}/v1/members/{patient_key}", cluster.url(0)), &st_mary).json();
    let referred = member["patient_id"].as_str().expect("patient-1's id").to_owned();

    // Lakeside's node fetches the chart from St Mary's node over the node-to-node channel,
    // checks it against the anchor on its own chain and decrypts it; it holds no copy.
    let held = fhir_get(&format!("{}/fhir/Patient/{referred}", cluster.url(0)), &st_mary).json();
    let st_mary_node = status(&cluster.url(0))["node_key"].as_str().expect("a node key").to_owned();
    wait_until("Lakeside's node hears from St Mary's node", || {
        let connected = connected_peers(&cluster.url(1));
        seen(connected.contains(&st_mary_node), || format!("connected peers {connected:?}"))
    });
    let url = format!("{}/fhir/Patient/{referred}", cluster.url(1));
    // Only an unreachable custodian (a 5xx) is worth asking again; any other answer is final.
    let read =
        support::wait_for("Lakeside's node fetches the chart from St Mary's node", SETTLE_WITHIN, || {
            let reply = fhir_get(&url, &lakeside);
            let body = String::from_utf8_lossy(&reply.body).into_owned();
            match reply.status {
                200 => Ok(reply.json()),
                502..=504 => Err(format!("{}: {body}", reply.status)),
                other => panic!("Lakeside's node answered {other}: {body}"),
            }
        });
    assert_eq!(read, held);

    // No referral, no read; and members ask their own organisation's node.
    for other in patients.iter().filter(|patient| **patient != referred) {
        let reply = fhir_get(&format!("{}/fhir/Patient/{other}", cluster.url(1)), &lakeside);
        assert_eq!(reply.status, 403, "{}", String::from_utf8_lossy(&reply.body));
    }
    let st_mary_at_lakeside = bearer_token(&cluster, 1, "st-mary-hospital", "dr-ana-ruiz");
    let reply = fhir_get(&url, &st_mary_at_lakeside);
    assert_eq!(reply.status, 403, "{}", String::from_utf8_lossy(&reply.body));

    let mut lakeside_node = cluster.processes[1].take().expect("running");
    lakeside_node.stop_cleanly("Lakeside's node");
    assert!(vault_is_empty(&cluster, 1), "the reading node stored nothing");
}

/// Whether node `index`'s vault holds no record versions.
fn vault_is_empty(cluster: &Cluster, index: usize) -> bool {
    use redb::ReadableDatabase as _;
    let db = redb::Database::open(cluster.node_dir(index).join("vault.redb")).expect("the vault database");
    let read = db.begin_read().expect("a read transaction");
    let table: redb::TableDefinition<'_, &[u8], &[u8]> = redb::TableDefinition::new("versions");
    match read.open_table(table) {
        Ok(versions) => redb::ReadableTableMetadata::len(&versions).expect("a count") == 0,
        Err(redb::TableError::TableDoesNotExist(_)) => true,
        Err(error) => panic!("vault table: {error}"),
    }
}

/// Runs `medledger --node URL args…` and returns its exit code and the JSON it printed.
fn cli_exit_and_json(url: &str, args: &[&str]) -> (Option<i32>, Value, String) {
    let output = run(&[&["--node", url], args].concat());
    let printed = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (output.status.code(), printed, String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn a_halted_chain_makes_wait_fail_with_its_own_exit_code_and_the_status_says_why() {
    let mut cluster = create_network();
    let keys = cluster.data_dir.path().join("keys");
    let physician = keys.join("st-mary-hospital").join("dr-ana-ruiz.pem");
    let physician = path_str(&physician);

    // Alone, a node has heard from no peer: not in sync, and each peer's address is refused.
    cluster.start(0);
    let url = cluster.url(0);
    let alone = status(&url);
    assert_eq!(alone["syncing"], true, "{alone}");
    assert_eq!(alone["network_finalized_height"], Value::Null, "{alone}");
    wait_until("a silent peer's last error names its refused address", || {
        let peers = status(&url)["peers"].clone();
        let found = peers.as_array().expect("peers").iter().any(|peer| {
            peer["connected"] == false
                && peer["last_error"].as_str().is_some_and(|error| {
                    error.contains("connection refused")
                        && error.contains(peer["address"].as_str().expect("address"))
                })
        });
        seen(found, || format!("peers {peers}"))
    });

    // Two of four: no quorum, no block. `--wait` gives up with exit code 4 and prints the
    // status it last saw, in the one documented shape.
    cluster.start(1);
    let submit = ["tx", "submit", "--key", physician, "--wait", "--timeout", "3", "anchor"];
    let (code, pending, stderr) = cli_exit_and_json(
        &url,
        &[&submit[..], &["--label", "halted/1", "--digest", &"ab".repeat(32)]].concat(),
    );
    assert_eq!(code, Some(4), "a wait that ends without a block exits 4: {stderr}");
    assert!(stderr.contains("not in a block"), "{stderr}");
    assert_eq!(pending["status"], "pending", "{pending}");
    for field in ["height", "index", "receipt"] {
        assert_eq!(pending[field], Value::Null, "{field} of a pending transaction: {pending}");
    }
    let id = pending["tx_id"].as_str().expect("tx id").to_owned();
    let shown = cli_json(&url, &["tx", "show", &id]);
    assert_eq!((shown["status"].as_str(), shown["tx_id"].as_str()), (Some("pending"), Some(id.as_str())));

    // A third node: the chain resumes and the transaction is committed, in the same shape.
    cluster.start(2);
    support::wait_until_committed(&url, &id);
    let committed = cli_json(&url, &["tx", "show", &id]);
    assert!(committed["height"].as_u64().is_some() && committed["index"].as_u64().is_some(), "{committed}");
    assert_eq!(committed["receipt"]["status"], "applied", "{committed}");
    wait_until("the node is in sync with its peers", || {
        let now = status(&url);
        seen(now["syncing"] == false, || format!("status {now}"))
    });

    // The same label again is refused in its block: exit code 5, status "rejected".
    let (code, rejected, stderr) = cli_exit_and_json(
        &url,
        &[&submit[..], &["--label", "halted/1", "--digest", &"ab".repeat(32)]].concat(),
    );
    assert_eq!(code, Some(5), "a transaction its block refused exits 5: {stderr}");
    assert_eq!(rejected["status"], "rejected", "{rejected}");
    assert_eq!(rejected["receipt"]["reason"], "anchor_exists", "{rejected}");

    let unknown = cli_json(&url, &["tx", "show", &"00".repeat(32)]);
    assert_eq!(unknown["status"], "unknown", "{unknown}");
    for index in 0..3 {
        cluster.processes[index].take().expect("running").stop_cleanly(&format!("node {index}"));
    }
}

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
use std::time::{Duration, Instant};

use medledger_crypto::{SigningKey, sha256};
use medledger_types::{ChainId, Label, Payload, Transaction, TxBody};
use serde_json::{Value, json};
use support::{Process, get, path_str, post_json, run};

const NODES: usize = 4;

/// The node that is killed and restarted.
const VICTIM: usize = 3;

/// Client load: batches of this many transactions, one batch per [`BATCH_EVERY`].
const BATCH_TXS: usize = 20;
const BATCH_EVERY: Duration = Duration::from_millis(100);
const LOAD_FOR: Duration = Duration::from_secs(12);
const KILL_AT: Duration = Duration::from_secs(3);
const RESTART_AT: Duration = Duration::from_secs(6);

/// How long every node has to make the whole load final after it ends.
const SETTLE_WITHIN: Duration = Duration::from_secs(90);

const STARTUP: Duration = Duration::from_secs(60);

/// A block of `count` consecutive free loopback ports for the API and another for p2p.
fn free_ports(count: u16) -> (u16, u16) {
    let seed = u64::from(std::process::id()) ^ u64::from(Instant::now().elapsed().subsec_nanos());
    for attempt in 0..200u64 {
        let api = 20_000 + u16::try_from((seed + attempt * 7_919) % 20_000).expect("fits");
        let p2p = api + 1_000;
        let free =
            |base: u16| (0..count).all(|offset| TcpListener::bind(("127.0.0.1", base + offset)).is_ok());
        if free(api) && free(p2p) {
            return (api, p2p);
        }
    }
    panic!("no free block of loopback ports");
}

struct Cluster {
    data_dir: tempfile::TempDir,
    api_base: u16,
    p2p_base: u16,
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
    dev.wait_for_line(STARTUP, |line| line.contains("Press Ctrl-C")).expect("the dev network starts");
    dev.stop_cleanly("the dev network");
    Cluster { data_dir, api_base, p2p_base, processes: (0..NODES).map(|_| None).collect() }
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

fn committed_on(url: &str, id: &str) -> bool {
    let reply = get(&format!("{url}/v1/txs/{id}"));
    reply.status == 200 && reply.json()["status"] == "committed"
}

#[test]
fn four_processes_survive_a_sigkill_and_every_accepted_transaction_is_final_everywhere() {
    let mut cluster = create_network();
    for index in 0..NODES {
        cluster.start(index);
    }
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
    let started = Instant::now();
    let (mut killed, mut restarted) = (false, false);
    let mut round = 0usize;
    while started.elapsed() < LOAD_FOR {
        if !killed && started.elapsed() >= KILL_AT {
            cluster.processes[VICTIM].take().expect("running").kill();
            killed = true;
        }
        if killed && !restarted && started.elapsed() >= RESTART_AT {
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
    assert!(restarted, "the victim was restarted during the load");
    assert!(accepted.len() >= 500, "the client got {} transactions accepted", accepted.len());

    // Each node is checked for every accepted transaction, the four in parallel.
    let deadline = Instant::now() + SETTLE_WITHIN;
    std::thread::scope(|scope| {
        for index in 0..NODES {
            let url = cluster.url(index);
            let accepted = &accepted;
            scope.spawn(move || {
                for id in accepted.keys() {
                    while !committed_on(&url, id) {
                        assert!(Instant::now() < deadline, "transaction {id} is not final on node {index}");
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

fn applied(answer: &Value) {
    assert_eq!(answer["receipt"]["status"], "applied", "{answer}");
}

fn status(url: &str) -> Value {
    get(&format!("{url}/v1/status")).json()
}

fn proposer(url: &str, height: u64) -> String {
    let block = get(&format!("{url}/v1/blocks/{height}")).json();
    block["block"]["header"]["proposer"].as_str().expect("proposer").to_owned()
}

/// Waits up to [`SETTLE_WITHIN`] for `done`.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + SETTLE_WITHIN;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_new_organisations_node_follows_then_validates_from_its_epoch() {
    let mut cluster = create_network();
    for index in 0..NODES {
        cluster.start(index);
    }
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
    let proposal = cli_json(
        &url,
        &[
            "org",
            "propose",
            "--key",
            &admin("st-mary-hospital"),
            "--wait",
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
    applied(&proposal);
    let id = proposal["tx_id"].as_str().expect("proposal id").to_owned();
    for org in [
        "lakeside-general-hospital",
        "northside-lab",
        "city-pharmacy",
        "helix-pharma",
        "medroute-distribution",
        "national-medicines-agency",
    ] {
        applied(&cli_json(
            &cluster.url(1),
            &["org", "vote", &id, "--approve", "--key", &admin(org), "--wait"],
        ));
    }
    assert!(!is_validator(&url), "not a validator before the admission executes");
    let executed =
        cli_json(&cluster.url(2), &["org", "execute", &id, "--key", &admin("st-mary-hospital"), "--wait"]);
    applied(&executed);
    let execution = executed["tx_id"].as_str().expect("execution id");
    // Ask the node that waited for the execution to be final: the others may still be
    // committing that block.
    let executed_at = get(&format!("{}/v1/txs/{execution}", cluster.url(2))).json()["status"]["height"]
        .as_u64()
        .expect("its block");

    // The joiner starts from genesis, catches up from its peers while it only follows, and
    // from the epoch the change starts it is a validator and proposes blocks.
    let mut joiner = Process::spawn(&["node", "--config", path_str(&joiner_dir.join("node.toml"))]);
    joiner.wait_for_line(STARTUP, |line| line.contains("listening on http://")).expect("the joiner starts");
    let joiner_url = format!("http://{joiner_api}");
    wait_until("the joiner catches up past the admission", || {
        status(&joiner_url)["finalized_height"].as_u64() >= Some(executed_at)
    });
    wait_until("the joiner is a validator", || is_validator(&url) && is_validator(&joiner_url));
    let mut checked = executed_at;
    wait_until("the joiner proposes a final block", || {
        let head = status(&url)["finalized_height"].as_u64().expect("height");
        let proposed = (checked + 1..=head).any(|height| proposer(&url, height) == joiner_node_key);
        checked = head;
        proposed
    });

    // Every node, the joiner included, agrees on the chain and sees four connected peers.
    let common = (0..NODES)
        .map(|index| status(&cluster.url(index))["finalized_height"].as_u64().expect("h"))
        .min()
        .expect("nodes");
    wait_until("the joiner reaches the common height", || {
        status(&joiner_url)["finalized_height"].as_u64() >= Some(common)
    });
    let reference = get(&format!("{url}/v1/blocks/{common}")).json()["hash"].clone();
    for node in (0..NODES).map(|index| cluster.url(index)).chain([joiner_url.clone()]) {
        assert_eq!(get(&format!("{node}/v1/blocks/{common}")).json()["hash"], reference, "{node} agrees");
    }
    wait_until("the joiner sees its four peers", || {
        status(&joiner_url)["peers"]
            .as_array()
            .expect("peers")
            .iter()
            .filter(|peer| peer["connected"] == true)
            .count()
            == NODES
    });
    joiner.stop_cleanly("the joiner");
    verify(&joiner_dir, NODES);
    for index in 0..NODES {
        let mut process = cluster.processes[index].take().expect("running");
        process.stop_cleanly(&format!("node {index}"));
        verify(&cluster.node_dir(index), index);
    }
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
    for index in 0..NODES {
        cluster.start(index);
    }
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
    let url = format!("{}/fhir/Patient/{referred}", cluster.url(1));
    wait_until("Lakeside's node reaches St Mary's", || fhir_get(&url, &lakeside).status == 200);
    assert_eq!(fhir_get(&url, &lakeside).json(), held);

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
        status(&url)["peers"].as_array().expect("peers").iter().any(|peer| {
            peer["connected"] == false
                && peer["last_error"].as_str().is_some_and(|error| {
                    error.contains("connection refused")
                        && error.contains(peer["address"].as_str().expect("address"))
                })
        })
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
    wait_until("the halted transaction is committed", || committed_on(&url, &id));
    let committed = cli_json(&url, &["tx", "show", &id]);
    assert!(committed["height"].as_u64().is_some() && committed["index"].as_u64().is_some(), "{committed}");
    assert_eq!(committed["receipt"]["status"], "applied", "{committed}");
    wait_until("the node is in sync with its peers", || status(&url)["syncing"] == false);

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

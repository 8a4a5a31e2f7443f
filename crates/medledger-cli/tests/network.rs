//! Four real `medledger node` processes on loopback run consensus under client load; one is
//! killed with SIGKILL and restarted mid-run. Every transaction a node accepted ends up final
//! on all four, and `medledger verify` passes on every data directory.

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
    let (api_base, p2p_base) = free_ports(u16::try_from(NODES).expect("few nodes"));
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
    assert!(dev.terminate().success(), "the dev network stops cleanly");
    Cluster { data_dir, api_base, processes: (0..NODES).map(|_| None).collect() }
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
    reply.status == 200 && reply.json()["status"]["status"] == "committed"
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
        assert!(process.terminate().success(), "node {index} stops cleanly");
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

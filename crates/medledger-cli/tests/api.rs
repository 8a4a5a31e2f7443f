//! The HTTP API of a real `medledger dev` process: the happy path and every kind of bad input.

mod support;

use medledger_crypto::merkle::{ConsistencyProof, InclusionProof, leaf_hash};
use medledger_crypto::{Digest, SigningKey, sha256};
use medledger_types::limits::MAX_TX_BYTES;
use medledger_types::{ChainId, Decode, Encode, Label, Payload, Transaction, TxBody, TxId};
use serde_json::{Value, json};
use support::{DevNode, get, get_bytes, ledger_fingerprint, post, post_json};

/// The largest `/v1/txs` body the API reads: a transaction's largest canonical size twice
/// (hex), plus room for the field names.
const MAX_TX_REQUEST_BYTES: usize = 2 * MAX_TX_BYTES + 4 * 1024;

fn next_nonce(node: &DevNode, key: &SigningKey) -> u64 {
    get(&format!("{}/v1/accounts/{}", node.url, key.public_key())).json()["pending_nonce"]
        .as_u64()
        .expect("pending nonce")
}

fn anchor_tx(key: &SigningKey, nonce: u64, label: &str) -> Transaction {
    TxBody {
        chain_id: ChainId::new("medledger-dev").expect("chain id"),
        signer: key.public_key(),
        nonce,
        payload: Payload::Anchor {
            label: Label::new(label).expect("label"),
            digest: sha256(label.as_bytes()),
        },
    }
    .sign(key)
}

fn to_json(tx: &Transaction) -> Value {
    serde_json::to_value(tx).expect("transactions serialise")
}

#[test]
fn status_health_and_genesis_describe_the_dev_chain() {
    let node = DevNode::start();
    let status = get(&format!("{}/v1/status", node.url)).json();
    assert_eq!(status["chain_id"], "medledger-dev");
    // Four blocks of identities and governance, then the demo charts' anchors (one block or
    // more, as the producer cuts them), then the patients' enrolments and the referral.
    let height = status["height"].as_u64().expect("a height");
    assert!(height >= 6, "the demo loads at least six blocks, got {height}");
    assert_eq!(status["finalized_height"], status["height"]);
    let latest = get(&format!("{}/v1/blocks/latest", node.url)).json();
    assert_eq!(status["last_block_hash"], latest["hash"]);
    assert_eq!(status["state_root"], latest["block"]["header"]["state_root"]);
    assert_eq!(get(&format!("{}/healthz", node.url)).json()["status"], "ok");
    let genesis = get(&format!("{}/v1/genesis", node.url)).json();
    assert_eq!(genesis["hash"], status["genesis_hash"]);
    let canonical = get_bytes(&format!("{}/v1/genesis", node.url));
    assert_eq!(canonical.content_type, "application/octet-stream");
    assert_eq!(
        medledger_types::Genesis::from_canonical(&canonical.body).expect("canonical genesis").hash().to_hex(),
        status["genesis_hash"].as_str().expect("hash")
    );
}

#[test]
fn a_submitted_transaction_is_committed_and_provable() {
    let node = DevNode::start();
    let key = node.key("northside-lab", "tech-lee-park");
    let tx = anchor_tx(&key, next_nonce(&node, &key), "lab-report/2026/009001");
    let reply = post_json(&format!("{}/v1/txs?wait=true", node.url), &to_json(&tx));
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    let answer = reply.json();
    assert_eq!(answer["tx_id"], tx.id().to_string());
    assert_eq!(answer["status"], "committed");
    assert_eq!(answer["receipt"]["status"], "applied");
    let height = answer["height"].as_u64().expect("height");

    let shown = get(&format!("{}/v1/txs/{}", node.url, tx.id())).json();
    assert_eq!(shown["transaction"], to_json(&tx));
    let receipt = get(&format!("{}/v1/txs/{}/receipt", node.url, tx.id())).json();
    assert_eq!(receipt["height"], height);

    let by_height = get(&format!("{}/v1/blocks/{height}", node.url)).json();
    let hash = by_height["hash"].as_str().expect("hash").to_owned();
    assert_eq!(get(&format!("{}/v1/blocks/{hash}", node.url)).json(), by_height);
    let raw = get_bytes(&format!("{}/v1/blocks/{height}", node.url));
    let block =
        <medledger_types::Block as medledger_types::Decode>::decode(&raw.body).expect("canonical block");
    assert_eq!(block.hash().to_hex(), hash);

    let proof_view = get(&format!("{}/v1/txs/{}/proof", node.url, tx.id())).json();
    let proof: InclusionProof = serde_json::from_value(proof_view["proof"].clone()).expect("inclusion proof");
    let tx_root: Digest = serde_json::from_value(proof_view["tx_root"].clone()).expect("tx root");
    assert_eq!(tx_root, block.header.tx_root);
    assert_eq!(proof.verify(&leaf_hash(&tx.encode()), &tx_root), Ok(()));
    let other = anchor_tx(&key, 99, "lab-report/2026/other");
    assert!(proof.verify(&leaf_hash(&other.encode()), &tx_root).is_err(), "a proof proves only its own leaf");
}

#[test]
fn consistency_proofs_link_earlier_chains_to_later_headers() {
    let node = DevNode::start();
    let key = node.key("st-mary-hospital", "dr-ana-ruiz");
    for index in 0..3 {
        let tx = anchor_tx(&key, next_nonce(&node, &key), &format!("referral/2026/{index:06}"));
        assert_eq!(post_json(&format!("{}/v1/txs?wait=true", node.url), &to_json(&tx)).status, 200);
    }
    let height = get(&format!("{}/v1/status", node.url)).json()["height"].as_u64().expect("height");
    assert!(height >= 7);
    let answer = get(&format!("{}/v1/proofs/consistency?first=2&second={}", node.url, height - 1)).json();
    let proof: ConsistencyProof = serde_json::from_value(answer["proof"].clone()).expect("proof");
    let first_root: Digest = serde_json::from_value(answer["first_root"].clone()).expect("root");
    let second_root: Digest = serde_json::from_value(answer["second_root"].clone()).expect("root");
    assert_eq!(proof.verify(&first_root, &second_root), Ok(()));
    // The roots are the history roots committed in the headers that follow them.
    let header = |h: u64| get(&format!("{}/v1/blocks/{h}", node.url)).json()["block"]["header"].clone();
    assert_eq!(header(3)["history_root"], answer["first_root"]);
    assert_eq!(header(height)["history_root"], answer["second_root"]);
    assert!(proof.verify(&second_root, &first_root).is_err());
}

#[test]
fn canonical_bytes_are_accepted_too() {
    let node = DevNode::start();
    let key = node.key("city-pharmacy", "pharm-maria-lopez");
    let tx = anchor_tx(&key, next_nonce(&node, &key), "dispense-record/2026/000900");
    let reply = post(&format!("{}/v1/txs", node.url), "application/octet-stream", &tx.encode());
    assert_eq!(reply.status, 202);
    assert_eq!(reply.json()["tx_id"], tx.id().to_string());
}

#[test]
fn malformed_and_strict_json_is_rejected_and_changes_nothing() {
    let node = DevNode::start();
    let url = format!("{}/v1/txs", node.url);
    let before = ledger_fingerprint(&node.url);
    post(&url, "application/json", b"{\"body\":").assert_problem(400, "malformed-json");
    let key = node.key("northside-lab", "tech-lee-park");
    let mut value = to_json(&anchor_tx(&key, next_nonce(&node, &key), "lab-report/x"));
    value["extra"] = json!(1);
    post_json(&url, &value).assert_problem(400, "malformed-json");
    let mut nested = to_json(&anchor_tx(&key, next_nonce(&node, &key), "lab-report/y"));
    nested["body"]["payload"]["comment"] = json!("hello");
    post_json(&url, &nested).assert_problem(400, "malformed-json");
    post(&url, "text/plain", b"hello").assert_problem(415, "unsupported-media-type");
    // One byte over: the node has read the whole body when it refuses it, and closes the
    // connection cleanly. Had it left bytes unread it would reset the connection, and a client
    // still sending them (as on a loaded machine) would see a broken pipe, not the 413.
    post(&url, "application/json", &vec![b' '; MAX_TX_REQUEST_BYTES + 1])
        .assert_problem(413, "body-too-large");
    assert_eq!(ledger_fingerprint(&node.url), before);
}

#[test]
fn bad_signature_wrong_chain_unknown_signer_and_replays_are_rejected() {
    let node = DevNode::start();
    let url = format!("{}/v1/txs", node.url);
    let key = node.key("northside-lab", "tech-lee-park");
    let nonce = next_nonce(&node, &key);
    let before = ledger_fingerprint(&node.url);

    let mut forged = anchor_tx(&key, nonce, "lab-report/forged");
    forged.signature.0[10] ^= 0x01;
    post_json(&url, &to_json(&forged)).assert_problem(422, "bad-signature");

    let mut other_chain = anchor_tx(&key, nonce, "lab-report/elsewhere").body;
    other_chain.chain_id = ChainId::new("another-chain").expect("chain id");
    post_json(&url, &to_json(&other_chain.sign(&key))).assert_problem(422, "wrong-chain");

    let stranger = SigningKey::from_seed(&[42; 32]);
    post_json(&url, &to_json(&anchor_tx(&stranger, 0, "lab-report/stranger")))
        .assert_problem(403, "unknown-signer");

    // The lab's demo anchor used nonce 0: a new transaction with that nonce is a replay.
    post_json(&url, &to_json(&anchor_tx(&key, 0, "lab-report/replay"))).assert_problem(409, "nonce-replayed");
    assert_eq!(ledger_fingerprint(&node.url), before);

    // Resubmitting a committed transaction says where it is.
    let tx = anchor_tx(&key, nonce, "lab-report/2026/once");
    assert_eq!(post_json(&format!("{url}?wait=true"), &to_json(&tx)).status, 200);
    let after_commit = ledger_fingerprint(&node.url);
    post_json(&url, &to_json(&tx)).assert_problem(409, "already-committed");
    assert_eq!(ledger_fingerprint(&node.url), after_commit);
}

#[test]
fn non_canonical_and_truncated_bytes_are_rejected() {
    let node = DevNode::start();
    let url = format!("{}/v1/txs", node.url);
    let key = node.key("northside-lab", "tech-lee-park");
    let before = ledger_fingerprint(&node.url);
    let bytes = anchor_tx(&key, next_nonce(&node, &key), "lab-report/bytes").encode();

    let mut trailing = bytes.clone();
    trailing.push(0);
    let problem =
        post(&url, "application/octet-stream", &trailing).assert_problem(400, "non-canonical-encoding");
    assert!(problem["detail"].as_str().expect("detail").contains("trailing"), "{problem}");

    for cut in [1, bytes.len() / 2, bytes.len() - 1] {
        post(&url, "application/octet-stream", &bytes[..cut]).assert_problem(400, "non-canonical-encoding");
    }

    // A vote's approve flag is the last payload byte, just before the signature.
    let admin = node.key("st-mary-hospital", "admin");
    let vote = TxBody {
        chain_id: ChainId::new("medledger-dev").expect("chain id"),
        signer: admin.public_key(),
        nonce: next_nonce(&node, &admin),
        payload: Payload::Vote { proposal: TxId(sha256(b"some proposal")), approve: false },
    }
    .sign(&admin);
    let mut non_canonical_bool = vote.encode();
    let flag = non_canonical_bool.len() - 64 - 1;
    assert_eq!(non_canonical_bool[flag], 0, "the approve flag precedes the signature");
    non_canonical_bool[flag] = 2;
    let problem = post(&url, "application/octet-stream", &non_canonical_bool)
        .assert_problem(400, "non-canonical-encoding");
    assert!(problem["detail"].as_str().expect("detail").contains("non-canonical"), "{problem}");
    assert_eq!(ledger_fingerprint(&node.url), before);
}

#[test]
fn lookups_of_missing_or_malformed_things_are_clear_4xx() {
    let node = DevNode::start();
    let url = &node.url;
    get(&format!("{url}/v1/txs/not-hex")).assert_problem(400, "bad-tx-id");
    let unknown = get(&format!("{url}/v1/txs/{}", "ab".repeat(32)));
    assert_eq!((unknown.status, unknown.json()["status"].as_str()), (200, Some("unknown")));
    assert_eq!(unknown.json()["transaction"], Value::Null);
    get(&format!("{url}/v1/txs/{}/proof", "ab".repeat(32))).assert_problem(404, "not-found");
    get(&format!("{url}/v1/blocks/0")).assert_problem(404, "not-found");
    get(&format!("{url}/v1/blocks/999")).assert_problem(404, "not-found");
    get(&format!("{url}/v1/blocks/{}", "cd".repeat(32))).assert_problem(404, "not-found");
    get(&format!("{url}/v1/blocks/minus-one")).assert_problem(400, "bad-block-reference");
    get(&format!("{url}/v1/proofs/consistency?first=2&second=1")).assert_problem(400, "bad-range");
    get(&format!("{url}/v1/proofs/consistency?first=1")).assert_problem(400, "bad-query");
    get(&format!("{url}/v1/accounts/zz")).assert_problem(400, "bad-public-key");
    get(&format!("{url}/v1/nothing-here")).assert_problem(404, "not-found");
    post(&format!("{url}/v1/status"), "application/json", b"{}").assert_problem(405, "method-not-allowed");
}

#[test]
fn batch_submission_answers_each_transaction() {
    let node = DevNode::start();
    let key = node.key("st-mary-hospital", "dr-ana-ruiz");
    let nonce = next_nonce(&node, &key);
    let good = anchor_tx(&key, nonce, "referral/batch/1");
    let replay = anchor_tx(&key, 0, "referral/batch/2");
    let reply = post_json(
        &format!("{}/v1/txs/batch", node.url),
        &json!({ "transactions": [to_json(&good), to_json(&replay)] }),
    );
    assert_eq!(reply.status, 202);
    let results = reply.json()["results"].clone();
    assert_eq!(results[0]["result"], "accepted");
    assert_eq!(results[1]["result"], "rejected");
    assert_eq!(results[1]["problem"]["type"], "urn:medledger:problem:nonce-replayed");
    post_json(&format!("{}/v1/txs/batch", node.url), &json!({ "transactions": [] }))
        .assert_problem(400, "batch-size");
}

/// Saves a state proof for `key` and checks it offline with `medledger verify --state-proof`.
fn check_state_proof(node: &DevNode, key: &[u8], dir: &std::path::Path) -> (Value, std::process::Output) {
    let proof = get(&format!("{}/v1/state/proof?key={}", node.url, hex::encode(key))).json();
    let path = dir.join(format!("proof-{}.json", hex::encode(&key[..8.min(key.len())])));
    std::fs::write(&path, serde_json::to_vec(&proof).expect("json")).expect("write the proof");
    let block_hash = proof["block_hash"].as_str().expect("block hash").to_owned();
    let output =
        support::run(&["verify", "--state-proof", support::path_str(&path), "--block-hash", &block_hash]);
    (proof, output)
}

#[test]
fn a_state_key_and_an_absent_key_are_provable_against_the_head_and_checked_offline() {
    let node = DevNode::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let member = node.key("northside-lab", "tech-lee-park");
    let account_key = [b"account/".as_slice(), member.public_key().as_bytes()].concat();

    let (proof, output) = check_state_proof(&node, &account_key, dir.path());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let status = get(&format!("{}/v1/status", node.url)).json();
    assert!(proof["height"].as_u64().expect("height") <= status["height"].as_u64().expect("height"));
    let value = hex::decode(proof["value"].as_str().expect("an account is present")).expect("hex");
    let account = medledger_state::Account::decode(&value).expect("an account");
    assert_eq!(account.organization.as_str(), "northside-lab");
    assert!(String::from_utf8_lossy(&output.stdout).contains("state proof holds: the key holds"));

    let (absent, output) = check_state_proof(&node, b"account/nobody", dir.path());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(absent["value"], Value::Null);
    assert!(String::from_utf8_lossy(&output.stdout).contains("the key is absent"));

    // A proof shown for another value, or for an absent key claimed present, does not hold.
    let mut forged = proof.clone();
    forged["value"] = json!(hex::encode(b"another value"));
    let mut claimed = absent.clone();
    claimed["value"] = proof["value"].clone();
    for (name, forged) in [("forged value", forged), ("claimed presence", claimed)] {
        let path = dir.path().join(format!("{name}.json"));
        std::fs::write(&path, serde_json::to_vec(&forged).expect("json")).expect("write");
        let output = support::run(&["verify", "--state-proof", support::path_str(&path)]);
        assert_eq!(output.status.code(), Some(3), "{name}: {}", String::from_utf8_lossy(&output.stdout));
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("does not verify against state root"),
            "{name}"
        );
    }
    let output = support::run(&[
        "verify",
        "--state-proof",
        support::path_str(&dir.path().join(format!("proof-{}.json", hex::encode(&account_key[..8])))),
        "--block-hash",
        &"0".repeat(64),
    ]);
    assert_eq!(output.status.code(), Some(3));

    get(&format!("{}/v1/state/proof?key=zz", node.url)).assert_problem(400, "bad-state-key");
    get(&format!("{}/v1/state/proof", node.url)).assert_problem(400, "bad-query");
    get(&format!("{}/v1/state/proof?key={}", node.url, "00".repeat(513)))
        .assert_problem(400, "bad-state-key");
}

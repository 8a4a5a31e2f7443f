//! The `medledger` command line as an operator uses it: keys, init, a node from its config,
//! transactions, blocks, verification.

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use serde_json::Value;
use support::{Process, path_str, run};

fn stdout_of(output: &std::process::Output) -> String {
    assert!(output.status.success(), "command failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn keys_gen_writes_a_private_pem_and_never_overwrites() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("clinician.pem");
    let public_key = stdout_of(&run(&["keys", "gen", "--out", path_str(&file)])).trim().to_owned();
    assert_eq!(public_key.len(), 64);
    let mode = std::fs::metadata(&file).expect("key file").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(std::fs::read_to_string(&file).expect("pem").starts_with("-----BEGIN PRIVATE KEY-----"));
    assert_eq!(stdout_of(&run(&["keys", "show", path_str(&file)])).trim(), public_key);
    let again = run(&["keys", "gen", "--out", path_str(&file)]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("refusing to overwrite"));
}

#[test]
fn init_then_node_then_submit_show_and_verify() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = path_str(dir.path());
    let init = stdout_of(&run(&["init", "--data-dir", data, "--chain-id", "st-mary-test"]));
    assert!(init.contains("initialised chain 'st-mary-test'"), "{init}");
    let again = run(&["init", "--data-dir", data]);
    assert!(!again.status.success(), "init refuses an existing chain");

    let config = dir.path().join("node.toml");
    let mut node = Process::spawn(&["node", "--config", path_str(&config), "--listen", "127.0.0.1:0"]);
    let line = node
        .wait_for_line(Duration::from_secs(60), |line| line.contains("listening on http://"))
        .expect("the node listens");
    let url = line.rsplit(' ').next().expect("url").to_owned();

    let admin_key = dir.path().join("keys/admin.pem");
    let member_key = dir.path().join("member.pem");
    let member = stdout_of(&run(&["keys", "gen", "--out", path_str(&member_key)])).trim().to_owned();
    let added: Value = serde_json::from_str(&stdout_of(&run(&[
        "--node",
        &url,
        "member",
        "add",
        "--key",
        path_str(&admin_key),
        "--public-key",
        &member,
        "--role",
        "physician",
        "--wait",
    ])))
    .expect("json");
    assert_eq!(added["receipt"]["status"], "applied", "{added}");

    let document = dir.path().join("report.pdf");
    std::fs::write(&document, b"%PDF-1.7 an imaging report that stays off chain").expect("write document");
    let anchored: Value = serde_json::from_str(&stdout_of(&run(&[
        "--node",
        &url,
        "tx",
        "submit",
        "--key",
        path_str(&member_key),
        "anchor",
        "--label",
        "imaging/2026/77",
        "--file",
        path_str(&document),
        "--wait",
    ])))
    .expect("json");
    assert_eq!(anchored["receipt"]["status"], "applied", "{anchored}");
    let refused = run(&[
        "--node",
        &url,
        "tx",
        "submit",
        "--key",
        path_str(&member_key),
        "anchor",
        "--label",
        "imaging/2026/77",
        "--digest",
        &"00".repeat(32),
        "--wait",
    ]);
    assert_eq!(refused.status.code(), Some(5), "a refused transaction exits 5");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("was rejected: anchor_exists"));
    let again: Value = serde_json::from_slice(&refused.stdout).expect("json");
    assert_eq!(again["status"], "rejected");
    assert_eq!(again["receipt"]["status"], "rejected");
    assert_eq!(again["receipt"]["reason"], "anchor_exists");

    let latest: Value =
        serde_json::from_str(&stdout_of(&run(&["--node", &url, "block", "show"]))).expect("json");
    assert_eq!(latest["block"]["header"]["height"], 3);
    let hash = latest["hash"].as_str().expect("hash").to_owned();
    let by_hash: Value =
        serde_json::from_str(&stdout_of(&run(&["--node", &url, "block", "show", &hash]))).expect("json");
    assert_eq!(by_hash, latest);

    let verified = stdout_of(&run(&["--node", &url, "verify"]));
    assert!(verified.contains("verified 3 blocks and 3 transactions"), "{verified}");

    node.stop_cleanly("the node");
    let offline: Value =
        serde_json::from_str(&stdout_of(&run(&["--data-dir", data, "block", "show", "3"]))).expect("json");
    assert_eq!(offline["hash"], latest["hash"]);
    assert!(stdout_of(&run(&["--data-dir", data, "verify"])).contains("verified 3 blocks"));
}

#[test]
fn clear_errors_for_bad_command_lines() {
    let both = run(&["--data-dir", "/nonexistent", "--node", "http://127.0.0.1:1", "verify"]);
    assert!(!both.status.success());
    assert!(String::from_utf8_lossy(&both.stderr).contains("either --data-dir or --node"));

    let unreachable = run(&["--node", "http://127.0.0.1:1", "block", "show"]);
    assert!(!unreachable.status.success());
    assert!(String::from_utf8_lossy(&unreachable.stderr).contains("cannot reach the node"));

    let dir = tempfile::tempdir().expect("temp dir");
    let key = dir.path().join("k.pem");
    stdout_of(&run(&["keys", "gen", "--out", path_str(&key)]));
    let bad_label = run(&[
        "--node",
        "http://127.0.0.1:1",
        "tx",
        "submit",
        "--key",
        path_str(&key),
        "anchor",
        "--label",
        "has space",
        "--digest",
        &"00".repeat(32),
    ]);
    assert!(!bad_label.status.success());
    assert!(String::from_utf8_lossy(&bad_label.stderr).contains("label may contain only"));

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let exposed = run(&["keys", "show", path_str(&key)]);
    assert!(!exposed.status.success());
    assert!(String::from_utf8_lossy(&exposed.stderr).contains("chmod 600"));
}

#[test]
fn nodes_and_joiners_check_the_genesis_hash() {
    let founder = tempfile::tempdir().expect("temp dir");
    let init =
        stdout_of(&run(&["init", "--data-dir", path_str(founder.path()), "--chain-id", "consortium-test"]));
    let hash = init
        .lines()
        .find_map(|line| line.trim().strip_prefix("genesis hash")?.split_whitespace().next())
        .expect("init prints the genesis hash")
        .to_owned();
    let genesis = founder.path().join("genesis.json");

    // A joiner who expects another hash is refused, and the refusal leaves nothing behind.
    let joiner = tempfile::tempdir().expect("temp dir");
    let node_key = joiner.path().join("elsewhere.pem");
    stdout_of(&run(&["keys", "gen", "--out", path_str(&node_key)]));
    let data = joiner.path().join("data");
    let wrong = run(&[
        "init",
        "--data-dir",
        path_str(&data),
        "--genesis",
        path_str(&genesis),
        "--expect-genesis-hash",
        &"ab".repeat(32),
        "--node-key",
        path_str(&node_key),
    ]);
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains(&hash),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
    assert!(!data.exists(), "a refused init writes nothing");

    // The right hash, but a node key that is not a founder's: refused as well.
    let stranger = run(&[
        "init",
        "--data-dir",
        path_str(&data),
        "--genesis",
        path_str(&genesis),
        "--expect-genesis-hash",
        &hash,
        "--node-key",
        path_str(&node_key),
    ]);
    assert!(!stranger.status.success());
    assert!(
        String::from_utf8_lossy(&stranger.stderr).contains("not the node key of any founding organisation")
    );
    assert!(!data.exists(), "a refused init writes nothing");

    // A node whose config names another genesis does not start on this store.
    let config = founder.path().join("node.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    assert!(text.contains(&hash), "init records the genesis hash in node.toml");
    std::fs::write(&config, text.replace(&hash, &"cd".repeat(32))).expect("write config");
    let refused = run(&["node", "--config", path_str(&config), "--listen", "127.0.0.1:0"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("but the config expects genesis"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

/// The `genesis hash` line `init` prints.
fn printed_genesis_hash(init_stdout: &str) -> String {
    init_stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("genesis hash")?.split_whitespace().next())
        .expect("init prints the genesis hash")
        .to_owned()
}

#[test]
fn a_data_directory_moved_elsewhere_still_finds_its_node_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("medledger");
    std::fs::create_dir_all(data.join("keys")).expect("keys dir");
    let key_path = data.join("keys/node.pem");
    let node_key = stdout_of(&run(&["keys", "gen", "--out", path_str(&key_path)])).trim().to_owned();
    let init = run(&[
        "init",
        "--data-dir",
        path_str(&data),
        "--chain-id",
        "moved-chain",
        "--node-key",
        path_str(&key_path),
        "--listen",
        "127.0.0.1:0",
    ]);
    let hash = printed_genesis_hash(&stdout_of(&init));
    assert!(!String::from_utf8_lossy(&init.stderr).contains("warning"), "a key inside the data dir is fine");
    let config = std::fs::read_to_string(data.join("node.toml")).expect("node.toml");
    assert!(config.contains("key_file = \"keys/node.pem\""), "relative to the data directory: {config}");

    // Restored under another path: the old one no longer exists.
    let restored = dir.path().join("restored/elsewhere");
    std::fs::create_dir_all(restored.parent().expect("parent")).expect("restore dir");
    std::fs::rename(&data, &restored).expect("moving the data directory");
    let mut node = Process::spawn(&["node", "--config", path_str(&restored.join("node.toml"))]);
    let line = node
        .wait_for_line(Duration::from_secs(60), |line| line.contains("listening on http://"))
        .expect("the moved node listens");
    let url = line.rsplit(' ').next().expect("url").to_owned();
    let status = support::get(&format!("{url}/v1/status")).json();
    assert_eq!(status["node_key"], node_key.as_str(), "{status}");
    assert_eq!(status["chain_id"], "moved-chain", "{status}");
    assert_eq!(status["genesis_hash"], hash.as_str(), "{status}");
    node.stop_cleanly("the moved node");
}

#[test]
fn a_node_key_outside_the_data_directory_is_named_whole_with_a_warning() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key_path = dir.path().join("node.pem");
    stdout_of(&run(&["keys", "gen", "--out", path_str(&key_path)]));
    let data = dir.path().join("data");
    let init = run(&["init", "--data-dir", path_str(&data), "--node-key", path_str(&key_path)]);
    stdout_of(&init);
    let stderr = String::from_utf8_lossy(&init.stderr);
    assert!(stderr.contains("lies outside the data directory"), "{stderr}");
    assert!(stderr.contains("a copy of the data directory will not include it"), "{stderr}");
    let canonical = std::fs::canonicalize(&key_path).expect("canonical key path");
    let config = std::fs::read_to_string(data.join("node.toml")).expect("node.toml");
    assert!(config.contains(&format!("key_file = \"{}\"", canonical.display())), "{config}");
}

#[test]
fn joining_without_the_announced_genesis_hash_warns_loudly() {
    let founder = tempfile::tempdir().expect("temp dir");
    let hash = printed_genesis_hash(&stdout_of(&run(&["init", "--data-dir", path_str(founder.path())])));
    let genesis = founder.path().join("genesis.json");
    let join = |data: &std::path::Path, expect: &[&str]| {
        let args = [
            &["init", "--data-dir", path_str(data), "--genesis", path_str(&genesis)][..],
            expect,
            &["--p2p-listen", "127.0.0.1:9999"],
        ]
        .concat();
        let output = run(&args);
        stdout_of(&output);
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let joiners = tempfile::tempdir().expect("temp dir");

    let unchecked = join(&joiners.path().join("unchecked"), &[]);
    assert!(unchecked.contains("NOT checked against the consortium's announced hash"), "{unchecked}");
    assert!(unchecked.contains("how an operator joins the wrong chain"), "{unchecked}");
    assert!(unchecked.contains("out of band"), "{unchecked}");
    assert!(unchecked.contains(&format!("Its hash is {hash}")), "the hash to compare: {unchecked}");

    let checked = join(&joiners.path().join("checked"), &["--expect-genesis-hash", &hash]);
    assert!(!checked.contains("warning"), "a checked genesis needs no warning: {checked}");
}

#[test]
fn a_plain_vault_key_is_sealed_in_place_and_then_needs_its_passphrase() {
    const PASSPHRASE: &str = "a passphrase kept in the password safe";
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("node");
    stdout_of(&run(&["init", "--data-dir", path_str(&data), "--listen", "127.0.0.1:0"]));
    let config = data.join("node.toml");
    let start = |env: &[(&str, &str)]| Process::spawn_with_env(&["node", "--config", path_str(&config)], env);
    let listening = |node: &Process| {
        node.wait_for_line(Duration::from_secs(60), |line| line.contains("listening on http://")).is_some()
    };

    // A first start without the passphrase creates the vault key plain (the old deploy.md).
    let mut node = start(&[]);
    assert!(listening(&node), "the node starts");
    node.stop_cleanly("the node");
    let key_file = data.join("keys").join("vault.key");
    let header = || std::fs::read_to_string(&key_file).expect("vault key").lines().next().map(str::to_owned);
    assert!(header().is_some_and(|line| line.ends_with(" plain")), "{:?}", header());

    let seal = |env: &[(&str, &str)], target: &[&str]| {
        let mut command = support::medledger();
        command.args(target).args(["vault", "seal"]).envs(env.iter().copied());
        command.stdin(std::process::Stdio::null()).output().expect("running medledger")
    };
    let data_dir = ["--data-dir", path_str(&data)];
    let unset = seal(&[], &data_dir);
    assert_eq!(unset.status.code(), Some(2), "sealing needs the passphrase");
    assert!(String::from_utf8_lossy(&unset.stderr).contains("MEDLEDGER_VAULT_PASSPHRASE"));
    let remote = seal(&[("MEDLEDGER_VAULT_PASSPHRASE", PASSPHRASE)], &["--node", "http://127.0.0.1:1"]);
    assert_eq!(remote.status.code(), Some(2), "sealing works on a data directory only");

    let sealed = seal(&[("MEDLEDGER_VAULT_PASSPHRASE", PASSPHRASE)], &data_dir);
    assert!(sealed.status.success(), "{}", String::from_utf8_lossy(&sealed.stderr));
    assert!(header().is_some_and(|line| line.contains(" argon2id ")), "{:?}", header());
    assert!(!data.join("keys").join("vault.key.sealing").exists());
    let again = seal(&[("MEDLEDGER_VAULT_PASSPHRASE", PASSPHRASE)], &data_dir);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("sealed already"));

    // From now on the node needs the passphrase.
    let mut without = start(&[]);
    let exit =
        support::wait_for("a node without its vault passphrase exits", support::CONDITION_TIMEOUT, || {
            without.child.try_wait().expect("waiting for the node").ok_or_else(|| "still running".to_owned())
        });
    assert!(!exit.success(), "a node without its vault passphrase refuses to start");
    let mut with = start(&[("MEDLEDGER_VAULT_PASSPHRASE", PASSPHRASE)]);
    assert!(listening(&with), "the node starts with the passphrase");
    with.stop_cleanly("the node with its passphrase");
}

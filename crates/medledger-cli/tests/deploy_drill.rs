//! The deployment drill: the marked commands of `docs/deploy.md`, run as written, for the four
//! organisations of its founders file, each with its own data directory and loopback ports.
//!
//! A marked block is a fenced block whose info string carries `drill=WHO`:
//! - `drill=variables`: the shell variables the commands use. Not run; the drill sets exactly
//!   these for each organisation (plus `GENESIS_HASH`, which the guide sets by hand in step 4).
//! - `drill=founders`: the founders file, a template: the drill fills in each organisation's
//!   node key, administrator key and p2p address, and gives it to the coordinator.
//! - `drill=each`, `drill=coordinator`, `drill=joiners`: run with `bash -euo pipefail -c` for
//!   every organisation, for the first one (which writes the genesis), or for the others
//!   (which get the coordinator's `genesis.json` and its hash first), in that organisation's
//!   working directory, with `medledger` on `PATH`.
//!
//! More words say what happens to the organisation's node around the block:
//! - `node=run`: the block is the node's command. The organisations start it in the
//!   background one after another; after each start the drill waits until every running node
//!   is connected to the others and they agree on the chain.
//! - `node=paused`: once the network has settled (every transaction final), the node is
//!   stopped (SIGTERM; it must exit cleanly) for the block and started again after it.
//! - `node=stopped`: the node is stopped for the block and stays stopped.
//! - `data=restored`: the block runs with `DATA` set to a new directory (a restore under
//!   another path), and the node then starts from there. Before it runs, a transaction goes
//!   through another organisation's node, so the restored copy has blocks to catch up.
//!
//! Every wait is on a condition (a line a node prints, `/v1/status`) and bounded in time.

mod support;

use std::collections::BTreeSet;
use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use medledger_crypto::SigningKey;
use medledger_types::Genesis;
use serde_json::Value;
use support::{Process, get, path_str, run};

/// The guide, relative to this crate.
const GUIDE: &str = "../../docs/deploy.md";

/// The variables the drill sets for each organisation; the guide's `drill=variables` block
/// must define exactly these.
const VARIABLES: [&str; 6] = ["DATA", "API", "NODE", "ADMIN", "BACKUP", "KEY_BACKUP"];

/// Set by hand in the guide (step 4) to the hash the coordinator announced.
const ANNOUNCED_HASH: &str = "GENESIS_HASH";

/// Longest one block may run for one organisation.
const BLOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// Longest a node may take to start listening.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Longest the network may take, after a start, to connect and agree.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Commands that need root stay out of marked blocks: the drill runs them as nobody special.
const ROOT_COMMANDS: [&str; 4] = ["sudo ", "systemctl ", "useradd ", "chown "];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Variables,
    Founders,
    Each,
    Coordinator,
    Joiners,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodeAround {
    Untouched,
    Run,
    Paused,
    Stopped,
}

/// A marked block of the guide.
#[derive(Debug)]
struct Block {
    /// Line of the opening fence, 1-based.
    line: usize,
    info: String,
    who: Who,
    node: NodeAround,
    restored: bool,
    text: String,
}

impl Block {
    fn name(&self) -> String {
        format!("docs/deploy.md:{} (```{})", self.line, self.info)
    }

    /// Lines that are commands, not comments.
    fn command_lines(&self) -> impl Iterator<Item = &str> {
        self.text.lines().filter(|line| !line.trim_start().starts_with('#'))
    }
}

/// The marked blocks of `guide`, in order.
fn marked_blocks(guide: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, usize, String, Vec<&str>)> = None;
    for (index, line) in guide.lines().enumerate() {
        let trimmed = line.trim_start();
        match &mut open {
            None if trimmed.starts_with("```") => {
                let indent = line.len() - trimmed.len();
                open =
                    Some((index + 1, indent, trimmed.trim_start_matches('`').trim().to_owned(), Vec::new()));
            }
            None => {}
            Some(_) if trimmed == "```" => {
                let (line, indent, info, lines) = open.take().expect("a block is open");
                // Blocks inside list items are indented; their content loses that indentation.
                let text: Vec<&str> = lines
                    .iter()
                    .map(|content| {
                        &content[indent.min(content.len() - content.trim_start_matches(' ').len())..]
                    })
                    .collect();
                if let Some(block) = marked_block(line, &info, text.join("\n") + "\n") {
                    blocks.push(block);
                }
            }
            Some((_, _, _, lines)) => lines.push(line),
        }
    }
    assert!(open.is_none(), "docs/deploy.md ends inside a fenced block");
    blocks
}

/// The block if its info string marks it for the drill; unknown words are errors.
fn marked_block(line: usize, info: &str, text: String) -> Option<Block> {
    let words: Vec<&str> = info.split_whitespace().collect();
    let who = words.iter().find_map(|word| word.strip_prefix("drill="))?;
    let who = match who {
        "variables" => Who::Variables,
        "founders" => Who::Founders,
        "each" => Who::Each,
        "coordinator" => Who::Coordinator,
        "joiners" => Who::Joiners,
        other => panic!("docs/deploy.md:{line}: unknown drill={other}"),
    };
    let mut block =
        Block { line, info: info.to_owned(), who, node: NodeAround::Untouched, restored: false, text };
    for word in words.iter().skip(1).filter(|word| !word.starts_with("drill=")) {
        match *word {
            "node=run" => block.node = NodeAround::Run,
            "node=paused" => block.node = NodeAround::Paused,
            "node=stopped" => block.node = NodeAround::Stopped,
            "data=restored" => block.restored = true,
            other => panic!("{}: unknown word {other:?}", block.name()),
        }
    }
    let expected_language = if who == Who::Founders { "json" } else { "sh" };
    assert_eq!(words[0], expected_language, "{}: the language comes first", block.name());
    for command in block.command_lines() {
        assert!(
            !ROOT_COMMANDS.iter().any(|root| command.contains(root)),
            "{}: `{command}` needs root; keep it out of marked blocks",
            block.name()
        );
    }
    Some(block)
}

/// One organisation of the drill: its directories, ports and node.
struct Organisation {
    id: String,
    root: PathBuf,
    data: PathBuf,
    api_port: u16,
    p2p_port: u16,
    node: Option<Process>,
}

impl Organisation {
    fn work_dir(&self) -> PathBuf {
        self.root.join("work")
    }

    fn admin_dir(&self) -> PathBuf {
        self.root.join("admin")
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }

    /// The guide's variables with this organisation's values.
    fn variables(&self) -> Vec<(&'static str, String)> {
        let values = [
            path_str(&self.data).to_owned(),
            format!("127.0.0.1:{}", self.api_port),
            self.url(),
            path_str(&self.admin_dir()).to_owned(),
            path_str(&self.root.join("backup")).to_owned(),
            path_str(&self.root.join("key-backup")).to_owned(),
        ];
        VARIABLES.into_iter().zip(values).collect()
    }

    /// The vault passphrase this organisation's unit hands its node (`/etc/medledger/vault.env`).
    fn passphrase(&self) -> String {
        format!("drill passphrase of {}", self.id)
    }
}

/// A command's outcome.
struct Ran {
    success: bool,
    status: String,
    stdout: String,
    stderr: String,
}

/// Runs `command` to completion within `timeout`, killing it past that.
fn run_bounded(mut command: Command, timeout: Duration) -> Ran {
    let mut child =
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("bash");
    let read = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _partial_output_is_still_reported = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = read(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = read(Box::new(child.stderr.take().expect("piped stderr")));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for bash") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _already_exited = child.kill();
            let _reaped = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = stdout.join().expect("stdout reader");
    let stderr = stderr.join().expect("stderr reader");
    match status {
        Some(status) => Ran { success: status.success(), status: status.to_string(), stdout, stderr },
        None => Ran { success: false, status: format!("killed after {timeout:?}"), stdout, stderr },
    }
}

/// Every JSON value printed at the start of a line of `stdout` (the CLI pretty-prints them).
fn printed_json_values(stdout: &str) -> Vec<Value> {
    let mut values = Vec::new();
    let mut offset = 0;
    while offset < stdout.len() {
        let rest = &stdout[offset..];
        if rest.starts_with('{') {
            let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<Value>();
            if let Some(Ok(value)) = stream.next() {
                values.push(value);
                offset += stream.byte_offset();
                continue;
            }
        }
        offset += rest.find('\n').map_or(rest.len(), |end| end + 1);
    }
    values
}

/// Free loopback ports, below the usual ephemeral range so outgoing connections do not take them.
fn free_ports(count: usize) -> Vec<u16> {
    let seed = u64::from(std::process::id()).wrapping_mul(7_919)
        ^ u64::from(Instant::now().elapsed().subsec_nanos());
    let mut ports = Vec::with_capacity(count);
    for attempt in 0..10_000u64 {
        if ports.len() == count {
            break;
        }
        let port = 20_000 + u16::try_from((seed + attempt * 104_729) % 12_000).expect("fits");
        if !ports.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            ports.push(port);
        }
    }
    assert_eq!(ports.len(), count, "no {count} free loopback ports");
    ports
}

struct Drill {
    root: tempfile::TempDir,
    bin_dir: PathBuf,
    orgs: Vec<Organisation>,
    genesis_hash: Option<String>,
    /// The `node=run` block, to start a node again.
    node_command: Option<String>,
    /// Where the restored data directories go.
    restores: usize,
}

impl Drill {
    fn new(blocks: &[Block]) -> Self {
        let founders =
            blocks.iter().find(|block| block.who == Who::Founders).expect("a drill=founders block");
        let template: Value = serde_json::from_str(&founders.text)
            .unwrap_or_else(|error| panic!("{}: not JSON: {error}", founders.name()));
        let ids: Vec<String> = template["organizations"]
            .as_array()
            .expect("organizations")
            .iter()
            .map(|org| org["id"].as_str().expect("an id").to_owned())
            .collect();
        assert!(ids.len() >= 4, "the guide sets up a network of at least four validators");
        let root = tempfile::Builder::new().prefix("medledger-deploy-drill-").tempdir().expect("temp dir");
        let ports = free_ports(2 * ids.len());
        let orgs = ids
            .into_iter()
            .enumerate()
            .map(|(index, id)| {
                let dir = root.path().join(&id);
                for sub in ["data", "work", "backup", "key-backup"] {
                    create_private_dir(&dir.join(sub));
                }
                Organisation {
                    data: dir.join("data"),
                    root: dir,
                    id,
                    api_port: ports[2 * index],
                    p2p_port: ports[2 * index + 1],
                    node: None,
                }
            })
            .collect();
        let binary = PathBuf::from(env!("CARGO_BIN_EXE_medledger"));
        let bin_dir = binary.parent().expect("the binary's directory").to_owned();
        Self { root, bin_dir, orgs, genesis_hash: None, node_command: None, restores: 0 }
    }

    /// The organisations a block is for.
    fn targets(&self, who: Who) -> Vec<usize> {
        match who {
            Who::Each => (0..self.orgs.len()).collect(),
            Who::Coordinator => vec![0],
            Who::Joiners => (1..self.orgs.len()).collect(),
            Who::Variables | Who::Founders => Vec::new(),
        }
    }

    fn run(&mut self, block: &Block) {
        match block.who {
            Who::Variables => check_variables(block),
            Who::Founders => self.write_founders(block),
            Who::Each | Who::Coordinator | Who::Joiners => {
                if block.who == Who::Joiners {
                    self.hand_out_genesis(block);
                }
                if block.node == NodeAround::Run {
                    self.node_command = Some(block.text.clone());
                    // One after another, as organisations bring their nodes up: each joins
                    // the nodes already running before the next starts.
                    for index in self.targets(block.who) {
                        self.start(index, block);
                        self.settle();
                    }
                } else {
                    for index in self.targets(block.who) {
                        self.run_for(index, block);
                    }
                }
            }
        }
    }

    fn run_for(&mut self, index: usize, block: &Block) {
        if matches!(block.node, NodeAround::Paused | NodeAround::Stopped) {
            if block.node == NodeAround::Paused {
                self.settle();
            }
            self.stop(index);
        }
        if block.restored {
            self.transaction_elsewhere(index);
            self.restores += 1;
            let restored = self.orgs[index].root.join(format!("restored-{}", self.restores));
            create_private_dir(&restored);
            self.orgs[index].data = restored;
        }
        let started = Instant::now();
        let ran = self.shell(index, block);
        self.check(index, block, &ran);
        eprintln!(
            "drill: {} for {}: ok in {:.1} s",
            block.name(),
            self.orgs[index].id,
            started.elapsed().as_secs_f64()
        );
        if block.node == NodeAround::Paused {
            self.start(index, block);
            self.settle();
        }
    }

    fn environment(&self, index: usize, command: &mut Command) {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![self.bin_dir.clone()];
        paths.extend(std::env::split_paths(&path));
        let org = &self.orgs[index];
        command
            .current_dir(org.work_dir())
            .envs(org.variables())
            .env("PATH", std::env::join_paths(paths).expect("a valid PATH"))
            .env("MEDLEDGER_LOG", "warn")
            .env("MEDLEDGER_VAULT_PASSPHRASE", org.passphrase())
            .env_remove("MEDLEDGER_NODE");
        if let Some(hash) = &self.genesis_hash {
            command.env(ANNOUNCED_HASH, hash);
        }
    }

    fn shell(&self, index: usize, block: &Block) -> Ran {
        // Names the failing command: bash sets BASH_COMMAND to it when -e stops the script.
        let script = format!("trap 'echo \"drill: failed: $BASH_COMMAND\" >&2' ERR\n{}", block.text);
        let mut command = Command::new("bash");
        command.args(["-euo", "pipefail", "-c", &script]);
        self.environment(index, &mut command);
        run_bounded(command, BLOCK_TIMEOUT)
    }

    /// Fails naming the block, the organisation and the command unless the block succeeded and
    /// every transaction it waited for was applied.
    fn check(&self, index: usize, block: &Block, ran: &Ran) {
        let failure = |why: &str| {
            let command = ran
                .stderr
                .lines()
                .find_map(|line| line.strip_prefix("drill: failed: "))
                .unwrap_or("(none failed)");
            format!(
                "{} failed for {}: {why}\n  command: {command}\n  exit: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                block.name(),
                self.orgs[index].id,
                ran.status,
                ran.stdout,
                ran.stderr
            )
        };
        assert!(ran.success, "{}", failure("the block exited with an error"));
        let waited = block.command_lines().map(|line| line.matches("--wait").count()).sum::<usize>();
        let receipts: Vec<Value> = printed_json_values(&ran.stdout)
            .into_iter()
            .filter_map(|value| value.get("receipt").cloned())
            .collect();
        assert!(
            receipts.len() >= waited,
            "{}",
            failure(&format!("{waited} transactions waited for, {} receipts printed", receipts.len()))
        );
        if let Some(receipt) = receipts.iter().find(|receipt| receipt["status"] != "applied") {
            panic!("{}", failure(&format!("a transaction was not applied: {receipt}")));
        }
    }

    /// The founders file with each organisation's real keys and loopback address.
    fn write_founders(&self, block: &Block) {
        let mut founders: Value = serde_json::from_str(&block.text).expect("checked JSON");
        for org in founders["organizations"].as_array_mut().expect("organizations") {
            let drilled =
                self.orgs.iter().find(|drilled| org["id"] == drilled.id.as_str()).expect("known id");
            let node_key = public_key(&drilled.data.join("keys/node.pem"), block);
            let admin_key = public_key(&drilled.admin_dir().join("admin.pem"), block);
            org["node"]["public_key"] = Value::from(node_key);
            org["node"]["address"] = Value::from(format!("127.0.0.1:{}", drilled.p2p_port));
            org["administrators"] = Value::from(vec![admin_key]);
        }
        let path = self.orgs[0].work_dir().join("founders.json");
        std::fs::write(&path, founders.to_string()).expect("writing founders.json");
    }

    /// The coordinator sends `genesis.json` and announces its hash (out of band).
    fn hand_out_genesis(&mut self, block: &Block) {
        if self.genesis_hash.is_some() {
            return;
        }
        let path = self.orgs[0].data.join("genesis.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|error| {
            panic!("{}: the coordinator's {} ({error})", block.name(), path.display())
        });
        let genesis = Genesis::from_json(&text).expect("the coordinator's genesis parses");
        for org in &self.orgs[1..] {
            std::fs::write(org.work_dir().join("genesis.json"), &text).expect("handing out genesis.json");
        }
        self.genesis_hash = Some(genesis.hash().to_string());
    }

    /// Starts the guide's node command for organisation `index` in the background.
    fn start(&mut self, index: usize, block: &Block) {
        let text =
            self.node_command.clone().unwrap_or_else(|| panic!("{}: no node=run block before", block.name()));
        let command_line = text.replace("\\\n", " ");
        assert!(
            command_line.trim().lines().count() == 1 && !command_line.contains([';', '&', '|']),
            "the node=run block is one command, so the drill can run it with exec and stop it with SIGTERM"
        );
        let mut command = Command::new("bash");
        command.args(["-euo", "pipefail", "-c", &format!("exec {}", command_line.trim())]);
        self.environment(index, &mut command);
        let process = Process::spawn_command(command);
        let org = &self.orgs[index];
        process
            .wait_for_line(STARTUP_TIMEOUT, |line| line.contains("listening on http://"))
            .unwrap_or_else(|| panic!("{}: {}'s node did not start listening", block.name(), org.id));
        self.orgs[index].node = Some(process);
    }

    fn stop(&mut self, index: usize) {
        let org = &mut self.orgs[index];
        if let Some(mut node) = org.node.take() {
            node.stop_cleanly(&format!("{}'s node", org.id));
        }
    }

    /// A transaction through another organisation's node while `index`'s node is stopped.
    fn transaction_elsewhere(&self, index: usize) {
        let other = self.orgs.iter().find(|org| org.node.is_some()).expect("another node runs");
        assert_ne!(other.id, self.orgs[index].id);
        let key = other.root.join(format!("drill-auditor-{}.pem", self.restores));
        let generated = run(&["keys", "gen", "--out", path_str(&key)]);
        assert!(generated.status.success(), "keys gen");
        let public_key = String::from_utf8_lossy(&generated.stdout).trim().to_owned();
        let admin = other.admin_dir().join("admin.pem");
        let added = run(&[
            "--node",
            &other.url(),
            "member",
            "add",
            "--key",
            path_str(&admin),
            "--public-key",
            &public_key,
            "--role",
            "auditor",
            "--wait",
        ]);
        let stdout = String::from_utf8_lossy(&added.stdout);
        assert!(
            added.status.success(),
            "member add through {}: {}",
            other.id,
            String::from_utf8_lossy(&added.stderr)
        );
        let receipt =
            printed_json_values(&stdout).into_iter().find_map(|value| value.get("receipt").cloned());
        assert_eq!(
            receipt.as_ref().map(|receipt| &receipt["status"]),
            Some(&Value::from("applied")),
            "{stdout}"
        );
    }

    /// Waits until every running node sees the others connected, has caught up with the highest
    /// height seen when the wait began and has an empty mempool, and they agree on that block.
    fn settle(&self) {
        let running: Vec<&Organisation> = self.orgs.iter().filter(|org| org.node.is_some()).collect();
        let status = |org: &Organisation| get(&format!("{}/v1/status", org.url())).json();
        let target =
            running.iter().map(|org| status(org)["height"].as_u64().expect("height")).max().unwrap_or(0);
        let started = Instant::now();
        let statuses =
            support::wait_for(&format!("the network settles at height {target}"), SETTLE_TIMEOUT, || {
                let statuses: Vec<Value> = running.iter().map(|org| status(org)).collect();
                let settled = statuses.iter().all(|status| {
                    let connected = status["peers"]
                        .as_array()
                        .map_or(0, |peers| peers.iter().filter(|peer| peer["connected"] == true).count());
                    connected + 1 >= running.len()
                        && status["height"].as_u64() >= Some(target)
                        && status["mempool_size"] == 0
                });
                if settled { Ok(statuses) } else { Err(format!("{statuses:#?}")) }
            });
        self.assert_agreement(&running, &statuses);
        eprintln!(
            "drill: {} nodes settled at height ≥ {target} in {:.1} s",
            running.len(),
            started.elapsed().as_secs_f64()
        );
    }

    fn assert_agreement(&self, running: &[&Organisation], statuses: &[Value]) {
        let common = statuses.iter().filter_map(|status| status["height"].as_u64()).min().unwrap_or(0);
        let hashes: BTreeSet<String> = running
            .iter()
            .map(|org| get(&format!("{}/v1/blocks/{common}", org.url())).json()["hash"].to_string())
            .collect();
        assert_eq!(hashes.len(), 1, "the nodes disagree on block {common}: {hashes:?}");
    }
}

/// The guide's variables block defines exactly the variables the drill sets.
fn check_variables(block: &Block) {
    let defined: BTreeSet<&str> =
        block.command_lines().filter_map(|line| line.split_once('=').map(|(name, _)| name.trim())).collect();
    let expected: BTreeSet<&str> = VARIABLES.into_iter().collect();
    assert_eq!(defined, expected, "{}: the variables the drill sets", block.name());
}

fn public_key(path: &Path, block: &Block) -> String {
    let key = SigningKey::load(path).unwrap_or_else(|error| {
        panic!("{}: the blocks before it should have made {}: {error}", block.name(), path.display())
    });
    key.public_key().to_string()
}

/// A directory only its owner may enter, like the service user's.
fn create_private_dir(path: &Path) {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(path).expect("creating a directory");
}

#[test]
fn the_deployment_guide_runs_as_written_for_four_organisations() {
    let guide_path = Path::new(env!("CARGO_MANIFEST_DIR")).join(GUIDE);
    let guide = std::fs::read_to_string(&guide_path).expect("docs/deploy.md");
    let blocks = marked_blocks(&guide);
    let whos: BTreeSet<String> = blocks.iter().map(|block| format!("{:?}", block.who)).collect();
    assert_eq!(whos.len(), 5, "the guide marks variables, founders, each, coordinator and joiners blocks");
    let started = Instant::now();
    let mut drill = Drill::new(&blocks);
    eprintln!("drill: {} marked blocks, working in {}", blocks.len(), drill.root.path().display());
    for block in &blocks {
        drill.run(block);
    }
    for org in &drill.orgs {
        let vault_key = std::fs::read_to_string(org.data.join("keys/vault.key")).expect("the vault key");
        assert!(vault_key.starts_with("medledger-vault-key v1 argon2id"), "{}'s vault key is sealed", org.id);
    }
    assert!(drill.restores > 0, "the guide restores a backup");
    assert!(drill.orgs.iter().all(|org| org.node.is_none()), "the guide ends with every node stopped");
    assert!(drill.genesis_hash.is_some(), "the joiners got the coordinator's genesis and its hash");
    eprintln!("drill: the deployment guide ran in {:.1} s", started.elapsed().as_secs_f64());
}

#[test]
fn marked_blocks_keep_their_words_and_lose_list_indentation() {
    let guide = "Text.\n\n```sh\nunmarked\n```\n\n1. A step:\n\n   ```sh drill=each node=paused\n   echo \"$DATA\"\n     indented\n   ```\n\n```json drill=founders\n{}\n```\n";
    let blocks = marked_blocks(guide);
    assert_eq!(blocks.len(), 2, "{blocks:?}");
    assert_eq!((blocks[0].line, blocks[0].who, blocks[0].node), (9, Who::Each, NodeAround::Paused));
    assert_eq!(blocks[0].text, "echo \"$DATA\"\n  indented\n");
    assert_eq!(blocks[1].who, Who::Founders);
}

#[test]
#[should_panic(expected = "needs root")]
fn marked_blocks_refuse_root_commands() {
    marked_blocks("```sh drill=each\nsudo systemctl stop medledger\n```\n");
}

#[test]
#[should_panic(expected = "unknown word")]
fn marked_blocks_refuse_unknown_words() {
    marked_blocks("```sh drill=each node=later\necho\n```\n");
}

#[test]
fn printed_json_values_are_found_among_other_output() {
    let stdout = "1f2e3d\n{\n  \"receipt\": {\"status\": \"applied\"}\n}\nwrote admin-2.pem\n{\"id\": 2}\n{ not json\n";
    let values = printed_json_values(stdout);
    assert_eq!(
        values,
        vec![serde_json::json!({"receipt": {"status": "applied"}}), serde_json::json!({"id": 2})]
    );
}

//! Identity, permissioning and governance as users meet them: the `medledger org` and
//! `medledger member` commands and the members-only API of a real `medledger dev` node, with
//! every kind of bad input rejected and the ledger's state left as it was.

mod support;

use medledger_crypto::SigningKey;
use medledger_httpsig::{RequestParts, new_nonce, sign_request};
use serde_json::{Value, json};
use support::{DevNode, Reply, get, path_str, run};

/// Runs `medledger --node URL args…`, asserts success and parses the JSON it prints.
/// A transaction its block refused is the one JSON answer with a failure exit code (5).
fn cli_json(node: &DevNode, args: &[&str]) -> Value {
    let output = run(&[&["--node", node.url.as_str()], args].concat());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let value: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!("{args:?} printed no JSON ({error}): {}{stderr}", String::from_utf8_lossy(&output.stdout))
    });
    let expected = if value["status"] == "rejected" { 5 } else { 0 };
    assert_eq!(output.status.code(), Some(expected), "{args:?} exit code: {stderr}");
    value
}

/// Runs `medledger --node URL args…`, asserts failure and returns what it said on stderr.
fn cli_error(node: &DevNode, args: &[&str]) -> String {
    let output = run(&[&["--node", node.url.as_str()], args].concat());
    assert!(!output.status.success(), "{args:?} succeeded: {}", String::from_utf8_lossy(&output.stdout));
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The receipt of a transaction submitted with `--wait`: `"applied"` or the reject reason.
fn outcome(answer: &Value) -> String {
    let receipt = &answer["receipt"];
    match receipt["status"].as_str() {
        Some("applied") => "applied".to_owned(),
        Some("rejected") => receipt["reason"].as_str().expect("a rejected receipt has a reason").to_owned(),
        _ => panic!("no receipt in {answer}"),
    }
}

/// A fresh key file in the node's data dir; returns its path and public key.
fn new_key(node: &DevNode, name: &str) -> (String, String) {
    let path = node.data_dir.path().join(format!("{name}.pem"));
    let output = run(&["keys", "gen", "--out", path_str(&path)]);
    assert!(output.status.success(), "keys gen: {}", String::from_utf8_lossy(&output.stderr));
    (path_str(&path).to_owned(), String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// St Mary's administrator proposes admitting clinic `id` with one administrator key.
fn propose_admit(node: &DevNode, id: &str, administrator: &str) -> Value {
    let key = node.key_arg("st-mary-hospital", "admin");
    cli_json(
        node,
        &[
            "org",
            "propose",
            "--key",
            &key,
            "--wait",
            "admit",
            "--id",
            id,
            "--kind",
            "clinic",
            "--admin",
            administrator,
        ],
    )
}

fn org_list(node: &DevNode) -> Value {
    cli_json(node, &["org", "list"])
}

fn org_ids(list: &Value) -> Vec<String> {
    list["organizations"]
        .as_array()
        .expect("organisations")
        .iter()
        .map(|org| org["id"].as_str().expect("id").to_owned())
        .collect()
}

#[test]
fn governance_admits_an_organisation_only_with_more_than_two_thirds_of_the_administrators() {
    let node = DevNode::start();
    let before = org_list(&node);
    assert_eq!(org_ids(&before).len(), 9, "eight founders and the clinic the demo admitted");
    let admin = |org: &str| node.key_arg(org, "admin");
    let (_, bayview_admin) = new_key(&node, "bayview-admin");

    let proposal = propose_admit(&node, "bayview-clinic", &bayview_admin);
    assert_eq!(outcome(&proposal), "applied");
    let id = proposal["tx_id"].as_str().expect("the proposal id is its transaction id").to_owned();
    let vote = |org: &str, member: &str| {
        outcome(&cli_json(
            &node,
            &["org", "vote", &id, "--approve", "--key", &node.key_arg(org, member), "--wait"],
        ))
    };
    let execute =
        || outcome(&cli_json(&node, &["org", "execute", &id, "--key", &admin("st-mary-hospital"), "--wait"]));
    let tally = || cli_json(&node, &["org", "proposal", &id])["tally"].clone();

    // One approval of nine: executing it is refused.
    assert_eq!(execute(), "not_enough_votes");
    // A physician is not an administrator; an organisation votes once.
    assert_eq!(vote("st-mary-hospital", "dr-ana-ruiz"), "not_authorized");
    assert_eq!(vote("lakeside-general-hospital", "admin"), "applied");
    let after_first_vote = tally();
    assert_eq!(vote("lakeside-general-hospital", "admin"), "already_voted");
    assert_eq!(tally(), after_first_vote, "a rejected vote changes nothing");
    assert_eq!(after_first_vote["active_approvals"], 2);
    assert_eq!(org_list(&node), before, "nothing is admitted before the proposal passes");

    // Six of nine is exactly two thirds, not more: still refused.
    for org in ["northside-lab", "city-pharmacy", "helix-pharma", "medroute-distribution"] {
        assert_eq!(vote(org, "admin"), "applied");
    }
    assert_eq!(tally()["passes"], false);
    assert_eq!(execute(), "not_enough_votes");
    assert_eq!(vote("national-medicines-agency", "admin"), "applied");
    assert_eq!(tally()["passes"], true);
    assert_eq!(execute(), "applied");
    assert!(org_ids(&org_list(&node)).contains(&"bayview-clinic".to_owned()));
    assert_eq!(execute(), "proposal_closed", "a proposal executes once");

    // Admitting it twice, or acting on an organisation that does not exist, is refused at once.
    let after = org_list(&node);
    let twice = propose_admit(&node, "bayview-clinic", &new_key(&node, "other-admin").1);
    assert_eq!(outcome(&twice), "organization_exists");
    let unknown = cli_json(
        &node,
        &["org", "propose", "--key", &admin("st-mary-hospital"), "--wait", "suspend", "--org", "no-such-org"],
    );
    assert_eq!(outcome(&unknown), "unknown_organization");
    // A key no organisation enrolled cannot vote either.
    let stranger =
        cli_error(&node, &["org", "vote", &id, "--approve", "--key", &new_key(&node, "stranger").0]);
    assert!(stranger.contains("is not a member"), "{stranger}");
    assert_eq!(org_list(&node), after);

    // Bad command lines never reach the node.
    let bad_id = cli_error(
        &node,
        &[
            "org",
            "propose",
            "--key",
            &admin("st-mary-hospital"),
            "admit",
            "--id",
            "Bay View",
            "--kind",
            "clinic",
            "--admin",
            &bayview_admin,
        ],
    );
    assert!(bad_id.contains("organisation id"), "{bad_id}");
    let bad_kind = cli_error(
        &node,
        &[
            "org",
            "propose",
            "--key",
            &admin("st-mary-hospital"),
            "admit",
            "--id",
            "bay",
            "--kind",
            "spa",
            "--admin",
            &bayview_admin,
        ],
    );
    assert!(bad_kind.contains("hospital, clinic"), "{bad_kind}");
    assert_eq!(org_list(&node), after);
}

#[test]
fn administrators_enrol_rotate_and_revoke_their_own_members() {
    let node = DevNode::start();
    let admin = node.key_arg("st-mary-hospital", "admin");
    let (new_path, new_public) = new_key(&node, "dr-new");
    let enrol = |key: &str, public_key: &str, role: &str| {
        outcome(&cli_json(
            &node,
            &["member", "add", "--key", key, "--public-key", public_key, "--role", role, "--wait"],
        ))
    };

    // Wrong role for the organisation's kind, wrong signer role, another organisation's admin.
    assert_eq!(enrol(&admin, &new_public, "regulator-inspector"), "role_not_allowed");
    assert_eq!(
        enrol(&node.key_arg("st-mary-hospital", "dr-ana-ruiz"), &new_public, "physician"),
        "not_authorized"
    );
    assert_eq!(
        enrol(&admin, &node.key("northside-lab", "tech-lee-park").public_key().to_string(), "nurse"),
        "member_exists"
    );

    let added = cli_json(
        &node,
        &[
            "member",
            "add",
            "--key",
            &admin,
            "--public-key",
            &new_public,
            "--role",
            "physician",
            "--display-name",
            "Dr Noor Haddad",
            "--wait",
        ],
    );
    assert_eq!(outcome(&added), "applied");
    let members = cli_json(&node, &["member", "list", "--org", "st-mary-hospital", "--key", &admin]);
    let listed = members["members"]
        .as_array()
        .expect("members")
        .iter()
        .find(|member| member["public_key"] == new_public.as_str())
        .expect("the new member is listed")
        .clone();
    assert_eq!(listed["role"], "physician");
    assert_eq!(listed["display_name"], "Dr Noor Haddad");
    assert_eq!(listed["status"], "active");

    // The member rotates its own key; the old key is refused from then on.
    let (rotated_path, rotated_public) = new_key(&node, "dr-new-2");
    let rotate = cli_json(
        &node,
        &["member", "rotate", "--key", &new_path, "--old", &new_public, "--new", &rotated_public, "--wait"],
    );
    assert_eq!(outcome(&rotate), "applied");
    let anchor = |key: &str, label: &str| {
        run(&[
            "--node",
            &node.url,
            "tx",
            "submit",
            "--key",
            key,
            "anchor",
            "--label",
            label,
            "--digest",
            &"11".repeat(32),
            "--wait",
        ])
    };
    let old_key = anchor(&new_path, "referral/2026/100001");
    assert!(!old_key.status.success());
    assert!(
        String::from_utf8_lossy(&old_key.stderr).contains("403"),
        "{}",
        String::from_utf8_lossy(&old_key.stderr)
    );
    let new_key_anchor = anchor(&rotated_path, "referral/2026/100002");
    assert!(new_key_anchor.status.success(), "{}", String::from_utf8_lossy(&new_key_anchor.stderr));

    // An administrator cannot revoke another organisation's member; its own, yes.
    let lakeside_physician = node.key("lakeside-general-hospital", "dr-sam-okafor").public_key().to_string();
    let foreign = cli_json(
        &node,
        &["member", "revoke", "--key", &admin, "--public-key", &lakeside_physician, "--wait"],
    );
    assert_eq!(outcome(&foreign), "not_authorized");
    let revoke =
        cli_json(&node, &["member", "revoke", "--key", &admin, "--public-key", &rotated_public, "--wait"]);
    assert_eq!(outcome(&revoke), "applied");
    let revoked = anchor(&rotated_path, "referral/2026/100003");
    assert!(!revoked.status.success());
    assert!(
        String::from_utf8_lossy(&revoked.stderr).contains("revoked"),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    let again =
        cli_json(&node, &["member", "revoke", "--key", &admin, "--public-key", &rotated_public, "--wait"]);
    assert_eq!(outcome(&again), "member_inactive");

    // Patients are pseudonymous: a random id, no display name.
    let patient_admin = node.key_arg("patient-link", "admin");
    let (_, patient_public) = new_key(&node, "patient-3");
    let named = cli_error(
        &node,
        &[
            "member",
            "add",
            "--key",
            &patient_admin,
            "--public-key",
            &patient_public,
            "--role",
            "patient",
            "--display-name",
            "Jane Roe",
        ],
    );
    assert!(named.contains("pseudonymous"), "{named}");
    assert!(!named.contains("Jane Roe"), "errors never repeat personal data: {named}");
    assert_eq!(enrol(&patient_admin, &patient_public, "patient"), "applied");
    let patients = cli_json(&node, &["member", "list", "--org", "patient-link", "--key", &patient_admin]);
    let patient = patients["members"]
        .as_array()
        .expect("members")
        .iter()
        .find(|member| member["public_key"] == patient_public.as_str())
        .expect("the patient is listed")
        .clone();
    assert!(
        patient["patient_id"].as_str().is_some_and(|id| id.starts_with("pt-") && id.len() == 35),
        "{patient}"
    );
    assert_eq!(patient["display_name"], Value::Null);
}

/// A request to `path` on the node, signed by `key` as the CLI signs.
struct Signed {
    method: &'static str,
    path: String,
    body: Vec<u8>,
    headers: Vec<(&'static str, String)>,
}

impl Signed {
    fn new(node: &DevNode, key: &SigningKey, method: &'static str, path: &str, body: &[u8]) -> Self {
        let authority = node.url.trim_start_matches("http://").to_owned();
        let (path_only, query) = match path.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (path, None),
        };
        let parts = RequestParts {
            method,
            authority: &authority,
            path: path_only,
            query,
            content_digest: None,
            body,
            signature_input: None,
            signature: None,
        };
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs();
        let signed = sign_request(key, &parts, created, &new_nonce());
        let mut headers = vec![("signature-input", signed.signature_input), ("signature", signed.signature)];
        if let Some(digest) = signed.content_digest {
            headers.push(("content-digest", digest));
        }
        Self { method, path: path.to_owned(), body: body.to_vec(), headers }
    }

    fn send(&self, node: &DevNode) -> Reply {
        self.send_with(node, &[])
    }

    /// Sends with extra headers appended (a second copy of a signature header, say).
    fn send_with(&self, node: &DevNode, extra: &[(&str, &str)]) -> Reply {
        let mut request =
            ureq::http::Request::builder().method(self.method).uri(format!("{}{}", node.url, self.path));
        for (name, value) in &self.headers {
            request = request.header(*name, value.as_str());
        }
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        if !self.body.is_empty() {
            request = request.header("content-type", "application/json");
        }
        let request = request.body(self.body.clone()).expect("a valid request");
        support::send(request)
    }
}

#[test]
fn members_only_reads_need_a_fresh_signature_by_an_active_member() {
    let node = DevNode::start();
    let physician = node.key("st-mary-hospital", "dr-ana-ruiz");

    // Public consortium data needs no signature.
    assert_eq!(get(&format!("{}/v1/orgs", node.url)).status, 200);
    let table = get(&format!("{}/v1/authorization", node.url)).json();
    assert!(
        table["allowed"].as_array().expect("rows").iter().any(|row| row
            == &json!({ "organization_kind": "hospital", "role": "physician", "transaction": "anchor" })),
        "{table}"
    );

    get(&format!("{}/v1/whoami", node.url)).assert_problem(401, "missing-signature");
    get(&format!("{}/v1/members", node.url)).assert_problem(401, "missing-signature");

    let whoami = Signed::new(&node, &physician, "GET", "/v1/whoami", b"");
    let me = whoami.send(&node);
    assert_eq!(me.status, 200, "{}", String::from_utf8_lossy(&me.body));
    let me = me.json();
    assert_eq!(me["member"]["public_key"], physician.public_key().to_string());
    assert_eq!(me["member"]["display_name"], "Dr Ana Ruiz");
    assert_eq!(me["organization"]["id"], "st-mary-hospital");

    // The same signed request again is a replay.
    whoami.send(&node).assert_problem(401, "replayed-request");
    // A signature for one path does not open another.
    let mut moved = Signed::new(&node, &physician, "GET", "/v1/whoami", b"");
    moved.path = "/v1/members".to_owned();
    moved.send(&node).assert_problem(401, "bad-request-signature");
    // Two signature headers: refused, whichever would have been read.
    let fresh = Signed::new(&node, &physician, "GET", "/v1/whoami", b"");
    let signature = fresh.headers[1].1.clone();
    fresh.send_with(&node, &[("signature", &signature)]).assert_problem(401, "repeated-header");
    // A valid signature by a key that is not a member's.
    let stranger = SigningKey::from_seed(&[99; 32]);
    Signed::new(&node, &stranger, "GET", "/v1/whoami", b"")
        .send(&node)
        .assert_problem(403, "not-an-active-member");

    // Paging through the directory.
    let page = Signed::new(&node, &physician, "GET", "/v1/members?limit=5", b"").send(&node).json();
    assert_eq!(page["members"].as_array().expect("members").len(), 5);
    let after = page["next_after"].as_str().expect("more pages").to_owned();
    let next =
        Signed::new(&node, &physician, "GET", &format!("/v1/members?limit=5&after={after}"), b"").send(&node);
    assert_eq!(next.status, 200);
    assert!(next.json()["members"][0]["public_key"].as_str().expect("key") > after.as_str());
    Signed::new(&node, &physician, "GET", "/v1/members?limit=0", b"")
        .send(&node)
        .assert_problem(400, "bad-limit");

    // Only the member itself or its own administrator names it.
    let nurse = node.key("st-mary-hospital", "nurse-tom-becker").public_key();
    let body = json!({ "display_name": "Someone Else" }).to_string();
    let path = format!("/v1/members/{nurse}/display-name");
    Signed::new(&node, &physician, "PUT", &path, body.as_bytes())
        .send(&node)
        .assert_problem(403, "not-authorized");
    let foreign_admin = node.key("lakeside-general-hospital", "admin");
    Signed::new(&node, &foreign_admin, "PUT", &path, body.as_bytes())
        .send(&node)
        .assert_problem(403, "not-authorized");
    let own_admin = node.key("st-mary-hospital", "admin");
    let renamed = Signed::new(&node, &own_admin, "PUT", &path, body.as_bytes()).send(&node);
    assert_eq!(renamed.status, 204, "{}", String::from_utf8_lossy(&renamed.body));
    let too_long = json!({ "display_name": "x".repeat(200) }).to_string();
    Signed::new(&node, &own_admin, "PUT", &path, too_long.as_bytes())
        .send(&node)
        .assert_problem(400, "bad-display-name");
    let patient = node.key("patient-link", "patient-1").public_key();
    let patient_admin = node.key("patient-link", "admin");
    let named = Signed::new(
        &node,
        &patient_admin,
        "PUT",
        &format!("/v1/members/{patient}/display-name"),
        body.as_bytes(),
    )
    .send(&node)
    .assert_problem(422, "patients-are-pseudonymous");
    assert!(!named.to_string().contains("Someone Else"));

    // A body that does not match its digest.
    let mut tampered = Signed::new(&node, &own_admin, "PUT", &path, body.as_bytes());
    tampered.body = json!({ "display_name": "Mallory" }).to_string().into_bytes();
    tampered.send(&node).assert_problem(401, "content-digest-mismatch");
}

#[test]
fn a_signed_request_opens_a_bearer_session_that_stops_with_the_members_key() {
    let node = DevNode::start();
    let nurse = node.key("st-mary-hospital", "nurse-tom-becker");
    let bearer = |token: &str| {
        let request = ureq::http::Request::builder()
            .uri(format!("{}/v1/whoami", node.url))
            .header("authorization", format!("Bearer {token}"))
            .body(Vec::new())
            .expect("a valid request");
        support::send(request)
    };
    // No session without a signature.
    support::post(&format!("{}/v1/sessions", node.url), "application/json", b"")
        .assert_problem(401, "missing-signature");
    bearer(&"00".repeat(32)).assert_problem(401, "unknown-session");

    let session = Signed::new(&node, &nurse, "POST", "/v1/sessions", b"").send(&node);
    assert_eq!(session.status, 201, "{}", String::from_utf8_lossy(&session.body));
    let session = session.json();
    let token = session["token"].as_str().expect("a token");
    assert_eq!(token.len(), 64);
    assert_eq!(session["organization"], "st-mary-hospital");
    let me = bearer(token);
    assert_eq!(me.status, 200, "{}", String::from_utf8_lossy(&me.body));
    assert_eq!(me.json()["member"]["public_key"], nurse.public_key().to_string());

    // Revoking the nurse's key ends what its session may do at once.
    let admin = node.key_arg("st-mary-hospital", "admin");
    let nurse_key = nurse.public_key().to_string();
    cli_json(&node, &["member", "revoke", "--key", &admin, "--public-key", &nurse_key, "--wait"]);
    bearer(token).assert_problem(403, "not-an-active-member");
}

//! Identity routes: the organisation registry, governance proposals and the authorization
//! table (public consortium data), and the member directory (authenticated).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use medledger_crypto::PublicKey;
use medledger_node::Node;
use medledger_state::{Account, Organization, authorization, passes_governance};
use medledger_types::{OrgId, Role, TxId};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::auth::Authenticated;
use crate::problem::Problem;

type Shared = State<Arc<Node>>;
type ApiResult<T> = Result<T, Problem>;

/// Most members one page of `GET /v1/members` returns.
pub const MAX_MEMBERS_PAGE: usize = 1000;

/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 128;

/// `GET /v1/orgs`: every organisation, the validator schedule and the parameters.
pub async fn list_orgs(State(node): Shared) -> Json<Value> {
    node.with_chain(|chain| {
        Json(json!({
            "organizations": chain.registry().organizations,
            "validators": chain.validator_schedule(),
            "parameters": chain.parameters(),
        }))
    })
}

/// `GET /v1/orgs/{id}`.
pub async fn get_org(State(node): Shared, Path(id): Path<String>) -> ApiResult<Json<Organization>> {
    let id =
        OrgId::new(id).map_err(|error| Problem::bad_request("bad-organization-id", error.to_string()))?;
    node.with_chain(|chain| chain.registry().get(&id).cloned())
        .map(Json)
        .ok_or_else(|| Problem::not_found(format!("no organisation {id}")))
}

/// `GET /v1/proposals/{id}`: a proposal with its tally against the active organisations now.
pub async fn get_proposal(State(node): Shared, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let id: TxId = id.parse().map_err(|error| Problem::bad_request("bad-proposal-id", format!("{error}")))?;
    node.with_chain(|chain| {
        let proposal = chain.proposal(&id)?;
        let registry = chain.registry();
        let active_approvals =
            proposal.approvals.iter().filter(|org| registry.get(org).is_some_and(|org| org.active)).count();
        let active = registry.active_count();
        Some(Json(json!({
            "id": id,
            "proposal": proposal,
            "tally": {
                "active_organizations": active,
                "active_approvals": active_approvals,
                "passes": passes_governance(active_approvals, active),
            },
        })))
    })
    .ok_or_else(|| Problem::not_found(format!("no proposal {id}")))
}

/// `GET /v1/authorization`: the authorization table, one row per allowed combination.
pub async fn authorization_table() -> Json<Value> {
    let rows: Vec<Value> = authorization::allowed()
        .map(|(kind, role, tx)| json!({ "organization_kind": kind, "role": role, "transaction": tx }))
        .collect();
    Json(json!({ "allowed": rows }))
}

/// A member as the directory shows it.
#[derive(Debug, Serialize)]
pub struct MemberView {
    /// The member key.
    pub public_key: PublicKey,
    /// Account, organisation, role and status on chain.
    #[serde(flatten)]
    pub account: Account,
    /// The name this node's directory holds, if any (never on chain).
    pub display_name: Option<String>,
}

fn member_view(node: &Node, public_key: PublicKey, account: Account) -> ApiResult<MemberView> {
    let display_name = node.store().display_name(&public_key)?;
    Ok(MemberView { public_key, account, display_name })
}

/// `GET /v1/whoami` (authenticated): the caller's own membership.
pub async fn whoami(State(node): Shared, caller: Authenticated) -> ApiResult<Json<Value>> {
    let view = member_view(&node, caller.key, caller.account)?;
    Ok(Json(json!({ "member": view, "organization": caller.organization })))
}

/// Paging for `GET /v1/members`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembersQuery {
    /// Only members of this organisation.
    organization: Option<String>,
    /// Start after this key (the last key of the previous page).
    after: Option<String>,
    /// Page size, at most [`MAX_MEMBERS_PAGE`].
    limit: Option<usize>,
}

/// `GET /v1/members` (authenticated): member keys in key order, one page at a time.
pub async fn list_members(
    State(node): Shared,
    Query(query): Query<MembersQuery>,
    _caller: Authenticated,
) -> ApiResult<Json<Value>> {
    let organization = query
        .organization
        .map(OrgId::new)
        .transpose()
        .map_err(|error| Problem::bad_request("bad-organization-id", error.to_string()))?;
    let after: Option<PublicKey> = query
        .after
        .map(|key| key.parse())
        .transpose()
        .map_err(|error| Problem::bad_request("bad-public-key", format!("after: {error}")))?;
    let limit = query.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_MEMBERS_PAGE {
        return Err(Problem::bad_request("bad-limit", format!("limit must be 1 to {MAX_MEMBERS_PAGE}")));
    }
    let page = node.members_page(organization.as_ref(), after.as_ref(), limit + 1);
    let more = page.len() > limit;
    let members = page
        .into_iter()
        .take(limit)
        .map(|(key, account)| member_view(&node, key, account))
        .collect::<ApiResult<Vec<_>>>()?;
    let next_after = if more { members.last().map(|member| member.public_key) } else { None };
    Ok(Json(json!({ "members": members, "next_after": next_after })))
}

/// `GET /v1/members/{public_key}` (authenticated).
pub async fn get_member(
    State(node): Shared,
    Path(public_key): Path<String>,
    _caller: Authenticated,
) -> ApiResult<Json<MemberView>> {
    let public_key = parse_key(&public_key)?;
    let account = node
        .with_chain(|chain| chain.account(&public_key))
        .ok_or_else(|| Problem::not_found(format!("{public_key} is not a member key")))?;
    member_view(&node, public_key, account).map(Json)
}

/// Body of `PUT /v1/members/{public_key}/display-name`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DisplayName {
    /// The name, or `null` to remove it.
    display_name: Option<String>,
}

/// `PUT /v1/members/{public_key}/display-name` (authenticated): an administrator names a
/// member of its own organisation, or a member names itself, in this node's directory.
pub async fn set_display_name(
    State(node): Shared,
    Path(public_key): Path<String>,
    caller: Authenticated,
) -> ApiResult<StatusCode> {
    let public_key = parse_key(&public_key)?;
    let body: DisplayName = caller.json()?;
    let member = node
        .with_chain(|chain| chain.account(&public_key))
        .ok_or_else(|| Problem::not_found(format!("{public_key} is not a member key")))?;
    let is_self = public_key == caller.key;
    let is_own_administrator =
        caller.account.role == Role::Administrator && member.organization == caller.organization.id;
    if !is_self && !is_own_administrator {
        return Err(Problem::forbidden(
            "not-authorized",
            "only the member itself or an administrator of its organisation may name it",
        ));
    }
    if member.role == Role::Patient && body.display_name.is_some() {
        return Err(Problem::unprocessable(
            "patients-are-pseudonymous",
            "patients are known to the consortium only by their pseudonymous id; the directory holds no names for them",
        ));
    }
    if let Some(name) = &body.display_name {
        check_display_name(name)?;
    }
    node.store().set_display_name(&public_key, body.display_name.as_deref())?;
    Ok(StatusCode::NO_CONTENT)
}

fn check_display_name(name: &str) -> ApiResult<()> {
    let length = name.chars().count();
    if length == 0 || length > MAX_DISPLAY_NAME_CHARS {
        return Err(Problem::bad_request(
            "bad-display-name",
            format!("display_name must be 1 to {MAX_DISPLAY_NAME_CHARS} characters, got {length}"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(Problem::bad_request(
            "bad-display-name",
            "display_name must not contain control characters",
        ));
    }
    Ok(())
}

fn parse_key(text: &str) -> ApiResult<PublicKey> {
    text.parse().map_err(|error| Problem::bad_request("bad-public-key", format!("{error}")))
}

//! The evaluator: `authorize(&Bundle, &Request) -> Response` for requests against a bundle, and
//! `simulate` for the case format (policies given inline). Pure: no I/O, no async, no clock (the time
//! is a field of the request).
pub mod case;
pub mod context;
pub mod decision;
pub mod evaluate;
pub mod request;

pub use self::case::{Case, CaseOutcome, simulate};
pub use self::decision::{Decision, Response, StatementRef, Unmet};
pub use self::evaluate::{Input, Layers, ResourceRule, evaluate, is_trust_action, resource_rule};
pub use self::request::{Request, RequestError, is_derived_key};

use self::context::{Derived, Precedence, RequestContext};
use crate::bundle::{Bundle, Role, Tags};
use crate::policy::arn::{self, PrincipalArn};
use crate::policy::{Policy, PrincipalFacts, PrincipalKind, StatementIndex};
use std::borrow::Cow;
use std::cell::Cell;
use std::sync::Arc;

/// The resolved principal of a bundle request.
struct Resolved<'b> {
    kind: PrincipalKind,
    account: Option<&'b str>,
    identity: &'b [Arc<Policy>],
    index: Option<&'b StatementIndex>,
    boundary: Option<&'b Policy>,
    tags: Option<&'b Tags>,
    derived: Derived<'b>,
    role_name: Option<&'b str>,
    unique_id: Option<&'b str>,
}

/// Answers one request against a bundle. The request must have passed [`Request::validate`]; an
/// unknown principal is an implicit deny with a diagnostic, never an error.
pub fn authorize(bundle: &Bundle, req: &Request) -> Response {
    authorize_with(bundle, req, true)
}

/// [`authorize`], choosing whether the principal's prebuilt statement index is used (`true`) or every
/// policy is scanned in turn (`false`, the reference the index is tested against).
pub fn authorize_with(bundle: &Bundle, req: &Request, use_index: bool) -> Response {
    let Some(resolved) = resolve(bundle, req) else {
        return Response::implicit_deny(format!("principal `{}` is not in the bundle", req.principal));
    };
    // The wire conversion lower-cases actions; other callers may not have.
    let action: Cow<'_, str> = if req.action.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(req.action.to_ascii_lowercase())
    } else {
        Cow::Borrowed(&req.action)
    };
    // A role trust policy is the resource policy of `sts:` actions on a role; any other resource may
    // have one in `resource-policies/` (a bucket policy also governs the bucket's objects).
    let rule = resource_rule(&action, &req.resource);
    let (resource_policy, resource_tags): (Option<&Policy>, _) = if rule == ResourceRule::Trust {
        let Some(r) = bundle.roles.get(req.resource.as_str()) else {
            return Response::implicit_deny(format!(
                "role `{}` is not in the bundle: its trust policy is unknown",
                req.resource
            ));
        };
        (Some(&*r.trust), Some(&r.tags))
    } else {
        (bundle.resource_policy(&req.resource).map(|rp| &*rp.policy), bundle.resource_tags.get(req.resource.as_str()))
    };
    let ctx = RequestContext {
        derived: resolved.derived,
        session_tags: &req.session_tags,
        principal_tags: resolved.tags,
        resource_tags,
        request_resource_tags: &req.resource_tags,
        caller: &req.context,
        now_ms: req.now_ms,
        precedence: Precedence::Derived,
        read_time: Cell::new(false),
    };
    let facts = PrincipalFacts {
        kind: resolved.kind,
        arn: &req.principal,
        account: resolved.account,
        role_name: resolved.role_name,
        unique_id: resolved.unique_id,
    };
    let layers = Layers {
        scps: bundle.scps.as_deref(),
        resource: resource_policy,
        rule,
        boundary: resolved.boundary,
        identity: resolved.identity,
        index: resolved.index.filter(|_| use_index),
    };
    let input = Input { principal: facts, action: &action, resource: &req.resource, ctx: &ctx, explain: req.explain };
    let mut resp = evaluate(&layers, &input);
    resp.reads_time = ctx.read_time.get();
    for (k, _) in req.context.iter() {
        if is_derived_key(k) {
            resp.diagnostics.push(format!("context key `{k}` is derived by Warden; the caller's value was ignored"));
        }
    }
    resp
}

fn resolve<'b>(bundle: &'b Bundle, req: &'b Request) -> Option<Resolved<'b>> {
    let source_identity = req.source_identity.as_deref();
    if arn::is_service_principal(&req.principal) {
        return Some(Resolved {
            kind: PrincipalKind::Service,
            account: None,
            identity: &[],
            index: None,
            boundary: None,
            tags: None,
            // AWS documents no `aws:PrincipalType` for a service principal (its values are Account, User,
            // FederatedUser, AssumedRole, Anonymous): the key is absent, as it is to iam-simulate.
            derived: Derived::default(),
            role_name: None,
            unique_id: None,
        });
    }
    // Most requests come from users and sessions: try the direct lookup before parsing.
    let user = if req.principal.contains(":assumed-role/") { None } else { bundle.users.get(req.principal.as_str()) };
    match user.map_or_else(|| arn::parse_principal(&req.principal), |_| None) {
        None => {
            let u = user?;
            Some(Resolved {
                kind: PrincipalKind::User,
                account: Some(&u.account),
                identity: &u.identity,
                index: Some(&u.index),
                boundary: u.boundary.as_deref(),
                tags: Some(&u.tags),
                derived: Derived {
                    username: Some(&u.name),
                    userid: Some(&u.user_id),
                    session_userid: None,
                    principal_arn: Some(Cow::Borrowed(&u.arn)),
                    account: Some(&u.account),
                    principal_type: Some("User"),
                    source_identity,
                },
                role_name: None,
                unique_id: Some(&u.user_id),
            })
        }
        // A role ARN names a bundle role only exactly: partition, account, path and name.
        Some(PrincipalArn::Role { .. }) => {
            let r = bundle.roles.get(req.principal.as_str())?;
            Some(role_resolved(r, PrincipalKind::Role, None, source_identity))
        }
        // A session ARN carries no path: partition, account and role name.
        Some(PrincipalArn::Session { account, role, session }) => {
            let partition = arn::parse(&req.principal)?.partition;
            let r = bundle.role_by_name(partition, account, role)?;
            Some(role_resolved(r, PrincipalKind::Session, Some(session), source_identity))
        }
        Some(PrincipalArn::User { .. } | PrincipalArn::Root { .. } | PrincipalArn::FederatedUser { .. }) => None,
    }
}

fn role_resolved<'b>(
    r: &'b Role,
    kind: PrincipalKind,
    session: Option<&'b str>,
    source_identity: Option<&'b str>,
) -> Resolved<'b> {
    Resolved {
        kind,
        account: Some(&r.account),
        identity: &r.identity,
        index: Some(&r.index),
        boundary: r.boundary.as_deref(),
        tags: Some(&r.tags),
        derived: Derived {
            username: None,
            userid: Some(&r.role_id),
            session_userid: session.map(|s| (r.role_id.as_str(), s)),
            // For a role session, aws:PrincipalArn is the role ARN (with its path), not the session ARN.
            principal_arn: Some(Cow::Borrowed(&r.arn)),
            account: Some(&r.account),
            principal_type: Some("AssumedRole"),
            source_identity,
        },
        role_name: Some(&r.name),
        unique_id: Some(&r.role_id),
    }
}

#[cfg(test)]
mod resource_tests;
#[cfg(test)]
mod tests;

//! The evaluator: `authorize(&Bundle, &Request) -> Response` for requests against a bundle, and
//! `simulate` for the case format (policies given inline). Pure: no I/O, no async, no clock (the time
//! is a field of the request).
pub mod case;
pub mod context;
pub mod decision;
pub mod evaluate;
pub mod request;

pub use self::case::{Case, CaseOutcome, simulate};
pub use self::decision::{Decision, Response, StatementRef};
pub use self::evaluate::{Input, Layers, evaluate, is_trust_action};
pub use self::request::{Request, RequestError, is_derived_key};

use self::context::{Precedence, RequestContext};
use crate::bundle::{Bundle, Role, Tags};
use crate::policy::arn::{self, PrincipalArn};
use crate::policy::{Policy, PrincipalFacts, PrincipalKind};
use std::borrow::Cow;
use std::cell::Cell;
use std::sync::Arc;

/// The resolved principal of a bundle request.
struct Resolved<'b> {
    facts_kind: PrincipalKind,
    account: Option<&'b str>,
    role: Option<&'b Role>,
    identity: &'b [Arc<Policy>],
    boundary: Option<&'b Policy>,
    tags: Option<&'b Tags>,
    derived: Vec<(&'static str, Cow<'b, str>)>,
    role_name: Option<&'b str>,
    unique_id: Option<&'b str>,
}

/// Answers one request against a bundle. The request must have passed [`Request::validate`]; an
/// unknown principal is an implicit deny with a diagnostic, never an error.
pub fn authorize(bundle: &Bundle, req: &Request) -> Response {
    let action = req.action.to_ascii_lowercase();
    let Some(resolved) = resolve(bundle, req) else {
        return Response::implicit_deny(format!("principal `{}` is not in the bundle", req.principal));
    };
    // A role trust policy is the resource policy of `sts:` actions on a role.
    let mut trust_role: Option<&Role> = None;
    let is_role_resource = arn::parse_principal(&req.resource).is_some_and(|p| matches!(p, PrincipalArn::Role { .. }));
    let trust = is_trust_action(&action) && is_role_resource;
    if trust {
        trust_role = bundle.roles.get(&req.resource).map(|r| &**r);
        if trust_role.is_none() {
            return Response::implicit_deny(format!(
                "role `{}` is not in the bundle: its trust policy is unknown",
                req.resource
            ));
        }
    }
    let resource_tags = match trust_role {
        Some(r) => Some(&r.tags),
        None => bundle.resource_tags.get(&req.resource),
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
        kind: resolved.facts_kind,
        arn: &req.principal,
        account: resolved.account,
        role_name: resolved.role_name,
        unique_id: resolved.unique_id,
    };
    let layers = Layers {
        scps: bundle.scps.as_deref(),
        resource: trust_role.map(|r| &*r.trust),
        trust,
        boundary: resolved.boundary,
        identity: resolved.identity,
    };
    let input = Input {
        principal: facts,
        action: &action,
        resource: &req.resource,
        ctx: &ctx,
        explain: req.explain,
    };
    let mut resp = evaluate(&layers, &input);
    resp.reads_time = ctx.read_time.get();
    for (k, _) in req.context.iter() {
        if is_derived_key(k) {
            resp.diagnostics.push(format!(
                "context key `{k}` is derived by Warden; the caller's value was ignored"
            ));
        }
    }
    let _ = resolved.role;
    resp
}

fn resolve<'b>(bundle: &'b Bundle, req: &'b Request) -> Option<Resolved<'b>> {
    if arn::is_service_principal(&req.principal) {
        return Some(Resolved {
            facts_kind: PrincipalKind::Service,
            account: None,
            role: None,
            identity: &[],
            boundary: None,
            tags: None,
            derived: vec![("aws:principaltype", Cow::Borrowed("Service"))],
            role_name: None,
            unique_id: None,
        });
    }
    let source_identity = req
        .source_identity
        .as_deref()
        .map(|s| ("aws:sourceidentity", Cow::Borrowed(s)));
    match arn::parse_principal(&req.principal)? {
        PrincipalArn::User { .. } => {
            let u = bundle.users.get(&req.principal)?;
            let mut derived = vec![
                ("aws:username", Cow::Borrowed(u.name.as_str())),
                ("aws:userid", Cow::Borrowed(u.user_id.as_str())),
                ("aws:principalarn", Cow::Borrowed(u.arn.as_str())),
                ("aws:principalaccount", Cow::Borrowed(u.account.as_str())),
                ("aws:principaltype", Cow::Borrowed("User")),
            ];
            derived.extend(source_identity);
            Some(Resolved {
                facts_kind: PrincipalKind::User,
                account: Some(&u.account),
                role: None,
                identity: &u.identity,
                boundary: u.boundary.as_deref(),
                tags: Some(&u.tags),
                derived,
                role_name: None,
                unique_id: Some(&u.user_id),
            })
        }
        PrincipalArn::Role { account, name } => {
            let r = bundle
                .roles
                .get(&req.principal)
                .or_else(|| bundle.roles_by_name.get(&(account, name)))?;
            Some(role_resolved(
                r,
                PrincipalKind::Role,
                Cow::Borrowed(r.role_id.as_str()),
                source_identity,
            ))
        }
        PrincipalArn::Session { account, role, session } => {
            let r = bundle.roles_by_name.get(&(account, role))?;
            let userid = Cow::Owned(format!("{}:{session}", r.role_id));
            Some(role_resolved(r, PrincipalKind::Session, userid, source_identity))
        }
        PrincipalArn::Root { .. } | PrincipalArn::FederatedUser { .. } => None,
    }
}

fn role_resolved<'b>(
    r: &'b Role,
    kind: PrincipalKind,
    userid: Cow<'b, str>,
    source_identity: Option<(&'static str, Cow<'b, str>)>,
) -> Resolved<'b> {
    let mut derived = vec![
        ("aws:userid", userid),
        // For a role session, aws:PrincipalArn is the role ARN (with its path), not the session ARN.
        ("aws:principalarn", Cow::Borrowed(r.arn.as_str())),
        ("aws:principalaccount", Cow::Borrowed(r.account.as_str())),
        ("aws:principaltype", Cow::Borrowed("AssumedRole")),
    ];
    derived.extend(source_identity);
    Resolved {
        facts_kind: kind,
        account: Some(&r.account),
        role: Some(r),
        identity: &r.identity,
        boundary: r.boundary.as_deref(),
        tags: Some(&r.tags),
        derived,
        role_name: Some(&r.name),
        unique_id: Some(&r.role_id),
    }
}

#[cfg(test)]
mod tests;

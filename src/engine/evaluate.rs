//! The IAM evaluation order (SPEC §4): explicit deny anywhere; SCPs; resource-based policies (role
//! trust policies included) with what naming a user, a role or a session may override; permissions
//! boundary; identity policies; cross-account. Pure.
use super::decision::{Decision, Response, StatementRef};
use crate::policy::pattern::ArnGlob;
use crate::policy::{
    Context, Effect, Naming, Policy, PrincipalFacts, PrincipalKind, ResourcePattern, Statement, Tri, arn,
};
use std::sync::Arc;

/// The policies that apply to one request.
#[derive(Debug, Clone, Copy)]
pub struct Layers<'a> {
    /// SCPs: `None` when none apply (not "deny all"); `Some(&[])` when SCPs apply and none allow.
    pub scps: Option<&'a [Arc<Policy>]>,
    /// The resource-based policy of the resource, if any.
    pub resource: Option<&'a Policy>,
    /// Whether `resource` is a role trust policy (the action is an `sts:` action on a role): the
    /// trust policy must then allow, identity policies alone never suffice.
    pub trust: bool,
    /// The principal's permissions boundary.
    pub boundary: Option<&'a Policy>,
    /// The principal's identity policies (inline, attached managed, groups').
    pub identity: &'a [Arc<Policy>],
}

/// The request as the evaluator sees it.
#[derive(Clone, Copy)]
pub struct Input<'a> {
    /// Who asks.
    pub principal: PrincipalFacts<'a>,
    /// Lower-cased action.
    pub action: &'a str,
    /// Resource ARN or `*`.
    pub resource: &'a str,
    /// Condition keys.
    pub ctx: &'a dyn Context,
    /// Record a trace.
    pub explain: bool,
}

/// `sts:` actions governed by a role's trust policy.
pub fn is_trust_action(action_lower: &str) -> bool {
    matches!(
        action_lower,
        "sts:assumerole"
            | "sts:assumerolewithsaml"
            | "sts:assumerolewithwebidentity"
            | "sts:tagsession"
            | "sts:setcontext"
            | "sts:setsourceidentity"
    )
}

#[derive(Default)]
struct Hits {
    allows: Vec<StatementRef>,
    denies: Vec<StatementRef>,
    naming: Option<Naming>,
}

struct Eval<'a> {
    input: Input<'a>,
    diagnostics: Vec<String>,
    trace: Vec<String>,
}

/// Evaluates one request against its layers.
pub fn evaluate(layers: &Layers<'_>, input: &Input<'_>) -> Response {
    let mut ev = Eval {
        input: *input,
        diagnostics: Vec::new(),
        trace: Vec::new(),
    };
    let service = input.principal.kind == PrincipalKind::Service;
    // SCPs, boundaries and identity policies govern principals of an account; a service principal has
    // none of them.
    let scps = if service { None } else { layers.scps };
    let scp_hits: Vec<Hits> = scps.unwrap_or(&[]).iter().map(|p| ev.scan(p, false)).collect();
    let res_hits = layers.resource.map(|p| ev.scan(p, true));
    let boundary_hits = if service {
        None
    } else {
        layers.boundary.map(|p| ev.scan(p, false))
    };
    let id_hits: Vec<Hits> = if service {
        Vec::new()
    } else {
        layers.identity.iter().map(|p| ev.scan(p, false)).collect()
    };

    // 1. Any matching Deny.
    let mut denies: Vec<StatementRef> = Vec::new();
    for h in scp_hits
        .iter()
        .chain(res_hits.iter())
        .chain(boundary_hits.iter())
        .chain(id_hits.iter())
    {
        denies.extend(h.denies.iter().cloned());
    }
    if !denies.is_empty() {
        ev.note("explicit deny");
        return ev.finish(Decision::ExplicitDeny, denies);
    }
    let scp_allows: Vec<StatementRef> = scp_hits.iter().flat_map(|h| h.allows.iter().cloned()).collect();
    let id_allows: Vec<StatementRef> = id_hits.iter().flat_map(|h| h.allows.iter().cloned()).collect();
    let res_allows: Vec<StatementRef> = res_hits.as_ref().map(|h| h.allows.clone()).unwrap_or_default();
    let naming = res_hits.as_ref().and_then(|h| h.naming);

    if service {
        if res_allows.is_empty() {
            return ev.deny_because("no resource-based policy allows the service principal");
        }
        return ev.finish(Decision::Allow, res_allows);
    }
    // 2. SCPs apply and none allows.
    if scps.is_some() && scp_allows.is_empty() {
        return ev.deny_because("no service control policy allows the action");
    }
    let boundary_ok = boundary_hits.as_ref().map(|h| !h.allows.is_empty());
    let boundary_allows: Vec<StatementRef> = boundary_hits.as_ref().map(|h| h.allows.clone()).unwrap_or_default();
    let mut determining = scp_allows;
    let resource_account = arn::parse(input.resource).map(|a| a.account).filter(|a| !a.is_empty());
    let cross_account = matches!((input.principal.account, resource_account), (Some(p), Some(r)) if p != r);

    if cross_account {
        // Both sides must allow: the principal's (boundary, identity) and the resource policy.
        if naming.is_none() || res_allows.is_empty() {
            return ev.deny_because(
                "cross-account request: no resource-based policy of the resource account allows the principal",
            );
        }
        if boundary_ok == Some(false) {
            return ev.deny_because("the permissions boundary does not allow the action");
        }
        if id_allows.is_empty() {
            return ev.deny_because("cross-account request: no identity-based policy allows the action");
        }
        determining.extend(res_allows);
        determining.extend(boundary_allows);
        determining.extend(id_allows);
        return ev.finish(Decision::Allow, determining);
    }

    if layers.trust {
        // Role trust policies must allow the principal; identity policies alone are never enough.
        let Some(n) = naming.filter(|_| !res_allows.is_empty()) else {
            return ev.deny_because("the role's trust policy does not allow the principal");
        };
        // The caller's permissions boundary applies to sts:AssumeRole even when the trust policy names
        // the caller (TRUST-UPD; reference §1.3 marks this a conflict: conservative reading).
        if boundary_ok == Some(false) {
            return ev.deny_because("the permissions boundary does not allow the action");
        }
        determining.extend(res_allows);
        determining.extend(boundary_allows);
        if n == Naming::Account {
            if id_allows.is_empty() {
                return ev.deny_because(
                    "the role's trust policy trusts only the account: no identity-based policy allows the action",
                );
            }
            determining.extend(id_allows);
        }
        return ev.finish(Decision::Allow, determining);
    }

    // 3. Same-account resource-based policy naming the principal.
    match naming.filter(|_| !res_allows.is_empty()) {
        Some(Naming::Exact) => {
            determining.extend(res_allows);
            return ev.finish(Decision::Allow, determining);
        }
        Some(Naming::Role | Naming::Wildcard) => {
            // A grant to the role (or to everyone, read conservatively) is still limited by the
            // permissions boundary.
            if boundary_ok != Some(false) {
                determining.extend(res_allows);
                determining.extend(boundary_allows);
                return ev.finish(Decision::Allow, determining);
            }
            ev.note("the resource-based policy allows, but the permissions boundary does not");
        }
        Some(Naming::Account) | None => {}
    }
    // 4. Boundary and identity policies.
    if boundary_ok == Some(false) {
        return ev.deny_because("the permissions boundary does not allow the action");
    }
    if id_allows.is_empty() {
        return ev.deny_because("no identity-based policy allows the action");
    }
    determining.extend(boundary_allows);
    determining.extend(id_allows);
    ev.finish(Decision::Allow, determining)
}

// === impl Eval ===

impl Eval<'_> {
    fn note(&mut self, s: &str) {
        if self.input.explain {
            self.trace.push(s.to_owned());
        }
    }

    fn deny_because(self, reason: &str) -> Response {
        let mut r = self.finish(Decision::ImplicitDeny, Vec::new());
        r.diagnostics.insert(0, reason.to_owned());
        r
    }

    fn finish(self, decision: Decision, determining: Vec<StatementRef>) -> Response {
        Response {
            decision,
            determining,
            diagnostics: self.diagnostics,
            trace: self.trace,
            reads_time: false,
        }
    }

    fn scan(&mut self, policy: &Policy, resource_policy: bool) -> Hits {
        let mut hits = Hits::default();
        for st in &policy.statements {
            let t = self.statement_applies(st);
            let applies = match (t, st.effect) {
                (Tri::True, _) => true,
                (Tri::False, _) => false,
                // Fail closed: a Deny whose condition cannot be decided applies; an Allow does not.
                (Tri::Indeterminate, eff) => {
                    self.diagnostics.push(format!(
                        "{} {}: a condition could not be evaluated from the request; treated as {}",
                        policy.id,
                        st.sid,
                        if eff == Effect::Deny {
                            "matching (deny)"
                        } else {
                            "not matching (allow)"
                        }
                    ));
                    eff == Effect::Deny
                }
            };
            if self.input.explain {
                self.trace.push(format!(
                    "{} {} {}: {}",
                    policy.id,
                    st.sid,
                    st.effect.as_str(),
                    if applies { "applies" } else { "does not apply" }
                ));
            }
            if !applies {
                continue;
            }
            let r = StatementRef::new(policy, st);
            match st.effect {
                Effect::Deny => hits.denies.push(r),
                Effect::Allow => {
                    if resource_policy {
                        let n = match &st.principal {
                            Some((spec, false)) => spec.naming(&self.input.principal),
                            // NotPrincipal Allow: read like a wildcard grant.
                            Some((_, true)) => Some(Naming::Wildcard),
                            None => Some(Naming::Wildcard),
                        };
                        hits.naming = match (hits.naming, n) {
                            (Some(a), Some(b)) => Some(a.min(b)),
                            (a, b) => a.or(b),
                        };
                    }
                    hits.allows.push(r);
                }
            }
        }
        hits
    }

    fn statement_applies(&self, st: &Statement) -> Tri {
        let input = &self.input;
        let (globs, not_action) = &st.actions;
        if globs.iter().any(|g| g.matches(input.action)) == *not_action {
            return Tri::False;
        }
        if let Some((pats, not_resource)) = &st.resources {
            let hit = pats.iter().any(|p| match p {
                ResourcePattern::Static(g) => g.matches(input.resource),
                // An unresolvable variable makes the entry match nothing.
                ResourcePattern::Dynamic(t) => t
                    .resolve_tokens(input.ctx)
                    .and_then(|toks| ArnGlob::new(toks, true))
                    .is_some_and(|g| g.matches(input.resource)),
            });
            if hit == *not_resource {
                return Tri::False;
            }
        }
        if let Some((spec, negated)) = &st.principal {
            let ok = if *negated {
                !spec.excludes(&input.principal)
            } else {
                spec.naming(&input.principal).is_some()
            };
            if !ok {
                return Tri::False;
            }
        }
        let mut out = Tri::True;
        for c in &st.conditions {
            match c.evaluate(input.ctx) {
                Tri::False => return Tri::False,
                Tri::Indeterminate => out = Tri::Indeterminate,
                Tri::True => {}
            }
        }
        out
    }
}

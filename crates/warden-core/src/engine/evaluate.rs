//! The IAM evaluation order (SPEC §4): explicit deny anywhere; SCPs; resource-based policies (role
//! trust policies included) with what naming a user, a role or a session may override; permissions
//! boundary; identity policies; cross-account. Pure.
use super::decision::{Decision, Response, StatementRef, Unmet};
use crate::policy::index;
use crate::policy::pattern::ArnGlob;
use crate::policy::{
    Context, Effect, Layer, Naming, Policy, PrincipalFacts, PrincipalKind, ResourcePattern, Statement, StatementIndex,
    Tri, arn,
};
use std::sync::Arc;

/// The policies that apply to one request.
#[derive(Debug, Clone, Copy)]
pub struct Layers<'a> {
    /// SCPs: `None` when none apply (not "deny all"); `Some(&[])` when SCPs apply and none allow.
    pub scps: Option<&'a [Arc<Policy>]>,
    /// The resource-based policy of the resource, if any.
    pub resource: Option<&'a Policy>,
    /// What the resource-based policy may do for this request ([`resource_rule`]).
    pub rule: ResourceRule,
    /// The principal's permissions boundary.
    pub boundary: Option<&'a Policy>,
    /// The principal's identity policies (inline, attached managed, groups').
    pub identity: &'a [Arc<Policy>],
    /// A prebuilt index of `scps`, `boundary` and `identity` (layers tagged 1, 4, 8): when present it
    /// replaces scanning them policy by policy.
    pub index: Option<&'a StatementIndex>,
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

/// How the resource-based policy of a request's resource takes part (SPEC §4 step 3, §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceRule {
    /// Any other resource (S3 bucket, SQS queue, Secrets Manager secret…): within one account its
    /// resource policy, when there is one, grants alongside the identity policies.
    Optional,
    /// An `sts:` action on a role: the role's trust policy must allow; identity policies alone never
    /// suffice, and the caller's permissions boundary applies even when the caller is named.
    Trust,
    /// A KMS key (`arn:…:kms:REGION:ACCOUNT:key/…`): the key policy must allow, directly or by trusting
    /// the account (then identity policies must allow too); with no key policy, nothing allows.
    KmsKey,
    /// A KMS alias as the resource of an action other than alias management. AWS authorizes such a
    /// request against the key the alias points to, which Warden cannot know: denied, conservatively.
    KmsAlias,
}

impl ResourceRule {
    /// Whether the resource-based policy must allow (identity policies alone never suffice).
    pub fn required(self) -> bool {
        !matches!(self, ResourceRule::Optional)
    }
}

/// The rule for `resource` under the lower-cased `action_lower`.
pub fn resource_rule(action_lower: &str, resource: &str) -> ResourceRule {
    if is_trust_action(action_lower) && matches!(arn::parse_principal(resource), Some(arn::PrincipalArn::Role { .. })) {
        return ResourceRule::Trust;
    }
    let Some(a) = arn::parse(resource) else { return ResourceRule::Optional };
    if a.service != "kms" {
        return ResourceRule::Optional;
    }
    if a.resource.starts_with("key/") {
        ResourceRule::KmsKey
    } else if a.resource.starts_with("alias/")
        && !matches!(action_lower, "kms:createalias" | "kms:deletealias" | "kms:updatealias")
    {
        ResourceRule::KmsAlias
    } else {
        // Alias management: the alias itself is governed by identity policies (AWS KMS developer guide,
        // "Controlling access to aliases"); the key's half of it is a request on the key.
        ResourceRule::Optional
    }
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

/// A counter per layer.
#[derive(Debug, Default)]
struct PerLayer {
    scp: u32,
    resource: u32,
    boundary: u32,
    identity: u32,
}

impl PerLayer {
    fn get(&self, layer: Layer) -> u32 {
        match layer {
            Layer::Scp => self.scp,
            Layer::Resource => self.resource,
            Layer::Boundary => self.boundary,
            Layer::Identity => self.identity,
        }
    }

    fn get_mut(&mut self, layer: Layer) -> &mut u32 {
        match layer {
            Layer::Scp => &mut self.scp,
            Layer::Resource => &mut self.resource,
            Layer::Boundary => &mut self.boundary,
            Layer::Identity => &mut self.identity,
        }
    }
}

/// A statement that applies to the request.
struct Hit<'p> {
    layer: Layer,
    statement: &'p Statement,
}

struct Eval<'a, 'p> {
    input: Input<'a>,
    hits: smallvec::SmallVec<[Hit<'p>; 16]>,
    /// Allow counts per layer, and the number of denies.
    allows: PerLayer,
    denies: u32,
    /// The strongest naming of the principal among applying resource-policy Allow statements.
    naming: Option<Naming>,
    diagnostics: Vec<String>,
    trace: Vec<String>,
    /// With `explain`: the conditions that kept in-scope Allow statements from applying.
    unmet: Vec<Unmet>,
}

/// Evaluates one request against its layers.
pub fn evaluate<'p>(layers: &Layers<'p>, input: &Input<'_>) -> Response {
    // STS API reference: `GetCallerIdentity` needs no permission, and an explicit deny cannot stop it.
    // (Reached only for a principal the caller resolved: an unknown principal is denied before this.)
    if input.action == "sts:getcalleridentity" {
        return Response {
            decision: Decision::Allow,
            determining: Vec::new(),
            diagnostics: vec!["sts:GetCallerIdentity needs no permission and cannot be denied".to_owned()],
            trace: Vec::new(),
            reads_time: false,
            unmet: Vec::new(),
        };
    }
    let mut ev = Eval {
        input: *input,
        hits: smallvec::SmallVec::new(),
        allows: PerLayer::default(),
        denies: 0,
        naming: None,
        diagnostics: Vec::new(),
        trace: Vec::new(),
        unmet: Vec::new(),
    };
    let service = input.principal.kind == PrincipalKind::Service;
    // SCPs, boundaries and identity policies govern principals of an account; a service principal has
    // none of them.
    let scps = if service { None } else { layers.scps };
    match layers.index.filter(|_| !service) {
        Some(ix) => {
            let mut resource_done = false;
            for (layer, p, st) in ix.candidates(input.action) {
                if layer > Layer::Scp && !resource_done {
                    if let Some(rp) = layers.resource {
                        ev.scan(rp, Layer::Resource);
                    }
                    resource_done = true;
                }
                ev.consider(p, st, layer);
            }
            if !resource_done && let Some(rp) = layers.resource {
                ev.scan(rp, Layer::Resource);
            }
        }
        None => {
            for p in scps.unwrap_or(&[]) {
                ev.scan(p, Layer::Scp);
            }
            if let Some(p) = layers.resource {
                ev.scan(p, Layer::Resource);
            }
            if !service {
                if let Some(p) = layers.boundary {
                    ev.scan(p, Layer::Boundary);
                }
                for p in layers.identity {
                    ev.scan(p, Layer::Identity);
                }
            }
        }
    }
    let has = |ev: &Eval<'_, '_>, l: Layer| ev.allows.get(l) > 0;
    use Layer::*;

    // 1. Any matching Deny.
    if ev.denies > 0 {
        ev.note("explicit deny");
        return ev.finish_denies();
    }
    // AWS KMS: without a key policy nobody, not even the account's administrators, may use a key. Checked
    // after the explicit denies (SPEC §4 step 1: a matching Deny decides first, and is reported).
    match layers.rule {
        ResourceRule::KmsKey if layers.resource.is_none() => {
            return ev.deny_because(&format!(
                "KMS key `{}` has no key policy here: a key policy must allow the request (identity \
                 policies alone never suffice)",
                input.resource
            ));
        }
        ResourceRule::KmsAlias => {
            return ev.deny_because(&format!(
                "`{}` is a KMS alias: AWS authorizes a request made through an alias against the key it \
                 points to, which Warden cannot resolve; ask about the key ARN (with `kms:RequestAlias` in \
                 the context)",
                input.resource
            ));
        }
        _ => {}
    }
    let naming = if has(&ev, Resource) { ev.naming } else { None };
    if service {
        if naming.is_none() {
            return ev.deny_because("no resource-based policy allows the service principal");
        }
        return ev.finish_allow(Resource.bit());
    }
    // 2. SCPs apply and none allows.
    if scps.is_some() && !has(&ev, Scp) {
        return ev.deny_because("no service control policy allows the action");
    }
    let boundary_denies = layers.boundary.is_some() && !has(&ev, Boundary);
    // Only a resource of another 12-digit account is cross-account: account-less resources (S3 buckets)
    // and AWS-owned ones (`arn:aws:iam::aws:policy/…`) are decided by the principal's side alone.
    let resource_account = arn::parse(input.resource).map(|a| a.account).filter(|a| arn::is_account_id(a));
    let cross_account = matches!((input.principal.account, resource_account), (Some(p), Some(r)) if p != r);

    if cross_account {
        // Both sides must allow: the principal's (boundary, identity) and the resource policy.
        if naming.is_none() {
            return ev.deny_because(
                "cross-account request: no resource-based policy of the resource account allows the principal",
            );
        }
        if boundary_denies {
            return ev.deny_because("the permissions boundary does not allow the action");
        }
        if !has(&ev, Identity) {
            return ev.deny_because("cross-account request: no identity-based policy allows the action");
        }
        return ev.finish_allow(Scp.bit() | Resource.bit() | Boundary.bit() | Identity.bit());
    }

    // Role trust policies and KMS key policies must allow the principal; identity policies alone are
    // never enough.
    let what = match layers.rule {
        ResourceRule::Trust => "the role's trust policy",
        _ => "the key policy",
    };
    if layers.rule.required() && naming.is_none() {
        return ev.deny_because(&format!("{what} does not allow the principal"));
    }
    // The caller's permissions boundary applies to sts:AssumeRole even when the trust policy names the
    // caller (TRUST-UPD; reference §1.3 marks this a conflict: conservative reading).
    let trust = layers.rule == ResourceRule::Trust;
    if trust && boundary_denies {
        return ev.deny_because("the permissions boundary does not allow the action");
    }

    // 3. Same-account resource-based policy naming the principal. A KMS key policy that names the
    // principal is read like any resource-based policy (reference §1.1 step 4 names no exception for
    // the boundary there, only that the key policy must allow).
    match naming {
        Some(Naming::Exact) => {
            let boundary = if trust { Boundary.bit() } else { 0 };
            return ev.finish_allow(Scp.bit() | Resource.bit() | boundary);
        }
        Some(Naming::Role | Naming::Wildcard) => {
            // A grant to the role (or to everyone, read conservatively) is still limited by the
            // permissions boundary.
            if !boundary_denies {
                return ev.finish_allow(Scp.bit() | Resource.bit() | Boundary.bit());
            }
            ev.note("the resource-based policy allows, but the permissions boundary does not");
        }
        Some(Naming::Account) | None => {}
    }
    // 4. Boundary and identity policies; a required resource policy that trusts only the account
    // delegates to them.
    if boundary_denies {
        return ev.deny_because("the permissions boundary does not allow the action");
    }
    if !has(&ev, Identity) {
        if layers.rule.required() {
            return ev
                .deny_because(&format!("{what} trusts only the account: no identity-based policy allows the action"));
        }
        return ev.deny_because("no identity-based policy allows the action");
    }
    let resource = if layers.rule.required() { Resource.bit() } else { 0 };
    ev.finish_allow(Scp.bit() | resource | Boundary.bit() | Identity.bit())
}

// === impl Eval ===

impl<'p> Eval<'_, 'p> {
    fn note(&mut self, s: &str) {
        if self.input.explain {
            self.trace.push(s.to_owned());
        }
    }

    fn deny_because(self, reason: &str) -> Response {
        let mut diagnostics = self.diagnostics;
        diagnostics.insert(0, reason.to_owned());
        Response {
            decision: Decision::ImplicitDeny,
            determining: Vec::new(),
            diagnostics,
            trace: self.trace,
            reads_time: false,
            unmet: self.unmet,
        }
    }

    fn collect(&self, pred: impl Fn(&Hit<'p>) -> bool) -> Vec<StatementRef> {
        self.hits.iter().filter(|h| pred(h)).map(|h| StatementRef::new(h.statement)).collect()
    }

    fn finish_denies(self) -> Response {
        let determining = self.collect(|h| h.statement.effect == Effect::Deny);
        Response {
            decision: Decision::ExplicitDeny,
            determining,
            diagnostics: self.diagnostics,
            trace: self.trace,
            reads_time: false,
            unmet: self.unmet,
        }
    }

    /// Allow, determined by the Allow statements of the `layers` (a bit set) that were required.
    fn finish_allow(self, layers: u8) -> Response {
        let determining = self.collect(|h| h.statement.effect == Effect::Allow && layers & h.layer.bit() != 0);
        Response {
            decision: Decision::Allow,
            determining,
            diagnostics: self.diagnostics,
            trace: self.trace,
            reads_time: false,
            unmet: self.unmet,
        }
    }

    fn scan(&mut self, policy: &'p Policy, layer: Layer) {
        for st in policy.statements.iter().filter(|st| index::is_candidate(st, self.input.action)) {
            self.consider(policy, st, layer);
        }
    }

    fn consider(&mut self, policy: &'p Policy, st: &'p Statement, layer: Layer) {
        {
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
                        if eff == Effect::Deny { "matching (deny)" } else { "not matching (allow)" }
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
                if self.input.explain && st.effect == Effect::Allow {
                    self.note_unmet(policy, st);
                }
                return;
            }
            match st.effect {
                Effect::Deny => self.denies += 1,
                Effect::Allow => {
                    if layer == Layer::Resource {
                        let n = match &st.principal {
                            Some((spec, false)) => spec.naming(&self.input.principal),
                            // NotPrincipal Allow: read like a wildcard grant.
                            Some((_, true)) | None => Some(Naming::Wildcard),
                        };
                        self.naming = match (self.naming, n) {
                            (Some(a), Some(b)) => Some(a.min(b)),
                            (a, b) => a.or(b),
                        };
                    }
                    *self.allows.get_mut(layer) += 1;
                }
            }
            self.hits.push(Hit { layer, statement: st });
        }
    }

    fn statement_applies(&self, st: &Statement) -> Tri {
        if !self.in_scope(st) {
            return Tri::False;
        }
        let mut out = Tri::True;
        for c in &st.conditions {
            match c.evaluate(self.input.ctx) {
                Tri::False => return Tri::False,
                Tri::Indeterminate => out = Tri::Indeterminate,
                Tri::True => {}
            }
        }
        out
    }

    /// Whether the statement's action, resource and principal match the request (its conditions aside).
    fn in_scope(&self, st: &Statement) -> bool {
        let input = &self.input;
        let (globs, not_action) = &st.actions;
        if globs.iter().any(|g| g.matches(input.action)) == *not_action {
            return false;
        }
        if let Some((pats, not_resource)) = &st.resources {
            let hit = pats.iter().any(|p| match p {
                ResourcePattern::Static(g) => g.matches(input.resource),
                // An unresolvable variable makes the entry match nothing, wherever it is in the ARN.
                ResourcePattern::Dynamic(t) => t
                    .resolve_tokens(input.ctx)
                    .and_then(|toks| ArnGlob::new(toks, true))
                    .is_some_and(|g| g.matches(input.resource)),
            });
            if hit == *not_resource {
                return false;
            }
        }
        if let Some((spec, negated)) = &st.principal {
            let ok = if *negated { !spec.excludes(&input.principal) } else { spec.naming(&input.principal).is_some() };
            if !ok {
                return false;
            }
        }
        true
    }

    /// With `explain`: an Allow statement in scope that did not apply because of a condition records
    /// that condition (key, operator, the policy's values with variables substituted, the request's).
    fn note_unmet(&mut self, policy: &Policy, st: &Statement) {
        if !self.in_scope(st) {
            return;
        }
        let Some(c) = st.conditions.iter().find(|c| c.evaluate(self.input.ctx) != Tri::True) else {
            return;
        };
        let (policy_values, request_values) = c.explain(self.input.ctx);
        self.unmet.push(Unmet {
            policy: policy.id.to_string(),
            sid: st.sid.to_string(),
            operator: c.operator.clone(),
            key: c.key.clone(),
            policy_values,
            request_values,
        });
    }
}

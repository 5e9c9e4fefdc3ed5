//! The case format (SPEC §2.3): policies given inline, like `aws iam simulate-custom-policy`. Every key
//! a policy reads is given in `context`; given keys win over the few Warden derives. Pure.
use super::context::{Derived, Precedence, RequestContext};
use super::decision::Response;
use super::evaluate::{Input, Layers, evaluate, resource_rule};
use crate::policy::arn::{self, PrincipalArn};
use crate::policy::{
    MapContext, Policy, PolicyKind, PrincipalFacts, PrincipalKind, ProblemList, Problems, Value as CtxValue,
};
use serde_json::Value;
use std::borrow::Cow;
use std::cell::Cell;
use std::sync::Arc;

/// A compiled case, ready to evaluate.
#[derive(Debug)]
pub struct Case {
    /// Case id.
    pub id: String,
    identity: Vec<Arc<Policy>>,
    scps: Option<Vec<Arc<Policy>>>,
    resource: Option<Policy>,
    boundary: Option<Policy>,
    principal: String,
    action: String,
    resource_arn: String,
    context: MapContext,
}

/// The result of one case.
#[derive(Debug)]
pub struct CaseOutcome {
    /// Case id (empty if it could not be read).
    pub id: String,
    /// The response, or why the case could not be evaluated.
    pub result: Result<Response, String>,
}

/// Converts a JSON context (`{"key": "v" | ["a", "b"] | 10 | true}`) into a [`MapContext`].
pub fn context_from_json(v: Option<&Value>) -> Result<MapContext, String> {
    let mut ctx = MapContext::default();
    let Some(v) = v else { return Ok(ctx) };
    if v.is_null() {
        return Ok(ctx);
    }
    let Some(o) = v.as_object() else {
        return Err("`context` must be an object".into());
    };
    fn scalar(v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
    for (k, val) in o {
        let lower = k.to_lowercase();
        if ctx.contains(&lower) {
            return Err(format!("context key `{k}` is given twice (keys are case-insensitive)"));
        }
        let cv = match val {
            Value::Array(a) => CtxValue::Many(
                a.iter()
                    .map(scalar)
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| format!("context key `{k}`: values must be strings, numbers or booleans"))?,
            ),
            x => CtxValue::One(scalar(x).ok_or_else(|| {
                format!("context key `{k}`: value must be a string, number, boolean or a list of them")
            })?),
        };
        ctx.insert(k, cv);
    }
    Ok(ctx)
}

// === impl Case ===

impl Case {
    /// Reads and compiles a case; errors are one line each.
    pub fn parse(v: &Value) -> Result<Case, (String, String)> {
        let id = v.get("id").map(|x| match x {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        let id = id.unwrap_or_default();
        let fail = |m: String| (id.clone(), m);
        let obj = v.as_object().ok_or_else(|| fail("a case must be a JSON object".into()))?;
        for k in obj.keys() {
            if !matches!(k.as_str(), "id" | "policies" | "request" | "description" | "expect") {
                return Err(fail(format!("unknown key `{k}` in a case")));
            }
        }
        let pols =
            obj.get("policies").and_then(Value::as_object).ok_or_else(|| fail("missing `policies` object".into()))?;
        for k in pols.keys() {
            if !matches!(k.as_str(), "identity" | "scp" | "resource" | "boundary") {
                return Err(fail(format!("unknown key `policies.{k}`")));
            }
        }
        let mut problems = ProblemList::new();
        let file = format!("case {id}");
        let mut p = Problems::new(&file, &mut problems);
        let list = |key: &str| -> Result<Option<Vec<Value>>, String> {
            match pols.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Array(a)) => Ok(Some(a.clone())),
                Some(_) => Err(format!("`policies.{key}` must be an array of policy documents")),
            }
        };
        let identity_docs = list("identity").map_err(fail)?.unwrap_or_default();
        let scp_docs = list("scp").map_err(fail)?;
        let mut identity = Vec::new();
        for (i, d) in identity_docs.iter().enumerate() {
            if let Some(pol) = Policy::compile(
                d,
                PolicyKind::Identity,
                &format!("identity/{i}"),
                &format!("/policies/identity/{i}"),
                &mut p,
            ) {
                identity.push(Arc::new(pol));
            }
        }
        let scps = scp_docs.map(|docs| {
            docs.iter()
                .enumerate()
                .filter_map(|(i, d)| {
                    Policy::compile(d, PolicyKind::Scp, &format!("scp/{i}"), &format!("/policies/scp/{i}"), &mut p)
                })
                .map(Arc::new)
                .collect::<Vec<_>>()
        });
        let single = |key: &str, kind: PolicyKind, p: &mut Problems<'_>| match pols.get(key) {
            None | Some(Value::Null) => None,
            Some(d) => Policy::compile(d, kind, key, &format!("/policies/{key}"), p),
        };
        let resource = single("resource", PolicyKind::Resource, &mut p);
        let boundary = single("boundary", PolicyKind::Boundary, &mut p);
        if !problems.is_empty() {
            let msgs: Vec<String> = problems.kept().iter().map(|x| format!("{}: {}", x.field, x.message)).collect();
            return Err(fail(format!("invalid policy: {}", msgs.join("; "))));
        }
        let req =
            obj.get("request").and_then(Value::as_object).ok_or_else(|| fail("missing `request` object".into()))?;
        let s = |k: &str| {
            req.get(k)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| fail(format!("`request.{k}` must be a non-empty string")))
        };
        let principal = s("principal")?;
        let action = s("action")?;
        let resource_arn = s("resource")?;
        if principal.is_empty() || action.is_empty() || resource_arn.is_empty() {
            return Err(fail("`request.principal`, `request.action` and `request.resource` must not be empty".into()));
        }
        if arn::parse_principal(&principal).is_none() && !arn::is_service_principal(&principal) {
            return Err(fail(format!(
                "`request.principal` `{principal}` is not an IAM/STS principal ARN or a service principal"
            )));
        }
        let context = context_from_json(req.get("context")).map_err(fail)?;
        Ok(Case { id: id.clone(), identity, scps, resource, boundary, principal, action, resource_arn, context })
    }

    /// Evaluates the case at `now_ms`.
    pub fn evaluate(&self, now_ms: i64) -> Response {
        let parsed = arn::parse_principal(&self.principal);
        let (kind, account, role_name) = match &parsed {
            Some(PrincipalArn::User { account, .. }) => (PrincipalKind::User, Some(*account), None),
            Some(PrincipalArn::Role { account, name }) => (PrincipalKind::Role, Some(*account), Some(*name)),
            Some(PrincipalArn::Session { account, role, .. }) => (PrincipalKind::Session, Some(*account), Some(*role)),
            Some(PrincipalArn::FederatedUser { account, .. }) => (PrincipalKind::FederatedUser, Some(*account), None),
            Some(PrincipalArn::Root { account }) => (PrincipalKind::Root, Some(*account), None),
            None => (PrincipalKind::Service, None, None),
        };
        let mut derived = Derived::default();
        match &parsed {
            Some(PrincipalArn::User { name, account }) => {
                derived.username = Some(name);
                derived.principal_arn = Some(Cow::Borrowed(self.principal.as_str()));
                derived.account = Some(account);
                derived.principal_type = Some("User");
            }
            Some(PrincipalArn::Session { account, role, .. }) => {
                derived.principal_arn = Some(Cow::Owned(format!("arn:aws:iam::{account}:role/{role}")));
                derived.account = Some(account);
                derived.principal_type = Some("AssumedRole");
            }
            Some(PrincipalArn::Role { account, .. }) => {
                derived.principal_arn = Some(Cow::Borrowed(self.principal.as_str()));
                derived.account = Some(account);
                derived.principal_type = Some("AssumedRole");
            }
            Some(PrincipalArn::FederatedUser { account, .. }) => {
                derived.principal_arn = Some(Cow::Borrowed(self.principal.as_str()));
                derived.account = Some(account);
                derived.principal_type = Some("FederatedUser");
            }
            Some(PrincipalArn::Root { account }) => {
                derived.principal_arn = Some(Cow::Borrowed(self.principal.as_str()));
                derived.account = Some(account);
                derived.principal_type = Some("Account");
            }
            // A service principal: AWS documents no `aws:PrincipalType` value for it, so the key is absent.
            None => {}
        }
        let ctx = RequestContext {
            derived,
            session_tags: &[],
            principal_tags: None,
            resource_tags: None,
            request_resource_tags: &[],
            caller: &self.context,
            now_ms,
            precedence: Precedence::Caller,
            read_time: Cell::new(false),
        };
        let facts = PrincipalFacts { kind, arn: &self.principal, account, role_name, unique_id: None };
        let action = self.action.to_ascii_lowercase();
        let layers = Layers {
            scps: self.scps.as_deref(),
            resource: self.resource.as_ref(),
            // The `resource` slot is the resource's policy: a role's trust policy, a KMS key policy (which
            // must then allow), a bucket policy…
            rule: resource_rule(&action, &self.resource_arn),
            boundary: self.boundary.as_ref(),
            identity: &self.identity,
            index: None,
        };
        let input =
            Input { principal: facts, action: &action, resource: &self.resource_arn, ctx: &ctx, explain: false };
        let mut r = evaluate(&layers, &input);
        r.reads_time = ctx.read_time.get();
        r
    }
}

/// Reads, compiles and evaluates one case given as JSON.
pub fn simulate(v: &Value, now_ms: i64) -> CaseOutcome {
    match Case::parse(v) {
        Ok(c) => CaseOutcome { id: c.id.clone(), result: Ok(c.evaluate(now_ms)) },
        Err((id, e)) => CaseOutcome { id, result: Err(e) },
    }
}

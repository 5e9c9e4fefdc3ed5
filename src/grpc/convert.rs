//! `proto::AuthorizeRequest` → `engine::Request` and `engine::Response` → `proto::AuthorizeResponse`.
//! Destructures every field by name, so a new proto field stops the build until it is handled; errors
//! name the field (`principal.arn`) and the rule.
use crate::proto;
use pbjson_types::value::Kind;
use warden_core::engine::{self, Decision, RequestError};
use warden_core::identity::{Check, Determining};
use warden_core::policy::{MapContext, Value as CtxValue};

/// Most values of one multivalued context key.
const MAX_VALUES_PER_KEY: usize = 1024;

fn scalar(kind: &Kind, field: &str) -> Result<String, RequestError> {
    match kind {
        Kind::StringValue(s) => Ok(s.clone()),
        Kind::BoolValue(b) => Ok(b.to_string()),
        Kind::NumberValue(n) => {
            if !n.is_finite() {
                return Err(RequestError::new(field, "number is not finite"));
            }
            // IAM string form: integers without a fraction.
            if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
                Ok(format!("{}", *n as i64))
            } else {
                Ok(n.to_string())
            }
        }
        Kind::NullValue(_) => Err(RequestError::new(field, "null is not a condition value")),
        Kind::StructValue(_) => Err(RequestError::new(field, "an object is not a condition value")),
        Kind::ListValue(_) => Err(RequestError::new(field, "nested lists are not condition values")),
    }
}

/// Converts a `google.protobuf.Struct` of condition keys.
pub fn context_from_struct(s: Option<pbjson_types::Struct>) -> Result<MapContext, RequestError> {
    let mut ctx = MapContext::default();
    let Some(s) = s else { return Ok(ctx) };
    if s.fields.len() > engine::request::MAX_CONTEXT_KEYS {
        return Err(RequestError::new(
            "context",
            format!("{} keys exceed the limit of {}", s.fields.len(), engine::request::MAX_CONTEXT_KEYS),
        ));
    }
    let mut keys: Vec<_> = s.fields.into_iter().collect();
    keys.sort_by(|a, b| a.0.cmp(&b.0));
    for (k, v) in keys {
        let field = format!("context.{k}");
        let lower = k.to_lowercase();
        if ctx.contains(&lower) {
            return Err(RequestError::new(field, "given twice (condition keys are case-insensitive)"));
        }
        let Some(kind) = v.kind else {
            return Err(RequestError::new(field, "has no value"));
        };
        let value = match kind {
            Kind::ListValue(l) => {
                if l.values.len() > MAX_VALUES_PER_KEY {
                    return Err(RequestError::new(field, format!("more than {MAX_VALUES_PER_KEY} values")));
                }
                let mut vals = Vec::with_capacity(l.values.len());
                for (i, x) in l.values.iter().enumerate() {
                    let f = format!("{field}[{i}]");
                    let kind = x.kind.as_ref().ok_or_else(|| RequestError::new(f.clone(), "has no value"))?;
                    vals.push(scalar(kind, &f)?);
                }
                CtxValue::Many(vals)
            }
            k => CtxValue::One(scalar(&k, &field)?),
        };
        ctx.insert(&k, value);
    }
    ctx.sort();
    Ok(ctx)
}

/// Converts a wire request; `now_ms` is the request time.
pub fn request_from_proto(r: proto::AuthorizeRequest, now_ms: i64) -> Result<engine::Request, RequestError> {
    let proto::AuthorizeRequest { principal, action, resource, context, resource_tags, explain } = r;
    let Some(principal) = principal else {
        return Err(RequestError::new("principal", "is required"));
    };
    let proto::Principal { arn, session_tags, source_identity, identity_center_user } = principal;
    // Identity Center evidence matters to PropagateIdentity, not to IAM evaluation.
    let _ = identity_center_user;
    let mut session_tags: Vec<(String, String)> = session_tags.into_iter().collect();
    session_tags.sort();
    let mut resource_tags: Vec<(String, String)> = resource_tags.into_iter().collect();
    resource_tags.sort();
    let req = engine::Request {
        principal: arn,
        session_tags,
        source_identity: Some(source_identity).filter(|s| !s.is_empty()),
        // Action names are case-insensitive: lower-cased once here.
        action: action.to_ascii_lowercase(),
        resource,
        context: context_from_struct(context)?,
        resource_tags,
        now_ms,
        explain,
    };
    req.validate()?;
    Ok(req)
}

/// The wire decision.
pub fn decision_to_proto(d: Decision) -> proto::Decision {
    match d {
        Decision::Allow => proto::Decision::Allow,
        Decision::ExplicitDeny => proto::Decision::ExplicitDeny,
        Decision::ImplicitDeny => proto::Decision::ImplicitDeny,
    }
}

/// The wire form of determining statements.
pub fn statement_refs(refs: &[warden_core::engine::StatementRef]) -> Vec<proto::StatementRef> {
    refs.iter().map(|s| statement_ref(s, proto::Check::Unspecified)).collect()
}

fn statement_ref(s: &warden_core::engine::StatementRef, check: proto::Check) -> proto::StatementRef {
    proto::StatementRef {
        policy: s.policy.to_string(),
        sid: s.sid.to_string(),
        effect: s.effect.as_str().to_owned(),
        file: s.file.to_string(),
        check: check as i32,
    }
}

/// The wire enum of a PropagateIdentity check (`CHECK_UNSPECIFIED` for the non-IAM checks, which
/// never determine statements).
pub fn check_to_proto(c: Check) -> proto::Check {
    match c {
        Check::Authorize => proto::Check::Authorize,
        Check::TrustAssumeRole => proto::Check::TrustAssumeRole,
        Check::TrustTagSession => proto::Check::TrustTagSession,
        Check::TrustSetContext => proto::Check::TrustSetContext,
        Check::AccessGrants => proto::Check::AccessGrants,
        Check::IdentityCenterEvidence
        | Check::DomainAssignment
        | Check::TeamMembership
        | Check::ProfileOwnership
        | Check::AuthMode
        | Check::PartnerAppIdentity
        | Check::TrustedIdentityPropagation
        | Check::ExecutionRole
        | Check::BackgroundSession => proto::Check::Unspecified,
    }
}

/// PropagateIdentity's determining statements, each with its check.
pub fn determining_refs(d: &[Determining]) -> Vec<proto::StatementRef> {
    d.iter().map(|x| statement_ref(&x.statement, check_to_proto(x.check))).collect()
}

/// Converts an engine response.
pub fn response_to_proto(
    r: &engine::Response,
    revision: &str,
    cached: bool,
    decision_id: String,
) -> proto::AuthorizeResponse {
    proto::AuthorizeResponse {
        decision: decision_to_proto(r.decision) as i32,
        determining: statement_refs(&r.determining),
        bundle_revision: revision.to_owned(),
        diagnostics: r.diagnostics.clone(),
        cached,
        trace: r.trace.clone(),
        decision_id,
    }
}

/// The `authorize` requests of a bundle's own test cases (`tests/*.json`), converted as the server
/// converts them: the request mix of the benchmarks and profiling tools. Cases that do not convert are
/// skipped.
pub fn test_case_requests(bundle: &warden_core::bundle::Bundle, now_ms: i64) -> Vec<engine::Request> {
    bundle
        .tests
        .iter()
        .filter_map(|t| t.body.get("authorize"))
        .filter_map(|r| serde_json::from_value::<proto::AuthorizeRequest>(r.clone()).ok())
        .filter_map(|r| request_from_proto(r, now_ms).ok())
        .collect()
}

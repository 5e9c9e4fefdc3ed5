//! The domain request of `Authorize` and its validation: every rule names the field it concerns. Pure.
use crate::policy::{MapContext, Value, arn};

/// Most context keys a request may carry.
pub const MAX_CONTEXT_KEYS: usize = 256;

/// One Authorize request, already converted from the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// Principal ARN (IAM user, role, assumed-role session) or service principal.
    pub principal: String,
    /// STS session tags (or SAML `PrincipalTag:` attributes).
    pub session_tags: Vec<(String, String)>,
    /// Source identity of the session.
    pub source_identity: Option<String>,
    /// Action as given.
    pub action: String,
    /// Resource ARN or `*`.
    pub resource: String,
    /// Caller-given condition keys (stored lower-cased).
    pub context: MapContext,
    /// Tags of a resource the bundle does not know.
    pub resource_tags: Vec<(String, String)>,
    /// Request time, milliseconds since the epoch (the engine reads no clock).
    pub now_ms: i64,
    /// Record an evaluation trace.
    pub explain: bool,
}

/// A request that breaks a rule: the field (e.g. `principal.arn`) and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {rule}")]
pub struct RequestError {
    /// Dotted field path.
    pub field: String,
    /// What is wrong.
    pub rule: String,
}

impl RequestError {
    /// A new error.
    pub fn new(field: impl Into<String>, rule: impl Into<String>) -> RequestError {
        RequestError { field: field.into(), rule: rule.into() }
    }
}

/// Keys Warden derives from the principal, the bundle and the clock: a caller can never set them.
pub fn is_derived_key(key_lower: &str) -> bool {
    matches!(
        key_lower,
        "aws:username"
            | "aws:userid"
            | "aws:principalarn"
            | "aws:principalaccount"
            | "aws:principaltype"
            | "aws:sourceidentity"
            | "aws:currenttime"
            | "aws:epochtime"
    ) || key_lower.starts_with("aws:principaltag/")
        || key_lower.starts_with("aws:resourcetag/")
        || key_lower.starts_with("sagemaker:resourcetag/")
}

// === impl Request ===

impl Request {
    /// Checks the request; the first broken rule is returned.
    pub fn validate(&self) -> Result<(), RequestError> {
        if self.principal.is_empty() {
            return Err(RequestError::new("principal.arn", "must not be empty"));
        }
        if arn::parse_principal(&self.principal).is_none() && !arn::is_service_principal(&self.principal) {
            return Err(RequestError::new(
                "principal.arn",
                format!(
                    "`{}` is not an IAM user, role or assumed-role session ARN, nor a service principal",
                    self.principal
                ),
            ));
        }
        if self.action.is_empty() {
            return Err(RequestError::new("action", "must not be empty"));
        }
        let ok = self.action.split_once(':').is_some_and(|(s, a)| {
            !s.is_empty()
                && !a.is_empty()
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && a.bytes().all(|b| b.is_ascii_alphanumeric())
        });
        if !ok {
            return Err(RequestError::new("action", format!("`{}` is not `service:Action`", self.action)));
        }
        if self.resource.is_empty() {
            return Err(RequestError::new("resource", "must not be empty"));
        }
        if self.resource != "*" && arn::parse(&self.resource).is_none() {
            return Err(RequestError::new("resource", format!("`{}` is not an ARN or `*`", self.resource)));
        }
        if self.context.len() > MAX_CONTEXT_KEYS {
            return Err(RequestError::new(
                "context",
                format!("{} keys exceed the limit of {MAX_CONTEXT_KEYS}", self.context.len()),
            ));
        }
        for (k, v) in self.context.iter() {
            if !k.contains(':') {
                return Err(RequestError::new(
                    format!("context.{k}"),
                    "a condition key needs a service prefix, e.g. `aws:SourceIp`",
                ));
            }
            if let Value::Many(vals) = v
                && vals.len() > 1024
            {
                return Err(RequestError::new(format!("context.{k}"), "more than 1024 values"));
            }
        }
        let mut seen: Vec<String> = Vec::new();
        for (k, _) in &self.session_tags {
            let l = k.to_lowercase();
            if k.is_empty() || k.len() > 128 {
                return Err(RequestError::new(
                    "principal.session_tags",
                    format!("tag key `{k}` must be 1–128 characters"),
                ));
            }
            if seen.contains(&l) {
                return Err(RequestError::new("principal.session_tags", format!("tag keys `{k}` differ only in case")));
            }
            seen.push(l);
        }
        Ok(())
    }
}

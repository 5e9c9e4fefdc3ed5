//! The domain request of `Authorize` and its validation: every rule names the field it concerns. Pure.
use crate::policy::{MapContext, Value, arn, ident};

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
        ident::check_principal_arn(&self.principal).map_err(|r| RequestError::new("principal.arn", r))?;
        ident::check_session_tags(self.session_tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map_err(|r| RequestError::new("principal.session_tags", r))?;
        if let Some(s) = &self.source_identity {
            ident::check_source_identity(s).map_err(|r| RequestError::new("principal.source_identity", r))?;
        }
        if self.action.is_empty() {
            return Err(RequestError::new("action", "must not be empty"));
        }
        let ok = self.action.len() <= ident::MAX_ACTION_CHARS
            && self.action.split_once(':').is_some_and(|(s, a)| {
                !s.is_empty()
                    && !a.is_empty()
                    && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && a.bytes().all(|b| b.is_ascii_alphanumeric())
            });
        if !ok {
            return Err(RequestError::new(
                "action",
                format!(
                    "{} is not `service:Action` of at most {} characters",
                    ident::quote(&self.action),
                    ident::MAX_ACTION_CHARS
                ),
            ));
        }
        if self.resource.is_empty() {
            return Err(RequestError::new("resource", "must not be empty"));
        }
        if self.resource != "*" {
            ident::check_arn_text(&self.resource).map_err(|r| RequestError::new("resource", r))?;
            if arn::parse(&self.resource).is_none() {
                return Err(RequestError::new(
                    "resource",
                    format!("{} is not an ARN or `*`", ident::quote(&self.resource)),
                ));
            }
        }
        ident::check_resource_tags(self.resource_tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map_err(|r| RequestError::new("resource_tags", r))?;
        check_context(&self.context, "context")
    }
}

/// Checks caller-given condition keys: at most 256 keys with a service prefix and at most 256
/// characters, values of at most 4 KiB, lists of at most 1,024 values. `field` prefixes the names.
pub fn check_context(context: &MapContext, field: &str) -> Result<(), RequestError> {
    if context.len() > MAX_CONTEXT_KEYS {
        return Err(RequestError::new(field, format!("{} keys exceed the limit of {MAX_CONTEXT_KEYS}", context.len())));
    }
    for (k, v) in context.iter() {
        let key_field = || format!("{field}.{}", k.chars().take(ident::QUOTE_CHARS).collect::<String>());
        if k.chars().count() > ident::MAX_CONTEXT_KEY_CHARS || k.chars().any(char::is_control) {
            return Err(RequestError::new(
                key_field(),
                format!(
                    "a condition key is at most {} characters, without control characters",
                    ident::MAX_CONTEXT_KEY_CHARS
                ),
            ));
        }
        if !k.contains(':') {
            return Err(RequestError::new(key_field(), "a condition key needs a service prefix, e.g. `aws:SourceIp`"));
        }
        let values: &[String] = match v {
            Value::One(s) => std::slice::from_ref(s),
            Value::Many(vals) => vals,
        };
        if values.len() > ident::MAX_LIST_ITEMS {
            return Err(RequestError::new(
                key_field(),
                format!("{} values exceed the limit of {}", values.len(), ident::MAX_LIST_ITEMS),
            ));
        }
        if let Some(big) = values.iter().find(|s| s.len() > ident::MAX_CONTEXT_VALUE_BYTES) {
            return Err(RequestError::new(
                key_field(),
                format!("a value of {} bytes exceeds the limit of {}", big.len(), ident::MAX_CONTEXT_VALUE_BYTES),
            ));
        }
    }
    Ok(())
}

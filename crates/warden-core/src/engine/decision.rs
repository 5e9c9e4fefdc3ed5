//! The answer of an evaluation: a three-valued decision and the statements that determined it. Pure.
use crate::policy::{Statement, StatementInfo};
use std::sync::Arc;

/// The outcome of an IAM evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Some layer allowed and nothing denied.
    Allow,
    /// A matching `Deny` statement.
    ExplicitDeny,
    /// No applicable `Allow` (in some required layer).
    ImplicitDeny,
}

impl Decision {
    /// `Allow`, `ExplicitDeny` or `ImplicitDeny` (the case format's spelling).
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "Allow",
            Decision::ExplicitDeny => "ExplicitDeny",
            Decision::ImplicitDeny => "ImplicitDeny",
        }
    }
}

/// A statement that determined a decision (shared, cheap to clone; fields through `Deref`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StatementRef(Arc<StatementInfo>);

impl StatementRef {
    /// The reference to a compiled statement.
    pub fn new(st: &Statement) -> StatementRef {
        StatementRef(st.info.clone())
    }
}

impl std::ops::Deref for StatementRef {
    type Target = StatementInfo;
    fn deref(&self) -> &StatementInfo {
        &self.0
    }
}

/// The answer of the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The decision.
    pub decision: Decision,
    /// Explicit deny: every matching Deny statement. Allow: every matching Allow statement of each
    /// layer that was required. Implicit deny: empty.
    pub determining: Vec<StatementRef>,
    /// Why (for implicit deny: the layer that lacked an Allow) and anything noteworthy.
    pub diagnostics: Vec<String>,
    /// Evaluation steps, only when asked for.
    pub trace: Vec<String>,
    /// Whether evaluation read `aws:CurrentTime` or `aws:EpochTime` (such decisions are not cached).
    pub reads_time: bool,
    /// Only when asked for (`explain`): for each Allow statement whose action, resource and principal
    /// matched, the condition that kept it from applying.
    pub unmet: Vec<Unmet>,
}

/// A condition that kept an Allow statement from applying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmet {
    /// Policy id.
    pub policy: String,
    /// `Sid` or `#INDEX`.
    pub sid: String,
    /// The operator as written, e.g. `StringEquals`.
    pub operator: String,
    /// The condition key as written, e.g. `sts:RoleSessionName`.
    pub key: String,
    /// The policy's values, variables substituted from the request where they resolve.
    pub policy_values: Vec<String>,
    /// The request's value(s) of the key; `None` when the request has none.
    pub request_values: Option<Vec<String>>,
}

impl Response {
    /// An implicit deny with one diagnostic.
    pub fn implicit_deny(reason: impl Into<String>) -> Response {
        Response {
            decision: Decision::ImplicitDeny,
            determining: Vec::new(),
            diagnostics: vec![reason.into()],
            trace: Vec::new(),
            reads_time: false,
            unmet: Vec::new(),
        }
    }
}

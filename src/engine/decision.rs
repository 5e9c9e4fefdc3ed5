//! The answer of an evaluation: a three-valued decision and the statements that determined it. Pure.
use crate::policy::{Effect, Policy, Statement};
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

/// A statement that determined a decision.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StatementRef {
    /// Stable policy id.
    pub policy: Arc<str>,
    /// `Sid` or `#INDEX`.
    pub sid: Arc<str>,
    /// The statement's effect.
    pub effect: Effect,
    /// Bundle file of the policy.
    pub file: Arc<str>,
}

impl StatementRef {
    /// The reference to `st` of `policy`.
    pub fn new(policy: &Policy, st: &Statement) -> StatementRef {
        StatementRef {
            policy: policy.id.clone(),
            sid: st.sid.clone(),
            effect: st.effect,
            file: policy.file.clone(),
        }
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
        }
    }
}

//! PropagateIdentity (SPEC §5): which user name goes to a partner app and from where, root admins,
//! Studio user profiles (Identity Center and per-team IAM domains), and the trusted-identity context of
//! jobs. Pure: it reads the bundle and asks an injected `authorize` function (the engine, possibly
//! cached) for every IAM decision.
pub mod admins;
pub mod evidence;
pub mod partner_app;
pub mod studio;

use crate::bundle::Bundle;
use crate::engine::{self, Decision, StatementRef};
use crate::policy::MapContext;

pub use self::admins::{AdminMemory, RevokeError};

/// The IAM decision function used for every authorization step (the engine, or its cached front).
pub type AuthorizeFn<'a> = &'a dyn Fn(&Bundle, &engine::Request) -> engine::Response;

/// Launch channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// From Studio.
    Studio,
    /// `CreatePartnerAppPresignedUrl` directly.
    PresignedUrlApi,
    /// The partner SDK (`CallPartnerAppApi`).
    Sdk,
}

/// Identity Center evidence.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IcEvidence {
    /// User id.
    pub user_id: String,
    /// User name.
    pub user_name: String,
    /// Identity store ARN.
    pub identity_store_arn: String,
}

/// The caller's evidence.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    /// Identity Center user.
    pub ic: Option<IcEvidence>,
    /// IAM user or assumed-role session ARN.
    pub principal: Option<String>,
    /// STS session tags.
    pub session_tags: Vec<(String, String)>,
    /// SAML attributes by full name.
    pub saml: Vec<(String, String)>,
    /// Source identity.
    pub source_identity: Option<String>,
    /// The principal that assumed the session's role.
    pub assumed_by: Option<String>,
    /// Further condition keys.
    pub context: MapContext,
}

/// What the identity is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A partner app.
    PartnerApp {
        /// App ARN.
        arn: String,
        /// Channel STUDIO: the domain.
        domain_id: Option<String>,
        /// Channel STUDIO on an IAM domain: the user profile.
        user_profile: Option<String>,
        /// Channel STUDIO on an IAM domain: the team.
        team_id: Option<String>,
    },
    /// A Studio user profile.
    Profile {
        /// Domain.
        domain_id: String,
        /// Team (per-team domains).
        team_id: Option<String>,
    },
    /// A job with trusted identity propagation.
    Job {
        /// Domain.
        domain_id: String,
        /// `MaxRuntimeInSeconds` (validated 1–2,419,200).
        max_runtime_seconds: u32,
        /// When the background session started (ms since the epoch; default now).
        background_started_ms: Option<i64>,
    },
}

/// A PropagateIdentity request.
#[derive(Debug, Clone)]
pub struct Request {
    /// Target.
    pub target: Target,
    /// Channel (required for partner apps; ignored otherwise).
    pub channel: Option<Channel>,
    /// Evidence.
    pub evidence: Evidence,
    /// Request time.
    pub now_ms: i64,
}

/// Where the user name came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Identity Center user name.
    IdentityCenter,
    /// STS session tag `SageMakerPartnerAppUser`.
    SessionTag,
    /// SAML `PrincipalTag:SageMakerPartnerAppUser`.
    SamlPrincipalTag,
    /// IAM user name.
    IamUser,
    /// Assumed-role session name.
    SessionName,
}

/// A user's rights in a partner app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminRole {
    /// In `AdminUsers`.
    RootAdmin,
    /// Removed from a comet app's `AdminUsers`, not revoked.
    Admin,
    /// Everyone else.
    User,
}

/// A Studio user profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Name.
    pub name: String,
    /// ARN.
    pub arn: String,
    /// Execution role.
    pub execution_role_arn: String,
    /// Tags.
    pub tags: Vec<(String, String)>,
}

/// CloudTrail-style identity of a job's execution-role session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobIdentity {
    /// Execution role ARN.
    pub execution_role_arn: String,
    /// Role id.
    pub role_id: String,
    /// Role name.
    pub role_name: String,
    /// Account.
    pub account: String,
    /// `min(MaxRuntimeInSeconds, time left in the background session)`.
    pub effective_max_runtime_seconds: u32,
    /// Background session expiry (ms since the epoch).
    pub background_session_expires_ms: i64,
    /// Identity Center user id.
    pub user_id: String,
    /// Identity store ARN.
    pub identity_store_arn: String,
}

/// The answer.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Propagated user name (partner apps).
    pub user_name: Option<String>,
    /// Its source.
    pub source: Option<Source>,
    /// Admin role (partner apps).
    pub admin_role: Option<AdminRole>,
    /// Trust policy re-check passed (only with `assumed_by`).
    pub trust_verified: bool,
    /// Statements that allowed the authorization step and the trust re-check.
    pub determining: Vec<StatementRef>,
    /// Profile (profile targets).
    pub profile: Option<Profile>,
    /// Job identity (job targets).
    pub job: Option<JobIdentity>,
    /// Notes.
    pub diagnostics: Vec<String>,
}

/// What kind of failure (SPEC §5.5 order of checks). The wire layer maps each kind to its status
/// code; the core knows no protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed (names the field).
    Malformed,
    /// The target (app, domain, team) is not in the bundle.
    UnknownTarget,
    /// Not authorized, evidence that does not check out, impersonation.
    NotAuthorized,
    /// An identity rule or a domain/TIP precondition does not hold.
    Precondition,
}

/// A failure with its kind, the field it names (for INVALID_ARGUMENT) and, for authorization
/// failures, the IAM decision.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    /// Kind.
    pub kind: ErrorKind,
    /// Field (`partner_app.arn`, `evidence.principal_arn`, …).
    pub field: Option<String>,
    /// One-line message.
    pub message: String,
    /// The IAM decision behind a PERMISSION_DENIED.
    pub decision: Option<Box<engine::Response>>,
}

impl Error {
    /// INVALID_ARGUMENT naming a field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Error {
        Error { kind: ErrorKind::Malformed, field: Some(field.to_owned()), message: message.into(), decision: None }
    }
    /// NOT_FOUND.
    pub fn not_found(message: impl Into<String>) -> Error {
        Error { kind: ErrorKind::UnknownTarget, field: None, message: message.into(), decision: None }
    }
    /// PERMISSION_DENIED.
    pub fn denied(message: impl Into<String>) -> Error {
        Error { kind: ErrorKind::NotAuthorized, field: None, message: message.into(), decision: None }
    }
    /// FAILED_PRECONDITION.
    pub fn precondition(message: impl Into<String>) -> Error {
        Error { kind: ErrorKind::Precondition, field: None, message: message.into(), decision: None }
    }
}

/// Describes an IAM decision for an error message: the decision and what determined it.
pub fn describe_decision(r: &engine::Response) -> String {
    let d = match r.decision {
        Decision::Allow => "ALLOW",
        Decision::ExplicitDeny => "EXPLICIT_DENY",
        Decision::ImplicitDeny => "IMPLICIT_DENY",
    };
    if r.determining.is_empty() {
        match r.diagnostics.first() {
            Some(why) => format!("{d} ({why})"),
            None => d.to_owned(),
        }
    } else {
        let by: Vec<String> = r.determining.iter().map(|s| format!("{} {}", s.policy, s.sid)).collect();
        format!("{d} by {}", by.join(", "))
    }
}

/// Answers a PropagateIdentity request against a bundle and the remembered admins.
pub fn propagate(
    bundle: &Bundle,
    admins: &AdminMemory,
    req: &Request,
    authorize: AuthorizeFn<'_>,
) -> Result<Outcome, Error> {
    evidence::validate(&req.evidence)?;
    match &req.target {
        Target::PartnerApp { .. } => partner_app::propagate(bundle, admins, req, authorize),
        Target::Profile { .. } => studio::profile(bundle, req, authorize),
        Target::Job { .. } => studio::job(bundle, req, authorize),
    }
}

#[cfg(test)]
mod tests;

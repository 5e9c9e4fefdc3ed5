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
        /// `TRAINING` or `PROCESSING`, when given.
        job_type: Option<String>,
        /// The job's ARN (`…:training-job/NAME`, `…:processing-job/NAME`), when given.
        job_arn: Option<String>,
        /// `MaxRuntimeInSeconds` as given (validated 1–2,419,200; absent: 86,400).
        max_runtime_seconds: Option<u32>,
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

/// A check of PropagateIdentity: what a determining statement came from, and what failed in a denial
/// (the `reason` of its `google.rpc.ErrorInfo`). The first five are IAM evaluations and are the only
/// ones determining statements name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Check {
    /// The authorization step (`CreatePartnerAppPresignedUrl`, `CallPartnerAppApi`,
    /// `CreatePresignedDomainUrl`).
    Authorize,
    /// A trust policy for `sts:AssumeRole` (impersonation re-check; TIP execution role).
    TrustAssumeRole,
    /// A trust policy for `sts:TagSession` (impersonation re-check).
    TrustTagSession,
    /// The execution role's trust policy for `sts:SetContext` (TIP).
    TrustSetContext,
    /// The execution role's S3 Access Grants permissions (TIP).
    AccessGrants,
    /// Identity Center evidence that does not check out (store, user id, user name).
    IdentityCenterEvidence,
    /// The Identity Center user is not assigned to the domain.
    DomainAssignment,
    /// The Studio user is not a member of the team.
    TeamMembership,
    /// The user profile is not the Studio user's.
    ProfileOwnership,
    /// The evidence does not fit the domain's authentication mode.
    AuthMode,
    /// No rule of §5.1 names the partner-app user.
    PartnerAppIdentity,
    /// Trusted identity propagation is not enabled on the domain, or needs Identity Center evidence.
    TrustedIdentityPropagation,
    /// No execution role, or one the bundle does not have.
    ExecutionRole,
    /// User background sessions disabled or expired.
    BackgroundSession,
}

impl Check {
    /// The wire name (`AUTHORIZE`, `TRUST_ASSUME_ROLE`, …), used as the `ErrorInfo` reason.
    pub fn as_str(self) -> &'static str {
        match self {
            Check::Authorize => "AUTHORIZE",
            Check::TrustAssumeRole => "TRUST_ASSUME_ROLE",
            Check::TrustTagSession => "TRUST_TAG_SESSION",
            Check::TrustSetContext => "TRUST_SET_CONTEXT",
            Check::AccessGrants => "ACCESS_GRANTS",
            Check::IdentityCenterEvidence => "IDENTITY_CENTER_EVIDENCE",
            Check::DomainAssignment => "DOMAIN_ASSIGNMENT",
            Check::TeamMembership => "TEAM_MEMBERSHIP",
            Check::ProfileOwnership => "PROFILE_OWNERSHIP",
            Check::AuthMode => "AUTH_MODE",
            Check::PartnerAppIdentity => "PARTNER_APP_IDENTITY",
            Check::TrustedIdentityPropagation => "TRUSTED_IDENTITY_PROPAGATION",
            Check::ExecutionRole => "EXECUTION_ROLE",
            Check::BackgroundSession => "BACKGROUND_SESSION",
        }
    }
}

/// A determining statement and the check it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Determining {
    /// The check.
    pub check: Check,
    /// The statement.
    pub statement: StatementRef,
}

impl std::ops::Deref for Determining {
    type Target = StatementRef;
    fn deref(&self) -> &StatementRef {
        &self.statement
    }
}

/// Appends `statements` under `check`, skipping a (check, statement) pair already listed.
pub fn add_determining(out: &mut Vec<Determining>, check: Check, statements: Vec<StatementRef>) {
    for statement in statements {
        if !out.iter().any(|d| d.check == check && d.statement == statement) {
            out.push(Determining { check, statement });
        }
    }
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
    /// Statements that allowed each check, with the check, without duplicates.
    pub determining: Vec<Determining>,
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
    /// The IAM decision of the failed check, when it was an IAM evaluation.
    pub decision: Option<Box<engine::Response>>,
    /// The check that failed (every PERMISSION_DENIED and FAILED_PRECONDITION has one).
    pub check: Option<Check>,
    /// The statements that determined the checks done so far, and the failed check's (its deny
    /// statements), without duplicates.
    pub determining: Vec<Determining>,
    /// Further facts for the `ErrorInfo` metadata (e.g. the condition an impersonation failed).
    pub metadata: Vec<(String, String)>,
}

impl Error {
    fn new(kind: ErrorKind, field: Option<String>, message: String) -> Error {
        Error { kind, field, message, decision: None, check: None, determining: Vec::new(), metadata: Vec::new() }
    }
    /// INVALID_ARGUMENT naming a field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Malformed, Some(field.to_owned()), message.into())
    }
    /// NOT_FOUND.
    pub fn not_found(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::UnknownTarget, None, message.into())
    }
    /// PERMISSION_DENIED by `check`.
    pub fn denied(check: Check, message: impl Into<String>) -> Error {
        Error { check: Some(check), ..Error::new(ErrorKind::NotAuthorized, None, message.into()) }
    }
    /// FAILED_PRECONDITION by `check`.
    pub fn precondition(check: Check, message: impl Into<String>) -> Error {
        Error { check: Some(check), ..Error::new(ErrorKind::Precondition, None, message.into()) }
    }
    /// The IAM decision of the failed check; its statements join the determining ones under the check.
    pub fn with_decision(mut self, r: engine::Response) -> Error {
        if let Some(check) = self.check {
            add_determining(&mut self.determining, check, r.determining.clone());
        }
        self.decision = Some(Box::new(r));
        self
    }
    /// The statements of the checks that passed before this one failed (listed first).
    pub fn after(mut self, passed: &[Determining]) -> Error {
        let mut all = passed.to_vec();
        for d in self.determining {
            if !all.contains(&d) {
                all.push(d);
            }
        }
        self.determining = all;
        self
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

/// A SageMaker resource name (user profiles, jobs): 1–63 characters, letters and digits with single
/// or repeated hyphens inside (`^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}`).
pub fn valid_sagemaker_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Checks the target's identifiers (SPEC §4.1, §5.6) before any lookup: INVALID_ARGUMENT naming the field.
pub fn validate_target(t: &Target) -> Result<(), Error> {
    use crate::policy::ident;
    let team = |field: &str, v: &Option<String>| -> Result<(), Error> {
        match v {
            Some(t) => ident::check_name("team id", t, 1, 64).map_err(|r| Error::invalid(field, r)),
            None => Ok(()),
        }
    };
    match t {
        Target::PartnerApp { arn, domain_id, user_profile, team_id } => {
            ident::check_arn_text(arn).map_err(|r| Error::invalid("partner_app.arn", r))?;
            if let Some(d) = domain_id {
                ident::check_arn_text(d).map_err(|r| Error::invalid("partner_app.domain_id", r))?;
            }
            if let Some(p) = user_profile
                && !valid_sagemaker_name(p)
            {
                return Err(Error::invalid(
                    "partner_app.user_profile_name",
                    format!("user profile name {} must be 1–63 letters, digits and inner hyphens", ident::quote(p)),
                ));
            }
            team("partner_app.team_id", team_id)
        }
        Target::Profile { domain_id, team_id } => {
            ident::check_arn_text(domain_id).map_err(|r| Error::invalid("studio_profile.domain_id", r))?;
            team("studio_profile.team_id", team_id)
        }
        Target::Job { domain_id, job_type, job_arn, max_runtime_seconds, .. } => {
            ident::check_arn_text(domain_id).map_err(|r| Error::invalid("job.domain_id", r))?;
            if let Some(t) = job_type
                && !matches!(t.as_str(), "TRAINING" | "PROCESSING")
            {
                return Err(Error::invalid(
                    "job.job_type",
                    format!("{} is not TRAINING or PROCESSING", ident::quote(t)),
                ));
            }
            if let Some(a) = job_arn {
                studio::job_arn_parts(a, job_type.as_deref())?;
            }
            if let Some(m) = max_runtime_seconds
                && !(1..=studio::MAX_RUNTIME).contains(m)
            {
                return Err(Error::invalid(
                    "job.max_runtime_in_seconds",
                    format!("{m} is outside 1–{} (leave it out for the default 86,400)", studio::MAX_RUNTIME),
                ));
            }
            Ok(())
        }
    }
}

/// Answers a PropagateIdentity request against a bundle and the remembered admins.
pub fn propagate(
    bundle: &Bundle,
    admins: &AdminMemory,
    req: &Request,
    authorize: AuthorizeFn<'_>,
) -> Result<Outcome, Error> {
    // Malformed identifiers first (SPEC §4.1): nothing below looks up a name that breaks them.
    validate_target(&req.target)?;
    evidence::validate(&req.evidence)?;
    match &req.target {
        Target::PartnerApp { .. } => partner_app::propagate(bundle, admins, req, authorize),
        Target::Profile { .. } => studio::profile(bundle, req, authorize),
        Target::Job { .. } => studio::job(bundle, req, authorize),
    }
}

#[cfg(test)]
mod tests;

//! Studio user profiles (SPEC §5.4) and trusted identity propagation for jobs (SPEC §5.3, §5.5). Pure.
use super::evidence;
use super::{AuthorizeFn, Check, Error, JobIdentity, Outcome, Profile, Request, Target, add_determining};
use crate::bundle::sagemaker::valid_domain_id;
use crate::bundle::{Bundle, Domain};
use crate::engine::{self, Decision};
use crate::policy::Value as CtxValue;
use crate::policy::arn;

/// Default `MaxRuntimeInSeconds` (SageMaker's default, one day).
pub const DEFAULT_MAX_RUNTIME: u32 = 86_400;
/// Largest `MaxRuntimeInSeconds` (28 days).
pub const MAX_RUNTIME: u32 = 2_419_200;
/// The Identity Center context provider of trusted identity propagation.
pub const IDC_CONTEXT_PROVIDER: &str = "arn:aws:iam::aws:contextProvider/IdentityCenter";

fn domain<'b>(bundle: &'b Bundle, field: &str, id: &str) -> Result<&'b Domain, Error> {
    if id.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if !valid_domain_id(id) {
        return Err(Error::invalid(field, format!("`{id}` is not `d-` + 12 lower-case letters or digits")));
    }
    bundle.domains.get(id).map(|d| &**d).ok_or_else(|| Error::not_found(format!("domain `{id}` is not in the bundle")))
}

fn tags_vec(t: &crate::bundle::Tags) -> Vec<(String, String)> {
    t.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

/// A Studio user profile target.
pub fn profile(bundle: &Bundle, req: &Request, authorize: AuthorizeFn<'_>) -> Result<Outcome, Error> {
    let Target::Profile { domain_id, team_id } = &req.target else {
        return Err(Error::invalid("target", "not a profile target"));
    };
    let e = &req.evidence;
    let d = domain(bundle, "studio_profile.domain_id", domain_id)?;
    if d.auth_mode == "SSO" {
        // One profile per Identity Center user.
        let Some(ic) = &e.ic else {
            if e.principal.is_some() {
                // SPEC §5.6: presigned domain URLs (an IAM caller opening a profile) are for IAM-mode domains.
                return Err(Error::precondition(
                    Check::AuthMode,
                    format!(
                        "domain `{}` uses Identity Center authentication: an IAM-only request cannot open a user profile on it (presigned domain URLs are for IAM-mode domains); send the Identity Center user",
                        d.domain_id
                    ),
                ));
            }
            return Err(Error::invalid(
                "evidence.identity_center_user",
                format!("Identity Center domain `{}` needs the Identity Center user", d.domain_id),
            ));
        };
        let user = evidence::verify_ic(bundle, ic, Some(d))?;
        let (name, arn_s, role, tags) =
            match d.profiles.iter().find(|p| p.sso_user.as_deref() == Some(user.user_name.as_str())) {
                Some(p) => (
                    p.name.clone(),
                    p.arn.clone(),
                    p.execution_role.clone().or(d.default_execution_role.clone()),
                    tags_vec(&p.tags),
                ),
                None => {
                    let a = arn::parse(&d.arn).map(|a| (a.region.to_owned(), a.account.to_owned())).unwrap_or_default();
                    let name = user.user_name.clone();
                    (
                        name.clone(),
                        format!("arn:aws:sagemaker:{}:{}:user-profile/{}/{name}", a.0, a.1, d.domain_id),
                        d.default_execution_role.clone(),
                        Vec::new(),
                    )
                }
            };
        let role = role.ok_or_else(|| {
            Error::precondition(
                Check::ExecutionRole,
                format!("domain `{}` has no execution role for profile `{name}`", d.domain_id),
            )
        })?;
        return Ok(Outcome {
            profile: Some(Profile { name, arn: arn_s, execution_role_arn: role, tags }),
            diagnostics: vec![
                "Identity Center domain: presigned domain URLs do not apply (IAM-mode domains only)".into(),
            ],
            ..Outcome::default()
        });
    }
    // IAM-mode per-team domain: ssouserid + teamid → a profile per user × team.
    if e.ic.is_some() && e.principal.is_none() {
        return Err(ic_on_iam_domain(d));
    }
    let attr_team = evidence::saml_attribute(e, "teamid");
    let team_name = match (team_id.as_deref().filter(|t| !t.is_empty()), attr_team) {
        (Some(t), Some(a)) if t != a => {
            return Err(Error::invalid(
                "studio_profile.team_id",
                format!("team `{t}` differs from the SAML attribute `teamid` (`{a}`)"),
            ));
        }
        (Some(t), _) => t,
        (None, Some(a)) => a,
        (None, None) => {
            return Err(Error::invalid(
                "studio_profile.team_id",
                format!("per-team domain `{}` needs the team (or the SAML attribute `teamid`)", d.domain_id),
            ));
        }
    };
    let Some(principal) = e.principal.as_deref() else {
        return Err(Error::invalid(
            "evidence.principal_arn",
            "a presigned domain URL needs the caller's IAM principal",
        ));
    };
    let Some(ssouserid) = evidence::saml_attribute(e, "ssouserid") else {
        return Err(Error::invalid("evidence.saml_attributes", "per-team domains need the SAML attribute `ssouserid`"));
    };
    let Some(team) = d.teams.iter().find(|t| t.team_id == team_name) else {
        return Err(Error::not_found(format!("team `{team_name}` is not in domain `{}`", d.domain_id)));
    };
    let Some(user) = bundle.identity_center.users.iter().find(|u| u.user_id == ssouserid) else {
        return Err(Error::denied(
            Check::TeamMembership,
            format!("`ssouserid` `{ssouserid}` is not a user of the identity store"),
        ));
    };
    let member = team.users.contains(&user.user_name)
        || evidence::groups_of(bundle, &user.user_name).iter().any(|g| team.groups.iter().any(|x| x == g));
    if !member {
        return Err(Error::denied(
            Check::TeamMembership,
            format!("user `{}` is not a member of team `{}`", user.user_name, team.team_id),
        ));
    }
    let name = format!("{}-{}", user.user_name, team.team_id);
    let a = arn::parse(&d.arn).map(|a| (a.region.to_owned(), a.account.to_owned())).unwrap_or_default();
    // The profile the bundle lists under that name (its tags), else the one Studio would create:
    // the team's tags plus `studiouserid` = the `ssouserid` it was opened with (the identity-store id,
    // which the caller's session carries as its principal tag).
    let (profile_arn, tags) = match d.profiles.iter().find(|p| p.name.eq_ignore_ascii_case(&name)) {
        Some(p) => (p.arn.clone(), tags_vec(&p.tags)),
        None => {
            let mut tags = tags_vec(&team.tags);
            if !tags.iter().any(|(k, _)| k.eq_ignore_ascii_case("studiouserid")) {
                tags.push(("studiouserid".to_owned(), ssouserid.to_owned()));
            }
            (format!("arn:aws:sagemaker:{}:{}:user-profile/{}/{name}", a.0, a.1, d.domain_id), tags)
        }
    };
    // The presigned domain URL, authorized with the profile's tags as resource tags.
    let mut r =
        evidence::principal_request(e, principal, "sagemaker:CreatePresignedDomainUrl", &profile_arn, req.now_ms);
    r.resource_tags = tags.clone();
    let determining =
        evidence::require_allow(bundle, &r, authorize, Check::Authorize, "not authorized to open the profile")?;
    if e.ic.is_some() {
        return Err(ic_on_iam_domain(d).after(&determining));
    }
    Ok(Outcome {
        profile: Some(Profile { name, arn: profile_arn, execution_role_arn: team.execution_role.clone(), tags }),
        determining,
        ..Outcome::default()
    })
}

/// Identity Center evidence against an IAM-mode domain (FAILED_PRECONDITION).
pub fn ic_on_iam_domain(d: &Domain) -> Error {
    Error::precondition(
        Check::AuthMode,
        format!("domain `{}` uses IAM authentication: Identity Center evidence does not apply to it", d.domain_id),
    )
}

/// A job ARN checked against the job type: `arn:PARTITION:sagemaker:REGION:ACCOUNT:training-job/NAME`
/// (`TRAINING`) or `…:processing-job/NAME` (`PROCESSING`). Returns the account.
pub fn job_arn_parts<'a>(job_arn: &'a str, job_type: Option<&str>) -> Result<&'a str, Error> {
    let field = "job.job_arn";
    crate::policy::ident::check_arn_text(job_arn).map_err(|r| Error::invalid(field, r))?;
    let quoted = crate::policy::ident::quote(job_arn);
    let Some(a) = arn::parse(job_arn).filter(|a| a.service == "sagemaker" && !a.region.is_empty()) else {
        return Err(Error::invalid(
            field,
            format!("{quoted} is not a SageMaker job ARN (`arn:aws:sagemaker:REGION:ACCOUNT:training-job/NAME`)"),
        ));
    };
    if !arn::is_account_id(a.account) {
        return Err(Error::invalid(field, format!("account of {quoted} is not a 12-digit account id")));
    }
    let (kind, name) = a.resource.split_once('/').unwrap_or((a.resource, ""));
    let expected = match job_type {
        Some("TRAINING") => &["training-job"][..],
        Some("PROCESSING") => &["processing-job"][..],
        _ => &["training-job", "processing-job"][..],
    };
    if !expected.contains(&kind) {
        return Err(Error::invalid(
            field,
            format!(
                "{quoted} is not a {} ARN{}",
                expected.iter().map(|k| format!("`{k}/…`")).collect::<Vec<_>>().join(" or "),
                job_type.map(|t| format!(" (job type {t})")).unwrap_or_default()
            ),
        ));
    }
    if !super::valid_sagemaker_name(name) {
        return Err(Error::invalid(
            field,
            format!("job name in {quoted} must be 1–63 letters, digits and inner hyphens"),
        ));
    }
    Ok(a.account)
}

fn trust_request(role: &str, action: &str, user_id: &str, store: &str, now_ms: i64) -> engine::Request {
    let mut r = engine::Request {
        principal: "sagemaker.amazonaws.com".into(),
        action: action.into(),
        resource: role.to_owned(),
        now_ms,
        ..engine::Request::default()
    };
    r.context.insert("sts:RequestContextProviders", CtxValue::Many(vec![IDC_CONTEXT_PROVIDER.to_owned()]));
    r.context.insert("sts:RequestContext/identitystore:UserId", CtxValue::One(user_id.to_owned()));
    r.context.insert("sts:RequestContext/identitystore:IdentityStoreArn", CtxValue::One(store.to_owned()));
    r
}

/// A job with trusted identity propagation.
pub fn job(bundle: &Bundle, req: &Request, authorize: AuthorizeFn<'_>) -> Result<Outcome, Error> {
    let Target::Job { domain_id, job_type, job_arn, max_runtime_seconds, background_started_ms } = &req.target else {
        return Err(Error::invalid("target", "not a job target"));
    };
    let e = &req.evidence;
    // Identifiers, the job type and the runtime were checked before any lookup (`validate_target`).
    let max_runtime_seconds = max_runtime_seconds.unwrap_or(DEFAULT_MAX_RUNTIME);
    if !(1..=MAX_RUNTIME).contains(&max_runtime_seconds) {
        return Err(Error::invalid(
            "job.max_runtime_in_seconds",
            format!("{max_runtime_seconds} is outside 1–{MAX_RUNTIME}"),
        ));
    }
    if background_started_ms.is_some_and(|t| t > req.now_ms + 60_000) {
        return Err(Error::invalid("job.background_session_started_at", "is in the future"));
    }
    let d = domain(bundle, "job.domain_id", domain_id)?;
    if let Some(a) = job_arn {
        let account = job_arn_parts(a, job_type.as_deref())?;
        let domain_account = arn::parse(&d.arn).map(|x| x.account).unwrap_or_default();
        if account != domain_account {
            return Err(Error::invalid(
                "job.job_arn",
                format!("job `{a}` is in account {account}, domain `{}` in account {domain_account}", d.domain_id),
            ));
        }
    }
    let Some(ic) = &e.ic else {
        return Err(Error::precondition(
            Check::TrustedIdentityPropagation,
            "trusted identity propagation needs an Identity Center user: IAM-only evidence cannot carry an identity context",
        ));
    };
    // Evidence that does not check out is PERMISSION_DENIED before any precondition.
    evidence::verify_ic(bundle, ic, None)?;
    if d.auth_mode != "SSO" {
        return Err(Error::precondition(
            Check::AuthMode,
            format!(
                "domain `{}` uses IAM authentication: trusted identity propagation needs an Identity Center domain",
                d.domain_id
            ),
        ));
    }
    let user = evidence::verify_ic(bundle, ic, Some(d))?;
    if !d.tip_enabled {
        return Err(Error::precondition(
            Check::TrustedIdentityPropagation,
            format!("trusted identity propagation is not enabled on domain `{}`", d.domain_id),
        ));
    }
    let role_arn = d
        .profiles
        .iter()
        .find(|p| p.sso_user.as_deref() == Some(user.user_name.as_str()))
        .and_then(|p| p.execution_role.clone())
        .or(d.default_execution_role.clone())
        .ok_or_else(|| {
            Error::precondition(
                Check::ExecutionRole,
                format!("domain `{}` has no execution role for user `{}`", d.domain_id, user.user_name),
            )
        })?;
    let Some(role) = bundle.roles.get(role_arn.as_str()) else {
        return Err(Error::precondition(
            Check::ExecutionRole,
            format!("execution role `{role_arn}` is not in the bundle"),
        ));
    };
    let store = bundle.identity_center.identity_store_arn.clone().unwrap_or_default();
    // The execution role must trust SageMaker for sts:AssumeRole and sts:SetContext (evaluated).
    let mut determining = Vec::new();
    for (check, action) in [(Check::TrustAssumeRole, "sts:assumerole"), (Check::TrustSetContext, "sts:setcontext")] {
        let trust = trust_request(&role_arn, action, &user.user_id, &store, req.now_ms);
        let r = authorize(bundle, &trust);
        if r.decision != Decision::Allow {
            // A statement that names SageMaker but whose condition failed (e.g. another context
            // provider) is named with its condition, as for impersonation.
            let (why, metadata) = match evidence::unmet_condition(bundle, &trust, authorize) {
                Some((text, m)) => (format!("{text}; "), m),
                None => (String::new(), Vec::new()),
            };
            let message = format!(
                "the trust policy of execution role `{}` does not allow `sagemaker.amazonaws.com` `{action}` with the Identity Center context: {why}{}",
                role.name,
                super::describe_decision(&r)
            );
            let mut err = Error::precondition(check, message).with_decision(r).after(&determining);
            err.metadata = metadata;
            return Err(err);
        }
        add_determining(&mut determining, check, r.determining);
    }
    if d.s3_access_grants {
        let a = arn::parse(&d.arn).map(|a| (a.region.to_owned(), a.account.to_owned())).unwrap_or_default();
        let grants = format!("arn:aws:s3:{}:{}:access-grants/default", a.0, a.1);
        for action in ["s3:GetDataAccess", "s3:GetAccessGrantsInstanceForPrefix"] {
            let r = engine::Request {
                principal: role_arn.clone(),
                action: action.to_ascii_lowercase(),
                resource: grants.clone(),
                now_ms: req.now_ms,
                ..engine::Request::default()
            };
            let resp = authorize(bundle, &r);
            if resp.decision != Decision::Allow {
                let message = format!(
                    "domain `{}` uses S3 Access Grants but execution role `{}` may not `{action}` on `{grants}`: {}",
                    d.domain_id,
                    role.name,
                    super::describe_decision(&resp)
                );
                return Err(Error::precondition(Check::AccessGrants, message).with_decision(resp).after(&determining));
            }
            add_determining(&mut determining, Check::AccessGrants, resp.determining);
        }
    }
    // User background sessions.
    let ic_cfg = &bundle.identity_center;
    if !ic_cfg.background_sessions_enabled {
        return Err(Error::precondition(
            Check::BackgroundSession,
            "user background sessions are disabled on the Identity Center instance",
        )
        .after(&determining));
    }
    let started = background_started_ms.unwrap_or(req.now_ms);
    let expires = started + i64::from(ic_cfg.background_session_minutes) * 60_000;
    if expires <= req.now_ms {
        return Err(Error::precondition(
            Check::BackgroundSession,
            format!(
                "user background session expired: it started {} and lasted {} minutes",
                chrono::DateTime::from_timestamp_millis(started).map(|t| t.to_rfc3339()).unwrap_or_default(),
                ic_cfg.background_session_minutes
            ),
        )
        .after(&determining));
    }
    let left = u32::try_from((expires - req.now_ms) / 1000).unwrap_or(u32::MAX);
    Ok(Outcome {
        job: Some(JobIdentity {
            execution_role_arn: role_arn,
            role_id: role.role_id.clone(),
            role_name: role.name.clone(),
            account: role.account.clone(),
            effective_max_runtime_seconds: max_runtime_seconds.min(left),
            background_session_expires_ms: expires,
            user_id: user.user_id.clone(),
            identity_store_arn: store,
        }),
        determining,
        ..Outcome::default()
    })
}

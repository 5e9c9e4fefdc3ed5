//! Partner apps (SPEC §5.1, §5.2, §5.5): the four-step rule for the propagated user name, the
//! authorization step before it, the impersonation re-check, and the admin role. Pure.
use super::evidence::{self, PARTNER_APP_USER_TAG};
use super::{AdminMemory, AdminRole, AuthorizeFn, Channel, Check, Error, Outcome, Request, Source, Target};
use crate::bundle::sagemaker::{valid_app_arn, valid_domain_id};
use crate::bundle::{Bundle, Domain, PartnerApp};
use crate::policy::arn::{self, PrincipalArn};

/// The admin role of `user` in `app`.
pub fn admin_role(app: &PartnerApp, admins: &AdminMemory, user: &str) -> AdminRole {
    if app.admin_users.iter().any(|a| a == user) {
        AdminRole::RootAdmin
    } else if admins.is_remembered(&app.arn, user) {
        AdminRole::Admin
    } else {
        AdminRole::User
    }
}

/// The execution role a Studio user works with in `domain`: the team's, the profile's own, else the
/// domain default.
fn studio_role<'d>(
    domain: &'d Domain,
    profile: Option<&str>,
    team: Option<&str>,
    sso_user: Option<&str>,
) -> Option<&'d str> {
    if let Some(t) = team {
        return domain.teams.iter().find(|x| x.team_id == t).map(|x| x.execution_role.as_str());
    }
    let p = match (profile, sso_user) {
        (Some(name), _) => domain.profiles.iter().find(|p| p.name.eq_ignore_ascii_case(name)),
        (None, Some(u)) => domain.profiles.iter().find(|p| p.sso_user.as_deref() == Some(u)),
        (None, None) => None,
    };
    p.and_then(|p| p.execution_role.as_deref()).or(domain.default_execution_role.as_deref())
}

/// Channel STUDIO on an IAM-mode domain (SPEC §5.6): the launch names the user profile or the team,
/// and nothing more is needed. When the request also says who the Studio user is (the SAML attribute
/// `ssouserid`, resolved through the identity store, or an IAM user), that user must be a member of the
/// named team and own the named profile.
fn studio_iam_member(
    bundle: &Bundle,
    d: &Domain,
    e: &super::Evidence,
    profile: Option<&str>,
    team: Option<&str>,
) -> Result<(), Error> {
    let user_name = match evidence::saml_attribute(e, "ssouserid") {
        Some(id) => match bundle.identity_center.users.iter().find(|u| u.user_id == id) {
            Some(u) => u.user_name.clone(),
            None => {
                return Err(Error::denied(
                    Check::TeamMembership,
                    format!("`ssouserid` `{id}` is not a user of the identity store"),
                ));
            }
        },
        None => match e.principal.as_deref().and_then(arn::parse_principal) {
            Some(PrincipalArn::User { name, .. }) => name.to_owned(),
            // A role session without `ssouserid`: the profile or team named is the launch.
            _ => return Ok(()),
        },
    };
    let user_id = bundle.identity_center.users.iter().find(|u| u.user_name == user_name).map(|u| u.user_id.clone());
    if let Some(t) = team.and_then(|t| d.teams.iter().find(|x| x.team_id == t)) {
        let member = t.users.contains(&user_name)
            || evidence::groups_of(bundle, &user_name).iter().any(|g| t.groups.iter().any(|x| x == g));
        if !member {
            return Err(Error::denied(
                Check::TeamMembership,
                format!("user `{user_name}` is not a member of team `{}`", t.team_id),
            ));
        }
    }
    if let Some(found) = profile.and_then(|p| d.profiles.iter().find(|x| x.name.eq_ignore_ascii_case(p))) {
        let owner = found.tags.get("studiouserid");
        let own = owner.is_some_and(|o| o == user_name || Some(o) == user_id.as_deref())
            || found.name.to_lowercase().starts_with(&format!("{}-", user_name.to_lowercase()));
        if !own {
            return Err(Error::denied(
                Check::ProfileOwnership,
                format!("user profile `{}` is not user `{user_name}`'s", found.name),
            ));
        }
    }
    Ok(())
}

/// Answers a partner-app target.
pub fn propagate(
    bundle: &Bundle,
    admins: &AdminMemory,
    req: &Request,
    authorize: AuthorizeFn<'_>,
) -> Result<Outcome, Error> {
    let Target::PartnerApp { arn: app_arn, domain_id, user_profile, team_id } = &req.target else {
        return Err(Error::invalid("target", "not a partner app target"));
    };
    let e = &req.evidence;
    // 1. Malformed request.
    if app_arn.is_empty() {
        return Err(Error::invalid("partner_app.arn", "must not be empty"));
    }
    if !valid_app_arn(app_arn) {
        return Err(Error::invalid(
            "partner_app.arn",
            format!(
                "`{app_arn}` is not `arn:aws:sagemaker:REGION:ACCOUNT:partner-app/app-` + 12 upper-case letters or digits"
            ),
        ));
    }
    let Some(channel) = req.channel else {
        return Err(Error::invalid("channel", "must be STUDIO, PRESIGNED_URL_API or SDK"));
    };
    match channel {
        Channel::PresignedUrlApi | Channel::Sdk if e.principal.is_none() => {
            return Err(Error::invalid(
                "evidence.principal_arn",
                "channels PRESIGNED_URL_API and SDK need the caller's IAM principal",
            ));
        }
        Channel::Studio => match domain_id.as_deref() {
            None | Some("") => {
                return Err(Error::invalid("partner_app.domain_id", "channel STUDIO needs the Studio domain"));
            }
            Some(d) if !valid_domain_id(d) => {
                return Err(Error::invalid(
                    "partner_app.domain_id",
                    format!("`{d}` is not `d-` + 12 lower-case letters or digits"),
                ));
            }
            Some(_) => {}
        },
        _ => {}
    }
    // 2. Unknown targets.
    let Some(app) = bundle.partner_apps.get(app_arn.as_str()) else {
        return Err(Error::not_found(format!("partner app `{app_arn}` is not in the bundle")));
    };
    let domain = match (channel, domain_id.as_deref()) {
        (Channel::Studio, Some(d)) => Some(
            &**bundle.domains.get(d).ok_or_else(|| Error::not_found(format!("domain `{d}` is not in the bundle")))?,
        ),
        _ => None,
    };
    if let Some(d) = domain.filter(|d| d.auth_mode != "SSO") {
        // SPEC §5.6: an IAM-mode launch names the profile or the team; never the domain default role.
        if user_profile.is_none() && team_id.is_none() {
            return Err(Error::invalid(
                "partner_app.user_profile_name",
                format!(
                    "channel STUDIO on IAM-mode domain `{}` needs the user profile (`user_profile_name`) or the team (`team_id`)",
                    d.domain_id
                ),
            ));
        }
        if let Some(p) = user_profile.as_deref()
            && !d.profiles.iter().any(|x| x.name.eq_ignore_ascii_case(p))
        {
            return Err(Error::not_found(format!("user profile `{p}` is not in domain `{}`", d.domain_id)));
        }
    }
    if let (Some(d), Some(t)) = (domain, team_id.as_deref())
        && !d.teams.iter().any(|x| x.team_id == t)
    {
        return Err(Error::not_found(format!("team `{t}` is not in domain `{}`", d.domain_id)));
    }
    // Which evidence counts on this channel.
    let sso_domain = domain.filter(|d| d.auth_mode == "SSO");
    let mut ic_user: Option<&str> = None;
    if let Some(d) = sso_domain {
        let Some(ic) = &e.ic else {
            // SPEC §5.6: an IAM-only request naming a user profile of an Identity Center domain asks for
            // what only IAM-mode domains have (presigned domain URLs): a precondition, not a malformed request.
            if let (Some(p), Some(_)) = (user_profile.as_deref(), e.principal.as_deref()) {
                return Err(Error::precondition(
                    Check::AuthMode,
                    format!(
                        "domain `{}` uses Identity Center authentication: an IAM-only request cannot open user profile `{p}` on it (presigned domain URLs are for IAM-mode domains); send the Identity Center user",
                        d.domain_id
                    ),
                ));
            }
            return Err(Error::invalid(
                "evidence.identity_center_user",
                format!("channel STUDIO on Identity Center domain `{}` needs the Identity Center user", d.domain_id),
            ));
        };
        // 3. Evidence that does not check out.
        let user = evidence::verify_ic(bundle, ic, Some(d))?.user_name.as_str();
        // One profile per user: a named profile must be the user's own.
        if let Some(p) = user_profile.as_deref()
            && !d.profiles.iter().any(|x| x.name.eq_ignore_ascii_case(p) && x.sso_user.as_deref() == Some(user))
        {
            return Err(Error::denied(
                Check::ProfileOwnership,
                format!("user profile `{p}` of domain `{}` is not Identity Center user `{user}`'s", d.domain_id),
            ));
        }
        ic_user = Some(user);
    } else if let Some(d) = domain {
        if e.principal.is_none() {
            if e.ic.is_some() {
                return Err(super::studio::ic_on_iam_domain(d));
            }
            return Err(Error::invalid(
                "evidence.principal_arn",
                format!("channel STUDIO on IAM-mode domain `{}` needs the caller's IAM principal", d.domain_id),
            ));
        }
        studio_iam_member(bundle, d, e, user_profile.as_deref(), team_id.as_deref())?;
    }
    // 4. Authorization.
    let action =
        if channel == Channel::Sdk { "sagemaker:CallPartnerAppApi" } else { "sagemaker:CreatePartnerAppPresignedUrl" };
    let mut determining = match (channel, domain) {
        (Channel::Studio, Some(d)) => {
            // The principal authorized is the user profile's execution role.
            let role = studio_role(d, user_profile.as_deref(), team_id.as_deref(), ic_user).ok_or_else(|| {
                Error::precondition(
                    Check::ExecutionRole,
                    format!(
                        "domain `{}` has no execution role for this user (no profile role, no default)",
                        d.domain_id
                    ),
                )
            })?;
            let r = evidence::principal_request(
                &super::Evidence { context: e.context.clone(), ..super::Evidence::default() },
                role,
                action,
                app_arn,
                req.now_ms,
            );
            evidence::require_allow(bundle, &r, authorize, Check::Authorize, "not authorized")?
        }
        _ => {
            let principal = e.principal.as_deref().unwrap_or_default();
            let r = evidence::principal_request(e, principal, action, app_arn, req.now_ms);
            evidence::require_allow(bundle, &r, authorize, Check::Authorize, "not authorized")?
        }
    };
    // 5. Impersonation.
    let trust = evidence::verify_trust(bundle, e, authorize, req.now_ms).map_err(|err| err.after(&determining))?;
    // Only reached when the re-check passed (or there was nothing to re-check).
    let trust_verified = e.assumed_by.is_some();
    for d in trust {
        if !determining.contains(&d) {
            determining.push(d);
        }
    }
    // 6. Preconditions and identity rules.
    if let Some(d) = domain.filter(|d| d.auth_mode != "SSO")
        && e.ic.is_some()
    {
        return Err(super::studio::ic_on_iam_domain(d).after(&determining));
    }
    let (user, source) = if let Some(u) = ic_user.filter(|_| channel == Channel::Studio) {
        (u.to_owned(), Source::IdentityCenter)
    } else if let Some(v) = evidence::partner_app_user_saml(e) {
        (v.to_owned(), Source::SamlPrincipalTag)
    } else if let Some(v) = evidence::partner_app_user_sts(e) {
        (v.to_owned(), Source::SessionTag)
    } else if app.iam_session_identity {
        match e.principal.as_deref().and_then(arn::parse_principal) {
            Some(PrincipalArn::User { name, .. }) => (name.to_owned(), Source::IamUser),
            Some(PrincipalArn::Session { session, .. }) => (session.to_owned(), Source::SessionName),
            _ => return Err(no_identity(app, "the request names no IAM user or session").after(&determining)),
        }
    } else {
        return Err(no_identity(
            app,
            "the caller has no `SageMakerPartnerAppUser` session tag and the app does not enable IAM session identity",
        )
        .after(&determining));
    };
    let admin_role = admin_role(app, admins, &user);
    Ok(Outcome {
        user_name: Some(user),
        source: Some(source),
        admin_role: Some(admin_role),
        trust_verified,
        determining,
        ..Outcome::default()
    })
}

fn no_identity(app: &PartnerApp, why: &str) -> Error {
    Error::precondition(
        Check::PartnerAppIdentity,
        format!(
            "partner app `{}` ({}) cannot tell which user this is: {why}; either add the session tag `{PARTNER_APP_USER_TAG}` \
         (STS session tag, or SAML attribute `https://aws.amazon.com/SAML/Attributes/PrincipalTag:{PARTNER_APP_USER_TAG}`), \
         or enable `EnableIamSessionBasedIdentity` on the app",
            app.name, app.arn
        ),
    )
}

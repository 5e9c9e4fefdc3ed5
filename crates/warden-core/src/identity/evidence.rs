//! The caller's evidence: validation, session tags (STS and SAML `PrincipalTag:`), Identity Center
//! checks against the bundle, and the trust-policy re-check that catches impersonation. Pure.
use super::{AuthorizeFn, Check, Determining, Error, Evidence, IcEvidence, add_determining, describe_decision};
use crate::bundle::{Bundle, Domain};
use crate::engine::{self, Decision};
use crate::policy::Value as CtxValue;
use crate::policy::arn::{self, PrincipalArn};
use crate::policy::ident;

/// The SAML attribute prefix of principal tags (exact; the tag key after it is case-insensitive).
pub const SAML_PRINCIPAL_TAG: &str = "https://aws.amazon.com/SAML/Attributes/PrincipalTag:";
/// The session tag that names the partner-app user.
pub const PARTNER_APP_USER_TAG: &str = "SageMakerPartnerAppUser";

/// The SAML principal tags of the evidence: (tag key, value).
pub fn saml_tags(e: &Evidence) -> impl Iterator<Item = (&str, &str)> {
    e.saml.iter().filter_map(|(k, v)| k.strip_prefix(SAML_PRINCIPAL_TAG).map(|t| (t, v.as_str())))
}

/// Every session tag (STS tags, then SAML principal tags), empty values dropped (IAM treats them as null).
pub fn all_tags(e: &Evidence) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in e.session_tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).chain(saml_tags(e)) {
        if v.is_empty() {
            continue;
        }
        if !out.iter().any(|(x, _)| x.to_lowercase() == k.to_lowercase()) {
            out.push((k.to_owned(), v.to_owned()));
        }
    }
    out
}

/// A SAML attribute by exact name (e.g. `ssouserid`), or the principal tag of that key.
pub fn saml_attribute<'e>(e: &'e Evidence, name: &str) -> Option<&'e str> {
    e.saml
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .or_else(|| saml_tags(e).find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
        .or_else(|| e.session_tags.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()))
        .filter(|v| !v.is_empty())
}

fn dup_case(keys: impl Iterator<Item = String>) -> Option<String> {
    let mut seen: Vec<String> = Vec::new();
    for k in keys {
        let l = k.to_lowercase();
        if seen.contains(&l) {
            return Some(k);
        }
        seen.push(l);
    }
    None
}

/// Most SAML attributes a request may carry.
pub const MAX_SAML_ATTRIBUTES: usize = 256;

/// Checks the evidence's shape (INVALID_ARGUMENT naming the field).
pub fn validate(e: &Evidence) -> Result<(), Error> {
    // Sizes and identifiers first (SPEC §4.1, §7): every later check is then bounded.
    for (field, v) in [("evidence.principal_arn", &e.principal), ("evidence.assumed_by", &e.assumed_by)] {
        if let Some(v) = v {
            ident::check_principal_arn(v).map_err(|r| Error::invalid(field, r))?;
        }
    }
    ident::check_session_tags(e.session_tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(|r| Error::invalid("evidence.session_tags", r))?;
    if e.saml.len() > MAX_SAML_ATTRIBUTES {
        return Err(Error::invalid(
            "evidence.saml_attributes",
            format!("{} attributes exceed the limit of {MAX_SAML_ATTRIBUTES}", e.saml.len()),
        ));
    }
    ident::check_session_tags(saml_tags(e).collect::<Vec<_>>().into_iter())
        .map_err(|r| Error::invalid("evidence.saml_attributes", r))?;
    for (k, v) in &e.saml {
        if k.chars().count() > 1024 || v.chars().count() > ident::MAX_CONTEXT_VALUE_BYTES {
            return Err(Error::invalid(
                "evidence.saml_attributes",
                format!("attribute {} is over its size limit (name 1,024 characters, value 4 KiB)", ident::quote(k)),
            ));
        }
    }
    if let Some(ic) = &e.ic {
        check_ic_fields(ic)?;
    }
    for (name, field) in
        [("ssouserid", "evidence.saml_attributes.ssouserid"), ("teamid", "evidence.saml_attributes.teamid")]
    {
        if let Some(v) = e.saml.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty()) {
            let ok =
                if name == "ssouserid" { valid_user_id(v) } else { ident::check_name("team id", v, 1, 64).is_ok() };
            if !ok {
                return Err(Error::invalid(field, format!("SAML attribute `{name}` {} is malformed", ident::quote(v))));
            }
        }
    }
    if let Some(s) = &e.source_identity {
        ident::check_source_identity(s).map_err(|r| Error::invalid("evidence.source_identity", r))?;
    }
    engine::request::check_context(&e.context, "evidence.context").map_err(|r| Error::invalid(&r.field, r.rule))?;
    if let Some(p) = &e.principal {
        match arn::parse_principal(p) {
            Some(PrincipalArn::User { .. } | PrincipalArn::Session { .. }) => {}
            _ => {
                return Err(Error::invalid(
                    "evidence.principal_arn",
                    format!("`{p}` is not an IAM user ARN or an assumed-role session ARN"),
                ));
            }
        }
    }
    if let Some(a) = &e.assumed_by {
        if !matches!(
            arn::parse_principal(a),
            Some(PrincipalArn::User { .. } | PrincipalArn::Session { .. } | PrincipalArn::Role { .. })
        ) {
            return Err(Error::invalid("evidence.assumed_by", format!("`{a}` is not an IAM principal ARN")));
        }
        let is_session = e
            .principal
            .as_deref()
            .and_then(arn::parse_principal)
            .is_some_and(|p| matches!(p, PrincipalArn::Session { .. }));
        if !is_session {
            return Err(Error::invalid(
                "evidence.assumed_by",
                "applies only to an assumed-role session in `evidence.principal_arn`",
            ));
        }
    }
    if let Some(k) = dup_case(e.session_tags.iter().map(|(k, _)| k.clone())) {
        return Err(Error::invalid(
            "evidence.session_tags",
            format!("tag keys differ only in case (`{k}`): tag keys are case-insensitive"),
        ));
    }
    if let Some(k) = dup_case(saml_tags(e).map(|(k, _)| k.to_owned())) {
        return Err(Error::invalid(
            "evidence.saml_attributes",
            format!("principal tag keys differ only in case (`{k}`)"),
        ));
    }
    for (k, _) in &e.session_tags {
        if k.is_empty() || k.len() > 128 {
            return Err(Error::invalid("evidence.session_tags", format!("tag key `{k}` must be 1–128 characters")));
        }
    }
    // An STS tag and a SAML principal tag of the same key must agree (any key: both feed
    // aws:PrincipalTag and the identity rules).
    for (k, saml) in saml_tags(e) {
        if let Some((_, sts)) =
            e.session_tags.iter().find(|(x, _)| x.eq_ignore_ascii_case(k) || x.to_lowercase() == k.to_lowercase())
            && !sts.is_empty()
            && !saml.is_empty()
            && sts != saml
        {
            return Err(Error::invalid(
                "evidence.session_tags",
                format!(
                    "the STS session tag `{k}` (`{sts}`) and the SAML attribute `{SAML_PRINCIPAL_TAG}{k}` (`{saml}`) disagree"
                ),
            ));
        }
    }
    Ok(())
}

/// An Identity Center user id: 1–47 characters of letters, digits and `-` (AWS: a GUID, optionally
/// prefixed by 10 hex digits and `-`).
pub fn valid_user_id(s: &str) -> bool {
    (1..=47).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The identifiers of Identity Center evidence that is given (empty fields are checked where the
/// evidence is used: evidence a channel ignores may be partial).
fn check_ic_fields(ic: &IcEvidence) -> Result<(), Error> {
    if !ic.user_id.is_empty() && !valid_user_id(&ic.user_id) {
        return Err(Error::invalid(
            "evidence.identity_center_user.user_id",
            format!("user id {} must be 1–47 letters, digits or `-`", ident::quote(&ic.user_id)),
        ));
    }
    let n = &ic.user_name;
    if !n.is_empty() && (n.chars().count() > 128 || n.chars().any(|c| c.is_control() || c.is_whitespace())) {
        return Err(Error::invalid(
            "evidence.identity_center_user.user_name",
            format!("user name {} must be 1–128 characters without spaces or control characters", ident::quote(n)),
        ));
    }
    let a = &ic.identity_store_arn;
    if !a.is_empty() {
        ident::check_arn_text(a).map_err(|r| Error::invalid("evidence.identity_center_user.identity_store_arn", r))?;
        if !arn::parse(a).is_some_and(|p| p.service == "identitystore" && p.resource.starts_with("identitystore/")) {
            return Err(Error::invalid(
                "evidence.identity_center_user.identity_store_arn",
                format!(
                    "{} is not an identity store ARN (`arn:aws:identitystore::ACCOUNT:identitystore/d-…`)",
                    ident::quote(a)
                ),
            ));
        }
    }
    Ok(())
}

/// The STS session tag `SageMakerPartnerAppUser` (key case-insensitive; empty counts as none).
pub fn partner_app_user_sts(e: &Evidence) -> Option<&str> {
    e.session_tags
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(PARTNER_APP_USER_TAG))
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// The SAML attribute `…PrincipalTag:SageMakerPartnerAppUser` (empty counts as none).
pub fn partner_app_user_saml(e: &Evidence) -> Option<&str> {
    saml_tags(e).find(|(k, _)| k.eq_ignore_ascii_case(PARTNER_APP_USER_TAG)).map(|(_, v)| v).filter(|v| !v.is_empty())
}

/// The Identity Center user behind the evidence, checked against the bundle: the identity store is
/// the bundle's, the user id exists with that user name, and (with a domain) the user is assigned to it.
pub fn verify_ic<'b>(
    bundle: &'b Bundle,
    ic: &IcEvidence,
    domain: Option<&Domain>,
) -> Result<&'b crate::bundle::model::IcUser, Error> {
    for (field, v) in
        [("user_id", &ic.user_id), ("user_name", &ic.user_name), ("identity_store_arn", &ic.identity_store_arn)]
    {
        if v.is_empty() {
            return Err(Error::invalid(&format!("evidence.identity_center_user.{field}"), "must not be empty"));
        }
    }
    let store = bundle.identity_center.identity_store_arn.as_deref();
    if store != Some(ic.identity_store_arn.as_str()) {
        return Err(Error::denied(
            Check::IdentityCenterEvidence,
            format!(
                "Identity Center evidence does not check out: identity store `{}` is not this bundle's{}",
                ic.identity_store_arn,
                store.map(|s| format!(" (`{s}`)")).unwrap_or_default()
            ),
        ));
    }
    let Some(user) = bundle.identity_center.users.iter().find(|u| u.user_id == ic.user_id) else {
        return Err(Error::denied(
            Check::IdentityCenterEvidence,
            format!(
                "Identity Center evidence does not check out: no user with id `{}` in the identity store",
                ic.user_id
            ),
        ));
    };
    if user.user_name != ic.user_name {
        return Err(Error::denied(
            Check::IdentityCenterEvidence,
            format!(
                "Identity Center evidence does not check out: user id `{}` is `{}`, not `{}`",
                ic.user_id, user.user_name, ic.user_name
            ),
        ));
    }
    if let Some(d) = domain
        && !assigned(bundle, d, &user.user_name)
    {
        return Err(Error::denied(
            Check::DomainAssignment,
            format!(
                "Identity Center user `{}` is not assigned to domain `{}` (neither in its `AssignedUsers` nor in a group of its `AssignedGroups`; a user profile alone does not assign a user)",
                user.user_name, d.domain_id
            ),
        ));
    }
    Ok(user)
}

/// Groups (display names) a user belongs to.
pub fn groups_of<'b>(bundle: &'b Bundle, user_name: &str) -> Vec<&'b str> {
    bundle
        .identity_center
        .groups
        .iter()
        .filter(|g| g.members.iter().any(|m| m == user_name))
        .map(|g| g.name.as_str())
        .collect()
}

/// Whether a user is assigned to a domain: listed in its `AssignedUsers`, or a member of a group in its
/// `AssignedGroups` (SPEC §5.6: a user profile alone does not assign a user).
pub fn assigned(bundle: &Bundle, d: &Domain, user_name: &str) -> bool {
    d.assigned_users.iter().any(|u| u == user_name)
        || groups_of(bundle, user_name).iter().any(|g| d.assigned_groups.iter().any(|a| a == g))
}

/// An engine request for the evidence's IAM principal: its session tags (STS and SAML principal tags),
/// source identity and extra context.
pub fn principal_request(e: &Evidence, principal: &str, action: &str, resource: &str, now_ms: i64) -> engine::Request {
    engine::Request {
        principal: principal.to_owned(),
        session_tags: all_tags(e),
        source_identity: e.source_identity.clone(),
        action: action.to_ascii_lowercase(),
        resource: resource.to_owned(),
        context: e.context.clone(),
        resource_tags: Vec::new(),
        now_ms,
        explain: false,
    }
}

/// Asks the engine for `check`; anything but Allow is PERMISSION_DENIED carrying the decision. The
/// statements that allowed it come back tagged with the check.
pub fn require_allow(
    bundle: &Bundle,
    req: &engine::Request,
    authorize: AuthorizeFn<'_>,
    check: Check,
    what: &str,
) -> Result<Vec<Determining>, Error> {
    let r = authorize(bundle, req);
    if r.decision == Decision::Allow {
        let mut out = Vec::new();
        add_determining(&mut out, check, r.determining);
        return Ok(out);
    }
    let message = format!(
        "{what}: `{}` may not `{}` on `{}`: {}",
        req.principal,
        req.action,
        req.resource,
        describe_decision(&r)
    );
    Err(Error::denied(check, message).with_decision(r))
}

/// Why an Allow statement did not apply, for a message and the `ErrorInfo` metadata: the request is
/// asked again with `explain`, and the first in-scope Allow statement's failed condition is named.
pub fn unmet_condition(
    bundle: &Bundle,
    req: &engine::Request,
    authorize: AuthorizeFn<'_>,
) -> Option<(String, Vec<(String, String)>)> {
    let mut explained = req.clone();
    explained.explain = true;
    let r = authorize(bundle, &explained);
    let u = r.unmet.into_iter().next()?;
    let policy_value = u.policy_values.join(", ");
    let session_value = match &u.request_values {
        Some(v) => v.join(", "),
        None => "(absent)".to_owned(),
    };
    let text = format!(
        "condition `{}` on `{}` failed in {} {}: policy value `{policy_value}`, session value `{session_value}`",
        u.operator, u.key, u.policy, u.sid
    );
    let metadata = vec![
        ("condition_key".to_owned(), u.key),
        ("condition_operator".to_owned(), u.operator),
        ("policy_value".to_owned(), policy_value),
        ("session_value".to_owned(), session_value),
        ("condition_statement".to_owned(), format!("{} {}", u.policy, u.sid)),
    ];
    Some((text, metadata))
}

/// Re-evaluates the session's role trust policy for `sts:AssumeRole` (and `sts:TagSession` when the
/// session has tags) as if `assumed_by` had made the session: a session named or tagged after someone
/// its trust policy would not allow is impersonation.
pub fn verify_trust(
    bundle: &Bundle,
    e: &Evidence,
    authorize: AuthorizeFn<'_>,
    now_ms: i64,
) -> Result<Vec<Determining>, Error> {
    let (Some(assumed_by), Some(principal)) = (e.assumed_by.as_deref(), e.principal.as_deref()) else {
        return Ok(Vec::new());
    };
    let Some(PrincipalArn::Session { account, role, session }) = arn::parse_principal(principal) else {
        return Ok(Vec::new());
    };
    let partition = arn::parse(principal).map_or("", |a| a.partition);
    let Some(role) = bundle.role_by_name(partition, account, role) else {
        return Err(Error::denied(
            Check::TrustAssumeRole,
            format!("impersonation check: role `{role}` of session `{principal}` is not in the bundle"),
        ));
    };
    let tags = all_tags(e);
    let mut base = engine::Request {
        principal: assumed_by.to_owned(),
        action: String::new(),
        resource: role.arn.clone(),
        now_ms,
        ..engine::Request::default()
    };
    for (k, v) in &tags {
        base.context.insert(&format!("aws:RequestTag/{k}"), CtxValue::One(v.clone()));
    }
    if !tags.is_empty() {
        base.context.insert("aws:TagKeys", CtxValue::Many(tags.iter().map(|(k, _)| k.clone()).collect()));
    }
    let mut assume = base.clone();
    assume.action = "sts:assumerole".into();
    assume.context.insert("sts:RoleSessionName", CtxValue::One(session.to_owned()));
    let mut tag = base;
    tag.action = "sts:tagsession".into();
    let mut checks = vec![(Check::TrustAssumeRole, assume, "assume it")];
    if !tags.is_empty() {
        checks.push((Check::TrustTagSession, tag, "tag the session"));
    }
    let mut determining = Vec::new();
    for (check, req, action) in checks {
        let r = authorize(bundle, &req);
        if r.decision == Decision::Allow {
            add_determining(&mut determining, check, r.determining);
            continue;
        }
        let (why, metadata) = match unmet_condition(bundle, &req, authorize) {
            Some((text, m)) => (format!("{text}; "), m),
            None => (String::new(), Vec::new()),
        };
        let message = format!(
            "impersonation: the trust policy of role `{}` would not let `{assumed_by}` {action} (session `{session}`{}): {why}{}",
            role.name,
            if tags.is_empty() {
                String::new()
            } else {
                format!(", tags {}", tags.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", "))
            },
            describe_decision(&r)
        );
        let mut err = Error::denied(check, message).with_decision(r).after(&determining);
        err.metadata = metadata;
        return Err(err);
    }
    Ok(determining)
}

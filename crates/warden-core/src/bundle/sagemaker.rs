//! SageMaker and Identity Center objects of a bundle: partner apps (`DescribePartnerApp`), Studio
//! domains with teams and user profiles, and the Identity Center instance, users and groups. Pure.
use super::fields::{bool_field, list_field, object, object_field, str_field, string_list, tags_field};
use super::model::{Bundle, Domain, IcGroup, IcUser, PartnerApp, Team, UserProfile};
use super::schema::{self, Place};
use crate::policy::{Problem, ProblemList, Problems, arn};
use serde_json::Value;
use std::sync::Arc;

/// Partner app types.
pub const APP_TYPES: &[&str] = &["comet", "fiddler", "deepchecks-llm-evaluation", "lakera-guard"];
/// Most admin users an app may have.
pub const MAX_ADMINS: usize = 5;

/// Whether `a` is `arn:aws:sagemaker:REGION:ACCOUNT:partner-app/app-` + 12 upper-case letters/digits.
pub fn valid_app_arn(a: &str) -> bool {
    let Some(p) = arn::parse(a) else { return false };
    let Some(id) = p.resource.strip_prefix("partner-app/app-") else {
        return false;
    };
    p.service == "sagemaker"
        && arn::is_account_id(p.account)
        && !p.region.is_empty()
        && id.len() == 12
        && id.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

fn valid_role_arn(a: &str) -> bool {
    matches!(arn::parse_principal(a), Some(arn::PrincipalArn::Role { .. }))
}

/// Whether `id` has the form `d-` + 12 lower-case letters/digits.
pub fn valid_domain_id(id: &str) -> bool {
    id.strip_prefix("d-")
        .is_some_and(|r| r.len() == 12 && r.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
}

/// Reads `sagemaker/partner-apps/*.json`.
pub fn read_partner_apps(files: &[(String, Value)], bundle: &mut Bundle, problems: &mut ProblemList) {
    for (path, v) in files {
        let mut p = Problems::new(path, problems);
        let Some(o) = object(v, "", "a partner app", &mut p) else {
            continue;
        };
        let place = Place::file(schema::PARTNER_APP_LAYOUT);
        schema::check(o, "", &schema::PARTNER_APP, place, &mut p);
        let arn_s = str_field(o, "Arn", "", true, &mut p).unwrap_or_default();
        if !arn_s.is_empty() && !valid_app_arn(&arn_s) {
            p.push("/Arn", format!("malformed partner app ARN `{arn_s}`: expected `arn:aws:sagemaker:REGION:ACCOUNT:partner-app/app-` + 12 upper-case letters or digits"));
        }
        let name = str_field(o, "Name", "", true, &mut p).unwrap_or_default();
        if !name.is_empty() && (name.len() > 256 || !name.bytes().all(|b| b.is_ascii_alphanumeric())) {
            p.push("/Name", format!("partner app name `{name}` must match `[a-zA-Z0-9]+`"));
        }
        let app_type = str_field(o, "Type", "", true, &mut p).unwrap_or_default();
        if !app_type.is_empty() && !APP_TYPES.contains(&app_type.as_str()) {
            p.push("/Type", format!("unknown partner app type `{app_type}`: expected one of {}", APP_TYPES.join(", ")));
        }
        let auth_type = str_field(o, "AuthType", "", false, &mut p).unwrap_or_else(|| "IAM".into());
        if !matches!(auth_type.as_str(), "IAM" | "IDC") {
            p.push("/AuthType", format!("unknown `AuthType` `{auth_type}`: expected `IAM` or `IDC`"));
        }
        let role = str_field(o, "ExecutionRoleArn", "", true, &mut p).unwrap_or_default();
        if !role.is_empty() && !valid_role_arn(&role) {
            p.push("/ExecutionRoleArn", format!("malformed role ARN `{role}`"));
        }
        let admins = match object_field(o, "ApplicationConfig", "", &mut p) {
            Some(ac) => {
                schema::check(ac, "/ApplicationConfig", &schema::APP_CONFIG, place, &mut p);
                string_list(ac, "AdminUsers", "/ApplicationConfig", &mut p)
            }
            None => Vec::new(),
        };
        for (i, a) in admins.iter().enumerate() {
            if a.trim().is_empty() || a.len() > 256 {
                p.push(
                    format!("/ApplicationConfig/AdminUsers/{i}"),
                    "an admin user name must be 1–256 non-blank characters",
                );
            }
        }
        if admins.len() > MAX_ADMINS {
            p.push(
                "/ApplicationConfig/AdminUsers",
                format!("{} admin users: at most {MAX_ADMINS} are allowed", admins.len()),
            );
        }
        if matches!(app_type.as_str(), "comet" | "fiddler") && admins.is_empty() {
            let why = p.because_of("/ApplicationConfig", &["AdminUsers"]);
            p.push("/ApplicationConfig/AdminUsers", format!("a {app_type} app needs at least one admin user{why}"));
        }
        let iam_session_identity = bool_field(o, "EnableIamSessionBasedIdentity", "", false, &mut p);
        let tags = tags_field(o, "Tags", "", &mut p);
        if bundle.partner_apps.contains_key(&arn_s) {
            p.push("/Arn", format!("duplicate partner app `{arn_s}`"));
        }
        if bundle.partner_apps.values().any(|a| a.name == name) {
            p.push("/Name", format!("duplicate partner app name `{name}`"));
        }
        bundle.resource_tags.insert(arn_s.clone(), tags.clone());
        let app = PartnerApp {
            arn: arn_s.clone(),
            name,
            app_type,
            auth_type,
            execution_role_arn: role,
            admin_users: admins,
            iam_session_identity,
            tags,
            file: path.clone(),
        };
        bundle.partner_apps.insert(arn_s, Arc::new(app));
    }
}

/// Reads `identity-center/*.json`.
pub fn read_identity_center(files: &[(String, Value)], bundle: &mut Bundle, problems: &mut ProblemList) {
    let ic = &mut bundle.identity_center;
    let mut group_members: Vec<(String, String, String, String)> = Vec::new();
    ic.background_sessions_enabled = true;
    ic.background_session_minutes = 7 * 24 * 60;
    for (path, v) in files {
        let mut p = Problems::new(path, problems);
        let Some(o) = object(v, "", "an Identity Center file", &mut p) else {
            continue;
        };
        let place = Place::file(schema::IDENTITY_CENTER_LAYOUT);
        schema::check(o, "", &schema::IDENTITY_CENTER, place, &mut p);
        if let Some(io) = object_field(o, "Instance", "", &mut p) {
            schema::check(io, "/Instance", &schema::IC_INSTANCE, place, &mut p);
            if ic.instance_arn.is_some() {
                p.push("/Instance", "a second Identity Center instance: a bundle has one");
            }
            ic.instance_arn = str_field(io, "InstanceArn", "/Instance", true, &mut p);
            ic.identity_store_id = str_field(io, "IdentityStoreId", "/Instance", true, &mut p);
            ic.identity_store_arn = str_field(io, "IdentityStoreArn", "/Instance", true, &mut p);
            if let (Some(a), Some(id)) = (&ic.identity_store_arn, &ic.identity_store_id) {
                let ok = arn::parse(a).is_some_and(|x| {
                    x.service == "identitystore"
                        && arn::is_account_id(x.account)
                        && x.resource == format!("identitystore/{id}")
                });
                if !ok {
                    p.push(
                        "/Instance/IdentityStoreArn",
                        format!("malformed identity store ARN `{a}` for identity store `{id}`"),
                    );
                }
            }
            if let Some(bs) = object_field(io, "UserBackgroundSessions", "/Instance", &mut p) {
                let at = "/Instance/UserBackgroundSessions";
                schema::check(bs, at, &schema::IC_BACKGROUND_SESSIONS, place, &mut p);
                ic.background_sessions_enabled =
                    bool_field(bs, "Enabled", "/Instance/UserBackgroundSessions", true, &mut p);
                match bs.get("DurationMinutes") {
                    None => {}
                    Some(Value::Number(n)) if n.as_u64().is_some_and(|m| (15..=129_600).contains(&m)) => {
                        ic.background_session_minutes =
                            n.as_u64().and_then(|m| u32::try_from(m).ok()).unwrap_or(10_080);
                    }
                    Some(x) => p.push(
                        "/Instance/UserBackgroundSessions/DurationMinutes",
                        format!("background session duration {x} must be 15–129600 minutes (15 minutes to 90 days)"),
                    ),
                }
            }
        }
        for (f, u) in list_field(o, "Users", "", &mut p) {
            let Some(uo) = object(u, &f, "a user", &mut p) else {
                continue;
            };
            schema::check(uo, &f, &schema::IC_USER, place, &mut p);
            let (Some(id), Some(name)) =
                (str_field(uo, "UserId", &f, true, &mut p), str_field(uo, "UserName", &f, true, &mut p))
            else {
                continue;
            };
            if ic.users.iter().any(|x| x.user_id == id || x.user_name == name) {
                p.push(f, format!("duplicate Identity Center user `{name}`"));
            }
            ic.users.push(IcUser { user_id: id, user_name: name });
        }
        for (f, g) in list_field(o, "Groups", "", &mut p) {
            let Some(go) = object(g, &f, "a group", &mut p) else {
                continue;
            };
            schema::check(go, &f, &schema::IC_GROUP, place, &mut p);
            let id = str_field(go, "GroupId", &f, true, &mut p).unwrap_or_default();
            let name = str_field(go, "DisplayName", &f, true, &mut p).unwrap_or_default();
            let members = string_list(go, "Members", &f, &mut p);
            for (i, m) in members.iter().enumerate() {
                group_members.push((path.clone(), format!("{f}/Members/{i}"), name.clone(), m.clone()));
            }
            ic.groups.push(IcGroup { group_id: id, name, members });
        }
    }
    for (path, field, group, member) in group_members {
        if !ic.users.iter().any(|u| u.user_name == member) {
            problems.push(Problem {
                file: path,
                field,
                message: format!("group `{group}` lists unknown user `{member}`"),
            });
        }
    }
}

/// `AssignedUsers` and `AssignedGroups` (SPEC §5.6): Identity Center user names and group display
/// names of the bundle's identity store, on SSO domains only.
fn check_assignments(bundle: &Bundle, auth_mode: &str, users: &[String], groups: &[String], p: &mut Problems<'_>) {
    let ic = &bundle.identity_center;
    for (key, names, known) in [
        ("AssignedUsers", users, ic.users.iter().map(|u| u.user_name.as_str()).collect::<Vec<_>>()),
        ("AssignedGroups", groups, ic.groups.iter().map(|g| g.name.as_str()).collect::<Vec<_>>()),
    ] {
        if auth_mode == "IAM" && !names.is_empty() {
            p.push(
                format!("/{key}"),
                format!("`{key}` is only for SSO domains: an IAM-mode domain's users come from their teams"),
            );
            continue;
        }
        let what = if key == "AssignedUsers" { "user" } else { "group" };
        for (i, n) in names.iter().enumerate() {
            if n.is_empty() {
                p.push(format!("/{key}/{i}"), format!("empty {what} name"));
            } else if !known.contains(&n.as_str()) {
                let hint = crate::policy::hint::did_you_mean(n, known.iter().copied());
                p.push(
                    format!("/{key}/{i}"),
                    format!("unknown Identity Center {what} `{n}` (not in identity-center/*.json){hint}"),
                );
            }
        }
    }
}

/// Reads `sagemaker/domains/*.json`.
pub fn read_domains(files: &[(String, Value)], bundle: &mut Bundle, problems: &mut ProblemList) {
    for (path, v) in files {
        let mut p = Problems::new(path, problems);
        let Some(o) = object(v, "", "a domain", &mut p) else {
            continue;
        };
        let place = Place::file(schema::DOMAIN_LAYOUT);
        schema::check(o, "", &schema::DOMAIN, place, &mut p);
        let id = str_field(o, "DomainId", "", true, &mut p).unwrap_or_default();
        if !id.is_empty() && !valid_domain_id(&id) {
            p.push("/DomainId", format!("malformed domain id `{id}`: expected `d-` + 12 lower-case letters or digits"));
        }
        let arn_s = str_field(o, "DomainArn", "", true, &mut p).unwrap_or_default();
        let parsed = arn::parse(&arn_s);
        if !arn_s.is_empty()
            && !parsed.is_some_and(|a| a.service == "sagemaker" && a.resource == format!("domain/{id}"))
        {
            p.push("/DomainArn", format!("malformed domain ARN `{arn_s}` for domain `{id}`"));
        }
        let (region, account) = parsed.map(|a| (a.region.to_owned(), a.account.to_owned())).unwrap_or_default();
        let name = str_field(o, "DomainName", "", false, &mut p).unwrap_or_else(|| id.clone());
        let auth_mode = str_field(o, "AuthMode", "", true, &mut p).unwrap_or_default();
        if !matches!(auth_mode.as_str(), "SSO" | "IAM") {
            p.push("/AuthMode", format!("unknown `AuthMode` `{auth_mode}`: expected `SSO` or `IAM`"));
        }
        let settings = object_field(o, "DomainSettings", "", &mut p);
        if let Some(ds) = settings {
            schema::check(ds, "/DomainSettings", &schema::DOMAIN_SETTINGS, place, &mut p);
        }
        let status = |key: &str, p: &mut Problems<'_>| {
            let ds = settings?;
            let at = format!("/DomainSettings/{key}");
            let setting = object_field(ds, key, "/DomainSettings", p)?;
            schema::check(setting, &at, &schema::STATUS_SETTING, place, p);
            let s = str_field(setting, "Status", &at, true, p)?;
            if !matches!(s.as_str(), "ENABLED" | "DISABLED") {
                p.push(format!("{at}/Status"), format!("unknown status `{s}`: expected `ENABLED` or `DISABLED`"));
            }
            Some(s)
        };
        let tip = status("TrustedIdentityPropagationSettings", &mut p);
        let grants = status("S3AccessGrants", &mut p);
        let tip_enabled = tip.as_deref() == Some("ENABLED");
        if tip_enabled && auth_mode == "IAM" {
            p.push(
                "/DomainSettings/TrustedIdentityPropagationSettings",
                "trusted identity propagation needs an Identity Center (SSO) domain",
            );
        }
        let default_role = match object_field(o, "DefaultUserSettings", "", &mut p) {
            Some(d) => {
                schema::check(d, "/DefaultUserSettings", &schema::DEFAULT_USER_SETTINGS, place, &mut p);
                str_field(d, "ExecutionRole", "/DefaultUserSettings", false, &mut p)
            }
            None => None,
        };
        if let Some(r) = &default_role
            && !valid_role_arn(r)
        {
            p.push("/DefaultUserSettings/ExecutionRole", format!("malformed role ARN `{r}`"));
        }
        let anat = str_field(o, "AppNetworkAccessType", "", false, &mut p);
        if let Some(a) = &anat
            && !matches!(a.as_str(), "PublicInternetOnly" | "VpcOnly")
        {
            p.push("/AppNetworkAccessType", format!("unknown `AppNetworkAccessType` `{a}`"));
        }
        let tags = tags_field(o, "Tags", "", &mut p);
        let assigned_users = string_list(o, "AssignedUsers", "", &mut p);
        let assigned_groups = string_list(o, "AssignedGroups", "", &mut p);
        check_assignments(bundle, &auth_mode, &assigned_users, &assigned_groups, &mut p);
        let mut teams = Vec::new();
        for (f, t) in list_field(o, "Teams", "", &mut p) {
            let Some(to) = object(t, &f, "a team", &mut p) else {
                continue;
            };
            schema::check(to, &f, &schema::TEAM, place, &mut p);
            let team_id = str_field(to, "TeamId", &f, true, &mut p).unwrap_or_default();
            let role = str_field(to, "ExecutionRole", &f, true, &mut p).unwrap_or_default();
            if !role.is_empty() && !valid_role_arn(&role) {
                p.push(format!("{f}/ExecutionRole"), format!("malformed role ARN `{role}`"));
            }
            let ttags = tags_field(to, "Tags", &f, &mut p);
            let members_at = format!("{f}/Members");
            let (users, groups) = match object_field(to, "Members", &f, &mut p) {
                Some(m) => {
                    schema::check(m, &members_at, &schema::MEMBERS, place, &mut p);
                    (string_list(m, "Users", &members_at, &mut p), string_list(m, "Groups", &members_at, &mut p))
                }
                None => (Vec::new(), Vec::new()),
            };
            if teams.iter().any(|x: &Team| x.team_id == team_id) {
                p.push(format!("{f}/TeamId"), format!("duplicate team `{team_id}`"));
            }
            teams.push(Team { team_id, execution_role: role, tags: ttags, users, groups });
        }
        let mut profiles = Vec::new();
        for (f, u) in list_field(o, "UserProfiles", "", &mut p) {
            let Some(uo) = object(u, &f, "a user profile", &mut p) else {
                continue;
            };
            schema::check(uo, &f, &schema::USER_PROFILE, place, &mut p);
            if let Some(us) = object_field(uo, "UserSettings", &f, &mut p) {
                schema::check(us, &format!("{f}/UserSettings"), &schema::PROFILE_USER_SETTINGS, place, &mut p);
            }
            let pname = str_field(uo, "UserProfileName", &f, true, &mut p).unwrap_or_default();
            let sso_user = str_field(uo, "SingleSignOnUserValue", &f, false, &mut p);
            if auth_mode == "SSO" && sso_user.is_none() {
                p.missing(
                    &f,
                    &["SingleSignOnUserValue"],
                    "a user profile of an SSO domain needs `SingleSignOnUserValue`",
                );
            }
            if auth_mode == "IAM" && sso_user.is_some() {
                p.push(format!("{f}/SingleSignOnUserValue"), "`SingleSignOnUserValue` is only for SSO domains");
            }
            let role = str_field(uo, "ExecutionRole", &f, false, &mut p);
            let ptags = tags_field(uo, "Tags", &f, &mut p);
            let parn = format!("arn:aws:sagemaker:{region}:{account}:user-profile/{id}/{pname}");
            if profiles.iter().any(|x: &UserProfile| x.name.eq_ignore_ascii_case(&pname)) {
                p.push(
                    format!("{f}/UserProfileName"),
                    format!("duplicate user profile `{pname}` (names are case-insensitive)"),
                );
            }
            bundle.resource_tags.insert(parn.clone(), ptags.clone());
            profiles.push(UserProfile { name: pname, arn: parn, sso_user, execution_role: role, tags: ptags });
        }
        if bundle.domains.contains_key(&id) {
            p.push("/DomainId", format!("duplicate domain `{id}`"));
        }
        bundle.resource_tags.insert(arn_s.clone(), tags.clone());
        let domain = Domain {
            domain_id: id.clone(),
            arn: arn_s,
            name,
            auth_mode,
            tip_enabled,
            s3_access_grants: grants.as_deref() == Some("ENABLED"),
            app_network_access_type: anat,
            default_execution_role: default_role,
            tags,
            teams,
            profiles,
            assigned_users,
            assigned_groups,
            file: path.clone(),
        };
        bundle.domains.insert(id, Arc::new(domain));
    }
}

//! SageMaker and Identity Center objects of a bundle: partner apps (`DescribePartnerApp`), Studio
//! domains with teams and user profiles, and the Identity Center instance, users and groups. Pure.
use super::fields::{bool_field, list_field, object, str_field, string_list, tags_field};
use super::model::{Bundle, Domain, IcGroup, IcUser, PartnerApp, Team, UserProfile};
use crate::policy::{Problem, Problems, arn};
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
pub fn read_partner_apps(files: &[(String, Value)], bundle: &mut Bundle, problems: &mut Vec<Problem>) {
    for (path, v) in files {
        let mut p = Problems::new(path, problems);
        let Some(o) = object(v, "", "a partner app", &mut p) else {
            continue;
        };
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
        let admins = match o.get("ApplicationConfig").and_then(Value::as_object) {
            Some(ac) => string_list(ac, "AdminUsers", "/ApplicationConfig", &mut p),
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
            p.push("/ApplicationConfig/AdminUsers", format!("a {app_type} app needs at least one admin user"));
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
pub fn read_identity_center(files: &[(String, Value)], bundle: &mut Bundle, problems: &mut Vec<Problem>) {
    let ic = &mut bundle.identity_center;
    let mut group_members: Vec<(String, String, String, String)> = Vec::new();
    ic.background_sessions_enabled = true;
    ic.background_session_minutes = 7 * 24 * 60;
    for (path, v) in files {
        let mut p = Problems::new(path, problems);
        let Some(o) = object(v, "", "an Identity Center file", &mut p) else {
            continue;
        };
        for k in o.keys() {
            if !matches!(k.as_str(), "Instance" | "Users" | "Groups") {
                p.push(format!("/{k}"), format!("unknown key `{k}`: expected `Instance`, `Users` or `Groups`"));
            }
        }
        if let Some(inst) = o.get("Instance") {
            let Some(io) = object(inst, "/Instance", "`Instance`", &mut p) else {
                continue;
            };
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
            if let Some(bs) = io.get("UserBackgroundSessions").and_then(Value::as_object) {
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

/// Reads `sagemaker/domains/*.json`.
pub fn read_domains(files: &[(String, Value)], bundle: &mut Bundle, problems: &mut Vec<Problem>) {
    for (path, v) in files {
        let mut p = Problems::new(path, problems);
        let Some(o) = object(v, "", "a domain", &mut p) else {
            continue;
        };
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
        let status = |o: &serde_json::Map<String, Value>, key: &str| {
            o.get("DomainSettings")
                .and_then(|d| d.get(key))
                .and_then(|s| s.get("Status"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let tip = status(o, "TrustedIdentityPropagationSettings");
        let grants = status(o, "S3AccessGrants");
        for (key, s) in [("TrustedIdentityPropagationSettings", &tip), ("S3AccessGrants", &grants)] {
            if let Some(s) = s
                && !matches!(s.as_str(), "ENABLED" | "DISABLED")
            {
                p.push(
                    format!("/DomainSettings/{key}/Status"),
                    format!("unknown status `{s}`: expected `ENABLED` or `DISABLED`"),
                );
            }
        }
        let tip_enabled = tip.as_deref() == Some("ENABLED");
        if tip_enabled && auth_mode == "IAM" {
            p.push(
                "/DomainSettings/TrustedIdentityPropagationSettings",
                "trusted identity propagation needs an Identity Center (SSO) domain",
            );
        }
        let default_role = o
            .get("DefaultUserSettings")
            .and_then(|d| d.get("ExecutionRole"))
            .and_then(Value::as_str)
            .map(str::to_owned);
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
        let assigned_groups = string_list(o, "AssignedGroups", "", &mut p);
        let mut teams = Vec::new();
        for (f, t) in list_field(o, "Teams", "", &mut p) {
            let Some(to) = object(t, &f, "a team", &mut p) else {
                continue;
            };
            let team_id = str_field(to, "TeamId", &f, true, &mut p).unwrap_or_default();
            let role = str_field(to, "ExecutionRole", &f, true, &mut p).unwrap_or_default();
            if !role.is_empty() && !valid_role_arn(&role) {
                p.push(format!("{f}/ExecutionRole"), format!("malformed role ARN `{role}`"));
            }
            let ttags = tags_field(to, "Tags", &f, &mut p);
            let (users, groups) = match to.get("Members").and_then(Value::as_object) {
                Some(m) => (
                    string_list(m, "Users", &format!("{f}/Members"), &mut p),
                    string_list(m, "Groups", &format!("{f}/Members"), &mut p),
                ),
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
            let pname = str_field(uo, "UserProfileName", &f, true, &mut p).unwrap_or_default();
            let sso_user = str_field(uo, "SingleSignOnUserValue", &f, false, &mut p);
            if auth_mode == "SSO" && sso_user.is_none() {
                p.push(f.clone(), "a user profile of an SSO domain needs `SingleSignOnUserValue`");
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
            assigned_groups,
            file: path.clone(),
        };
        bundle.domains.insert(id, Arc::new(domain));
    }
}

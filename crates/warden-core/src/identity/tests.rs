//! Table-driven tests of PropagateIdentity (SPEC §5) over a small bundle built here: one test per rule
//! of §5.1–5.4 and per fine point of §5.5, each named after the rule it proves, and the admin memory
//! (§5.2) across reloads. The engine is the real one (`engine::authorize`).
use super::*;
use crate::bundle;
use serde_json::{Value, json};

const ACCOUNT: &str = "111122223333";
const NOW: i64 = 1_750_000_000_000;
const STORE: &str = "arn:aws:identitystore::111122223333:identitystore/d-1234567890";
const IC_PROVIDER: &str = "arn:aws:iam::aws:contextProvider/IdentityCenter";
const SAML_TAG: &str = "https://aws.amazon.com/SAML/Attributes/PrincipalTag:";

const COMET: &str = "arn:aws:sagemaker:us-east-1:111122223333:partner-app/app-COMET0000001";
const FIDDLER: &str = "arn:aws:sagemaker:us-east-1:111122223333:partner-app/app-FIDDLER00002";
const DEEPCHECKS: &str = "arn:aws:sagemaker:us-east-1:111122223333:partner-app/app-DEEPCHECKS03";
const LAKERA: &str = "arn:aws:sagemaker:us-east-1:111122223333:partner-app/app-LAKERA000004";
const UNKNOWN_APP: &str = "arn:aws:sagemaker:us-east-1:111122223333:partner-app/app-ZZZZZZZZZZZZ";

/// SSO, TIP on, S3 Access Grants on; alice has a profile with her own role, DataGroup is assigned.
const SSO_TIP: &str = "d-ssotip000001";
/// SSO, TIP off.
const SSO_NOTIP: &str = "d-ssonotip0001";
/// SSO, TIP on, default role's trust lacks `sts:SetContext`.
const SSO_NOSETCTX: &str = "d-ssonosetct01";
/// SSO, TIP on, S3 Access Grants on, default role lacks the grants permissions.
const SSO_NOGRANTS: &str = "d-ssonogrant01";
/// IAM-mode per-team domain (team `TeamA`).
const IAM_TEAMS: &str = "d-iamteams0001";
const UNKNOWN_DOMAIN: &str = "d-zzzzzzzzzzzz";

const ALICE_ID: &str = "11111111-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
const BOB_ID: &str = "22222222-bbbb-4bbb-8bbb-bbbbbbbbbbbb";
const ERIN_ID: &str = "33333333-eeee-4eee-8eee-eeeeeeeeeeee";

fn user_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:user/{name}")
}
fn role_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{name}")
}
fn session(role: &str, name: &str) -> String {
    format!("arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{name}")
}

// === the bundle ===

fn doc(statements: Value) -> Value {
    json!({"Version": "2012-10-17", "Statement": statements})
}
fn allow(sid: &str, actions: Value, resources: Value) -> Value {
    json!({"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources})
}
fn apps_all() -> Value {
    json!("arn:aws:sagemaker:us-east-1:111122223333:partner-app/*")
}
fn launch_all() -> Value {
    allow("Launch", json!(["sagemaker:CreatePartnerAppPresignedUrl", "sagemaker:CallPartnerAppApi"]), apps_all())
}
fn assume_roles() -> Value {
    allow("AssumeRoles", json!(["sts:AssumeRole", "sts:TagSession"]), json!("arn:aws:iam::111122223333:role/*"))
}
fn sagemaker_trust(actions: Value) -> Value {
    json!({"Sid": "SageMaker", "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": actions})
}
/// A TIP-ready trust policy: SageMaker may assume the role, and set the Identity Center context.
fn tip_trust() -> Value {
    doc(json!([
        sagemaker_trust(json!("sts:AssumeRole")),
        {"Sid": "SetContext", "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"},
         "Action": "sts:SetContext",
         "Condition": {"ForAnyValue:ArnEquals": {"sts:RequestContextProviders": IC_PROVIDER}}}
    ]))
}
fn grants() -> Value {
    allow(
        "Grants",
        json!(["s3:GetDataAccess", "s3:GetAccessGrantsInstanceForPrefix"]),
        json!("arn:aws:s3:us-east-1:111122223333:access-grants/default"),
    )
}

fn user(name: &str, statements: Value, tags: Value) -> (String, Value) {
    (
        format!("iam/users/{name}.json"),
        json!({"UserName": name, "Arn": user_arn(name), "GroupList": [],
               "UserPolicyList": if statements.as_array().is_some_and(|s| s.is_empty()) { json!([]) }
                                 else { json!([{"PolicyName": "Inline", "PolicyDocument": doc(statements)}]) },
               "AttachedManagedPolicies": [], "Tags": tags}),
    )
}

fn role(name: &str, trust: Value, statements: Value) -> (String, Value) {
    (
        format!("iam/roles/{name}.json"),
        json!({"RoleName": name, "Arn": role_arn(name), "AssumeRolePolicyDocument": trust,
               "AttachedManagedPolicies": [],
               "RolePolicyList": [{"PolicyName": "Inline", "PolicyDocument": doc(statements)}],
               "Tags": []}),
    )
}

fn app(file: &str, arn: &str, name: &str, app_type: &str, admins: &[&str], flag: bool) -> (String, Value) {
    (
        format!("sagemaker/partner-apps/{file}.json"),
        json!({"Arn": arn, "Name": name, "Type": app_type, "AuthType": "IAM",
               "ExecutionRoleArn": role_arn("StudioExec"),
               "ApplicationConfig": {"AdminUsers": admins},
               "EnableIamSessionBasedIdentity": flag,
               "Tags": [{"Key": "Team", "Value": "TeamA"}]}),
    )
}

fn sso_domain(id: &str, tip: bool, grants: bool, default_role: &str, profiles: Value) -> (String, Value) {
    let status = |b: bool| if b { "ENABLED" } else { "DISABLED" };
    (
        format!("sagemaker/domains/{id}.json"),
        json!({"DomainId": id, "DomainArn": format!("arn:aws:sagemaker:us-east-1:{ACCOUNT}:domain/{id}"),
               "DomainName": id, "AuthMode": "SSO",
               "DefaultUserSettings": {"ExecutionRole": role_arn(default_role)},
               "DomainSettings": {"TrustedIdentityPropagationSettings": {"Status": status(tip)},
                                  "S3AccessGrants": {"Status": status(grants)}},
               "AssignedUsers": ["alice"],
               "AssignedGroups": ["DataGroup"],
               "UserProfiles": profiles}),
    )
}

fn identity_center(background: Value) -> (String, Value) {
    let mut instance = json!({"InstanceArn": "arn:aws:sso:::instance/ssoins-0000000000000001",
                              "IdentityStoreId": "d-1234567890", "IdentityStoreArn": STORE});
    if !background.is_null() {
        instance["UserBackgroundSessions"] = background;
    }
    (
        "identity-center/identity-center.json".into(),
        json!({"Instance": instance,
               "Users": [{"UserId": ALICE_ID, "UserName": "alice"},
                         {"UserId": BOB_ID, "UserName": "bob"},
                         {"UserId": ERIN_ID, "UserName": "erin"}],
               "Groups": [{"GroupId": "g-1", "DisplayName": "DataGroup", "Members": ["bob"]}]}),
    )
}

/// The files of the test bundle, as JSON values by path.
fn files() -> Vec<(String, Value)> {
    let root = json!({"AWS": format!("arn:aws:iam::{ACCOUNT}:root")});
    vec![
        // Users: alice and bob may launch every app and assume every role; carol may do nothing;
        // dave may launch but not assume roles; mallory is denied the comet app explicitly.
        user(
            "alice",
            json!([launch_all(), assume_roles()]),
            // An IAM tag, never a session tag (rule 2 must ignore it).
            json!([{"Key": "SageMakerPartnerAppUser", "Value": "somebody-else"}]),
        ),
        user("bob", json!([launch_all(), assume_roles()]), json!([])),
        user("carol", json!([]), json!([])),
        user("dave", json!([launch_all()]), json!([])),
        user(
            "mallory",
            json!([launch_all(), {"Sid": "DenyComet", "Effect": "Deny", "Action": "sagemaker:*", "Resource": COMET}]),
            json!([]),
        ),
        // Launch roles.
        role(
            "Launcher",
            doc(json!([{"Sid": "SessionNameIsUserName", "Effect": "Allow", "Principal": root.clone(),
                        "Action": "sts:AssumeRole",
                        "Condition": {"StringEquals": {"sts:RoleSessionName": "${aws:username}"}}}])),
            json!([launch_all()]),
        ),
        role(
            "TagLauncher",
            doc(json!([{"Sid": "TagIsUserName", "Effect": "Allow", "Principal": root.clone(),
                        "Action": ["sts:AssumeRole", "sts:TagSession"],
                        "Condition": {"StringLike": {"aws:RequestTag/SageMakerPartnerAppUser": "${aws:username}"}}}])),
            json!([launch_all()]),
        ),
        role(
            "OpenTrust",
            doc(json!([{"Sid": "Account", "Effect": "Allow", "Principal": root.clone(),
                        "Action": ["sts:AssumeRole", "sts:TagSession"]}])),
            json!([launch_all()]),
        ),
        role(
            "DirectTrust",
            doc(json!([{"Sid": "Dave", "Effect": "Allow", "Principal": {"AWS": user_arn("dave")},
                        "Action": "sts:AssumeRole"}])),
            json!([launch_all()]),
        ),
        role(
            "SdkOnly",
            doc(json!([{"Sid": "Account", "Effect": "Allow", "Principal": root.clone(), "Action": "sts:AssumeRole"}])),
            json!([allow("Sdk", json!("sagemaker:CallPartnerAppApi"), apps_all())]),
        ),
        role(
            "Federated",
            doc(json!([{"Sid": "Account", "Effect": "Allow", "Principal": root,
                        "Action": ["sts:AssumeRole", "sts:TagSession"]}])),
            json!([launch_all(), {
                "Sid": "OwnProfileOnly", "Effect": "Allow", "Action": "sagemaker:CreatePresignedDomainUrl",
                "Resource": format!("arn:aws:sagemaker:us-east-1:{ACCOUNT}:user-profile/{IAM_TEAMS}/*"),
                "Condition": {"StringEquals": {"sagemaker:ResourceTag/studiouserid": "${aws:PrincipalTag/studiouserid}"}}
            }]),
        ),
        // Execution roles. StudioExec (domain default) may open only the comet app; ProfileRole
        // (alice's own profile role) every app.
        role(
            "StudioExec",
            tip_trust(),
            json!([allow("CometOnly", json!("sagemaker:CreatePartnerAppPresignedUrl"), json!(COMET)), grants()]),
        ),
        role(
            "ProfileRole",
            tip_trust(),
            json!([allow("AllApps", json!("sagemaker:CreatePartnerAppPresignedUrl"), apps_all()), grants()]),
        ),
        role("NoSetContext", doc(json!([sagemaker_trust(json!("sts:AssumeRole"))])), json!([launch_all(), grants()])),
        role("NoGrants", tip_trust(), json!([launch_all()])),
        role(
            "TeamARole",
            doc(json!([sagemaker_trust(json!("sts:AssumeRole"))])),
            json!([allow("LakeraOnly", json!("sagemaker:CreatePartnerAppPresignedUrl"), json!(LAKERA))]),
        ),
        // Partner apps: one of each type.
        app("comet", COMET, "Comet", "comet", &["alice"], false),
        app("fiddler", FIDDLER, "Fiddler", "fiddler", &["bob"], true),
        app("deepchecks", DEEPCHECKS, "Deepchecks", "deepchecks-llm-evaluation", &[], false),
        app("lakera", LAKERA, "Lakera", "lakera-guard", &[], true),
        // Domains.
        sso_domain(
            SSO_TIP,
            true,
            true,
            "StudioExec",
            json!([{"UserProfileName": "alice", "SingleSignOnUserValue": "alice",
                    "ExecutionRole": role_arn("ProfileRole"), "Tags": [{"Key": "Owner", "Value": "alice"}]}]),
        ),
        sso_domain(
            SSO_NOTIP,
            false,
            false,
            "StudioExec",
            json!([{"UserProfileName": "alice", "SingleSignOnUserValue": "alice"}]),
        ),
        sso_domain(
            SSO_NOSETCTX,
            true,
            false,
            "NoSetContext",
            json!([{"UserProfileName": "alice", "SingleSignOnUserValue": "alice"}]),
        ),
        sso_domain(
            SSO_NOGRANTS,
            true,
            true,
            "NoGrants",
            json!([{"UserProfileName": "alice", "SingleSignOnUserValue": "alice"}]),
        ),
        (
            format!("sagemaker/domains/{IAM_TEAMS}.json"),
            json!({"DomainId": IAM_TEAMS,
                   "DomainArn": format!("arn:aws:sagemaker:us-east-1:{ACCOUNT}:domain/{IAM_TEAMS}"),
                   "AuthMode": "IAM",
                   "DefaultUserSettings": {"ExecutionRole": role_arn("StudioExec")},
                   "DomainSettings": {"TrustedIdentityPropagationSettings": {"Status": "DISABLED"}},
                   "Teams": [{"TeamId": "TeamA", "ExecutionRole": role_arn("TeamARole"),
                              "Tags": [{"Key": "Team", "Value": "TeamA"}],
                              "Members": {"Users": ["alice"], "Groups": ["DataGroup"]}}],
                   "UserProfiles": [{"UserProfileName": "alice-TeamA", "ExecutionRole": role_arn("TeamARole"),
                                     "Tags": [{"Key": "Team", "Value": "TeamA"},
                                              {"Key": "studiouserid", "Value": ALICE_ID}]}]}),
        ),
        identity_center(json!({"Enabled": true, "DurationMinutes": 10080})),
    ]
}

fn build(files: Vec<(String, Value)>) -> Bundle {
    let raw = files.into_iter().map(|(p, v)| (p, serde_json::to_vec_pretty(&v).expect("serialize"))).collect();
    bundle::from_files(raw).unwrap_or_else(|problems| {
        panic!(
            "the test bundle is invalid:\n{}",
            problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
        )
    })
}

/// The test bundle with `replace` files replaced (or added).
fn bundle_with(replace: Vec<(String, Value)>) -> Bundle {
    let mut f = files();
    for (path, v) in replace {
        f.retain(|(p, _)| *p != path);
        f.push((path, v));
    }
    build(f)
}

fn test_bundle() -> Bundle {
    build(files())
}

/// The memory a server has right after activating `bundle` for the first time.
fn fresh_memory(bundle: &Bundle) -> AdminMemory {
    AdminMemory::default().transition(bundle).expect("the first activation never refuses")
}

// === requests ===

fn iam(principal: &str) -> Evidence {
    Evidence { principal: Some(principal.to_owned()), ..Evidence::default() }
}
fn ic(user_id: &str, user_name: &str) -> Option<IcEvidence> {
    Some(IcEvidence { user_id: user_id.into(), user_name: user_name.into(), identity_store_arn: STORE.into() })
}
fn ic_alice() -> Evidence {
    Evidence { ic: ic(ALICE_ID, "alice"), ..Evidence::default() }
}
fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}
fn saml_tag(key: &str, value: &str) -> (String, String) {
    (format!("{SAML_TAG}{key}"), value.to_owned())
}

fn partner(arn: &str, channel: Channel, evidence: Evidence) -> Request {
    Request {
        target: Target::PartnerApp { arn: arn.into(), domain_id: None, user_profile: None, team_id: None },
        channel: Some(channel),
        evidence,
        now_ms: NOW,
    }
}
fn presigned(arn: &str, evidence: Evidence) -> Request {
    partner(arn, Channel::PresignedUrlApi, evidence)
}
fn studio(arn: &str, domain: &str, team: Option<&str>, evidence: Evidence) -> Request {
    Request {
        target: Target::PartnerApp {
            arn: arn.into(),
            domain_id: Some(domain.into()),
            user_profile: None,
            team_id: team.map(str::to_owned),
        },
        channel: Some(Channel::Studio),
        evidence,
        now_ms: NOW,
    }
}
fn profile_req(domain: &str, team: Option<&str>, evidence: Evidence) -> Request {
    Request {
        target: Target::Profile { domain_id: domain.into(), team_id: team.map(str::to_owned) },
        channel: None,
        evidence,
        now_ms: NOW,
    }
}
fn job_req(domain: &str, max: u32, started: Option<i64>, evidence: Evidence) -> Request {
    Request {
        target: Target::Job {
            domain_id: domain.into(),
            job_type: None,
            job_arn: None,
            max_runtime_seconds: Some(max),
            background_started_ms: started,
        },
        channel: None,
        evidence,
        now_ms: NOW,
    }
}

fn run_on(bundle: &Bundle, admins: &AdminMemory, req: &Request) -> Result<Outcome, Error> {
    propagate(bundle, admins, req, &crate::engine::authorize)
}
fn run(req: &Request) -> Result<Outcome, Error> {
    let b = test_bundle();
    run_on(&b, &fresh_memory(&b), req)
}
fn ok(what: &str, req: &Request) -> Outcome {
    run(req).unwrap_or_else(|e| panic!("{what}: expected an answer, got {:?} {e}", e.kind))
}
fn fail(what: &str, req: &Request, kind: ErrorKind) -> Error {
    match run(req) {
        Ok(o) => panic!("{what}: expected {kind:?}, got {o:?}"),
        Err(e) => {
            assert_eq!(e.kind, kind, "{what}: {e}");
            assert!(!e.message.is_empty(), "{what}: an empty message");
            // SPEC §5.6: every denial names the check that failed.
            if matches!(kind, ErrorKind::NotAuthorized | ErrorKind::Precondition) {
                assert!(e.check.is_some(), "{what}: a denial without a check: {e}");
            }
            e
        }
    }
}
fn invalid(what: &str, req: &Request, field: &str) -> Error {
    let e = fail(what, req, ErrorKind::Malformed);
    assert_eq!(e.field.as_deref(), Some(field), "{what}: {e}");
    e
}
fn assert_mentions(what: &str, e: &Error, needles: &[&str]) {
    for n in needles {
        assert!(e.message.contains(n), "{what}: the message should mention `{n}`: {}", e.message);
    }
}
fn identity(o: &Outcome) -> (&str, Source) {
    (o.user_name.as_deref().unwrap_or_default(), o.source.expect("a source"))
}

// === the fixture itself ===

#[test]
fn the_test_bundle_loads() {
    let b = test_bundle();
    assert_eq!(b.partner_apps.len(), 4);
    assert_eq!(b.domains.len(), 5);
    assert_eq!(b.identity_center.users.len(), 3);
}

// === §5.1 rule 1 ===

#[test]
fn rule1_studio_identity_center_user_name() {
    let o = ok("alice from Studio", &studio(COMET, SSO_TIP, None, ic_alice()));
    assert_eq!(identity(&o), ("alice", Source::IdentityCenter));
    assert_eq!(o.admin_role, Some(AdminRole::RootAdmin));
    assert!(!o.trust_verified);
    // Rule 1 comes first: a session tag does not change it.
    let mut e = ic_alice();
    e.session_tags = tags(&[("SageMakerPartnerAppUser", "bob")]);
    let o = ok("alice from Studio with a tag", &studio(COMET, SSO_TIP, None, e));
    assert_eq!(identity(&o), ("alice", Source::IdentityCenter));
}

#[test]
fn rule1_studio_authorizes_the_profile_execution_role() {
    // alice's profile has its own role (every app); bob (assigned through a group) gets the domain
    // default, which may open only the comet app.
    let o = ok("alice opens lakera", &studio(LAKERA, SSO_TIP, None, ic_alice()));
    assert_eq!(identity(&o), ("alice", Source::IdentityCenter));
    assert!(o.determining.iter().any(|s| &*s.policy == "role/ProfileRole/inline/Inline"), "{:?}", o.determining);
    let bob = Evidence { ic: ic(BOB_ID, "bob"), ..Evidence::default() };
    let o = ok("bob opens comet", &studio(COMET, SSO_TIP, None, bob.clone()));
    assert_eq!(identity(&o), ("bob", Source::IdentityCenter));
    assert!(o.determining.iter().any(|s| &*s.policy == "role/StudioExec/inline/Inline"), "{:?}", o.determining);
    let e = fail("bob opens lakera", &studio(LAKERA, SSO_TIP, None, bob), ErrorKind::NotAuthorized);
    assert_mentions("bob opens lakera", &e, &["StudioExec", "IMPLICIT_DENY"]);
}

#[test]
fn rule1_presigned_url_api_falls_through_to_iam_rules() {
    // Identity Center evidence sent with PRESIGNED_URL_API is ignored (even one that would not
    // check out): the caller's IAM session decides.
    let mut e = iam(&session("Launcher", "bob"));
    e.ic = Some(IcEvidence {
        user_id: ALICE_ID.into(),
        user_name: "alice".into(),
        identity_store_arn: "arn:aws:identitystore::999999999999:identitystore/d-9999999999".into(),
    });
    let o = ok("presigned with IC evidence", &presigned(LAKERA, e));
    assert_eq!(identity(&o), ("bob", Source::SessionName));
}

// === §5.1 rule 2 ===

#[test]
fn rule2_session_tag_wins_over_flag() {
    let mut e = iam(&session("Launcher", "alice"));
    e.session_tags = tags(&[("SageMakerPartnerAppUser", "bob")]);
    let o = ok("tagged session on a flagged app", &presigned(LAKERA, e.clone()));
    assert_eq!(identity(&o), ("bob", Source::SessionTag));
    // Needs no flag either.
    let o = ok("tagged session on an app without the flag", &presigned(COMET, e));
    assert_eq!(identity(&o), ("bob", Source::SessionTag));
}

#[test]
fn rule2_sts_tag_key_case_insensitive() {
    let mut e = iam(&session("Launcher", "alice"));
    e.session_tags = tags(&[("sagemakerpartnerappuser", "bob")]);
    let o = ok("lower-case key", &presigned(COMET, e));
    assert_eq!(identity(&o), ("bob", Source::SessionTag));
}

#[test]
fn rule2_saml_principal_tag_exact_prefix_case_insensitive_key() {
    for key in ["SageMakerPartnerAppUser", "sagemakerpartnerappuser", "SAGEMAKERPARTNERAPPUSER"] {
        let mut e = iam(&session("Federated", "xy"));
        e.saml = vec![saml_tag(key, "bob")];
        let o = ok(key, &presigned(COMET, e));
        assert_eq!(identity(&o), ("bob", Source::SamlPrincipalTag), "{key}");
    }
    // The prefix is exact: any other spelling is not a principal tag, so the comet app (no flag)
    // cannot tell who this is.
    for attr in [
        "https://aws.amazon.com/saml/attributes/PrincipalTag:SageMakerPartnerAppUser",
        "http://aws.amazon.com/SAML/Attributes/PrincipalTag:SageMakerPartnerAppUser",
        "https://aws.amazon.com/SAML/Attributes/principaltag:SageMakerPartnerAppUser",
        "PrincipalTag:SageMakerPartnerAppUser",
        "SageMakerPartnerAppUser",
    ] {
        let mut e = iam(&session("Federated", "xy"));
        e.saml = vec![(attr.to_owned(), "bob".to_owned())];
        fail(attr, &presigned(COMET, e), ErrorKind::Precondition);
    }
}

#[test]
fn rule2_sts_and_saml_tags_that_agree_report_saml() {
    let mut e = iam(&session("Federated", "xy"));
    e.session_tags = tags(&[("SageMakerPartnerAppUser", "bob")]);
    e.saml = vec![saml_tag("sagemakerpartnerappuser", "bob")];
    let o = ok("agreeing tags", &presigned(COMET, e));
    assert_eq!(identity(&o), ("bob", Source::SamlPrincipalTag));
}

#[test]
fn rule2_empty_tag_counts_as_none() {
    // No flag: an empty tag is no tag, so no identity.
    let mut e = iam(&session("Launcher", "alice"));
    e.session_tags = tags(&[("SageMakerPartnerAppUser", "")]);
    fail("empty STS tag, no flag", &presigned(COMET, e.clone()), ErrorKind::Precondition);
    // With the flag: rule 3, the session name.
    let o = ok("empty STS tag, flag", &presigned(LAKERA, e));
    assert_eq!(identity(&o), ("alice", Source::SessionName));
    // An empty SAML tag likewise.
    let mut e = iam(&session("Federated", "carl"));
    e.saml = vec![saml_tag("SageMakerPartnerAppUser", "")];
    fail("empty SAML tag, no flag", &presigned(COMET, e.clone()), ErrorKind::Precondition);
    let o = ok("empty SAML tag, flag", &presigned(LAKERA, e));
    assert_eq!(identity(&o), ("carl", Source::SessionName));
    // An empty STS tag does not conflict with a SAML tag that has a value.
    let mut e = iam(&session("Federated", "xy"));
    e.session_tags = tags(&[("SageMakerPartnerAppUser", "")]);
    e.saml = vec![saml_tag("SageMakerPartnerAppUser", "bob")];
    let o = ok("empty STS tag and a SAML tag", &presigned(COMET, e));
    assert_eq!(identity(&o), ("bob", Source::SamlPrincipalTag));
}

#[test]
fn rule2_reads_session_tags_never_iam_tags() {
    // alice (IAM user) carries the IAM tag `SageMakerPartnerAppUser`: it is not a session tag.
    let e = fail("IAM tag only, no flag", &presigned(COMET, iam(&user_arn("alice"))), ErrorKind::Precondition);
    assert!(!e.message.contains("somebody-else"), "{}", e.message);
    let o = ok("IAM tag only, flag", &presigned(LAKERA, iam(&user_arn("alice"))));
    assert_eq!(identity(&o), ("alice", Source::IamUser));
}

#[test]
fn conflicting_tags_are_invalid_argument() {
    let mut e = iam(&session("Launcher", "alice"));
    e.session_tags = tags(&[("SageMakerPartnerAppUser", "alice"), ("sagemakerpartnerappuser", "bob")]);
    let err = invalid("STS keys differing in case", &presigned(COMET, e), "evidence.session_tags");
    assert_mentions("STS keys differing in case", &err, &["case"]);

    let mut e = iam(&session("Launcher", "alice"));
    e.session_tags = tags(&[("Team", "a"), ("TEAM", "a")]);
    invalid("any STS keys differing in case", &presigned(LAKERA, e), "evidence.session_tags");

    let mut e = iam(&session("Federated", "xy"));
    e.saml = vec![saml_tag("SageMakerPartnerAppUser", "alice"), saml_tag("SAGEMAKERPARTNERAPPUSER", "alice")];
    invalid("SAML keys differing in case", &presigned(COMET, e), "evidence.saml_attributes");

    let mut e = iam(&session("Federated", "xy"));
    e.session_tags = tags(&[("SageMakerPartnerAppUser", "alice")]);
    e.saml = vec![saml_tag("SageMakerPartnerAppUser", "bob")];
    let err = invalid("STS and SAML disagree", &presigned(COMET, e), "evidence.session_tags");
    assert_mentions("STS and SAML disagree", &err, &["alice", "bob"]);
}

#[test]
fn conflicting_sts_and_saml_tags_of_any_key_are_invalid_argument() {
    // SPEC §5.5: "an STS tag and a SAML tag with different values are INVALID_ARGUMENT". Today only
    // `SageMakerPartnerAppUser` is compared; for any other key `evidence::all_tags` keeps the STS value
    // and drops the SAML one, and that merged tag is what the authorization step and the trust
    // re-check see as `aws:PrincipalTag/*` / `aws:RequestTag/*`.
    let mut e = iam(&session("Federated", "xy"));
    e.session_tags = tags(&[("studiouserid", ALICE_ID)]);
    e.saml = vec![saml_tag("studiouserid", BOB_ID)];
    invalid("STS and SAML studiouserid disagree", &presigned(LAKERA, e), "evidence.session_tags");
    // Keys that differ only in case across the two sources, with different values, likewise.
    let mut e = iam(&session("Federated", "xy"));
    e.session_tags = tags(&[("Team", "TeamA")]);
    e.saml = vec![saml_tag("team", "TeamB")];
    invalid("STS Team and SAML team disagree", &presigned(LAKERA, e), "evidence.session_tags");
}

#[test]
fn agreeing_sts_and_saml_tags_of_any_key_are_accepted() {
    let mut e = iam(&session("Federated", "xy"));
    e.session_tags = tags(&[("Team", "TeamA")]);
    e.saml = vec![saml_tag("team", "TeamA")];
    ok("agreeing Team tags", &presigned(LAKERA, e));
}

// === §5.1 rule 3 ===

#[test]
fn rule3_iam_user_needs_the_flag() {
    let e = fail("IAM user, no flag", &presigned(COMET, iam(&user_arn("bob"))), ErrorKind::Precondition);
    assert_mentions("IAM user, no flag", &e, &["Comet"]);
    let o = ok("IAM user, flag", &presigned(LAKERA, iam(&user_arn("bob"))));
    assert_eq!(identity(&o), ("bob", Source::IamUser));
}

#[test]
fn rule3_session_name_with_the_flag() {
    let o = ok("session, flag", &presigned(FIDDLER, iam(&session("Launcher", "carl"))));
    assert_eq!(identity(&o), ("carl", Source::SessionName));
    assert_eq!(o.admin_role, Some(AdminRole::User));
    fail("session, no flag", &presigned(DEEPCHECKS, iam(&session("Launcher", "carl"))), ErrorKind::Precondition);
}

// === §5.1 rule 4 ===

#[test]
fn rule4_names_app_and_both_remedies() {
    let e = fail("no identity", &presigned(DEEPCHECKS, iam(&session("Launcher", "carl"))), ErrorKind::Precondition);
    assert_mentions(
        "no identity",
        &e,
        &[
            "Deepchecks",
            DEEPCHECKS,
            "SageMakerPartnerAppUser",
            "PrincipalTag:SageMakerPartnerAppUser",
            "EnableIamSessionBasedIdentity",
        ],
    );
    assert_eq!(e.field, None);
}

// === authorization ===

#[test]
fn authorization_denied_is_permission_denied() {
    let e = fail("carol may do nothing", &presigned(LAKERA, iam(&user_arn("carol"))), ErrorKind::NotAuthorized);
    let d = e.decision.as_ref().expect("the IAM decision");
    assert_eq!(d.decision, crate::engine::Decision::ImplicitDeny);
    assert_mentions("carol", &e, &["IMPLICIT_DENY", "sagemaker:createpartnerapppresignedurl", LAKERA]);

    let e = fail("mallory is denied comet", &presigned(COMET, iam(&user_arn("mallory"))), ErrorKind::NotAuthorized);
    let d = e.decision.as_ref().expect("the IAM decision");
    assert_eq!(d.decision, crate::engine::Decision::ExplicitDeny);
    assert!(d.determining.iter().any(|s| &*s.sid == "DenyComet"), "{:?}", d.determining);
    assert_mentions("mallory", &e, &["EXPLICIT_DENY", "DenyComet"]);

    // An allowed request carries the statements that allowed it.
    let o = ok("bob", &presigned(LAKERA, iam(&user_arn("bob"))));
    assert!(
        o.determining.iter().any(|s| &*s.policy == "user/bob/inline/Inline" && &*s.sid == "Launch"),
        "{:?}",
        o.determining
    );
}

#[test]
fn sdk_channel_authorizes_call_partner_app_api() {
    let e = iam(&session("SdkOnly", "carl"));
    let o = ok("SDK", &partner(LAKERA, Channel::Sdk, e.clone()));
    assert_eq!(identity(&o), ("carl", Source::SessionName));
    assert!(o.determining.iter().any(|s| &*s.sid == "Sdk"), "{:?}", o.determining);
    let err = fail("presigned", &presigned(LAKERA, e), ErrorKind::NotAuthorized);
    assert_mentions("presigned", &err, &["sagemaker:createpartnerapppresignedurl"]);
    // SDK calls, even from a Studio notebook, use rules 2–4: Identity Center evidence is ignored.
    let mut e = iam(&session("SdkOnly", "carl"));
    e.ic = ic(ALICE_ID, "alice");
    let o = ok("SDK with IC evidence", &partner(LAKERA, Channel::Sdk, e));
    assert_eq!(identity(&o), ("carl", Source::SessionName));
    // SDK needs the caller's IAM principal.
    invalid("SDK without a principal", &partner(LAKERA, Channel::Sdk, ic_alice()), "evidence.principal_arn");
}

// === impersonation ===

#[test]
fn impersonation_session_name_of_another_user() {
    let mut e = iam(&session("Launcher", "bob"));
    e.assumed_by = Some(user_arn("alice"));
    let err = fail("alice names her session bob", &presigned(LAKERA, e), ErrorKind::NotAuthorized);
    assert_mentions("alice names her session bob", &err, &["impersonation", "Launcher", "bob"]);

    let mut e = iam(&session("Launcher", "alice"));
    e.assumed_by = Some(user_arn("alice"));
    let o = ok("alice names her session alice", &presigned(LAKERA, e));
    assert_eq!(identity(&o), ("alice", Source::SessionName));
    assert!(o.trust_verified);
    assert!(o.determining.iter().any(|s| &*s.policy == "role/Launcher/trust"), "{:?}", o.determining);
}

#[test]
fn impersonation_tag_of_another_user() {
    let mut e = iam(&session("TagLauncher", "whatever"));
    e.session_tags = tags(&[("SageMakerPartnerAppUser", "bob")]);
    e.assumed_by = Some(user_arn("alice"));
    let err = fail("alice tags her session bob", &presigned(COMET, e), ErrorKind::NotAuthorized);
    assert_mentions("alice tags her session bob", &err, &["impersonation", "TagLauncher"]);

    let mut e = iam(&session("TagLauncher", "whatever"));
    e.saml = vec![saml_tag("SageMakerPartnerAppUser", "bob")];
    e.assumed_by = Some(user_arn("alice"));
    fail("alice's SAML tag names bob", &presigned(COMET, e), ErrorKind::NotAuthorized);

    let mut e = iam(&session("TagLauncher", "whatever"));
    e.session_tags = tags(&[("SageMakerPartnerAppUser", "alice")]);
    e.assumed_by = Some(user_arn("alice"));
    let o = ok("alice tags her session alice", &presigned(COMET, e));
    assert_eq!(identity(&o), ("alice", Source::SessionTag));
    assert!(o.trust_verified);
}

#[test]
fn trust_verified_only_with_assumed_by() {
    let e = iam(&session("Launcher", "alice"));
    let o = ok("no assumed_by", &presigned(LAKERA, e.clone()));
    assert!(!o.trust_verified, "no re-check without assumed_by");
    let mut with = e;
    with.assumed_by = Some(user_arn("alice"));
    assert!(ok("assumed_by", &presigned(LAKERA, with)).trust_verified);
    // IAM users and Identity Center users are never `trust_verified`.
    assert!(!ok("IAM user", &presigned(LAKERA, iam(&user_arn("bob")))).trust_verified);
    assert!(!ok("IC user", &studio(COMET, SSO_TIP, None, ic_alice())).trust_verified);
    // assumed_by applies only to a session.
    let mut e = iam(&user_arn("bob"));
    e.assumed_by = Some(user_arn("alice"));
    invalid("assumed_by with an IAM user", &presigned(LAKERA, e), "evidence.assumed_by");
    let mut e = iam(&session("Launcher", "alice"));
    e.assumed_by = Some("alice".into());
    invalid("assumed_by not an ARN", &presigned(LAKERA, e), "evidence.assumed_by");
}

#[test]
fn account_only_trust_needs_identity_policy() {
    // OpenTrust's trust policy names only the account: the assuming user's identity policies must
    // allow sts:AssumeRole too. dave's do not, bob's do.
    let mut e = iam(&session("OpenTrust", "dave"));
    e.assumed_by = Some(user_arn("dave"));
    let err = fail("dave without sts:AssumeRole", &presigned(LAKERA, e), ErrorKind::NotAuthorized);
    assert_mentions("dave", &err, &["impersonation", "OpenTrust"]);
    let mut e = iam(&session("OpenTrust", "bob"));
    e.assumed_by = Some(user_arn("bob"));
    assert!(ok("bob with sts:AssumeRole", &presigned(LAKERA, e)).trust_verified);
    // With tags, sts:TagSession is checked as well (delegated the same way).
    let mut e = iam(&session("OpenTrust", "bob"));
    e.session_tags = tags(&[("SageMakerPartnerAppUser", "bob")]);
    e.assumed_by = Some(user_arn("bob"));
    let o = ok("bob tags the session", &presigned(COMET, e));
    assert!(o.trust_verified);
    // A trust policy that names the user itself needs no identity policy.
    let mut e = iam(&session("DirectTrust", "dave"));
    e.assumed_by = Some(user_arn("dave"));
    assert!(ok("dave named by the trust policy", &presigned(LAKERA, e)).trust_verified);
    // ... but names nobody else.
    let mut e = iam(&session("DirectTrust", "bob"));
    e.assumed_by = Some(user_arn("bob"));
    fail("bob not named", &presigned(LAKERA, e), ErrorKind::NotAuthorized);
}

#[test]
fn impersonation_tag_session_needs_trust_for_tag_session() {
    // DirectTrust allows dave sts:AssumeRole but not sts:TagSession: a tagged session is impersonation.
    let mut e = iam(&session("DirectTrust", "dave"));
    e.session_tags = tags(&[("SageMakerPartnerAppUser", "dave")]);
    e.assumed_by = Some(user_arn("dave"));
    let err = fail("tagged DirectTrust session", &presigned(LAKERA, e), ErrorKind::NotAuthorized);
    assert_mentions("tagged DirectTrust session", &err, &["impersonation", "tag"]);
}

// === §5.2 root admins ===

#[test]
fn root_admin_admin_user() {
    // comet's admins were [alice, carol]; now [alice]: carol is remembered as ADMIN.
    let before = bundle_with(vec![app("comet", COMET, "Comet", "comet", &["alice", "carol"], false)]);
    let after = test_bundle();
    let memory = fresh_memory(&before).transition(&after).expect("comet may change");
    let as_user = |name: &str| {
        let mut e = iam(&session("Launcher", "xy"));
        e.session_tags = tags(&[("SageMakerPartnerAppUser", name)]);
        run_on(&after, &memory, &presigned(COMET, e)).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    assert_eq!(as_user("alice").admin_role, Some(AdminRole::RootAdmin));
    assert_eq!(as_user("carol").admin_role, Some(AdminRole::Admin));
    assert_eq!(as_user("bob").admin_role, Some(AdminRole::User));
    // Names match exactly.
    assert_eq!(as_user("Alice").admin_role, Some(AdminRole::User));
    assert_eq!(as_user("Carol").admin_role, Some(AdminRole::User));
    // Remembered admins are per app.
    let mut e = iam(&session("Launcher", "xy"));
    e.session_tags = tags(&[("SageMakerPartnerAppUser", "carol")]);
    let o = run_on(&after, &memory, &presigned(LAKERA, e)).expect("lakera");
    assert_eq!(o.admin_role, Some(AdminRole::User));
    // fiddler's root admin.
    let o = ok("bob on fiddler", &presigned(FIDDLER, iam(&user_arn("bob"))));
    assert_eq!(o.admin_role, Some(AdminRole::RootAdmin));
}

// === §5.5 order of checks ===

#[test]
fn order_of_checks() {
    // Malformed and unknown → INVALID_ARGUMENT.
    invalid(
        "malformed app ARN",
        &presigned("arn:aws:sagemaker:us-east-1:111122223333:partner-app/app-lower", iam(&user_arn("carol"))),
        "partner_app.arn",
    );
    invalid("empty app ARN", &presigned("", iam(&user_arn("carol"))), "partner_app.arn");
    invalid(
        "unknown app, malformed principal",
        &presigned(UNKNOWN_APP, iam("arn:aws:iam::111122223333:role/X")),
        "evidence.principal_arn",
    );
    let mut r = presigned(UNKNOWN_APP, iam(&user_arn("carol")));
    r.channel = None;
    invalid("unknown app, no channel", &r, "channel");
    invalid("unknown app, no principal", &presigned(UNKNOWN_APP, Evidence::default()), "evidence.principal_arn");
    invalid("unknown domain, malformed domain id", &studio(COMET, "d-BAD", None, ic_alice()), "partner_app.domain_id");
    invalid("STUDIO without a domain", &partner(UNKNOWN_APP, Channel::Studio, ic_alice()), "partner_app.domain_id");
    // Unknown and unauthorized → NOT_FOUND.
    let e = fail("unknown app, carol", &presigned(UNKNOWN_APP, iam(&user_arn("carol"))), ErrorKind::UnknownTarget);
    assert_mentions("unknown app", &e, &[UNKNOWN_APP]);
    let e = fail(
        "unknown domain, bad IC evidence",
        &studio(COMET, UNKNOWN_DOMAIN, None, Evidence { ic: ic(ERIN_ID, "erin"), ..Evidence::default() }),
        ErrorKind::UnknownTarget,
    );
    assert_mentions("unknown domain", &e, &[UNKNOWN_DOMAIN]);
    let e = fail(
        "unknown team, carol",
        &studio(COMET, IAM_TEAMS, Some("TeamZ"), iam(&session("Launcher", "carol"))),
        ErrorKind::UnknownTarget,
    );
    assert_mentions("unknown team", &e, &["TeamZ"]);
    // Unauthorized and no identity → PERMISSION_DENIED.
    fail("carol on comet", &presigned(COMET, iam(&user_arn("carol"))), ErrorKind::NotAuthorized);
    // Impersonation and no identity → PERMISSION_DENIED.
    let mut e = iam(&session("Launcher", "bob"));
    e.assumed_by = Some(user_arn("alice"));
    fail("impersonation on deepchecks", &presigned(DEEPCHECKS, e), ErrorKind::NotAuthorized);
    // Authorized, no identity → FAILED_PRECONDITION.
    fail("no identity", &presigned(DEEPCHECKS, iam(&user_arn("bob"))), ErrorKind::Precondition);
    // Jobs: malformed runtime before an unknown domain; unknown domain before IAM-only evidence.
    invalid("bad runtime, unknown domain", &job_req(UNKNOWN_DOMAIN, 0, None, ic_alice()), "job.max_runtime_in_seconds");
    fail(
        "unknown domain, IAM evidence",
        &job_req(UNKNOWN_DOMAIN, 60, None, iam(&user_arn("bob"))),
        ErrorKind::UnknownTarget,
    );
    // Profiles: unknown domain before anything about the evidence.
    fail(
        "unknown domain, no evidence",
        &profile_req(UNKNOWN_DOMAIN, None, Evidence::default()),
        ErrorKind::UnknownTarget,
    );
}

// === §5.5 Identity Center evidence ===

#[test]
fn identity_center_evidence_must_check_out() {
    let wrong_store = Evidence {
        ic: Some(IcEvidence {
            user_id: ALICE_ID.into(),
            user_name: "alice".into(),
            identity_store_arn: "arn:aws:identitystore::111122223333:identitystore/d-0000000000".into(),
        }),
        ..Evidence::default()
    };
    let unknown_id = Evidence { ic: ic("44444444-0000-4000-8000-000000000000", "alice"), ..Evidence::default() };
    let wrong_name = Evidence { ic: ic(ALICE_ID, "bob"), ..Evidence::default() };
    let not_assigned = Evidence { ic: ic(ERIN_ID, "erin"), ..Evidence::default() };
    let rows: [(&str, Evidence, &[&str]); 4] = [
        ("identity store", wrong_store, &["identity store", "d-0000000000"]),
        ("user id", unknown_id, &["44444444-0000-4000-8000-000000000000"]),
        ("user name", wrong_name, &[ALICE_ID, "bob"]),
        ("assignment", not_assigned, &["erin", SSO_TIP]),
    ];
    for (what, e, needles) in rows {
        for (target, req) in [
            ("partner app", studio(COMET, SSO_TIP, None, e.clone())),
            ("profile", profile_req(SSO_TIP, None, e.clone())),
            ("job", job_req(SSO_TIP, 3600, None, e.clone())),
        ] {
            let what = format!("{what} ({target})");
            let err = fail(&what, &req, ErrorKind::NotAuthorized);
            assert_mentions(&what, &err, needles);
        }
    }
    // Assignment through a group counts.
    let bob = Evidence { ic: ic(BOB_ID, "bob"), ..Evidence::default() };
    assert_eq!(
        identity(&ok("bob through DataGroup", &studio(COMET, SSO_TIP, None, bob))),
        ("bob", Source::IdentityCenter)
    );
    // Empty fields are malformed.
    let empty = Evidence { ic: ic("", "alice"), ..Evidence::default() };
    invalid("empty user id", &studio(COMET, SSO_TIP, None, empty), "evidence.identity_center_user.user_id");
}

#[test]
fn evidence_per_channel() {
    // STUDIO on an Identity Center domain needs Identity Center evidence.
    invalid(
        "STUDIO/SSO with IAM evidence",
        &studio(COMET, SSO_TIP, None, iam(&user_arn("bob"))),
        "evidence.identity_center_user",
    );
    // Identity Center evidence against an IAM-mode domain.
    fail("STUDIO/IAM with IC evidence", &studio(LAKERA, IAM_TEAMS, Some("TeamA"), ic_alice()), ErrorKind::Precondition);
    // STUDIO on an IAM-mode domain needs the IAM principal.
    invalid(
        "STUDIO/IAM without evidence",
        &studio(LAKERA, IAM_TEAMS, Some("TeamA"), Evidence::default()),
        "evidence.principal_arn",
    );
    // PRESIGNED_URL_API needs the IAM principal.
    invalid("presigned with IC evidence only", &presigned(LAKERA, ic_alice()), "evidence.principal_arn");
}

#[test]
fn studio_channel_on_iam_domain_authorizes_the_team_role() {
    // The team role may open only lakera, whatever the caller's own session may do.
    let mut e = iam(&session("Federated", "alice"));
    e.saml.push(("ssouserid".into(), ALICE_ID.into()));
    let o = ok("team role, lakera", &studio(LAKERA, IAM_TEAMS, Some("TeamA"), e.clone()));
    assert_eq!(identity(&o), ("alice", Source::SessionName));
    assert!(o.determining.iter().any(|s| &*s.policy == "role/TeamARole/inline/Inline"), "{:?}", o.determining);
    let err = fail("team role, comet", &studio(COMET, IAM_TEAMS, Some("TeamA"), e), ErrorKind::NotAuthorized);
    assert_mentions("team role, comet", &err, &["TeamARole"]);
}

#[test]
fn studio_channel_on_iam_domain_refuses_a_user_outside_the_team() {
    // erin is in the identity store but not in TeamA (neither listed nor through DataGroup); the
    // same evidence asking for her TeamA profile is PERMISSION_DENIED (see
    // `team_profile_user_outside_team_is_permission_denied`), yet opening a partner app from Studio
    // "as TeamA" borrows TeamARole's permissions.
    let e = team_evidence(ERIN_ID, ERIN_ID, None);
    let err =
        fail("erin opens lakera as TeamA", &studio(LAKERA, IAM_TEAMS, Some("TeamA"), e), ErrorKind::NotAuthorized);
    assert_mentions("erin opens lakera as TeamA", &err, &["erin", "TeamA"]);
}

// === §5.4 profiles ===

#[test]
fn sso_profile_one_per_user() {
    let o = ok("alice's profile", &profile_req(SSO_TIP, None, ic_alice()));
    let p = o.profile.expect("a profile");
    assert_eq!(p.name, "alice");
    assert_eq!(p.execution_role_arn, role_arn("ProfileRole"));
    assert_eq!(p.arn, format!("arn:aws:sagemaker:us-east-1:{ACCOUNT}:user-profile/{SSO_TIP}/alice"));
    // bob has no profile listed: his is named after him, with the domain default role.
    let o = ok("bob's profile", &profile_req(SSO_TIP, None, Evidence { ic: ic(BOB_ID, "bob"), ..Evidence::default() }));
    let p = o.profile.expect("a profile");
    assert_eq!(p.name, "bob");
    assert_eq!(p.execution_role_arn, role_arn("StudioExec"));
    // SPEC §5.6: an IAM-only request for a profile on an Identity Center domain is FAILED_PRECONDITION
    // (presigned domain URLs are for IAM-mode domains); no evidence at all stays malformed.
    let e = fail(
        "IAM evidence on an SSO domain",
        &profile_req(SSO_TIP, None, iam(&user_arn("bob"))),
        ErrorKind::Precondition,
    );
    assert_eq!(e.check, Some(Check::AuthMode));
    assert_mentions("IAM evidence on an SSO domain", &e, &[SSO_TIP, "IAM-mode"]);
    invalid(
        "no evidence on an SSO domain",
        &profile_req(SSO_TIP, None, Evidence::default()),
        "evidence.identity_center_user",
    );
    // The same for a Studio launch that names a profile of the Identity Center domain with IAM-only
    // evidence; without a profile it stays the malformed STUDIO request of §5.5.
    let e = fail(
        "IAM-only launch naming a profile",
        &studio_profile(COMET, SSO_TIP, Some("alice"), None, iam(&user_arn("alice"))),
        ErrorKind::Precondition,
    );
    assert_eq!(e.check, Some(Check::AuthMode));
    invalid(
        "IAM-only launch without a profile",
        &studio(COMET, SSO_TIP, None, iam(&user_arn("alice"))),
        "evidence.identity_center_user",
    );
}

fn team_evidence(ssouserid: &str, principal_tag: &str, teamid: Option<&str>) -> Evidence {
    let mut e = iam(&session("Federated", "xy"));
    e.saml = vec![("ssouserid".into(), ssouserid.into()), saml_tag("studiouserid", principal_tag)];
    if let Some(t) = teamid {
        e.saml.push(("teamid".into(), t.into()));
    }
    e
}

#[test]
fn team_profile_named_user_team() {
    let o = ok("alice in TeamA", &profile_req(IAM_TEAMS, Some("TeamA"), team_evidence(ALICE_ID, ALICE_ID, None)));
    let p = o.profile.expect("a profile");
    assert_eq!(p.name, "alice-TeamA");
    assert_eq!(p.arn, format!("arn:aws:sagemaker:us-east-1:{ACCOUNT}:user-profile/{IAM_TEAMS}/alice-TeamA"));
    assert_eq!(p.execution_role_arn, role_arn("TeamARole"));
    let mut t = p.tags.clone();
    t.sort();
    assert_eq!(t, tags(&[("Team", "TeamA"), ("studiouserid", ALICE_ID)]));
    assert!(o.determining.iter().any(|s| &*s.sid == "OwnProfileOnly"), "{:?}", o.determining);
}

#[test]
fn team_profile_team_from_saml_attribute() {
    let o = ok("teamid attribute", &profile_req(IAM_TEAMS, None, team_evidence(ALICE_ID, ALICE_ID, Some("TeamA"))));
    assert_eq!(o.profile.expect("a profile").name, "alice-TeamA");
    invalid(
        "team and attribute differ",
        &profile_req(IAM_TEAMS, Some("TeamA"), team_evidence(ALICE_ID, ALICE_ID, Some("TeamB"))),
        "studio_profile.team_id",
    );
}

#[test]
fn team_profile_group_membership() {
    let o = ok("bob through DataGroup", &profile_req(IAM_TEAMS, Some("TeamA"), team_evidence(BOB_ID, BOB_ID, None)));
    assert_eq!(o.profile.expect("a profile").name, "bob-TeamA");
}

#[test]
fn team_profile_user_outside_team_is_permission_denied() {
    let e = fail(
        "erin",
        &profile_req(IAM_TEAMS, Some("TeamA"), team_evidence(ERIN_ID, ERIN_ID, None)),
        ErrorKind::NotAuthorized,
    );
    assert_mentions("erin", &e, &["erin", "TeamA"]);
}

#[test]
fn team_profile_unknown_ssouserid_is_permission_denied() {
    let e = fail(
        "unknown ssouserid",
        &profile_req(IAM_TEAMS, Some("TeamA"), team_evidence("nobody", "nobody", None)),
        ErrorKind::NotAuthorized,
    );
    assert_mentions("unknown ssouserid", &e, &["nobody"]);
}

#[test]
fn team_profile_needs_presigned_domain_url_on_its_tags() {
    // The caller's principal tag names someone else: the profile's tags do not match.
    let e = fail(
        "wrong studiouserid tag",
        &profile_req(IAM_TEAMS, Some("TeamA"), team_evidence(ALICE_ID, BOB_ID, None)),
        ErrorKind::NotAuthorized,
    );
    assert_mentions("wrong studiouserid tag", &e, &["sagemaker:createpresigneddomainurl"]);
}

#[test]
fn team_profile_unknown_team_is_not_found() {
    fail(
        "TeamZ",
        &profile_req(IAM_TEAMS, Some("TeamZ"), team_evidence(ALICE_ID, ALICE_ID, None)),
        ErrorKind::UnknownTarget,
    );
    // Team ids match exactly.
    fail(
        "teama",
        &profile_req(IAM_TEAMS, Some("teama"), team_evidence(ALICE_ID, ALICE_ID, None)),
        ErrorKind::UnknownTarget,
    );
}

#[test]
fn team_profile_no_team_is_invalid_argument() {
    invalid(
        "no team",
        &profile_req(IAM_TEAMS, None, team_evidence(ALICE_ID, ALICE_ID, None)),
        "studio_profile.team_id",
    );
}

#[test]
fn team_profile_domain_ids() {
    invalid(
        "bad domain id",
        &profile_req("d-ABCDEFGHIJKL", Some("TeamA"), team_evidence(ALICE_ID, ALICE_ID, None)),
        "studio_profile.domain_id",
    );
    invalid(
        "empty domain id",
        &profile_req("", Some("TeamA"), team_evidence(ALICE_ID, ALICE_ID, None)),
        "studio_profile.domain_id",
    );
    fail(
        "unknown domain",
        &profile_req(UNKNOWN_DOMAIN, Some("TeamA"), team_evidence(ALICE_ID, ALICE_ID, None)),
        ErrorKind::UnknownTarget,
    );
}

#[test]
fn team_profile_identity_center_evidence_is_failed_precondition() {
    fail("IC evidence on the IAM domain", &profile_req(IAM_TEAMS, Some("TeamA"), ic_alice()), ErrorKind::Precondition);
}

// === §5.3 jobs ===

const WEEK_MS: i64 = 7 * 24 * 3600 * 1000;

#[test]
fn job_user_identity() {
    let o = ok("alice's job", &job_req(SSO_TIP, 3600, None, ic_alice()));
    let j = o.job.expect("a job identity");
    assert_eq!(j.execution_role_arn, role_arn("ProfileRole"), "the profile's own role");
    assert_eq!(j.role_name, "ProfileRole");
    assert_eq!(j.account, ACCOUNT);
    assert_eq!(j.user_id, ALICE_ID);
    assert_eq!(j.identity_store_arn, STORE);
    assert_eq!(j.effective_max_runtime_seconds, 3600);
    assert_eq!(j.background_session_expires_ms, NOW + WEEK_MS);
    assert!(!j.role_id.is_empty());
    // Trust (AssumeRole, SetContext with the Identity Center context) and grants determined it.
    assert!(
        o.determining.iter().any(|s| &*s.policy == "role/ProfileRole/trust" && &*s.sid == "SetContext"),
        "{:?}",
        o.determining
    );
    assert!(o.determining.iter().any(|s| &*s.sid == "Grants"), "{:?}", o.determining);
    // bob (no profile) runs with the domain default.
    let o = ok("bob's job", &job_req(SSO_TIP, 3600, None, Evidence { ic: ic(BOB_ID, "bob"), ..Evidence::default() }));
    assert_eq!(o.job.expect("a job identity").execution_role_arn, role_arn("StudioExec"));
}

#[test]
fn job_tip_disabled_is_failed_precondition() {
    let e = fail("TIP off", &job_req(SSO_NOTIP, 3600, None, ic_alice()), ErrorKind::Precondition);
    assert_mentions("TIP off", &e, &[SSO_NOTIP]);
}

#[test]
fn job_iam_domain_is_failed_precondition() {
    let e = fail("IAM domain", &job_req(IAM_TEAMS, 3600, None, ic_alice()), ErrorKind::Precondition);
    assert_mentions("IAM domain", &e, &[IAM_TEAMS]);
}

#[test]
fn job_iam_only_evidence_is_failed_precondition() {
    fail("IAM-only evidence", &job_req(SSO_TIP, 3600, None, iam(&user_arn("alice"))), ErrorKind::Precondition);
    fail("no evidence", &job_req(SSO_TIP, 3600, None, Evidence::default()), ErrorKind::Precondition);
}

#[test]
fn job_trust_without_set_context_is_failed_precondition() {
    let e = fail(
        "no SetContext",
        &job_req(SSO_NOSETCTX, 3600, None, Evidence { ic: ic(BOB_ID, "bob"), ..Evidence::default() }),
        ErrorKind::Precondition,
    );
    assert_mentions("no SetContext", &e, &["NoSetContext", "setcontext"]);
    // Also for a profile that overrides nothing (alice has a profile without a role here).
    fail("alice, no SetContext", &job_req(SSO_NOSETCTX, 3600, None, ic_alice()), ErrorKind::Precondition);
}

#[test]
fn job_trust_is_evaluated_with_the_identity_center_context() {
    // A trust policy whose SetContext needs another context provider does not allow it.
    let other = doc(json!([
        sagemaker_trust(json!("sts:AssumeRole")),
        {"Sid": "SetContext", "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"},
         "Action": "sts:SetContext",
         "Condition": {"ForAnyValue:ArnEquals": {"sts:RequestContextProviders": "arn:aws:iam::aws:contextProvider/Other"}}}
    ]));
    let b = bundle_with(vec![role("ProfileRole", other, json!([grants()]))]);
    let e = run_on(&b, &fresh_memory(&b), &job_req(SSO_TIP, 3600, None, ic_alice())).expect_err("refused");
    assert_eq!(e.kind, ErrorKind::Precondition, "{e}");
    // The failed condition is named, with the request's context provider.
    assert_eq!(e.check, Some(Check::TrustSetContext), "{e}");
    assert_mentions("other provider", &e, &["sts:RequestContextProviders", "contextProvider/Other", IC_PROVIDER]);
    // ... and one that checks the user id and store in the context allows it.
    let exact = doc(json!([
        sagemaker_trust(json!("sts:AssumeRole")),
        {"Sid": "SetContext", "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"},
         "Action": "sts:SetContext",
         "Condition": {"StringEquals": {"sts:RequestContext/identitystore:UserId": ALICE_ID,
                                        "sts:RequestContext/identitystore:IdentityStoreArn": STORE}}}
    ]));
    let b = bundle_with(vec![role("ProfileRole", exact, json!([grants()]))]);
    run_on(&b, &fresh_memory(&b), &job_req(SSO_TIP, 3600, None, ic_alice())).expect("allowed");
}

#[test]
fn job_s3_access_grants_missing_permission_is_failed_precondition() {
    let e = fail("no grants", &job_req(SSO_NOGRANTS, 3600, None, ic_alice()), ErrorKind::Precondition);
    assert_mentions("no grants", &e, &["NoGrants", "s3:GetDataAccess", "access-grants/default"]);
    // The same role on a domain without S3 Access Grants is fine: grants are checked only when enabled.
    let b = bundle_with(vec![sso_domain(SSO_NOGRANTS, true, false, "NoGrants", json!([]))]);
    let o = run_on(
        &b,
        &fresh_memory(&b),
        &job_req(SSO_NOGRANTS, 3600, None, Evidence { ic: ic(BOB_ID, "bob"), ..Evidence::default() }),
    )
    .expect("no grants needed");
    assert_eq!(o.job.expect("a job").execution_role_arn, role_arn("NoGrants"));
}

#[test]
fn job_expired_background_session() {
    let e = fail("expired", &job_req(SSO_TIP, 3600, Some(NOW - WEEK_MS - 1), ic_alice()), ErrorKind::Precondition);
    assert_mentions("expired", &e, &["user background session expired"]);
    fail("expires now", &job_req(SSO_TIP, 3600, Some(NOW - WEEK_MS), ic_alice()), ErrorKind::Precondition);
    // Disabled on the instance.
    let b = bundle_with(vec![identity_center(json!({"Enabled": false}))]);
    let e = run_on(&b, &fresh_memory(&b), &job_req(SSO_TIP, 3600, None, ic_alice())).expect_err("disabled");
    assert_eq!(e.kind, ErrorKind::Precondition, "{e}");
    assert!(e.message.contains("disabled"), "{e}");
}

#[test]
fn job_effective_runtime_min() {
    // One hour left in the session: the job runs at most one hour.
    let o = ok("an hour left", &job_req(SSO_TIP, 86_400, Some(NOW - WEEK_MS + 3_600_000), ic_alice()));
    let j = o.job.expect("a job");
    assert_eq!(j.effective_max_runtime_seconds, 3600);
    assert_eq!(j.background_session_expires_ms, NOW + 3_600_000);
    // A short job is not lengthened.
    let o = ok("a minute", &job_req(SSO_TIP, 60, Some(NOW - WEEK_MS + 3_600_000), ic_alice()));
    assert_eq!(o.job.expect("a job").effective_max_runtime_seconds, 60);
    // The longest job is capped by a fresh 7-day session.
    let o = ok("28 days", &job_req(SSO_TIP, 2_419_200, None, ic_alice()));
    assert_eq!(o.job.expect("a job").effective_max_runtime_seconds, 604_800);
    // A configured duration (15 minutes).
    let b = bundle_with(vec![identity_center(json!({"Enabled": true, "DurationMinutes": 15}))]);
    let o = run_on(&b, &fresh_memory(&b), &job_req(SSO_TIP, 86_400, None, ic_alice())).expect("15 minutes");
    assert_eq!(o.job.expect("a job").effective_max_runtime_seconds, 900);
}

#[test]
fn job_defaults() {
    // No UserBackgroundSessions: enabled, 7 days.
    let b = bundle_with(vec![identity_center(Value::Null)]);
    let o = run_on(&b, &fresh_memory(&b), &job_req(SSO_TIP, 2_419_200, None, ic_alice())).expect("defaults");
    let j = o.job.expect("a job");
    assert_eq!(j.background_session_expires_ms, NOW + WEEK_MS);
    assert_eq!(j.effective_max_runtime_seconds, 604_800);
    // MaxRuntimeInSeconds 86,400 (the wire default, see tests/it/core_wire.rs) and no start: now.
    let req = job_req(SSO_TIP, 86_400, None, ic_alice());
    let j = ok("wire defaults", &req).job.expect("a job");
    assert_eq!(j.effective_max_runtime_seconds, 86_400);
    assert_eq!(j.background_session_expires_ms, NOW + WEEK_MS);
}

#[test]
fn job_out_of_range_max_runtime() {
    for max in [0, 2_419_201, u32::MAX] {
        invalid(&format!("max {max}"), &job_req(SSO_TIP, max, None, ic_alice()), "job.max_runtime_in_seconds");
    }
    for max in [1, 2_419_200] {
        ok(&format!("max {max}"), &job_req(SSO_TIP, max, None, ic_alice()));
    }
}

#[test]
fn job_domain_ids() {
    invalid("bad domain id", &job_req("studio", 60, None, ic_alice()), "job.domain_id");
    fail("unknown domain", &job_req(UNKNOWN_DOMAIN, 60, None, ic_alice()), ErrorKind::UnknownTarget);
}

#[test]
fn job_and_profile_ignore_the_channel() {
    for channel in [None, Some(Channel::Studio), Some(Channel::PresignedUrlApi), Some(Channel::Sdk)] {
        let mut r = job_req(SSO_TIP, 60, None, ic_alice());
        r.channel = channel;
        ok(&format!("job {channel:?}"), &r);
        let mut r = profile_req(SSO_TIP, None, ic_alice());
        r.channel = channel;
        ok(&format!("profile {channel:?}"), &r);
    }
}

// === §5.2 / §5.5 admin memory ===

fn with_admins(arn: &str, admins: &[&str]) -> Bundle {
    let replacement = match arn {
        COMET => app("comet", COMET, "Comet", "comet", admins, false),
        FIDDLER => app("fiddler", FIDDLER, "Fiddler", "fiddler", admins, true),
        DEEPCHECKS => app("deepchecks", DEEPCHECKS, "Deepchecks", "deepchecks-llm-evaluation", admins, false),
        LAKERA => app("lakera", LAKERA, "Lakera", "lakera-guard", admins, true),
        _ => unreachable!("{arn}"),
    };
    bundle_with(vec![replacement])
}

fn remembered(m: &AdminMemory, arn: &str) -> Vec<String> {
    m.apps.get(arn).map(|a| a.remembered.iter().cloned().collect()).unwrap_or_default()
}

#[test]
fn admins_first_activation_records_every_app() {
    let m = fresh_memory(&test_bundle());
    assert_eq!(m.version, admins::VERSION);
    assert_eq!(m.apps.len(), 4);
    assert_eq!(m.apps[COMET].admin_users, vec!["alice".to_owned()]);
    assert_eq!(m.apps[COMET].app_type, "comet");
    assert!(m.apps.values().all(|a| a.remembered.is_empty()));
    // A same list in another order is no change.
    let b = with_admins(COMET, &["carol", "alice"]);
    let m = fresh_memory(&b);
    let m2 = m.transition(&with_admins(COMET, &["alice", "carol"])).expect("same list");
    assert_eq!(m, m2);
}

#[test]
fn admins_comet_removal_is_remembered_admin() {
    let m = fresh_memory(&with_admins(COMET, &["alice", "carol", "dave"]));
    let m = m.transition(&with_admins(COMET, &["alice"])).expect("comet may change");
    assert_eq!(remembered(&m, COMET), vec!["carol".to_owned(), "dave".to_owned()]);
    assert!(m.is_remembered(COMET, "carol"));
    assert!(!m.is_remembered(COMET, "alice"));
    assert_eq!(m.apps[COMET].admin_users, vec!["alice".to_owned()]);
    // A further change keeps them remembered and adds the newly removed.
    let m = m.transition(&with_admins(COMET, &["bob"])).expect("comet may change");
    assert_eq!(remembered(&m, COMET), vec!["alice".to_owned(), "carol".to_owned(), "dave".to_owned()]);
    // Unrelated reloads keep them.
    let m = m.transition(&with_admins(COMET, &["bob"])).expect("unchanged");
    assert_eq!(remembered(&m, COMET).len(), 3);
}

#[test]
fn admins_readding_clears_remembered() {
    let m = fresh_memory(&with_admins(COMET, &["alice", "carol"]));
    let m = m.transition(&with_admins(COMET, &["alice"])).expect("comet may change");
    assert!(m.is_remembered(COMET, "carol"));
    let m = m.transition(&with_admins(COMET, &["alice", "carol"])).expect("comet may change");
    assert!(!m.is_remembered(COMET, "carol"), "carol is a root admin again, not remembered");
    assert!(remembered(&m, COMET).is_empty());
}

#[test]
fn admins_change_refused_for_every_type_but_comet() {
    for (arn, name, app_type, before, after) in [
        (FIDDLER, "Fiddler", "fiddler", &["bob"][..], &["bob", "carol"][..]),
        (FIDDLER, "Fiddler", "fiddler", &["bob", "carol"][..], &["bob"][..]),
        (DEEPCHECKS, "Deepchecks", "deepchecks-llm-evaluation", &[][..], &["carol"][..]),
        (LAKERA, "Lakera", "lakera-guard", &["carol"][..], &[][..]),
    ] {
        let m = fresh_memory(&with_admins(arn, before));
        let refused = m.transition(&with_admins(arn, after)).expect_err(app_type);
        assert_eq!(refused.len(), 1, "{app_type}: {refused:?}");
        assert!(refused[0].contains(name) && refused[0].contains(arn), "{app_type}: {}", refused[0]);
        assert!(refused[0].contains(app_type), "{app_type}: {}", refused[0]);
    }
    // Two refused apps: one message each.
    let m = fresh_memory(&test_bundle());
    let b = bundle_with(vec![
        app("fiddler", FIDDLER, "Fiddler", "fiddler", &["carol"], true),
        app("lakera", LAKERA, "Lakera", "lakera-guard", &["carol"], true),
        app("comet", COMET, "Comet", "comet", &["carol"], false),
    ]);
    let refused = m.transition(&b).expect_err("two refused");
    assert_eq!(refused.len(), 2, "{refused:?}");
}

#[test]
fn admins_refusal_names_file_field_both_lists_and_the_remedy() {
    let m = fresh_memory(&with_admins(FIDDLER, &["bob"]));
    let refused = m.transition(&with_admins(FIDDLER, &["carol", "bob"])).expect_err("fiddler may not change");
    assert_eq!(
        refused,
        [format!(
            "sagemaker/partner-apps/fiddler.json: ApplicationConfig.AdminUsers: partner app `Fiddler` ({FIDDLER}, type \
             fiddler) cannot change its admin users (only comet apps support updating root admins): was [bob], now \
             [bob, carol]; restore the list, or remove the app from the bundle and add it again (its remembered admins \
             are then forgotten)"
        )]
    );
}

#[test]
fn admins_app_removed_is_forgotten() {
    let m = fresh_memory(&with_admins(COMET, &["alice", "carol"]));
    let m = m.transition(&with_admins(COMET, &["alice"])).expect("comet may change");
    assert!(m.is_remembered(COMET, "carol"));
    let mut f = files();
    f.retain(|(p, _)| !p.ends_with("partner-apps/comet.json") && !p.ends_with("partner-apps/fiddler.json"));
    let without = build(f);
    let m = m.transition(&without).expect("removal is no refused change");
    assert!(!m.apps.contains_key(COMET));
    assert!(!m.is_remembered(COMET, "carol"));
    // Fiddler removed then re-added with other admins is a first sight, not a change.
    assert!(!m.apps.contains_key(FIDDLER));
    let m = m.transition(&with_admins(FIDDLER, &["carol"])).expect("a new app");
    assert_eq!(m.apps[FIDDLER].admin_users, vec!["carol".to_owned()]);
    // And comet comes back with nobody remembered.
    assert!(remembered(&m, COMET).is_empty());
}

#[test]
fn admins_revoke() {
    let m = fresh_memory(&with_admins(COMET, &["alice", "carol", "dave"]));
    let m = m.transition(&with_admins(COMET, &["alice"])).expect("comet may change");
    let r = m.revoke(COMET, "carol").expect("carol is remembered");
    assert!(!r.is_remembered(COMET, "carol"));
    assert!(r.is_remembered(COMET, "dave"));
    assert!(m.is_remembered(COMET, "carol"), "revoke does not change the original");
    let e = r.revoke(COMET, "carol").expect_err("already revoked");
    assert!(matches!(&e, RevokeError::NotRemembered { user, .. } if user == "carol"), "{e}");
    assert!(e.to_string().contains("carol"), "{e}");
    let e = m.revoke(COMET, "alice").expect_err("a root admin is not a remembered admin");
    assert!(matches!(&e, RevokeError::NotRemembered { user, .. } if user == "alice"), "{e}");
    let e = m.revoke(UNKNOWN_APP, "carol").expect_err("unknown app");
    assert!(matches!(&e, RevokeError::UnknownApp { app } if app == UNKNOWN_APP), "{e}");
    assert!(e.to_string().contains(UNKNOWN_APP), "{e}");
    // Revoked stays revoked across an unchanged reload.
    let r = r.transition(&with_admins(COMET, &["alice"])).expect("unchanged");
    assert!(!r.is_remembered(COMET, "carol"));
}

/// Fleet mode (`--state dynamodb://TABLE`): two replicas on the same base bundle each demote another
/// user at once. Whichever order their writes land in the shared memory, both demoted users end up
/// remembered (no replica's demotion is undone by the other's list, which still names the user).
#[test]
fn admins_transition_after_keeps_every_replicas_demotion_in_either_order() {
    let base_bundle = with_admins(COMET, &["alice", "carol", "dave"]);
    let base = fresh_memory(&base_bundle);
    let on_a = with_admins(COMET, &["alice", "dave"]); // A demotes carol
    let on_b = with_admins(COMET, &["alice", "carol"]); // B demotes dave
    for (first, second) in [(&on_a, &on_b), (&on_b, &on_a)] {
        let m = base.transition_after(Some(&base_bundle), first).expect("comet may change");
        let m = m.transition_after(Some(&base_bundle), second).expect("comet may change");
        assert_eq!(remembered(&m, COMET), ["carol", "dave"], "{m:?}");
        // The plain (single-writer) transition would have undone the first demotion.
        let plain = base.transition(first).and_then(|m| m.transition(second)).expect("comet may change");
        assert_eq!(remembered(&plain, COMET).len(), 1, "{plain:?}");
    }
}

/// With one writer, `transition_after` is `transition`: a re-added user is a root admin again and no
/// longer remembered, a revoke stays revoked, and nothing activated yet is the plain transition.
#[test]
fn admins_transition_after_with_one_writer_is_transition() {
    let steps: [&[&str]; 6] =
        [&["alice", "carol", "dave"], &["alice"], &["alice", "carol"], &["bob"], &["bob"], &["alice", "bob"]];
    let mut active = with_admins(COMET, steps[0]);
    let mut shared = fresh_memory(&active);
    let mut plain = shared.clone();
    for step in &steps[1..] {
        let next = with_admins(COMET, step);
        shared = shared.transition_after(Some(&active), &next).expect("comet may change");
        plain = plain.transition(&next).expect("comet may change");
        assert_eq!(shared, plain, "after {step:?}");
        active = next;
    }
    assert_eq!(remembered(&shared, COMET), ["carol", "dave"]);
    let revoked = shared.revoke(COMET, "carol").expect("remembered");
    let again = revoked.transition_after(Some(&active), &active).expect("unchanged");
    assert!(!again.is_remembered(COMET, "carol"), "a revoke stays revoked");
    let (start, next) = (fresh_memory(&with_admins(COMET, &["alice", "carol"])), with_admins(COMET, &["carol"]));
    assert_eq!(start.transition_after(None, &next), start.transition(&next));
}

/// A replica that catches up with a bundle another replica already recorded does not demote again:
/// an operator's revoke in between is not undone.
#[test]
fn admins_transition_after_a_slower_replica_does_not_undo_a_revoke() {
    let v1 = with_admins(COMET, &["alice", "carol"]);
    let v2 = with_admins(COMET, &["alice"]);
    let shared = fresh_memory(&v1).transition_after(Some(&v1), &v2).expect("comet may change");
    assert!(shared.is_remembered(COMET, "carol"));
    let shared = shared.revoke(COMET, "carol").expect("remembered");
    // Replica B was still on v1 and now activates v2.
    let shared = shared.transition_after(Some(&v1), &v2).expect("unchanged list");
    assert!(!shared.is_remembered(COMET, "carol"), "{shared:?}");
    // A fiddler change is refused against the shared memory, whatever the replica served before.
    let f1 = with_admins(FIDDLER, &["bob"]);
    let refused =
        fresh_memory(&f1).transition_after(Some(&f1), &with_admins(FIDDLER, &["carol"])).expect_err("fiddler");
    assert!(refused[0].contains("Fiddler"), "{refused:?}");
}

#[test]
fn admins_memory_round_trips_as_json() {
    let m = fresh_memory(&with_admins(COMET, &["alice", "carol"]));
    let m = m.transition(&with_admins(COMET, &["alice"])).expect("comet may change");
    let text = serde_json::to_string(&m).expect("serialize");
    let back: AdminMemory = serde_json::from_str(&text).expect("deserialize");
    assert_eq!(m, back);
    // A restart with the remembered lists: a fiddler change is detected the same way.
    let refused = back.transition(&with_admins(FIDDLER, &["carol"])).expect_err("refused after a restart");
    assert!(refused[0].contains("Fiddler"), "{refused:?}");
}

// === §5.6 second round ===

fn studio_profile(arn: &str, domain: &str, profile: Option<&str>, team: Option<&str>, e: Evidence) -> Request {
    Request {
        target: Target::PartnerApp {
            arn: arn.into(),
            domain_id: Some(domain.into()),
            user_profile: profile.map(str::to_owned),
            team_id: team.map(str::to_owned),
        },
        channel: Some(Channel::Studio),
        evidence: e,
        now_ms: NOW,
    }
}

fn checks_of(d: &[Determining]) -> Vec<&'static str> {
    d.iter().map(|x| x.check.as_str()).collect()
}

fn assert_no_duplicates(what: &str, d: &[Determining]) {
    for (i, x) in d.iter().enumerate() {
        assert!(!d.iter().skip(i + 1).any(|y| y == x), "{what}: duplicate {x:?} in {d:?}");
    }
}

#[test]
fn iam_mode_studio_launch_needs_only_the_profile_or_the_team() {
    // A role session without `ssouserid`: the team (or profile) named is the launch; its execution
    // role is what is authorized (the old code refused this for want of `ssouserid`).
    let e = iam(&session("Federated", "alice"));
    for (what, profile, team) in [
        ("team", None, Some("TeamA")),
        ("profile", Some("alice-TeamA"), None),
        ("both", Some("alice-TeamA"), Some("TeamA")),
    ] {
        let o = ok(what, &studio_profile(LAKERA, IAM_TEAMS, profile, team, e.clone()));
        assert_eq!(identity(&o), ("alice", Source::SessionName), "{what}");
        assert!(
            o.determining.iter().any(|s| &*s.policy == "role/TeamARole/inline/Inline" && s.check == Check::Authorize),
            "{what}: {:?}",
            o.determining
        );
        // The team role may not open comet, whatever the caller's own session may do.
        let err = fail(what, &studio_profile(COMET, IAM_TEAMS, profile, team, e.clone()), ErrorKind::NotAuthorized);
        assert_eq!(err.check, Some(Check::Authorize), "{what}");
        assert_mentions(what, &err, &["TeamARole"]);
    }
}

#[test]
fn iam_mode_studio_launch_without_profile_or_team_is_invalid_argument() {
    // The old code fell back to the domain default role (StudioExec may open comet) and answered.
    let mut e = iam(&session("Federated", "alice"));
    e.saml.push(("teamid".into(), "TeamA".into()));
    let err = invalid(
        "neither profile nor team",
        &studio_profile(COMET, IAM_TEAMS, None, None, e),
        "partner_app.user_profile_name",
    );
    assert_mentions("neither profile nor team", &err, &[IAM_TEAMS, "team"]);
    // An unknown profile is NOT_FOUND, like an unknown team.
    fail(
        "unknown profile",
        &studio_profile(LAKERA, IAM_TEAMS, Some("zed-TeamA"), None, iam(&session("Federated", "alice"))),
        ErrorKind::UnknownTarget,
    );
    // Identity Center evidence against the IAM-mode domain stays FAILED_PRECONDITION.
    let err = fail(
        "IC on IAM",
        &studio_profile(LAKERA, IAM_TEAMS, Some("alice-TeamA"), None, ic_alice()),
        ErrorKind::Precondition,
    );
    assert_eq!(err.check, Some(Check::AuthMode));
}

#[test]
fn iam_mode_studio_launch_checks_a_named_user() {
    // When `ssouserid` says who the user is, the team and the profile must be theirs.
    let err = fail(
        "bob opens alice's profile",
        &studio_profile(LAKERA, IAM_TEAMS, Some("alice-TeamA"), None, team_evidence(BOB_ID, BOB_ID, None)),
        ErrorKind::NotAuthorized,
    );
    assert_eq!(err.check, Some(Check::ProfileOwnership));
    let err = fail(
        "erin as TeamA",
        &studio_profile(LAKERA, IAM_TEAMS, None, Some("TeamA"), team_evidence(ERIN_ID, ERIN_ID, None)),
        ErrorKind::NotAuthorized,
    );
    assert_eq!(err.check, Some(Check::TeamMembership));
}

#[test]
fn domain_assignment_is_explicit() {
    // erin has a user profile on the domain but is neither in AssignedUsers nor in an assigned group:
    // not assigned (the old code counted the profile as an assignment).
    let profiles = json!([{"UserProfileName": "alice", "SingleSignOnUserValue": "alice"},
                          {"UserProfileName": "erin", "SingleSignOnUserValue": "erin"}]);
    let b = bundle_with(vec![sso_domain(SSO_NOTIP, false, false, "StudioExec", profiles.clone())]);
    let erin = Evidence { ic: ic(ERIN_ID, "erin"), ..Evidence::default() };
    for (what, req) in [
        ("partner app", studio(COMET, SSO_NOTIP, None, erin.clone())),
        ("profile", profile_req(SSO_NOTIP, None, erin.clone())),
    ] {
        let e = run_on(&b, &fresh_memory(&b), &req).expect_err(what);
        assert_eq!((e.kind, e.check), (ErrorKind::NotAuthorized, Some(Check::DomainAssignment)), "{what}: {e}");
        assert_mentions(what, &e, &["erin", SSO_NOTIP, "AssignedUsers"]);
    }
    // Listed in AssignedUsers: assigned.
    let (path, mut domain) = sso_domain(SSO_NOTIP, false, false, "StudioExec", profiles);
    domain["AssignedUsers"] = json!(["alice", "erin"]);
    let b = bundle_with(vec![(path, domain)]);
    let o = run_on(&b, &fresh_memory(&b), &studio(COMET, SSO_NOTIP, None, erin)).expect("assigned");
    assert_eq!(identity(&o), ("erin", Source::IdentityCenter));
}

#[test]
fn domain_assignment_names_are_validated_at_load() {
    let (path, mut domain) = sso_domain(SSO_NOTIP, false, false, "StudioExec", json!([]));
    domain["AssignedUsers"] = json!(["alcie"]);
    domain["AssignedGroups"] = json!(["NoSuchGroup"]);
    domain["AssignedUser"] = json!(["alice"]);
    let mut f = files();
    f.retain(|(p, _)| *p != path);
    f.push((path, domain));
    let raw = f.into_iter().map(|(p, v)| (p, serde_json::to_vec_pretty(&v).expect("serialize"))).collect();
    let problems = bundle::from_files(raw).expect_err("refused");
    let text = problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n");
    for needle in [
        "/AssignedUsers/0",
        "did you mean `alice`?",
        "/AssignedGroups/0",
        "NoSuchGroup",
        "did you mean `AssignedUsers`?",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
    }
    // Not on IAM-mode domains.
    let mut f = files();
    let iam_path = format!("sagemaker/domains/{IAM_TEAMS}.json");
    if let Some((_, v)) = f.iter_mut().find(|(p, _)| *p == iam_path) {
        v["AssignedUsers"] = json!(["alice"]);
    }
    let raw = f.into_iter().map(|(p, v)| (p, serde_json::to_vec_pretty(&v).expect("serialize"))).collect();
    let problems = bundle::from_files(raw).expect_err("refused");
    assert!(problems.iter().any(|p| p.to_string().contains("only for SSO domains")), "{problems:?}");
}

#[test]
fn identifiers_are_validated_before_any_lookup() {
    let long = "a".repeat(65);
    // Unknown app and domain: a lookup would answer NOT_FOUND; malformed identifiers come first.
    for (what, session_name) in [("colon", "carol:admin"), ("65 characters", long.as_str()), ("one character", "c")] {
        let e = invalid(
            what,
            &presigned(UNKNOWN_APP, iam(&format!("arn:aws:sts::{ACCOUNT}:assumed-role/Launcher/{session_name}"))),
            "evidence.principal_arn",
        );
        assert_mentions(what, &e, &["session name"]);
        // Never propagated as a user name, even on an app that would take the session name.
        invalid(
            what,
            &presigned(LAKERA, iam(&format!("arn:aws:sts::{ACCOUNT}:assumed-role/Launcher/{session_name}"))),
            "evidence.principal_arn",
        );
    }
    let rows: Vec<(&str, Request, &str)> = vec![
        (
            "profile name",
            studio_profile(COMET, UNKNOWN_DOMAIN, Some("alice:admin"), None, iam(&session("Federated", "alice"))),
            "partner_app.user_profile_name",
        ),
        (
            "team id",
            studio_profile(COMET, UNKNOWN_DOMAIN, None, Some("Team A"), iam(&session("Federated", "alice"))),
            "partner_app.team_id",
        ),
        ("profile team id", profile_req(UNKNOWN_DOMAIN, Some("Team/A"), Evidence::default()), "studio_profile.team_id"),
        (
            "user id",
            studio(COMET, UNKNOWN_DOMAIN, None, Evidence { ic: ic("alice id", "alice"), ..Evidence::default() }),
            "evidence.identity_center_user.user_id",
        ),
        (
            "user name",
            studio(COMET, UNKNOWN_DOMAIN, None, Evidence { ic: ic(ALICE_ID, "alice smith"), ..Evidence::default() }),
            "evidence.identity_center_user.user_name",
        ),
        (
            "identity store",
            studio(
                COMET,
                UNKNOWN_DOMAIN,
                None,
                Evidence {
                    ic: Some(IcEvidence {
                        user_id: ALICE_ID.into(),
                        user_name: "alice".into(),
                        identity_store_arn: "arn:aws:s3:::bucket".into(),
                    }),
                    ..Evidence::default()
                },
            ),
            "evidence.identity_center_user.identity_store_arn",
        ),
        (
            "ssouserid",
            profile_req(UNKNOWN_DOMAIN, Some("TeamA"), team_evidence("alice:admin", ALICE_ID, None)),
            "evidence.saml_attributes.ssouserid",
        ),
    ];
    for (what, req, field) in rows {
        invalid(what, &req, field);
    }
}

fn job_with(domain: &str, job_type: Option<&str>, job_arn: Option<&str>, max: Option<u32>) -> Request {
    Request {
        target: Target::Job {
            domain_id: domain.into(),
            job_type: job_type.map(str::to_owned),
            job_arn: job_arn.map(str::to_owned),
            max_runtime_seconds: max,
            background_started_ms: None,
        },
        channel: None,
        evidence: ic_alice(),
        now_ms: NOW,
    }
}

#[test]
fn job_arn_is_checked_against_the_job_type_and_the_domain_account() {
    let training = format!("arn:aws:sagemaker:us-east-1:{ACCOUNT}:training-job/fine-tune-1");
    let processing = format!("arn:aws:sagemaker:us-east-1:{ACCOUNT}:processing-job/prep-1");
    ok("training", &job_with(SSO_TIP, Some("TRAINING"), Some(&training), None));
    ok("processing", &job_with(SSO_TIP, Some("PROCESSING"), Some(&processing), None));
    ok("no type", &job_with(SSO_TIP, None, Some(&processing), None));
    let other_account = "arn:aws:sagemaker:us-east-1:444455556666:training-job/fine-tune-1";
    for (what, t, a) in [
        ("processing ARN for TRAINING", Some("TRAINING"), processing.as_str()),
        ("training ARN for PROCESSING", Some("PROCESSING"), training.as_str()),
        ("not a job", None, "arn:aws:sagemaker:us-east-1:111122223333:model/m"),
        ("bad name", Some("TRAINING"), "arn:aws:sagemaker:us-east-1:111122223333:training-job/a_b"),
        ("no region", Some("TRAINING"), "arn:aws:sagemaker::111122223333:training-job/a"),
        ("not an ARN", None, "training-job/a"),
        ("other account", Some("TRAINING"), other_account),
    ] {
        invalid(what, &job_with(SSO_TIP, t, Some(a), None), "job.job_arn");
    }
    // Malformed before unknown domains; the account needs the domain.
    invalid("malformed, unknown domain", &job_with(UNKNOWN_DOMAIN, None, Some("x"), None), "job.job_arn");
    fail(
        "well-formed, unknown domain",
        &job_with(UNKNOWN_DOMAIN, None, Some(other_account), None),
        ErrorKind::UnknownTarget,
    );
    invalid("job type", &job_with(SSO_TIP, Some("TRANSFORM"), None, None), "job.job_type");
}

#[test]
fn job_max_runtime_is_optional() {
    // Absent: 86,400. Explicit 0 (the old wire default) is out of range.
    let j = ok("absent", &job_with(SSO_TIP, None, None, None)).job.expect("a job");
    assert_eq!(j.effective_max_runtime_seconds, 86_400);
    invalid("explicit 0", &job_with(SSO_TIP, None, None, Some(0)), "job.max_runtime_in_seconds");
    invalid("explicit too long", &job_with(SSO_TIP, None, None, Some(2_419_201)), "job.max_runtime_in_seconds");
    assert_eq!(
        ok("explicit 1", &job_with(SSO_TIP, None, None, Some(1))).job.expect("a job").effective_max_runtime_seconds,
        1
    );
}

#[test]
fn determining_statements_name_their_check_without_duplicates() {
    // Authorization, then the impersonation re-check with tags (AssumeRole and TagSession).
    let mut e = iam(&session("OpenTrust", "bob"));
    e.session_tags = tags(&[("SageMakerPartnerAppUser", "bob")]);
    e.assumed_by = Some(user_arn("bob"));
    let o = ok("tagged, assumed_by", &presigned(COMET, e));
    let checks = checks_of(&o.determining);
    for c in ["AUTHORIZE", "TRUST_ASSUME_ROLE", "TRUST_TAG_SESSION"] {
        assert!(checks.contains(&c), "{c} missing: {:?}", o.determining);
    }
    assert_no_duplicates("tagged", &o.determining);
    // TIP: the trust policy for AssumeRole and SetContext, and the grants.
    let o = ok("job", &job_req(SSO_TIP, 3600, None, ic_alice()));
    let checks = checks_of(&o.determining);
    for c in ["TRUST_ASSUME_ROLE", "TRUST_SET_CONTEXT", "ACCESS_GRANTS"] {
        assert!(checks.contains(&c), "{c} missing: {:?}", o.determining);
    }
    assert!(!checks.contains(&"AUTHORIZE"), "{:?}", o.determining);
    assert_no_duplicates("job", &o.determining);
    // The same statement for both grants actions is listed once.
    assert_eq!(o.determining.iter().filter(|d| d.check == Check::AccessGrants && &*d.sid == "Grants").count(), 1);
}

#[test]
fn denials_name_the_failed_check_and_carry_the_statements() {
    // Explicit deny: the deny statement, under AUTHORIZE, with the decision.
    let e = fail("mallory on comet", &presigned(COMET, iam(&user_arn("mallory"))), ErrorKind::NotAuthorized);
    assert_eq!(e.check, Some(Check::Authorize));
    assert_eq!(e.decision.as_ref().map(|d| d.decision), Some(Decision::ExplicitDeny));
    assert!(e.determining.iter().any(|d| &*d.sid == "DenyComet" && d.check == Check::Authorize), "{:?}", e.determining);
    // A precondition after authorization carries the statements that allowed it.
    let e = fail("no identity", &presigned(DEEPCHECKS, iam(&user_arn("bob"))), ErrorKind::Precondition);
    assert_eq!(e.check, Some(Check::PartnerAppIdentity));
    assert_eq!(checks_of(&e.determining), vec!["AUTHORIZE"]);
    // TIP failures name their check.
    let e = fail("no SetContext", &job_req(SSO_NOSETCTX, 3600, None, ic_alice()), ErrorKind::Precondition);
    assert_eq!(e.check, Some(Check::TrustSetContext));
    assert!(checks_of(&e.determining).contains(&"TRUST_ASSUME_ROLE"), "{:?}", e.determining);
    let e = fail("no grants", &job_req(SSO_NOGRANTS, 3600, None, ic_alice()), ErrorKind::Precondition);
    assert_eq!(e.check, Some(Check::AccessGrants));
    let e = fail("TIP off", &job_req(SSO_NOTIP, 3600, None, ic_alice()), ErrorKind::Precondition);
    assert_eq!(e.check, Some(Check::TrustedIdentityPropagation));
    let e = fail(
        "wrong name",
        &studio(COMET, SSO_TIP, None, Evidence { ic: ic(ALICE_ID, "bob"), ..Evidence::default() }),
        ErrorKind::NotAuthorized,
    );
    assert_eq!(e.check, Some(Check::IdentityCenterEvidence));
}

#[test]
fn impersonation_names_the_failed_condition() {
    let mut e = iam(&session("Launcher", "bob"));
    e.assumed_by = Some(user_arn("alice"));
    let err = fail("alice names her session bob", &presigned(LAKERA, e), ErrorKind::NotAuthorized);
    assert_eq!(err.check, Some(Check::TrustAssumeRole));
    assert_mentions(
        "session name",
        &err,
        &["StringEquals", "sts:RoleSessionName", "${aws:username} (= alice)", "`bob`"],
    );
    let meta: std::collections::HashMap<_, _> = err.metadata.iter().cloned().collect();
    assert_eq!(meta.get("condition_key").map(String::as_str), Some("sts:RoleSessionName"));
    assert_eq!(meta.get("condition_operator").map(String::as_str), Some("StringEquals"));
    assert_eq!(meta.get("policy_value").map(String::as_str), Some("${aws:username} (= alice)"));
    assert_eq!(meta.get("session_value").map(String::as_str), Some("bob"));
    // The authorization that passed comes along.
    assert!(checks_of(&err.determining).contains(&"AUTHORIZE"), "{:?}", err.determining);

    let mut e = iam(&session("TagLauncher", "whatever"));
    e.session_tags = tags(&[("SageMakerPartnerAppUser", "bob")]);
    e.assumed_by = Some(user_arn("alice"));
    let err = fail("alice tags her session bob", &presigned(COMET, e), ErrorKind::NotAuthorized);
    assert_eq!(err.check, Some(Check::TrustAssumeRole));
    assert_mentions(
        "tag",
        &err,
        &["StringLike", "aws:RequestTag/SageMakerPartnerAppUser", "${aws:username} (= alice)", "`bob`"],
    );
}

//! The `warden` command line contract (SPEC §2.3): `validate`, `eval --request`, `eval --cases`,
//! `test`, and the exit codes (0 success, 1 a failed check, 64 bad usage). Every bundle is written
//! by the test into a temp dir.
use crate::support::{self, Output};
use serde_json::{Value, json};
use std::path::Path;

const ALICE_ARN: &str = "arn:aws:iam::111122223333:user/alice";
const ROLE_EXEC: &str = "arn:aws:iam::111122223333:role/Exec";
const SESSION_EXEC: &str = "arn:aws:sts::111122223333:assumed-role/Exec/alice";
const APP: &str = "arn:aws:sagemaker:us-east-1:111122223333:app/d-abcdefghijkl/alice/jupyterlab/default";

/// A small bundle: a user with an inline policy, a role with a trust policy and an inline policy,
/// and two SCPs (allow-all plus a deny).
const USER_ALICE_JSON: &str = r#"{
  "UserName": "alice", "Arn": "arn:aws:iam::111122223333:user/alice",
  "Tags": [{"Key": "Team", "Value": "Team1"}],
  "UserPolicyList": [{"PolicyName": "DeveloperAccess", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
    {"Sid": "AllowTeamApps", "Effect": "Allow", "Action": "sagemaker:CreateApp", "Resource": "*",
     "Condition": {"StringEquals": {"aws:ResourceTag/Team": "${aws:PrincipalTag/Team}"}}},
    {"Sid": "S3", "Effect": "Allow", "Action": "s3:*", "Resource": "*"},
    {"Sid": "NoBucketDeletion", "Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "*"}]}}]
}"#;

const ROLE_EXEC_JSON: &str = r#"{
  "RoleName": "Exec", "Arn": "arn:aws:iam::111122223333:role/Exec",
  "Tags": [{"Key": "Team", "Value": "Team1"}],
  "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [
    {"Sid": "AliceAssumes", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:user/alice"},
     "Action": "sts:AssumeRole"}]},
  "RolePolicyList": [{"PolicyName": "TeamApps", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
    {"Sid": "SameTeam", "Effect": "Allow", "Action": "sagemaker:CreateApp", "Resource": "*",
     "Condition": {"StringEquals": {"aws:ResourceTag/Team": "${aws:PrincipalTag/Team}"}}}]}}]
}"#;

const SCP_FULL: &str = r#"{"Version": "2012-10-17", "Statement": [{"Sid": "FullAWSAccess", "Effect": "Allow", "Action": "*", "Resource": "*"}]}"#;
const SCP_DENY_EC2: &str = r#"{"Version": "2012-10-17", "Statement": [{"Sid": "NoEc2", "Effect": "Deny", "Action": "ec2:*", "Resource": "*"}]}"#;

fn small_bundle_files() -> Vec<(&'static str, &'static str)> {
    vec![
        ("iam/users/alice.json", USER_ALICE_JSON),
        ("iam/roles/Exec.json", ROLE_EXEC_JSON),
        ("organizations/scps/FullAWSAccess.json", SCP_FULL),
        ("organizations/scps/DenyEc2.json", SCP_DENY_EC2),
    ]
}

fn small_bundle() -> tempfile::TempDir {
    support::bundle_in_temp(&small_bundle_files())
}

fn validate(dir: &Path) -> Output {
    support::warden([Path::new("validate"), dir])
}

/// `warden validate DIR` succeeds; returns the revision it printed.
fn valid_revision(dir: &Path) -> String {
    let out = validate(dir);
    assert_eq!(out.code, 0, "validate failed:\n{}", out.dump());
    support::revision_in(&out)
}

fn parse_json(text: &str, out: &Output) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", out.dump()))
}

// --- validate -------------------------------------------------------------------------------

#[test]
fn validate_accepts_a_good_bundle_and_prints_its_revision() {
    let b = small_bundle();
    let out = validate(b.path());
    assert_eq!(out.code, 0, "{}", out.dump());
    let first = out.stdout.lines().next().unwrap_or("");
    let prefix = format!("{}: valid, revision sha256:", b.path().display());
    assert!(first.starts_with(&prefix), "expected `{prefix}…`:\n{}", out.dump());
    let rev = support::revision_in(&out);
    assert!(support::is_revision(&rev), "{rev}");
    assert!(
        first[prefix.len() - "sha256:".len()..].starts_with(&rev),
        "the revision must follow `valid, revision `:\n{}",
        out.dump()
    );
    assert!(out.stderr.trim().is_empty(), "no problems expected:\n{}", out.dump());
}

#[test]
fn the_revision_is_a_digest_of_the_content() {
    // Same content in two different directories: same revision.
    let a = small_bundle();
    let b = small_bundle();
    let rev_a = valid_revision(a.path());
    assert_eq!(rev_a, valid_revision(b.path()), "same files, different revisions");
    assert_eq!(rev_a, valid_revision(a.path()), "the revision is not stable across runs");

    // Hidden files are not read (Kubernetes `..data`): no change.
    support::write_file(b.path(), ".hidden.json", b"{not even json");
    assert_eq!(rev_a, valid_revision(b.path()), "a hidden file changed the revision");

    // One byte of content changed: a different revision.
    let changed = SCP_DENY_EC2.replace("NoEc2", "NoEC2");
    support::write_file(b.path(), "organizations/scps/DenyEc2.json", changed.as_bytes());
    let rev_changed = valid_revision(b.path());
    assert_ne!(rev_a, rev_changed, "changed content, same revision");

    // Same bytes under another file name: a different revision too (paths are part of the digest).
    let c = small_bundle();
    std::fs::rename(
        c.path().join("organizations/scps/DenyEc2.json"),
        c.path().join("organizations/scps/DenyCompute.json"),
    )
    .expect("rename");
    assert_ne!(rev_a, valid_revision(c.path()), "renamed file, same revision");
}

#[test]
fn validate_of_a_missing_directory_fails() {
    let tmp = support::temp_dir();
    let missing = tmp.path().join("no-such-bundle");
    let out = validate(&missing);
    assert_eq!(out.code, 1, "{}", out.dump());
    assert!(out.stderr.contains("no-such-bundle"), "the directory must be named:\n{}", out.dump());
    assert!(out.stderr.contains("1 problem found"), "{}", out.dump());
}

/// Objects as the AWS CLI prints them, with every key it prints (SPEC §3.1 "Strict shapes": a key AWS
/// prints for that object is accepted; only unknown keys are errors).
const AWS_ROLE: &str = r#"{
  "Path": "/service-role/", "RoleName": "Exec", "RoleId": "AROAEXAMPLEEXAMPLE01",
  "Arn": "arn:aws:iam::111122223333:role/service-role/Exec", "CreateDate": "2025-07-28T12:58:17+00:00",
  "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
    "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]},
  "Description": "Studio execution role", "MaxSessionDuration": 3600,
  "InstanceProfileList": [],
  "RolePolicyList": [{"PolicyName": "Inline", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}}],
  "AttachedManagedPolicies": [{"PolicyName": "Read", "PolicyArn": "arn:aws:iam::111122223333:policy/Read"}],
  "PermissionsBoundary": {"PermissionsBoundaryType": "PermissionsBoundaryPolicy",
                          "PermissionsBoundaryArn": "arn:aws:iam::111122223333:policy/Read"},
  "Tags": [{"Key": "Team", "Value": "Team1"}],
  "RoleLastUsed": {"LastUsedDate": "2025-08-01T10:00:00+00:00", "Region": "us-east-1"}
}"#;

const AWS_USER: &str = r#"{
  "Path": "/", "UserName": "alice", "UserId": "AIDAEXAMPLEEXAMPLE01",
  "Arn": "arn:aws:iam::111122223333:user/alice", "CreateDate": "2024-01-01T00:00:00+00:00",
  "PasswordLastUsed": "2025-08-01T10:00:00+00:00",
  "UserPolicyList": [], "GroupList": ["Team1"], "AttachedManagedPolicies": [], "Tags": []
}"#;

const AWS_GROUP: &str = r#"{
  "Path": "/", "GroupName": "Team1", "GroupId": "AGPAEXAMPLEEXAMPLE01",
  "Arn": "arn:aws:iam::111122223333:group/Team1", "CreateDate": "2024-01-01T00:00:00+00:00",
  "GroupPolicyList": [], "AttachedManagedPolicies": []
}"#;

const AWS_MANAGED_POLICY: &str = r#"{
  "PolicyName": "Read", "PolicyId": "ANPAEXAMPLEEXAMPLE01", "Arn": "arn:aws:iam::111122223333:policy/Read",
  "Path": "/", "DefaultVersionId": "v1", "AttachmentCount": 1, "PermissionsBoundaryUsageCount": 1,
  "IsAttachable": true, "Description": "read", "CreateDate": "2024-01-01T00:00:00+00:00",
  "UpdateDate": "2024-01-01T00:00:00+00:00", "Tags": [],
  "PolicyDocument": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
}"#;

const AWS_AUTH_DETAILS: &str = r#"{
  "UserDetailList": [], "GroupDetailList": [], "RoleDetailList": [],
  "Policies": [{"PolicyName": "Audit", "PolicyId": "ANPAEXAMPLEEXAMPLE02",
    "Arn": "arn:aws:iam::111122223333:policy/Audit", "Path": "/", "DefaultVersionId": "v2",
    "AttachmentCount": 0, "PermissionsBoundaryUsageCount": 0, "IsAttachable": true,
    "CreateDate": "2024-01-01T00:00:00+00:00", "UpdateDate": "2024-02-01T00:00:00+00:00",
    "PolicyVersionList": [
      {"Document": "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22cloudtrail%3ALookupEvents%22%2C%22Resource%22%3A%22%2A%22%7D%5D%7D",
       "VersionId": "v2", "IsDefaultVersion": true, "CreateDate": "2024-02-01T00:00:00+00:00"},
      {"Document": {"Version": "2012-10-17", "Statement": []}, "VersionId": "v1", "IsDefaultVersion": false,
       "CreateDate": "2024-01-01T00:00:00+00:00"}]}],
  "IsTruncated": false
}"#;

const AWS_SCP: &str = r#"{"Policy": {
  "PolicySummary": {"Id": "p-FullAWSAccess", "Arn": "arn:aws:organizations::aws:policy/service_control_policy/p-FullAWSAccess",
    "Name": "FullAWSAccess", "Description": "Allows access to every operation", "Type": "SERVICE_CONTROL_POLICY",
    "AwsManaged": true},
  "Content": "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}]}"
}}"#;

const AWS_PARTNER_APP: &str = r#"{
  "Arn": "arn:aws:sagemaker:us-east-1:111122223333:partner-app/app-COMETTEAM001", "Name": "CometTeam1",
  "Type": "comet", "Status": "Available", "CreationTime": "2025-07-28T12:58:17.123000+00:00",
  "LastModifiedTime": "2025-07-28T13:30:00.000000+00:00",
  "ExecutionRoleArn": "arn:aws:iam::111122223333:role/service-role/Exec",
  "KmsKeyId": "arn:aws:kms:us-east-1:111122223333:key/00000000-0000-0000-0000-000000000000",
  "BaseUrl": "https://app-cometteam001.partner-app.us-east-1.sagemaker.aws",
  "MaintenanceConfig": {"MaintenanceWindowStart": "Sun:04:00"}, "Tier": "small", "Version": "1.0",
  "ApplicationConfig": {"AdminUsers": ["alice"], "Arguments": {"comet-key": "value"},
    "AssignedGroupPatterns": [], "RoleGroupAssignments": []},
  "AuthType": "IAM", "EnableIamSessionBasedIdentity": true, "EnableAutoMinorVersionUpgrade": false,
  "Error": {"Code": "", "Reason": ""}, "CurrentVersionEolDate": "2026-07-28T00:00:00+00:00",
  "AvailableUpgrade": {"AvailableVersion": "1.1", "ReleaseNotes": []}, "Tags": []
}"#;

const AWS_DOMAIN: &str = r#"{
  "DomainArn": "arn:aws:sagemaker:us-east-1:111122223333:domain/d-abcdefghijkl", "DomainId": "d-abcdefghijkl",
  "DomainName": "studio", "HomeEfsFileSystemId": "fs-0123456789abcdef0",
  "SingleSignOnManagedApplicationInstanceId": "ins-0123456789abcdef",
  "SingleSignOnApplicationArn": "arn:aws:sso::111122223333:application/ssoins-1234567890abcdef/apl-0123456789abcdef",
  "Status": "InService", "CreationTime": "2025-07-28T12:58:17.123000+00:00",
  "LastModifiedTime": "2025-07-28T13:30:00.000000+00:00", "SecurityGroupIdForDomainBoundary": "sg-0123456789abcdef0",
  "AuthMode": "SSO",
  "DefaultUserSettings": {"ExecutionRole": "arn:aws:iam::111122223333:role/service-role/Exec",
    "SecurityGroups": ["sg-0123456789abcdef0"], "SharingSettings": {"NotebookOutputOption": "Disabled"},
    "JupyterServerAppSettings": {}, "KernelGatewayAppSettings": {}, "CanvasAppSettings": {},
    "JupyterLabAppSettings": {}, "SpaceStorageSettings": {}, "DefaultLandingUri": "studio::",
    "StudioWebPortal": "ENABLED", "StudioWebPortalSettings": {}, "AutoMountHomeEFS": "Enabled"},
  "DomainSettings": {"SecurityGroupIds": ["sg-0123456789abcdef0"], "ExecutionRoleIdentityConfig": "DISABLED",
    "DockerSettings": {"EnableDockerAccess": "DISABLED"}, "AmazonQSettings": {"Status": "DISABLED"},
    "IpAddressType": "ipv4", "TrustedIdentityPropagationSettings": {"Status": "ENABLED"},
    "S3AccessGrants": {"Status": "ENABLED"}},
  "AppNetworkAccessType": "VpcOnly", "SubnetIds": ["subnet-0123456789abcdef0"],
  "Url": "https://d-abcdefghijkl.studio.us-east-1.sagemaker.aws", "VpcId": "vpc-0123456789abcdef0",
  "KmsKeyId": "arn:aws:kms:us-east-1:111122223333:key/00000000-0000-0000-0000-000000000000",
  "AppSecurityGroupManagement": "Service", "TagPropagation": "ENABLED",
  "DefaultSpaceSettings": {"ExecutionRole": "arn:aws:iam::111122223333:role/service-role/Exec"},
  "UserProfiles": [{"DomainId": "d-abcdefghijkl",
    "UserProfileArn": "arn:aws:sagemaker:us-east-1:111122223333:user-profile/d-abcdefghijkl/alice",
    "UserProfileName": "alice", "HomeEfsFileSystemUid": "200001", "Status": "InService",
    "LastModifiedTime": "2025-07-28T13:30:00.000000+00:00", "CreationTime": "2025-07-28T12:58:17.123000+00:00",
    "SingleSignOnUserIdentifier": "UserName", "SingleSignOnUserValue": "alice",
    "UserSettings": {"SecurityGroups": ["sg-0123456789abcdef0"], "StudioWebPortal": "ENABLED"}}]
}"#;

const AWS_IDENTITY_CENTER: &str = r#"{
  "Instance": {"InstanceArn": "arn:aws:sso:::instance/ssoins-1234567890abcdef", "IdentityStoreId": "d-1234567890",
    "IdentityStoreArn": "arn:aws:identitystore::111122223333:identitystore/d-1234567890",
    "OwnerAccountId": "111122223333", "Name": "corp", "CreatedDate": "2024-01-01T00:00:00+00:00",
    "Status": "ACTIVE"},
  "Users": [{"IdentityStoreId": "d-1234567890", "UserId": "9067-alice", "UserName": "alice",
    "Name": {"FamilyName": "Doe", "GivenName": "Alice"}, "DisplayName": "Alice Doe",
    "Emails": [{"Value": "alice@example.com", "Type": "work", "Primary": true}], "UserType": "Employee",
    "Title": "Data scientist", "PreferredLanguage": "en", "Locale": "en-US", "Timezone": "UTC",
    "ExternalIds": [], "Addresses": [], "PhoneNumbers": []}],
  "Groups": [{"IdentityStoreId": "d-1234567890", "GroupId": "g-1", "DisplayName": "Team1Group",
    "Description": "team 1", "ExternalIds": [], "Members": ["alice"]}]
}"#;

#[test]
fn issue_010_validate_accepts_every_key_the_aws_cli_prints() {
    let b = support::bundle_in_temp(&[
        ("iam/roles/Exec.json", AWS_ROLE),
        ("iam/users/alice.json", AWS_USER),
        ("iam/groups/Team1.json", AWS_GROUP),
        ("iam/policies/Read.json", AWS_MANAGED_POLICY),
        ("iam/authorization-details.json", AWS_AUTH_DETAILS),
        ("organizations/scps/FullAWSAccess.json", AWS_SCP),
        ("sagemaker/partner-apps/CometTeam1.json", AWS_PARTNER_APP),
        ("sagemaker/domains/studio.json", AWS_DOMAIN),
        ("identity-center/ic.json", AWS_IDENTITY_CENTER),
    ]);
    let out = validate(b.path());
    assert_eq!(out.code, 0, "AWS CLI output must validate:\n{}", out.dump());

    // The same objects with one key AWS never prints: each is an error naming file and pointer.
    let cases = [
        ("iam/roles/Exec.json", AWS_ROLE, "/RoleLastUsd", "a role"),
        ("sagemaker/partner-apps/CometTeam1.json", AWS_PARTNER_APP, "/Teir", "a partner app"),
        ("sagemaker/domains/studio.json", AWS_DOMAIN, "/DefaultSpaceSetting", "a domain"),
        ("identity-center/ic.json", AWS_IDENTITY_CENTER, "/Instanse", "an Identity Center file"),
    ];
    for (file, doc, pointer, what) in cases {
        let key = pointer.trim_start_matches('/');
        let broken = doc.replacen('{', &format!("{{\"{key}\": null, "), 1);
        support::write_file(b.path(), file, broken.as_bytes());
        let out = validate(b.path());
        support::write_file(b.path(), file, doc.as_bytes());
        assert_eq!(out.code, 1, "{file}: `{key}` must be refused:\n{}", out.dump());
        let want = format!("{file}: {pointer}: unknown key `{key}` in {what}: did you mean `");
        assert!(out.stderr.contains(&want), "expected `{want}…`:\n{}", out.dump());
    }
}

// --- eval --request -------------------------------------------------------------------------

fn request(principal: &str, action: &str, resource: &str) -> Value {
    json!({"principal": {"arn": principal}, "action": action, "resource": resource})
}

/// `warden eval --request FILE --bundle DIR`, through a file.
fn eval_file(bundle: &Path, req: &Value) -> Output {
    let tmp = support::temp_dir();
    let file = tmp.path().join("request.json");
    std::fs::write(&file, serde_json::to_vec_pretty(req).expect("serialize")).expect("write request");
    support::warden([Path::new("eval"), Path::new("--request"), &file, Path::new("--bundle"), bundle])
}

/// `warden eval --request - --bundle DIR`, through stdin.
fn eval_stdin(bundle: &Path, req: &str) -> Output {
    support::warden_stdin(
        [Path::new("eval"), Path::new("--request"), Path::new("-"), Path::new("--bundle"), bundle],
        req,
    )
}

/// Parses a successful AuthorizeResponse; returns (decision, determining as (policy, sid, effect), revision).
fn response(out: &Output) -> (String, Vec<(String, String, String)>, String) {
    assert_eq!(out.code, 0, "eval failed:\n{}", out.dump());
    let v = parse_json(&out.stdout, out);
    let decision = v["decision"].as_str().unwrap_or_else(|| panic!("no decision:\n{}", out.dump()));
    let mut determining: Vec<(String, String, String)> = v
        .get("determining")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|s| {
                    let f = |k: &str| s[k].as_str().unwrap_or("").to_owned();
                    (f("policy"), f("sid"), f("effect"))
                })
                .collect()
        })
        .unwrap_or_default();
    determining.sort();
    let revision =
        v["bundleRevision"].as_str().unwrap_or_else(|| panic!("no bundleRevision:\n{}", out.dump())).to_owned();
    (decision.to_owned(), determining, revision)
}

fn sref(policy: &str, sid: &str, effect: &str) -> (String, String, String) {
    (policy.to_owned(), sid.to_owned(), effect.to_owned())
}

#[test]
fn eval_request_prints_an_authorize_response() {
    let b = small_bundle();
    let rev = valid_revision(b.path());

    // ALLOW by the user's inline policy (tag match), with the allow-all SCP.
    let mut req = request(ALICE_ARN, "sagemaker:CreateApp", APP);
    req["resourceTags"] = json!({"Team": "Team1"});
    let (decision, determining, revision) = response(&eval_file(b.path(), &req));
    assert_eq!(decision, "ALLOW");
    assert!(
        determining.contains(&sref("user/alice/inline/DeveloperAccess", "AllowTeamApps", "Allow")),
        "{determining:?}"
    );
    assert_eq!(revision, rev, "bundleRevision must be the bundle's revision");

    // IMPLICIT_DENY: another team's app.
    req["resourceTags"] = json!({"Team": "Team2"});
    let (decision, determining, _) = response(&eval_file(b.path(), &req));
    assert_eq!(decision, "IMPLICIT_DENY");
    assert!(determining.is_empty(), "{determining:?}");

    // IMPLICIT_DENY: nothing allows it.
    let (decision, _, _) = response(&eval_file(b.path(), &request(ALICE_ARN, "iam:CreateUser", "*")));
    assert_eq!(decision, "IMPLICIT_DENY");

    // EXPLICIT_DENY by the identity policy, despite `s3:*`.
    let (decision, determining, _) =
        response(&eval_file(b.path(), &request(ALICE_ARN, "s3:DeleteBucket", "arn:aws:s3:::data")));
    assert_eq!(decision, "EXPLICIT_DENY");
    assert_eq!(determining, [sref("user/alice/inline/DeveloperAccess", "NoBucketDeletion", "Deny")]);

    // EXPLICIT_DENY by an SCP.
    let (decision, determining, _) = response(&eval_file(b.path(), &request(ALICE_ARN, "ec2:RunInstances", "*")));
    assert_eq!(decision, "EXPLICIT_DENY");
    assert_eq!(determining, [sref("scp/DenyEc2", "NoEc2", "Deny")]);

    // ALLOW by the role's trust policy naming the user.
    let (decision, determining, _) = response(&eval_file(b.path(), &request(ALICE_ARN, "sts:AssumeRole", ROLE_EXEC)));
    assert_eq!(decision, "ALLOW");
    assert!(determining.contains(&sref("role/Exec/trust", "AliceAssumes", "Allow")), "{determining:?}");
}

#[test]
fn eval_request_reads_stdin_and_session_tags() {
    let b = small_bundle();
    // A session of the role: its session tag Team=Team2 overrides the role's tag Team=Team1.
    let mut req = request(SESSION_EXEC, "sagemaker:CreateApp", APP);
    req["principal"]["sessionTags"] = json!({"Team": "Team2"});
    req["resourceTags"] = json!({"Team": "Team2"});
    let (decision, determining, _) = response(&eval_stdin(b.path(), &req.to_string()));
    assert_eq!(decision, "ALLOW");
    assert!(determining.contains(&sref("role/Exec/inline/TeamApps", "SameTeam", "Allow")), "{determining:?}");
    req["resourceTags"] = json!({"Team": "Team1"});
    let (decision, _, _) = response(&eval_stdin(b.path(), &req.to_string()));
    assert_eq!(decision, "IMPLICIT_DENY", "the session tag must override the role tag");
}

#[test]
fn eval_request_rejects_invalid_requests_naming_the_field() {
    let b = small_bundle();
    let cases: &[(&str, Value, &str)] = &[
        ("missing principal", json!({"action": "s3:GetObject", "resource": "arn:aws:s3:::b/k"}), "principal"),
        (
            "principal without arn",
            json!({"principal": {}, "action": "s3:GetObject", "resource": "arn:aws:s3:::b/k"}),
            "principal.arn",
        ),
        ("malformed principal ARN", request("alice", "s3:GetObject", "arn:aws:s3:::b/k"), "principal.arn"),
        (
            "principal ARN of a bucket",
            request("arn:aws:s3:::bucket", "s3:GetObject", "arn:aws:s3:::b/k"),
            "principal.arn",
        ),
        ("missing action", json!({"principal": {"arn": ALICE_ARN}, "resource": "arn:aws:s3:::b/k"}), "action"),
        ("malformed resource", request(ALICE_ARN, "s3:GetObject", "bucket/key"), "resource"),
    ];
    let mut failures = Vec::new();
    for (what, req, field) in cases {
        let out = eval_stdin(b.path(), &req.to_string());
        let names_field = out.stderr.split(|c: char| c.is_whitespace() || c == ':' || c == '`').any(|w| w == *field);
        if out.code != 1 || !names_field || !out.stdout.trim().is_empty() {
            failures.push(format!("{what}: expected exit 1 naming `{field}`:\n{}", out.dump()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));

    // Not JSON at all.
    let out = eval_stdin(b.path(), "this is not json");
    assert_eq!(out.code, 1, "{}", out.dump());
}

// --- eval --cases ---------------------------------------------------------------------------

const CASES: &str = r#"{"id": "allow", "policies": {"identity": [{"Version": "2012-10-17", "Statement": [{"Sid": "A", "Effect": "Allow", "Action": "sagemaker:CreateApp", "Resource": "*"}]}]}, "request": {"principal": "arn:aws:iam::111122223333:user/alice", "action": "sagemaker:CreateApp", "resource": "arn:aws:sagemaker:us-east-1:111122223333:app/d-1/alice/jupyterserver/default", "context": {"aws:SourceIp": "10.100.10.5", "aws:TagKeys": ["Team"]}}}

{"id": "scp-deny", "policies": {"identity": [{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}], "scp": [{"Version": "2012-10-17", "Statement": [{"Sid": "All", "Effect": "Allow", "Action": "*", "Resource": "*"}, {"Sid": "OnlyVpn", "Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}]}]}, "request": {"principal": "arn:aws:iam::111122223333:user/alice", "action": "s3:GetObject", "resource": "arn:aws:s3:::b/k", "context": {"aws:SourceIp": "192.0.2.1"}}}
{"id": "no-scp-allows", "policies": {"identity": [{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}], "scp": []}, "request": {"principal": "arn:aws:iam::111122223333:user/alice", "action": "s3:GetObject", "resource": "arn:aws:s3:::b/k"}}
{"id": "broken-policy", "policies": {"identity": [{"Version": "2012-10-17", "Statement": [{"Effect": "Alow", "Action": "*", "Resource": "*"}]}]}, "request": {"principal": "arn:aws:iam::111122223333:user/alice", "action": "s3:GetObject", "resource": "arn:aws:s3:::b/k"}}
{"id": "not json
{"id": "service-trust", "policies": {"resource": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]}}, "request": {"principal": "sagemaker.amazonaws.com", "action": "sts:AssumeRole", "resource": "arn:aws:iam::111122223333:role/Exec"}}
{"id": "bad-principal", "policies": {"identity": []}, "request": {"principal": "alice", "action": "s3:GetObject", "resource": "arn:aws:s3:::b/k"}}
"#;

fn check_cases_output(out: &Output) {
    // Three rows are `Error`: every row is still answered, and the exit code says so (SPEC §11).
    assert_eq!(out.code, 1, "{}", out.dump());
    assert!(out.stderr.contains("3 of the cases answered `Error`"), "{}", out.dump());
    let lines: Vec<Value> = out.stdout.lines().map(|l| parse_json(l, out)).collect();
    let got: Vec<(String, String)> = lines
        .iter()
        .map(|v| {
            (
                v["id"].as_str().unwrap_or("<no id>").to_owned(),
                v["decision"].as_str().unwrap_or("<no decision>").to_owned(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("allow", "Allow"),
        ("scp-deny", "ExplicitDeny"),
        ("no-scp-allows", "ImplicitDeny"),
        ("broken-policy", "Error"),
        ("", "Error"),
        ("service-trust", "Allow"),
        ("bad-principal", "Error"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
    .collect();
    assert_eq!(got, want, "one output line per non-blank input line, in order:\n{}", out.dump());

    let determining = |v: &Value| -> Vec<(String, String, String)> {
        v["determining"]
            .as_array()
            .unwrap_or_else(|| panic!("`determining` must be an array: {v}"))
            .iter()
            .map(|s| {
                let f = |k: &str| s[k].as_str().unwrap_or("").to_owned();
                (f("policy"), f("sid"), f("effect"))
            })
            .collect()
    };
    assert_eq!(determining(&lines[0]), [sref("identity/0", "A", "Allow")]);
    assert_eq!(determining(&lines[1]), [sref("scp/0", "OnlyVpn", "Deny")]);
    assert!(determining(&lines[2]).is_empty());
    for (i, what) in [(3, "Effect"), (4, "line 6"), (6, "request.principal")] {
        let err = lines[i]["error"].as_str().unwrap_or("");
        assert!(err.contains(what), "the error of line {} must mention `{what}`: {}", i + 1, lines[i]);
    }
}

#[test]
fn eval_cases_reads_a_file_of_json_lines() {
    let tmp = support::temp_dir();
    let file = tmp.path().join("cases.jsonl");
    std::fs::write(&file, CASES).expect("write cases");
    let out = support::warden([Path::new("eval"), Path::new("--cases"), &file]);
    check_cases_output(&out);
}

#[test]
fn eval_cases_reads_stdin() {
    let out = support::warden_stdin(["eval", "--cases", "-"], CASES);
    check_cases_output(&out);
}

#[test]
fn eval_cases_keeps_non_string_ids() {
    let line = r#"{"id": 7, "policies": {"identity": []}, "request": {"principal": "arn:aws:iam::111122223333:user/alice", "action": "s3:GetObject", "resource": "arn:aws:s3:::b/k"}}"#;
    let out = support::warden_stdin(["eval", "--cases", "-"], line);
    assert_eq!(out.code, 0, "{}", out.dump());
    let v = parse_json(out.stdout.trim(), &out);
    assert_eq!(v["id"], json!("7"), "{v}");
    assert_eq!(v["decision"], json!("ImplicitDeny"), "{v}");
}

#[test]
fn eval_cases_survives_hostile_lines() {
    let ok = r#"{"id": "ok", "policies": {"identity": []}, "request": {"principal": "arn:aws:iam::111122223333:user/alice", "action": "s3:GetObject", "resource": "arn:aws:s3:::b/k"}}"#;
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    let deep_policy = format!(r#"{{"id": "deep", "policies": {{"identity": [{deep}]}}}}"#);
    let input = format!("{deep}\n{deep_policy}\n[1, 2]\n{ok}\n");
    let out = support::warden_stdin(["eval", "--cases", "-"], &input);
    assert_eq!(out.code, 1, "three rows are `Error`:\n{}", out.dump());
    let decisions: Vec<String> =
        out.stdout.lines().map(|l| parse_json(l, &out)["decision"].as_str().unwrap_or("").to_owned()).collect();
    assert_eq!(decisions, ["Error", "Error", "Error", "ImplicitDeny"], "{}", out.dump());
}

#[test]
fn eval_cases_goes_on_after_a_non_utf8_line() {
    let tmp = support::temp_dir();
    let file = tmp.path().join("cases.jsonl");
    let case = |id: &str| {
        format!(
            r#"{{"id": "{id}", "policies": {{"identity": []}}, "request": {{"principal": "arn:aws:iam::111122223333:user/alice", "action": "s3:GetObject", "resource": "arn:aws:s3:::b/k"}}}}"#
        )
    };
    let mut bytes = case("a").into_bytes();
    bytes.extend_from_slice(b"\n\xff\xfe not text\n");
    bytes.extend_from_slice(case("b").as_bytes());
    bytes.push(b'\n');
    std::fs::write(&file, bytes).expect("write cases");
    let out = support::warden([Path::new("eval"), Path::new("--cases"), &file]);
    assert_eq!(out.code, 1, "the non-UTF-8 row is `Error`:\n{}", out.dump());
    let got: Vec<(String, String)> = out
        .stdout
        .lines()
        .map(|l| {
            let v = parse_json(l, &out);
            (v["id"].as_str().unwrap_or("").to_owned(), v["decision"].as_str().unwrap_or("").to_owned())
        })
        .collect();
    let want = [("a", "ImplicitDeny"), ("", "Error"), ("b", "ImplicitDeny")].map(|(i, d)| (i.to_owned(), d.to_owned()));
    assert_eq!(got, want, "{}", out.dump());
}

// --- test -----------------------------------------------------------------------------------

fn case(name: &str, principal: &str, action: &str, resource: &str, decision: &str) -> Value {
    json!({
        "name": name,
        "authorize": {"principal": {"arn": principal}, "action": action, "resource": resource},
        "expect": {"decision": decision},
    })
}

fn bundle_with_tests(cases: &[Value]) -> tempfile::TempDir {
    let b = small_bundle();
    let text = serde_json::to_string_pretty(&json!({"cases": cases})).expect("serialize");
    support::write_file(b.path(), "tests/cases.json", text.as_bytes());
    b
}

fn run_tests(dir: &Path) -> Output {
    support::warden([Path::new("test"), dir])
}

#[test]
fn test_passes_when_every_case_passes() {
    let mut with_determining =
        case("no_bucket_deletion", ALICE_ARN, "s3:DeleteBucket", "arn:aws:s3:::data", "EXPLICIT_DENY");
    with_determining["expect"]["determining"] =
        json!([{"policy": "user/alice/inline/DeveloperAccess", "sid": "NoBucketDeletion"}]);
    let b = bundle_with_tests(&[
        case("alice_reads_s3", ALICE_ARN, "s3:GetObject", "arn:aws:s3:::data/k", "ALLOW"),
        with_determining,
        case("no_ec2", ALICE_ARN, "ec2:RunInstances", "*", "EXPLICIT_DENY"),
        case("no_iam", ALICE_ARN, "iam:CreateUser", "*", "IMPLICIT_DENY"),
        case("alice_assumes_exec", ALICE_ARN, "sts:AssumeRole", ROLE_EXEC, "ALLOW"),
    ]);
    let out = run_tests(b.path());
    assert_eq!(out.code, 0, "{}", out.dump());
    assert!(out.stdout.lines().any(|l| l == "5 passed, 0 failed"), "expected `5 passed, 0 failed`:\n{}", out.dump());
}

#[test]
fn test_fails_when_a_case_fails() {
    let b = bundle_with_tests(&[
        case("alice_reads_s3", ALICE_ARN, "s3:GetObject", "arn:aws:s3:::data/k", "ALLOW"),
        case("wrongly_expects_allow", ALICE_ARN, "ec2:RunInstances", "*", "ALLOW"),
    ]);
    let out = run_tests(b.path());
    assert_ne!(out.code, 0, "a failing case must fail the run:\n{}", out.dump());
    assert_ne!(out.code, 64, "a failing case is not a usage error:\n{}", out.dump());
    assert!(out.stdout.lines().any(|l| l == "1 passed, 1 failed"), "expected `1 passed, 1 failed`:\n{}", out.dump());
    assert!(out.stdout.contains("wrongly_expects_allow"), "the failing case must be named:\n{}", out.dump());
}

#[test]
fn test_fails_on_an_invalid_bundle() {
    let b = bundle_with_tests(&[case("alice_reads_s3", ALICE_ARN, "s3:GetObject", "arn:aws:s3:::data/k", "ALLOW")]);
    support::write_file(b.path(), "iam/policies/Broken.json", b"{");
    let out = run_tests(b.path());
    assert_eq!(out.code, 1, "{}", out.dump());
    assert!(out.stderr.contains("iam/policies/Broken.json: /: malformed JSON"), "{}", out.dump());
}

// --- usage errors ---------------------------------------------------------------------------

#[test]
fn usage_errors_exit_64() {
    let cases: &[&[&str]] = &[
        &["frobnicate"],
        &[],
        &["eval"],
        &["eval", "--request", "-", "--cases", "-"],
        &["validate", "--no-such-flag"],
        &["validate", "a", "b"],
    ];
    let mut failures = Vec::new();
    for args in cases {
        let out = support::warden(*args);
        if out.code != 64 || out.stderr.trim().is_empty() {
            failures.push(format!("warden {}: expected exit 64 with a message:\n{}", args.join(" "), out.dump()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn help_and_version_exit_0() {
    for args in [["--help"], ["--version"]] {
        let out = support::warden(args);
        assert_eq!(out.code, 0, "{}", out.dump());
        assert!(!out.stdout.trim().is_empty(), "{}", out.dump());
    }
}

// --- the default bundle ----------------------------------------------------------------------

#[test]
fn default_bundle_validates_and_its_own_tests_pass() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let v = support::warden_in(root, ["validate", "policies"], "");
    assert_eq!(v.code, 0, "{}", v.dump());
    assert!(support::is_revision(&support::revision_in(&v)), "{}", v.dump());
    let t = support::warden_in(root, ["test", "policies"], "");
    assert_eq!(t.code, 0, "{}", t.dump());
    let last = t.stdout.lines().last().unwrap_or_default().to_owned();
    let passed: usize = last
        .strip_suffix(" passed, 0 failed")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("`{last}` is not `N passed, 0 failed`"));
    assert!(passed >= 40, "{passed} cases");
}

#[test]
fn embedded_default_bundle_is_the_policies_directory() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let on_disk = warden::runtime::files::read_dir(&root.join("policies")).expect("policies/ loads");
    let embedded = warden::runtime::files::embedded().expect("embedded bundle loads");
    assert_eq!(on_disk.revision, embedded.revision);
}

// --- iam/authorization-details.json ------------------------------------------------------------

/// Percent-encodes like the raw IAM API (RFC 3986 unreserved characters kept).
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn authorization_details_output_is_a_bundle() {
    let doc = |sid: &str, effect: &str, action: &str| json!({"Version": "2012-10-17", "Statement": [{"Sid": sid, "Effect": effect, "Action": action, "Resource": "*"}]});
    let enc = |v: &Value| Value::String(url_encode(&v.to_string()));
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Sid": "", "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "sts:AssumeRole"}]});
    let details = json!({
        "UserDetailList": [{"UserName": "carol", "UserId": "AIDAEXAMPLECAROL00001", "Arn": "arn:aws:iam::111122223333:user/carol",
            "GroupList": ["Readers"], "UserPolicyList": [{"PolicyName": "Own", "PolicyDocument": enc(&doc("Inline", "Allow", "s3:PutObject"))}],
            "AttachedManagedPolicies": [], "Tags": []}],
        "GroupDetailList": [{"GroupName": "Readers", "GroupId": "AGPAEXAMPLE", "Arn": "arn:aws:iam::111122223333:group/Readers",
            "GroupPolicyList": [],
            // The AWS CLI example prints this list as an object once: accepted as a one-element list.
            "AttachedManagedPolicies": {"PolicyName": "Read", "PolicyArn": "arn:aws:iam::111122223333:policy/Read"}}],
        "RoleDetailList": [{"RoleName": "Exec", "RoleId": "AROAEXAMPLEEXEC000001", "Arn": "arn:aws:iam::111122223333:role/Exec",
            "AssumeRolePolicyDocument": enc(&trust), "RolePolicyList": [], "AttachedManagedPolicies": [], "Tags": []}],
        "Policies": [{"PolicyName": "Read", "Arn": "arn:aws:iam::111122223333:policy/Read", "DefaultVersionId": "v2",
            "PolicyVersionList": [
                {"VersionId": "v2", "IsDefaultVersion": true, "Document": enc(&doc("ReadV2", "Allow", "s3:GetObject"))},
                {"VersionId": "v1", "IsDefaultVersion": false, "Document": doc("OldV1", "Allow", "s3:*")}]}]
    });
    let dir = support::bundle_in_temp(&[("iam/authorization-details.json", &details.to_string())]);
    let carol = "arn:aws:iam::111122223333:user/carol";
    let get = response(&eval_file(dir.path(), &request(carol, "s3:GetObject", "arn:aws:s3:::b/k")));
    assert_eq!(get.0, "ALLOW");
    assert_eq!(get.1, vec![sref("policy/Read", "ReadV2", "Allow")]);
    let put = response(&eval_file(dir.path(), &request(carol, "s3:PutObject", "arn:aws:s3:::b/k")));
    assert_eq!((put.0.as_str(), put.1.clone()), ("ALLOW", vec![sref("user/carol/inline/Own", "Inline", "Allow")]));
    // Only the default version is in force: v1's s3:* does not apply.
    let del = response(&eval_file(dir.path(), &request(carol, "s3:DeleteObject", "arn:aws:s3:::b/k")));
    assert_eq!(del.0, "IMPLICIT_DENY");
    // The URL-encoded trust policy trusts the account: carol also needs an identity allow.
    let assume =
        response(&eval_file(dir.path(), &request(carol, "sts:AssumeRole", "arn:aws:iam::111122223333:role/Exec")));
    assert_eq!(assume.0, "IMPLICIT_DENY");
}

// --- no silent fall-back to the embedded bundle; `serve --demo` ---------------------------------

#[test]
fn validate_without_a_directory_uses_policies_and_refuses_when_it_is_missing() {
    let cwd = support::temp_dir();
    let out = support::warden_in(cwd.path(), ["validate"], "");
    assert_ne!(out.code, 0, "validate with no bundle and no policies/: {}", out.dump());
    assert!(out.stderr.contains("policies") && out.stderr.contains("does not exist"), "{}", out.dump());
    assert!(!out.stdout.contains("valid"), "nothing was validated: {}", out.dump());
    // With `policies/` in the working directory, that is the bundle.
    support::write_files(&cwd.path().join("policies"), &small_bundle_files());
    let out = support::warden_in(cwd.path(), ["validate"], "");
    assert_eq!(out.code, 0, "{}", out.dump());
    assert!(out.stdout.starts_with("policies: valid"), "{}", out.dump());
    assert_eq!(support::revision_in(&out), valid_revision(&cwd.path().join("policies")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_without_a_bundle_refuses_when_policies_is_missing_and_demo_runs_the_embedded_bundle() {
    let cwd = support::temp_dir();
    let mut child = support::ServeChild::spawn(
        cwd.path(),
        ["serve", "--listen", "127.0.0.1:0", "--admin-listen", "off"],
        &cwd.path().join("serve.log"),
    );
    let Some(status) = child.exit_within(std::time::Duration::from_secs(10)).await else {
        panic!("warden serve with no bundle and no policies/ is still running after 10 s:\n{}", child.log());
    };
    assert!(!status.success(), "{status}:\n{}", child.log());
    let log = child.log();
    assert!(log.contains("policies") && log.contains("does not exist") && log.contains("--demo"), "{log}");

    // `--demo` serves the embedded example bundle, and says so.
    let embedded = warden::runtime::files::embedded().expect("the embedded bundle loads").revision;
    let mut child = support::ServeChild::spawn(
        cwd.path(),
        ["serve", "--demo", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"],
        &cwd.path().join("demo.log"),
    );
    let admin = child.logged_addr("admin HTTP listening").await;
    let started = std::time::Instant::now();
    loop {
        let r = support::http_get(admin, "/readyz").await;
        if r.status == 200 {
            assert!(r.body.contains(&embedded), "{r:?}");
            break;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "not ready:\n{}", child.log());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let status = support::http_get(admin, "/v1/status").await.body;
    assert!(status.contains("embedded"), "{status}");
    child.kill_9();

    // `--demo` and `--bundle` together are a usage error.
    let out = support::warden_in(cwd.path(), ["serve", "--demo", "--bundle", "x"], "");
    assert_eq!(out.code, 64, "{}", out.dump());
}

// --- validate --state-dir -------------------------------------------------------------------------

/// `warden validate DIR --state-dir S` refuses what `serve` on that state would refuse: a change of a
/// fiddler app's admin users, naming file, field, both lists and the remedy. It only reads the state:
/// no lock is taken (it runs while a server holds it), nothing is written.
#[test]
fn validate_with_state_dir_refuses_a_fiddler_admin_change_with_the_full_message() {
    use crate::propagate::{COMET_FILE, FIDDLER, FIDDLER_FILE, comet_json, fiddler_json, write_bundle};
    let bundle = write_bundle();
    let state_tmp = support::temp_dir();
    let state = state_tmp.path();
    // The state a server on this bundle writes: fiddler's admins are [bob].
    let b = warden::runtime::files::read_dir(bundle.path()).expect("the bundle loads");
    let memory = warden::identity::AdminMemory::default().transition(&b).expect("first sight");
    let admins = state.join("admins.json");
    std::fs::write(&admins, serde_json::to_vec_pretty(&memory).expect("JSON")).expect("write admins.json");
    let before = std::fs::read(&admins).expect("admins.json");
    let entries = || {
        let mut v: Vec<String> = std::fs::read_dir(state)
            .expect("ls")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into())
            .collect();
        v.sort();
        v
    };
    let validate_against = |dir: &Path| support::warden([Path::new("validate"), dir, Path::new("--state-dir"), state]);

    let out = validate_against(bundle.path());
    assert_eq!(out.code, 0, "the same lists: {}", out.dump());
    // Comet may change its admins.
    support::write_file(bundle.path(), COMET_FILE, comet_json(&["alice"]).as_bytes());
    let out = validate_against(bundle.path());
    assert_eq!(out.code, 0, "a comet change: {}", out.dump());

    support::write_file(bundle.path(), FIDDLER_FILE, fiddler_json(&["carol"]).as_bytes());
    let out = support::warden([Path::new("validate"), bundle.path()]);
    assert_eq!(out.code, 0, "without --state-dir there is nothing to compare with: {}", out.dump());
    let out = validate_against(bundle.path());
    eprintln!("{}", out.stderr);
    assert_eq!(out.code, 1, "{}", out.dump());
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with(&format!("{FIDDLER_FILE}: ApplicationConfig.AdminUsers: ")))
        .unwrap_or_else(|| panic!("no line naming the file and field:\n{}", out.dump()));
    for needle in [
        "Fiddler",
        FIDDLER,
        "fiddler",
        "was [bob]",
        "now [carol]",
        "restore the list, or remove the app from the bundle and add it again (its remembered admins are then forgotten)",
    ] {
        assert!(line.contains(needle), "`{needle}` missing from: {line}");
    }
    assert!(out.stderr.contains("1 problem found"), "{}", out.dump());
    assert_eq!(entries(), ["admins.json"], "validate wrote into the state directory");
    assert_eq!(std::fs::read(&admins).expect("admins.json"), before);

    // The same while a server holds the state directory's lock.
    let held = warden::runtime::state::StateDir::open(state).expect("lock the state directory");
    let again = validate_against(bundle.path());
    assert_eq!((again.code, again.stderr.as_str()), (1, out.stderr.as_str()), "{}", again.dump());
    drop(held);
    assert_eq!(std::fs::read(&admins).expect("admins.json"), before);

    // A state directory that does not exist is an error, not an empty state.
    let out = support::warden([Path::new("validate"), bundle.path(), Path::new("--state-dir"), &state.join("nope")]);
    assert_ne!(out.code, 0, "{}", out.dump());
    assert!(out.stderr.contains("nope"), "{}", out.dump());
}

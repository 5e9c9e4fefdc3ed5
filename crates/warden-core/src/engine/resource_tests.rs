//! Resource-based policies of any resource (SPEC §4 step 3, §4.1): bucket policies over a bucket and
//! its objects, cross-account resources, and KMS key policies that must allow. The rules are proven
//! through the case format (the `resource` slot is the resource's policy) and again against a bundle
//! with `resource-policies/`.
use super::*;
use crate::bundle;
use serde_json::{Value, json};

const ALICE: &str = "arn:aws:iam::111122223333:user/alice";
const BOB: &str = "arn:aws:iam::111122223333:user/bob";
const SESSION: &str = "arn:aws:sts::111122223333:assumed-role/Exec/alice";
const ROLE: &str = "arn:aws:iam::111122223333:role/Exec";
const ROOT: &str = "arn:aws:iam::111122223333:root";
const BUCKET: &str = "arn:aws:s3:::shared";
const OBJECT: &str = "arn:aws:s3:::shared/doc.csv";
const QUEUE: &str = "arn:aws:sqs:us-east-1:444455556666:jobs";
const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const OTHER_KEY: &str = "arn:aws:kms:us-east-1:444455556666:key/0000abcd-12ab-34cd-56ef-1234567890ab";
const ALIAS: &str = "arn:aws:kms:us-east-1:111122223333:alias/studio";

fn allow(sid: &str, action: &str, resource: &str) -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Sid": sid, "Effect": "Allow", "Action": action, "Resource": resource}]})
}
fn deny(sid: &str, action: &str, resource: &str) -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Sid": sid, "Effect": "Deny", "Action": action, "Resource": resource}]})
}
/// A resource policy with one statement of `effect` for `principal` (an `AWS` ARN, or `*`).
fn rp(sid: &str, effect: &str, principal: &str, action: &str) -> Value {
    let principal = if principal == "*" { json!("*") } else { json!({"AWS": principal}) };
    json!({"Version": "2012-10-17", "Statement": [{"Sid": sid, "Effect": effect, "Principal": principal, "Action": action, "Resource": "*"}]})
}

struct Row {
    name: &'static str,
    policies: Value,
    principal: &'static str,
    action: &'static str,
    resource: &'static str,
    decision: Decision,
    determining: &'static [(&'static str, &'static str)],
    /// A substring of the first diagnostic, when it matters.
    why: &'static str,
}

fn check(rows: &[Row]) {
    let mut failures = Vec::new();
    for r in rows {
        let case = json!({"id": r.name, "policies": r.policies,
            "request": {"principal": r.principal, "action": r.action, "resource": r.resource}});
        match simulate(&case, 1_700_000_000_000).result {
            Err(e) => failures.push(format!("{}: error {e}", r.name)),
            Ok(resp) => {
                let got: Vec<(String, String)> =
                    resp.determining.iter().map(|s| (s.policy.to_string(), s.sid.to_string())).collect();
                let want: Vec<(String, String)> =
                    r.determining.iter().map(|(p, s)| ((*p).to_owned(), (*s).to_owned())).collect();
                let why_ok = resp.diagnostics.first().is_some_and(|d| d.contains(r.why)) || r.why.is_empty();
                if resp.decision != r.decision || got != want || !why_ok {
                    failures.push(format!(
                        "{}: got {:?} {:?} {:?}, want {:?} {:?} `{}`",
                        r.name, resp.decision, got, resp.diagnostics, r.decision, want, r.why
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn resource_policies_of_any_resource() {
    use Decision::*;
    let rows = vec![
        Row {
            name: "bucket_policy_naming_the_user_allows_without_identity_policy",
            policies: json!({"resource": rp("R", "Allow", ALICE, "s3:GetObject")}),
            principal: ALICE,
            action: "s3:GetObject",
            resource: OBJECT,
            decision: Allow,
            determining: &[("resource", "R")],
            why: "",
        },
        Row {
            name: "bucket_policy_naming_only_the_account_delegates_to_identity_policies",
            policies: json!({"resource": rp("R", "Allow", ROOT, "s3:GetObject")}),
            principal: ALICE,
            action: "s3:GetObject",
            resource: OBJECT,
            decision: ImplicitDeny,
            determining: &[],
            why: "no identity-based policy allows",
        },
        Row {
            name: "bucket_policy_naming_the_account_with_identity_allow",
            policies: json!({"resource": rp("R", "Allow", ROOT, "s3:GetObject"), "identity": [allow("A", "s3:GetObject", "*")]}),
            principal: ALICE,
            action: "s3:GetObject",
            resource: OBJECT,
            decision: Allow,
            determining: &[("identity/0", "A")],
            why: "",
        },
        Row {
            name: "explicit_deny_in_bucket_policy_beats_identity_allow",
            policies: json!({"resource": rp("D", "Deny", "*", "s3:*"), "identity": [allow("A", "s3:*", "*")]}),
            principal: ALICE,
            action: "s3:GetObject",
            resource: BUCKET,
            decision: ExplicitDeny,
            determining: &[("resource", "D")],
            why: "",
        },
        Row {
            name: "scp_still_limits_a_bucket_policy_grant",
            policies: json!({"resource": rp("R", "Allow", ALICE, "s3:GetObject"), "scp": [deny("S", "s3:*", "*")]}),
            principal: ALICE,
            action: "s3:GetObject",
            resource: OBJECT,
            decision: ExplicitDeny,
            determining: &[("scp/0", "S")],
            why: "",
        },
        Row {
            name: "cross_account_queue_both_sides_allow",
            policies: json!({"resource": rp("R", "Allow", ALICE, "sqs:SendMessage"), "identity": [allow("A", "sqs:SendMessage", QUEUE)]}),
            principal: ALICE,
            action: "sqs:SendMessage",
            resource: QUEUE,
            decision: Allow,
            determining: &[("resource", "R"), ("identity/0", "A")],
            why: "",
        },
        Row {
            name: "cross_account_queue_resource_side_only_is_denied",
            policies: json!({"resource": rp("R", "Allow", ALICE, "sqs:SendMessage")}),
            principal: ALICE,
            action: "sqs:SendMessage",
            resource: QUEUE,
            decision: ImplicitDeny,
            determining: &[],
            why: "cross-account request: no identity-based policy",
        },
        Row {
            name: "cross_account_queue_identity_side_only_is_denied",
            policies: json!({"resource": rp("R", "Allow", "arn:aws:iam::999988887777:root", "sqs:SendMessage"), "identity": [allow("A", "sqs:SendMessage", QUEUE)]}),
            principal: ALICE,
            action: "sqs:SendMessage",
            resource: QUEUE,
            decision: ImplicitDeny,
            determining: &[],
            why: "cross-account request: no resource-based policy",
        },
        Row {
            name: "cross_account_queue_trusting_the_principal_s_account",
            policies: json!({"resource": rp("R", "Allow", ROOT, "sqs:SendMessage"), "identity": [allow("A", "sqs:SendMessage", QUEUE)]}),
            principal: ALICE,
            action: "sqs:SendMessage",
            resource: QUEUE,
            decision: Allow,
            determining: &[("resource", "R"), ("identity/0", "A")],
            why: "",
        },
        Row {
            name: "kms_key_policy_naming_the_user_allows_without_identity_policy",
            policies: json!({"resource": rp("K", "Allow", ALICE, "kms:Decrypt")}),
            principal: ALICE,
            action: "kms:Decrypt",
            resource: KEY,
            decision: Allow,
            determining: &[("resource", "K")],
            why: "",
        },
        Row {
            name: "kms_key_policy_trusting_the_account_with_identity_allow",
            policies: json!({"resource": rp("K", "Allow", ROOT, "kms:*"), "identity": [allow("A", "kms:Decrypt", KEY)]}),
            principal: ALICE,
            action: "kms:Decrypt",
            resource: KEY,
            decision: Allow,
            determining: &[("resource", "K"), ("identity/0", "A")],
            why: "",
        },
        Row {
            name: "kms_key_policy_trusting_the_account_without_identity_allow",
            policies: json!({"resource": rp("K", "Allow", ROOT, "kms:*")}),
            principal: ALICE,
            action: "kms:Decrypt",
            resource: KEY,
            decision: ImplicitDeny,
            determining: &[],
            why: "the key policy trusts only the account",
        },
        Row {
            name: "kms_identity_policy_alone_never_suffices",
            policies: json!({"resource": rp("K", "Allow", BOB, "kms:*"), "identity": [allow("A", "kms:*", "*")]}),
            principal: ALICE,
            action: "kms:Decrypt",
            resource: KEY,
            decision: ImplicitDeny,
            determining: &[],
            why: "the key policy does not allow the principal",
        },
        Row {
            name: "kms_key_without_a_key_policy_is_implicitly_denied",
            policies: json!({"identity": [allow("A", "kms:*", "*")]}),
            principal: ALICE,
            action: "kms:Decrypt",
            resource: KEY,
            decision: ImplicitDeny,
            determining: &[],
            why: "has no key policy here",
        },
        // Regression (managed-policy differential, KM-1): the missing key policy was decided before the
        // statements, so an identity policy's Deny on the key was never reported.
        Row {
            name: "kms_key_without_a_key_policy_still_reports_an_explicit_deny",
            policies: json!({"identity": [allow("A", "kms:*", "*"), deny("NoRotationOff", "kms:DisableKeyRotation", "*")]}),
            principal: ALICE,
            action: "kms:DisableKeyRotation",
            resource: KEY,
            decision: ExplicitDeny,
            determining: &[("identity/1", "NoRotationOff")],
            why: "",
        },
        Row {
            name: "kms_alias_still_reports_an_explicit_deny",
            policies: json!({"identity": [deny("NoAlias", "kms:Decrypt", "*")]}),
            principal: ALICE,
            action: "kms:Decrypt",
            resource: ALIAS,
            decision: ExplicitDeny,
            determining: &[("identity/0", "NoAlias")],
            why: "",
        },
        Row {
            name: "kms_key_policy_naming_the_role_is_limited_by_the_boundary",
            policies: json!({"resource": rp("K", "Allow", ROLE, "kms:Decrypt"), "boundary": allow("B", "s3:*", "*")}),
            principal: SESSION,
            action: "kms:Decrypt",
            resource: KEY,
            decision: ImplicitDeny,
            determining: &[],
            why: "the permissions boundary does not allow",
        },
        Row {
            name: "kms_key_policy_naming_the_role_allows_its_sessions",
            policies: json!({"resource": rp("K", "Allow", ROLE, "kms:Decrypt")}),
            principal: SESSION,
            action: "kms:Decrypt",
            resource: KEY,
            decision: Allow,
            determining: &[("resource", "K")],
            why: "",
        },
        Row {
            name: "kms_explicit_deny_in_key_policy",
            policies: json!({"resource": {"Version": "2012-10-17", "Statement": [
                {"Sid": "K", "Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"},
                {"Sid": "NoDelete", "Effect": "Deny", "Principal": "*", "Action": "kms:ScheduleKeyDeletion", "Resource": "*"}]},
                "identity": [allow("A", "kms:*", "*")]}),
            principal: ALICE,
            action: "kms:ScheduleKeyDeletion",
            resource: KEY,
            decision: ExplicitDeny,
            determining: &[("resource", "NoDelete")],
            why: "",
        },
        Row {
            name: "kms_cross_account_key_trusting_the_principal_s_account_with_identity_allow",
            policies: json!({"resource": rp("K", "Allow", ROOT, "kms:Decrypt"), "identity": [allow("A", "kms:Decrypt", OTHER_KEY)]}),
            principal: ALICE,
            action: "kms:Decrypt",
            resource: OTHER_KEY,
            decision: Allow,
            determining: &[("resource", "K"), ("identity/0", "A")],
            why: "",
        },
        Row {
            name: "kms_cross_account_key_naming_the_user_without_identity_allow",
            policies: json!({"resource": rp("K", "Allow", ALICE, "kms:Decrypt")}),
            principal: ALICE,
            action: "kms:Decrypt",
            resource: OTHER_KEY,
            decision: ImplicitDeny,
            determining: &[],
            why: "cross-account request: no identity-based policy",
        },
        Row {
            name: "kms_request_on_an_alias_is_denied_conservatively",
            policies: json!({"resource": rp("K", "Allow", ALICE, "kms:*"), "identity": [allow("A", "kms:*", "*")]}),
            principal: ALICE,
            action: "kms:Decrypt",
            resource: ALIAS,
            decision: ImplicitDeny,
            determining: &[],
            why: "is a KMS alias",
        },
        Row {
            name: "kms_alias_management_is_decided_by_identity_policies",
            policies: json!({"identity": [allow("A", "kms:CreateAlias", ALIAS)]}),
            principal: ALICE,
            action: "kms:CreateAlias",
            resource: ALIAS,
            decision: Allow,
            determining: &[("identity/0", "A")],
            why: "",
        },
        Row {
            name: "kms_action_on_no_key_is_decided_by_identity_policies",
            policies: json!({"identity": [allow("A", "kms:ListKeys", "*")]}),
            principal: ALICE,
            action: "kms:ListKeys",
            resource: "*",
            decision: Allow,
            determining: &[("identity/0", "A")],
            why: "",
        },
        Row {
            name: "role_trust_policy_rules_are_unchanged",
            policies: json!({"resource": rp("T", "Allow", ROOT, "sts:AssumeRole")}),
            principal: ALICE,
            action: "sts:AssumeRole",
            resource: ROLE,
            decision: ImplicitDeny,
            determining: &[],
            why: "the role's trust policy trusts only the account",
        },
    ];
    check(&rows);
}

// === Against a bundle with `resource-policies/` ===

fn bundle_with(files: &[(&str, Value)]) -> bundle::Bundle {
    let files = files.iter().map(|(p, v)| ((*p).to_owned(), serde_json::to_vec(v).unwrap())).collect();
    bundle::from_files(files).unwrap_or_else(|e| panic!("{e:?}"))
}

fn resource_bundle() -> bundle::Bundle {
    bundle_with(&[
        (
            "iam/users/alice.json",
            json!({"UserName": "alice", "Arn": ALICE, "UserPolicyList": [{"PolicyName": "P", "PolicyDocument":
                {"Version": "2012-10-17", "Statement": [{"Sid": "S3", "Effect": "Allow", "Action": "s3:*", "Resource": "*"},
                                                        {"Sid": "Kms", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}]}}]}),
        ),
        ("iam/users/bob.json", json!({"UserName": "bob", "Arn": BOB})),
        (
            "resource-policies/shared-bucket.json",
            json!({"ResourceArn": BUCKET, "Policy": json!({"Version": "2012-10-17", "Statement": [
                {"Sid": "BobReads", "Effect": "Allow", "Principal": {"AWS": BOB}, "Action": ["s3:GetObject", "s3:ListBucket"],
                 "Resource": [BUCKET, "arn:aws:s3:::shared/*"]},
                {"Sid": "NoSecrets", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::shared/secret/*"}]}).to_string()}),
        ),
        (
            "resource-policies/studio-key.json",
            json!({"ResourceArn": KEY, "PolicyName": "default", "Policy": {"Version": "2012-10-17", "Statement": [
                {"Sid": "EnableIamPolicies", "Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"},
                {"Sid": "BobDecrypts", "Effect": "Allow", "Principal": {"AWS": BOB}, "Action": "kms:Decrypt", "Resource": "*"}]}}),
        ),
    ])
}

fn ask(b: &bundle::Bundle, principal: &str, action: &str, resource: &str) -> Response {
    let r = Request {
        principal: principal.into(),
        action: action.into(),
        resource: resource.into(),
        now_ms: 1_700_000_000_000,
        ..Request::default()
    };
    authorize(b, &r)
}

#[test]
fn bundle_resource_policies_govern_their_resources() {
    use Decision::*;
    let b = resource_bundle();
    let bucket_policy = format!("resource-policy/{BUCKET}");
    let key_policy = format!("resource-policy/{KEY}");
    type Expected<'a> = &'a [(&'a str, &'a str)];
    let rows: &[(&str, &str, &str, &str, Decision, Expected<'_>)] = &[
        ("bucket_policy_governs_its_objects", BOB, "s3:GetObject", OBJECT, Allow, &[(&bucket_policy, "BobReads")]),
        ("bucket_policy_governs_the_bucket", BOB, "s3:ListBucket", BUCKET, Allow, &[(&bucket_policy, "BobReads")]),
        ("bucket_policy_grants_only_what_it_says", BOB, "s3:PutObject", OBJECT, ImplicitDeny, &[]),
        ("another_bucket_is_not_governed", BOB, "s3:GetObject", "arn:aws:s3:::shared-other/doc.csv", ImplicitDeny, &[]),
        (
            "bucket_policy_deny_beats_identity_allow",
            ALICE,
            "s3:GetObject",
            "arn:aws:s3:::shared/secret/k",
            ExplicitDeny,
            &[(&bucket_policy, "NoSecrets")],
        ),
        (
            "identity_allow_still_works_beside_a_bucket_policy",
            ALICE,
            "s3:GetObject",
            OBJECT,
            Allow,
            &[("user/alice/inline/P", "S3")],
        ),
        (
            "key_policy_trusting_the_account_and_identity_allow",
            ALICE,
            "kms:Decrypt",
            KEY,
            Allow,
            &[(&key_policy, "EnableIamPolicies"), ("user/alice/inline/P", "Kms")],
        ),
        // Every matching Allow of a required layer is listed (the account-wide one applies to bob too).
        (
            "key_policy_naming_the_user",
            BOB,
            "kms:Decrypt",
            KEY,
            Allow,
            &[(&key_policy, "EnableIamPolicies"), (&key_policy, "BobDecrypts")],
        ),
        ("key_policy_trusting_the_account_without_identity_allow", BOB, "kms:Encrypt", KEY, ImplicitDeny, &[]),
        (
            "key_without_a_key_policy",
            ALICE,
            "kms:Decrypt",
            "arn:aws:kms:us-east-1:111122223333:key/unknown",
            ImplicitDeny,
            &[],
        ),
    ];
    let mut failures = Vec::new();
    for (name, principal, action, resource, decision, determining) in rows {
        let resp = ask(&b, principal, action, resource);
        let got: Vec<(String, String)> =
            resp.determining.iter().map(|s| (s.policy.to_string(), s.sid.to_string())).collect();
        let want: Vec<(String, String)> = determining.iter().map(|(p, s)| ((*p).to_owned(), (*s).to_owned())).collect();
        if resp.decision != *decision || got != want {
            failures.push(format!(
                "{name}: got {:?} {got:?} {:?}, want {decision:?} {want:?}",
                resp.decision, resp.diagnostics
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let resp = ask(&b, ALICE, "kms:Decrypt", "arn:aws:kms:us-east-1:111122223333:key/unknown");
    assert_eq!(
        resp.diagnostics,
        ["KMS key `arn:aws:kms:us-east-1:111122223333:key/unknown` has no key policy here: a key policy must allow \
          the request (identity policies alone never suffice)"]
    );
}

/// The index and the scan of every policy agree on resource policies too.
#[test]
fn bundle_resource_policies_are_the_same_with_and_without_the_index() {
    let b = resource_bundle();
    for principal in [ALICE, BOB] {
        for action in ["s3:GetObject", "s3:ListBucket", "kms:Decrypt", "kms:Encrypt"] {
            for resource in [BUCKET, OBJECT, "arn:aws:s3:::shared/secret/k", KEY] {
                let r = Request {
                    principal: principal.into(),
                    action: action.into(),
                    resource: resource.into(),
                    now_ms: 1_700_000_000_000,
                    ..Request::default()
                };
                assert_eq!(
                    authorize_with(&b, &r, true),
                    authorize_with(&b, &r, false),
                    "{principal} {action} {resource}"
                );
            }
        }
    }
}

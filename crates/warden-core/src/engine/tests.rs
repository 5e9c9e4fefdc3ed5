//! Table-driven tests of the evaluation order (SPEC §4) through the case format, and of the keys Warden
//! derives in bundle mode. Each test is named after the rule it proves.
use super::*;
use crate::bundle;
use crate::policy::MapContext;
use serde_json::{Value, json};

const ALICE: &str = "arn:aws:iam::111122223333:user/alice";
const SESSION: &str = "arn:aws:sts::111122223333:assumed-role/Exec/alice";
const ROLE: &str = "arn:aws:iam::111122223333:role/Exec";
const BUCKET: &str = "arn:aws:s3:::bucket/key";

fn allow(sid: &str, action: &str, resource: &str) -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Sid": sid, "Effect": "Allow", "Action": action, "Resource": resource}]})
}
fn deny(sid: &str, action: &str, resource: &str) -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Sid": sid, "Effect": "Deny", "Action": action, "Resource": resource}]})
}
fn grant(sid: &str, principal: Value, action: &str) -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Sid": sid, "Effect": "Allow", "Principal": principal, "Action": action}]})
}

struct Row {
    name: &'static str,
    case: Value,
    decision: Decision,
    determining: &'static [(&'static str, &'static str)],
}

fn case(policies: Value, principal: &str, action: &str, resource: &str, context: Value) -> Value {
    json!({"id": "t", "policies": policies, "request": {"principal": principal, "action": action, "resource": resource, "context": context}})
}

fn check(rows: &[Row]) {
    let mut failures = Vec::new();
    for r in rows {
        let out = simulate(&r.case, 1_700_000_000_000);
        match out.result {
            Err(e) => failures.push(format!("{}: error {e}", r.name)),
            Ok(resp) => {
                let got: Vec<(String, String)> =
                    resp.determining.iter().map(|s| (s.policy.to_string(), s.sid.to_string())).collect();
                let want: Vec<(String, String)> =
                    r.determining.iter().map(|(p, s)| ((*p).to_owned(), (*s).to_owned())).collect();
                if resp.decision != r.decision || got != want {
                    failures.push(format!(
                        "{}: got {:?} {:?}, want {:?} {:?} ({:?})",
                        r.name, resp.decision, got, r.decision, want, resp.diagnostics
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn evaluation_order_rules() {
    use Decision::*;
    let rows = vec![
        Row {
            name: "explicit_deny_overrides_allow_in_identity_policy",
            case: case(
                json!({"identity": [allow("A", "s3:*", "*"), deny("D", "s3:GetObject", "*")]}),
                ALICE,
                "s3:GetObject",
                BUCKET,
                json!({}),
            ),
            decision: ExplicitDeny,
            determining: &[("identity/1", "D")],
        },
        Row {
            name: "every_matching_deny_is_determining",
            case: case(
                json!({"identity": [deny("D1", "s3:*", "*"), deny("D2", "*", "*")], "scp": [deny("S", "s3:Get*", "*")]}),
                ALICE,
                "s3:GetObject",
                BUCKET,
                json!({}),
            ),
            decision: ExplicitDeny,
            determining: &[("scp/0", "S"), ("identity/0", "D1"), ("identity/1", "D2")],
        },
        Row {
            name: "explicit_deny_in_boundary_wins",
            case: case(
                json!({"identity": [allow("A", "*", "*")], "boundary": deny("B", "s3:*", "*")}),
                ALICE,
                "s3:GetObject",
                BUCKET,
                json!({}),
            ),
            decision: ExplicitDeny,
            determining: &[("boundary", "B")],
        },
        Row {
            name: "explicit_deny_in_resource_policy_wins",
            case: case(
                json!({"identity": [allow("A", "*", "*")], "resource": {"Version": "2012-10-17", "Statement": [{"Sid": "R", "Effect": "Deny", "Principal": "*", "Action": "s3:*"}]}}),
                ALICE,
                "s3:GetObject",
                BUCKET,
                json!({}),
            ),
            decision: ExplicitDeny,
            determining: &[("resource", "R")],
        },
        Row {
            name: "absent_scp_means_no_scp_applies",
            case: case(
                json!({"identity": [allow("A", "s3:GetObject", "*")]}),
                ALICE,
                "s3:GetObject",
                BUCKET,
                json!({}),
            ),
            decision: Allow,
            determining: &[("identity/0", "A")],
        },
        Row {
            name: "empty_scp_list_means_scps_apply_and_none_allows",
            case: case(
                json!({"identity": [allow("A", "s3:GetObject", "*")], "scp": []}),
                ALICE,
                "s3:GetObject",
                BUCKET,
                json!({}),
            ),
            decision: ImplicitDeny,
            determining: &[],
        },
        Row {
            name: "scp_allow_is_required_and_determining",
            case: case(
                json!({"identity": [allow("A", "s3:GetObject", "*")], "scp": [allow("Full", "*", "*")]}),
                ALICE,
                "s3:GetObject",
                BUCKET,
                json!({}),
            ),
            decision: Allow,
            determining: &[("scp/0", "Full"), ("identity/0", "A")],
        },
        Row {
            name: "scp_allow_does_not_grant_without_identity_policy",
            case: case(
                json!({"identity": [], "scp": [allow("Full", "*", "*")]}),
                ALICE,
                "s3:GetObject",
                BUCKET,
                json!({}),
            ),
            decision: ImplicitDeny,
            determining: &[],
        },
        Row {
            name: "boundary_must_allow",
            case: case(
                json!({"identity": [allow("A", "*", "*")], "boundary": allow("B", "ec2:*", "*")}),
                ALICE,
                "s3:GetObject",
                BUCKET,
                json!({}),
            ),
            decision: ImplicitDeny,
            determining: &[],
        },
        Row {
            name: "boundary_and_identity_allow_lists_both",
            case: case(
                json!({"identity": [allow("A", "*", "*")], "boundary": allow("B", "s3:*", "*")}),
                ALICE,
                "s3:GetObject",
                BUCKET,
                json!({}),
            ),
            decision: Allow,
            determining: &[("boundary", "B"), ("identity/0", "A")],
        },
        Row {
            name: "boundary_alone_does_not_grant",
            case: case(
                json!({"identity": [], "boundary": allow("B", "s3:*", "*")}),
                ALICE,
                "s3:GetObject",
                BUCKET,
                json!({}),
            ),
            decision: ImplicitDeny,
            determining: &[],
        },
        Row {
            name: "resource_policy_naming_user_allows_without_identity_policy",
            case: case(
                json!({"identity": [], "resource": grant("R", json!({"AWS": ALICE}), "s3:GetObject")}),
                ALICE,
                "s3:GetObject",
                BUCKET,
                json!({}),
            ),
            decision: Allow,
            determining: &[("resource", "R")],
        },
        Row {
            name: "resource_policy_naming_user_is_not_limited_by_boundary",
            case: case(
                json!({"identity": [], "boundary": allow("B", "ec2:*", "*"), "resource": grant("R", json!({"AWS": ALICE}), "s3:GetObject")}),
                ALICE,
                "s3:GetObject",
                BUCKET,
                json!({}),
            ),
            decision: Allow,
            determining: &[("resource", "R")],
        },
        Row {
            name: "resource_policy_naming_session_is_not_limited_by_boundary",
            case: case(
                json!({"identity": [], "boundary": allow("B", "ec2:*", "*"), "resource": grant("R", json!({"AWS": SESSION}), "s3:GetObject")}),
                SESSION,
                "s3:GetObject",
                BUCKET,
                json!({}),
            ),
            decision: Allow,
            determining: &[("resource", "R")],
        },
        Row {
            name: "resource_policy_naming_role_is_limited_by_boundary",
            case: case(
                json!({"identity": [], "boundary": allow("B", "ec2:*", "*"), "resource": grant("R", json!({"AWS": ROLE}), "s3:GetObject")}),
                SESSION,
                "s3:GetObject",
                BUCKET,
                json!({}),
            ),
            decision: ImplicitDeny,
            determining: &[],
        },
        Row {
            name: "resource_policy_naming_role_allows_sessions_without_identity_policy",
            case: case(
                json!({"identity": [], "resource": grant("R", json!({"AWS": ROLE}), "s3:GetObject")}),
                SESSION,
                "s3:GetObject",
                BUCKET,
                json!({}),
            ),
            decision: Allow,
            determining: &[("resource", "R")],
        },
        Row {
            name: "resource_policy_naming_account_delegates_to_identity_policies",
            case: case(
                json!({"identity": [], "resource": grant("R", json!({"AWS": "arn:aws:iam::111122223333:root"}), "s3:GetObject")}),
                ALICE,
                "s3:GetObject",
                BUCKET,
                json!({}),
            ),
            decision: ImplicitDeny,
            determining: &[],
        },
        Row {
            name: "resource_policy_naming_account_id_with_identity_allow",
            case: case(
                json!({"identity": [allow("A", "s3:GetObject", "*")], "resource": grant("R", json!({"AWS": "111122223333"}), "s3:GetObject")}),
                ALICE,
                "s3:GetObject",
                BUCKET,
                json!({}),
            ),
            decision: Allow,
            determining: &[("identity/0", "A")],
        },
        Row {
            name: "trust_policy_must_allow_even_if_identity_allows",
            case: case(
                json!({"identity": [allow("A", "sts:AssumeRole", "*")], "resource": grant("T", json!({"AWS": "arn:aws:iam::111122223333:user/bob"}), "sts:AssumeRole")}),
                ALICE,
                "sts:AssumeRole",
                ROLE,
                json!({}),
            ),
            decision: ImplicitDeny,
            determining: &[],
        },
        Row {
            name: "trust_policy_is_required_for_assume_role",
            case: case(
                json!({"identity": [allow("A", "sts:AssumeRole", "*")]}),
                ALICE,
                "sts:AssumeRole",
                ROLE,
                json!({}),
            ),
            decision: ImplicitDeny,
            determining: &[],
        },
        Row {
            name: "trust_policy_naming_user_allows_without_identity_policy",
            case: case(
                json!({"identity": [], "resource": grant("T", json!({"AWS": ALICE}), "sts:AssumeRole")}),
                ALICE,
                "sts:AssumeRole",
                ROLE,
                json!({}),
            ),
            decision: Allow,
            determining: &[("resource", "T")],
        },
        Row {
            name: "trust_policy_naming_account_needs_identity_allow",
            case: case(
                json!({"identity": [], "resource": grant("T", json!({"AWS": "arn:aws:iam::111122223333:root"}), "sts:AssumeRole")}),
                ALICE,
                "sts:AssumeRole",
                ROLE,
                json!({}),
            ),
            decision: ImplicitDeny,
            determining: &[],
        },
        Row {
            name: "trust_policy_naming_account_with_identity_allow",
            case: case(
                json!({"identity": [allow("A", "sts:AssumeRole", ROLE)], "resource": grant("T", json!({"AWS": "arn:aws:iam::111122223333:root"}), "sts:AssumeRole")}),
                ALICE,
                "sts:AssumeRole",
                ROLE,
                json!({}),
            ),
            decision: Allow,
            determining: &[("resource", "T"), ("identity/0", "A")],
        },
        Row {
            name: "trust_policy_caller_boundary_still_applies_conservatively",
            case: case(
                json!({"identity": [], "boundary": allow("B", "s3:*", "*"), "resource": grant("T", json!({"AWS": ALICE}), "sts:AssumeRole")}),
                ALICE,
                "sts:AssumeRole",
                ROLE,
                json!({}),
            ),
            decision: ImplicitDeny,
            determining: &[],
        },
        Row {
            name: "service_principal_allowed_by_trust_policy",
            case: case(
                json!({"resource": grant("T", json!({"Service": "sagemaker.amazonaws.com"}), "sts:SetContext")}),
                "sagemaker.amazonaws.com",
                "sts:SetContext",
                ROLE,
                json!({}),
            ),
            decision: Allow,
            determining: &[("resource", "T")],
        },
        Row {
            name: "service_principal_not_named_is_implicitly_denied",
            case: case(
                json!({"resource": grant("T", json!({"Service": "ec2.amazonaws.com"}), "sts:AssumeRole")}),
                "sagemaker.amazonaws.com",
                "sts:AssumeRole",
                ROLE,
                json!({}),
            ),
            decision: ImplicitDeny,
            determining: &[],
        },
        Row {
            name: "scps_do_not_apply_to_service_principals",
            case: case(
                json!({"scp": [], "resource": grant("T", json!({"Service": "sagemaker.amazonaws.com"}), "sts:AssumeRole")}),
                "sagemaker.amazonaws.com",
                "sts:AssumeRole",
                ROLE,
                json!({}),
            ),
            decision: Allow,
            determining: &[("resource", "T")],
        },
        Row {
            name: "cross_account_needs_resource_policy",
            case: case(
                json!({"identity": [allow("A", "*", "*")]}),
                ALICE,
                "sagemaker:DescribeDomain",
                "arn:aws:sagemaker:us-east-1:999988887777:domain/d-x",
                json!({}),
            ),
            decision: ImplicitDeny,
            determining: &[],
        },
        Row {
            name: "cross_account_needs_identity_policy",
            case: case(
                json!({"identity": [], "resource": grant("R", json!({"AWS": ALICE}), "sagemaker:DescribeDomain")}),
                ALICE,
                "sagemaker:DescribeDomain",
                "arn:aws:sagemaker:us-east-1:999988887777:domain/d-x",
                json!({}),
            ),
            decision: ImplicitDeny,
            determining: &[],
        },
        Row {
            name: "cross_account_both_sides_allow",
            case: case(
                json!({"identity": [allow("A", "*", "*")], "resource": grant("R", json!({"AWS": "111122223333"}), "sagemaker:DescribeDomain")}),
                ALICE,
                "sagemaker:DescribeDomain",
                "arn:aws:sagemaker:us-east-1:999988887777:domain/d-x",
                json!({}),
            ),
            decision: Allow,
            determining: &[("resource", "R"), ("identity/0", "A")],
        },
        Row {
            name: "action_names_are_case_insensitive",
            case: case(
                json!({"identity": [allow("A", "S3:getobject", "*")]}),
                ALICE,
                "s3:GetObject",
                BUCKET,
                json!({}),
            ),
            decision: Allow,
            determining: &[("identity/0", "A")],
        },
        Row {
            name: "resources_are_case_sensitive",
            case: case(
                json!({"identity": [allow("A", "s3:GetObject", "arn:aws:s3:::Bucket/*")]}),
                ALICE,
                "s3:GetObject",
                BUCKET,
                json!({}),
            ),
            decision: ImplicitDeny,
            determining: &[],
        },
        Row {
            name: "not_action_allow_grants_everything_else",
            case: case(
                json!({"identity": [{"Version": "2012-10-17", "Statement": {"Sid": "N", "Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}}]}),
                ALICE,
                "s3:GetObject",
                BUCKET,
                json!({}),
            ),
            decision: Allow,
            determining: &[("identity/0", "N")],
        },
        Row {
            name: "not_action_allow_excludes_listed_actions",
            case: case(
                json!({"identity": [{"Version": "2012-10-17", "Statement": {"Sid": "N", "Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}}]}),
                ALICE,
                "iam:CreateUser",
                "arn:aws:iam::111122223333:user/x",
                json!({}),
            ),
            decision: ImplicitDeny,
            determining: &[],
        },
        Row {
            name: "not_resource_deny_applies_to_other_resources",
            case: case(
                json!({"identity": [allow("A", "*", "*"), {"Version": "2012-10-17", "Statement": {"Sid": "N", "Effect": "Deny", "Action": "s3:*", "NotResource": "arn:aws:s3:::other/*"}}]}),
                ALICE,
                "s3:GetObject",
                BUCKET,
                json!({}),
            ),
            decision: ExplicitDeny,
            determining: &[("identity/1", "N")],
        },
        Row {
            name: "not_principal_deny_spares_only_fully_listed_session",
            case: case(
                json!({"identity": [allow("A", "*", "*")], "resource": {"Version": "2012-10-17", "Statement": [
                    {"Sid": "P", "Effect": "Allow", "Principal": "*", "Action": "s3:*"},
                    {"Sid": "N", "Effect": "Deny", "NotPrincipal": {"AWS": [SESSION, ROLE, "arn:aws:iam::111122223333:root"]}, "Action": "s3:*"}]}}),
                SESSION,
                "s3:GetObject",
                BUCKET,
                json!({}),
            ),
            decision: Allow,
            determining: &[("resource", "P")],
        },
        Row {
            name: "not_principal_deny_without_account_denies_the_session",
            case: case(
                json!({"identity": [allow("A", "*", "*")], "resource": {"Version": "2012-10-17", "Statement": [
                    {"Sid": "N", "Effect": "Deny", "NotPrincipal": {"AWS": [SESSION]}, "Action": "s3:*"}]}}),
                SESSION,
                "s3:GetObject",
                BUCKET,
                json!({}),
            ),
            decision: ExplicitDeny,
            determining: &[("resource", "N")],
        },
        Row {
            name: "empty_action_array_matches_nothing",
            case: case(
                json!({"identity": [{"Version": "2012-10-17", "Statement": {"Sid": "E", "Effect": "Allow", "Action": [], "Resource": "*"}}]}),
                ALICE,
                "s3:GetObject",
                BUCKET,
                json!({}),
            ),
            decision: ImplicitDeny,
            determining: &[],
        },
        Row {
            name: "deny_with_undecidable_condition_fails_closed",
            case: case(
                json!({"identity": [allow("A", "*", "*"), {"Version": "2012-10-17", "Statement": {"Sid": "D", "Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}}]}),
                ALICE,
                "s3:GetObject",
                BUCKET,
                json!({"aws:SourceIp": "not-an-ip"}),
            ),
            decision: ExplicitDeny,
            determining: &[("identity/1", "D")],
        },
        Row {
            name: "allow_with_undecidable_condition_does_not_apply",
            case: case(
                json!({"identity": [{"Version": "2012-10-17", "Statement": {"Sid": "A", "Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"NumericLessThan": {"s3:max-keys": "10"}}}}]}),
                ALICE,
                "s3:ListBucket",
                BUCKET,
                json!({"s3:max-keys": "ten"}),
            ),
            decision: ImplicitDeny,
            determining: &[],
        },
        Row {
            name: "resource_variable_with_missing_key_matches_nothing",
            case: case(
                json!({"identity": [allow("A", "s3:*", "arn:aws:s3:::bucket/${aws:PrincipalTag/team}/*")]}),
                ALICE,
                "s3:GetObject",
                "arn:aws:s3:::bucket/x/y",
                json!({}),
            ),
            decision: ImplicitDeny,
            determining: &[],
        },
        Row {
            name: "resource_variable_substituted_from_context",
            case: case(
                json!({"identity": [allow("A", "s3:*", "arn:aws:s3:::bucket/${aws:username}/*")]}),
                ALICE,
                "s3:GetObject",
                "arn:aws:s3:::bucket/alice/doc",
                json!({}),
            ),
            decision: Allow,
            determining: &[("identity/0", "A")],
        },
        Row {
            name: "variables_are_literal_without_version_2012_10_17",
            case: case(
                json!({"identity": [{"Statement": {"Sid": "A", "Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::bucket/${aws:username}/*"}}]}),
                ALICE,
                "s3:GetObject",
                "arn:aws:s3:::bucket/alice/doc",
                json!({}),
            ),
            decision: ImplicitDeny,
            determining: &[],
        },
        Row {
            name: "given_context_keys_win_over_derived_in_case_format",
            case: case(
                json!({"identity": [allow("A", "s3:*", "arn:aws:s3:::bucket/${aws:username}/*")]}),
                ALICE,
                "s3:GetObject",
                "arn:aws:s3:::bucket/carol/doc",
                json!({"aws:username": "carol"}),
            ),
            decision: Allow,
            determining: &[("identity/0", "A")],
        },
        Row {
            name: "username_is_absent_for_role_sessions",
            case: case(
                json!({"identity": [allow("A", "s3:*", "arn:aws:s3:::bucket/${aws:username}/*")]}),
                SESSION,
                "s3:GetObject",
                "arn:aws:s3:::bucket/alice/doc",
                json!({}),
            ),
            decision: ImplicitDeny,
            determining: &[],
        },
        Row {
            name: "allow_lists_every_matching_allow_statement",
            case: case(
                json!({"identity": [allow("A1", "s3:*", "*"), allow("A2", "s3:GetObject", BUCKET), allow("Other", "ec2:*", "*")]}),
                ALICE,
                "s3:GetObject",
                BUCKET,
                json!({}),
            ),
            decision: Allow,
            determining: &[("identity/0", "A1"), ("identity/1", "A2")],
        },
    ];
    check(&rows);
}

/// SPEC §4.1 "Policy variables anywhere in an ARN": substituted in the partition, service, region and
/// account as in the resource part; a missing key makes that entry match nothing (so a `NotResource`
/// entry excludes nothing). Regression: these policies were refused at validation.
#[test]
fn policy_variables_anywhere_in_an_arn() {
    use Decision::*;
    const KEY: &str = "arn:aws:dynamodb:us-east-1:111122223333:table/k1";
    const OTHER_KEY: &str = "arn:aws:dynamodb:us-east-1:444455556666:table/k1";
    let in_account = "arn:aws:dynamodb:*:${aws:PrincipalAccount}:table/*";
    let ctx = json!({"aws:PrincipalAccount": "111122223333", "aws:RequestedRegion": "us-east-1"});
    let deny_outside = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "Outside", "Effect": "Deny", "Action": "dynamodb:*", "NotResource": in_account}]});
    let rows = vec![
        Row {
            name: "account_variable_substituted",
            case: case(
                json!({"identity": [allow("A", "dynamodb:GetItem", in_account)]}),
                ALICE,
                "dynamodb:GetItem",
                KEY,
                ctx.clone(),
            ),
            decision: Allow,
            determining: &[("identity/0", "A")],
        },
        Row {
            name: "account_variable_other_account_does_not_match",
            case: case(
                json!({"identity": [allow("A", "dynamodb:GetItem", in_account)]}),
                ALICE,
                "dynamodb:GetItem",
                OTHER_KEY,
                ctx.clone(),
            ),
            decision: ImplicitDeny,
            determining: &[],
        },
        Row {
            name: "region_and_account_variables_substituted",
            case: case(
                json!({"identity": [allow("A", "sqs:SendMessage", "arn:aws:sqs:${aws:RequestedRegion}:${aws:PrincipalAccount}:q-*")]}),
                ALICE,
                "sqs:SendMessage",
                "arn:aws:sqs:us-east-1:111122223333:q-1",
                ctx.clone(),
            ),
            decision: Allow,
            determining: &[("identity/0", "A")],
        },
        Row {
            name: "region_variable_other_region_does_not_match",
            case: case(
                json!({"identity": [allow("A", "sqs:SendMessage", "arn:aws:sqs:${aws:RequestedRegion}:${aws:PrincipalAccount}:q-*")]}),
                ALICE,
                "sqs:SendMessage",
                "arn:aws:sqs:eu-west-1:111122223333:q-1",
                ctx.clone(),
            ),
            decision: ImplicitDeny,
            determining: &[],
        },
        Row {
            name: "partition_and_service_variables_substituted",
            case: case(
                json!({"identity": [allow("A", "s3:GetObject", "arn:${aws:RequestTag/p}:${aws:RequestTag/svc}:::bucket/*")]}),
                ALICE,
                "s3:GetObject",
                "arn:aws:s3:::bucket/k",
                json!({"aws:RequestTag/p": "aws", "aws:RequestTag/svc": "s3"}),
            ),
            decision: Allow,
            determining: &[("identity/0", "A")],
        },
        Row {
            name: "missing_key_outside_the_resource_part_matches_nothing",
            case: case(
                json!({"identity": [allow("A", "dynamodb:GetItem", "arn:aws:dynamodb:*:${aws:PrincipalTag/acct}:table/*")]}),
                ALICE,
                "dynamodb:GetItem",
                KEY,
                json!({}),
            ),
            decision: ImplicitDeny,
            determining: &[],
        },
        Row {
            name: "default_applies_outside_the_resource_part",
            case: case(
                json!({"identity": [allow("A", "dynamodb:GetItem", "arn:aws:dynamodb:*:${aws:PrincipalTag/acct, '111122223333'}:table/*")]}),
                ALICE,
                "dynamodb:GetItem",
                KEY,
                json!({}),
            ),
            decision: Allow,
            determining: &[("identity/0", "A")],
        },
        Row {
            name: "not_resource_with_account_variable_excludes_own_account",
            case: case(
                json!({"identity": [allow("A", "dynamodb:*", "*"), deny_outside.clone()]}),
                ALICE,
                "dynamodb:GetItem",
                KEY,
                ctx.clone(),
            ),
            decision: Allow,
            determining: &[("identity/0", "A")],
        },
        Row {
            name: "not_resource_with_account_variable_denies_other_accounts",
            case: case(
                json!({"identity": [allow("A", "dynamodb:*", "*"), deny_outside.clone()]}),
                ALICE,
                "dynamodb:GetItem",
                OTHER_KEY,
                ctx.clone(),
            ),
            decision: ExplicitDeny,
            determining: &[("identity/1", "Outside")],
        },
        Row {
            name: "not_resource_entry_with_missing_key_excludes_nothing",
            case: case(
                json!({"identity": [allow("A", "dynamodb:*", "*"), {"Version": "2012-10-17", "Statement": [
                    {"Sid": "Outside", "Effect": "Deny", "Action": "dynamodb:*", "NotResource": "arn:aws:dynamodb:*:${aws:PrincipalTag/acct}:table/*"}]}]}),
                ALICE,
                "dynamodb:GetItem",
                KEY,
                json!({}),
            ),
            decision: ExplicitDeny,
            determining: &[("identity/1", "Outside")],
        },
    ];
    check(&rows);
}

/// SPEC §4.1 "A plain operator on a list value never matches, negated operators included", through the
/// whole evaluation. Regression: a negated plain operator on several values was indeterminate, so its
/// Deny applied; a plain operator on `aws:TagKeys` was refused at validation.
#[test]
fn plain_operator_on_a_list_value_never_matches() {
    use Decision::*;
    let with_condition = |effect: &str, op: &str, key: &str, value: &str| {
        json!({"Version": "2012-10-17", "Statement": [{"Sid": "C", "Effect": effect, "Action": "s3:*", "Resource": "*",
            "Condition": {op: {key: value}}}]})
    };
    let rows = vec![
        Row {
            name: "negated_deny_on_several_values_does_not_apply",
            case: case(
                json!({"identity": [allow("A", "s3:*", "*"), with_condition("Deny", "StringNotEquals", "aws:RequestTag/team", "red")]}),
                ALICE,
                "s3:GetObject",
                BUCKET,
                json!({"aws:RequestTag/team": ["red", "blue"]}),
            ),
            decision: Allow,
            determining: &[("identity/0", "A")],
        },
        Row {
            name: "positive_allow_on_several_values_does_not_apply",
            case: case(
                json!({"identity": [with_condition("Allow", "StringEquals", "aws:RequestTag/team", "red")]}),
                ALICE,
                "s3:GetObject",
                BUCKET,
                json!({"aws:RequestTag/team": ["red", "blue"]}),
            ),
            decision: ImplicitDeny,
            determining: &[],
        },
        Row {
            name: "plain_operator_on_tag_keys_never_matches_even_one_key",
            case: case(
                json!({"identity": [with_condition("Allow", "StringEquals", "aws:TagKeys", "Team")]}),
                ALICE,
                "s3:GetObject",
                BUCKET,
                json!({"aws:TagKeys": ["Team"]}),
            ),
            decision: ImplicitDeny,
            determining: &[],
        },
        Row {
            name: "negated_plain_operator_on_tag_keys_never_matches",
            case: case(
                json!({"identity": [allow("A", "s3:*", "*"), with_condition("Deny", "StringNotEquals", "aws:TagKeys", "Team")]}),
                ALICE,
                "s3:GetObject",
                BUCKET,
                json!({"aws:TagKeys": ["Other", "More"]}),
            ),
            decision: Allow,
            determining: &[("identity/0", "A")],
        },
        Row {
            name: "negated_plain_operator_on_absent_tag_keys_is_true",
            case: case(
                json!({"identity": [allow("A", "s3:*", "*"), with_condition("Deny", "StringNotEquals", "aws:TagKeys", "Team")]}),
                ALICE,
                "s3:GetObject",
                BUCKET,
                json!({}),
            ),
            decision: ExplicitDeny,
            determining: &[("identity/1", "C")],
        },
    ];
    check(&rows);
}

fn bundle_with(files: &[(&str, Value)]) -> bundle::Bundle {
    let files = files.iter().map(|(p, v)| ((*p).to_owned(), serde_json::to_vec(v).unwrap())).collect();
    bundle::from_files(files).unwrap_or_else(|e| panic!("{e:?}"))
}

fn req(principal: &str, action: &str, resource: &str) -> Request {
    Request {
        principal: principal.into(),
        action: action.into(),
        resource: resource.into(),
        now_ms: 1_700_000_000_000,
        ..Request::default()
    }
}

fn small_bundle() -> bundle::Bundle {
    let cond = |op: &str, k: &str, v: &str| json!({op: {k: v}});
    bundle_with(&[
        (
            "iam/users/alice.json",
            json!({"UserName": "alice", "Arn": ALICE, "UserId": "AIDAEXAMPLEALICE0001",
                   "Tags": [{"Key": "Team", "Value": "Team1"}],
                   "UserPolicyList": [{"PolicyName": "Own", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
                       {"Sid": "OwnPrefix", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bucket/${aws:username}/*"},
                       {"Sid": "TeamApps", "Effect": "Allow", "Action": "sagemaker:CreatePartnerAppPresignedUrl", "Resource": "*",
                        "Condition": cond("StringEquals", "sagemaker:ResourceTag/Team", "${aws:PrincipalTag/Team}")}]}}]}),
        ),
        (
            "iam/roles/exec.json",
            json!({"RoleName": "Exec", "Arn": "arn:aws:iam::111122223333:role/team/Exec", "RoleId": "AROAEXAMPLEEXEC00001",
                   "Tags": [{"Key": "Team", "Value": "Team2"}],
                   "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [
                       {"Sid": "SessionNameIsUser", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "sts:AssumeRole",
                        "Condition": cond("StringEquals", "sts:RoleSessionName", "${aws:username}")}]},
                   "RolePolicyList": [{"PolicyName": "P", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
                       {"Sid": "ByUserId", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bucket/${aws:userid}/*"},
                       {"Sid": "ByPrincipalArn", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*",
                        "Condition": cond("StringEquals", "aws:PrincipalArn", "arn:aws:iam::111122223333:role/team/Exec")},
                       {"Sid": "TeamTag", "Effect": "Allow", "Action": "sagemaker:DescribeDomain", "Resource": "*",
                        "Condition": cond("StringEquals", "aws:PrincipalTag/Team", "Team9")}]}}]}),
        ),
        (
            "iam/policies/assume.json",
            json!({"PolicyName": "Assume", "PolicyDocument": {"Version": "2012-10-17", "Statement": [{"Sid": "AssumeExec", "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}}),
        ),
        (
            "sagemaker/partner-apps/comet.json",
            json!({"Arn": "arn:aws:sagemaker:us-east-1:111122223333:partner-app/app-ABCDEF123456", "Name": "Comet", "Type": "comet",
                   "AuthType": "IAM", "ExecutionRoleArn": "arn:aws:iam::111122223333:role/team/Exec",
                   "ApplicationConfig": {"AdminUsers": ["alice"]}, "Tags": [{"Key": "team", "Value": "Team1"}]}),
        ),
    ])
}

#[test]
fn derived_keys_cannot_be_overridden_by_the_caller() {
    let b = small_bundle();
    let mut r = req(ALICE, "s3:GetObject", "arn:aws:s3:::bucket/bob/doc");
    r.context.insert("aws:username", crate::policy::Value::One("bob".into()));
    let resp = authorize(&b, &r);
    assert_eq!(resp.decision, Decision::ImplicitDeny);
    assert!(resp.diagnostics.iter().any(|d| d.contains("aws:username")), "{:?}", resp.diagnostics);
    let resp = authorize(&b, &req(ALICE, "s3:GetObject", "arn:aws:s3:::bucket/alice/doc"));
    assert_eq!(resp.decision, Decision::Allow);
}

#[test]
fn resource_tags_of_known_resources_come_from_the_bundle() {
    let b = small_bundle();
    let app = "arn:aws:sagemaker:us-east-1:111122223333:partner-app/app-ABCDEF123456";
    let resp = authorize(&b, &req(ALICE, "sagemaker:CreatePartnerAppPresignedUrl", app));
    assert_eq!(resp.decision, Decision::Allow, "{:?}", resp.diagnostics);
    // The caller cannot substitute the tags of a resource the bundle knows.
    let mut r = req(ALICE, "sagemaker:CreatePartnerAppPresignedUrl", app);
    r.context.insert("sagemaker:ResourceTag/Team", crate::policy::Value::One("Team2".into()));
    assert_eq!(authorize(&b, &r).decision, Decision::Allow);
    // An unknown resource takes its tags from the request's resource_tags.
    let other = "arn:aws:sagemaker:us-east-1:111122223333:partner-app/app-ZZZZZZ999999";
    assert_eq!(
        authorize(&b, &req(ALICE, "sagemaker:CreatePartnerAppPresignedUrl", other)).decision,
        Decision::ImplicitDeny
    );
    let mut r = req(ALICE, "sagemaker:CreatePartnerAppPresignedUrl", other);
    r.resource_tags = vec![("TEAM".into(), "Team1".into())];
    assert_eq!(authorize(&b, &r).decision, Decision::Allow);
}

#[test]
fn session_userid_is_role_id_and_session_name() {
    let b = small_bundle();
    let s = "arn:aws:sts::111122223333:assumed-role/Exec/alice";
    let resp = authorize(&b, &req(s, "s3:GetObject", "arn:aws:s3:::bucket/AROAEXAMPLEEXEC00001:alice/x"));
    assert_eq!(resp.decision, Decision::Allow, "{:?}", resp.diagnostics);
}

#[test]
fn session_principal_arn_is_the_role_arn_with_path() {
    let b = small_bundle();
    let s = "arn:aws:sts::111122223333:assumed-role/Exec/anything";
    assert_eq!(authorize(&b, &req(s, "s3:ListBucket", "arn:aws:s3:::bucket")).decision, Decision::Allow);
}

#[test]
fn session_tags_override_role_tags() {
    let b = small_bundle();
    let s = "arn:aws:sts::111122223333:assumed-role/Exec/alice";
    let d = "arn:aws:sagemaker:us-east-1:111122223333:domain/d-abcdefghijkl";
    assert_eq!(authorize(&b, &req(s, "sagemaker:DescribeDomain", d)).decision, Decision::ImplicitDeny);
    let mut r = req(s, "sagemaker:DescribeDomain", d);
    r.session_tags = vec![("team".into(), "Team9".into())];
    assert_eq!(authorize(&b, &r).decision, Decision::Allow);
}

#[test]
fn unknown_principal_is_implicit_deny_with_diagnostic() {
    let b = small_bundle();
    let resp = authorize(&b, &req("arn:aws:iam::111122223333:user/mallory", "s3:GetObject", BUCKET));
    assert_eq!(resp.decision, Decision::ImplicitDeny);
    assert!(resp.diagnostics[0].contains("not in the bundle"));
}

#[test]
fn trust_session_name_bound_to_username_admits_only_iam_users() {
    let b = small_bundle();
    let role = "arn:aws:iam::111122223333:role/team/Exec";
    let b2 = {
        // alice needs an identity allow, because the trust policy trusts the account only.
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        let _ = &b;
        files.push(("iam/policies/assume.json".into(), serde_json::to_vec(&json!({"PolicyName": "Assume", "PolicyDocument": {"Version": "2012-10-17", "Statement": [{"Sid": "AssumeExec", "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}})).unwrap()));
        files.push(("iam/users/alice.json".into(), serde_json::to_vec(&json!({"UserName": "alice", "Arn": ALICE, "AttachedManagedPolicies": [{"PolicyName": "Assume", "PolicyArn": "arn:aws:iam::111122223333:policy/Assume"}]})).unwrap()));
        files.push(("iam/roles/exec.json".into(), serde_json::to_vec(&json!({"RoleName": "Exec", "Arn": role, "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [
            {"Sid": "SessionNameIsUser", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "sts:AssumeRole",
             "Condition": {"StringEquals": {"sts:RoleSessionName": "${aws:username}"}}}]}})).unwrap()));
        bundle::from_files(files).unwrap()
    };
    let with_name = |principal: &str, name: &str| {
        let mut r = req(principal, "sts:AssumeRole", role);
        r.context.insert("sts:RoleSessionName", crate::policy::Value::One(name.into()));
        authorize(&b2, &r)
    };
    let ok = with_name(ALICE, "alice");
    assert_eq!(ok.decision, Decision::Allow, "{:?}", ok.diagnostics);
    assert_eq!(
        ok.determining.iter().map(|s| format!("{}#{}", s.policy, s.sid)).collect::<Vec<_>>(),
        ["role/Exec/trust#SessionNameIsUser", "policy/Assume#AssumeExec"]
    );
    assert_eq!(with_name(ALICE, "bob").decision, Decision::ImplicitDeny);
    let _ = MapContext::default();
}

#[test]
fn sts_action_on_unknown_role_is_implicit_deny() {
    let b = small_bundle();
    let resp = authorize(&b, &req(ALICE, "sts:AssumeRole", "arn:aws:iam::111122223333:role/Nope"));
    assert_eq!(resp.decision, Decision::ImplicitDeny);
}

#[test]
fn time_keys_are_reported_as_read() {
    let b = bundle_with(&[(
        "iam/users/alice.json",
        json!({"UserName": "alice", "Arn": ALICE, "UserPolicyList": [{"PolicyName": "T", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
            {"Sid": "Before2030", "Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}}]}}]}),
    )]);
    let resp = authorize(&b, &req(ALICE, "s3:GetObject", BUCKET));
    assert_eq!(resp.decision, Decision::Allow);
    assert!(resp.reads_time);
    let mut later = req(ALICE, "s3:GetObject", BUCKET);
    later.now_ms = 1_900_000_000_000;
    assert_eq!(authorize(&b, &later).decision, Decision::ImplicitDeny);
}

#[test]
fn request_validation_names_the_field() {
    let cases = [
        (req("", "s3:GetObject", BUCKET), "principal.arn"),
        (req("alice", "s3:GetObject", BUCKET), "principal.arn"),
        (req(ALICE, "", BUCKET), "action"),
        (req(ALICE, "GetObject", BUCKET), "action"),
        (req(ALICE, "s3:GetObject", ""), "resource"),
        (req(ALICE, "s3:GetObject", "bucket/key"), "resource"),
    ];
    for (r, field) in cases {
        let e = r.validate().unwrap_err();
        assert_eq!(e.field, field, "{e}");
    }
}

/// Issue 11 (SPEC §4.1): `sts:GetCallerIdentity` needs no permission, even under an explicit deny;
/// AWS-owned and account-less resources are not cross-account.
#[test]
fn get_caller_identity_and_aws_owned_resources() {
    use Decision::*;
    let rows = vec![
        Row {
            name: "get_caller_identity_without_any_policy",
            case: case(json!({"identity": []}), ALICE, "sts:GetCallerIdentity", "*", json!({})),
            decision: Allow,
            determining: &[],
        },
        Row {
            name: "get_caller_identity_under_an_explicit_deny_of_everything",
            case: case(
                json!({"identity": [deny("D", "*", "*")], "scp": [deny("S", "*", "*")]}),
                ALICE,
                "sts:GetCallerIdentity",
                "*",
                json!({}),
            ),
            decision: Allow,
            determining: &[],
        },
        Row {
            name: "aws_owned_managed_policy_is_not_cross_account",
            case: case(
                json!({"identity": [allow("A", "iam:GetPolicy", "arn:aws:iam::aws:policy/*")]}),
                ALICE,
                "iam:GetPolicy",
                "arn:aws:iam::aws:policy/ReadOnlyAccess",
                json!({}),
            ),
            decision: Allow,
            determining: &[("identity/0", "A")],
        },
        Row {
            name: "account_less_bucket_is_not_cross_account",
            case: case(
                json!({"identity": [allow("A", "s3:GetObject", "*")]}),
                ALICE,
                "s3:GetObject",
                BUCKET,
                json!({}),
            ),
            decision: Allow,
            determining: &[("identity/0", "A")],
        },
        Row {
            name: "another_accounts_resource_still_needs_its_resource_policy",
            case: case(
                json!({"identity": [allow("A", "sqs:SendMessage", "*")]}),
                ALICE,
                "sqs:SendMessage",
                "arn:aws:sqs:us-east-1:444455556666:queue",
                json!({}),
            ),
            decision: ImplicitDeny,
            determining: &[],
        },
    ];
    check(&rows);
}

/// `head` followed by `unit` repeated up to `len` bytes.
fn filled(head: &str, unit: &str, len: usize) -> String {
    let mut s = String::from(head);
    while s.len() + unit.len() <= len {
        s.push_str(unit);
    }
    s
}

#[test]
fn hostile_resources_and_condition_values_are_matched_in_bounded_time() {
    // SPEC §4.1 "Resources are bounded": 64 KiB values full of colons against `Resource`, `NotResource`,
    // `ArnLike` and `StringLike` patterns with several `*` (the old matchers took seconds or more).
    let star_a = "*a".repeat(24) + "*b";
    let st = |sid: &str, effect: &str, action: &str, res: (&str, &str), cond: Value| json!({"Sid": sid, "Effect": effect, "Action": action, res.0: res.1, "Condition": cond});
    let statements = json!([
        st(
            "App",
            "Allow",
            "sagemaker:CreatePartnerAppPresignedUrl",
            ("Resource", "arn:aws:sagemaker:*:*:partner-app/app-*"),
            json!({})
        ),
        st(
            "Own",
            "Allow",
            "sagemaker:CreatePartnerAppPresignedUrl",
            ("Resource", "arn:aws:sagemaker:*:*:partner-app/${aws:username}*"),
            json!({})
        ),
        st("X", "Deny", "*", ("Resource", "arn:*:*:*:*:x*"), json!({})),
        st("NotX", "Deny", "sagemaker:DeleteDomain", ("NotResource", "arn:*:*:*:*:y*"), json!({})),
        st(
            "Cond",
            "Allow",
            "sagemaker:DescribeDomain",
            ("Resource", "*"),
            json!({"ArnLike": {"aws:SourceArn": "arn:*:*:*:*:x*"}, "StringLike": {"aws:RequestTag/t": star_a}})
        ),
        st(
            "NotCond",
            "Deny",
            "sagemaker:DescribeDomain",
            ("Resource", "*"),
            json!({"ArnNotLikeIfExists": {"aws:SourceArn": ["arn:*:*:*:*:x*", "arn:aws:sagemaker:*:*:partner-app/app-*"]},
                  "StringNotLike": {"aws:RequestTag/t": "*a*a*a*:*c"}})
        ),
    ]);
    let user = json!({"UserName": "alice", "Arn": ALICE, "UserPolicyList": [{"PolicyName": "P",
        "PolicyDocument": {"Version": "2012-10-17", "Statement": statements}}]});
    let b = bundle_with(&[("iam/users/alice.json", user)]);
    let colons = filled("arn:aws:sagemaker:us-east-1:111122223333:", ":a", 64 * 1024);
    let tag = filled("", "a:", 64 * 1024);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let started = std::time::Instant::now();
        let decide = |action: &str, resource: &str, ctx: &[(&str, &str)]| {
            let mut r = req(ALICE, action, resource);
            for (k, v) in ctx {
                r.context.insert(k, crate::policy::Value::One((*v).into()));
            }
            authorize(&b, &r).decision
        };
        let app = "sagemaker:CreatePartnerAppPresignedUrl";
        let describe = "sagemaker:DescribeDomain";
        let decisions = vec![
            decide(app, &colons, &[]),
            // The account `*` of a `Resource` swallows the colons.
            decide(app, &format!("{colons}:partner-app/app-1"), &[]),
            decide(app, &format!("{colons}:partner-app/alice-1"), &[]),
            decide(app, &format!("{colons}:x"), &[]),
            decide("sagemaker:DeleteDomain", &colons, &[]),
            // Negated operators: no value matches.
            decide(describe, "*", &[("aws:SourceArn", &colons), ("aws:RequestTag/t", &tag)]),
            // `ArnLike` compares the six parts without expansion: the sixth starts with `x`.
            decide(
                describe,
                "*",
                &[("aws:SourceArn", &format!("arn:a:a:a:a:x{colons}")), ("aws:RequestTag/t", &format!("{tag}b"))],
            ),
        ];
        tx.send((started.elapsed(), decisions)).unwrap();
    });
    let (elapsed, decisions) =
        rx.recv_timeout(std::time::Duration::from_secs(20)).expect("authorization did not finish in 20 s");
    use Decision::*;
    assert_eq!(decisions, [ImplicitDeny, Allow, Allow, ExplicitDeny, ExplicitDeny, ExplicitDeny, Allow]);
    // Milliseconds in an unoptimised build; the old matchers took seconds.
    let bound = std::time::Duration::from_millis(if cfg!(debug_assertions) { 500 } else { 50 });
    assert!(elapsed < bound, "authorization took {elapsed:?}");
}

/// `aws:PrincipalType` takes the values AWS documents (Account, User, FederatedUser, AssumedRole), and is
/// absent for a service principal, for which AWS documents none. Regression: a service principal got
/// `Service` (found by the managed-policy differential), the account root and federated users none.
#[test]
fn principal_type_takes_only_documented_values() {
    use Decision::*;
    let by_type = |t: &str| {
        json!({"Version": "2012-10-17", "Statement": [{"Sid": "T", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
            "Resource": "*", "Condition": {"StringEquals": {"aws:PrincipalType": t}}}]})
    };
    let absent = json!({"Version": "2012-10-17", "Statement": [{"Sid": "N", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": "*", "Condition": {"Null": {"aws:PrincipalType": "true"}}}]});
    let row = |name: &'static str, policy: Value, principal: &str, decision: Decision, sid: &'static str| Row {
        name,
        case: case(json!({"resource": policy}), principal, "s3:GetObject", "arn:aws:s3:::b/k", json!({})),
        decision,
        determining: if sid.is_empty() {
            &[]
        } else if sid == "T" {
            &[("resource", "T")]
        } else {
            &[("resource", "N")]
        },
    };
    check(&[
        row("service_has_no_type", absent.clone(), "s3.amazonaws.com", Allow, "N"),
        row("service_is_not_Service", by_type("Service"), "s3.amazonaws.com", ImplicitDeny, ""),
        row("user", by_type("User"), "arn:aws:iam::111122223333:user/alice", Allow, "T"),
        row("session", by_type("AssumedRole"), "arn:aws:sts::111122223333:assumed-role/Exec/alice", Allow, "T"),
        row("root", by_type("Account"), "arn:aws:iam::111122223333:root", Allow, "T"),
        row("federated", by_type("FederatedUser"), "arn:aws:sts::111122223333:federated-user/carol", Allow, "T"),
    ]);
}

//! Resource-based policies of `resource-policies/` (SPEC §4.1) through the real server: a bucket policy
//! over its objects, its explicit deny, KMS keys with and without a key policy, and a key policy added
//! by a hot reload.
use crate::reload::{Sidecar, authorize, bounded, bundle_in_temp, decision, first_answer_from, request, revision_of};
use serde_json::json;
use std::time::Instant;
use warden::proto::Decision;

const ALICE: &str = "arn:aws:iam::111122223333:user/alice";
const BOB: &str = "arn:aws:iam::111122223333:user/bob";
const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fn files() -> Vec<(&'static str, String)> {
    let alice = json!({"UserName": "alice", "Arn": ALICE, "UserPolicyList": [{"PolicyName": "P", "PolicyDocument":
        {"Version": "2012-10-17", "Statement": [{"Sid": "All", "Effect": "Allow", "Action": ["s3:*", "kms:Decrypt"], "Resource": "*"}]}}]});
    let bob = json!({"UserName": "bob", "Arn": BOB});
    // As `aws s3api get-bucket-policy` prints it: the policy as a JSON string.
    let bucket_policy = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "BobReads", "Effect": "Allow", "Principal": {"AWS": BOB}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::shared/*"},
        {"Sid": "NoSecrets", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::shared/secret/*"}]});
    vec![
        ("iam/users/alice.json", alice.to_string()),
        ("iam/users/bob.json", bob.to_string()),
        (
            "resource-policies/shared-bucket.json",
            json!({"ResourceArn": "arn:aws:s3:::shared", "Policy": bucket_policy.to_string()}).to_string(),
        ),
    ]
}

fn key_policy_file() -> String {
    json!({"ResourceArn": KEY, "PolicyName": "default", "Policy": {"Version": "2012-10-17", "Statement": [
        {"Sid": "EnableIamPolicies", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"}]}})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorize_applies_bundle_resource_policies_and_the_kms_rule() {
    bounded(async {
        let owned = files();
        let initial: Vec<(&str, &str)> = owned.iter().map(|(p, c)| (*p, c.as_str())).collect();
        let tmp = bundle_in_temp(&initial);
        let server = Sidecar::start(tmp.path(), None, None).await;
        let mut client = server.client().await;

        let r = authorize(&mut client, request(BOB, "s3:GetObject", "arn:aws:s3:::shared/q1.csv")).await;
        assert_eq!(decision(&r), Decision::Allow, "{r:#?}");
        let refs: Vec<(&str, &str)> = r.determining.iter().map(|s| (s.policy.as_str(), s.sid.as_str())).collect();
        assert_eq!(refs, [("resource-policy/arn:aws:s3:::shared", "BobReads")], "{r:#?}");
        assert_eq!(r.determining[0].file, "resource-policies/shared-bucket.json", "{r:#?}");

        let r = authorize(&mut client, request(ALICE, "s3:GetObject", "arn:aws:s3:::shared/secret/k")).await;
        assert_eq!(decision(&r), Decision::ExplicitDeny, "{r:#?}");

        let r = authorize(&mut client, request(ALICE, "kms:Decrypt", KEY)).await;
        assert_eq!(decision(&r), Decision::ImplicitDeny, "{r:#?}");
        assert!(r.diagnostics.iter().any(|d| d.contains("has no key policy here")), "{r:#?}");

        // The key policy arrives by a hot reload: now the account is trusted and alice's policy allows.
        let mut with_key = initial.clone();
        let key = key_policy_file();
        with_key.push(("resource-policies/studio-key.json", &key));
        let new = revision_of(&with_key);
        let written = Instant::now();
        std::fs::create_dir_all(tmp.path().join("resource-policies")).unwrap();
        crate::reload::write_then_rename(&tmp.path().join("resource-policies/studio-key.json"), &key);
        let (r, _) = first_answer_from(&mut client, &request(ALICE, "kms:Decrypt", KEY), &new, written).await;
        assert_eq!(decision(&r), Decision::Allow, "{r:#?}");
        // Bob is in the trusted account but no identity policy of his allows: the key policy alone does not.
        let r = authorize(&mut client, request(BOB, "kms:Decrypt", KEY)).await;
        assert_eq!(decision(&r), Decision::ImplicitDeny, "{r:#?}");
        assert!(r.diagnostics.iter().any(|d| d.contains("the key policy trusts only the account")), "{r:#?}");
        server.shutdown().await;
    })
    .await;
}

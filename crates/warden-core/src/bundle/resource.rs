//! `resource-policies/*.json`: resource-based policies of resources other than roles (S3 bucket
//! policies, KMS key policies, SQS/SNS/Secrets Manager resource policies), each
//! `{"ResourceArn", "Policy"}` with the policy as a document or as the JSON string the AWS CLI prints
//! (SPEC §4.1). Pure.
use super::fields::{object, str_field};
use super::model::{Bundle, Counts, ResourcePolicy};
use super::schema::{self, Place};
use crate::policy::{Policy, PolicyKind, ProblemList, Problems, arn, document_value, ident};
use serde_json::Value;
use std::sync::Arc;

/// Why `a` cannot carry a resource policy here, if it cannot.
fn check_resource_arn(a: &str) -> Result<(), String> {
    ident::check_arn_text(a)?;
    let Some(p) = arn::parse(a) else {
        return Err(format!("`{a}` is not an ARN (`arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`)"));
    };
    if a.contains(['*', '?']) {
        return Err(format!("`{a}` has a wildcard: a resource policy is attached to one resource"));
    }
    match p.service {
        "iam" => Err(format!(
            "`{a}`: an IAM role's resource policy is its trust policy, given as `AssumeRolePolicyDocument` in \
             `iam/roles/`"
        )),
        "s3" => {
            if p.region.is_empty() && p.account.is_empty() && !p.resource.contains('/') {
                Ok(())
            } else {
                Err(format!(
                    "`{a}`: an S3 resource policy is a bucket policy, attached to a bucket ARN \
                     `arn:aws:s3:::BUCKET` (it then governs the bucket's objects too); object and access point \
                     ARNs are not supported"
                ))
            }
        }
        "kms" => {
            let key_ok = p.resource.strip_prefix("key/").is_some_and(|id| !id.is_empty() && !id.contains('/'));
            if key_ok && !p.region.is_empty() && arn::is_account_id(p.account) {
                Ok(())
            } else {
                Err(format!(
                    "`{a}`: a key policy is attached to a key: `arn:aws:kms:REGION:ACCOUNT:key/KEY-ID` (not an \
                     alias)"
                ))
            }
        }
        _ if !arn::is_account_id(p.account) => {
            Err(format!("`{a}` has no 12-digit account id: the resource of a resource policy belongs to an account"))
        }
        _ => Ok(()),
    }
}

/// Reads every resource policy file into `bundle.resource_policies`.
pub fn read_resource_policies(
    files: &[(String, Value)],
    bundle: &mut Bundle,
    counts: &mut Counts,
    problems: &mut ProblemList,
) {
    let place = Place::file(schema::RESOURCE_POLICY_LAYOUT);
    for (path, v) in files {
        let mut p = Problems::new(path, problems);
        let Some(o) = object(v, "", "a resource policy file ({\"ResourceArn\", \"Policy\"})", &mut p) else {
            continue;
        };
        schema::check(o, "", &schema::RESOURCE_POLICY, place, &mut p);
        let _ = str_field(o, "PolicyName", "", false, &mut p);
        let resource_arn = str_field(o, "ResourceArn", "", true, &mut p);
        let arn_ok = match &resource_arn {
            Some(a) => match check_resource_arn(a) {
                Ok(()) => true,
                Err(e) => {
                    p.push("/ResourceArn", e);
                    false
                }
            },
            None => false,
        };
        let doc = match o.get("Policy") {
            None | Some(Value::Null) => {
                p.missing("", &["Policy"], "missing `Policy` (the policy document, or the JSON string of one)");
                None
            }
            Some(d) => match document_value(d) {
                Ok(doc) => Some(doc),
                Err(e) => {
                    p.push("/Policy", e);
                    None
                }
            },
        };
        let (Some(a), true, Some(doc)) = (resource_arn, arn_ok, doc) else {
            continue;
        };
        let id = format!("resource-policy/{a}");
        let Some(policy) = Policy::compile(&doc, PolicyKind::Resource, &id, "/Policy", &mut p) else {
            continue;
        };
        if let Some(first) = bundle.resource_policies.get(&a) {
            p.push("/ResourceArn", format!("duplicate resource policy for `{a}`: `{}` has one already", first.file));
            continue;
        }
        counts.policies += 1;
        counts.statements += policy.statements.len();
        let rp = ResourcePolicy { arn: a.clone(), policy: Arc::new(policy), file: path.clone() };
        bundle.resource_policies.insert(a, Arc::new(rp));
    }
}

#[cfg(test)]
mod tests {
    use crate::bundle::{Bundle, from_files};
    use serde_json::{Value, json};

    const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    fn key_policy() -> Value {
        json!({"Version": "2012-10-17", "Statement": [{"Sid": "Root", "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"}]})
    }

    fn load(files: &[(&str, Value)]) -> Result<Bundle, Vec<String>> {
        let files = files.iter().map(|(p, v)| ((*p).to_owned(), serde_json::to_vec(v).unwrap())).collect();
        from_files(files).map_err(|ps| ps.iter().map(ToString::to_string).collect())
    }

    fn errors(files: &[(&str, Value)]) -> Vec<String> {
        load(files).err().unwrap_or_default()
    }

    #[test]
    fn a_policy_given_as_a_document_or_as_the_cli_s_json_string_loads() {
        let as_string = key_policy().to_string();
        let b = load(&[
            ("resource-policies/key.json", json!({"ResourceArn": KEY, "Policy": as_string, "PolicyName": "default"})),
            (
                "resource-policies/bucket.json",
                json!({"ResourceArn": "arn:aws:s3:::studio-data", "Policy": {
                "Version": "2012-10-17", "Statement": [{"Sid": "TlsOnly", "Effect": "Deny", "Principal": "*",
                "Action": "s3:*", "Resource": ["arn:aws:s3:::studio-data", "arn:aws:s3:::studio-data/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}}),
            ),
        ])
        .unwrap();
        assert_eq!(b.resource_policies.len(), 2);
        let rp = b.resource_policy(KEY).unwrap();
        assert_eq!(rp.file, "resource-policies/key.json");
        assert_eq!(rp.policy.id.to_string(), format!("resource-policy/{KEY}"));
        // A bucket policy governs the bucket and its objects, and nothing else.
        let bucket = b.resource_policy("arn:aws:s3:::studio-data").unwrap();
        assert_eq!(bucket.file, "resource-policies/bucket.json");
        assert!(b.resource_policy("arn:aws:s3:::studio-data/team1/x.csv").is_some());
        assert!(b.resource_policy("arn:aws:s3:::studio-data-other/x").is_none());
        assert!(b.resource_policy("arn:aws-cn:s3:::studio-data/x").is_none());
        assert!(b.resource_policy("arn:aws:kms:us-east-1:111122223333:key/other").is_none());
    }

    #[test]
    fn an_unknown_key_is_an_error_with_the_nearest_known_key() {
        let got = errors(&[("resource-policies/key.json", json!({"ResourceArn": KEY, "Polcy": key_policy()}))]);
        assert!(
            got.iter().any(|e| e.contains("resource-policies/key.json: /Polcy: unknown key `Polcy`")
                && e.contains("did you mean `Policy`")),
            "{got:?}"
        );
        assert!(got.iter().any(|e| e.contains("missing `Policy`")), "{got:?}");
    }

    #[test]
    fn bad_shapes_are_errors_naming_file_and_field() {
        let rows: &[(&str, Value, &str)] = &[
            ("not_an_object", json!([key_policy()]), "resource-policies/f.json: /: a resource policy file"),
            ("arn_missing", json!({"Policy": key_policy()}), "/: missing `ResourceArn`"),
            (
                "arn_not_a_string",
                json!({"ResourceArn": 7, "Policy": key_policy()}),
                "/ResourceArn: `ResourceArn` must be a string",
            ),
            ("policy_missing", json!({"ResourceArn": KEY}), "/: missing `Policy`"),
            ("policy_a_number", json!({"ResourceArn": KEY, "Policy": 3}), "/Policy: policy document must be"),
            (
                "policy_string_not_json",
                json!({"ResourceArn": KEY, "Policy": "{\"Version\""}),
                "/Policy: policy document string is not JSON",
            ),
            (
                "not_an_arn",
                json!({"ResourceArn": "my-bucket", "Policy": key_policy()}),
                "/ResourceArn: `my-bucket` is not an ARN",
            ),
            ("wildcard", json!({"ResourceArn": "arn:aws:s3:::bucket-*", "Policy": key_policy()}), "has a wildcard"),
            (
                "s3_object",
                json!({"ResourceArn": "arn:aws:s3:::bucket/key", "Policy": key_policy()}),
                "is a bucket policy",
            ),
            (
                "s3_access_point",
                json!({"ResourceArn": "arn:aws:s3:us-east-1:111122223333:accesspoint/ap", "Policy": key_policy()}),
                "is a bucket policy",
            ),
            (
                "kms_alias",
                json!({"ResourceArn": "arn:aws:kms:us-east-1:111122223333:alias/studio", "Policy": key_policy()}),
                "not an alias",
            ),
            (
                "kms_without_account",
                json!({"ResourceArn": "arn:aws:kms:us-east-1::key/k", "Policy": key_policy()}),
                "not an alias",
            ),
            (
                "iam_role",
                json!({"ResourceArn": "arn:aws:iam::111122223333:role/Exec", "Policy": key_policy()}),
                "`AssumeRolePolicyDocument` in `iam/roles/`",
            ),
            (
                "sqs_without_account",
                json!({"ResourceArn": "arn:aws:sqs:us-east-1::queue", "Policy": key_policy()}),
                "has no 12-digit account id",
            ),
            (
                "control_character",
                json!({"ResourceArn": "arn:aws:sqs:us-east-1:111122223333:q\u{1}", "Policy": key_policy()}),
                "contains control characters",
            ),
        ];
        let mut failures = Vec::new();
        for (name, body, want) in rows {
            let got = errors(&[("resource-policies/f.json", body.clone())]);
            if !got.iter().any(|e| e.starts_with("resource-policies/f.json: ") && e.contains(want)) {
                failures.push(format!("{name}: want `{want}` in {got:?}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn a_policy_that_fails_to_compile_names_file_and_pointer() {
        let bad = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Alow", "Principal": "*", "Action": "kms:*", "Resource": "*"}]});
        let got = errors(&[("resource-policies/key.json", json!({"ResourceArn": KEY, "Policy": bad}))]);
        assert!(got.iter().any(|e| e.starts_with("resource-policies/key.json: /Policy/Statement/0/Effect")), "{got:?}");
        // A resource-based policy names its principals.
        let no_principal =
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]});
        let got =
            errors(&[("resource-policies/key.json", json!({"ResourceArn": KEY, "Policy": no_principal.to_string()}))]);
        assert!(
            got.iter()
                .any(|e| e.starts_with("resource-policies/key.json: /Policy/Statement/0") && e.contains("`Principal`")),
            "{got:?}"
        );
    }

    #[test]
    fn a_duplicate_resource_arn_names_both_files() {
        let got = errors(&[
            ("resource-policies/a.json", json!({"ResourceArn": KEY, "Policy": key_policy()})),
            ("resource-policies/b.json", json!({"ResourceArn": KEY, "Policy": key_policy().to_string()})),
        ]);
        assert_eq!(
            got,
            [format!(
                "resource-policies/b.json: /ResourceArn: duplicate resource policy for `{KEY}`: `resource-policies/a.json` has one already"
            )]
        );
    }
}

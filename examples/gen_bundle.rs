//! Writes a large, realistic bundle for the runtime benchmarks (issue #5):
//!
//!     cargo run --release --example gen_bundle -- OUT_DIR [N]      # N ≈ policies, default 10000
//!
//! The bundle is the default bundle (`policies/`, so its request mix and tests still apply unchanged)
//! plus about N generated policies: N/5 roles (trust policy, 2 inline policies, 3 attached managed
//! policies, a permissions boundary on one role in four, a `Team` tag), N/20 users (an inline policy,
//! an attached managed policy, 2 groups), N/100 groups, 3 more SCPs, and the managed policies that make
//! up the rest. Statements use wildcards, policy variables (`${aws:username}`,
//! `${aws:PrincipalTag/Team}`), conditions (string, ARN, IP, Bool, Null, set operators), `NotAction`,
//! `NotResource` and `Deny`. Deterministic (fixed seed). The generated SCPs deny only actions the default
//! request mix never asks for, so `warden test OUT_DIR` passes like `warden test policies`.
//!
//! The benchmark `benches/runtime.rs` uses [`generate`] directly.
use serde_json::{Value, json};
use std::path::Path;

const ACCOUNT: &str = "111122223333";
const REGION: &str = "us-east-1";

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        let i = self.below(xs.len());
        xs.get(i).copied().unwrap_or_default()
    }
}

/// What a generated statement may grant, per service.
const SERVICES: &[(&str, &[&str])] = &[
    ("s3", &["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket", "s3:GetBucketLocation", "s3:Get*"]),
    (
        "sagemaker",
        &[
            "sagemaker:CreateTrainingJob",
            "sagemaker:DescribeTrainingJob",
            "sagemaker:StopTrainingJob",
            "sagemaker:CreateProcessingJob",
            "sagemaker:CreateModel",
            "sagemaker:CreateEndpoint",
            "sagemaker:InvokeEndpoint",
            "sagemaker:Describe*",
            "sagemaker:List*",
            "sagemaker:CreateApp",
            "sagemaker:DeleteApp",
        ],
    ),
    ("logs", &["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:GetLogEvents"]),
    ("kms", &["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey", "kms:Encrypt"]),
    ("ecr", &["ecr:GetAuthorizationToken", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]),
    ("ec2", &["ec2:DescribeSubnets", "ec2:DescribeVpcs", "ec2:CreateNetworkInterface", "ec2:Describe*"]),
    ("glue", &["glue:GetTable", "glue:GetDatabase", "glue:GetPartitions"]),
    ("athena", &["athena:StartQueryExecution", "athena:GetQueryResults"]),
    ("cloudwatch", &["cloudwatch:PutMetricData", "cloudwatch:GetMetricData"]),
];

fn team(i: usize) -> String {
    format!("Team{:03}", i % 200)
}

/// One statement of a generated identity policy; `k` chooses its shape.
fn statement(rng: &mut Rng, owner: usize, k: usize) -> Value {
    let t = team(owner);
    let tl = t.to_lowercase();
    let sid = format!("S{k}x{}", rng.below(1000));
    match rng.below(10) {
        0 => json!({"Sid": sid, "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
            "Resource": [format!("arn:aws:s3:::{tl}-data-{}/*", rng.below(50)),
                         format!("arn:aws:s3:::{tl}-shared/projects/*")],
            "Condition": {"Bool": {"aws:SecureTransport": "true"}}}),
        1 => json!({"Sid": sid, "Effect": "Allow", "Action": "s3:ListBucket",
            "Resource": format!("arn:aws:s3:::{tl}-home"),
            "Condition": {"StringLike": {"s3:prefix": ["${aws:username}/*", "shared/*"]}}}),
        2 => json!({"Sid": sid, "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            "Resource": format!("arn:aws:s3:::{tl}-home/${{aws:username}}/*")}),
        3 => json!({"Sid": sid, "Effect": "Allow",
            "Action": ["sagemaker:CreateTrainingJob", "sagemaker:CreateProcessingJob", "sagemaker:Describe*",
                       "sagemaker:Stop*"],
            "Resource": format!("arn:aws:sagemaker:{REGION}:{ACCOUNT}:*/{tl}-*"),
            "Condition": {"StringEquals": {"aws:ResourceTag/Team": "${aws:PrincipalTag/Team}"},
                          "ForAllValues:StringLike": {"sagemaker:InstanceTypes": ["ml.t3.*", "ml.m5.*", "ml.g5.*"]}}}),
        4 => json!({"Sid": sid, "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:CreateLogGroup"],
            "Resource": format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker/{tl}/*")}),
        5 => json!({"Sid": sid, "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/{:08x}-{:04x}-4000-8000-{:012x}",
                rng.next() as u32, rng.below(0xffff), rng.next() & 0xffff_ffff_ffff),
            "Condition": {"StringEquals": {"kms:ViaService": [format!("s3.{REGION}.amazonaws.com"),
                                                              format!("sagemaker.{REGION}.amazonaws.com")]}}}),
        6 => json!({"Sid": sid, "Effect": "Allow", "Action": "iam:PassRole",
            "Resource": format!("arn:aws:iam::{ACCOUNT}:role/gen/{tl}-*"),
            "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}}),
        7 => {
            json!({"Sid": sid, "Effect": "Deny", "NotAction": ["s3:*", "sagemaker:*", "logs:*", "kms:*", "sts:*", "iam:PassRole"],
            "Resource": "*",
            "Condition": {"NotIpAddress": {"aws:SourceIp": [format!("10.{}.0.0/16", owner % 250), "192.168.0.0/16"]},
                          "Bool": {"aws:ViaAWSService": "false"}}})
        }
        8 => {
            let i = rng.below(SERVICES.len());
            let (svc, actions) = SERVICES.get(i).copied().unwrap_or(("s3", &["GetObject"]));
            let a: Vec<&str> = (0..1 + rng.below(3)).map(|_| rng.pick(actions)).collect();
            json!({"Sid": sid, "Effect": "Allow", "Action": a,
                "Resource": format!("arn:aws:{svc}:{REGION}:{ACCOUNT}:*"),
                "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": ["Team", "Project"]},
                              "StringEqualsIgnoreCase": {"aws:RequestTag/Team": t}}})
        }
        _ => json!({"Sid": sid, "Effect": "Deny", "Action": ["s3:DeleteBucket", "s3:PutBucketPolicy"],
            "NotResource": format!("arn:aws:s3:::{tl}-scratch*"),
            "Condition": {"ArnNotLike": {"aws:PrincipalArn": format!("arn:aws:iam::{ACCOUNT}:role/gen/admin-*")},
                          "Null": {"aws:ResourceTag/Team": "false"}}}),
    }
}

fn document(rng: &mut Rng, owner: usize) -> Value {
    let n = 2 + rng.below(4);
    let stmts: Vec<Value> = (0..n).map(|k| statement(rng, owner, k)).collect();
    json!({"Version": "2012-10-17", "Statement": stmts})
}

fn trust(rng: &mut Rng, i: usize) -> Value {
    let t = team(i);
    match rng.below(3) {
        0 => json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"Service": ["sagemaker.amazonaws.com", "glue.amazonaws.com"]},
            "Action": ["sts:AssumeRole", "sts:SetContext"]}]}),
        1 => json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "Launcher", "Effect": "Allow",
             "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:role/gen/launcher-{}", i % 40)},
             "Action": ["sts:AssumeRole", "sts:TagSession"],
             "Condition": {"StringEquals": {"aws:RequestTag/Team": t},
                           "StringLike": {"sts:RoleSessionName": "${aws:username}-*"}}},
            {"Sid": "Service", "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"},
             "Action": "sts:AssumeRole"}]}),
        _ => json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:root")},
            "Action": "sts:AssumeRole",
            "Condition": {"ArnLike": {"aws:PrincipalArn": format!("arn:aws:iam::{ACCOUNT}:user/gen-user-*")},
                          "Bool": {"aws:MultiFactorAuthPresent": "true"}}}]}),
    }
}

fn managed_arn(i: usize) -> String {
    format!("arn:aws:iam::{ACCOUNT}:policy/gen/GenPolicy{i:05}")
}

fn write(root: &Path, rel: &str, v: &Value) -> std::io::Result<()> {
    let path = root.join(rel);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, serde_json::to_vec_pretty(v).map_err(std::io::Error::other)?)
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &target)?;
        } else {
            std::fs::copy(e.path(), target)?;
        }
    }
    Ok(())
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, Copy, Default)]
pub struct Generated {
    /// Policies written (managed, inline, trust, SCP), not counting the default bundle's.
    pub policies: usize,
    /// Roles, users, groups written.
    pub roles: usize,
    /// Users written.
    pub users: usize,
    /// Groups written.
    pub groups: usize,
}

/// Writes the default bundle `default_dir` plus about `n` generated policies into `out` (created).
pub fn generate(default_dir: &Path, out: &Path, n: usize) -> std::io::Result<Generated> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    copy_dir(default_dir, out)?;
    let roles = (n / 5).max(1);
    let users = (n / 20).max(1);
    let groups = (n / 100).max(1);
    let scps = 3;
    // Each role: trust + 2 inline; each user and group: 1 inline; the rest are managed policies.
    let managed = n.saturating_sub(3 * roles + users + groups + scps + 1).max(1);
    let mut g = Generated { policies: 0, roles, users, groups };

    for i in 0..managed {
        let doc = document(&mut rng, i);
        write(
            out,
            &format!("iam/policies/GenPolicy{i:05}.json"),
            &json!({"PolicyName": format!("GenPolicy{i:05}"), "Arn": managed_arn(i), "PolicyDocument": doc}),
        )?;
    }
    // One permissions boundary, realistic shape: allow the services teams use, deny IAM changes.
    write(
        out,
        "iam/policies/GenBoundary.json",
        &json!({"PolicyName": "GenBoundary", "Arn": format!("arn:aws:iam::{ACCOUNT}:policy/gen/GenBoundary"),
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [
                {"Sid": "Services", "Effect": "Allow",
                 "Action": ["s3:*", "sagemaker:*", "logs:*", "kms:*", "ecr:*", "ec2:Describe*", "glue:Get*",
                            "athena:*", "cloudwatch:*", "iam:PassRole", "sts:*"],
                 "Resource": "*"},
                {"Sid": "NoIamChanges", "Effect": "Deny", "Action": ["iam:Create*", "iam:Delete*", "iam:Put*",
                    "iam:Attach*", "iam:Detach*"], "Resource": "*"}]}}),
    )?;
    g.policies += managed + 1;

    for i in 0..roles {
        let t = team(i);
        let attached: Vec<Value> = (0..3)
            .map(|_| {
                let m = rng.below(managed);
                json!({"PolicyName": format!("GenPolicy{m:05}"), "PolicyArn": managed_arn(m)})
            })
            .collect();
        let mut attached = attached;
        attached.dedup();
        let mut role = json!({
            "RoleName": format!("gen-role-{i:05}"),
            "Path": "/gen/",
            "Arn": format!("arn:aws:iam::{ACCOUNT}:role/gen/gen-role-{i:05}"),
            "AssumeRolePolicyDocument": trust(&mut rng, i),
            "AttachedManagedPolicies": attached,
            "RolePolicyList": [
                {"PolicyName": "Data", "PolicyDocument": document(&mut rng, i)},
                {"PolicyName": "Compute", "PolicyDocument": document(&mut rng, i)},
            ],
            "Tags": [{"Key": "Team", "Value": t}, {"Key": "CostCenter", "Value": format!("cc-{}", i % 37)}],
        });
        if i % 4 == 0 {
            role.as_object_mut().map(|o| {
                o.insert(
                    "PermissionsBoundary".into(),
                    json!({"PermissionsBoundaryType": "PermissionsBoundaryPolicy",
                "PermissionsBoundaryArn": format!("arn:aws:iam::{ACCOUNT}:policy/gen/GenBoundary")}),
                )
            });
        }
        write(out, &format!("iam/roles/gen-role-{i:05}.json"), &role)?;
    }
    g.policies += 3 * roles;

    for i in 0..groups {
        write(
            out,
            &format!("iam/groups/gen-group-{i:03}.json"),
            &json!({"GroupName": format!("gen-group-{i:03}"), "Path": "/gen/",
                "Arn": format!("arn:aws:iam::{ACCOUNT}:group/gen/gen-group-{i:03}"),
                "GroupPolicyList": [{"PolicyName": "Team", "PolicyDocument": document(&mut rng, i)}],
                "AttachedManagedPolicies": []}),
        )?;
    }
    g.policies += groups;

    for i in 0..users {
        let m = rng.below(managed);
        write(
            out,
            &format!("iam/users/gen-user-{i:05}.json"),
            &json!({"UserName": format!("gen-user-{i:05}"), "Path": "/gen/",
                "Arn": format!("arn:aws:iam::{ACCOUNT}:user/gen/gen-user-{i:05}"),
                "GroupList": [format!("gen-group-{:03}", i % groups), format!("gen-group-{:03}", (i * 7 + 3) % groups)],
                "UserPolicyList": [{"PolicyName": "Home", "PolicyDocument": document(&mut rng, i)}],
                "AttachedManagedPolicies": [{"PolicyName": format!("GenPolicy{m:05}"), "PolicyArn": managed_arn(m)}],
                "Tags": [{"Key": "Team", "Value": team(i)}]}),
        )?;
    }
    g.policies += users;

    // SCPs apply to every principal: deny only what the default request mix never asks for.
    let scp_docs = [
        (
            "GenDenyLeaveOrg",
            json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "NoLeave", "Effect": "Deny", "Action": ["organizations:LeaveOrganization",
                "account:CloseAccount"], "Resource": "*"},
            {"Sid": "NoTrailTamper", "Effect": "Deny", "Action": ["cloudtrail:StopLogging", "cloudtrail:DeleteTrail",
                "cloudtrail:UpdateTrail"], "Resource": "*",
             "Condition": {"ArnNotLike": {"aws:PrincipalArn": format!("arn:aws:iam::{ACCOUNT}:role/gen/admin-*")}}}]}),
        ),
        (
            "GenRegionLockEc2",
            json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "Ec2Regions", "Effect": "Deny", "Action": ["ec2:*", "rds:*"], "Resource": "*",
             "Condition": {"StringNotEquals": {"aws:RequestedRegion": [REGION, "eu-west-1"]}}}]}),
        ),
        (
            "GenProtectKeys",
            json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "NoKeyDeletion", "Effect": "Deny", "Action": ["kms:ScheduleKeyDeletion", "kms:DisableKey"],
             "Resource": "*"},
            {"Sid": "NoPublicBuckets", "Effect": "Deny", "Action": ["s3:PutBucketPublicAccessBlock",
                "s3:DeletePublicAccessBlock"], "Resource": "*",
             "Condition": {"StringNotEquals": {"aws:PrincipalTag/Team": "Platform"}}}]}),
        ),
    ];
    for (name, doc) in scp_docs {
        write(out, &format!("organizations/scps/{name}.json"), &json!({"Name": name, "Content": doc}))?;
    }
    g.policies += scps;
    Ok(g)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (out, n) = match args.as_slice() {
        [out] => (out.clone(), 10_000),
        [out, n] if n.parse::<usize>().is_ok() => (out.clone(), n.parse().unwrap_or(10_000)),
        _ => {
            eprintln!("usage: gen_bundle OUT_DIR [N]   (N ≈ generated policies, default 10000)");
            std::process::exit(64);
        }
    };
    let out = Path::new(&out);
    if out.exists() && std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_some()) {
        eprintln!("gen_bundle: {} exists and is not empty", out.display());
        std::process::exit(1);
    }
    let default_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    match generate(&default_dir, out, n) {
        Ok(g) => println!(
            "{}: default bundle + {} generated policies ({} roles, {} users, {} groups, 3 SCPs)",
            out.display(),
            g.policies,
            g.roles,
            g.users,
            g.groups
        ),
        Err(e) => {
            eprintln!("gen_bundle: {e}");
            std::process::exit(1);
        }
    }
}

//! The compiled bundle: an immutable snapshot of principals, policies, SCPs, SageMaker resources and
//! the bundle's own test cases. Pure data.
use crate::policy::{Policy, StatementIndex, Warnings};
use rustc_hash::FxHashMap as HashMap;
use serde_json::Value;
use std::sync::Arc;

/// Tags with case-insensitive keys (case preserved).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tags {
    entries: Vec<(String, String, String)>,
}

impl Tags {
    /// Adds a tag; returns false if a key equal ignoring case is already present.
    pub fn insert(&mut self, key: &str, value: &str) -> bool {
        let lower = key.to_lowercase();
        if self.entries.iter().any(|(l, _, _)| *l == lower) {
            return false;
        }
        self.entries.push((lower, key.to_owned(), value.to_owned()));
        true
    }

    /// The value of a tag, by lower-cased key.
    pub fn get_lower(&self, key_lower: &str) -> Option<&str> {
        self.entries.iter().find(|(l, _, _)| l == key_lower).map(|(_, _, v)| v.as_str())
    }

    /// The value of a tag, key compared case-insensitively.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.get_lower(&key.to_lowercase())
    }

    /// (key as written, value) pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(_, k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of tags.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// An IAM user with everything that applies to it resolved.
#[derive(Debug, Clone)]
pub struct User {
    /// User name.
    pub name: String,
    /// ARN.
    pub arn: String,
    /// Account id.
    pub account: String,
    /// Unique id (`AIDA…`).
    pub user_id: String,
    /// Group names.
    pub groups: Vec<String>,
    /// Inline, attached managed, and groups' policies, in that order.
    pub identity: Vec<Arc<Policy>>,
    /// Permissions boundary.
    pub boundary: Option<Arc<Policy>>,
    /// IAM tags.
    pub tags: Tags,
    /// The file it came from.
    pub file: String,
    /// Index of the SCPs, boundary and identity policies that apply to it.
    pub index: StatementIndex,
}

/// An IAM role with everything that applies to it resolved.
#[derive(Debug, Clone)]
pub struct Role {
    /// Role name.
    pub name: String,
    /// ARN (with path).
    pub arn: String,
    /// Account id.
    pub account: String,
    /// Unique id (`AROA…`).
    pub role_id: String,
    /// Trust policy.
    pub trust: Arc<Policy>,
    /// Inline and attached managed policies.
    pub identity: Vec<Arc<Policy>>,
    /// Permissions boundary.
    pub boundary: Option<Arc<Policy>>,
    /// IAM tags.
    pub tags: Tags,
    /// The file it came from.
    pub file: String,
    /// Index of the SCPs, boundary and identity policies that apply to it.
    pub index: StatementIndex,
}

/// A resource-based policy of `resource-policies/` (S3 bucket, KMS key, SQS queue, SNS topic, Secrets
/// Manager secret…).
#[derive(Debug, Clone)]
pub struct ResourcePolicy {
    /// The resource it is attached to (`arn:aws:s3:::bucket` for a bucket policy).
    pub arn: String,
    /// The policy.
    pub policy: Arc<Policy>,
    /// The file it came from.
    pub file: String,
}

/// A SageMaker partner AI app (`DescribePartnerApp`).
#[derive(Debug, Clone)]
pub struct PartnerApp {
    /// App ARN.
    pub arn: String,
    /// Name.
    pub name: String,
    /// `comet`, `fiddler`, `deepchecks-llm-evaluation`, `lakera-guard`.
    pub app_type: String,
    /// `IAM` (or `IDC`).
    pub auth_type: String,
    /// Execution role ARN.
    pub execution_role_arn: String,
    /// `ApplicationConfig.AdminUsers`.
    pub admin_users: Vec<String>,
    /// `EnableIamSessionBasedIdentity`.
    pub iam_session_identity: bool,
    /// Tags.
    pub tags: Tags,
    /// The file it came from.
    pub file: String,
}

/// A Studio team of a per-team IAM-mode domain.
#[derive(Debug, Clone)]
pub struct Team {
    /// Team id.
    pub team_id: String,
    /// Team execution role ARN.
    pub execution_role: String,
    /// Tags given to the team's profiles.
    pub tags: Tags,
    /// Member user names.
    pub users: Vec<String>,
    /// Member Identity Center groups.
    pub groups: Vec<String>,
}

/// A Studio user profile.
#[derive(Debug, Clone)]
pub struct UserProfile {
    /// Profile name.
    pub name: String,
    /// ARN.
    pub arn: String,
    /// Identity Center user name (SSO domains).
    pub sso_user: Option<String>,
    /// Execution role, when the profile sets one.
    pub execution_role: Option<String>,
    /// Tags.
    pub tags: Tags,
}

/// A Studio domain.
#[derive(Debug, Clone)]
pub struct Domain {
    /// `d-…`
    pub domain_id: String,
    /// ARN.
    pub arn: String,
    /// Name.
    pub name: String,
    /// `SSO` or `IAM`.
    pub auth_mode: String,
    /// Trusted identity propagation enabled.
    pub tip_enabled: bool,
    /// S3 Access Grants enabled.
    pub s3_access_grants: bool,
    /// `PublicInternetOnly` or `VpcOnly`.
    pub app_network_access_type: Option<String>,
    /// Default execution role.
    pub default_execution_role: Option<String>,
    /// Tags.
    pub tags: Tags,
    /// Teams.
    pub teams: Vec<Team>,
    /// User profiles.
    pub profiles: Vec<UserProfile>,
    /// Identity Center users (user names) assigned to the domain (`AssignedUsers`).
    pub assigned_users: Vec<String>,
    /// Identity Center groups (display names) assigned to the domain (`AssignedGroups`): their members
    /// may use it. A user profile alone does not assign a user (SPEC §5.6).
    pub assigned_groups: Vec<String>,
    /// The file it came from.
    pub file: String,
}

/// An Identity Center user.
#[derive(Debug, Clone)]
pub struct IcUser {
    /// User id.
    pub user_id: String,
    /// User name.
    pub user_name: String,
}

/// An Identity Center group.
#[derive(Debug, Clone)]
pub struct IcGroup {
    /// Group id.
    pub group_id: String,
    /// Display name.
    pub name: String,
    /// Member user names.
    pub members: Vec<String>,
}

/// The Identity Center instance.
#[derive(Debug, Clone, Default)]
pub struct IdentityCenter {
    /// Instance ARN.
    pub instance_arn: Option<String>,
    /// Identity store id.
    pub identity_store_id: Option<String>,
    /// Identity store ARN.
    pub identity_store_arn: Option<String>,
    /// User background sessions enabled.
    pub background_sessions_enabled: bool,
    /// Background session duration in minutes.
    pub background_session_minutes: u32,
    /// Users.
    pub users: Vec<IcUser>,
    /// Groups.
    pub groups: Vec<IcGroup>,
}

/// One of the bundle's own test cases (`tests/*.json`), kept as JSON; `warden test` runs it.
#[derive(Debug, Clone)]
pub struct TestCase {
    /// Unique name.
    pub name: String,
    /// The file it came from.
    pub file: String,
    /// The whole case object.
    pub body: Value,
}

/// Object counts, for status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Policies (managed, inline, trust, SCP).
    pub policies: usize,
    /// Statements in them.
    pub statements: usize,
    /// Users.
    pub users: usize,
    /// Groups.
    pub groups: usize,
    /// Roles.
    pub roles: usize,
    /// SCPs.
    pub scps: usize,
    /// Partner apps.
    pub partner_apps: usize,
    /// Domains.
    pub domains: usize,
    /// Identity Center users.
    pub identity_center_users: usize,
    /// Test cases.
    pub tests: usize,
}

impl Bundle {
    /// The resource-based policy that governs `resource`: the one attached to it, or for an S3 object
    /// (`arn:aws:s3:::bucket/key`) its bucket's policy.
    pub fn resource_policy(&self, resource: &str) -> Option<&Arc<ResourcePolicy>> {
        if self.resource_policies.is_empty() {
            return None;
        }
        if let Some(rp) = self.resource_policies.get(resource) {
            return Some(rp);
        }
        let a = crate::policy::arn::parse(resource)?;
        if a.service != "s3" || !a.region.is_empty() || !a.account.is_empty() {
            return None;
        }
        let (bucket, _key) = a.resource.split_once('/')?;
        self.resource_policies.get(&format!("arn:{}:s3:::{bucket}", a.partition))
    }

    /// The role `name` of `account` in `partition`: how an assumed-role session ARN (which carries no
    /// path) names its role. Exact on all three; `arn:aws-cn:…` never names an `arn:aws:…` role.
    pub fn role_by_name(&self, partition: &str, account: &str, name: &str) -> Option<&Arc<Role>> {
        self.roles_by_name.get(name)?.iter().find(|r| {
            r.account == account && crate::policy::arn::parse(&r.arn).is_some_and(|a| a.partition == partition)
        })
    }
}

/// An immutable, validated bundle.
#[derive(Debug, Clone, Default)]
pub struct Bundle {
    /// `sha256:…` digest of the content.
    pub revision: String,
    /// Users by ARN.
    pub users: HashMap<String, Arc<User>>,
    /// Roles by ARN.
    pub roles: HashMap<String, Arc<Role>>,
    /// Roles by name (several accounts may share one), for session ARNs (which carry no path).
    pub roles_by_name: HashMap<String, Vec<Arc<Role>>>,
    /// SCPs (`None`: the bundle has none, so none apply).
    pub scps: Option<Vec<Arc<Policy>>>,
    /// Resource-based policies by resource ARN (`resource-policies/`; role trust policies are in `roles`).
    pub resource_policies: HashMap<String, Arc<ResourcePolicy>>,
    /// Tags of resources the bundle knows (partner apps, domains, user profiles), by ARN.
    pub resource_tags: HashMap<String, Tags>,
    /// Partner apps by ARN.
    pub partner_apps: HashMap<String, Arc<PartnerApp>>,
    /// Domains by id.
    pub domains: HashMap<String, Arc<Domain>>,
    /// Identity Center.
    pub identity_center: IdentityCenter,
    /// The bundle's test cases.
    pub tests: Vec<TestCase>,
    /// `ext-authz/routes.json`: how Envoy's ext_authz requests map to IAM requests (SPEC §9).
    pub ext_authz: Option<Arc<super::ext_authz::Routes>>,
    /// Object counts.
    pub counts: Counts,
    /// Constructs AWS accepts but Access Analyzer flags (SPEC §3.1): printed by `validate`, logged and
    /// counted on load; never a reason to refuse the bundle.
    pub warnings: Warnings,
}

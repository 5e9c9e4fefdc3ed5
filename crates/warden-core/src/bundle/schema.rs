//! Strict shapes of bundle files (SPEC §3.1 "Strict shapes"): for every object the loader reads, the
//! keys it reads and the keys the AWS CLI prints there that it ignores. Any other key is an error naming
//! the JSON pointer, with the right place when the key belongs at another level of the same file
//! (`S3AccessGrants` at the top of a domain → under `/DomainSettings`) or else the nearest known key
//! (`Memebers` → `Members`). A misspelt or misplaced key is never dropped in silence. Pure.
use crate::policy::Problems;
use crate::policy::error::ptr_token;
use crate::policy::hint;
use serde_json::{Map, Value};

/// The keys of one kind of object.
#[derive(Debug)]
pub struct Shape {
    /// What the object is, in messages (`a domain`).
    pub what: &'static str,
    /// Keys the loader reads.
    pub read: &'static [&'static str],
    /// Keys the AWS CLI prints for this object that the loader does not need: accepted and ignored.
    pub aws: &'static [&'static str],
}

impl Shape {
    fn knows(&self, key: &str) -> bool {
        self.read.contains(&key) || self.aws.contains(&key)
    }
}

/// Where each shape sits in one kind of file: JSON pointers relative to the file's object, `*` for any
/// array index. Used for "belongs under" hints.
pub type Layout = &'static [(&'static str, &'static Shape)];

// === IAM (`aws iam get-account-authorization-details`, `get-role`, `get-user`, `get-group`, `get-policy`) ===

/// `iam/roles/*.json` and `RoleDetailList[]`.
pub static ROLE: Shape = Shape {
    what: "a role",
    read: &[
        "RoleName",
        "Arn",
        "RoleId",
        "AssumeRolePolicyDocument",
        "RolePolicyList",
        "AttachedManagedPolicies",
        "PermissionsBoundary",
        "Tags",
    ],
    // `aws iam get-account-authorization-details` (RoleDetailList[]) and `aws iam get-role` (Role).
    aws: &["Path", "CreateDate", "InstanceProfileList", "RoleLastUsed", "Description", "MaxSessionDuration"],
};

/// `iam/users/*.json` and `UserDetailList[]`.
pub static USER: Shape = Shape {
    what: "a user",
    read: &[
        "UserName",
        "Arn",
        "UserId",
        "GroupList",
        "UserPolicyList",
        "AttachedManagedPolicies",
        "PermissionsBoundary",
        "Tags",
    ],
    // `aws iam get-account-authorization-details` (UserDetailList[]) and `aws iam get-user` (User).
    aws: &["Path", "CreateDate", "PasswordLastUsed"],
};

/// `iam/groups/*.json` and `GroupDetailList[]`.
pub static GROUP: Shape = Shape {
    what: "a group",
    read: &["GroupName", "Arn", "GroupId", "GroupPolicyList", "AttachedManagedPolicies"],
    // `aws iam get-account-authorization-details` (GroupDetailList[]) and `aws iam get-group` (Group).
    aws: &["Path", "CreateDate"],
};

/// An inline policy (`RolePolicyList[]`, `UserPolicyList[]`, `GroupPolicyList[]`).
pub static INLINE_POLICY: Shape = Shape { what: "an inline policy", read: &["PolicyName", "PolicyDocument"], aws: &[] };

/// `AttachedManagedPolicies[]`.
pub static ATTACHED_POLICY: Shape = Shape {
    what: "an attached policy",
    read: &["PolicyArn"],
    // `aws iam get-account-authorization-details`, `aws iam list-attached-role-policies`.
    aws: &["PolicyName"],
};

/// `PermissionsBoundary`.
pub static BOUNDARY: Shape = Shape {
    what: "`PermissionsBoundary`",
    read: &["PermissionsBoundaryArn"],
    // `aws iam get-role` / `get-user`.
    aws: &["PermissionsBoundaryType"],
};

/// `Tags[]` of any object.
pub static TAG: Shape = Shape { what: "a tag", read: &["Key", "Value"], aws: &[] };

/// The object of a managed policy file that is not a bare policy document.
pub static MANAGED_POLICY: Shape = Shape {
    what: "a managed policy file",
    read: &["PolicyName", "Arn", "PolicyDocument"],
    // `aws iam get-policy` (Policy) and the `Policies[]` entries of `get-account-authorization-details`.
    aws: &[
        "PolicyId",
        "Path",
        "DefaultVersionId",
        "AttachmentCount",
        "PermissionsBoundaryUsageCount",
        "IsAttachable",
        "Description",
        "CreateDate",
        "UpdateDate",
        "Tags",
    ],
};

/// `iam/authorization-details.json`.
pub static AUTH_DETAILS: Shape = Shape {
    what: "`get-account-authorization-details` output",
    read: &["UserDetailList", "GroupDetailList", "RoleDetailList", "Policies", "IsTruncated"],
    // `aws iam get-account-authorization-details` prints `Marker` with `IsTruncated: true`.
    aws: &["Marker"],
};

/// `Policies[]` of `iam/authorization-details.json`.
pub static AUTH_POLICY: Shape = Shape {
    what: "a policy",
    read: &["PolicyName", "Arn", "PolicyVersionList"],
    // `aws iam get-account-authorization-details` (Policies[]).
    aws: &[
        "PolicyId",
        "Path",
        "DefaultVersionId",
        "AttachmentCount",
        "PermissionsBoundaryUsageCount",
        "IsAttachable",
        "Description",
        "CreateDate",
        "UpdateDate",
    ],
};

/// `PolicyVersionList[]`.
pub static POLICY_VERSION: Shape = Shape {
    what: "a policy version",
    read: &["Document", "IsDefaultVersion"],
    // `aws iam get-account-authorization-details` (PolicyVersionList[]), `aws iam get-policy-version`.
    aws: &["VersionId", "CreateDate"],
};

/// Layout of a role (file or `RoleDetailList[]` entry).
pub static ROLE_LAYOUT: Layout = &[
    ("", &ROLE),
    ("/RolePolicyList/*", &INLINE_POLICY),
    ("/AttachedManagedPolicies/*", &ATTACHED_POLICY),
    ("/PermissionsBoundary", &BOUNDARY),
    ("/Tags/*", &TAG),
];

/// Layout of a user (file or `UserDetailList[]` entry).
pub static USER_LAYOUT: Layout = &[
    ("", &USER),
    ("/UserPolicyList/*", &INLINE_POLICY),
    ("/AttachedManagedPolicies/*", &ATTACHED_POLICY),
    ("/PermissionsBoundary", &BOUNDARY),
    ("/Tags/*", &TAG),
];

/// Layout of a group (file or `GroupDetailList[]` entry).
pub static GROUP_LAYOUT: Layout =
    &[("", &GROUP), ("/GroupPolicyList/*", &INLINE_POLICY), ("/AttachedManagedPolicies/*", &ATTACHED_POLICY)];

/// Layout of `iam/authorization-details.json` (its principals have their own layouts).
pub static AUTH_DETAILS_LAYOUT: Layout =
    &[("", &AUTH_DETAILS), ("/Policies/*", &AUTH_POLICY), ("/Policies/*/PolicyVersionList/*", &POLICY_VERSION)];

/// Layout of a managed policy file.
pub static MANAGED_POLICY_LAYOUT: Layout = &[("", &MANAGED_POLICY)];

// === Organizations (`aws organizations describe-policy`) ===

/// The object of an SCP file that is not a bare policy document (or `Policy` of `describe-policy`).
pub static SCP: Shape =
    Shape { what: "an SCP file", read: &["Name", "Content", "PolicyDocument", "PolicySummary"], aws: &[] };

/// `aws organizations describe-policy` output: `{"Policy": {...}}`.
pub static SCP_OUTPUT: Shape = Shape { what: "`describe-policy` output", read: &["Policy"], aws: &[] };

/// `PolicySummary`.
pub static SCP_SUMMARY: Shape = Shape {
    what: "`PolicySummary`",
    read: &["Name"],
    // `aws organizations describe-policy` (Policy.PolicySummary).
    aws: &["Id", "Arn", "Description", "Type", "AwsManaged"],
};

/// Layout of an SCP file.
pub static SCP_LAYOUT: Layout = &[
    ("", &SCP),
    ("/PolicySummary", &SCP_SUMMARY),
    ("", &SCP_OUTPUT),
    ("/Policy", &SCP),
    ("/Policy/PolicySummary", &SCP_SUMMARY),
];

// === Resource-based policies (`aws s3api get-bucket-policy`, `aws kms get-key-policy`, …) ===

/// `resource-policies/*.json`: `{"ResourceArn", "Policy"}`.
pub static RESOURCE_POLICY: Shape = Shape {
    what: "a resource policy file",
    read: &["ResourceArn", "Policy"],
    // `aws kms get-key-policy` prints `PolicyName` (always `default`) beside `Policy`.
    aws: &["PolicyName"],
};

/// Layout of a resource policy file.
pub static RESOURCE_POLICY_LAYOUT: Layout = &[("", &RESOURCE_POLICY)];

// === SageMaker (`aws sagemaker describe-partner-app`, `describe-domain`, `describe-user-profile`) ===

/// `sagemaker/partner-apps/*.json`.
pub static PARTNER_APP: Shape = Shape {
    what: "a partner app",
    read: &[
        "Arn",
        "Name",
        "Type",
        "AuthType",
        "ExecutionRoleArn",
        "ApplicationConfig",
        "EnableIamSessionBasedIdentity",
        "Tags",
    ],
    // `aws sagemaker describe-partner-app`.
    aws: &[
        "Status",
        "CreationTime",
        "LastModifiedTime",
        "KmsKeyId",
        "BaseUrl",
        "MaintenanceConfig",
        "Tier",
        "Version",
        "Error",
        "EnableAutoMinorVersionUpgrade",
        "CurrentVersionEolDate",
        "AvailableUpgrade",
        "IdcConfig",
    ],
};

/// `ApplicationConfig` of a partner app.
pub static APP_CONFIG: Shape = Shape {
    what: "`ApplicationConfig`",
    read: &["AdminUsers"],
    // `aws sagemaker describe-partner-app` (ApplicationConfig).
    aws: &["Arguments", "AssignedGroupPatterns", "RoleGroupAssignments"],
};

/// Layout of a partner app file.
pub static PARTNER_APP_LAYOUT: Layout = &[("", &PARTNER_APP), ("/ApplicationConfig", &APP_CONFIG), ("/Tags/*", &TAG)];

/// `sagemaker/domains/*.json`: `describe-domain` output plus Warden's teams, profiles and assignments.
pub static DOMAIN: Shape = Shape {
    what: "a domain",
    read: &[
        "DomainId",
        "DomainArn",
        "DomainName",
        "AuthMode",
        "AppNetworkAccessType",
        "DefaultUserSettings",
        "DomainSettings",
        "Tags",
        "AssignedUsers",
        "AssignedGroups",
        "Teams",
        "UserProfiles",
    ],
    // `aws sagemaker describe-domain`.
    aws: &[
        "HomeEfsFileSystemId",
        "SingleSignOnManagedApplicationInstanceId",
        "SingleSignOnApplicationArn",
        "Status",
        "CreationTime",
        "LastModifiedTime",
        "FailureReason",
        "SecurityGroupIdForDomainBoundary",
        "HomeEfsFileSystemKmsKeyId",
        "SubnetIds",
        "Url",
        "VpcId",
        "KmsKeyId",
        "AppSecurityGroupManagement",
        "TagPropagation",
        "DefaultSpaceSettings",
    ],
};

/// `DomainSettings` of a domain.
pub static DOMAIN_SETTINGS: Shape = Shape {
    what: "`DomainSettings`",
    read: &["TrustedIdentityPropagationSettings", "S3AccessGrants"],
    // `aws sagemaker describe-domain` (DomainSettings).
    aws: &[
        "SecurityGroupIds",
        "RStudioServerProDomainSettings",
        "ExecutionRoleIdentityConfig",
        "DockerSettings",
        "AmazonQSettings",
        "UnifiedStudioSettings",
        "IpAddressType",
    ],
};

/// `TrustedIdentityPropagationSettings` and `S3AccessGrants`.
pub static STATUS_SETTING: Shape = Shape { what: "a setting", read: &["Status"], aws: &[] };

/// What `describe-domain` prints in `DefaultUserSettings` and `describe-user-profile` in `UserSettings`,
/// besides `ExecutionRole`.
const USER_SETTINGS_AWS: &[&str] = &[
    "SecurityGroups",
    "SharingSettings",
    "JupyterServerAppSettings",
    "KernelGatewayAppSettings",
    "TensorBoardAppSettings",
    "RStudioServerProAppSettings",
    "RSessionAppSettings",
    "CanvasAppSettings",
    "CodeEditorAppSettings",
    "JupyterLabAppSettings",
    "SpaceStorageSettings",
    "DefaultLandingUri",
    "StudioWebPortal",
    "CustomPosixUserConfig",
    "CustomFileSystemConfigs",
    "StudioWebPortalSettings",
    "AutoMountHomeEFS",
];

/// `DefaultUserSettings` of a domain.
pub static DEFAULT_USER_SETTINGS: Shape =
    Shape { what: "`DefaultUserSettings`", read: &["ExecutionRole"], aws: USER_SETTINGS_AWS };

/// A team of a domain.
pub static TEAM: Shape = Shape { what: "a team", read: &["TeamId", "ExecutionRole", "Tags", "Members"], aws: &[] };

/// `Members` of a team.
pub static MEMBERS: Shape = Shape { what: "`Members`", read: &["Users", "Groups"], aws: &[] };

/// A user profile of a domain.
pub static USER_PROFILE: Shape = Shape {
    what: "a user profile",
    read: &["UserProfileName", "SingleSignOnUserValue", "ExecutionRole", "Tags", "UserSettings"],
    // `aws sagemaker describe-user-profile`.
    aws: &[
        "DomainId",
        "UserProfileArn",
        "HomeEfsFileSystemUid",
        "Status",
        "LastModifiedTime",
        "CreationTime",
        "FailureReason",
        "SingleSignOnUserIdentifier",
    ],
};

/// `UserSettings` of a user profile: what `describe-user-profile` prints there is accepted and ignored,
/// except `ExecutionRole`, which Warden reads one level up (on the profile itself).
pub static PROFILE_USER_SETTINGS: Shape = Shape { what: "`UserSettings`", read: &[], aws: USER_SETTINGS_AWS };

/// Layout of a domain file.
pub static DOMAIN_LAYOUT: Layout = &[
    ("", &DOMAIN),
    ("/DomainSettings", &DOMAIN_SETTINGS),
    ("/DomainSettings/TrustedIdentityPropagationSettings", &STATUS_SETTING),
    ("/DomainSettings/S3AccessGrants", &STATUS_SETTING),
    ("/DefaultUserSettings", &DEFAULT_USER_SETTINGS),
    ("/Teams/*", &TEAM),
    ("/Teams/*/Members", &MEMBERS),
    ("/UserProfiles/*", &USER_PROFILE),
    ("/UserProfiles/*/UserSettings", &PROFILE_USER_SETTINGS),
    ("/Tags/*", &TAG),
    ("/Teams/*/Tags/*", &TAG),
    ("/UserProfiles/*/Tags/*", &TAG),
];

// === IAM Identity Center (`aws sso-admin describe-instance`, `aws identitystore list-users`, `list-groups`) ===

/// `identity-center/*.json`.
pub static IDENTITY_CENTER: Shape =
    Shape { what: "an Identity Center file", read: &["Instance", "Users", "Groups"], aws: &[] };

/// `Instance`.
pub static IC_INSTANCE: Shape = Shape {
    what: "`Instance`",
    read: &["InstanceArn", "IdentityStoreId", "IdentityStoreArn", "UserBackgroundSessions"],
    // `aws sso-admin describe-instance` / `list-instances`.
    aws: &["OwnerAccountId", "Name", "CreatedDate", "Status", "StatusReason", "EncryptionConfigurationDetails"],
};

/// `UserBackgroundSessions`.
pub static IC_BACKGROUND_SESSIONS: Shape =
    Shape { what: "`UserBackgroundSessions`", read: &["Enabled", "DurationMinutes"], aws: &[] };

/// `Users[]`.
pub static IC_USER: Shape = Shape {
    what: "an Identity Center user",
    read: &["UserId", "UserName"],
    // `aws identitystore list-users` / `describe-user`.
    aws: &[
        "IdentityStoreId",
        "ExternalIds",
        "Name",
        "DisplayName",
        "NickName",
        "ProfileUrl",
        "Emails",
        "Addresses",
        "PhoneNumbers",
        "UserType",
        "Title",
        "PreferredLanguage",
        "Locale",
        "Timezone",
        "UserStatus",
        "Photos",
        "Website",
        "Birthdate",
        "Roles",
        "CreatedAt",
        "CreatedBy",
        "UpdatedAt",
        "UpdatedBy",
    ],
};

/// `Groups[]` (with Warden's `Members`: user names).
pub static IC_GROUP: Shape = Shape {
    what: "an Identity Center group",
    read: &["GroupId", "DisplayName", "Members"],
    // `aws identitystore list-groups` / `describe-group`.
    aws: &["IdentityStoreId", "ExternalIds", "Description", "CreatedAt", "CreatedBy", "UpdatedAt", "UpdatedBy"],
};

/// Layout of an Identity Center file.
pub static IDENTITY_CENTER_LAYOUT: Layout = &[
    ("", &IDENTITY_CENTER),
    ("/Instance", &IC_INSTANCE),
    ("/Instance/UserBackgroundSessions", &IC_BACKGROUND_SESSIONS),
    ("/Users/*", &IC_USER),
    ("/Groups/*", &IC_GROUP),
];

// === The bundle's own tests (`tests/*.json`) ===

/// A test file.
pub static TEST_FILE: Shape = Shape { what: "a test file", read: &["cases"], aws: &[] };

/// A test case (`authorize` and `propagate` are proto JSON, checked field by field when run;
/// `ext_authz` is an HTTP request as Envoy describes it).
pub static TEST_CASE: Shape = Shape {
    what: "a test case",
    read: &["name", "description", "authorize", "propagate", "ext_authz", "remembered_admins", "expect"],
    aws: &[],
};

/// `ext_authz` of a test case: the HTTP request of an Envoy `Check`.
pub static TEST_EXT_AUTHZ: Shape =
    Shape { what: "an ext_authz request", read: &["method", "path", "host", "headers", "peer"], aws: &[] };

/// `ext_authz.peer` of a test case: `attributes.source` of the `Check`.
pub static TEST_PEER: Shape = Shape { what: "a peer", read: &["address", "principal"], aws: &[] };

/// `expect` of a test case: what `warden test` compares.
pub static TEST_EXPECT: Shape = Shape {
    what: "`expect`",
    read: &[
        "decision",
        "determining",
        "code",
        "message_contains",
        "errorInfo",
        "userName",
        "source",
        "adminRole",
        "trustVerified",
        "profileName",
        "profileArn",
        "executionRoleArn",
        "jobExecutionRoleArn",
        "effectiveMaxRuntimeSeconds",
        "onBehalfOfUserId",
        "cached",
        "status",
        "route",
        "headers",
    ],
    aws: &[],
};

/// `determining[]` of `expect`.
pub static TEST_DETERMINING: Shape =
    Shape { what: "a determining statement", read: &["policy", "sid", "check"], aws: &[] };

/// `errorInfo` of `expect`: the `google.rpc.ErrorInfo` of a PropagateIdentity denial.
pub static TEST_ERROR_INFO: Shape = Shape { what: "`errorInfo`", read: &["reason", "metadata"], aws: &[] };

/// `remembered_admins[]` of a test case.
pub static TEST_REMEMBERED: Shape = Shape { what: "a remembered admin", read: &["app_arn", "user_name"], aws: &[] };

/// Layout of a test file.
pub static TEST_LAYOUT: Layout = &[
    ("", &TEST_FILE),
    ("/cases/*", &TEST_CASE),
    ("/cases/*/expect", &TEST_EXPECT),
    ("/cases/*/expect/determining/*", &TEST_DETERMINING),
    ("/cases/*/expect/errorInfo", &TEST_ERROR_INFO),
    ("/cases/*/remembered_admins/*", &TEST_REMEMBERED),
    ("/cases/*/ext_authz", &TEST_EXT_AUTHZ),
    ("/cases/*/ext_authz/peer", &TEST_PEER),
];

/// Where the shapes of a layout sit: the layout, and the pointer of its root in the file (`""` for the
/// file itself, `/RoleDetailList/3` for a role inside `get-account-authorization-details` output).
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    /// The layout.
    pub layout: Layout,
    /// The pointer of the layout's root.
    pub base: &'a str,
}

impl<'a> Place<'a> {
    /// The file itself is the layout's root.
    pub fn file(layout: Layout) -> Place<'static> {
        Place { layout, base: "" }
    }

    /// The layout's root is at `base`.
    pub fn at(layout: Layout, base: &'a str) -> Place<'a> {
        Place { layout, base }
    }
}

/// Reports every key of `obj` (at pointer `at`) that `shape` does not know, with a hint.
pub fn check(obj: &Map<String, Value>, at: &str, shape: &Shape, place: Place<'_>, p: &mut Problems<'_>) {
    for key in obj.keys() {
        if shape.knows(key) {
            continue;
        }
        let field = format!("{at}/{}", ptr_token(key));
        let hint = match elsewhere(key, at, shape, place) {
            Some(there) => {
                p.misplaced(&there, key, &field);
                let shown = if there.is_empty() { "/" } else { there.as_str() };
                format!(": it belongs under `{shown}`")
            }
            None => match hint::nearest(key, shape.read.iter().chain(shape.aws).copied()) {
                Some(meant) => {
                    p.misspelt(at, meant, key);
                    format!(": did you mean `{meant}`?")
                }
                None => String::new(),
            },
        };
        p.push(field, format!("unknown key `{key}` in {}{hint}", shape.what));
    }
}

/// The pointer of the object that reads `key`, for a key that belongs at another level of the same
/// layout: the one sharing the longest prefix with `at`, the first listed on a tie.
fn elsewhere(key: &str, at: &str, shape: &Shape, place: Place<'_>) -> Option<String> {
    let relative = at.strip_prefix(place.base).unwrap_or(at);
    place
        .layout
        .iter()
        .filter(|(_, s)| !std::ptr::eq(*s, shape) && s.read.contains(&key))
        .map(|(pattern, _)| format!("{}{}", place.base, instantiate(pattern, relative)))
        .filter(|there| there.as_str() != at)
        .min_by_key(|there| std::cmp::Reverse(common_prefix(there, at)))
}

fn common_prefix(a: &str, b: &str) -> usize {
    a.split('/').zip(b.split('/')).take_while(|(x, y)| x == y).count()
}

/// `pattern` with each `*` replaced by the index at the same depth of `at` when the segments before it
/// match, else by `N`.
fn instantiate(pattern: &str, at: &str) -> String {
    let at_segments: Vec<&str> = at.split('/').collect();
    let mut matching = true;
    let mut out = Vec::new();
    for (i, seg) in pattern.split('/').enumerate() {
        let here = at_segments.get(i).copied();
        if seg == "*" {
            match here.filter(|_| matching) {
                Some(index) if index.parse::<usize>().is_ok() => out.push(index.to_owned()),
                _ => {
                    matching = false;
                    out.push("N".to_owned());
                }
            }
        } else {
            matching = matching && here == Some(seg);
            out.push(seg.to_owned());
        }
    }
    out.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::ProblemList;
    use serde_json::json;

    fn problems_of(v: &Value, at: &str, shape: &Shape, place: Place<'_>) -> Vec<String> {
        let mut list = ProblemList::new();
        let mut p = Problems::new("f.json", &mut list);
        if let Some(o) = v.as_object() {
            check(o, at, shape, place, &mut p);
        }
        list.into_sorted().into_iter().map(|p| format!("{}: {}", p.field, p.message)).collect()
    }

    #[test]
    fn known_and_aws_printed_keys_pass_unknown_ones_are_named() {
        let v = json!({"RoleName": "R", "RoleLastUsed": {}, "Nonsense": 1});
        assert_eq!(
            problems_of(&v, "", &ROLE, Place::file(ROLE_LAYOUT)),
            ["/Nonsense: unknown key `Nonsense` in a role"]
        );
    }

    #[test]
    fn a_key_of_another_level_is_shown_its_place_with_the_index_of_the_object() {
        let v = json!({"ExecutionRole": "arn:aws:iam::111122223333:role/R"});
        assert_eq!(
            problems_of(&v, "/UserProfiles/3/UserSettings", &PROFILE_USER_SETTINGS, Place::file(DOMAIN_LAYOUT)),
            [
                "/UserProfiles/3/UserSettings/ExecutionRole: unknown key `ExecutionRole` in `UserSettings`: it belongs under `/UserProfiles/3`"
            ]
        );
        let v = json!({"S3AccessGrants": {"Status": "ENABLED"}});
        assert_eq!(
            problems_of(&v, "", &DOMAIN, Place::file(DOMAIN_LAYOUT)),
            ["/S3AccessGrants: unknown key `S3AccessGrants` in a domain: it belongs under `/DomainSettings`"]
        );
    }

    #[test]
    fn a_layout_inside_a_file_keeps_its_base() {
        // A role inside `get-account-authorization-details` output.
        let v = json!({"PermissionsBoundaryArn": "arn:aws:iam::111122223333:policy/B"});
        assert_eq!(
            problems_of(&v, "/RoleDetailList/2", &ROLE, Place::at(ROLE_LAYOUT, "/RoleDetailList/2")),
            [
                "/RoleDetailList/2/PermissionsBoundaryArn: unknown key `PermissionsBoundaryArn` in a role: it belongs under `/RoleDetailList/2/PermissionsBoundary`"
            ]
        );
    }

    #[test]
    fn a_near_miss_gets_the_nearest_key_and_a_far_one_nothing() {
        let v = json!({"Memebers": {}, "Colour": "blue"});
        assert_eq!(
            problems_of(&v, "/Teams/0", &TEAM, Place::file(DOMAIN_LAYOUT)),
            [
                "/Teams/0/Colour: unknown key `Colour` in a team",
                "/Teams/0/Memebers: unknown key `Memebers` in a team: did you mean `Members`?"
            ]
        );
    }

    #[test]
    fn instantiate_fills_indexes_only_where_the_path_matches() {
        assert_eq!(instantiate("/UserProfiles/*", "/UserProfiles/7/UserSettings"), "/UserProfiles/7");
        assert_eq!(instantiate("/Teams/*/Members", "/UserProfiles/7"), "/Teams/N/Members");
        assert_eq!(instantiate("/DomainSettings", ""), "/DomainSettings");
    }

    #[test]
    fn no_shape_lists_a_key_twice() {
        let layouts = [
            ROLE_LAYOUT,
            USER_LAYOUT,
            GROUP_LAYOUT,
            AUTH_DETAILS_LAYOUT,
            MANAGED_POLICY_LAYOUT,
            SCP_LAYOUT,
            RESOURCE_POLICY_LAYOUT,
            PARTNER_APP_LAYOUT,
            DOMAIN_LAYOUT,
            IDENTITY_CENTER_LAYOUT,
            TEST_LAYOUT,
        ];
        for (_, shape) in layouts.iter().flat_map(|l| l.iter()) {
            let mut keys: Vec<&str> = shape.read.iter().chain(shape.aws).copied().collect();
            let n = keys.len();
            keys.sort_unstable();
            keys.dedup();
            assert_eq!(keys.len(), n, "{} lists a key twice", shape.what);
        }
    }
}

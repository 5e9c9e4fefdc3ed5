//! Builds a [`Bundle`] from `(relative path, bytes)` pairs: classifies files by location, parses them
//! strictly, compiles every policy, resolves attachments and groups, and collects **every** problem.
//! Pure: the caller reads the files.
use super::fields::{bool_field, list_field, object, object_field, str_field, string_list, tags_field};
use super::model::{Bundle, Counts, Role, Tags, TestCase, User};
use super::schema::{self, Layout, Place, Shape};
use super::{resource, sagemaker};
use crate::policy::error::ptr_token;
use crate::policy::{
    Layer, Policy, PolicyKind, Problem, ProblemList, Problems, StatementIndex, arn, document_value, json,
};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;

/// Largest file accepted (SPEC §3.1).
pub const MAX_FILE_BYTES: usize = 10 << 20;
/// Largest bundle accepted (all files).
pub const MAX_BUNDLE_BYTES: usize = 256 << 20;
/// Most files accepted.
pub const MAX_FILES: usize = 100_000;

/// The content digest: SHA-256 over the sorted (path, bytes) pairs.
pub fn revision_of(files: &[(String, Vec<u8>)]) -> String {
    let mut h = Sha256::new();
    for (path, bytes) in files {
        h.update((path.len() as u64).to_be_bytes());
        h.update(path.as_bytes());
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    }
    let d = h.finalize();
    let mut s = String::with_capacity(7 + 64);
    s.push_str("sha256:");
    for b in d {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

#[derive(Debug)]
struct RawManaged {
    name: String,
    arn: Option<String>,
    doc: Value,
    at: String,
    file: String,
}

#[derive(Debug, Default)]
struct RawPrincipal {
    name: String,
    arn: String,
    id: Option<String>,
    inline: Vec<(String, Value, String)>,
    attached: Vec<(String, String)>,
    boundary: Option<(String, String)>,
    tags: Tags,
    groups: Vec<String>,
    trust: Option<(Value, String)>,
    at: String,
    file: String,
}

/// A managed policy or group that could not be built: what names it, and where it went wrong. A
/// reference to it that then fails is reported as a consequence of that, not as a second root cause.
#[derive(Debug)]
struct Failed {
    /// Its name (the file stem, for a file that is not even JSON).
    name: Option<String>,
    /// Its ARN, when it was read.
    arn: Option<String>,
    /// The file.
    file: String,
    /// The pointer of the failed part (empty: the whole file).
    at: String,
}

impl Failed {
    /// ` (because `FILE` is invalid)`, naming the pointer when it is not the whole file.
    fn because(&self) -> String {
        if self.at.is_empty() {
            format!(" (because `{}` is invalid)", self.file)
        } else {
            format!(" (because `{}` is invalid at `{}`)", self.file, self.at)
        }
    }
}

#[derive(Default)]
struct Raw {
    managed: Vec<RawManaged>,
    users: Vec<RawPrincipal>,
    roles: Vec<RawPrincipal>,
    groups: Vec<RawPrincipal>,
    scps: Vec<(String, Value, String, String)>,
    /// Managed policies that could not be built.
    failed_managed: Vec<Failed>,
    /// Group files that are not JSON.
    failed_groups: Vec<Failed>,
}

/// Builds a bundle; every problem is returned when it is invalid.
pub fn from_files(files: Vec<(String, Vec<u8>)>) -> Result<Bundle, Vec<Problem>> {
    from_read(files, Vec::new())
}

/// Builds a bundle from the files a directory reader read and the problems it met (entries it refused
/// to read); every problem is returned, sorted and capped, when it is invalid. A bundle without a JSON
/// file is invalid (SPEC §3.1: an empty bundle is not a policy).
pub fn from_read(mut files: Vec<(String, Vec<u8>)>, reading: Vec<Problem>) -> Result<Bundle, Vec<Problem>> {
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let mut problems = ProblemList::new();
    problems.extend(reading);
    let total: usize = files.iter().map(|f| f.1.len()).sum();
    if files.len() > MAX_FILES {
        problems.push(Problem {
            file: ".".into(),
            field: String::new(),
            message: format!("{} files exceed the limit of {MAX_FILES}", files.len()),
        });
        return Err(problems.into_sorted());
    }
    if total > MAX_BUNDLE_BYTES {
        problems.push(Problem {
            file: ".".into(),
            field: String::new(),
            message: format!("{total} bytes exceed the bundle limit of {MAX_BUNDLE_BYTES}"),
        });
        return Err(problems.into_sorted());
    }
    let revision = revision_of(&files);
    let mut raw = Raw::default();
    let mut apps = Vec::new();
    let mut domains = Vec::new();
    let mut ic_docs = Vec::new();
    let mut tests = Vec::new();
    let mut ext_authz = Vec::new();
    let mut resource_policies = Vec::new();
    let mut json_files = 0usize;
    for (path, bytes) in &files {
        let mut p = Problems::new(path, &mut problems);
        let name = path.rsplit('/').next().unwrap_or(path);
        if name.ends_with(".md") || name.starts_with("README") || name.starts_with("LICENSE") {
            continue;
        }
        if !name.ends_with(".json") {
            p.push("", "unexpected file: bundles hold only `.json` files (and `.md` notes)");
            continue;
        }
        json_files += 1;
        let stem = name.trim_end_matches(".json").to_owned();
        let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
        let failed = || Failed { name: Some(stem.clone()), arn: None, file: path.clone(), at: String::new() };
        let value = if bytes.len() > MAX_FILE_BYTES {
            Err(format!("file of {} bytes exceeds the limit of {MAX_FILE_BYTES}", bytes.len()))
        } else {
            json::parse_strict_bytes(bytes).map_err(|e| format!("malformed JSON: {e}"))
        };
        let value = match value {
            Ok(v) => v,
            Err(e) => {
                p.push("", e);
                match dir {
                    "iam/policies" => raw.failed_managed.push(failed()),
                    "iam/groups" => raw.failed_groups.push(failed()),
                    _ => {}
                }
                continue;
            }
        };
        match dir {
            "iam/policies" => read_managed(&value, &stem, &mut raw, &mut p),
            "iam/roles" => read_principal(&value, "", Kind::Role, &mut raw, &mut p),
            "iam/users" => read_principal(&value, "", Kind::User, &mut raw, &mut p),
            "iam/groups" => read_principal(&value, "", Kind::Group, &mut raw, &mut p),
            "iam" if name == "authorization-details.json" => read_auth_details(&value, &mut raw, &mut p),
            "organizations/scps" => read_scp(&value, &stem, &mut raw, &mut p),
            "resource-policies" => resource_policies.push((path.clone(), value)),
            "sagemaker/partner-apps" => apps.push((path.clone(), value)),
            "sagemaker/domains" => domains.push((path.clone(), value)),
            "identity-center" => ic_docs.push((path.clone(), value)),
            "tests" => tests.push((path.clone(), value)),
            "ext-authz" if name == "routes.json" => ext_authz.push((path.clone(), value)),
            _ => p.push("", "unknown location: see docs/bundle-format.md for the bundle layout"),
        }
    }
    // Reported when nothing else is: a bundle with other problems is refused anyway, and the line would
    // only repeat that its one file was refused.
    if json_files == 0 && problems.is_empty() {
        problems.push(Problem {
            file: ".".into(),
            field: String::new(),
            message: "the bundle has no files: a half-swapped mount?".into(),
        });
    }
    let mut bundle = Bundle { revision, ..Bundle::default() };
    let mut counts = Counts::default();
    resolve_iam(raw, &mut bundle, &mut counts, &mut problems);
    resource::read_resource_policies(&resource_policies, &mut bundle, &mut counts, &mut problems);
    sagemaker::read_partner_apps(&apps, &mut bundle, &mut problems);
    sagemaker::read_identity_center(&ic_docs, &mut bundle, &mut problems);
    sagemaker::read_domains(&domains, &mut bundle, &mut problems);
    read_tests(&tests, &mut bundle, &mut problems);
    for (path, value) in &ext_authz {
        bundle.ext_authz = super::ext_authz::read_routes(path, value, &mut problems).map(Arc::new);
    }
    counts.partner_apps = bundle.partner_apps.len();
    counts.domains = bundle.domains.len();
    counts.identity_center_users = bundle.identity_center.users.len();
    counts.tests = bundle.tests.len();
    bundle.counts = counts;
    bundle.warnings = problems.take_warnings();
    if problems.is_empty() { Ok(bundle) } else { Err(problems.into_sorted()) }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    User,
    Role,
    Group,
}

impl Kind {
    fn shape(self) -> (&'static Shape, Layout) {
        match self {
            Kind::User => (&schema::USER, schema::USER_LAYOUT),
            Kind::Role => (&schema::ROLE, schema::ROLE_LAYOUT),
            Kind::Group => (&schema::GROUP, schema::GROUP_LAYOUT),
        }
    }
}

/// Whether an object of a policy file is a bare policy document rather than a wrapper whose keys are
/// `wrapper_keys`: it has a `Statement`, or none of those keys (so that a misspelt `Statment` is reported
/// by the document's own checks, and a stray wrapper key beside a `Statement` as an unknown element).
fn is_bare_document(o: &Map<String, Value>, wrapper_keys: &[&str]) -> bool {
    o.contains_key("Statement") || !wrapper_keys.iter().any(|k| o.contains_key(*k))
}

fn read_managed(v: &Value, stem: &str, raw: &mut Raw, p: &mut Problems<'_>) {
    let Some(o) = object(v, "", "a managed policy file", p) else {
        raw.failed_managed.push(Failed {
            name: Some(stem.to_owned()),
            arn: None,
            file: p.file().to_owned(),
            at: String::new(),
        });
        return;
    };
    if is_bare_document(o, schema::MANAGED_POLICY.read) {
        raw.managed.push(RawManaged {
            name: stem.to_owned(),
            arn: None,
            doc: v.clone(),
            at: String::new(),
            file: p.file().to_owned(),
        });
        return;
    }
    schema::check(o, "", &schema::MANAGED_POLICY, Place::file(schema::MANAGED_POLICY_LAYOUT), p);
    let name = str_field(o, "PolicyName", "", true, p);
    let arn_s = str_field(o, "Arn", "", false, p);
    let file = p.file();
    let failed = |at: &str| Failed {
        name: Some(name.clone().unwrap_or_else(|| stem.to_owned())),
        arn: arn_s.clone(),
        file: file.to_owned(),
        at: at.to_owned(),
    };
    let Some(doc) = o.get("PolicyDocument") else {
        raw.failed_managed.push(failed(""));
        p.missing("", &["PolicyDocument"], "missing `PolicyDocument` (or give a bare policy document)");
        return;
    };
    match document_value(doc) {
        Ok(d) => match name {
            Some(name) => raw.managed.push(RawManaged {
                name,
                arn: arn_s,
                doc: d,
                at: "/PolicyDocument".into(),
                file: p.file().to_owned(),
            }),
            None => raw.failed_managed.push(failed("")),
        },
        Err(e) => {
            raw.failed_managed.push(failed("/PolicyDocument"));
            p.push("/PolicyDocument", e);
        }
    }
}

fn read_principal(v: &Value, at: &str, kind: Kind, raw: &mut Raw, p: &mut Problems<'_>) {
    let what = match kind {
        Kind::User => "a user",
        Kind::Role => "a role",
        Kind::Group => "a group",
    };
    let Some(o) = object(v, at, what, p) else { return };
    let (shape, layout) = kind.shape();
    let place = Place::at(layout, at);
    schema::check(o, at, shape, place, p);
    let (name_key, inline_key) = match kind {
        Kind::User => ("UserName", "UserPolicyList"),
        Kind::Role => ("RoleName", "RolePolicyList"),
        Kind::Group => ("GroupName", "GroupPolicyList"),
    };
    let name = str_field(o, name_key, at, true, p).unwrap_or_default();
    let arn_s = str_field(o, "Arn", at, true, p).unwrap_or_default();
    let id = match kind {
        Kind::User => str_field(o, "UserId", at, false, p),
        Kind::Role => str_field(o, "RoleId", at, false, p),
        Kind::Group => str_field(o, "GroupId", at, false, p),
    };
    let mut rp =
        RawPrincipal { name, arn: arn_s, id, at: at.to_owned(), file: p.file().to_owned(), ..RawPrincipal::default() };
    for (f, item) in list_field(o, inline_key, at, p) {
        let Some(io) = object(item, &f, "an inline policy", p) else {
            continue;
        };
        schema::check(io, &f, &schema::INLINE_POLICY, place, p);
        let pname = str_field(io, "PolicyName", &f, true, p);
        match io.get("PolicyDocument").map(document_value) {
            Some(Ok(doc)) => {
                if let Some(n) = pname {
                    rp.inline.push((n, doc, format!("{f}/PolicyDocument")));
                }
            }
            Some(Err(e)) => p.push(format!("{f}/PolicyDocument"), e),
            None => p.missing(&f, &["PolicyDocument"], "missing `PolicyDocument`"),
        }
    }
    for (f, item) in list_field(o, "AttachedManagedPolicies", at, p) {
        let Some(ao) = object(item, &f, "an attached policy", p) else {
            continue;
        };
        schema::check(ao, &f, &schema::ATTACHED_POLICY, place, p);
        if let Some(a) = str_field(ao, "PolicyArn", &f, true, p) {
            rp.attached.push((a, f));
        }
    }
    if kind != Kind::Group {
        let f = format!("{at}/PermissionsBoundary");
        if let Some(bo) = object_field(o, "PermissionsBoundary", at, p) {
            schema::check(bo, &f, &schema::BOUNDARY, place, p);
            if let Some(a) = str_field(bo, "PermissionsBoundaryArn", &f, true, p) {
                rp.boundary = Some((a, f));
            }
        }
        rp.tags = tags_field(o, "Tags", at, p);
    }
    match kind {
        Kind::User => {
            rp.groups = string_list(o, "GroupList", at, p);
            raw.users.push(rp);
        }
        Kind::Role => {
            match o.get("AssumeRolePolicyDocument").map(document_value) {
                Some(Ok(doc)) => rp.trust = Some((doc, format!("{at}/AssumeRolePolicyDocument"))),
                Some(Err(e)) => p.push(format!("{at}/AssumeRolePolicyDocument"), e),
                None => p.missing(
                    at,
                    &["AssumeRolePolicyDocument"],
                    "missing `AssumeRolePolicyDocument` (the role's trust policy)",
                ),
            }
            raw.roles.push(rp);
        }
        Kind::Group => raw.groups.push(rp),
    }
}

fn read_auth_details(v: &Value, raw: &mut Raw, p: &mut Problems<'_>) {
    let Some(o) = object(v, "", "`get-account-authorization-details` output", p) else {
        return;
    };
    let place = Place::file(schema::AUTH_DETAILS_LAYOUT);
    schema::check(o, "", &schema::AUTH_DETAILS, place, p);
    if bool_field(o, "IsTruncated", "", false, p) {
        p.push(
            "/IsTruncated",
            "the output is truncated (`IsTruncated: true`): run the command without `--max-items`/`--no-paginate`",
        );
        return;
    }
    for (f, u) in list_field(o, "UserDetailList", "", p) {
        read_principal(u, &f, Kind::User, raw, p);
    }
    for (f, g) in list_field(o, "GroupDetailList", "", p) {
        read_principal(g, &f, Kind::Group, raw, p);
    }
    for (f, r) in list_field(o, "RoleDetailList", "", p) {
        read_principal(r, &f, Kind::Role, raw, p);
    }
    for (f, pol) in list_field(o, "Policies", "", p) {
        let Some(po) = object(pol, &f, "a policy", p) else {
            continue;
        };
        schema::check(po, &f, &schema::AUTH_POLICY, place, p);
        let name = str_field(po, "PolicyName", &f, true, p);
        let arn_s = str_field(po, "Arn", &f, true, p);
        let versions = list_field(po, "PolicyVersionList", &f, p);
        // Only the default version is in force.
        let mut default = Vec::new();
        for (vf, ver) in &versions {
            let Some(vo) = object(ver, vf, "a policy version", p) else {
                continue;
            };
            schema::check(vo, vf, &schema::POLICY_VERSION, place, p);
            if bool_field(vo, "IsDefaultVersion", vf, false, p) {
                default.push((vf, vo));
            }
        }
        let file = p.file();
        let failed =
            |at: &str| Failed { name: name.clone(), arn: arn_s.clone(), file: file.to_owned(), at: at.to_owned() };
        match default.as_slice() {
            [(vf, vo)] => match vo.get("Document").map(document_value) {
                Some(Ok(doc)) => match (name.clone(), arn_s.clone()) {
                    (Some(name), Some(a)) => raw.managed.push(RawManaged {
                        name,
                        arn: Some(a),
                        doc,
                        at: format!("{vf}/Document"),
                        file: p.file().to_owned(),
                    }),
                    _ => raw.failed_managed.push(failed(&f)),
                },
                Some(Err(e)) => {
                    raw.failed_managed.push(failed(&format!("{vf}/Document")));
                    p.push(format!("{vf}/Document"), e);
                }
                None => {
                    raw.failed_managed.push(failed(vf));
                    p.missing(vf, &["Document"], "missing `Document`");
                }
            },
            [] => {
                raw.failed_managed.push(failed(&f));
                p.push(f, "no `PolicyVersionList` entry has `IsDefaultVersion: true`");
            }
            _ => {
                raw.failed_managed.push(failed(&f));
                p.push(f, "several `PolicyVersionList` entries have `IsDefaultVersion: true`");
            }
        }
    }
}

fn read_scp(v: &Value, stem: &str, raw: &mut Raw, p: &mut Problems<'_>) {
    let Some(o) = object(v, "", "an SCP file", p) else {
        return;
    };
    let mut wrapper_keys = schema::SCP.read.to_vec();
    wrapper_keys.extend(schema::SCP_OUTPUT.read);
    if is_bare_document(o, &wrapper_keys) {
        raw.scps.push((stem.to_owned(), v.clone(), String::new(), p.file().to_owned()));
        return;
    }
    let place = Place::file(schema::SCP_LAYOUT);
    // `aws organizations describe-policy` prints {"Policy": {"PolicySummary": {"Name"}, "Content"}}.
    let (o, at) = if o.contains_key("Policy") {
        schema::check(o, "", &schema::SCP_OUTPUT, place, p);
        match object_field(o, "Policy", "", p) {
            Some(inner) => (inner, "/Policy".to_owned()),
            None => return,
        }
    } else {
        (o, String::new())
    };
    schema::check(o, &at, &schema::SCP, place, p);
    let summary_at = format!("{at}/PolicySummary");
    let summary_name = match object_field(o, "PolicySummary", &at, p) {
        Some(s) => {
            schema::check(s, &summary_at, &schema::SCP_SUMMARY, place, p);
            str_field(s, "Name", &summary_at, false, p)
        }
        None => None,
    };
    let name = summary_name.or_else(|| str_field(o, "Name", &at, false, p)).unwrap_or_else(|| stem.to_owned());
    let content = match (o.get("Content"), o.get("PolicyDocument")) {
        (Some(_), Some(_)) => {
            p.push(at.clone(), "give `Content` or `PolicyDocument`, not both");
            return;
        }
        (Some(c), None) => Some(("Content", c)),
        (None, Some(d)) => Some(("PolicyDocument", d)),
        (None, None) => None,
    };
    match content.map(|(k, c)| (k, document_value(c))) {
        Some((k, Ok(doc))) => raw.scps.push((name, doc, format!("{at}/{k}"), p.file().to_owned())),
        Some((k, Err(e))) => p.push(format!("{at}/{k}"), e),
        None => p.missing(&at, &["Content", "PolicyDocument"], "missing `Content` (or give a bare policy document)"),
    }
}

/// Deterministic unique id for a principal without one: `prefix` + 17 upper-case hex digits of SHA-256(ARN).
fn derived_id(prefix: &str, arn_s: &str) -> String {
    let d = Sha256::digest(arn_s.as_bytes());
    let hex: String = d.iter().map(|b| format!("{b:02X}")).collect();
    format!("{prefix}{}", &hex[..17])
}

/// The index of what applies to a principal: its SCPs, boundary and identity policies.
fn principal_index(
    scps: Option<&[Arc<Policy>]>,
    boundary: Option<&Arc<Policy>>,
    identity: &[Arc<Policy>],
) -> StatementIndex {
    let mut layered: Vec<(Layer, Arc<Policy>)> = Vec::new();
    layered.extend(scps.unwrap_or(&[]).iter().map(|p| (Layer::Scp, p.clone())));
    layered.extend(boundary.map(|p| (Layer::Boundary, p.clone())));
    layered.extend(identity.iter().map(|p| (Layer::Identity, p.clone())));
    StatementIndex::build(&layered)
}

fn resolve_iam(mut raw: Raw, bundle: &mut Bundle, counts: &mut Counts, problems: &mut ProblemList) {
    // SCPs.
    if !raw.scps.is_empty() {
        let mut scps = Vec::new();
        let mut names: Vec<String> = Vec::new();
        for (name, doc, at, file) in &raw.scps {
            let mut p = Problems::new(file, problems);
            if names.contains(name) {
                p.push(at.clone(), format!("duplicate SCP name `{name}`"));
            }
            names.push(name.clone());
            if let Some(pol) = Policy::compile(doc, PolicyKind::Scp, &format!("scp/{name}"), at, &mut p) {
                counts.policies += 1;
                counts.statements += pol.statements.len();
                scps.push(Arc::new(pol));
            }
        }
        counts.scps = scps.len();
        bundle.scps = Some(scps);
    }
    // Managed policies by ARN, and by name for files that give no ARN.
    let mut by_arn: HashMap<String, Arc<Policy>> = HashMap::new();
    let mut by_name: HashMap<String, Arc<Policy>> = HashMap::new();
    for m in &raw.managed {
        let mut p = Problems::new(&m.file, problems);
        let aws_managed = m.arn.as_deref().is_some_and(|a| a.starts_with("arn:aws:iam::aws:policy/"));
        if let Some(a) = &m.arn {
            let ok = arn::parse(a).is_some_and(|x| x.service == "iam" && x.resource.starts_with("policy/"));
            if !ok {
                let at = format!("{}/Arn", m.at.trim_end_matches("/PolicyDocument"));
                p.push(at.clone(), format!("malformed policy ARN `{a}`"));
                raw.failed_managed.push(Failed {
                    name: Some(m.name.clone()),
                    arn: m.arn.clone(),
                    file: m.file.clone(),
                    at,
                });
                continue;
            }
        }
        let id = if aws_managed { format!("aws-policy/{}", m.name) } else { format!("policy/{}", m.name) };
        let Some(policy) = Policy::compile(&m.doc, PolicyKind::Identity, &id, &m.at, &mut p) else {
            raw.failed_managed.push(Failed {
                name: Some(m.name.clone()),
                arn: m.arn.clone(),
                file: m.file.clone(),
                at: m.at.clone(),
            });
            continue;
        };
        counts.policies += 1;
        counts.statements += policy.statements.len();
        let policy = Arc::new(policy);
        match &m.arn {
            Some(a) => {
                if by_arn.insert(a.clone(), policy).is_some() {
                    p.push("", format!("duplicate managed policy `{a}`"));
                }
            }
            None => {
                if by_name.insert(m.name.clone(), policy).is_some() {
                    p.push("", format!("duplicate managed policy name `{}`", m.name));
                }
            }
        }
    }
    let resolve = |a: &str, owner_account: &str| -> Option<Arc<Policy>> {
        if let Some(p) = by_arn.get(a) {
            return Some(p.clone());
        }
        let parsed = arn::parse(a)?;
        if parsed.account != owner_account {
            return None;
        }
        let name = parsed.resource.rsplit('/').next()?;
        by_name.get(name).cloned()
    };
    let account_of = |a: &str| arn::parse(a).map(|x| x.account.to_owned()).unwrap_or_default();
    // Why an attached ARN resolves to nothing: a managed policy of that ARN or name that failed.
    let failed_managed = &raw.failed_managed;
    let unresolved = |what: &str, a: &str| -> String {
        let name = arn::parse(a).and_then(|x| x.resource.rsplit('/').next().map(str::to_owned));
        let cause = failed_managed
            .iter()
            .find(|f| f.arn.as_deref() == Some(a))
            .or_else(|| failed_managed.iter().find(|f| f.arn.is_none() && name.is_some() && f.name == name));
        match cause {
            Some(f) => format!("{what} `{a}` is unusable{}", f.because()),
            None => format!("{what} `{a}` is not in the bundle"),
        }
    };

    // Groups.
    let mut groups: HashMap<String, Vec<Arc<Policy>>> = HashMap::new();
    for g in &raw.groups {
        let mut p = Problems::new(&g.file, problems);
        if !g.arn.is_empty()
            && !arn::parse(&g.arn).is_some_and(|a| a.service == "iam" && a.resource.starts_with("group/"))
        {
            p.push(format!("{}/Arn", g.at), format!("malformed group ARN `{}`", g.arn));
        }
        let mut pols = Vec::new();
        for (name, doc, at) in &g.inline {
            let id = format!("group/{}/inline/{name}", g.name);
            if let Some(pol) = Policy::compile(doc, PolicyKind::Identity, &id, at, &mut p) {
                counts.policies += 1;
                counts.statements += pol.statements.len();
                pols.push(Arc::new(pol));
            }
        }
        let acct = account_of(&g.arn);
        for (a, at) in &g.attached {
            match resolve(a, &acct) {
                Some(pol) => pols.push(pol),
                None => p.push(at.clone(), unresolved("attached managed policy", a)),
            }
        }
        if groups.keys().any(|k| k.eq_ignore_ascii_case(&g.name)) {
            p.push(g.at.clone(), format!("duplicate group name `{}` (names are unique ignoring case)", g.name));
        }
        groups.insert(g.name.clone(), pols);
    }
    counts.groups = groups.len();

    let mut common =
        |r: &RawPrincipal, kind: &str, problems: &mut ProblemList| -> (Vec<Arc<Policy>>, Option<Arc<Policy>>, String) {
            let mut p = Problems::new(&r.file, problems);
            let acct = account_of(&r.arn);
            let mut pols = Vec::new();
            for (name, doc, at) in &r.inline {
                let id = format!("{kind}/{}/inline/{name}", r.name);
                if let Some(pol) = Policy::compile(doc, PolicyKind::Identity, &id, at, &mut p) {
                    counts.policies += 1;
                    counts.statements += pol.statements.len();
                    pols.push(Arc::new(pol));
                }
            }
            for (a, at) in &r.attached {
                match resolve(a, &acct) {
                    Some(pol) => pols.push(pol),
                    None => p.push(at.clone(), unresolved("attached managed policy", a)),
                }
            }
            let boundary = r.boundary.as_ref().and_then(|(a, at)| {
                let b = resolve(a, &acct);
                if b.is_none() {
                    p.push(at.clone(), unresolved("permissions boundary", a));
                }
                b
            });
            (pols, boundary, acct)
        };

    // Users.
    let mut seen_users: std::collections::HashSet<String> = std::collections::HashSet::new();
    for u in &raw.users {
        let (mut identity, boundary, account) = common(u, "user", problems);
        let mut p = Problems::new(&u.file, problems);
        // Without a name or an ARN (reported missing), only what is there is checked.
        let arn_names_user = |name: &str| u.name.is_empty() || name == u.name;
        if !u.arn.is_empty()
            && !matches!(arn::parse_principal(&u.arn), Some(arn::PrincipalArn::User { name, .. }) if arn_names_user(name))
        {
            p.push(format!("{}/Arn", u.at), format!("malformed user ARN `{}` for user `{}`", u.arn, u.name));
        }
        let lower = u.name.to_lowercase();
        if !seen_users.insert(lower) {
            p.push(u.at.clone(), format!("duplicate user name `{}` (names are unique ignoring case)", u.name));
        }
        for g in &u.groups {
            match groups.get(g) {
                Some(gp) => identity.extend(gp.iter().cloned()),
                None => {
                    let message = match raw.failed_groups.iter().find(|f| f.name.as_ref() == Some(g)) {
                        Some(f) => format!("group `{g}` is unusable{}", f.because()),
                        None => format!("group `{g}` is not in the bundle"),
                    };
                    p.push(format!("{}/GroupList", u.at), message);
                }
            }
        }
        let index = principal_index(bundle.scps.as_deref(), boundary.as_ref(), &identity);
        let user = User {
            index,
            name: u.name.clone(),
            arn: u.arn.clone(),
            account,
            user_id: u.id.clone().unwrap_or_else(|| derived_id("AIDA", &u.arn)),
            groups: u.groups.clone(),
            identity,
            boundary,
            tags: u.tags.clone(),
            file: u.file.clone(),
        };
        bundle.users.insert(u.arn.clone(), Arc::new(user));
    }
    counts.users = bundle.users.len();

    // Roles.
    let mut trust_counts = (0usize, 0usize);
    let mut seen_roles: std::collections::HashSet<(String, String)> = std::collections::HashSet::new();
    for r in &raw.roles {
        let (identity, boundary, account) = common(r, "role", problems);
        let mut p = Problems::new(&r.file, problems);
        let arn_names_role = |name: &str| r.name.is_empty() || name == r.name;
        if !r.arn.is_empty()
            && !matches!(arn::parse_principal(&r.arn), Some(arn::PrincipalArn::Role { name, .. }) if arn_names_role(name))
        {
            p.push(format!("{}/Arn", r.at), format!("malformed role ARN `{}` for role `{}`", r.arn, r.name));
        }
        let key = r.name.clone();
        if !seen_roles.insert((account.clone(), r.name.to_lowercase())) {
            p.push(r.at.clone(), format!("duplicate role name `{}` (names are unique ignoring case)", r.name));
        }
        let Some((doc, at)) = &r.trust else { continue };
        let id = format!("role/{}/trust", r.name);
        let Some(trust) = Policy::compile(doc, PolicyKind::Resource, &id, at, &mut p) else {
            continue;
        };
        trust_counts.0 += 1;
        trust_counts.1 += trust.statements.len();
        let index = principal_index(bundle.scps.as_deref(), boundary.as_ref(), &identity);
        let role = Arc::new(Role {
            index,
            name: r.name.clone(),
            arn: r.arn.clone(),
            account,
            role_id: r.id.clone().unwrap_or_else(|| derived_id("AROA", &r.arn)),
            trust: Arc::new(trust),
            identity,
            boundary,
            tags: r.tags.clone(),
            file: r.file.clone(),
        });
        bundle.roles.insert(r.arn.clone(), role.clone());
        bundle.roles_by_name.entry(key).or_default().push(role);
    }
    counts.policies += trust_counts.0;
    counts.statements += trust_counts.1;
    counts.roles = bundle.roles.len();
}

fn read_tests(files: &[(String, Value)], bundle: &mut Bundle, problems: &mut ProblemList) {
    let mut names: Vec<String> = Vec::new();
    let place = Place::file(schema::TEST_LAYOUT);
    for (path, v) in files {
        let mut p = Problems::new(path, problems);
        let cases: Vec<(String, &Value)> = match v {
            Value::Object(o) => {
                schema::check(o, "", &schema::TEST_FILE, place, &mut p);
                list_field(o, "cases", "", &mut p)
            }
            Value::Array(a) => a.iter().enumerate().map(|(i, c)| (format!("/{i}"), c)).collect(),
            _ => {
                p.push("", "a test file must be {\"cases\": [...]}");
                continue;
            }
        };
        for (at, c) in cases {
            let Some(o) = object(c, &at, "a test case", &mut p) else {
                continue;
            };
            check_case(o, &at, place, &mut p);
            let Some(name) = str_field(o, "name", &at, true, &mut p) else {
                continue;
            };
            if names.contains(&name) {
                p.push(format!("{at}/name"), format!("duplicate test case name `{name}`"));
            }
            names.push(name.clone());
            bundle.tests.push(TestCase { name, file: path.clone(), body: c.clone() });
        }
    }
}

fn check_case(o: &Map<String, Value>, at: &str, place: Place<'_>, p: &mut Problems<'_>) {
    schema::check(o, at, &schema::TEST_CASE, place, p);
    let kinds = ["authorize", "propagate", "ext_authz"].iter().filter(|k| o.contains_key(**k)).count();
    if kinds != 1 {
        p.missing(
            at,
            &["authorize", "propagate", "ext_authz"],
            "a test case needs exactly one of `authorize`, `propagate` or `ext_authz`",
        );
    }
    if o.contains_key("ext_authz") {
        check_ext_authz_request(o, at, place, p);
    }
    let _ = str_field(o, "description", at, false, p);
    for (f, r) in list_field(o, "remembered_admins", at, p) {
        let Some(ro) = object(r, &f, "a remembered admin", p) else {
            continue;
        };
        schema::check(ro, &f, &schema::TEST_REMEMBERED, place, p);
        let _ = str_field(ro, "app_arn", &f, true, p);
        let _ = str_field(ro, "user_name", &f, true, p);
    }
    let expect_at = format!("{at}/expect");
    let Some(expect) = object_field(o, "expect", at, p) else {
        if !o.contains_key("expect") {
            p.missing(at, &["expect"], "missing `expect` object");
        }
        return;
    };
    schema::check(expect, &expect_at, &schema::TEST_EXPECT, place, p);
    if o.contains_key("authorize") {
        match expect.get("decision").and_then(Value::as_str) {
            Some("ALLOW" | "EXPLICIT_DENY" | "IMPLICIT_DENY") => {}
            _ => {
                let why = p.because_of(&expect_at, &["decision"]);
                p.push(
                    format!("{expect_at}/decision"),
                    format!("`decision` must be `ALLOW`, `EXPLICIT_DENY` or `IMPLICIT_DENY`{why}"),
                );
            }
        }
    }
    if o.contains_key("ext_authz") {
        check_ext_authz_expect(expect, &expect_at, p);
    } else {
        for key in EXT_AUTHZ_EXPECT_ONLY {
            if expect.contains_key(key) {
                p.push(format!("{expect_at}/{key}"), format!("`{key}` is only for `ext_authz` cases"));
            }
        }
    }
    if o.contains_key("propagate") {
        match expect.get("code").and_then(Value::as_str) {
            Some("OK" | "INVALID_ARGUMENT" | "NOT_FOUND" | "PERMISSION_DENIED" | "FAILED_PRECONDITION") => {}
            _ => {
                let why = p.because_of(&expect_at, &["code"]);
                p.push(
                    format!("{expect_at}/code"),
                    format!(
                        "`code` must be `OK`, `INVALID_ARGUMENT`, `NOT_FOUND`, `PERMISSION_DENIED` or \
                         `FAILED_PRECONDITION`{why}"
                    ),
                );
            }
        }
    }
    for (f, d) in list_field(expect, "determining", &expect_at, p) {
        let Some(dobj) = object(d, &f, "a determining statement", p) else {
            continue;
        };
        schema::check(dobj, &f, &schema::TEST_DETERMINING, place, p);
        let _ = str_field(dobj, "policy", &f, true, p);
        let _ = str_field(dobj, "sid", &f, true, p);
        if let Some(c) = str_field(dobj, "check", &f, false, p)
            && !TEST_CHECKS.contains(&c.as_str())
        {
            p.push(format!("{f}/check"), format!("unknown check `{c}`: expected one of {}", TEST_CHECKS.join(", ")));
        }
    }
    if let Some(info) = object_field(expect, "errorInfo", &expect_at, p) {
        let at = format!("{expect_at}/errorInfo");
        schema::check(info, &at, &schema::TEST_ERROR_INFO, place, p);
        if !o.contains_key("propagate") {
            p.push(at.clone(), "`errorInfo` is only for `propagate` cases");
        }
        let _ = str_field(info, "reason", &at, true, p);
        if let Some(m) = object_field(info, "metadata", &at, p) {
            for (k, v) in m {
                if !v.is_string() {
                    p.push(format!("{at}/metadata/{k}"), "metadata values are strings");
                }
            }
        }
    }
    let _ = bool_field(expect, "cached", &expect_at, false, p);
}

/// The `expect` keys only an `ext_authz` case reads.
const EXT_AUTHZ_EXPECT_ONLY: [&str; 3] = ["status", "route", "headers"];
/// The `expect` keys an `ext_authz` case reads.
const EXT_AUTHZ_EXPECT: [&str; 6] = ["decision", "status", "route", "headers", "message_contains", "determining"];
/// The outcomes of an ext_authz `Check` (the `decision` of its JSON body).
const EXT_AUTHZ_DECISIONS: [&str; 6] =
    ["ALLOW", "EXPLICIT_DENY", "IMPLICIT_DENY", "PROPAGATION_DENIED", "BAD_REQUEST", "NO_ROUTE"];
/// The HTTP statuses a `Check` answers with.
const EXT_AUTHZ_STATUSES: [u64; 4] = [200, 400, 403, 404];

/// `ext_authz` of a test case: `{method, path, host?, headers?, peer?: {address?, principal?}}`.
fn check_ext_authz_request(o: &Map<String, Value>, at: &str, place: Place<'_>, p: &mut Problems<'_>) {
    let at = format!("{at}/ext_authz");
    let Some(req) = o.get("ext_authz").and_then(|v| object(v, &at, "`ext_authz`", p)) else {
        return;
    };
    schema::check(req, &at, &schema::TEST_EXT_AUTHZ, place, p);
    if let Some(m) = str_field(req, "method", &at, true, p)
        && (m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase()))
    {
        p.push(format!("{at}/method"), format!("`{m}` is not an upper-case HTTP method such as `GET`"));
    }
    if let Some(path) = str_field(req, "path", &at, true, p)
        && !path.starts_with('/')
    {
        p.push(format!("{at}/path"), format!("`{path}` must start with `/`"));
    }
    let _ = str_field(req, "host", &at, false, p);
    if let Some(h) = object_field(req, "headers", &at, p) {
        for (k, v) in h {
            let f = format!("{at}/headers/{}", ptr_token(k));
            if k.is_empty() || k.bytes().any(|b| b.is_ascii_uppercase()) {
                p.push(f.clone(), format!("header name `{k}` must be lower case, as Envoy sends it"));
            }
            if !v.is_string() {
                p.push(f, "header values are strings");
            }
        }
    }
    if let Some(peer) = object_field(req, "peer", &at, p) {
        let pat = format!("{at}/peer");
        schema::check(peer, &pat, &schema::TEST_PEER, place, p);
        let _ = str_field(peer, "address", &pat, false, p);
        let _ = str_field(peer, "principal", &pat, false, p);
    }
}

/// `expect` of an `ext_authz` case: `decision` (required), `status`, `route`, `headers`,
/// `message_contains`, `determining`. Keys that other kinds of cases compare are refused, never
/// ignored.
fn check_ext_authz_expect(expect: &Map<String, Value>, at: &str, p: &mut Problems<'_>) {
    for key in expect.keys() {
        // (`errorInfo` has its own problem: it is only for `propagate` cases.)
        if !EXT_AUTHZ_EXPECT.contains(&key.as_str())
            && key != "errorInfo"
            && schema::TEST_EXPECT.read.contains(&key.as_str())
        {
            p.push(
                format!("{at}/{}", ptr_token(key)),
                format!(
                    "`{key}` is not compared for an `ext_authz` case (it compares {})",
                    EXT_AUTHZ_EXPECT.join(", ")
                ),
            );
        }
    }
    match expect.get("decision").and_then(Value::as_str) {
        Some(d) if EXT_AUTHZ_DECISIONS.contains(&d) => {}
        _ => {
            let why = p.because_of(at, &["decision"]);
            p.push(
                format!("{at}/decision"),
                format!("`decision` of an `ext_authz` case must be one of {}{why}", EXT_AUTHZ_DECISIONS.join(", ")),
            );
        }
    }
    match expect.get("status") {
        None => {}
        Some(v) if v.as_u64().is_some_and(|n| EXT_AUTHZ_STATUSES.contains(&n)) => {}
        Some(v) => p.push(
            format!("{at}/status"),
            format!("`status` {v} is not an HTTP status a Check answers (200, 400, 403, 404)"),
        ),
    }
    let _ = str_field(expect, "route", at, false, p);
    let _ = str_field(expect, "message_contains", at, false, p);
    if let Some(h) = object_field(expect, "headers", at, p) {
        for (k, v) in h {
            if !(v.is_string() || v.is_null()) {
                p.push(
                    format!("{at}/headers/{}", ptr_token(k)),
                    "an expected header is a string (its value) or null (absent)",
                );
            }
        }
    }
}

/// The checks a determining statement of a `propagate` case may name.
const TEST_CHECKS: [&str; 5] =
    ["AUTHORIZE", "TRUST_ASSUME_ROLE", "TRUST_TAG_SESSION", "TRUST_SET_CONTEXT", "ACCESS_GRANTS"];

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(r: Result<Bundle, Vec<Problem>>) -> Vec<String> {
        r.err().unwrap_or_default().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn an_empty_bundle_is_not_a_policy() {
        let want = [".: /: the bundle has no files: a half-swapped mount?"];
        assert_eq!(messages(from_files(Vec::new())), want);
        assert_eq!(messages(from_files(vec![("README.md".into(), b"# notes".to_vec())])), want);
    }

    #[test]
    fn the_reader_s_problems_are_reported_with_the_bundle_s() {
        let reading = vec![Problem {
            file: "iam/pipe".into(),
            field: String::new(),
            message: "not a regular file (fifo)".into(),
        }];
        let files = vec![("iam/policies/P.json".into(), b"{".to_vec())];
        let got = messages(from_read(files, reading));
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got.first().map(String::as_str), Some("iam/pipe: /: not a regular file (fifo)"));
    }
}

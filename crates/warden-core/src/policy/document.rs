//! Policy documents: JSON (object, or the URL-encoded string the IAM API returns) → a compiled
//! [`Policy`] whose patterns, lower-cased actions, CIDRs and dates are ready for evaluation. Every
//! problem is collected with its JSON pointer. Pure.
use super::condition::Condition;
use super::error::{Problems, WarningRule, ptr_token};
use super::hint;
use super::json;
use super::pattern::{ArnGlob, Glob, Tok};
use super::principal::PrincipalSpec;
use super::template::{Part, Template};
use serde_json::Value;
use std::sync::Arc;

/// Where a policy is used; decides which elements it may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// Identity-based (user, group, role; inline or managed).
    Identity,
    /// Permissions boundary (a managed policy used as a boundary).
    Boundary,
    /// Resource-based, including role trust policies: `Principal` required.
    Resource,
    /// Service control policy.
    Scp,
}

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    /// Allow
    Allow,
    /// Deny
    Deny,
}

impl Effect {
    /// As written in policies.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "Allow",
            Effect::Deny => "Deny",
        }
    }
}

/// A compiled resource pattern.
#[derive(Debug, Clone)]
pub enum ResourcePattern {
    /// Wildcard-compiled ARN (or `*`).
    Static(ArnGlob),
    /// With policy variables, resolved per request.
    Dynamic(Template),
}

/// What identifies a statement in an answer: policy id, `Sid` (or `#INDEX`), effect, file. Built once
/// at compile time and shared by every answer it determines.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StatementInfo {
    /// Stable policy id.
    pub policy: Arc<str>,
    /// `Sid` or `#INDEX`.
    pub sid: Arc<str>,
    /// The statement's effect.
    pub effect: Effect,
    /// Bundle file of the policy.
    pub file: Arc<str>,
}

/// A compiled statement.
#[derive(Debug, Clone)]
pub struct Statement {
    /// Its identity in answers.
    pub info: Arc<StatementInfo>,
    /// `Sid`, or `#INDEX` when it has none.
    pub sid: Arc<str>,
    /// Effect.
    pub effect: Effect,
    /// `Principal` (false) or `NotPrincipal` (true); `None` when absent.
    pub principal: Option<(PrincipalSpec, bool)>,
    /// Lower-cased action globs, and whether they are `NotAction`.
    pub actions: (Vec<Glob>, bool),
    /// Resource patterns and whether they are `NotResource`; `None` when absent (resource policies:
    /// the policy's own resource).
    pub resources: Option<(Vec<ResourcePattern>, bool)>,
    /// Conditions (all must hold).
    pub conditions: Vec<Condition>,
}

/// A compiled policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Stable readable id, e.g. `role/Exec/inline/DeveloperAccess`.
    pub id: Arc<str>,
    /// The bundle file it came from.
    pub file: Arc<str>,
    /// Its kind.
    pub kind: PolicyKind,
    /// Statements in document order.
    pub statements: Vec<Statement>,
}

/// Turns a document given as a JSON object, or as a (URL-encoded) JSON string, into a JSON value.
/// `+` stays `+` (RFC 3986 unquoting, as botocore does).
pub fn document_value(v: &Value) -> Result<Value, String> {
    match v {
        Value::Object(_) => Ok(v.clone()),
        Value::String(s) => {
            let decoded = percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map_err(|_| "policy document string is not valid URL-encoded UTF-8".to_owned())?;
            json::parse_strict(&decoded).or_else(|first| {
                json::parse_strict(s).map_err(|_| format!("policy document string is not JSON: {first}"))
            })
        }
        _ => Err("policy document must be a JSON object or a URL-encoded JSON string".to_owned()),
    }
}

fn strings_of(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(a) => a.iter().map(|x| x.as_str().map(str::to_owned)).collect(),
        _ => None,
    }
}

fn condition_values(v: &Value) -> Option<Vec<String>> {
    fn one(v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
    match v {
        Value::Array(a) => a.iter().map(one).collect(),
        x => one(x).map(|s| vec![s]),
    }
}

impl Policy {
    /// Compiles a document. Returns `None` (with every problem recorded) when it is invalid.
    pub fn compile(doc: &Value, kind: PolicyKind, id: &str, at: &str, problems: &mut Problems<'_>) -> Option<Policy> {
        let before = problems.count();
        let Some(obj) = doc.as_object() else {
            problems.push(at, "policy document must be a JSON object");
            return None;
        };
        for k in obj.keys() {
            if !POLICY_ELEMENTS.contains(&k.as_str()) {
                let hint = unknown_element(k, at, POLICY_ELEMENTS, problems);
                problems.push(format!("{at}/{}", ptr_token(k)), format!("unknown policy element `{k}`{hint}"));
            }
        }
        // Without Version 2012-10-17, variables are literal text (a missing Version is read like
        // 2008-10-17: the safe reading of a self-contradictory doc).
        let vars = match obj.get("Version") {
            None => false,
            Some(Value::String(v)) if v == "2012-10-17" => true,
            Some(Value::String(v)) if v == "2008-10-17" => false,
            Some(v) => {
                problems.push(
                    format!("{at}/Version"),
                    format!("unknown `Version` {v}: expected `2012-10-17` or `2008-10-17`"),
                );
                false
            }
        };
        let stmts: Vec<&Value> = match obj.get("Statement") {
            Some(Value::Array(a)) => a.iter().collect(),
            Some(o @ Value::Object(_)) => vec![o],
            Some(_) => {
                problems.push(format!("{at}/Statement"), "`Statement` must be an object or an array of objects");
                Vec::new()
            }
            None => {
                problems.missing(at, &["Statement"], "missing `Statement`");
                Vec::new()
            }
        };
        let single = matches!(obj.get("Statement"), Some(Value::Object(_)));
        let mut statements = Vec::with_capacity(stmts.len());
        let mut sids: Vec<String> = Vec::new();
        for (i, s) in stmts.into_iter().enumerate() {
            let sat = if single { format!("{at}/Statement") } else { format!("{at}/Statement/{i}") };
            if let Some(st) = compile_statement(s, i, kind, vars, &sat, problems) {
                if !st.sid.starts_with('#') {
                    if sids.iter().any(|x| x == &*st.sid) {
                        problems.push(format!("{sat}/Sid"), format!("duplicate `Sid` `{}` in the policy", st.sid));
                    }
                    sids.push(st.sid.to_string());
                }
                statements.push(st);
            }
        }
        if problems.count() > before {
            return None;
        }
        let (id, file): (Arc<str>, Arc<str>) = (Arc::from(id), Arc::from(problems.file()));
        for st in &mut statements {
            st.info = Arc::new(StatementInfo {
                policy: id.clone(),
                sid: st.sid.clone(),
                effect: st.effect,
                file: file.clone(),
            });
        }
        Some(Policy { id, file, kind, statements })
    }
}

/// The elements of a policy document.
const POLICY_ELEMENTS: &[&str] = &["Version", "Id", "Statement"];

/// The elements of a statement.
const STATEMENT_ELEMENTS: &[&str] =
    &["Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"];

/// `: did you mean `X`?` for a misspelt element (remembered, so that the element's absence is reported
/// as a consequence), or nothing.
fn unknown_element(written: &str, at: &str, known: &[&'static str], p: &mut Problems<'_>) -> String {
    match hint::nearest(written, known.iter().copied()) {
        Some(meant) => {
            p.misspelt(at, meant, written);
            format!(": did you mean `{meant}`?")
        }
        None => String::new(),
    }
}

fn compile_statement(
    v: &Value,
    index: usize,
    kind: PolicyKind,
    vars: bool,
    at: &str,
    p: &mut Problems<'_>,
) -> Option<Statement> {
    let before = p.count();
    let Some(obj) = v.as_object() else {
        p.push(at, "statement must be a JSON object");
        return None;
    };
    for k in obj.keys() {
        if !STATEMENT_ELEMENTS.contains(&k.as_str()) {
            let hint = unknown_element(k, at, STATEMENT_ELEMENTS, p);
            p.push(format!("{at}/{}", ptr_token(k)), format!("unknown statement element `{k}`{hint}"));
        }
    }
    let sid: Arc<str> = match obj.get("Sid") {
        None => Arc::from(format!("#{index}")),
        Some(Value::String(s)) if s.is_empty() => Arc::from(format!("#{index}")),
        Some(Value::String(s)) => {
            if !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
                p.push(format!("{at}/Sid"), format!("`Sid` `{s}` may only contain ASCII letters and digits"));
            }
            Arc::from(s.as_str())
        }
        Some(_) => {
            p.push(format!("{at}/Sid"), "`Sid` must be a string");
            Arc::from(format!("#{index}"))
        }
    };
    let effect = match obj.get("Effect") {
        Some(Value::String(e)) if e == "Allow" => Effect::Allow,
        Some(Value::String(e)) if e == "Deny" => Effect::Deny,
        Some(e) => {
            let hint = e.as_str().map(|w| hint::did_you_mean(w, ["Allow", "Deny"])).unwrap_or_default();
            p.push(format!("{at}/Effect"), format!("unknown `Effect` {e}: expected `Allow` or `Deny`{hint}"));
            Effect::Deny
        }
        None => {
            p.missing(at, &["Effect"], "missing `Effect`");
            Effect::Deny
        }
    };
    // Principal / NotPrincipal.
    let principal = match (obj.get("Principal"), obj.get("NotPrincipal")) {
        (Some(_), Some(_)) => {
            p.push(at, "`Principal` and `NotPrincipal` cannot both be present");
            None
        }
        (Some(v), None) => compile_principal(v, false, &format!("{at}/Principal"), p),
        (None, Some(v)) => compile_principal(v, true, &format!("{at}/NotPrincipal"), p),
        (None, None) => None,
    };
    let has_principal = obj.contains_key("Principal") || obj.contains_key("NotPrincipal");
    match kind {
        PolicyKind::Resource => {
            if !has_principal {
                p.missing(at, &["Principal", "NotPrincipal"], "a resource-based policy statement needs `Principal`");
            }
        }
        PolicyKind::Identity | PolicyKind::Boundary | PolicyKind::Scp => {
            if has_principal {
                p.push(at, "`Principal` is not allowed in an identity-based policy, a permissions boundary or an SCP");
            }
        }
    }
    // Action / NotAction.
    let actions = match (obj.get("Action"), obj.get("NotAction")) {
        (Some(_), Some(_)) => {
            p.push(at, "`Action` and `NotAction` cannot both be present");
            (Vec::new(), false)
        }
        (Some(v), None) => (compile_actions(v, &format!("{at}/Action"), p), false),
        (None, Some(v)) => (compile_actions(v, &format!("{at}/NotAction"), p), true),
        (None, None) => {
            p.missing(at, &["Action", "NotAction"], "missing `Action` or `NotAction`");
            (Vec::new(), false)
        }
    };
    // Resource / NotResource.
    let resources = match (obj.get("Resource"), obj.get("NotResource")) {
        (Some(_), Some(_)) => {
            p.push(at, "`Resource` and `NotResource` cannot both be present");
            None
        }
        (Some(v), None) => Some((compile_resources(v, vars, &format!("{at}/Resource"), p), false)),
        (None, Some(v)) => Some((compile_resources(v, vars, &format!("{at}/NotResource"), p), true)),
        (None, None) => {
            if matches!(kind, PolicyKind::Identity | PolicyKind::Boundary) {
                p.missing(at, &["Resource", "NotResource"], "missing `Resource` or `NotResource`");
            }
            None
        }
    };
    let conditions = match obj.get("Condition") {
        None => Vec::new(),
        Some(c) => compile_conditions(c, vars, &format!("{at}/Condition"), p),
    };
    if p.count() > before {
        return None;
    }
    let info = Arc::new(StatementInfo { policy: Arc::from(""), sid: sid.clone(), effect, file: Arc::from("") });
    Some(Statement { info, sid, effect, principal, actions, resources, conditions })
}

fn compile_principal(v: &Value, negated: bool, at: &str, p: &mut Problems<'_>) -> Option<(PrincipalSpec, bool)> {
    let mut pairs = Vec::new();
    match v {
        Value::String(s) if s == "*" => pairs.push(("*".to_owned(), "*".to_owned())),
        Value::Object(o) => {
            for (ty, vals) in o {
                match strings_of(vals) {
                    Some(list) => pairs.extend(list.into_iter().map(|x| (ty.clone(), x))),
                    None => p.push(
                        format!("{at}/{}", ptr_token(ty)),
                        "principal values must be a string or an array of strings",
                    ),
                }
            }
        }
        _ => {
            p.push(at, "principal must be `\"*\"` or an object such as {\"AWS\": …}");
            return None;
        }
    }
    match PrincipalSpec::compile(&pairs) {
        Ok(spec) => Some((spec, negated)),
        Err(errs) => {
            for e in errs {
                p.push(at, e);
            }
            None
        }
    }
}

fn compile_actions(v: &Value, at: &str, p: &mut Problems<'_>) -> Vec<Glob> {
    let Some(list) = strings_of(v) else {
        p.push(at, "must be a string or an array of strings");
        return Vec::new();
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, a) in list.iter().enumerate() {
        let ok = a == "*"
            || a.split_once(':').is_some_and(|(svc, act)| {
                !svc.is_empty()
                    && !act.is_empty()
                    && svc.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !act.contains(':')
            });
        if ok {
            out.push(Glob::parse(&a.to_ascii_lowercase()));
        } else {
            let f = if v.is_array() { format!("{at}/{i}") } else { at.to_owned() };
            p.push(f, format!("malformed action `{a}`: expected `*` or `service:action`"));
        }
    }
    out
}

fn compile_resources(v: &Value, vars: bool, at: &str, p: &mut Problems<'_>) -> Vec<ResourcePattern> {
    let Some(list) = strings_of(v) else {
        p.push(at, "must be a string or an array of strings");
        return Vec::new();
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, r) in list.iter().enumerate() {
        let f = if v.is_array() { format!("{at}/{i}") } else { at.to_owned() };
        match compile_resource(r, vars) {
            Ok(rp) => {
                if let ResourcePattern::Dynamic(t) = &rp
                    && t.var_outside_resource()
                {
                    p.warn(
                        f,
                        WarningRule::VariableOutsideResource,
                        format!(
                            "policy variable in `{r}` outside the resource part of the ARN: it is substituted, \
                             and the entry matches nothing when the key is missing"
                        ),
                    );
                }
                out.push(rp);
            }
            Err(e) => p.push(f, e),
        }
    }
    out
}

/// Compiles one `Resource` entry.
pub fn compile_resource(r: &str, vars: bool) -> Result<ResourcePattern, String> {
    // Variables anywhere in the ARN are substituted (SPEC §4.1); outside the resource part the loader
    // warns ([`Template::var_outside_resource`]).
    let t = Template::parse(r, vars, true)?;
    if !r.starts_with("arn:") && r != "*" && !r.starts_with('*') {
        return Err(format!("malformed resource `{r}`: expected `*` or an ARN"));
    }
    match t.static_tokens() {
        Some(toks) => ArnGlob::new(toks, true)
            .map(ResourcePattern::Static)
            .ok_or_else(|| format!("malformed resource ARN `{r}`: expected six colon-separated parts")),
        None => {
            // Check the shape with the variables replaced by a placeholder.
            let probe: Vec<Tok> = t
                .parts()
                .iter()
                .map(|x| match x {
                    Part::Lit(s) => Tok::Lit(s.clone()),
                    Part::Star => Tok::Star,
                    Part::One => Tok::One,
                    Part::Var { .. } => Tok::Lit("x".into()),
                })
                .collect();
            if ArnGlob::new(probe, true).is_none() {
                return Err(format!("malformed resource ARN `{r}`: expected six colon-separated parts"));
            }
            Ok(ResourcePattern::Dynamic(t))
        }
    }
}

fn compile_conditions(v: &Value, vars: bool, at: &str, p: &mut Problems<'_>) -> Vec<Condition> {
    let Some(ops) = v.as_object() else {
        p.push(at, "`Condition` must be an object of operators");
        return Vec::new();
    };
    let mut out = Vec::new();
    for (op, block) in ops {
        let oat = format!("{at}/{}", ptr_token(op));
        let Some(keys) = block.as_object() else {
            p.push(oat, "condition operator block must be an object of keys");
            continue;
        };
        let mut seen: Vec<String> = Vec::new();
        for (key, vals) in keys {
            let kat = format!("{oat}/{}", ptr_token(key));
            let lower = key.to_lowercase();
            if seen.contains(&lower) {
                p.push(kat.clone(), format!("duplicate condition key `{key}` (keys are case-insensitive)"));
            }
            seen.push(lower);
            let Some(values) = condition_values(vals) else {
                p.push(kat, "condition values must be strings, numbers, booleans or an array of them");
                continue;
            };
            match Condition::compile_all(op, key, &values, vars) {
                Ok(c) => {
                    if c.plain_on_multivalued() {
                        p.warn(
                            kat.clone(),
                            WarningRule::MissingQualifier,
                            format!(
                                "`{key}` is a multivalued key: the plain `{op}` never matches a request that \
                                 gives it as a list; use `ForAnyValue:{op}` or `ForAllValues:{op}`"
                            ),
                        );
                    }
                    out.push(c);
                }
                Err(errs) => {
                    for e in errs {
                        p.push(kat.clone(), e);
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::context::{MapContext, Value as CtxValue};
    use crate::policy::error::{ProblemList, Warning};
    use proptest::prelude::*;
    use serde_json::json;

    /// Compiles `doc` as an identity policy: (compiled?, problems, warnings).
    fn compile(doc: &Value) -> (bool, Vec<String>, Vec<Warning>) {
        let mut list = ProblemList::new();
        let mut p = Problems::new("iam/policies/P.json", &mut list);
        let ok = Policy::compile(doc, PolicyKind::Identity, "P", "/PolicyDocument", &mut p).is_some();
        let warnings = list.take_warnings().kept().to_vec();
        (ok, list.into_sorted().iter().map(ToString::to_string).collect(), warnings)
    }

    #[test]
    fn accepted_constructs_load_with_warnings_naming_file_pointer_and_rule() {
        // SPEC §3.1. Regression: both were validation errors.
        let doc = json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "Keys", "Effect": "Allow", "Action": "sagemaker:AddTags", "Resource": "*",
             "Condition": {"StringEquals": {"aws:TagKeys": ["Team", "Project"]},
                           "ForAnyValue:StringEquals": {"sagemaker:InstanceTypes": "ml.t3.medium"}}},
            {"Sid": "Kms", "Effect": "Allow", "Action": "kms:Decrypt",
             "Resource": ["arn:aws:kms:*:${aws:PrincipalAccount}:key/*", "arn:aws:s3:::home/${aws:username}/*"]},
            {"Sid": "Not", "Effect": "Deny", "Action": "kms:*", "NotResource": "arn:${aws:PrincipalTag/p}:kms:*:*:key/*"}]});
        let (ok, problems, warnings) = compile(&doc);
        assert!(ok, "{problems:?}");
        assert!(problems.is_empty(), "{problems:?}");
        let lines: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "iam/policies/P.json: /PolicyDocument/Statement/0/Condition/StringEquals/aws:TagKeys: warning: \
                 `aws:TagKeys` is a multivalued key: the plain `StringEquals` never matches a request that gives \
                 it as a list; use `ForAnyValue:StringEquals` or `ForAllValues:StringEquals` [missing_qualifier]",
                "iam/policies/P.json: /PolicyDocument/Statement/1/Resource/0: warning: policy variable in \
                 `arn:aws:kms:*:${aws:PrincipalAccount}:key/*` outside the resource part of the ARN: it is \
                 substituted, and the entry matches nothing when the key is missing [variable_outside_resource]",
                "iam/policies/P.json: /PolicyDocument/Statement/2/NotResource: warning: policy variable in \
                 `arn:${aws:PrincipalTag/p}:kms:*:*:key/*` outside the resource part of the ARN: it is \
                 substituted, and the entry matches nothing when the key is missing [variable_outside_resource]",
            ]
        );
    }

    #[test]
    fn no_warning_without_variables_or_with_literal_text() {
        // Without `Version` 2012-10-17 `${…}` is literal text; qualified operators and Null are fine.
        let doc = json!({"Statement": [
            {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "arn:aws:kms:*:${aws:PrincipalAccount}:key/*",
             "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": "Team"}, "Null": {"aws:TagKeys": "false"}}}]});
        let (ok, problems, warnings) = compile(&doc);
        assert!(ok && problems.is_empty(), "{problems:?}");
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn bad_input_near_the_warnings_keeps_its_errors() {
        let doc = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "arn:aws:kms:${aws:RequestedRegion:key/*"},
            {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "arn:aws:kms:${aws:RequestedRegion}:key/x"},
            {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "arn:aws:kms:${aws:TagKeys}:1:key/x"},
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"StringEqualz": {"aws:TagKeys": "a"}}}]});
        let (ok, problems, _) = compile(&doc);
        assert!(!ok);
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(problems.iter().any(|p| p.contains("unterminated policy variable")), "{problems:#?}");
        assert!(problems.iter().any(|p| p.contains("expected six colon-separated parts")), "{problems:#?}");
        assert!(problems.iter().any(|p| p.contains("cannot be used as a policy variable")), "{problems:#?}");
        assert!(problems.iter().any(|p| p.contains("unknown condition operator `StringEqualz`")), "{problems:#?}");
    }

    fn seg() -> impl Strategy<Value = String> {
        "[a-z0-9-]{0,5}"
    }

    proptest! {
        /// A variable in any of the five ARN parts after `arn:` is substituted: the pattern then matches
        /// exactly what the same text written out matches; a missing key matches nothing. The warning
        /// flag is set exactly when the variable is outside the resource part.
        #[test]
        fn variable_in_any_arn_part_matches_like_its_substituted_text(
            parts in proptest::collection::vec(seg(), 5),
            resource_tail in "[a-z0-9/*?-]{0,8}",
            at in 1usize..6,
            before in seg(),
            value in "[a-z0-9-]{1,8}",
            probe_parts in proptest::collection::vec(seg(), 5),
            probe_tail in "[a-z0-9/-]{0,8}",
            use_probe_value in any::<bool>(),
        ) {
            let mut segs: Vec<String> = std::iter::once("arn".to_owned()).chain(parts).collect();
            if let Some(last) = segs.last_mut() {
                last.push_str(&format!("r{resource_tail}"));
            }
            let mut pattern = segs.clone();
            let mut written = segs.clone();
            if let (Some(p), Some(w)) = (pattern.get_mut(at), written.get_mut(at)) {
                *p = format!("{before}${{aws:RequestTag/v}}{p}");
                *w = format!("{before}{value}{w}");
            }
            let pattern = pattern.join(":");
            let written = written.join(":");
            let dynamic = compile_resource(&pattern, true).map_err(TestCaseError::fail)?;
            let ResourcePattern::Dynamic(t) = &dynamic else {
                return Err(TestCaseError::fail("a variable makes a dynamic pattern"));
            };
            prop_assert_eq!(t.var_outside_resource(), at < 5);
            let ResourcePattern::Static(glob) = compile_resource(&written, true).map_err(TestCaseError::fail)? else {
                return Err(TestCaseError::fail("no variable: static"));
            };
            let mut probe: Vec<String> = std::iter::once("arn".to_owned()).chain(probe_parts).collect();
            if use_probe_value && let Some(p) = probe.get_mut(at) {
                *p = format!("{before}{value}{p}");
            }
            if let Some(last) = probe.last_mut() {
                last.push_str(&format!("r{probe_tail}"));
            }
            let probe = probe.join(":");
            let mut ctx = MapContext::default();
            ctx.insert("aws:RequestTag/v", CtxValue::One(value.clone()));
            let resolved = t.resolve_tokens(&ctx).and_then(|toks| ArnGlob::new(toks, true));
            prop_assert!(resolved.is_some());
            if let Some(g) = resolved {
                prop_assert_eq!(g.matches(&probe), glob.matches(&probe), "{} vs {}", pattern, probe);
            }
            prop_assert!(t.resolve_tokens(&MapContext::default()).is_none(), "missing key: matches nothing");
        }
    }
}

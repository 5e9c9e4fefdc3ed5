//! Condition operators, compiled once from a policy and evaluated against a [`Context`]: every family
//! (String, Numeric, Date, Bool, Binary, IP, ARN, Null), each with `…IfExists`, and the `ForAnyValue:` /
//! `ForAllValues:` set qualifiers. Pure.
use super::context::{Context, CtxVal};
use super::pattern::{ArnGlob, Glob};
use super::template::{Part, Template, is_multivalued_key};
use base64::Engine as _;
use ipnet::IpNet;
use std::net::IpAddr;

/// Three-valued result of a condition: `Indeterminate` when a request value cannot be read for the
/// operator (fail closed: a Deny statement then applies, an Allow statement does not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tri {
    /// The condition holds.
    True,
    /// It does not.
    False,
    /// It cannot be decided from the request.
    Indeterminate,
}

/// Set qualifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qualifier {
    /// Plain operator.
    Single,
    /// `ForAnyValue:`
    ForAnyValue,
    /// `ForAllValues:`
    ForAllValues,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    StringEq { ignore_case: bool },
    StringLike,
    Numeric(Cmp),
    Date(Cmp),
    Bool,
    Binary,
    Ip,
    Arn,
    Null,
}

#[derive(Debug, Clone)]
enum StrVal {
    Static(String),
    Dynamic(Template),
}

#[derive(Debug, Clone)]
enum LikeVal {
    Static(Glob),
    Dynamic(Template),
}

#[derive(Debug, Clone)]
enum ArnVal {
    Static(ArnGlob),
    Dynamic(Template),
}

#[derive(Debug, Clone)]
enum Values {
    Str(Vec<StrVal>),
    Like(Vec<LikeVal>),
    Num(Vec<Num>),
    Date(Vec<i64>),
    Bool(Vec<bool>),
    Binary(Vec<Vec<u8>>),
    Ip(Vec<IpNet>),
    Arn(Vec<ArnVal>),
    Null(Vec<bool>),
}

/// One compiled `operator: {key: values}` entry.
#[derive(Debug, Clone)]
pub struct Condition {
    /// The operator as written, e.g. `ForAnyValue:StringLikeIfExists`.
    pub operator: String,
    /// The key as written.
    pub key: String,
    key_lower: String,
    qualifier: Qualifier,
    if_exists: bool,
    negated: bool,
    family: Family,
    values: Values,
}

/// A parsed operator name.
#[derive(Debug, Clone, Copy)]
struct OpName {
    qualifier: Qualifier,
    if_exists: bool,
    negated: bool,
    family: Family,
}

/// The base names of the condition operators (without `ForAnyValue:`/`ForAllValues:` or `IfExists`).
const OPERATORS: &[&str] = &[
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
    "NumericEquals",
    "NumericNotEquals",
    "NumericLessThan",
    "NumericLessThanEquals",
    "NumericGreaterThan",
    "NumericGreaterThanEquals",
    "DateEquals",
    "DateNotEquals",
    "DateLessThan",
    "DateLessThanEquals",
    "DateGreaterThan",
    "DateGreaterThanEquals",
    "Bool",
    "BinaryEquals",
    "IpAddress",
    "NotIpAddress",
    "ArnEquals",
    "ArnLike",
    "ArnNotEquals",
    "ArnNotLike",
    "Null",
];

fn parse_operator(op: &str) -> Result<OpName, String> {
    let (qualifier, rest) = if let Some(r) = op.strip_prefix("ForAnyValue:") {
        (Qualifier::ForAnyValue, r)
    } else if let Some(r) = op.strip_prefix("ForAllValues:") {
        (Qualifier::ForAllValues, r)
    } else {
        (Qualifier::Single, op)
    };
    let (base, if_exists) = match rest.strip_suffix("IfExists") {
        Some(b) => (b, true),
        None => (rest, false),
    };
    use Cmp::*;
    use Family::*;
    let (family, negated) = match base {
        "StringEquals" => (StringEq { ignore_case: false }, false),
        "StringNotEquals" => (StringEq { ignore_case: false }, true),
        "StringEqualsIgnoreCase" => (StringEq { ignore_case: true }, false),
        "StringNotEqualsIgnoreCase" => (StringEq { ignore_case: true }, true),
        "StringLike" => (StringLike, false),
        "StringNotLike" => (StringLike, true),
        "NumericEquals" => (Numeric(Eq), false),
        "NumericNotEquals" => (Numeric(Eq), true),
        "NumericLessThan" => (Numeric(Lt), false),
        "NumericLessThanEquals" => (Numeric(Le), false),
        "NumericGreaterThan" => (Numeric(Gt), false),
        "NumericGreaterThanEquals" => (Numeric(Ge), false),
        "DateEquals" => (Date(Eq), false),
        "DateNotEquals" => (Date(Eq), true),
        "DateLessThan" => (Date(Lt), false),
        "DateLessThanEquals" => (Date(Le), false),
        "DateGreaterThan" => (Date(Gt), false),
        "DateGreaterThanEquals" => (Date(Ge), false),
        "Bool" => (Bool, false),
        "BinaryEquals" => (Binary, false),
        "IpAddress" => (Ip, false),
        "NotIpAddress" => (Ip, true),
        "ArnEquals" | "ArnLike" => (Arn, false),
        "ArnNotEquals" | "ArnNotLike" => (Arn, true),
        "Null" => (Null, false),
        _ => {
            // Every qualifier and `IfExists` combination, so that the hint is a whole operator.
            let names: Vec<String> = ["", "ForAnyValue:", "ForAllValues:"]
                .iter()
                .flat_map(|q| {
                    OPERATORS.iter().flat_map(move |o| {
                        let if_exists = (*o != "Null").then(|| format!("{q}{o}IfExists"));
                        std::iter::once(format!("{q}{o}")).chain(if_exists)
                    })
                })
                .collect();
            let hint = super::hint::did_you_mean(op, names.iter().map(String::as_str));
            return Err(format!("unknown condition operator `{op}`{hint}"));
        }
    };
    if family == Null && if_exists {
        return Err(format!("unknown condition operator `{op}`: `Null` has no `IfExists` form"));
    }
    Ok(OpName { qualifier, if_exists, negated, family })
}

/// Parses an epoch-seconds or ISO 8601 date into milliseconds since the epoch.
pub fn parse_date_ms(s: &str) -> Option<i64> {
    let t = s.trim();
    if is_epoch(t) {
        return t.parse::<f64>().ok().filter(|f| f.is_finite()).map(|secs| (secs * 1000.0).round() as i64);
    }
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(t) {
        return Some(dt.timestamp_millis());
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"] {
        if let Ok(ndt) = chrono::NaiveDateTime::parse_from_str(t.trim_end_matches('Z'), fmt) {
            return Some(ndt.and_utc().timestamp_millis());
        }
    }
    if let Some(rest) = t.strip_suffix('Z')
        && let Ok(ndt) = chrono::NaiveDateTime::parse_from_str(rest, "%Y-%m-%dT%H:%M")
    {
        return Some(ndt.and_utc().timestamp_millis());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|x| x.and_utc().timestamp_millis());
    }
    // Offsets without seconds, e.g. 2026-01-01T10:00+02:00.
    if let Ok(dt) = chrono::DateTime::parse_from_str(t, "%Y-%m-%dT%H:%M%:z") {
        return Some(dt.timestamp_millis());
    }
    None
}

/// `-?digits(.digits)?`: epoch seconds.
fn is_epoch(t: &str) -> bool {
    let body = t.strip_prefix('-').unwrap_or(t);
    let (int, frac) = body.split_once('.').unwrap_or((body, "0"));
    !int.is_empty()
        && !frac.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
}

/// A number of a Numeric condition: integers compare exactly, decimals as `f64`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Num {
    Int(i128),
    Float(f64),
}

impl Num {
    fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }

    fn cmp(self, other: Num) -> Option<std::cmp::Ordering> {
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => Some(a.cmp(&b)),
            (a, b) => a.as_f64().partial_cmp(&b.as_f64()),
        }
    }
}

fn parse_number(s: &str) -> Option<Num> {
    let t = s.trim();
    if t.is_empty() || t.contains(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    if let Ok(i) = t.parse::<i128>() {
        return Some(Num::Int(i));
    }
    t.parse::<f64>().ok().filter(|f| f.is_finite()).map(Num::Float)
}

fn parse_ip_net(s: &str) -> Option<IpNet> {
    let t = s.trim();
    if let Ok(n) = t.parse::<IpNet>() {
        return Some(n);
    }
    // A bare address: /32 for IPv4, /128 for IPv6.
    t.parse::<IpAddr>().ok().map(IpNet::from)
}

fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

// === impl Condition ===

impl Condition {
    /// Compiles one `operator: {key: values}` entry. `vars`: policy variables are substituted
    /// (`Version` `2012-10-17`). Values arrive as strings (numbers and booleans already stringified).
    pub fn compile(operator: &str, key: &str, values: &[String], vars: bool) -> Result<Condition, String> {
        Condition::compile_all(operator, key, values, vars).map_err(|e| e.join("; "))
    }

    /// Like [`Condition::compile`], reporting every bad value.
    pub fn compile_all(operator: &str, key: &str, values: &[String], vars: bool) -> Result<Condition, Vec<String>> {
        let op = parse_operator(operator).map_err(|e| vec![e])?;
        if key.is_empty() {
            return Err(vec!["empty condition key".to_owned()]);
        }
        if key.chars().any(char::is_whitespace) {
            return Err(vec![format!("condition key `{key}` has a space")]);
        }
        // A plain operator on a known multivalued key is accepted (AWS accepts it): the loader warns
        // ([`Condition::plain_on_multivalued`]), and it never matches a list value (`evaluate`).
        let key_lower = key.to_lowercase();
        let bad = |v: &str, what: &str| format!("`{v}` is not {what} for `{operator}`");
        let compiled = match op.family {
            Family::StringEq { ignore_case } => Values::Str(gather(
                values
                    .iter()
                    .map(|v| {
                        let t = Template::parse(v, vars, false)?;
                        Ok(match t.as_literal() {
                            Some(s) if ignore_case => StrVal::Static(s.to_lowercase()),
                            Some(s) => StrVal::Static(s),
                            None => StrVal::Dynamic(t),
                        })
                    })
                    .collect::<Vec<Result<_, String>>>(),
            )?),
            Family::StringLike => Values::Like(gather(
                values
                    .iter()
                    .map(|v| {
                        let t = Template::parse(v, vars, true)?;
                        Ok(match t.static_tokens() {
                            Some(toks) => LikeVal::Static(Glob::new(toks)),
                            None => LikeVal::Dynamic(t),
                        })
                    })
                    .collect::<Vec<Result<_, String>>>(),
            )?),
            Family::Arn => Values::Arn(gather(
                values
                    .iter()
                    .map(|v| {
                        let t = Template::parse(v, vars, true)?;
                        match t.static_tokens() {
                            Some(toks) => ArnGlob::new(toks, false)
                                .map(ArnVal::Static)
                                .ok_or_else(|| bad(v, "an ARN (six colon-separated parts)")),
                            None => Ok(ArnVal::Dynamic(t)),
                        }
                    })
                    .collect::<Vec<Result<_, String>>>(),
            )?),
            Family::Numeric(_) => Values::Num(gather(
                values
                    .iter()
                    .map(|v| parse_number(v).ok_or_else(|| bad(v, "a number")))
                    .collect::<Vec<Result<_, String>>>(),
            )?),
            Family::Date(_) => Values::Date(gather(
                values
                    .iter()
                    .map(|v| parse_date_ms(v).ok_or_else(|| bad(v, "an ISO 8601 date or epoch seconds")))
                    .collect::<Vec<Result<_, String>>>(),
            )?),
            Family::Bool => {
                if values.len() > 1 {
                    return Err(vec![format!("`{operator}` takes one Boolean value for `{key}`")]);
                }
                Values::Bool(gather(
                    values
                        .iter()
                        .map(|v| parse_bool(v).ok_or_else(|| bad(v, "`true` or `false`")))
                        .collect::<Vec<Result<_, String>>>(),
                )?)
            }
            Family::Null => Values::Null(gather(
                values
                    .iter()
                    .map(|v| parse_bool(v).ok_or_else(|| bad(v, "`true` or `false`")))
                    .collect::<Vec<Result<_, String>>>(),
            )?),
            Family::Binary => Values::Binary(gather(
                values
                    .iter()
                    .map(|v| base64::engine::general_purpose::STANDARD.decode(v.trim()).map_err(|_| bad(v, "base64")))
                    .collect::<Vec<Result<_, String>>>(),
            )?),
            Family::Ip => Values::Ip(gather(
                values
                    .iter()
                    .map(|v| parse_ip_net(v).ok_or_else(|| bad(v, "an IP address or CIDR")))
                    .collect::<Vec<Result<_, String>>>(),
            )?),
        };
        Ok(Condition {
            operator: operator.to_owned(),
            key: key.to_owned(),
            key_lower,
            qualifier: op.qualifier,
            if_exists: op.if_exists,
            negated: op.negated,
            family: op.family,
            values: compiled,
        })
    }

    /// Whether this is a plain operator (no `ForAnyValue:`/`ForAllValues:`, not `Null`) on a key known
    /// to be multivalued: accepted, with a warning (Access Analyzer "Missing qualifier"; SPEC §3.1).
    pub fn plain_on_multivalued(&self) -> bool {
        self.qualifier == Qualifier::Single && self.family != Family::Null && is_multivalued_key(&self.key_lower)
    }

    /// Whether a policy variable appears in the values.
    pub fn has_vars(&self) -> bool {
        match &self.values {
            Values::Str(v) => v.iter().any(|x| matches!(x, StrVal::Dynamic(_))),
            Values::Like(v) => v.iter().any(|x| matches!(x, LikeVal::Dynamic(_))),
            Values::Arn(v) => v.iter().any(|x| matches!(x, ArnVal::Dynamic(_))),
            _ => false,
        }
    }

    /// The lower-cased key.
    pub fn key_lower(&self) -> &str {
        &self.key_lower
    }

    /// The keys this condition reads: its own and those of its variables.
    pub fn keys_read(&self) -> Vec<&str> {
        let mut keys = vec![self.key_lower.as_str()];
        let templates: Vec<&Template> = match &self.values {
            Values::Str(v) => {
                v.iter().filter_map(|x| if let StrVal::Dynamic(t) = x { Some(t) } else { None }).collect()
            }
            Values::Like(v) => {
                v.iter().filter_map(|x| if let LikeVal::Dynamic(t) = x { Some(t) } else { None }).collect()
            }
            Values::Arn(v) => {
                v.iter().filter_map(|x| if let ArnVal::Dynamic(t) = x { Some(t) } else { None }).collect()
            }
            _ => Vec::new(),
        };
        for t in templates {
            for p in t.parts() {
                if let Part::Var { key, .. } = p {
                    keys.push(key.as_str());
                }
            }
        }
        keys
    }

    /// Evaluates against the context.
    pub fn evaluate(&self, ctx: &dyn Context) -> Tri {
        let value = match ctx.get(&self.key_lower) {
            // IAM treats an empty value as null.
            Some(CtxVal::One(s)) if s.is_empty() => None,
            Some(CtxVal::Many([])) => None,
            v => v,
        };
        if let Values::Null(expect) = &self.values {
            return match self.qualifier {
                // `ForAllValues:Null` is always true and `ForAnyValue:Null` always false.
                Qualifier::ForAllValues => Tri::True,
                Qualifier::ForAnyValue => Tri::False,
                Qualifier::Single => tri(expect.iter().any(|&e| e == value.is_none())),
            };
        }
        let Some(value) = value else {
            if self.if_exists {
                return Tri::True;
            }
            return match self.qualifier {
                Qualifier::ForAnyValue => Tri::False,
                Qualifier::ForAllValues => Tri::True,
                Qualifier::Single => tri(self.negated),
            };
        };
        match (self.qualifier, value) {
            (Qualifier::Single, CtxVal::One(s)) => self.test_one(&s, ctx),
            // A plain operator on a list value never matches, negated operators and `…IfExists`
            // included (SPEC §4.1). AWS documents no runtime semantics for it (aws-semantics §3.4,
            // §9.2), so this is iam-simulate's reading, which AWS confirmed at re:Inforce 2025 (IAM431):
            // a set operator is required for a multivalued value. It is not the conservative reading
            // (that one would leave a Deny applying); SPEC binds it, and the loader warns about every
            // policy that does this on a known multivalued key.
            //
            // What is a list: a key known to be multivalued always is (its type, not its length,
            // decides: aws-semantics §3.4), so a one-element `aws:TagKeys` never matches either. Any
            // other key given as a one-element list reads as that value, as today and as iam-simulate
            // does (it takes the first value of a single-valued key). An empty list is an absent key
            // (SPEC §4: handled above).
            (Qualifier::Single, CtxVal::Many(m)) => match m {
                [s] if !is_multivalued_key(&self.key_lower) => self.test_one(s, ctx),
                _ => Tri::False,
            },
            (q, CtxVal::One(s)) => {
                let _ = q;
                self.test_one(&s, ctx)
            }
            (Qualifier::ForAnyValue, CtxVal::Many(m)) => {
                let mut out = Tri::False;
                for s in m {
                    match self.test_one(s, ctx) {
                        Tri::True => return Tri::True,
                        Tri::Indeterminate => out = Tri::Indeterminate,
                        Tri::False => {}
                    }
                }
                out
            }
            (Qualifier::ForAllValues, CtxVal::Many(m)) => {
                let mut out = Tri::True;
                for s in m {
                    match self.test_one(s, ctx) {
                        Tri::False => return Tri::False,
                        Tri::Indeterminate => out = Tri::Indeterminate,
                        Tri::True => {}
                    }
                }
                out
            }
        }
    }

    /// Tests one request value: positive operators match if any policy value matches; negated ones if
    /// none does.
    fn test_one(&self, v: &str, ctx: &dyn Context) -> Tri {
        let any = match &self.values {
            Values::Str(vals) => {
                let ic = matches!(self.family, Family::StringEq { ignore_case: true });
                let lowered;
                let v = if ic {
                    lowered = v.to_lowercase();
                    lowered.as_str()
                } else {
                    v
                };
                vals.iter().any(|pv| match pv {
                    StrVal::Static(s) => s == v,
                    StrVal::Dynamic(t) if ic => t.resolve_text(ctx).is_some_and(|s| s.to_lowercase() == v),
                    StrVal::Dynamic(t) => t.eq_text(ctx, v).unwrap_or(false),
                })
            }
            Values::Like(vals) => vals.iter().any(|pv| match pv {
                LikeVal::Static(g) => g.matches(v),
                LikeVal::Dynamic(t) => t.resolve_tokens(ctx).is_some_and(|toks| Glob::new(toks).matches(v)),
            }),
            Values::Arn(vals) => vals.iter().any(|pv| match pv {
                ArnVal::Static(g) => g.matches(v),
                ArnVal::Dynamic(t) => {
                    t.resolve_tokens(ctx).and_then(|toks| ArnGlob::new(toks, false)).is_some_and(|g| g.matches(v))
                }
            }),
            Values::Num(vals) => {
                let Some(x) = parse_number(v) else {
                    return Tri::Indeterminate;
                };
                let Family::Numeric(cmp) = self.family else {
                    return Tri::Indeterminate;
                };
                vals.iter().any(|&p| compare(cmp, x.cmp(p)))
            }
            Values::Date(vals) => {
                let Some(x) = parse_date_ms(v) else {
                    return Tri::Indeterminate;
                };
                let Family::Date(cmp) = self.family else {
                    return Tri::Indeterminate;
                };
                vals.iter().any(|&p| compare(cmp, Some(x.cmp(&p))))
            }
            Values::Bool(vals) => {
                let Some(x) = parse_bool(v) else {
                    return Tri::Indeterminate;
                };
                vals.contains(&x)
            }
            Values::Binary(vals) => {
                let Ok(x) = base64::engine::general_purpose::STANDARD.decode(v.trim()) else {
                    return Tri::Indeterminate;
                };
                vals.contains(&x)
            }
            Values::Ip(vals) => {
                let Ok(ip) = v.trim().parse::<IpAddr>() else {
                    return Tri::Indeterminate;
                };
                vals.iter().any(|n| n.contains(&ip))
            }
            Values::Null(_) => return Tri::Indeterminate,
        };
        tri(any != self.negated)
    }
}

/// All the values, or every error.
fn gather<T>(results: Vec<Result<T, String>>) -> Result<Vec<T>, Vec<String>> {
    let mut ok = Vec::with_capacity(results.len());
    let mut errs = Vec::new();
    for r in results {
        match r {
            Ok(v) => ok.push(v),
            Err(e) => errs.push(e),
        }
    }
    if errs.is_empty() { Ok(ok) } else { Err(errs) }
}

fn compare(cmp: Cmp, ord: Option<std::cmp::Ordering>) -> bool {
    use std::cmp::Ordering::*;
    match (cmp, ord) {
        (_, None) => false,
        (Cmp::Eq, Some(o)) => o == Equal,
        (Cmp::Lt, Some(o)) => o == Less,
        (Cmp::Le, Some(o)) => o != Greater,
        (Cmp::Gt, Some(o)) => o == Greater,
        (Cmp::Ge, Some(o)) => o != Less,
    }
}

fn tri(b: bool) -> Tri {
    if b { Tri::True } else { Tri::False }
}

#[cfg(test)]
#[path = "condition_tests.rs"]
mod tests;

//! Table-driven tests of the condition operators (reference/aws-semantics.md §3, SPEC.md §4). One test
//! function per rule; every row names itself in the failure message, and all failing rows of a table are
//! reported together.
use super::*;
use crate::policy::context::{MapContext, Value};
use Tri::{False as F, Indeterminate as I, True as T};

// === harness ===

/// The state of one context key in a table row.
#[derive(Debug, Clone, Copy)]
enum V {
    /// The key is not in the request context.
    Missing,
    /// A single value.
    One(&'static str),
    /// A set of values.
    Many(&'static [&'static str]),
}

impl V {
    fn to_value(self) -> Option<Value> {
        match self {
            V::Missing => None,
            V::One(s) => Some(Value::One(s.to_owned())),
            V::Many(m) => Some(Value::Many(m.iter().map(|s| (*s).to_owned()).collect())),
        }
    }
}

/// `(operator, key, policy values, the key's value in the request, expected)`.
type Row = (&'static str, &'static str, &'static [&'static str], V, Tri);

/// `(operator, key, policy values, whole request context, expected)`: for rows whose values read other
/// keys through policy variables.
type CtxRow = (&'static str, &'static str, &'static [&'static str], &'static [(&'static str, V)], Tri);

/// `(operator, key, policy values)` that must not compile.
type ErrRow = (&'static str, &'static str, &'static [&'static str]);

fn strings(vals: &[&str]) -> Vec<String> {
    vals.iter().map(|s| (*s).to_owned()).collect()
}

fn context(entries: &[(&str, Option<Value>)]) -> MapContext {
    let mut ctx = MapContext::default();
    // An unrelated key, so that "missing" never means "empty context".
    ctx.insert("aws:unrelated", Value::One("x".to_owned()));
    for (k, v) in entries {
        if let Some(v) = v {
            ctx.insert(k, v.clone());
        }
    }
    ctx
}

/// Compiles and evaluates one row; pushes a message naming the row when it does not give `want`.
#[expect(clippy::too_many_arguments, reason = "one table row: every column of the condition table")]
fn check(
    failures: &mut Vec<String>,
    op: &str,
    key: &str,
    vals: &[&str],
    vars: bool,
    ctx: &MapContext,
    shown: &str,
    want: Tri,
) {
    match Condition::compile(op, key, &strings(vals), vars) {
        Err(e) => failures.push(format!("{op} {{{key}: {vals:?}}} vs {shown}: compile error `{e}`")),
        Ok(c) => {
            let got = c.evaluate(ctx);
            if got != want {
                failures.push(format!("{op} {{{key}: {vals:?}}} (vars={vars}) vs {shown}: got {got:?}, want {want:?}"));
            }
        }
    }
}

fn finish(rule: &str, rows: usize, failures: &[String]) {
    assert!(rows > 0, "{rule}: empty table");
    assert!(failures.is_empty(), "{rule}: {} of {rows} rows failed:\n  {}", failures.len(), failures.join("\n  "));
}

/// Runs rows with policy variables enabled (`Version` `2012-10-17`).
fn run(rule: &str, rows: &[Row]) {
    run_vars(rule, rows, true);
}

fn run_vars(rule: &str, rows: &[Row], vars: bool) {
    let mut failures = Vec::new();
    for &(op, key, vals, v, want) in rows {
        let ctx = context(&[(key, v.to_value())]);
        check(&mut failures, op, key, vals, vars, &ctx, &format!("{v:?}"), want);
    }
    finish(rule, rows.len(), &failures);
}

fn run_ctx(rule: &str, rows: &[CtxRow], vars: bool) {
    let mut failures = Vec::new();
    for &(op, key, vals, entries, want) in rows {
        let owned: Vec<(&str, Option<Value>)> = entries.iter().map(|(k, v)| (*k, v.to_value())).collect();
        let ctx = context(&owned);
        check(&mut failures, op, key, vals, vars, &ctx, &format!("{entries:?}"), want);
    }
    finish(rule, rows.len(), &failures);
}

fn run_rejected(rule: &str, rows: &[ErrRow], vars: bool) {
    let mut failures = Vec::new();
    for &(op, key, vals) in rows {
        if let Ok(c) = Condition::compile(op, key, &strings(vals), vars) {
            failures.push(format!("{op} {{{key}: {vals:?}}} (vars={vars}) compiled: {c:?}"));
        }
    }
    finish(rule, rows.len(), &failures);
}

fn run_accepted(rule: &str, rows: &[ErrRow], vars: bool) {
    let mut failures = Vec::new();
    for &(op, key, vals) in rows {
        if let Err(e) = Condition::compile(op, key, &strings(vals), vars) {
            failures.push(format!("{op} {{{key}: {vals:?}}} (vars={vars}) rejected: {e}"));
        }
    }
    finish(rule, rows.len(), &failures);
}

// === the central matrix: family × qualifier × IfExists × key state × polarity ===

/// One operator under test, with request values that satisfy (`hit*`) and do not satisfy (`miss*`) its
/// policy values, and optionally a request value it cannot read.
struct Family {
    op: &'static str,
    negated: Option<&'static str>,
    key: &'static str,
    vals: &'static [&'static str],
    hit: &'static str,
    hit2: &'static str,
    miss: &'static str,
    miss2: &'static str,
    bad: Option<&'static str>,
}

const FAMILIES: &[Family] = &[
    Family {
        op: "StringEquals",
        negated: Some("StringNotEquals"),
        key: "aws:RequestTag/Team",
        vals: &["alpha", "beta"],
        hit: "alpha",
        hit2: "beta",
        miss: "Alpha",
        miss2: "gamma",
        bad: None,
    },
    Family {
        op: "StringEqualsIgnoreCase",
        negated: Some("StringNotEqualsIgnoreCase"),
        key: "aws:RequestTag/Team",
        vals: &["Alpha", "beta"],
        hit: "ALPHA",
        hit2: "Beta",
        miss: "alph",
        miss2: "gamma",
        bad: None,
    },
    Family {
        op: "StringLike",
        negated: Some("StringNotLike"),
        key: "s3:prefix",
        vals: &["home/*", "tmp/?.txt"],
        hit: "home/alice/x",
        hit2: "tmp/a.txt",
        miss: "Home/alice",
        miss2: "tmp/ab.txt",
        bad: None,
    },
    Family {
        op: "NumericEquals",
        negated: Some("NumericNotEquals"),
        key: "s3:max-keys",
        vals: &["10", "20.5"],
        hit: "10.0",
        hit2: "20.5",
        miss: "11",
        miss2: "-10",
        bad: Some("ten"),
    },
    Family {
        op: "NumericLessThan",
        negated: None,
        key: "s3:max-keys",
        vals: &["10"],
        hit: "9.99",
        hit2: "-3",
        miss: "10",
        miss2: "11",
        bad: Some("abc"),
    },
    Family {
        op: "NumericLessThanEquals",
        negated: None,
        key: "s3:max-keys",
        vals: &["10"],
        hit: "10",
        hit2: "0",
        miss: "10.01",
        miss2: "100",
        bad: Some("1,0"),
    },
    Family {
        op: "NumericGreaterThan",
        negated: None,
        key: "s3:max-keys",
        vals: &["10"],
        hit: "10.5",
        hit2: "1000",
        miss: "10",
        miss2: "-11",
        bad: Some("NaN"),
    },
    Family {
        op: "NumericGreaterThanEquals",
        negated: None,
        key: "s3:max-keys",
        vals: &["10"],
        hit: "10",
        hit2: "11",
        miss: "9",
        miss2: "-10",
        bad: Some("x10"),
    },
    Family {
        op: "DateEquals",
        negated: Some("DateNotEquals"),
        key: "aws:CurrentTime",
        vals: &["2024-01-01T00:00:00Z"],
        hit: "2024-01-01T00:00:00Z",
        hit2: "1704067200",
        miss: "2024-01-01T00:00:01Z",
        miss2: "2023-12-31",
        bad: Some("yesterday"),
    },
    Family {
        op: "DateLessThan",
        negated: None,
        key: "aws:CurrentTime",
        vals: &["2024-01-01T00:00:00Z"],
        hit: "2023-12-31T23:59:59Z",
        hit2: "1704067199",
        miss: "2024-01-01T00:00:00Z",
        miss2: "1704067200",
        bad: Some("2024-13-01"),
    },
    Family {
        op: "DateLessThanEquals",
        negated: None,
        key: "aws:CurrentTime",
        vals: &["1704067200"],
        hit: "2024-01-01T00:00:00Z",
        hit2: "2023-06-01",
        miss: "2024-01-01T00:00:01Z",
        miss2: "1704067201",
        bad: Some("not a date"),
    },
    Family {
        op: "DateGreaterThan",
        negated: None,
        key: "aws:EpochTime",
        vals: &["2024-01-01"],
        hit: "1704067201",
        hit2: "2024-01-01T00:00:00.001Z",
        miss: "1704067200",
        miss2: "2023-12-31T23:59:59Z",
        bad: Some("soon"),
    },
    Family {
        op: "DateGreaterThanEquals",
        negated: None,
        key: "aws:EpochTime",
        vals: &["2024-01-01T02:00:00+02:00"],
        hit: "1704067200",
        hit2: "2030-01-01T00:00:00Z",
        miss: "1704067199",
        miss2: "2023-12-31",
        bad: Some("01/01/2024"),
    },
    Family {
        op: "Bool",
        negated: None,
        key: "aws:SecureTransport",
        vals: &["true"],
        hit: "true",
        hit2: "true",
        miss: "false",
        miss2: "false",
        bad: Some("yes"),
    },
    Family {
        op: "BinaryEquals",
        negated: None,
        key: "aws:RequestTag/blob",
        vals: &["QUJD", "eHl6"],
        hit: "QUJD",
        hit2: "eHl6",
        miss: "QUJDRA==",
        miss2: "AAAA",
        bad: Some("not base64!"),
    },
    Family {
        op: "IpAddress",
        negated: Some("NotIpAddress"),
        key: "aws:SourceIp",
        vals: &["203.0.113.0/24", "2001:db8::/32"],
        hit: "203.0.113.7",
        hit2: "2001:DB8::1",
        miss: "203.0.114.1",
        miss2: "2001:db9::1",
        bad: Some("not-an-ip"),
    },
    Family {
        op: "ArnEquals",
        negated: Some("ArnNotEquals"),
        key: "aws:PrincipalArn",
        vals: &["arn:aws:iam::111122223333:role/admin-*"],
        hit: "arn:aws:iam::111122223333:role/admin-alice",
        hit2: "arn:aws:iam::111122223333:role/admin-",
        miss: "arn:aws:iam::111122223333:role/Admin-alice",
        miss2: "arn:aws:iam::444455556666:role/admin-alice",
        bad: None,
    },
    Family {
        op: "ArnLike",
        negated: Some("ArnNotLike"),
        key: "aws:SourceArn",
        vals: &["arn:aws:s?:::bucket-*/*", "arn:aws:iam::*:user/bob"],
        hit: "arn:aws:s3:::bucket-1/key",
        hit2: "arn:aws:iam::999988887777:user/bob",
        miss: "arn:aws:s3:::bucket-1",
        miss2: "not-an-arn",
        bad: None,
    },
];

/// Key states, in the column order of [`EXPECTED`].
const STATES: [&str; 12] = [
    "one hit",
    "one miss",
    "[hit]",
    "[hit, hit2]",
    "[hit, miss]",
    "[miss, miss2]",
    "missing",
    "empty list",
    "empty string",
    "one bad",
    "[bad, hit]",
    "[bad, miss]",
];

/// The expected result per `(qualifier, IfExists, negated)`, written out by hand from §3.1–3.4, SPEC
/// §4.1 (a plain operator on a list value never matches, negated operators and `IfExists` included)
/// and the choices of condition.rs (a value it cannot read is Indeterminate; an empty string or empty
/// list is absent; a one-element list of a single-valued key is that value).
#[rustfmt::skip]
const EXPECTED: &[(&str, bool, bool, [Tri; 12])] = &[
    //                                hit miss [h] [h,h2] [h,m] [m,m2] missing [] ""  bad [b,h] [b,m]
    ("",              false, false, [T,  F,   T,  F,     F,    F,     F,      F, F,  I,  F,    F]),
    ("",              false, true,  [F,  T,   F,  F,     F,    F,     T,      T, T,  I,  F,    F]),
    ("",              true,  false, [T,  F,   T,  F,     F,    F,     T,      T, T,  I,  F,    F]),
    ("",              true,  true,  [F,  T,   F,  F,     F,    F,     T,      T, T,  I,  F,    F]),
    ("ForAnyValue:",  false, false, [T,  F,   T,  T,     T,    F,     F,      F, F,  I,  T,    I]),
    ("ForAnyValue:",  false, true,  [F,  T,   F,  F,     T,    T,     F,      F, F,  I,  I,    T]),
    ("ForAnyValue:",  true,  false, [T,  F,   T,  T,     T,    F,     T,      T, T,  I,  T,    I]),
    ("ForAnyValue:",  true,  true,  [F,  T,   F,  F,     T,    T,     T,      T, T,  I,  I,    T]),
    ("ForAllValues:", false, false, [T,  F,   T,  T,     F,    F,     T,      T, T,  I,  I,    F]),
    ("ForAllValues:", false, true,  [F,  T,   F,  F,     F,    T,     T,      T, T,  I,  F,    I]),
    ("ForAllValues:", true,  false, [T,  F,   T,  T,     F,    F,     T,      T, T,  I,  I,    F]),
    ("ForAllValues:", true,  true,  [F,  T,   F,  F,     F,    T,     T,      T, T,  I,  F,    I]),
];

struct MatrixRow {
    op: String,
    key: &'static str,
    vals: &'static [&'static str],
    state: &'static str,
    ctx: Option<Value>,
    want: Tri,
}

fn matrix_rows() -> Vec<MatrixRow> {
    let one = |s: &str| Some(Value::One(s.to_owned()));
    let many = |m: &[&str]| Some(Value::Many(strings(m)));
    let mut rows = Vec::new();
    for fam in FAMILIES {
        let states: [Option<Option<Value>>; 12] = [
            Some(one(fam.hit)),
            Some(one(fam.miss)),
            Some(many(&[fam.hit])),
            Some(many(&[fam.hit, fam.hit2])),
            Some(many(&[fam.hit, fam.miss])),
            Some(many(&[fam.miss, fam.miss2])),
            Some(None),
            Some(many(&[])),
            Some(one("")),
            fam.bad.map(one),
            fam.bad.map(|b| many(&[b, fam.hit])),
            fam.bad.map(|b| many(&[b, fam.miss])),
        ];
        for &(qual, if_exists, negated, expected) in EXPECTED {
            let base = match (negated, fam.negated) {
                (false, _) => fam.op,
                (true, Some(n)) => n,
                (true, None) => continue,
            };
            let op = format!("{qual}{base}{}", if if_exists { "IfExists" } else { "" });
            for ((state, ctx), want) in STATES.iter().zip(states.iter()).zip(expected) {
                let Some(ctx) = ctx else { continue };
                rows.push(MatrixRow { op: op.clone(), key: fam.key, vals: fam.vals, state, ctx: ctx.clone(), want });
            }
        }
    }
    rows
}

#[test]
fn operator_matrix_family_qualifier_if_exists_key_state_polarity() {
    let rows = matrix_rows();
    // 28 operators (18 positive, 10 negated) × 6 qualifier/IfExists forms × 9 or 12 key states.
    assert!(rows.len() >= 1500, "matrix has only {} rows", rows.len());
    let mut failures = Vec::new();
    for r in &rows {
        let ctx = context(&[(r.key, r.ctx.clone())]);
        let shown = format!("{} = {:?}", r.state, r.ctx);
        check(&mut failures, &r.op, r.key, r.vals, true, &ctx, &shown, r.want);
    }
    finish("operator matrix", rows.len(), &failures);
}

#[test]
fn null_matrix_qualifier_and_key_state() {
    // Null ignores the qualifier's per-value logic: `ForAllValues:Null` is always true and
    // `ForAnyValue:Null` always false (AA "Null with qualifier").
    let k = "aws:RequestTag/team";
    run(
        "Null matrix",
        &[
            ("Null", k, &["true"], V::One("a"), F),
            ("Null", k, &["true"], V::Many(&["a"]), F),
            ("Null", k, &["true"], V::Many(&["a", "b"]), F),
            ("Null", k, &["true"], V::Missing, T),
            ("Null", k, &["true"], V::Many(&[]), T),
            ("Null", k, &["true"], V::One(""), T),
            ("Null", k, &["false"], V::One("a"), T),
            ("Null", k, &["false"], V::Many(&["a"]), T),
            ("Null", k, &["false"], V::Many(&["a", "b"]), T),
            ("Null", k, &["false"], V::Missing, F),
            ("Null", k, &["false"], V::Many(&[]), F),
            ("Null", k, &["false"], V::One(""), F),
            ("ForAnyValue:Null", k, &["true"], V::One("a"), F),
            ("ForAnyValue:Null", k, &["true"], V::Many(&["a", "b"]), F),
            ("ForAnyValue:Null", k, &["true"], V::Missing, F),
            ("ForAnyValue:Null", k, &["true"], V::Many(&[]), F),
            ("ForAnyValue:Null", k, &["true"], V::One(""), F),
            ("ForAnyValue:Null", k, &["false"], V::One("a"), F),
            ("ForAnyValue:Null", k, &["false"], V::Many(&["a", "b"]), F),
            ("ForAnyValue:Null", k, &["false"], V::Missing, F),
            ("ForAllValues:Null", k, &["true"], V::One("a"), T),
            ("ForAllValues:Null", k, &["true"], V::Many(&["a", "b"]), T),
            ("ForAllValues:Null", k, &["true"], V::Missing, T),
            ("ForAllValues:Null", k, &["true"], V::Many(&[]), T),
            ("ForAllValues:Null", k, &["false"], V::One("a"), T),
            ("ForAllValues:Null", k, &["false"], V::Missing, T),
            ("ForAllValues:Null", k, &["false"], V::One(""), T),
        ],
    );
}

// === missing keys and IfExists (§3.1) ===

#[test]
fn missing_key_positive_operator_is_false() {
    run(
        "missing key, positive operator",
        &[
            ("StringEquals", "aws:username", &["alice"], V::Missing, F),
            ("StringEqualsIgnoreCase", "aws:username", &["alice"], V::Missing, F),
            ("StringLike", "aws:username", &["*"], V::Missing, F),
            ("NumericEquals", "s3:max-keys", &["1"], V::Missing, F),
            ("NumericLessThan", "s3:max-keys", &["1"], V::Missing, F),
            ("NumericLessThanEquals", "s3:max-keys", &["1"], V::Missing, F),
            ("NumericGreaterThan", "s3:max-keys", &["1"], V::Missing, F),
            ("NumericGreaterThanEquals", "s3:max-keys", &["1"], V::Missing, F),
            ("DateEquals", "aws:CurrentTime", &["2024-01-01"], V::Missing, F),
            ("DateLessThan", "aws:CurrentTime", &["2024-01-01"], V::Missing, F),
            ("DateLessThanEquals", "aws:CurrentTime", &["2024-01-01"], V::Missing, F),
            ("DateGreaterThan", "aws:CurrentTime", &["2024-01-01"], V::Missing, F),
            ("DateGreaterThanEquals", "aws:CurrentTime", &["2024-01-01"], V::Missing, F),
            ("Bool", "aws:MultiFactorAuthPresent", &["false"], V::Missing, F),
            ("Bool", "aws:MultiFactorAuthPresent", &["true"], V::Missing, F),
            ("BinaryEquals", "aws:RequestTag/b", &["QUJD"], V::Missing, F),
            ("IpAddress", "aws:SourceIp", &["0.0.0.0/0"], V::Missing, F),
            ("ArnEquals", "aws:SourceArn", &["*"], V::Missing, F),
            ("ArnLike", "aws:SourceArn", &["arn:*:*:*:*:*"], V::Missing, F),
        ],
    );
}

#[test]
fn missing_key_negated_operator_is_true() {
    run(
        "missing key, negated operator",
        &[
            ("StringNotEquals", "aws:username", &["alice"], V::Missing, T),
            ("StringNotEqualsIgnoreCase", "aws:username", &["alice"], V::Missing, T),
            ("StringNotLike", "aws:username", &["*"], V::Missing, T),
            ("NumericNotEquals", "s3:max-keys", &["1"], V::Missing, T),
            ("DateNotEquals", "aws:CurrentTime", &["2024-01-01"], V::Missing, T),
            ("NotIpAddress", "aws:SourceIp", &["0.0.0.0/0"], V::Missing, T),
            ("ArnNotEquals", "aws:SourceArn", &["*"], V::Missing, T),
            ("ArnNotLike", "aws:SourceArn", &["arn:*:*:*:*:*"], V::Missing, T),
        ],
    );
}

#[test]
fn if_exists_with_missing_key_is_true() {
    run(
        "IfExists, missing key",
        &[
            ("StringEqualsIfExists", "aws:username", &["alice"], V::Missing, T),
            ("StringNotEqualsIfExists", "aws:username", &["alice"], V::Missing, T),
            ("StringEqualsIgnoreCaseIfExists", "aws:username", &["alice"], V::Missing, T),
            ("StringLikeIfExists", "aws:username", &["a*"], V::Missing, T),
            ("StringNotLikeIfExists", "aws:username", &["a*"], V::Missing, T),
            ("NumericLessThanIfExists", "s3:max-keys", &["1"], V::Missing, T),
            ("NumericNotEqualsIfExists", "s3:max-keys", &["1"], V::Missing, T),
            ("DateGreaterThanIfExists", "aws:CurrentTime", &["2024-01-01"], V::Missing, T),
            ("BoolIfExists", "aws:MultiFactorAuthPresent", &["true"], V::Missing, T),
            ("BinaryEqualsIfExists", "aws:RequestTag/b", &["QUJD"], V::Missing, T),
            ("IpAddressIfExists", "aws:SourceIp", &["10.0.0.0/8"], V::Missing, T),
            ("NotIpAddressIfExists", "aws:SourceIp", &["10.0.0.0/8"], V::Missing, T),
            ("ArnLikeIfExists", "aws:SourceArn", &["arn:aws:s3:::b/*"], V::Missing, T),
            ("ArnNotEqualsIfExists", "aws:SourceArn", &["arn:aws:s3:::b/*"], V::Missing, T),
            ("ForAnyValue:StringEqualsIfExists", "aws:TagKeys", &["a"], V::Missing, T),
            ("ForAllValues:StringEqualsIfExists", "aws:TagKeys", &["a"], V::Missing, T),
            // Absent also means an empty string or an empty list.
            ("StringEqualsIfExists", "aws:username", &["alice"], V::One(""), T),
            ("BoolIfExists", "aws:MultiFactorAuthPresent", &["true"], V::Many(&[]), T),
        ],
    );
}

#[test]
fn if_exists_with_present_key_evaluates_normally() {
    run(
        "IfExists, present key",
        &[
            ("StringEqualsIfExists", "aws:username", &["alice"], V::One("alice"), T),
            ("StringEqualsIfExists", "aws:username", &["alice"], V::One("bob"), F),
            // A Deny with StringNotEqualsIfExists still denies a request whose value differs.
            ("StringNotEqualsIfExists", "aws:username", &["alice"], V::One("bob"), T),
            ("StringNotEqualsIfExists", "aws:username", &["alice"], V::One("alice"), F),
            ("NumericLessThanIfExists", "s3:max-keys", &["10"], V::One("11"), F),
            ("BoolIfExists", "aws:MultiFactorAuthPresent", &["true"], V::One("false"), F),
            ("IpAddressIfExists", "aws:SourceIp", &["10.0.0.0/8"], V::One("11.0.0.1"), F),
            ("ForAnyValue:StringEqualsIfExists", "aws:TagKeys", &["a"], V::Many(&["b", "c"]), F),
            ("ForAllValues:StringEqualsIfExists", "aws:TagKeys", &["a"], V::Many(&["a", "c"]), F),
            // …and an unreadable value stays Indeterminate.
            ("NumericLessThanIfExists", "s3:max-keys", &["10"], V::One("many"), I),
        ],
    );
}

// === Condition block logic (§3.2) ===

#[test]
fn several_policy_values_are_ored() {
    run(
        "several values, positive operator",
        &[
            ("StringEquals", "aws:username", &["alice", "bob"], V::One("bob"), T),
            ("StringEquals", "aws:username", &["alice", "bob"], V::One("carol"), F),
            ("StringLike", "s3:prefix", &["a/*", "b/*"], V::One("b/x"), T),
            ("NumericEquals", "s3:max-keys", &["1", "2", "3"], V::One("3"), T),
            ("NumericLessThan", "s3:max-keys", &["1", "5"], V::One("4"), T),
            ("NumericGreaterThan", "s3:max-keys", &["10", "5"], V::One("6"), T),
            ("DateLessThan", "aws:CurrentTime", &["2020-01-01", "2030-01-01"], V::One("2025-01-01"), T),
            ("IpAddress", "aws:SourceIp", &["10.0.0.0/8", "192.168.0.0/16"], V::One("192.168.1.1"), T),
            ("ArnLike", "aws:SourceArn", &["arn:aws:s3:::a/*", "arn:aws:s3:::b/*"], V::One("arn:aws:s3:::b/k"), T),
            ("BinaryEquals", "aws:RequestTag/b", &["QUJD", "eHl6"], V::One("eHl6"), T),
        ],
    );
}

#[test]
fn negated_operator_with_several_values_matches_none() {
    // NOT(any(match)), not any(NOT match): the value must differ from every listed value.
    run(
        "several values, negated operator",
        &[
            ("StringNotEquals", "aws:username", &["alice", "bob"], V::One("alice"), F),
            ("StringNotEquals", "aws:username", &["alice", "bob"], V::One("bob"), F),
            ("StringNotEquals", "aws:username", &["alice", "bob"], V::One("carol"), T),
            ("StringNotEqualsIgnoreCase", "aws:username", &["alice", "bob"], V::One("BOB"), F),
            ("StringNotEqualsIgnoreCase", "aws:username", &["alice", "bob"], V::One("eve"), T),
            ("StringNotLike", "s3:prefix", &["a/*", "b/*"], V::One("b/x"), F),
            ("StringNotLike", "s3:prefix", &["a/*", "b/*"], V::One("c/x"), T),
            ("NumericNotEquals", "s3:max-keys", &["1", "2"], V::One("2"), F),
            ("NumericNotEquals", "s3:max-keys", &["1", "2"], V::One("3"), T),
            ("DateNotEquals", "aws:CurrentTime", &["2024-01-01", "2024-01-02"], V::One("2024-01-02"), F),
            ("DateNotEquals", "aws:CurrentTime", &["2024-01-01", "2024-01-02"], V::One("2024-01-03"), T),
            ("NotIpAddress", "aws:SourceIp", &["10.0.0.0/8", "192.168.0.0/16"], V::One("192.168.1.1"), F),
            ("NotIpAddress", "aws:SourceIp", &["10.0.0.0/8", "192.168.0.0/16"], V::One("172.16.0.1"), T),
            ("ArnNotLike", "aws:SourceArn", &["arn:aws:s3:::a/*", "arn:aws:s3:::b/*"], V::One("arn:aws:s3:::b/k"), F),
            ("ArnNotLike", "aws:SourceArn", &["arn:aws:s3:::a/*", "arn:aws:s3:::b/*"], V::One("arn:aws:s3:::c/k"), T),
            ("ArnNotEquals", "aws:SourceArn", &["arn:aws:s3:::a", "arn:aws:s3:::b"], V::One("arn:aws:s3:::a"), F),
            ("ArnNotEquals", "aws:SourceArn", &["arn:aws:s3:::a", "arn:aws:s3:::b"], V::One("arn:aws:s3:::c"), T),
        ],
    );
}

// === multivalued keys (§3.4) ===

#[test]
fn for_any_value_over_missing_or_empty_key_is_false() {
    run(
        "ForAnyValue, missing or empty",
        &[
            ("ForAnyValue:StringEquals", "aws:TagKeys", &["a"], V::Missing, F),
            ("ForAnyValue:StringEquals", "aws:TagKeys", &["a"], V::Many(&[]), F),
            ("ForAnyValue:StringEquals", "aws:TagKeys", &["a"], V::One(""), F),
            ("ForAnyValue:StringNotEquals", "aws:TagKeys", &["a"], V::Missing, F),
            ("ForAnyValue:StringNotLike", "aws:TagKeys", &["a*"], V::Many(&[]), F),
            ("ForAnyValue:NumericLessThan", "aws:RequestTag/n", &["1"], V::Missing, F),
            ("ForAnyValue:NotIpAddress", "aws:SourceIp", &["10.0.0.0/8"], V::Missing, F),
            ("ForAnyValue:ArnNotLike", "aws:SourceArn", &["arn:aws:s3:::*"], V::Missing, F),
        ],
    );
}

#[test]
fn for_all_values_over_missing_key_is_true() {
    run(
        "ForAllValues, missing or empty",
        &[
            ("ForAllValues:StringEquals", "aws:TagKeys", &["a"], V::Missing, T),
            ("ForAllValues:StringEquals", "aws:TagKeys", &["a"], V::Many(&[]), T),
            ("ForAllValues:StringEquals", "aws:TagKeys", &["a"], V::One(""), T),
            ("ForAllValues:StringNotEquals", "aws:TagKeys", &["a"], V::Missing, T),
            ("ForAllValues:StringLike", "aws:TagKeys", &["a*"], V::Many(&[]), T),
            ("ForAllValues:NumericLessThan", "aws:RequestTag/n", &["1"], V::Missing, T),
            ("ForAllValues:IpAddress", "aws:SourceIp", &["10.0.0.0/8"], V::Missing, T),
            ("ForAllValues:ArnLike", "aws:SourceArn", &["arn:aws:s3:::*"], V::Missing, T),
            ("ForAllValues:Bool", "aws:SecureTransport", &["true"], V::Missing, T),
        ],
    );
}

#[test]
fn for_any_value_and_for_all_values_over_sets() {
    let k = "aws:TagKeys";
    run(
        "ForAnyValue/ForAllValues over sets",
        &[
            ("ForAnyValue:StringEquals", k, &["env", "team"], V::Many(&["owner", "team"]), T),
            ("ForAnyValue:StringEquals", k, &["env", "team"], V::Many(&["owner", "cost"]), F),
            ("ForAllValues:StringEquals", k, &["env", "team"], V::Many(&["env", "team"]), T),
            ("ForAllValues:StringEquals", k, &["env", "team"], V::Many(&["env"]), T),
            ("ForAllValues:StringEquals", k, &["env", "team"], V::Many(&["env", "owner"]), F),
            ("ForAnyValue:StringLike", k, &["cost-*"], V::Many(&["env", "cost-center"]), T),
            ("ForAllValues:StringLike", k, &["cost-*", "env"], V::Many(&["env", "cost-center"]), T),
            // A qualifier over a single-valued request value tests that one value.
            ("ForAnyValue:StringEquals", "aws:RequestTag/team", &["red"], V::One("red"), T),
            ("ForAllValues:StringEquals", "aws:RequestTag/team", &["red"], V::One("blue"), F),
            ("ForAnyValue:NumericGreaterThan", "aws:RequestTag/n", &["5"], V::Many(&["1", "9"]), T),
            ("ForAllValues:NumericGreaterThan", "aws:RequestTag/n", &["5"], V::Many(&["1", "9"]), F),
            ("ForAnyValue:IpAddress", "aws:SourceIp", &["10.0.0.0/8"], V::Many(&["1.1.1.1", "10.1.1.1"]), T),
            ("ForAllValues:IpAddress", "aws:SourceIp", &["10.0.0.0/8"], V::Many(&["1.1.1.1", "10.1.1.1"]), F),
        ],
    );
}

#[test]
fn for_all_values_string_not_like_documented_example() {
    // MULTI: `ForAllValues:StringNotLike {"aws:TagKeys": "key1*"}`.
    let k = "aws:TagKeys";
    run(
        "ForAllValues:StringNotLike example",
        &[
            ("ForAllValues:StringNotLike", k, &["key1*"], V::Many(&["key1:legal"]), F),
            ("ForAllValues:StringNotLike", k, &["key1*"], V::Many(&["key2:audit"]), T),
            ("ForAllValues:StringNotLike", k, &["key1*"], V::Missing, T),
            ("ForAllValues:StringNotLike", k, &["key1*"], V::Many(&["key2:audit", "key1:legal"]), F),
        ],
    );
}

#[test]
fn empty_policy_value_list() {
    // AA: `ForAnyValue` with `[]` never matches; `ForAllValues` with `[]` matches only if the key is
    // absent; `…IfExists` with `[]` matches only if the key is absent.
    let k = "aws:TagKeys";
    run(
        "empty policy value list",
        &[
            ("ForAnyValue:StringEquals", k, &[], V::Many(&["a"]), F),
            ("ForAnyValue:StringEquals", k, &[], V::Missing, F),
            ("ForAllValues:StringEquals", k, &[], V::Many(&["a"]), F),
            ("ForAllValues:StringEquals", k, &[], V::Missing, T),
            ("ForAllValues:StringEquals", k, &[], V::Many(&[]), T),
            ("StringEqualsIfExists", "aws:username", &[], V::One("a"), F),
            ("StringEqualsIfExists", "aws:username", &[], V::Missing, T),
            ("ForAnyValue:StringLikeIfExists", k, &[], V::Many(&["a"]), F),
            ("ForAnyValue:StringLikeIfExists", k, &[], V::Missing, T),
            // A plain positive operator with `[]` matches nothing: the statement "does not affect the
            // policy", as for an empty Action array (§2).
            ("StringEquals", "aws:username", &[], V::One("a"), F),
            ("StringEquals", "aws:username", &[], V::Missing, F),
            ("IpAddress", "aws:SourceIp", &[], V::One("10.0.0.1"), F),
        ],
    );
}

#[test]
fn plain_operator_on_multivalued_key_is_accepted_and_flagged() {
    // SPEC §3.1: AWS accepts it, so Warden does; the loader warns (document.rs), which it knows from
    // `plain_on_multivalued`. Regression: these were validation errors.
    let flagged: &[ErrRow] = &[
        ("StringEquals", "aws:TagKeys", &["a"]),
        ("StringNotEquals", "AWS:TAGKEYS", &["a"]),
        ("StringLike", "aws:PrincipalServiceNamesList", &["*"]),
        ("StringEqualsIfExists", "aws:CalledVia", &["athena.amazonaws.com"]),
        ("StringLike", "aws:PrincipalOrgPaths", &["o-a/*"]),
        ("StringLike", "sts:TransitiveTagKeys", &["*"]),
        ("StringEquals", "sagemaker:InstanceTypes", &["ml.t3.medium"]),
        ("ArnLike", "sagemaker:ImageArns", &["*"]),
        ("StringNotEqualsIfExists", "sagemaker:VpcSubnets", &["subnet-1"]),
    ];
    let not_flagged: &[ErrRow] = &[
        ("ForAnyValue:StringEquals", "aws:TagKeys", &["a"]),
        ("ForAllValues:StringNotEquals", "aws:TagKeys", &["a"]),
        ("ForAllValues:StringLikeIfExists", "sagemaker:InstanceTypes", &["ml.*"]),
        ("Null", "aws:TagKeys", &["false"]),
        // Single-valued tag keys take plain operators.
        ("StringEquals", "aws:RequestTag/team", &["a"]),
        ("StringEquals", "aws:PrincipalTag/team", &["a"]),
    ];
    run_accepted("plain operator on a known multivalued key", flagged, true);
    run_accepted("qualified operator, or Null, on a known multivalued key", not_flagged, true);
    let mut failures = Vec::new();
    for (rows, want) in [(flagged, true), (not_flagged, false)] {
        for &(op, key, vals) in rows {
            let got = Condition::compile(op, key, &strings(vals), true).map(|c| c.plain_on_multivalued());
            if got != Ok(want) {
                failures.push(format!("{op} {{{key}: {vals:?}}}: plain_on_multivalued {got:?}, want {want}"));
            }
        }
    }
    finish("plain_on_multivalued", flagged.len() + not_flagged.len(), &failures);
}

#[test]
fn plain_operator_on_list_value_never_matches() {
    // SPEC §4.1: "A plain operator on a list value never matches, negated operators included"
    // (iam-simulate's reading). Several values, negated operators and `IfExists` included: False.
    // Regression: several values were Indeterminate (a Deny with a negated operator applied).
    // A one-element list of a single-valued key is that value; an empty list is an absent key (§4).
    let k = "aws:RequestTag/team";
    run(
        "plain operator on a list value",
        &[
            ("StringEquals", k, &["red"], V::Many(&["red"]), T),
            ("StringEquals", k, &["red"], V::Many(&["blue"]), F),
            ("StringNotEquals", k, &["red"], V::Many(&["green"]), T),
            ("StringEquals", k, &["red"], V::Many(&["red", "blue"]), F),
            ("StringEquals", k, &["red", "blue"], V::Many(&["red", "blue"]), F),
            ("StringNotEquals", k, &["red"], V::Many(&["red", "blue"]), F),
            ("StringNotEquals", k, &["green"], V::Many(&["red", "blue"]), F),
            ("StringNotLike", k, &["g*"], V::Many(&["red", "blue"]), F),
            ("StringEqualsIfExists", k, &["red"], V::Many(&["red", "blue"]), F),
            ("StringNotEqualsIfExists", k, &["green"], V::Many(&["red", "blue"]), F),
            ("NumericLessThan", "s3:max-keys", &["5"], V::Many(&["1", "2"]), F),
            ("NumericNotEquals", "s3:max-keys", &["5"], V::Many(&["1", "2"]), F),
            ("IpAddress", "aws:SourceIp", &["10.0.0.0/8"], V::Many(&["10.0.0.1", "10.0.0.2"]), F),
            ("NotIpAddress", "aws:SourceIp", &["10.0.0.0/8"], V::Many(&["1.1.1.1", "2.2.2.2"]), F),
            (
                "ArnNotLike",
                "aws:SourceArn",
                &["arn:aws:s3:::a/*"],
                V::Many(&["arn:aws:s3:::b/1", "arn:aws:s3:::b/2"]),
                F,
            ),
            ("DateNotEquals", "aws:CurrentTime", &["2024-01-01"], V::Many(&["2025-01-01", "2026-01-01"]), F),
            ("Bool", "aws:SecureTransport", &["true"], V::Many(&["true"]), T),
            ("Bool", "aws:SecureTransport", &["true"], V::Many(&["true", "true"]), F),
            // An unreadable value in a list changes nothing: the list never matches.
            ("NumericEquals", "s3:max-keys", &["1"], V::Many(&["x", "1"]), F),
            // Empty list: absent (§4, KD-8).
            ("StringNotEquals", k, &["red"], V::Many(&[]), T),
            ("StringEquals", k, &["red"], V::Many(&[]), F),
            ("StringEqualsIfExists", k, &["red"], V::Many(&[]), T),
        ],
    );
}

#[test]
fn plain_operator_on_multivalued_key_never_matches_its_list() {
    // A known multivalued key is a list whatever its length (aws-semantics §3.4: its type decides), so
    // even a one-element `aws:TagKeys` never matches a plain operator; absent or empty is absent.
    let k = "aws:TagKeys";
    run(
        "plain operator on a known multivalued key",
        &[
            ("StringEquals", k, &["Team"], V::Many(&["Team"]), F),
            ("StringNotEquals", k, &["Team"], V::Many(&["Team"]), F),
            ("StringNotEquals", k, &["Other"], V::Many(&["Team"]), F),
            ("StringEquals", k, &["Team", "Project"], V::Many(&["Team", "Project"]), F),
            ("StringLike", k, &["*"], V::Many(&["Team", "Project"]), F),
            ("StringNotLike", k, &["x*"], V::Many(&["Team", "Project"]), F),
            ("StringEqualsIfExists", k, &["Team"], V::Many(&["Team"]), F),
            ("StringEquals", "sagemaker:InstanceTypes", &["ml.t3.medium"], V::Many(&["ml.t3.medium"]), F),
            ("StringEquals", k, &["Team"], V::Missing, F),
            ("StringNotEquals", k, &["Team"], V::Missing, T),
            ("StringNotEquals", k, &["Team"], V::Many(&[]), T),
            ("StringEqualsIfExists", k, &["Team"], V::Missing, T),
            // A caller that gives a multivalued key as one string: a single value, read as such.
            ("StringEquals", k, &["Team"], V::One("Team"), T),
            // The qualified forms are unchanged.
            ("ForAnyValue:StringEquals", k, &["Team"], V::Many(&["Team"]), T),
            ("ForAllValues:StringEquals", k, &["Team"], V::Many(&["Team", "Project"]), F),
        ],
    );
}

// === the operators (§3.3) ===

#[test]
fn string_equals_is_case_sensitive() {
    let k = "aws:username";
    run(
        "StringEquals case",
        &[
            ("StringEquals", k, &["Alice"], V::One("Alice"), T),
            ("StringEquals", k, &["Alice"], V::One("alice"), F),
            ("StringEquals", k, &["Alice"], V::One("ALICE"), F),
            ("StringEquals", k, &["Alice"], V::One("Alice "), F),
            ("StringEquals", k, &["Alice"], V::One("Alic"), F),
            ("StringNotEquals", k, &["Alice"], V::One("alice"), T),
            ("StringEquals", k, &["café"], V::One("café"), T),
            ("StringEquals", k, &["café"], V::One("CAFÉ"), F),
        ],
    );
}

#[test]
fn string_equals_ignore_case() {
    let k = "aws:username";
    run(
        "StringEqualsIgnoreCase",
        &[
            ("StringEqualsIgnoreCase", k, &["Alice"], V::One("alice"), T),
            ("StringEqualsIgnoreCase", k, &["Alice"], V::One("ALICE"), T),
            ("StringEqualsIgnoreCase", k, &["alice"], V::One("aLiCe"), T),
            ("StringEqualsIgnoreCase", k, &["Alice"], V::One("alicia"), F),
            ("StringEqualsIgnoreCase", k, &["café"], V::One("CAFÉ"), T),
            ("StringEqualsIgnoreCase", k, &["a*"], V::One("abc"), F),
            ("StringNotEqualsIgnoreCase", k, &["Alice"], V::One("ALICE"), F),
            ("StringNotEqualsIgnoreCase", k, &["Alice"], V::One("bob"), T),
        ],
    );
}

#[test]
fn string_equals_has_no_wildcards() {
    let k = "s3:prefix";
    run(
        "StringEquals compares `*` and `?` as characters",
        &[
            ("StringEquals", k, &["home/*"], V::One("home/alice"), F),
            ("StringEquals", k, &["home/*"], V::One("home/*"), T),
            ("StringEquals", k, &["a?c"], V::One("abc"), F),
            ("StringEquals", k, &["a?c"], V::One("a?c"), T),
            ("StringNotEquals", k, &["*"], V::One("anything"), T),
            ("StringNotEquals", k, &["*"], V::One("*"), F),
        ],
    );
}

#[test]
fn string_like_wildcards() {
    let k = "s3:prefix";
    run(
        "StringLike",
        &[
            ("StringLike", k, &["*"], V::One("anything at all"), T),
            ("StringLike", k, &["home/*"], V::One("home/"), T),
            ("StringLike", k, &["home/*"], V::One("home/a/b/c"), T),
            ("StringLike", k, &["home/*"], V::One("home"), F),
            ("StringLike", k, &["home/*"], V::One("HOME/a"), F),
            ("StringLike", k, &["*/private/*"], V::One("a/b/private/c"), T),
            ("StringLike", k, &["*/private/*"], V::One("a/public/c"), F),
            ("StringLike", k, &["a?c"], V::One("abc"), T),
            ("StringLike", k, &["a?c"], V::One("ac"), F),
            ("StringLike", k, &["a?c"], V::One("abbc"), F),
            ("StringLike", k, &["a?c"], V::One("aéc"), T),
            ("StringLike", k, &["*.txt"], V::One(".txt"), T),
            ("StringLike", k, &["*ab*ab"], V::One("xxabyyabab"), T),
            ("StringLike", k, &["*ab*ab"], V::One("xxabyyaba"), F),
            // A partial match needs explicit wildcards.
            ("StringLike", k, &["alice"], V::One("alice/x"), F),
            ("StringLike", k, &["alice"], V::One("alice"), T),
            ("StringLike", k, &["arn:aws:s3:::*"], V::One("arn:aws:s3:::b:with:colons"), T),
            ("StringNotLike", k, &["home/*"], V::One("tmp/x"), T),
            ("StringNotLike", k, &["home/*"], V::One("home/x"), F),
            ("StringNotLike", k, &["*"], V::One("x"), F),
        ],
    );
}

#[test]
fn numeric_operators() {
    let k = "s3:max-keys";
    run(
        "Numeric*",
        &[
            ("NumericEquals", k, &["10"], V::One("10"), T),
            ("NumericEquals", k, &["10"], V::One("10.0"), T),
            ("NumericEquals", k, &["10"], V::One("010"), T),
            ("NumericEquals", k, &["10"], V::One(" 10 "), T),
            ("NumericEquals", k, &["0.1"], V::One(".1"), T),
            ("NumericEquals", k, &["-5"], V::One("-5.0"), T),
            ("NumericEquals", k, &["10"], V::One("10.000001"), F),
            ("NumericNotEquals", k, &["10"], V::One("10.0"), F),
            ("NumericNotEquals", k, &["10"], V::One("9"), T),
            ("NumericLessThan", k, &["10"], V::One("9"), T),
            ("NumericLessThan", k, &["10"], V::One("10"), F),
            ("NumericLessThan", k, &["10"], V::One("-100"), T),
            ("NumericLessThan", k, &["-1.5"], V::One("-2"), T),
            ("NumericLessThanEquals", k, &["10"], V::One("10"), T),
            ("NumericLessThanEquals", k, &["10"], V::One("10.5"), F),
            ("NumericGreaterThan", k, &["10"], V::One("10.0001"), T),
            ("NumericGreaterThan", k, &["10"], V::One("10"), F),
            ("NumericGreaterThanEquals", k, &["10"], V::One("10"), T),
            ("NumericGreaterThanEquals", k, &["10"], V::One("9.9999"), F),
            ("NumericGreaterThanEquals", k, &["1.5"], V::One("2"), T),
        ],
    );
}

#[test]
fn numeric_operators_compare_large_integers_exactly() {
    // §3.3: "integer or decimal comparison". 2^53 + 1 and 2^53 are different integers.
    let k = "aws:RequestTag/n";
    run(
        "Numeric* on large integers",
        &[
            ("NumericEquals", k, &["9007199254740993"], V::One("9007199254740992"), F),
            ("NumericNotEquals", k, &["9007199254740993"], V::One("9007199254740992"), T),
            ("NumericGreaterThan", k, &["9007199254740992"], V::One("9007199254740993"), T),
        ],
    );
}

#[test]
fn date_operators_iso_and_epoch_mixed() {
    // 2024-01-01T00:00:00Z is epoch 1704067200; both forms compare on one scale.
    let k = "aws:CurrentTime";
    run(
        "Date*",
        &[
            ("DateEquals", k, &["2024-01-01T00:00:00Z"], V::One("1704067200"), T),
            ("DateEquals", k, &["1704067200"], V::One("2024-01-01T00:00:00Z"), T),
            ("DateEquals", k, &["1704067200"], V::One("2024-01-01"), T),
            ("DateEquals", k, &["2024-01-01"], V::One("2024-01-01T00:00:00.000Z"), T),
            ("DateEquals", k, &["2024-01-01T02:00:00+02:00"], V::One("2024-01-01T00:00:00Z"), T),
            ("DateEquals", k, &["2024-01-01T00:00Z"], V::One("1704067200"), T),
            ("DateEquals", k, &["2024-01-01T00:00:00"], V::One("1704067200"), T),
            ("DateEquals", k, &["2024-01-01T10:00+02:00"], V::One("2024-01-01T08:00:00Z"), T),
            ("DateEquals", k, &["1704067200.5"], V::One("2024-01-01T00:00:00.500Z"), T),
            ("DateEquals", k, &["1704067200"], V::One("1704067201"), F),
            ("DateNotEquals", k, &["2024-01-01T00:00:00Z"], V::One("1704067200"), F),
            ("DateNotEquals", k, &["2024-01-01T00:00:00Z"], V::One("1704067201"), T),
            ("DateLessThan", k, &["2024-01-01T00:00:00Z"], V::One("1704067199"), T),
            ("DateLessThan", k, &["1704067200"], V::One("2023-12-31T23:59:59Z"), T),
            ("DateLessThan", k, &["1704067200"], V::One("2024-01-01T00:00:00Z"), F),
            ("DateLessThanEquals", k, &["1704067200"], V::One("2024-01-01T00:00:00Z"), T),
            ("DateLessThanEquals", k, &["2024-01-01"], V::One("1704067201"), F),
            ("DateGreaterThan", k, &["2024-01-01"], V::One("1704067201"), T),
            ("DateGreaterThan", k, &["1704067200"], V::One("2024-01-01T00:00:00Z"), F),
            ("DateGreaterThanEquals", k, &["1704067200"], V::One("2024-01-01T00:00:00Z"), T),
            ("DateGreaterThanEquals", k, &["2024-01-01T00:00:00Z"], V::One("1704067199.999"), F),
            // Epoch zero and before.
            ("DateLessThan", k, &["1970-01-01T00:00:00Z"], V::One("-1"), T),
            ("DateEquals", k, &["0"], V::One("1970-01-01T00:00:00Z"), T),
        ],
    );
}

#[test]
fn date_formats_accepted_by_parse_date_ms() {
    let rows: &[(&str, Option<i64>)] = &[
        ("1704067200", Some(1_704_067_200_000)),
        ("1704067200.25", Some(1_704_067_200_250)),
        ("-1", Some(-1000)),
        (" 1704067200 ", Some(1_704_067_200_000)),
        ("2024-01-01", Some(1_704_067_200_000)),
        ("2024-01-01T00:00Z", Some(1_704_067_200_000)),
        ("2024-01-01T00:00:00Z", Some(1_704_067_200_000)),
        ("2024-01-01T00:00:00.123Z", Some(1_704_067_200_123)),
        ("2024-01-01T00:00:00", Some(1_704_067_200_000)),
        ("2024-01-01T01:00:00+01:00", Some(1_704_067_200_000)),
        ("2024-01-01T01:00+01:00", Some(1_704_067_200_000)),
        ("2023-12-31T19:00:00-05:00", Some(1_704_067_200_000)),
        ("2024-13-01", None),
        ("2024-02-30", None),
        ("2024/01/01", None),
        ("01/01/2024", None),
        ("yesterday", None),
        ("", None),
        ("1.", None),
        ("NaN", None),
    ];
    let mut failures = Vec::new();
    for &(s, want) in rows {
        let got = parse_date_ms(s);
        if got != want {
            failures.push(format!("parse_date_ms({s:?}): got {got:?}, want {want:?}"));
        }
    }
    finish("date formats", rows.len(), &failures);
}

#[test]
fn bool_operator() {
    let k = "aws:SecureTransport";
    run(
        "Bool",
        &[
            ("Bool", k, &["true"], V::One("true"), T),
            ("Bool", k, &["true"], V::One("false"), F),
            ("Bool", k, &["false"], V::One("false"), T),
            ("Bool", k, &["false"], V::One("true"), F),
            ("Bool", k, &["TRUE"], V::One("true"), T),
            ("Bool", k, &["true"], V::One("True"), T),
            ("Bool", k, &["true"], V::One("1"), I),
            ("Bool", k, &["false"], V::Missing, F),
            ("BoolIfExists", k, &["false"], V::Missing, T),
            ("BoolIfExists", k, &["false"], V::One("true"), F),
        ],
    );
    run_rejected(
        "Bool takes one value",
        &[("Bool", k, &["true", "false"]), ("BoolIfExists", k, &["true", "true"])],
        true,
    );
}

#[test]
fn binary_equals_base64() {
    // "QUJD" is base64 for "ABC", "eHl6" for "xyz"; comparison is on the decoded bytes.
    let k = "aws:RequestTag/blob";
    run(
        "BinaryEquals",
        &[
            ("BinaryEquals", k, &["QUJD"], V::One("QUJD"), T),
            ("BinaryEquals", k, &["QUJD"], V::One("eHl6"), F),
            ("BinaryEquals", k, &["QUJD"], V::One("QUJDRA=="), F),
            ("BinaryEquals", k, &["QUJDRA=="], V::One("QUJDRA=="), T),
            ("BinaryEquals", k, &[" QUJD "], V::One("QUJD"), T),
            ("BinaryEquals", k, &["QUJD", "eHl6"], V::One("eHl6"), T),
            ("BinaryEquals", k, &[""], V::One("QUJD"), F),
            ("BinaryEquals", k, &["QUJD"], V::One("!!"), I),
            ("BinaryEqualsIfExists", k, &["QUJD"], V::Missing, T),
        ],
    );
}

#[test]
fn ip_address_ipv4_ipv6_and_bare_addresses() {
    let k = "aws:SourceIp";
    run(
        "IpAddress",
        &[
            ("IpAddress", k, &["203.0.113.0/24"], V::One("203.0.113.0"), T),
            ("IpAddress", k, &["203.0.113.0/24"], V::One("203.0.113.255"), T),
            ("IpAddress", k, &["203.0.113.0/24"], V::One("203.0.112.255"), F),
            ("IpAddress", k, &["203.0.113.0/24"], V::One("203.0.114.0"), F),
            ("IpAddress", k, &["10.1.2.3/8"], V::One("10.200.0.1"), T),
            // A bare IPv4 address is /32.
            ("IpAddress", k, &["203.0.113.7"], V::One("203.0.113.7"), T),
            ("IpAddress", k, &["203.0.113.7"], V::One("203.0.113.8"), F),
            // IPv6, any spelling.
            ("IpAddress", k, &["2001:DB8:1234:5678::/64"], V::One("2001:db8:1234:5678:ffff::1"), T),
            ("IpAddress", k, &["2001:DB8:1234:5678::/64"], V::One("2001:db8:1234:5679::1"), F),
            ("IpAddress", k, &["2001:db8::1"], V::One("2001:DB8:0:0:0:0:0:1"), T),
            ("IpAddress", k, &["2001:db8::1"], V::One("2001:db8::2"), F),
            ("IpAddress", k, &["2001:db8:0:0::1"], V::One("2001:db8::1"), T),
            // The families do not mix.
            ("IpAddress", k, &["10.0.0.0/8"], V::One("::1"), F),
            ("IpAddress", k, &["::/0"], V::One("10.0.0.1"), F),
            ("IpAddress", k, &["::/0"], V::One("2600::1"), T),
            ("IpAddress", k, &["10.0.0.0/8", "2001:db8::/32"], V::One("2001:db8::5"), T),
            ("NotIpAddress", k, &["10.0.0.0/8"], V::One("11.0.0.1"), T),
            ("NotIpAddress", k, &["10.0.0.0/8"], V::One("10.0.0.1"), F),
            ("NotIpAddress", k, &["2001:db8::/32"], V::One("2001:db8::1"), F),
            ("IpAddress", k, &[" 10.0.0.0/8 "], V::One("10.0.0.1"), T),
            // The request value must be an address.
            ("IpAddress", k, &["10.0.0.0/8"], V::One("10.0.0.0/8"), I),
            ("IpAddress", k, &["10.0.0.0/8"], V::One("10.0.0.1:443"), I),
            ("NotIpAddress", k, &["10.0.0.0/8"], V::One("localhost"), I),
        ],
    );
}

#[test]
fn zero_slash_zero_matches_every_ipv4() {
    let k = "aws:SourceIp";
    run(
        "0.0.0.0/0",
        &[
            ("IpAddress", k, &["0.0.0.0/0"], V::One("0.0.0.0"), T),
            ("IpAddress", k, &["0.0.0.0/0"], V::One("1.2.3.4"), T),
            ("IpAddress", k, &["0.0.0.0/0"], V::One("203.0.113.9"), T),
            ("IpAddress", k, &["0.0.0.0/0"], V::One("255.255.255.255"), T),
            ("IpAddress", k, &["0.0.0.0/0"], V::One("2001:db8::1"), F),
            ("NotIpAddress", k, &["0.0.0.0/0"], V::One("8.8.8.8"), F),
            ("NotIpAddress", k, &["0.0.0.0/0"], V::One("2001:db8::1"), T),
        ],
    );
}

#[test]
fn arn_like_segment_by_segment() {
    let k = "aws:SourceArn";
    run(
        "ArnLike",
        &[
            // The documented example: StringLike matches, ArnLike does not.
            (
                "ArnLike",
                k,
                &["arn:aws:someservice:*:111122223333:finance/*"],
                V::One("arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt"),
                F,
            ),
            (
                "StringLike",
                k,
                &["arn:aws:someservice:*:111122223333:finance/*"],
                V::One("arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt"),
                T,
            ),
            (
                "ArnLike",
                k,
                &["arn:aws:someservice:*:111122223333:finance/*"],
                V::One("arn:aws:someservice:us-east-2:111122223333:finance/document.txt"),
                T,
            ),
            // `*` and `?` in any segment; `*` may match the empty segment.
            ("ArnLike", k, &["arn:aws:s3:::bucket/*"], V::One("arn:aws:s3:::bucket/a/b:c"), T),
            ("ArnLike", k, &["arn:*:s3:::bucket/*"], V::One("arn:aws-cn:s3:::bucket/a"), T),
            ("ArnLike", k, &["arn:aws:*:*:*:*"], V::One("arn:aws:s3:::b"), T),
            ("ArnLike", k, &["arn:aws:*:*:*:*"], V::One("arn:aws:s3::b"), F),
            ("ArnLike", k, &["arn:aws:iam::?????????????:role/x"], V::One("arn:aws:iam::123456789012:role/x"), F),
            ("ArnLike", k, &["arn:aws:iam::????????????:role/x"], V::One("arn:aws:iam::123456789012:role/x"), T),
            ("ArnLike", k, &["arn:aws:iam::*:role/*"], V::One("arn:aws:iam::1:role/a/b"), T),
            ("ArnLike", k, &["arn:aws:iam::*:role/*"], V::One("arn:aws:iam::1:user/a"), F),
            // `*` in the region segment does not swallow a colon.
            (
                "ArnLike",
                k,
                &["arn:aws:sagemaker:*:111122223333:app/*"],
                V::One("arn:aws:sagemaker:us-east-1:9:111122223333:app/x"),
                F,
            ),
            // Case-sensitive.
            ("ArnLike", k, &["arn:aws:iam::*:user/Bob"], V::One("arn:aws:iam::1:user/bob"), F),
            ("ArnLike", k, &["*"], V::One("arn:aws:iam::1:user/bob"), T),
            ("ArnLike", k, &["*"], V::One("not an arn"), T),
            ("ArnLike", k, &["arn:aws:iam::*:user/*"], V::One("not an arn"), F),
            ("ArnNotLike", k, &["arn:aws:iam::*:user/*"], V::One("not an arn"), T),
            ("ArnNotLike", k, &["arn:aws:iam::*:user/*"], V::One("arn:aws:iam::1:user/x"), F),
            (
                "ArnNotLike",
                k,
                &["arn:aws:someservice:*:111122223333:finance/*"],
                V::One("arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt"),
                T,
            ),
        ],
    );
}

#[test]
fn arn_equals_takes_wildcards() {
    let k = "aws:PrincipalArn";
    run(
        "ArnEquals",
        &[
            ("ArnEquals", k, &["arn:aws:iam::111122223333:role/*"], V::One("arn:aws:iam::111122223333:role/x"), T),
            ("ArnEquals", k, &["arn:aws:iam::*:role/admin"], V::One("arn:aws:iam::444455556666:role/admin"), T),
            ("ArnEquals", k, &["arn:aws:iam::111122223333:role/?"], V::One("arn:aws:iam::111122223333:role/x"), T),
            ("ArnEquals", k, &["arn:aws:iam::111122223333:role/?"], V::One("arn:aws:iam::111122223333:role/xy"), F),
            ("ArnEquals", k, &["arn:aws:iam::111122223333:role/a"], V::One("arn:aws:iam::111122223333:role/a"), T),
            ("ArnEquals", k, &["arn:aws:iam::111122223333:role/a"], V::One("arn:aws:iam::111122223333:role/A"), F),
            (
                "ArnEquals",
                k,
                &["arn:aws:someservice:*:111122223333:finance/*"],
                V::One("arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt"),
                F,
            ),
            ("ArnNotEquals", k, &["arn:aws:iam::*:role/admin"], V::One("arn:aws:iam::1:role/admin"), F),
            ("ArnNotEquals", k, &["arn:aws:iam::*:role/admin"], V::One("arn:aws:iam::1:role/other"), T),
            ("ArnEqualsIfExists", k, &["arn:aws:iam::*:role/admin"], V::Missing, T),
        ],
    );
}

#[test]
fn null_operator() {
    let k = "aws:TokenIssueTime";
    run(
        "Null",
        &[
            ("Null", k, &["true"], V::Missing, T),
            ("Null", k, &["true"], V::One("2024-01-01T00:00:00Z"), F),
            ("Null", k, &["false"], V::One("2024-01-01T00:00:00Z"), T),
            ("Null", k, &["false"], V::Missing, F),
            ("Null", k, &["TRUE"], V::Missing, T),
            ("Null", "aws:TagKeys", &["false"], V::Many(&["a"]), T),
            ("Null", "aws:TagKeys", &["true"], V::Many(&[]), T),
            ("Null", "aws:TagKeys", &["false"], V::Many(&["a", "b"]), T),
            // An empty string is null (COND): `Null:false` fails on it.
            ("Null", "aws:RequestTag/team", &["false"], V::One(""), F),
            ("Null", "aws:RequestTag/team", &["true"], V::One(""), T),
        ],
    );
}

#[test]
fn null_with_qualifiers() {
    let k = "aws:TagKeys";
    run(
        "Null with qualifiers",
        &[
            ("ForAllValues:Null", k, &["true"], V::Many(&["a"]), T),
            ("ForAllValues:Null", k, &["false"], V::Many(&["a"]), T),
            ("ForAllValues:Null", k, &["false"], V::Missing, T),
            ("ForAllValues:Null", k, &["true"], V::Missing, T),
            ("ForAnyValue:Null", k, &["true"], V::Missing, F),
            ("ForAnyValue:Null", k, &["false"], V::Many(&["a"]), F),
            ("ForAnyValue:Null", k, &["true"], V::Many(&["a"]), F),
            ("ForAnyValue:Null", k, &["false"], V::Missing, F),
        ],
    );
}

#[test]
fn null_if_exists_is_rejected() {
    run_rejected(
        "NullIfExists",
        &[
            ("NullIfExists", "aws:TokenIssueTime", &["true"]),
            ("ForAnyValue:NullIfExists", "aws:TagKeys", &["true"]),
            ("ForAllValues:NullIfExists", "aws:TagKeys", &["false"]),
        ],
        true,
    );
}

#[test]
fn unknown_operator_is_rejected() {
    let k = "aws:username";
    run_rejected(
        "unknown operators",
        &[
            ("StringEqualz", k, &["a"]),
            ("stringequals", k, &["a"]),
            ("STRINGEQUALS", k, &["a"]),
            ("StringNotEqualsIgnorecase", k, &["a"]),
            ("StringIgnoreCaseEquals", k, &["a"]),
            ("NumericNotLessThan", k, &["1"]),
            ("DateNotLessThan", k, &["2024-01-01"]),
            ("NotBool", k, &["true"]),
            ("BinaryNotEquals", k, &["QUJD"]),
            ("IpAddressNot", k, &["10.0.0.0/8"]),
            ("NotNull", k, &["true"]),
            ("ArnMatches", k, &["*"]),
            ("IfExists", k, &["a"]),
            ("StringEqualsIfExistsIfExists", k, &["a"]),
            ("StringEqualsifexists", k, &["a"]),
            ("ForAnyValue:", k, &["a"]),
            ("forAnyValue:StringEquals", k, &["a"]),
            ("ForAnyValues:StringEquals", k, &["a"]),
            ("ForAllValue:StringEquals", k, &["a"]),
            ("ForAnyValue:ForAllValues:StringEquals", k, &["a"]),
            ("ForAnyValue StringEquals", k, &["a"]),
            (" StringEquals", k, &["a"]),
            ("", k, &["a"]),
        ],
        true,
    );
}

#[test]
fn invalid_condition_keys_are_rejected() {
    run_rejected(
        "invalid keys",
        &[
            ("StringEquals", "", &["a"]),
            ("StringEquals", "aws: username", &["a"]),
            ("StringEquals", "aws:username ", &["a"]),
            ("Null", "aws:user\tname", &["true"]),
        ],
        true,
    );
}

#[test]
fn condition_key_names_are_case_insensitive() {
    run(
        "key case",
        &[
            ("StringEquals", "AWS:UserName", &["alice"], V::One("alice"), T),
            ("StringEquals", "aws:SourceIP", &["x"], V::One("x"), T),
            ("IpAddress", "AWS:SOURCEIP", &["10.0.0.0/8"], V::One("10.0.0.1"), T),
            ("ForAnyValue:StringEquals", "AWS:TagKeys", &["a"], V::Many(&["a"]), T),
            ("Null", "AWS:TOKENISSUETIME", &["false"], V::One("1"), T),
        ],
    );
    // The key as inserted and the key as written differ in case.
    let c = Condition::compile("StringEquals", "Aws:PrincipalTag/Team", &strings(&["red"]), true).unwrap();
    let mut ctx = MapContext::default();
    ctx.insert("aws:principaltag/TEAM", Value::One("red".to_owned()));
    assert_eq!(c.evaluate(&ctx), T);
    assert_eq!(c.key_lower(), "aws:principaltag/team");
    assert_eq!(c.key, "Aws:PrincipalTag/Team");
}

#[test]
fn unparseable_values_are_rejected() {
    run_rejected(
        "policy values that cannot be parsed for the operator",
        &[
            // CIDR / IP
            ("IpAddress", "aws:SourceIp", &["10.0.0.0/33"]),
            ("IpAddress", "aws:SourceIp", &["300.1.1.1"]),
            ("IpAddress", "aws:SourceIp", &["10.0.0/8"]),
            ("IpAddress", "aws:SourceIp", &["10.0.0.0/8/8"]),
            ("NotIpAddress", "aws:SourceIp", &["2001:db8::/129"]),
            ("IpAddress", "aws:SourceIp", &["10.0.0.0/8", "nope"]),
            ("IpAddress", "aws:SourceIp", &[""]),
            // dates
            ("DateLessThan", "aws:CurrentTime", &["2024-13-01"]),
            ("DateGreaterThan", "aws:CurrentTime", &["tomorrow"]),
            ("DateEquals", "aws:CurrentTime", &["2024/01/01"]),
            ("DateNotEquals", "aws:CurrentTime", &[""]),
            // numbers
            ("NumericEquals", "s3:max-keys", &["ten"]),
            ("NumericLessThan", "s3:max-keys", &["1,000"]),
            ("NumericGreaterThan", "s3:max-keys", &["NaN"]),
            ("NumericGreaterThanEquals", "s3:max-keys", &["inf"]),
            ("NumericNotEquals", "s3:max-keys", &[""]),
            ("NumericEquals", "s3:max-keys", &["0x10"]),
            // booleans
            ("Bool", "aws:SecureTransport", &["yes"]),
            ("Bool", "aws:SecureTransport", &["1"]),
            ("Bool", "aws:SecureTransport", &[""]),
            ("Null", "aws:SecureTransport", &["maybe"]),
            // base64
            ("BinaryEquals", "aws:RequestTag/b", &["not base64!"]),
            ("BinaryEquals", "aws:RequestTag/b", &["QUJ"]),
            ("BinaryEquals", "aws:RequestTag/b", &["QUJD="]),
            // ARNs that can never match (fewer than six components)
            ("ArnLike", "aws:SourceArn", &["arn:aws:iam::role"]),
            ("ArnEquals", "aws:SourceArn", &["not-an-arn"]),
            ("ArnNotLike", "aws:SourceArn", &[""]),
            // policy variables only in String and ARN values
            ("NumericEquals", "s3:max-keys", &["${aws:RequestTag/n}"]),
            ("DateLessThan", "aws:CurrentTime", &["${aws:RequestTag/d}"]),
            ("Bool", "aws:SecureTransport", &["${aws:RequestTag/b}"]),
            ("IpAddress", "aws:SourceIp", &["${aws:RequestTag/ip}"]),
        ],
        true,
    );
}

#[test]
fn malformed_policy_variables_are_rejected() {
    run_rejected(
        "malformed variables",
        &[
            ("StringEquals", "aws:username", &["${aws:username"]),
            ("StringLike", "s3:prefix", &["home/${aws:username/*"]),
            ("StringEquals", "aws:username", &["${aws: username}"]),
            ("StringEquals", "aws:username", &["${}"]),
            ("StringEquals", "aws:username", &["${aws:username, dflt}"]),
            ("StringEquals", "aws:username", &["${aws:username, 'dflt}"]),
            // Multivalued keys cannot be variables.
            ("StringEquals", "aws:username", &["${aws:TagKeys}"]),
            ("ArnLike", "aws:SourceArn", &["arn:aws:s3:::${sagemaker:InstanceTypes}"]),
        ],
        true,
    );
}

// === request values (§3.3 notes, condition.rs conservative choices) ===

#[test]
fn empty_string_context_value_is_null() {
    let k = "aws:RequestTag/team";
    run(
        "empty string is null",
        &[
            ("StringEquals", k, &[""], V::One(""), F),
            ("StringNotEquals", k, &["red"], V::One(""), T),
            ("StringLike", k, &["*"], V::One(""), F),
            ("StringNotLike", k, &["*"], V::One(""), T),
            ("StringEqualsIfExists", k, &["red"], V::One(""), T),
            ("NumericEquals", k, &["0"], V::One(""), F),
            ("NumericNotEquals", k, &["0"], V::One(""), T),
            ("Bool", k, &["false"], V::One(""), F),
            ("ForAnyValue:StringLike", k, &["*"], V::One(""), F),
            ("ForAllValues:StringEquals", k, &["red"], V::One(""), T),
            ("Null", k, &["true"], V::One(""), T),
            ("Null", k, &["false"], V::One(""), F),
            // The empty list too.
            ("StringLike", k, &["*"], V::Many(&[]), F),
            ("Null", k, &["true"], V::Many(&[]), T),
        ],
    );
}

#[test]
fn unreadable_request_value_is_indeterminate() {
    run(
        "unreadable request values",
        &[
            ("NumericEquals", "s3:max-keys", &["1"], V::One("one"), I),
            ("NumericNotEquals", "s3:max-keys", &["1"], V::One("one"), I),
            ("NumericLessThanIfExists", "s3:max-keys", &["1"], V::One("1e3"), I),
            ("DateLessThan", "aws:CurrentTime", &["2024-01-01"], V::One("today"), I),
            ("DateNotEquals", "aws:CurrentTime", &["2024-01-01"], V::One("2024-02-30"), I),
            ("Bool", "aws:SecureTransport", &["true"], V::One("yes"), I),
            ("BinaryEquals", "aws:RequestTag/b", &["QUJD"], V::One("Q"), I),
            ("IpAddress", "aws:SourceIp", &["10.0.0.0/8"], V::One("10.0.0.256"), I),
            ("NotIpAddress", "aws:SourceIp", &["10.0.0.0/8"], V::One("ten"), I),
            // A set: any readable match decides ForAnyValue, any readable mismatch decides ForAllValues.
            ("ForAnyValue:NumericEquals", "s3:max-keys", &["1"], V::Many(&["x", "1"]), T),
            ("ForAnyValue:NumericEquals", "s3:max-keys", &["1"], V::Many(&["x", "2"]), I),
            ("ForAllValues:NumericEquals", "s3:max-keys", &["1"], V::Many(&["x", "2"]), F),
            ("ForAllValues:NumericEquals", "s3:max-keys", &["1"], V::Many(&["x", "1"]), I),
            ("ForAllValues:NumericEquals", "s3:max-keys", &["1"], V::Many(&["1", "x"]), I),
            ("ForAnyValue:NumericEquals", "s3:max-keys", &["1"], V::Many(&["1", "x"]), T),
            // Strings and ARNs are always readable.
            ("StringEquals", "aws:username", &["a"], V::One("\u{0}"), F),
            ("ArnLike", "aws:SourceArn", &["arn:aws:s3:::*"], V::One("garbage"), F),
        ],
    );
}

// === policy variables (§3.5) ===

#[test]
fn policy_variables_in_string_and_arn_values() {
    const ALICE: &[(&str, V)] = &[
        ("aws:username", V::One("alice")),
        ("aws:PrincipalAccount", V::One("111122223333")),
        ("aws:PrincipalTag/team", V::One("Red")),
        ("s3:prefix", V::One("home/alice/docs")),
        ("aws:SourceArn", V::One("arn:aws:iam::111122223333:user/alice")),
        ("aws:RequestTag/owner", V::One("alice")),
        ("aws:RequestTag/team", V::One("red")),
    ];
    run_ctx(
        "policy variables",
        &[
            ("StringEquals", "aws:RequestTag/owner", &["${aws:username}"], ALICE, T),
            ("StringEquals", "aws:RequestTag/owner", &["${AWS:UserName}"], ALICE, T),
            ("StringEquals", "aws:RequestTag/owner", &["x-${aws:username}"], ALICE, F),
            ("StringNotEquals", "aws:RequestTag/owner", &["${aws:username}"], ALICE, F),
            ("StringEquals", "aws:RequestTag/team", &["${aws:PrincipalTag/team}"], ALICE, F),
            ("StringEqualsIgnoreCase", "aws:RequestTag/team", &["${aws:PrincipalTag/team}"], ALICE, T),
            ("StringNotEqualsIgnoreCase", "aws:RequestTag/team", &["${aws:PrincipalTag/team}"], ALICE, F),
            ("StringLike", "s3:prefix", &["home/${aws:username}/*"], ALICE, T),
            ("StringLike", "s3:prefix", &["home/${aws:username}"], ALICE, F),
            ("StringNotLike", "s3:prefix", &["home/${aws:username}/*"], ALICE, F),
            ("StringLike", "s3:prefix", &["tmp/*", "home/${aws:username}/*"], ALICE, T),
            ("ArnEquals", "aws:SourceArn", &["arn:aws:iam::${aws:PrincipalAccount}:user/${aws:username}"], ALICE, T),
            ("ArnLike", "aws:SourceArn", &["arn:aws:iam::${aws:PrincipalAccount}:user/*"], ALICE, T),
            ("ArnLike", "aws:SourceArn", &["arn:aws:iam::${aws:username}:user/*"], ALICE, F),
            ("ArnNotLike", "aws:SourceArn", &["arn:aws:iam::${aws:PrincipalAccount}:user/*"], ALICE, F),
            // A whole ARN from a variable is split into its six parts after substitution.
            (
                "ArnEquals",
                "aws:SourceArn",
                &["${aws:RequestTag/arn}"],
                &[
                    ("aws:RequestTag/arn", V::One("arn:aws:iam::111122223333:user/alice")),
                    ("aws:SourceArn", V::One("arn:aws:iam::111122223333:user/alice")),
                ],
                T,
            ),
            (
                "ForAnyValue:StringEquals",
                "aws:TagKeys",
                &["${aws:username}"],
                &[("aws:username", V::One("alice")), ("aws:TagKeys", V::Many(&["bob", "alice"]))],
                T,
            ),
            (
                "ForAllValues:StringEquals",
                "aws:TagKeys",
                &["${aws:username}"],
                &[("aws:username", V::One("alice")), ("aws:TagKeys", V::Many(&["bob", "alice"]))],
                F,
            ),
        ],
        true,
    );
}

#[test]
fn variable_values_are_literal_not_wildcards() {
    // A `*` or `?` that comes from the request is a character, not a wildcard.
    const STAR: &[(&str, V)] = &[
        ("aws:username", V::One("*")),
        ("s3:prefix", V::One("home/bob/x")),
        ("aws:SourceArn", V::One("arn:aws:iam::1:user/bob")),
    ];
    const Q: &[(&str, V)] = &[("aws:username", V::One("b?b")), ("s3:prefix", V::One("home/bob"))];
    run_ctx(
        "variable values are literal",
        &[
            ("StringLike", "s3:prefix", &["home/${aws:username}/x"], STAR, F),
            ("StringLike", "s3:prefix", &["home/${aws:username}"], STAR, F),
            ("StringNotLike", "s3:prefix", &["home/${aws:username}"], STAR, T),
            ("ArnLike", "aws:SourceArn", &["arn:aws:iam::1:user/${aws:username}"], STAR, F),
            ("StringLike", "s3:prefix", &["home/${aws:username}"], Q, F),
            (
                "StringLike",
                "s3:prefix",
                &["home/${aws:username}"],
                &[("aws:username", V::One("b?b")), ("s3:prefix", V::One("home/b?b"))],
                T,
            ),
        ],
        true,
    );
}

#[test]
fn missing_variable_never_matches_positive_and_always_satisfies_negated() {
    // The owner tag is "${aws:username}" literally: no fallback to the text.
    const NO_USER: &[(&str, V)] = &[
        ("aws:RequestTag/owner", V::One("${aws:username}")),
        ("s3:prefix", V::One("home/${aws:username}/x")),
        ("aws:SourceArn", V::One("arn:aws:iam::1:user/${aws:username}")),
        ("aws:TagKeys", V::Many(&["a", "b"])),
    ];
    const EMPTY_USER: &[(&str, V)] = &[("aws:username", V::One("")), ("aws:RequestTag/owner", V::One("x"))];
    run_ctx(
        "missing variable",
        &[
            ("StringEquals", "aws:RequestTag/owner", &["${aws:username}"], NO_USER, F),
            ("StringEqualsIgnoreCase", "aws:RequestTag/owner", &["${aws:username}"], NO_USER, F),
            ("StringLike", "s3:prefix", &["home/${aws:username}/*"], NO_USER, F),
            ("StringLike", "s3:prefix", &["*${aws:username}*"], NO_USER, F),
            ("ArnLike", "aws:SourceArn", &["arn:aws:iam::1:user/${aws:username}"], NO_USER, F),
            ("ArnEquals", "aws:SourceArn", &["arn:aws:iam::1:user/${aws:username}"], NO_USER, F),
            ("StringNotEquals", "aws:RequestTag/owner", &["${aws:username}"], NO_USER, T),
            ("StringNotEqualsIgnoreCase", "aws:RequestTag/owner", &["${aws:username}"], NO_USER, T),
            ("StringNotLike", "s3:prefix", &["home/${aws:username}/*"], NO_USER, T),
            ("StringNotLike", "s3:prefix", &["*${aws:username}*"], NO_USER, T),
            ("ArnNotLike", "aws:SourceArn", &["arn:aws:iam::1:user/${aws:username}"], NO_USER, T),
            ("ArnNotEquals", "aws:SourceArn", &["arn:aws:iam::1:user/${aws:username}"], NO_USER, T),
            // Entry by entry: another value still matches, or still vetoes the negated operator.
            ("StringEquals", "aws:RequestTag/owner", &["${aws:username}", "${aws:username}"], NO_USER, F),
            ("StringLike", "s3:prefix", &["${aws:username}", "home/*"], NO_USER, T),
            ("StringNotLike", "s3:prefix", &["${aws:username}", "home/*"], NO_USER, F),
            // Over a set.
            ("ForAnyValue:StringEquals", "aws:TagKeys", &["${aws:username}"], NO_USER, F),
            ("ForAllValues:StringNotEquals", "aws:TagKeys", &["${aws:username}"], NO_USER, T),
            // An empty value is null as well.
            ("StringEquals", "aws:RequestTag/owner", &["${aws:username}"], EMPTY_USER, F),
            ("StringNotEquals", "aws:RequestTag/owner", &["${aws:username}"], EMPTY_USER, T),
            // A variable naming a key that has a set value has no single value.
            (
                "StringEquals",
                "aws:RequestTag/owner",
                &["${aws:RequestTag/list}"],
                &[("aws:RequestTag/list", V::Many(&["x"])), ("aws:RequestTag/owner", V::One("x"))],
                F,
            ),
            // The condition's own key missing still wins for IfExists.
            ("StringEqualsIfExists", "aws:RequestTag/absent", &["${aws:username}"], NO_USER, T),
        ],
        true,
    );
}

#[test]
fn variable_default_value() {
    const NO_TEAM: &[(&str, V)] = &[("aws:RequestTag/team", V::One("company-wide"))];
    const RED_TEAM: &[(&str, V)] = &[("aws:PrincipalTag/team", V::One("red")), ("aws:RequestTag/team", V::One("red"))];
    const EMPTY_TEAM: &[(&str, V)] =
        &[("aws:PrincipalTag/team", V::One("")), ("aws:RequestTag/team", V::One("company-wide"))];
    let v: &[&str] = &["${aws:PrincipalTag/team, 'company-wide'}"];
    run_ctx(
        "variable defaults",
        &[
            ("StringEquals", "aws:RequestTag/team", v, NO_TEAM, T),
            ("StringEquals", "aws:RequestTag/team", v, RED_TEAM, T),
            ("StringEquals", "aws:RequestTag/team", v, EMPTY_TEAM, T),
            ("StringNotEquals", "aws:RequestTag/team", v, NO_TEAM, F),
            ("StringEquals", "aws:RequestTag/team", &["${aws:PrincipalTag/team, 'blue'}"], RED_TEAM, T),
            ("StringEquals", "aws:RequestTag/team", &["${aws:PrincipalTag/team, 'blue'}"], NO_TEAM, F),
            // A default with spaces, a comma, and inside a longer pattern.
            (
                "StringEquals",
                "aws:RequestTag/team",
                &["${aws:PrincipalTag/team, 'a b, c'}"],
                &[("aws:RequestTag/team", V::One("a b, c"))],
                T,
            ),
            (
                "StringLike",
                "s3:prefix",
                &["home/${aws:username, 'guest'}/*"],
                &[("s3:prefix", V::One("home/guest/file"))],
                T,
            ),
            (
                "ArnLike",
                "aws:SourceArn",
                &["arn:aws:iam::${aws:PrincipalAccount, '111122223333'}:role/*"],
                &[("aws:SourceArn", V::One("arn:aws:iam::111122223333:role/r"))],
                T,
            ),
        ],
        true,
    );
}

#[test]
fn variables_are_literal_without_version_2012() {
    const CTX: &[(&str, V)] = &[
        ("aws:username", V::One("alice")),
        ("aws:RequestTag/owner", V::One("${aws:username}")),
        ("s3:prefix", V::One("home/${aws:username}/x")),
        ("aws:SourceArn", V::One("arn:aws:iam::1:user/${aws:username}")),
    ];
    const ALICE: &[(&str, V)] = &[("aws:username", V::One("alice")), ("aws:RequestTag/owner", V::One("alice"))];
    run_ctx(
        "variables without Version 2012-10-17",
        &[
            ("StringEquals", "aws:RequestTag/owner", &["${aws:username}"], CTX, T),
            ("StringEquals", "aws:RequestTag/owner", &["${aws:username}"], ALICE, F),
            ("StringNotEquals", "aws:RequestTag/owner", &["${aws:username}"], ALICE, T),
            ("StringLike", "s3:prefix", &["home/${aws:username}/*"], CTX, T),
            ("ArnEquals", "aws:SourceArn", &["arn:aws:iam::1:user/${aws:username}"], CTX, T),
            // No escapes either: `${*}` keeps a real wildcard between the braces under StringLike.
            ("StringLike", "aws:RequestTag/owner", &["${*}"], &[("aws:RequestTag/owner", V::One("${anything}"))], T),
            ("StringEquals", "aws:RequestTag/owner", &["${*}"], &[("aws:RequestTag/owner", V::One("*"))], F),
        ],
        false,
    );
    // Without variables, malformed or multivalued "variables" are plain text.
    run_accepted(
        "no variable syntax checks without Version 2012-10-17",
        &[
            ("StringEquals", "aws:username", &["${aws:username"]),
            ("StringEquals", "aws:username", &["${aws:TagKeys}"]),
            ("StringEquals", "aws:username", &["${aws: user name}"]),
        ],
        false,
    );
    let c = Condition::compile("StringEquals", "aws:username", &strings(&["${aws:username}"]), false).unwrap();
    assert!(!c.has_vars());
    assert_eq!(c.keys_read(), vec!["aws:username"]);
}

#[test]
fn escapes_in_condition_values() {
    run_ctx(
        "escapes ${*} ${?} ${$}",
        &[
            ("StringEquals", "aws:RequestTag/k", &["a${*}b"], &[("aws:RequestTag/k", V::One("a*b"))], T),
            ("StringEquals", "aws:RequestTag/k", &["a${?}b"], &[("aws:RequestTag/k", V::One("a?b"))], T),
            ("StringEquals", "aws:RequestTag/k", &["${$}5"], &[("aws:RequestTag/k", V::One("$5"))], T),
            (
                "StringEquals",
                "aws:RequestTag/k",
                &["${$}{aws:username}"],
                &[("aws:username", V::One("alice")), ("aws:RequestTag/k", V::One("${aws:username}"))],
                T,
            ),
            ("StringEqualsIgnoreCase", "aws:RequestTag/k", &["A${*}"], &[("aws:RequestTag/k", V::One("a*"))], T),
            // Under StringLike the escaped characters are literal, not wildcards.
            ("StringLike", "aws:RequestTag/k", &["a${*}"], &[("aws:RequestTag/k", V::One("a*"))], T),
            ("StringLike", "aws:RequestTag/k", &["a${*}"], &[("aws:RequestTag/k", V::One("abc"))], F),
            ("StringLike", "aws:RequestTag/k", &["a${?}"], &[("aws:RequestTag/k", V::One("ab"))], F),
            ("StringLike", "aws:RequestTag/k", &["a${?}"], &[("aws:RequestTag/k", V::One("a?"))], T),
            ("StringLike", "aws:RequestTag/k", &["${*}*"], &[("aws:RequestTag/k", V::One("*anything"))], T),
            ("StringLike", "aws:RequestTag/k", &["${*}*"], &[("aws:RequestTag/k", V::One("anything"))], F),
            ("StringNotLike", "aws:RequestTag/k", &["a${*}"], &[("aws:RequestTag/k", V::One("abc"))], T),
            ("ArnLike", "aws:SourceArn", &["arn:aws:s3:::b/${*}"], &[("aws:SourceArn", V::One("arn:aws:s3:::b/*"))], T),
            ("ArnLike", "aws:SourceArn", &["arn:aws:s3:::b/${*}"], &[("aws:SourceArn", V::One("arn:aws:s3:::b/x"))], F),
            // Escapes next to a variable.
            (
                "StringLike",
                "s3:prefix",
                &["${*}${aws:username}${?}"],
                &[("aws:username", V::One("bob")), ("s3:prefix", V::One("*bob?"))],
                T,
            ),
        ],
        true,
    );
}

#[test]
fn policy_variables_anywhere_in_arn_and_string_values() {
    // SPEC §4.1: a variable in any part of an ARN (partition, service, region, account, resource) is
    // substituted; a missing key makes that value match nothing (a negated operator then holds).
    const CTX: &[(&str, V)] = &[
        ("aws:PrincipalAccount", V::One("111122223333")),
        ("aws:RequestedRegion", V::One("us-east-1")),
        ("aws:RequestTag/p", V::One("aws")),
        ("aws:SourceArn", V::One("arn:aws:sns:us-east-1:111122223333:topic")),
        ("aws:SourceAccount", V::One("111122223333")),
    ];
    const NO_VARS: &[(&str, V)] = &[("aws:SourceArn", V::One("arn:aws:sns:us-east-1:111122223333:topic"))];
    let k = "aws:SourceArn";
    run_ctx(
        "variables anywhere in ARN and String values",
        &[
            ("ArnLike", k, &["arn:aws:sns:${aws:RequestedRegion}:${aws:PrincipalAccount}:*"], CTX, T),
            ("ArnEquals", k, &["arn:${aws:RequestTag/p}:sns:us-east-1:111122223333:topic"], CTX, T),
            ("ArnLike", k, &["arn:aws:sns:${aws:RequestedRegion}:444455556666:*"], CTX, F),
            ("ArnNotLike", k, &["arn:aws:sns:*:${aws:PrincipalAccount}:*"], CTX, F),
            ("StringLike", k, &["arn:aws:sns:*:${aws:PrincipalAccount}:*"], CTX, T),
            ("StringEquals", "aws:SourceAccount", &["${aws:PrincipalAccount}"], CTX, T),
            // The key is missing: the value matches nothing.
            ("ArnLike", k, &["arn:aws:sns:*:${aws:PrincipalAccount}:*"], NO_VARS, F),
            ("ArnLike", k, &["arn:aws:sns:${aws:RequestedRegion}:*:*"], NO_VARS, F),
            ("ArnNotLike", k, &["arn:aws:sns:*:${aws:PrincipalAccount}:*"], NO_VARS, T),
            ("ArnNotEquals", k, &["arn:${aws:RequestTag/p}:sns:us-east-1:111122223333:topic"], NO_VARS, T),
            ("StringLike", k, &["arn:aws:sns:*:${aws:PrincipalAccount}:*"], NO_VARS, F),
            // …but another value still can.
            ("ArnLike", k, &["arn:aws:sns:*:${aws:PrincipalAccount}:*", "arn:aws:sns:*:*:topic"], NO_VARS, T),
        ],
        true,
    );
}

/// `(operator, key, policy values, has_vars, keys_read)`.
type KeysRow = (&'static str, &'static str, &'static [&'static str], bool, &'static [&'static str]);

#[test]
fn has_vars_and_keys_read() {
    let rows: &[KeysRow] = &[
        ("StringEquals", "aws:RequestTag/owner", &["${aws:username}"], true, &["aws:requesttag/owner", "aws:username"]),
        ("StringLike", "s3:prefix", &["home/${AWS:UserId}/*", "x"], true, &["s3:prefix", "aws:userid"]),
        (
            "ArnLike",
            "aws:SourceArn",
            &["arn:aws:iam::${aws:PrincipalAccount}:user/${aws:username, 'x'}"],
            true,
            &["aws:sourcearn", "aws:principalaccount", "aws:username"],
        ),
        ("StringEquals", "aws:RequestTag/owner", &["a${*}b"], false, &["aws:requesttag/owner"]),
        ("NumericEquals", "S3:Max-Keys", &["1"], false, &["s3:max-keys"]),
        ("Null", "aws:TokenIssueTime", &["true"], false, &["aws:tokenissuetime"]),
    ];
    let mut failures = Vec::new();
    for &(op, key, vals, has, keys) in rows {
        let c = Condition::compile(op, key, &strings(vals), true).unwrap();
        if c.has_vars() != has || c.keys_read() != keys {
            failures.push(format!(
                "{op} {{{key}: {vals:?}}}: has_vars {} keys_read {:?}, want {has} {keys:?}",
                c.has_vars(),
                c.keys_read()
            ));
        }
    }
    finish("has_vars / keys_read", rows.len(), &failures);
}

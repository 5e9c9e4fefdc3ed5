//! Small helpers to read AWS-shaped JSON objects while collecting problems. Pure.
use super::model::Tags;
use super::schema::{self, Place};
use crate::policy::Problems;
use crate::policy::error::ptr_token;
use serde_json::{Map, Value};

/// Reads `obj[key]` as a string; records a problem when it is required and missing, or not a string.
pub fn str_field(
    obj: &Map<String, Value>,
    key: &str,
    at: &str,
    required: bool,
    p: &mut Problems<'_>,
) -> Option<String> {
    match obj.get(key) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            p.push(format!("{at}/{}", ptr_token(key)), format!("`{key}` must be a string"));
            None
        }
        None => {
            if required {
                p.missing(at, &[key], format!("missing `{key}`"));
            }
            None
        }
    }
}

/// Reads `obj[key]` as a boolean (absent: `default`).
pub fn bool_field(obj: &Map<String, Value>, key: &str, at: &str, default: bool, p: &mut Problems<'_>) -> bool {
    match obj.get(key) {
        Some(Value::Bool(b)) => *b,
        None | Some(Value::Null) => default,
        Some(_) => {
            p.push(format!("{at}/{}", ptr_token(key)), format!("`{key}` must be true or false"));
            default
        }
    }
}

/// Reads a list that AWS output may print as an array, or sloppily as one object (CLI-EX).
pub fn list_field<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    at: &str,
    p: &mut Problems<'_>,
) -> Vec<(String, &'a Value)> {
    match obj.get(key) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => {
            a.iter().enumerate().map(|(i, v)| (format!("{at}/{}/{i}", ptr_token(key)), v)).collect()
        }
        Some(o @ Value::Object(_)) => vec![(format!("{at}/{}", ptr_token(key)), o)],
        Some(_) => {
            p.push(format!("{at}/{}", ptr_token(key)), format!("`{key}` must be an array"));
            Vec::new()
        }
    }
}

/// Reads a list of strings.
pub fn string_list(obj: &Map<String, Value>, key: &str, at: &str, p: &mut Problems<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for (f, v) in list_field(obj, key, at, p) {
        match v.as_str() {
            Some(s) => out.push(s.to_owned()),
            None => p.push(f, format!("`{key}` entries must be strings")),
        }
    }
    out
}

/// Reads `Tags: [{Key, Value}]`; duplicate keys (ignoring case) are an error.
pub fn tags_field(obj: &Map<String, Value>, key: &str, at: &str, p: &mut Problems<'_>) -> Tags {
    let mut tags = Tags::default();
    for (f, v) in list_field(obj, key, at, p) {
        let Some(o) = v.as_object() else {
            p.push(f, "a tag must be an object {\"Key\", \"Value\"}");
            continue;
        };
        schema::check(o, &f, &schema::TAG, Place::file(&[]), p);
        let (Some(k), v) = (str_field(o, "Key", &f, true, p), str_field(o, "Value", &f, false, p)) else {
            continue;
        };
        if k.is_empty() || k.len() > 128 {
            p.push(format!("{f}/Key"), format!("tag key `{k}` must be 1–128 characters"));
        }
        if !tags.insert(&k, v.as_deref().unwrap_or("")) {
            p.push(format!("{f}/Key"), format!("duplicate tag key `{k}` (tag keys are case-insensitive)"));
        }
    }
    tags
}

/// Reads `obj[key]` as an object: `None` when absent or null, a problem when it is of another type
/// (never ignored: a list where an object belongs is a misplaced value, not an absent one).
pub fn object_field<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    at: &str,
    p: &mut Problems<'_>,
) -> Option<&'a Map<String, Value>> {
    match obj.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::Object(o)) => Some(o),
        Some(v) => {
            p.push(format!("{at}/{}", ptr_token(key)), format!("`{key}` must be an object, not {}", type_name(v)));
            None
        }
    }
}

/// The JSON type of `v`, for messages (`an array`).
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The object at `v`, or a problem.
pub fn object<'a>(v: &'a Value, at: &str, what: &str, p: &mut Problems<'_>) -> Option<&'a Map<String, Value>> {
    let o = v.as_object();
    if o.is_none() {
        p.push(at, format!("{what} must be a JSON object"));
    }
    o
}

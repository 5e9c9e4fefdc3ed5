//! Strict JSON reading for policy and bundle documents: duplicate keys are an error (IAM: "Individual
//! elements must not contain multiple instances of the same key"), nesting is bounded. Pure; serde_json only.
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// Nesting (objects and arrays within each other) deeper than this is refused (SPEC §3.1).
pub const MAX_DEPTH: usize = 128;

/// Parses `text` as JSON, refusing duplicate object keys and nesting deeper than [`MAX_DEPTH`].
pub fn parse_strict(text: &str) -> Result<Value, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    // serde_json's own limit stops at 127 levels; ours (in the visitor, before each level is entered)
    // bounds the recursion instead, at exactly MAX_DEPTH.
    de.disable_recursion_limit();
    let value = de::DeserializeSeed::deserialize(Seed(0), &mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(value)
}

/// Parses bytes (must be UTF-8) strictly.
pub fn parse_strict_bytes(bytes: &[u8]) -> Result<Value, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8 text: {e}"))?;
    parse_strict(text.strip_prefix('\u{feff}').unwrap_or(text))
}

/// A value inside this many objects and arrays.
struct Seed(usize);

impl<'de> de::DeserializeSeed<'de> for Seed {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(StrictVisitor(self.0))
    }
}

/// Builds a value inside this many objects and arrays.
struct StrictVisitor(usize);

impl StrictVisitor {
    /// The level of the object or array being visited, or the error when it is too deep.
    fn level<E: de::Error>(&self) -> Result<usize, E> {
        let level = self.0 + 1;
        if level > MAX_DEPTH {
            return Err(E::custom(format_args!("nesting deeper than {MAX_DEPTH} levels")));
        }
        Ok(level)
    }
}

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let level = self.level()?;
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(Seed(level))? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let level = self.level()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format_args!("duplicate key `{key}`")));
            }
            let v = map.next_value_seed(Seed(level))?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_rejected() {
        let e = parse_strict(r#"{"Effect":"Allow","Effect":"Deny"}"#).unwrap_err();
        assert!(e.contains("duplicate key `Effect`"), "{e}");
    }

    #[test]
    fn deep_nesting_is_rejected_without_panic() {
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        assert_eq!(parse_strict(&deep).unwrap_err(), "nesting deeper than 128 levels at line 1 column 129");
        let unclosed = r#"{"a":"#.repeat(100_000);
        assert!(parse_strict(&unclosed).unwrap_err().starts_with("nesting deeper than 128 levels"));
    }

    #[test]
    fn nesting_of_128_is_accepted_and_129_refused() {
        let nest = |n: usize| "[".repeat(n) + "1" + &"]".repeat(n);
        assert!(parse_strict(&nest(MAX_DEPTH)).is_ok(), "128 levels are within the limit");
        assert!(parse_strict(&nest(MAX_DEPTH + 1)).unwrap_err().starts_with("nesting deeper than 128 levels"));
        let objects = r#"{"a":"#.repeat(MAX_DEPTH) + "1" + &"}".repeat(MAX_DEPTH);
        assert!(parse_strict(&objects).is_ok());
    }

    #[test]
    fn brackets_inside_strings_are_not_nesting() {
        let text = format!(r#"{{"a": "{}", "b": "\\\"[[["}}"#, "[".repeat(500));
        assert!(parse_strict(&text).is_ok(), "{text}");
    }

    #[test]
    fn binary_input_is_rejected() {
        assert!(parse_strict_bytes(&[0xff, 0xfe, 0x00, 0x01]).is_err());
    }

    #[test]
    fn order_is_preserved() {
        let v = parse_strict(r#"{"b":1,"a":2}"#).unwrap();
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["b", "a"]);
    }
}

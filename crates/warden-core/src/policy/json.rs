//! Strict JSON reading for policy and bundle documents: duplicate keys are an error (IAM: "Individual
//! elements must not contain multiple instances of the same key"), nesting is bounded. Pure; serde_json only.
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// Nesting deeper than this is refused (serde_json itself stops at 128).
pub const MAX_DEPTH: usize = 64;

/// Parses `text` as JSON, refusing duplicate object keys and nesting deeper than [`MAX_DEPTH`].
pub fn parse_strict(text: &str) -> Result<Value, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = StrictValue::deserialize_with(&mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    let depth = depth_of(&value);
    if depth > MAX_DEPTH {
        return Err(format!("nesting depth {depth} exceeds the limit of {MAX_DEPTH}"));
    }
    Ok(value)
}

/// Parses bytes (must be UTF-8) strictly.
pub fn parse_strict_bytes(bytes: &[u8]) -> Result<Value, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8 text: {e}"))?;
    parse_strict(text.strip_prefix('\u{feff}').unwrap_or(text))
}

fn depth_of(v: &Value) -> usize {
    // Iterative, so hostile input cannot overflow the stack here.
    let mut max = 0;
    let mut stack = vec![(v, 1usize)];
    while let Some((v, d)) = stack.pop() {
        max = max.max(d);
        match v {
            Value::Array(a) => stack.extend(a.iter().map(|x| (x, d + 1))),
            Value::Object(o) => stack.extend(o.values().map(|x| (x, d + 1))),
            _ => {}
        }
    }
    max
}

struct StrictValue;

impl StrictValue {
    fn deserialize_with<'de, D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct Seed;
impl<'de> de::DeserializeSeed<'de> for Seed {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        StrictValue::deserialize_with(d)
    }
}

struct StrictVisitor;

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
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(Seed)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format_args!("duplicate key `{key}`")));
            }
            let v = map.next_value_seed(Seed)?;
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
        assert!(parse_strict(&deep).is_err());
        let d65 = "[".repeat(65) + &"]".repeat(65);
        assert!(parse_strict(&d65).unwrap_err().contains("nesting depth"));
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
